//! Lambda function, on a schedule: checks the open findings due again (contract in
//! `ddb_verify::revalidate`), then assesses the table's readiness; with `TABLE_PAIRS`, every
//! pair in turn, each with an equal share of the time left. Any payload is accepted and ignored;
//! the answer is the run's report with `ready` and `reasons` (with pairs, `{"ready", "pairs":
//! [...]}`, one report each), and its EMF documents carry `OpenFindings`, `Ready` (1 GO, 0
//! NO-GO) and a metric per readiness check, under each pair's `VerifyTable`.

use ddb_verify::config::pairs::table_pairs;
use ddb_verify::config::{ConfigError, RevalidatorConfig};
use ddb_verify::verify::timing::deadline_instant;
use ddb_verify::wiring::ScheduledRevalidation;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// mimalloc, configured before the first allocation (`ddb_verify::allocator`).
ddb_verify::use_mimalloc!();

/// Each pair's configuration: `TABLE_PAIRS`' pairs over the other variables, or the variables
/// alone; a table compared with itself refused (it would resolve every finding).
async fn configs() -> Result<(Vec<RevalidatorConfig>, bool), ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let configs = match table_pairs(env("TABLE_PAIRS"))? {
        None => (vec![RevalidatorConfig::from_env()?], false),
        Some(pairs) => (
            pairs
                .iter()
                .map(|pair| RevalidatorConfig::from_lookup(|n| pair.value(n, env)))
                .collect::<Result<_, _>>()?,
            true,
        ),
    };
    let region = ddb_verify::aws::clients::default_region().await;
    for config in &configs.0 {
        let sides = config.sides(region.as_deref());
        sides.refuse_same_table()?;
        tracing::info!(source = %sides.source, other_side = %sides.other, "revalidator started");
    }
    Ok(configs)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let (configs, many) = configs()
        .await
        .inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let scheduled = ScheduledRevalidation::new(configs, many).await;
    let scheduled = &scheduled;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_instant(event.context.deadline);
            Ok::<_, Error>(scheduled.run(deadline).await?)
        },
    ))
    .await
}
