//! A shard's read loop under its lease: from the checkpoint, page by page (the next page read, and
//! its lookups started, while this one is verified), a checkpoint after each page up to the last
//! final verdict, throttling, expired iterators and trimmed data handled on the way.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::lease::{reached_end, HeldLease};
use super::{PollReport, Poller, PollerError};
use crate::config::LagWindowFrom;
use crate::record::{Expectation, MalformedRecord};
use crate::report::findings::{Occurrence, VerifiedSpan};
use crate::report::{OutcomeSink, RecordReport};
use crate::source::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, Lease};
use crate::source::findings::FindingsStore;
use crate::source::stream::{
    PolledRecord, RecordsPage, ShardInfo, ShardRef, StartAt, StreamError, StreamSource,
};
use crate::source::table::TableReader;
use crate::verify::timing::{epoch_ms as now_ms, GET_RECORDS};
use crate::verify::{BatchReport, Outcome};

/// Consecutive empty pages after which a shard counts as caught up for this run.
const EMPTY_READS_BEFORE_CAUGHT_UP: u32 = 3;

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

/// What reading one shard did.
#[derive(Default)]
pub(super) struct ShardRun {
    pub(super) report: PollReport,
    pub(super) finished: bool,
    /// Read up to the shard's newest record (empty pages) in this run.
    pub(super) caught_up: bool,
    /// Why reading stopped early; `report` still holds everything done before.
    pub(super) error: Option<PollerError>,
    /// The shard's first read at LATEST, which its children inherit.
    pub(super) started_at_ms: Option<u64>,
}

/// Where a shard without a checkpoint starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin {
    /// Its parent is unknown to the poller: reading the stream begins here, at `STARTING_POSITION`.
    Root,
    /// Its parent is listed or was read: TRIM_HORIZON whatever `STARTING_POSITION`, as the KCL does
    /// (everything in it came after its parent). When the parent was first read at LATEST, its
    /// start is inherited: records created before it are skipped, in the child as in the parent,
    /// so that LATEST keeps its meaning down the lineage (shards roll over every few hours).
    Child { started_at_ms: Option<u64> },
}

