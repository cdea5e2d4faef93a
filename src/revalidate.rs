//! Revalidation: open findings read again through the same engine, resolved once they match.
//!
//! Each run (the scheduled `revalidator` function, or `ddb-verify revalidate`):
//! 1. reads the table's open findings due by now (`nextCheck`), oldest first, a page ([`CHUNK`]
//!    findings) at a time, so that memory is bounded by the page; unsettled ones only when asked
//!    (`include_unsettled`); a finding seen since the run began is not taken again;
//! 2. makes each an [`Expectation`] of the source's current item ([`Expected::SourceCurrent`],
//!    since now) and judges it as every other record is judged: consistent reads of the other side,
//!    the replication window, the source read again before any negative verdict, every key (no
//!    sampling), at `MAX_READ_UNITS` per table;
//! 3. MATCH (or both sides without an item) resolves the finding (`resolvedBy = revalidation`), and
//!    so does EXPIRED (the item is past its TTL: DynamoDB deletes it on both sides, so the finding
//!    no longer describes a replication difference; the log says "expired"); a problem verdict is recorded as the finding's latest state (`checks` + 1, the next check backed
//!    off: [`FIRST_RECHECK`] × 2^checks, at most [`LONGEST_RECHECK`]);
//! 4. a key that keeps changing (no verdict after [`UNSETTLED_ATTEMPTS`] attempts of
//!    [`ATTEMPT_WINDOWS`] windows each) counts as a check; at its [`UNSETTLED_CHECKS`]th check the
//!    finding is marked `unsettled` and parked ([`UNSETTLED_PARKED`]): it stays open (and blocks
//!    readiness) but is no longer read on schedule, and a WARN says so;
//! 5. a key not judged (the deadline came, or lookups kept failing transiently) is left as it was,
//!    still due: the next run takes it.
//!
//! Every outcome goes through the [`OutcomeSink`] (a WARN line per problem, the counters). The
//! report counts what happened and how many findings remain open afterwards (`OpenFindings`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use thiserror::Error;
use tokio::time::Instant;

use crate::config::{RevalidatorConfig, TableRef};
use crate::ports::findings::{
    Finding, FindingOrigin, FindingStatus, FindingsError, FindingsStore, ListCursor, ListPage,
    PageRequest, Problem, Recheck, Resolution,
};
use crate::ports::rate::{CapacityRate, Limited};
use crate::ports::table::TableReader;
use crate::record::{Expectation, Expected, Origin};
use crate::report::emf::{self, Metric};
use crate::report::findings::{problem_of, FIRST_RECHECK};
use crate::report::metrics::InvocationMetrics;
use crate::report::{OutcomeSink, RecordReport};
use crate::shared::epoch_ms;
use crate::shared::error_chain;
use crate::verify::timing::Backoff;
use crate::verify::{
    BatchReport, Evidence, Outcome, Proof, RetryReason, Supersession, Verdict, Verifier,
};

/// Attempts within one run at a key that neither settles nor fails to be read.
pub const UNSETTLED_ATTEMPTS: u32 = 2;

/// Replication windows one attempt may take.
pub const ATTEMPT_WINDOWS: u32 = 2;

/// The check (counting every revalidation that did not clear the finding) at which a key that keeps
/// changing is marked unsettled.
pub const UNSETTLED_CHECKS: u32 = 3;

/// The longest a finding still wrong waits for its next check.
pub const LONGEST_RECHECK: Duration = Duration::from_secs(6 * 3600);

/// How far ahead an unsettled finding's next check is put: out of the schedule's reach.
pub const UNSETTLED_PARKED: Duration = Duration::from_secs(365 * 24 * 3600);

/// Findings read and judged at a time (one page, one engine call).
pub const CHUNK: usize = 500;

/// One listing a run walks: the findings due (unsettled ones only when asked), then, when asked,
/// the unsettled ones not due yet.
#[derive(Debug, Clone, Copy)]
struct Pass {
    due_by_ms: Option<u64>,
    /// The unsettled findings not due by this time (the second pass), else the due ones.
    unsettled_after_ms: Option<u64>,
}

impl Pass {
    fn of(options: &RevalidateOptions, now_ms: u64) -> Vec<Pass> {
        let due_by = options.due_by_ms.unwrap_or(now_ms);
        let mut passes = vec![Pass {
            due_by_ms: Some(due_by),
            unsettled_after_ms: None,
        }];
        if options.include_unsettled && due_by < u64::MAX {
            passes.push(Pass {
                due_by_ms: None,
                unsettled_after_ms: Some(due_by),
            });
        }
        passes
    }
}

