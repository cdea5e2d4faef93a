//! `ddb-verify preflight`: checks the migration's set-up before the copy and the verification,
//! each check OK / INFO / WARN / FAIL / NOT CHECKED with what it found and what to do (a table, or
//! one JSON object with `--json`). The checks are `preflight::assess`'s; the calls
//! `aws::preflight::gather`'s.
//!
//! Exit status: 0 when no check fails, 2 when one does, 1 on an error (a bad variable).

use super::baseline::CliError;
use super::Ending;
use crate::aws::preflight::GatherOptions;
use crate::config::PreflightConfig;
use crate::preflight::Report;

/// Checks both tables, the stream, its readers and the verifier's own tables before a migration:
/// OK / INFO / WARN / FAIL / NOT CHECKED with what each found and what to do. A check the
/// credentials cannot make is NOT CHECKED and never fails the run; a table that cannot be
/// described is a FAIL. Exit 0 when nothing FAILs, 2 when something does, 1 on an error.
#[derive(Debug, clap::Args)]
pub struct PreflightArgs {
    /// Prints one JSON object ({"checks": [{"name", "status", "found", "todo"}], "failed", ...})
    /// instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A shard poller reads the source stream too (DeployPoller=true, or `shard-poller` run by
    /// hand): counted as a reader of each shard. Readers counted: the enabled event source
    /// mappings on the stream that these credentials can list, the poller with this flag, and
    /// --other-readers; more than two is a WARN (DynamoDB Streams throttles above two per shard).
    #[arg(long)]
    pub poller: bool,
    /// Readers of the source stream preflight cannot list (a replicator outside Lambda or in
    /// another account): counted with the others.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub other_readers: u32,
    /// Processes reading each table at once, each at MAX_READ_UNITS: a Step Functions baseline
    /// runs BaselineMaxConcurrency segment functions (40 by default), and the revalidator reads
    /// too. The read budget compared with each table's capacity is MAX_READ_UNITS times this.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub processes: u32,
    /// The functions' execution roles, comma-separated or repeated: the stack's
    /// StreamVerifierRoleArn, ShardPollerRoleArn, BaselineSegmentRoleArn and RevalidatorRoleArn
    /// outputs (aws cloudformation describe-stacks --stack-name STACK --query
    /// "Stacks[0].Outputs[?ends_with(OutputKey,'RoleArn')].OutputValue" --output text | tr '\t' ',').
    /// Each is assumed from these credentials, then through it VERIFY_ROLE_ARN and SOURCE_ROLE_ARN
    /// (with their external ids): a role the other account's role refuses is a FAIL. It proves
    /// trust and the external id, not the table permissions; a role these credentials cannot
    /// assume (Lambda's trust only) is NOT CHECKED.
    #[arg(long = "as-deployed", value_name = "ROLE_ARN", value_delimiter = ',', value_parser = role_arn)]
    pub as_deployed: Vec<String>,
}

fn role_arn(value: &str) -> Result<String, String> {
    let value = value.trim();
    match value.starts_with("arn:") && value.contains(":role/") {
        true => Ok(value.to_string()),
        false => Err("expected an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)".into()),
    }
}

pub async fn run(args: PreflightArgs, env: &super::Env) -> Result<Ending, CliError> {
    let config = PreflightConfig::from_lookup(|n| env.get(n))?;
    let sides = config.sides(crate::aws::clients::default_region().await.as_deref());
    let options = GatherOptions {
        poller: args.poller,
        other_readers: args.other_readers,
        roles: args.as_deployed,
        processes: args.processes,
    };
    let facts = crate::aws::preflight::gather(&config, &sides, &options).await;
    let report = Report {
        checks: crate::preflight::assess(&facts),
    };
    if args.json {
        println!("{}", super::with_sides(report.to_json(), &sides));
    } else {
        println!("preflight: {sides}");
        print!("{}", report.to_text());
    }
    Ok(match report.failed() {
        true => Ending::Problems,
        false => Ending::Equal,
    })
}
