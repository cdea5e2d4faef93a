//! A shard's read loop under its lease: from the checkpoint, page by page (the next page read while
//! this one is verified), a checkpoint after each page up to the last final verdict, throttling,
//! expired iterators and trimmed data handled on the way.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::lease::{reached_end, HeldLease};
use super::{PollReport, Poller, PollerError};
use crate::config::LagWindowFrom;
use crate::ports::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, Lease};
use crate::ports::findings::FindingsStore;
use crate::ports::stream::{
    PolledRecord, RecordsPage, ShardInfo, ShardRef, StartAt, StreamError, StreamSource,
};
use crate::ports::table::TableReader;
use crate::record::{Expectation, MalformedRecord};
use crate::report::findings::VerifiedSpan;
use crate::report::{OutcomeSink, RecordReport};
use crate::shared::epoch_ms as now_ms;
use crate::verify::timing::GET_RECORDS;
use crate::verify::{Outcome, RetryReason};

/// Consecutive empty pages, after a record, after which an open shard counts as caught up for
/// this run.
const EMPTY_READS_BEFORE_CAUGHT_UP: u32 = 3;

/// Where a shard's iterator is, as far as the reading can tell: the evidence for "caught up".
/// DynamoDB Streams gives no position signal (GetRecords answers records and `NextShardIterator`
/// only, no `MillisBehindLatest`), and "it might take multiple calls to get to a portion of the
/// shard that contains stream records": empty pages from TRIM_HORIZON prove nothing. Empty pages
/// count only once the iterator is known to be among the shard's records: it was asked for right
/// after a record read (`AFTER_SEQUENCE_NUMBER`), or one of its pages held records.
#[derive(Default)]
struct Tip {
    at_records: bool,
    empty_reads: u32,
}

impl Tip {
    /// Positioned at `start`: after a record, or at TRIM_HORIZON (nowhere known).
    fn at(start: &StartAt) -> Tip {
        Tip {
            at_records: matches!(start, StartAt::AfterSequenceNumber(_)),
            empty_reads: 0,
        }
    }

    fn records(&mut self) {
        self.at_records = true;
        self.empty_reads = 0;
    }

    /// Counts an empty page; whether the shard is now proven caught up.
    fn empty(&mut self) -> bool {
        self.empty_reads += 1;
        self.at_records && self.empty_reads >= EMPTY_READS_BEFORE_CAUGHT_UP
    }
}

/// One shard's reading in a run: which shard, whose lease, until when.
#[derive(Clone, Copy)]
pub(super) struct ShardRead<'a> {
    pub(super) stream_arn: &'a str,
    pub(super) shard: &'a ShardInfo,
    /// This run's lease owner.
    pub(super) owner: &'a str,
    /// The invocation's deadline (the engine keeps its own margin from it).
    pub(super) deadline: Instant,
    /// When reading stops: the deadline minus its margin.
    pub(super) stop_at: Instant,
}

impl<'a> ShardRead<'a> {
    fn at(&self) -> ShardRef<'a> {
        ShardRef {
            stream_arn: self.stream_arn,
            shard_id: &self.shard.shard_id,
        }
    }
}

/// What reading one shard did.
#[derive(Default)]
pub(super) struct ShardRun {
    pub(super) report: PollReport,
    pub(super) finished: bool,
    /// Read up to the shard's newest record (empty pages) in this run.
    pub(super) caught_up: bool,
    /// Why reading stopped early; `report` still holds everything done before.
    pub(super) error: Option<PollerError>,
    /// The stream's start under LATEST, which its children inherit.
    pub(super) started_at_ms: Option<u64>,
}

/// Where a shard without a checkpoint starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum ShardOrigin {
    /// Its parent is unknown to the poller: reading the stream begins here, at TRIM_HORIZON;
    /// with `STARTING_POSITION=LATEST` records created before the stream's start (`started_at_ms`,
    /// one time for every shard, taken before any was read) are skipped.
    Root { started_at_ms: Option<u64> },
    /// Its parent is listed or was read: TRIM_HORIZON whatever `STARTING_POSITION`, as the KCL does
    /// (everything in it came after its parent). Under LATEST, the parent's start (the stream's)
    /// is inherited: records created before it are skipped, in the child as in the parent, so that
    /// LATEST keeps its meaning down the lineage (shards roll over every few hours).
    Child { started_at_ms: Option<u64> },
}

