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
//! shards that run listed whose parent was already gone), written once ([`StreamStart`]); and
//! `unrecordedAt` (N), the last time a run verified records without a findings table, until a run
//! with one records that as a gap.
//!
//! Every write is conditional, so two overlapping invocations never read the same shard, and a crashed
//! invocation's lease simply expires.

use std::collections::HashMap;
use std::future::Future;

use crate::ports::failure::CallFailure;
use serde_json::Value;
use std::ops::AddAssign;
use thiserror::Error;

/// The checkpoint table's layout (as `template.yaml` creates it): partition key `streamArn` (S),
/// sort key `shardId` (S), no index, no TTL, point-in-time recovery. The baseline's items (run and
/// segment records) use the same two keys. `aws::checkpoints::create_checkpoint_table`,
/// `ddb-verify init` and `ddb-verify preflight` go by it.
pub const CHECKPOINT_LAYOUT: crate::ports::layout::Layout = crate::ports::layout::Layout {
    what: "checkpoint table",
    variable: "CHECKPOINT_TABLE",
    partition: ("streamArn", "S"),
    sort: Some(("shardId", "S")),
    indexes: &[],
    ttl_attribute: None,
    point_in_time_recovery: true,
};

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
    /// The last time a run verified records without a findings store (`FINDINGS_TABLE` unset):
    /// their problems and coverage were never recorded. Kept until a run with a findings store
    /// has written it down as a gap ([`CheckpointStore::clear_unrecorded`]).
    pub unrecorded_at_ms: Option<u64>,
}

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("lease on shard {shard_id} was lost to another reader")]
    LeaseLost { shard_id: String },
    #[error("baseline run {run_id} compares something else: {}; resume it with the run's own settings, or start a new run id", Differences(differences))]
    RunDiffers {
        run_id: String,
        differences: Vec<Difference>,
    },
    /// Recorded before runs kept what they compare: resuming it could count its segments for
    /// another table, so it is refused.
    #[error("baseline run {run_id} was recorded by an older version, without the tables and settings it compares, so resuming it cannot be checked: start a new run id")]
    RunUnrecorded { run_id: String },
    #[error("checkpoint item {key} is not readable: {reason}")]
    Unreadable { key: String, reason: String },
    /// The call failed, classified by the adapter that made it.
    #[error(transparent)]
    Service(CallFailure),
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

    /// Notes that a run verified records at `at_ms` without recording them (no findings store);
    /// the time only moves forward.
    fn mark_unrecorded(
        &self,
        stream_arn: &str,
        at_ms: u64,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send;

    /// Forgets the mark read as `seen_ms`, once it is recorded as a gap; a newer mark stays.
    fn clear_unrecorded(
        &self,
        stream_arn: &str,
        seen_ms: u64,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send;

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

    fn mark_unrecorded(
        &self,
        stream_arn: &str,
        at_ms: u64,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send {
        self.as_ref().mark_unrecorded(stream_arn, at_ms)
    }

    fn clear_unrecorded(
        &self,
        stream_arn: &str,
        seen_ms: u64,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send {
        self.as_ref().clear_unrecorded(stream_arn, seen_ms)
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
pub struct DirectionProgress {
    /// Where its scan goes on (`LastEvaluatedKey` of the last page verified).
    pub start_key: Option<crate::record::Item>,
    /// Its scan is read to the end and every item judged.
    pub done: bool,
    pub counts: crate::ports::checkpoint::BaselineCounts,
}

/// One baseline segment's progress: both directions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentProgress {
    pub source: DirectionProgress,
    pub target: DirectionProgress,
}

impl SegmentProgress {
    pub fn cursor(&self, direction: Direction) -> &DirectionProgress {
        match direction {
            Direction::Source => &self.source,
            Direction::Target => &self.target,
        }
    }

    pub fn cursor_mut(&mut self, direction: Direction) -> &mut DirectionProgress {
        match direction {
            Direction::Source => &mut self.source,
            Direction::Target => &mut self.target,
        }
    }

    pub fn done(&self) -> bool {
        self.source.done && self.target.done
    }

    pub fn counts(&self) -> crate::ports::checkpoint::BaselineCounts {
        let mut counts = self.source.counts;
        counts += self.target.counts;
        counts
    }
}

/// A baseline run as recorded: what it compares, when it started and whether it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: String,
    pub settings: RunSettings,
    pub started_at_ms: u64,
    /// Set once every segment is done.
    pub finished_at_ms: Option<u64>,
}

/// What a baseline run compares, recorded at its start: its segments are only worth something
/// for these tables and settings, so a resume with anything else is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    /// The source table with its account and region, as `config::TableSide` tells it.
    pub source: String,
    /// The other side's table with its account and region.
    pub other_side: String,
    /// `IGNORE_ATTRIBUTES`, sorted and without repeats (their order means nothing).
    pub ignore_attributes: Vec<String>,
    pub total_segments: u32,
    /// `FINDINGS_TABLE`: where its problems and coverage are recorded; `None`: not recorded
    /// (the run does not count for readiness).
    pub findings_table: Option<String>,
}

impl RunSettings {
    /// Every difference of `asked` from these (recorded) settings, each naming its setting.
    pub fn differences(&self, asked: &RunSettings) -> Vec<Difference> {
        let list = |l: &[String]| match l.is_empty() {
            true => "(none)".to_string(),
            false => l.join(","),
        };
        let findings = |f: &Option<String>| f.clone().unwrap_or_else(|| "(unset)".into());
        let candidates = [
            (
                "SOURCE_TABLE_NAME (the source table)",
                self.source.clone(),
                asked.source.clone(),
            ),
            (
                "the other side (VERIFY_TABLE_NAME, VERIFY_PROFILE, VERIFY_ROLE_ARN, VERIFY_REGION)",
                self.other_side.clone(),
                asked.other_side.clone(),
            ),
            (
                "IGNORE_ATTRIBUTES",
                list(&self.ignore_attributes),
                list(&asked.ignore_attributes),
            ),
            (
                "segments (--segments, total_segments)",
                self.total_segments.to_string(),
                asked.total_segments.to_string(),
            ),
            (
                "FINDINGS_TABLE",
                findings(&self.findings_table),
                findings(&asked.findings_table),
            ),
        ];
        candidates
            .into_iter()
            .filter(|(_, recorded, now)| recorded != now)
            .map(|(setting, recorded, now)| Difference {
                setting,
                recorded,
                now,
            })
            .collect()
    }

    /// Refuses a resume of `run_id` (recorded with these settings) asked with others.
    pub fn resumed_as(&self, run_id: &str, asked: &RunSettings) -> Result<(), CheckpointError> {
        let differences = self.differences(asked);
        if differences.is_empty() {
            return Ok(());
        }
        Err(CheckpointError::RunDiffers {
            run_id: run_id.to_string(),
            differences,
        })
    }
}

/// One setting a resume asks differently from its run's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub setting: &'static str,
    pub recorded: String,
    pub now: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} was {} and is now {}",
            self.setting, self.recorded, self.now
        )
    }
}

