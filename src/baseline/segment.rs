//! One segment of the baseline: both tables' scans read side by side and merged by key
//! ([`super::merge`]). An item both scans read alike is a MATCH from the scans alone; every other
//! key (the items differ, or one scan did not read it) goes through the engine as before: the
//! window, consistent reads of both sides, the source read again. So equal tables cost one Scan
//! of each, and only differences cost point reads.
//!
//! Progress is saved when nothing waits in the merge (both scans' positions in one write), so a
//! killed run verifies again at most what was read since, and counts every item once. When the
//! scans' orders disagree and something always waits, it is settled by point reads every
//! [`PAGES_PER_SAVE`] pages so that progress can still be saved.

use tokio::time::Instant;

use super::merge::{Merged, SegmentMerge, Side};
use super::{tally, Baseline, BaselineError, SegmentWork};
use crate::ports::checkpoint::{BaselineCounts, BaselineStore, Direction, SegmentProgress};
use crate::ports::findings::FindingsStore;
use crate::ports::scan::{ScanPage, TableScanner};
use crate::ports::table::TableReader;
use crate::record::{Expectation, Expected, Image, ItemKey, Origin};
use crate::report::{OutcomeSink, RecordReport};
use crate::shared::epoch_ms;
use crate::verify::{Outcome, Verdict};

/// How stale an eventually consistent Scan may be: DynamoDB documents its reads as usually
/// consistent within a second. A MATCH from the two scans alone rests on states that may be this
/// much older than the scan calls, so it resolves only the findings recorded before that.
const SCAN_STALENESS_MS: u64 = 5_000;

/// An item as a scan read it, and when that scan call began.
struct Scanned {
    image: Image,
    read_from_ms: u64,
}

/// Pages read with something always waiting in the merge, after which it is settled by point
/// reads so that the segment's progress can be saved.
pub const PAGES_PER_SAVE: u32 = 4;

/// Where a segment's two scans stand.
struct MergedScan {
    merge: SegmentMerge<ItemKey, Scanned>,
    /// Both scans' positions and counts, everything before them read and settled or waiting.
    at: SegmentProgress,
    /// Pages read since progress was last saved.
    pages: u32,
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
            at: progress,
            pages: 0,
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
            let Some(pages) = self.next_pages(work, &scan.at).await? else {
                break;
            };
            scan.take(pages, observed_from_ms, &sorted_keys, &mut settled);
            if scan.merge.pending() > 0 && scan.pages >= PAGES_PER_SAVE {
                scan.merge.settle_all(&mut settled);
            }
            let round = self.sort_settled(std::mem::take(&mut settled), key_names);
            let Some(counts) = self.judge(work, round, observed_from_ms, sink).await? else {
                break;
            };
            scan.count(counts);
            if scan.merge.pending() == 0 {
                self.store
                    .save_segment(work.run_id, work.segment, &scan.at)
                    .await?;
                saved = scan.at.clone();
                (work.on_page)(&std::mem::take(&mut scan.unsaved));
                scan.pages = 0;
            }
        }
        Ok(saved)
    }

    /// The next page of each scan not yet at its end, both at once; `None` when time ran out.
    async fn next_pages(
        &self,
        work: &SegmentWork<'_>,
        at: &SegmentProgress,
    ) -> Result<Option<[Option<ScanPage>; 2]>, BaselineError> {
        let read = |direction: Direction| async move {
            let cursor = at.cursor(direction);
            if cursor.done {
                return Ok(Some(None));
            }
            let (scanner, table) = self.scanned(direction);
            let request = work.page(table, cursor, self.config.page_limit);
            Ok::<_, BaselineError>(self.scan(scanner, request, work.stop_at).await?.map(Some))
        };
        let (source, other) = tokio::try_join!(read(Direction::Source), read(Direction::Target))?;
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

impl MergedScan {
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
                    let scanned = Scanned {
                        image,
                        read_from_ms,
                    };
                    self.merge.push(side, key, scanned, out);
                }
            }
        }
        self.pages += 1;
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
