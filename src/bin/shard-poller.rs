//! Scheduled companion of the stream verifier: reads the stream's shards itself (for a stream that
//! cannot be attached to a function), checkpoints in a DynamoDB table, and verifies with the same
//! engine. In Lambda (an EventBridge schedule) each invocation reads until its deadline; elsewhere it
//! polls every `POLL_INTERVAL` until interrupted (`--once` for a single pass). With `TABLE_PAIRS`
//! it reads every pair's stream at once (or the one `--table` names), each under its own pair's
//! variables; the checkpoint table is shared (its keys carry the stream).

use clap::Parser;
use ddb_verify::config::pairs::table_pairs;
use ddb_verify::config::{ConfigError, PollerConfig};
use ddb_verify::verify::timing::deadline_instant;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// mimalloc, configured before the first allocation (`ddb_verify::allocator`).
ddb_verify::use_mimalloc!();

/// Reads a DynamoDB stream's shards and verifies every change against the other side's table.
/// Configured by environment variables (docs/configuration.md); in Lambda, one pass per invocation.
#[derive(Debug, Parser)]
#[command(name = "shard-poller", version)]
struct Args {
    /// One pass over the stream, then exit (outside Lambda; without it, a pass every POLL_INTERVAL
    /// until interrupted).
    #[arg(long)]
    once: bool,
    /// With TABLE_PAIRS: only the pair of this source table (without it, every pair).
    #[arg(long)]
    table: Option<String>,
}

/// Each stream's configuration: every pair of `TABLE_PAIRS` (or the one `table` names) over the
/// other variables, `STREAM_ARN` left out (each pair's stream is its table's); or the variables.
fn configs(table: Option<&str>) -> Result<Vec<PollerConfig>, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let Some(pairs) = table_pairs(env("TABLE_PAIRS"))? else {
        return match table {
            Some(_) => Err(ConfigError::Pairs {
                why: "--table chooses a pair of TABLE_PAIRS, which is not set: set it, or leave --table out".into(),
            }),
            None => Ok(vec![PollerConfig::from_env()?]),
        };
    };
    let chosen: Vec<_> = pairs
        .iter()
        .filter(|p| table.is_none_or(|t| p.name() == t))
        .collect();
    if chosen.is_empty() {
        let names: Vec<String> = pairs.iter().map(|p| p.name()).collect();
        return Err(ConfigError::Pairs {
            why: format!(
                "--table {} is not a pair of TABLE_PAIRS (its pairs: {})",
                table.unwrap_or_default(),
                names.join(", ")
            ),
        });
    }
    chosen
        .into_iter()
        .map(|pair| {
            PollerConfig::from_lookup(|n| match n {
                "STREAM_ARN" => None,
                _ => pair.value(n, env),
            })
        })
        .collect()
}

/// The first failure of the runs made side by side in one invocation, once all of them have
/// ended (each stops at the invocation's deadline).
fn first_error<T, E>(results: Vec<Result<T, E>>) -> Result<Vec<T>, E> {
    results.into_iter().collect()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    // An unknown flag is an error (exit 1), never ignored: a mistyped --once would poll forever.
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    if in_lambda {
        lambda_runtime::tracing::init_default_subscriber();
    } else {
        // Colour only on a terminal.
        ddb_verify::cli::init_logging();
    }
    let configs = configs(args.table.as_deref())
        .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let region = ddb_verify::aws::clients::default_region().await;
    let mut pollers = Vec::new();
    for config in configs {
        let sides = config.sides(region.as_deref());
        // A table compared with itself would answer MATCH for every record: refused before any run.
        sides
            .refuse_same_table()
            .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
        tracing::info!(source = %sides.source, other_side = %sides.other, "shard poller started");
        pollers.push(ddb_verify::wiring::poller(config).await);
    }
    if !in_lambda {
        // The first pair that fails ends the process (as one pair's failure did before), not
        // left unread while the others poll on.
        let passes = pollers
            .iter()
            .map(|(poller, stream)| poller.poll(|| stream.stream_arn(), args.once));
        futures::future::try_join_all(passes).await?;
        return Ok(());
    }
    let pollers = &pollers;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_instant(event.context.deadline);
            let runs = pollers.iter().map(|(poller, stream)| async move {
                poller
                    .run_and_emit(&stream.stream_arn().await?, deadline)
                    .await
            });
            let reports = first_error(futures::future::join_all(runs).await)?;
            let read: u64 = reports.iter().map(|r| r.poller.records_read).sum();
            Ok::<_, Error>(serde_json::json!({ "recordsRead": read }))
        },
    ))
    .await
}
