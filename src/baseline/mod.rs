//! The baseline compare: the whole source table against the other side, both directions, one
//! segment of a parallel Scan at a time, resumable, at a bounded read rate.
//!
//! Per segment, both tables' scans side by side, merged by key ([`merge`], [`segment`]'s loop):
//! 1. **Read alike**: a key both scans read with equal items is a MATCH, with no further read.
//! 2. **Source to other side**: a source item the other scan read differently, or did not read,
//!    becomes an expectation (the item as scanned, since the moment it was read), judged by the
//!    engine against the other side as stream records are: MATCH, MISSING, MISMATCH, or SUPERSEDED
//!    when the source changed since the scan and the other side kept up. No difference is
//!    reported before the item's window has passed and consistent reads of both sides still differ.
//! 3. **Other side to source**: a key only the other side's scan read becomes an expectation that
//!    the source holds an item under it, judged by the same engine with the sides swapped: what
//!    the other side alone holds for a whole window is EXTRA.
//! 4. When nothing waits in the merge, both scans' progress is saved in one write, so a killed run
//!    verifies again at most what it read since.
//!
//! Every verdict goes through the outcome sink (a WARN line per problem, the counters), as the
//! stream verifier's do. In [`crate::ports::rate`] the read rate (`MAX_READ_UNITS`).

pub mod merge;
mod segment;

use std::sync::Arc;

use thiserror::Error;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::config::{BaselineConfig, Sides, TableRef};
use crate::ports::checkpoint::BaselineCounts;
use crate::ports::checkpoint::{
    BaselineStore, CheckpointError, Direction, DirectionProgress, RunRecord, RunSettings,
};
use crate::ports::findings::NoFindings;
use crate::ports::findings::{CoverageSource, CoverageWrite, FindingsError, FindingsStore};
use crate::ports::rate::{CapacityRate, Limited};
use crate::ports::scan::{ScanError, ScanRequest, TableScanner, TableShape};
use crate::ports::table::TableReader;
use crate::record::Expectation;
use crate::report::findings::{refusal_gap, FindingsWriter, Occurrence, Pass};
use crate::report::metrics::InvocationMetrics;
use crate::report::OutcomeSink;
use crate::shared::epoch_ms;
use crate::verify::timing::Backoff;
use crate::verify::{Outcome, Proof, RetryReason, Verdict, Verifier};

/// A page's items still without a verdict are verified again at most this many times when they
/// are neither settled nor failing to be read (a key that keeps changing during the compare).
const UNSETTLED_ATTEMPTS: u32 = 3;

/// Replication windows one attempt at a page may take.
const ATTEMPT_WINDOWS: u32 = 2;

/// Pause between attempts after a transient failure (throttling, 5xx): it never fails a segment.
const THROTTLED: Backoff = Backoff {
    first: std::time::Duration::from_millis(200),
    max: std::time::Duration::from_secs(10),
};

#[derive(Debug, Error)]
pub enum BaselineError {
    #[error("scanning failed")]
    Scan(#[from] ScanError),
    #[error("saving or loading the baseline's progress failed")]
    Checkpoint(#[from] CheckpointError),
    #[error("looking keys up failed for good: {message}")]
    Lookup { message: String },
    #[error("writing findings or coverage failed")]
    Findings(#[from] FindingsError),
    #[error("segment {segment} is not below the run's {total_segments} segments")]
    NoSuchSegment { segment: u32, total_segments: u32 },
    #[error("the two tables' key schemas differ: {source_table} has {source_keys}, {other_table} has {other_keys}; the baseline compares tables with one key schema (a migration that changed the key is not one it can prove)")]
    KeySchemasDiffer {
        source_table: String,
        source_keys: String,
        other_table: String,
        other_keys: String,
    },
}

/// What one segment's work did, in one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SegmentReport {
    pub segment: u32,
    /// Both scans read to their end and every item judged.
    pub done: bool,
    /// The segment's counts so far (over every call of the run).
    pub counts: BaselineCounts,
}

/// A run's state, from its segments' checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub run: RunRecord,
    pub segments_done: u32,
    pub counts: BaselineCounts,
}

impl RunSummary {
    pub fn complete(&self) -> bool {
        self.segments_done == self.run.settings.total_segments
    }

    /// Recorded in a findings table: only then can readiness count the run.
    pub fn counts_for_readiness(&self) -> bool {
        self.run.settings.findings_table.is_some()
    }

