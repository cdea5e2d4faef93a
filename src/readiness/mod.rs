//! `ddb-verify readiness`: may we cut over now? GO or NO-GO from what the verifiers recorded in the
//! findings table (the coverage ledger and findings), never from CloudWatch, computed afresh on
//! each call.
//!
//! GO when every check holds:
//! - **baseline**: a complete baseline run exists (the newest complete one is used);
//! - **no gap**: the coverage of the table's current stream links into one chain ([`chain`]) from
//!   before that run began, with no stretch between its links that nobody verified;
//! - **every change**: no gap (sampling, a shard read at `LATEST`, records trimmed, a creation
//!   time not believed) breaks that chain after the run began, and no verifier samples now;
//! - **stream recent**: the chain reaches within `max_lag` of now; or, once writes have stopped
//!   (`writes_stopped_at_ms`, the cut-over's freeze), **verified past the freeze**: the chain
//!   reaches past the time writes stopped, whatever the time now;
//! - **no open findings**: accepted findings do not block (they are listed);
//! - **no recent retries**: no record was handed back for re-delivery within `max_lag` of now.
//!
//! Times from different machines are compared with a clock margin (`clock_skew`), always on the
//! strict side. [`assess`] is pure (coverage and findings in, a [`Readiness`] out); [`gather`]
//! reads its input.

pub mod chain;
pub mod freeze;

use std::time::Duration;

use serde_json::{json, Value};

use crate::ports::findings::{
    Coverage, CoverageSource, Finding, FindingStatus, FindingsError, FindingsStore, Gap, GapCause,
    RecordedFreeze,
};
use crate::ports::mappings::Mapping;
use crate::ports::queue::{FailureQueue, QueueDepth};
use crate::report::emf::Metric;
use crate::shared::rfc3339;
use chain::{Chain, Link};
use freeze::{FunctionDelivery, LambdaFreeze};

/// How far behind now stream verification may be, and how long a re-delivery still blocks,
/// when `--max-lag` is not given.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(5 * 60);

/// How far apart the clocks of the machines that wrote the ledger may be, when `--clock-skew` is
/// not given.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(1);

/// The names of the checks, in the order they are shown.
pub const CHECK_BASELINE: &str = "baseline";
pub const CHECK_NO_GAP: &str = "no_gap";
pub const CHECK_EVERY_CHANGE: &str = "every_change";
pub const CHECK_STREAM_RECENT: &str = "stream_recent";
pub const CHECK_VERIFIED_PAST_FREEZE: &str = "verified_past_freeze";
pub const CHECK_NO_OPEN_FINDINGS: &str = "no_open_findings";
pub const CHECK_NO_RECENT_RETRIES: &str = "no_recent_retries";
pub const CHECK_FAILURE_QUEUE: &str = "failure_queue_empty";

/// The stream verifier's failure queue as readiness found it (`FAILURE_QUEUE_URL`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FailureQueueState {
    /// No queue configured: the check is skipped, and says why.
    #[default]
    NotConfigured,
    Read {
        url: String,
        depth: QueueDepth,
    },
    /// Configured, and its depth could not be read: why.
    Unreadable {
        url: String,
        why: String,
    },
}

/// The table's stream as DescribeTable tells it: only coverage of the current stream counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableStream {
    /// Enabled, with this ARN (`LatestStreamArn`).
    Current(String),
    /// The table has no stream enabled: its changes now are verified by nobody.
    Disabled,
    /// Could not be read: why.
    Unknown(String),
}

impl Default for TableStream {
    fn default() -> TableStream {
        TableStream::Unknown("the table's stream was not read".into())
    }
}

/// What readiness is computed from: one verified table's coverage items, open and accepted
/// findings, and its current stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadinessInput {
    pub table: String,
    pub coverage: Vec<Coverage>,
    pub open: Vec<Finding>,
    pub accepted: Vec<Finding>,
    pub stream: TableStream,
    pub failure_queue: FailureQueueState,
    /// The current stream's event source mappings, when they were read ([`apply_mappings`]).
    pub mappings: Option<Vec<Mapping>>,
    /// With writes frozen, the stream verifier functions' delivery metrics ([`needs_delivery`]).
    pub delivery: Vec<FunctionDelivery>,
    /// The freeze `ddb-verify freeze` recorded for the table, if any.
    pub recorded_freeze: Option<RecordedFreeze>,
}

impl ReadinessInput {
    /// When writes stopped, if they did: `--writes-stopped-at` when given, else the recorded
    /// freeze. Either way GO then needs every change before it verified.
    pub fn writes_stopped_at(&self, options: &ReadinessOptions) -> Option<u64> {
        options.writes_stopped_at_ms.or(self
            .recorded_freeze
            .as_ref()
            .map(|f| f.writes_stopped_at_ms))
    }

    /// The recorded freeze, when it is the one readiness assesses against (none was given).
    fn freeze_in_force(&self, options: &ReadinessOptions) -> Option<&RecordedFreeze> {
        match options.writes_stopped_at_ms {
            Some(_) => None,
            None => self.recorded_freeze.as_ref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadinessOptions {
    /// How far behind now the newest verified change may be; also how long a re-delivery blocks.
    pub max_lag: Duration,
    /// How far apart the writers' clocks may be (`--clock-skew`).
    pub clock_skew: Duration,
    /// When the source's writes stopped for the cut-over (`--writes-stopped-at`, epoch ms): GO
    /// then needs every change created before it verified, instead of coverage reaching now.
    pub writes_stopped_at_ms: Option<u64>,
    /// With writes frozen: how long Lambda's metrics may take to appear in CloudWatch.
    pub metrics_delay: Duration,
}

impl Default for ReadinessOptions {
    fn default() -> ReadinessOptions {
        ReadinessOptions {
            max_lag: DEFAULT_MAX_LAG,
            clock_skew: DEFAULT_CLOCK_SKEW,
            writes_stopped_at_ms: None,
            metrics_delay: freeze::DEFAULT_METRICS_DELAY,
        }
    }
}

/// One check: its name, whether it holds, and why in a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// Not made (what it needs is not configured): it does not block, and says why.
    pub skipped: bool,
}

/// The baseline run readiness relies on (the newest complete one, else the newest run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineRun {
    pub run_id: String,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    pub complete: bool,
}

/// An accepted finding, as readiness lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedFinding {
    pub key: String,
    pub verdict: String,
    pub reason: String,
}

/// One link of the chain readiness found, as it shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub source: CoverageSource,
    pub name: String,
    pub from_ms: u64,
    pub until_ms: u64,
}

/// A gap of the current stream's coverage, as readiness shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapShown {
    pub source: CoverageSource,
    pub name: String,
    pub cause: GapCause,
    pub at_ms: u64,
    pub count: u64,
    pub detail: String,
    /// Seen after the baseline began (less the clock margin): it breaks that verifier's coverage.
    pub after_baseline: bool,
}

/// GO or NO-GO, with every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub table: String,
    pub ready: bool,
    pub checks: Vec<Check>,
    pub baseline: Option<BaselineRun>,
    pub open_findings: usize,
    pub accepted: Vec<AcceptedFinding>,
    /// How far the chain of coverage reaches (or, without one, the newest change verified on the
    /// current stream).
    pub verified_until_ms: Option<u64>,
    /// The stream whose coverage counts.
    pub stream: Option<String>,
    pub chain: Vec<ChainLink>,
    pub gaps: Vec<GapShown>,
    pub clock_skew: Duration,
    pub checked_at_ms: u64,
    /// When writes stopped, when readiness judged against a freeze (given or recorded).
    pub writes_stopped_at_ms: Option<u64>,
    /// The recorded freeze judged against, when none was given.
    pub recorded_freeze: Option<RecordedFreeze>,
}

/// The metric of each check (1 when it holds or is skipped, 0 when it blocks), as the
/// revalidator emits them next to `Ready`.
pub fn check_metric(name: &str) -> Option<&'static str> {
    Some(match name {
        CHECK_BASELINE => "ReadyBaseline",
        CHECK_NO_GAP => "ReadyNoGap",
        CHECK_EVERY_CHANGE => "ReadyEveryChange",
        CHECK_STREAM_RECENT => "ReadyStreamRecent",
        CHECK_VERIFIED_PAST_FREEZE => "ReadyVerifiedPastFreeze",
        CHECK_NO_OPEN_FINDINGS => "ReadyNoOpenFindings",
        CHECK_NO_RECENT_RETRIES => "ReadyNoRecentRetries",
        CHECK_FAILURE_QUEUE => "ReadyFailureQueueEmpty",
        _ => return None,
    })
}

