//! Lambda function, on a schedule: checks the open findings due again (contract in
//! `ddb_verify::revalidate`), then assesses the table's readiness. Any payload is accepted and
//! ignored; the answer is the run's report with `ready` and `reasons`, and its EMF documents carry
//! `OpenFindings`, `Ready` (1 GO, 0 NO-GO) and a metric per readiness check.

use ddb_verify::config::RevalidatorConfig;
use ddb_verify::readiness::{Readiness, ReadinessOptions};
use ddb_verify::report::emf;
use ddb_verify::revalidate::scheduled;
use ddb_verify::verify::timing::deadline_instant;
use ddb_verify::wiring::ReadinessSources;
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
    let (source, _) = ddb_verify::aws::clients::dynamodb_clients(&config.verify).await;
    let sources = ReadinessSources::new(
        &config.findings_table,
        config.failure_queue_url.as_deref(),
        source,
    )
    .await;
    let verify = config.verify.clone();
    let source_table = config.source_table.clone();
    let revalidator = ddb_verify::wiring::revalidator(config).await;
    let (revalidator, sources, verify, source_table) =
        (&revalidator, &sources, &verify, &source_table);
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_instant(event.context.deadline);
            let mut answer = scheduled(revalidator, deadline).await?;
            let (table, api_name) = (revalidator.table_name(), &source_table);
            let readiness = sources
                .assess(table, api_name, &ReadinessOptions::default())
                .await;
            let (ready, reasons) = match &readiness {
                Ok(r) => (r.ready, r.reasons().iter().map(|s| s.to_string()).collect()),
                // Not assessed is never GO: Ready 0, and why.
                Err(e) => (false, vec![format!("readiness could not be read: {e}")]),
            };
            let metrics = match &readiness {
                Ok(r) => r.metrics(),
                Err(_) => Readiness::not_assessed_metrics(),
            };
            emf::emit(verify, &metrics);
            answer["ready"] = ready.into();
            answer["reasons"] = serde_json::json!(reasons);
            Ok::<_, Error>(answer)
        },
    ))
    .await
}
