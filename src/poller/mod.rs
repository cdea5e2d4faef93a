//! The shard poller, for when the stream cannot be attached to the function (here discovery,
//! lineage and the run; in `shard` a shard's read loop; in `lease` its lease and checkpoints). Each run
//! discovers the stream's shards (DescribeStream paged to the end), reads the shards that are
//! ready — a child only after its parent is finished or gone — at most `MAX_CONCURRENCY` at once,
//! verifies what it reads with the same engine and verdicts as the stream verifier, and
//! checkpoints after each batch whose verdicts are final. Leases in the checkpoint table keep two
//! overlapping runs off the same shard.
//!
//! Guarantees: at-least-once (a record is checkpointed past only once its verdict is final; what is
//! still undecided when time runs out is read again next run), nothing skipped silently (trimmed
//! stream data is an ERROR log line and the `RecordsTrimmed` metric).

mod lease;
mod shard;

use std::collections::{HashMap, HashSet, VecDeque};

use aws_smithy_types::error::display::DisplayErrorContext;
use futures::stream::{FuturesUnordered, StreamExt};
use thiserror::Error;
use tokio::time::Instant;

use crate::config::PollerConfig;
use crate::ports::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, StreamStart};
use crate::ports::findings::NoFindings;
use crate::ports::findings::{CoverageSource, CoverageWrite, FindingsStore, GapCause, GapWrite};
use crate::ports::stream::{ShardInfo, ShardRef, StartAt, StreamError, StreamSource};
use crate::ports::table::TableReader;
use crate::report::emf::{self, table_documents};
use crate::report::findings::FindingsWriter;
use crate::report::metrics::{InvocationMetrics, PollerMetrics};
use crate::report::{log_summary, RecordReport};
use crate::shared::error_chain;
use crate::verify::Verifier;
use shard::{ShardOrigin, ShardRead, ShardRun, ShardStart};

#[derive(Debug, Error)]
pub enum PollerError {
    #[error("reading the stream failed")]
    Stream(#[from] StreamError),
    #[error("checkpoint or lease operation failed")]
    Checkpoint(#[from] CheckpointError),
    /// Shards failed during a run; the run's verdicts and metrics were still reported.
    #[error("{failed} shard(s) failed in this run, the first {shard_id}")]
    ShardsFailed {
        failed: usize,
        shard_id: String,
        #[source]
        source: Box<PollerError>,
    },
}

/// A shard whose reading failed in a run. Its verdicts up to the failure are in the report; what
/// was not checkpointed is read again by the next run.
#[derive(Debug)]
pub struct ShardFailure {
    pub shard_id: String,
    pub error: PollerError,
}

/// What one run did.
#[derive(Debug, Default)]
pub struct PollReport {
    pub poller: PollerMetrics,
    pub verification: InvocationMetrics,
    /// Records whose outcome counts (in read order, per shard).
    pub records: Vec<RecordReport>,
    /// Shards that failed; the other shards went on.
    pub failures: Vec<ShardFailure>,
    /// When the last checkpoint past new records was written: the end of the drain, before the run
    /// confirmed its shards were caught up (empty reads with back-off).
    pub last_progress_at: Option<Instant>,
    /// Creation time (epoch ms) of the oldest change given a verdict, for coverage.
    pub first_change_ms: Option<u64>,
    /// 1 when this run recorded the stream's start under `STARTING_POSITION=LATEST` for shards
    /// without a checkpoint (a gap: what the stream held before was skipped), else 0.
    pub latest_starts: u64,
    /// Records whose creation time was not believed (each a gap: coverage does not move on them).
    pub unbelievable_times: u64,
    /// The run's start (epoch ms) when every change created before it has a verdict: every shard
    /// finished or proven caught up, nothing handed back; `None` otherwise.
    pub verified_until_ms: Option<u64>,
}

impl PollReport {
    /// A shard's reading failed (`#stream`: the run's): counted and kept, the other shards go on.
    fn fail(&mut self, shard_id: &str, error: PollerError) {
        self.poller.shard_failures += 1;
        self.failures.push(ShardFailure {
            shard_id: shard_id.to_string(),
            error,
        });
    }

    pub fn emf_documents(
        &self,
        namespace: &str,
        verify_table: &str,
        timestamp_ms: u64,
    ) -> Vec<serde_json::Value> {
        let mut metrics = self.verification.metrics();
        metrics.extend(self.poller.metrics());
        table_documents(namespace, verify_table, timestamp_ms, &metrics)
    }
}

pub struct Poller<S, C, R, F> {
    stream: S,
    checkpoints: C,
    verifier: Verifier<R>,
    config: PollerConfig,
    /// Problems and coverage, when there is a findings store.
    findings: Option<FindingsWriter<F>>,
}

impl<S: StreamSource, C: CheckpointStore, R: TableReader> Poller<S, C, R, NoFindings> {
    pub fn new(
        stream: S,
        checkpoints: C,
        verifier: Verifier<R>,
        config: PollerConfig,
    ) -> Poller<S, C, R, NoFindings> {
        Poller {
            stream,
            checkpoints,
            verifier,
            config,
            findings: None,
        }
    }
}

impl<S: StreamSource, C: CheckpointStore, R: TableReader, F: FindingsStore> Poller<S, C, R, F> {
    /// Records problems and the stream's coverage in `writer`'s store (`None`: no store, a choice
    /// the wiring makes at run time).
    pub fn with_findings<G: FindingsStore>(
        self,
        writer: impl Into<Option<FindingsWriter<G>>>,
    ) -> Poller<S, C, R, G> {
        Poller {
            stream: self.stream,
            checkpoints: self.checkpoints,
            verifier: self.verifier,
            config: self.config,
            findings: writer.into(),
        }
    }

    pub fn config(&self) -> &PollerConfig {
        &self.config
    }

    /// Every shard of the stream, DescribeStream paged to the end.
    pub async fn discover(&self, stream_arn: &str) -> Result<Vec<ShardInfo>, StreamError> {
        let mut shards = Vec::new();
        let mut start = None;
        loop {
            let page = self.stream.list_shards(stream_arn, start).await?;
            shards.extend(page.shards);
            match page.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => return Ok(shards),
            }
        }
    }

    /// One run: reads what it can before `deadline` (minus `DEADLINE_MARGIN`), then returns.
    pub async fn run(
        &self,
        stream_arn: &str,
        deadline: Instant,
    ) -> Result<PollReport, PollerError> {
        let run_started_ms = crate::shared::epoch_ms();
        let shards = self.discover(stream_arn).await?;
        let checkpoints = self.checkpoints.load_all(stream_arn).await?;
        let mut total = PollReport::default();
        total.poller.shards_discovered = shards.len() as u64;
        let listed: HashSet<&str> = shards.iter().map(|s| s.shard_id.as_str()).collect();
        let lineage = Lineage {
            shards: &shards,
            listed: &listed,
            checkpoints: &checkpoints,
        };
        // Marked with the run's deadline, the last moment it may verify: a recording run that
        // sees the mark before then writes the gap again later (it clears only a past mark).
        let run_ends_ms = run_started_ms
            + deadline
                .saturating_duration_since(Instant::now())
                .as_millis() as u64;
        if let Err(error) = self.mark_unrecorded(stream_arn, run_ends_ms).await {
            // Like a shard's failure: in the report, and nothing is read this run.
            tracing::error!(stream_arn, error = %DisplayErrorContext(&error), "marking the stream as read without a findings table failed: nothing is read this run");
            total.fail("#stream", error);
            return Ok(total);
        }
        let stream_start = self.known_start(stream_arn, run_started_ms, &lineage).await;
        total.latest_starts = u64::from(stream_start.as_ref().is_some_and(|(_, gap)| *gap));
        let stream_start = stream_start.map(|(start, _)| start);
        self.report_trimmed_parents(stream_arn, &lineage, stream_start.as_ref(), &mut total);
        let latest = self.config.starting_position == StartAt::Latest;
        let mut schedule = Schedule::new(&lineage, stream_start.as_ref(), latest);
        self.read_shards(stream_arn, deadline, &lineage, &mut schedule, &mut total)
            .await;
        // Every shard read to its end or caught up, none left to others or unread.
        let covered = schedule.covered
            && schedule.queue.is_empty()
            && total.poller.lease_conflicts == 0
            && total.verification.batch_item_failures == 0;
        total.verified_until_ms = covered.then_some(run_started_ms);
        let unrecorded = stream_start.as_ref().and_then(|s| s.unrecorded_at_ms);
        self.cover_and_clear(stream_arn, unrecorded, &mut total)
            .await;
        Ok(total)
    }

    /// Reads the scheduled shards, at most `MAX_CONCURRENCY` at once, until none is left or time
    /// is up; a finished shard's children join the queue.
    async fn read_shards(
        &self,
        stream_arn: &str,
        deadline: Instant,
        lineage: &Lineage<'_>,
        schedule: &mut Schedule<'_>,
        total: &mut PollReport,
    ) {
        let stop_at = deadline
            .checked_sub(self.config.verify.deadline_margin)
            .unwrap_or_else(Instant::now);
        let owner = format!("poller-{:016x}", fastrand::u64(..));
        let limit = self.config.verify.max_concurrency;
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < limit && Instant::now() < stop_at {
                let Some((shard, origin)) = schedule.queue.pop_front() else {
                    break;
                };
                let checkpoint = lineage
                    .checkpoints
                    .get(&shard.shard_id)
                    .cloned()
                    .unwrap_or_default();
                let owner = owner.as_str();
                running.push(async move {
                    let mut run = ShardRun::default();
                    let read = ShardRead {
                        stream_arn,
                        shard: &shard,
                        owner,
                        deadline,
                        stop_at,
                    };
                    let start = ShardStart { checkpoint, origin };
                    if let Err(error) = self.read_shard(&read, start, &mut run).await {
                        run.error = Some(error);
                    }
                    (shard, run)
                });
            }
            let Some((shard, run)) = running.next().await else {
                break;
            };
            self.shard_done(stream_arn, shard, run, schedule, total)
                .await;
        }
    }