    /// `{"run_id", "complete", "segments_done", "source", "other_side", "findings_table",
    /// "counts_for_readiness", "items_scanned", "verdicts"}`.
    pub fn to_json(&self) -> serde_json::Value {
        let settings = &self.run.settings;
        let mut out = serde_json::Map::new();
        out.insert("run_id".into(), self.run.run_id.clone().into());
        out.insert("complete".into(), self.complete().into());
        out.insert("segments_done".into(), self.segments_done.into());
        out.insert("source".into(), settings.source.clone().into());
        out.insert("other_side".into(), settings.other_side.clone().into());
        out.insert(
            "findings_table".into(),
            settings.findings_table.clone().into(),
        );
        out.insert(
            "counts_for_readiness".into(),
            self.counts_for_readiness().into(),
        );
        out.extend(self.counts.to_json());
        serde_json::Value::Object(out)
    }
}

/// What an operator reads when a run records no findings: it will not count.
pub const NOT_COUNTED: &str = "FINDINGS_TABLE is not set: this run records no findings and no coverage, so readiness will not count it (\"no baseline\"); to make it count, set FINDINGS_TABLE to the findings table the verifiers write to";

/// The seams a baseline reads and writes through.
pub struct BaselineParts<R, S, B> {
    /// The source table's account.
    pub source_reader: R,
    pub source_scanner: S,
    /// The other side's account.
    pub target_reader: R,
    pub target_scanner: S,
    pub store: B,
}

/// The baseline compare of one table pair.
pub struct Baseline<R, S, B, F> {
    /// Judges source items against the other side.
    forward: Verifier<Limited<R>>,
    /// Judges the other side's keys against the source (the sides swapped).
    reverse: Verifier<Limited<R>>,
    source_scanner: Limited<S>,
    target_scanner: Limited<S>,
    store: B,
    config: BaselineConfig,
    source_rate: Arc<CapacityRate>,
    target_rate: Arc<CapacityRate>,
    /// Problems, resolutions and the run's coverage, when there is a findings store.
    findings: Option<FindingsWriter<F>>,
    /// Each table's key schema, read once: a table's key schema cannot change, and segments
    /// (and warm invocations) then start without a DescribeTable each.
    source_keys: OnceCell<TableShape>,
    target_keys: OnceCell<TableShape>,
    /// The process's own region, where a table without a region of its own is.
    default_region: Option<String>,
}

/// What both directions of a segment's work share.
struct SegmentWork<'a> {
    run_id: &'a str,
    segment: u32,
    total_segments: u32,
    stop_at: Option<Instant>,
    on_page: &'a (dyn Fn(&BaselineCounts) + Sync),
}

impl SegmentWork<'_> {
    /// The Scan request for a table's next page (whole items), from `cursor`.
    fn page<'a>(
        &self,
        table: &'a str,
        cursor: &DirectionProgress,
        limit: Option<u32>,
    ) -> ScanRequest<'a> {
        ScanRequest {
            table,
            segment: self.segment,
            total_segments: self.total_segments,
            start_key: cursor.start_key.clone(),
            attributes: None,
            limit,
        }
    }
}

impl<R, S, B> Baseline<R, S, B, NoFindings>
where
    R: TableReader + Clone,
    S: TableScanner,
    B: BaselineStore,
{
    pub fn new(
        config: BaselineConfig,
        parts: BaselineParts<R, S, B>,
    ) -> Baseline<R, S, B, NoFindings> {
        let source_rate = CapacityRate::new(config.max_read_units);
        let target_rate = CapacityRate::new(config.max_read_units);
        let source = Limited::new(parts.source_reader, Arc::clone(&source_rate));
        let target = Limited::new(parts.target_reader, Arc::clone(&target_rate));
        let mut forward = config.verify.clone();
        // Every item, and the source read again before any negative verdict.
        forward.sample_rate = 1.0;
        forward.recheck_source = true;
        let mut reverse = forward.clone();
        // A table name that does not parse as a name or an ARN is kept as given.
        reverse.target_table = TableRef::parse_or_keep(&config.source_table);
        Baseline {
            forward: Verifier::new(forward, target.clone(), source.clone()),
            reverse: Verifier::new(reverse, source, target),
            source_scanner: Limited::new(parts.source_scanner, Arc::clone(&source_rate)),
            target_scanner: Limited::new(parts.target_scanner, Arc::clone(&target_rate)),
            store: parts.store,
            config,
            source_rate,
            target_rate,
            findings: None,
            source_keys: OnceCell::new(),
            target_keys: OnceCell::new(),
            default_region: None,
        }
    }
}

