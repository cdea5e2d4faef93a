//! Reading items by key: the [`TableReader`] seam, its DynamoDB implementation
//! ([`DynamoDbReader`], one BatchGetItem per call) and an in-memory one ([`InMemoryTables`]) for unit
//! tests of what DynamoDB Local cannot produce (throttling, unprocessed keys).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemError;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use thiserror::Error;

use crate::record::{Item, ItemKey};

/// What one BatchGetItem-like call returned.
#[derive(Debug, Default)]
pub struct BatchGetOutput {
    /// Items found (whole items; the caller matches them to keys).
    pub items: Vec<Item>,
    /// Keys the service did not get to (to be asked again).
    pub unprocessed: Vec<Item>,
}

#[derive(Debug, Error)]
pub enum LookupError {
    #[error("BatchGetItem on table {table} failed")]
    BatchGetItem {
        table: String,
        #[source]
        source: Box<SdkError<BatchGetItemError, HttpResponse>>,
    },
    #[error("BatchGetItem request for table {table} could not be built")]
    Request {
        table: String,
        #[source]
        source: aws_sdk_dynamodb::error::BuildError,
    },
    #[error("table {table} left keys unprocessed after {attempts} attempts")]
    Unprocessed { table: String, attempts: u32 },
    #[error("lookup on table {table} did not finish before the invocation's deadline margin")]
    Deadline { table: String },
    /// Raised by [`InMemoryTables`] to simulate a failing service.
    #[error("simulated {} failure on table {table}", if *.transient { "transient" } else { "permanent" })]
    Simulated { table: String, transient: bool },
}

impl LookupError {
    /// Whether asking again later may succeed (throttling, 5xx, time-outs, network). Permanent errors
    /// (no such table, access denied, a key that does not fit the table's schema) will not go away by
    /// retrying, but the records still go back to Lambda rather than get a verdict they did not earn.
    pub fn is_transient(&self) -> bool {
        match self {
            LookupError::BatchGetItem { source, .. } => match source.as_ref() {
                SdkError::TimeoutError(_)
                | SdkError::DispatchFailure(_)
                | SdkError::ResponseError(_) => true,
                SdkError::ServiceError(e) => {
                    let err = e.err();
                    err.is_provisioned_throughput_exceeded_exception()
                        || err.is_request_limit_exceeded()
                        || err.is_internal_server_error()
                        || err.is_throttling_exception()
                        || e.raw().status().as_u16() >= 500
                }
                _ => false,
            },
            LookupError::Request { .. } => false,
            LookupError::Unprocessed { .. } | LookupError::Deadline { .. } => true,
            LookupError::Simulated { transient, .. } => *transient,
        }
    }
}

/// Reads items by key from one account's tables.
pub trait TableReader: Send + Sync {
    /// One BatchGetItem-like call: at most 100 distinct keys of one table.
    fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
        consistent_read: bool,
    ) -> impl Future<Output = Result<BatchGetOutput, LookupError>> + Send;
}

/// A shared reader reads like the reader itself (tests keep a handle to their in-memory tables).
impl<T: TableReader> TableReader for std::sync::Arc<T> {
    fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
        consistent_read: bool,
    ) -> impl Future<Output = Result<BatchGetOutput, LookupError>> + Send {
        self.as_ref().batch_get(table, keys, consistent_read)
    }
}

/// [`TableReader`] over an `aws_sdk_dynamodb::Client`.
#[derive(Debug, Clone)]
pub struct DynamoDbReader {
    client: aws_sdk_dynamodb::Client,
}

impl DynamoDbReader {
    pub fn new(client: aws_sdk_dynamodb::Client) -> DynamoDbReader {
        DynamoDbReader { client }
    }
}

impl TableReader for DynamoDbReader {
    async fn batch_get(
        &self,
        table: &str,
        keys: Vec<Item>,
        consistent_read: bool,
    ) -> Result<BatchGetOutput, LookupError> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(consistent_read)
            .build()
            .map_err(|source| LookupError::Request {
                table: table.to_string(),
                source,
            })?;
        let output = self
            .client
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .map_err(|source| LookupError::BatchGetItem {
                table: table.to_string(),
                source: Box::new(source),
            })?;
        let mut responses = output.responses.unwrap_or_default();
        let mut unprocessed = output.unprocessed_keys.unwrap_or_default();
        Ok(BatchGetOutput {
            items: responses.remove(table).unwrap_or_default(),
            unprocessed: unprocessed
                .remove(table)
                .map(|k| k.keys)
                .unwrap_or_default(),
        })
    }
}

/// A planned misbehaviour of [`InMemoryTables`] for its next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Fail {
        transient: bool,
    },
    /// Leave this many of the requested keys unprocessed.
    Unprocess(usize),
}

/// In-memory tables that behave like BatchGetItem, with faults planned call by call.
#[derive(Debug, Default)]
pub struct InMemoryTables {
    tables: Mutex<HashMap<String, MemoryTable>>,
    faults: Mutex<VecDeque<Fault>>,
    calls: AtomicUsize,
    latency: Mutex<std::time::Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Debug, Default)]
struct MemoryTable {
    key_names: Vec<String>,
    items: HashMap<ItemKey, Item>,
}

impl InMemoryTables {
    pub fn new() -> InMemoryTables {
        InMemoryTables::default()
    }

    pub fn put(&self, table: &str, key_names: &[&str], item: Item) {
        let mut tables = self.tables.lock().unwrap();
        let t = tables.entry(table.to_string()).or_default();
        if t.key_names.is_empty() {
            t.key_names = key_names.iter().map(|s| s.to_string()).collect();
            t.key_names.sort();
        }
        let key = ItemKey::project(&item, &t.key_names);
        t.items.insert(key, item);
    }

    pub fn delete(&self, table: &str, keys: &Item) {
        if let Some(t) = self.tables.lock().unwrap().get_mut(table) {
            t.items.remove(&ItemKey::of(keys));
        }
    }

    pub fn plan_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    /// Calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Every call takes this long (on tokio's clock).
    pub fn set_latency(&self, latency: std::time::Duration) {
        *self.latency.lock().unwrap() = latency;
    }

    /// The most calls that were in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

impl TableReader for InMemoryTables {
    async fn batch_get(
        &self,
        table: &str,
        mut keys: Vec<Item>,
        _consistent_read: bool,
    ) -> Result<BatchGetOutput, LookupError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(
            keys.len() <= 100,
            "BatchGetItem takes at most 100 keys, got {}",
            keys.len()
        );
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let fault = self.faults.lock().unwrap().pop_front();
        let mut unprocessed = Vec::new();
        match fault {
            Some(Fault::Fail { transient }) => {
                return Err(LookupError::Simulated {
                    table: table.to_string(),
                    transient,
                })
            }
            Some(Fault::Unprocess(n)) => unprocessed = keys.split_off(keys.len().saturating_sub(n)),
            None => {}
        }
        let tables = self.tables.lock().unwrap();
        let items = match tables.get(table) {
            Some(t) => keys
                .iter()
                .filter_map(|k| t.items.get(&ItemKey::of(k)).cloned())
                .collect(),
            None => Vec::new(),
        };
        Ok(BatchGetOutput { items, unprocessed })
    }
}
