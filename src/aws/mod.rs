//! Every AWS SDK call: clients for both accounts, and the adapters behind the read seams
//! ([`crate::ports`]).

mod answers;
pub mod checkpoints;
pub mod clients;
pub mod findings;
pub mod mappings;
pub mod queue;
pub mod reader;
pub mod scanner;
pub mod streams;
pub mod ttl;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_dynamodb::error::SdkError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::task::{JoinError, JoinHandle};

use crate::baseline::{Baseline, BaselineParts};
use crate::config::{BaselineConfig, Config, PollerConfig, RevalidatorConfig, StreamSelector};
use crate::lambda::handler::StreamVerifier;
use crate::poller::Poller;
use crate::report::findings::FindingsWriter;
use crate::revalidate::Revalidator;
use crate::ports::findings::FindingOrigin;
use crate::ports::stream::StreamError;
use crate::verify::Verifier;
use checkpoints::DynamoDbCheckpoints;
use findings::DynamoDbFindings;
use reader::DynamoDbReader;
use scanner::DynamoDbScanner;
use streams::DynamoDbStreams;
use ttl::DynamoDbTimeToLive;

/// The engine reading both accounts' tables through DynamoDB.
pub type AwsVerifier = Verifier<DynamoDbReader>;
/// The shard poller with every seam on AWS.
pub type AwsPoller = Poller<DynamoDbStreams, DynamoDbCheckpoints, DynamoDbReader>;

/// The stream verifier's engine: clients for both accounts from the configuration.
pub async fn verifier(config: Config) -> AwsVerifier {
    let (source, target) = clients::dynamodb_clients(&config).await;
    Verifier::new(
        config,
        DynamoDbReader::new(target),
        DynamoDbReader::new(source),
    )
}

/// The stream verifier as the Lambda function runs it: the engine, and the findings store when
/// `FINDINGS_TABLE` is set (in the function's own account; coverage under the function's name).
pub async fn stream_verifier(config: Config) -> StreamVerifier<DynamoDbReader> {
    let findings_table = config.findings_table.clone();
    let (source, target) = clients::dynamodb_clients(&config).await;
    let configured = config.ttl_attribute.is_some();
    let verifier = Verifier::new(
        config,
        DynamoDbReader::new(target),
        DynamoDbReader::new(source.clone()),
    );
    let mut handler = StreamVerifier::new(verifier);
    if !configured {
        // The events name the source table: its TTL setting is read on the first batch.
        let port = DynamoDbTimeToLive::new(source);
        handler = handler.with_ttl_lookup(Box::new(move |table| {
            let port = port.clone();
            Box::pin(async move { crate::ports::ttl::resolve(None, &port, &table).await })
        }));
    }
    match findings_table {
        None => handler,
        Some(table) => {
            let own = aws_sdk_dynamodb::Client::new(&clients::source_sdk_config().await);
            let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|_| "stream-verifier".to_string());
            handler.with_findings(
                FindingsWriter::new(
                    DynamoDbFindings::new(own, table),
                    FindingOrigin::Stream,
                    None,
                ),
                name,
            )
        }
    }
}

/// The baseline compare with every seam on AWS.
pub type AwsBaseline = Baseline<DynamoDbReader, DynamoDbScanner, DynamoDbCheckpoints>;

/// The baseline compare: the source table (this account, or `SOURCE_ROLE_ARN`), the other side
/// (`VERIFY_*`), and the checkpoint table in this account.
pub async fn baseline(mut config: BaselineConfig) -> AwsBaseline {
    let (source, target) = clients::dynamodb_clients(&config.verify).await;
    config.verify.ttl_attribute =
        ttl_attribute(&config.verify, &source, &config.source_table).await;
    let own_config = clients::source_sdk_config().await;
    let region = own_config.region().map(|r| r.to_string());
    let own = aws_sdk_dynamodb::Client::new(&own_config);
    let parts = BaselineParts {
        source_reader: DynamoDbReader::new(source.clone()),
        source_scanner: DynamoDbScanner::new(source),
        target_reader: DynamoDbReader::new(target.clone()),
        target_scanner: DynamoDbScanner::new(target),
        store: DynamoDbCheckpoints::new(own.clone(), &config.checkpoint_table),
    };
    let findings_table = config.verify.findings_table.clone();
    let baseline = Baseline::new(config, parts).in_region(region);
    match findings_table {
        None => baseline,
        Some(table) => {
            let name = baseline.table_name();
            baseline.with_findings(FindingsWriter::new(
                DynamoDbFindings::new(own, table),
                FindingOrigin::Baseline,
                Some(name),
            ))
        }
    }
}

