//! The verification engine: gives each [`Expectation`] of a batch (a stream record, a scanned item,
//! a finding) an [`Outcome`]: a [`Verdict`], or a retry (it goes back to its caller to be delivered
//! or read again), or "not sampled".
//!
//! It knows nothing of Lambda. Per batch it:
//! 1. samples by key (deterministic: a key is always or never sampled at a given rate);
//! 2. keeps the latest record per key (by sequence number); earlier ones are SUPERSEDED, and their
//!    images stay at hand to show the other side behind;
//! 3. looks the keys up on the other side with BatchGetItem (each key once, 100 keys a call, at
//!    most `MAX_CONCURRENCY` calls in flight, unprocessed keys retried with jittered backoff, a
//!    request the service rejects as invalid narrowed down to the key that made it so);
//! 4. re-reads what does not match yet with backoff until the record is older than
//!    `MAX_REPLICATION_LAG`, never past the deadline minus its margin;
//! 5. once the window has passed (at once for records without a new image), re-reads the source
//!    item with a consistent read (`RECHECK_SOURCE`) and gives a verdict only on proof (see
//!    [`Proof`]): SUPERSEDED only when the other side shows it kept up, a negative verdict only when
//!    it is provably behind; a state in between is read again, both sides;
//! 6. what is still undecided at the deadline, or could not be looked up, is returned as a retry.
//!
//! Here the wait loop and the judging; in [`verdict`] what it concludes; in `lookup` the key
//! lookups (schema groups, 100-key chunks, unprocessed keys, validation narrowing, the shared
//! permits); in [`timing`] the lag window's clock and the one backoff.

pub mod expiry;
mod lookup;
pub mod timing;
pub mod verdict;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::compare::{diff_items, items_equal, unknown_attribute};
use crate::config::{Config, LagWindowFrom};
use crate::ports::table::TableReader;
use crate::record::{
    compare_sequence_numbers, describe_key, Expectation, Expected, Image, Item, ItemKey,
};
use lookup::{Failure, Lookups, Request, Side};
use timing::{Clock, REREAD};

pub use lookup::MAX_KEYS_PER_CALL;
pub use verdict::{Evidence, Outcome, Proof, RetryReason, Supersession, Verdict};

/// Without a deadline, a record whose other side is neither caught up nor provably behind is read
/// again for at most this many replication windows.
const UNSETTLED_WINDOWS: u32 = 10;
/// Source states kept per record while it is read again (oldest dropped first).
const SOURCE_STATES_KEPT: usize = 16;

/// The engine's maps of a batch (keys, positions). foldhash rather than SipHash: hashing took a
/// twentieth of the handler's CPU, and the keys come from the tables being verified, each map
/// lives for one batch, and foldhash is still seeded per process.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

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
    /// When the batch's verification began (epoch ms): its reads of both sides came after, so a
    /// MATCH it found is an observation made no earlier than this.
    pub started_at_ms: u64,
}

/// Verifies batches of records against the other account's table.
pub struct Verifier<R> {
    target: R,
    source: R,
    config: Config,
    /// Shared by every batch in flight, so concurrent callers (the poller's shards) share the limit.
    permits: Arc<Semaphore>,
    /// The TTL attribute expiry is judged by: `config.ttl_attribute` when set, else set once by the
    /// caller that reads the source table's TTL setting ([`Verifier::set_ttl_attribute`]). Unset:
    /// no item is EXPIRED.
    ttl_attribute: std::sync::OnceLock<Option<String>>,
}

/// A record still being verified.
struct Pending {
    index: usize,
    /// Earlier records of the same key in this batch: their images show the other side behind.
    earlier: Vec<usize>,
    /// What the other side looked like at the last read, for the retry message.
    state: Waiting,
    /// The source states seen by re-reads, oldest first.
    seen: Vec<SourceState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Unread,
    /// Within the window: the provisional verdict so far.
    Provisional(&'static str),
    /// Past the window, neither caught up nor provably behind.
    Unsettled,
}

impl Waiting {
    fn retry(self) -> RetryReason {
        match self {
            Waiting::Unread => RetryReason::OutOfTime,
            Waiting::Provisional(provisional) => RetryReason::StillReplicating { provisional },
            Waiting::Unsettled => RetryReason::Unsettled,
        }
    }
}

struct SourceState {
    item: Option<Item>,
    first_seen: Instant,
}

impl Pending {
    /// Keeps the source's state read at `read_at`, unless it is the last one kept (attributes in
    /// `ignore` aside); at most `SOURCE_STATES_KEPT`, the oldest dropped first.
    fn saw(&mut self, source: Option<Item>, read_at: Instant, ignore: &[String]) {
        let unchanged = self
            .seen
            .last()
            .is_some_and(|last| same_state(last.item.as_ref(), source.as_ref(), ignore));
        if unchanged {
            return;
        }
        if self.seen.len() == SOURCE_STATES_KEPT {
            self.seen.remove(0);
        }
        self.seen.push(SourceState {
            item: source,
            first_seen: read_at,
        });
    }
}

/// Caught up: the other side holds the source's current state, or a state the source had after
/// this record (for a record without an image that is the check itself); how.
fn kept_up(r: &Observed<'_>, ignore: &[String]) -> Option<Supersession> {
    let (current, earlier) = r.pending.seen.split_last()?;
    if same_state(r.found, current.item.as_ref(), ignore) {
        Some(Supersession::MatchesCurrentSource)
    } else if earlier
        .iter()
        .any(|s| same_state(r.found, s.item.as_ref(), ignore))
    {
        Some(Supersession::MatchesNewerSourceState)
    } else {
        None
    }
}

/// A MISMATCH: what differs between the `expected` item (none: empty) and the one `found`.
fn mismatch(expected: Option<&Item>, found: &Item, proof: Proof, ignore: &[String]) -> Verdict {
    Verdict::Mismatch {
        diff: diff_items(expected.unwrap_or(&Item::new()), found, ignore),
        proof,
    }
}

/// Two states of an item (`None`: absent) are the same, attributes in `ignore` aside.
fn same_state(a: Option<&Item>, b: Option<&Item>, ignore: &[String]) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => items_equal(a, b, ignore),
        _ => false,
    }
}

/// The other side's answer for a record, as soon as it arrives: a match keeps nothing, so a batch
/// of matching items never holds the items it read all at once.
enum Looked {
    Matches,
    Differs(Option<Item>),
    /// The item has an attribute of a type this SDK does not know (its path).
    UnknownType(String),
}

/// The decision for a record after a read.
enum Judged {
    Verdict(Verdict),
    Wait(Waiting),
}

/// One round of reads of a batch: its records, its clock, when the round's reads began, and when
/// the engine stops.
#[derive(Clone, Copy)]
struct Round<'a> {
    records: &'a [Expectation],
    clock: &'a Clock,
    read_at: Instant,
    stop_at: Option<Instant>,
}

/// What a record is judged with after a read.
struct Observed<'a> {
    record: &'a Expectation,
    pending: &'a Pending,
    found: Option<&'a Item>,
    read_at: Instant,
    window_passed: bool,
}

impl<R: TableReader> Verifier<R> {
    /// `target` reads the other account's table; `source` reads the table the records come from.
    pub fn new(config: Config, target: R, source: R) -> Verifier<R> {
        let permits = Arc::new(Semaphore::new(config.max_concurrency));
        let ttl_attribute = std::sync::OnceLock::new();
        if let Some(name) = &config.ttl_attribute {
            let _ = ttl_attribute.set(Some(name.clone()));
        }
        Verifier {
            target,
            source,
            config,
            permits,
            ttl_attribute,
        }
    }

