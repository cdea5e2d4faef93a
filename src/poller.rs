//! The shard poller: for when the stream cannot be attached to the function. Each run discovers the
//! stream's shards (DescribeStream paged to the end), reads the shards that are ready — a child only
//! after its parent is finished or gone — at most `MAX_CONCURRENCY` at once, verifies what it reads
//! with the same engine and verdicts as the stream verifier, and checkpoints after each batch whose
//! verdicts are final. Leases in the checkpoint table keep two overlapping runs off the same shard.
//!
//! Guarantees: at-least-once (a record is checkpointed past only once its verdict is final; what is
//! still undecided when time runs out is read again next run), nothing skipped silently (trimmed
//! stream data is an ERROR log line and the `RecordsTrimmed` metric).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime};

use aws_smithy_types::error::display::DisplayErrorContext;
use futures::stream::{FuturesUnordered, StreamExt};
use thiserror::Error;
use tokio::time::Instant;

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointStore};
use crate::config::{parse_duration, Config, ConfigError};
use crate::engine::{Outcome, Verifier};
use crate::handler::RecordReport;
use crate::metrics::{emf_documents, InvocationMetrics, Metric, Unit};
use crate::reader::TableReader;
use crate::shards::{PolledRecord, ShardInfo, StartAt, StreamError, StreamSource};

/// The variables the poller reads besides the verifier's (`config::VARIABLES`).
pub const POLLER_VARIABLES: &[&str] = &[
    "STREAM_ARN",
    "SOURCE_TABLE_NAME",
    "STREAM_ROLE_ARN",
    "STREAM_ROLE_EXTERNAL_ID",
    "CHECKPOINT_TABLE",
    "STARTING_POSITION",
    "GET_RECORDS_LIMIT",
    "LEASE_DURATION",
    "POLL_INTERVAL",
];

/// Poller variables the SAM template does not set: `SOURCE_TABLE_NAME` is the alternative to
/// `STREAM_ARN` for running by hand, `POLL_INTERVAL` applies outside Lambda only.
pub const POLLER_VARIABLES_NOT_IN_TEMPLATE: &[&str] = &["SOURCE_TABLE_NAME", "POLL_INTERVAL"];

/// Consecutive empty pages after which a shard counts as caught up for this run.
const EMPTY_READS_BEFORE_CAUGHT_UP: u32 = 3;

/// Which stream to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSelector {
    Arn(String),
    /// The table's current stream (`LatestStreamArn`), looked up every run: a stream disabled and
    /// enabled again gets a new ARN.
    SourceTable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PollerConfig {
    pub verify: Config,
    pub stream: StreamSelector,
    pub stream_role_arn: Option<String>,
    pub stream_role_external_id: Option<String>,
    pub checkpoint_table: String,
    /// For shards without a checkpoint.
    pub starting_position: StartAt,
    pub get_records_limit: i32,
    /// How long a shard's lease lasts without being renewed (each checkpoint renews it).
    pub lease_duration: Duration,
    /// Outside Lambda: the time of one polling cycle.
    pub poll_interval: Duration,
}

