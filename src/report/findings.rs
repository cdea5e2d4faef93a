//! The findings leg of the outcome path: before outcomes are logged and counted, a problem verdict
//! is recorded in the findings store and a MATCH resolves its key's open finding.
//!
//! A problem whose finding cannot be written is not lost: its outcome becomes a retry
//! ([`RetryReason::FindingNotRecorded`]), so the stream verifier hands the record back as a batch
//! item failure, the poller does not checkpoint past it, and the baseline does not save its page.
//! A resolution that fails leaves the finding open, which is the safe side: revalidation or the
//! next MATCH resolves it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::stream::{self, StreamExt};

use crate::ports::findings::{
    finding_id, CoverageSource, CoverageWrite, FindingOrigin, FindingsError, FindingsStore,
    GapCause, GapWrite, Problem, ProblemWrite, Resolution,
};
use crate::record::{Expectation, MalformedRecord, Origin};
use crate::report::metrics::InvocationMetrics;
use crate::shared::epoch_ms;
use crate::shared::error_chain;
use crate::verify::{BatchReport, Evidence, Outcome, RetryReason, Verdict};

/// A new finding is first due for revalidation this long after it was seen.
pub const FIRST_RECHECK: Duration = Duration::from_secs(5 * 60);

/// Findings writes in flight at once.
const WRITES_IN_FLIGHT: usize = 16;

/// What names each sighting, so that a repeated one changes nothing.
#[derive(Debug, Clone, Copy)]
pub enum Occurrence<'a> {
    /// Each record's sequence number.
    Stream,
    /// A baseline run.
    Baseline(&'a str),
    /// A revalidation at this time.
    Revalidation(u64),
}

/// One verifier pass over some records: how its sightings are named, and when its reads began (a
/// MATCH is an observation made no earlier, see [`observed_at`]).
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    pub occurrence: Occurrence<'a>,
    pub observed_from_ms: u64,
}

/// Why a problem's finding was not written: `refused` when asking again cannot help.
struct NotRecorded {
    refused: bool,
    message: String,
}

/// Which records' keys had an open finding when read (by record), or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenFindings(Result<Vec<bool>, String>);

/// Writes findings for one verifier.
#[derive(Debug, Clone)]
pub struct FindingsWriter<F> {
    store: F,
    origin: FindingOrigin,
    /// The verified table; when `None`, each record's source table (the stream verifier's events
    /// name it).
    table: Option<String>,
}

/// The problem a verdict describes, with values only when they were kept (`LOG_ITEM_VALUES`).
pub fn problem_of(verdict: &Verdict, evidence: Option<&Evidence>) -> Problem {
    let (detail, attributes) = match verdict {
        Verdict::Mismatch { diff, proof } => (
            format!("{diff}; {proof}"),
            diff.attribute_names()
                .into_iter()
                .map(str::to_string)
                .collect(),
        ),
        Verdict::Unverifiable { reason } => (reason.clone(), Vec::new()),
        other => (
            other.proof().map(|p| p.to_string()).unwrap_or_default(),
            Vec::new(),
        ),
    };
    Problem {
        verdict: verdict.name(),
        proof: verdict.proof().map(|p| p.name()),
        detail,
        attributes,
        values: evidence.map(|e| format!("expected={:?} found={:?}", e.expected, e.found)),
    }
}

impl<F: FindingsStore> FindingsWriter<F> {
    pub fn new(store: F, origin: FindingOrigin, table: Option<String>) -> FindingsWriter<F> {
        FindingsWriter {
            store,
            origin,
            table,
        }
    }

    pub fn store(&self) -> &F {
        &self.store
    }

    pub fn origin(&self) -> FindingOrigin {
        self.origin
    }

    fn table_of<'r>(&'r self, record: &'r Expectation) -> Option<&'r str> {
        self.table.as_deref().or(record.source_table.as_deref())
    }

    /// Which records' keys have an open finding, read before their verdicts are known, so that
    /// the read runs beside the engine's lookups (see [`FindingsWriter::write_with`]).
    pub async fn open_findings(&self, records: &[Expectation]) -> OpenFindings {
        self.open_at(records, 0..records.len()).await
    }