/// What a run has taken so far, to keep to `--limit` and to judge no finding twice.
struct Walk<'a> {
    options: &'a RevalidateOptions,
    started_ms: u64,
    taken: usize,
}

impl Walk<'_> {
    fn full(&self) -> bool {
        self.options.limit.is_some_and(|l| self.taken >= l)
    }

    /// The page's findings this pass takes, within the limit. A finding seen since the run began
    /// was judged by it already (a check moves it further down the list) or by a verifier since.
    fn take(&mut self, pass: Pass, page: Vec<Finding>) -> Vec<Finding> {
        let room = self
            .options
            .limit
            .map_or(usize::MAX, |l| l.saturating_sub(self.taken));
        let include_unsettled = self.options.include_unsettled;
        let taken: Vec<Finding> = page
            .into_iter()
            .filter(|f| f.last_seen_ms <= self.started_ms)
            .filter(|f| match pass.unsettled_after_ms {
                None => include_unsettled || !f.unsettled,
                Some(due_by) => f.unsettled && f.next_check_ms.is_none_or(|n| n > due_by),
            })
            .take(room)
            .collect();
        self.taken += taken.len();
        taken
    }
}

/// Pause after transient lookup or write failures.
const THROTTLED: Backoff = Backoff {
    first: Duration::from_millis(200),
    max: Duration::from_secs(10),
};

/// Transient write failures tried again before the finding is left as it was.
const WRITE_ATTEMPTS: u32 = 4;

/// Attempts at a chunk whose lookups keep failing transiently, in a run without a deadline (the
/// CLI's): then its findings are left due, as a deadline leaves them.
pub const LOOKUP_ATTEMPTS_WITHOUT_DEADLINE: u32 = 5;

#[derive(Debug, Error)]
pub enum RevalidateError {
    #[error("listing the open findings of {table} failed")]
    List {
        table: String,
        #[source]
        source: FindingsError,
    },
    #[error("updating the finding of {key} failed")]
    Write {
        key: String,
        #[source]
        source: FindingsError,
    },
    #[error("looking keys up failed for good: {message}")]
    Lookup { message: String },
}

/// What a run takes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevalidateOptions {
    /// At most this many findings (the earliest due first).
    pub limit: Option<usize>,
    /// Unsettled findings too, whether due or not.
    pub include_unsettled: bool,
    /// Findings due by this time (epoch milliseconds); `None`: now. `Some(u64::MAX)`: every open
    /// finding, due or not.
    pub due_by_ms: Option<u64>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RevalidationReport {
    /// The verified table, as findings name it.
    pub table: String,
    /// Findings judged (resolved, or still open with one more check).
    pub checked: u64,
    pub resolved: u64,
    /// Judged and still wrong (or still changing).
    pub still_open: u64,
    /// Marked unsettled by this run (among `still_open`).
    pub marked_unsettled: u64,
    /// Listed but not judged (the deadline, transient failures): still due.
    pub left_due: u64,
    /// Open findings of the table after the run, unsettled ones included.
    pub open_remaining: u64,
    pub metrics: InvocationMetrics,
}

impl RevalidationReport {
    /// `{"table", "checked", "resolved", "still_open", "marked_unsettled", "left_due",
    /// "open_remaining"}`, as the CLI and the function answer.
    pub fn to_json(&self) -> Value {
        json!({
            "table": self.table,
            "checked": self.checked,
            "resolved": self.resolved,
            "still_open": self.still_open,
            "marked_unsettled": self.marked_unsettled,
            "left_due": self.left_due,
            "open_remaining": self.open_remaining,
        })
    }

    /// The run's EMF metrics: the engine's counters, `OpenFindings`, `FindingsChecked` and
    /// `FindingsMarkedUnsettled`.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut out = self.metrics.metrics();
        out.push(Metric::count("OpenFindings", self.open_remaining));
        out.push(Metric::count("FindingsChecked", self.checked));
        out.push(Metric::count(
            "FindingsMarkedUnsettled",
            self.marked_unsettled,
        ));
        out
    }
}

