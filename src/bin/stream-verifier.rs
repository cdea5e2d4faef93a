//! Lambda function attached to a DynamoDB stream: verifies each batch against the other account's
//! table and returns the records it could not verify as batch item failures.

use std::sync::Arc;

use ddb_verify::config::Config;
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::verify::timing::deadline_instant;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let handler = Arc::new(ddb_verify::aws::stream_verifier(config).await);

    run(service_fn(move |event: LambdaEvent<StreamEvent>| {
        let handler = Arc::clone(&handler);
        async move {
            let deadline = deadline_instant(event.context.deadline);
            Ok::<_, Error>(
                handler
                    .handle_and_emit(&event.payload, Some(deadline))
                    .await,
            )
        }
    }))
    .await
}
