//! How the stream verifier's events reach it from the Lambda runtime: read from the invocation's
//! bytes by the byte reader ([`StreamEvent::from_slice`]).
//!
//! lambda_runtime deserializes a handler's payload itself, through `serde_path_to_error` (which
//! keeps the path of every value it reads), and a `Deserialize` impl never sees the bytes. So a
//! layer over the runtime's invocations, the runtime's own extension point, reads each event first
//! and keeps it by request id; the runtime then deserializes a `null` payload, and the handler
//! takes the event read ([`EventsRead::take`]). A body that is not a stream event is passed on
//! untouched, so the runtime reports it as it would have.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};

use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Context, LambdaEvent, LambdaInvocation};

use crate::lambda::event::StreamEvent;

/// The events the layer read, until their handler takes them. Clones share them: one is the
/// layer, one goes to the handler.
#[derive(Clone, Default)]
pub struct EventsRead(Arc<Mutex<HashMap<String, StreamEvent>>>);

/// An invocation whose payload is not a stream event.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("the payload of invocation {request_id} is not a DynamoDB stream event ({{\"Records\": [...]}})")]
    NotAStreamEvent { request_id: String },
}

impl EventsRead {
    /// The handler's payload type: `None` when the layer read the event.
    pub fn take(
        &self,
        event: LambdaEvent<Option<StreamEvent>>,
    ) -> Result<(StreamEvent, Context), EntryError> {
        let (payload, context) = event.into_parts();
        if let Some(event) = payload {
            return Ok((event, context));
        }
        let read = self.lock().remove(&context.request_id);
        match read {
            Some(event) => Ok((event, context)),
            None => Err(EntryError::NotAStreamEvent {
                request_id: context.request_id,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StreamEvent>> {
        // A handler that panicked leaves the map whole: its entries are complete values.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S> Layer<S> for EventsRead {
    type Service = ReadEvents<S>;
    fn layer(&self, inner: S) -> ReadEvents<S> {
        ReadEvents {
            inner,
            read: self.clone(),
        }
    }
}

/// The layer's service: reads the event, then calls the runtime's own stack.
pub struct ReadEvents<S> {
    inner: S,
    read: EventsRead,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for ReadEvents<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> S::Future {
        if let Ok(event) = StreamEvent::from_slice(&invocation.body) {
            self.read
                .lock()
                .insert(invocation.context.request_id.clone(), event);
            invocation.body = "null".into();
        }
        self.inner.call(invocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(request_id: &str, body: &'static str) -> LambdaInvocation {
        let mut context = Context::default();
        context.request_id = request_id.to_string();
        LambdaInvocation {
            parts: lambda_runtime_http_parts(),
            body: body.into(),
            context,
        }
    }

    fn lambda_runtime_http_parts() -> http::response::Parts {
        http::Response::new(()).into_parts().0
    }

    /// Calls the layer over a runtime stack that deserializes the payload as the runtime does,
    /// then hands it to the handler's `take`.
    async fn through_the_layer(
        request_id: &str,
        body: &'static str,
    ) -> Result<(StreamEvent, Context), String> {
        let read = EventsRead::default();
        let handler_read = read.clone();
        let runtime = lambda_runtime::tower::service_fn(move |i: LambdaInvocation| {
            let handler_read = handler_read.clone();
            async move {
                let payload: Option<StreamEvent> =
                    serde_json::from_slice(&i.body).map_err(|e| e.to_string())?;
                handler_read
                    .take(LambdaEvent::new(payload, i.context))
                    .map_err(|e| e.to_string())
            }
        });
        let mut service = read.layer(runtime);
        let out = service.call(invocation(request_id, body)).await;
        assert!(read.lock().is_empty(), "an event read was left behind");
        out
    }

    #[tokio::test]
    async fn an_event_is_read_from_the_bytes_and_handed_to_its_handler() {
        let sample = include_str!("../../events/insert.json");
        let (event, context) = through_the_layer("r-1", sample).await.unwrap();
        assert_eq!(context.request_id, "r-1");
        assert_eq!(event, serde_json::from_str::<StreamEvent>(sample).unwrap());
        assert_eq!(event.len(), 1);
        // Records the byte reader declines come through the serde reader, with their reasons.
        let malformed = include_str!("../../events/malformed.json");
        let (event, _) = through_the_layer("r-2", malformed).await.unwrap();
        assert!(!event.malformed.is_empty());
        assert_eq!(
            event,
            serde_json::from_str::<StreamEvent>(malformed).unwrap()
        );
    }

    #[tokio::test]
    async fn a_payload_that_is_not_an_event_is_left_to_the_runtime_and_named() {
        let err = through_the_layer("r-3", r#"{"Records": 3}"#)
            .await
            .unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
        let err = through_the_layer("r-4", "null").await.unwrap_err();
        assert!(
            err.contains("invocation r-4 is not a DynamoDB stream event"),
            "{err}"
        );
    }
}