/// Where a shard's reading starts, as known when it is queued.
pub(super) struct ShardStart {
    /// As loaded at the start of the run (the lease returns a fresher one).
    pub(super) checkpoint: Checkpoint,
    pub(super) origin: ShardOrigin,
}

impl<S: StreamSource, C: CheckpointStore, R: TableReader, F: FindingsStore> Poller<S, C, R, F> {
    /// Reads one shard under a lease, recording what it did in `run`; an error ends the shard's
    /// reading, and `run` keeps the verdicts reached before it.
    pub(super) async fn read_shard(
        &self,
        read: &ShardRead<'_>,
        start: ShardStart,
        run: &mut ShardRun,
    ) -> Result<(), PollerError> {
        let shard_id = read.shard.shard_id.as_str();
        let lease = Lease::new(read.stream_arn, shard_id, read.owner);
        let Some((lease, stored)) =
            HeldLease::take(&self.checkpoints, lease, self.config.lease_duration).await?
        else {
            tracing::info!(shard_id, "shard is leased by another reader");
            run.report.poller.lease_conflicts += 1;
            return Ok(());
        };
        // The lease returns the freshest checkpoint (another run may have moved it since listing).
        let listed = start.checkpoint;
        let inherited = match start.origin {
            ShardOrigin::Root { started_at_ms } | ShardOrigin::Child { started_at_ms } => {
                started_at_ms
            }
        };
        let mut position = Checkpoint {
            sequence_number: stored.sequence_number.or(listed.sequence_number),
            shard_end: stored.shard_end || listed.shard_end,
            started_at_ms: stored.started_at_ms.or(listed.started_at_ms).or(inherited),
        };
        if position.shard_end {
            run.finished = true;
            run.started_at_ms = position.started_at_ms;
            lease.release().await?;
            return Ok(());
        }
        run.report.poller.shards_read += 1;
        let result = self
            .read_leased_shard(read, &lease, &mut position, run)
            .await;
        run.started_at_ms = position.started_at_ms;
        let lease_lost = matches!(
            result,
            Err(PollerError::Checkpoint(CheckpointError::LeaseLost { .. }))
        );
        if !run.finished && !lease_lost {
            // Also after an error, so the next run need not wait for the lease to expire. If this
            // fails too, the lease expires by itself.
            let released = lease.release().await;
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

    /// Where reading resumes: after the checkpoint, else at TRIM_HORIZON. `LATEST` is never an
    /// iterator: it is the stream's start, a time (`started_at_ms`), before which records are
    /// skipped, so that no shard starts at its own first read.
    fn start_of(position: &Checkpoint) -> StartAt {
        match &position.sequence_number {
            Some(seq) => StartAt::AfterSequenceNumber(seq.clone()),
            None => StartAt::TrimHorizon,
        }
    }

    /// Records created before this are skipped (`RecordsBeforeStart`): those before the stream's
    /// start under LATEST. Creation times are rounded down (to the second; DynamoDB Local's to the
    /// minute), so the start is rounded down to its minute and only records of earlier minutes are
    /// skipped: certainly older than it. None are when creation times are not trusted
    /// (`LAG_WINDOW_FROM=arrival`): verifying a few records too many is better than skipping one
    /// too many.
    fn skip_before(&self, position: &Checkpoint) -> Option<SystemTime> {
        if self.config.verify.lag_window_from != LagWindowFrom::Creation {
            return None;
        }
        position
            .started_at_ms
            .map(|ms| UNIX_EPOCH + Duration::from_secs(ms / 60_000 * 60))
    }

    /// A new iterator at `start`, and where it is; trimmed data there means continuing from
    /// TRIM_HORIZON.
    async fn iterator_at(
        &self,
        shard: ShardRef<'_>,
        start: &StartAt,
        position: &Checkpoint,
        run: &mut ShardRun,
    ) -> Result<(Option<String>, Tip), PollerError> {
        match self.stream.shard_iterator(shard, start).await {
            Err(StreamError::TrimmedData) => {
                report_trimmed(shard, position, run);
                let horizon = StartAt::TrimHorizon;
                Ok((
                    self.stream.shard_iterator(shard, &horizon).await?,
                    Tip::at(&horizon),
                ))
            }
            other => Ok((other?, Tip::at(start))),
        }
    }

    /// Reads a leased shard from `position` until it ends, time runs out or a record has no final
    /// verdict; checkpoints after every page.
    async fn read_leased_shard(
        &self,
        read: &ShardRead<'_>,
        lease: &HeldLease<'_, C>,
        position: &mut Checkpoint,
        run: &mut ShardRun,
    ) -> Result<(), PollerError> {
        let mut pages = PageLoop::new(self.skip_before(position));
        let result = self
            .read_pages(read, lease, position, run, &mut pages)
            .await;
        // The last page's checkpoint, whatever ended the reading: its verdicts are final.
        let saved = pages.saved(run).await;
        result.and(saved.map_err(PollerError::from))
    }

    /// The loop of [`Self::read_leased_shard`], its state in `pages`: read a page, then verify
    /// it (reading the next one meanwhile), or, empty, decide whether the shard is caught up.
    async fn read_pages<'l>(
        &self,
        read: &ShardRead<'_>,
        lease: &'l HeldLease<'_, C>,
        position: &mut Checkpoint,
        run: &mut ShardRun,
        pages: &mut PageLoop<'l>,
    ) -> Result<(), PollerError> {
        if reached_end(read.shard, position) {
            // Checkpointed at its last record by a run that stopped before marking it finished.
            return finish_shard(lease, position, run, pages).await;
        }
        // A closed shard is read to its end: its children wait for it.
        let closed = read.shard.ending_sequence_number.is_some();
        let first = Self::start_of(position);
        (pages.iterator, pages.tip) = self.iterator_at(read.at(), &first, position, run).await?;
        while let Some(iterator) = pages.iterator.take() {
            if Instant::now() >= read.stop_at {
                return Ok(());
            }
            let page = match self.next_page(read, iterator, position, run, pages).await? {
                Fetched::Page(page) => page,
                Fetched::Again => continue,
                Fetched::OutOfTime => return Ok(()),
            };
            pages.iterator = page.next_iterator;
            if page.records.is_empty() {
                if pages.iterator.is_some() {
                    match at_the_tip(&mut pages.tip, closed, read.stop_at) {
                        AfterEmpty::CaughtUp => {
                            run.caught_up = true;
                            return Ok(());
                        }
                        AfterEmpty::OutOfTime => return Ok(()),
                        AfterEmpty::ReadOn(pause) => tokio::time::sleep(pause).await,
                    }
                }
            } else {
                let (complete, verified) = self
                    .verify_ahead(read, position, run, pages, page.records)
                    .await?;
                pages.save(lease, position, verified);
                if !complete {
                    // A record without a final verdict: no reading past it (next run starts there).
                    return Ok(());
                }
            }
            if pages.iterator.is_none() || reached_end(read.shard, position) {
                return finish_shard(lease, position, run, pages).await;
            }
        }
        Ok(())
    }

    /// The page at `iterator` (the one read ahead, if any), or why there is none yet: throttled
    /// (after a pause, the same iterator again), an expired iterator (a new one from the
    /// checkpoint), trimmed data (on from TRIM_HORIZON); out of time if the pause would pass it.
    async fn next_page(
        &self,
        read: &ShardRead<'_>,
        iterator: String,
        position: &Checkpoint,
        run: &mut ShardRun,
        pages: &mut PageLoop<'_>,
    ) -> Result<Fetched, PollerError> {
        let at = read.at();
        let answer = match pages.prefetched.take() {
            Some(answer) => answer,
            None => {
                run.report.poller.get_records_calls += 1;
                self.stream
                    .get_records(read.stream_arn, &iterator, self.config.get_records_limit)
                    .await
            }
        };
        match answer {
            Ok(page) => {
                pages.throttled = 0;
                Ok(Fetched::Page(page))
            }
            Err(StreamError::Throttled { code }) => {
                let Some(pause) = pages.back_off(read.stop_at) else {
                    return Ok(Fetched::OutOfTime);
                };
                tracing::warn!(
                    shard_id = at.shard_id,
                    code,
                    pause_ms = pause.as_millis() as u64,
                    "GetRecords throttled; backing off"
                );
                tokio::time::sleep(pause).await;
                pages.iterator = Some(iterator);
                Ok(Fetched::Again)
            }
            Err(StreamError::ExpiredIterator) => {
                tracing::info!(
                    shard_id = at.shard_id,
                    "shard iterator expired; a new one from the checkpoint"
                );
                let start = Self::start_of(position);
                (pages.iterator, pages.tip) = self.iterator_at(at, &start, position, run).await?;
                Ok(Fetched::Again)
            }
            Err(StreamError::TrimmedData) => {
                report_trimmed(at, position, run);
                let horizon = StartAt::TrimHorizon;
                pages.iterator = self.stream.shard_iterator(at, &horizon).await?;
                pages.tip = Tip::at(&horizon);
                Ok(Fetched::Again)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Verifies a page of records while reading the next one (at `pages.iterator`) and writing the
    /// previous one's checkpoint: lookups, GetRecords and the checkpoint write wait on different
    /// APIs. Whether every record of the page is final (if not, the page read ahead is dropped and
    /// read again by the next run), and the page's verdicts, which count once its checkpoint is
    /// written.
    /// A page's verdicts count once its checkpoint is written: a page whose checkpoint fails is
    /// read, verified and counted again by the next run, never twice (nor is a page verified while
    /// it failed).
    async fn verify_ahead(
        &self,
        read: &ShardRead<'_>,
        position: &mut Checkpoint,
        run: &mut ShardRun,
        pages: &mut PageLoop<'_>,
        records: Vec<PolledRecord>,
    ) -> Result<(bool, PollReport), PollerError> {
        pages.tip.records();
        run.report.poller.records_read += records.len() as u64;
        let skip_before = pages.skip_before;
        if let Some(age) = iterator_age_ms(&records, skip_before, SystemTime::now()) {
            run.report.poller.iterator_age_ms = run.report.poller.iterator_age_ms.max(age);
        }
        let (mut verified, mut calls) = (PollReport::default(), PollReport::default());
        if pages.iterator.is_some() {
            run.report.poller.get_records_calls += 1;
        }
        let previous = pages.saving.take();
        let next = pages.iterator.as_deref();
        let verify = self.verify_page(
            records,
            position,
            skip_before,
            read.deadline,
            &mut calls,
            &mut verified,
        );
        let fetch = async {
            match next {
                Some(next) => Some(
                    self.stream
                        .get_records(read.stream_arn, next, self.config.get_records_limit)
                        .await,
                ),
                None => None,
            }
        };
        let previous = async {
            match previous {
                Some(write) => Some(write.await),
                None => None,
            }
        };
        let (complete, fetched, previous) = tokio::join!(verify, fetch, previous);
        run.report += calls;
        pages.prefetched = fetched;
        if let Some(previous) = previous {
            previous?.count(run);
        }
        Ok((complete, verified))
    }

    /// Verifies a page; moves `position` to the last record of the final-verdict prefix. API calls
    /// are counted in `calls`, outcomes in `verified`. Records created before `skip_before` are not
    /// verified (and final). Returns whether every record of the page is final.
    async fn verify_page(
        &self,
        records: Vec<PolledRecord>,
        position: &mut Checkpoint,
        skip_before: Option<SystemTime>,
        deadline: Instant,
        calls: &mut PollReport,
        verified: &mut PollReport,
    ) -> bool {
        let page = SortedPage::of(records, skip_before);
        let outcomes = self
            .verify_records(&page.valid, deadline, calls, verified)
            .await;
        let unreadable = self.unreadable_findings(&page.order, verified).await;
        verified.verification.records_received += page.received;
        page.settle(outcomes, unreadable, position, verified)
    }

    /// The engine's outcomes for a page's valid records, their problems recorded as findings (a
    /// problem whose finding is not written becomes a retry: not checkpointed past).
    async fn verify_records(
        &self,
        valid: &[Expectation],
        deadline: Instant,
        calls: &mut PollReport,
        verified: &mut PollReport,
    ) -> Vec<Outcome> {
        let verify = self.verifier.verify(valid, Some(deadline));
        let Some(findings) = &self.findings else {
            let report = verify.await;
            calls.verification.add_calls(&report);
            return report.outcomes;
        };
        // Which keys have an open finding is read beside the engine's lookups.
        let (mut report, open) = tokio::join!(verify, findings.open_findings(valid));
        calls.verification.add_calls(&report);
        findings
            .write_stream(valid, &mut report, open, &mut verified.verification)
            .await;
        let span = VerifiedSpan::of(valid, &report.outcomes, now_ms());
        verified.first_change_ms = span.first_change_ms;
        verified.unbelievable_times += span.unbelievable;
        report.outcomes
    }
}

impl<S: StreamSource, C: CheckpointStore, R: TableReader, F: FindingsStore> Poller<S, C, R, F> {
    /// The page's unreadable records with a key, recorded as UNVERIFIABLE findings; by malformed
    /// record in page order, why it must be read again (see `FindingsWriter::write_unreadable`).
    async fn unreadable_findings(
        &self,
        order: &[Slot],
        verified: &mut PollReport,
    ) -> Vec<Option<String>> {
        let malformed: Vec<MalformedRecord> = order
            .iter()
            .filter_map(|slot| match slot {
                Slot::Malformed(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        match &self.findings {
            Some(findings) if !malformed.is_empty() => {
                findings
                    .write_unreadable(&malformed, &mut verified.verification)
                    .await
            }
            _ => Vec::new(),
        }
    }
}

/// A page's checkpoint write in flight, with the page's verdicts.
type Saving<'l> = Pin<Box<dyn Future<Output = Result<SavedPage, CheckpointError>> + Send + 'l>>;

/// A page whose checkpoint is written: its verdicts count from `at`.
struct SavedPage {
    verified: PollReport,
    at: Instant,
}

impl SavedPage {
    fn count(self, run: &mut ShardRun) {
        run.report.poller.checkpoint_writes += 1;
        run.report += self.verified;
        run.report.last_progress_at = Some(self.at);
    }
}

/// The page loop's state between pages: where the next page is, what the reads so far prove about
/// the shard's tip, the throttled reads in a row, the page read ahead and the previous page's
/// checkpoint write in flight.
struct PageLoop<'l> {
    /// The next page's iterator; `None` once the shard has no more.
    iterator: Option<String>,
    tip: Tip,
    /// Throttled reads in a row.
    throttled: u32,
    /// The next page, read while the previous one was verified.
    prefetched: Option<Result<RecordsPage, StreamError>>,
    /// The last page's checkpoint write: at most one at a time, so they land in order.
    saving: Option<Saving<'l>>,
    /// Records created before this are skipped (see `Poller::skip_before`).
    skip_before: Option<SystemTime>,
}

impl<'l> PageLoop<'l> {
    fn new(skip_before: Option<SystemTime>) -> Self {
        PageLoop {
            iterator: None,
            tip: Tip::default(),
            throttled: 0,
            prefetched: None,
            saving: None,
            skip_before,
        }
    }

    /// Counts a throttled read; the pause before reading again (longer with each throttled read in
    /// a row), or `None` if it would pass `stop_at`.
    fn back_off(&mut self, stop_at: Instant) -> Option<Duration> {
        self.throttled += 1;
        let pause = GET_RECORDS.pause(self.throttled.saturating_sub(1));
        (Instant::now() + pause < stop_at).then_some(pause)
    }

    /// Puts a page's checkpoint write (at `position`) in flight, with its verdicts (`verified`).
    fn save<C: CheckpointStore>(
        &mut self,
        lease: &'l HeldLease<'_, C>,
        position: &Checkpoint,
        verified: PollReport,
    ) {
        let snapshot = position.clone();
        self.saving = Some(Box::pin(async move {
            lease.write(&snapshot).await?;
            Ok(SavedPage {
                verified,
                at: Instant::now(),
            })
        }));
    }

    /// Waits for the last page's checkpoint write, if one is in flight, and counts its verdicts.
    async fn saved(&mut self, run: &mut ShardRun) -> Result<(), CheckpointError> {
        if let Some(write) = self.saving.take() {
            write.await?.count(run);
        }
        Ok(())
    }
}

/// What reading a page gave.
enum Fetched {
    Page(RecordsPage),
    /// No page yet; the loop reads again (at `PageLoop::iterator`).
    Again,
    OutOfTime,
}

/// Marks a shard read to its end; after the last page's checkpoint, never overwritten by it.
async fn finish_shard<C: CheckpointStore>(
    lease: &HeldLease<'_, C>,
    position: &mut Checkpoint,
    run: &mut ShardRun,
    pages: &mut PageLoop<'_>,
) -> Result<(), PollerError> {
    pages.saved(run).await?;
    lease.finish(position, &mut run.report.poller).await?;
    run.finished = true;
    Ok(())
}

/// How long before `read_at` the page's newest record was created. Records skipped as older than
/// the start do not count: they would raise the IteratorAge alarm for records nobody asked to
/// verify.
fn iterator_age_ms(
    records: &[PolledRecord],
    skip_before: Option<SystemTime>,
    read_at: SystemTime,
) -> Option<u64> {
    let newest = records
        .iter()
        .filter_map(|r| r.as_ref().ok().and_then(|r| r.since))
        .filter(|created| skip_before.is_none_or(|start| *created >= start))
        .max()?;
    Some(
        read_at
            .duration_since(newest)
            .unwrap_or_default()
            .as_millis() as u64,
    )
}

/// What an empty page with a next iterator leads to.
enum AfterEmpty {
    CaughtUp,
    OutOfTime,
    /// Another page, after this pause.
    ReadOn(Duration),
}

/// An open shard is caught up after a few empty pages once its iterator is among its records
/// ([`Tip`]). A closed one is not: the service may answer with empty pages before its records, so
/// it is read until it has no next iterator (its children wait for it); nor is an open one whose
/// iterator has not reached a record yet: both are read on until the run's time is up.
fn at_the_tip(tip: &mut Tip, closed: bool, stop_at: Instant) -> AfterEmpty {
    if tip.empty() && !closed {
        return AfterEmpty::CaughtUp;
    }
    let pause = GET_RECORDS.pause(if closed {
        0
    } else {
        tip.empty_reads.saturating_sub(1)
    });
    if Instant::now() + pause >= stop_at {
        return AfterEmpty::OutOfTime;
    }
    AfterEmpty::ReadOn(pause)
}

fn report_trimmed(shard: ShardRef<'_>, position: &Checkpoint, run: &mut ShardRun) {
    tracing::error!(
        stream_arn = shard.stream_arn,
        shard_id = shard.shard_id,
        after_sequence_number = position.sequence_number.as_deref().unwrap_or("-"),
        "stream records were trimmed before they could be verified; continuing from TRIM_HORIZON"
    );
    run.report.poller.records_trimmed += 1;
}

/// A page sorted for the engine: the valid records go to it without a copy, `order` keeps the
/// page's order.
struct SortedPage {
    valid: Vec<Expectation>,
    order: Vec<Slot>,
    /// The records received, those created before the start aside.
    received: u64,
}

impl SortedPage {
    fn of(records: Vec<PolledRecord>, skip_before: Option<SystemTime>) -> SortedPage {
        let mut page = SortedPage {
            received: records.len() as u64,
            valid: Vec::with_capacity(records.len()),
            order: Vec::with_capacity(records.len()),
        };
        for record in records {
            match record {
                Ok(r)
                    if skip_before
                        .zip(r.since)
                        .is_some_and(|(start, created)| created < start) =>
                {
                    page.received -= 1;
                    page.order.push(Slot::BeforeStart(r.position()));
                }
                Ok(r) => {
                    page.order.push(Slot::Verify);
                    page.valid.push(r);
                }
                Err(m) => page.order.push(Slot::Malformed(m)),
            }
        }
        page
    }

    /// Reports the page's records in order with their `outcomes` (of the valid ones) and
    /// `unreadable` (why a malformed one's finding is not written, by malformed record); moves
    /// `position` over the prefix of final verdicts. Whether every record is final.
    fn settle(
        self,
        outcomes: Vec<Outcome>,
        unreadable: Vec<Option<String>>,
        position: &mut Checkpoint,
        verified: &mut PollReport,
    ) -> bool {
        let (mut outcomes, mut unreadable) = (outcomes.into_iter(), unreadable.into_iter());
        let mut valid = self.valid.iter();
        let mut complete = true;
        let mut sink = OutcomeSink::new(&mut verified.verification, &mut verified.records);
        for slot in self.order {
            let line = match slot {
                Slot::BeforeStart(seq) => {
                    // Final: checkpointed past, unless a record before it is read again anyway.
                    if complete {
                        position.sequence_number = Some(seq);
                        verified.poller.records_before_start += 1;
                    }
                    continue;
                }
                Slot::Malformed(m) => {
                    let mut line = RecordReport::malformed(&m);
                    // Its finding not written: read again, not checkpointed past.
                    if let Some(message) = unreadable.next().flatten() {
                        line.outcome = Outcome::Retry(RetryReason::FindingNotRecorded { message });
                    }
                    line
                }
                Slot::Verify => match valid.next() {
                    Some(r) => RecordReport::of(r, outcomes.next().unwrap_or(Outcome::NotSampled)),
                    None => break,
                },
            };
            complete &= !matches!(line.outcome, Outcome::Retry(_));
            if complete {
                if let Some(seq) = &line.sequence_number {
                    position.sequence_number = Some(seq.clone());
                }
                sink.accept(line);
            } else {
                // Read again next run, whatever its outcome now.
                sink.defer(&line);
            }
        }
        complete
    }
}

/// A record of a page, in the page's order.
enum Slot {
    /// Goes to the engine.
    Verify,
    Malformed(MalformedRecord),
    /// Created before the shard's first read at LATEST: skipped (its sequence number).
    BeforeStart(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ChangeKind, Expectation, Expected, Origin, StreamChange, ViewType};
    use aws_sdk_dynamodb::types::AttributeValue as V;

    fn created(since: Option<SystemTime>) -> PolledRecord {
        numbered(1, since)
    }

    fn numbered(seq: u64, since: Option<SystemTime>) -> PolledRecord {
        Ok(Expectation {
            keys: [("pk".to_string(), V::N("1".into()))].into(),
            expected: Expected::Absent,
            since,
            source_table: None,
            origin: Origin::Stream(StreamChange {
                event_id: format!("e{seq}"),
                kind: ChangeKind::Remove,
                sequence_number: seq.to_string(),
                old_image: None,
                view_type: ViewType::NewImage,
                ttl_delete: false,
                stream_arn: None,
            }),
        })
    }

    fn malformed() -> PolledRecord {
        Err(MalformedRecord {
            position: 0,
            event_id: None,
            sequence_number: None,
            reason: "bad".into(),
            keys: None,
            source_table: None,
        })
    }

    #[test]
    fn iterator_age_is_the_newest_record_not_skipped() {
        let read_at = UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
        let records = vec![
            created(at(400)),
            malformed(),
            created(at(900)),
            created(None),
        ];
        assert_eq!(iterator_age_ms(&records, None, read_at), Some(100_000));
        // The newest is skipped as before the start: the age is the newest one verified.
        let records = vec![created(at(400)), created(at(100))];
        assert_eq!(iterator_age_ms(&records, at(300), read_at), Some(600_000));
        assert_eq!(iterator_age_ms(&records, at(500), read_at), None);
        assert_eq!(iterator_age_ms(&[malformed()], None, read_at), None);
        // A creation time after the read (clock skew) is no age, not a negative one.
        assert_eq!(
            iterator_age_ms(&[created(at(2_000))], None, read_at),
            Some(0)
        );
    }

    #[test]
    fn throttled_reads_back_off_longer_in_a_row_until_out_of_time() {
        let mut pages = PageLoop::new(None);
        let far = Instant::now() + Duration::from_secs(3600);
        let mut pauses = Vec::new();
        for _ in 0..6 {
            pauses.push(pages.back_off(far).expect("time enough"));
        }
        assert_eq!(pages.throttled, 6);
        // Each pause is within [d/2, d] of 200 ms doubling, up to 3.2 s.
        for (n, pause) in pauses.iter().enumerate() {
            let d = Duration::from_millis((200u64 << n).min(3200));
            assert!(*pause >= d / 2 && *pause <= d, "pause {n}: {pause:?}");
        }
        // A pause that would pass the stop time ends the reading instead.
        assert_eq!(pages.back_off(Instant::now()), None);
        assert_eq!(pages.throttled, 7);
    }

    #[test]
    fn empty_pages_prove_caught_up_only_at_the_records_of_an_open_shard() {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut tip = Tip::at(&StartAt::AfterSequenceNumber("1".into()));
        for _ in 1..EMPTY_READS_BEFORE_CAUGHT_UP {
            assert!(matches!(
                at_the_tip(&mut tip, false, far),
                AfterEmpty::ReadOn(_)
            ));
        }
        assert!(matches!(
            at_the_tip(&mut tip, false, far),
            AfterEmpty::CaughtUp
        ));
        // From TRIM_HORIZON, empty pages prove nothing until a page held records.
        let mut tip = Tip::at(&StartAt::TrimHorizon);
        for _ in 0..5 {
            assert!(matches!(
                at_the_tip(&mut tip, false, far),
                AfterEmpty::ReadOn(_)
            ));
        }
        tip.records();
        assert_eq!(tip.empty_reads, 0);
        // A closed shard is read to its end, however many empty pages.
        let mut tip = Tip::at(&StartAt::AfterSequenceNumber("1".into()));
        for _ in 0..5 {
            assert!(matches!(
                at_the_tip(&mut tip, true, far),
                AfterEmpty::ReadOn(_)
            ));
        }
        assert!(matches!(
            at_the_tip(&mut tip, true, Instant::now()),
            AfterEmpty::OutOfTime
        ));
    }

    #[test]
    fn a_page_is_checkpointed_over_its_final_prefix_only() {
        let at = |s: u64| Some(UNIX_EPOCH + Duration::from_secs(s));
        let records = vec![
            numbered(1, at(10)),
            numbered(2, at(100)),
            malformed(),
            numbered(4, at(100)),
            numbered(5, at(10)),
            numbered(6, at(100)),
        ];
        let page = SortedPage::of(records, at(50));
        assert_eq!(page.valid.len(), 3);
        assert_eq!(page.received, 4);
        let retry = Outcome::Retry(RetryReason::Unsettled);
        let outcomes = vec![Outcome::NotSampled, retry, Outcome::NotSampled];
        let (mut position, mut verified) = (Checkpoint::default(), PollReport::default());
        let complete = page.settle(outcomes, vec![None], &mut position, &mut verified);
        // Record 4 is not final: the position stays before it, the record skipped after it too.
        assert!(!complete);
        assert_eq!(position.sequence_number.as_deref(), Some("2"));
        assert_eq!(verified.poller.records_before_start, 1);
    }
}