/// A finding's result in one run.
enum Judged {
    Verdict {
        verdict: Verdict,
        evidence: Option<Evidence>,
        /// When the attempt that judged it began: a sighting recorded later keeps it open.
        judged_at_ms: u64,
    },
    /// Neither side settled through every attempt.
    KeptChanging,
    /// Not judged this run.
    LeftDue(RetryReason),
}

/// Checks a table's open findings again (module documentation).
pub struct Revalidator<R, F> {
    verifier: Verifier<Limited<R>>,
    store: F,
    config: RevalidatorConfig,
    table: String,
    source_rate: Arc<CapacityRate>,
    target_rate: Arc<CapacityRate>,
}

impl<R: TableReader, F: FindingsStore> Revalidator<R, F> {
    /// `target` reads the other side's table, `source` the source table; `store` holds the findings.
    pub fn new(config: RevalidatorConfig, target: R, source: R, store: F) -> Revalidator<R, F> {
        let source_rate = CapacityRate::new(config.max_read_units);
        let target_rate = CapacityRate::new(config.max_read_units);
        let mut verify = config.verify.clone();
        // Every finding, read consistently, and the source read again before any verdict.
        verify.sample_rate = 1.0;
        verify.recheck_source = true;
        verify.consistent_read = true;
        let verifier = Verifier::new(
            verify,
            Limited::new(target, Arc::clone(&target_rate)),
            Limited::new(source, Arc::clone(&source_rate)),
        );
        let table = TableRef::parse(&config.source_table)
            .map(|t| t.name)
            .unwrap_or_else(|| config.source_table.clone());
        Revalidator {
            verifier,
            store,
            config,
            table,
            source_rate,
            target_rate,
        }
    }