impl PollerConfig {
    pub fn from_env() -> Result<PollerConfig, ConfigError> {
        PollerConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<PollerConfig, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let verify = Config::from_lookup(&lookup)?;
        let stream = match (get("STREAM_ARN"), get("SOURCE_TABLE_NAME")) {
            (Some(arn), _) if arn.starts_with("arn:") && arn.contains("/stream/") => {
                StreamSelector::Arn(arn)
            }
            (Some(arn), _) => {
                return Err(ConfigError::Invalid {
                    variable: "STREAM_ARN",
                    value: arn,
                    accepted:
                        "a stream ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL)",
                })
            }
            (None, Some(table)) => StreamSelector::SourceTable(table),
            (None, None) => {
                return Err(ConfigError::Missing {
                    variable: "STREAM_ARN",
                    accepted:
                        "a stream ARN, or SOURCE_TABLE_NAME to read the table's current stream",
                })
            }
        };
        let stream_role_arn = get("STREAM_ROLE_ARN");
        let stream_role_external_id = get("STREAM_ROLE_EXTERNAL_ID");
        if stream_role_external_id.is_some() && stream_role_arn.is_none() {
            return Err(ConfigError::Requires {
                variable: "STREAM_ROLE_EXTERNAL_ID",
                requires: "STREAM_ROLE_ARN",
            });
        }
        let checkpoint_table = get("CHECKPOINT_TABLE").ok_or(ConfigError::Missing {
            variable: "CHECKPOINT_TABLE",
            accepted: "the name of the poller's checkpoint table",
        })?;
        let starting_position = match get("STARTING_POSITION").as_deref().map(str::trim) {
            None | Some("TRIM_HORIZON") => StartAt::TrimHorizon,
            Some("LATEST") => StartAt::Latest,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    variable: "STARTING_POSITION",
                    value: other.to_string(),
                    accepted: "TRIM_HORIZON or LATEST",
                })
            }
        };
        let get_records_limit = match get("GET_RECORDS_LIMIT") {
            None => 1000,
            Some(v) => match v.trim().parse::<i32>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        variable: "GET_RECORDS_LIMIT",
                        value: v,
                        accepted: "a whole number from 1 to 1000",
                    })
                }
            },
        };
        let lease_duration = match get("LEASE_DURATION") {
            None => Duration::from_secs(300),
            Some(v) => parse_duration("LEASE_DURATION", &v)?,
        };
        let poll_interval = match get("POLL_INTERVAL") {
            None => Duration::from_secs(60),
            Some(v) => parse_duration("POLL_INTERVAL", &v)?,
        };
        Ok(PollerConfig {
            verify,
            stream,
            stream_role_arn,
            stream_role_external_id,
            checkpoint_table,
            starting_position,
            get_records_limit,
            lease_duration,
            poll_interval,
        })
    }
}

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
    /// Occurrences of trimmed stream data (each a gap of unknown size that could not be verified).
    pub records_trimmed: u64,
    pub get_records_calls: u64,
    /// Shards whose reading failed in this run (errors after the SDK's retries).
    pub shard_failures: u64,
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
}

impl PollReport {
    pub fn emf_documents(
        &self,
        namespace: &str,
        verify_table: &str,
        timestamp_ms: u64,
    ) -> Vec<serde_json::Value> {
        let p = &self.poller;
        let count = |name, v: u64| Metric {
            name,
            unit: Unit::Count,
            values: vec![v as f64],
        };
        let mut metrics = self.verification.metrics();
        metrics.extend([
            count("ShardsDiscovered", p.shards_discovered),
            count("ShardsRead", p.shards_read),
            count("ShardsFinished", p.shards_finished),
            count("RecordsRead", p.records_read),
            Metric {
                name: "IteratorAge",
                unit: Unit::Milliseconds,
                values: vec![p.iterator_age_ms as f64],
            },
            count("CheckpointWrites", p.checkpoint_writes),
            count("LeaseConflicts", p.lease_conflicts),
            count("RecordsTrimmed", p.records_trimmed),
            count("GetRecordsCalls", p.get_records_calls),
            count("ShardFailures", p.shard_failures),
        ]);
        emf_documents(
            namespace,
            &[("VerifyTable", verify_table)],
            timestamp_ms,
            &metrics,
        )
    }
}

/// What reading one shard did.
#[derive(Default)]
struct ShardRun {
    report: PollReport,
    finished: bool,
    /// Why reading stopped early; `report` still holds everything done before.
    error: Option<PollerError>,
}

use crate::metrics::epoch_ms as now_ms;

pub struct Poller<S, C, R> {
    stream: S,
    checkpoints: C,
    verifier: Verifier<R>,
    config: PollerConfig,
}

