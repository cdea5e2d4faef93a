//! How the stream verifier's event source mappings delivered records, minute by minute, behind the
//! [`DeliveryMetrics`] port: Lambda's `IteratorAge` (the age of the last record of each batch it
//! handed the function), `Errors` and `Throttles`. Readiness with writes frozen reads them to show
//! that Lambda delivered every change before the freeze (`readiness::freeze`). Adapter:
//! `aws::delivery::CloudWatchDelivery`.

use std::future::Future;

use thiserror::Error;

/// One function's metrics over a span, one entry per minute that has a datapoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Delivery {
    /// The largest `IteratorAge` (ms) of each minute (its start, epoch ms) in which a batch was
    /// delivered, oldest first.
    pub iterator_age: Vec<(u64, f64)>,
    /// `Errors` and `Throttles`, summed over each minute that has some, oldest first.
    pub errors: Vec<(u64, f64)>,
    pub throttles: Vec<(u64, f64)>,
    /// The function's timeout (seconds), when it could be read: a batch's metrics come when it
    /// ends, up to this long after the minute they are stamped with.
    pub function_timeout_s: Option<u32>,
}

#[derive(Debug, Error)]
#[error("reading the Lambda metrics of {function} failed: {message}")]
pub struct DeliveryError {
    pub function: String,
    pub message: String,
}

/// Reads a function's delivery metrics in minutes from `from_ms` to `to_ms`.
pub trait DeliveryMetrics: Send + Sync {
    fn delivery(
        &self,
        function: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> impl Future<Output = Result<Delivery, DeliveryError>> + Send;
}
