//! `ddb-verify`, the operator's command line over the same library as the functions. Its
//! configuration is the functions' environment variables; its flags say what to do. Tables and
//! JSON go to stdout, logs to stderr.
//!
//! Exit status: 0 when the tables were shown equal, 2 when problems were found, 1 on an error
//! (a bad variable, a failed call): scripts can tell "different" from "could not tell".

pub mod baseline;
pub mod findings;
pub mod freeze;
pub mod init;
pub mod preflight;
pub mod repair;
pub mod revalidate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::pairs::TablePair;
pub use baseline::CliError;

/// Proves a DynamoDB table was migrated or replicated correctly to another account.
#[derive(Debug, Parser)]
#[command(name = "ddb-verify", version)]
pub struct Cli {
    /// The pair of TABLE_PAIRS to work on, by its source table's name: it stands for
    /// SOURCE_TABLE_NAME, VERIFY_TABLE_NAME and IGNORE_ATTRIBUTES. Needed when TABLE_PAIRS lists
    /// more than one pair (`readiness --all`, `findings --all` and `freeze --all` take every pair).
    #[arg(long, global = true)]
    pub table: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compares the whole source table with the other side, both directions, resumably.
    Baseline(baseline::BaselineArgs),
    /// Lists the open findings of SOURCE_TABLE_NAME (exit 2 when there are some), or the accepted.
    Findings(findings::FindingsArgs),
    /// Accepts an open finding with a reason: it no longer blocks readiness, which lists it.
    Accept(findings::AcceptArgs),
    /// May we cut over now? GO (exit 0) or NO-GO (exit 2) with every reason.
    Readiness(findings::ReadinessArgs),
    /// Records the cut-over's freeze (when the source's writes stopped): readiness, here and in
    /// the scheduled revalidator, then needs every change before it verified; --lift ends it.
    Freeze(freeze::FreezeArgs),
    /// Checks open findings again: resolves those that now match (exit 0 when none stays open).
    Revalidate(revalidate::RevalidateArgs),
    /// Repairs open findings on the other side, each write conditional on what was just read;
    /// without --apply, only the plan (exit 2 when there is something to repair).
    Repair(repair::RepairArgs),
    /// Checks the migration's set-up: both tables, keys, indexes, TTL, the stream and its readers,
    /// the verifier's own tables (exit 0 when nothing FAILs, 2 when something does).
    Preflight(preflight::PreflightArgs),
    /// Creates CHECKPOINT_TABLE and FINDINGS_TABLE (those set) in this account as the template does;
    /// an existing table of the right layout is left as it is.
    Init(init::InitArgs),
}

/// How a command ended, as the exit status says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Shown equal (exit 0).
    Equal,
    /// Problems found (exit 2).
    Problems,
}

impl Ending {
    pub fn exit_code_number(self) -> u8 {
        match self {
            Ending::Equal => 0,
            Ending::Problems => 2,
        }
    }

    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.exit_code_number())
    }
}

/// Runs the command, on the pair `--table` chose (or, with `--all`, on every pair).
async fn run(cli: Cli) -> Result<Ending, CliError> {
    let all = match &cli.command {
        Command::Findings(args) => args.all,
        Command::Readiness(args) => args.all,
        Command::Freeze(args) => args.all,
        _ => false,
    };
    // Refused here: clap does not hold a global flag given before the subcommand to a
    // subcommand's `conflicts_with`.
    if let (Some(table), true) = (&cli.table, all) {
        return Err(format!("--table {table} and --all: choose one pair, or every pair").into());
    }
    if let (Some(table), Command::Init(_)) = (&cli.table, &cli.command) {
        return Err(format!(
            "--table {table}: init makes the tables every pair shares; leave --table out"
        )
        .into());
    }
    // Init makes the tables every pair shares; `--all` walks the pairs itself.
    let env = match (&cli.command, all) {
        (Command::Init(_), _) | (_, true) => Env::process(),
        _ => Env::choose(cli.table.as_deref())?,
    };
    match cli.command {
        Command::Baseline(args) => baseline::run(args, &env).await,
        Command::Findings(args) if args.all => findings::run_findings_all(args).await,
        Command::Findings(args) => findings::run_findings(args, &env).await,
        Command::Accept(args) => findings::run_accept(args, &env).await,
        Command::Readiness(args) if args.all => findings::run_readiness_all(args).await,
        Command::Readiness(args) => findings::run_readiness(args, &env).await,
        Command::Freeze(args) if args.all => freeze::run_all(args).await,
        Command::Freeze(args) => freeze::run(args, &env).await,
        Command::Revalidate(args) => revalidate::run(args, &env).await,
        Command::Repair(args) => repair::run(args, &env).await,
        Command::Preflight(args) => preflight::run(args, &env).await,
        Command::Init(args) => init::run(args).await,
    }
}

