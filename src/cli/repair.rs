//! `ddb-verify repair`: the open findings of `SOURCE_TABLE_NAME` made right on the other side
//! (`crate::repair`). Without `--apply`, the plan; with it, conditional writes at
//! `MAX_WRITE_UNITS`, each recorded on its finding, then every repaired finding judged again.
//!
//! Exit status: without `--apply`, 0 when nothing would be written, 2 when something would;
//! with it, 0 when no open finding remains, 2 when some do; 1 on an error.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::baseline::CliError;
use super::Ending;
use crate::config::{RepairConfig, Sides};
use crate::repair::{RepairOptions, RepairReport};

#[derive(Debug, clap::Args)]
pub struct RepairArgs {
    /// Writes (conditionally); without it, only the plan is shown and nothing is read or written.
    #[arg(long)]
    pub apply: bool,
    /// At most this many findings repaired (those with a write planned), the earliest due first.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// EXTRA findings too: the item only the other side has is deleted (on the same condition).
    #[arg(long)]
    pub delete_extra: bool,
    /// Prints one JSON object on stdout instead of the table and the summary.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RepairArgs, env: &super::Env) -> Result<Ending, CliError> {
    let config = RepairConfig::from_lookup(|n| env.get(n))?;
    let sides = config
        .revalidator
        .sides(crate::aws::clients::default_region().await.as_deref());
    // A table compared with itself would be "repaired" onto itself.
    sides.refuse_same_table()?;
    let repairer = crate::wiring::repairer(config).await;
    let options = RepairOptions {
        apply: args.apply,
        limit: args.limit.map(|l| l as usize),
        delete_extra: args.delete_extra,
        by: super::operator("repair"),
    };
    let bar = progress_bar(args.json || !args.apply);
    let mut progress = |r: &RepairReport| {
        bar.set_position(r.findings);
        bar.set_message(format!(
            "{} written, {} lost races",
            r.repaired, r.lost_races
        ));
    };
    let report = repairer.run(&options, &mut progress).await?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", super::with_sides(report.to_json(), &sides));
    } else {
        print!("{}", report_text(&report, &sides));
    }
    Ok(ending(&report))
}

fn ending(report: &RepairReport) -> Ending {
    let problems = match report.open_remaining {
        None => report.planned,
        Some(open) => open,
    };
    match problems {
        0 => Ending::Equal,
        _ => Ending::Problems,
    }
}

fn progress_bar(hidden: bool) -> ProgressBar {
    if hidden || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::no_length();
    bar.set_draw_target(ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{spinner} {elapsed_precise} {human_pos} findings  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The entries as a table, then the counts.
pub fn report_text(r: &RepairReport, sides: &Sides) -> String {
    let mut out = String::new();
    let what = if r.applied { "repair" } else { "repair plan" };
    out.push_str(&format!(
        "{what} of {}: {} open findings\n",
        r.table, r.findings
    ));
    out.push_str(&format!(
        "source:     {}\nother side: {}\n",
        sides.source, sides.other
    ));
    if !r.entries.is_empty() {
        out.push_str(&format!(
            "{:<20} {:<7} {:<40} {:<24} {}\n",
            "VERDICT", "ACTION", "OUTCOME", "ATTRIBUTES", "KEY"
        ));
    }
    for e in &r.entries {
        out.push_str(&format!(
            "{:<20} {:<7} {:<40} {:<24} {}\n",
            e.verdict,
            e.action,
            e.outcome,
            e.attributes.join(","),
            e.key_text
        ));
        if let Some(values) = &e.values {
            out.push_str(&format!("    values: {values}\n"));
        }
    }
    let mut counts = vec![("with a write planned", r.planned)];
    if r.applied {
        counts.extend([
            ("repaired", r.repaired),
            ("lost races", r.lost_races),
            ("resolved", r.resolved),
            ("still open", r.still_open),
        ]);
    }
    for (label, n) in counts {
        out.push_str(&format!("{label:<22} {n:>8}\n"));
    }
    for (reason, n) in &r.skipped {
        out.push_str(&format!("skipped: {reason}  {n}\n"));
    }
    if let Some(open) = r.open_remaining {
        out.push_str(&format!("{:<22} {open:>8}\n", "open remaining"));
    }
    if !r.applied && r.planned > 0 {
        out.push_str("nothing was written: ddb-verify repair --apply makes these writes\n");
    }
    out
}