impl<S: StreamSource, C: CheckpointStore, R: TableReader> Poller<S, C, R> {
    pub fn new(
        stream: S,
        checkpoints: C,
        verifier: Verifier<R>,
        config: PollerConfig,
    ) -> Poller<S, C, R> {
        Poller {
            stream,
            checkpoints,
            verifier,
            config,
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
        let stop_at = deadline
            .checked_sub(self.config.verify.deadline_margin)
            .unwrap_or_else(Instant::now);
        let owner = format!("poller-{:016x}", fastrand::u64(..));
        let shards = self.discover(stream_arn).await?;
        let checkpoints = self.checkpoints.load_all(stream_arn).await?;
        let mut total = PollReport::default();
        total.poller.shards_discovered = shards.len() as u64;

        let listed: HashSet<&str> = shards.iter().map(|s| s.shard_id.as_str()).collect();
        let mut finished: HashSet<String> = checkpoints
            .iter()
            .filter(|(_, c)| c.shard_end)
            .map(|(id, _)| id.clone())
            .collect();
        // Ready: not finished, and its parent finished or no longer in the stream (trimmed).
        let ready = |shard: &ShardInfo, finished: &HashSet<String>| {
            !finished.contains(&shard.shard_id)
                && shard
                    .parent_shard_id
                    .as_deref()
                    .is_none_or(|p| finished.contains(p) || !listed.contains(p))
        };
        let mut queue: VecDeque<ShardInfo> = shards
            .iter()
            .filter(|s| ready(s, &finished))
            .cloned()
            .collect();
        let mut queued: HashSet<String> = queue.iter().map(|s| s.shard_id.clone()).collect();
        let limit = self.config.verify.max_concurrency;

        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < limit && Instant::now() < stop_at {
                let Some(shard) = queue.pop_front() else {
                    break;
                };
                let start = checkpoints
                    .get(&shard.shard_id)
                    .cloned()
                    .unwrap_or_default();
                let owner = owner.as_str();
                running.push(async move {
                    let mut run = ShardRun::default();
                    if let Err(error) = self
                        .read_shard(
                            stream_arn, &shard, start, owner, deadline, stop_at, &mut run,
                        )
                        .await
                    {
                        run.error = Some(error);
                    }
                    (shard, run)
                });
            }
            let Some((shard, run)) = running.next().await else {
                break;
            };
            merge(&mut total, run.report);
            if let Some(error) = run.error {
                tracing::error!(
                    shard_id = shard.shard_id,
                    error = %DisplayErrorContext(&error),
                    "reading the shard failed; its verdicts so far are reported, the rest is read again next run"
                );
                total.poller.shard_failures += 1;
                total.failures.push(ShardFailure {
                    shard_id: shard.shard_id.clone(),
                    error,
                });
                continue;
            }
            if run.finished {
                finished.insert(shard.shard_id.clone());
                // Its children are ready now (a closed shard's children are listed by the time it ends).
                let children = self
                    .stream
                    .child_shards(stream_arn, &shard.shard_id)
                    .await?;
                for child in children {
                    if !finished.contains(&child.shard_id) && queued.insert(child.shard_id.clone())
                    {
                        queue.push_back(child);
                    }
                }
            }
        }
        Ok(total)
    }

