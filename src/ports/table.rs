//! Reading items by key: the [`TableReader`] port (one BatchGetItem-like call) and its error.
//! Adapters: `aws::reader::DynamoDbReader`; in tests, the test kit's `InMemoryTables`.
//!
//! Writing one item on a condition, for `ddb-verify repair` only: the [`TableWriter`] port
//! (PutItem or DeleteItem with a condition on what the item holds). Adapter:
//! `aws::writer::DynamoDbWriter`.

use std::future::Future;

use thiserror::Error;

use crate::ports::failure::{BoxError, CallFailure, FailureKind};
use aws_sdk_dynamodb::types::AttributeValue;

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
    #[error(transparent)]
    Service(CallFailure),
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
            LookupError::Service(failure) => failure.is_transient(),
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
        matches!(self, LookupError::Service(f) if f.kind == FailureKind::Invalid)
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

/// The longest condition expression DynamoDB takes (4 KB).
pub const MAX_CONDITION_BYTES: usize = 4096;

/// The most operators and functions DynamoDB takes in one expression.
pub const MAX_CONDITION_OPERATORS: usize = 300;

/// What the item must still hold for a conditional write to go ahead: what was just read.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// No item under the key (`attribute_not_exists` of the key's first attribute).
    Absent { key_attribute: String },
    /// An item whose every attribute read equals its value read, and which still lacks `absent`
    /// (the names a newer write would most likely add: those of the item about to be written).
    /// DynamoDB has no condition for "no other attribute", so another added name is not seen.
    Holds {
        key_attribute: String,
        item: Item,
        absent: Vec<String>,
    },
    /// An item whose version attribute is as read (`value: None`: it had none).
    Version {
        key_attribute: String,
        attribute: String,
        value: Option<AttributeValue>,
    },
}

/// A condition as DynamoDB takes it: the text, its names and its values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionExpression {
    pub text: String,
    pub names: std::collections::HashMap<String, String>,
    pub values: std::collections::HashMap<String, AttributeValue>,
    /// Operators and functions in it, against [`MAX_CONDITION_OPERATORS`].
    pub operators: usize,
}

impl ConditionExpression {
    /// Whether DynamoDB takes it: at most 4 KB of text and 300 operators.
    pub fn fits(&self) -> bool {
        self.text.len() <= MAX_CONDITION_BYTES && self.operators <= MAX_CONDITION_OPERATORS
    }

    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#n{}", self.names.len());
        self.names
            .insert(placeholder.clone(), attribute.to_string());
        placeholder
    }

    fn value(&mut self, value: &AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value.clone());
        placeholder
    }

    fn and(&mut self, clause: String) {
        if !self.text.is_empty() {
            self.text.push_str(" AND ");
            self.operators += 1;
        }
        self.text.push_str(&clause);
        self.operators += 1;
    }
}

impl Condition {
    /// The condition as DynamoDB takes it (attributes in name order, so it reads the same twice).
    pub fn expression(&self) -> ConditionExpression {
        let mut e = ConditionExpression::default();
        match self {
            Condition::Absent { key_attribute } => {
                let n = e.name(key_attribute);
                e.and(format!("attribute_not_exists({n})"));
            }
            Condition::Holds {
                key_attribute,
                item,
                absent,
            } => {
                let n = e.name(key_attribute);
                e.and(format!("attribute_exists({n})"));
                let mut names: Vec<&String> = item.keys().collect();
                names.sort();
                for name in names {
                    let (n, v) = (e.name(name), e.value(&item[name]));
                    e.and(format!("{n} = {v}"));
                }
                for name in absent {
                    let n = e.name(name);
                    e.and(format!("attribute_not_exists({n})"));
                }
            }
            Condition::Version {
                key_attribute,
                attribute,
                value,
            } => {
                let n = e.name(key_attribute);
                e.and(format!("attribute_exists({n})"));
                let n = e.name(attribute);
                match value {
                    Some(value) => {
                        let v = e.value(value);
                        e.and(format!("{n} = {v}"));
                    }
                    None => e.and(format!("attribute_not_exists({n})")),
                }
            }
        }
        e
    }
}

/// One conditional write: the whole item put, or the key's item deleted.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteAction {
    Put(Item),
    Delete(Item),
}

