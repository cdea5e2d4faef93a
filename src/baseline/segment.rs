//! One segment of the baseline: both tables' scans read side by side and merged by key
//! ([`super::merge`]). An item both scans read alike is a MATCH from the scans alone; every other
//! key (the items differ, or one scan did not read it) goes through the engine as before: the
//! window, consistent reads of both sides, the source read again. So equal tables cost one Scan
//! of each, and only differences cost point reads.
//!
//! Progress is saved after every round (both scans' positions and counts in one write). Items
//! waiting in the merge are a suffix of their scan (a match settles everything its side read
//! before it), so each scan's saved position is the key of its last settled item: a killed run
//! reads the waiting items again, verifies again at most what it read since the save, and counts
//! every item once. A scan whose items wait for the other is not read further until the other
//! catches up, so the two stay within about a page of each other whatever the pages hold.

use tokio::time::Instant;

use super::merge::{Merged, SegmentMerge, Side};
use super::{tally, Baseline, BaselineError, SegmentWork};
use crate::ports::checkpoint::{BaselineCounts, BaselineStore, Direction, SegmentProgress};
use crate::ports::findings::FindingsStore;
use crate::ports::scan::{ScanPage, TableScanner};
use crate::ports::table::TableReader;
use crate::record::{Expectation, Expected, Image, Item, ItemKey, Origin};
use crate::report::{OutcomeSink, RecordReport};
use crate::shared::epoch_ms;
use crate::verify::{Outcome, Verdict};

/// How stale an eventually consistent Scan may be: DynamoDB documents its reads as usually
/// consistent within a second. A MATCH from the two scans alone rests on states that may be this
/// much older than the scan calls, so it resolves only the findings recorded before that.
const SCAN_STALENESS_MS: u64 = 5_000;

/// An item as a scan read it: when that scan call began, and its place in its scan (counted
/// from where this call resumed).
struct Scanned {
    image: Image,
    read_from_ms: u64,
    place: u64,
}

/// Where a segment's two scans stand.
struct MergedScan {
    merge: SegmentMerge<ItemKey, Scanned>,
    /// Both scans' positions and counts: everything before them read, and settled or waiting.
    at: SegmentProgress,
    /// Items each scan has read since this call resumed.
    read: [u64; 2],
    /// Each scan's last settled item (its place, its key): where it resumes while items wait.
    last_settled: [Option<(u64, Item)>; 2],
    /// Where each scan resumed in this call: where it resumes while nothing of it is settled.
    resumed_at: [Option<Item>; 2],
    /// What was judged since progress was last saved.
    unsaved: BaselineCounts,
}

/// What a round of the merge settled, ready for the engine and the counters.
#[derive(Default)]
struct Settled {
    /// Keys both scans read alike: MATCH, no further read.
    alike: Vec<Expectation>,
    /// Source items the engine checks against the other side.
    forward: Vec<Expectation>,
    /// Keys only the other side's scan read: the engine looks for them on the source.
    reverse: Vec<Expectation>,
    /// Items of the other side read, whose key the source's scan also read.
    other_side_items: u64,
    /// Each scan's settled item read last (its place, its key).
    last: [Option<(u64, Item)>; 2],
}