    /// Counts what a shard's reading did; a finished shard's children are queued.
    async fn shard_done(
        &self,
        stream_arn: &str,
        shard: ShardInfo,
        run: ShardRun,
        schedule: &mut Schedule<'_>,
        total: &mut PollReport,
    ) {
        schedule.covered &= run.error.is_none() && (run.finished || run.caught_up);
        *total += run.report;
        if let Some(error) = run.error {
            tracing::error!(
                shard_id = shard.shard_id,
                error = %DisplayErrorContext(&error),
                "reading the shard failed; its verdicts so far are reported, the rest is read again next run"
            );
            total.fail(&shard.shard_id, error);
            return;
        }
        if run.finished {
            schedule.finished.insert(shard.shard_id.clone());
            // Its children are ready now (a closed shard's children are listed by the time it ends).
            let children = self
                .children_of(stream_arn, &shard, schedule.shards, total)
                .await;
            schedule.queue_children(children, run.started_at_ms);
        }
    }

    /// A finished shard's children. If they cannot be listed, a failure of this shard's like any
    /// other: the shards already read keep their verdicts and metrics, and the run fails once they
    /// are reported. The children listed at the start are still read; the next run lists any
    /// others (their parent is finished now).
    async fn children_of(
        &self,
        stream_arn: &str,
        shard: &ShardInfo,
        listed: &[ShardInfo],
        total: &mut PollReport,
    ) -> Vec<ShardInfo> {
        let at = ShardRef {
            stream_arn,
            shard_id: &shard.shard_id,
        };
        match self.stream.child_shards(at).await {
            Ok(children) => children,
            Err(error) => {
                let error = PollerError::from(error);
                tracing::error!(
                    shard_id = shard.shard_id,
                    error = %DisplayErrorContext(&error),
                    "finding the children of a finished shard failed; the children not listed at the start of the run are read next run"
                );
                total.fail(&shard.shard_id, error);
                listed
                    .iter()
                    .filter(|s| s.parent_shard_id.as_deref() == Some(&shard.shard_id))
                    .cloned()
                    .collect()
            }
        }
    }

    /// Records the run's coverage ([`Self::cover`]); once it is written, the unrecorded runs'
    /// mark seen at the start (`unrecorded`) is cleared.
    async fn cover_and_clear(
        &self,
        stream_arn: &str,
        unrecorded: Option<u64>,
        total: &mut PollReport,
    ) {
        if !self.cover(stream_arn, unrecorded, total).await {
            return;
        }
        let now = crate::shared::epoch_ms();
        if let Some(seen) = unrecorded.filter(|&seen| seen < now) {
            if let Err(e) = self.checkpoints.clear_unrecorded(stream_arn, seen).await {
                // Recorded as a gap already: the next run records it again, on the strict side.
                tracing::warn!(stream_arn, error = %DisplayErrorContext(&e), "the unrecorded runs' mark was not cleared");
            }
        }
    }

    /// Without a findings table, marks the stream before reading it: a later run with one writes
    /// the time these runs verified without recording down as a gap (`unrecorded`). A mark that
    /// cannot be written stops the run before it reads anything.
    async fn mark_unrecorded(&self, stream_arn: &str, at_ms: u64) -> Result<(), PollerError> {
        if self.findings.is_some() {
            return Ok(());
        }
        self.checkpoints.mark_unrecorded(stream_arn, at_ms).await?;
        Ok(())
    }