    /// Whether the TTL attribute is settled (configured, or set once).
    pub fn knows_ttl_attribute(&self) -> bool {
        self.ttl_attribute.get().is_some()
    }

    /// Settles the TTL attribute once (the source table's, as DescribeTimeToLive told; `None`:
    /// none); later calls, and a configured `TTL_ATTRIBUTE`, win.
    pub fn set_ttl_attribute(&self, name: Option<String>) {
        let _ = self.ttl_attribute.set(name);
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Gives every record an outcome. `deadline` is when the caller must have answered (the Lambda
    /// deadline); the engine stops `DEADLINE_MARGIN` before it.
    pub async fn verify(&self, records: &[Expectation], deadline: Option<Instant>) -> BatchReport {
        let clock = Clock::start(self.config.lag_window_from);
        let lag = self.config.max_replication_lag;
        let stop_at = deadline.map(|d| {
            d.checked_sub(self.config.deadline_margin)
                .unwrap_or(clock.instant)
                .max(clock.instant)
        });
        let mut report = BatchReport {
            outcomes: vec![Outcome::NotSampled; records.len()],
            started_at_ms: clock
                .wall
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            ..BatchReport::default()
        };
        let mut pending = self.latest_sampled(records, &mut report.outcomes);
        warn_future_creation_times(&clock, records, &pending);
        let mut rounds = Rounds {
            round: 0,
            final_round: false,
            stop_at,
            // Without a deadline, unsettled records are read again for a bounded time.
            give_up_at: stop_at.unwrap_or(clock.instant + lag * (UNSETTLED_WINDOWS + 1)),
        };
        while !pending.is_empty() {
            if stop_at.is_some_and(|s| Instant::now() >= s) {
                break;
            }
            let read_at = Instant::now();
            let round = Round {
                records,
                clock: &clock,
                read_at,
                stop_at,
            };
            pending = self.read_round(&round, pending, &mut report).await;
            if pending.is_empty() {
                break;
            }
            let now = Instant::now();
            let due = next_due(records, &pending, &clock, lag, now);
            let pause = REREAD.pause(rounds.round);
            let Some(wake) = rounds.wake(now, pause, due, read_at.elapsed()) else {
                break;
            };
            tokio::time::sleep_until(wake).await;
        }
        for p in &pending {
            report.outcomes[p.index] = Outcome::Retry(p.state.retry());
        }
        report.duration = clock.instant.elapsed();
        report
    }

    /// One round of reads: the other side's items of the `pending` records (read at `read_at`),
    /// then the source's where it is read again; the records that must be read again.
    async fn read_round(
        &self,
        round: &Round<'_>,
        pending: Vec<Pending>,
        report: &mut BatchReport,
    ) -> Vec<Pending> {
        let Round {
            records,
            clock,
            read_at,
            stop_at,
        } = *round;
        let lag = self.config.max_replication_lag;
        let differing = self.read_target(round, pending, report).await;
        let mut to_check: Vec<(Pending, Option<Item>)> = Vec::new();
        let mut waiting = Vec::new();
        for (mut p, found) in differing {
            let record = &records[p.index];
            let window_passed = clock.window_passed(record, lag, read_at);
            let uncompared = record.expected == Expected::SourceCurrent && found.is_some();
            if self.rechecks(record) && (window_passed || uncompared) {
                to_check.push((p, found));
            } else if !window_passed && !uncompared {
                p.state = Waiting::Provisional(provisional_name(record, found.as_ref()));
                waiting.push(p);
            } else {
                let verdict = self.judge_alone(records, &p, found.as_ref());
                self.keep_evidence(report, p.index, &verdict, record.image(), None, found);
                report.outcomes[p.index] = Outcome::Verdict(verdict);
            }
        }
        waiting.extend(
            self.check_source(records, to_check, clock, read_at, stop_at, report)
                .await,
        );
        waiting
    }

    /// Reads the other side's items of the `pending` records: a record it matches, or whose item
    /// cannot be read, gets its outcome; the others come back with what was found.
    async fn read_target(
        &self,
        round: &Round<'_>,
        pending: Vec<Pending>,
        report: &mut BatchReport,
    ) -> Vec<(Pending, Option<Item>)> {
        let (records, clock, read_at) = (round.records, round.clock, round.read_at);
        let target = Request {
            side: Side::Target,
            table: &self.config.target_table.api_name,
            stop_at: round.stop_at,
        };
        let wanted: Vec<(usize, &Item)> = pending
            .iter()
            .map(|p| (p.index, &records[p.index].keys))
            .collect();
        let mut answers = self
            .lookup(target, &wanted, report, |index, found| {
                self.first_look(&records[index], found)
            })
            .await;
        let mut differing = Vec::new();
        for p in pending {
            let outcome = match answer(&mut answers, &p) {
                Ok(Looked::Differs(found)) => {
                    differing.push((p, found));
                    continue;
                }
                Ok(Looked::Matches) => Outcome::Verdict(Verdict::Match {
                    lag: clock.lag_at(&records[p.index], read_at),
                }),
                Ok(Looked::UnknownType(path)) => {
                    Outcome::Verdict(unknown_type(&path, "other side's"))
                }
                Err(outcome) => outcome,
            };
            report.outcomes[p.index] = outcome;
        }
        differing
    }

    /// Whether a record's source item is read again before a verdict.
    fn rechecks(&self, record: &Expectation) -> bool {
        self.config.recheck_source && record.source_table.is_some()
    }

    /// Samples, and keeps the latest record per key; the rest get their outcome here.
    fn latest_sampled(&self, records: &[Expectation], outcomes: &mut [Outcome]) -> Vec<Pending> {
        let mut latest: Map<(Option<&str>, ItemKey), Vec<usize>> = Map::default();
        for (i, record) in records.iter().enumerate() {
            let key = record.item_key();
            if !key.is_sampled(self.config.sample_rate) {
                continue;
            }
            match latest.entry((record.source_table.as_deref(), key)) {
                Entry::Vacant(e) => {
                    e.insert(vec![i]);
                }
                Entry::Occupied(mut e) => e.get_mut().push(i),
            }
        }
        let mut pending: Vec<Pending> = latest
            .into_values()
            .map(|mut group| {
                // Oldest first by sequence number (else in the order given); the last one is verified.
                group.sort_by(|&a, &b| {
                    let order = match (records[a].sequence_number(), records[b].sequence_number()) {
                        (Some(a), Some(b)) => compare_sequence_numbers(a, b),
                        _ => std::cmp::Ordering::Equal,
                    };
                    order.then(a.cmp(&b))
                });
                let index = group.pop().unwrap_or_default();
                for &earlier in &group {
                    // Name the record that is actually verified, not merely the next one.
                    outcomes[earlier] = Outcome::Verdict(Verdict::Superseded {
                        by: Supersession::LaterRecord {
                            sequence_number: records[index].position(),
                        },
                    });
                }
                Pending {
                    index,
                    earlier: group,
                    state: Waiting::Unread,
                    seen: Vec::new(),
                }
            })
            .collect();
        pending.sort_by_key(|p| p.index);
        pending
    }

    /// The other side's item against the record: a match, a difference, or an item that cannot be
    /// compared.
    fn first_look(&self, record: &Expectation, found: Option<Image>) -> Looked {
        let ignore = &self.config.ignore_attributes;
        let matches = match (&record.expected, &found) {
            // Present is a DELETE_NOT_APPLIED whatever the item holds.
            (Expected::Absent, found) => found.is_none(),
            (Expected::Present, found) => found.is_some(),
            (_, Some(found)) if found.unknown_attribute().is_some() => {
                return Looked::UnknownType(found.unknown_attribute().unwrap_or_default());
            }
            (Expected::Image(image), Some(found)) => image.same_as(found, ignore),
            _ => false,
        };
        if matches {
            Looked::Matches
        } else {
            // A difference is rare: it is described from SDK items.
            Looked::Differs(found.map(Image::into_item))
        }
    }

    /// Past the window without a source re-check: the record alone decides.
    fn judge_alone(&self, records: &[Expectation], p: &Pending, found: Option<&Item>) -> Verdict {
        let record = &records[p.index];
        let ignore = &self.config.ignore_attributes;
        let proof = found
            .and_then(|t| self.behind(records, p, t))
            .unwrap_or(Proof::RecordAlone);
        let verdict = match (&record.expected, found) {
            (Expected::Absent, _) => Verdict::DeleteNotApplied { proof },
            (_, None) => Verdict::Missing { proof },
            (Expected::Image(image), Some(found)) => Verdict::Mismatch {
                diff: diff_items(&image.item(), found, ignore),
                proof,
            },
            (Expected::SourceCurrent | Expected::Present, Some(_)) => {
                let what = match record.stream() {
                    Some(change) => {
                        format!("the stream ({:?}) carries no new image", change.view_type)
                    }
                    None => "there is no image to compare with".into(),
                };
                Verdict::Unverifiable {
                    reason: format!(
                        "{what}: the item exists on the other side but its contents were not compared (RECHECK_SOURCE=true compares it with the source item)"
                    ),
                }
            }
        };
        let image = record.image().map(Image::item);
        self.unless_expired(verdict, image.as_deref(), found)
    }

    /// A difference that DynamoDB's TTL explains is EXPIRED (see [`expiry`]). Which item's TTL
    /// counts: for MISSING and MISMATCH the source's (`source`: re-read, else the record's image),
    /// since the other side's copy would expire with it; for DELETE_NOT_APPLIED and EXTRA the
    /// item that is still there (`found`; in the baseline's second direction the engine's source
    /// is the other side), which DynamoDB will delete. An expired item on the other side facing a
    /// live source item is compared as usual.
    fn unless_expired(
        &self,
        verdict: Verdict,
        source: Option<&Item>,
        found: Option<&Item>,
    ) -> Verdict {
        let Some(attribute) = self.ttl_attribute.get().and_then(Option::as_deref) else {
            return verdict;
        };
        let item = match verdict {
            Verdict::Missing { .. } | Verdict::Mismatch { .. } => source,
            Verdict::DeleteNotApplied { .. } | Verdict::Extra { .. } => found,
            _ => None,
        };
        match item.and_then(|item| expiry::expired(item, attribute, expiry::now_ms())) {
            Some(ttl) => Verdict::Expired {
                ttl,
                instead_of: verdict.name(),
            },
            None => verdict,
        }
    }

    /// Whether the other side's item `t` is a state that this change (or an earlier one of the
    /// batch, all older than the window) replaced.
    fn behind(&self, records: &[Expectation], p: &Pending, t: &Item) -> Option<Proof> {
        let ignore = &self.config.ignore_attributes;
        let record = &records[p.index];
        let holds_old = |r: &Expectation| match r.old_image().map(|o| o.item()) {
            Some(Ok(old)) => items_equal(&old, t, ignore),
            Some(Err(reason)) => {
                tracing::warn!(key = %describe_key(&r.keys), sequence_number = r.sequence_number(), reason, "old image not usable");
                false
            }
            None => false,
        };
        if holds_old(record) {
            return Some(Proof::HoldsReplacedState);
        }
        p.earlier.iter().rev().find_map(|&j| {
            let earlier = &records[j];
            let holds =
                earlier.image().is_some_and(|image| image.equals(t, ignore)) || holds_old(earlier);
            holds.then(|| Proof::HoldsEarlierImage {
                sequence_number: earlier.position(),
            })
        })
    }

    /// Reads the source items of `candidates` (consistently) and judges each; returns the records
    /// that must be read again.
    async fn check_source(
        &self,
        records: &[Expectation],
        candidates: Vec<(Pending, Option<Item>)>,
        clock: &Clock,
        read_at: Instant,
        stop_at: Option<Instant>,
        report: &mut BatchReport,
    ) -> Vec<Pending> {
        if candidates.is_empty() {
            return Vec::new();
        }
        let mut sources = self
            .read_sources(records, &candidates, stop_at, report)
            .await;
        let lag = self.config.max_replication_lag;
        let mut waiting = Vec::new();
        for (mut p, found) in candidates {
            let record = &records[p.index];
            let source = match answer(&mut sources, &p) {
                Ok(source) => source,
                Err(outcome) => {
                    report.outcomes[p.index] = outcome;
                    continue;
                }
            };
            if let Some(path) = source.as_ref().and_then(unknown_attribute) {
                report.outcomes[p.index] = Outcome::Verdict(unknown_type(&path, "source"));
                continue;
            }
            p.saw(source, read_at, &self.config.ignore_attributes);
            let reading = Observed {
                record,
                pending: &p,
                found: found.as_ref(),
                read_at,
                window_passed: clock.window_passed(record, lag, read_at),
            };
            match self.judge_with_source(records, &reading, clock) {
                Judged::Verdict(verdict) => {
                    let source = p.seen.last().and_then(|s| s.item.as_ref());
                    let image = record.image().map(Image::item);
                    let verdict =
                        self.unless_expired(verdict, source.or(image.as_deref()), found.as_ref());
                    self.keep_evidence(report, p.index, &verdict, record.image(), source, found);
                    report.outcomes[p.index] = Outcome::Verdict(verdict);
                }
                Judged::Wait(state) => {
                    p.state = state;
                    waiting.push(p);
                }
            }
        }
        waiting
    }

    /// The source items of `candidates`' keys, by record. Records of one batch may name different
    /// source tables (a poller reads one stream, Lambda too, but the engine does not rely on it).
    async fn read_sources(
        &self,
        records: &[Expectation],
        candidates: &[(Pending, Option<Item>)],
        stop_at: Option<Instant>,
        report: &mut BatchReport,
    ) -> Lookups<Option<Item>> {
        let mut by_table: HashMap<&str, Vec<(usize, &Item)>> = HashMap::new();
        for (p, _) in candidates {
            let record = &records[p.index];
            let table = record.source_table.as_deref().unwrap_or_default();
            by_table
                .entry(table)
                .or_default()
                .push((p.index, &record.keys));
        }
        let mut sources: Lookups<Option<Item>> = Lookups::default();
        for (table, wanted) in by_table {
            let request = Request {
                side: Side::Source,
                table,
                stop_at,
            };
            sources.extend(
                self.lookup(request, &wanted, report, |_, found| {
                    found.map(Image::into_item)
                })
                .await,
            );
        }
        sources
    }

    /// The verdict once the source's current item is known, on proof only (docs/verdicts.md).
    fn judge_with_source(
        &self,
        records: &[Expectation],
        r: &Observed<'_>,
        clock: &Clock,
    ) -> Judged {
        let ignore = &self.config.ignore_attributes;
        let record = r.record;
        let Some(current) = r.pending.seen.last() else {
            return Judged::Wait(Waiting::Unsettled);
        };
        if let Some(by) = kept_up(r, ignore) {
            return Judged::Verdict(match (record.image().is_none(), r.found) {
                (true, Some(_)) => Verdict::Match {
                    lag: clock.lag_at(record, r.read_at),
                },
                _ => Verdict::Superseded { by },
            });
        }
        if !r.window_passed {
            return Judged::Wait(Waiting::Provisional(provisional_name(record, r.found)));
        }
        // Behind: the other side still holds a state that a change older than the window replaced.
        if let Some(proof) = r.found.and_then(|t| self.behind(records, r.pending, t)) {
            return Judged::Verdict(match r.found {
                Some(_) if record.is_delete() => Verdict::DeleteNotApplied { proof },
                Some(found) => {
                    let image = record.image().map(Image::item);
                    let expected = image.as_deref().or(current.item.as_ref());
                    mismatch(expected, found, proof, ignore)
                }
                None => Verdict::Missing { proof },
            });
        }
        match self.by_source(r, current) {
            Some(verdict) => Judged::Verdict(verdict),
            None => Judged::Wait(Waiting::Unsettled),
        }
    }

    /// The verdict the source's `current` state proves, once the record's window has passed and
    /// the other side is neither caught up nor provably behind; `None`: unsettled.
    fn by_source(&self, r: &Observed<'_>, current: &SourceState) -> Option<Verdict> {
        let ignore = &self.config.ignore_attributes;
        let remove = r.record.is_delete();
        let verdict = match (r.found, current.item.as_ref()) {
            (None, Some(_)) if !remove => Verdict::Missing {
                proof: Proof::AbsentWhileSourceHasItem,
            },
            (Some(_), None) if remove => Verdict::DeleteNotApplied {
                proof: Proof::SourceAsRecorded,
            },
            (Some(found), Some(source))
                if r.record
                    .image()
                    .is_some_and(|image| image.equals(source, ignore)) =>
            {
                mismatch(Some(source), found, Proof::SourceAsRecorded, ignore)
            }
            // The source's state has its own window, from when it was first read.
            (found, source)
                if r.read_at >= current.first_seen + self.config.max_replication_lag =>
            {
                let proof = Proof::SourceUnchangedForWindow;
                match (found, source) {
                    (None, _) => Verdict::Missing { proof },
                    (Some(_), None) => Verdict::DeleteNotApplied { proof },
                    (Some(found), Some(source)) => mismatch(Some(source), found, proof, ignore),
                }
            }
            _ => return None,
        };
        Some(verdict)
    }

    fn keep_evidence(
        &self,
        report: &mut BatchReport,
        index: usize,
        verdict: &Verdict,
        image: Option<&Image>,
        source: Option<&Item>,
        found: Option<Item>,
    ) {
        if let (Verdict::Mismatch { .. }, true, Some(found)) =
            (verdict, self.config.log_item_values, found)
        {
            // What was expected: the record's image, else the source's item it was judged by.
            let expected = match image {
                Some(image) => image.item().into_owned(),
                None => source.cloned().unwrap_or_default(),
            };
            report.evidence.insert(index, Evidence { expected, found });
        }
    }
}

/// The earliest moment a `pending` record's window closes, or, once it has, the window of the
/// source state it is compared with (from when that state was first read).
fn next_due(
    records: &[Expectation],
    pending: &[Pending],
    clock: &Clock,
    lag: Duration,
    now: Instant,
) -> Option<Instant> {
    pending
        .iter()
        .map(|p| match p.seen.last() {
            Some(state) if clock.window_passed(&records[p.index], lag, now) => {
                state.first_seen + lag
            }
            _ => clock.window_end(&records[p.index], lag),
        })
        .min()
}

/// The engine's rounds of reads, and when the next one starts.
struct Rounds {
    /// Rounds read again so far (the backoff's exponent).
    round: u32,
    /// The last read before the stop time is planned.
    final_round: bool,
    stop_at: Option<Instant>,
    /// Without a stop time, no read starts after this.
    give_up_at: Instant,
}

impl Rounds {
    /// When to read again: after `pause` (the backoff), but no later than `due` (a window
    /// closing). No lookup starts at or after the stop time, nor so close to it that it would be
    /// cut (twice the time the last round's reads took, `last_read`): one last read where that
    /// still fits, then `None`: what is left goes back as it stands.
    fn wake(
        &mut self,
        now: Instant,
        pause: Duration,
        due: Option<Instant>,
        last_read: Duration,
    ) -> Option<Instant> {
        let mut wake = now + pause;
        if let Some(due) = due {
            wake = wake.min(due.max(now));
        }
        if let Some(stop) = self.stop_at {
            let need = last_read.max(Duration::from_millis(10)) * 2;
            if wake + need >= stop {
                let last_chance = stop.checked_sub(need).unwrap_or(now);
                if self.final_round || last_chance <= now {
                    return None;
                }
                wake = last_chance;
                self.final_round = true;
            }
        }
        if self.stop_at.is_none() && wake >= self.give_up_at {
            return None;
        }
        self.round += 1;
        Some(wake)
    }
}

/// A record's answer from a lookup, or the outcome it gets without one.
fn answer<T>(lookups: &mut Lookups<T>, p: &Pending) -> Result<T, Outcome> {
    match lookups.remove(&p.index) {
        Some(Ok(answer)) => Ok(answer),
        Some(Err(failure)) => Err(failure_outcome(failure, p.state)),
        // Every wanted key gets an answer; a missing one is a defect, never "absent".
        None => Err(Outcome::Retry(RetryReason::LookupFailed {
            message: "the lookup gave no answer for this key".into(),
            transient: true,
        })),
    }
}

/// A lookup failure as the record's outcome. A read cut by the deadline margin, for a record read
/// before, leaves it as it stood (still replicating), not as a lookup error.
fn failure_outcome(failure: Failure, state: Waiting) -> Outcome {
    match failure {
        Failure::Retry { deadline: true, .. } if state != Waiting::Unread => {
            Outcome::Retry(state.retry())
        }
        Failure::Retry { reason, .. } => Outcome::Retry(reason),
        Failure::InvalidKey(message) => Outcome::Verdict(Verdict::Unverifiable {
            reason: format!("the key does not fit the table it is looked up in: {message}"),
        }),
    }
}

fn unknown_type(path: &str, side: &str) -> Verdict {
    Verdict::Unverifiable {
        reason: format!(
            "the {side} item's attribute {path:?} has a type this version does not know: it can be neither compared nor called different"
        ),
    }
}

/// The provisional verdict's name while a record waits for its window.
fn provisional_name(record: &Expectation, found: Option<&Item>) -> &'static str {
    match (&record.expected, found) {
        (Expected::Absent, _) => "DELETE_NOT_APPLIED",
        (_, None) => "MISSING",
        (Expected::Image(_), Some(_)) => "MISMATCH",
        (Expected::SourceCurrent | Expected::Present, Some(_)) => "PRESENT_UNCOMPARED",
    }
}

/// A creation time in the future is not believed (see [`Clock::creation`]): one WARN per record.
fn warn_future_creation_times(clock: &Clock, records: &[Expectation], pending: &[Pending]) {
    if clock.from != LagWindowFrom::Creation {
        return;
    }
    for p in pending {
        let record = &records[p.index];
        if record.since.is_some() && clock.creation(record).is_none() {
            tracing::warn!(
                key = %describe_key(&record.keys),
                sequence_number = record.sequence_number(),
                "ApproximateCreationDateTime is in the future (not epoch seconds?): the replication window starts at arrival"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lookup::UNPROCESSED_ATTEMPTS;
    use super::*;
    use crate::compare::Diff;
    use crate::config::TableRef;
    use crate::record::{ChangeKind, Origin, StreamChange, ViewType};
    use crate::testkit::{Fault, InMemoryTables};
    use aws_sdk_dynamodb::types::AttributeValue as V;
    use std::sync::Arc;
    use std::time::{SystemTime, UNIX_EPOCH};

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

    impl World {
        /// Key 1 with status `target` on the other side and `source` on the source (`None`: absent).
        fn holding(self, target: Option<&str>, source: Option<&str>) -> Self {
            if let Some(status) = target {
                put(&self.target, TARGET, item(1, status));
            }
            if let Some(status) = source {
                put(&self.source, SOURCE, item(1, status));
            }
            self
        }

        /// Verifies `r` alone.
        async fn verify(&self, r: Expectation, deadline: Option<Instant>) -> BatchReport {
            self.verifier.verify(&[r], deadline).await
        }

        /// Inserts of keys 1 to `n`, an hour old, each already on the other side.
        fn replicated(&self, n: u32) -> Vec<Expectation> {
            (1..=n)
                .map(|i| {
                    put(&self.target, TARGET, item(i, "v"));
                    record(ChangeKind::Insert, &item(i, "v"), i as u64, OLD)
                })
                .collect()
        }
    }

    /// A world made by `adjust` that holds key 1 as [`World::holding`] says, and its report on `r`
    /// alone, with no deadline.
    async fn verify_one(
        adjust: impl FnOnce(&mut Config),
        target: Option<&str>,
        source: Option<&str>,
        r: Expectation,
    ) -> (World, BatchReport) {
        let w = world(adjust).holding(target, source);
        let report = w.verify(r, None).await;
        (w, report)
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
    fn record(kind: ChangeKind, image: &Item, seq: u64, age: Duration) -> Expectation {
        Expectation {
            keys: keys_of(image),
            expected: match kind {
                ChangeKind::Remove => Expected::Absent,
                _ => Expected::Image(image.clone().into()),
            },
            since: Some(SystemTime::now() - age),
            source_table: Some(SOURCE.to_string()),
            origin: Origin::Stream(StreamChange {
                event_id: format!("event-{seq}"),
                kind,
                sequence_number: format!("{seq:030}"),
                old_image: None,
                view_type: ViewType::NewImage,
                ttl_delete: false,
                stream_arn: None,
            }),
        }
    }

    /// The record (sequence number 1) of key 1 with status `status`, made `age` ago.
    fn key_1(kind: ChangeKind, status: &str, age: Duration) -> Expectation {
        record(kind, &item(1, status), 1, age)
    }

    /// The record as a `KEYS_ONLY` stream delivers it.
    fn keys_only(mut r: Expectation) -> Expectation {
        r.expected = Expected::SourceCurrent;
        if let Origin::Stream(change) = &mut r.origin {
            change.view_type = ViewType::KeysOnly;
        }
        r
    }

    const OLD: Duration = Duration::from_secs(3600);

    fn put(tables: &InMemoryTables, table: &str, item: Item) {
        tables.put(table, &["pk", "sk"], item);
    }

    /// `took` lies in `[from, to)`.
    fn assert_within(took: Duration, from: Duration, to: Duration) {
        assert!(
            took >= from && took < to,
            "{took:?} not in [{from:?}, {to:?})"
        );
    }

    fn verdict(o: &Outcome) -> &Verdict {
        match o {
            Outcome::Verdict(v) => v,
            other => panic!("expected a verdict, got {other:?}"),
        }
    }

    /// The verdict on the batch's first record.
    fn first(report: &BatchReport) -> &Verdict {
        verdict(&report.outcomes[0])
    }

    /// What a MISMATCH found, and on what proof.
    fn mismatch(o: &Outcome) -> (&Diff, &Proof) {
        match verdict(o) {
            Verdict::Mismatch { diff, proof } => (diff, proof),
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    /// Whether a failed lookup was transient, and what it said.
    fn lookup_failed(o: &Outcome) -> (bool, &str) {
        match o {
            Outcome::Retry(RetryReason::LookupFailed { transient, message }) => {
                (*transient, message)
            }
            other => panic!("expected a failed lookup, got {other:?}"),
        }
    }

    fn assert_all_match(report: &BatchReport) {
        assert!(
            report.outcomes.iter().all(|o| verdict(o).name() == "MATCH"),
            "{:?}",
            report.outcomes
        );
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
        let (diff, _) = mismatch(&report.outcomes[1]);
        assert_eq!(diff.different, vec!["status"]);
        // One call for the six keys; the source re-read only for the non-matching ones.
        assert_eq!(report.lookup_calls, 1);
        assert_eq!(report.source_calls, 1);
        assert_eq!(w.target.calls(), 1);
        // Old records are not waited for.
        assert!(report.duration < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_that_changed_since_supersedes_only_when_the_other_side_kept_up() {
        let modify = || key_1(ChangeKind::Modify, "v2", OLD);
        // The other side holds the source's newer state: it kept up.
        let (_, report) = verify_one(|_| {}, Some("v3"), Some("v3"), modify()).await;
        assert_eq!(
            first(&report),
            &Verdict::Superseded {
                by: Supersession::MatchesCurrentSource
            }
        );
        // It holds a state never seen on the source: not SUPERSEDED on a guess. Read again until
        // the source's own state has been there for the window, then a mismatch against it.
        let started = Instant::now();
        let ten_seconds = |c: &mut Config| c.max_replication_lag = Duration::from_secs(10);
        let (_, report) = verify_one(ten_seconds, Some("v1"), Some("v3"), modify()).await;
        let (diff, proof) = mismatch(&report.outcomes[0]);
        assert_eq!(proof, &Proof::SourceUnchangedForWindow);
        assert_eq!(diff.different, vec!["status"]);
        assert!(started.elapsed() >= Duration::from_secs(10));
        // Without the re-check the same state is a mismatch at once.
        let (w, report) =
            verify_one(|c| c.recheck_source = false, Some("v1"), None, modify()).await;
        assert_eq!(
            first(&report),
            &Verdict::Mismatch {
                diff: diff_items(&item(1, "v2"), &item(1, "v1"), &[]),
                proof: Proof::RecordAlone
            }
        );
        assert_eq!(w.source.calls(), 0);
    }

    /// A world (1 s window) whose other side holds `target`, while a task writes a new version of
    /// the source item every 100 ms, like a counter or an `updatedAt`; abort the task when done.
    async fn hot_world(target: Option<Item>) -> (World, tokio::task::JoinHandle<()>) {
        let w = world(|c| c.max_replication_lag = Duration::from_secs(1));
        if let Some(target) = target {
            put(&w.target, TARGET, target);
        }
        let source = Arc::clone(&w.source);
        let writer = tokio::spawn(async move {
            for version in 100.. {
                put(&source, SOURCE, item(1, &format!("v{version}")));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        tokio::task::yield_now().await;
        (w, writer)
    }

    /// A record of key 1 made 5 s ago (past the 1 s window), with an old image when given.
    fn aged(kind: ChangeKind, image: &Item, old: Option<&Item>) -> Expectation {
        let mut r = record(kind, image, 1, Duration::from_secs(5));
        if let Origin::Stream(change) = &mut r.origin {
            change.old_image = old.map(|o| crate::record::OldImage::Item(o.clone()));
        }
        r
    }

    /// Verifies a 5 s old MODIFY of a hot key whose other side holds `target`; also how long it took.
    async fn verify_hot_modify(
        target: Option<Item>,
        deadline: Duration,
    ) -> (BatchReport, Duration) {
        let (w, writer) = hot_world(target).await;
        let started = Instant::now();
        let report = w
            .verify(
                aged(ChangeKind::Modify, &item(1, "v1"), None),
                Some(started + deadline),
            )
            .await;
        writer.abort();
        (report, started.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn a_hot_key_that_never_arrives_is_missing_not_superseded_for_ever() {
        let (report, took) = verify_hot_modify(None, Duration::from_secs(30)).await;
        assert_eq!(
            first(&report),
            &Verdict::Missing {
                proof: Proof::AbsentWhileSourceHasItem
            }
        );
        // In the same invocation, on the first read past the window.
        assert!(took < Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hot_key_whose_other_side_holds_a_replaced_state_is_a_mismatch() {
        let (w, writer) = hot_world(Some(item(1, "v0"))).await;
        // This record's own old image.
        let r = aged(ChangeKind::Modify, &item(1, "v1"), Some(&item(1, "v0")));
        let report = w.verify(r, None).await;
        let (diff, proof) = mismatch(&report.outcomes[0]);
        assert_eq!(proof, &Proof::HoldsReplacedState);
        assert_eq!(diff.different, vec!["status"]);
        // An earlier image of the key in the batch (a NEW_IMAGE stream: no old images).
        let records = [
            record(
                ChangeKind::Insert,
                &item(1, "v0"),
                1,
                Duration::from_secs(9),
            ),
            record(
                ChangeKind::Modify,
                &item(1, "v1"),
                2,
                Duration::from_secs(5),
            ),
        ];
        let report = w.verifier.verify(&records, None).await;
        // A delete that never arrived, with the item's last state still there.
        let r = aged(ChangeKind::Remove, &item(1, "v0"), Some(&item(1, "v0")));
        let remove = w.verify(r, None).await;
        writer.abort();
        assert_eq!(
            verdict(&report.outcomes[1]),
            &Verdict::Mismatch {
                diff: diff_items(&item(1, "v1"), &item(1, "v0"), &[]),
                proof: Proof::HoldsEarlierImage {
                    sequence_number: format!("{:030}", 1)
                }
            }
        );
        assert_eq!(
            first(&remove),
            &Verdict::DeleteNotApplied {
                proof: Proof::HoldsReplacedState
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_state_never_seen_on_a_changing_source_is_read_again_never_guessed() {
        let (report, took) =
            verify_hot_modify(Some(item(1, "something else")), Duration::from_secs(12)).await;
        assert_eq!(report.outcomes[0], Outcome::Retry(RetryReason::Unsettled));
        // Read again, both sides, until the deadline margin.
        assert!(
            report.lookup_calls > 3 && report.source_calls > 3,
            "{report:?}"
        );
        assert!(took >= Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn an_other_side_that_reaches_a_state_seen_on_the_source_is_superseded() {
        let w = world(|c| c.max_replication_lag = Duration::from_secs(1))
            .holding(Some("lagging"), Some("v3"));
        let (target, source) = (Arc::clone(&w.target), Arc::clone(&w.source));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            // The other side reaches the state the verifier saw; the source has moved on.
            put(&target, TARGET, item(1, "v3"));
            put(&source, SOURCE, item(1, "v4"));
        });
        let report = w.verify(key_1(ChangeKind::Modify, "v2", OLD), None).await;
        assert_eq!(
            first(&report),
            &Verdict::Superseded {
                by: Supersession::MatchesNewerSourceState
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_keys_only_record_gives_the_source_state_its_own_window() {
        let r = keys_only(key_1(ChangeKind::Modify, "v1", OLD));
        // The source changed moments ago: the other side has yet to get it.
        let behind = || {
            world(|c| c.max_replication_lag = Duration::from_secs(30))
                .holding(Some("v1"), Some("v2"))
        };
        // It gets it 5 s later: a match, not a mismatch although the record is an hour old.
        let w = behind();
        let target = Arc::clone(&w.target);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            put(&target, TARGET, item(1, "v2"));
        });
        let report = w.verify(r.clone(), None).await;
        assert_eq!(first(&report).name(), "MATCH");
        // Never arriving: a mismatch once the source's state has had its window.
        let started = Instant::now();
        let report = behind().verify(r, None).await;
        assert_eq!(
            first(&report),
            &Verdict::Mismatch {
                diff: diff_items(&item(1, "v2"), &item(1, "v1"), &[]),
                proof: Proof::SourceUnchangedForWindow
            }
        );
        let waited = started.elapsed();
        assert_within(waited, Duration::from_secs(30), Duration::from_secs(33));
    }

    #[tokio::test(start_paused = true)]
    async fn source_rechecks_are_consistent_reads_whatever_consistent_read_says() {
        let r = key_1(ChangeKind::Modify, "new", OLD);
        let (w, report) =
            verify_one(|c| c.consistent_read = false, Some("stale"), Some("new"), r).await;
        assert_eq!(first(&report).name(), "MISMATCH");
        assert_eq!(w.target.consistent_reads(), vec![false]);
        assert_eq!(w.source.consistent_reads(), vec![true]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_creation_time_rounded_down_gets_its_second_back() {
        let now = SystemTime::now();
        let whole =
            UNIX_EPOCH + Duration::from_secs(now.duration_since(UNIX_EPOCH).unwrap().as_secs());
        let mut r = key_1(ChangeKind::Insert, "v1", Duration::ZERO);
        r.since = Some(whole);
        let started = Instant::now();
        let short = |c: &mut Config| c.max_replication_lag = Duration::from_millis(200);
        let (_, report) = verify_one(short, None, Some("v1"), r).await;
        assert_eq!(first(&report).name(), "MISSING");
        // The change may have been made up to 1 s after the whole second it is stamped with. The
        // engine reads the wall clock a little after `now` (real time passes; tokio's is paused).
        let since_stamp = started.elapsed() + now.duration_since(whole).unwrap();
        assert!(
            since_stamp + Duration::from_millis(1) >= Duration::from_millis(1200),
            "{since_stamp:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_creation_time_in_the_future_gives_a_window_from_arrival() {
        let w = world(|c| c.max_replication_lag = Duration::from_secs(2)).holding(None, Some("v1"));
        let mut r = key_1(ChangeKind::Insert, "v1", Duration::ZERO);
        // Milliseconds read as seconds: tens of thousands of years ahead.
        r.since = Some(UNIX_EPOCH + Duration::from_secs(1_764_000_000_000));
        let started = Instant::now();
        let report = w.verify(r, Some(started + Duration::from_secs(20))).await;
        assert_eq!(first(&report).name(), "MISSING");
        let waited = started.elapsed();
        assert_within(waited, Duration::from_secs(2), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn no_lookup_starts_at_the_deadline_so_waiting_records_are_still_replicating() {
        let w = world(|c| {
            c.max_replication_lag = Duration::from_secs(60);
            c.deadline_margin = Duration::from_secs(2);
        });
        // A reader that answers after a delay (the in-memory one otherwise answers at once).
        w.target.set_latency(Duration::from_millis(300));
        let fresh = || key_1(ChangeKind::Insert, "v1", Duration::ZERO);
        let started = Instant::now();
        let report = w
            .verify(fresh(), Some(started + Duration::from_secs(10)))
            .await;
        assert_eq!(
            report.outcomes[0],
            Outcome::Retry(RetryReason::StillReplicating {
                provisional: "MISSING"
            })
        );
        assert_eq!(report.lookup_errors, 0);
        assert!(started.elapsed() <= Duration::from_secs(8));
        // A deadline already passed: nothing is read, and the record says so.
        let report = w
            .verify(fresh(), Some(Instant::now() + Duration::from_secs(1)))
            .await;
        assert_eq!(report.outcomes[0], Outcome::Retry(RetryReason::OutOfTime));
        assert_eq!(report.lookup_calls, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_that_matches_no_key_asked_fails_closed() {
        let w = world(|_| {}).holding(None, Some("v1"));
        w.target.plan_faults([Fault::ForeignItem]);
        let report = w.verify(key_1(ChangeKind::Insert, "v1", OLD), None).await;
        let (_, message) = lookup_failed(&report.outcomes[0]);
        assert!(message.contains("matches no key"), "{message}");
        assert_eq!(report.lookup_errors, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_the_table_rejects_is_narrowed_down_and_the_others_get_verdicts() {
        let w = world(|_| {});
        let records = w.replicated(150);
        w.target.reject_key(&keys_of(&item(77, "v")));
        let report = w.verifier.verify(&records, None).await;
        for (i, outcome) in report.outcomes.iter().enumerate() {
            let v = verdict(outcome);
            if i == 76 {
                let Verdict::Unverifiable { reason } = v else {
                    panic!("{v:?}")
                };
                assert!(reason.contains("does not match the schema"), "{reason}");
            } else {
                assert_eq!(v.name(), "MATCH", "record {i}");
            }
        }
        // Halving, not one call per key.
        assert!(report.lookup_calls < 20, "{} calls", report.lookup_calls);
    }

    #[tokio::test(start_paused = true)]
    async fn one_key_from_two_streams_is_asked_once() {
        let w = world(|_| {}).holding(Some("v1"), None);
        let from_a = key_1(ChangeKind::Insert, "v1", OLD);
        let mut from_b = record(ChangeKind::Insert, &item(1, "v1"), 2, OLD);
        from_b.source_table = Some("OtherSource".into());
        let mut unknown = record(ChangeKind::Insert, &item(1, "v1"), 3, OLD);
        unknown.source_table = None;
        let report = w.verifier.verify(&[from_a, from_b, unknown], None).await;
        assert_all_match(&report);
        assert_eq!(w.target.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn later_records_for_a_key_supersede_earlier_ones() {
        let w = world(|_| {}).holding(Some("v3"), None);
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
        let r = keys_only(key_1(ChangeKind::Insert, "v1", OLD));

        let (_, report) = verify_one(|_| {}, Some("v1"), Some("v1"), r.clone()).await;
        assert_eq!(first(&report).name(), "MATCH");

        let (_, report) = verify_one(|_| {}, Some("v0"), Some("v1"), r.clone()).await;
        assert_eq!(first(&report).name(), "MISMATCH");

        let mut fresh = r;
        fresh.since = Some(SystemTime::now());
        let started = Instant::now();
        let (_, report) = verify_one(|c| c.recheck_source = false, Some("v1"), None, fresh).await;
        let Verdict::Unverifiable { reason } = first(&report) else {
            panic!()
        };
        assert!(reason.contains("no new image"), "{reason}");
        // Known at the first read: no waiting for the window.
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    /// An expectation from a scan or a finding: no stream record, no sequence number.
    fn scanned(origin: Origin, expected: Expected, age: Duration) -> Expectation {
        Expectation {
            keys: keys_of(&item(1, "")),
            expected,
            since: Some(SystemTime::now() - age),
            source_table: Some(SOURCE.to_string()),
            origin,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn scanned_items_and_findings_are_judged_by_the_same_rules_as_stream_records() {
        let scan = || scanned(Origin::Scan, Expected::Image(item(1, "v1").into()), OLD);
        // A scanned item already on the other side: MATCH at the first read.
        let (_, report) = verify_one(|_| {}, Some("v1"), Some("v1"), scan()).await;
        assert_eq!(first(&report).name(), "MATCH");

        // Absent on the other side while the source still has it, past the window: MISSING on
        // proof, as for a stream record.
        let (_, report) = verify_one(|_| {}, None, Some("v1"), scan()).await;
        assert_eq!(
            first(&report),
            &Verdict::Missing {
                proof: Proof::AbsentWhileSourceHasItem
            }
        );

        // A scanned item the source changed since: the other side holds the new state, so it
        // kept up (the stream covers that change).
        let (_, report) = verify_one(|_| {}, Some("v2"), Some("v2"), scan()).await;
        assert_eq!(
            first(&report),
            &Verdict::Superseded {
                by: Supersession::MatchesCurrentSource
            }
        );

        // A finding checked again against the source's current item: a difference that lasts a
        // window is a MISMATCH with the source as the expected side.
        let finding = scanned(Origin::Finding, Expected::SourceCurrent, Duration::ZERO);
        let two_seconds = |c: &mut Config| c.max_replication_lag = Duration::from_secs(2);
        let (_, report) = verify_one(two_seconds, Some("stale"), Some("v3"), finding).await;
        let (diff, proof) = mismatch(&report.outcomes[0]);
        assert_eq!(diff.attribute_names(), ["status"]);
        assert_eq!(proof, &Proof::SourceUnchangedForWindow);
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
            .verify(key_1(ChangeKind::Insert, "v1", Duration::ZERO), None)
            .await;
        let Verdict::Match { lag } = first(&report) else {
            panic!("{:?}", report.outcomes)
        };
        assert_within(*lag, Duration::from_secs(5), Duration::from_secs(8));
        assert!(report.lookup_calls > 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_never_arrives_is_missing_once_the_window_closes() {
        let r = key_1(ChangeKind::Insert, "v1", Duration::from_secs(10));
        let started = Instant::now();
        let thirty_seconds = |c: &mut Config| c.max_replication_lag = Duration::from_secs(30);
        let (_, report) = verify_one(thirty_seconds, None, Some("v1"), r).await;
        assert_eq!(first(&report).name(), "MISSING");
        let waited = started.elapsed();
        // The record was 10 s old: the window closes 20 s later, and not much after.
        assert_within(waited, Duration::from_secs(20), Duration::from_secs(23));
        // Backoff, not a busy loop (jitter makes it 14 to 23 calls over the 20 s).
        assert!(report.lookup_calls < 25, "{} calls", report.lookup_calls);
    }

    #[tokio::test(start_paused = true)]
    async fn arrival_windows_ignore_creation_times() {
        let from_arrival = |c: &mut Config| {
            c.max_replication_lag = Duration::from_secs(10);
            c.lag_window_from = LagWindowFrom::Arrival;
        };
        let started = Instant::now();
        // An hour old by its creation time, yet it gets a full window from now.
        let r = key_1(ChangeKind::Insert, "v1", OLD);
        let (_, report) = verify_one(from_arrival, None, Some("v1"), r).await;
        assert_eq!(first(&report).name(), "MISSING");
        assert!(
            started.elapsed() >= Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    /// Key 1 as `item(1, status)` with `expires` set to `from_now_s` seconds from now.
    fn expiring(status: &str, from_now_s: i64) -> Item {
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut i = item(1, status);
        i.insert("expires".into(), V::N((now_s + from_now_s).to_string()));
        i
    }

    #[tokio::test(start_paused = true)]
    async fn a_mismatch_is_expired_when_the_source_item_is_past_its_ttl_not_when_only_the_other_side_is(
    ) {
        let ttl = |c: &mut Config| c.ttl_attribute = Some("expires".into());
        let judged = |source: Item, target: Item| async move {
            let w = world(ttl);
            put(&w.source, SOURCE, source.clone());
            put(&w.target, TARGET, target);
            let r = record(ChangeKind::Modify, &source, 1, OLD);
            let report = w.verify(r, None).await;
            first(&report).clone()
        };
        let source = expiring("new", -60);
        let ttl_value = match &source["expires"] {
            V::N(n) => n.clone(),
            _ => unreachable!(),
        };
        let v = judged(source, expiring("old", -60)).await;
        assert_eq!(
            v,
            Verdict::Expired {
                ttl: ttl_value,
                instead_of: "MISMATCH"
            }
        );
        // The source's item lives on: the other side's stale, expired copy is a real difference.
        let v = judged(expiring("new", 3600), expiring("old", -60)).await;
        assert_eq!(v.name(), "MISMATCH");
        // Without the source re-read, the record's image decides, and the other side's item for a
        // REMOVE.
        let alone = |c: &mut Config| {
            c.ttl_attribute = Some("expires".into());
            c.recheck_source = false;
        };
        let w = world(alone);
        put(&w.target, TARGET, expiring("old", -60));
        let report = w.verify(key_1(ChangeKind::Remove, "old", OLD), None).await;
        assert_eq!(first(&report).name(), "EXPIRED");
        let w = world(alone);
        let r = record(ChangeKind::Insert, &expiring("new", -60), 1, OLD);
        assert_eq!(first(&w.verify(r, None).await).name(), "EXPIRED");
        // No TTL attribute known: compared as before.
        let w = world(|c| c.recheck_source = false);
        let r = record(ChangeKind::Insert, &expiring("new", -60), 1, OLD);
        assert_eq!(first(&w.verify(r, None).await).name(), "MISSING");
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
            .verify(
                key_1(ChangeKind::Insert, "v1", OLD),
                Some(started + Duration::from_secs(5)),
            )
            .await;
        let (transient, _) = lookup_failed(&report.outcomes[0]);
        assert!(transient);
        assert_eq!(started.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn failed_lookups_are_retries_not_verdicts() {
        let failing = |transient| {
            let w = world(|_| {});
            w.target.plan_faults([Fault::Fail { transient }]);
            w
        };
        let insert = || key_1(ChangeKind::Insert, "v1", OLD);
        let w = failing(true).holding(Some("v1"), None);
        let report = w.verify(insert(), None).await;
        let (transient, message) = lookup_failed(&report.outcomes[0]);
        assert!(transient);
        assert!(
            message.contains("simulated transient failure on table Target"),
            "{message}"
        );
        assert_eq!(report.lookup_errors, 1);

        // A permanent error (say, access denied) is still not a verdict.
        let report = failing(false).verify(insert(), None).await;
        let (transient, _) = lookup_failed(&report.outcomes[0]);
        assert!(!transient);
    }

    #[tokio::test(start_paused = true)]
    async fn unprocessed_keys_are_asked_again() {
        let w = world(|_| {});
        w.target
            .plan_faults([Fault::Unprocess(2), Fault::Unprocess(1)]);
        let records = w.replicated(3);
        let report = w.verifier.verify(&records, None).await;
        assert_all_match(&report);
        assert_eq!(w.target.calls(), 3);
        assert_eq!(report.lookup_calls, 3);

        // Keys left unprocessed every time end as retries, not verdicts.
        let w = world(|_| {});
        w.target
            .plan_faults(std::iter::repeat_n(Fault::Unprocess(1), 50));
        let report = w.verifier.verify(&records[..1], None).await;
        let (transient, _) = lookup_failed(&report.outcomes[0]);
        assert!(transient);
        assert_eq!(w.target.calls(), UNPROCESSED_ATTEMPTS as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn lookups_are_batched_by_100_under_the_concurrency_limit() {
        let w = world(|c| c.max_concurrency = 2);
        w.target.set_latency(Duration::from_millis(50));
        let records = w.replicated(450);
        let report = w.verifier.verify(&records, None).await;
        assert_all_match(&report);
        assert_eq!(report.lookup_calls, 5);
        assert_eq!(w.target.max_in_flight(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn sampling_skips_whole_keys() {
        let w = world(|c| c.sample_rate = 0.5);
        let records: Vec<Expectation> = (1..=200)
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

    fn rounds(stop_at: Option<Instant>, give_up_at: Instant) -> Rounds {
        Rounds {
            round: 0,
            final_round: false,
            stop_at,
            give_up_at,
        }
    }

    #[test]
    fn the_next_read_is_after_the_backoff_or_when_a_window_closes() {
        let now = Instant::now();
        let (ms, far) = (Duration::from_millis, now + Duration::from_secs(3600));
        let mut r = rounds(None, far);
        assert_eq!(r.wake(now, ms(400), None, ms(5)), Some(now + ms(400)));
        assert_eq!(r.round, 1);
        assert_eq!(
            r.wake(now, ms(400), Some(now + ms(100)), ms(5)),
            Some(now + ms(100))
        );
        // A window already closed: at once.
        assert_eq!(r.wake(now, ms(400), Some(now - ms(100)), ms(5)), Some(now));
        // Without a stop time, no read after the give-up time.
        let mut r = rounds(None, now + ms(300));
        assert_eq!(r.wake(now, ms(400), None, ms(5)), None);
        assert_eq!(r.round, 0);
    }

    #[test]
    fn one_last_read_fits_before_the_stop_time_then_none() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut r = rounds(Some(now + ms(1000)), now);
        // The last round's reads took 200 ms: the next must start 400 ms before the stop.
        assert_eq!(r.wake(now, ms(800), None, ms(200)), Some(now + ms(600)));
        assert!(r.final_round);
        assert_eq!(r.wake(now, ms(100), None, ms(200)), Some(now + ms(100)));
        assert_eq!(r.wake(now, ms(800), None, ms(200)), None);
        // No time left for a read at all.
        let mut r = rounds(Some(now + ms(300)), now);
        assert_eq!(r.wake(now, ms(800), None, ms(200)), None);
        // A read that took under 10 ms still counts 10 ms.
        let mut r = rounds(Some(now + ms(100)), now);
        assert_eq!(r.wake(now, ms(800), None, ms(1)), Some(now + ms(80)));
    }

    #[test]
    fn a_source_state_is_kept_when_it_changes_the_oldest_dropped_first() {
        let mut p = Pending {
            index: 0,
            earlier: Vec::new(),
            state: Waiting::Unread,
            seen: Vec::new(),
        };
        let state = |v: &str, at: &str| -> Option<Item> {
            Some(
                [
                    ("v".to_string(), V::S(v.into())),
                    ("at".to_string(), V::S(at.into())),
                ]
                .into(),
            )
        };
        let ignore = vec!["at".to_string()];
        let t0 = Instant::now();
        p.saw(state("a", "1"), t0, &ignore);
        // The same but for an ignored attribute: unchanged, first seen still t0.
        p.saw(state("a", "2"), t0 + Duration::from_secs(1), &ignore);
        assert_eq!(p.seen.len(), 1);
        assert_eq!(p.seen[0].first_seen, t0);
        p.saw(None, t0, &ignore);
        p.saw(None, t0, &ignore);
        assert_eq!(p.seen.len(), 2);
        for i in 0..SOURCE_STATES_KEPT {
            p.saw(state(&i.to_string(), "1"), t0, &ignore);
        }
        assert_eq!(p.seen.len(), SOURCE_STATES_KEPT);
        assert_eq!(p.seen[0].item, state("0", "1"));
    }
}
