//! Time to live: whether an item is past its TTL, so that its absence on one side is DynamoDB's
//! own deletion (at its own pace on each table, within days) rather than a replication fault.
//!
//! DynamoDB reads the TTL attribute as a Number of epoch **seconds**; it ignores (never deletes)
//! an item whose attribute is not a Number, or whose value lies more than five years in the past.
//! Such an item is compared as usual, as is one whose TTL is still ahead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::record::Item;

/// How far past its TTL an item must be, by this process's clock, to count as expired: the
/// verifier's clock may run ahead of DynamoDB's, and an item DynamoDB does not yet consider
/// expired cannot have been deleted by it. On the strict side: within this margin of its TTL, an
/// item is compared as usual (a real MISSING is never called EXPIRED on a clock's word).
pub const CLOCK_MARGIN: Duration = Duration::from_secs(1);

/// DynamoDB ignores TTL values older than five years. 5 × 365 days, the shorter reading of "five
/// years": an item between 1825 and 1827 days past its TTL is compared as usual (strict side).
pub const IGNORED_AFTER: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// This process's clock, in epoch milliseconds.
pub fn now_ms() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i128
}

/// The item's TTL (epoch seconds, as written) when `attribute` holds one that DynamoDB honours
/// and that is certainly past at `now_ms`; `None` otherwise (no attribute, not a Number, ahead,
/// within [`CLOCK_MARGIN`], or more than five years past).
pub fn expired(item: &Item, attribute: &str, now_ms: i128) -> Option<String> {
    let AttributeValue::N(value) = item.get(attribute)? else {
        return None;
    };
    let seconds: f64 = value.trim().parse().ok().filter(|s: &f64| s.is_finite())?;
    // Whole milliseconds, rounded up: a fraction of a second never makes an item expire sooner.
    let ttl_ms = (seconds * 1000.0).ceil() as i128;
    let past = ttl_ms + CLOCK_MARGIN.as_millis() as i128 <= now_ms;
    let honoured = ttl_ms >= now_ms - IGNORED_AFTER.as_millis() as i128;
    (past && honoured).then(|| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ttl(value: AttributeValue) -> Item {
        [("expires".to_string(), value)].into_iter().collect()
    }

    const NOW_MS: i128 = 1_800_000_000_000;

    #[test]
    fn an_item_is_expired_only_once_its_ttl_is_past_by_the_clock_margin() {
        let at = |seconds: i128| with_ttl(AttributeValue::N(seconds.to_string()));
        let now_s = NOW_MS / 1000;
        assert_eq!(
            expired(&at(now_s - 60), "expires", NOW_MS),
            Some((now_s - 60).to_string())
        );
        assert!(expired(&at(now_s - 1), "expires", NOW_MS).is_some());
        // Within the margin, or ahead: compared as usual.
        assert_eq!(expired(&at(now_s), "expires", NOW_MS), None);
        assert_eq!(expired(&at(now_s + 3600), "expires", NOW_MS), None);
        assert_eq!(expired(&at(now_s), "expires", NOW_MS + 999), None);
        assert!(expired(&at(now_s), "expires", NOW_MS + 1000).is_some());
    }

    #[test]
    fn values_dynamodb_ignores_are_never_expired() {
        let now_s = NOW_MS / 1000;
        let six_years = 6 * 365 * 24 * 3600;
        let cases = [
            AttributeValue::S((now_s - 60).to_string()),
            AttributeValue::N((now_s - six_years).to_string()),
            AttributeValue::N("not a number".into()),
            AttributeValue::N("NaN".into()),
            AttributeValue::Bool(true),
        ];
        for value in cases {
            assert_eq!(
                expired(&with_ttl(value.clone()), "expires", NOW_MS),
                None,
                "{value:?}"
            );
        }
        // Another attribute's TTL, or none at all.
        let item = with_ttl(AttributeValue::N((now_s - 60).to_string()));
        assert_eq!(expired(&item, "ttl", NOW_MS), None);
    }
}
