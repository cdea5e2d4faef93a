//! What a repair writes for one finding, from what both sides hold now (read consistently): a
//! pure decision, so every rule is a unit test. The rules, in the order they apply:
//! - the source's item is written only while the source has one: a finding never resurrects a
//!   deleted item (a MISSING of an item deleted since is left to revalidation, which finds it
//!   SUPERSEDED or resolved);
//! - an item is deleted on the other side only while the source has none;
//! - nothing is written when the other side already holds what the source holds;
//! - an item past its TTL in the source is not copied (DynamoDB deletes it on its own);
//! - every write is conditional on the other side still holding what was just read: absent, the
//!   key not existing; present, every attribute as read and the put item's other names still
//!   absent, or, for an item too large for that condition, its version attribute
//!   (`REPAIR_VERSION_ATTRIBUTE`) as read.

use crate::compare::items_equal;
use crate::ports::table::{Condition, WriteAction};
use crate::record::Item;

/// What a finding's verdict asks of a repair, before anything is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// MISSING, MISMATCH: the source's current item written to the other side.
    Put,
    /// DELETE_NOT_APPLIED, and EXTRA with `--delete-extra`: the other side's item deleted.
    Delete,
    /// Never touched, and why.
    Untouched(Skip),
}

impl Plan {
    /// The plan for a finding's verdict.
    pub fn of(verdict: &str, delete_extra: bool) -> Plan {
        match verdict {
            "MISSING" | "MISMATCH" => Plan::Put,
            "DELETE_NOT_APPLIED" => Plan::Delete,
            "EXTRA" if delete_extra => Plan::Delete,
            "EXTRA" => Plan::Untouched(Skip::ExtraNeedsFlag),
            "UNVERIFIABLE" => Plan::Untouched(Skip::Unverifiable),
            _ => Plan::Untouched(Skip::UnknownVerdict),
        }
    }

    /// `put`, `delete` or `none`, as the audit trail and the plan say it.
    pub fn action(self) -> &'static str {
        match self {
            Plan::Put => "put",
            Plan::Delete => "delete",
            Plan::Untouched(_) => "none",
        }
    }
}

/// Why nothing was written for a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// UNVERIFIABLE: nothing proves what the other side should hold.
    Unverifiable,
    /// EXTRA without `--delete-extra`.
    ExtraNeedsFlag,
    /// A verdict this version does not repair.
    UnknownVerdict,
    /// The source has no item (any more): never resurrected.
    SourceHasNoItem,
    /// A delete, but the source has the item (again): not deleted.
    SourceHasItem,
    /// The other side already holds what the source holds.
    AlreadyEqual,
    /// A delete, and the other side has no item any more.
    AlreadyAbsent,
    /// Too large for an equality condition, and no `REPAIR_VERSION_ATTRIBUTE`.
    TooLargeForCondition,
    /// Too large for an equality condition, and the other side's item has no version attribute
    /// to hold it by.
    NoVersionToHold,
    /// The source's item is past its TTL: DynamoDB deletes it on both sides on its own.
    SourceExpired,
    /// The write kept failing (throttling, time-outs) through its attempts.
    WriteFailed,
    /// DynamoDB refused the write as it is (a ValidationException: an item too large, say).
    Refused,
}

impl Skip {
    /// The reason as the summary, the plan and the audit trail name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Unverifiable => "unverifiable (never repaired)",
            Skip::ExtraNeedsFlag => "extra (needs --delete-extra)",
            Skip::UnknownVerdict => "verdict not repaired",
            Skip::SourceHasNoItem => "source has no item (never resurrected)",
            Skip::SourceHasItem => "source has the item (not deleted)",
            Skip::AlreadyEqual => "other side already equal",
            Skip::AlreadyAbsent => "other side already without the item",
            Skip::TooLargeForCondition => {
                "too large for a condition (set REPAIR_VERSION_ATTRIBUTE)"
            }
            Skip::NoVersionToHold => "too large for a condition, and no version attribute",
            Skip::SourceExpired => "source item past its TTL",
            Skip::WriteFailed => "write kept failing",
            Skip::Refused => "refused by DynamoDB (see the log)",
        }
    }
}

