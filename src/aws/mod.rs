//! Every AWS SDK call: clients for both accounts, and the adapters behind the read seams
//! ([`crate::ports`]).

mod answers;
pub mod checkpoints;
pub mod clients;
pub mod delivery;
pub mod describe;
pub mod findings;
pub mod mappings;
pub mod preflight;
pub mod queue;
pub mod reader;
pub mod scanner;
pub mod streams;
pub mod tables;
pub mod ttl;
pub mod writer;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::ports::failure::{CallFailure, FailureKind};
use aws_sdk_dynamodb::error::SdkError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::task::{JoinError, JoinHandle};

/// A failed call of one DynamoDB operation: kept as the service's error enum (every adapter's
/// error source), and asked whether it is transient.
pub trait DynamoDbCallError: Into<aws_sdk_dynamodb::Error> {
    fn is_transient(&self) -> bool;
    /// Its class for the port's error ([`FailureKind`]).
    fn kind(&self) -> FailureKind;
    /// The port's report of it: `operation` on `on` (`table Orders`), classified.
    fn failure(self, operation: &'static str, on: String) -> CallFailure
    where
        Self: Sized,
    {
        let kind = self.kind();
        let source: aws_sdk_dynamodb::Error = self.into();
        CallFailure::new(operation, on, kind, source)
    }
    /// The service refused the request as it is (`ValidationException`), with its message.
    fn refusal(&self) -> Option<String>;
}

impl<E: ProvideErrorMetadata> DynamoDbCallError for SdkError<E, HttpResponse>
where
    aws_sdk_dynamodb::Error: From<SdkError<E, HttpResponse>>,
{
    fn is_transient(&self) -> bool {
        is_transient(self)
    }

    fn kind(&self) -> FailureKind {
        classify(self)
    }

    fn refusal(&self) -> Option<String> {
        let service = self.as_service_error()?;
        (service.code() == Some("ValidationException")).then(|| {
            service
                .message()
                .unwrap_or("ValidationException")
                .to_string()
        })
    }
}

/// A failed call's class for the ports ([`FailureKind`]): transient, refused as invalid
/// (ValidationException) or permanent.
pub fn classify<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> FailureKind {
    if is_transient(error) {
        FailureKind::Transient
    } else if error.as_service_error().and_then(|e| e.code()) == Some("ValidationException") {
        FailureKind::Invalid
    } else {
        FailureKind::Permanent
    }
}

/// Whether asking again later may succeed: throttling, a 5xx, a time-out or the network (after the
/// SDK's own retries).
pub fn is_transient<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => {
            matches!(
                e.err().code(),
                Some(
                    "ProvisionedThroughputExceededException"
                        | "RequestLimitExceeded"
                        | "ThrottlingException"
                        | "InternalServerError"
                )
            ) || e.raw().status().as_u16() >= 500
        }
        _ => false,
    }
}

/// A call on a task of its own, aborted when its caller stops waiting for it (a lookup or a page
/// read dropped at a deadline does not leave its call running).
pub(crate) struct Spawned<T>(JoinHandle<T>);

impl<T: Send + 'static> Spawned<T> {
    pub(crate) fn spawn(call: impl Future<Output = T> + Send + 'static) -> Spawned<T> {
        Spawned(tokio::spawn(call))
    }
}

impl<T> Future for Spawned<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A key attribute's definition, for creating tables (the checkpoint and findings tables).
pub(crate) fn attribute_definition(
    name: &str,
    kind: aws_sdk_dynamodb::types::ScalarAttributeType,
) -> aws_sdk_dynamodb::types::AttributeDefinition {
    aws_sdk_dynamodb::types::AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("name and type are set")
}

/// One element of a key schema, for creating tables.
pub(crate) fn key_element(
    name: &str,
    kind: aws_sdk_dynamodb::types::KeyType,
) -> aws_sdk_dynamodb::types::KeySchemaElement {
    aws_sdk_dynamodb::types::KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type are set")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_call_on_its_own_task_answers_and_stops_when_nobody_waits_for_it() {
        tokio::time::pause();
        let answered = Spawned::spawn(async { 7 }).await;
        assert_eq!(answered.unwrap(), 7);

        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let call = Spawned::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            flag.store(true, Ordering::SeqCst);
        });
        // The caller gives up (a deadline): the call must not go on behind its back.
        assert!(tokio::time::timeout(Duration::from_millis(5), call)
            .await
            .is_err());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!finished.load(Ordering::SeqCst));
    }
}
