//! `ddb-verify`, the operator's command line over the same library as the functions. Its
//! configuration is the functions' environment variables; its flags say what to do. Tables and
//! JSON go to stdout, logs to stderr.
//!
//! Exit status: 0 when the tables were shown equal, 2 when problems were found, 1 on an error
//! (a bad variable, a failed call): scripts can tell "different" from "could not tell".

pub mod baseline;

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
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Baseline(args) => baseline::run(args).await,
    };
    match result {
        Ok(ending) => ending.exit_code(),
        Err(e) => {
            eprintln!("ddb-verify: {}", baseline::error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
