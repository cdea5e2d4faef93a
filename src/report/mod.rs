//! One verdict path: every record's outcome is first written to the findings store when there is
//! one ([`findings`]: a problem not recorded becomes a retry), then becomes a [`RecordReport`] and
//! goes to the [`OutcomeSink`] (a log line and the counters), from the Lambda handler, the poller,
//! the baseline and revalidation alike.

pub mod emf;
pub mod findings;
pub mod metrics;

use crate::record::{describe_key, Expectation, MalformedRecord};
use crate::verify::{Evidence, Outcome, Proof, Verdict};
use metrics::{InvocationMetrics, PollerMetrics};

/// One record's result, for logs, the demo's table and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport {
    pub event_id: Option<String>,
    pub sequence_number: Option<String>,
    pub event_name: Option<&'static str>,
    /// The key as `name=value` pairs (see [`describe_key`]).
    pub key: Option<String>,
    pub ttl_delete: bool,
    pub outcome: Outcome,
    /// Item values behind a MISMATCH, only with `LOG_ITEM_VALUES=true`.
    pub evidence: Option<Evidence>,
}

impl RecordReport {
    pub fn of(record: &Expectation, outcome: Outcome) -> RecordReport {
        let change = record.stream();
        RecordReport {
            event_id: change.map(|c| c.event_id.clone()),
            sequence_number: change.map(|c| c.sequence_number.clone()),
            event_name: change.map(|c| c.kind.as_str()),
            key: Some(describe_key(&record.keys)),
            ttl_delete: change.is_some_and(|c| c.ttl_delete),
            outcome,
            evidence: None,
        }
    }

    /// A record that could not be read: UNVERIFIABLE with the reason.
    pub fn malformed(m: &MalformedRecord) -> RecordReport {
        RecordReport {
            event_id: m.event_id.clone(),
            sequence_number: m.sequence_number.clone(),
            event_name: None,
            key: m.keys.as_deref().map(describe_key),
            ttl_delete: false,
            outcome: Outcome::Verdict(Verdict::Unverifiable {
                reason: m.reason.clone(),
            }),
            evidence: None,
        }
    }

    /// Whether [`RecordReport::log`] writes a line for this outcome.
    pub fn is_logged(outcome: &Outcome) -> bool {
        match outcome {
            Outcome::Verdict(verdict) => {
                verdict.is_problem() || matches!(verdict, Verdict::Expired { .. })
            }
            Outcome::Retry(_) => true,
            Outcome::NotSampled => false,
        }
    }

    /// One WARN line for a problem verdict or a record to be verified again, an INFO line for
    /// EXPIRED (without the TTL's value: an item value); nothing otherwise.
    /// Keys, attribute names and verdicts only; item values only when evidence was kept
    /// (`LOG_ITEM_VALUES=true`).
    pub fn log(&self) {
        let key = self.key.as_deref().unwrap_or("-");
        let event_id = self.event_id.as_deref().unwrap_or("-");
        let sequence_number = self.sequence_number.as_deref().unwrap_or("-");
        match &self.outcome {
            Outcome::Verdict(verdict) if verdict.is_problem() => {
                // The detail says which case proved the verdict (`Proof`), after the diff.
                let (attributes, detail) = match verdict {
                    Verdict::Mismatch { diff, proof } => {
                        (diff.attribute_names().join(","), format!("{diff}; {proof}"))
                    }
                    Verdict::Missing { proof }
                    | Verdict::DeleteNotApplied { proof }
                    | Verdict::Extra { proof } => (String::new(), proof.to_string()),
                    Verdict::Unverifiable { reason } => (String::new(), reason.clone()),
                    _ => (String::new(), String::new()),
                };
                let values = self
                    .evidence
                    .as_ref()
                    .map(|e| format!("expected={:?} found={:?}", e.expected, e.found));
                tracing::warn!(
                    key,
                    event_id,
                    sequence_number,
                    event_name = self.event_name.unwrap_or("-"),
                    ttl_delete = self.ttl_delete,
                    verdict = verdict.name(),
                    proof = verdict.proof().map(Proof::name),
                    attributes = %attributes,
                    detail = %detail,
                    values = values.as_deref(),
                    "replication problem"
                );
            }
            Outcome::Verdict(Verdict::Expired { instead_of, .. }) => tracing::info!(
                key,
                event_id,
                sequence_number,
                event_name = self.event_name.unwrap_or("-"),
                verdict = "EXPIRED",
                instead_of,
                "expired: the item is past its TTL, which DynamoDB deletes at its own pace on each table; not a replication problem"
            ),
            Outcome::Retry(reason) => tracing::warn!(
                key,
                event_id,
                sequence_number,
                reason = %reason,
                "not verified yet; the record will be delivered (or read) again"
            ),
            _ => {}
        }
    }
}