    /// The stream's start ([`Self::start_stream`]); `None` when it could not be recorded (logged:
    /// the shards that need it wait for the next run).
    async fn known_start(
        &self,
        stream_arn: &str,
        run_started_ms: u64,
        lineage: &Lineage<'_>,
    ) -> Option<(StreamStart, bool)> {
        let recorded = self.start_stream(stream_arn, run_started_ms, lineage).await;
        recorded
            .inspect_err(|error| {
                tracing::error!(
                    stream_arn,
                    error = %DisplayErrorContext(error),
                    "recording the stream's start failed: shards without a checkpoint whose start depends on it wait for the next run"
                );
            })
            .ok()
    }

    /// The stream's start: recorded by its first run (`run_started_ms`, before any shard is read,
    /// with the shards listed without their parent), kept by every later one. With
    /// `STARTING_POSITION=LATEST` it is where every shard without a checkpoint starts; the run that
    /// records it answers `true` (a `Latest` gap) when some shard does.
    async fn start_stream(
        &self,
        stream_arn: &str,
        run_started_ms: u64,
        lineage: &Lineage<'_>,
    ) -> Result<(StreamStart, bool), CheckpointError> {
        let start = StreamStart {
            unrecorded_at_ms: None,
            started_at_ms: run_started_ms,
            root_shards: lineage
                .shards
                .iter()
                .filter(|s| {
                    s.parent_shard_id
                        .as_deref()
                        .is_some_and(|p| !lineage.listed.contains(p))
                })
                .map(|s| s.shard_id.clone())
                .collect(),
        };
        let (start, first) = self.checkpoints.start_stream(stream_arn, &start).await?;
        // Some shard starts there: a root without a checkpoint.
        let starts_there = lineage.shards.iter().any(|s| lineage.needs_start(s, true));
        let latest_gap = first && starts_there && self.config.starting_position == StartAt::Latest;
        if latest_gap {
            tracing::info!(
                stream_arn,
                started_at_ms = start.started_at_ms,
                "the stream's start is recorded: changes created before it are not verified (STARTING_POSITION=LATEST)"
            );
        }
        Ok((start, latest_gap))
    }

    /// The stream's coverage after a run (`verified_until_ms`), with a gap for runs that verified
    /// without recording (`unrecorded`, the stream's mark); whether it was written.
    async fn cover(
        &self,
        stream_arn: &str,
        unrecorded: Option<u64>,
        total: &mut PollReport,
    ) -> bool {
        let Some(findings) = &self.findings else {
            return false;
        };
        let Some(table) = crate::record::table_name_from_arn(stream_arn) else {
            return false;
        };
        let mut gaps = run_gaps(total, self.config.verify.sample_rate);
        if let Some(at) = unrecorded {
            gaps.push(GapWrite {
                cause: GapCause::Unrecorded,
                detail: format!(
                    "runs without FINDINGS_TABLE verified this stream until {} without recording problems or coverage",
                    crate::shared::rfc3339(at)
                ),
            });
        }
        let now = crate::shared::epoch_ms();
        let write = CoverageWrite {
            table: &table,
            source: CoverageSource::Poller,
            name: stream_arn,
            stream_arn: Some(stream_arn),
            started_at_ms: total.first_change_ms,
            verified_until_ms: total.verified_until_ms,
            retry_at_ms: (total.verification.batch_item_failures > 0).then_some(now),
            complete: None,
            sample_rate: Some(self.config.verify.sample_rate),
            gaps,
            now_ms: now,
        };
        match findings.cover(write).await {
            Ok(()) => true,
            Err(e) => {
                total.verification.findings_write_failures += 1;
                tracing::error!(stream_arn, error = %error_chain(&e), "the poller's coverage was not recorded: readiness will not count this run");
                // Its gaps would be lost with it (the run's checkpoints are written): the next
                // run with a findings table writes this run down as unrecorded instead.
                if let Err(e) = self.checkpoints.mark_unrecorded(stream_arn, now).await {
                    tracing::error!(stream_arn, error = %DisplayErrorContext(&e), "nor could the run be marked unrecorded: its gaps are lost; run a new baseline before trusting readiness");
                }
                false
            }
        }
    }

    /// A listed shard's parent gone from the stream (trimmed, 24 hours after it closed) whose
    /// records were not all verified: an unread lineage. Reported once (ERROR line,
    /// `RecordsTrimmed`, and so a `Trimmed` gap), by the run that starts its children (none of
    /// them has a checkpoint yet), which are then read as usual. The rule, for such a parent:
    /// - with a checkpoint not at its end: its tail was never verified;
    /// - without a checkpoint, when its child is not one of the stream's root shards (those the
    ///   poller's first run on the stream listed without their parent, [`StreamStart`]): the child
    ///   was listed after that run, or with its parent then, so the parent was in the stream while
    ///   the poller read it and was never read, nor were any ancestors gone unread with it, however
    ///   deep (their checkpoints, if any, are named in the line).
    ///
    /// The gone parent of a root shard is older than the poller: not reported, so that a first run
    /// on a stream older than a day (every open shard has one) raises no alarm. Without a recorded
    /// start such children are not read (see [`Self::run`]), so none escapes the rule.
    fn report_trimmed_parents(
        &self,
        stream_arn: &str,
        lineage: &Lineage<'_>,
        stream_start: Option<&StreamStart>,
        total: &mut PollReport,
    ) {
        let mut reported = HashSet::new();
        for child in lineage.shards {
            let Some(parent) = child.parent_shard_id.as_deref() else {
                continue;
            };
            if lineage.listed.contains(parent)
                || reported.contains(parent)
                || lineage.children_started(parent)
            {
                continue;
            }
            let checkpoint = lineage.checkpoints.get(parent);
            let unread = match checkpoint {
                Some(c) => !c.shard_end,
                None => stream_start.is_some_and(|s| !s.root_shards.contains(&child.shard_id)),
            };
            if !unread {
                continue;
            }
            reported.insert(parent);
            let last = checkpoint.and_then(|c| c.sequence_number.as_deref());
            tracing::error!(
                stream_arn,
                parent_shard_id = parent,
                child_shard_id = child.shard_id,
                last_checkpoint_sequence_number = last.unwrap_or("none"),
                gone_unfinished_checkpoints = lineage.gone_unfinished(),
                "a parent shard was trimmed before it was read to its end: its records after the \
                 last checkpoint (all of them with none), and those of any ancestor gone unread \
                 with it, were never verified; reading its children"
            );
            total.poller.records_trimmed += 1;
        }
    }

    /// Runs once and prints the EMF documents (what the Lambda binary does).
    pub async fn run_and_emit(
        &self,
        stream_arn: &str,
        deadline: Instant,
    ) -> Result<PollReport, PollerError> {
        let mut report = self.run(stream_arn, deadline).await?;
        let mut metrics = report.verification.metrics();
        metrics.extend(report.poller.metrics());
        emf::emit(&self.config.verify, &metrics);
        log_summary(
            "poll run finished",
            &report.verification,
            Some((stream_arn, &report.poller)),
        );
        // Reported and emitted first, then failed: the invocation shows as an error, and nothing
        // verified before the failure is missing from the metrics.
        let failed = report.failures.len();
        if let Some(first) = std::mem::take(&mut report.failures).into_iter().next() {
            return Err(PollerError::ShardsFailed {
                failed,
                shard_id: first.shard_id,
                source: Box::new(first.error),
            });
        }
        Ok(report)
    }

