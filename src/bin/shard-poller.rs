//! Scheduled companion of the stream verifier: reads the stream's shards itself (for a stream that
//! cannot be attached to a function), checkpoints in a DynamoDB table, and verifies with the same
//! engine. In Lambda (an EventBridge schedule) each invocation reads until its deadline; elsewhere it
//! polls every `POLL_INTERVAL` until interrupted (`--once` for a single pass).

use ddb_verify::aws::checkpoints::DynamoDbCheckpoints;
use ddb_verify::aws::clients::{
    account_sdk_config, source_sdk_config, target_sdk_config, AccountAccess,
};
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::aws::streams::DynamoDbStreams;
use ddb_verify::engine::Verifier;
use ddb_verify::poller::{latest_stream_arn, Poller, PollerConfig, StreamSelector};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use tokio::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config =
        PollerConfig::from_env().inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let own = source_sdk_config().await;
    let stream_region = match &config.stream {
        StreamSelector::Arn(arn) => arn.split(':').nth(3).map(String::from),
        StreamSelector::SourceTable(_) => None,
    };
    let access = AccountAccess {
        role_arn: config.stream_role_arn.as_deref(),
        external_id: config.stream_role_external_id.as_deref(),
        region: stream_region.as_deref(),
        ..Default::default()
    };
    let stream_account = account_sdk_config(&access, &own).await;
    let source = aws_sdk_dynamodb::Client::new(&stream_account);
    let target = aws_sdk_dynamodb::Client::new(&target_sdk_config(&config.verify, &own).await);
    let checkpoints = DynamoDbCheckpoints::new(
        aws_sdk_dynamodb::Client::new(&own),
        &config.checkpoint_table,
    );
    let verifier = Verifier::new(
        config.verify.clone(),
        DynamoDbReader::new(target),
        DynamoDbReader::new(source.clone()),
    );
    let streams = DynamoDbStreams::new(aws_sdk_dynamodbstreams::Client::new(&stream_account));
    let poller = Poller::new(streams, checkpoints, verifier, config.clone());
    let stream_arn = || async {
        match &config.stream {
            StreamSelector::Arn(arn) => Ok(arn.clone()),
            StreamSelector::SourceTable(table) => latest_stream_arn(&source, table).await,
        }
    };

    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        let (poller, stream_arn) = (&poller, &stream_arn);
        return run(service_fn(
            move |event: LambdaEvent<serde_json::Value>| async move {
                let deadline = ddb_verify::handler::deadline_instant(event.context.deadline);
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
            tracing::error!(error = %aws_smithy_types::error::display::DisplayErrorContext(e), "poll run failed");
        }
        if once {
            return result.map(|_| ()).map_err(Error::from);
        }
        // Interrupting loses nothing: progress is checkpointed per batch and leases expire.
        tokio::time::sleep_until(cycle).await;
    }
}
