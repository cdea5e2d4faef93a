//! Reading a whole table page by page: the [`TableScanner`] port (one page of a parallel Scan, and
//! the table's key schema) for the baseline compare. Adapter: `aws::scanner::DynamoDbScanner`.

use std::future::Future;

use thiserror::Error;

use crate::ports::failure::{BoxError, CallFailure};
use crate::record::{Image, Item};

/// One page of one segment of a parallel scan.
#[derive(Debug, Clone)]
pub struct ScanRequest<'a> {
    pub table: &'a str,
    pub segment: u32,
    pub total_segments: u32,
    /// Where the previous page ended (`LastEvaluatedKey`); `None` for the segment's first page.
    pub start_key: Option<Item>,
    /// Only these attributes (the key, for the second direction); `None`: whole items.
    pub attributes: Option<&'a [String]>,
    /// At most this many items; `None`: a page of up to 1 MB.
    pub limit: Option<u32>,
}

/// What one Scan call returned.
#[derive(Debug, Default)]
pub struct ScanPage {
    /// As SDK items or as tapes.
    pub items: Vec<Image>,
    /// `None` once the segment is read to its end.
    pub last_evaluated_key: Option<Item>,
    /// Read capacity units the call consumed (`ReturnConsumedCapacity`), for the rate limit.
    pub consumed_read_units: f64,
}

/// What a scan needs to know of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    /// The key attributes: the partition key first, then the sort key if any.
    pub key_names: Vec<String>,
    /// Each key attribute's type (`S`, `N` or `B`), in `key_names`' order.
    pub key_types: Vec<String>,
    /// DynamoDB's estimate (updated about every six hours), for the time left.
    pub item_count: Option<u64>,
}

#[derive(Debug, Error)]
pub enum ScanError {
    /// The call failed, classified by the adapter that made it.
    #[error(transparent)]
    Service(CallFailure),
    #[error("{operation} request for table {table} could not be built")]
    Request {
        operation: &'static str,
        table: String,
        #[source]
        source: BoxError,
    },
    #[error("table {table} has no key schema in DescribeTable's answer")]
    NoKeySchema { table: String },
}

impl TableShape {
    /// The key schema as text: `customerId (S), orderId (N)`, the partition key first.
    pub fn key_schema(&self) -> String {
        let described: Vec<String> = self
            .key_names
            .iter()
            .zip(&self.key_types)
            .map(|(name, kind)| format!("{name} ({kind})"))
            .collect();
        described.join(", ")
    }

    /// Both tables have the same key attributes, of the same types, in the same roles.
    pub fn same_keys_as(&self, other: &TableShape) -> bool {
        self.key_names == other.key_names && self.key_types == other.key_types
    }
}

impl ScanError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ScanError::Service(f) if f.is_transient())
    }
}

/// Scans one account's tables.
pub trait TableScanner: Send + Sync {
    /// One Scan call: a page of one segment.
    fn scan(
        &self,
        request: ScanRequest<'_>,
    ) -> impl Future<Output = Result<ScanPage, ScanError>> + Send;

    /// The table's key attributes and item count (DescribeTable).
    fn describe(&self, table: &str) -> impl Future<Output = Result<TableShape, ScanError>> + Send;
}
