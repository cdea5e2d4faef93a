//! The verification engine: gives each [`ChangeRecord`] of a batch an [`Outcome`]: a [`Verdict`], or
//! a retry (the record goes back to its caller to be delivered again), or "not sampled".
//!
//! It knows nothing of Lambda. Per batch it:
//! 1. samples by key (deterministic: a key is always or never sampled at a given rate);
//! 2. keeps the latest record per key (by sequence number); earlier ones are SUPERSEDED;
//! 3. looks the keys up on the other side with BatchGetItem (100 keys a call, at most
//!    `MAX_CONCURRENCY` calls in flight, unprocessed keys retried with jittered backoff);
//! 4. re-reads what does not match yet with backoff until the record is older than
//!    `MAX_REPLICATION_LAG`, never past the deadline minus its margin;
//! 5. before a negative verdict, re-reads the source item (`RECHECK_SOURCE`): if the other side
//!    equals the source's current item, or the key changed again since this record, the record is
//!    SUPERSEDED (the newer change has its own stream record and is verified by it);
//! 6. what is still undecided at the deadline, or could not be looked up, is returned as a retry.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_smithy_types::error::display::DisplayErrorContext;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::compare::{diff_items, items_equal, Diff};
use crate::config::{Config, LagWindowFrom};
use crate::reader::{LookupError, TableReader};
use crate::record::{compare_sequence_numbers, ChangeKind, ChangeRecord, Item, ItemKey};

/// BatchGetItem's limit of keys per request.
pub const MAX_KEYS_PER_CALL: usize = 100;
const UNPROCESSED_ATTEMPTS: u32 = 10;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The final word on one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The other side holds what the record says (for a REMOVE: the item is gone).
    /// `lag` is an upper bound of the replication lag: the record's age when it was seen matching
    /// (measured from where its window starts, see `LAG_WINDOW_FROM`).
    Match { lag: Duration },
    /// INSERT/MODIFY, and the item is absent on the other side.
    Missing,
    /// The item is present on the other side and different.
    Mismatch { diff: Diff },
    /// REMOVE, and the item is still present on the other side.
    DeleteNotApplied,
    /// A newer change to the key exists, so this record's image is no longer the truth.
    Superseded { by: Supersession },
    /// The record cannot be checked; the reason says why.
    Unverifiable { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supersession {
    /// A later record for the same key in this batch.
    LaterRecord { sequence_number: String },
    /// The other side already equals the source's current item (changed or deleted since this record).
    MatchesCurrentSource,
    /// The source item changed since this record; the newer change is verified by its own record.
    SourceChanged,
}

impl std::fmt::Display for Supersession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Supersession::LaterRecord { sequence_number } => {
                write!(
                    f,
                    "later record {sequence_number} for the same key in this batch"
                )
            }
            Supersession::MatchesCurrentSource => f.write_str(
                "the other side equals the source's current item, which changed since this record",
            ),
            Supersession::SourceChanged => f.write_str("the source item changed since this record"),
        }
    }
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Match { .. } => "MATCH",
            Verdict::Missing => "MISSING",
            Verdict::Mismatch { .. } => "MISMATCH",
            Verdict::DeleteNotApplied => "DELETE_NOT_APPLIED",
            Verdict::Superseded { .. } => "SUPERSEDED",
            Verdict::Unverifiable { .. } => "UNVERIFIABLE",
        }
    }

    /// Whether the verdict says replication went wrong (or could not be shown right).
    pub fn is_problem(&self) -> bool {
        !matches!(self, Verdict::Match { .. } | Verdict::Superseded { .. })
    }
}

/// Why a record goes back to be delivered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryReason {
    /// Looking the key up failed (`transient`: throttling, 5xx, time-out, network).
    LookupFailed { message: String, transient: bool },
    /// Still not as the record says, within the replication window, when time ran out.
    StillReplicating { provisional: &'static str },
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetryReason::LookupFailed { message, transient } => write!(
                f,
                "{} lookup error: {message}",
                if *transient { "transient" } else { "permanent" }
            ),
            RetryReason::StillReplicating { provisional } => write!(
                f,
                "{provisional} so far, still within the replication window at the deadline"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    NotSampled,
    Verdict(Verdict),
    Retry(RetryReason),
}

/// Item values behind a MISMATCH, kept only when `LOG_ITEM_VALUES=true`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub expected: Item,
    pub found: Item,
}

/// What [`Verifier::verify`] found, in the order of the records given.
#[derive(Debug, Default)]
pub struct BatchReport {
    pub outcomes: Vec<Outcome>,
    /// By record position; only with `LOG_ITEM_VALUES=true`.
    pub evidence: HashMap<usize, Evidence>,
    /// BatchGetItem calls on the other side's table.
    pub lookup_calls: usize,
    /// BatchGetItem calls on the source table (`RECHECK_SOURCE`).
    pub source_calls: usize,
    /// Calls that failed (after the SDK's own retries).
    pub lookup_errors: usize,
    pub duration: Duration,
}

