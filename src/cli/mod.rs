//! `ddb-verify`, the operator's command line over the same library as the functions. Its
//! configuration is the functions' environment variables; its flags say what to do. Tables and
//! JSON go to stdout, logs to stderr.
//!
//! Exit status: 0 when the tables were shown equal, 2 when problems were found, 1 on an error
//! (a bad variable, a failed call): scripts can tell "different" from "could not tell".

pub mod baseline;
pub mod findings;
pub mod init;
pub mod preflight;
pub mod repair;
pub mod revalidate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Proves a DynamoDB table was migrated or replicated correctly to another account.
#[derive(Debug, Parser)]
#[command(name = "ddb-verify", version)]
pub struct Cli {
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
    let result = match cli.command {
        Command::Baseline(args) => baseline::run(args).await,
        Command::Findings(args) => findings::run_findings(args).await,
        Command::Accept(args) => findings::run_accept(args).await,
        Command::Readiness(args) => findings::run_readiness(args).await,
        Command::Revalidate(args) => revalidate::run(args).await,
        Command::Repair(args) => repair::run(args).await,
        Command::Preflight(args) => preflight::run(args).await,
        Command::Init(args) => init::run(args).await,
    };
    match result {
        Ok(ending) => ending.exit_code(),
        Err(e) => {
            eprintln!("ddb-verify: {}", crate::shared::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