    /// Outside Lambda: a run every `POLL_INTERVAL` until interrupted (one run with `once`). A run
    /// that fails is logged and the next one tries again; a stream that cannot be found ends it.
    pub async fn poll<L, Fut>(&self, stream_arn: L, once: bool) -> Result<(), PollerError>
    where
        L: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<String, StreamError>>,
    {
        loop {
            let cycle = Instant::now() + self.config.poll_interval;
            let result = self.run_and_emit(&stream_arn().await?, cycle).await;
            if let Err(e) = &result {
                tracing::error!(error = %DisplayErrorContext(e), "poll run failed");
            }
            if once {
                return result.map(|_| ());
            }
            // Interrupting loses nothing: progress is checkpointed per batch and leases expire.
            tokio::time::sleep_until(cycle).await;
        }
    }
}

/// A run's shards: which are finished, which are queued (with where they start), and whether the
/// reading so far covers the stream.
struct Schedule<'a> {
    /// The shards listed at the start of the run.
    shards: &'a [ShardInfo],
    queue: VecDeque<(ShardInfo, ShardOrigin)>,
    /// Every shard queued in this run.
    queued: HashSet<String>,
    finished: HashSet<String>,
    /// No shard waits for the stream's start, and every shard read so far finished or caught up.
    covered: bool,
}

impl<'a> Schedule<'a> {
    /// The shards ready at the start of the run: not finished, their parent finished or gone, not
    /// waiting for a stream start that could not be recorded (`stream_start` is `None`).
    fn new(lineage: &Lineage<'a>, stream_start: Option<&StreamStart>, latest: bool) -> Self {
        let finished: HashSet<String> = lineage
            .checkpoints
            .iter()
            .filter(|(_, c)| c.shard_end)
            .map(|(id, _)| id.clone())
            .collect();
        let root_start = stream_start.filter(|_| latest).map(|s| s.started_at_ms);
        let waits = |s: &ShardInfo| stream_start.is_none() && lineage.needs_start(s, latest);
        let queue: VecDeque<(ShardInfo, ShardOrigin)> = lineage
            .shards
            .iter()
            .filter(|s| lineage.ready(s, &finished) && !waits(s))
            .map(|s| (s.clone(), lineage.origin(s, root_start)))
            .collect();
        Schedule {
            shards: lineage.shards,
            queued: queue.iter().map(|(s, _)| s.shard_id.clone()).collect(),
            queue,
            finished,
            covered: !lineage.shards.iter().any(waits),
        }
    }

    /// Queues a finished shard's children not finished nor queued yet; they inherit its start
    /// under LATEST (`started_at_ms`).
    fn queue_children(&mut self, children: Vec<ShardInfo>, started_at_ms: Option<u64>) {
        for child in children {
            if !self.finished.contains(&child.shard_id)
                && self.queued.insert(child.shard_id.clone())
            {
                let origin = ShardOrigin::Child { started_at_ms };
                self.queue.push_back((child, origin));
            }
        }
    }
}

/// A run's view of the stream's lineage: the shards listed and the checkpoints stored.
struct Lineage<'a> {
    shards: &'a [ShardInfo],
    listed: &'a HashSet<&'a str>,
    checkpoints: &'a HashMap<String, Checkpoint>,
}

impl Lineage<'_> {
    /// Not finished, and its parent finished or no longer in the stream (trimmed).
    fn ready(&self, shard: &ShardInfo, finished: &HashSet<String>) -> bool {
        !finished.contains(&shard.shard_id)
            && shard
                .parent_shard_id
                .as_deref()
                .is_none_or(|p| finished.contains(p) || !self.listed.contains(p))
    }

    /// Where a shard without a checkpoint starts: a child of a shard the poller knows, or a root
    /// (from `root_start`, the stream's start under LATEST).
    fn origin(&self, shard: &ShardInfo, root_start: Option<u64>) -> ShardOrigin {
        match shard.parent_shard_id.as_deref() {
            Some(p) if self.listed.contains(p) || self.checkpoints.contains_key(p) => {
                ShardOrigin::Child {
                    started_at_ms: self.checkpoints.get(p).and_then(|c| c.started_at_ms),
                }
            }
            _ => ShardOrigin::Root {
                started_at_ms: root_start,
            },
        }
    }

    /// A shard without a checkpoint whose reading depends on the stream's start: a root under
    /// LATEST (where it starts), or one whose parent is gone unread (whether that is reported
    /// depends on the stream's root shards: `report_trimmed_parents`).
    fn needs_start(&self, shard: &ShardInfo, latest: bool) -> bool {
        !self.checkpoints.contains_key(&shard.shard_id)
            && match shard.parent_shard_id.as_deref() {
                Some(p) => !self.listed.contains(p) && !self.checkpoints.contains_key(p),
                None => latest,
            }
    }

    /// A child of `parent` has a checkpoint: an earlier run started the children (and reported the
    /// parent if it had to).
    fn children_started(&self, parent: &str) -> bool {
        self.shards.iter().any(|s| {
            s.parent_shard_id.as_deref() == Some(parent)
                && self.checkpoints.contains_key(&s.shard_id)
        })
    }

    /// The shards gone from the stream whose checkpoint is not at their end, as
    /// `shard@sequence number` (for the operator: where each one's unread tail begins).
    fn gone_unfinished(&self) -> String {
        let mut gone: Vec<String> = self
            .checkpoints
            .iter()
            .filter(|(id, c)| !c.shard_end && !self.listed.contains(id.as_str()))
            .map(|(id, c)| format!("{id}@{}", c.sequence_number.as_deref().unwrap_or("none")))
            .collect();
        gone.sort();
        gone.join(", ")
    }
}

/// The gaps a run leaves in the stream's coverage.
fn run_gaps(total: &PollReport, sample_rate: f64) -> Vec<GapWrite> {
    let mut gaps: Vec<GapWrite> = crate::report::findings::sampling_gap(sample_rate)
        .into_iter()
        .chain(crate::report::findings::refusal_gap(
            total.verification.findings_rejected,
        ))
        .collect();
    let counted = [
        (
            GapCause::Trimmed,
            total.poller.records_trimmed,
            "stream data trimmed (after 24 hours) before it was verified",
        ),
        (
            GapCause::Latest,
            total.latest_starts,
            "stream start(s) taken at LATEST: what the stream held before was skipped",
        ),
        (
            GapCause::BadCreationTime,
            total.unbelievable_times,
            "record(s) with an ApproximateCreationDateTime before 2014 or ahead of the clock: coverage did not move on them",
        ),
    ];
    for (cause, count, what) in counted {
        if count > 0 {
            gaps.push(GapWrite {
                cause,
                detail: format!("{count} {what}"),
            });
        }
    }
    gaps
}

