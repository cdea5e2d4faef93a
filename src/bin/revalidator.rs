//! Lambda function, on a schedule: checks the open findings due again (contract in
//! `ddb_verify::revalidate`). Any payload is accepted and ignored; the answer is the run's report,
//! and its EMF document carries `OpenFindings`.

use ddb_verify::config::RevalidatorConfig;
use ddb_verify::revalidate::scheduled;
use ddb_verify::verify::timing::deadline_instant;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// mimalloc, configured before the first allocation (`ddb_verify::allocator`).
ddb_verify::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = RevalidatorConfig::from_env()
        .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let sides = config.sides(ddb_verify::aws::clients::default_region().await.as_deref());
    // A table compared with itself would resolve every finding: refused before any run.
    sides
        .refuse_same_table()
        .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    tracing::info!(source = %sides.source, other_side = %sides.other, "revalidator started");
    let revalidator = ddb_verify::wiring::revalidator(config).await;
    let revalidator = &revalidator;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_instant(event.context.deadline);
            Ok::<_, Error>(scheduled(revalidator, deadline).await?)
        },
    ))
    .await
}
