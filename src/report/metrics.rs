//! The counters of an invocation (or a poller run), which add up with `+=`.

use std::ops::AddAssign;

use serde_json::Value;

use crate::ports::checkpoint::BaselineCounts;
use crate::report::emf::{table_documents, Metric};
use crate::verify::{BatchReport, Outcome, Verdict};

/// The figures of one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InvocationMetrics {
    pub records_received: u64,
    pub records_sampled: u64,
    pub matches: u64,
    pub missing: u64,
    pub mismatches: u64,
    pub deletes_not_applied: u64,
    /// Items only on the other side (the baseline compare).
    pub extra: u64,
    pub superseded: u64,
    pub unverifiable: u64,
    /// Differences explained by TTL (EXPIRED): neither problems nor matches.
    pub expired: u64,
    pub lookup_errors: u64,
    pub lookup_calls: u64,
    pub source_rechecks: u64,
    pub batch_item_failures: u64,
    /// Problems written to the findings store.
    pub findings_recorded: u64,
    /// Open findings resolved by a MATCH.
    pub findings_resolved: u64,
    /// Findings or coverage writes (and reads) that failed; a problem not recorded is verified
    /// again.
    pub findings_write_failures: u64,
    /// Problems the findings store refused as they are (retrying cannot help): not retried, counted
    /// in `findings_write_failures` too, and a gap in the verifier's coverage.
    pub findings_rejected: u64,
    pub replication_lag_ms: Vec<f64>,
    pub verify_duration_ms: f64,
}

impl InvocationMetrics {
    /// Lookups and time of a report (not its outcomes).
    pub fn add_calls(&mut self, report: &BatchReport) {
        self.lookup_errors += report.lookup_errors as u64;
        self.lookup_calls += report.lookup_calls as u64;
        self.source_rechecks += report.source_calls as u64;
        self.verify_duration_ms += report.duration.as_secs_f64() * 1000.0;
    }

    /// Counts one record's outcome.
    pub fn add_outcome(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::NotSampled => return,
            Outcome::Retry(_) => self.batch_item_failures += 1,
            Outcome::Verdict(v) => match v {
                Verdict::Match { lag } => {
                    self.matches += 1;
                    self.replication_lag_ms.push(lag.as_millis() as f64);
                }
                Verdict::Missing { .. } => self.missing += 1,
                Verdict::Mismatch { .. } => self.mismatches += 1,
                Verdict::DeleteNotApplied { .. } => self.deletes_not_applied += 1,
                Verdict::Extra { .. } => self.extra += 1,
                Verdict::Superseded { .. } => self.superseded += 1,
                Verdict::Unverifiable { .. } => self.unverifiable += 1,
                Verdict::Expired { .. } => self.expired += 1,
            },
        }
        self.records_sampled += 1;
    }

    /// Every metric, zeros included, so alarms see 0 rather than missing data.
    pub fn metrics(&self) -> Vec<Metric> {
        let count = Metric::count;
        let mut out = vec![
            count("RecordsReceived", self.records_received),
            count("RecordsSampled", self.records_sampled),
            count("Match", self.matches),
            count("Missing", self.missing),
            count("Mismatch", self.mismatches),
            count("DeleteNotApplied", self.deletes_not_applied),
            count("Extra", self.extra),
            count("Superseded", self.superseded),
            count("Unverifiable", self.unverifiable),
            count("Expired", self.expired),
            count("LookupErrors", self.lookup_errors),
            count("LookupCalls", self.lookup_calls),
            count("SourceRechecks", self.source_rechecks),
            count("BatchItemFailures", self.batch_item_failures),
            count("FindingsRecorded", self.findings_recorded),
            count("FindingsResolved", self.findings_resolved),
            count("FindingsWriteFailures", self.findings_write_failures),
            Metric::milliseconds("VerifyDuration", vec![self.verify_duration_ms.round()]),
        ];
        if !self.replication_lag_ms.is_empty() {
            out.push(Metric::milliseconds(
                "ReplicationLag",
                self.replication_lag_ms.clone(),
            ));
        }
        out
    }

    pub fn emf_documents(
        &self,
        namespace: &str,
        verify_table: &str,
        timestamp_ms: u64,
    ) -> Vec<Value> {
        table_documents(namespace, verify_table, timestamp_ms, &self.metrics())
    }
}