/// Runs and shards add up: counters with `+=`, records and failures in order.
impl std::ops::AddAssign for PollReport {
    fn add_assign(&mut self, part: PollReport) {
        self.poller += part.poller;
        self.verification += part.verification;
        self.records.extend(part.records);
        self.failures.extend(part.failures);
        self.first_change_ms = match (self.first_change_ms, part.first_change_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_progress_at = self.last_progress_at.max(part.last_progress_at);
        self.latest_starts += part.latest_starts;
        self.unbelievable_times += part.unbelievable_times;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, StreamSelector, TableRef};
    use crate::ports::checkpoint::Lease;
    use crate::ports::stream::StartAt;
    use crate::record::{ChangeKind, Expectation, Expected, Item, Origin, StreamChange, ViewType};
    use crate::shared::epoch_ms as now_ms;
    use crate::testkit::InMemoryCheckpoints;
    use crate::testkit::{Fault, InMemoryTables};
    use crate::testkit::{InMemoryStream, StreamFault};
    use aws_sdk_dynamodb::types::AttributeValue as V;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:111111111111:table/Source/stream/2026-01-01T00:00:00.000";

    struct World {
        stream: Arc<InMemoryStream>,
        checkpoints: Arc<InMemoryCheckpoints>,
        target: Arc<InMemoryTables>,
        poller:
            Poller<Arc<InMemoryStream>, Arc<InMemoryCheckpoints>, Arc<InMemoryTables>, NoFindings>,
    }

    fn world(limit: i32) -> World {
        world_from(limit, StartAt::TrimHorizon)
    }

    /// A world whose poller starts shards without a checkpoint at `starting_position`.
    fn world_from(limit: i32, starting_position: StartAt) -> World {
        let mut verify = Config::new(TableRef::parse("Target").unwrap());
        verify.max_concurrency = 3;
        let config = PollerConfig {
            verify: verify.clone(),
            stream: StreamSelector::Arn(ARN.into()),
            stream_role_arn: None,
            stream_role_external_id: None,
            checkpoint_table: "Checkpoints".into(),
            starting_position,
            get_records_limit: limit,
            lease_duration: Duration::from_secs(60),
            poll_interval: Duration::from_secs(60),
        };
        let stream = Arc::new(InMemoryStream::new());
        let checkpoints = Arc::new(InMemoryCheckpoints::new());
        let target = Arc::new(InMemoryTables::new());
        let source = Arc::new(InMemoryTables::new());
        let verifier = Verifier::new(verify, Arc::clone(&target), source);
        let poller = Poller::new(
            Arc::clone(&stream),
            Arc::clone(&checkpoints),
            verifier,
            config,
        );
        World {
            stream,
            checkpoints,
            target,
            poller,
        }
    }

    fn item(id: u64) -> Item {
        [
            ("pk".to_string(), V::N(id.to_string())),
            ("v".to_string(), V::S("x".into())),
        ]
        .into()
    }

    /// Record `id` (also its sequence number), already replicated unless `replicated` is false.
    fn record(w: &World, id: u64, replicated: bool) -> Expectation {
        if replicated {
            w.target.put("Target", &["pk"], item(id));
        }
        Expectation {
            keys: [("pk".to_string(), V::N(id.to_string()))].into(),
            expected: Expected::Image(item(id).into()),
            since: Some(SystemTime::now() - Duration::from_secs(3600)),
            source_table: None,
            origin: Origin::Stream(StreamChange {
                event_id: format!("e{id}"),
                kind: ChangeKind::Insert,
                sequence_number: format!("{id:021}"),
                old_image: None,
                view_type: ViewType::NewImage,
                ttl_delete: false,
                stream_arn: None,
            }),
        }
    }

    fn fill(w: &World, shard: &str, ids: std::ops::Range<u64>) {
        for id in ids {
            let r = record(w, id, true);
            w.stream.push(shard, r);
        }
    }

    /// Like `fill`, with records created after the poller's start (`fill`'s were created an hour
    /// ago): a second ahead of the clock, so that a second boundary between writing them and the
    /// start of a run does not make them older than it.
    fn fill_now(w: &World, shard: &str, ids: std::ops::Range<u64>) {
        for id in ids {
            let mut r = record(w, id, true);
            r.since = Some(SystemTime::now() + Duration::from_secs(1));
            w.stream.push(shard, r);
        }
    }

    /// A checkpoint left by an earlier run (its lease given up).
    async fn checkpointed(w: &World, shard: &str, checkpoint: Checkpoint) {
        let c = &w.checkpoints;
        c.acquire(&Lease::new(ARN, shard, "earlier-run").term(0, 1))
            .await
            .unwrap();
        c.save(
            &Lease::new(ARN, shard, "earlier-run").term(0, 1),
            &checkpoint,
        )
        .await
        .unwrap();
        c.release(&Lease::new(ARN, shard, "earlier-run"))
            .await
            .unwrap();
    }

    /// Collects the JSON log lines of what `f` does (on this thread: the tests' runtime has one).
    async fn logged<F: std::future::Future>(f: F) -> (F::Output, String) {
        #[derive(Clone, Default)]
        struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = lambda_runtime::tracing::subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        let out = f.await;
        drop(guard);
        let text = String::from_utf8_lossy(&lines.0.lock().unwrap()).into_owned();
        (out, text)
    }

    fn ids(report: &PollReport) -> Vec<u64> {
        report
            .records
            .iter()
            .map(|r| r.event_id.as_ref().unwrap()[1..].parse().unwrap())
            .collect()
    }

    async fn run(w: &World) -> PollReport {
        w.poller
            .run(ARN, Instant::now() + Duration::from_secs(60))
            .await
            .unwrap()
    }

    /// Shard `id` (a child of `parent` when given) holding records `ids`, already replicated.
    fn shard(w: &World, id: &str, parent: Option<&str>, ids: std::ops::Range<u64>) {
        w.stream.add_shard(id, parent);
        fill(w, id, ids);
    }

    /// A split: shard "parent" with records 1 to 3, closed, and its child "child" with `child_ids`.
    fn split(w: &World, child_ids: std::ops::Range<u64>) {
        shard(w, "parent", None, 1..4);
        w.stream.close("parent");
        shard(w, "child", Some("parent"), child_ids);
    }

    /// The sequence number of record `id`.
    fn seq(id: u64) -> String {
        format!("{id:021}")
    }

    /// A checkpoint after record `id`, its shard not finished.
    fn at(id: u64) -> Checkpoint {
        Checkpoint {
            sequence_number: Some(seq(id)),
            ..Checkpoint::default()
        }
    }

    /// The checkpoint saved for `shard`.
    fn saved(w: &World, shard: &str) -> Checkpoint {
        w.checkpoints.get(ARN, shard).unwrap()
    }

    /// The ids read, sorted: shards read side by side interleave.
    fn sorted_ids(report: &PollReport) -> Vec<u64> {
        let mut read = ids(report);
        read.sort();
        read
    }

    /// Whether another reader gets the lease of shard "s" at `now` (epoch ms) until `until`.
    async fn other_reader_leases(w: &World, now: u64, until: u64) -> bool {
        w.checkpoints
            .acquire(&Lease::new(ARN, "s", "other").term(now, until))
            .await
            .unwrap()
            .is_some()
    }

    #[tokio::test(start_paused = true)]
    async fn children_are_read_after_their_parent_is_finished() {
        let w = world(2);
        shard(&w, "parent", None, 1..6);
        w.stream.close("parent");
        shard(&w, "child-a", Some("parent"), 10..13);
        shard(&w, "child-b", Some("parent"), 20..23);
        let report = run(&w).await;
        let read = ids(&report);
        assert_eq!(read.len(), 11);
        let last_parent = read.iter().rposition(|id| *id < 10).unwrap();
        let first_child = read.iter().position(|id| *id >= 10).unwrap();
        assert!(last_parent < first_child, "{read:?}");
        assert_eq!(report.verification.matches, 11);
        assert_eq!(report.poller.shards_finished, 1);
        assert_eq!(report.poller.shards_read, 3);
        assert!(saved(&w, "parent").shard_end);
        assert_eq!(saved(&w, "child-a").sequence_number, Some(seq(12)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_chain_of_splits_is_followed_in_order_in_one_run() {
        let w = world(1000);
        let mut parent: Option<String> = None;
        for generation in 0..5u64 {
            let id = format!("gen-{generation}");
            shard(
                &w,
                &id,
                parent.as_deref(),
                generation * 10..generation * 10 + 3,
            );
            if generation < 4 {
                w.stream.close(&id);
            }
            parent = Some(id);
        }
        let report = run(&w).await;
        let read = ids(&report);
        let mut sorted = read.clone();
        sorted.sort();
        assert_eq!(read, sorted, "generations in order");
        assert_eq!(read.len(), 15);
        assert_eq!(report.poller.shards_finished, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn more_than_a_page_of_shards_is_discovered() {
        let w = world(1000);
        for s in 0..250u64 {
            shard(&w, &format!("shard-{s:03}"), None, s * 10..s * 10 + 1);
        }
        let report = run(&w).await;
        assert_eq!(report.poller.shards_discovered, 250);
        assert_eq!(report.poller.shards_read, 250);
        assert_eq!(report.verification.matches, 250);
    }

    #[tokio::test(start_paused = true)]
    async fn trimmed_parents_and_trimmed_data_are_reported_not_skipped_silently() {
        let w = world(1000);
        // The parent is gone from the listing entirely: its child is ready.
        shard(&w, "child", Some("trimmed-parent"), 1..4);
        // A shard whose checkpoint points into trimmed data.
        shard(&w, "old", None, 10..20);
        checkpointed(&w, "old", at(11)).await;
        w.stream.trim("old", 5);
        let report = run(&w).await;
        assert_eq!(report.poller.records_trimmed, 1);
        assert_eq!(sorted_ids(&report), vec![1, 2, 3, 15, 16, 17, 18, 19]);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_backs_off_and_expired_iterators_resume_from_the_checkpoint() {
        // Pages of 3 from one shard of 9 records.
        let paged = || {
            let w = world(3);
            shard(&w, "s", None, 1..10);
            w
        };
        let w = paged();
        w.stream
            .plan_faults([StreamFault::Throttle, StreamFault::Throttle]);
        let started = Instant::now();
        let report = run(&w).await;
        assert_eq!(ids(&report), (1..10).collect::<Vec<_>>());
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "backed off"
        );

        let w = paged();
        // Expires after the first page: the next iterator comes from the checkpoint (after 3).
        let first = run_with_fault_after_first_page(&w).await;
        assert_eq!(ids(&first), (1..10).collect::<Vec<_>>());
        assert_eq!(w.stream.records_read("s"), 9, "nothing read twice");
    }

    async fn run_with_fault_after_first_page(w: &World) -> PollReport {
        w.stream
            .plan_faults([StreamFault::Pass, StreamFault::ExpireIterator]);
        run(w).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_run_resumes_from_the_checkpoint_and_reads_nothing_twice() {
        let w = world(1000);
        shard(&w, "s", None, 1..6);
        assert_eq!(ids(&run(&w).await), vec![1, 2, 3, 4, 5]);
        fill(&w, "s", 6..9);
        assert_eq!(ids(&run(&w).await), vec![6, 7, 8]);
        assert_eq!(w.stream.records_read("s"), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_whose_checkpoint_write_fails_is_read_again_and_counted_once() {
        // Pages of 3. Page 1's checkpoint is written while page 2 is verified; page 2's fails
        // while page 3 is verified.
        let w = world(3);
        shard(&w, "s", None, 1..10);
        w.checkpoints.plan_save_failures([false, true]);
        let first = run(&w).await;
        assert_eq!(first.poller.shard_failures, 1);
        assert_eq!(
            ids(&first),
            vec![1, 2, 3],
            "only the page whose checkpoint was written counts"
        );
        assert_eq!(first.verification.matches, 3);
        assert_eq!(saved(&w, "s").sequence_number, Some(seq(3)));
        assert_eq!(
            w.stream.records_read("s"),
            9,
            "page 3 was verified meanwhile"
        );

        let second = run(&w).await;
        assert_eq!(ids(&second), vec![4, 5, 6, 7, 8, 9]);
        assert_eq!(second.verification.matches, 6);
        assert_eq!(saved(&w, "s").sequence_number, Some(seq(9)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_leased_shard_is_left_alone_until_the_lease_expires() {
        let w = world(1000);
        shard(&w, "s", None, 1..4);
        assert!(other_reader_leases(&w, now_ms(), now_ms() + 3_600_000).await);
        let report = run(&w).await;
        assert_eq!(report.poller.lease_conflicts, 1);
        assert_eq!(report.poller.records_read, 0);
        // The other reader died; its lease expired.
        assert!(other_reader_leases(&w, 0, 1).await);
        let report = run(&w).await;
        assert_eq!(ids(&report), vec![1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_without_a_final_verdict_is_not_checkpointed_past() {
        let w = world(1000);
        shard(&w, "s", None, 1..4);
        w.target.plan_faults([Fault::Fail { transient: true }]);
        let report = run(&w).await;
        assert_eq!(report.records.len(), 0);
        assert_eq!(report.verification.batch_item_failures, 3);
        assert_eq!(saved(&w, "s").sequence_number, None);
        // Next run: read again, verified.
        let report = run(&w).await;
        assert_eq!(ids(&report), vec![1, 2, 3]);
        assert_eq!(report.verification.matches, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn latest_is_the_streams_start_and_what_is_written_between_runs_is_verified() {
        // Pages of 3: the old records make a page of their own.
        let w = world_from(3, StartAt::Latest);
        // Created an hour before the poller first reads the stream: read from TRIM_HORIZON to be
        // skipped, and checkpointed past.
        shard(&w, "s", None, 1..4);
        let first = run(&w).await;
        assert_eq!(first.poller.records_read, 3);
        assert_eq!(
            first.poller.records_before_start, 3,
            "skipped, not verified"
        );
        assert_eq!(first.verification.records_received, 0);
        assert_eq!(first.latest_starts, 1, "the stream's start, once");
        let checkpoint = saved(&w, "s");
        assert!(checkpoint.started_at_ms.is_some(), "{checkpoint:?}");
        assert_eq!(checkpoint.sequence_number, Some(seq(3)));
        let docs = first.emf_documents("Verifier/Test", "Target", 1);
        assert_eq!(docs[0]["RecordsBeforeStart"], 3.0);

        // Written between runs: the next run reads them from the checkpoint.
        fill_now(&w, "s", 4..7);
        let second = run(&w).await;
        assert_eq!(ids(&second), vec![4, 5, 6]);
        assert_eq!(second.verification.matches, 3);
        assert_eq!(second.poller.records_before_start, 0);
        assert_eq!(second.latest_starts, 0);
        assert!(
            second.poller.iterator_age_ms < 60_000,
            "{}",
            second.poller.iterator_age_ms
        );
        assert_eq!(saved(&w, "s").sequence_number, Some(seq(6)));

        fill_now(&w, "s", 7..8);
        let third = run(&w).await;
        assert_eq!(ids(&third), vec![7]);
        assert_eq!(
            w.stream.records_read("s"),
            7,
            "the old records read once, to skip them"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn latest_is_one_start_for_every_shard_however_late_a_shard_is_first_read() {
        // Four root shards, three read at once: the fourth is first read after the others.
        let w = world_from(1000, StartAt::Latest);
        for s in 0..4u64 {
            shard(&w, &format!("s{s}"), None, s * 10..s * 10 + 2);
        }
        let (report, ()) = tokio::join!(run(&w), async {
            // Written after the run began, while the fourth shard waits for a free slot.
            tokio::time::sleep(Duration::from_millis(50)).await;
            fill_now(&w, "s3", 100..102);
        });
        assert_eq!(
            ids(&report),
            vec![100, 101],
            "nothing after the start missed"
        );
        assert_eq!(report.poller.records_before_start, 8, "the old records");
        assert_eq!(report.latest_starts, 1, "one start, for the stream");
        let starts: HashSet<Option<u64>> = (0..4)
            .map(|s| saved(&w, &format!("s{s}")).started_at_ms)
            .collect();
        assert_eq!(starts.len(), 1, "{starts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_cannot_record_the_streams_start_leaves_shards_starting_there_for_the_next()
    {
        let w = world_from(1000, StartAt::Latest);
        shard(&w, "s", None, 1..4);
        w.checkpoints.fail_stream_starts(1);
        let first = run(&w).await;
        assert_eq!(first.poller.records_read, 0, "no start to read from");
        assert_eq!(first.verified_until_ms, None, "no coverage claimed");
        let second = run(&w).await;
        assert_eq!(second.poller.records_before_start, 3);
        assert_eq!(second.latest_starts, 1);
        assert!(second.verified_until_ms.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_deferred_first_record_under_latest_is_read_again_next_run() {
        let w = world_from(1000, StartAt::Latest);
        shard(&w, "s", None, 1..4);
        w.target.plan_faults([Fault::Fail { transient: true }]);
        let (first, ()) = tokio::join!(run(&w), async {
            // Written while the first run waits after its first pages.
            tokio::time::sleep(Duration::from_millis(50)).await;
            fill_now(&w, "s", 10..12);
        });
        assert_eq!(first.records.len(), 0);
        assert_eq!(first.verification.batch_item_failures, 2);
        assert_eq!(first.poller.records_before_start, 3);
        assert_eq!(saved(&w, "s").sequence_number, Some(seq(3)));

        let second = run(&w).await;
        assert_eq!(ids(&second), vec![10, 11]);
        assert_eq!(second.verification.matches, 2);
        assert_eq!(second.poller.records_before_start, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn children_start_at_trim_horizon_even_when_the_stream_is_read_from_latest() {
        // A split found in the run: the child is read from its first record, and what it got
        // before the stream's start is skipped as in the parent.
        let w = world_from(1000, StartAt::Latest);
        split(&w, 10..13);
        fill_now(&w, "child", 13..16);
        let report = run(&w).await;
        assert_eq!(ids(&report), vec![13, 14, 15]);
        assert_eq!(report.poller.records_before_start, 6);
        let parent = saved(&w, "parent");
        assert!(parent.shard_end);
        let child = saved(&w, "child");
        assert_eq!(child.started_at_ms, parent.started_at_ms, "inherited");
        assert_eq!(child.sequence_number, Some(seq(15)));

        // A child listed when the run starts, its parent finished by an earlier run that read it
        // from TRIM_HORIZON: read whole.
        let w = world_from(1000, StartAt::Latest);
        split(&w, 10..13);
        let finished = Checkpoint {
            shard_end: true,
            ..at(3)
        };
        checkpointed(&w, "parent", finished).await;
        assert_eq!(ids(&run(&w).await), vec![10, 11, 12]);
    }

    /// The log line that names `parent` as a trimmed shard's parent, asserted to be an ERROR.
    fn error_line_naming_parent<'l>(logs: &'l str, parent: &str) -> &'l str {
        let needle = format!(r#""parent_shard_id":"{parent}""#);
        let line = logs
            .lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no line names the parent: {logs}"));
        assert!(line.contains(r#""level":"ERROR""#), "{line}");
        line
    }

    #[tokio::test(start_paused = true)]
    async fn a_parent_trimmed_before_its_checkpoint_finished_is_reported() {
        let w = world(1000);
        // An earlier run read the parent up to 3; it split, and was trimmed before being finished.
        checkpointed(&w, "parent", at(3)).await;
        shard(&w, "child-a", Some("parent"), 10..13);
        shard(&w, "child-b", Some("parent"), 20..22);
        // A parent the poller never read (older than its first run) is not reported.
        shard(&w, "other", Some("never-read"), 30..31);
        let (report, logs) = logged(run(&w)).await;
        assert_eq!(report.poller.records_trimmed, 1, "once, not per child");
        assert_eq!(
            sorted_ids(&report),
            vec![10, 11, 12, 20, 21, 30],
            "the children are read"
        );
        let line = error_line_naming_parent(&logs, "parent");
        assert!(line.contains(&seq(3)), "{line}");
        assert!(!logs.contains("never-read"), "{logs}");

        // Reported by the run that started the children, not again.
        fill(&w, "child-a", 13..14);
        let again = run(&w).await;
        assert_eq!(ids(&again), vec![13]);
        assert_eq!(again.poller.records_trimmed, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lineage_trimmed_two_levels_deep_is_reported_once() {
        let w = world(1000);
        shard(&w, "a", None, 1..4);
        assert_eq!(ids(&run(&w).await), vec![1, 2, 3]);
        // The poller stops for more than a day: "a" splits into "b", never read, which splits
        // into "c"; "a" and "b" are trimmed.
        fill(&w, "a", 4..6);
        w.stream.close("a");
        shard(&w, "b", Some("a"), 10..12);
        w.stream.close("b");
        shard(&w, "c", Some("b"), 20..22);
        w.stream.remove_shard("a");
        w.stream.remove_shard("b");
        let (report, logs) = logged(run(&w)).await;
        assert_eq!(report.poller.records_trimmed, 1, "one unread lineage");
        assert_eq!(ids(&report), vec![20, 21], "the grandchild is read");
        let gaps = run_gaps(&report, 1.0);
        assert!(
            gaps.iter().any(|g| g.cause == GapCause::Trimmed),
            "{gaps:?}"
        );
        let line = error_line_naming_parent(&logs, "b");
        assert!(
            line.contains(&format!("a@{}", seq(3))),
            "names the checkpoint: {line}"
        );

        fill(&w, "c", 22..23);
        let again = run(&w).await;
        assert_eq!(ids(&again), vec![22]);
        assert_eq!(again.poller.records_trimmed, 0, "reported once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_shard_whose_parent_was_gone_before_the_first_run_is_not_reported_when_read_later() {
        let w = world(1000);
        // Four shards whose parents were trimmed before the poller began; three are read at once.
        for s in 0..4u64 {
            let parent = format!("old-{s}");
            shard(&w, &format!("s{s}"), Some(&parent), s * 10..s * 10 + 2);
        }
        // The first run is stopped (its Lambda timed out) before the fourth is read: the others
        // give empty pages.
        for s in 0..3 {
            w.stream.empty_pages_first(&format!("s{s}"), 10_000);
        }
        let first = tokio::time::timeout(Duration::from_secs(1), run(&w)).await;
        assert!(first.is_err(), "stopped");
        assert!(w.checkpoints.get(ARN, "s3").is_none(), "s3 not read");
        let second = run(&w).await;
        assert_eq!(ids(&second), vec![30, 31]);
        assert_eq!(
            second.poller.records_trimmed, 0,
            "a root shard of the stream"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_shard_is_read_past_empty_pages_to_its_end_before_its_children() {
        let w = world(1000);
        split(&w, 10..12);
        // More empty pages than an open shard gets before it counts as caught up.
        w.stream.plan_faults([StreamFault::EmptyPage; 6]);
        let report = run(&w).await;
        assert_eq!(ids(&report), vec![1, 2, 3, 10, 11]);
        assert!(saved(&w, "parent").shard_end);
        assert_eq!(report.poller.shards_finished, 1);

        // A closed shard that never gives its records is read until the run's time is up.
        let w = world(1000);
        split(&w, 10..12);
        w.stream.plan_faults([StreamFault::EmptyPage; 10_000]);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(10);
        let report = w.poller.run(ARN, deadline).await.unwrap();
        assert!(Instant::now() <= deadline, "{:?}", started.elapsed());
        assert!(
            started.elapsed() >= Duration::from_secs(7),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(report.poller.records_read, 0);
        assert_eq!(report.poller.shards_finished, 0);
        assert!(!saved(&w, "parent").shard_end);
    }

    #[tokio::test(start_paused = true)]
    async fn empty_pages_before_an_open_shards_first_record_do_not_make_it_caught_up() {
        let w = world(1000);
        shard(&w, "s", None, 1..4);
        // More empty pages than count as caught up, before the records.
        w.stream.empty_pages_first("s", 5);
        let report = run(&w).await;
        assert_eq!(ids(&report), vec![1, 2, 3], "read past the empty pages");
        assert!(report.verified_until_ms.is_some(), "caught up after them");

        // An open shard that gives no record within the run is not proven caught up: the run's
        // coverage does not move.
        let w = world(1000);
        shard(&w, "s", None, 1..4);
        w.stream.empty_pages_first("s", 10_000);
        let report = run(&w).await;
        assert_eq!(report.poller.records_read, 0);
        assert_eq!(report.verified_until_ms, None);
    }

    #[tokio::test(start_paused = true)]
    async fn empty_pages_after_the_checkpoint_make_an_open_shard_caught_up() {
        let w = world(1000);
        shard(&w, "s", None, 1..4);
        checkpointed(&w, "s", at(3)).await;
        let report = run(&w).await;
        assert_eq!(report.poller.records_read, 0);
        assert!(report.verified_until_ms.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_shard_checkpointed_at_its_ending_sequence_number_is_finished_without_a_read()
    {
        let w = world(1000);
        split(&w, 10..12);
        // Closed too, so that its reading is one GetRecords call.
        w.stream.close("child");
        // An earlier run checkpointed the last record, and stopped before marking the shard ended.
        checkpointed(&w, "parent", at(3)).await;
        let report = run(&w).await;
        assert_eq!(ids(&report), vec![10, 11]);
        assert!(saved(&w, "parent").shard_end);
        assert_eq!(report.poller.shards_finished, 2);
        assert_eq!(
            w.stream.get_records_calls(),
            1,
            "one GetRecords call, the child's"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_child_shard_lookup_fails_that_shard_only_and_keeps_the_runs_metrics() {
        let w = world(1000);
        split(&w, 10..12);
        shard(&w, "other", None, 20..22);
        w.stream.fail_child_shard_lookups(1);
        let (report, logs) = logged(run(&w)).await;
        assert_eq!(report.poller.shard_failures, 1);
        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].shard_id, "parent");
        assert_eq!(
            sorted_ids(&report),
            vec![1, 2, 3, 10, 11, 20, 21],
            "the shards read keep their verdicts; the listed child is still read"
        );
        assert_eq!(report.verification.matches, 7);
        assert!(
            logs.lines()
                .any(|l| l.contains(r#""level":"ERROR""#) && l.contains(r#""shard_id":"parent""#)),
            "{logs}"
        );

        // What the binary does: the metrics are printed, then the run fails naming the shard.
        let w2 = world(1000);
        shard(&w2, "parent", None, 1..3);
        w2.stream.close("parent");
        w2.stream.fail_child_shard_lookups(1);
        let err = w2
            .poller
            .run_and_emit(ARN, Instant::now() + Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PollerError::ShardsFailed { failed: 1, shard_id, .. } if shard_id == "parent"),
            "{err:?}"
        );
        assert!(saved(&w2, "parent").shard_end);
    }
}
