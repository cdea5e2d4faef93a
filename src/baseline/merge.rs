//! Two tables' scans of one segment matched by key as they arrive (issue 29's merged compare).
//!
//! Segment *n* of a parallel Scan holds the same keys in the same order on two tables with one key
//! schema (measured on DynamoDB Local; AWS's own bulk diff relies on it on DynamoDB). The merge
//! uses that order without trusting it: each side's items wait (pending) until the other side's
//! scan reads the same key or shows that it passed it, and correctness never depends on the
//! order, only the cost does.
//!
//! - A key read by both scans is [`Merged::Both`]: the caller compares the two items.
//! - When a key matches, the other side's scan has passed every item still pending before it on
//!   both sides (if the orders agree): those are settled as one-sided, and the caller's point reads
//!   decide them (a key the other side does hold, after all, is then a MATCH, only dearer).
//! - Past `limit` pending items, the oldest are settled as one-sided the same way, so memory is
//!   bounded whatever the orders; once a side's scan has ended, nothing of the other side waits.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// One of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Other,
}

impl Side {
    /// Its place in per-side arrays: the source first.
    pub fn index(self) -> usize {
        match self {
            Side::Source => 0,
            Side::Other => 1,
        }
    }
}

/// A key the merge has settled.
#[derive(Debug, PartialEq)]
pub enum Merged<T> {
    /// Both scans read the key.
    Both { source: T, other: T },
    /// Only one side's scan read the key, as far as the other's went: point reads decide.
    OneSided { side: Side, item: T },
}

/// One side's items read and not yet settled, in scan order. Items leave from the front only (a
/// match settles everything pending before it), so a key's place is its number in the scan.
struct Pending<K, T> {
    order: VecDeque<(K, T)>,
    /// Each pending key's number in the scan.
    at: HashMap<K, u64>,
    /// The number of `order`'s front.
    first: u64,
    ended: bool,
}

impl<K: Hash + Eq + Clone, T> Pending<K, T> {
    fn new() -> Self {
        Pending {
            order: VecDeque::new(),
            at: HashMap::new(),
            first: 0,
            ended: false,
        }
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn push(&mut self, key: K, item: T) {
        self.at
            .insert(key.clone(), self.first + self.order.len() as u64);
        self.order.push_back((key, item));
    }

    /// The pending item under `key`, and every item pending before it.
    fn take_through(&mut self, key: &K) -> Option<(T, Vec<T>)> {
        let position = self.at.get(key)?;
        let before = (position - self.first) as usize;
        let mut passed: Vec<T> = Vec::with_capacity(before);
        for _ in 0..before {
            passed.extend(self.pop_oldest());
        }
        self.pop_oldest().map(|matched| (matched, passed))
    }

    fn pop_oldest(&mut self) -> Option<T> {
        let (key, item) = self.order.pop_front()?;
        self.first += 1;
        self.at.remove(&key);
        Some(item)
    }

    fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.at.clear();
        self.first += self.order.len() as u64;
        self.order.drain(..).map(|(_, item)| item)
    }
}

/// The merge of one segment's two scans.
pub struct SegmentMerge<K, T> {
    sides: [Pending<K, T>; 2],
    /// At most this many items pending on both sides together.
    limit: usize,
}

impl<K: Hash + Eq + Clone, T> SegmentMerge<K, T> {
    /// A merge holding at most `limit` pending items (at least one).
    pub fn new(limit: usize) -> Self {
        SegmentMerge {
            sides: [Pending::new(), Pending::new()],
            limit: limit.max(1),
        }
    }

    /// An item `side`'s scan read; what it settles is appended to `out`.
    pub fn push(&mut self, side: Side, key: K, item: T, out: &mut Vec<Merged<T>>) {
        let (mine, theirs) = self.split(side);
        match theirs.take_through(&key) {
            Some((matched, passed)) => {
                // The other scan read `key` after every item in `passed`, and this scan reached
                // `key` after every item of its own still pending: neither is on the other side
                // (if the orders agree).
                let other_side = opposite(side);
                out.extend(passed.into_iter().map(|item| Merged::OneSided {
                    side: other_side,
                    item,
                }));
                out.extend(mine.drain().map(|item| Merged::OneSided { side, item }));
                out.push(both(side, item, matched));
            }
            None if theirs.ended => out.push(Merged::OneSided { side, item }),
            None => {
                mine.push(key, item);
                self.shed(out);
            }
        }
    }

