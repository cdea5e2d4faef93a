//! The operator's command line: `ddb-verify baseline` (see `ddb-verify --help`).

// mimalloc, configured before the first allocation (`ddb_verify::allocator`).
ddb_verify::use_mimalloc!();

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ddb_verify::cli::main().await
}
