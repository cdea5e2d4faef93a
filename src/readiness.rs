//! `ddb-verify readiness`: may we cut over now? GO or NO-GO from what the verifiers recorded in the
//! findings table (coverage and findings), never from CloudWatch, computed afresh on each call.
//!
//! GO when every check holds:
//! - **baseline**: a complete baseline run exists (the newest complete one is used);
//! - **no gap**: stream verification (the stream verifier or the shard poller) began no later than
//!   that baseline run began, so every change is covered by one or the other;
//! - **stream recent**: the newest change stream verification has a verdict for is within
//!   `max_lag` of now;
//! - **no open findings**: accepted findings do not block (they are listed);
//! - **no recent retries**: no record was handed back for re-delivery within `max_lag` of now.
//!
//! [`assess`] is pure (coverage and findings in, a [`Readiness`] out); [`gather`] reads its input.

use std::time::Duration;

use serde_json::{json, Value};

use crate::source::findings::{
    Coverage, CoverageSource, Finding, FindingStatus, FindingsError, FindingsStore,
};

/// How far behind now stream verification may be, and how long ago a re-delivery still blocks,
/// when `--max-lag` is not given.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(5 * 60);

/// The names of the checks, in the order they are shown.
pub const CHECK_BASELINE: &str = "baseline";
pub const CHECK_NO_GAP: &str = "no_gap";
pub const CHECK_EVERY_CHANGE: &str = "every_change";
pub const CHECK_STREAM_RECENT: &str = "stream_recent";
pub const CHECK_NO_OPEN_FINDINGS: &str = "no_open_findings";
pub const CHECK_NO_RECENT_RETRIES: &str = "no_recent_retries";

/// What readiness is computed from: one verified table's coverage items, open and accepted findings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadinessInput {
    pub table: String,
    pub coverage: Vec<Coverage>,
    pub open: Vec<Finding>,
    pub accepted: Vec<Finding>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadinessOptions {
    /// How far behind now the newest verified change may be; also how long a re-delivery blocks.
    pub max_lag: Duration,
}

impl Default for ReadinessOptions {
    fn default() -> ReadinessOptions {
        ReadinessOptions {
            max_lag: DEFAULT_MAX_LAG,
        }
    }
}

/// One check: its name, whether it holds, and why in a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// The baseline run readiness relies on (the newest complete one, else the newest run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaselineRun {
    pub run_id: String,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    pub complete: bool,
}

/// An accepted finding, as readiness lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedFinding {
    pub key: String,
    pub verdict: String,
    pub reason: String,
}

/// GO or NO-GO, with every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub table: String,
    pub ready: bool,
    pub checks: Vec<Check>,
    pub baseline: Option<BaselineRun>,
    pub open_findings: usize,
    pub accepted: Vec<AcceptedFinding>,
    /// The newest change stream verification has a verdict for.
    pub verified_until_ms: Option<u64>,
    pub checked_at_ms: u64,
}

impl Readiness {
    /// The failing checks' sentences: empty when GO.
    pub fn reasons(&self) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.detail.as_str())
            .collect()
    }

    /// `{"ready", "reasons", "checks", "baseline", "open_findings", "accepted_findings",
    /// "verified_until", ...}`, times in RFC 3339 UTC.
    pub fn to_json(&self) -> Value {
        json!({
            "table": self.table,
            "ready": self.ready,
            "reasons": self.reasons(),
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name,
                "ok": c.ok,
                "detail": c.detail,
            })).collect::<Vec<_>>(),
            "baseline": self.baseline.as_ref().map(|b| json!({
                "run_id": b.run_id,
                "started_at": b.started_at_ms.map(rfc3339),
                "finished_at": b.finished_at_ms.map(rfc3339),
                "complete": b.complete,
            })),
            "open_findings": self.open_findings,
            "accepted_findings": self.accepted.iter().map(|a| json!({
                "key": a.key,
                "verdict": a.verdict,
                "reason": a.reason,
            })).collect::<Vec<_>>(),
            "verified_until": self.verified_until_ms.map(rfc3339),
            "checked_at": rfc3339(self.checked_at_ms),
        })
    }

    /// The answer for a terminal: GO or NO-GO, each check, the accepted findings.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{} for table {} (checked {})\n",
            if self.ready { "GO" } else { "NO-GO" },
            self.table,
            rfc3339(self.checked_at_ms)
        );
        for check in &self.checks {
            out.push_str(&format!(
                "  [{}] {}: {}\n",
                if check.ok { " ok " } else { "FAIL" },
                check.name,
                check.detail
            ));
        }
        if !self.accepted.is_empty() {
            out.push_str(&format!(
                "accepted findings ({}, not blocking):\n",
                self.accepted.len()
            ));
            for a in &self.accepted {
                out.push_str(&format!("  {} {}: {}\n", a.key, a.verdict, a.reason));
            }
        }
        out
    }
}

