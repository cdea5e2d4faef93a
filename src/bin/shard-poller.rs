//! Scheduled companion of the stream verifier: reads the stream's shards itself (for a stream that
//! cannot be attached to a function), checkpoints in a DynamoDB table, and verifies with the same
//! engine. In Lambda (an EventBridge schedule) each invocation reads until its deadline; elsewhere it
//! polls every `POLL_INTERVAL` until interrupted (`--once` for a single pass).

use clap::Parser;
use ddb_verify::config::PollerConfig;
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
    let config =
        PollerConfig::from_env().inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let sides = config.sides(ddb_verify::aws::clients::default_region().await.as_deref());
    // A table compared with itself would answer MATCH for every record: refused before any run.
    sides
        .refuse_same_table()
        .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    tracing::info!(source = %sides.source, other_side = %sides.other, "shard poller started");
    let (poller, stream) = ddb_verify::wiring::poller(config).await;
    if !in_lambda {
        return Ok(poller.poll(|| stream.stream_arn(), args.once).await?);
    }
    let (poller, stream) = (&poller, &stream);
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_instant(event.context.deadline);
            let report = poller
                .run_and_emit(&stream.stream_arn().await?, deadline)
                .await?;
            Ok::<_, Error>(serde_json::json!({ "recordsRead": report.poller.records_read }))
        },
    ))
    .await
}