/// A write of one item on a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionalWrite<'a> {
    pub table: &'a str,
    pub action: WriteAction,
    pub condition: ConditionExpression,
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WriteOutcome {
    /// Written; the write units it consumed (0 when not reported).
    Written { consumed_write_units: f64 },
    /// The item no longer held what the condition says: nothing was written.
    ConditionFailed { consumed_write_units: f64 },
}

impl WriteOutcome {
    pub fn consumed_write_units(self) -> f64 {
        match self {
            WriteOutcome::Written {
                consumed_write_units,
            }
            | WriteOutcome::ConditionFailed {
                consumed_write_units,
            } => consumed_write_units,
        }
    }
}

#[derive(Debug, Error)]
pub enum WriteError {
    /// The call failed, classified by the adapter that made it.
    #[error(transparent)]
    Service(CallFailure),
}

impl WriteError {
    pub fn is_transient(&self) -> bool {
        matches!(self, WriteError::Service(f) if f.is_transient())
    }

    /// Refused as it is (a ValidationException): this write never succeeds, another may.
    pub fn is_refused(&self) -> bool {
        matches!(self, WriteError::Service(f) if f.kind == FailureKind::Invalid)
    }
}

/// Writes one item of one account's table on a condition.
pub trait TableWriter: Send + Sync {
    fn write(
        &self,
        write: ConditionalWrite<'_>,
    ) -> impl Future<Output = Result<WriteOutcome, WriteError>> + Send;
}

impl<T: TableWriter> TableWriter for std::sync::Arc<T> {
    fn write(
        &self,
        write: ConditionalWrite<'_>,
    ) -> impl Future<Output = Result<WriteOutcome, WriteError>> + Send {
        self.as_ref().write(write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as V;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), V::S(v.to_string())))
            .collect()
    }

    #[test]
    fn an_absent_item_is_held_by_its_key_not_existing() {
        let e = Condition::Absent {
            key_attribute: "pk".into(),
        }
        .expression();
        assert_eq!(e.text, "attribute_not_exists(#n0)");
        assert_eq!(e.names["#n0"], "pk");
        assert!(e.values.is_empty());
        assert!(e.fits());
    }

    #[test]
    fn a_present_item_is_held_by_every_attribute_read_in_name_order() {
        let read = item(&[("pk", "a"), ("status", "new"), ("b", "x")]);
        let e = Condition::Holds {
            key_attribute: "pk".into(),
            item: read,
            absent: vec!["paidAt".into()],
        }
        .expression();
        assert_eq!(
            e.text,
            "attribute_exists(#n0) AND #n1 = :v0 AND #n2 = :v1 AND #n3 = :v2 AND attribute_not_exists(#n4)"
        );
        assert_eq!(e.names["#n4"], "paidAt");
        assert_eq!(e.names["#n1"], "b");
        assert_eq!(e.names["#n3"], "status");
        assert_eq!(e.values[":v2"], V::S("new".into()));
        assert_eq!(e.operators, 9);
    }

    #[test]
    fn a_version_condition_names_only_the_version_and_the_key() {
        let e = Condition::Version {
            key_attribute: "pk".into(),
            attribute: "version".into(),
            value: None,
        }
        .expression();
        assert_eq!(
            e.text,
            "attribute_exists(#n0) AND attribute_not_exists(#n1)"
        );
        let e = Condition::Version {
            key_attribute: "pk".into(),
            attribute: "version".into(),
            value: Some(V::N("7".into())),
        }
        .expression();
        assert_eq!(e.text, "attribute_exists(#n0) AND #n1 = :v0");
    }

    #[test]
    fn an_item_of_more_than_149_attributes_is_too_large_for_a_condition() {
        let holds = |n: usize| Condition::Holds {
            key_attribute: "pk".into(),
            item: (0..n)
                .map(|i| (format!("a{i}"), V::N(i.to_string())))
                .collect(),
            absent: Vec::new(),
        };
        // attribute_exists, then per attribute an = and an AND: 1 + 2n operators.
        assert!(holds(149).expression().fits());
        assert!(!holds(150).expression().fits());
        let long_names = Condition::Holds {
            key_attribute: "pk".into(),
            item: (0..100)
                .map(|i| (format!("a{i}"), V::N(i.to_string())))
                .collect(),
            absent: Vec::new(),
        };
        // 100 clauses of `#nXX = :vXX AND ` stay under 4 KB; the text counts, not the names.
        assert!(long_names.expression().text.len() < MAX_CONDITION_BYTES);
    }
}