/// The revalidator with every seam on AWS.
pub type AwsRevalidator = Revalidator<DynamoDbReader, DynamoDbFindings>;

/// The revalidator: the source table (this account, or `SOURCE_ROLE_ARN`), the other side
/// (`VERIFY_*`), and the findings table in this account.
pub async fn revalidator(mut config: RevalidatorConfig) -> AwsRevalidator {
    let (source, target) = clients::dynamodb_clients(&config.verify).await;
    config.verify.ttl_attribute =
        ttl_attribute(&config.verify, &source, &config.source_table).await;
    let own = aws_sdk_dynamodb::Client::new(&clients::source_sdk_config().await);
    let store = DynamoDbFindings::new(own, config.findings_table.clone());
    Revalidator::new(
        config,
        DynamoDbReader::new(target),
        DynamoDbReader::new(source),
        store,
    )
}

/// The shard poller, and where to find its stream on every run.
pub async fn poller(mut config: PollerConfig) -> (AwsPoller, StreamLocator) {
    let clients = clients::poller_clients(&config).await;
    let table = match &config.stream {
        // arn:...:table/NAME/stream/LABEL: the table's ARN is what comes before /stream/.
        StreamSelector::Arn(arn) => arn.split("/stream/").next().unwrap_or(arn).to_string(),
        StreamSelector::SourceTable(table) => table.clone(),
    };
    config.verify.ttl_attribute = ttl_attribute(&config.verify, &clients.source, &table).await;
    let verifier = Verifier::new(
        config.verify.clone(),
        DynamoDbReader::new(clients.target),
        DynamoDbReader::new(clients.source.clone()),
    );
    let locator = StreamLocator {
        selector: config.stream.clone(),
        client: clients.source,
    };
    let findings = config.verify.findings_table.clone().map(|table| {
        FindingsWriter::new(
            DynamoDbFindings::new(clients.own.clone(), table),
            FindingOrigin::Poller,
            None,
        )
    });
    let checkpoints = DynamoDbCheckpoints::new(clients.own, &config.checkpoint_table);
    let streams = DynamoDbStreams::new(clients.streams);
    let poller = Poller::new(streams, checkpoints, verifier, config);
    match findings {
        Some(writer) => (poller.with_findings(writer), locator),
        None => (poller, locator),
    }
}

/// The TTL attribute the engine judges expiry by: `TTL_ATTRIBUTE`, else the source table's
/// (DescribeTimeToLive through `source`, the client that reads it), once per process.
async fn ttl_attribute(
    config: &Config,
    source: &aws_sdk_dynamodb::Client,
    source_table: &str,
) -> Option<String> {
    let port = DynamoDbTimeToLive::new(source.clone());
    crate::ports::ttl::resolve(config.ttl_attribute.as_deref(), &port, source_table).await
}

/// Finds the stream the poller reads (`STREAM_ARN`, or `SOURCE_TABLE_NAME`'s current stream).
pub struct StreamLocator {
    selector: StreamSelector,
    client: aws_sdk_dynamodb::Client,
}

impl StreamLocator {
    /// The configured ARN, or the table's current stream (looked up every run: a stream disabled
    /// and enabled again gets a new ARN).
    pub async fn stream_arn(&self) -> Result<String, StreamError> {
        match &self.selector {
            StreamSelector::Arn(arn) => Ok(arn.clone()),
            StreamSelector::SourceTable(table) => latest_stream_arn(&self.client, table).await,
        }
    }
}

/// The table's current stream ARN, for `SOURCE_TABLE_NAME`.
pub async fn latest_stream_arn(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<String, StreamError> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| StreamError::NotFound {
            stream_arn: format!("of table {table} ({})", DisplayErrorContext(&e)),
        })?;
    out.table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| StreamError::NotFound {
            stream_arn: format!("of table {table} (the table has no stream enabled)"),
        })
}

/// The table's stream now: `Ok(Some(arn))` when enabled, `Ok(None)` when not, or why DescribeTable
/// could not tell.
pub async fn enabled_stream(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Option<String>, String> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| format!("DescribeTable on {table}: {}", DisplayErrorContext(&e)))?;
    let Some(table) = out.table else {
        return Ok(None);
    };
    let enabled = table
        .stream_specification
        .as_ref()
        .is_some_and(|s| s.stream_enabled);
    Ok(table.latest_stream_arn.filter(|_| enabled))
}

/// A failed call of one DynamoDB operation: kept as the service's error enum (every adapter's
/// error source), and asked whether it is transient.
pub trait DynamoDbCallError: Into<aws_sdk_dynamodb::Error> {
    fn is_transient(&self) -> bool;
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
