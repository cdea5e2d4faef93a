//! In-memory tables behind the [`TableReader`] port, for what DynamoDB Local cannot produce
//! (throttling, unprocessed keys, answers that match no key, latency, validation errors).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ddb_verify::ports::failure::{CallFailure, FailureKind};
use ddb_verify::ports::table::{BatchGet, BatchGetOutput, LookupError, TableReader};
use ddb_verify::record::{Image, Item, ItemKey, Tape};

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
    /// As tapes, as the DynamoDB reader decodes its answers (an item of a type a tape cannot
    /// hold stays an SDK item, as the reader's fallback to the SDK leaves it).
    items: HashMap<ItemKey, Image>,
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
        let image = Tape::from_item(&item).map_or(Image::Item(item), Image::Tape);
        t.items.insert(key, image);
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

impl InMemoryTables {
    /// Counts a call (and whether it reads consistently) and keeps it in flight for the latency.
    async fn call(&self, consistent_read: bool, keys: usize) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.consistent_reads.lock().unwrap().push(consistent_read);
        assert!(
            keys <= 100,
            "BatchGetItem takes at most 100 keys, got {keys}"
        );
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    /// As DynamoDB rejects a request: for a key rejected on purpose, a key asked twice, or a key
    /// that does not fit the table's schema.
    fn validate(
        &self,
        table: &str,
        keys: &[Item],
        canonical: &[ItemKey],
    ) -> Result<(), LookupError> {
        let tables = self.tables.lock().unwrap();
        // As DynamoDB: the whole request is rejected for one key that does not fit the schema, or
        // for a key asked twice.
        let mut asked = std::collections::HashSet::new();
        let rejected = self.rejected.lock().unwrap();
        for (k, canonical) in keys.iter().zip(canonical) {
            if rejected.contains(canonical) {
                return Err(rejected_request(
                    table,
                    "The provided key element does not match the schema",
                ));
            }
            if !asked.insert(canonical) {
                return Err(rejected_request(
                    table,
                    "Provided list of item keys contains duplicates",
                ));
            }
            if let Some(t) = tables.get(table) {
                let mut names: Vec<&String> = k.keys().collect();
                names.sort();
                if names.len() != t.key_names.len()
                    || names.iter().zip(&t.key_names).any(|(a, b)| *a != b)
                {
                    return Err(rejected_request(
                        table,
                        "The provided key element does not match the schema",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl TableReader for InMemoryTables {
    async fn batch_get(&self, request: BatchGet<'_>) -> Result<BatchGetOutput, LookupError> {
        let BatchGet {
            table,
            mut keys,
            consistent_read,
        } = request;
        self.call(consistent_read, keys.len()).await;
        let fault = self.faults.lock().unwrap().pop_front();
        let mut unprocessed = Vec::new();
        match fault {
            Some(Fault::Fail { transient }) => {
                let kind = if transient {
                    FailureKind::Transient
                } else {
                    FailureKind::Permanent
                };
                let what = if transient { "transient" } else { "permanent" };
                return Err(LookupError::Service(CallFailure::new(
                    "BatchGetItem",
                    format!("table {table}"),
                    kind,
                    format!("simulated {what} failure on table {table}"),
                )));
            }
            Some(Fault::Unprocess(n)) => unprocessed = keys.split_off(keys.len().saturating_sub(n)),
            Some(Fault::ForeignItem) | None => {}
        }
        // Each key canonicalised once (the CPU bench runs the handler over these tables).
        let canonical: Vec<ItemKey> = keys.iter().map(ItemKey::of).collect();
        self.validate(table, &keys, &canonical)?;
        let tables = self.tables.lock().unwrap();
        let mut items: Vec<Image> = match tables.get(table) {
            Some(t) => canonical
                .iter()
                .filter_map(|k| t.items.get(k).cloned())
                .collect(),
            None => Vec::new(),
        };
        if fault == Some(Fault::ForeignItem) {
            let mut stray = keys.first().cloned().unwrap_or_default();
            for v in stray.values_mut() {
                *v = aws_sdk_dynamodb::types::AttributeValue::S("not-asked-for".into());
            }
            items.push(Image::Item(stray));
        }
        // As DynamoDB counts small items: a unit per item read consistently, half otherwise.
        let per_item = if consistent_read { 1.0 } else { 0.5 };
        Ok(BatchGetOutput {
            consumed_read_units: items.len() as f64 * per_item,
            items,
            unprocessed,
        })
    }
}

/// As DynamoDB refuses a request (a ValidationException): the whole call, with its message.
fn rejected_request(table: &str, message: &str) -> LookupError {
    LookupError::Service(CallFailure::new(
        "BatchGetItem",
        format!("table {table}"),
        FailureKind::Invalid,
        format!("ValidationException: {message}"),
    ))
}
