//! The stream verifier's failure queue, behind the [`FailureQueue`] port: records the event source
//! mapping gave up on (`MaximumRetryAttempts`, `MaximumRecordAgeInSeconds`) wait there, never
//! verified. Adapter: `aws::queue::SqsFailureQueue`.

use std::future::Future;

use thiserror::Error;

/// How many messages a queue holds (SQS's approximate counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready to be received.
    pub visible: u64,
    /// Received and not deleted yet.
    pub in_flight: u64,
    /// Not yet visible.
    pub delayed: u64,
}

impl QueueDepth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

#[derive(Debug, Error)]
#[error("reading the depth of failure queue {url} failed: {message}")]
pub struct QueueError {
    pub url: String,
    pub message: String,
}

/// Reads one queue's depth.
pub trait FailureQueue: Send + Sync {
    /// The queue's address, as the operator configured it.
    fn url(&self) -> &str;

    fn depth(&self) -> impl Future<Output = Result<QueueDepth, QueueError>> + Send;
}