impl AddAssign for InvocationMetrics {
    fn add_assign(&mut self, part: InvocationMetrics) {
        self.records_received += part.records_received;
        self.records_sampled += part.records_sampled;
        self.matches += part.matches;
        self.missing += part.missing;
        self.extra += part.extra;
        self.mismatches += part.mismatches;
        self.deletes_not_applied += part.deletes_not_applied;
        self.superseded += part.superseded;
        self.unverifiable += part.unverifiable;
        self.expired += part.expired;
        self.lookup_errors += part.lookup_errors;
        self.lookup_calls += part.lookup_calls;
        self.source_rechecks += part.source_rechecks;
        self.batch_item_failures += part.batch_item_failures;
        self.findings_recorded += part.findings_recorded;
        self.findings_resolved += part.findings_resolved;
        self.findings_write_failures += part.findings_write_failures;
        self.findings_rejected += part.findings_rejected;
        self.replication_lag_ms.extend(part.replication_lag_ms);
        self.verify_duration_ms += part.verify_duration_ms;
    }
}

/// The poller's own figures for one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollerMetrics {
    pub shards_discovered: u64,
    pub shards_read: u64,
    pub shards_finished: u64,
    pub records_read: u64,
    /// Milliseconds between the newest record read and the end of its read.
    pub iterator_age_ms: u64,
    pub checkpoint_writes: u64,
    pub lease_conflicts: u64,
    /// Occurrences of trimmed stream data (each a gap of unknown size that could not be verified),
    /// lineages trimmed before they were read to their end included.
    pub records_trimmed: u64,
    /// Records created before the stream's start under `LATEST`, read from TRIM_HORIZON: skipped
    /// (not verified) and checkpointed past.
    pub records_before_start: u64,
    pub get_records_calls: u64,
    /// Shards whose reading failed in this run (errors after the SDK's retries).
    pub shard_failures: u64,
}

impl PollerMetrics {
    pub fn metrics(&self) -> Vec<Metric> {
        let count = Metric::count;
        vec![
            count("ShardsDiscovered", self.shards_discovered),
            count("ShardsRead", self.shards_read),
            count("ShardsFinished", self.shards_finished),
            count("RecordsRead", self.records_read),
            Metric::milliseconds("IteratorAge", vec![self.iterator_age_ms as f64]),
            count("CheckpointWrites", self.checkpoint_writes),
            count("LeaseConflicts", self.lease_conflicts),
            count("RecordsTrimmed", self.records_trimmed),
            count("RecordsBeforeStart", self.records_before_start),
            count("GetRecordsCalls", self.get_records_calls),
            count("ShardFailures", self.shard_failures),
        ]
    }
}

/// Counters add up; the iterator age is the run's largest.
impl AddAssign for PollerMetrics {
    fn add_assign(&mut self, part: PollerMetrics) {
        self.shards_discovered += part.shards_discovered;
        self.shards_read += part.shards_read;
        self.shards_finished += part.shards_finished;
        self.records_read += part.records_read;
        self.iterator_age_ms = self.iterator_age_ms.max(part.iterator_age_ms);
        self.checkpoint_writes += part.checkpoint_writes;
        self.lease_conflicts += part.lease_conflicts;
        self.records_trimmed += part.records_trimmed;
        self.records_before_start += part.records_before_start;
        self.get_records_calls += part.get_records_calls;
        self.shard_failures += part.shard_failures;
    }
}

/// The EMF metrics of a baseline: `ItemsScanned`, the verdicts (`Extra` among them), and
/// `PointReads` (items the scans alone could not settle).
pub fn baseline_metrics(counts: &BaselineCounts) -> Vec<Metric> {
    let count = Metric::count;
    vec![
        count("ItemsScanned", counts.items_source + counts.items_target),
        count("Match", counts.matched),
        count("Missing", counts.missing),
        count("Mismatch", counts.mismatched),
        count("Extra", counts.extra),
        count("Superseded", counts.superseded),
        count("Unverifiable", counts.unverifiable),
        count("Expired", counts.expired),
        count("PointReads", counts.point_reads),
    ]
}