/// What a repair does for one finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Write {
        action: WriteAction,
        condition: Condition,
    },
    Skip(Skip),
}

/// What the decision needs besides the two items.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The finding's key.
    pub key: &'a Item,
    /// `IGNORE_ATTRIBUTES`: not compared; the other side's top-level ones are kept on a put.
    pub ignore: &'a [String],
    /// `REPAIR_VERSION_ATTRIBUTE`.
    pub version_attribute: Option<&'a str>,
    /// The source's TTL attribute, and the time now (epoch ms): an item past it is not copied.
    pub ttl_attribute: Option<&'a str>,
    pub now_ms: i128,
}

/// The write for a finding planned as `plan`, from the source's and the other side's items now.
pub fn decide(
    plan: Plan,
    source: Option<&Item>,
    other: Option<&Item>,
    rules: Rules<'_>,
) -> Decision {
    match plan {
        Plan::Untouched(skip) => Decision::Skip(skip),
        Plan::Put => {
            let Some(source) = source else {
                return Decision::Skip(Skip::SourceHasNoItem);
            };
            let expired = rules
                .ttl_attribute
                .and_then(|a| crate::verify::expiry::expired(source, a, rules.now_ms));
            if expired.is_some() {
                return Decision::Skip(Skip::SourceExpired);
            }
            if other.is_some_and(|o| items_equal(source, o, rules.ignore)) {
                return Decision::Skip(Skip::AlreadyEqual);
            }
            let item = kept_ignored(source, other, rules.ignore);
            match held(other, rules, Some(&item)) {
                Ok(condition) => Decision::Write {
                    action: WriteAction::Put(item),
                    condition,
                },
                Err(skip) => Decision::Skip(skip),
            }
        }
        Plan::Delete => {
            if source.is_some() {
                return Decision::Skip(Skip::SourceHasItem);
            }
            if other.is_none() {
                return Decision::Skip(Skip::AlreadyAbsent);
            }
            match held(other, rules, None) {
                Ok(condition) => Decision::Write {
                    action: WriteAction::Delete(rules.key.clone()),
                    condition,
                },
                Err(skip) => Decision::Skip(skip),
            }
        }
    }
}

/// The condition that the other side still holds `other` (its item as read, or none); `put`, the
/// item about to be written, names what a newer write would add.
fn held(other: Option<&Item>, rules: Rules<'_>, put: Option<&Item>) -> Result<Condition, Skip> {
    // Any key attribute tells whether an item exists; the first by name, so it reads the same.
    let key_attribute = rules.key.keys().min().cloned().unwrap_or_default();
    let Some(other) = other else {
        return Ok(Condition::Absent { key_attribute });
    };
    let mut absent: Vec<String> = put
        .into_iter()
        .flat_map(|item| item.keys())
        .chain(rules.ignore)
        .filter(|name| !other.contains_key(*name))
        .cloned()
        .collect();
    absent.sort();
    absent.dedup();
    let holds = Condition::Holds {
        key_attribute: key_attribute.clone(),
        item: other.clone(),
        absent,
    };
    if holds.expression().fits() {
        return Ok(holds);
    }
    let attribute = rules.version_attribute.ok_or(Skip::TooLargeForCondition)?;
    // No version to hold: `attribute_not_exists` would hold against most newer writes too.
    let value = other.get(attribute).cloned().ok_or(Skip::NoVersionToHold)?;
    Ok(Condition::Version {
        key_attribute,
        attribute: attribute.to_string(),
        value: Some(value),
    })
}

