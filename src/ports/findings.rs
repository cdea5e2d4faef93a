//! The findings store: every problem kept until it clears, and what has been verified (coverage),
//! behind the [`FindingsStore`] port. Adapter: `aws::findings::DynamoDbFindings`.
//!
//! One table (`FINDINGS_TABLE`, in the verifier's account), partition key `id` (S) only, and one
//! sparse global secondary index, `byStatus` (partition `statusTable` S, sort `nextCheck` N, all
//! attributes), which holds open and accepted findings and coverage items, never resolved ones.
//!
//! **Findings**: one item per verified table and key, `id = finding#<table>#<canonical key>`.
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `tableName` | S | the verified (source) table |
//! | `key` | M | the item's key attributes, as DynamoDB holds them |
//! | `keyText` | S | the key as `findings` shows it (`customerId=S:"c#1", orderId=N:7`, `record::key_text`); older versions wrote `customerId="c#1" orderId=7`; never read back (the text is printed from `key`) |
//! | `verdict` | S | MISSING, MISMATCH, DELETE_NOT_APPLIED, EXTRA or UNVERIFIABLE (the latest) |
//! | `proof` | S | what proved it (`source_as_recorded`, ...); absent for UNVERIFIABLE |
//! | `detail` | S | the proof or the reason in words, the diff's summary (names, no values) |
//! | `attributes` | L of S | the diff's attribute paths |
//! | `itemValues` | S | expected and found values, only with `LOG_ITEM_VALUES=true` |
//! | `origin` | S | who saw it last: `stream`, `poller`, `baseline` or `revalidation` |
//! | `firstSeen`, `lastSeen` | N | epoch milliseconds |
//! | `timesSeen` | N | occurrences recorded (a re-delivered record counts once) |
//! | `occurrence` | S | the last occurrence: a stream record's sequence number, `baseline:<run id>` or `revalidation:<ms>`; a write repeating it changes nothing |
//! | `sequenceNumber` | S | the stream record's, when it came from a stream |
//! | `baselineRun` | S | the baseline run's id, when it came from a baseline |
//! | `status` | S | `OPEN`, `RESOLVED` or `ACCEPTED` |
//! | `reason` | S | why it was accepted |
//! | `resolvedAt` | N | epoch milliseconds; `resolvedBy` (S): the origin of the MATCH that cleared it |
//! | `expiresAt` | N | epoch seconds, DynamoDB's Time to Live: resolved findings are deleted after [`RESOLVED_KEPT`] |
//! | `checks` | N | revalidations so far that still found the problem |
//! | `unsettled` | BOOL | the key kept changing through revalidations: not re-checked on schedule |
//! | `repairedAt` | N | epoch milliseconds of the last `ddb-verify repair --apply` of the key; `repairedBy` (S): who ran it; `repairAction` (S): `put`, `delete` or `none`; `repairOutcome` (S): what came of it ([`RepairRecord`]); `repairs` (N): how many |
//! | `statusTable` | S | index partition: `OPEN#<table>` or `ACCEPTED#<table>`; removed when resolved |
//! | `nextCheck` | N | index sort: epoch milliseconds when revalidation is due |
//!
//! **Coverage**: the ledger of what each verifier has verified, `id = coverage#<table>#<source>#<name>`
//! (a stream verifier function's also `#<stream ARN>`: one entry per stream it reads), in the index
//! under `COVERAGE#<table>`. Readiness links the entries of the table's current stream into one
//! chain (see `readiness`).
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `source` | S | `stream` (a stream verifier function), `poller` (a stream) or `baseline` (a run) |
//! | `name` | S | the function's name, the stream's ARN, or the run's id |
//! | `streamArn` | S | stream and poller: the stream this entry covers |
//! | `startedAt` | N | stream and poller: creation time of the first change verified; baseline: the run's start |
//! | `verifiedUntil` | N | stream and poller: every change created before it has a verdict (the newest such, never moved back); baseline: the run's end |
//! | `lastRetryAt` | N | the last time a record was handed back to be delivered or read again |
//! | `sampleRate` | N | stream and poller: the `SAMPLE_RATE` of the last write |
//! | `gap<Cause>At` | N | the last time changes may have gone unverified for that cause ([`GapCause`]): never moved back, never cleared |
//! | `gap<Cause>Count`, `gap<Cause>Detail` | N, S | how many times, and what the last one was |
//! | `complete` | BOOL | baseline: every segment done |
//! | `checkedAt` | N | the last write |
//!
//! **Freeze**: the cut-over's freeze recorded by `ddb-verify freeze`, `id = freeze#<table>`, in no
//! index: `writesStoppedAt` (N, epoch ms), `recordedAt` (N), `recordedBy` (S), `validUntil` (N).
//! Readiness, the CLI's and the revalidator's, assesses against it while it is there, and says
//! NO-GO once it has ended ([`RecordedFreeze`]).

