//! Reading a DynamoDB stream shard by shard: the [`StreamSource`] port and what it speaks in.
//! Adapters: `aws::streams::DynamoDbStreams`; in tests, the test kit's `InMemoryStream`.

use std::future::Future;

use thiserror::Error;

use crate::ports::failure::{BoxError, FailureKind};
use crate::record::{Expectation, MalformedRecord};

/// One shard of a stream, as DescribeStream lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    /// Set once the shard is closed (split or stream disabled).
    pub ending_sequence_number: Option<String>,
}

impl ShardInfo {
    /// The children of `parent` among `shards`: a listing asked for children may hold others (a
    /// service that ignores the filter), so this is the one test of lineage.
    pub fn children_of(
        shards: impl IntoIterator<Item = ShardInfo>,
        parent: &str,
    ) -> Vec<ShardInfo> {
        shards
            .into_iter()
            .filter(|s| s.parent_shard_id.as_deref() == Some(parent))
            .collect()
    }
}

/// One shard of one stream, as the read calls name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRef<'a> {
    pub stream_arn: &'a str,
    pub shard_id: &'a str,
}

/// One page of a stream's shard listing.
#[derive(Debug, Clone, Default)]
pub struct ShardPage {
    pub shards: Vec<ShardInfo>,
    pub last_evaluated_shard_id: Option<String>,
}

/// Where to start reading a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    TrimHorizon,
    Latest,
    AfterSequenceNumber(String),
}

/// A record read from a shard: the engine's record, or why it cannot be one.
pub type PolledRecord = Result<Expectation, MalformedRecord>;

/// One GetRecords page.
#[derive(Debug, Default)]
pub struct RecordsPage {
    pub records: Vec<PolledRecord>,
    /// `None` once the shard is closed and read to its end.
    pub next_iterator: Option<String>,
}

#[derive(Debug, Error)]
pub enum StreamError {
    #[error("shard iterator expired")]
    ExpiredIterator,
    #[error("stream data was trimmed (older than 24 hours) before it was read")]
    TrimmedData,
    #[error("stream reads throttled or the service failed ({code})")]
    Throttled { code: String },
    #[error("stream {stream_arn} not found (disabled or deleted?)")]
    NotFound { stream_arn: String },
    /// Any other failed call, classified by the adapter that made it.
    #[error("{operation} failed")]
    Service {
        operation: &'static str,
        kind: FailureKind,
        #[source]
        source: BoxError,
    },
    /// The call's task ended without an answer (it panicked).
    #[error("{operation} ended without an answer")]
    Task {
        operation: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Reads a DynamoDB stream.
pub trait StreamSource: Send + Sync {
    /// One DescribeStream page (after `exclusive_start_shard_id`).
    fn list_shards(
        &self,
        stream_arn: &str,
        exclusive_start_shard_id: Option<String>,
    ) -> impl Future<Output = Result<ShardPage, StreamError>> + Send;

    /// The children of a shard (DescribeStream with the CHILD_SHARDS filter).
    fn child_shards(
        &self,
        shard: ShardRef<'_>,
    ) -> impl Future<Output = Result<Vec<ShardInfo>, StreamError>> + Send;

    fn shard_iterator(
        &self,
        shard: ShardRef<'_>,
        start: &StartAt,
    ) -> impl Future<Output = Result<Option<String>, StreamError>> + Send;

    fn get_records(
        &self,
        stream_arn: &str,
        iterator: &str,
        limit: i32,
    ) -> impl Future<Output = Result<RecordsPage, StreamError>> + Send;
}

/// A shared stream reads like the stream itself (tests keep a handle to their in-memory stream).
impl<T: StreamSource> StreamSource for std::sync::Arc<T> {
    fn list_shards(
        &self,
        stream_arn: &str,
        exclusive_start_shard_id: Option<String>,
    ) -> impl Future<Output = Result<ShardPage, StreamError>> + Send {
        self.as_ref()
            .list_shards(stream_arn, exclusive_start_shard_id)
    }

    fn child_shards(
        &self,
        shard: ShardRef<'_>,
    ) -> impl Future<Output = Result<Vec<ShardInfo>, StreamError>> + Send {
        self.as_ref().child_shards(shard)
    }

    fn shard_iterator(
        &self,
        shard: ShardRef<'_>,
        start: &StartAt,
    ) -> impl Future<Output = Result<Option<String>, StreamError>> + Send {
        self.as_ref().shard_iterator(shard, start)
    }

    fn get_records(
        &self,
        stream_arn: &str,
        iterator: &str,
        limit: i32,
    ) -> impl Future<Output = Result<RecordsPage, StreamError>> + Send {
        self.as_ref().get_records(stream_arn, iterator, limit)
    }
}