impl<R, S, B, F> Baseline<R, S, B, F>
where
    R: TableReader + Clone,
    S: TableScanner,
    B: BaselineStore,
    F: FindingsStore,
{
    /// Records problems, resolutions and the run's coverage in `writer`'s store (`None`: no store,
    /// a choice the wiring makes at run time).
    pub fn with_findings<G: FindingsStore>(
        self,
        writer: impl Into<Option<FindingsWriter<G>>>,
    ) -> Baseline<R, S, B, G> {
        Baseline {
            forward: self.forward,
            reverse: self.reverse,
            source_scanner: self.source_scanner,
            target_scanner: self.target_scanner,
            store: self.store,
            config: self.config,
            source_rate: self.source_rate,
            target_rate: self.target_rate,
            findings: writer.into(),
            source_keys: self.source_keys,
            target_keys: self.target_keys,
            default_region: self.default_region,
        }
    }

    /// The process's own region (`None`: not known), which names the tables without one of
    /// their own in [`Self::sides`] and in the run's record.
    pub fn in_region(mut self, default_region: Option<String>) -> Self {
        self.default_region = default_region;
        self
    }

    /// The two tables compared, with their accounts and regions.
    pub fn sides(&self) -> Sides {
        self.config.sides(self.default_region.as_deref())
    }

    /// What a run of `total_segments` compares, as recorded with it.
    pub fn settings(&self, total_segments: u32) -> RunSettings {
        let sides = self.sides();
        let mut ignore_attributes = self.config.verify.ignore_attributes.clone();
        ignore_attributes.sort();
        ignore_attributes.dedup();
        RunSettings {
            source: sides.source.to_string(),
            other_side: sides.other.to_string(),
            ignore_attributes,
            total_segments,
            findings_table: self.findings.as_ref().map(|_| {
                // A store given in code without FINDINGS_TABLE (tests) still records findings.
                self.config
                    .verify
                    .findings_table
                    .clone()
                    .unwrap_or_else(|| "(a findings store)".to_string())
            }),
        }
    }

    /// The verified table's name, as findings and coverage name it.
    pub fn table_name(&self) -> String {
        TableRef::parse(&self.config.source_table)
            .map(|t| t.name)
            .unwrap_or_else(|| self.config.source_table.clone())
    }

    pub fn config(&self) -> &BaselineConfig {
        &self.config
    }

    /// Read units consumed so far by this process: (source table, other side's table).
    pub fn consumed_read_units(&self) -> (f64, f64) {
        (self.source_rate.consumed(), self.target_rate.consumed())
    }

    /// The number of items on the source, as DescribeTable estimates it.
    pub async fn source_item_count(&self) -> Result<Option<u64>, BaselineError> {
        Ok(self
            .source_scanner
            .describe(&self.config.source_table)
            .await?
            .item_count)
    }

    /// Records the run's start (once, with what it compares, and in the run's coverage) and
    /// returns it; a run recorded with other tables or settings is refused. (Tables whose key
    /// schemas differ are refused by each segment, before anything is scanned.)
    pub async fn start(
        &self,
        run_id: &str,
        total_segments: u32,
    ) -> Result<RunRecord, BaselineError> {
        let run = self
            .store
            .start_run(run_id, &self.settings(total_segments), epoch_ms())
            .await?;
        self.cover(&run).await?;
        Ok(run)
    }

    /// The run's coverage: its start, and its end once complete.
    async fn cover(&self, run: &RunRecord) -> Result<(), BaselineError> {
        let Some(findings) = &self.findings else {
            return Ok(());
        };
        let table = self.table_name();
        findings
            .cover(CoverageWrite {
                table: &table,
                source: CoverageSource::Baseline,
                name: &run.run_id,
                stream_arn: None,
                started_at_ms: Some(run.started_at_ms),
                verified_until_ms: run.finished_at_ms,
                retry_at_ms: None,
                complete: Some(run.finished_at_ms.is_some()),
                sample_rate: None,
                gaps: Vec::new(),
                now_ms: epoch_ms(),
            })
            .await?;
        Ok(())
    }

    /// Works on one segment from its checkpoint until it is done or `deadline` comes: both
    /// directions side by side. Every verdict is logged and counted in `metrics`, and `on_page`
    /// hears each page's counts once it is saved.
    pub async fn run_segment(
        &self,
        run_id: &str,
        segment: u32,
        total_segments: u32,
        deadline: Option<Instant>,
        metrics: &mut InvocationMetrics,
        on_page: &(dyn Fn(&BaselineCounts) + Sync),
    ) -> Result<SegmentReport, BaselineError> {
        if segment >= total_segments {
            return Err(BaselineError::NoSuchSegment {
                segment,
                total_segments,
            });
        }
        let stop_at = deadline.map(|d| {
            d.checked_sub(self.config.verify.deadline_margin)
                .unwrap_or_else(Instant::now)
        });
        // The key names are read beside the checkpoint, not after it.
        let load =
            async { Ok::<_, BaselineError>(self.store.load_segment(run_id, segment).await?) };
        let (progress, key_names) = tokio::try_join!(load, self.key_names(stop_at))?;
        let progress = progress.unwrap_or_default();
        let Some(key_names) = key_names else {
            // Out of time before both tables' key names were read: nothing verified, nothing lost.
            return Ok(SegmentReport {
                segment,
                done: progress.done(),
                counts: progress.counts(),
            });
        };
        let work = SegmentWork {
            run_id,
            segment,
            total_segments,
            stop_at,
            on_page,
        };
        let mut sink = OutcomeSink::counting(metrics);
        let progress = self
            .run_merged(&work, key_names, progress, &mut sink)
            .await?;
        Ok(SegmentReport {
            segment,
            done: progress.done(),
            counts: progress.counts(),
        })
    }

    /// Records a page's problems and resolves its MATCHed keys' findings; writes that fail are
    /// tried again with backoff. `false` when time ran out before every problem was recorded.
    async fn write_findings(
        &self,
        work: &SegmentWork<'_>,
        records: &[Expectation],
        outcomes: &mut [Outcome],
        observed_from_ms: u64,
        metrics: &mut InvocationMetrics,
    ) -> bool {
        let Some(findings) = &self.findings else {
            return true;
        };
        let verdicts = outcomes.to_vec();
        let refused_before = metrics.findings_rejected;
        let pass = Pass {
            occurrence: Occurrence::Baseline(work.run_id),
            observed_from_ms,
        };
        let no_evidence = Default::default();
        findings
            .write(records, outcomes, &no_evidence, pass, metrics)
            .await;
        if metrics.findings_rejected > refused_before
            && !self
                .record_refusals(work.run_id, metrics.findings_rejected - refused_before)
                .await
        {
            // The page is read again, so that its refusals are recorded then.
            return false;
        }
        let mut attempt = 0;
        loop {
            let failed: Vec<usize> = (0..outcomes.len())
                .filter(|&i| matches!(outcomes[i], Outcome::Retry(_)))
                .collect();
            if failed.is_empty() {
                return true;
            }
            let pause = THROTTLED.pause(attempt);
            attempt += 1;
            if work.stop_at.is_some_and(|s| Instant::now() + pause >= s) {
                return false;
            }
            tokio::time::sleep(pause).await;
            let again: Vec<Expectation> = failed.iter().map(|&i| records[i].clone()).collect();
            let mut retried: Vec<Outcome> = failed.iter().map(|&i| verdicts[i].clone()).collect();
            findings
                .write(&again, &mut retried, &no_evidence, pass, metrics)
                .await;
            for (i, outcome) in failed.into_iter().zip(retried) {
                outcomes[i] = outcome;
            }
        }
    }

    /// Problems the findings table refused: a gap of the run, so that readiness does not count it
    /// as complete proof (their keys have no finding). Whether it was written (if not, the page
    /// is not saved).
    async fn record_refusals(&self, run_id: &str, refused: u64) -> bool {
        let Some(findings) = &self.findings else {
            return true;
        };
        let table = self.table_name();
        let write = CoverageWrite {
            table: &table,
            source: CoverageSource::Baseline,
            name: run_id,
            stream_arn: None,
            started_at_ms: None,
            verified_until_ms: None,
            retry_at_ms: None,
            complete: None,
            sample_rate: None,
            gaps: refusal_gap(refused).into_iter().collect(),
            now_ms: epoch_ms(),
        };
        match findings.cover(write).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(run_id, error = %crate::shared::error_chain(&e), "the run's refused problems were not recorded as a gap: the page is read again");
                false
            }
        }
    }

    /// The run as its checkpoints tell it; records it as finished once every segment is done.
    pub async fn finish(
        &self,
        run_id: &str,
        total_segments: u32,
    ) -> Result<RunSummary, BaselineError> {
        let mut run = self.start(run_id, total_segments).await?;
        let segments = self.store.load_segments(run_id).await?;
        let mut counts = BaselineCounts::default();
        let mut segments_done = 0;
        for progress in segments.values() {
            counts += progress.counts();
            segments_done += u32::from(progress.done());
        }
        if segments_done == total_segments {
            run = self.store.finish_run(run_id, epoch_ms()).await?;
            self.cover(&run).await?;
        }
        Ok(RunSummary {
            run,
            segments_done,
            counts,
        })
    }

    /// The scanner and the table that `direction` scans.
    fn scanned(&self, direction: Direction) -> (&Limited<S>, &str) {
        match direction {
            Direction::Source => (&self.source_scanner, &self.config.source_table),
            Direction::Target => (
                &self.target_scanner,
                &self.config.verify.target_table.api_name,
            ),
        }
    }

    /// The key schema of the table that `direction` scans (DescribeTable the first time,
    /// throttling retried until `stop_at`); `None` when time ran out first, which is not kept.
    async fn key_schema(
        &self,
        direction: Direction,
        stop_at: Option<Instant>,
    ) -> Result<Option<&TableShape>, BaselineError> {
        let (scanner, table) = self.scanned(direction);
        let cell = match direction {
            Direction::Source => &self.source_keys,
            Direction::Target => &self.target_keys,
        };
        let shape = cell
            .get_or_try_init(|| async {
                match self.retrying(|| scanner.describe(table), stop_at).await {
                    Ok(Some(shape)) => Ok(shape),
                    Ok(None) => Err(None),
                    Err(e) => Err(Some(e)),
                }
            })
            .await;
        match shape {
            Ok(shape) => Ok(Some(shape)),
            Err(None) => Ok(None),
            Err(Some(e)) => Err(e),
        }
    }

    /// Both tables' key names, once both key schemas are read and found equal; `None` when time
    /// ran out first. Tables with other key schemas are refused: no item of one could be looked
    /// up by its key in the other.
    async fn key_names(
        &self,
        stop_at: Option<Instant>,
    ) -> Result<Option<&[String]>, BaselineError> {
        let (source, other) = tokio::try_join!(
            self.key_schema(Direction::Source, stop_at),
            self.key_schema(Direction::Target, stop_at)
        )?;
        let (Some(source), Some(other)) = (source, other) else {
            return Ok(None);
        };
        if !source.same_keys_as(other) {
            return Err(BaselineError::KeySchemasDiffer {
                source_table: self.config.source_table.clone(),
                source_keys: source.key_schema(),
                other_table: self.config.verify.target_table.api_name.clone(),
                other_keys: other.key_schema(),
            });
        }
        Ok(Some(source.key_names.as_slice()))
    }

    /// One scan page, throttling and 5xx retried with backoff until `stop_at`; `None` when time
    /// ran out first.
    async fn scan(
        &self,
        scanner: &Limited<S>,
        request: ScanRequest<'_>,
        stop_at: Option<Instant>,
    ) -> Result<Option<crate::ports::scan::ScanPage>, BaselineError> {
        self.retrying(|| scanner.scan(request.clone()), stop_at)
            .await
    }

    async fn retrying<T, C, Fut>(
        &self,
        call: C,
        stop_at: Option<Instant>,
    ) -> Result<Option<T>, BaselineError>
    where
        C: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ScanError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(out) => return Ok(Some(out)),
                Err(e) if e.is_transient() => {
                    let pause = THROTTLED.pause(attempt);
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "scan throttled or failed; backing off");
                    if stop_at.is_some_and(|s| Instant::now() + pause >= s) {
                        return Ok(None);
                    }
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The deadline of one attempt at a page: each attempt gets a few windows, so a key that
    /// keeps changing costs a bounded time; never past `stop_at` (the caller's deadline less the
    /// margin the engine takes off again).
    fn attempt_deadline(&self, stop_at: Option<Instant>) -> Instant {
        let config = &self.config.verify;
        let attempt_ends =
            Instant::now() + config.max_replication_lag * ATTEMPT_WINDOWS + config.deadline_margin;
        match stop_at {
            Some(stop) => (stop + config.deadline_margin).min(attempt_ends),
            None => attempt_ends,
        }
    }

    /// Verifies a page until every item has a verdict; `None` when `stop_at` came first. A key
    /// that stays unsettled for [`UNSETTLED_ATTEMPTS`] is UNVERIFIABLE (the stream verifier covers
    /// its changes); transient lookup failures are retried with backoff, never counted.
    async fn verify_page(
        &self,
        verifier: &Verifier<Limited<R>>,
        expectations: &[Expectation],
        stop_at: Option<Instant>,
        metrics: &mut InvocationMetrics,
    ) -> Result<Option<Vec<Verdict>>, BaselineError> {
        let mut verdicts: Vec<Option<Verdict>> = vec![None; expectations.len()];
        let mut todo: Vec<usize> = (0..expectations.len()).collect();
        let mut unsettled = 0;
        let mut failed = 0;
        let mut again_batch: Vec<Expectation>;
        while !todo.is_empty() {
            // The first attempt verifies the page as scanned; only later ones need a copy.
            let batch = if todo.len() == expectations.len() {
                expectations
            } else {
                again_batch = todo.iter().map(|&i| expectations[i].clone()).collect();
                again_batch.as_slice()
            };
            let deadline = self.attempt_deadline(stop_at);
            // Cut short by the caller's deadline: time, not the item, is what ran out.
            let cut_short =
                stop_at.is_some_and(|s| deadline >= s + self.config.verify.deadline_margin);
            let report = verifier.verify(batch, Some(deadline)).await;
            metrics.add_calls(&report);
            let (mut again, transient, ran_out) =
                sort_attempt(&todo, report.outcomes, &mut verdicts)?;
            if again.is_empty() {
                break;
            }
            if stop_at.is_some_and(|s| Instant::now() >= s) || (ran_out && cut_short) {
                return Ok(None);
            }
            if transient {
                let pause = THROTTLED.pause(failed);
                failed += 1;
                if stop_at.is_some_and(|s| Instant::now() + pause >= s) {
                    return Ok(None);
                }
                tokio::time::sleep(pause).await;
            } else {
                unsettled += 1;
                if unsettled >= UNSETTLED_ATTEMPTS {
                    for i in again.drain(..) {
                        verdicts[i] = Some(Verdict::Unverifiable {
                            reason: KEPT_CHANGING.into(),
                        });
                    }
                }
            }
            todo = again;
        }
        Ok(Some(
            verdicts
                .into_iter()
                .map(|v| {
                    v.unwrap_or(Verdict::Unverifiable {
                        reason: "no verdict".into(),
                    })
                })
                .collect(),
        ))
    }
}

