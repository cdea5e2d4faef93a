//! Checkpoints and leases of the shard poller: the [`CheckpointStore`] port. Adapters:
//! `aws::checkpoints::DynamoDbCheckpoints` (a table, schema below); in tests, the test kit's
//! `InMemoryCheckpoints`.
//!
//! Table schema (one item per stream and shard):
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `streamArn` | S, partition key | the stream |
//! | `shardId` | S, sort key | the shard |
//! | `sequenceNumber` | S | last record whose verdict is final (reading resumes after it) |
//! | `shardEnd` | BOOL | the shard is closed and every record of it has a final verdict |
//! | `startedAt` | N | under `LATEST`, the stream's start (epoch milliseconds) the shard was first read from: records created before it are skipped; its children inherit it |
//! | `leaseOwner` | S | the invocation reading the shard now |
//! | `leaseExpiresAt` | N | epoch milliseconds; after it another invocation may take the shard |
//! | `updatedAt` | N | epoch milliseconds of the last write |
//!
//! And one item per stream, shard id `#stream` (no shard id begins with `#`): `startedAt` (N, epoch
//! milliseconds at which the poller's first run on the stream began) and `rootShards` (L of S, the
//! shards that run listed whose parent was already gone), written once ([`StreamStart`]).
//!
//! Every write is conditional, so two overlapping invocations never read the same shard, and a crashed
//! invocation's lease simply expires.

use std::collections::HashMap;
use std::future::Future;

use thiserror::Error;

/// Progress through one shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Last sequence number whose verdict is final.
    pub sequence_number: Option<String>,
    /// Closed, and read to its end.
    pub shard_end: bool,
    /// Under `STARTING_POSITION=LATEST`, the stream's start ([`StreamStart`]) as the shard (or its
    /// parent, for a child) was first read with: records created before it are skipped.
    pub started_at_ms: Option<u64>,
}

/// When the poller began reading a stream, recorded once, by its first run (the item `#stream` of
/// the stream's partition): later runs keep it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStart {
    /// Epoch milliseconds at which that run began, before it read any shard: with
    /// `STARTING_POSITION=LATEST`, what was created before it is not verified.
    pub started_at_ms: u64,
    /// The shards that run listed whose parent was already gone: their parents are older than the
    /// poller, not a lineage it left unread.
    pub root_shards: Vec<String>,
}

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("lease on shard {shard_id} was lost to another reader")]
    LeaseLost { shard_id: String },
    #[error("baseline run {run_id} was started with {stored} segments, not {asked}: resume it with --segments {stored}, or start a new run id")]
    SegmentsDiffer {
        run_id: String,
        stored: u32,
        asked: u32,
    },
    #[error("checkpoint item {key} is not readable: {reason}")]
    Unreadable { key: String, reason: String },
    #[error("{operation} on checkpoint table {table} failed")]
    Dynamo {
        operation: &'static str,
        table: String,
        #[source]
        source: Box<aws_sdk_dynamodb::Error>,
    },
}

/// One reader's lease on one shard of a stream, with its term for taking or extending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease<'a> {
    pub stream_arn: &'a str,
    pub shard_id: &'a str,
    /// The reader holding it (one poller run).
    pub owner: &'a str,
    /// Epoch milliseconds of the request: a lease that expired before it may be taken.
    pub now_ms: u64,
    /// Epoch milliseconds until which the lease holds once taken or extended.
    pub until_ms: u64,
}

impl<'a> Lease<'a> {
    /// A lease without a term yet (enough to give it up).
    pub fn new(stream_arn: &'a str, shard_id: &'a str, owner: &'a str) -> Lease<'a> {
        Lease {
            stream_arn,
            shard_id,
            owner,
            now_ms: 0,
            until_ms: 0,
        }
    }

    /// The same lease, asked at `now_ms` to hold until `until_ms`.
    pub fn term(self, now_ms: u64, until_ms: u64) -> Lease<'a> {
        Lease {
            now_ms,
            until_ms,
            ..self
        }
    }
}

/// Stores checkpoints and leases.
pub trait CheckpointStore: Send + Sync {
    /// Every checkpoint of a stream, by shard id.
    fn load_all(
        &self,
        stream_arn: &str,
    ) -> impl Future<Output = Result<HashMap<String, Checkpoint>, CheckpointError>> + Send;

    /// Records `start` as the stream's start unless one is recorded (a conditional write); returns
    /// the recorded start, and whether it is `start` (recorded by this call).
    fn start_stream(
        &self,
        stream_arn: &str,
        start: &StreamStart,
    ) -> impl Future<Output = Result<(StreamStart, bool), CheckpointError>> + Send;