/// Where every record's outcome goes: logged (one WARN line for a problem or a retry) and counted.
/// The Lambda handler and the poller both feed it.
pub struct OutcomeSink<'a> {
    metrics: &'a mut InvocationMetrics,
    /// `None`: reports are logged and counted, not kept (a baseline over millions of items).
    records: Option<&'a mut Vec<RecordReport>>,
}

impl<'a> OutcomeSink<'a> {
    pub fn new(
        metrics: &'a mut InvocationMetrics,
        records: &'a mut Vec<RecordReport>,
    ) -> OutcomeSink<'a> {
        OutcomeSink {
            metrics,
            records: Some(records),
        }
    }

    /// A sink that logs and counts but keeps no reports: memory does not grow with the input.
    pub fn counting(metrics: &'a mut InvocationMetrics) -> OutcomeSink<'a> {
        OutcomeSink {
            metrics,
            records: None,
        }
    }

    /// The counters, for what is not a record's outcome (lookup calls, time).
    pub fn metrics(&mut self) -> &mut InvocationMetrics {
        self.metrics
    }

    /// A record whose outcome stands (a verdict, a retry handed back to Lambda, or not sampled):
    /// logged, counted and kept.
    pub fn accept(&mut self, line: RecordReport) {
        line.log();
        self.metrics.add_outcome(&line.outcome);
        if let Some(records) = self.records.as_mut() {
            records.push(line);
        }
    }

    /// [`OutcomeSink::accept`], with the report built only when it is logged or kept: most
    /// records match, and a sink that only counts need not describe them.
    pub fn accept_with(&mut self, outcome: Outcome, report: impl FnOnce(Outcome) -> RecordReport) {
        if self.records.is_some() || RecordReport::is_logged(&outcome) {
            self.accept(report(outcome));
        } else {
            self.metrics.add_outcome(&outcome);
        }
    }

    /// A record to be read again (the poller's next run) whatever its outcome now: logged if it is
    /// a retry itself, and a sampled one counts as deferred (the poller's batch item failures), so
    /// RecordsSampled = verdicts + BatchItemFailures, as for the verifier.
    pub fn defer(&mut self, line: &RecordReport) {
        if matches!(line.outcome, Outcome::Retry(_)) {
            line.log();
        }
        if !matches!(line.outcome, Outcome::NotSampled) {
            self.metrics.batch_item_failures += 1;
            self.metrics.records_sampled += 1;
        }
    }
}

/// The one INFO summary of a batch (`run` is None) or of a poller run (its stream and figures).
pub fn log_summary(message: &str, m: &InvocationMetrics, run: Option<(&str, &PollerMetrics)>) {
    let (stream_arn, p) = match run {
        Some((arn, p)) => (Some(arn), Some(p)),
        None => (None, None),
    };
    tracing::info!(
        stream_arn,
        shards_discovered = p.map(|p| p.shards_discovered),
        shards_read = p.map(|p| p.shards_read),
        shards_finished = p.map(|p| p.shards_finished),
        records_read = p.map(|p| p.records_read),
        checkpoint_writes = p.map(|p| p.checkpoint_writes),
        lease_conflicts = p.map(|p| p.lease_conflicts),
        records_trimmed = p.map(|p| p.records_trimmed),
        records_before_start = p.map(|p| p.records_before_start),
        received = m.records_received,
        sampled = m.records_sampled,
        matched = m.matches,
        missing = m.missing,
        mismatched = m.mismatches,
        delete_not_applied = m.deletes_not_applied,
        superseded = m.superseded,
        unverifiable = m.unverifiable,
        expired = m.expired,
        batch_item_failures = m.batch_item_failures,
        findings_recorded = m.findings_recorded,
        findings_resolved = m.findings_resolved,
        findings_write_failures = m.findings_write_failures,
        lookup_calls = m.lookup_calls,
        duration_ms = m.verify_duration_ms as u64,
        shard_failures = p.map(|p| p.shard_failures),
        "{message}"
    );
}