/// Verifies batches of records against the other account's table.
pub struct Verifier<R> {
    target: R,
    source: R,
    config: Config,
    /// Shared by every batch in flight, so concurrent callers (the poller's shards) share the limit.
    permits: Arc<Semaphore>,
}

/// What a record looks like on the other side so far.
#[derive(Debug, Clone)]
enum Provisional {
    Missing,
    Mismatch(Diff),
    DeleteNotApplied,
    /// Present, but the record has no image to compare with.
    PresentUncompared,
}

impl Provisional {
    fn name(&self) -> &'static str {
        match self {
            Provisional::Missing => "MISSING",
            Provisional::Mismatch(_) => "MISMATCH",
            Provisional::DeleteNotApplied => "DELETE_NOT_APPLIED",
            Provisional::PresentUncompared => "PRESENT_UNCOMPARED",
        }
    }
}

struct Pending {
    index: usize,
    key: ItemKey,
    /// Last provisional verdict, for the retry message.
    provisional: &'static str,
}

/// Maps tokio's (pausable) clock to wall-clock time, so record ages follow `tokio::time::pause()`.
#[derive(Clone, Copy)]
struct Clock {
    wall: SystemTime,
    instant: Instant,
    from: LagWindowFrom,
}

impl Clock {
    fn start(from: LagWindowFrom) -> Clock {
        Clock {
            wall: SystemTime::now(),
            instant: Instant::now(),
            from,
        }
    }
    /// Where the record's replication window starts (and its lag is measured from).
    fn created(&self, record: &ChangeRecord) -> SystemTime {
        match (self.from, record.approximate_creation) {
            (LagWindowFrom::Creation, Some(created)) => created,
            // Without a creation time, the record gets a full window from its arrival.
            _ => self.wall,
        }
    }
    fn age_at(&self, record: &ChangeRecord, at: Instant) -> Duration {
        let now = self.wall + (at - self.instant);
        now.duration_since(self.created(record)).unwrap_or_default()
    }
    /// When the record's age reaches `lag`.
    fn instant_of_age(&self, record: &ChangeRecord, lag: Duration) -> Instant {
        let due = self.created(record) + lag;
        match due.duration_since(self.wall) {
            Ok(ahead) => self.instant + ahead,
            Err(_) => self.instant,
        }
    }
}

/// Lookup results by record position: what was kept of the found item, or why it could not be read.
type Lookups<T> = HashMap<usize, Result<T, RetryReason>>;

/// The other side's answer for a record, as soon as it arrives: a match keeps nothing, so a batch
/// of matching items never holds the items it read all at once.
enum Looked {
    Matches,
    Differs(Provisional, Option<Item>),
}