    /// Open findings of the records at `indexes` (the others: not open).
    async fn open_at(
        &self,
        records: &[Expectation],
        indexes: impl Iterator<Item = usize>,
    ) -> OpenFindings {
        let mut by_table: HashMap<&str, Vec<usize>> = HashMap::new();
        for i in indexes {
            if let Some(table) = self.table_of(&records[i]) {
                by_table.entry(table).or_default().push(i);
            }
        }
        let mut open = vec![false; records.len()];
        for (table, indexes) in by_table {
            let keys: Vec<_> = indexes.iter().map(|&i| &records[i].keys).collect();
            match self.store.open_among(table, &keys).await {
                Ok(found) => {
                    for (&i, is_open) in indexes.iter().zip(found) {
                        open[i] = is_open;
                    }
                }
                Err(e) => return OpenFindings(Err(error_chain(&e))),
            }
        }
        OpenFindings(Ok(open))
    }

    /// Records the problems among `outcomes` and resolves the MATCHed keys' open findings. A
    /// problem not recorded becomes a retry. Counts go to `metrics`.
    pub async fn write(
        &self,
        records: &[Expectation],
        outcomes: &mut [Outcome],
        evidence: &HashMap<usize, Evidence>,
        pass: Pass<'_>,
        metrics: &mut InvocationMetrics,
    ) {
        // Read after the verdicts: only the MATCHed keys.
        let matched = (0..outcomes.len())
            .filter(|&i| matches!(outcomes[i], Outcome::Verdict(Verdict::Match { .. })));
        let open = self.open_at(records, matched).await;
        self.write_with(records, outcomes, evidence, pass, open, metrics)
            .await;
    }

    /// [`FindingsWriter::write_with`] for a batch of stream records the engine verified
    /// (`report`): each sighting named by its sequence number, observed from the batch's start.
    pub async fn write_stream(
        &self,
        records: &[Expectation],
        report: &mut BatchReport,
        open: OpenFindings,
        metrics: &mut InvocationMetrics,
    ) {
        let pass = Pass {
            occurrence: Occurrence::Stream,
            observed_from_ms: report.started_at_ms,
        };
        self.write_with(
            records,
            &mut report.outcomes,
            &report.evidence,
            pass,
            open,
            metrics,
        )
        .await;
    }

    /// [`FindingsWriter::write`] with the open findings read beforehand (`open`, by record).
    /// Problems first, then resolutions of keys without a problem in this pass.
    pub async fn write_with(
        &self,
        records: &[Expectation],
        outcomes: &mut [Outcome],
        evidence: &HashMap<usize, Evidence>,
        pass: Pass<'_>,
        open: OpenFindings,
        metrics: &mut InvocationMetrics,
    ) {
        let now = epoch_ms();
        let mut problems = Vec::new();
        let mut matched = Vec::new();
        for (i, outcome) in outcomes.iter().enumerate() {
            match outcome {
                Outcome::Verdict(Verdict::Match { .. }) => matched.push(i),
                Outcome::Verdict(v) if v.is_problem() => {
                    problems.push((i, problem_of(v, evidence.get(&i))));
                }
                _ => {}
            }
        }
        let recorded = self
            .record_problems(records, &problems, pass.occurrence, now)
            .await;
        count_recorded(records, outcomes, recorded, metrics);
        let open = match open.0 {
            Ok(open) => open,
            Err(message) => {
                if !matched.is_empty() {
                    metrics.findings_write_failures += 1;
                    tracing::warn!(error = %message, "open findings not read; MATCHed keys' findings stay open until revalidation");
                }
                return;
            }
        };
        let judged_from_ms = pass.observed_from_ms.min(now);
        self.resolve_matches(records, &problems, &matched, &open, judged_from_ms, metrics)
            .await;
    }