impl Readiness {
    /// `Ready` (1 GO, 0 NO-GO), one metric per check ([`check_metric`]), and `VerifiedAge` (how
    /// far behind now the coverage reaches, in milliseconds, when it reaches anywhere): what the
    /// dashboard's tile and the readiness alarm read.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut out = vec![Metric::count("Ready", u64::from(self.ready))];
        out.extend(
            self.checks.iter().filter_map(|c| {
                check_metric(c.name).map(|name| Metric::count(name, u64::from(c.ok)))
            }),
        );
        if let Some(until) = self.verified_until_ms {
            let age = self.checked_at_ms.saturating_sub(until) as f64;
            out.push(Metric::milliseconds("VerifiedAge", vec![age]));
        }
        out
    }

    /// What the revalidator emits when readiness could not be assessed: `Ready` 0 only.
    pub fn not_assessed_metrics() -> Vec<Metric> {
        vec![Metric::count("Ready", 0)]
    }

    /// The failing checks' sentences: empty when GO.
    pub fn reasons(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.detail.as_str())
            .collect()
    }

    /// `{"ready", "reasons", "checks", "baseline", "open_findings", "accepted_findings",
    /// "verified_until", "stream", "chain", "gaps", "clock_skew_ms", ...}`, times in RFC 3339 UTC.
    pub fn to_json(&self) -> Value {
        json!({
            "table": self.table,
            "ready": self.ready,
            "reasons": self.reasons(),
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name,
                "ok": c.ok,
                "skipped": c.skipped,
                "detail": c.detail,
            })).collect::<Vec<_>>(),
            "baseline": self.baseline.as_ref().map(|b| json!({
                "run_id": b.run_id,
                "started_at": b.started_at_ms.map(rfc3339),
                "finished_at": b.finished_at_ms.map(rfc3339),
                "complete": b.complete,
            })),
            "open_findings": self.open_findings,
            "accepted_findings": self.accepted.iter().map(|a| json!({
                "key": a.key,
                "verdict": a.verdict,
                "reason": a.reason,
            })).collect::<Vec<_>>(),
            "verified_until": self.verified_until_ms.map(rfc3339),
            "writes_stopped_at": self.writes_stopped_at_ms.map(rfc3339),
            "freeze_recorded": self.recorded_freeze.as_ref().map(|f| json!({
                "recorded_by": f.recorded_by,
                "recorded_at": rfc3339(f.recorded_at_ms),
                "valid_until": rfc3339(f.valid_until_ms),
            })),
            "stream": self.stream,
            "chain": self.chain.iter().map(|l| json!({
                "source": l.source.as_str(),
                "name": l.name,
                "from": rfc3339(l.from_ms),
                "until": rfc3339(l.until_ms),
            })).collect::<Vec<_>>(),
            "gaps": self.gaps.iter().map(|g| json!({
                "source": g.source.as_str(),
                "name": g.name,
                "cause": g.cause.as_str(),
                "at": rfc3339(g.at_ms),
                "count": g.count,
                "detail": g.detail,
                "after_baseline": g.after_baseline,
            })).collect::<Vec<_>>(),
            "clock_skew_ms": self.clock_skew.as_millis() as u64,
            "checked_at": rfc3339(self.checked_at_ms),
        })
    }

    /// The answer for a terminal: GO or NO-GO, each check, the chain, the gaps, the accepted
    /// findings.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} for table {} (checked {}, clock margin {})\n",
            if self.ready { "GO" } else { "NO-GO" },
            self.table,
            rfc3339(self.checked_at_ms),
            human_duration(self.clock_skew)
        );
        for check in &self.checks {
            out.push_str(&format!(
                "  [{}] {}: {}\n",
                match (check.ok, check.skipped) {
                    (_, true) => "skip",
                    (true, false) => " ok ",
                    (false, false) => "FAIL",
                },
                check.name,
                check.detail
            ));
        }
        if !self.chain.is_empty() {
            out.push_str("coverage chain:\n");
            for l in &self.chain {
                out.push_str(&format!(
                    "  {} {}: {} .. {}\n",
                    l.source.as_str(),
                    l.name,
                    rfc3339(l.from_ms),
                    rfc3339(l.until_ms)
                ));
            }
        }
        if !self.gaps.is_empty() {
            out.push_str("coverage gaps:\n");
            for g in &self.gaps {
                out.push_str(&format!(
                    "  {} {} {} at {} ({}x{}): {}\n",
                    g.source.as_str(),
                    g.name,
                    g.cause.as_str(),
                    rfc3339(g.at_ms),
                    g.count,
                    if g.after_baseline {
                        ", after the baseline began"
                    } else {
                        ""
                    },
                    g.detail
                ));
            }
        }
        if !self.accepted.is_empty() {
            out.push_str(&format!(
                "accepted findings ({}, not blocking):\n",
                self.accepted.len()
            ));
            for a in &self.accepted {
                out.push_str(&format!("  {} {}: {}\n", a.key, a.verdict, a.reason));
            }
        }
        out
    }
}

/// Reads what readiness needs for `table` from the findings store: every coverage item, the open
/// and the accepted findings. The table's current stream is `stream` (the caller reads it).
pub async fn gather<S: FindingsStore>(
    store: &S,
    table: &str,
    stream: TableStream,
) -> Result<ReadinessInput, FindingsError> {
    let (coverage, open, accepted, recorded_freeze) = futures::try_join!(
        store.coverage(table),
        store.list(table, FindingStatus::Open, None, None),
        store.list(table, FindingStatus::Accepted, None, None),
        store.freeze(table),
    )?;
    Ok(ReadinessInput {
        table: table.to_string(),
        coverage,
        open,
        accepted,
        stream,
        failure_queue: FailureQueueState::NotConfigured,
        mappings: None,
        delivery: Vec::new(),
        recorded_freeze,
    })
}

/// With writes frozen at `stopped_at_ms`, the stream verifier functions (Lambda) covering the
/// current stream whose delivery metrics the freeze needs, each from when ([`freeze`]).
pub fn needs_delivery(input: &ReadinessInput, stopped_at_ms: u64) -> Vec<(String, u64)> {
    let TableStream::Current(arn) = &input.stream else {
        return Vec::new();
    };
    input
        .coverage
        .iter()
        .filter(|c| c.source == CoverageSource::Stream && c.stream_arn.as_deref() == Some(arn))
        .map(|c| (c.name.clone(), freeze::metrics_from(c, stopped_at_ms)))
        .collect()
}

/// Whether the current stream has stream verifier (Lambda) coverage, whose event source mappings
/// must then be read ([`apply_mappings`]).
pub fn needs_mappings(input: &ReadinessInput) -> Option<&str> {
    let TableStream::Current(arn) = &input.stream else {
        return None;
    };
    input
        .coverage
        .iter()
        .any(|c| c.source == CoverageSource::Stream && c.stream_arn.as_deref() == Some(arn))
        .then_some(arn.as_str())
}

/// The stream verifier's event source mappings, as gaps of its coverage of the current stream: a
/// mapping of the function created, enabled, disabled or updated at T may have skipped records
/// before T (attached again at `LATEST`), which the function cannot see. Mappings that could not
/// be read are a gap now, with why.
pub fn apply_mappings(
    input: &mut ReadinessInput,
    mappings: Result<Vec<Mapping>, String>,
    now_ms: u64,
) {
    let TableStream::Current(arn) = input.stream.clone() else {
        return;
    };
    input.mappings = mappings.as_ref().ok().cloned();
    let lambda = input
        .coverage
        .iter_mut()
        .filter(|c| c.source == CoverageSource::Stream && c.stream_arn.as_deref() == Some(&arn));
    for entry in lambda {
        let gap = match &mappings {
            Err(why) => Some(Gap {
                cause: GapCause::MappingChanged,
                at_ms: now_ms,
                count: 1,
                detail: format!(
                    "the stream's event source mappings could not be read ({why}): allow lambda:ListEventSourceMappings to whoever runs readiness"
                ),
            }),
            // A mapping that does not say when it last changed counts as changed now.
            Ok(mappings) => mappings
                .iter()
                .filter(|m| m.function == entry.name)
                .map(|m| (m.last_modified_ms.unwrap_or(now_ms), m))
                .max_by_key(|(at, _)| *at)
                .map(|(at, m)| Gap {
                    cause: GapCause::MappingChanged,
                    at_ms: at,
                    count: 1,
                    detail: format!(
                        "event source mapping {} of {} was last created, enabled, disabled or updated then (state {}): records before it may have been skipped",
                        m.uuid, m.function, m.state
                    ),
                }),
        };
        entry.gaps.extend(gap);
    }
}

/// The failure queue's state: not configured, its depth, or why it could not be read.
pub async fn read_failure_queue<Q: FailureQueue>(queue: Option<&Q>) -> FailureQueueState {
    let Some(queue) = queue else {
        return FailureQueueState::NotConfigured;
    };
    match queue.depth().await {
        Ok(depth) => FailureQueueState::Read {
            url: queue.url().to_string(),
            depth,
        },
        Err(e) => FailureQueueState::Unreadable {
            url: queue.url().to_string(),
            why: e.message,
        },
    }
}

/// What the checks are computed from, worked out once.
struct Ledger<'a> {
    input: &'a ReadinessInput,
    now_ms: u64,
    options: &'a ReadinessOptions,
    skew_ms: u64,
    /// The newest complete baseline run, and the run shown (that one, else the newest run).
    complete: Option<&'a Coverage>,
    shown: Option<&'a Coverage>,
    /// Every stream verifier's and poller's entry, of any stream.
    streams: Vec<&'a Coverage>,
    /// Those of the current stream.
    current: Vec<&'a Coverage>,
    /// The chain from the complete run's start: with the gaps, and as if there were none.
    chain: Option<(Chain<'a>, Chain<'a>)>,
}