    /// `side`'s scan read its last page: the other side's pending items wait for nothing more.
    pub fn end(&mut self, side: Side, out: &mut Vec<Merged<T>>) {
        let (mine, theirs) = self.split(side);
        mine.ended = true;
        let other_side = opposite(side);
        out.extend(theirs.drain().map(|item| Merged::OneSided {
            side: other_side,
            item,
        }));
        if theirs.ended {
            out.extend(mine.drain().map(|item| Merged::OneSided { side, item }));
        }
    }

    /// Items waiting for the other side's scan, on both sides.
    pub fn pending(&self) -> usize {
        self.sides[0].len() + self.sides[1].len()
    }

    /// Items of `side` waiting for the other side's scan.
    pub fn pending_on(&self, side: Side) -> usize {
        self.sides[side.index()].len()
    }

    /// Settles the oldest pending items, of the side holding more, while more than `limit` wait.
    fn shed(&mut self, out: &mut Vec<Merged<T>>) {
        while self.pending() > self.limit {
            let side = if self.sides[0].len() >= self.sides[1].len() {
                Side::Source
            } else {
                Side::Other
            };
            match self.sides[side.index()].pop_oldest() {
                Some(item) => out.push(Merged::OneSided { side, item }),
                None => break,
            }
        }
    }

    fn split(&mut self, side: Side) -> (&mut Pending<K, T>, &mut Pending<K, T>) {
        let [source, other] = &mut self.sides;
        match side {
            Side::Source => (source, other),
            Side::Other => (other, source),
        }
    }
}

fn opposite(side: Side) -> Side {
    match side {
        Side::Source => Side::Other,
        Side::Other => Side::Source,
    }
}