/// The verdict of an item still unsettled after [`UNSETTLED_ATTEMPTS`].
const KEPT_CHANGING: &str = "the item kept changing during the compare: neither side settled; the stream verifier covers its changes";

/// Takes an attempt's verdicts (`outcomes`, for the items at `todo`) into `verdicts`; the items to
/// try again, whether a lookup failed transiently among them, and whether time ran out for one
/// (still within its window, or not read at all). A lookup that failed for good fails the page.
fn sort_attempt(
    todo: &[usize],
    outcomes: Vec<Outcome>,
    verdicts: &mut [Option<Verdict>],
) -> Result<(Vec<usize>, bool, bool), BaselineError> {
    let mut again = Vec::new();
    let mut transient = false;
    let mut ran_out = false;
    for (&i, outcome) in todo.iter().zip(outcomes) {
        match outcome {
            Outcome::Verdict(verdict) => verdicts[i] = Some(verdict),
            Outcome::Retry(RetryReason::LookupFailed {
                message,
                transient: false,
            }) => return Err(BaselineError::Lookup { message }),
            Outcome::Retry(RetryReason::LookupFailed { .. }) => {
                transient = true;
                again.push(i);
            }
            Outcome::Retry(RetryReason::StillReplicating { .. } | RetryReason::OutOfTime) => {
                ran_out = true;
                again.push(i);
            }
            Outcome::Retry(_) | Outcome::NotSampled => again.push(i),
        }
    }
    Ok((again, transient, ran_out))
}

