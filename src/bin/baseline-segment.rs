//! Lambda function for the baseline compare at scale: one segment per invocation, from its
//! checkpoint until the deadline, under a Step Functions Distributed Map (contract in
//! `ddb_verify::lambda::baseline`). With `TABLE_PAIRS`, one function serves every pair: the
//! request's `table` chooses the pair (the first pair without it).

use ddb_verify::config::pairs::table_pairs;
use ddb_verify::config::{BaselineConfig, ConfigError};
use ddb_verify::lambda::baseline::{handle, BaselineRequest};
use ddb_verify::verify::timing::deadline_instant;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// mimalloc, configured before the first allocation (`ddb_verify::allocator`).
ddb_verify::use_mimalloc!();

/// Each pair's configuration with its source table's name: `TABLE_PAIRS`' pairs over the other
/// variables, or the variables alone.
fn configs() -> Result<Vec<(String, BaselineConfig)>, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    match table_pairs(env("TABLE_PAIRS"))? {
        None => {
            let config = BaselineConfig::from_env()?;
            let name = ddb_verify::config::TableRef::parse_or_keep(&config.source_table).name;
            Ok(vec![(name, config)])
        }
        Some(pairs) => pairs
            .iter()
            .map(|pair| {
                let config = BaselineConfig::from_lookup(|n| pair.value(n, env))?;
                Ok((pair.name(), config))
            })
            .collect(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let configs = configs().inspect_err(|e| tracing::error!("invalid configuration: {e}"))?;
    let mut baselines = Vec::new();
    for (name, config) in configs {
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
        baselines.push((name, baseline));
    }
    let baselines = &baselines;
    run(service_fn(
        move |event: LambdaEvent<BaselineRequest>| async move {
            let deadline = deadline_instant(event.context.deadline);
            let baseline = match event.payload.table() {
                None => &baselines[0].1,
                Some(table) => match baselines.iter().find(|(name, _)| name == table) {
                    Some((_, baseline)) => baseline,
                    None => {
                        let names: Vec<&str> = baselines.iter().map(|(n, _)| n.as_str()).collect();
                        return Err(Error::from(format!(
                            "the request's table {table} is not one this function compares (its tables: {})",
                            names.join(", ")
                        )));
                    }
                },
            };
            Ok::<_, Error>(handle(baseline, event.payload, deadline).await?)
        },
    ))
    .await
}