use std::future::Future;

use thiserror::Error;

use crate::ports::failure::CallFailure;
use crate::record::Item;

/// The findings table's layout (as `template.yaml` creates it): partition key `id` (S), the sparse
/// index `byStatus` (`statusTable` S, `nextCheck` N, all attributes), TTL on `expiresAt`,
/// point-in-time recovery. `aws::findings::create_findings_table`, `ddb-verify init` and
/// `ddb-verify preflight` go by it.
pub const FINDINGS_LAYOUT: crate::ports::layout::Layout = crate::ports::layout::Layout {
    what: "findings table",
    variable: "FINDINGS_TABLE",
    partition: ("id", "S"),
    sort: None,
    indexes: &[crate::ports::layout::LayoutIndex {
        name: "byStatus",
        partition: ("statusTable", "S"),
        sort: Some(("nextCheck", "N")),
    }],
    ttl_attribute: Some("expiresAt"),
    point_in_time_recovery: true,
};

/// How long a resolved finding stays before DynamoDB's Time to Live deletes it.
pub const RESOLVED_KEPT: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Error)]
pub enum FindingsError {
    #[error("findings item {id} is not readable: {reason}")]
    Unreadable { id: String, reason: String },
    /// The service refused the request as it is (a ValidationException): asking again cannot help.
    #[error("{operation} on findings table {table} was refused: {message}")]
    Rejected {
        operation: &'static str,
        table: String,
        message: String,
    },
    /// The call failed, classified by the adapter that made it (a refusal is [`Self::Rejected`]).
    #[error(transparent)]
    Service(CallFailure),
}

impl FindingsError {
    /// Refused as it is: retrying the same write cannot succeed.
    pub fn is_rejected(&self) -> bool {
        matches!(self, FindingsError::Rejected { .. })
    }

    /// Throttling, 5xx, time-outs: worth trying again.
    pub fn is_transient(&self) -> bool {
        matches!(self, FindingsError::Service(f) if f.is_transient())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingStatus {
    Open,
    Resolved,
    Accepted,
}

impl FindingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Open => "OPEN",
            FindingStatus::Resolved => "RESOLVED",
            FindingStatus::Accepted => "ACCEPTED",
        }
    }

    pub fn parse(s: &str) -> Option<FindingStatus> {
        match s {
            "OPEN" => Some(FindingStatus::Open),
            "RESOLVED" => Some(FindingStatus::Resolved),
            "ACCEPTED" => Some(FindingStatus::Accepted),
            _ => None,
        }
    }
}

/// Which verifier saw a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingOrigin {
    Stream,
    Poller,
    Baseline,
    Revalidation,
}

impl FindingOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingOrigin::Stream => "stream",
            FindingOrigin::Poller => "poller",
            FindingOrigin::Baseline => "baseline",
            FindingOrigin::Revalidation => "revalidation",
        }
    }
}

/// A problem verdict as the store keeps it: names and paths, values only when allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub verdict: &'static str,
    pub proof: Option<&'static str>,
    pub detail: String,
    pub attributes: Vec<String>,
    /// Expected and found values (`LOG_ITEM_VALUES=true` only).
    pub values: Option<String>,
}

