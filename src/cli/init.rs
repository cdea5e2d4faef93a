//! `ddb-verify init`: creates the verifier's own tables in this account, `CHECKPOINT_TABLE` and
//! `FINDINGS_TABLE` (those set), as `template.yaml` does: the keys and index of their one layout
//! (`ports::checkpoint::CHECKPOINT_LAYOUT`, `ports::findings::FINDINGS_LAYOUT`), on demand, TTL on
//! the findings' `expiresAt`, point-in-time recovery. Idempotent: a table already there with its
//! layout is left as it is (its TTL and recovery turned on if off); one of another layout is an
//! error naming it.
//!
//! An endpoint without an operation (DynamoDB Local has no point-in-time recovery) is said, not an
//! error. Exit status: 0 when every table is ready, 1 on an error.

use serde_json::{json, Value};

use super::baseline::CliError;
use super::Ending;
use crate::aws::tables::{ensure, Ensured};
use crate::config::InitConfig;
use crate::ports::checkpoint::CHECKPOINT_LAYOUT;
use crate::ports::findings::FINDINGS_LAYOUT;
use crate::ports::layout::Layout;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Prints one JSON object ({"tables": [{"variable", "table", "created", "time_to_live",
    /// "point_in_time_recovery"}]}) instead of a line per table.
    #[arg(long)]
    pub json: bool,
}

fn line(layout: &Layout, table: &str, done: &Ensured) -> String {
    let what = if done.created {
        "created"
    } else {
        "exists, OK"
    };
    format!(
        "{} {table}: {what} (key {}); TTL: {}; point-in-time recovery: {}",
        layout.variable,
        layout.key_schema(),
        done.time_to_live,
        done.point_in_time_recovery
    )
}

pub async fn run(args: InitArgs) -> Result<Ending, CliError> {
    let config = InitConfig::from_env()?;
    let sdk = crate::aws::clients::source_sdk_config().await;
    // Every call bounded, as preflight's: init never hangs on an endpoint that does not answer.
    let client = crate::aws::preflight::bounded(&aws_sdk_dynamodb::Client::new(&sdk));
    let mut done: Vec<Value> = Vec::new();
    for (layout, table) in [
        (CHECKPOINT_LAYOUT, &config.checkpoint_table),
        (FINDINGS_LAYOUT, &config.findings_table),
    ] {
        let Some(table) = table else { continue };
        let ensured = ensure(&client, table, &layout).await?;
        if !args.json {
            println!("{}", line(&layout, table, &ensured));
        }
        done.push(json!({
            "variable": layout.variable,
            "table": table,
            "created": ensured.created,
            "time_to_live": ensured.time_to_live.to_string(),
            "point_in_time_recovery": ensured.point_in_time_recovery.to_string(),
        }));
    }
    if args.json {
        println!("{}", json!({ "tables": done }));
    }
    Ok(Ending::Equal)
}