    /// Writes the finding of each problem (by record), at most `WRITES_IN_FLIGHT` at once; by
    /// record, whether it was written.
    async fn record_problems(
        &self,
        records: &[Expectation],
        problems: &[(usize, Problem)],
        occurrence: Occurrence<'_>,
        now: u64,
    ) -> Vec<(usize, Result<(), NotRecorded>)> {
        let next_check = now + FIRST_RECHECK.as_millis() as u64;
        let (label, baseline_run) = match occurrence {
            Occurrence::Stream => (None, None),
            Occurrence::Baseline(run) => (Some(format!("baseline:{run}")), Some(run)),
            Occurrence::Revalidation(at) => (Some(format!("revalidation:{at}")), None),
        };
        let writes = problems.iter().map(|(i, problem)| {
            let record = &records[*i];
            let sequence_number = record.sequence_number();
            let occurrence = match occurrence {
                Occurrence::Stream => sequence_number.unwrap_or("-"),
                _ => label.as_deref().unwrap_or("-"),
            };
            let table = self.table_of(record);
            async move {
                let Some(table) = table else {
                    return (
                        *i,
                        Err(NotRecorded {
                            refused: true,
                            message: "no table is known for this record's finding".to_string(),
                        }),
                    );
                };
                let write = ProblemWrite {
                    table,
                    key: &record.keys,
                    problem,
                    origin: self.origin,
                    occurrence,
                    sequence_number,
                    baseline_run,
                    now_ms: now,
                    next_check_ms: next_check,
                };
                (
                    *i,
                    self.store.record(&write).await.map_err(|e| NotRecorded {
                        refused: e.is_rejected(),
                        message: error_chain(&e),
                    }),
                )
            }
        });
        stream::iter(writes)
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await
    }

    /// Resolves the open findings (`open`, by record) of the `matched` records' keys, unless the
    /// key is also among this pass's `problems` (its MATCH may be the older record). A MATCH is
    /// judged no earlier than `judged_from_ms` (see [`observed_at`]).
    async fn resolve_matches(
        &self,
        records: &[Expectation],
        problems: &[(usize, Problem)],
        matched: &[usize],
        open: &[bool],
        judged_from_ms: u64,
        metrics: &mut InvocationMetrics,
    ) {
        let wrong: HashSet<String> = problems
            .iter()
            .filter_map(|(i, _)| {
                let record = &records[*i];
                self.table_of(record).map(|t| finding_id(t, &record.keys))
            })
            .collect();
        let resolutions = matched
            .iter()
            .filter(|&&i| open.get(i).copied().unwrap_or(false))
            .filter_map(|&i| {
                let record = &records[i];
                let table = self.table_of(record)?;
                let judged_at_ms = observed_at(record, judged_from_ms);
                (!wrong.contains(&finding_id(table, &record.keys))).then_some((
                    table,
                    &record.keys,
                    judged_at_ms,
                ))
            })
            .map(|(table, key, judged_at_ms)| async move {
                self.store
                    .resolve(&Resolution {
                        table,
                        key,
                        origin: self.origin,
                        judged_at_ms,
                    })
                    .await
            });
        let results: Vec<Result<bool, FindingsError>> = stream::iter(resolutions)
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        for result in results {
            match result {
                Ok(true) => metrics.findings_resolved += 1,
                Ok(false) => {}
                Err(e) => {
                    metrics.findings_write_failures += 1;
                    tracing::warn!(error = %error_chain(&e), "finding not resolved; it stays open until revalidation");
                }
            }
        }
    }

    /// An UNVERIFIABLE finding for each record that could not be verified but whose key is known,
    /// so that readiness shows it until it is accepted or resolved. By position in `malformed`:
    /// `Some(why)` when it must be read again (its finding was not written, and asking again may
    /// succeed); a finding the table refuses is counted and left (see `findings_rejected`).
    pub async fn write_unreadable(
        &self,
        malformed: &[MalformedRecord],
        metrics: &mut InvocationMetrics,
    ) -> Vec<Option<String>> {
        let now = epoch_ms();
        let next_check = now + FIRST_RECHECK.as_millis() as u64;
        let writes = malformed.iter().map(|m| async move {
            let (Some(keys), Some(table)) = (
                m.keys.as_deref(),
                self.table.as_deref().or(m.source_table.as_deref()),
            ) else {
                return None;
            };
            let problem = Problem {
                verdict: "UNVERIFIABLE",
                proof: None,
                detail: m.reason.clone(),
                attributes: Vec::new(),
                values: None,
            };
            let occurrence = m
                .sequence_number
                .clone()
                .or_else(|| m.event_id.as_ref().map(|e| format!("event:{e}")))
                .unwrap_or_else(|| "-".to_string());
            let write = ProblemWrite {
                table,
                key: keys,
                problem: &problem,
                origin: self.origin,
                occurrence: &occurrence,
                sequence_number: m.sequence_number.as_deref(),
                baseline_run: None,
                now_ms: now,
                next_check_ms: next_check,
            };
            Some(self.store.record(&write).await)
        });
        let results: Vec<Option<Result<(), FindingsError>>> = stream::iter(writes)
            .buffered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        results
            .into_iter()
            .zip(malformed)
            .map(|(result, m)| match result? {
                Ok(()) => {
                    metrics.findings_recorded += 1;
                    None
                }
                Err(e) if e.is_rejected() => {
                    metrics.findings_write_failures += 1;
                    metrics.findings_rejected += 1;
                    tracing::error!(sequence_number = m.sequence_number.as_deref().unwrap_or("-"), error = %error_chain(&e), "the findings table refused an unreadable record's finding; it is not retried");
                    None
                }
                Err(e) => {
                    metrics.findings_write_failures += 1;
                    let message = error_chain(&e);
                    tracing::warn!(sequence_number = m.sequence_number.as_deref().unwrap_or("-"), error = %message, "an unreadable record's finding was not recorded; the record will be read again");
                    Some(message)
                }
            })
            .collect()
    }

