//! The coverage ledger read as one chain: which verifiers' coverage of the table's current stream
//! links, without a gap, from before the baseline began to the newest change verified.
//!
//! Each entry (one verifier on one stream) is usable from the later of its first change and its
//! last gap, to its `verifiedUntil`. Entries link only where they meet: the next one must be
//! usable from no later than the chain has reached. Every time compared across machines carries
//! the clock margin, always on the strict side: a start must be earlier than the baseline's by the
//! margin, a link must overlap by the margin.

use crate::ports::findings::{Coverage, Gap};

/// How creation times are rounded down: DynamoDB to the second, DynamoDB Local to the minute. A
/// creation time on a whole minute may have been cut to it, so it counts from the minute's end.
const SECOND_MS: u64 = 1000;
const MINUTE_MS: u64 = 60 * SECOND_MS;

/// The latest moment a change whose creation time reads `created_ms` may have been made.
pub fn creation_end(created_ms: u64) -> u64 {
    if created_ms.is_multiple_of(MINUTE_MS) {
        created_ms + MINUTE_MS
    } else if created_ms.is_multiple_of(SECOND_MS) {
        created_ms + SECOND_MS
    } else {
        created_ms
    }
}

/// One entry's usable stretch of coverage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link<'a> {
    pub entry: &'a Coverage,
    /// Changes from here on are verified (the end of the first change's second or minute, or the
    /// entry's last gap, whichever is later).
    pub from_ms: u64,
    pub until_ms: u64,
    /// The gap that moved `from_ms`, if one did.
    pub after_gap: Option<&'a Gap>,
}

impl<'a> Link<'a> {
    /// The entry's usable stretch, with its gaps (`with_gaps`) or as if it had none; `None` when it
    /// has verified nothing yet.
    pub fn of(entry: &'a Coverage, with_gaps: bool) -> Option<Link<'a>> {
        let started = creation_end(entry.started_at_ms?);
        let until_ms = entry.verified_until_ms?;
        let last_gap = entry
            .gaps
            .iter()
            .filter(|_| with_gaps)
            .max_by_key(|g| g.at_ms);
        let (from_ms, after_gap) = match last_gap {
            Some(gap) if gap.at_ms > started => (gap.at_ms, Some(gap)),
            _ => (started, None),
        };
        Some(Link {
            entry,
            from_ms,
            until_ms,
            after_gap,
        })
    }
}

/// Where a chain from the baseline's start ends, or why it cannot begin.
#[derive(Debug, Clone, PartialEq)]
pub enum Chain<'a> {
    /// Linked from before the baseline began to `reach_ms`; `hole` is the first coverage after
    /// `reach_ms` that does not link (a stretch nobody verified lies between).
    Linked {
        links: Vec<Link<'a>>,
        reach_ms: u64,
        hole: Option<Link<'a>>,
    },
    /// No entry is usable from before the baseline began; `earliest` is the one usable first.
    StartsLate { earliest: Option<Link<'a>> },
}

impl Chain<'_> {
    /// Linked from before the baseline with no coverage beyond a hole.
    pub fn is_whole(&self) -> bool {
        matches!(self, Chain::Linked { hole: None, .. })
    }
}

/// The chain of `links` from `baseline_ms`, each meeting the next by `skew_ms`.
pub fn link<'a>(links: &[Link<'a>], baseline_ms: u64, skew_ms: u64) -> Chain<'a> {
    let starts_by = |l: &Link<'_>, at: u64| l.from_ms.saturating_add(skew_ms) <= at;
    let Some(first) = links
        .iter()
        .filter(|l| starts_by(l, baseline_ms))
        .max_by_key(|l| l.until_ms)
    else {
        return Chain::StartsLate {
            earliest: links.iter().min_by_key(|l| l.from_ms).copied(),
        };
    };
    let mut chain = vec![*first];
    let mut reach = first.until_ms;
    while let Some(next) = links
        .iter()
        .filter(|l| l.until_ms > reach && starts_by(l, reach))
        .max_by_key(|l| l.until_ms)
    {
        chain.push(*next);
        reach = next.until_ms;
    }
    let hole = links
        .iter()
        .filter(|l| l.until_ms > reach)
        .min_by_key(|l| l.from_ms)
        .copied();
    Chain::Linked {
        links: chain,
        reach_ms: reach,
        hole,
    }
}
