//! The operator's command line: `ddb-verify baseline` (see `ddb-verify --help`).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ddb_verify::cli::main().await
}
