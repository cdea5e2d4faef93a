//! `ddb-verify baseline`: every segment of the run on this machine, `MAX_CONCURRENCY` at a time,
//! with a progress bar on a terminal and a summary at the end (or one JSON object with `--json`).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Ending;
use crate::baseline::{BaselineError, RunSummary};
use crate::config::BaselineConfig;
use crate::ports::checkpoint::BaselineCounts;
use crate::report::metrics::InvocationMetrics;
use crate::shared::epoch_ms;
use crate::shared::error_chain;

pub type CliError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, clap::Args)]
pub struct BaselineArgs {
    /// Segments of each table's parallel scan: the unit of parallelism and of resuming.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub segments: u32,
    /// Resumes this run where each segment stopped; without it, a new run starts.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Prints one JSON object on stdout instead of the progress bar and the summary.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: BaselineArgs, env: &super::Env) -> Result<Ending, CliError> {
    let config = BaselineConfig::from_lookup(|n| env.get(n))?;
    let concurrency = config.verify.max_concurrency;
    let baseline = crate::wiring::baseline(config).await;
    let sides = baseline.sides();
    sides.refuse_same_table()?;
    let run_id = args
        .run_id
        .unwrap_or_else(|| format!("{}-{:04x}", epoch_ms() / 1000, fastrand::u16(..)));
    let run = baseline.start(&run_id, args.segments).await?;
    tracing::info!(
        run_id,
        segments = args.segments,
        started_at_ms = run.started_at_ms,
        source = %sides.source,
        other_side = %sides.other,
        "baseline compare started (resume with --segments {} --run-id {run_id})",
        args.segments
    );
    if run.settings.findings_table.is_none() {
        // Said before hours of scanning, not only after.
        tracing::warn!("{}", crate::baseline::NOT_COUNTED);
    }
    // The table's estimate, for the time left; both tables are scanned, so twice its items.
    let expected = baseline.source_item_count().await.ok().flatten();
    let bar = progress_bar(args.json, expected.map(|n| n * 2));
    let seen = Mutex::new(BaselineCounts::default());
    let on_page = |page: &BaselineCounts| {
        let mut seen = seen.lock().unwrap();
        *seen += *page;
        bar.inc(page.items_source + page.items_target);
        bar.set_message(verdict_line(&seen));
    };
    let segments: Vec<Result<_, BaselineError>> = stream::iter(0..args.segments)
        .map(|segment| {
            let (baseline, run_id, on_page) = (&baseline, &run_id, &on_page);
            async move {
                let mut metrics = InvocationMetrics::default();
                baseline
                    .run_segment(run_id, segment, args.segments, None, &mut metrics, on_page)
                    .await
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    bar.finish_and_clear();
    let failed: Vec<String> = segments
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| error_chain(e)))
        .collect();
    let summary = baseline.finish(&run_id, args.segments).await?;
    let (source_units, target_units) = baseline.consumed_read_units();
    if args.json {
        println!("{}", summary.to_json());
    } else {
        print_summary(&summary, source_units, target_units);
    }
    if let Some(first) = failed.first() {
        return Err(format!(
            "{} of {} segments failed (first: {first}); resume with --segments {} --run-id {run_id}",
            failed.len(),
            args.segments,
            args.segments
        )
        .into());
    }
    Ok(match summary.counts.problems() {
        0 => Ending::Equal,
        _ => Ending::Problems,
    })
}

fn progress_bar(json: bool, expected: Option<u64>) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match expected {
        Some(n) if n > 0 => ProgressBar::new(n),
        _ => ProgressBar::no_length(),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} items, {per_sec}, {eta} left  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn verdict_line(counts: &BaselineCounts) -> String {
    counts
        .verdicts()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn print_summary(summary: &RunSummary, source_units: f64, target_units: f64) {
    let c = &summary.counts;
    let state = if summary.complete() {
        "complete"
    } else {
        "incomplete"
    };
    let settings = &summary.run.settings;
    println!(
        "baseline run {}: {state} ({} of {} segments)",
        summary.run.run_id, summary.segments_done, settings.total_segments
    );
    println!("source:     {}", settings.source);
    println!("other side: {}", settings.other_side);
    match &settings.findings_table {
        Some(table) => println!("findings:   recorded in {table}"),
        None => println!("findings:   not recorded: {}", crate::baseline::NOT_COUNTED),
    }
    println!("{:<16} {:>12} {:>12}", "", "source", "other side");
    println!(
        "{:<16} {:>12} {:>12}",
        "items scanned", c.items_source, c.items_target
    );
    println!(
        "{:<16} {:>12.0} {:>12.0}",
        "read units", source_units, target_units
    );
    for (name, n) in c.verdicts() {
        println!("{name:<16} {n:>12}");
    }
    // Items the two scans alone did not settle, read again by key on both sides.
    println!("{:<16} {:>12}", "point reads", c.point_reads);
}