/// The source's item, with the other side's values of the ignored attributes (what a replicator
/// adds, such as `syncedAt`, stays as it was).
fn kept_ignored(source: &Item, other: Option<&Item>, ignore: &[String]) -> Item {
    let mut item = source.clone();
    if let Some(other) = other {
        for name in ignore {
            if let Some(value) = other.get(name) {
                item.insert(name.clone(), value.clone());
            }
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as V;

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), V::S(v.to_string())))
            .collect()
    }

    fn rules<'a>(key: &'a Item, ignore: &'a [String]) -> Rules<'a> {
        Rules {
            key,
            ignore,
            version_attribute: None,
            ttl_attribute: None,
            now_ms: 1_800_000_000_000,
        }
    }

    #[test]
    fn a_missing_item_is_put_on_condition_that_the_other_side_still_has_none() {
        let key = item(&[("pk", "a")]);
        let source = item(&[("pk", "a"), ("status", "new")]);
        let d = decide(Plan::Put, Some(&source), None, rules(&key, &[]));
        assert_eq!(
            d,
            Decision::Write {
                action: WriteAction::Put(source.clone()),
                condition: Condition::Absent {
                    key_attribute: "pk".into()
                },
            }
        );
    }

    #[test]
    fn a_mismatch_is_put_on_condition_that_the_other_side_holds_what_was_read() {
        let key = item(&[("pk", "a")]);
        let source = item(&[("pk", "a"), ("status", "new")]);
        let other = item(&[("pk", "a"), ("status", "old")]);
        let Decision::Write { condition, .. } =
            decide(Plan::Put, Some(&source), Some(&other), rules(&key, &[]))
        else {
            panic!("no write");
        };
        assert_eq!(
            condition,
            Condition::Holds {
                key_attribute: "pk".into(),
                item: other,
                absent: vec![],
            }
        );
    }

    #[test]
    fn a_put_holds_the_names_it_adds_absent_so_a_newer_write_that_adds_them_wins() {
        let key = item(&[("pk", "a")]);
        let source = item(&[("pk", "a"), ("status", "paid"), ("paidAt", "9")]);
        let other = item(&[("pk", "a"), ("status", "new")]);
        let ignore = ["syncedAt".to_string()];
        let Decision::Write { condition, .. } =
            decide(Plan::Put, Some(&source), Some(&other), rules(&key, &ignore))
        else {
            panic!("no write");
        };
        assert_eq!(
            condition,
            Condition::Holds {
                key_attribute: "pk".into(),
                item: other,
                absent: vec!["paidAt".into(), "syncedAt".into()],
            }
        );
    }

    #[test]
    fn a_source_item_past_its_ttl_is_not_copied() {
        let key = item(&[("pk", "a")]);
        let mut source = item(&[("pk", "a")]);
        // Expired in 2025, against a clock in 2027 (DynamoDB ignores TTLs over five years past).
        source.insert("expires".into(), V::N("1750000000".into()));
        let r = Rules {
            ttl_attribute: Some("expires"),
            ..rules(&key, &[])
        };
        assert_eq!(
            decide(Plan::Put, Some(&source), None, r),
            Decision::Skip(Skip::SourceExpired)
        );
        source.insert("expires".into(), V::N("1900000000".into()));
        assert!(matches!(
            decide(Plan::Put, Some(&source), None, r),
            Decision::Write { .. }
        ));
    }

    #[test]
    fn a_deleted_source_item_is_never_resurrected() {
        let key = item(&[("pk", "a")]);
        let other = item(&[("pk", "a"), ("status", "old")]);
        for other in [None, Some(&other)] {
            let d = decide(Plan::Put, None, other, rules(&key, &[]));
            assert_eq!(d, Decision::Skip(Skip::SourceHasNoItem));
        }
    }

    #[test]
    fn a_delete_is_made_only_while_the_source_has_no_item() {
        let key = item(&[("pk", "a")]);
        let source = item(&[("pk", "a")]);
        let other = item(&[("pk", "a"), ("status", "old")]);
        let r = rules(&key, &[]);
        assert_eq!(
            decide(Plan::Delete, Some(&source), Some(&other), r),
            Decision::Skip(Skip::SourceHasItem)
        );
        assert_eq!(
            decide(Plan::Delete, None, None, r),
            Decision::Skip(Skip::AlreadyAbsent)
        );
        assert_eq!(
            decide(Plan::Delete, None, Some(&other), r),
            Decision::Write {
                action: WriteAction::Delete(key.clone()),
                condition: Condition::Holds {
                    key_attribute: "pk".into(),
                    item: other.clone(),
                    absent: vec![],
                },
            }
        );
    }

    #[test]
    fn nothing_is_written_when_the_sides_already_agree_ignored_attributes_aside() {
        let key = item(&[("pk", "a")]);
        let source = item(&[("pk", "a"), ("status", "new")]);
        let other = item(&[("pk", "a"), ("status", "new"), ("syncedAt", "1")]);
        let ignore = ["syncedAt".to_string()];
        let d = decide(Plan::Put, Some(&source), Some(&other), rules(&key, &ignore));
        assert_eq!(d, Decision::Skip(Skip::AlreadyEqual));
    }

    #[test]
    fn a_put_keeps_the_other_sides_ignored_attributes() {
        let key = item(&[("pk", "a")]);
        let source = item(&[("pk", "a"), ("status", "new")]);
        let other = item(&[("pk", "a"), ("status", "old"), ("syncedAt", "1")]);
        let ignore = ["syncedAt".to_string()];
        let Decision::Write {
            action: WriteAction::Put(written),
            ..
        } = decide(Plan::Put, Some(&source), Some(&other), rules(&key, &ignore))
        else {
            panic!("no put");
        };
        assert_eq!(
            written,
            item(&[("pk", "a"), ("status", "new"), ("syncedAt", "1")])
        );
    }

    #[test]
    fn an_item_too_large_for_a_condition_needs_a_version_attribute() {
        let key = item(&[("pk", "a")]);
        let source = item(&[("pk", "a"), ("status", "new")]);
        let mut other: Item = (0..200)
            .map(|i| (format!("a{i}"), V::N(i.to_string())))
            .collect();
        other.insert("pk".into(), V::S("a".into()));
        let r = rules(&key, &[]);
        assert_eq!(
            decide(Plan::Put, Some(&source), Some(&other), r),
            Decision::Skip(Skip::TooLargeForCondition)
        );
        let versioned = Rules {
            version_attribute: Some("version"),
            ..r
        };
        assert_eq!(
            decide(Plan::Put, Some(&source), Some(&other), versioned),
            Decision::Skip(Skip::NoVersionToHold),
            "no version on the other side: nothing to hold it by"
        );
        other.insert("version".into(), V::N("9".into()));
        let Decision::Write { condition, .. } =
            decide(Plan::Put, Some(&source), Some(&other), versioned)
        else {
            panic!("no write");
        };
        assert_eq!(
            condition,
            Condition::Version {
                key_attribute: "pk".into(),
                attribute: "version".into(),
                value: Some(V::N("9".into())),
            }
        );
    }

    #[test]
    fn unverifiable_and_extra_findings_are_left_alone_unless_asked() {
        assert_eq!(
            Plan::of("UNVERIFIABLE", true),
            Plan::Untouched(Skip::Unverifiable)
        );
        assert_eq!(
            Plan::of("EXTRA", false),
            Plan::Untouched(Skip::ExtraNeedsFlag)
        );
        assert_eq!(Plan::of("EXTRA", true), Plan::Delete);
        assert_eq!(Plan::of("MISSING", false), Plan::Put);
        assert_eq!(Plan::of("MISMATCH", false), Plan::Put);
        assert_eq!(Plan::of("DELETE_NOT_APPLIED", false), Plan::Delete);
    }
}