fn both<T>(side: Side, item: T, matched: T) -> Merged<T> {
    match side {
        Side::Source => Merged::Both {
            source: item,
            other: matched,
        },
        Side::Other => Merged::Both {
            source: matched,
            other: item,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Out = Vec<Merged<(char, u32)>>;

    /// Merges two scans, one item of each side in turn, and returns what was settled and the
    /// most items that were pending at once.
    fn merge(source: &[u32], other: &[u32], limit: usize) -> (Out, usize) {
        let (out, most, _) = merge_watching(source, other, limit);
        (out, most)
    }

    /// [`merge`], and the most items left pending, on the side that read it, right after a key
    /// matched.
    fn merge_watching(source: &[u32], other: &[u32], limit: usize) -> (Out, usize, usize) {
        let mut merge = SegmentMerge::new(limit);
        let mut out = Vec::new();
        let (mut most, mut after_match) = (0, 0);
        let sides = [(Side::Source, source, 's'), (Side::Other, other, 'o')];
        for (side, keys, _) in sides {
            if keys.is_empty() {
                merge.end(side, &mut out);
            }
        }
        for i in 0..source.len().max(other.len()) {
            for (side, keys, tag) in sides {
                if let Some(&k) = keys.get(i) {
                    let settled = out.len();
                    merge.push(side, k, (tag, k), &mut out);
                    most = most.max(merge.pending());
                    if out[settled..]
                        .iter()
                        .any(|m| matches!(m, Merged::Both { .. }))
                    {
                        after_match = after_match.max(merge.pending_on(side));
                    }
                    if i + 1 == keys.len() {
                        merge.end(side, &mut out);
                    }
                }
            }
        }
        assert_eq!(merge.pending(), 0, "nothing waits once both scans ended");
        (out, most, after_match)
    }

    fn one_sided(out: &Out, side: Side) -> Vec<u32> {
        out.iter()
            .filter_map(|m| match m {
                Merged::OneSided { side: s, item } if *s == side => Some(item.1),
                _ => None,
            })
            .collect()
    }

    fn both_keys(out: &Out) -> Vec<u32> {
        out.iter()
            .filter_map(|m| match m {
                Merged::Both { source, other } => {
                    assert_eq!((source.0, other.0), ('s', 'o'), "each side in its place");
                    assert_eq!(source.1, other.1, "one key");
                    Some(source.1)
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn two_scans_in_one_order_match_every_key_with_one_item_pending_at_most() {
        let keys: Vec<u32> = (0..1000).collect();
        let (out, most) = merge(&keys, &keys, 100);
        assert_eq!(both_keys(&out), keys);
        assert!(one_sided(&out, Side::Source).is_empty());
        assert!(one_sided(&out, Side::Other).is_empty());
        assert_eq!(most, 1);
    }

    #[test]
    fn a_key_one_scan_lacks_is_settled_one_sided_when_the_next_common_key_matches() {
        let (out, _) = merge(&[1, 2, 3, 4, 5], &[1, 3, 4, 9, 5], 100);
        assert_eq!(both_keys(&out), [1, 3, 4, 5]);
        assert_eq!(one_sided(&out, Side::Source), [2]);
        assert_eq!(one_sided(&out, Side::Other), [9]);
    }

    #[test]
    fn keys_after_the_other_scan_ended_are_one_sided_at_once() {
        let (out, most) = merge(&[1, 2], &[1, 2, 3, 4, 5], 100);
        assert_eq!(both_keys(&out), [1, 2]);
        assert_eq!(one_sided(&out, Side::Other), [3, 4, 5]);
        assert!(most <= 1);
    }

    #[test]
    fn scans_in_opposite_orders_stay_within_the_limit_and_settle_every_key_once_per_side() {
        let source: Vec<u32> = (0..500).collect();
        let other: Vec<u32> = (0..500).rev().collect();
        let (out, most) = merge(&source, &other, 50);
        assert!(most <= 50, "pending stayed within the limit: {most}");
        let mut seen_source = both_keys(&out);
        seen_source.extend(one_sided(&out, Side::Source));
        seen_source.sort();
        assert_eq!(seen_source, source);
        let mut seen_other = both_keys(&out);
        seen_other.extend(one_sided(&out, Side::Other));
        seen_other.sort();
        assert_eq!(seen_other, source);
    }

    /// Each side settled exactly its own keys once, and `Both` only for keys both sides hold.
    fn assert_each_key_settled_once(source: &[u32], other: &[u32], out: &Out) {
        let sorted = |mut v: Vec<u32>| {
            v.sort_unstable();
            v
        };
        let both = both_keys(out);
        let mut source_side = both.clone();
        source_side.extend(one_sided(out, Side::Source));
        let mut other_side = both;
        other_side.extend(one_sided(out, Side::Other));
        assert_eq!(sorted(source_side), sorted(source.to_vec()));
        assert_eq!(sorted(other_side), sorted(other.to_vec()));
    }

    /// Distinct keys, shuffled or kept in order, each side a random part of them.
    fn scans(same_order: bool) -> impl proptest::strategy::Strategy<Value = (Vec<u32>, Vec<u32>)> {
        use proptest::prelude::*;
        (
            proptest::collection::btree_set(0u32..400, 0..120),
            any::<u64>(),
        )
            .prop_map(move |(keys, seed)| {
                let mut rng = fastrand::Rng::with_seed(seed);
                let keys: Vec<u32> = keys.into_iter().collect();
                let mut pick = |keys: &[u32]| -> Vec<u32> {
                    let mut part: Vec<u32> =
                        keys.iter().copied().filter(|_| rng.u8(..) < 220).collect();
                    if !same_order {
                        rng.shuffle(&mut part);
                    }
                    part
                };
                (pick(&keys), pick(&keys))
            })
    }

    proptest::proptest! {
        #[test]
        fn any_two_scans_settle_every_key_once_per_side_within_the_limit(
            (source, other) in scans(false),
            limit in 1usize..40,
        ) {
            let (out, most) = merge(&source, &other, limit);
            proptest::prop_assert!(most <= limit);
            assert_each_key_settled_once(&source, &other, &out);
        }

        #[test]
        fn scans_in_one_order_settle_no_common_key_one_sided(
            (source, other) in scans(true),
        ) {
            let (out, _, after_match) = merge_watching(&source, &other, usize::MAX);
            assert_each_key_settled_once(&source, &other, &out);
            // A match shows where both scans are: nothing the matching scan read before it waits
            // any longer (the other scan may be ahead, its items after the match still waiting).
            proptest::prop_assert_eq!(after_match, 0);
            for key in one_sided(&out, Side::Source) {
                proptest::prop_assert!(!other.contains(&key), "{key} is on both sides");
            }
            for key in one_sided(&out, Side::Other) {
                proptest::prop_assert!(!source.contains(&key), "{key} is on both sides");
            }
        }
    }
}