/// Reads what readiness needs for `table`: every coverage item, the open and the accepted findings.
pub async fn gather<S: FindingsStore>(
    store: &S,
    table: &str,
) -> Result<ReadinessInput, FindingsError> {
    let (coverage, open, accepted) = futures::try_join!(
        store.coverage(table),
        store.list(table, FindingStatus::Open, None, None),
        store.list(table, FindingStatus::Accepted, None, None),
    )?;
    Ok(ReadinessInput {
        table: table.to_string(),
        coverage,
        open,
        accepted,
    })
}

/// GO or NO-GO at `now_ms`, with every check (failing and passing).
pub fn assess(input: &ReadinessInput, now_ms: u64, options: &ReadinessOptions) -> Readiness {
    let max_lag_ms = options.max_lag.as_millis() as u64;
    let lag = human_duration(options.max_lag);
    let ago = |t: u64| human_duration(Duration::from_millis(now_ms.saturating_sub(t)));
    let runs: Vec<&Coverage> = input
        .coverage
        .iter()
        .filter(|c| c.source == CoverageSource::Baseline)
        .collect();
    let streams: Vec<&Coverage> = input
        .coverage
        .iter()
        .filter(|c| matches!(c.source, CoverageSource::Stream | CoverageSource::Poller))
        .collect();
    let newest = |c: &&&Coverage| (c.started_at_ms.unwrap_or(0), c.checked_at_ms);
    let complete = runs.iter().filter(|c| c.complete).max_by_key(newest);
    let shown = complete.or_else(|| runs.iter().max_by_key(newest));
    let baseline = shown.map(|c| BaselineRun {
        run_id: c.name.clone(),
        started_at_ms: c.started_at_ms,
        finished_at_ms: c.verified_until_ms,
        complete: c.complete,
    });
    let mut checks = Vec::with_capacity(5);

    // A complete baseline run.
    checks.push(match (complete, shown) {
        (Some(run), _) => Check {
            name: CHECK_BASELINE,
            ok: true,
            detail: format!(
                "baseline run {} is complete: began {}, ended {}",
                run.name,
                opt_time(run.started_at_ms),
                opt_time(run.verified_until_ms)
            ),
        },
        (None, Some(run)) => Check {
            name: CHECK_BASELINE,
            ok: false,
            detail: format!(
                "no complete baseline run: run {} (began {}) is not complete; resume it with `ddb-verify baseline --run-id {}`",
                run.name,
                opt_time(run.started_at_ms),
                run.name
            ),
        },
        (None, None) => Check {
            name: CHECK_BASELINE,
            ok: false,
            detail: format!(
                "no baseline run recorded for table {}: run `ddb-verify baseline` (with FINDINGS_TABLE set) to its end",
                input.table
            ),
        },
    });

    // Stream verification began no later than the baseline.
    let stream_start = streams
        .iter()
        .filter_map(|c| c.started_at_ms.map(|t| (t, *c)))
        .min_by_key(|(t, _)| *t);
    checks.push(match (stream_start, complete.and_then(|r| r.started_at_ms.map(|t| (t, r)))) {
        (None, _) if streams.is_empty() => Check {
            name: CHECK_NO_GAP,
            ok: false,
            detail: format!(
                "no stream verification recorded for table {}: the stream verifier or the shard poller (with FINDINGS_TABLE set) must verify every change since before the baseline began",
                input.table
            ),
        },
        (None, _) => Check {
            name: CHECK_NO_GAP,
            ok: false,
            detail: "stream verification has not verified any change yet, so it cannot be shown to have begun before the baseline".to_string(),
        },
        (Some((began, by)), None) => Check {
            name: CHECK_NO_GAP,
            ok: false,
            detail: format!(
                "stream verification began {} ({} {}), but there is no complete baseline run to cover what came before",
                rfc3339(began),
                by.source.as_str(),
                by.name
            ),
        },
        (Some((began, by)), Some((base, run))) if began > base => Check {
            name: CHECK_NO_GAP,
            ok: false,
            detail: format!(
                "gap: stream verification began {} ({} {}), {} after baseline run {} began {}; changes made in between were verified by neither: run a new baseline now",
                rfc3339(began),
                by.source.as_str(),
                by.name,
                human_duration(Duration::from_millis(began - base)),
                run.name,
                rfc3339(base)
            ),
        },
        (Some((began, by)), Some((base, run))) => Check {
            name: CHECK_NO_GAP,
            ok: true,
            detail: format!(
                "stream verification began {} ({} {}), no later than baseline run {} began {}",
                rfc3339(began),
                by.source.as_str(),
                by.name,
                run.name,
                rfc3339(base)
            ),
        },
    });

    // Every change, not a sample, and none lost to trimming since the baseline began.
    let sampled = streams
        .iter()
        .find(|c| c.sample_rate.is_some_and(|r| r < 1.0));
    let baseline_began = complete.and_then(|r| r.started_at_ms);
    let gap = streams
        .iter()
        .filter_map(|c| c.last_gap_at_ms.map(|t| (t, *c)))
        .filter(|(t, _)| baseline_began.is_none_or(|b| *t >= b))
        .max_by_key(|(t, _)| *t);
    checks.push(match (sampled, gap) {
        (Some(c), _) => Check {
            name: CHECK_EVERY_CHANGE,
            ok: false,
            detail: format!(
                "{} {} verifies a sample of keys (SAMPLE_RATE={}): the other keys' changes were not verified; set SAMPLE_RATE=1 before the baseline that readiness rests on",
                c.source.as_str(),
                c.name,
                c.sample_rate.unwrap_or(1.0)
            ),
        },
        (None, Some((at, c))) => Check {
            name: CHECK_EVERY_CHANGE,
            ok: false,
            detail: format!(
                "stream records were trimmed before {} {} could verify them, at {}, after the baseline began: run a new baseline",
                c.source.as_str(),
                c.name,
                rfc3339(at)
            ),
        },
        (None, None) => Check {
            name: CHECK_EVERY_CHANGE,
            ok: true,
            detail: "every key's changes are verified (SAMPLE_RATE=1), and no stream records were lost since the baseline began".to_string(),
        },
    });

    // Stream changes verified up to within max_lag of now.
    let verified_until = streams.iter().filter_map(|c| c.verified_until_ms).max();
    checks.push(match verified_until {
        None => Check {
            name: CHECK_STREAM_RECENT,
            ok: false,
            detail: if streams.is_empty() {
                "no stream change has been verified: no stream verification is recorded".to_string()
            } else {
                "no stream change has been verified without a record handed back yet".to_string()
            },
        },
        Some(until) if now_ms.saturating_sub(until) > max_lag_ms => Check {
            name: CHECK_STREAM_RECENT,
            ok: false,
            detail: format!(
                "stream changes are verified only up to {} ({} ago), more than {lag} behind now (--max-lag)",
                rfc3339(until),
                ago(until)
            ),
        },
        Some(until) => Check {
            name: CHECK_STREAM_RECENT,
            ok: true,
            detail: format!(
                "stream changes verified up to {} ({} ago, within {lag})",
                rfc3339(until),
                ago(until)
            ),
        },
    });

    // No open findings.
    let open = input.open.len();
    let accepted = input.accepted.len();
    checks.push(if open == 0 {
        Check {
            name: CHECK_NO_OPEN_FINDINGS,
            ok: true,
            detail: match accepted {
                0 => "no open findings".to_string(),
                n => format!("no open findings ({n} accepted, listed, not blocking)"),
            },
        }
    } else {
        let first = &input.open[0];
        Check {
            name: CHECK_NO_OPEN_FINDINGS,
            ok: false,
            detail: format!(
                "{open} open finding{} (first: {} {}): see `ddb-verify findings`; fix and revalidate, or `ddb-verify accept`",
                if open == 1 { "" } else { "s" },
                first.key_text,
                first.verdict
            ),
        }
    });

    // Nothing handed back for re-delivery recently.
    let last_retry = streams
        .iter()
        .filter_map(|c| c.last_retry_at_ms.map(|t| (t, *c)))
        .max_by_key(|(t, _)| *t);
    checks.push(match last_retry {
        None => Check {
            name: CHECK_NO_RECENT_RETRIES,
            ok: true,
            detail: "no record has been handed back for re-delivery".to_string(),
        },
        Some((at, by)) if now_ms.saturating_sub(at) <= max_lag_ms => Check {
            name: CHECK_NO_RECENT_RETRIES,
            ok: false,
            detail: format!(
                "a record was handed back for re-delivery {} ({} ago, within {lag}) by {} {}: its changes have no verdict yet",
                rfc3339(at),
                ago(at),
                by.source.as_str(),
                by.name
            ),
        },
        Some((at, _)) => Check {
            name: CHECK_NO_RECENT_RETRIES,
            ok: true,
            detail: format!(
                "no record handed back for re-delivery in the last {lag} (the last {}, {} ago)",
                rfc3339(at),
                ago(at)
            ),
        },
    });

    Readiness {
        table: input.table.clone(),
        ready: checks.iter().all(|c| c.ok),
        checks,
        baseline,
        open_findings: open,
        accepted: input
            .accepted
            .iter()
            .map(|f| AcceptedFinding {
                key: f.key_text.clone(),
                verdict: f.verdict.clone(),
                reason: f.reason.clone().unwrap_or_default(),
            })
            .collect(),
        verified_until_ms: verified_until,
        checked_at_ms: now_ms,
    }
}