/// A page's verdicts as its direction counts and reports them: the items read, the verdicts by
/// kind, and the records reported with their outcomes. From the target, a key both sides hold is
/// counted only (the source's direction compares its contents), and a key missing on the source
/// is EXTRA (EXPIRED instead of EXTRA when past its TTL).
fn tally(
    direction: Direction,
    expectations: Vec<Expectation>,
    verdicts: Vec<Verdict>,
) -> (BaselineCounts, Vec<Expectation>, Vec<Outcome>) {
    let mut counts = BaselineCounts::default();
    let mut reported = Vec::with_capacity(expectations.len());
    let mut outcomes = Vec::with_capacity(expectations.len());
    for (expectation, verdict) in expectations.into_iter().zip(verdicts) {
        let verdict = match (direction, verdict) {
            // Both sides hold the key: the source's direction compares its contents.
            (Direction::Target, Verdict::Match { .. }) => {
                counts.items_target += 1;
                continue;
            }
            (Direction::Target, Verdict::Missing { proof }) => Verdict::Extra {
                proof: match proof {
                    Proof::AbsentWhileSourceHasItem => Proof::OnlyOnOtherSide,
                    other => other,
                },
            },
            // The other side's item past its TTL: what would have been an EXTRA.
            (Direction::Target, Verdict::Expired { ttl, .. }) => Verdict::Expired {
                ttl,
                instead_of: "EXTRA",
            },
            (_, verdict) => verdict,
        };
        match direction {
            Direction::Source => counts.items_source += 1,
            Direction::Target => counts.items_target += 1,
        }
        count_verdict(&mut counts, &verdict);
        reported.push(expectation);
        outcomes.push(Outcome::Verdict(verdict));
    }
    (counts, reported, outcomes)
}

