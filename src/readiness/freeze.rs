//! With writes frozen at T, what shows that the stream verifier (Lambda) was handed every change
//! made before T. Its own coverage cannot: it records only the changes it receives, and once writes
//! stop nothing more arrives. Lambda's metrics can, together with the mapping's state:
//!
//! - every event source mapping of the function on the stream is `Enabled`;
//! - the newest minute with a delivered batch had an `IteratorAge` of at most [`CAUGHT_UP`] (the
//!   function was at the head of the stream, "back to zero"), at or after the minute of the newest
//!   change it verified;
//! - nothing was delivered after it, for the metrics' delay (`--metrics-delay`, default
//!   [`DEFAULT_METRICS_DELAY`]) plus the mapping's batching window past both that batch and T: a
//!   change still waiting, or a batch handed back and retried, would be delivered within that
//!   time and show as a later datapoint. The last batch's time is the function's own record of it
//!   (its coverage entry's `checkedAt`) when that falls in the newest datapoint's minute, else the
//!   end of that minute;
//! - no `Errors` or `Throttles` in the minutes from that last delivery (or T, if earlier) on: a
//!   batch that failed, or was never invoked, waits for a retry that the metrics do not show as
//!   delivered.
//!
//! The failure queue's emptiness (records given up on) and the chain's reach are checked by the
//! caller, as always. The shard poller's pass is the stronger proof (it reads every shard to its
//! end); the reasons say so.

use std::time::Duration;

use crate::ports::delivery::Delivery;
use crate::ports::findings::Coverage;
use crate::ports::mappings::Mapping;
use crate::shared::rfc3339;

use super::human_duration;

/// The largest `IteratorAge` of the last delivery minute that still counts as caught up.
pub const CAUGHT_UP: Duration = Duration::from_secs(10);

/// How long Lambda's metrics may take to appear in CloudWatch, with a margin, when
/// `--metrics-delay` is not given.
pub const DEFAULT_METRICS_DELAY: Duration = Duration::from_secs(120);

const MINUTE_MS: u64 = 60_000;

/// One stream verifier function's delivery metrics, as readiness read them.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDelivery {
    pub function: String,
    /// Or why they could not be read.
    pub metrics: Result<Delivery, String>,
}

/// What the proof for one function needs.
pub(super) struct LambdaFreeze<'a> {
    pub entry: &'a Coverage,
    pub mappings: Option<&'a [Mapping]>,
    pub delivery: Option<&'a FunctionDelivery>,
    pub stopped_at_ms: u64,
    pub now_ms: u64,
    pub metrics_delay: Duration,
}

fn minute_of(ms: u64) -> u64 {
    ms - ms % MINUTE_MS
}

/// From when a function's metrics are read: the minute of the newest change it verified, or of
/// T, whichever is earlier.
pub fn metrics_from(entry: &Coverage, stopped_at_ms: u64) -> u64 {
    minute_of(
        entry
            .verified_until_ms
            .unwrap_or(stopped_at_ms)
            .min(stopped_at_ms),
    )
}

impl LambdaFreeze<'_> {
    /// Why the function's delivery before T is proven, or why not (with what to do).
    pub fn prove(&self) -> Result<String, String> {
        let name = &self.entry.name;
        let window_s = self.enabled_mappings()?;
        let delivery = match self.delivery.map(|d| &d.metrics) {
            None => return Err(format!("the Lambda metrics of {name} were not read")),
            Some(Err(why)) => return Err(format!(
                "the Lambda metrics of {name} could not be read ({why}): allow cloudwatch:GetMetricData to whoever runs readiness, or run `shard-poller --once` (a pass reads every shard to its end)"
            )),
            Some(Ok(d)) => d,
        };
        let from = metrics_from(self.entry, self.stopped_at_ms);
        let Some(&(last, age)) = delivery.iterator_age.last().filter(|(at, _)| *at >= from) else {
            return Err(format!(
                "CloudWatch shows no batch delivered to {name} since {} (the minute of the newest change it verified): its IteratorAge may not be in yet, or {name} is not the function's name; check again in a few minutes",
                rfc3339(from)
            ));
        };
        if age > CAUGHT_UP.as_millis() as f64 {
            return Err(format!(
                "the last batch delivered to {name} (the minute from {}) was up to {} behind the stream, not back to zero: whether it reached the stream's end is not shown; run `shard-poller --once` (a pass reads every shard to its end), then check again",
                rfc3339(last),
                human_duration(Duration::from_millis(age as u64))
            ));
        }
        let failing_from = (last).min(minute_of(self.stopped_at_ms));
        for (metric, series) in [
            ("Errors", &delivery.errors),
            ("Throttles", &delivery.throttles),
        ] {
            if let Some((at, n)) = series
                .iter()
                .find(|(at, n)| *at >= failing_from && *n > 0.0)
            {
                return Err(format!(
                    "{name} had {n} {metric} in the minute from {}: a batch may be waiting for a retry; find why in its logs, then check again once it delivers",
                    rfc3339(*at)
                ));
            }
        }
        let checked = self.entry.checked_at_ms;
        let delivered = if minute_of(checked) >= last {
            checked
        } else {
            last + MINUTE_MS
        };
        let settled = delivered.max(self.stopped_at_ms)
            + u64::from(window_s) * 1_000
            + self.metrics_delay.as_millis() as u64;
        if self.now_ms < settled {
            return Err(format!(
                "{name}'s last batch was delivered by {}; whether anything is still to come shows at {} (its batching window {window_s} s, the metrics' delay {}): check again then",
                rfc3339(delivered),
                rfc3339(settled),
                human_duration(self.metrics_delay)
            ));
        }
        Ok(format!(
            "Lambda handed {name} every change before it: its last batch (the minute from {}) was at most {} behind, nothing delivered since, no errors or throttles, its mappings enabled",
            rfc3339(last),
            human_duration(Duration::from_millis(age as u64))
        ))
    }

    /// The function's mappings on the stream, all enabled: their largest batching window.
    fn enabled_mappings(&self) -> Result<u32, String> {
        let name = &self.entry.name;
        let Some(mappings) = self.mappings else {
            return Err(format!(
                "the stream's event source mappings were not read, so nothing shows {name} was still attached"
            ));
        };
        let of: Vec<&Mapping> = mappings.iter().filter(|m| &m.function == name).collect();
        if of.is_empty() {
            return Err(format!(
                "{name} has no event source mapping on the stream now: changes before the freeze may never have been delivered; run `shard-poller --once`, then check again"
            ));
        }
        if let Some(m) = of.iter().find(|m| m.state != "Enabled") {
            return Err(format!(
                "event source mapping {} of {name} is {}, not Enabled: it may hold undelivered changes; enable it, wait for it to deliver, then check again",
                m.uuid, m.state
            ));
        }
        Ok(of
            .iter()
            .filter_map(|m| m.batching_window_s)
            .max()
            .unwrap_or(0))
    }
}
