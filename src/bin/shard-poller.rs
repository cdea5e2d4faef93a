//! Scheduled companion of the stream verifier: reads the stream's shards itself (for a stream that
//! cannot be attached to a function), checkpoints in a DynamoDB table, and verifies with the same
//! engine. In Lambda (an EventBridge schedule) each invocation reads until its deadline; elsewhere it
//! polls every `POLL_INTERVAL` until interrupted (`--once` for a single pass).

use aws_smithy_types::error::display::DisplayErrorContext;
use ddb_verify::aws::checkpoints::DynamoDbCheckpoints;
use ddb_verify::aws::clients::poller_clients;
use ddb_verify::aws::{reader::DynamoDbReader, stream_arn, streams::DynamoDbStreams};
use ddb_verify::config::PollerConfig;
use ddb_verify::poller::Poller;
use ddb_verify::verify::{timing::deadline_instant, Verifier};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use tokio::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config =
        PollerConfig::from_env().inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let clients = poller_clients(&config).await;
    let reader = |client| DynamoDbReader::new(client);
    let verifier = Verifier::new(
        config.verify.clone(),
        reader(clients.target),
        reader(clients.source.clone()),
    );
    let checkpoints = DynamoDbCheckpoints::new(clients.own, &config.checkpoint_table);
    let streams = DynamoDbStreams::new(clients.streams);
    let poller = Poller::new(streams, checkpoints, verifier, config.clone());
    let stream_arn = || stream_arn(&config.stream, &clients.source);

    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        let (poller, stream_arn) = (&poller, &stream_arn);
        return run(service_fn(
            move |event: LambdaEvent<serde_json::Value>| async move {
                let deadline = deadline_instant(event.context.deadline);
                let report = poller.run_and_emit(&stream_arn().await?, deadline).await?;
                Ok::<_, Error>(serde_json::json!({ "recordsRead": report.poller.records_read }))
            },
        ))
        .await;
    }
    let once = std::env::args().any(|a| a == "--once");
    loop {
        let cycle = Instant::now() + config.poll_interval;
        let result = poller.run_and_emit(&stream_arn().await?, cycle).await;
        if let Err(e) = &result {
            tracing::error!(error = %DisplayErrorContext(e), "poll run failed");
        }
        if once {
            return result.map(|_| ()).map_err(Error::from);
        }
        // Interrupting loses nothing: progress is checkpointed per batch and leases expire.
        tokio::time::sleep_until(cycle).await;
    }
}
