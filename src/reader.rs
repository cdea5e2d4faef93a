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
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
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
    /// The answer holds something the request did not ask for (a table or a key): it is not read
    /// as "absent", the records go back to be verified again.
    #[error("BatchGetItem on table {table} answered with {what}, which matches no key or table of the request")]
    Unmatched { table: String, what: String },
    /// Raised by [`InMemoryTables`] to simulate a failing service.
    #[error("simulated {} failure on table {table}", if *.transient { "transient" } else { "permanent" })]
    Simulated { table: String, transient: bool },
    /// Raised by [`InMemoryTables`] as DynamoDB does for a key that does not fit the table.
    #[error("simulated ValidationException on table {table}: {message}")]
    SimulatedValidation { table: String, message: String },
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
            LookupError::Request { .. } | LookupError::SimulatedValidation { .. } => false,
            LookupError::Unprocessed { .. }
            | LookupError::Deadline { .. }
            | LookupError::Unmatched { .. } => true,
            LookupError::Simulated { transient, .. } => *transient,
        }
    }

    /// Whether the service rejected the request as invalid (a key that does not fit the table's
    /// schema, duplicate keys): the whole request fails for one bad key, so the caller narrows it.
    pub fn is_validation(&self) -> bool {
        match self {
            LookupError::BatchGetItem { source, .. } => {
                matches!(source.as_ref(), SdkError::ServiceError(e) if e.err().code() == Some("ValidationException"))
            }
            LookupError::SimulatedValidation { .. } => true,
            _ => false,
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
        let mut out = BatchGetOutput::default();
        // Fail closed: an answer under a table key this request did not use is an error, never
        // an absent item.
        for (answered, items) in output.responses.unwrap_or_default() {
            check_table(table, &answered)?;
            out.items.extend(items);
        }
        for (answered, keys) in output.unprocessed_keys.unwrap_or_default() {
            check_table(table, &answered)?;
            out.unprocessed.extend(keys.keys);
        }
        Ok(out)
    }
}

/// Whether an answer's table key is the requested table: the same text, or the same table named
/// once by its name and once by its ARN (`arn:...:table/NAME`).
fn check_table(requested: &str, answered: &str) -> Result<(), LookupError> {
    let name = |t: &str| match t.strip_prefix("arn:") {
        Some(_) => t
            .split_once(":table/")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_string()),
        None => Some(t.to_string()),
    };
    let same = requested == answered
        || (name(requested).is_some() && name(requested) == name(answered)
            // Two different ARNs of one name (another account or region) are different tables.
            && !(requested.starts_with("arn:") && answered.starts_with("arn:")));
    if same {
        Ok(())
    } else {
        Err(LookupError::Unmatched {
            table: requested.to_string(),
            what: format!("table key {answered:?}"),
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
    /// Answer with an item of a key that was not asked for (a service answer that cannot be
    /// matched to the request).
    ForeignItem,
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
    /// `ConsistentRead` of every call, in order.
    consistent_reads: Mutex<Vec<bool>>,
    /// Keys that make any request holding them fail validation (a key that does not fit).
    rejected: Mutex<std::collections::HashSet<ItemKey>>,
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

    /// Every request holding this key fails with a ValidationException, as DynamoDB fails a whole
    /// BatchGetItem for one key whose type does not fit the table.
    pub fn reject_key(&self, keys: &Item) {
        self.rejected.lock().unwrap().insert(ItemKey::of(keys));
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

    /// `ConsistentRead` of every call so far, in order.
    pub fn consistent_reads(&self) -> Vec<bool> {
        self.consistent_reads.lock().unwrap().clone()
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
        consistent_read: bool,
    ) -> Result<BatchGetOutput, LookupError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.consistent_reads.lock().unwrap().push(consistent_read);
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
            Some(Fault::ForeignItem) | None => {}
        }
        let tables = self.tables.lock().unwrap();
        // As DynamoDB: the whole request is rejected for one key that does not fit the schema, or
        // for a key asked twice.
        let mut asked = std::collections::HashSet::new();
        let rejected = self.rejected.lock().unwrap();
        for k in &keys {
            if rejected.contains(&ItemKey::of(k)) {
                return Err(LookupError::SimulatedValidation {
                    table: table.to_string(),
                    message: "The provided key element does not match the schema".into(),
                });
            }
            if !asked.insert(ItemKey::of(k)) {
                return Err(LookupError::SimulatedValidation {
                    table: table.to_string(),
                    message: "Provided list of item keys contains duplicates".into(),
                });
            }
            if let Some(t) = tables.get(table) {
                let mut names: Vec<&String> = k.keys().collect();
                names.sort();
                if names.len() != t.key_names.len()
                    || names.iter().zip(&t.key_names).any(|(a, b)| *a != b)
                {
                    return Err(LookupError::SimulatedValidation {
                        table: table.to_string(),
                        message: "The provided key element does not match the schema".into(),
                    });
                }
            }
        }
        let mut items: Vec<Item> = match tables.get(table) {
            Some(t) => keys
                .iter()
                .filter_map(|k| t.items.get(&ItemKey::of(k)).cloned())
                .collect(),
            None => Vec::new(),
        };
        if fault == Some(Fault::ForeignItem) {
            let mut stray = keys.first().cloned().unwrap_or_default();
            for v in stray.values_mut() {
                *v = aws_sdk_dynamodb::types::AttributeValue::S("not-asked-for".into());
            }
            items.push(stray);
        }
        Ok(BatchGetOutput { items, unprocessed })
    }
}
