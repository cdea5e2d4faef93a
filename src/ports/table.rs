//! Reading items by key: the [`TableReader`] port (one BatchGetItem-like call) and its error.
//! Adapters: `aws::reader::DynamoDbReader`; in tests, the test kit's `InMemoryTables`.

use std::future::Future;

use thiserror::Error;

use crate::ports::failure::{BoxError, FailureKind};
use crate::record::{Image, Item};

/// One BatchGetItem-like call: at most 100 distinct keys of one table.
#[derive(Debug, Clone)]
pub struct BatchGet<'a> {
    pub table: &'a str,
    pub keys: Vec<Item>,
    pub consistent_read: bool,
}

/// What one BatchGetItem-like call returned.
#[derive(Debug, Default)]
pub struct BatchGetOutput {
    /// Items found (whole items, as SDK items or as tapes; the caller matches them to keys).
    pub items: Vec<Image>,
    /// Keys the service did not get to (to be asked again).
    pub unprocessed: Vec<Item>,
    /// Read capacity units the call consumed, for a rate limit (0 when not reported).
    pub consumed_read_units: f64,
}

#[derive(Debug, Error)]
pub enum LookupError {
    /// The call failed, classified by the adapter that made it.
    #[error("BatchGetItem on table {table} failed")]
    BatchGetItem {
        table: String,
        kind: FailureKind,
        #[source]
        source: BoxError,
    },
    #[error("BatchGetItem request for table {table} could not be built")]
    Request {
        table: String,
        #[source]
        source: BoxError,
    },
    /// The call's task ended without an answer (it panicked).
    #[error("BatchGetItem on table {table} ended without an answer")]
    Task {
        table: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("table {table} left keys unprocessed after {attempts} attempts")]
    Unprocessed { table: String, attempts: u32 },
    #[error("lookup on table {table} did not finish before the invocation's deadline margin")]
    Deadline { table: String },
    /// The answer holds something the request did not ask for (a table or a key): it is not read
    /// as "absent", the records go back to be verified again.
    #[error("BatchGetItem on table {table} answered with {what}, which matches no key or table of the request")]
    Unmatched { table: String, what: String },
}

impl LookupError {
    /// Whether asking again later may succeed (throttling, 5xx, time-outs, network). Permanent errors
    /// (no such table, access denied, a key that does not fit the table's schema) will not go away by
    /// retrying, but the records still go back to Lambda rather than get a verdict they did not earn.
    pub fn is_transient(&self) -> bool {
        match self {
            LookupError::BatchGetItem { kind, .. } => kind.is_transient(),
            LookupError::Request { .. } => false,
            LookupError::Unprocessed { .. }
            | LookupError::Task { .. }
            | LookupError::Deadline { .. }
            | LookupError::Unmatched { .. } => true,
        }
    }

    /// Whether the service rejected the request as invalid (a key that does not fit the table's
    /// schema, duplicate keys): the whole request fails for one bad key, so the caller narrows it.
    pub fn is_validation(&self) -> bool {
        matches!(
            self,
            LookupError::BatchGetItem {
                kind: FailureKind::Invalid,
                ..
            }
        )
    }
}

/// Reads items by key from one account's tables.
pub trait TableReader: Send + Sync {
    fn batch_get(
        &self,
        request: BatchGet<'_>,
    ) -> impl Future<Output = Result<BatchGetOutput, LookupError>> + Send;
}

/// A shared reader reads like the reader itself (tests keep a handle to their in-memory tables).
impl<T: TableReader> TableReader for std::sync::Arc<T> {
    fn batch_get(
        &self,
        request: BatchGet<'_>,
    ) -> impl Future<Output = Result<BatchGetOutput, LookupError>> + Send {
        self.as_ref().batch_get(request)
    }
}