impl<R, S, B, F> Baseline<R, S, B, F>
where
    R: TableReader + Clone,
    S: TableScanner,
    B: BaselineStore,
    F: FindingsStore,
{
    /// Both scans of a segment from `progress` until done or out of time; returns the progress
    /// saved.
    pub(super) async fn run_merged(
        &self,
        work: &SegmentWork<'_>,
        key_names: &[String],
        progress: SegmentProgress,
        sink: &mut OutcomeSink<'_>,
    ) -> Result<SegmentProgress, BaselineError> {
        let mut sorted_keys = key_names.to_vec();
        sorted_keys.sort();
        let mut saved = progress.clone();
        let mut scan = MergedScan {
            merge: SegmentMerge::new(self.config.pending_limit),
            resumed_at: [
                progress.source.start_key.clone(),
                progress.target.start_key.clone(),
            ],
            at: progress,
            read: [0, 0],
            last_settled: [None, None],
            unsaved: BaselineCounts::default(),
        };
        let mut settled = Vec::new();
        scan.end_finished_sides(&mut settled);
        while !(scan.at.source.done && scan.at.target.done) {
            if work.stop_at.is_some_and(|s| Instant::now() >= s) {
                break;
            }
            // States are observed no earlier than the scan calls: a MATCH among them resolves no
            // finding seen after it.
            let observed_from_ms = epoch_ms();
            let wanted = scan.wanted();
            let Some(pages) = self.next_pages(work, &scan.at, wanted).await? else {
                break;
            };
            scan.take(pages, observed_from_ms, &sorted_keys, &mut settled);
            let round = self.sort_settled(std::mem::take(&mut settled), key_names);
            scan.note_settled(&round.last);
            let Some(counts) = self.judge(work, round, observed_from_ms, sink).await? else {
                break;
            };
            scan.count(counts);
            let durable = scan.durable();
            self.store
                .save_segment(work.run_id, work.segment, &durable)
                .await?;
            saved = durable;
            (work.on_page)(&std::mem::take(&mut scan.unsaved));
        }
        Ok(saved)
    }

    /// The next page of each scan `wanted` and not yet at its end, both at once; `None` when
    /// time ran out.
    async fn next_pages(
        &self,
        work: &SegmentWork<'_>,
        at: &SegmentProgress,
        wanted: [bool; 2],
    ) -> Result<Option<[Option<ScanPage>; 2]>, BaselineError> {
        let read = |direction: Direction, wanted: bool| async move {
            let cursor = at.cursor(direction);
            if cursor.done || !wanted {
                return Ok(Some(None));
            }
            let (scanner, table) = self.scanned(direction);
            let request = work.page(table, cursor, self.config.page_limit);
            Ok::<_, BaselineError>(self.scan(scanner, request, work.stop_at).await?.map(Some))
        };
        let (source, other) = tokio::try_join!(
            read(Direction::Source, wanted[0]),
            read(Direction::Target, wanted[1])
        )?;
        Ok(source.zip(other).map(|(source, other)| [source, other]))
    }

    /// What the merge settled, sorted for the engine: items read alike, source items to check,
    /// keys only the other side's scan read.
    fn sort_settled(&self, merged: Vec<Merged<Scanned>>, key_names: &[String]) -> Settled {
        let ignore = &self.config.verify.ignore_attributes;
        let now = std::time::SystemTime::now();
        // Each direction's "source" is the table its expectations come from (read again before a
        // negative verdict): the other side's table for the keys only it holds. The engine's
        // window starts now, after the scans.
        let expectation = |keys, expected, direction, since| Expectation {
            keys,
            expected,
            since: Some(since),
            source_table: Some(self.scanned(direction).1.to_string()),
            origin: Origin::Scan,
        };
        let mut settled = Settled::default();
        for item in merged {
            match item {
                Merged::Both { source, other } => {
                    settled.other_side_items += 1;
                    let keys = source.image.key_item(key_names);
                    settled.saw(Side::Source, source.place, &keys);
                    settled.saw(Side::Other, other.place, &keys);
                    if source.image.same_as(&other.image, ignore) {
                        // Observed when the earlier scan began, less what it may have missed.
                        let read_ms = source.read_from_ms.min(other.read_from_ms);
                        let observed = std::time::UNIX_EPOCH
                            + std::time::Duration::from_millis(
                                read_ms.saturating_sub(SCAN_STALENESS_MS),
                            );
                        let expected = Expected::Image(source.image);
                        let alike = expectation(keys, expected, Direction::Source, observed);
                        settled.alike.push(alike);
                    } else {
                        let expected = Expected::Image(source.image);
                        let differs = expectation(keys, expected, Direction::Source, now);
                        settled.forward.push(differs);
                    }
                }
                Merged::OneSided {
                    side: Side::Source,
                    item,
                } => {
                    let keys = item.image.key_item(key_names);
                    settled.saw(Side::Source, item.place, &keys);
                    let expected = Expected::Image(item.image);
                    settled
                        .forward
                        .push(expectation(keys, expected, Direction::Source, now));
                }
                Merged::OneSided {
                    side: Side::Other,
                    item,
                } => {
                    let keys = item.image.key_item(key_names);
                    settled.saw(Side::Other, item.place, &keys);
                    let expected = Expected::Present;
                    settled
                        .reverse
                        .push(expectation(keys, expected, Direction::Target, now));
                }
            }
        }
        settled
    }

    /// Verdicts for what a round settled, findings recorded, every verdict reported; the counts
    /// of each direction, or `None` when time ran out first (the round is read again next time).
    async fn judge(
        &self,
        work: &SegmentWork<'_>,
        round: Settled,
        observed_from_ms: u64,
        sink: &mut OutcomeSink<'_>,
    ) -> Result<Option<[BaselineCounts; 2]>, BaselineError> {
        let mut forward_metrics = Default::default();
        let mut reverse_metrics = Default::default();
        let (forward, reverse) = tokio::try_join!(
            self.verify_page(
                &self.forward,
                &round.forward,
                work.stop_at,
                &mut forward_metrics
            ),
            self.verify_page(
                &self.reverse,
                &round.reverse,
                work.stop_at,
                &mut reverse_metrics
            ),
        )?;
        *sink.metrics() += forward_metrics;
        *sink.metrics() += reverse_metrics;
        let (Some(forward), Some(reverse)) = (forward, reverse) else {
            return Ok(None);
        };
        let point_reads = [round.forward.len() as u64, round.reverse.len() as u64];
        let (mut source_counts, mut reported, mut outcomes) =
            tally(Direction::Source, round.forward, forward);
        let (mut other_counts, reverse_reported, reverse_outcomes) =
            tally(Direction::Target, round.reverse, reverse);
        let alike = round.alike.len() as u64;
        source_counts.items_source += alike;
        source_counts.matched += alike;
        source_counts.point_reads += point_reads[0];
        other_counts.items_target += round.other_side_items;
        other_counts.point_reads += point_reads[1];
        outcomes.extend(round.alike.iter().map(|_| {
            Outcome::Verdict(Verdict::Match {
                lag: std::time::Duration::ZERO,
            })
        }));
        reported.extend(round.alike);
        reported.extend(reverse_reported);
        outcomes.extend(reverse_outcomes);
        let metrics = sink.metrics();
        if !self
            .write_findings(work, &reported, &mut outcomes, observed_from_ms, metrics)
            .await
        {
            return Ok(None);
        }
        for (expectation, outcome) in reported.iter().zip(outcomes) {
            sink.accept_with(outcome, |outcome| RecordReport::of(expectation, outcome));
        }
        Ok(Some([source_counts, other_counts]))
    }
}

