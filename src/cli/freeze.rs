//! `ddb-verify freeze`: records the cut-over's freeze in the findings table, where readiness,
//! this CLI's and the scheduled revalidator's, finds it. While it is there, readiness judges as
//! `--writes-stopped-at` does: GO needs every change created before it verified, not coverage
//! reaching now, so the dashboard's `Ready` and its alarm stay true through the cut-over.
//! `--lift` ends it (after a rehearsal, or when the cut-over is called off).

use std::time::Duration;

use serde_json::{json, Value};

use super::findings::{every_pair, parse_time, store};
use super::{CliError, Ending, Env};
use crate::ports::findings::{FindingsStore, RecordedFreeze};
use crate::shared::{epoch_ms, rfc3339};

/// A time later than now by more than this is refused: the freeze is when writes *did* stop.
const FUTURE_ALLOWED_MS: u64 = 1_000;

#[derive(Debug, clap::Args)]
pub struct FreezeArgs {
    /// When the source's writes stopped (RFC 3339, such as 2026-12-07T18:00:00Z); without it,
    /// now: run it once the writes have stopped. A later time is safe, an earlier one is not.
    #[arg(long, value_parser = parse_at, conflicts_with = "lift")]
    pub at: Option<u64>,
    /// How long the cut-over window lasts, from now (30m, 2h; at most 24h): after it, readiness
    /// says NO-GO until the freeze is recorded again or lifted, so one left behind proves nothing.
    #[arg(long = "for", value_name = "DURATION", default_value = "2h", value_parser = parse_window, conflicts_with = "lift")]
    pub window: Duration,
    /// Ends the freeze: readiness judges against now again.
    #[arg(long)]
    pub lift: bool,
    /// Every pair of TABLE_PAIRS (their writes stop together).
    #[arg(long)]
    pub all: bool,
    /// Prints JSON (with --all, an array of one object per pair).
    #[arg(long)]
    pub json: bool,
}

fn parse_at(value: &str) -> Result<u64, String> {
    parse_time("--at", value)
}

/// `--for`: a duration (at most 24h, as every duration here), above zero.
fn parse_window(value: &str) -> Result<Duration, String> {
    let window = crate::config::parse_duration("--for", value).map_err(|e| e.to_string())?;
    if window.is_zero() {
        return Err(format!(
            "--for {value} is no cut-over window: give one above zero (at most 24h)"
        ));
    }
    Ok(window)
}

/// The freeze of the pair `env` stands for.
pub async fn run(args: FreezeArgs, env: &Env) -> Result<Ending, CliError> {
    let answer = freeze_one(&args, env, epoch_ms()).await?;
    print_answers(&args, &[answer]);
    Ok(Ending::Equal)
}

/// The freeze of every pair of `TABLE_PAIRS`, at one time. A pair that fails does not stop the
/// others; the run shows what was done and ends in an error naming each pair that failed.
pub async fn run_all(args: FreezeArgs) -> Result<Ending, CliError> {
    let now = epoch_ms();
    let (mut answers, mut failed) = (Vec::new(), Vec::new());
    for pair in every_pair()? {
        let name = pair.name();
        match freeze_one(&args, &Env::of(pair), now).await {
            Ok(answer) => answers.push(answer),
            Err(e) => failed.push(format!(
                "{name}: {}",
                crate::shared::error_chain(e.as_ref())
            )),
        }
    }
    print_answers(&args, &answers);
    if !failed.is_empty() {
        return Err(format!(
            "the freeze of {} pair(s) was not {}: {}",
            failed.len(),
            if args.lift { "lifted" } else { "recorded" },
            failed.join("; ")
        )
        .into());
    }
    Ok(Ending::Equal)
}

/// Records (or lifts) one pair's freeze; what was done, as JSON.
async fn freeze_one(args: &FreezeArgs, env: &Env, now: u64) -> Result<Value, CliError> {
    let (config, store) = store(env).await?;
    let table = config.source_table.as_str();
    if args.lift {
        let lifted = store.lift_freeze(table).await?;
        return Ok(json!({ "table": table, "lifted": lifted }));
    }
    let stopped_at = args.at.unwrap_or(now);
    if stopped_at > now + FUTURE_ALLOWED_MS {
        return Err(format!(
            "--at {} is in the future (now {}): give the time the writes stopped",
            rfc3339(stopped_at),
            rfc3339(now)
        )
        .into());
    }
    let freeze = RecordedFreeze {
        writes_stopped_at_ms: stopped_at,
        recorded_at_ms: now,
        recorded_by: super::operator("freeze"),
        valid_until_ms: now.saturating_add(args.window.as_millis() as u64),
    };
    store.record_freeze(table, &freeze).await?;
    Ok(json!({
        "table": table,
        "writes_stopped_at": rfc3339(stopped_at),
        "valid_until": rfc3339(freeze.valid_until_ms),
        "recorded_by": freeze.recorded_by,
    }))
}

fn print_answers(args: &FreezeArgs, answers: &[Value]) {
    if args.json {
        match answers {
            [one] if !args.all => println!("{one}"),
            _ => println!("{}", Value::Array(answers.to_vec())),
        }
        return;
    }
    for a in answers {
        let table = a["table"].as_str().unwrap_or_default();
        match a.get("lifted") {
            Some(Value::Bool(true)) => {
                println!("{table}: freeze lifted; readiness judges against now again")
            }
            Some(_) => println!("{table}: no freeze was recorded"),
            None => println!(
                "{table}: writes stopped at {} recorded, until {}; readiness needs every change before it verified (`ddb-verify freeze --lift` ends it)",
                a["writes_stopped_at"].as_str().unwrap_or_default(),
                a["valid_until"].as_str().unwrap_or_default()
            ),
        }
    }
}