/// The variables a command reads: the process's environment, where the chosen pair of
/// `TABLE_PAIRS` stands for `SOURCE_TABLE_NAME`, `VERIFY_TABLE_NAME` and `IGNORE_ATTRIBUTES`.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pair: Option<TablePair>,
}

impl Env {
    /// The environment as it is.
    pub fn process() -> Env {
        Env { pair: None }
    }

    /// The environment with `pair` standing for its tables.
    pub fn of(pair: TablePair) -> Env {
        Env { pair: Some(pair) }
    }

    /// One variable's value.
    pub fn get(&self, name: &str) -> Option<String> {
        let process = |n: &str| std::env::var(n).ok();
        match &self.pair {
            Some(pair) => pair.value(name, process),
            None => process(name),
        }
    }

    /// The pairs of `TABLE_PAIRS`, `None` when it is not set.
    pub fn pairs() -> Result<Option<Vec<TablePair>>, CliError> {
        Ok(crate::config::pairs::table_pairs(
            std::env::var("TABLE_PAIRS").ok(),
        )?)
    }

    /// The pair `--table` names; without it, the only pair, or the environment as it is when
    /// `TABLE_PAIRS` is not set.
    pub fn choose(table: Option<&str>) -> Result<Env, CliError> {
        let Some(pairs) = Env::pairs()? else {
            return match table {
                None => Ok(Env::process()),
                Some(_) => Err("--table chooses a pair of TABLE_PAIRS, which is not set: set TABLE_PAIRS, or SOURCE_TABLE_NAME and VERIFY_TABLE_NAME".into()),
            };
        };
        let names = || {
            pairs
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match table {
            Some(table) => {
                let wanted = crate::config::TableRef::parse_or_keep(table).name;
                let pair = pairs.iter().find(|p| p.name() == wanted).ok_or_else(|| {
                    format!("--table {table} is not in TABLE_PAIRS (its tables: {})", names())
                })?;
                Ok(Env::of(pair.clone()))
            }
            None if pairs.len() == 1 => Ok(Env::of(pairs[0].clone())),
            None => Err(format!(
                "TABLE_PAIRS lists {} pairs ({}): choose one with --table (readiness, findings and freeze take --all)",
                pairs.len(),
                names()
            )
            .into()),
        }
    }
}

/// Who runs `command`, as the records it writes name them (`repairedBy`, `recordedBy`): the
/// operator's user name and host, as the shell tells them.
pub fn operator(command: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    // HOSTNAME is rarely exported; the kernel's name is there on Linux.
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty());
    match host {
        Some(host) => format!("ddb-verify {command} ({user}@{host})"),
        None => format!("ddb-verify {command} ({user})"),
    }
}

/// A command's JSON object with the two tables it compared (`"source"`, `"other_side"`).
pub fn with_sides(mut json: serde_json::Value, sides: &crate::config::Sides) -> serde_json::Value {
    if let (Some(out), serde_json::Value::Object(compared)) =
        (json.as_object_mut(), sides.to_json())
    {
        out.extend(compared);
    }
    json
}

/// Logs to stderr, `RUST_LOG` or INFO; item values stay out (see `LOG_ITEM_VALUES`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,aws_config=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Parses the arguments and runs the command: its exit status, 1 with the error's chain on stderr.
pub async fn main() -> ExitCode {
    // A usage error is an error (1), never clap's 2, which would read as "problems" or NO-GO.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.use_stderr() {
                true => ExitCode::FAILURE,
                false => ExitCode::SUCCESS, // --help, --version
            };
        }
    };
    init_logging();
    let result = run(cli).await;
    match result {
        Ok(ending) => ending.exit_code(),
        Err(e) => {
            eprintln!("ddb-verify: {}", crate::shared::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