/// One problem seen once, to record.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemWrite<'a> {
    pub table: &'a str,
    pub key: &'a Item,
    pub problem: &'a Problem,
    pub origin: FindingOrigin,
    /// Identifies this sighting: a re-delivered record repeats it and changes nothing.
    pub occurrence: &'a str,
    pub sequence_number: Option<&'a str>,
    pub baseline_run: Option<&'a str>,
    pub now_ms: u64,
    /// When revalidation is first due.
    pub next_check_ms: u64,
}

/// A later check of an open finding by revalidation.
#[derive(Debug, Clone, PartialEq)]
pub struct Recheck<'a> {
    pub table: &'a str,
    pub key: &'a Item,
    /// What it found: the problem as it is now.
    pub problem: &'a Problem,
    pub now_ms: u64,
    pub next_check_ms: u64,
    /// The key kept changing: marked, and no longer due on schedule.
    pub unsettled: bool,
}

/// A key seen MATCHing: its open finding, if any, is resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution<'a> {
    pub table: &'a str,
    pub key: &'a Item,
    pub origin: FindingOrigin,
    /// When the MATCH was judged: a finding seen after it stays open.
    pub judged_at_ms: u64,
}

/// A repair of a finding's key, recorded on the finding (the audit trail of `ddb-verify repair`).
#[derive(Debug, Clone, PartialEq)]
pub struct RepairRecord<'a> {
    pub table: &'a str,
    pub key: &'a Item,
    /// Who ran it (`repairedBy`).
    pub by: &'a str,
    /// `put`, `delete` or `none`.
    pub action: &'a str,
    /// What came of it: `written`, `lost race`, or why nothing was written.
    pub outcome: &'a str,
    pub now_ms: u64,
}

/// The last repair of a finding's key, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairNote {
    pub at_ms: u64,
    pub by: String,
    pub action: String,
    pub outcome: String,
    pub count: u64,
}

/// A finding as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub table: String,
    pub key: Item,
    /// The key as `findings` shows it and `accept` reads it ([`crate::record::KeyText`]), cut to 1 KB.
    pub key_text: String,
    pub verdict: String,
    pub proof: Option<String>,
    pub detail: String,
    pub attributes: Vec<String>,
    pub values: Option<String>,
    pub origin: String,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    pub times_seen: u64,
    pub sequence_number: Option<String>,
    pub baseline_run: Option<String>,
    pub status: FindingStatus,
    pub reason: Option<String>,
    pub resolved_at_ms: Option<u64>,
    pub next_check_ms: Option<u64>,
    pub checks: u32,
    pub unsettled: bool,
    /// The last `ddb-verify repair` of the key, if any.
    pub repair: Option<RepairNote>,
}

/// Where a listing of findings goes on: the store's own position, opaque to its callers.
#[derive(Debug, Clone, PartialEq)]
pub struct ListCursor(pub Item);

/// Which page of findings to read ([`FindingsStore::list_page`]): a table's open or accepted
/// findings (those due by `due_by_ms` when given), at most `size` of them from `after` (the start
/// when `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest<'a> {
    pub table: &'a str,
    pub status: FindingStatus,
    pub due_by_ms: Option<u64>,
    pub after: Option<ListCursor>,
    pub size: usize,
}

/// One page of findings, and where the next starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub findings: Vec<Finding>,
    pub next: Option<ListCursor>,
}

/// Which verifier a coverage item describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoverageSource {
    /// A stream verifier function (Lambda's event source mapping).
    Stream,
    /// The shard poller, for one stream.
    Poller,
    /// One baseline run.
    Baseline,
}

impl CoverageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageSource::Stream => "stream",
            CoverageSource::Poller => "poller",
            CoverageSource::Baseline => "baseline",
        }
    }

    pub fn parse(s: &str) -> Option<CoverageSource> {
        match s {
            "stream" => Some(CoverageSource::Stream),
            "poller" => Some(CoverageSource::Poller),
            "baseline" => Some(CoverageSource::Baseline),
            _ => None,
        }
    }
}