impl<R: TableReader> Verifier<R> {
    /// `target` reads the other account's table; `source` reads the table the records come from.
    pub fn new(config: Config, target: R, source: R) -> Verifier<R> {
        let permits = Arc::new(Semaphore::new(config.max_concurrency));
        Verifier {
            target,
            source,
            config,
            permits,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Gives every record an outcome. `deadline` is when the caller must have answered (the Lambda
    /// deadline); the engine stops `DEADLINE_MARGIN` before it.
    pub async fn verify(&self, records: &[ChangeRecord], deadline: Option<Instant>) -> BatchReport {
        let clock = Clock::start(self.config.lag_window_from);
        let stop_at = deadline.map(|d| {
            d.checked_sub(self.config.deadline_margin)
                .unwrap_or(clock.instant)
                .max(clock.instant)
        });
        let mut report = BatchReport {
            outcomes: vec![Outcome::NotSampled; records.len()],
            ..BatchReport::default()
        };
        let mut pending = self.latest_sampled(records, &mut report.outcomes);

        let mut round: u32 = 0;
        let mut final_round = false;
        while !pending.is_empty() {
            let read_at = Instant::now();
            let judge = |index: usize, found: Option<Item>| match self
                .evaluate(&records[index], found.as_ref())
            {
                Ok(()) => Looked::Matches,
                Err(provisional) => Looked::Differs(provisional, found),
            };
            let mut targets = self
                .lookup(
                    &self.target,
                    &self.config.target_table.api_name,
                    records,
                    &pending,
                    stop_at,
                    &mut report,
                    false,
                    judge,
                )
                .await;

            let mut to_resolve: Vec<(Pending, Provisional, Option<Item>)> = Vec::new();
            let mut waiting = Vec::new();
            for mut p in pending {
                let record = &records[p.index];
                let looked = match targets.remove(&p.index) {
                    Some(Ok(looked)) => looked,
                    Some(Err(reason)) => {
                        report.outcomes[p.index] = Outcome::Retry(reason);
                        continue;
                    }
                    None => judge(p.index, None),
                };
                match looked {
                    Looked::Matches => {
                        report.outcomes[p.index] = Outcome::Verdict(Verdict::Match {
                            lag: clock.age_at(record, read_at),
                        })
                    }
                    Looked::Differs(provisional, found) => {
                        let lag_passed =
                            clock.age_at(record, read_at) >= self.config.max_replication_lag;
                        let compare_now = matches!(provisional, Provisional::PresentUncompared);
                        p.provisional = provisional.name();
                        if lag_passed || compare_now {
                            to_resolve.push((p, provisional, found));
                        } else {
                            waiting.push(p);
                        }
                    }
                }
            }
            waiting.extend(
                self.resolve(records, to_resolve, &clock, read_at, stop_at, &mut report)
                    .await,
            );
            pending = waiting;
            if pending.is_empty() {
                break;
            }
            if final_round || stop_at.is_some_and(|s| Instant::now() >= s) {
                for p in &pending {
                    report.outcomes[p.index] = Outcome::Retry(RetryReason::StillReplicating {
                        provisional: p.provisional,
                    });
                }
                break;
            }

            // Next read: backoff, but no later than the moment a record's window closes.
            let now = Instant::now();
            let mut wake = now + jittered(backoff(round));
            if let Some(due) = pending
                .iter()
                .map(|p| clock.instant_of_age(&records[p.index], self.config.max_replication_lag))
                .min()
            {
                wake = wake.min(due.max(now));
            }
            if let Some(stop) = stop_at {
                if wake >= stop {
                    wake = stop;
                    final_round = true;
                }
            }
            tokio::time::sleep_until(wake).await;
            round += 1;
        }
        report.duration = clock.instant.elapsed();
        report
    }

    /// Samples, and keeps the latest record per key; the rest get their outcome here.
    fn latest_sampled(&self, records: &[ChangeRecord], outcomes: &mut [Outcome]) -> Vec<Pending> {
        let mut latest: HashMap<(Option<&str>, ItemKey), usize> = HashMap::new();
        let mut superseded: Vec<(usize, (Option<&str>, ItemKey))> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let key = record.item_key();
            if !key.is_sampled(self.config.sample_rate) {
                continue;
            }
            let group = (record.source_table.as_deref(), key);
            match latest.entry(group.clone()) {
                Entry::Vacant(e) => {
                    e.insert(i);
                }
                Entry::Occupied(mut e) => {
                    let kept = *e.get();
                    let newer = compare_sequence_numbers(
                        &records[kept].sequence_number,
                        &record.sequence_number,
                    )
                    .is_lt();
                    if newer {
                        e.insert(i);
                    }
                    superseded.push((if newer { kept } else { i }, group));
                }
            }
        }
        // Name the record that is actually verified, not merely the next one.
        for (index, group) in superseded {
            outcomes[index] = Outcome::Verdict(Verdict::Superseded {
                by: Supersession::LaterRecord {
                    sequence_number: records[latest[&group]].sequence_number.clone(),
                },
            });
        }
        let mut pending: Vec<Pending> = latest
            .into_iter()
            .map(|((_, key), index)| Pending {
                index,
                key,
                provisional: "UNREAD",
            })
            .collect();
        pending.sort_by_key(|p| p.index);
        pending
    }

    /// Compares the record with what the other side holds: `Ok` is a match.
    fn evaluate(&self, record: &ChangeRecord, found: Option<&Item>) -> Result<(), Provisional> {
        let ignore = &self.config.ignore_attributes;
        match (record.kind, found, &record.new_image) {
            (ChangeKind::Remove, None, _) => Ok(()),
            (ChangeKind::Remove, Some(_), _) => Err(Provisional::DeleteNotApplied),
            (_, None, _) => Err(Provisional::Missing),
            (_, Some(found), Some(image)) if items_equal(image, found, ignore) => Ok(()),
            (_, Some(found), Some(image)) => {
                Err(Provisional::Mismatch(diff_items(image, found, ignore)))
            }
            (_, Some(_), None) => Err(Provisional::PresentUncompared),
        }
    }

    /// Turns provisional verdicts into final ones (re-reading the source when configured); returns
    /// the records that must keep waiting.
    async fn resolve(
        &self,
        records: &[ChangeRecord],
        candidates: Vec<(Pending, Provisional, Option<Item>)>,
        clock: &Clock,
        read_at: Instant,
        stop_at: Option<Instant>,
        report: &mut BatchReport,
    ) -> Vec<Pending> {
        if candidates.is_empty() {
            return Vec::new();
        }
        let recheck: Vec<&Pending> = candidates
            .iter()
            .filter(|(p, _, _)| {
                self.config.recheck_source && records[p.index].source_table.is_some()
            })
            .map(|(p, _, _)| p)
            .collect();
        let mut sources: Lookups<Option<Item>> = HashMap::new();
        // Records of one batch may name different source tables (a poller reads one stream, Lambda
        // too, but the engine does not rely on it).
        let mut by_table: HashMap<&str, Vec<&Pending>> = HashMap::new();
        for p in recheck {
            let table = records[p.index].source_table.as_deref().unwrap_or_default();
            by_table.entry(table).or_default().push(p);
        }
        for (table, group) in by_table {
            let group: Vec<Pending> = group
                .into_iter()
                .map(|p| Pending {
                    index: p.index,
                    key: p.key.clone(),
                    provisional: p.provisional,
                })
                .collect();
            sources.extend(
                self.lookup(
                    &self.source,
                    table,
                    records,
                    &group,
                    stop_at,
                    report,
                    true,
                    |_, found| found,
                )
                .await,
            );
        }

        let mut waiting = Vec::new();
        for (p, provisional, found) in candidates {
            let record = &records[p.index];
            let lag_passed = clock.age_at(record, read_at) >= self.config.max_replication_lag;
            let verdict = match sources.remove(&p.index) {
                Some(Err(reason)) => {
                    report.outcomes[p.index] = Outcome::Retry(reason);
                    continue;
                }
                Some(Ok(source)) => {
                    self.judge_against_source(record, provisional, found.as_ref(), source.as_ref(), lag_passed, clock, read_at)
                }
                // Present without an image to compare: waiting would not change that.
                None if !lag_passed && !matches!(provisional, Provisional::PresentUncompared) => None,
                None => Some(match provisional {
                    Provisional::Missing => Verdict::Missing,
                    Provisional::Mismatch(diff) => Verdict::Mismatch { diff },
                    Provisional::DeleteNotApplied => Verdict::DeleteNotApplied,
                    Provisional::PresentUncompared => Verdict::Unverifiable {
                        reason: format!(
                            "the stream ({:?}) carries no new image: the item exists on the other side but its contents were not compared (RECHECK_SOURCE=true compares it with the source item)",
                            record.view_type
                        ),
                    },
                }),
            };
            match verdict {
                Some(verdict) => {
                    if let (Verdict::Mismatch { .. }, true, Some(found)) =
                        (&verdict, self.config.log_item_values, &found)
                    {
                        let expected = record.new_image.clone().unwrap_or_default();
                        report.evidence.insert(
                            p.index,
                            Evidence {
                                expected,
                                found: found.clone(),
                            },
                        );
                    }
                    report.outcomes[p.index] = Outcome::Verdict(verdict);
                }
                None => waiting.push(p),
            }
        }
        waiting
    }

    /// The verdict once the source's current item is known; `None` to keep waiting.
    #[allow(clippy::too_many_arguments)]
    fn judge_against_source(
        &self,
        record: &ChangeRecord,
        provisional: Provisional,
        target: Option<&Item>,
        source: Option<&Item>,
        lag_passed: bool,
        clock: &Clock,
        read_at: Instant,
    ) -> Option<Verdict> {
        let ignore = &self.config.ignore_attributes;
        let target_equals_source = match (target, source) {
            (None, None) => true,
            (Some(t), Some(s)) => items_equal(s, t, ignore),
            _ => false,
        };
        if target_equals_source {
            return Some(match provisional {
                // A KEYS_ONLY record: the other side equals the source item, which is the check.
                Provisional::PresentUncompared => Verdict::Match {
                    lag: clock.age_at(record, read_at),
                },
                _ => Verdict::Superseded {
                    by: Supersession::MatchesCurrentSource,
                },
            });
        }
        let record_still_current = match (record.kind, &record.new_image, source) {
            (ChangeKind::Remove, _, source) => source.is_none(),
            (_, Some(image), Some(source)) => items_equal(image, source, ignore),
            (_, Some(_), None) => false,
            (_, None, source) => source.is_some(),
        };
        if !record_still_current {
            return Some(Verdict::Superseded {
                by: Supersession::SourceChanged,
            });
        }
        if !lag_passed {
            return None;
        }
        Some(match provisional {
            Provisional::Missing => Verdict::Missing,
            Provisional::Mismatch(diff) => Verdict::Mismatch { diff },
            Provisional::DeleteNotApplied => Verdict::DeleteNotApplied,
            Provisional::PresentUncompared => Verdict::Mismatch {
                diff: diff_items(source?, target?, ignore),
            },
        })
    }

    /// Looks up the keys of `pending` records in `table`, and hands each record's answer (the found
    /// item, or `None`) to `digest` as soon as its chunk arrives; or says why it could not be read.
    #[allow(clippy::too_many_arguments)]
    async fn lookup<T>(
        &self,
        reader: &R,
        table: &str,
        records: &[ChangeRecord],
        pending: &[Pending],
        stop_at: Option<Instant>,
        report: &mut BatchReport,
        on_source: bool,
        mut digest: impl FnMut(usize, Option<Item>) -> T,
    ) -> Lookups<T> {
        // Keys with the same attribute names go together, so results can be matched to keys.
        let mut by_schema: HashMap<Vec<String>, Vec<&Pending>> = HashMap::new();
        for p in pending {
            let mut names: Vec<String> = records[p.index].keys.keys().cloned().collect();
            names.sort();
            by_schema.entry(names).or_default().push(p);
        }
        let mut chunks = Vec::new();
        for (names, group) in &by_schema {
            for chunk in group.chunks(MAX_KEYS_PER_CALL) {
                chunks.push((names, chunk));
            }
        }
        // All chunks are in flight at once (the semaphore bounds the calls); each is digested as it
        // completes, so only the chunks in flight hold items.
        let mut calls: FuturesUnordered<_> = chunks
            .iter()
            .map(|(names, chunk)| {
                let keys = chunk
                    .iter()
                    .map(|p| records[p.index].keys.clone())
                    .collect();
                let call = self.get_chunk(reader, table, keys, stop_at);
                async move { (*names, *chunk, call.await) }
            })
            .collect();

        let mut results: Lookups<T> = HashMap::with_capacity(pending.len());
        while let Some((names, chunk, call)) = calls.next().await {
            if on_source {
                report.source_calls += call.calls;
            } else {
                report.lookup_calls += call.calls;
            }
            let index_of: HashMap<&ItemKey, usize> =
                chunk.iter().map(|p| (&p.key, p.index)).collect();
            for item in call.found {
                if let Some(&i) = index_of.get(&ItemKey::project(&item, names)) {
                    results.insert(i, Ok(digest(i, Some(item))));
                }
            }
            if let Some((failed, error)) = call.failed {
                report.lookup_errors += 1;
                let reason = RetryReason::LookupFailed {
                    message: format!("{}", DisplayErrorContext(&error)),
                    transient: error.is_transient(),
                };
                tracing::warn!(table, keys = failed.len(), error = %DisplayErrorContext(&error), "lookup failed; records go back for retry");
                for key in failed {
                    if let Some(&i) = index_of.get(&ItemKey::of(&key)) {
                        results.insert(i, Err(reason.clone()));
                    }
                }
            }
            // Neither found nor failed: absent.
            for p in chunk {
                results
                    .entry(p.index)
                    .or_insert_with(|| Ok(digest(p.index, None)));
            }
        }
        results
    }

    /// One chunk of at most 100 keys, asking again for unprocessed keys.
    async fn get_chunk(
        &self,
        reader: &R,
        table: &str,
        keys: Vec<Item>,
        stop_at: Option<Instant>,
    ) -> ChunkResult {
        let mut result = ChunkResult::default();
        let mut remaining = keys;
        let mut attempt: u32 = 0;
        loop {
            let call = async {
                // The semaphore is never closed, so acquiring cannot fail.
                let _permit = self.permits.acquire().await.ok();
                reader
                    .batch_get(table, remaining.clone(), self.config.consistent_read)
                    .await
            };
            result.calls += 1;
            let outcome = match stop_at {
                Some(stop) => tokio::time::timeout_at(stop, call)
                    .await
                    .unwrap_or_else(|_| {
                        Err(LookupError::Deadline {
                            table: table.to_string(),
                        })
                    }),
                None => call.await,
            };
            let output = match outcome {
                Ok(output) => output,
                Err(error) => {
                    result.failed = Some((remaining, error));
                    return result;
                }
            };
            result.found.extend(output.items);
            if output.unprocessed.is_empty() {
                return result;
            }
            remaining = output.unprocessed;
            attempt += 1;
            let pause = jittered(Duration::from_millis(50) * 2u32.pow(attempt.min(5)));
            if attempt >= UNPROCESSED_ATTEMPTS
                || stop_at.is_some_and(|s| Instant::now() + pause >= s)
            {
                result.failed = Some((
                    remaining,
                    LookupError::Unprocessed {
                        table: table.to_string(),
                        attempts: attempt,
                    },
                ));
                return result;
            }
            tokio::time::sleep(pause).await;
        }
    }
}

#[derive(Default)]
struct ChunkResult {
    found: Vec<Item>,
    failed: Option<(Vec<Item>, LookupError)>,
    calls: usize,
}

fn backoff(round: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(round.min(8)))
        .min(MAX_BACKOFF)
}

/// "Equal jitter": half fixed, half random, so retries spread without collapsing to zero.
fn jittered(d: Duration) -> Duration {
    d / 2 + d.mul_f64(fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TableRef;
    use crate::reader::{Fault, InMemoryTables};
    use crate::record::ViewType;
    use aws_sdk_dynamodb::types::AttributeValue as V;
    use std::sync::Arc;

    const TARGET: &str = "Target";
    const SOURCE: &str = "Source";

    struct World {
        target: Arc<InMemoryTables>,
        source: Arc<InMemoryTables>,
        verifier: Verifier<Arc<InMemoryTables>>,
    }

    fn world(adjust: impl FnOnce(&mut Config)) -> World {
        let mut config = Config::new(TableRef::parse(TARGET).unwrap());
        adjust(&mut config);
        let target = Arc::new(InMemoryTables::new());
        let source = Arc::new(InMemoryTables::new());
        let verifier = Verifier::new(config, Arc::clone(&target), Arc::clone(&source));
        World {
            target,
            source,
            verifier,
        }
    }

    fn item(id: u32, status: &str) -> Item {
        [
            ("pk".to_string(), V::S(format!("order#{id}"))),
            ("sk".to_string(), V::N(id.to_string())),
            ("status".to_string(), V::S(status.to_string())),
        ]
        .into_iter()
        .collect()
    }

    fn keys_of(item: &Item) -> Item {
        item.iter()
            .filter(|(k, _)| *k == "pk" || *k == "sk")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A record made `age` ago.
    fn record(kind: ChangeKind, image: &Item, seq: u64, age: Duration) -> ChangeRecord {
        ChangeRecord {
            event_id: format!("event-{seq}"),
            kind,
            keys: keys_of(image),
            new_image: (kind != ChangeKind::Remove).then(|| image.clone()),
            sequence_number: format!("{seq:030}"),
            approximate_creation: Some(SystemTime::now() - age),
            view_type: ViewType::NewImage,
            ttl_delete: false,
            source_table: Some(SOURCE.to_string()),
        }
    }

    const OLD: Duration = Duration::from_secs(3600);

    fn put(tables: &InMemoryTables, table: &str, item: Item) {
        tables.put(table, &["pk", "sk"], item);
    }

    fn verdict(o: &Outcome) -> &Verdict {
        match o {
            Outcome::Verdict(v) => v,
            other => panic!("expected a verdict, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_verdict_for_records_past_their_window() {
        let w = world(|_| {});
        // match
        put(&w.target, TARGET, item(1, "new"));
        // mismatch: target differs, source still as the record says
        put(&w.target, TARGET, item(2, "stale"));
        put(&w.source, SOURCE, item(2, "new"));
        // missing: absent on target, source still has it
        put(&w.source, SOURCE, item(3, "new"));
        // delete not applied
        put(&w.target, TARGET, item(4, "gone?"));
        // delete applied
        // superseded: target equals the source's current item, which moved on
        put(&w.target, TARGET, item(6, "newer"));
        put(&w.source, SOURCE, item(6, "newer"));
        let records = vec![
            record(ChangeKind::Insert, &item(1, "new"), 1, OLD),
            record(ChangeKind::Modify, &item(2, "new"), 2, OLD),
            record(ChangeKind::Insert, &item(3, "new"), 3, OLD),
            record(ChangeKind::Remove, &item(4, "x"), 4, OLD),
            record(ChangeKind::Remove, &item(5, "x"), 5, OLD),
            record(ChangeKind::Modify, &item(6, "old"), 6, OLD),
        ];
        let report = w.verifier.verify(&records, None).await;
        let names: Vec<&str> = report.outcomes.iter().map(|o| verdict(o).name()).collect();
        assert_eq!(
            names,
            [
                "MATCH",
                "MISMATCH",
                "MISSING",
                "DELETE_NOT_APPLIED",
                "MATCH",
                "SUPERSEDED"
            ]
        );
        let Verdict::Mismatch { diff } = verdict(&report.outcomes[1]) else {
            unreachable!()
        };
        assert_eq!(diff.different, vec!["status"]);
        // One call for the six keys; the source re-read only for the non-matching ones.
        assert_eq!(report.lookup_calls, 1);
        assert_eq!(report.source_calls, 1);
        assert_eq!(w.target.calls(), 1);
        // Old records are not waited for.
        assert!(report.duration < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn source_that_changed_since_supersedes_a_mismatch() {
        let w = world(|_| {});
        put(&w.target, TARGET, item(1, "v1"));
        put(&w.source, SOURCE, item(1, "v3"));
        let report = w
            .verifier
            .verify(&[record(ChangeKind::Modify, &item(1, "v2"), 1, OLD)], None)
            .await;
        assert_eq!(
            verdict(&report.outcomes[0]),
            &Verdict::Superseded {
                by: Supersession::SourceChanged
            }
        );
        // Without the re-check the same state is a mismatch.
        let w = world(|c| c.recheck_source = false);
        put(&w.target, TARGET, item(1, "v1"));
        let report = w
            .verifier
            .verify(&[record(ChangeKind::Modify, &item(1, "v2"), 1, OLD)], None)
            .await;
        assert_eq!(verdict(&report.outcomes[0]).name(), "MISMATCH");
        assert_eq!(w.source.calls(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn later_records_for_a_key_supersede_earlier_ones() {
        let w = world(|_| {});
        put(&w.target, TARGET, item(1, "v3"));
        let records = vec![
            record(ChangeKind::Modify, &item(1, "v2"), 20, OLD),
            record(ChangeKind::Modify, &item(1, "v3"), 100, OLD),
            record(ChangeKind::Insert, &item(1, "v1"), 3, OLD),
        ];
        let report = w.verifier.verify(&records, None).await;
        assert_eq!(verdict(&report.outcomes[1]).name(), "MATCH");
        for i in [0, 2] {
            assert_eq!(
                verdict(&report.outcomes[i]),
                &Verdict::Superseded {
                    by: Supersession::LaterRecord {
                        sequence_number: format!("{:030}", 100)
                    }
                }
            );
        }
        assert_eq!(w.target.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_only_records_compare_with_the_source_or_say_why_not() {
        let mut r = record(ChangeKind::Insert, &item(1, "v1"), 1, OLD);
        r.new_image = None;
        r.view_type = ViewType::KeysOnly;

        let w = world(|_| {});
        put(&w.target, TARGET, item(1, "v1"));
        put(&w.source, SOURCE, item(1, "v1"));
        let report = w.verifier.verify(std::slice::from_ref(&r), None).await;
        assert_eq!(verdict(&report.outcomes[0]).name(), "MATCH");

        let w = world(|_| {});
        put(&w.target, TARGET, item(1, "v0"));
        put(&w.source, SOURCE, item(1, "v1"));
        let report = w.verifier.verify(std::slice::from_ref(&r), None).await;
        assert_eq!(verdict(&report.outcomes[0]).name(), "MISMATCH");

        let w = world(|c| c.recheck_source = false);
        put(&w.target, TARGET, item(1, "v1"));
        let mut fresh = r.clone();
        fresh.approximate_creation = Some(SystemTime::now());
        let started = Instant::now();
        let report = w.verifier.verify(std::slice::from_ref(&fresh), None).await;
        let Verdict::Unverifiable { reason } = verdict(&report.outcomes[0]) else {
            panic!()
        };
        assert!(reason.contains("no new image"), "{reason}");
        // Known at the first read: no waiting for the window.
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_write_within_the_window_matches_with_its_lag() {
        let w = world(|c| c.max_replication_lag = Duration::from_secs(30));
        let target = Arc::clone(&w.target);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            put(&target, TARGET, item(1, "v1"));
        });
        let report = w
            .verifier
            .verify(
                &[record(
                    ChangeKind::Insert,
                    &item(1, "v1"),
                    1,
                    Duration::ZERO,
                )],
                None,
            )
            .await;
        let Verdict::Match { lag } = verdict(&report.outcomes[0]) else {
            panic!("{:?}", report.outcomes)
        };
        assert!(
            *lag >= Duration::from_secs(5) && *lag < Duration::from_secs(8),
            "{lag:?}"
        );
        assert!(report.lookup_calls > 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_never_arrives_is_missing_once_the_window_closes() {
        let w = world(|c| c.max_replication_lag = Duration::from_secs(30));
        put(&w.source, SOURCE, item(1, "v1"));
        let started = Instant::now();
        let report = w
            .verifier
            .verify(
                &[record(
                    ChangeKind::Insert,
                    &item(1, "v1"),
                    1,
                    Duration::from_secs(10),
                )],
                None,
            )
            .await;
        assert_eq!(verdict(&report.outcomes[0]).name(), "MISSING");
        let waited = started.elapsed();
        // The record was 10 s old: the window closes 20 s later, and not much after.
        assert!(
            waited >= Duration::from_secs(20) && waited < Duration::from_secs(23),
            "{waited:?}"
        );
        // Backoff, not a busy loop.
        assert!(report.lookup_calls < 20, "{} calls", report.lookup_calls);
    }

    #[tokio::test(start_paused = true)]
    async fn arrival_windows_ignore_creation_times() {
        let w = world(|c| {
            c.max_replication_lag = Duration::from_secs(10);
            c.lag_window_from = LagWindowFrom::Arrival;
        });
        put(&w.source, SOURCE, item(1, "v1"));
        let started = Instant::now();
        // An hour old by its creation time, yet it gets a full window from now.
        let report = w
            .verifier
            .verify(&[record(ChangeKind::Insert, &item(1, "v1"), 1, OLD)], None)
            .await;
        assert_eq!(verdict(&report.outcomes[0]).name(), "MISSING");
        assert!(
            started.elapsed() >= Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn undecided_records_go_back_before_the_deadline() {
        let w = world(|c| {
            c.max_replication_lag = Duration::from_secs(60);
            c.deadline_margin = Duration::from_secs(2);
        });
        put(&w.target, TARGET, item(2, "v1"));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(10);
        let records = [
            record(ChangeKind::Insert, &item(1, "v1"), 1, Duration::ZERO),
            record(ChangeKind::Insert, &item(2, "v1"), 2, Duration::ZERO),
        ];
        let report = w.verifier.verify(&records, Some(deadline)).await;
        assert_eq!(
            report.outcomes[0],
            Outcome::Retry(RetryReason::StillReplicating {
                provisional: "MISSING"
            })
        );
        assert_eq!(verdict(&report.outcomes[1]).name(), "MATCH");
        let took = started.elapsed();
        assert!(took <= Duration::from_secs(8), "{took:?}");
        assert!(took >= Duration::from_secs(7), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn slow_lookups_are_cut_at_the_deadline_margin() {
        let w = world(|c| c.deadline_margin = Duration::from_secs(1));
        w.target.set_latency(Duration::from_secs(60));
        let started = Instant::now();
        let report = w
            .verifier
            .verify(
                &[record(ChangeKind::Insert, &item(1, "v1"), 1, OLD)],
                Some(started + Duration::from_secs(5)),
            )
            .await;
        assert!(matches!(
            &report.outcomes[0],
            Outcome::Retry(RetryReason::LookupFailed {
                transient: true,
                ..
            })
        ));
        assert_eq!(started.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_lookups_are_retries_not_verdicts() {
        let w = world(|_| {});
        w.target.plan_faults([Fault::Fail { transient: true }]);
        put(&w.target, TARGET, item(1, "v1"));
        let report = w
            .verifier
            .verify(&[record(ChangeKind::Insert, &item(1, "v1"), 1, OLD)], None)
            .await;
        let Outcome::Retry(RetryReason::LookupFailed { transient, message }) = &report.outcomes[0]
        else {
            panic!("{:?}", report.outcomes)
        };
        assert!(*transient);
        assert!(
            message.contains("simulated transient failure on table Target"),
            "{message}"
        );
        assert_eq!(report.lookup_errors, 1);

        // A permanent error (say, access denied) is still not a verdict.
        let w = world(|_| {});
        w.target.plan_faults([Fault::Fail { transient: false }]);
        let report = w
            .verifier
            .verify(&[record(ChangeKind::Insert, &item(1, "v1"), 1, OLD)], None)
            .await;
        assert!(matches!(
            &report.outcomes[0],
            Outcome::Retry(RetryReason::LookupFailed {
                transient: false,
                ..
            })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn unprocessed_keys_are_asked_again() {
        let w = world(|_| {});
        w.target
            .plan_faults([Fault::Unprocess(2), Fault::Unprocess(1)]);
        let records: Vec<ChangeRecord> = (1..=3)
            .map(|i| {
                put(&w.target, TARGET, item(i, "v"));
                record(ChangeKind::Insert, &item(i, "v"), i as u64, OLD)
            })
            .collect();
        let report = w.verifier.verify(&records, None).await;
        assert!(report.outcomes.iter().all(|o| verdict(o).name() == "MATCH"));
        assert_eq!(w.target.calls(), 3);
        assert_eq!(report.lookup_calls, 3);

        // Keys left unprocessed every time end as retries, not verdicts.
        let w = world(|_| {});
        w.target
            .plan_faults(std::iter::repeat_n(Fault::Unprocess(1), 50));
        let report = w.verifier.verify(&records[..1], None).await;
        assert!(matches!(
            &report.outcomes[0],
            Outcome::Retry(RetryReason::LookupFailed {
                transient: true,
                ..
            })
        ));
        assert_eq!(w.target.calls(), UNPROCESSED_ATTEMPTS as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn lookups_are_batched_by_100_under_the_concurrency_limit() {
        let w = world(|c| c.max_concurrency = 2);
        w.target.set_latency(Duration::from_millis(50));
        let records: Vec<ChangeRecord> = (1..=450)
            .map(|i| {
                put(&w.target, TARGET, item(i, "v"));
                record(ChangeKind::Insert, &item(i, "v"), i as u64, OLD)
            })
            .collect();
        let report = w.verifier.verify(&records, None).await;
        assert!(report.outcomes.iter().all(|o| verdict(o).name() == "MATCH"));
        assert_eq!(report.lookup_calls, 5);
        assert_eq!(w.target.max_in_flight(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn sampling_skips_whole_keys() {
        let w = world(|c| c.sample_rate = 0.5);
        let records: Vec<ChangeRecord> = (1..=200)
            .flat_map(|i| {
                put(&w.target, TARGET, item(i, "v"));
                [
                    record(ChangeKind::Insert, &item(i, "v"), 2 * i as u64, OLD),
                    record(ChangeKind::Modify, &item(i, "v"), 2 * i as u64 + 1, OLD),
                ]
            })
            .collect();
        let report = w.verifier.verify(&records, None).await;
        let not_sampled = report
            .outcomes
            .iter()
            .filter(|o| **o == Outcome::NotSampled)
            .count();
        assert!((120..=280).contains(&not_sampled), "{not_sampled}");
        for pair in report.outcomes.chunks(2) {
            assert_eq!(
                pair[0] == Outcome::NotSampled,
                pair[1] == Outcome::NotSampled
            );
        }
    }
}