    /// The verified table's name, as findings name it.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    pub fn config(&self) -> &RevalidatorConfig {
        &self.config
    }

    pub fn store(&self) -> &F {
        &self.store
    }

    /// Read units consumed so far: (source table, other side's table).
    pub fn consumed_read_units(&self) -> (f64, f64) {
        (self.source_rate.consumed(), self.target_rate.consumed())
    }

    /// One run: the findings due, judged and updated, until `deadline` (module documentation).
    /// Findings are read a page ([`CHUNK`]) at a time: memory is bounded by the page, whatever the
    /// number of open findings.
    pub async fn run(
        &self,
        deadline: Option<Instant>,
        options: &RevalidateOptions,
    ) -> Result<RevalidationReport, RevalidateError> {
        let margin = self.config.verify.deadline_margin;
        let stop_at = deadline.map(|d| d.checked_sub(margin).unwrap_or_else(Instant::now));
        let mut report = RevalidationReport {
            table: self.table.clone(),
            ..RevalidationReport::default()
        };
        let mut metrics = InvocationMetrics::default();
        let mut walk = Walk {
            options,
            started_ms: epoch_ms(),
            taken: 0,
        };
        for pass in Pass::of(options, walk.started_ms) {
            let mut after = None;
            loop {
                let page = self.due_page(pass, after).await?;
                let chunk = walk.take(pass, page.findings);
                let judged = self
                    .judge_chunk(&chunk, stop_at, &mut metrics, &mut report)
                    .await?;
                if !judged {
                    report.left_due += chunk.len() as u64;
                    report.left_due += self.count_rest(&mut walk, pass, page.next).await?;
                    break;
                }
                match page.next {
                    Some(next) if !walk.full() => after = Some(next),
                    _ => break,
                }
            }
        }
        report.open_remaining = self
            .store
            .count(&self.table, FindingStatus::Open, None)
            .await
            .map_err(|source| self.list_error(source))?;
        report.metrics = metrics;
        tracing::info!(
            table = %self.table,
            checked = report.checked,
            resolved = report.resolved,
            still_open = report.still_open,
            marked_unsettled = report.marked_unsettled,
            left_due = report.left_due,
            open_remaining = report.open_remaining,
            lookup_calls = report.metrics.lookup_calls,
            "revalidation run done"
        );
        Ok(report)
    }

    /// Judges these findings now, whether due or not (`ddb-verify repair` after its writes): each
    /// resolved only by a verified MATCH, as in a run; no deadline. The open findings are not
    /// counted (`open_remaining` stays 0): the caller counts once, at its end.
    pub async fn recheck(
        &self,
        findings: &[Finding],
    ) -> Result<RevalidationReport, RevalidateError> {
        let mut report = RevalidationReport {
            table: self.table.clone(),
            ..RevalidationReport::default()
        };
        let mut metrics = InvocationMetrics::default();
        for chunk in findings.chunks(CHUNK) {
            self.judge_chunk(chunk, None, &mut metrics, &mut report)
                .await?;
        }
        report.metrics = metrics;
        Ok(report)
    }

    /// Judges and settles one page's findings; `false` (nothing done) when the deadline leaves no
    /// time for a window.
    async fn judge_chunk(
        &self,
        chunk: &[Finding],
        stop_at: Option<Instant>,
        metrics: &mut InvocationMetrics,
        report: &mut RevalidationReport,
    ) -> Result<bool, RevalidateError> {
        // No new work that could not be judged before the deadline: a finding still wrong needs a
        // window.
        let lag = self.config.verify.max_replication_lag;
        if stop_at.is_some_and(|s| Instant::now() + lag >= s) {
            return Ok(false);
        }
        if chunk.is_empty() {
            return Ok(true);
        }
        metrics.records_received += chunk.len() as u64;
        let judged = self.judge(chunk, stop_at, metrics).await?;
        let mut sink = OutcomeSink::counting(metrics);
        for (finding, judged) in chunk.iter().zip(judged) {
            self.settle(finding, judged, stop_at, &mut sink, report)
                .await?;
        }
        Ok(true)
    }

    /// The findings a run stopped before: the rest of this pass's pages, read a page at a time and
    /// counted (not judged).
    async fn count_rest(
        &self,
        walk: &mut Walk<'_>,
        pass: Pass,
        mut next: Option<ListCursor>,
    ) -> Result<u64, RevalidateError> {
        let mut rest = 0;
        while let Some(after) = next.take() {
            if walk.full() {
                break;
            }
            let page = self.due_page(pass, Some(after)).await?;
            rest += walk.take(pass, page.findings).len() as u64;
            next = page.next;
        }
        Ok(rest)
    }

    /// A page ([`CHUNK`]) of the open findings due in `pass`, after `after`.
    async fn due_page(
        &self,
        pass: Pass,
        after: Option<ListCursor>,
    ) -> Result<ListPage, RevalidateError> {
        self.store
            .list_page(PageRequest {
                table: &self.table,
                status: FindingStatus::Open,
                due_by_ms: pass.due_by_ms,
                after,
                size: CHUNK,
            })
            .await
            .map_err(|source| self.list_error(source))
    }

    fn list_error(&self, source: FindingsError) -> RevalidateError {
        RevalidateError::List {
            table: self.table.clone(),
            source,
        }
    }

    /// The finding as the engine verifies it: whatever the source holds now, from now on.
    fn expectation(&self, finding: &Finding) -> Expectation {
        Expectation {
            keys: finding.key.clone(),
            expected: Expected::SourceCurrent,
            since: Some(SystemTime::now()),
            source_table: Some(self.config.source_table.clone()),
            origin: Origin::Finding,
        }
    }

    /// Judges a chunk: attempts of a few windows each until every key has a verdict, keeps
    /// changing through [`UNSETTLED_ATTEMPTS`] attempts, or time runs out; transient lookup
    /// failures backed off.
    async fn judge(
        &self,
        findings: &[Finding],
        stop_at: Option<Instant>,
        metrics: &mut InvocationMetrics,
    ) -> Result<Vec<Judged>, RevalidateError> {
        let mut judged: Vec<Judged> = (0..findings.len())
            .map(|_| Judged::LeftDue(RetryReason::OutOfTime))
            .collect();
        let mut todo: Vec<usize> = (0..findings.len()).collect();
        let (mut unsettled, mut failed) = (0, 0);
        while !todo.is_empty() {
            if stop_at.is_some_and(|s| Instant::now() >= s) {
                break;
            }
            let batch: Vec<Expectation> = todo
                .iter()
                .map(|&i| self.expectation(&findings[i]))
                .collect();
            let (deadline, cut) = self.attempt_deadline(stop_at);
            let judged_at_ms = epoch_ms();
            let answer = self.verifier.verify(&batch, Some(deadline)).await;
            metrics.add_calls(&answer);
            let (again, transient) = sort_attempt(&todo, answer, judged_at_ms, &mut judged)?;
            if again.is_empty() {
                break;
            }
            if transient {
                let pause = THROTTLED.pause(failed);
                failed += 1;
                let out_of_time = match stop_at {
                    Some(s) => Instant::now() + pause >= s,
                    None => failed >= LOOKUP_ATTEMPTS_WITHOUT_DEADLINE,
                };
                if out_of_time {
                    break;
                }
                tokio::time::sleep(pause).await;
            } else if cut {
                // The deadline, not the key, ended the attempt.
                break;
            } else {
                unsettled += 1;
                if unsettled >= UNSETTLED_ATTEMPTS {
                    for &i in &again {
                        judged[i] = Judged::KeptChanging;
                    }
                    break;
                }
            }
            todo = again;
        }
        Ok(judged)
    }

    /// The deadline of one attempt of a few windows, and whether `stop_at` (the deadline less
    /// the margin the engine takes off again) cuts it short.
    fn attempt_deadline(&self, stop_at: Option<Instant>) -> (Instant, bool) {
        let config = &self.config.verify;
        let attempt_ends =
            Instant::now() + config.max_replication_lag * ATTEMPT_WINDOWS + config.deadline_margin;
        let cut = stop_at.is_some_and(|s| s + config.deadline_margin < attempt_ends);
        let deadline = match stop_at {
            Some(s) if cut => s + config.deadline_margin,
            _ => attempt_ends,
        };
        (deadline, cut)
    }

    /// Records one finding's result in the store and in the sink.
    async fn settle(
        &self,
        finding: &Finding,
        judged: Judged,
        stop_at: Option<Instant>,
        sink: &mut OutcomeSink<'_>,
        report: &mut RevalidationReport,
    ) -> Result<(), RevalidateError> {
        let expectation = self.expectation(finding);
        let (verdict, evidence) = match judged {
            Judged::LeftDue(reason) => {
                report.left_due += 1;
                sink.accept(RecordReport::of(&expectation, Outcome::Retry(reason)));
                return Ok(());
            }
            Judged::KeptChanging => (None, None),
            Judged::Verdict {
                verdict,
                evidence,
                judged_at_ms,
            } => {
                let verdict = as_found(finding, verdict);
                if clears(&verdict) {
                    self.resolve(finding, &verdict, judged_at_ms, stop_at, sink, report)
                        .await?;
                    sink.accept(RecordReport::of(&expectation, Outcome::Verdict(verdict)));
                    return Ok(());
                }
                (Some(verdict), evidence)
            }
        };
        let shown = self
            .keep_open(finding, verdict, evidence, stop_at, sink, report)
            .await?;
        if let Some(shown) = shown {
            sink.accept(RecordReport::of(&expectation, Outcome::Verdict(shown)));
        }
        Ok(())
    }

    /// Resolves a finding its check cleared (judged at `judged_at_ms`).
    async fn resolve(
        &self,
        finding: &Finding,
        verdict: &Verdict,
        judged_at_ms: u64,
        stop_at: Option<Instant>,
        sink: &mut OutcomeSink<'_>,
        report: &mut RevalidationReport,
    ) -> Result<(), RevalidateError> {
        let resolution = Resolution {
            table: &self.table,
            key: &finding.key,
            origin: FindingOrigin::Revalidation,
            judged_at_ms,
        };
        let resolved = self
            .write(finding, stop_at, sink.metrics(), || {
                self.store.resolve(&resolution)
            })
            .await?;
        match resolved {
            Some(true) => {
                report.checked += 1;
                report.resolved += 1;
                sink.metrics().findings_resolved += 1;
                if let Verdict::Expired { instead_of, .. } = verdict {
                    tracing::info!(table = %self.table, key = %finding.key_text, was = %finding.verdict, instead_of, "finding resolved: the item expired by its TTL (gone or going on both sides), not a replication difference any more");
                }
            }
            // Seen again after this MATCH was judged, or no longer open.
            Some(false) => {
                report.checked += 1;
                report.still_open += 1;
            }
            None => report.left_due += 1,
        }
        Ok(())
    }

    /// A check that did not clear the finding: records the problem as it is now, or a key still
    /// changing (no verdict, or the other side following a newer state of the source); the
    /// verdict to show, `None` when the write kept failing (the finding is left due).
    async fn keep_open(
        &self,
        finding: &Finding,
        verdict: Option<Verdict>,
        evidence: Option<Evidence>,
        stop_at: Option<Instant>,
        sink: &mut OutcomeSink<'_>,
        report: &mut RevalidationReport,
    ) -> Result<Option<Verdict>, RevalidateError> {
        let (problem, changing) = match &verdict {
            Some(v) if v.is_problem() => (problem_of(v, evidence.as_ref()), false),
            other => (kept_changing(finding, other.as_ref()), true),
        };
        let checks = finding.checks + 1;
        let now = epoch_ms();
        let (next_check_ms, mark) = next_check(checks, changing, now);
        let recheck = Recheck {
            table: &self.table,
            key: &finding.key,
            problem: &problem,
            now_ms: now,
            next_check_ms,
            unsettled: mark,
        };
        let written = self
            .write(finding, stop_at, sink.metrics(), || {
                self.store.recheck(&recheck)
            })
            .await?;
        if written.is_none() {
            report.left_due += 1;
            return Ok(None);
        }
        report.checked += 1;
        report.still_open += 1;
        if mark {
            report.marked_unsettled += 1;
            tracing::warn!(
                table = %self.table,
                key = %finding.key_text,
                checks,
                "the key kept changing through {checks} revalidations: marked unsettled, it stays open but is no longer checked on schedule (ddb-verify revalidate --include-unsettled checks it)"
            );
        }
        Ok(Some(match verdict {
            Some(v) if !changing => v,
            _ => Verdict::Unverifiable {
                reason: problem.detail.clone(),
            },
        }))
    }

    /// A findings write, transient failures tried again with backoff; `None` when they kept
    /// failing (the finding stays as it was, still due).
    async fn write<T, C, Fut>(
        &self,
        finding: &Finding,
        stop_at: Option<Instant>,
        metrics: &mut InvocationMetrics,
        call: C,
    ) -> Result<Option<T>, RevalidateError>
    where
        C: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, FindingsError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(out) => return Ok(Some(out)),
                Err(e) if e.is_transient() => {
                    metrics.findings_write_failures += 1;
                    let pause = THROTTLED.pause(attempt);
                    attempt += 1;
                    if attempt >= WRITE_ATTEMPTS
                        || stop_at.is_some_and(|s| Instant::now() + pause >= s)
                    {
                        tracing::warn!(key = %finding.key_text, error = %error_chain(&e), "finding not updated; it stays due");
                        return Ok(None);
                    }
                    tokio::time::sleep(pause).await;
                }
                Err(source) => {
                    metrics.findings_write_failures += 1;
                    return Err(RevalidateError::Write {
                        key: finding.key_text.clone(),
                        source,
                    });
                }
            }
        }
    }
}