impl<'a> Ledger<'a> {
    fn new(input: &'a ReadinessInput, now_ms: u64, options: &'a ReadinessOptions) -> Ledger<'a> {
        let runs: Vec<&Coverage> = input
            .coverage
            .iter()
            .filter(|c| c.source == CoverageSource::Baseline)
            .collect();
        let newest = |c: &&&Coverage| (c.started_at_ms.unwrap_or(0), c.checked_at_ms);
        // A run with a gap (problems it could not record) is no proof.
        let complete = runs
            .iter()
            .filter(|c| c.complete && c.gaps.is_empty())
            .max_by_key(newest)
            .copied();
        let shown = complete.or_else(|| runs.iter().max_by_key(newest).copied());
        let streams: Vec<&Coverage> = input
            .coverage
            .iter()
            .filter(|c| matches!(c.source, CoverageSource::Stream | CoverageSource::Poller))
            .collect();
        let current: Vec<&Coverage> = match &input.stream {
            TableStream::Current(arn) => streams
                .iter()
                .filter(|c| c.stream_arn.as_deref() == Some(arn.as_str()))
                .copied()
                .collect(),
            _ => Vec::new(),
        };
        let skew_ms = options.clock_skew.as_millis() as u64;
        let chain = complete.and_then(|r| r.started_at_ms).map(|began| {
            let links = |with_gaps| -> Vec<Link<'a>> {
                current
                    .iter()
                    .filter_map(|c| Link::of(c, with_gaps))
                    .collect()
            };
            (
                chain::link(&links(true), began, skew_ms),
                chain::link(&links(false), began, skew_ms),
            )
        });
        Ledger {
            input,
            now_ms,
            options,
            skew_ms,
            complete,
            shown,
            streams,
            current,
            chain,
        }
    }

    fn baseline_began(&self) -> Option<u64> {
        self.complete.and_then(|r| r.started_at_ms)
    }

    /// How far the chain reaches; without one, the newest change verified on the current stream.
    fn verified_until(&self) -> Option<u64> {
        match &self.chain {
            Some((Chain::Linked { reach_ms, .. }, _)) => Some(*reach_ms),
            _ => self
                .current
                .iter()
                .filter_map(|c| c.verified_until_ms)
                .max(),
        }
    }

    fn gaps(&self) -> Vec<GapShown> {
        let began = self.baseline_began();
        let mut gaps: Vec<GapShown> = self
            .current
            .iter()
            .flat_map(|c| {
                c.gaps.iter().map(move |g| GapShown {
                    source: c.source,
                    name: c.name.clone(),
                    cause: g.cause,
                    at_ms: g.at_ms,
                    count: g.count,
                    detail: g.detail.clone(),
                    after_baseline: began.is_none_or(|b| g.at_ms.saturating_add(self.skew_ms) > b),
                })
            })
            .collect();
        gaps.sort_by_key(|g| g.at_ms);
        gaps
    }

    fn chain_links(&self) -> Vec<ChainLink> {
        match &self.chain {
            Some((Chain::Linked { links, .. }, _)) => links
                .iter()
                .map(|l| ChainLink {
                    source: l.entry.source,
                    name: l.entry.name.clone(),
                    from_ms: l.from_ms,
                    until_ms: l.until_ms,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// GO or NO-GO at `now_ms`, with every check (failing and passing).
pub fn assess(input: &ReadinessInput, now_ms: u64, options: &ReadinessOptions) -> Readiness {
    let ledger = Ledger::new(input, now_ms, options);
    let checks = vec![
        baseline_check(&ledger),
        no_gap_check(&ledger),
        every_change_check(&ledger),
        match input.writes_stopped_at(options) {
            None => stream_recent_check(&ledger),
            Some(stopped_at) => with_recorded_freeze(
                verified_past_freeze_check(
                    &ledger,
                    stopped_at,
                    input.freeze_in_force(options).is_some(),
                ),
                input.freeze_in_force(options),
                now_ms,
            ),
        },
        open_findings_check(input),
        retries_check(&ledger),
        failure_queue_check(&input.failure_queue, needs_mappings(input).is_some()),
    ];
    Readiness {
        table: input.table.clone(),
        ready: checks.iter().all(|c| c.ok),
        checks,
        baseline: ledger.shown.map(|c| BaselineRun {
            run_id: c.name.clone(),
            started_at_ms: c.started_at_ms,
            finished_at_ms: c.verified_until_ms,
            complete: c.complete,
        }),
        open_findings: input.open.len(),
        accepted: input
            .accepted
            .iter()
            .map(|f| AcceptedFinding {
                key: f.key_text.clone(),
                verdict: f.verdict.clone(),
                reason: f.reason.clone().unwrap_or_default(),
            })
            .collect(),
        verified_until_ms: ledger.verified_until(),
        stream: match &input.stream {
            TableStream::Current(arn) => Some(arn.clone()),
            _ => None,
        },
        chain: ledger.chain_links(),
        gaps: ledger.gaps(),
        clock_skew: options.clock_skew,
        checked_at_ms: now_ms,
        writes_stopped_at_ms: input.writes_stopped_at(options),
        recorded_freeze: input.freeze_in_force(options).cloned(),
    }
}

/// The freeze check's detail names a recorded freeze, and how to end it: an operator who
/// resumed writes after a rehearsal reads why readiness still judges against it. Past the window
/// it was recorded for, it proves nothing: writes may have resumed where no stream verifier
/// (Lambda) would see them (the shard poller's coverage shows when its passes began, not what
/// they read), so NO-GO until it is recorded again or lifted.
fn with_recorded_freeze(mut c: Check, recorded: Option<&RecordedFreeze>, now_ms: u64) -> Check {
    let Some(f) = recorded else {
        return c;
    };
    let by = match f.recorded_by.as_str() {
        "" => "ddb-verify freeze",
        by => by,
    };
    if now_ms > f.valid_until_ms {
        c.ok = false;
        c.detail = format!(
            "the freeze of writes stopped at {}, recorded by {by} at {}, ended at {}: if writes are still stopped, record it again (`ddb-verify freeze --at {}`); if they resumed, `ddb-verify freeze --lift`",
            rfc3339(f.writes_stopped_at_ms),
            rfc3339(f.recorded_at_ms),
            rfc3339(f.valid_until_ms),
            rfc3339(f.writes_stopped_at_ms),
        );
        return c;
    }
    c.detail = format!(
        "{} (the freeze recorded by {by} at {}, until {}; `ddb-verify freeze --lift` ends it)",
        c.detail,
        rfc3339(f.recorded_at_ms),
        rfc3339(f.valid_until_ms)
    );
    c
}

fn check(name: &'static str, ok: bool, detail: String) -> Check {
    Check {
        name,
        ok,
        detail,
        skipped: false,
    }
}

/// Records the event source mapping gave up on wait in the failure queue, never verified. Not
/// configured, the check is skipped, unless the stream verifier (Lambda) covers the stream.
fn failure_queue_check(queue: &FailureQueueState, lambda_covers: bool) -> Check {
    match queue {
        FailureQueueState::NotConfigured if lambda_covers => check(
            CHECK_FAILURE_QUEUE,
            false,
            "the stream verifier (Lambda) covers the stream, but FAILURE_QUEUE_URL is not set, so records it gave up on would not be seen: set it to the stack's FailureQueueUrl output".into(),
        ),
        FailureQueueState::NotConfigured => Check {
            skipped: true,
            ..check(
                CHECK_FAILURE_QUEUE,
                true,
                "skipped: no stream verifier (Lambda) covers the stream, and FAILURE_QUEUE_URL is not set".into(),
            )
        },
        FailureQueueState::Unreadable { url, why } => check(
            CHECK_FAILURE_QUEUE,
            false,
            format!("the failure queue {url} could not be read ({why}): allow sqs:GetQueueAttributes on it, or unset FAILURE_QUEUE_URL and check it by hand"),
        ),
        FailureQueueState::Read { url, depth } if depth.total() > 0 => check(
            CHECK_FAILURE_QUEUE,
            false,
            format!(
                "the failure queue {url} holds {} message(s) ({} visible, {} in flight, {} delayed): records Lambda gave up on were never verified; run a new baseline (or verify those records' keys), then purge the queue",
                depth.total(),
                depth.visible,
                depth.in_flight,
                depth.delayed
            ),
        ),
        FailureQueueState::Read { url, .. } => check(
            CHECK_FAILURE_QUEUE,
            true,
            format!("the failure queue {url} is empty"),
        ),
    }
}

/// A later run's refused problems (a `problem_not_recorded` gap of any baseline run, written
/// after the counted run began): the counted run's proof no longer covers those keys.
fn refused_since_counted<'a>(l: &Ledger<'a>) -> Option<(&'a Coverage, &'a Gap)> {
    let began = l.baseline_began()?;
    l.input
        .coverage
        .iter()
        .filter(|c| c.source == CoverageSource::Baseline)
        .flat_map(|c| c.gaps.iter().map(move |g| (c, g)))
        .filter(|(_, g)| g.at_ms.saturating_add(l.skew_ms) >= began)
        .max_by_key(|(_, g)| g.at_ms)
}

/// A complete baseline run.
fn baseline_check(l: &Ledger<'_>) -> Check {
    if let Some((run, gap)) = refused_since_counted(l) {
        return check(
            CHECK_BASELINE,
            false,
            format!(
                "baseline run {} found problems the findings table refused to record, at {} ({}), after the counted run began: their keys have no finding; see its ERROR lines, then run a new baseline",
                run.name,
                rfc3339(gap.at_ms),
                gap.detail
            ),
        );
    }
    match (l.complete, l.shown) {
        (Some(run), _) => check(
            CHECK_BASELINE,
            true,
            format!(
                "baseline run {} is complete: began {}, ended {}",
                run.name,
                opt_time(run.started_at_ms),
                opt_time(run.verified_until_ms)
            ),
        ),
        (None, Some(run)) if run.complete => check(
            CHECK_BASELINE,
            false,
            format!(
                "baseline run {} ended, but found problems the findings table refused to record ({}): their keys have no finding; see its ERROR lines, then run a new baseline",
                run.name,
                run.gaps
                    .iter()
                    .map(|g| g.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        (None, Some(run)) => check(
            CHECK_BASELINE,
            false,
            format!(
                "no complete baseline run: run {} (began {}) is not complete; resume it with the segments it began with, `ddb-verify baseline --segments N --run-id {}` (a Step Functions run: start an execution again with the same run_id and total_segments)",
                run.name,
                opt_time(run.started_at_ms),
                run.name
            ),
        ),
        (None, None) => check(
            CHECK_BASELINE,
            false,
            format!(
                "no baseline run recorded for table {}: run `ddb-verify baseline` (with FINDINGS_TABLE set) to its end",
                l.input.table
            ),
        ),
    }
}

fn describe(link: &Link<'_>) -> String {
    format!("{} {}", link.entry.source.as_str(), link.entry.name)
}

/// Why no coverage of the current stream can be linked at all, if that is so.
fn no_stream_coverage(l: &Ledger<'_>) -> Option<String> {
    let table = &l.input.table;
    let arn = match &l.input.stream {
        TableStream::Current(arn) => arn,
        TableStream::Disabled => {
            return Some(format!(
                "table {table} has no stream enabled: its changes are verified by nobody; enable NEW_AND_OLD_IMAGES, attach the verifiers, then run a new baseline"
            ))
        }
        TableStream::Unknown(why) => {
            return Some(format!(
                "the current stream of table {table} is not known ({why}): only coverage of the current stream counts; allow dynamodb:DescribeTable on the table to whoever runs readiness"
            ))
        }
    };
    if l.current.is_empty() {
        let others = l.streams.len();
        let also = match others {
            0 => String::new(),
            n => format!(
                " ({n} entr{} of other streams, or written before entries named their stream, do not count: a stream disabled and enabled again is a new stream)",
                if n == 1 { "y" } else { "ies" }
            ),
        };
        return Some(format!(
            "no stream verification recorded for table {table}'s current stream {arn}{also}: the stream verifier or the shard poller (with FINDINGS_TABLE set) must verify every change since before the baseline began"
        ));
    }
    if l.current.iter().all(|c| Link::of(c, false).is_none()) {
        return Some(
            "stream verification has not verified any change yet, so it cannot be shown to have begun before the baseline".into(),
        );
    }
    None
}

/// The chain, ignoring gaps, begins before the baseline and has no hole.
fn no_gap_check(l: &Ledger<'_>) -> Check {
    if let Some(why) = no_stream_coverage(l) {
        return check(CHECK_NO_GAP, false, why);
    }
    let (Some((_, gapless)), Some(run)) = (&l.chain, l.complete) else {
        let earliest = l
            .current
            .iter()
            .filter_map(|c| Link::of(c, false))
            .min_by_key(|k| k.from_ms);
        return check(
            CHECK_NO_GAP,
            false,
            match earliest {
                Some(k) => format!(
                    "stream verification began {} ({}), but there is no complete baseline run to cover what came before",
                    rfc3339(k.from_ms),
                    describe(&k)
                ),
                None => "there is no complete baseline run to cover what came before stream verification".into(),
            },
        );
    };
    let base = run.started_at_ms.unwrap_or_default();
    let margin = human_duration(l.options.clock_skew);
    match gapless {
        Chain::StartsLate { earliest } => {
            let k = earliest.expect("coverage with a verified change exists");
            check(
                CHECK_NO_GAP,
                false,
                format!(
                    "gap: stream verification of the current stream began {} ({}, counted from the end of its first change's second, or minute where creation times are cut to the minute), {} after baseline run {} began {} (clock margin {margin}); changes made in between were verified by neither: run a new baseline now",
                    rfc3339(k.from_ms),
                    describe(&k),
                    human_duration(Duration::from_millis((k.from_ms + l.skew_ms).saturating_sub(base))),
                    run.name,
                    rfc3339(base)
                ),
            )
        }
        Chain::Linked {
            reach_ms,
            hole: Some(next),
            ..
        } => check(
            CHECK_NO_GAP,
            false,
            format!(
                "gap: the coverage chain from baseline run {} ends at {}, and the next coverage ({}) begins {}: changes in between were verified by nobody (a verifier stopped, ran without FINDINGS_TABLE, or was attached again): run a new baseline now",
                run.name,
                rfc3339(*reach_ms),
                describe(next),
                rfc3339(next.from_ms)
            ),
        ),
        Chain::Linked { links, .. } => check(
            CHECK_NO_GAP,
            true,
            format!(
                "stream verification of the current stream began {} ({}), no later than baseline run {} began {} (clock margin {margin}), and links without a hole",
                rfc3339(links[0].from_ms),
                describe(&links[0]),
                run.name,
                rfc3339(base)
            ),
        ),
    }
}

/// No verifier samples now, and no gap breaks the chain that would link without gaps.
fn every_change_check(l: &Ledger<'_>) -> Check {
    if let Some(c) = l
        .current
        .iter()
        .find(|c| c.sample_rate.is_some_and(|r| r < 1.0))
    {
        return check(
            CHECK_EVERY_CHANGE,
            false,
            format!(
                "{} {} verifies a sample of keys (SAMPLE_RATE={}): the other keys' changes were not verified; set SAMPLE_RATE=1, then run a new baseline",
                c.source.as_str(),
                c.name,
                c.sample_rate.unwrap_or(1.0)
            ),
        );
    }
    // Whole as if there were no gaps, and broken with them: a gap breaks it, whichever link the
    // chain happened to stop at; the latest gap written after the baseline began is named.
    let broken_by_gap = matches!(
        &l.chain,
        Some((with_gaps, gapless)) if gapless.is_whole() && !with_gaps.is_whole()
    );
    let latest_gap = l
        .gaps()
        .into_iter()
        .filter(|g| g.after_baseline)
        .max_by_key(|g| g.at_ms);
    match (broken_by_gap, latest_gap) {
        (true, gap) => check(
            CHECK_EVERY_CHANGE,
            false,
            match gap {
                Some(g) => format!(
                    "{} {}: {} at {}, after the baseline began ({}): changes around it may be unverified and no other verifier covers them: run a new baseline",
                    g.source.as_str(),
                    g.name,
                    g.cause.as_str(),
                    rfc3339(g.at_ms),
                    g.detail
                ),
                None => "a gap breaks the coverage since the baseline began: run a new baseline".into(),
            },
        ),
        (false, _) => check(
            CHECK_EVERY_CHANGE,
            true,
            "every key's changes are verified (SAMPLE_RATE=1), and no gap (sampling, LATEST, trimming, a creation time not believed, unrecorded runs, a mapping changed) breaks the coverage since the baseline began".into(),
        ),
    }
}

/// The chain reaches within `max_lag` of now.
fn stream_recent_check(l: &Ledger<'_>) -> Check {
    let lag = human_duration(l.options.max_lag);
    let max_lag_ms = l.options.max_lag.as_millis() as u64;
    match l.verified_until() {
        None => check(
            CHECK_STREAM_RECENT,
            false,
            if l.current.is_empty() {
                "no change of the current stream has been verified: no stream verification of it is recorded".to_string()
            } else {
                "no change of the current stream has been verified without a record handed back yet".to_string()
            },
        ),
        Some(until) if l.now_ms.saturating_sub(until) > max_lag_ms => check(
            CHECK_STREAM_RECENT,
            false,
            format!(
                "stream changes are verified only up to {} ({} ago), more than {lag} behind now (--max-lag)",
                rfc3339(until),
                ago(l.now_ms, until)
            ),
        ),
        Some(until) => check(
            CHECK_STREAM_RECENT,
            true,
            format!(
                "stream changes verified up to {} ({} ago, within {lag})",
                rfc3339(until),
                ago(l.now_ms, until)
            ),
        ),
    }
}

/// Writes stopped at `stopped_at` (the cut-over's freeze): the chain reaches past it, by the
/// clock margin. Only the shard poller's coverage can: it reaches the time its run began once every
/// shard is read to its end; the stream verifier (Lambda) records the changes it receives, and no
/// change after the freeze means no record to show that nothing before it was left unread.
///
/// A `recorded` freeze is judged on every run, long after T, not on the operator's word now:
/// there a poller's pass counts only while the poller still reads (its last pass within
/// `--max-lag`), since changes made after T, if writes resumed, are seen only by reading the
/// stream, and its coverage shows when its passes began, not what they read.
fn verified_past_freeze_check(l: &Ledger<'_>, stopped_at: u64, recorded: bool) -> Check {
    let fail = |detail: String| check(CHECK_VERIFIED_PAST_FREEZE, false, detail);
    let stopped = rfc3339(stopped_at);
    if stopped_at > l.now_ms {
        return fail(format!(
            "writes stopped at {stopped} is in the future (now {}): give the time writes stopped",
            rfc3339(l.now_ms)
        ));
    }
    let needed = stopped_at.saturating_add(l.skew_ms);
    // The stream verifier's entry reaches the creation time of a change it verified, cut down to
    // the second: one at the margin or past it was made after the freeze, so writes did not stop.
    let after = l
        .current
        .iter()
        .filter(|c| c.source == CoverageSource::Stream)
        .filter_map(|c| c.verified_until_ms.map(|t| (t, *c)))
        .filter(|(t, _)| *t >= needed)
        .max_by_key(|(t, _)| *t);
    if let Some((t, c)) = after {
        return fail(format!(
            "writes stopped at {stopped}, but {} {} verified a change created at {}, after it: writes did not stop then; stop them, then check again with the time they stopped",
            c.source.as_str(),
            c.name,
            rfc3339(t)
        ));
    }
    // A poller's pass shows every shard read past the freeze (its entry reaches the time the
    // pass began); Lambda's metrics show it delivered everything before it ([`freeze`]). The
    // chain must reach there too, without a hole.
    let last_pass = l
        .current
        .iter()
        .filter(|c| c.source == CoverageSource::Poller)
        .filter_map(|c| c.verified_until_ms)
        .max();
    let polled_past = last_pass.is_some_and(|t| t >= needed);
    let max_lag_ms = l.options.max_lag.as_millis() as u64;
    let still_reading =
        !recorded || last_pass.is_some_and(|t| l.now_ms.saturating_sub(t) <= max_lag_ms);
    let until = l.verified_until();
    if polled_past && still_reading && until.is_some_and(|u| u >= needed) {
        return check(
            CHECK_VERIFIED_PAST_FREEZE,
            true,
            format!(
                "writes stopped at {stopped}; every change created before it is verified (coverage reaches {}, clock margin {})",
                rfc3339(until.unwrap_or(needed)),
                human_duration(l.options.clock_skew)
            ),
        );
    }
    let reach = until.map_or("no change verified".to_string(), |u| {
        format!("coverage reaches {}", rfc3339(u))
    });
    if let Some(proof) = lambda_delivered(l, stopped_at, until) {
        return match proof {
            Ok(why) => check(
                CHECK_VERIFIED_PAST_FREEZE,
                true,
                format!("writes stopped at {stopped}; every change created before it is verified ({reach}): {why}"),
            ),
            Err(why) => fail(format!("writes stopped at {stopped}, but {reach}, and {why}")),
        };
    }
    if polled_past && !still_reading {
        return fail(format!(
            "writes stopped at {stopped}, {reach}, but the shard poller's last pass began at {}, more than {} ago (--max-lag): a recorded freeze needs the poller still reading, to see writes that resume; schedule it (or run `shard-poller --once`), or give the time with --writes-stopped-at",
            rfc3339(last_pass.unwrap_or_default()),
            human_duration(l.options.max_lag)
        ));
    }
    fail(format!(
        "writes stopped at {stopped}, but {reach}, not past it by the clock margin: the shard poller has not read every shard past it yet; run `shard-poller --once` (or wait for its next run), then check again"
    ))
}

/// The stream verifier's (Lambda) proof that it was handed every change before the freeze, when
/// it covers the current stream: `Ok` with why, for every function, or the first `Err`.
fn lambda_delivered(
    l: &Ledger<'_>,
    stopped_at: u64,
    until: Option<u64>,
) -> Option<Result<String, String>> {
    let lambda: Vec<&Coverage> = l
        .current
        .iter()
        .filter(|c| c.source == CoverageSource::Stream)
        .copied()
        .collect();
    if lambda.is_empty() {
        return None;
    }
    let mut proofs = Vec::new();
    for entry in lambda {
        if entry
            .verified_until_ms
            .is_some_and(|v| until.is_none_or(|u| u < v))
        {
            return Some(Err(format!(
                "the chain does not reach what {} verified: a stretch before it was verified by nobody",
                entry.name
            )));
        }
        let proof = LambdaFreeze {
            entry,
            mappings: l.input.mappings.as_deref(),
            delivery: l.input.delivery.iter().find(|d| d.function == entry.name),
            stopped_at_ms: stopped_at,
            now_ms: l.now_ms,
            metrics_delay: l.options.metrics_delay,
            skew_ms: l.skew_ms,
        }
        .prove();
        match proof {
            Ok(why) => proofs.push(why),
            Err(why) => return Some(Err(why)),
        }
    }
    Some(Ok(proofs.join("; ")))
}

fn ago(now_ms: u64, t: u64) -> String {
    human_duration(Duration::from_millis(now_ms.saturating_sub(t)))
}

/// No open findings.
fn open_findings_check(input: &ReadinessInput) -> Check {
    let open = input.open.len();
    if open == 0 {
        return check(
            CHECK_NO_OPEN_FINDINGS,
            true,
            match input.accepted.len() {
                0 => "no open findings".to_string(),
                n => format!("no open findings ({n} accepted, listed, not blocking)"),
            },
        );
    }
    let first = &input.open[0];
    check(
        CHECK_NO_OPEN_FINDINGS,
        false,
        format!(
            "{open} open finding{} (first: {} {}): see `ddb-verify findings`; fix and revalidate, or `ddb-verify accept`",
            if open == 1 { "" } else { "s" },
            first.key_text,
            first.verdict
        ),
    )
}

/// Nothing handed back for re-delivery recently (by any verifier, of any stream).
fn retries_check(l: &Ledger<'_>) -> Check {
    let lag = human_duration(l.options.max_lag);
    let max_lag_ms = l.options.max_lag.as_millis() as u64;
    let last_retry = l
        .streams
        .iter()
        .filter_map(|c| c.last_retry_at_ms.map(|t| (t, *c)))
        .max_by_key(|(t, _)| *t);
    match last_retry {
        None => check(
            CHECK_NO_RECENT_RETRIES,
            true,
            "no record has been handed back for re-delivery".to_string(),
        ),
        Some((at, by)) if l.now_ms.saturating_sub(at) <= max_lag_ms => check(
            CHECK_NO_RECENT_RETRIES,
            false,
            format!(
                "a record was handed back for re-delivery {} ({} ago, within {lag}) by {} {}: its changes have no verdict yet",
                rfc3339(at),
                ago(l.now_ms, at),
                by.source.as_str(),
                by.name
            ),
        ),
        Some((at, _)) => check(
            CHECK_NO_RECENT_RETRIES,
            true,
            format!(
                "no record handed back for re-delivery in the last {lag} (the last {}, {} ago)",
                rfc3339(at),
                ago(l.now_ms, at)
            ),
        ),
    }
}

fn opt_time(ms: Option<u64>) -> String {
    ms.map(rfc3339)
        .unwrap_or_else(|| "at an unknown time".to_string())
}

/// A duration as people read it: `4m 10s`, `2h 5m`, `3d 1h`, `45s`, `250ms`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let units = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |left, (name, size)| {
            let n = *left / size;
            *left %= size;
            Some((n, name))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n}{name}"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    /// 2024-02-29T12:00:00Z.
    const NOW: u64 = 1_709_208_000_000;
    const ARN: &str = "arn:aws:dynamodb:us-east-1:1:table/Orders/stream/2024-02-29T00:00:00.000";
    const OLD_ARN: &str =
        "arn:aws:dynamodb:us-east-1:1:table/Orders/stream/2024-01-01T00:00:00.000";

    fn coverage(source: CoverageSource, name: &str) -> Coverage {
        Coverage {
            source,
            name: name.to_string(),
            started_at_ms: None,
            verified_until_ms: None,
            last_retry_at_ms: None,
            complete: false,
            checked_at_ms: NOW - MIN,
            sample_rate: Some(1.0),
            stream_arn: (source != CoverageSource::Baseline).then(|| ARN.to_string()),
            gaps: Vec::new(),
        }
    }

    fn gap(cause: GapCause, at_ms: u64) -> crate::ports::findings::Gap {
        crate::ports::findings::Gap {
            cause,
            at_ms,
            count: 1,
            detail: format!("{} for a test", cause.as_str()),
        }
    }

    fn baseline(started: u64, finished: Option<u64>) -> Coverage {
        Coverage {
            started_at_ms: Some(started),
            verified_until_ms: finished,
            complete: finished.is_some(),
            ..coverage(CoverageSource::Baseline, "run-1")
        }
    }

    fn stream(started: u64, until: u64) -> Coverage {
        Coverage {
            started_at_ms: Some(started),
            verified_until_ms: Some(until),
            ..coverage(CoverageSource::Stream, "stream-verifier")
        }
    }

    fn finding(key: &str, status: FindingStatus) -> Finding {
        Finding {
            table: "Orders".into(),
            key: Default::default(),
            key_text: key.into(),
            verdict: "MISMATCH".into(),
            proof: Some("source_as_recorded".into()),
            detail: "status differs".into(),
            attributes: vec!["status".into()],
            values: None,
            origin: "baseline".into(),
            first_seen_ms: NOW - 30 * MIN,
            last_seen_ms: NOW - 30 * MIN,
            times_seen: 1,
            sequence_number: None,
            baseline_run: Some("run-1".into()),
            status,
            reason: (status == FindingStatus::Accepted).then(|| "known test item".into()),
            resolved_at_ms: None,
            next_check_ms: Some(NOW),
            checks: 0,
            unsettled: false,
            repair: None,
        }
    }

    /// Every check holds: the stream began 60 minutes ago, a baseline ran from 30 to 10 minutes
    /// ago, the stream is verified up to a minute ago, nothing open, no retry.
    fn go() -> ReadinessInput {
        ReadinessInput {
            table: "Orders".into(),
            coverage: vec![
                stream(NOW - 60 * MIN, NOW - MIN),
                baseline(NOW - 30 * MIN, Some(NOW - 10 * MIN)),
            ],
            open: vec![],
            accepted: vec![],
            stream: TableStream::Current(ARN.into()),
            failure_queue: empty_queue(),
            mappings: None,
            delivery: Vec::new(),
            recorded_freeze: None,
        }
    }

    /// The stream verifier's failure queue, read and empty.
    fn empty_queue() -> FailureQueueState {
        FailureQueueState::Read {
            url: "https://sqs.us-east-1.amazonaws.com/1/verifier-failures".into(),
            depth: QueueDepth::default(),
        }
    }

    fn assess_default(input: &ReadinessInput) -> Readiness {
        assess(input, NOW, &ReadinessOptions::default())
    }

    /// The names of the failing checks.
    fn failing(r: &Readiness) -> Vec<&'static str> {
        r.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
    }

    fn check<'a>(r: &'a Readiness, name: &str) -> &'a Check {
        r.checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn go_when_every_check_holds_and_every_check_is_listed() {
        let r = assess_default(&go());
        assert!(r.ready, "{:#?}", r.checks);
        assert!(r.reasons().is_empty());
        let names: Vec<_> = r.checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                CHECK_BASELINE,
                CHECK_NO_GAP,
                CHECK_EVERY_CHANGE,
                CHECK_STREAM_RECENT,
                CHECK_NO_OPEN_FINDINGS,
                CHECK_NO_RECENT_RETRIES,
                CHECK_FAILURE_QUEUE
            ]
        );
        let json = r.to_json();
        assert_eq!(json["ready"], true);
        assert_eq!(json["reasons"], json!([]));
        assert_eq!(json["baseline"]["run_id"], "run-1");
        assert_eq!(json["baseline"]["started_at"], "2024-02-29T11:30:00Z");
        assert_eq!(json["baseline"]["finished_at"], "2024-02-29T11:50:00Z");
        assert_eq!(json["baseline"]["complete"], true);
        assert_eq!(json["verified_until"], "2024-02-29T11:59:00Z");
        assert_eq!(json["open_findings"], 0);
        assert_eq!(json["checks"].as_array().unwrap().len(), 7);
        assert!(r.to_text().starts_with("GO for table Orders"));
    }

    #[test]
    fn no_baseline_at_all_is_no_go() {
        let mut input = go();
        input
            .coverage
            .retain(|c| c.source != CoverageSource::Baseline);
        let r = assess_default(&input);
        assert!(!r.ready);
        // Without a baseline, no gap cannot be shown either.
        assert_eq!(failing(&r), [CHECK_BASELINE, CHECK_NO_GAP]);
        assert!(r.reasons()[0].contains("no baseline run recorded for table Orders"));
        assert_eq!(r.to_json()["baseline"], Value::Null);
    }

    #[test]
    fn an_incomplete_baseline_is_no_go_and_says_how_to_resume() {
        let mut input = go();
        input.coverage[1] = baseline(NOW - 30 * MIN, None);
        let r = assess_default(&input);
        assert!(!r.ready);
        assert_eq!(failing(&r), [CHECK_BASELINE, CHECK_NO_GAP]);
        assert!(
            r.reasons()[0].contains("--run-id run-1"),
            "{:?}",
            r.reasons()
        );
        assert_eq!(r.to_json()["baseline"]["complete"], false);
        assert_eq!(r.to_json()["baseline"]["finished_at"], Value::Null);
    }

    #[test]
    fn the_newest_complete_baseline_counts_over_a_newer_incomplete_one() {
        let mut input = go();
        input.coverage.push(Coverage {
            name: "run-2".into(),
            ..baseline(NOW - 5 * MIN, None)
        });
        let r = assess_default(&input);
        assert!(r.ready, "{:#?}", r.checks);
        assert_eq!(r.baseline.unwrap().run_id, "run-1");
    }

    #[test]
    fn stream_verification_that_began_after_the_baseline_is_a_gap() {
        let mut input = go();
        input.coverage[0] = stream(NOW - 20 * MIN + 250, NOW - MIN);
        let r = assess_default(&input);
        assert!(!r.ready);
        assert_eq!(failing(&r), [CHECK_NO_GAP]);
        let reason = r.reasons()[0];
        assert!(reason.starts_with("gap:"), "{reason}");
        // 10 minutes and a quarter second, plus the 1 s clock margin.
        assert!(
            reason.contains("10m 1s after baseline run run-1"),
            "{reason}"
        );
        assert!(reason.contains("2024-02-29T11:40:00.250Z"), "{reason}");
    }

    #[test]
    fn a_start_rounded_down_by_dynamodb_counts_from_the_end_of_its_second_or_minute() {
        let began = NOW - 30 * MIN;
        let ready_with_start = |start: u64| {
            let mut input = go();
            input.coverage[0] = stream(start, NOW - MIN);
            assess_default(&input).ready
        };
        // Creation times on a whole minute may have been cut to it (DynamoDB Local): the change
        // may have been made up to a minute later, after the baseline began.
        assert!(!ready_with_start(began));
        // On a whole second: up to a second later, plus the clock margin.
        assert!(!ready_with_start(began - 1000));
        assert!(ready_with_start(began - 61_000));
        // Not rounded (milliseconds): only the clock margin.
        assert!(!ready_with_start(began - 999));
        assert!(ready_with_start(began - 1_500));
        assert_eq!(chain::creation_end(began), began + MIN);
        assert_eq!(chain::creation_end(began + 1000), began + 2000);
        assert_eq!(chain::creation_end(began + 1001), began + 1001);
    }

    #[test]
    fn the_clock_margin_is_stated_and_widens_with_clock_skew() {
        let mut input = go();
        // Began 1.5 s before the baseline: enough for 1 s of skew, not for 2 s.
        input.coverage[0] = stream(NOW - 30 * MIN - 1_500, NOW - MIN);
        assert!(assess_default(&input).ready);
        let wide = ReadinessOptions {
            clock_skew: Duration::from_secs(2),
            ..ReadinessOptions::default()
        };
        let r = assess(&input, NOW, &wide);
        assert_eq!(failing(&r), [CHECK_NO_GAP]);
        assert!(r.to_text().contains("clock margin 2s"), "{}", r.to_text());
        assert_eq!(r.to_json()["clock_skew_ms"], 2000);
    }

    #[test]
    fn verifiers_link_only_where_their_coverage_overlaps() {
        // A poller from 90 to 40 minutes ago and the stream verifier from 20 minutes ago: the
        // start of one and the end of the other must not make a GO across the 20 minutes between.
        let mut input = go();
        input.coverage[0] = stream(NOW - 20 * MIN + 250, NOW - MIN);
        input.coverage.push(Coverage {
            started_at_ms: Some(NOW - 90 * MIN),
            verified_until_ms: Some(NOW - 40 * MIN),
            ..coverage(CoverageSource::Poller, ARN)
        });
        let r = assess_default(&input);
        assert!(!r.ready);
        assert_eq!(failing(&r), [CHECK_NO_GAP, CHECK_STREAM_RECENT]);
        let reason = r.reasons()[0];
        assert!(reason.contains("ends at 2024-02-29T11:20:00Z"), "{reason}");
        assert!(
            reason.contains("(stream stream-verifier) begins 2024-02-29T11:40:00.250Z"),
            "{reason}"
        );
        assert_eq!(r.verified_until_ms, Some(NOW - 40 * MIN));

        // The poller kept on until 15 minutes ago: the two overlap and link.
        input.coverage[2].verified_until_ms = Some(NOW - 15 * MIN);
        let r = assess_default(&input);
        assert!(r.ready, "{}", r.to_text());
        assert!(check(&r, CHECK_NO_GAP)
            .detail
            .contains(&format!("poller {ARN}")));
        let chain: Vec<_> = r.chain.iter().map(|l| l.source).collect();
        assert_eq!(chain, [CoverageSource::Poller, CoverageSource::Stream]);
        assert_eq!(r.to_json()["chain"][1]["until"], "2024-02-29T11:59:00Z");
    }

    #[test]
    fn coverage_of_an_old_stream_does_not_count_for_the_current_one() {
        // Stream disabled and enabled again: the old stream's verifier began before the baseline,
        // the new one's after it.
        let mut input = go();
        input.coverage[0] = stream(NOW - 20 * MIN + 250, NOW - MIN);
        input.coverage.push(Coverage {
            stream_arn: Some(OLD_ARN.into()),
            started_at_ms: Some(NOW - 90 * MIN),
            verified_until_ms: Some(NOW - 30_000),
            ..coverage(CoverageSource::Poller, OLD_ARN)
        });
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_NO_GAP]);
        assert!(
            r.reasons()[0].contains("stream-verifier"),
            "{:?}",
            r.reasons()
        );
        // Written before entries named their stream: not counted either.
        input.coverage[2].stream_arn = None;
        assert!(!assess_default(&input).ready);
    }

    #[test]
    fn a_disabled_or_unknown_stream_is_no_go_with_what_to_do() {
        let mut input = go();
        input.stream = TableStream::Disabled;
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_NO_GAP, CHECK_STREAM_RECENT]);
        assert!(
            r.reasons()[0].contains("has no stream enabled"),
            "{:?}",
            r.reasons()
        );
        input.stream = TableStream::Unknown("AccessDenied".into());
        let r = assess_default(&input);
        assert!(r.reasons()[0].contains("AccessDenied"), "{:?}", r.reasons());
        assert!(r.reasons()[0].contains("dynamodb:DescribeTable"));
    }

    #[test]
    fn a_gap_after_the_baseline_began_breaks_the_chain_unless_another_verifier_covers_it() {
        for cause in GapCause::ALL {
            let mut input = go();
            input.coverage[0].gaps = vec![gap(cause, NOW - 10 * MIN)];
            let r = assess_default(&input);
            assert_eq!(failing(&r), [CHECK_EVERY_CHANGE], "{cause:?}");
            assert!(r.reasons()[0].contains(cause.as_str()), "{:?}", r.reasons());
            assert!(r.to_json()["gaps"][0]["after_baseline"] == true);
            // A poller that verified the same time without a gap covers it.
            let mut covered = input.clone();
            covered.coverage.push(Coverage {
                started_at_ms: Some(NOW - 45 * MIN + 100),
                verified_until_ms: Some(NOW - 2 * MIN),
                ..coverage(CoverageSource::Poller, ARN)
            });
            assert!(assess_default(&covered).ready, "{cause:?}");
            // A gap before the baseline began: the baseline read what it left.
            input.coverage[0].gaps = vec![gap(cause, NOW - 40 * MIN)];
            assert!(assess_default(&input).ready, "{cause:?}");
        }
    }

    #[test]
    fn a_gap_breaks_the_chain_even_when_the_verifier_after_it_has_none() {
        // The stream verifier sampled until 10 minutes ago; a poller attached 20 minutes ago,
        // after the baseline began (30 minutes ago), has no gap. Neither covers 30..20 minutes
        // ago in full.
        let mut input = go();
        input.coverage[0].gaps = vec![gap(GapCause::Sampled, NOW - 10 * MIN)];
        input.coverage.push(Coverage {
            started_at_ms: Some(NOW - 20 * MIN + 100),
            verified_until_ms: Some(NOW - 2 * MIN),
            ..coverage(CoverageSource::Poller, ARN)
        });
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_EVERY_CHANGE], "{}", r.to_text());
        assert!(r.reasons()[0].contains("sampled"), "{:?}", r.reasons());
    }

    #[test]
    fn a_newer_baseline_run_that_could_not_record_a_problem_keeps_the_older_one_from_counting() {
        let mut input = go();
        input.coverage.push(Coverage {
            name: "run-2".into(),
            gaps: vec![gap(GapCause::ProblemNotRecorded, NOW - 5 * MIN)],
            ..baseline(NOW - 8 * MIN, Some(NOW - 4 * MIN))
        });
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_BASELINE], "{}", r.to_text());
        assert!(r.reasons()[0].contains("run-2"), "{:?}", r.reasons());
    }

    #[test]
    fn a_sampled_run_between_full_runs_stays_a_gap() {
        // SAMPLE_RATE was 0.000001 for a while after the baseline began, and 1 since: the last
        // write's rate is 1, the gap stays.
        let mut input = go();
        input.coverage[0].gaps = vec![gap(GapCause::Sampled, NOW - 20 * MIN)];
        input.coverage[0].sample_rate = Some(1.0);
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_EVERY_CHANGE]);
        assert!(r.reasons()[0].contains("run a new baseline"));
        // A new complete baseline that began after the gap clears it.
        input.coverage.push(Coverage {
            name: "run-2".into(),
            ..baseline(NOW - 15 * MIN, Some(NOW - 5 * MIN))
        });
        assert!(assess_default(&input).ready);
    }

    #[test]
    fn readiness_is_a_metric_with_one_per_check() {
        let metric = |r: &Readiness, name: &str| {
            r.metrics()
                .into_iter()
                .find(|m| m.name == name)
                .map(|m| m.values[0])
        };
        let ready = assess_default(&go());
        assert_eq!(metric(&ready, "Ready"), Some(1.0));
        assert_eq!(metric(&ready, "ReadyNoOpenFindings"), Some(1.0));
        assert_eq!(metric(&ready, "VerifiedAge"), Some(MIN as f64));
        let mut input = go();
        input.open = vec![finding("c#1", FindingStatus::Open)];
        let no_go = assess_default(&input);
        assert_eq!(metric(&no_go, "Ready"), Some(0.0));
        assert_eq!(metric(&no_go, "ReadyNoOpenFindings"), Some(0.0));
        assert_eq!(metric(&no_go, "ReadyBaseline"), Some(1.0));
        // Every check has its metric.
        for c in &no_go.checks {
            assert!(check_metric(c.name).is_some(), "{}", c.name);
        }
    }

    fn frozen_at(stopped_at: u64) -> ReadinessOptions {
        ReadinessOptions {
            writes_stopped_at_ms: Some(stopped_at),
            ..ReadinessOptions::default()
        }
    }

    /// The poller's entry of the current stream, verified up to `until` (its last covering run's
    /// start), instead of the stream verifier's.
    fn polled_until(until: u64) -> ReadinessInput {
        let mut input = go();
        input.coverage[0] = Coverage {
            started_at_ms: Some(NOW - 60 * MIN),
            verified_until_ms: Some(until),
            ..coverage(CoverageSource::Poller, ARN)
        };
        input
    }

    #[test]
    fn after_a_freeze_the_poller_reading_past_it_is_go_however_long_ago() {
        // Writes stopped 2 hours ago; the poller's last covering run began 1 hour ago.
        let input = polled_until(NOW - 60 * MIN);
        let input = ReadinessInput {
            coverage: vec![
                Coverage {
                    started_at_ms: Some(NOW - 300 * MIN),
                    ..input.coverage[0].clone()
                },
                baseline(NOW - 200 * MIN, Some(NOW - 190 * MIN)),
            ],
            ..input
        };
        assert_eq!(
            failing(&assess_default(&input)),
            [CHECK_STREAM_RECENT],
            "without the freeze, an hour-old coverage is stale"
        );
        let r = assess(&input, NOW, &frozen_at(NOW - 120 * MIN));
        assert!(r.ready, "{:?}", r.reasons());
        assert!(check(&r, CHECK_VERIFIED_PAST_FREEZE)
            .detail
            .contains("every change created before it is verified"));
        assert!(r.checks.iter().all(|c| c.name != CHECK_STREAM_RECENT));
    }

    fn recorded(stopped_at: u64) -> RecordedFreeze {
        RecordedFreeze {
            writes_stopped_at_ms: stopped_at,
            recorded_at_ms: stopped_at + MIN,
            recorded_by: "ddb-verify freeze (ops@host)".into(),
            valid_until_ms: NOW + 60 * MIN,
        }
    }

    #[test]
    fn a_recorded_freeze_past_its_window_is_no_go_saying_to_record_it_again_or_lift_it() {
        // GO while the window lasts (Lambda's metrics show the last changes delivered)...
        let (mut input, stopped) = lambda_frozen();
        input.recorded_freeze = Some(recorded(stopped));
        assert!(assess_default(&input).ready);
        // ...and NO-GO a millisecond after it: the freeze may have been left behind.
        input.recorded_freeze = Some(RecordedFreeze {
            valid_until_ms: NOW - 1,
            ..recorded(stopped)
        });
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        let reason = r.reasons()[0];
        assert!(reason.contains("ended at"), "{reason}");
        assert!(reason.contains("`ddb-verify freeze --at "), "{reason}");
        assert!(reason.contains("`ddb-verify freeze --lift`"), "{reason}");
        // A freeze given on the command line is the operator's word now: no window.
        let r = assess(&input, NOW, &frozen_at(stopped));
        assert!(r.ready, "{:?}", r.reasons());
    }

    #[test]
    fn a_recorded_freeze_is_judged_as_a_given_one_and_named_with_how_to_lift_it() {
        // The stream verifier alone, its last change 11 minutes ago: stale without a freeze,
        // proven by Lambda's metrics with the freeze recorded.
        let (mut input, stopped) = lambda_frozen();
        assert!(!assess_default(&input).ready, "stale without a freeze");
        input.recorded_freeze = Some(recorded(stopped));
        let r = assess_default(&input);
        assert!(r.ready, "{:?}", r.reasons());
        let detail = &check(&r, CHECK_VERIFIED_PAST_FREEZE).detail;
        assert!(
            detail.contains("recorded by ddb-verify freeze (ops@host)"),
            "{detail}"
        );
        assert!(detail.contains("`ddb-verify freeze --lift`"), "{detail}");
        assert_eq!(r.writes_stopped_at_ms, Some(stopped));
        assert_eq!(
            r.to_json()["freeze_recorded"]["recorded_by"],
            "ddb-verify freeze (ops@host)"
        );
        // A poller pass begun after a freeze recorded later than it proves nothing: NO-GO,
        // naming the recorded freeze.
        let mut input = polled_until(NOW - 60 * MIN);
        input.recorded_freeze = Some(recorded(NOW - 30 * MIN));
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        assert!(r.reasons()[0].contains("--lift"), "{:?}", r.reasons());
    }

    #[test]
    fn a_recorded_freeze_needs_the_poller_still_reading_since_only_reading_sees_writes_resume() {
        // Writes stopped 2 hours ago and the freeze was recorded; the poller's pass an hour ago
        // read past it, then the poller stopped. Writes may have resumed since, unread: the
        // recorded freeze, judged on every run, is NO-GO (it was GO before this rule).
        let mut input = polled_until(NOW - 60 * MIN);
        input.coverage[0].started_at_ms = Some(NOW - 300 * MIN);
        input.coverage[1] = baseline(NOW - 200 * MIN, Some(NOW - 190 * MIN));
        input.recorded_freeze = Some(recorded(NOW - 120 * MIN));
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        let reason = r.reasons()[0];
        assert!(
            reason.contains("needs the poller still reading"),
            "{reason}"
        );
        // The poller still reading (its last pass within --max-lag): GO.
        input.coverage[0].verified_until_ms = Some(NOW - MIN);
        let r = assess_default(&input);
        assert!(r.ready, "{:?}", r.reasons());
        // The same T given now is the operator's word, as before: the pass past it suffices.
        input.coverage[0].verified_until_ms = Some(NOW - 60 * MIN);
        assert!(assess(&input, NOW, &frozen_at(NOW - 120 * MIN)).ready);
    }

    #[test]
    fn a_given_freeze_wins_over_the_recorded_one() {
        let mut input = polled_until(NOW - 60 * MIN);
        input.recorded_freeze = Some(recorded(NOW - 120 * MIN));
        // Given later than the pass: NO-GO, though the recorded one would be GO.
        let r = assess(&input, NOW, &frozen_at(NOW - 30 * MIN));
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        assert!(!r.reasons()[0].contains("--lift"), "{:?}", r.reasons());
        assert_eq!(r.writes_stopped_at_ms, Some(NOW - 30 * MIN));
        assert!(r.recorded_freeze.is_none());
    }

    #[test]
    fn a_recorded_freeze_with_writes_after_it_is_no_go_saying_to_lift_it() {
        // The stream verifier verified a change created after the recorded freeze: writes
        // resumed (a rehearsal's freeze left behind).
        let mut input = go();
        input.recorded_freeze = Some(recorded(NOW - 10 * MIN));
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        let reason = r.reasons()[0];
        assert!(reason.contains("writes did not stop"), "{reason}");
        assert!(
            reason.contains("`ddb-verify freeze --lift` ends it"),
            "{reason}"
        );
    }

    #[test]
    fn after_a_freeze_coverage_short_of_it_by_the_clock_margin_is_no_go() {
        let stopped = NOW - 10 * MIN;
        // The poller's last covering run began half a second after the freeze: within the 1 s
        // clock margin, so not proof.
        let r = assess(&polled_until(stopped + 500), NOW, &frozen_at(stopped));
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        assert!(
            r.reasons()[0].contains("shard-poller --once"),
            "{:?}",
            r.reasons()
        );
        let r = assess(&polled_until(stopped + 1_000), NOW, &frozen_at(stopped));
        assert!(r.ready, "{:?}", r.reasons());
    }

    #[test]
    fn after_a_freeze_the_lambda_verifier_without_its_mappings_cannot_show_it_read_everything() {
        // Its last change verified a minute before writes stopped: its own coverage does not
        // show the records between it and the freeze were delivered.
        let stopped = NOW - 10 * MIN;
        let mut input = go();
        input.coverage[0] = stream(NOW - 60 * MIN, stopped - MIN);
        let r = assess(&input, NOW, &frozen_at(stopped));
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        assert!(
            r.reasons()[0].contains("mappings were not read"),
            "{:?}",
            r.reasons()
        );
    }

    #[test]
    fn after_a_freeze_lambda_coverage_at_the_margin_is_never_go_without_a_poller() {
        // A change made 1.5 s after the freeze, recorded cut down to the second: exactly at the
        // margin. It is no proof of the freeze; it shows writes did not stop.
        let stopped = NOW - 10 * MIN;
        let mut input = go();
        input.coverage[0] = stream(NOW - 60 * MIN, stopped + 1_000);
        let r = assess(&input, NOW, &frozen_at(stopped));
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        assert!(
            r.reasons()[0].contains("writes did not stop"),
            "{:?}",
            r.reasons()
        );
        // Just inside the margin: not flagged, and still no proof without a poller.
        input.coverage[0] = stream(NOW - 60 * MIN, stopped + 999);
        let r = assess(&input, NOW, &frozen_at(stopped));
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        assert!(
            r.reasons()[0].contains("mappings were not read"),
            "{:?}",
            r.reasons()
        );
    }

    /// Writes stopped 10 minutes ago; the stream verifier's last change was made a minute before,
    /// its mapping is enabled, and Lambda's metrics show its last batch caught up, nothing since.
    fn lambda_frozen() -> (ReadinessInput, u64) {
        use crate::ports::delivery::Delivery;
        let stopped = NOW - 10 * MIN;
        let mut input = go();
        input.coverage[0] = Coverage {
            // Its last batch, as it recorded it.
            checked_at_ms: stopped - MIN + 5_000,
            ..stream(NOW - 60 * MIN, stopped - MIN)
        };
        input.mappings = Some(vec![Mapping {
            state: "Enabled".into(),
            batching_window_s: Some(0),
            ..mapping("stream-verifier", NOW - 60 * MIN)
        }]);
        input.delivery = vec![FunctionDelivery {
            function: "stream-verifier".into(),
            metrics: Ok(Delivery {
                iterator_age: vec![(stopped - 3 * MIN, 2_000.0), (stopped - MIN, 300.0)],
                function_timeout_s: Some(30),
                ..Delivery::default()
            }),
        }];
        (input, stopped)
    }

    fn delivery(input: &mut ReadinessInput) -> &mut crate::ports::delivery::Delivery {
        input.delivery[0].metrics.as_mut().unwrap()
    }

    #[test]
    fn after_a_freeze_lambdas_metrics_back_to_zero_show_the_stream_verifier_was_handed_everything()
    {
        let (input, stopped) = lambda_frozen();
        let r = assess(&input, NOW, &frozen_at(stopped));
        assert!(r.ready, "{:?}", r.reasons());
        assert!(check(&r, CHECK_VERIFIED_PAST_FREEZE)
            .detail
            .contains("nothing delivered since"));
        assert_eq!(
            failing(&assess_default(&input)),
            [CHECK_STREAM_RECENT],
            "without the freeze, coverage 11 minutes old is stale"
        );
    }

    #[test]
    fn after_a_freeze_lambdas_metrics_that_do_not_prove_delivery_are_no_go_each_saying_why() {
        let (base, stopped) = lambda_frozen();
        let no_go = |input: &ReadinessInput, now: u64, why: &str| {
            let r = assess(input, now, &frozen_at(stopped));
            assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE], "{why}");
            assert!(r.reasons()[0].contains(why), "{why}: {:?}", r.reasons());
        };
        // The last batch still a minute behind (beyond its 30 s timeout and 10 s): more may follow.
        let mut input = base.clone();
        delivery(&mut input).iterator_age.push((stopped, 60_000.0));
        no_go(&input, NOW, "not back to zero");
        // Throttled after the freeze: a batch waits for a retry.
        let mut input = base.clone();
        delivery(&mut input).throttles.push((stopped + MIN, 3.0));
        no_go(&input, NOW, "Throttles");
        let mut input = base.clone();
        delivery(&mut input).errors.push((stopped, 1.0));
        no_go(&input, NOW, "Errors");
        // Too soon after the freeze for later batches to show, and a long batching window.
        no_go(&base, stopped + MIN, "check again then");
        let mut input = base.clone();
        input.mappings.as_mut().unwrap()[0].batching_window_s = Some(300);
        no_go(&input, stopped + 5 * MIN, "batching window 300 s");
        assert!(assess(&input, stopped + 8 * MIN, &frozen_at(stopped)).ready);
        // A batch in a later minute than the function recorded: delivered by that minute's end.
        let mut input = base.clone();
        delivery(&mut input)
            .iterator_age
            .push((stopped + MIN, 300.0));
        no_go(&input, stopped + 4 * MIN, "delivered by");
        assert!(assess(&input, stopped + 5 * MIN, &frozen_at(stopped)).ready);
        // Errors before the freeze, after the newest change verified: a retry may still come.
        let mut input = base.clone();
        delivery(&mut input).errors.push((stopped - MIN, 1.0));
        no_go(&input, NOW, "Errors");
        // The function's timeout unknown: Lambda's longest, 15 minutes, is waited for.
        let mut input = base.clone();
        delivery(&mut input).function_timeout_s = None;
        no_go(&input, NOW, "lambda:GetFunctionConfiguration");
        assert!(assess(&input, stopped + 20 * MIN, &frozen_at(stopped)).ready);
        // A mapping that lost access to the stream: still Enabled, its last result a PROBLEM.
        let mut input = base.clone();
        input.mappings.as_mut().unwrap()[0].last_processing_result =
            Some("PROBLEM: Cannot access stream".into());
        no_go(&input, NOW, "not OK");
        // The mapping disabled, or gone.
        let mut input = base.clone();
        input.mappings.as_mut().unwrap()[0].state = "Disabled".into();
        no_go(&input, NOW, "not Enabled");
        let mut input = base.clone();
        input.mappings = Some(vec![]);
        no_go(&input, NOW, "no event source mapping");
        // Metrics not read, unreadable, or with no batch since the last change verified.
        let mut input = base.clone();
        input.delivery.clear();
        no_go(&input, NOW, "were not read");
        let mut input = base.clone();
        input.delivery[0].metrics = Err("AccessDenied".into());
        no_go(&input, NOW, "cloudwatch:GetMetricData");
        let mut input = base.clone();
        delivery(&mut input).iterator_age.truncate(1);
        no_go(&input, NOW, "no batch delivered");
        // A poller's pass past the freeze proves it whatever Lambda's metrics say.
        let mut input = base.clone();
        delivery(&mut input).iterator_age.push((stopped, 60_000.0));
        input.coverage.push(Coverage {
            started_at_ms: Some(NOW - 60 * MIN),
            verified_until_ms: Some(NOW - MIN),
            ..coverage(CoverageSource::Poller, ARN)
        });
        assert!(assess(&input, NOW, &frozen_at(stopped)).ready);
    }

    #[test]
    fn a_change_verified_after_the_freeze_shows_writes_did_not_stop() {
        let stopped = NOW - 10 * MIN;
        let mut input = polled_until(NOW - MIN);
        input.coverage.push(stream(NOW - 60 * MIN, stopped + 5_000));
        let r = assess(&input, NOW, &frozen_at(stopped));
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        assert!(
            r.reasons()[0].contains("writes did not stop"),
            "{:?}",
            r.reasons()
        );
        // Within the clock margin of the freeze, it may have been made before it.
        input.coverage[2] = stream(NOW - 60 * MIN, stopped + 999);
        assert!(assess(&input, NOW, &frozen_at(stopped)).ready);
    }

    #[test]
    fn after_a_freeze_a_poller_pass_that_sampled_keys_or_skipped_records_is_no_go() {
        // The operator stops writes, runs `shard-poller --once` with SAMPLE_RATE below 1 (or a
        // pass that met trimmed records): the pass reaches past T, but not every change before
        // it was verified. The freeze replaces only the recency check, never the others.
        let stopped = NOW - 10 * MIN;
        let mut sampled = polled_until(NOW - MIN);
        sampled.coverage[0].sample_rate = Some(0.5);
        let r = assess(&sampled, NOW, &frozen_at(stopped));
        assert!(!r.ready);
        assert_eq!(failing(&r), [CHECK_EVERY_CHANGE]);
        let mut trimmed = polled_until(NOW - MIN);
        trimmed.coverage[0].gaps = vec![gap(GapCause::Trimmed, NOW - 2 * MIN)];
        let r = assess(&trimmed, NOW, &frozen_at(stopped));
        assert!(!r.ready);
        assert_eq!(failing(&r), [CHECK_EVERY_CHANGE]);
    }

    #[test]
    fn a_freeze_in_the_future_is_no_go() {
        let r = assess(&polled_until(NOW - MIN), NOW, &frozen_at(NOW + MIN));
        assert_eq!(failing(&r), [CHECK_VERIFIED_PAST_FREEZE]);
        assert!(r.reasons()[0].contains("in the future"));
    }

    #[test]
    fn sampled_stream_verification_is_no_go() {
        let mut input = go();
        input.coverage[0].sample_rate = Some(0.25);
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_EVERY_CHANGE]);
        assert!(
            r.reasons()[0].contains("SAMPLE_RATE=0.25"),
            "{:?}",
            r.reasons()
        );
        input.coverage[0].sample_rate = Some(1.0);
        assert!(assess_default(&input).ready);
    }

    #[test]
    fn no_stream_coverage_is_no_go() {
        let mut input = go();
        input
            .coverage
            .retain(|c| c.source == CoverageSource::Baseline);
        let r = assess_default(&input);
        assert!(!r.ready);
        assert_eq!(failing(&r), [CHECK_NO_GAP, CHECK_STREAM_RECENT]);
        assert!(r.reasons()[0].contains("no stream verification recorded"));
        assert_eq!(r.to_json()["verified_until"], Value::Null);
    }

    #[test]
    fn stream_coverage_without_a_verified_change_is_no_go() {
        let mut input = go();
        input.coverage[0] = Coverage {
            last_retry_at_ms: Some(NOW - 30 * MIN),
            ..coverage(CoverageSource::Stream, "fn")
        };
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_NO_GAP, CHECK_STREAM_RECENT]);
    }

    #[test]
    fn stale_stream_verification_is_no_go_and_recent_is_go() {
        let mut input = go();
        input.coverage[0] = stream(NOW - 60 * MIN, NOW - 7 * MIN - 10_000);
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_STREAM_RECENT]);
        assert!(r.reasons()[0].contains("(7m 10s ago)"), "{:?}", r.reasons());
        assert!(r.reasons()[0].contains("more than 5m behind"));
        // A larger allowance accepts it.
        let lenient = ReadinessOptions {
            max_lag: Duration::from_secs(10 * 60),
            ..ReadinessOptions::default()
        };
        assert!(assess(&input, NOW, &lenient).ready);
        // Exactly max_lag behind is within it.
        input.coverage[0] = stream(NOW - 60 * MIN, NOW - 5 * MIN);
        assert!(assess_default(&input).ready);
    }

    #[test]
    fn the_chain_reaches_as_far_as_its_farthest_linked_verifier() {
        let mut input = go();
        input.coverage[0] = stream(NOW - 60 * MIN, NOW - 20 * MIN);
        input.coverage.push(Coverage {
            started_at_ms: Some(NOW - 40 * MIN + 10),
            verified_until_ms: Some(NOW - 30_000),
            ..coverage(CoverageSource::Poller, ARN)
        });
        let r = assess_default(&input);
        assert!(r.ready, "{:#?}", r.checks);
        assert_eq!(r.verified_until_ms, Some(NOW - 30_000));
    }

    #[test]
    fn open_findings_are_no_go_and_accepted_ones_are_listed_only() {
        let mut input = go();
        input.open = vec![
            finding("customerId=\"c#1\" orderId=7", FindingStatus::Open),
            finding("customerId=\"c#2\" orderId=8", FindingStatus::Open),
        ];
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_NO_OPEN_FINDINGS]);
        assert!(r.reasons()[0]
            .starts_with("2 open findings (first: customerId=\"c#1\" orderId=7 MISMATCH)"));
        assert_eq!(r.to_json()["open_findings"], 2);

        input.accepted = input
            .open
            .drain(..)
            .map(|mut f| {
                f.status = FindingStatus::Accepted;
                f.reason = Some("known test item".into());
                f
            })
            .collect();
        let r = assess_default(&input);
        assert!(r.ready, "{:#?}", r.checks);
        assert!(check(&r, CHECK_NO_OPEN_FINDINGS)
            .detail
            .contains("2 accepted"));
        let json = r.to_json();
        assert_eq!(json["open_findings"], 0);
        assert_eq!(
            json["accepted_findings"][0],
            json!({"key": "customerId=\"c#1\" orderId=7", "verdict": "MISMATCH", "reason": "known test item"})
        );
        assert!(r.to_text().contains("accepted findings (2, not blocking)"));
    }

    #[test]
    fn a_recent_retry_is_no_go_and_an_old_one_is_not() {
        let mut input = go();
        input.coverage[0].last_retry_at_ms = Some(NOW - 2 * MIN);
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_NO_RECENT_RETRIES]);
        assert!(
            r.reasons()[0].contains("(2m ago, within 5m) by stream stream-verifier"),
            "{:?}",
            r.reasons()
        );
        input.coverage[0].last_retry_at_ms = Some(NOW - 6 * MIN);
        let r = assess_default(&input);
        assert!(r.ready, "{:#?}", r.checks);
        assert!(check(&r, CHECK_NO_RECENT_RETRIES).detail.contains("6m ago"));
    }

    #[test]
    fn every_failing_reason_is_given_at_once() {
        let input = ReadinessInput {
            table: "Orders".into(),
            coverage: vec![
                Coverage {
                    last_retry_at_ms: Some(NOW - 1000),
                    ..stream(NOW - 10 * MIN, NOW - 9 * MIN)
                },
                baseline(NOW - 30 * MIN, Some(NOW - 20 * MIN)),
            ],
            open: vec![finding("k=1", FindingStatus::Open)],
            accepted: vec![],
            stream: TableStream::Current(ARN.into()),
            failure_queue: empty_queue(),
            mappings: None,
            delivery: Vec::new(),
            recorded_freeze: None,
        };
        let r = assess_default(&input);
        assert_eq!(
            failing(&r),
            [
                CHECK_NO_GAP,
                CHECK_STREAM_RECENT,
                CHECK_NO_OPEN_FINDINGS,
                CHECK_NO_RECENT_RETRIES
            ]
        );
        assert_eq!(r.reasons().len(), 4);
        let text = r.to_text();
        assert!(text
            .starts_with("NO-GO for table Orders (checked 2024-02-29T12:00:00Z, clock margin 1s)"));
        assert_eq!(text.matches("[FAIL]").count(), 4);
        assert_eq!(text.matches("[ ok ]").count(), 3);
    }

    #[test]
    fn records_waiting_in_the_failure_queue_are_no_go_and_an_unconfigured_queue_is_skipped() {
        let mut input = go();
        // Not configured, while the stream verifier covers the stream: NO-GO.
        input.failure_queue = FailureQueueState::NotConfigured;
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_FAILURE_QUEUE]);
        assert!(r.reasons()[0].contains("FAILURE_QUEUE_URL is not set"));
        // With the poller alone there is no queue to read: skipped, and said so.
        input.coverage[0].source = CoverageSource::Poller;
        let r = assess_default(&input);
        let queue = check(&r, CHECK_FAILURE_QUEUE);
        assert!(queue.ok && queue.skipped, "{queue:?}");
        assert_eq!(r.to_json()["checks"][6]["skipped"], true);
        let url = "https://sqs.us-east-1.amazonaws.com/1/verifier-failures";
        input.failure_queue = FailureQueueState::Read {
            url: url.into(),
            depth: QueueDepth {
                visible: 2,
                in_flight: 1,
                delayed: 0,
            },
        };
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_FAILURE_QUEUE]);
        assert!(
            r.reasons()[0].contains("holds 3 message(s)"),
            "{:?}",
            r.reasons()
        );
        input.failure_queue = FailureQueueState::Unreadable {
            url: url.into(),
            why: "AccessDenied".into(),
        };
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_FAILURE_QUEUE]);
        assert!(r.reasons()[0].contains("sqs:GetQueueAttributes"));
        input.failure_queue = FailureQueueState::Read {
            url: url.into(),
            depth: QueueDepth::default(),
        };
        let r = assess_default(&input);
        assert!(r.ready, "{}", r.to_text());
        assert!(!check(&r, CHECK_FAILURE_QUEUE).skipped);
    }

    fn mapping(function: &str, last_modified_ms: u64) -> Mapping {
        Mapping {
            uuid: "uuid-1".into(),
            function: function.into(),
            state: "Enabled".into(),
            last_modified_ms: Some(last_modified_ms),
            batching_window_s: None,
            last_processing_result: Some("OK".into()),
        }
    }

    #[test]
    fn an_event_source_mapping_changed_after_the_baseline_began_breaks_the_lambda_verifiers_coverage(
    ) {
        let with = |mappings: Result<Vec<Mapping>, String>| {
            let mut input = go();
            assert_eq!(needs_mappings(&input), Some(ARN));
            apply_mappings(&mut input, mappings, NOW);
            assess_default(&input)
        };
        // Attached two hours ago, before everything: nothing to say.
        let r = with(Ok(vec![mapping("stream-verifier", NOW - 120 * MIN)]));
        assert!(r.ready, "{}", r.to_text());
        // Detached and attached again (at LATEST, perhaps) 10 minutes ago, after the baseline
        // began 30 minutes ago: what came in between may never have been read.
        let r = with(Ok(vec![mapping("stream-verifier", NOW - 10 * MIN)]));
        assert_eq!(failing(&r), [CHECK_EVERY_CHANGE], "{}", r.to_text());
        assert!(
            r.reasons()[0].contains("mapping_changed"),
            "{:?}",
            r.reasons()
        );
        assert!(r.reasons()[0].contains("uuid-1"));
        // Another function's mapping is not this verifier's.
        let r = with(Ok(vec![mapping("replicator", NOW - 10 * MIN)]));
        assert!(r.ready, "{}", r.to_text());
        // Not readable: NO-GO, with the permission to grant.
        let r = with(Err("AccessDeniedException".into()));
        assert_eq!(failing(&r), [CHECK_EVERY_CHANGE]);
        assert!(r.reasons()[0].contains("lambda:ListEventSourceMappings"));
        // Only the stream verifier's coverage needs them.
        let mut poller_only = go();
        poller_only.coverage[0].source = CoverageSource::Poller;
        assert_eq!(needs_mappings(&poller_only), None);
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(s(250)), "4m 10s");
        assert_eq!(human_duration(s(45)), "45s");
        assert_eq!(human_duration(s(300)), "5m");
        assert_eq!(human_duration(s(3600 + 5 * 60 + 7)), "1h 5m");
        assert_eq!(human_duration(s(7200)), "2h");
        assert_eq!(human_duration(s(86_400 * 3 + 3600)), "3d 1h");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
    }
}