impl Settled {
    /// Keeps `keys` as `side`'s last settled item if it was read after the one kept.
    fn saw(&mut self, side: Side, place: u64, keys: &Item) {
        let last = &mut self.last[side.index()];
        if last.as_ref().is_none_or(|(kept, _)| *kept < place) {
            *last = Some((place, keys.clone()));
        }
    }
}

impl MergedScan {
    /// Which scans to read next: not one whose items wait while the other's do not (it is ahead;
    /// reading it further would only add to what waits).
    fn wanted(&self) -> [bool; 2] {
        let waiting = [
            self.merge.pending_on(Side::Source),
            self.merge.pending_on(Side::Other),
        ];
        // A scan at its end has nothing more to catch up with.
        let ended = [self.at.source.done, self.at.target.done];
        [
            !(waiting[0] > 0 && waiting[1] == 0 && !ended[1]),
            !(waiting[1] > 0 && waiting[0] == 0 && !ended[0]),
        ]
    }

    /// The round's last settled items, kept where they were read later than those kept.
    fn note_settled(&mut self, last: &[Option<(u64, Item)>; 2]) {
        for (kept, new) in self.last_settled.iter_mut().zip(last) {
            if let Some((place, keys)) = new {
                if kept.as_ref().is_none_or(|(at, _)| at < place) {
                    *kept = Some((*place, keys.clone()));
                }
            }
        }
    }

    /// The progress to save: each scan with items waiting resumes after its last settled item
    /// (they are a suffix of what it read), so that they are read again; its counts hold only
    /// settled items already.
    fn durable(&self) -> SegmentProgress {
        let mut progress = self.at.clone();
        for (side, direction) in [
            (Side::Source, Direction::Source),
            (Side::Other, Direction::Target),
        ] {
            if self.merge.pending_on(side) > 0 {
                let i = side.index();
                let cursor = progress.cursor_mut(direction);
                cursor.done = false;
                cursor.start_key = match &self.last_settled[i] {
                    Some((_, keys)) => Some(keys.clone()),
                    None => self.resumed_at[i].clone(),
                };
            }
        }
        progress
    }

    /// A scan already at its end (a resumed segment) has nothing more for the other to wait for.
    fn end_finished_sides(&mut self, settled: &mut Vec<Merged<Scanned>>) {
        for (side, done) in [
            (Side::Source, self.at.source.done),
            (Side::Other, self.at.target.done),
        ] {
            if done {
                self.merge.end(side, settled);
            }
        }
    }

    /// Two pages into the merge, one item of each in turn (so that, when the orders agree, items
    /// wait for less than a page), and each scan's position past its page.
    fn take(
        &mut self,
        pages: [Option<ScanPage>; 2],
        read_from_ms: u64,
        sorted_keys: &[String],
        out: &mut Vec<Merged<Scanned>>,
    ) {
        let [mut source, mut other] = pages;
        let items_of = |page: &mut Option<ScanPage>| {
            page.as_mut()
                .map(|p| std::mem::take(&mut p.items))
                .unwrap_or_default()
                .into_iter()
        };
        let (mut source_items, mut other_items) = (items_of(&mut source), items_of(&mut other));
        loop {
            let (a, b) = (source_items.next(), other_items.next());
            if a.is_none() && b.is_none() {
                break;
            }
            for (side, item) in [(Side::Source, a), (Side::Other, b)] {
                if let Some(image) = item {
                    let key = image.project(sorted_keys);
                    let place = &mut self.read[side.index()];
                    *place += 1;
                    let scanned = Scanned {
                        image,
                        read_from_ms,
                        place: *place,
                    };
                    self.merge.push(side, key, scanned, out);
                }
            }
        }
        for (side, direction, page) in [
            (Side::Source, Direction::Source, source),
            (Side::Other, Direction::Target, other),
        ] {
            let Some(page) = page else { continue };
            let cursor = self.at.cursor_mut(direction);
            cursor.done = page.last_evaluated_key.is_none();
            cursor.start_key = page.last_evaluated_key;
            if cursor.done {
                self.merge.end(side, out);
            }
        }
    }

    /// A round's counts, into both scans' positions and what is not yet saved.
    fn count(&mut self, [source, other]: [BaselineCounts; 2]) {
        self.at.source.counts += source;
        self.at.target.counts += other;
        self.unsaved += source;
        self.unsaved += other;
    }
}