/// The wait before a finding checked `checks` times is checked again: [`FIRST_RECHECK`] doubled
/// per check, at most [`LONGEST_RECHECK`].
pub fn backoff(checks: u32) -> Duration {
    FIRST_RECHECK
        .saturating_mul(1u32.checked_shl(checks.min(20)).unwrap_or(u32::MAX))
        .min(LONGEST_RECHECK)
}

const KEPT_CHANGING: &str = "the key kept changing during revalidation";
const LAST_PROVEN: &str = "; last proven: ";

/// Takes an attempt's outcomes (for the findings at `todo`) into `judged`; the findings to try
/// again, and whether a lookup failed transiently among them. A lookup that failed for good fails
/// the run.
fn sort_attempt(
    todo: &[usize],
    mut answer: BatchReport,
    judged_at_ms: u64,
    judged: &mut [Judged],
) -> Result<(Vec<usize>, bool), RevalidateError> {
    let mut again = Vec::new();
    let mut transient = false;
    for (k, (&i, outcome)) in todo.iter().zip(answer.outcomes).enumerate() {
        match outcome {
            Outcome::Verdict(verdict) => {
                judged[i] = Judged::Verdict {
                    verdict,
                    evidence: answer.evidence.remove(&k),
                    judged_at_ms,
                }
            }
            Outcome::Retry(RetryReason::LookupFailed {
                message,
                transient: false,
            }) => return Err(RevalidateError::Lookup { message }),
            Outcome::Retry(reason) => {
                transient |= matches!(reason, RetryReason::LookupFailed { .. });
                judged[i] = Judged::LeftDue(reason);
                again.push(i);
            }
            Outcome::NotSampled => again.push(i),
        }
    }
    Ok((again, transient))
}

