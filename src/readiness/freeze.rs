//! With writes frozen at T, what shows that the stream verifier (Lambda) was handed every change
//! made before T. Its own coverage cannot: it records only the changes it receives, and once writes
//! stop nothing more arrives. Lambda's metrics can, together with the mappings' state. For each
//! function that covers the stream, all of:
//!
//! - every event source mapping of the function on the stream is `Enabled`, and its last
//!   processing result is `OK` (or `No records processed`): a mapping that lost access to the
//!   stream stays `Enabled`, invokes nothing and says `PROBLEM: ...` there;
//! - the newest minute with a delivered batch (at or after the minute of the newest change it
//!   verified) had an `IteratorAge` of at most [`CAUGHT_UP`] plus the batching window and the
//!   function's timeout (AWS measures it at the batch's end by some accounts): "back to zero";
//! - no `Errors` or `Throttles` from the minute of the newest change it verified (or T) on: a
//!   batch that failed, or was never invoked, waits for a retry;
//! - nothing was delivered after that last batch for the metrics' delay (`--metrics-delay`,
//!   default [`DEFAULT_METRICS_DELAY`]), the batching window and the function's timeout (Lambda
//!   sends a batch's metrics when it ends, stamped with the minute it began), plus the clock
//!   margin, counted from that batch or T, whichever is later: a change still waiting, or a batch
//!   handed back and retried, would have been delivered in that time and shown as a later batch.
//!   The last batch's time is the function's own record of it (its coverage entry's `checkedAt`)
//!   when that falls in the newest datapoint's minute, else the end of that minute.
//!
//! The metrics are per function: with one function for many pairs, every pair's batches count, so
//! a pair frozen while another is still written stays NO-GO. The failure queue's emptiness
//! (records given up on) and the chain's reach are checked by the caller, as always. The shard
//! poller's pass is the stronger proof (it reads every shard to its end); the reasons say so.

use std::time::Duration;

use crate::ports::delivery::Delivery;
use crate::ports::findings::Coverage;
use crate::ports::mappings::Mapping;
use crate::shared::rfc3339;

use super::human_duration;

/// The largest `IteratorAge` of the last delivery minute that still counts as caught up, beyond
/// the batching window and the function's timeout.
pub const CAUGHT_UP: Duration = Duration::from_secs(10);

/// How long Lambda's metrics may take to appear in CloudWatch, with a margin, when
/// `--metrics-delay` is not given.
pub const DEFAULT_METRICS_DELAY: Duration = Duration::from_secs(120);

/// The function's timeout when it could not be read: Lambda's largest.
pub const LONGEST_TIMEOUT_S: u32 = 900;

/// The last processing results of a mapping that reads its stream.
const READING: &[&str] = &["OK", "No records processed"];

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
    pub skew_ms: u64,
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
        let window_s = self.reading_mappings()?;
        let delivery = self.metrics()?;
        let timeout_s = delivery.function_timeout_s.unwrap_or(LONGEST_TIMEOUT_S);
        // A batch's own time: its window, its run.
        let batch_ms = u64::from(window_s + timeout_s) * 1_000;
        let from = metrics_from(self.entry, self.stopped_at_ms);
        let Some(&(last, age)) = delivery.iterator_age.last().filter(|(at, _)| *at >= from) else {
            return Err(format!(
                "CloudWatch shows no batch delivered to {name} since {} (the minute of the newest change it verified): its IteratorAge may not be in yet, or {name} is not the function's name; check again in a few minutes",
                rfc3339(from)
            ));
        };
        if age > (CAUGHT_UP.as_millis() as u64 + batch_ms) as f64 {
            return Err(format!(
                "the last batch delivered to {name} (the minute from {}) was up to {} behind the stream, not back to zero: whether it reached the stream's end is not shown; run `shard-poller --once` (a pass reads every shard to its end), then check again",
                rfc3339(last),
                human_duration(Duration::from_millis(age as u64))
            ));
        }
        self.no_failures(delivery, from)?;
        let checked = self.entry.checked_at_ms;
        let delivered = if minute_of(checked) >= last {
            checked
        } else {
            last + MINUTE_MS
        };
        let settled = delivered.max(self.stopped_at_ms)
            + batch_ms
            + self.metrics_delay.as_millis() as u64
            + self.skew_ms;
        if self.now_ms < settled {
            let timeout = match delivery.function_timeout_s {
                Some(s) => format!("its timeout {s} s"),
                None => format!("its timeout unknown, so Lambda's longest, {LONGEST_TIMEOUT_S} s (allow lambda:GetFunctionConfiguration to read it)"),
            };
            return Err(format!(
                "{name}'s last batch was delivered by {}; whether anything is still to come shows at {} (its batching window {window_s} s, {timeout}, the metrics' delay {}): check again then",
                rfc3339(delivered),
                rfc3339(settled),
                human_duration(self.metrics_delay)
            ));
        }
        Ok(format!(
            "Lambda handed {name} every change before it: its last batch (the minute from {}) was at most {} behind, nothing delivered since, no errors or throttles, its mappings enabled and reading",
            rfc3339(last),
            human_duration(Duration::from_millis(age as u64))
        ))
    }

    fn metrics(&self) -> Result<&Delivery, String> {
        let name = &self.entry.name;
        match self.delivery.map(|d| &d.metrics) {
            None => Err(format!("the Lambda metrics of {name} were not read")),
            Some(Err(why)) => Err(format!(
                "the Lambda metrics of {name} could not be read ({why}): allow cloudwatch:GetMetricData to whoever runs readiness, or run `shard-poller --once` (a pass reads every shard to its end)"
            )),
            Some(Ok(d)) => Ok(d),
        }
    }

    /// No `Errors` or `Throttles` from `from` on.
    fn no_failures(&self, delivery: &Delivery, from: u64) -> Result<(), String> {
        let name = &self.entry.name;
        for (metric, series) in [
            ("Errors", &delivery.errors),
            ("Throttles", &delivery.throttles),
        ] {
            if let Some((at, n)) = series.iter().find(|(at, n)| *at >= from && *n > 0.0) {
                return Err(format!(
                    "{name} had {n} {metric} in the minute from {}: a batch may be waiting for a retry, which Lambda's metrics do not show as delivered; run `shard-poller --once` (a pass reads every shard to its end), then check again",
                    rfc3339(*at)
                ));
            }
        }
        Ok(())
    }

    /// The function's mappings on the stream, all enabled and reading: their largest batching
    /// window.
    fn reading_mappings(&self) -> Result<u32, String> {
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
        let not_reading = |m: &&&Mapping| {
            m.last_processing_result
                .as_deref()
                .is_none_or(|r| !READING.contains(&r))
        };
        if let Some(m) = of.iter().find(not_reading) {
            return Err(format!(
                "event source mapping {} of {name} last processed with {:?}, not OK: it may not be reading the stream (its access to the stream, or the function's); fix it, wait for it to deliver, then check again, or run `shard-poller --once`",
                m.uuid,
                m.last_processing_result.as_deref().unwrap_or("no result")
            ));
        }
        Ok(of
            .iter()
            .filter_map(|m| m.batching_window_s)
            .max()
            .unwrap_or(0))
    }
}