    /// Adds to this verifier's coverage.
    pub async fn cover(&self, write: CoverageWrite<'_>) -> Result<(), FindingsError> {
        self.store.cover(&write).await
    }
}

/// When the observation a MATCH rests on was made: when the reads that judged it began, or, for a
/// scanned item or a finding read again, when its state was read, if earlier. A finding last seen
/// after it came from a newer observation and stays open (revalidation judges it afresh).
fn observed_at(record: &Expectation, reads_began_ms: u64) -> u64 {
    let read_at = match (&record.origin, record.since) {
        (Origin::Stream(_), _) | (_, None) => None,
        (_, Some(since)) => since
            .duration_since(UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64),
    };
    read_at.map_or(reads_began_ms, |t| t.min(reads_began_ms))
}

/// Counts the problems' findings written; a problem whose finding was not written becomes a retry
/// (the record is verified again), unless the table refused it.
fn count_recorded(
    records: &[Expectation],
    outcomes: &mut [Outcome],
    recorded: Vec<(usize, Result<(), NotRecorded>)>,
    metrics: &mut InvocationMetrics,
) {
    for (i, result) in recorded {
        match result {
            Ok(()) => metrics.findings_recorded += 1,
            Err(NotRecorded {
                refused: true,
                message,
            }) => {
                // Refused as it is: asking again would stall the verifier for ever. The
                // verdict stands; the verifier's coverage records a gap for it.
                metrics.findings_write_failures += 1;
                metrics.findings_rejected += 1;
                tracing::error!(
                    key = %crate::record::describe_key(&records[i].keys),
                    error = %message,
                    "the findings table refused this problem's finding; it is not retried, and readiness stays NO-GO until a new baseline"
                );
            }
            Err(NotRecorded { message, .. }) => {
                metrics.findings_write_failures += 1;
                tracing::warn!(
                    key = %crate::record::describe_key(&records[i].keys),
                    error = %message,
                    "finding not recorded; the record will be verified again"
                );
                outcomes[i] = Outcome::Retry(RetryReason::FindingNotRecorded { message });
            }
        }
    }
}

/// Creation times before this (2014-01-01) are not believed: DynamoDB Streams did not exist, so
/// such a time is a bad value (a near-zero, or seconds read as something else).
pub const EARLIEST_CREATION_MS: u64 = 1_388_534_400_000;

/// A creation time further ahead of this clock than this is not believed (milliseconds or
/// microseconds read as seconds): as the engine's window does (`verify::timing`).
pub const CREATION_AHEAD_MS: u64 = 5_000;

/// What a batch of stream records with their outcomes shows: the creation time (epoch ms) of the
/// oldest change given an outcome, of the newest one before the first handed back, whether one was
/// handed back, and how many creation times could not be believed (they move nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifiedSpan {
    pub first_change_ms: Option<u64>,
    pub verified_until_ms: Option<u64>,
    pub handed_back: bool,
    pub unbelievable: u64,
}

impl VerifiedSpan {
    pub fn of(records: &[Expectation], outcomes: &[Outcome], now_ms: u64) -> VerifiedSpan {
        let ms =
            |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let believable = EARLIEST_CREATION_MS..=now_ms.saturating_add(CREATION_AHEAD_MS);
        let mut span = VerifiedSpan::default();
        for (record, outcome) in records.iter().zip(outcomes) {
            if matches!(outcome, Outcome::Retry(_)) {
                span.handed_back = true;
                continue;
            }
            let Some(c) = record.since.map(ms) else {
                continue;
            };
            if !believable.contains(&c) {
                span.unbelievable += 1;
                continue;
            }
            span.first_change_ms = Some(span.first_change_ms.map_or(c, |s| s.min(c)));
            if !span.handed_back {
                span.verified_until_ms = Some(span.verified_until_ms.map_or(c, |u| u.max(c)));
            }
        }
        span
    }
}