/// Whether a check's verdict clears the finding.
fn clears(verdict: &Verdict) -> bool {
    matches!(
        verdict,
        Verdict::Match { .. }
            // Neither side has an item: the tables agree.
            | Verdict::Superseded {
                by: Supersession::MatchesCurrentSource
            }
            // Not a MATCH, but the finding no longer describes a difference of
            // replication: the item is gone or going on both sides by its TTL.
            | Verdict::Expired { .. }
    )
}

/// When a finding checked `checks` times (this check included) is next due, and whether it is
/// marked unsettled: a key still `changing` after `UNSETTLED_CHECKS` checks is parked.
fn next_check(checks: u32, changing: bool, now: u64) -> (u64, bool) {
    let mark = changing && checks >= UNSETTLED_CHECKS;
    let next_check_ms = if mark {
        now + UNSETTLED_PARKED.as_millis() as u64
    } else {
        now + backoff(checks).as_millis() as u64
    };
    (next_check_ms, mark)
}

/// What a check of a key that keeps changing records: UNVERIFIABLE, with what was last proven.
fn kept_changing(finding: &Finding, verdict: Option<&Verdict>) -> Problem {
    let how = match verdict {
        Some(Verdict::Superseded { by }) => format!("the other side followed it ({by})"),
        _ => "neither side settled for a replication window".to_string(),
    };
    // What a check before this one proved, not nested again when that check found it changing.
    let last = match finding.detail.split_once(LAST_PROVEN) {
        Some((_, last)) if finding.detail.starts_with(KEPT_CHANGING) => last.to_string(),
        _ => format!("{} ({})", finding.verdict, finding.detail),
    };
    Problem {
        verdict: "UNVERIFIABLE",
        proof: None,
        detail: format!("{KEPT_CHANGING}: {how}{LAST_PROVEN}{last}"),
        attributes: finding.attributes.clone(),
        values: None,
    }
}