    /// Runs once and prints the EMF documents (what the Lambda binary does).
    pub async fn run_and_emit(
        &self,
        stream_arn: &str,
        deadline: Instant,
    ) -> Result<PollReport, PollerError> {
        let mut report = self.run(stream_arn, deadline).await?;
        let v = &self.config.verify;
        crate::metrics::print_documents(&report.emf_documents(
            &v.metrics_namespace,
            &v.target_table.name,
            now_ms(),
        ));
        let p = &report.poller;
        tracing::info!(
            stream_arn,
            shards_discovered = p.shards_discovered,
            shards_read = p.shards_read,
            shards_finished = p.shards_finished,
            records_read = p.records_read,
            checkpoint_writes = p.checkpoint_writes,
            lease_conflicts = p.lease_conflicts,
            records_trimmed = p.records_trimmed,
            matched = report.verification.matches,
            missing = report.verification.missing,
            mismatched = report.verification.mismatches,
            delete_not_applied = report.verification.deletes_not_applied,
            unverifiable = report.verification.unverifiable,
            deferred = report.verification.batch_item_failures,
            shard_failures = p.shard_failures,
            "poll run finished"
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

    /// Reads one shard under a lease, recording what it did in `run`; an error ends the shard's
    /// reading, and `run` keeps the verdicts reached before it.
    #[allow(clippy::too_many_arguments)]
    async fn read_shard(
        &self,
        stream_arn: &str,
        shard: &ShardInfo,
        checkpoint: Checkpoint,
        owner: &str,
        deadline: Instant,
        stop_at: Instant,
        run: &mut ShardRun,
    ) -> Result<(), PollerError> {
        let lease_until = || now_ms() + self.config.lease_duration.as_millis() as u64;
        let shard_id = shard.shard_id.as_str();
        let Some(stored) = self
            .checkpoints
            .acquire(stream_arn, shard_id, owner, now_ms(), lease_until())
            .await?
        else {
            tracing::info!(shard_id, "shard is leased by another reader");
            run.report.poller.lease_conflicts += 1;
            return Ok(());
        };
        // The lease returns the freshest checkpoint (another run may have moved it since listing).
        let mut position = Checkpoint {
            sequence_number: stored.sequence_number.or(checkpoint.sequence_number),
            shard_end: stored.shard_end || checkpoint.shard_end,
        };
        if position.shard_end {
            run.finished = true;
            self.checkpoints
                .release(stream_arn, shard_id, owner)
                .await?;
            return Ok(());
        }
        run.report.poller.shards_read += 1;
        let result = self
            .read_leased_shard(
                stream_arn,
                shard_id,
                &mut position,
                owner,
                deadline,
                stop_at,
                run,
            )
            .await;
        let lease_lost = matches!(
            result,
            Err(PollerError::Checkpoint(CheckpointError::LeaseLost { .. }))
        );
        if !run.finished && !lease_lost {
            // Also after an error, so the next run need not wait for the lease to expire. If this
            // fails too, the lease expires by itself.
            let released = self.checkpoints.release(stream_arn, shard_id, owner).await;
            if result.is_ok() {
                released?;
            }
        }
        match result {
            Err(PollerError::Checkpoint(CheckpointError::LeaseLost { .. })) => {
                tracing::warn!(
                    shard_id,
                    "lease lost to another reader; stopping this shard"
                );
                run.report.poller.lease_conflicts += 1;
                Ok(())
            }
            other => other,
        }
    }

    fn start_of(&self, position: &Checkpoint) -> StartAt {
        match &position.sequence_number {
            Some(seq) => StartAt::AfterSequenceNumber(seq.clone()),
            None => self.config.starting_position.clone(),
        }
    }

    /// A new iterator from the checkpoint; trimmed data there means continuing from TRIM_HORIZON.
    async fn iterator_from(
        &self,
        stream_arn: &str,
        shard_id: &str,
        position: &Checkpoint,
        run: &mut ShardRun,
    ) -> Result<Option<String>, PollerError> {
        match self
            .stream
            .shard_iterator(stream_arn, shard_id, &self.start_of(position))
            .await
        {
            Err(StreamError::TrimmedData) => {
                self.report_trimmed(stream_arn, shard_id, position, run);
                Ok(self
                    .stream
                    .shard_iterator(stream_arn, shard_id, &StartAt::TrimHorizon)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    fn report_trimmed(
        &self,
        stream_arn: &str,
        shard_id: &str,
        position: &Checkpoint,
        run: &mut ShardRun,
    ) {
        tracing::error!(
            stream_arn,
            shard_id,
            after_sequence_number = position.sequence_number.as_deref().unwrap_or("-"),
            "stream records were trimmed before they could be verified; continuing from TRIM_HORIZON"
        );
        run.report.poller.records_trimmed += 1;
    }

    #[allow(clippy::too_many_arguments)]
    async fn read_leased_shard(
        &self,
        stream_arn: &str,
        shard_id: &str,
        position: &mut Checkpoint,
        owner: &str,
        deadline: Instant,
        stop_at: Instant,
        run: &mut ShardRun,
    ) -> Result<(), PollerError> {
        let mut iterator = self
            .iterator_from(stream_arn, shard_id, position, run)
            .await?;
        let mut empty_reads: u32 = 0;
        let mut throttled: u32 = 0;
        // The next page, read while the previous one was verified.
        let mut prefetched = None;
        while let Some(it) = iterator.take() {
            if Instant::now() >= stop_at {
                return Ok(());
            }
            let read = match prefetched.take() {
                Some(read) => read,
                None => {
                    run.report.poller.get_records_calls += 1;
                    self.stream
                        .get_records(stream_arn, &it, self.config.get_records_limit)
                        .await
                }
            };
            let page = match read {
                Ok(page) => page,
                Err(StreamError::Throttled { code }) => {
                    throttled += 1;
                    let pause = backoff(throttled);
                    tracing::warn!(
                        shard_id,
                        code,
                        pause_ms = pause.as_millis() as u64,
                        "GetRecords throttled; backing off"
                    );
                    if Instant::now() + pause >= stop_at {
                        return Ok(());
                    }
                    tokio::time::sleep(pause).await;
                    iterator = Some(it);
                    continue;
                }
                Err(StreamError::ExpiredIterator) => {
                    tracing::info!(
                        shard_id,
                        "shard iterator expired; a new one from the checkpoint"
                    );
                    iterator = self
                        .iterator_from(stream_arn, shard_id, position, run)
                        .await?;
                    continue;
                }
                Err(StreamError::TrimmedData) => {
                    self.report_trimmed(stream_arn, shard_id, position, run);
                    iterator = self
                        .stream
                        .shard_iterator(stream_arn, shard_id, &StartAt::TrimHorizon)
                        .await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            throttled = 0;
            let read_at = SystemTime::now();
            let next = page.next_iterator;
            if page.records.is_empty() {
                if next.is_some() {
                    empty_reads += 1;
                    if empty_reads >= EMPTY_READS_BEFORE_CAUGHT_UP {
                        return Ok(());
                    }
                    let pause = backoff(empty_reads);
                    if Instant::now() + pause >= stop_at {
                        return Ok(());
                    }
                    tokio::time::sleep(pause).await;
                }
            } else {
                empty_reads = 0;
                run.report.poller.records_read += page.records.len() as u64;
                if let Some(created) = page
                    .records
                    .iter()
                    .filter_map(|r| r.as_ref().ok().and_then(|r| r.approximate_creation))
                    .max()
                {
                    let age = read_at
                        .duration_since(created)
                        .unwrap_or_default()
                        .as_millis() as u64;
                    run.report.poller.iterator_age_ms = run.report.poller.iterator_age_ms.max(age);
                }
                // Reading the next page overlaps verifying this one: lookups and GetRecords hit
                // different APIs. If this page is not complete, the prefetched one is dropped and
                // read again by the next run.
                // The page's verdicts count once its checkpoint is written: a page whose checkpoint
                // fails is read, verified and counted again by the next run, never twice.
                let mut verified = PollReport::default();
                let complete = match &next {
                    Some(next_iterator) => {
                        run.report.poller.get_records_calls += 1;
                        let fetch = self.stream.get_records(
                            stream_arn,
                            next_iterator,
                            self.config.get_records_limit,
                        );
                        let verify = self.verify_page(
                            page.records,
                            position,
                            deadline,
                            &mut run.report,
                            &mut verified,
                        );
                        let (complete, fetched) = tokio::join!(verify, fetch);
                        prefetched = Some(fetched);
                        complete
                    }
                    None => {
                        self.verify_page(
                            page.records,
                            position,
                            deadline,
                            &mut run.report,
                            &mut verified,
                        )
                        .await
                    }
                };
                self.checkpoints
                    .save(
                        stream_arn,
                        shard_id,
                        owner,
                        position,
                        now_ms(),
                        now_ms() + self.config.lease_duration.as_millis() as u64,
                    )
                    .await?;
                run.report.poller.checkpoint_writes += 1;
                merge(&mut run.report, verified);
                run.report.last_progress_at = Some(Instant::now());
                if !complete {
                    // A record without a final verdict: no reading past it (next run starts there).
                    return Ok(());
                }
            }
            if next.is_none() {
                position.shard_end = true;
                self.checkpoints
                    .save(stream_arn, shard_id, owner, position, now_ms(), now_ms())
                    .await?;
                self.checkpoints
                    .release(stream_arn, shard_id, owner)
                    .await?;
                run.report.poller.checkpoint_writes += 1;
                run.report.poller.shards_finished += 1;
                run.finished = true;
                return Ok(());
            }
            iterator = next;
        }
        Ok(())
    }

    /// Verifies a page; moves `position` to the last record of the final-verdict prefix. API calls
    /// are counted in `calls`, outcomes in `verified`. Returns whether every record of the page is
    /// final.
    async fn verify_page(
        &self,
        records: Vec<PolledRecord>,
        position: &mut Checkpoint,
        deadline: Instant,
        calls: &mut PollReport,
        verified: &mut PollReport,
    ) -> bool {
        let received = records.len() as u64;
        // The valid records go to the engine without a copy; `order` keeps the page's order.
        let mut valid = Vec::with_capacity(records.len());
        let mut order = Vec::with_capacity(records.len());
        for record in records {
            match record {
                Ok(r) => {
                    order.push(None);
                    valid.push(r);
                }
                Err(m) => order.push(Some(m)),
            }
        }
        let report = self.verifier.verify(&valid, Some(deadline)).await;
        calls.verification.add_calls(&report);
        let mut outcomes = report.outcomes.into_iter();
        let mut valid = valid.iter();
        let mut complete = true;
        for slot in order {
            let line = match slot {
                Some(m) => RecordReport::malformed(&m),
                None => match valid.next() {
                    Some(r) => RecordReport::of(r, outcomes.next().unwrap_or(Outcome::NotSampled)),
                    None => break,
                },
            };
            let outcome = line.outcome.clone();
            if complete && matches!(outcome, Outcome::Retry(_)) {
                complete = false;
            }
            if complete {
                line.log();
                if let Some(seq) = &line.sequence_number {
                    position.sequence_number = Some(seq.clone());
                }
                verified.verification.add_outcome(&outcome);
                verified.records.push(line);
            } else {
                // Read again next run: a sampled record counts as deferred (the poller's batch item
                // failures), so RecordsSampled = verdicts + BatchItemFailures, as for the verifier.
                if matches!(outcome, Outcome::Retry(_)) {
                    line.log();
                }
                if !matches!(outcome, Outcome::NotSampled) {
                    verified.verification.batch_item_failures += 1;
                    verified.verification.records_sampled += 1;
                }
            }
        }
        verified.verification.records_received += received;
        complete
    }
}

fn merge(total: &mut PollReport, part: PollReport) {
    let (t, p) = (&mut total.poller, part.poller);
    t.shards_read += p.shards_read;
    t.shards_finished += p.shards_finished;
    t.records_read += p.records_read;
    t.iterator_age_ms = t.iterator_age_ms.max(p.iterator_age_ms);
    t.checkpoint_writes += p.checkpoint_writes;
    t.lease_conflicts += p.lease_conflicts;
    t.records_trimmed += p.records_trimmed;
    t.get_records_calls += p.get_records_calls;
    t.shard_failures += p.shard_failures;
    let (t, p) = (&mut total.verification, part.verification);
    t.records_received += p.records_received;
    t.records_sampled += p.records_sampled;
    t.matches += p.matches;
    t.missing += p.missing;
    t.mismatches += p.mismatches;
    t.deletes_not_applied += p.deletes_not_applied;
    t.superseded += p.superseded;
    t.unverifiable += p.unverifiable;
    t.lookup_errors += p.lookup_errors;
    t.lookup_calls += p.lookup_calls;
    t.source_rechecks += p.source_rechecks;
    t.batch_item_failures += p.batch_item_failures;
    t.replication_lag_ms.extend(p.replication_lag_ms);
    t.verify_duration_ms += p.verify_duration_ms;
    total.records.extend(part.records);
    total.failures.extend(part.failures);
    total.last_progress_at = total.last_progress_at.max(part.last_progress_at);
}

fn backoff(attempt: u32) -> Duration {
    let d = Duration::from_millis(200)
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(4)));
    d / 2 + d.mul_f64(fastrand::f64() / 2.0)
}

/// The table's current stream ARN, for `SOURCE_TABLE_NAME`.
pub async fn latest_stream_arn(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<String, PollerError> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| {
            PollerError::Stream(StreamError::NotFound {
                stream_arn: format!(
                    "of table {table} ({})",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ),
            })
        })?;
    out.table.and_then(|t| t.latest_stream_arn).ok_or_else(|| {
        PollerError::Stream(StreamError::NotFound {
            stream_arn: format!("of table {table} (the table has no stream enabled)"),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::InMemoryCheckpoints;
    use crate::config::TableRef;
    use crate::reader::{Fault, InMemoryTables};
    use crate::record::{ChangeKind, ChangeRecord, Item, ViewType};
    use crate::shards::{InMemoryStream, StreamFault};
    use aws_sdk_dynamodb::types::AttributeValue as V;
    use std::collections::HashMap;
    use std::sync::Arc;

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:111111111111:table/Source/stream/2026-01-01T00:00:00.000";

    struct World {
        stream: Arc<InMemoryStream>,
        checkpoints: Arc<InMemoryCheckpoints>,
        target: Arc<InMemoryTables>,
        poller: Poller<Arc<InMemoryStream>, Arc<InMemoryCheckpoints>, Arc<InMemoryTables>>,
    }

    impl<T: StreamSource> StreamSource for Arc<T> {
        fn list_shards(
            &self,
            a: &str,
            s: Option<String>,
        ) -> impl std::future::Future<Output = Result<crate::shards::ShardPage, StreamError>> + Send
        {
            self.as_ref().list_shards(a, s)
        }
        fn child_shards(
            &self,
            a: &str,
            s: &str,
        ) -> impl std::future::Future<Output = Result<Vec<ShardInfo>, StreamError>> + Send {
            self.as_ref().child_shards(a, s)
        }
        fn shard_iterator(
            &self,
            a: &str,
            s: &str,
            at: &StartAt,
        ) -> impl std::future::Future<Output = Result<Option<String>, StreamError>> + Send {
            self.as_ref().shard_iterator(a, s, at)
        }
        fn get_records(
            &self,
            a: &str,
            it: &str,
            l: i32,
        ) -> impl std::future::Future<Output = Result<crate::shards::RecordsPage, StreamError>> + Send
        {
            self.as_ref().get_records(a, it, l)
        }
    }

    impl<T: CheckpointStore> CheckpointStore for Arc<T> {
        fn load_all(
            &self,
            a: &str,
        ) -> impl std::future::Future<Output = Result<HashMap<String, Checkpoint>, CheckpointError>> + Send
        {
            self.as_ref().load_all(a)
        }
        fn acquire(
            &self,
            a: &str,
            s: &str,
            o: &str,
            n: u64,
            u: u64,
        ) -> impl std::future::Future<Output = Result<Option<Checkpoint>, CheckpointError>> + Send
        {
            self.as_ref().acquire(a, s, o, n, u)
        }
        fn save(
            &self,
            a: &str,
            s: &str,
            o: &str,
            c: &Checkpoint,
            n: u64,
            u: u64,
        ) -> impl std::future::Future<Output = Result<(), CheckpointError>> + Send {
            self.as_ref().save(a, s, o, c, n, u)
        }
        fn release(
            &self,
            a: &str,
            s: &str,
            o: &str,
        ) -> impl std::future::Future<Output = Result<(), CheckpointError>> + Send {
            self.as_ref().release(a, s, o)
        }
    }

    fn world(limit: i32) -> World {
        let mut verify = Config::new(TableRef::parse("Target").unwrap());
        verify.max_concurrency = 3;
        let config = PollerConfig {
            verify: verify.clone(),
            stream: StreamSelector::Arn(ARN.into()),
            stream_role_arn: None,
            stream_role_external_id: None,
            checkpoint_table: "Checkpoints".into(),
            starting_position: StartAt::TrimHorizon,
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
    fn record(w: &World, id: u64, replicated: bool) -> ChangeRecord {
        if replicated {
            w.target.put("Target", &["pk"], item(id));
        }
        ChangeRecord {
            event_id: format!("e{id}"),
            kind: ChangeKind::Insert,
            keys: [("pk".to_string(), V::N(id.to_string()))].into(),
            new_image: Some(item(id)),
            sequence_number: format!("{id:021}"),
            approximate_creation: Some(SystemTime::now() - Duration::from_secs(3600)),
            view_type: ViewType::NewImage,
            ttl_delete: false,
            source_table: None,
        }
    }

    fn fill(w: &World, shard: &str, ids: std::ops::Range<u64>) {
        for id in ids {
            let r = record(w, id, true);
            w.stream.push(shard, r);
        }
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

    #[tokio::test(start_paused = true)]
    async fn children_are_read_after_their_parent_is_finished() {
        let w = world(2);
        w.stream.add_shard("parent", None);
        fill(&w, "parent", 1..6);
        w.stream.close("parent");
        w.stream.add_shard("child-a", Some("parent"));
        w.stream.add_shard("child-b", Some("parent"));
        fill(&w, "child-a", 10..13);
        fill(&w, "child-b", 20..23);
        let report = run(&w).await;
        let read = ids(&report);
        assert_eq!(read.len(), 11);
        let last_parent = read.iter().rposition(|id| *id < 10).unwrap();
        let first_child = read.iter().position(|id| *id >= 10).unwrap();
        assert!(last_parent < first_child, "{read:?}");
        assert_eq!(report.verification.matches, 11);
        assert_eq!(report.poller.shards_finished, 1);
        assert_eq!(report.poller.shards_read, 3);
        assert!(w.checkpoints.get(ARN, "parent").unwrap().shard_end);
        assert_eq!(
            w.checkpoints.get(ARN, "child-a").unwrap().sequence_number,
            Some(format!("{:021}", 12))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_chain_of_splits_is_followed_in_order_in_one_run() {
        let w = world(1000);
        let mut parent: Option<String> = None;
        for generation in 0..5u64 {
            let id = format!("gen-{generation}");
            w.stream.add_shard(&id, parent.as_deref());
            fill(&w, &id, generation * 10..generation * 10 + 3);
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
            let id = format!("shard-{s:03}");
            w.stream.add_shard(&id, None);
            fill(&w, &id, s * 10..s * 10 + 1);
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
        w.stream.add_shard("child", Some("trimmed-parent"));
        fill(&w, "child", 1..4);
        // A shard whose checkpoint points into trimmed data.
        w.stream.add_shard("old", None);
        fill(&w, "old", 10..20);
        w.checkpoints
            .acquire(ARN, "old", "earlier-run", 0, 1)
            .await
            .unwrap();
        w.checkpoints
            .save(
                ARN,
                "old",
                "earlier-run",
                &Checkpoint {
                    sequence_number: Some(format!("{:021}", 11)),
                    shard_end: false,
                },
                0,
                1,
            )
            .await
            .unwrap();
        w.stream.trim("old", 5);
        let report = run(&w).await;
        assert_eq!(report.poller.records_trimmed, 1);
        let mut read = ids(&report);
        read.sort();
        assert_eq!(read, vec![1, 2, 3, 15, 16, 17, 18, 19]);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_backs_off_and_expired_iterators_resume_from_the_checkpoint() {
        let w = world(3);
        w.stream.add_shard("s", None);
        fill(&w, "s", 1..10);
        w.stream
            .plan_faults([StreamFault::Throttle, StreamFault::Throttle]);
        let started = Instant::now();
        let report = run(&w).await;
        assert_eq!(ids(&report), (1..10).collect::<Vec<_>>());
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "backed off"
        );

        let w = world(3);
        w.stream.add_shard("s", None);
        fill(&w, "s", 1..10);
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
        w.stream.add_shard("s", None);
        fill(&w, "s", 1..6);
        assert_eq!(ids(&run(&w).await), vec![1, 2, 3, 4, 5]);
        fill(&w, "s", 6..9);
        assert_eq!(ids(&run(&w).await), vec![6, 7, 8]);
        assert_eq!(w.stream.records_read("s"), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn a_leased_shard_is_left_alone_until_the_lease_expires() {
        let w = world(1000);
        w.stream.add_shard("s", None);
        fill(&w, "s", 1..4);
        let far = now_ms() + 3_600_000;
        assert!(w
            .checkpoints
            .acquire(ARN, "s", "other", now_ms(), far)
            .await
            .unwrap()
            .is_some());
        let report = run(&w).await;
        assert_eq!(report.poller.lease_conflicts, 1);
        assert_eq!(report.poller.records_read, 0);
        // The other reader died; its lease expired.
        assert!(w
            .checkpoints
            .acquire(ARN, "s", "other", 0, 1)
            .await
            .unwrap()
            .is_some());
        let report = run(&w).await;
        assert_eq!(ids(&report), vec![1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_without_a_final_verdict_is_not_checkpointed_past() {
        let w = world(1000);
        w.stream.add_shard("s", None);
        fill(&w, "s", 1..4);
        w.target.plan_faults([Fault::Fail { transient: true }]);
        let report = run(&w).await;
        assert_eq!(report.records.len(), 0);
        assert_eq!(report.verification.batch_item_failures, 3);
        assert_eq!(w.checkpoints.get(ARN, "s").unwrap().sequence_number, None);
        // Next run: read again, verified.
        let report = run(&w).await;
        assert_eq!(ids(&report), vec![1, 2, 3]);
        assert_eq!(report.verification.matches, 3);
    }

    #[test]
    fn configuration_errors_name_the_variable() {
        let base = |extra: &[(&str, &str)]| {
            let mut vars: HashMap<String, String> = [
                ("VERIFY_TABLE_NAME", "Target"),
                ("CHECKPOINT_TABLE", "Checkpoints"),
                ("STREAM_ARN", ARN),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in extra {
                vars.insert(k.to_string(), v.to_string());
            }
            PollerConfig::from_lookup(|k| vars.get(k).cloned())
        };
        assert!(base(&[]).is_ok());
        for (var, value) in [
            ("STREAM_ARN", "not-an-arn"),
            ("STARTING_POSITION", "AT_TIMESTAMP"),
            ("GET_RECORDS_LIMIT", "5000"),
            ("LEASE_DURATION", "forever"),
            ("POLL_INTERVAL", "x"),
            ("STREAM_ROLE_EXTERNAL_ID", "id"),
        ] {
            let err = base(&[(var, value)]).unwrap_err().to_string();
            assert!(err.starts_with(var), "{err}");
        }
        let err = base(&[("CHECKPOINT_TABLE", "")]).unwrap_err().to_string();
        assert!(err.starts_with("CHECKPOINT_TABLE"), "{err}");
        let by_table = base(&[("STREAM_ARN", ""), ("SOURCE_TABLE_NAME", "Orders")]).unwrap();
        assert_eq!(
            by_table.stream,
            StreamSelector::SourceTable("Orders".into())
        );
    }
}
