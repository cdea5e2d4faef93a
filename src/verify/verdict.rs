//! What the engine concludes about a record: a [`Verdict`] on proof, or a retry, and why.

use std::time::Duration;

use crate::compare::Diff;
use crate::record::Item;

/// The final word on one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The other side holds what the record says (for a REMOVE: the item is gone).
    /// `lag` is an upper bound of the replication lag: the record's age when it was seen matching
    /// (measured from where its window starts, see `LAG_WINDOW_FROM`).
    Match { lag: Duration },
    /// INSERT/MODIFY, and the item is absent on the other side.
    Missing { proof: Proof },
    /// The item is present on the other side and different.
    Mismatch { diff: Diff, proof: Proof },
    /// REMOVE, and the item is still present on the other side.
    DeleteNotApplied { proof: Proof },
    /// The item exists only on the other side (the baseline compare's second direction).
    Extra { proof: Proof },
    /// A newer change to the key exists and the other side shows it kept up with it.
    Superseded { by: Supersession },
    /// The record cannot be checked; the reason says why.
    Unverifiable { reason: String },
    /// The tables differ, but the item that counts is past its TTL (see [`super::expiry`]):
    /// DynamoDB deletes expired items at its own pace on each table, so the difference is not
    /// replication's. `instead_of` names the verdict it would have been; `ttl` is the attribute's
    /// value (epoch seconds). Counted, logged at INFO, no finding; not a MATCH either.
    Expired {
        ttl: String,
        instead_of: &'static str,
    },
}

/// What makes a negative verdict certain: which state the other side was found in, against what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Judged against the record alone (`RECHECK_SOURCE=false`, or no source table known), once
    /// the record was older than the window.
    RecordAlone,
    /// The source still holds what the record says (its image, or no item after a REMOVE), and
    /// the record is older than the window.
    SourceAsRecorded,
    /// The other side still holds the record's old image: a state this change, older than the
    /// window, replaced.
    HoldsReplacedState,
    /// The other side still holds an earlier image of the key from this batch, which this change,
    /// older than the window, replaced.
    HoldsEarlierImage { sequence_number: String },
    /// The other side has no item, while the source has had one since this change, older than the
    /// window.
    AbsentWhileSourceHasItem,
    /// The other side differs from the source's item, which stayed as read for the window.
    SourceUnchangedForWindow,
    /// The source has no item under the key, while the other side has held one for the window
    /// (the baseline compare's EXTRA).
    OnlyOnOtherSide,
}

impl Proof {
    /// A short name for log fields and metrics-free tooling.
    pub fn name(&self) -> &'static str {
        match self {
            Proof::RecordAlone => "record_alone",
            Proof::SourceAsRecorded => "source_as_recorded",
            Proof::HoldsReplacedState => "holds_replaced_state",
            Proof::HoldsEarlierImage { .. } => "holds_earlier_image",
            Proof::AbsentWhileSourceHasItem => "absent_while_source_has_item",
            Proof::SourceUnchangedForWindow => "source_unchanged_for_window",
            Proof::OnlyOnOtherSide => "only_on_other_side",
        }
    }
}

impl std::fmt::Display for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proof::RecordAlone => f.write_str("judged against the record alone (no source re-check), after the replication window"),
            Proof::SourceAsRecorded => f.write_str("the source still holds what this record says, and the record is older than the replication window"),
            Proof::HoldsReplacedState => f.write_str("the other side still holds this record's old image, a state the change replaced longer ago than the replication window"),
            Proof::HoldsEarlierImage { sequence_number } => write!(f, "the other side still holds the image of earlier record {sequence_number} in this batch, replaced longer ago than the replication window"),
            Proof::AbsentWhileSourceHasItem => f.write_str("the other side has no item while the source has had one since this record, older than the replication window"),
            Proof::SourceUnchangedForWindow => f.write_str("the other side differs from the source's item, which stayed unchanged for the replication window"),
            Proof::OnlyOnOtherSide => f.write_str("the source has no item under this key, while the other side has held one for the replication window"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supersession {
    /// A later record for the same key in this batch.
    LaterRecord { sequence_number: String },
    /// The other side already equals the source's current item (changed or deleted since this record).
    MatchesCurrentSource,
    /// The other side equals a state the source had after this record (seen while reading again).
    MatchesNewerSourceState,
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
            Supersession::MatchesNewerSourceState => {
                f.write_str("the other side equals a state the source had after this record")
            }
        }
    }
}

impl Verdict {
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Match { .. } => "MATCH",
            Verdict::Missing { .. } => "MISSING",
            Verdict::Mismatch { .. } => "MISMATCH",
            Verdict::DeleteNotApplied { .. } => "DELETE_NOT_APPLIED",
            Verdict::Extra { .. } => "EXTRA",
            Verdict::Superseded { .. } => "SUPERSEDED",
            Verdict::Unverifiable { .. } => "UNVERIFIABLE",
            Verdict::Expired { .. } => "EXPIRED",
        }
    }

    /// Whether the verdict says replication went wrong (or could not be shown right). EXPIRED does
    /// not: the difference is DynamoDB's TTL deletion.
    pub fn is_problem(&self) -> bool {
        !matches!(
            self,
            Verdict::Match { .. } | Verdict::Superseded { .. } | Verdict::Expired { .. }
        )
    }

    /// What proves a negative verdict.
    pub fn proof(&self) -> Option<&Proof> {
        match self {
            Verdict::Missing { proof }
            | Verdict::Mismatch { proof, .. }
            | Verdict::DeleteNotApplied { proof }
            | Verdict::Extra { proof } => Some(proof),
            _ => None,
        }
    }
}

/// Why a record goes back to be delivered again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryReason {
    /// Looking the key up failed (`transient`: throttling, 5xx, time-out, network).
    LookupFailed { message: String, transient: bool },
    /// Still not as the record says, within the replication window, when time ran out.
    StillReplicating { provisional: &'static str },
    /// Past the window, the other side held a state the verifier never saw on the source, which
    /// changed since this record: neither caught up nor provably behind when time ran out.
    Unsettled,
    /// The deadline margin was reached before the record could be read at all.
    OutOfTime,
    /// The verdict was a problem and its finding could not be written: judged again later, so
    /// that no finding is lost.
    FindingNotRecorded { message: String },
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
            RetryReason::Unsettled => f.write_str(
                "the other side holds a state not seen on the source, which changed since this record: neither caught up nor provably behind at the deadline",
            ),
            RetryReason::OutOfTime => {
                f.write_str("not read: the deadline margin was reached first")
            }
            RetryReason::FindingNotRecorded { message } => {
                write!(f, "the finding could not be recorded: {message}")
            }
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