/// The verdict in the finding's terms: the source has no item while the other side has one is an
/// EXTRA when that is what the finding was.
fn as_found(finding: &Finding, verdict: Verdict) -> Verdict {
    match verdict {
        Verdict::DeleteNotApplied {
            proof: Proof::SourceUnchangedForWindow | Proof::SourceAsRecorded,
        } if finding.verdict == "EXTRA" => Verdict::Extra {
            proof: Proof::OnlyOnOtherSide,
        },
        Verdict::Expired { ttl, .. } if finding.verdict == "EXTRA" => Verdict::Expired {
            ttl,
            instead_of: "EXTRA",
        },
        other => other,
    }
}

/// The scheduled function's invocation: one run until `deadline`, its EMF metrics printed
/// (`OpenFindings` among them), and the report as JSON.
pub async fn scheduled<R: TableReader, F: FindingsStore>(
    revalidator: &Revalidator<R, F>,
    deadline: Instant,
) -> Result<Value, RevalidateError> {
    let report = revalidator
        .run(Some(deadline), &RevalidateOptions::default())
        .await?;
    emf::emit(&revalidator.config().verify, &report.metrics());
    Ok(report.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_back_off_from_the_first_recheck_to_six_hours() {
        assert_eq!(backoff(0), FIRST_RECHECK);
        assert_eq!(backoff(1), FIRST_RECHECK * 2);
        assert_eq!(backoff(3), FIRST_RECHECK * 8);
        assert_eq!(backoff(7), LONGEST_RECHECK);
        assert_eq!(backoff(u32::MAX), LONGEST_RECHECK);
    }

    #[test]
    fn a_key_still_changing_is_parked_after_its_checks_a_problem_never() {
        let now = 1_000_000;
        let backed_off = |checks| now + backoff(checks).as_millis() as u64;
        assert_eq!(next_check(1, true, now), (backed_off(1), false));
        assert!(!next_check(UNSETTLED_CHECKS - 1, true, now).1);
        let parked = now + UNSETTLED_PARKED.as_millis() as u64;
        assert_eq!(next_check(UNSETTLED_CHECKS, true, now), (parked, true));
        let problem = next_check(UNSETTLED_CHECKS + 5, false, now);
        assert_eq!(problem, (backed_off(UNSETTLED_CHECKS + 5), false));
    }

    #[test]
    fn a_check_clears_on_a_match_agreement_or_expiry_only() {
        let lag = Duration::ZERO;
        assert!(clears(&Verdict::Match { lag }));
        assert!(clears(&Verdict::Superseded {
            by: Supersession::MatchesCurrentSource
        }));
        assert!(!clears(&Verdict::Superseded {
            by: Supersession::MatchesNewerSourceState
        }));
        assert!(!clears(&Verdict::Missing {
            proof: Proof::SourceAsRecorded
        }));
    }
}