    /// Takes the shard's lease for its term if it is free, expired or already ours, and returns
    /// the shard's checkpoint; `None` when another reader holds it.
    fn acquire(
        &self,
        lease: &Lease<'_>,
    ) -> impl Future<Output = Result<Option<Checkpoint>, CheckpointError>> + Send;

    /// Records progress and extends the lease to its term, only while its owner holds it.
    fn save(
        &self,
        lease: &Lease<'_>,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send;

    /// Gives the lease up (best effort; an unreleased lease expires).
    fn release(
        &self,
        lease: &Lease<'_>,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send;
}

/// A shared store stores like the store itself (tests keep a handle to their in-memory store).
impl<T: CheckpointStore> CheckpointStore for std::sync::Arc<T> {
    fn load_all(
        &self,
        stream_arn: &str,
    ) -> impl Future<Output = Result<HashMap<String, Checkpoint>, CheckpointError>> + Send {
        self.as_ref().load_all(stream_arn)
    }

    fn start_stream(
        &self,
        stream_arn: &str,
        start: &StreamStart,
    ) -> impl Future<Output = Result<(StreamStart, bool), CheckpointError>> + Send {
        self.as_ref().start_stream(stream_arn, start)
    }

    fn acquire(
        &self,
        lease: &Lease<'_>,
    ) -> impl Future<Output = Result<Option<Checkpoint>, CheckpointError>> + Send {
        self.as_ref().acquire(lease)
    }

    fn save(
        &self,
        lease: &Lease<'_>,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send {
        self.as_ref().save(lease, checkpoint)
    }

    fn release(
        &self,
        lease: &Lease<'_>,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send {
        self.as_ref().release(lease)
    }
}

/// Which way a baseline segment reads: the source's items against the other side, or the other
/// side's keys against the source (items only there). The two run side by side, so both tables
/// are read all along.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Source,
    Target,
}

impl Direction {
    /// The prefix of its attributes in the checkpoint item.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Source => "source",
            Direction::Target => "target",
        }
    }
}

/// One direction of a baseline segment: saved after every page whose verdicts are all final, so a
/// resumed run verifies at most that page again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cursor {
    /// Where its scan goes on (`LastEvaluatedKey` of the last page verified).
    pub start_key: Option<crate::record::Item>,
    /// Its scan is read to the end and every item judged.
    pub done: bool,
    pub counts: crate::report::metrics::BaselineCounts,
}

/// One baseline segment's progress: both directions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentProgress {
    pub source: Cursor,
    pub target: Cursor,
}

impl SegmentProgress {
    pub fn cursor(&self, direction: Direction) -> &Cursor {
        match direction {
            Direction::Source => &self.source,
            Direction::Target => &self.target,
        }
    }

    pub fn done(&self) -> bool {
        self.source.done && self.target.done
    }

    pub fn counts(&self) -> crate::report::metrics::BaselineCounts {
        let mut counts = self.source.counts;
        counts += self.target.counts;
        counts
    }
}

/// A baseline run as recorded: readiness needs when it started and whether it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: String,
    pub total_segments: u32,
    pub started_at_ms: u64,
    /// Set once every segment is done.
    pub finished_at_ms: Option<u64>,
}

/// Stores baseline runs and their segments' progress (in the checkpoint table: partition
/// `baseline#<run id>`, sort `run` and `segment#<n>`).
pub trait BaselineStore: Send + Sync {
    /// Records the run's start, once: a resumed run keeps its first start. Fails when the run
    /// exists with another number of segments (its segments would not line up).
    fn start_run(
        &self,
        run_id: &str,
        total_segments: u32,
        now_ms: u64,
    ) -> impl Future<Output = Result<RunRecord, CheckpointError>> + Send;

    /// One segment's progress, if any was saved.
    fn load_segment(
        &self,
        run_id: &str,
        segment: u32,
    ) -> impl Future<Output = Result<Option<SegmentProgress>, CheckpointError>> + Send;

    /// Every segment's progress saved so far, by segment number.
    fn load_segments(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<HashMap<u32, SegmentProgress>, CheckpointError>> + Send;

    /// Saves one direction of a segment, leaving the other as it is (they are saved concurrently).
    fn save_cursor(
        &self,
        run_id: &str,
        segment: u32,
        direction: Direction,
        cursor: &Cursor,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send;

    /// Records the run as finished (every segment done).
    fn finish_run(
        &self,
        run_id: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<RunRecord, CheckpointError>> + Send;
}