/// Why changes may have gone unverified: each is a gap in the verifier's coverage, recorded with
/// the time it was seen (never earlier than the changes it concerns), and never cleared: only a
/// baseline that begins after it proves what the changes left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GapCause {
    /// Only a sample of keys was verified (`SAMPLE_RATE` below 1).
    Sampled,
    /// The stream's start was taken at `LATEST`: what its shards held before was skipped.
    Latest,
    /// Stream records were trimmed (after 24 hours) before they were verified.
    Trimmed,
    /// A change's creation time could not be believed (ahead of the clock, or before streams
    /// existed): coverage did not move on it.
    BadCreationTime,
    /// A problem was found that the findings table refused to record (retrying cannot help): its
    /// key has no finding to show.
    ProblemNotRecorded,
    /// The poller verified records without a findings table (`FINDINGS_TABLE` unset) since its
    /// last recorded run: their problems and coverage were never recorded.
    Unrecorded,
    /// The stream verifier's event source mapping was created, enabled, disabled or updated (or
    /// could not be read): records before it may have been skipped. Not stored: readiness reads
    /// it from Lambda each time.
    MappingChanged,
}

impl GapCause {
    pub const ALL: [GapCause; 7] = [
        GapCause::Sampled,
        GapCause::Latest,
        GapCause::Trimmed,
        GapCause::BadCreationTime,
        GapCause::ProblemNotRecorded,
        GapCause::Unrecorded,
        GapCause::MappingChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GapCause::Sampled => "sampled",
            GapCause::Latest => "latest",
            GapCause::Trimmed => "trimmed",
            GapCause::BadCreationTime => "bad_creation_time",
            GapCause::ProblemNotRecorded => "problem_not_recorded",
            GapCause::Unrecorded => "unrecorded",
            GapCause::MappingChanged => "mapping_changed",
        }
    }

    /// The stored attributes' stem: `gap<Stem>At`, `gap<Stem>Count`, `gap<Stem>Detail`.
    pub fn attribute_stem(self) -> &'static str {
        match self {
            GapCause::Sampled => "Sampled",
            GapCause::Latest => "Latest",
            GapCause::Trimmed => "Trimmed",
            GapCause::BadCreationTime => "BadCreationTime",
            GapCause::ProblemNotRecorded => "ProblemNotRecorded",
            GapCause::Unrecorded => "Unrecorded",
            GapCause::MappingChanged => "MappingChanged",
        }
    }
}

/// A gap to record with a coverage write (at the write's `now_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapWrite {
    pub cause: GapCause,
    /// What happened, in words (no item values).
    pub detail: String,
}

/// A gap as stored: its cause's last time and count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub cause: GapCause,
    /// The last time it was seen: changes up to it may be unverified.
    pub at_ms: u64,
    pub count: u64,
    pub detail: String,
}

/// What one verifier adds to its coverage. Unset fields are left as stored; `started_at_ms` is
/// kept from the first write, `verified_until_ms` never moves back; gaps are added, never removed.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageWrite<'a> {
    pub table: &'a str,
    pub source: CoverageSource,
    pub name: &'a str,
    /// The stream read (stream and poller): its entry is its own.
    pub stream_arn: Option<&'a str>,
    pub started_at_ms: Option<u64>,
    pub verified_until_ms: Option<u64>,
    pub retry_at_ms: Option<u64>,
    pub complete: Option<bool>,
    /// The verifier's `SAMPLE_RATE`.
    pub sample_rate: Option<f64>,
    pub gaps: Vec<GapWrite>,
    pub now_ms: u64,
}

/// A coverage item as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub source: CoverageSource,
    pub name: String,
    /// `None`: a baseline, or coverage written before entries named their stream.
    pub stream_arn: Option<String>,
    pub started_at_ms: Option<u64>,
    pub verified_until_ms: Option<u64>,
    pub last_retry_at_ms: Option<u64>,
    pub complete: bool,
    pub checked_at_ms: u64,
    /// `None`: every key (a baseline, or coverage written before sample rates were recorded).
    pub sample_rate: Option<f64>,
    /// In [`GapCause`] order.
    pub gaps: Vec<Gap>,
}

/// Stores findings and coverage.
pub trait FindingsStore: Send + Sync {
    /// Records a problem: a new finding, or the key's finding seen again (an accepted one stays
    /// accepted, a resolved one opens again). Repeating the last occurrence changes nothing.
    fn record(
        &self,
        write: &ProblemWrite<'_>,
    ) -> impl Future<Output = Result<(), FindingsError>> + Send;

