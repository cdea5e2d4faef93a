//! `ddb-verify revalidate`: one revalidation run on this machine (the scheduled function's work,
//! without its deadline), then a short summary (or one JSON object with `--json`).
//!
//! Exit status: 0 when no open finding remains, 2 when some do, 1 on an error.

use super::baseline::CliError;
use super::Ending;
use crate::config::{RevalidatorConfig, Sides};
use crate::revalidate::{RevalidateOptions, RevalidationReport};

#[derive(Debug, clap::Args)]
pub struct RevalidateArgs {
    /// At most this many findings, the earliest due first.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Findings marked unsettled (keys that kept changing) too.
    #[arg(long)]
    pub include_unsettled: bool,
    /// Every open finding now, whether due or not (unsettled ones only with --include-unsettled).
    #[arg(long)]
    pub all: bool,
    /// Prints one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RevalidateArgs, env: &super::Env) -> Result<Ending, CliError> {
    let config = RevalidatorConfig::from_lookup(|n| env.get(n))?;
    let sides = config.sides(crate::aws::clients::default_region().await.as_deref());
    // A table compared with itself would resolve every finding.
    sides.refuse_same_table()?;
    let revalidator = crate::wiring::revalidator(config).await;
    let options = RevalidateOptions {
        limit: args.limit.map(|l| l as usize),
        include_unsettled: args.include_unsettled,
        due_by_ms: args.all.then_some(u64::MAX),
    };
    let report = revalidator.run(None, &options).await?;
    if args.json {
        println!("{}", super::with_sides(report.to_json(), &sides));
    } else {
        print_summary(&report, &sides);
    }
    Ok(match report.open_remaining {
        0 => Ending::Equal,
        _ => Ending::Problems,
    })
}

fn print_summary(r: &RevalidationReport, sides: &Sides) {
    println!(
        "revalidation of {}: {} findings checked",
        r.table, r.checked
    );
    println!("source:     {}", sides.source);
    println!("other side: {}", sides.other);
    for (label, n) in [
        ("resolved", r.resolved),
        ("still open", r.still_open),
        ("marked unsettled", r.marked_unsettled),
        ("left due", r.left_due),
        ("open remaining", r.open_remaining),
    ] {
        println!("{label:<18} {n:>8}");
    }
}