/// Differences joined for an error message.
struct Differences<'a>(&'a [Difference]);

impl std::fmt::Display for Differences<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, difference) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{difference}")?;
        }
        Ok(())
    }
}

/// Stores baseline runs and their segments' progress (in the checkpoint table: partition
/// `baseline#<run id>`, sort `run` and `segment#<n>`).
pub trait BaselineStore: Send + Sync {
    /// Records the run's start and settings, once: a resumed run keeps its first start. Fails
    /// when the run exists with other settings ([`CheckpointError::RunDiffers`]: its segments
    /// were verified for something else) or without any ([`CheckpointError::RunUnrecorded`]).
    fn start_run(
        &self,
        run_id: &str,
        settings: &RunSettings,
        now_ms: u64,
    ) -> impl Future<Output = Result<RunRecord, CheckpointError>> + Send;

    /// The run as recorded, if it was started (readiness names the tables it compared).
    fn load_run(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<RunRecord>, CheckpointError>> + Send;

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

    /// Saves a segment's progress, both scans in one write: a run killed between two saves
    /// resumes both scans from one moment, so that each item is counted once.
    fn save_segment(
        &self,
        run_id: &str,
        segment: u32,
        progress: &SegmentProgress,
    ) -> impl Future<Output = Result<(), CheckpointError>> + Send;

    /// Records the run as finished (every segment done).
    fn finish_run(
        &self,
        run_id: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<RunRecord, CheckpointError>> + Send;
}

/// What a baseline compare counted: items scanned on each side and their verdicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BaselineCounts {
    pub items_source: u64,
    pub items_target: u64,
    pub matched: u64,
    pub missing: u64,
    pub mismatched: u64,
    pub extra: u64,
    pub superseded: u64,
    pub unverifiable: u64,
    /// Differences explained by TTL, either direction: not problems.
    pub expired: u64,
    /// Items the scans alone could not settle (they differed, or one scan did not read the key),
    /// checked by point reads of both sides.
    pub point_reads: u64,
}

impl BaselineCounts {
    /// The verdict counters by the names docs/verdicts.md and the JSON output use, in that order.
    pub fn verdicts(&self) -> [(&'static str, u64); 7] {
        [
            ("MATCH", self.matched),
            ("MISSING", self.missing),
            ("MISMATCH", self.mismatched),
            ("EXTRA", self.extra),
            ("SUPERSEDED", self.superseded),
            ("UNVERIFIABLE", self.unverifiable),
            ("EXPIRED", self.expired),
        ]
    }

    /// Verdicts that say the tables differ (or could not be shown equal).
    pub fn problems(&self) -> u64 {
        self.missing + self.mismatched + self.extra + self.unverifiable
    }

    /// `{"items_scanned": {...}, "verdicts": {...}}`, as the CLI and the Lambda function answer.
    pub fn to_json(&self) -> serde_json::Map<String, Value> {
        let verdicts: serde_json::Map<String, Value> = self
            .verdicts()
            .into_iter()
            .map(|(name, n)| (name.to_string(), Value::from(n)))
            .collect();
        let mut out = serde_json::Map::new();
        out.insert(
            "items_scanned".into(),
            serde_json::json!({"source": self.items_source, "target": self.items_target}),
        );
        out.insert("verdicts".into(), Value::Object(verdicts));
        out.insert("point_reads".into(), self.point_reads.into());
        out
    }
}

impl AddAssign for BaselineCounts {
    fn add_assign(&mut self, part: BaselineCounts) {
        self.items_source += part.items_source;
        self.items_target += part.items_target;
        self.matched += part.matched;
        self.missing += part.missing;
        self.mismatched += part.mismatched;
        self.extra += part.extra;
        self.superseded += part.superseded;
        self.unverifiable += part.unverifiable;
        self.expired += part.expired;
        self.point_reads += part.point_reads;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> RunSettings {
        RunSettings {
            source: "Orders (this account, us-east-1)".into(),
            other_side: "Orders (account 2, us-east-1)".into(),
            ignore_attributes: vec!["syncedAt".into()],
            total_segments: 8,
            findings_table: Some("Findings".into()),
        }
    }

    #[test]
    fn a_resume_with_the_same_settings_is_taken_and_every_difference_is_named() {
        let recorded = settings();
        assert!(recorded.resumed_as("R", &settings()).is_ok());
        let asked = RunSettings {
            source: "Catalog (this account, us-east-1)".into(),
            other_side: "Catalog (account 2, us-east-1)".into(),
            ignore_attributes: Vec::new(),
            total_segments: 4,
            findings_table: None,
        };
        let err = recorded.resumed_as("R", &asked).unwrap_err().to_string();
        for named in [
            "baseline run R compares something else",
            "SOURCE_TABLE_NAME (the source table) was Orders (this account, us-east-1) and is now Catalog (this account, us-east-1)",
            "VERIFY_TABLE_NAME",
            "IGNORE_ATTRIBUTES was syncedAt and is now (none)",
            "segments (--segments, total_segments) was 8 and is now 4",
            "FINDINGS_TABLE was Findings and is now (unset)",
            "start a new run id",
        ] {
            assert!(err.contains(named), "{named}: {err}");
        }
    }
}