/// Where a shard's reading starts, as known when it is queued.
pub(super) struct ShardStart {
    /// As loaded at the start of the run (the lease returns a fresher one).
    pub(super) checkpoint: Checkpoint,
    pub(super) origin: Origin,
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
        let (child, inherited) = match start.origin {
            Origin::Root => (false, None),
            Origin::Child { started_at_ms } => (true, started_at_ms),
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
            .read_leased_shard(read, &lease, child, &mut position, run)
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

    /// Where reading resumes: after the checkpoint; else at TRIM_HORIZON for a child or a shard
    /// first read at LATEST by an earlier run (`started_at_ms`, records before it are skipped);
    /// else `STARTING_POSITION`.
    fn start_of(&self, position: &Checkpoint, child: bool) -> StartAt {
        match &position.sequence_number {
            Some(seq) => StartAt::AfterSequenceNumber(seq.clone()),
            None if child || position.started_at_ms.is_some() => StartAt::TrimHorizon,
            None => self.config.starting_position.clone(),
        }
    }

    /// Records created before this are skipped (`RecordsBeforeStart`): those of a shard first read
    /// at LATEST, when a later run reads it from TRIM_HORIZON. Creation times are rounded down to
    /// the second, so only records of earlier seconds are skipped; and none when creation times
    /// are not trusted (`LAG_WINDOW_FROM=arrival`: DynamoDB Local's are rounded to the minute),
    /// where verifying a few records too many is better than skipping one too many.
    fn skip_before(&self, position: &Checkpoint) -> Option<SystemTime> {
        if self.config.verify.lag_window_from != LagWindowFrom::Creation {
            return None;
        }
        position
            .started_at_ms
            .map(|ms| UNIX_EPOCH + Duration::from_secs(ms / 1000))
    }

    /// A new iterator at `start`; trimmed data there means continuing from TRIM_HORIZON.
    async fn iterator_at(
        &self,
        shard: ShardRef<'_>,
        start: &StartAt,
        position: &Checkpoint,
        run: &mut ShardRun,
    ) -> Result<Option<String>, PollerError> {
        match self.stream.shard_iterator(shard, start).await {
            Err(StreamError::TrimmedData) => {
                report_trimmed(shard, position, run);
                Ok(self
                    .stream
                    .shard_iterator(shard, &StartAt::TrimHorizon)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    /// Reads a leased shard from `position` until it ends, time runs out or a record has no final
    /// verdict; checkpoints after every page.
    async fn read_leased_shard(
        &self,
        read: &ShardRead<'_>,
        lease: &HeldLease<'_, C>,
        child: bool,
        position: &mut Checkpoint,
        run: &mut ShardRun,
    ) -> Result<(), PollerError> {
        let mut saving = None;
        let result = self
            .read_pages(read, lease, child, position, run, &mut saving)
            .await;
        // The last page's checkpoint, whatever ended the reading: its verdicts are final.
        let saved = match saving {
            Some(write) => write.await.map(|page| page.count(run)),
            None => Ok(()),
        };
        result.and(saved.map_err(PollerError::from))
    }

    /// The loop of [`Self::read_leased_shard`]. A page's checkpoint is written while the next page
    /// is verified (`saving`, at most one write at a time, so they land in order).
    async fn read_pages<'l>(
        &self,
        read: &ShardRead<'_>,
        lease: &'l HeldLease<'_, C>,
        child: bool,
        position: &mut Checkpoint,
        run: &mut ShardRun,
        saving: &mut Option<Saving<'l>>,
    ) -> Result<(), PollerError> {
        let (stream_arn, shard) = (read.stream_arn, read.shard);
        let (deadline, stop_at) = (read.deadline, read.stop_at);
        let shard_id = shard.shard_id.as_str();
        let at = ShardRef {
            stream_arn,
            shard_id,
        };
        // A closed shard is read to its end: its children wait for it.
        let closed = shard.ending_sequence_number.is_some();
        if reached_end(shard, position) {
            // Checkpointed at its last record by a run that stopped before marking it finished.
            lease.finish(position, &mut run.report.poller).await?;
            run.finished = true;
            return Ok(());
        }
        let first = self.start_of(position, child);
        if first == StartAt::Latest {
            // LATEST applies to the first read only. Its time is saved before reading, so that an
            // empty read, or a first record without a final verdict, still leaves the next run a
            // place to start (TRIM_HORIZON, skipping what came before this time), not its own LATEST.
            position.started_at_ms = Some(now_ms());
            lease.save(position, &mut run.report.poller).await?;
        }
        let skip_before = self.skip_before(position);
        // The iterator of the next read not yet started (the chain of pages read ahead ends at an
        // error or an empty page, which the loop handles in order).
        let mut chain = self.iterator_at(at, &first, position, run).await?;
        let mut empty_reads: u32 = 0;
        let mut throttled: u32 = 0;
        // Pages read after the one being settled, in order (those with records have their lookups
        // under way), and the read of the page after them.
        let mut ahead: VecDeque<Ahead<'_>> = VecDeque::new();
        let mut reading: Option<Reading<'_>> = None;
        loop {
            if Instant::now() >= stop_at {
                return Ok(());
            }
            // The next page in order: read ahead, being read, or read now.
            let (it, read) = match ahead.pop_front() {
                Some(Ahead::Checking(page)) => (None, Ok(Arrived::Checking(page))),
                Some(Ahead::Read { iterator, read }) => (Some(iterator), read.map(Arrived::Read)),
                None => {
                    let reading = match reading.take() {
                        Some(reading) => reading,
                        None => match chain.take() {
                            Some(it) => self.read(it, stream_arn, run),
                            None => return Ok(()),
                        },
                    };
                    let read = while_saving(reading.read, saving, run).await?;
                    (Some(reading.iterator), read.map(Arrived::Read))
                }
            };
            let page = match read {
                Ok(Arrived::Checking(page)) => page,
                Ok(Arrived::Read(page)) if page.records.is_empty() => {
                    throttled = 0;
                    let next = page.next_iterator;
                    if next.is_some() {
                        empty_reads += 1;
                        // An open shard is caught up after a few empty pages. A closed one is not:
                        // the service may answer with empty pages before its records, so it is
                        // read until it has no next iterator (or time runs out).
                        if !closed && empty_reads >= EMPTY_READS_BEFORE_CAUGHT_UP {
                            run.caught_up = true;
                            return Ok(());
                        }
                        let pause = GET_RECORDS.pause(if closed {
                            0
                        } else {
                            empty_reads.saturating_sub(1)
                        });
                        if Instant::now() + pause >= stop_at {
                            return Ok(());
                        }
                        while_saving(tokio::time::sleep(pause), saving, run).await?;
                    }
                    if next.is_none() || reached_end(shard, position) {
                        return finish_shard(lease, position, run, saving).await;
                    }
                    chain = next;
                    continue;
                }
                Ok(Arrived::Read(page)) => {
                    chain = page.next_iterator.clone();
                    self.checking(page, skip_before, deadline)
                }
                Err(StreamError::Throttled { code }) => {
                    throttled += 1;
                    let pause = GET_RECORDS.pause(throttled.saturating_sub(1));
                    tracing::warn!(
                        shard_id,
                        code,
                        pause_ms = pause.as_millis() as u64,
                        "GetRecords throttled; backing off"
                    );
                    if Instant::now() + pause >= stop_at {
                        return Ok(());
                    }
                    while_saving(tokio::time::sleep(pause), saving, run).await?;
                    chain = it;
                    continue;
                }
                Err(StreamError::ExpiredIterator) => {
                    tracing::info!(
                        shard_id,
                        "shard iterator expired; a new one from the checkpoint"
                    );
                    let start = self.start_of(position, child);
                    chain = self.iterator_at(at, &start, position, run).await?;
                    continue;
                }
                Err(StreamError::TrimmedData) => {
                    report_trimmed(at, position, run);
                    chain = self
                        .stream
                        .shard_iterator(at, &StartAt::TrimHorizon)
                        .await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            throttled = 0;
            empty_reads = 0;
            run.report.poller.records_read += page.records;
            run.report.poller.iterator_age_ms = run.report.poller.iterator_age_ms.max(page.age_ms);
            let ends = page.next_iterator.is_none();
            // Settling this page (its verdicts in order, findings written) overlaps reading the
            // pages after it (up to `READ_AHEAD`), their lookups, and writing the previous page's
            // checkpoint: GetRecords, lookups and the checkpoint write wait on different APIs, the
            // stream is read without waiting for lookups, and the engine's calls do not wait for
            // this page's last ones. Only lookups run ahead: a page's findings are read and
            // written after the previous page's, and if this page is not complete the pages after
            // it are dropped and read again by the next run.
            // A page's verdicts count once its checkpoint is written: a page whose checkpoint
            // fails is read, verified and counted again by the next run, never twice (nor is a
            // page verified while it failed).
            let (mut verified, mut calls) = (PollReport::default(), PollReport::default());
            let (complete, previous) = {
                let settle = async {
                    let checked = page.check.finish().await;
                    self.settle_page(checked, position, &mut calls, &mut verified)
                        .await
                };
                let previous = async {
                    match saving.take() {
                        Some(write) => Some(write.await),
                        None => None,
                    }
                };
                tokio::pin!(settle, previous);
                let (mut complete, mut saved, mut previous_done) = (None, None, false);
                while complete.is_none() || !previous_done {
                    if reading.is_none() && ahead.len() < READ_AHEAD {
                        if let Some(it) = chain.take() {
                            reading = Some(self.read(it, stream_arn, run));
                        }
                    }
                    // This page first: its lookups take the engine's permits before the next's.
                    tokio::select! {
                        biased;
                        done = &mut settle, if complete.is_none() => complete = Some(done),
                        write = &mut previous, if !previous_done => {
                            previous_done = true;
                            saved = write;
                        }
                        read = std::future::poll_fn(|cx| match &mut reading {
                            Some(reading) => reading.read.as_mut().poll(cx),
                            None => Poll::Pending,
                        }), if reading.is_some() => {
                            let Some(Reading { iterator, .. }) = reading.take() else {
                                continue;
                            };
                            ahead.push_back(match read {
                                Ok(page) if !page.records.is_empty() => {
                                    chain = page.next_iterator.clone();
                                    Ahead::Checking(self.checking(page, skip_before, deadline))
                                }
                                other => Ahead::Read { iterator, read: other },
                            });
                        }
                        () = std::future::poll_fn(|cx| poll_checks(&mut ahead, cx)),
                            if ahead.iter().any(Ahead::running) => {}
                    }
                }
                (complete == Some(true), saved)
            };
            run.report += calls;
            if let Some(previous) = previous {
                previous?.count(run);
            }
            let snapshot = position.clone();
            *saving = Some(Box::pin(async move {
                lease.write(&snapshot).await?;
                Ok(SavedPage {
                    verified,
                    at: Instant::now(),
                })
            }));
            if !complete {
                // A record without a final verdict: no reading past it (next run starts there).
                return Ok(());
            }
            if ends || reached_end(shard, position) {
                return finish_shard(lease, position, run, saving).await;
            }
        }
    }

    /// Starts a GetRecords call at `iterator`.
    fn read(&self, iterator: String, stream_arn: &str, run: &mut ShardRun) -> Reading<'_> {
        run.report.poller.get_records_calls += 1;
        let read = {
            let (stream, limit) = (&self.stream, self.config.get_records_limit);
            let (arn, at) = (stream_arn.to_owned(), iterator.clone());
            Box::pin(async move { stream.get_records(&arn, &at, limit).await })
        };
        Reading { iterator, read }
    }

    /// A page with records, its lookups started.
    fn checking(
        &self,
        page: RecordsPage,
        skip_before: Option<SystemTime>,
        deadline: Instant,
    ) -> CheckingPage<'_> {
        let read_at = SystemTime::now();
        // Records skipped as older than the start do not count: they would raise the
        // IteratorAge alarm for records nobody asked to verify.
        let age_ms = page
            .records
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|r| r.since))
            .filter(|created| skip_before.is_none_or(|start| *created >= start))
            .max()
            .map_or(0, |created| {
                read_at
                    .duration_since(created)
                    .unwrap_or_default()
                    .as_millis() as u64
            });
        CheckingPage {
            records: page.records.len() as u64,
            age_ms,
            next_iterator: page.next_iterator,
            check: Check::Running(Box::pin(self.check_page(
                page.records,
                skip_before,
                deadline,
            ))),
        }
    }

    /// A page's lookups: the engine's verdicts, nothing written. Records created before
    /// `skip_before` are not verified.
    async fn check_page(
        &self,
        records: Vec<PolledRecord>,
        skip_before: Option<SystemTime>,
        deadline: Instant,
    ) -> CheckedPage {
        let mut received = records.len() as u64;
        // The valid records go to the engine without a copy; `order` keeps the page's order.
        let mut valid = Vec::with_capacity(records.len());
        let mut order = Vec::with_capacity(records.len());
        for record in records {
            match record {
                Ok(r)
                    if skip_before
                        .zip(r.since)
                        .is_some_and(|(start, created)| created < start) =>
                {
                    received -= 1;
                    order.push(Slot::BeforeStart(r.position()));
                }
                Ok(r) => {
                    order.push(Slot::Verify);
                    valid.push(r);
                }
                Err(m) => order.push(Slot::Malformed(m)),
            }
        }
        let report = self.verifier.verify(&valid, Some(deadline)).await;
        CheckedPage {
            order,
            valid,
            report,
            received,
        }
    }

    /// Settles a checked page, in the shard's order: findings read and written, `position` moved
    /// to the last record of the final-verdict prefix. API calls are counted in `calls`, outcomes
    /// in `verified`. Returns whether every record of the page is final (records before the start
    /// are final).
    async fn settle_page(
        &self,
        checked: CheckedPage,
        position: &mut Checkpoint,
        calls: &mut PollReport,
        verified: &mut PollReport,
    ) -> bool {
        let CheckedPage {
            order,
            valid,
            mut report,
            received,
        } = checked;
        calls.verification.add_calls(&report);
        if let Some(findings) = &self.findings {
            // Read here, not beside the lookups: a page's open findings include those the
            // previous page wrote.
            let open = findings.open_findings(&valid).await;
            // A problem whose finding is not written becomes a retry: not checkpointed past.
            findings
                .write_with(
                    &valid,
                    &mut report.outcomes,
                    &report.evidence,
                    Occurrence::Stream,
                    open,
                    &mut verified.verification,
                )
                .await;
            verified.first_change_ms = VerifiedSpan::of(&valid, &report.outcomes).first_change_ms;
        }
        let mut outcomes = report.outcomes.into_iter();
        let mut valid = valid.iter();
        let mut complete = true;
        let mut sink = OutcomeSink::new(&mut verified.verification, &mut verified.records);
        for slot in order {
            let line = match slot {
                Slot::BeforeStart(seq) => {
                    // Final: checkpointed past, unless a record before it is read again anyway.
                    if complete {
                        position.sequence_number = Some(seq);
                        verified.poller.records_before_start += 1;
                    }
                    continue;
                }
                Slot::Malformed(m) => RecordReport::malformed(&m),
                Slot::Verify => match valid.next() {
                    Some(r) => RecordReport::of(r, outcomes.next().unwrap_or(Outcome::NotSampled)),
                    None => break,
                },
            };
            if complete && matches!(line.outcome, Outcome::Retry(_)) {
                complete = false;
            }
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
        verified.verification.records_received += received;
        complete
    }
}

/// Waits for `wait` while the last page's checkpoint is written (not after: its verdicts count
/// from when it is written).
async fn while_saving<T>(
    wait: impl Future<Output = T>,
    saving: &mut Option<Saving<'_>>,
    run: &mut ShardRun,
) -> Result<T, PollerError> {
    match saving.take() {
        None => Ok(wait.await),
        Some(write) => {
            let (out, saved) = tokio::join!(wait, write);
            saved?.count(run);
            Ok(out)
        }
    }
}

/// The end of a shard: marked after the last page's checkpoint, never overwritten by it.
async fn finish_shard<C: CheckpointStore>(
    lease: &HeldLease<'_, C>,
    position: &mut Checkpoint,
    run: &mut ShardRun,
    saving: &mut Option<Saving<'_>>,
) -> Result<(), PollerError> {
    if let Some(write) = saving.take() {
        write.await?.count(run);
    }
    lease.finish(position, &mut run.report.poller).await?;
    run.finished = true;
    Ok(())
}

/// Pages read ahead of the one being settled, at most (besides the one being read).
pub(super) const READ_AHEAD: usize = 2;

/// A GetRecords call under way, with its iterator (used again after throttling).
struct Reading<'a> {
    iterator: String,
    read: Pin<Box<dyn Future<Output = Result<RecordsPage, StreamError>> + Send + 'a>>,
}

/// A page read after the one being settled: a GetRecords answer without records or an error (the
/// last read ahead: the loop handles it in order), or a page whose lookups are under way.
enum Ahead<'a> {
    Read {
        iterator: String,
        read: Result<RecordsPage, StreamError>,
    },
    Checking(CheckingPage<'a>),
}

/// The next page in order.
enum Arrived<'a> {
    Read(RecordsPage),
    Checking(CheckingPage<'a>),
}

impl Ahead<'_> {
    fn running(&self) -> bool {
        matches!(
            self,
            Ahead::Checking(CheckingPage {
                check: Check::Running(_),
                ..
            })
        )
    }
}

/// Drives the lookups of the pages read ahead; ready when one of them finishes.
fn poll_checks(ahead: &mut VecDeque<Ahead<'_>>, cx: &mut Context<'_>) -> Poll<()> {
    let mut finished = false;
    for page in ahead.iter_mut() {
        if let Ahead::Checking(page) = page {
            if page.check.running() && page.check.poll_ahead(cx).is_ready() {
                finished = true;
            }
        }
    }
    if finished {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

/// A page with records whose lookups have started.
struct CheckingPage<'a> {
    records: u64,
    /// The iterator age when it was read (0 without a creation time to count from).
    age_ms: u64,
    next_iterator: Option<String>,
    check: Check<'a>,
}

/// A page's lookups, under way or done.
enum Check<'a> {
    Running(Pin<Box<dyn Future<Output = CheckedPage> + Send + 'a>>),
    Done(CheckedPage),
}

impl Check<'_> {
    fn running(&self) -> bool {
        matches!(self, Check::Running(_))
    }

    async fn finish(self) -> CheckedPage {
        match self {
            Check::Running(check) => check.await,
            Check::Done(checked) => checked,
        }
    }

    /// Drives a check that runs ahead, keeping its result for [`Check::finish`].
    fn poll_ahead(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Check::Running(check) => match check.as_mut().poll(cx) {
                Poll::Ready(checked) => {
                    *self = Check::Done(checked);
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            },
            Check::Done(_) => Poll::Ready(()),
        }
    }
}

/// A page's verdicts from the engine, not yet settled.
struct CheckedPage {
    order: Vec<Slot>,
    valid: Vec<Expectation>,
    report: BatchReport,
    /// Records to verify (all but those before the start).
    received: u64,
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

fn report_trimmed(shard: ShardRef<'_>, position: &Checkpoint, run: &mut ShardRun) {
    tracing::error!(
        stream_arn = shard.stream_arn,
        shard_id = shard.shard_id,
        after_sequence_number = position.sequence_number.as_deref().unwrap_or("-"),
        "stream records were trimmed before they could be verified; continuing from TRIM_HORIZON"
    );
    run.report.poller.records_trimmed += 1;
}

/// A record of a page, in the page's order.
enum Slot {
    /// Goes to the engine.
    Verify,
    Malformed(MalformedRecord),
    /// Created before the shard's first read at LATEST: skipped (its sequence number).
    BeforeStart(String),
}