    /// Which of `keys` (of `table`) have an open finding, in order.
    fn open_among(
        &self,
        table: &str,
        keys: &[&Item],
    ) -> impl Future<Output = Result<Vec<bool>, FindingsError>> + Send;

    /// Resolves the key's finding if it is open and was last seen no later than the MATCH was
    /// judged; whether it did.
    fn resolve(
        &self,
        resolution: &Resolution<'_>,
    ) -> impl Future<Output = Result<bool, FindingsError>> + Send;

    /// Records a revalidation that still found the problem (only while the finding is open).
    fn recheck(
        &self,
        recheck: &Recheck<'_>,
    ) -> impl Future<Output = Result<(), FindingsError>> + Send;

    /// One finding, whatever its status.
    fn get(
        &self,
        table: &str,
        key: &Item,
    ) -> impl Future<Output = Result<Option<Finding>, FindingsError>> + Send;

    /// Open or accepted findings of a table by next check time, those due by `due_by_ms` only
    /// when given, at most `limit` when given.
    fn list(
        &self,
        table: &str,
        status: FindingStatus,
        due_by_ms: Option<u64>,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<Finding>, FindingsError>> + Send;

    /// One page of [`FindingsStore::list`] ([`PageRequest`]), and where the next page starts
    /// (`None`: this was the last). Memory is bounded by the page, whatever the number of findings.
    fn list_page(
        &self,
        request: PageRequest<'_>,
    ) -> impl Future<Output = Result<ListPage, FindingsError>> + Send;

    /// How many open or accepted findings a table has (those due by `due_by_ms` when given),
    /// counted without reading them.
    fn count(
        &self,
        table: &str,
        status: FindingStatus,
        due_by_ms: Option<u64>,
    ) -> impl Future<Output = Result<u64, FindingsError>> + Send;

    /// Accepts an open finding with a reason; whether there was one open.
    fn accept(
        &self,
        table: &str,
        key: &Item,
        reason: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<bool, FindingsError>> + Send;

    /// Records a repair on the key's finding (whatever its status); whether there was one.
    fn record_repair(
        &self,
        repair: &RepairRecord<'_>,
    ) -> impl Future<Output = Result<bool, FindingsError>> + Send;

    /// Adds to a verifier's coverage.
    fn cover(
        &self,
        write: &CoverageWrite<'_>,
    ) -> impl Future<Output = Result<(), FindingsError>> + Send;

    /// Every coverage item of a table.
    fn coverage(
        &self,
        table: &str,
    ) -> impl Future<Output = Result<Vec<Coverage>, FindingsError>> + Send;

    /// Records the table's freeze (replacing one recorded before).
    fn record_freeze(
        &self,
        table: &str,
        freeze: &RecordedFreeze,
    ) -> impl Future<Output = Result<(), FindingsError>> + Send;

    /// The table's recorded freeze, if any (read consistently).
    fn freeze(
        &self,
        table: &str,
    ) -> impl Future<Output = Result<Option<RecordedFreeze>, FindingsError>> + Send;

    /// Removes the table's freeze; whether there was one.
    fn lift_freeze(&self, table: &str) -> impl Future<Output = Result<bool, FindingsError>> + Send;
}

/// The cut-over's freeze as `ddb-verify freeze` recorded it: readiness then needs every change
/// created before `writes_stopped_at_ms` verified, as with `--writes-stopped-at`, and so does the
/// scheduled revalidator's, which the dashboard and the alarm show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFreeze {
    /// When the source's writes stopped, epoch milliseconds.
    pub writes_stopped_at_ms: u64,
    pub recorded_at_ms: u64,
    /// Who recorded it (`USER@HOST`).
    pub recorded_by: String,
    /// The end of the cut-over window it was recorded for (`--for`): after it readiness says
    /// NO-GO until it is recorded again or lifted, so a freeze left behind cannot stand in for
    /// fresh coverage for ever.
    pub valid_until_ms: u64,
}

/// The findings store of a function that has none (no `FINDINGS_TABLE`): a type that has no
/// value, so a verifier built without a store names no adapter and can never call one.
#[derive(Debug, Clone, Copy)]
pub enum NoFindings {}

impl FindingsStore for NoFindings {
    async fn record(&self, _: &ProblemWrite<'_>) -> Result<(), FindingsError> {
        match *self {}
    }
    async fn open_among(&self, _: &str, _: &[&Item]) -> Result<Vec<bool>, FindingsError> {
        match *self {}
    }
    async fn resolve(&self, _: &Resolution<'_>) -> Result<bool, FindingsError> {
        match *self {}
    }
    async fn recheck(&self, _: &Recheck<'_>) -> Result<(), FindingsError> {
        match *self {}
    }
    async fn get(&self, _: &str, _: &Item) -> Result<Option<Finding>, FindingsError> {
        match *self {}
    }
    async fn list(
        &self,
        _: &str,
        _: FindingStatus,
        _: Option<u64>,
        _: Option<usize>,
    ) -> Result<Vec<Finding>, FindingsError> {
        match *self {}
    }
    async fn list_page(&self, _: PageRequest<'_>) -> Result<ListPage, FindingsError> {
        match *self {}
    }
    async fn count(&self, _: &str, _: FindingStatus, _: Option<u64>) -> Result<u64, FindingsError> {
        match *self {}
    }
    async fn accept(&self, _: &str, _: &Item, _: &str, _: u64) -> Result<bool, FindingsError> {
        match *self {}
    }
    async fn record_repair(&self, _: &RepairRecord<'_>) -> Result<bool, FindingsError> {
        match *self {}
    }
    async fn cover(&self, _: &CoverageWrite<'_>) -> Result<(), FindingsError> {
        match *self {}
    }
    async fn coverage(&self, _: &str) -> Result<Vec<Coverage>, FindingsError> {
        match *self {}
    }
    async fn record_freeze(&self, _: &str, _: &RecordedFreeze) -> Result<(), FindingsError> {
        match *self {}
    }
    async fn freeze(&self, _: &str) -> Result<Option<RecordedFreeze>, FindingsError> {
        match *self {}
    }
    async fn lift_freeze(&self, _: &str) -> Result<bool, FindingsError> {
        match *self {}
    }
}

/// A key in one canonical text, whatever the order its attributes came in: the findings item's id.
pub fn canonical_key(key: &Item) -> String {
    use aws_sdk_dynamodb::types::AttributeValue;
    // Numbers in one notation: `7`, `7.0` and `0.7E1` are the same key to DynamoDB.
    let canonical: Item = key
        .iter()
        .map(|(name, value)| match value {
            AttributeValue::N(n) => (
                name.clone(),
                AttributeValue::N(crate::compare::canonical_number_text(n)),
            ),
            other => (name.clone(), other.clone()),
        })
        .collect();
    // The older key text, frozen (`record::key_text`): ids stored earlier must still be found.
    crate::record::key_text::legacy_text(&canonical)
}

/// DynamoDB's limit on a partition key's value, in bytes.
const PARTITION_KEY_BYTES: usize = 2048;

/// The id of a table's finding for a key: `finding#<table>#<canonical key>`, or, where that is
/// longer than a partition key may be, `finding#<table>#sha256:<hex of the canonical key>` (the key
/// itself is kept beside it, in `key`).
pub fn finding_id(table: &str, key: &Item) -> String {
    use sha2::Digest;
    let canonical = canonical_key(key);
    let id = format!("finding#{table}#{canonical}");
    if id.len() <= PARTITION_KEY_BYTES {
        return id;
    }
    let digest = sha2::Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("finding#{table}#sha256:{hex}")
}

/// The id of a verifier's coverage item: a stream verifier function's is per stream it reads (the
/// poller's name is its stream already).
pub fn coverage_id(
    table: &str,
    source: CoverageSource,
    name: &str,
    stream_arn: Option<&str>,
) -> String {
    match (source, stream_arn) {
        (CoverageSource::Stream, Some(stream)) => {
            format!("coverage#{table}#{}#{name}#{stream}", source.as_str())
        }
        _ => format!("coverage#{table}#{}#{name}", source.as_str()),
    }
}
