//! Lambda function for the baseline compare at scale: one segment per invocation, from its
//! checkpoint until the deadline, under a Step Functions Distributed Map (contract in
//! `ddb_verify::lambda::baseline`).

use ddb_verify::config::BaselineConfig;
use ddb_verify::lambda::baseline::{handle, BaselineRequest};
use ddb_verify::verify::timing::deadline_instant;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// mimalloc, configured before the first allocation (`ddb_verify::allocator`).
ddb_verify::use_mimalloc!();

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = BaselineConfig::from_env()
        .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let baseline = ddb_verify::wiring::baseline(config).await;
    let sides = baseline.sides();
    // A table compared with itself would answer MATCH for every item: refused before any run.
    sides
        .refuse_same_table()
        .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    tracing::info!(source = %sides.source, other_side = %sides.other, "baseline segment function started");
    if baseline.config().verify.findings_table.is_none() {
        tracing::warn!("{}", ddb_verify::baseline::NOT_COUNTED);
    }
    let baseline = &baseline;
    run(service_fn(
        move |event: LambdaEvent<BaselineRequest>| async move {
            let deadline = deadline_instant(event.context.deadline);
            Ok::<_, Error>(handle(baseline, event.payload, deadline).await?)
        },
    ))
    .await
}
