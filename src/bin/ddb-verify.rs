//! The operator's command line: `ddb-verify baseline` (see `ddb-verify --help`).

// mimalloc: glibc's malloc and free took a third of the handler's CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ddb_verify::cli::main().await
}
