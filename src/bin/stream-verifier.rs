//! Lambda function attached to a DynamoDB stream: verifies each batch against the other account's
//! table and returns the records it could not verify as batch item failures.

use std::sync::Arc;

use ddb_verify::aws::clients::dynamodb_clients;
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::config::Config;
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::lambda::handler::StreamVerifier;
use ddb_verify::verify::timing::deadline_instant;
use ddb_verify::verify::Verifier;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config =
        Config::from_env().inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let (source, target) = dynamodb_clients(&config).await;
    let verifier = Verifier::new(
        config,
        DynamoDbReader::new(target),
        DynamoDbReader::new(source),
    );
    let handler = Arc::new(StreamVerifier::new(verifier));

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
