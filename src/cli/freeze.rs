//! `ddb-verify freeze`: records the cut-over's freeze in the findings table, where readiness,
//! this CLI's and the scheduled revalidator's, finds it. While it is there, readiness judges as
//! `--writes-stopped-at` does: GO needs every change created before it verified, not coverage
//! reaching now, so the dashboard's `Ready` and its alarm stay true through the cut-over.
//! `--lift` ends it (after a rehearsal, or when the cut-over is called off).

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

/// The freeze of the pair `env` stands for.
pub async fn run(args: FreezeArgs, env: &Env) -> Result<Ending, CliError> {
    let answer = freeze_one(&args, env, epoch_ms()).await?;
    print_answers(&args, &[answer]);
    Ok(Ending::Equal)
}

/// The freeze of every pair of `TABLE_PAIRS`, at one time.
pub async fn run_all(args: FreezeArgs) -> Result<Ending, CliError> {
    let now = epoch_ms();
    let mut answers = Vec::new();
    for pair in every_pair()? {
        answers.push(freeze_one(&args, &Env::of(pair), now).await?);
    }
    print_answers(&args, &answers);
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
    };
    store.record_freeze(table, &freeze).await?;
    Ok(json!({
        "table": table,
        "writes_stopped_at": rfc3339(stopped_at),
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
                "{table}: writes stopped at {} recorded; readiness needs every change before it verified (`ddb-verify freeze --lift` ends it)",
                a["writes_stopped_at"].as_str().unwrap_or_default()
            ),
        }
    }
}