/// Counts a verdict (a DELETE_NOT_APPLIED cannot come from a scan; it counts as a problem).
fn count_verdict(counts: &mut BaselineCounts, verdict: &Verdict) {
    match verdict {
        Verdict::Match { .. } => counts.matched += 1,
        Verdict::Missing { .. } => counts.missing += 1,
        Verdict::Mismatch { .. } => counts.mismatched += 1,
        Verdict::Extra { .. } | Verdict::DeleteNotApplied { .. } => counts.extra += 1,
        Verdict::Superseded { .. } => counts.superseded += 1,
        Verdict::Unverifiable { .. } => counts.unverifiable += 1,
        Verdict::Expired { .. } => counts.expired += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Expected, Origin};
    use aws_sdk_dynamodb::types::AttributeValue as V;

    /// What a scan of `table` expects of the key `pk`.
    fn scanned(table: &str, pk: &str, expected: Expected) -> Expectation {
        Expectation {
            keys: [("pk".to_string(), V::S(pk.into()))].into(),
            expected,
            since: None,
            source_table: Some(table.to_string()),
            origin: Origin::Scan,
        }
    }

    #[test]
    fn from_the_target_a_key_on_both_sides_is_counted_and_one_missing_is_extra() {
        let scanned_target = vec![
            scanned("T", "a", Expected::Present),
            scanned("T", "b", Expected::Present),
        ];
        let verdicts = vec![
            Verdict::Match {
                lag: std::time::Duration::ZERO,
            },
            Verdict::Missing {
                proof: Proof::AbsentWhileSourceHasItem,
            },
        ];
        let (counts, reported, outcomes) = tally(Direction::Target, scanned_target, verdicts);
        assert_eq!((counts.items_target, counts.items_source), (2, 0));
        assert_eq!(reported.len(), 1);
        assert_eq!(reported[0].keys.get("pk"), Some(&V::S("b".into())));
        assert!(matches!(
            outcomes[..],
            [Outcome::Verdict(Verdict::Extra {
                proof: Proof::OnlyOnOtherSide
            })]
        ));
        let item: crate::record::Item = [("pk".to_string(), V::S("a".into()))].into();
        let scanned_source = vec![scanned("S", "a", Expected::Image(item.into()))];
        let verdicts = vec![Verdict::Missing {
            proof: Proof::AbsentWhileSourceHasItem,
        }];
        let (counts, _, outcomes) = tally(Direction::Source, scanned_source, verdicts);
        assert_eq!((counts.items_target, counts.items_source), (0, 1));
        assert!(matches!(
            outcomes[..],
            [Outcome::Verdict(Verdict::Missing { .. })]
        ));
    }
}