/// Which verifier's coverage a batch adds to.
#[derive(Debug, Clone, Copy)]
pub struct CoverageOf<'a> {
    pub table: &'a str,
    pub source: CoverageSource,
    pub name: &'a str,
    pub stream_arn: Option<&'a str>,
    /// The verifier's `SAMPLE_RATE`: below 1, every write is a gap.
    pub sample_rate: f64,
    /// Problems of the batch the findings store refused (see `InvocationMetrics::findings_rejected`).
    pub problems_refused: u64,
}

/// The gap a verifier sampling at `rate` leaves, if it does.
pub fn sampling_gap(rate: f64) -> Option<GapWrite> {
    (rate < 1.0).then(|| GapWrite {
        cause: GapCause::Sampled,
        detail: format!("SAMPLE_RATE={rate}: keys outside the sample were not verified"),
    })
}

/// The gap `refused` problems the findings store would not take leave, if any.
pub fn refusal_gap(refused: u64) -> Option<GapWrite> {
    (refused > 0).then(|| GapWrite {
        cause: GapCause::ProblemNotRecorded,
        detail: format!(
            "{refused} problem(s) the findings table refused to record (see the ERROR lines): their keys have no finding"
        ),
    })
}

/// A batch's coverage (see [`VerifiedSpan`]) for the verifier `of`: a creation time not believed
/// and sampling are gaps.
pub fn stream_coverage<'a>(
    of: CoverageOf<'a>,
    records: &[Expectation],
    outcomes: &[Outcome],
) -> CoverageWrite<'a> {
    let now = epoch_ms();
    let span = VerifiedSpan::of(records, outcomes, now);
    let mut gaps: Vec<GapWrite> = sampling_gap(of.sample_rate).into_iter().collect();
    gaps.extend(refusal_gap(of.problems_refused));
    if span.unbelievable > 0 {
        gaps.push(GapWrite {
            cause: GapCause::BadCreationTime,
            detail: format!(
                "{} record(s) with an ApproximateCreationDateTime before 2014 or ahead of the clock: coverage did not move on them",
                span.unbelievable
            ),
        });
    }
    CoverageWrite {
        table: of.table,
        source: of.source,
        name: of.name,
        stream_arn: of.stream_arn,
        started_at_ms: span.first_change_ms,
        verified_until_ms: span.verified_until_ms,
        retry_at_ms: span.handed_back.then_some(now),
        complete: None,
        sample_rate: Some(of.sample_rate),
        gaps,
        now_ms: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Expected;
    use aws_sdk_dynamodb::types::AttributeValue as V;

    fn scanned(pk: &str) -> Expectation {
        Expectation {
            keys: [("pk".to_string(), V::S(pk.into()))].into(),
            expected: Expected::Absent,
            since: None,
            source_table: None,
            origin: Origin::Scan,
        }
    }

    #[test]
    fn a_finding_not_written_is_a_retry_unless_refused() {
        let records = [scanned("a"), scanned("b"), scanned("c")];
        let mut outcomes = vec![
            Outcome::NotSampled,
            Outcome::NotSampled,
            Outcome::NotSampled,
        ];
        let not_recorded = |refused| NotRecorded {
            refused,
            message: "no".into(),
        };
        let recorded = vec![
            (2, Ok(())),
            (0, Err(not_recorded(true))),
            (1, Err(not_recorded(false))),
        ];
        let mut metrics = InvocationMetrics::default();
        count_recorded(&records, &mut outcomes, recorded, &mut metrics);
        assert!(matches!(outcomes[0], Outcome::NotSampled));
        assert!(matches!(
            outcomes[1],
            Outcome::Retry(RetryReason::FindingNotRecorded { .. })
        ));
        assert!(matches!(outcomes[2], Outcome::NotSampled));
        assert_eq!(metrics.findings_recorded, 1);
        assert_eq!(metrics.findings_write_failures, 2);
        assert_eq!(metrics.findings_rejected, 1);
    }
}