fn opt_time(ms: Option<u64>) -> String {
    ms.map(rfc3339)
        .unwrap_or_else(|| "at an unknown time".to_string())
}

/// Epoch milliseconds as RFC 3339 in UTC: `2024-02-29T12:34:56Z`, with `.mmm` when not whole seconds.
pub fn rfc3339(ms: u64) -> String {
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let fraction = if millis == 0 {
        String::new()
    } else {
        format!(".{millis:03}")
    };
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A duration as people read it: `4m 10s`, `2h 5m`, `3d 1h`, `45s`, `250ms`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let units = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |left, (name, size)| {
            let n = *left / size;
            *left %= size;
            Some((n, name))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n}{name}"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    /// 2024-02-29T12:00:00Z.
    const NOW: u64 = 1_709_208_000_000;

    fn coverage(source: CoverageSource, name: &str) -> Coverage {
        Coverage {
            source,
            name: name.to_string(),
            started_at_ms: None,
            verified_until_ms: None,
            last_retry_at_ms: None,
            complete: false,
            checked_at_ms: NOW - MIN,
            sample_rate: Some(1.0),
            last_gap_at_ms: None,
        }
    }

    fn baseline(started: u64, finished: Option<u64>) -> Coverage {
        Coverage {
            started_at_ms: Some(started),
            verified_until_ms: finished,
            complete: finished.is_some(),
            ..coverage(CoverageSource::Baseline, "run-1")
        }
    }

    fn stream(started: u64, until: u64) -> Coverage {
        Coverage {
            started_at_ms: Some(started),
            verified_until_ms: Some(until),
            ..coverage(CoverageSource::Stream, "stream-verifier")
        }
    }

    fn finding(key: &str, status: FindingStatus) -> Finding {
        Finding {
            table: "Orders".into(),
            key: Default::default(),
            key_text: key.into(),
            verdict: "MISMATCH".into(),
            proof: Some("source_as_recorded".into()),
            detail: "status differs".into(),
            attributes: vec!["status".into()],
            values: None,
            origin: "baseline".into(),
            first_seen_ms: NOW - 30 * MIN,
            last_seen_ms: NOW - 30 * MIN,
            times_seen: 1,
            sequence_number: None,
            baseline_run: Some("run-1".into()),
            status,
            reason: (status == FindingStatus::Accepted).then(|| "known test item".into()),
            resolved_at_ms: None,
            next_check_ms: Some(NOW),
            checks: 0,
            unsettled: false,
        }
    }

    /// Every check holds: the stream began 60 minutes ago, a baseline ran from 30 to 10 minutes
    /// ago, the stream is verified up to a minute ago, nothing open, no retry.
    fn go() -> ReadinessInput {
        ReadinessInput {
            table: "Orders".into(),
            coverage: vec![
                stream(NOW - 60 * MIN, NOW - MIN),
                baseline(NOW - 30 * MIN, Some(NOW - 10 * MIN)),
            ],
            open: vec![],
            accepted: vec![],
        }
    }

    fn assess_default(input: &ReadinessInput) -> Readiness {
        assess(input, NOW, &ReadinessOptions::default())
    }

    /// The names of the failing checks.
    fn failing(r: &Readiness) -> Vec<&'static str> {
        r.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
    }

    fn check<'a>(r: &'a Readiness, name: &str) -> &'a Check {
        r.checks.iter().find(|c| c.name == name).unwrap()
    }

    #[test]
    fn go_when_every_check_holds_and_every_check_is_listed() {
        let r = assess_default(&go());
        assert!(r.ready, "{:#?}", r.checks);
        assert!(r.reasons().is_empty());
        let names: Vec<_> = r.checks.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                CHECK_BASELINE,
                CHECK_NO_GAP,
                CHECK_EVERY_CHANGE,
                CHECK_STREAM_RECENT,
                CHECK_NO_OPEN_FINDINGS,
                CHECK_NO_RECENT_RETRIES
            ]
        );
        let json = r.to_json();
        assert_eq!(json["ready"], true);
        assert_eq!(json["reasons"], json!([]));
        assert_eq!(json["baseline"]["run_id"], "run-1");
        assert_eq!(json["baseline"]["started_at"], "2024-02-29T11:30:00Z");
        assert_eq!(json["baseline"]["finished_at"], "2024-02-29T11:50:00Z");
        assert_eq!(json["baseline"]["complete"], true);
        assert_eq!(json["verified_until"], "2024-02-29T11:59:00Z");
        assert_eq!(json["open_findings"], 0);
        assert_eq!(json["checks"].as_array().unwrap().len(), 6);
        assert!(r.to_text().starts_with("GO for table Orders"));
    }

    #[test]
    fn no_baseline_at_all_is_no_go() {
        let mut input = go();
        input
            .coverage
            .retain(|c| c.source != CoverageSource::Baseline);
        let r = assess_default(&input);
        assert!(!r.ready);
        // Without a baseline, no gap cannot be shown either.
        assert_eq!(failing(&r), [CHECK_BASELINE, CHECK_NO_GAP]);
        assert!(r.reasons()[0].contains("no baseline run recorded for table Orders"));
        assert_eq!(r.to_json()["baseline"], Value::Null);
    }

    #[test]
    fn an_incomplete_baseline_is_no_go_and_says_how_to_resume() {
        let mut input = go();
        input.coverage[1] = baseline(NOW - 30 * MIN, None);
        let r = assess_default(&input);
        assert!(!r.ready);
        assert_eq!(failing(&r), [CHECK_BASELINE, CHECK_NO_GAP]);
        assert!(
            r.reasons()[0].contains("--run-id run-1"),
            "{:?}",
            r.reasons()
        );
        assert_eq!(r.to_json()["baseline"]["complete"], false);
        assert_eq!(r.to_json()["baseline"]["finished_at"], Value::Null);
    }

    #[test]
    fn the_newest_complete_baseline_counts_over_a_newer_incomplete_one() {
        let mut input = go();
        input.coverage.push(Coverage {
            name: "run-2".into(),
            ..baseline(NOW - 5 * MIN, None)
        });
        let r = assess_default(&input);
        assert!(r.ready, "{:#?}", r.checks);
        assert_eq!(r.baseline.unwrap().run_id, "run-1");
    }

    #[test]
    fn stream_verification_that_began_after_the_baseline_is_a_gap() {
        let mut input = go();
        input.coverage[0] = stream(NOW - 20 * MIN, NOW - MIN);
        let r = assess_default(&input);
        assert!(!r.ready);
        assert_eq!(failing(&r), [CHECK_NO_GAP]);
        let reason = r.reasons()[0];
        assert!(reason.starts_with("gap:"), "{reason}");
        assert!(reason.contains("10m after baseline run run-1"), "{reason}");
        assert!(reason.contains("2024-02-29T11:40:00Z"), "{reason}");
        // Began at the very moment the baseline began: no gap.
        input.coverage[0] = stream(NOW - 30 * MIN, NOW - MIN);
        assert!(assess_default(&input).ready);
    }

    #[test]
    fn the_earliest_start_of_any_stream_or_poller_coverage_counts() {
        let mut input = go();
        input.coverage[0] = stream(NOW - 20 * MIN, NOW - MIN);
        input.coverage.push(Coverage {
            started_at_ms: Some(NOW - 90 * MIN),
            verified_until_ms: Some(NOW - 40 * MIN),
            ..coverage(CoverageSource::Poller, "arn:stream")
        });
        let r = assess_default(&input);
        assert!(r.ready, "{:#?}", r.checks);
        assert!(check(&r, CHECK_NO_GAP).detail.contains("poller arn:stream"));
    }

    #[test]
    fn sampled_stream_verification_is_no_go() {
        let mut input = go();
        input.coverage[0].sample_rate = Some(0.25);
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_EVERY_CHANGE]);
        assert!(
            r.reasons()[0].contains("SAMPLE_RATE=0.25"),
            "{:?}",
            r.reasons()
        );
        input.coverage[0].sample_rate = Some(1.0);
        assert!(assess_default(&input).ready);
    }

    #[test]
    fn records_trimmed_after_the_baseline_began_are_no_go_and_before_it_are_not() {
        let mut input = go();
        // The baseline began 30 minutes ago.
        input.coverage[0].last_gap_at_ms = Some(NOW - 10 * MIN);
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_EVERY_CHANGE]);
        assert!(
            r.reasons()[0].contains("run a new baseline"),
            "{:?}",
            r.reasons()
        );
        // Lost before the baseline began: the baseline read the state they left.
        input.coverage[0].last_gap_at_ms = Some(NOW - 40 * MIN);
        assert!(assess_default(&input).ready);
    }

    #[test]
    fn no_stream_coverage_is_no_go() {
        let mut input = go();
        input
            .coverage
            .retain(|c| c.source == CoverageSource::Baseline);
        let r = assess_default(&input);
        assert!(!r.ready);
        assert_eq!(failing(&r), [CHECK_NO_GAP, CHECK_STREAM_RECENT]);
        assert!(r.reasons()[0].contains("no stream verification recorded"));
        assert_eq!(r.to_json()["verified_until"], Value::Null);
    }

    #[test]
    fn stream_coverage_without_a_verified_change_is_no_go() {
        let mut input = go();
        input.coverage[0] = Coverage {
            last_retry_at_ms: Some(NOW - 30 * MIN),
            ..coverage(CoverageSource::Stream, "fn")
        };
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_NO_GAP, CHECK_STREAM_RECENT]);
    }

    #[test]
    fn stale_stream_verification_is_no_go_and_recent_is_go() {
        let mut input = go();
        input.coverage[0] = stream(NOW - 60 * MIN, NOW - 7 * MIN - 10_000);
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_STREAM_RECENT]);
        assert!(r.reasons()[0].contains("(7m 10s ago)"), "{:?}", r.reasons());
        assert!(r.reasons()[0].contains("more than 5m behind"));
        // A larger allowance accepts it.
        let lenient = ReadinessOptions {
            max_lag: Duration::from_secs(10 * 60),
        };
        assert!(assess(&input, NOW, &lenient).ready);
        // Exactly max_lag behind is within it.
        input.coverage[0] = stream(NOW - 60 * MIN, NOW - 5 * MIN);
        assert!(assess_default(&input).ready);
    }

    #[test]
    fn the_newest_verified_change_of_any_stream_coverage_counts() {
        let mut input = go();
        input.coverage[0] = stream(NOW - 60 * MIN, NOW - 50 * MIN);
        input.coverage.push(Coverage {
            started_at_ms: Some(NOW - 40 * MIN),
            verified_until_ms: Some(NOW - 30_000),
            ..coverage(CoverageSource::Poller, "arn:stream")
        });
        let r = assess_default(&input);
        assert!(r.ready, "{:#?}", r.checks);
        assert_eq!(r.verified_until_ms, Some(NOW - 30_000));
    }

    #[test]
    fn open_findings_are_no_go_and_accepted_ones_are_listed_only() {
        let mut input = go();
        input.open = vec![
            finding("customerId=\"c#1\" orderId=7", FindingStatus::Open),
            finding("customerId=\"c#2\" orderId=8", FindingStatus::Open),
        ];
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_NO_OPEN_FINDINGS]);
        assert!(r.reasons()[0]
            .starts_with("2 open findings (first: customerId=\"c#1\" orderId=7 MISMATCH)"));
        assert_eq!(r.to_json()["open_findings"], 2);

        input.accepted = input
            .open
            .drain(..)
            .map(|mut f| {
                f.status = FindingStatus::Accepted;
                f.reason = Some("known test item".into());
                f
            })
            .collect();
        let r = assess_default(&input);
        assert!(r.ready, "{:#?}", r.checks);
        assert!(check(&r, CHECK_NO_OPEN_FINDINGS)
            .detail
            .contains("2 accepted"));
        let json = r.to_json();
        assert_eq!(json["open_findings"], 0);
        assert_eq!(
            json["accepted_findings"][0],
            json!({"key": "customerId=\"c#1\" orderId=7", "verdict": "MISMATCH", "reason": "known test item"})
        );
        assert!(r.to_text().contains("accepted findings (2, not blocking)"));
    }

    #[test]
    fn a_recent_retry_is_no_go_and_an_old_one_is_not() {
        let mut input = go();
        input.coverage[0].last_retry_at_ms = Some(NOW - 2 * MIN);
        let r = assess_default(&input);
        assert_eq!(failing(&r), [CHECK_NO_RECENT_RETRIES]);
        assert!(
            r.reasons()[0].contains("(2m ago, within 5m) by stream stream-verifier"),
            "{:?}",
            r.reasons()
        );
        input.coverage[0].last_retry_at_ms = Some(NOW - 6 * MIN);
        let r = assess_default(&input);
        assert!(r.ready, "{:#?}", r.checks);
        assert!(check(&r, CHECK_NO_RECENT_RETRIES).detail.contains("6m ago"));
    }

    #[test]
    fn every_failing_reason_is_given_at_once() {
        let input = ReadinessInput {
            table: "Orders".into(),
            coverage: vec![
                Coverage {
                    last_retry_at_ms: Some(NOW - 1000),
                    ..stream(NOW - 10 * MIN, NOW - 9 * MIN)
                },
                baseline(NOW - 30 * MIN, Some(NOW - 20 * MIN)),
            ],
            open: vec![finding("k=1", FindingStatus::Open)],
            accepted: vec![],
        };
        let r = assess_default(&input);
        assert_eq!(
            failing(&r),
            [
                CHECK_NO_GAP,
                CHECK_STREAM_RECENT,
                CHECK_NO_OPEN_FINDINGS,
                CHECK_NO_RECENT_RETRIES
            ]
        );
        assert_eq!(r.reasons().len(), 4);
        let text = r.to_text();
        assert!(text.starts_with("NO-GO for table Orders (checked 2024-02-29T12:00:00Z)"));
        assert_eq!(text.matches("[FAIL]").count(), 4);
        assert_eq!(text.matches("[ ok ]").count(), 2);
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(1_709_251_199_000), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(1_709_251_200_000), "2024-03-01T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_400_000), "2100-03-01T00:00:00Z"); // 2100 is not a leap year
        assert_eq!(rfc3339(1_704_067_199_999), "2023-12-31T23:59:59.999Z");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(s(250)), "4m 10s");
        assert_eq!(human_duration(s(45)), "45s");
        assert_eq!(human_duration(s(300)), "5m");
        assert_eq!(human_duration(s(3600 + 5 * 60 + 7)), "1h 5m");
        assert_eq!(human_duration(s(7200)), "2h");
        assert_eq!(human_duration(s(86_400 * 3 + 3600)), "3d 1h");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
    }
}
