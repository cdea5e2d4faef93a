//! The baseline compare against DynamoDB Local (`DYNAMODB_LOCAL_ENDPOINT`, started by `make
//! bench`): the same ~300-byte items (composite key) in both accounts' tables, loaded untimed.
//! Prints one JSON line per measurement (`scripts/bench.py` makes the table).
//!
//! - throughput: the baseline over the whole table, both directions, `SEGMENTS` segments with
//!   `CONCURRENCY` in flight (as `ddb-verify baseline` runs them), no rate limit, every item
//!   equal; against the job's floor with the SDK alone: per segment, a parallel Scan of each table
//!   (whole items, side by side), the same segments and concurrency. Read units from
//!   `ConsumedCapacity` for both. Runs alternate (baseline, floor, baseline, ...) so that drift of
//!   the endpoint hits both alike. Then the same with 1% of the other side's items different:
//!   the baseline's point reads against the drifted items.
//! - rate: one run at `MAX_READ_UNITS=200`: read units consumed per second on each table.
//! - memory: peak resident memory of `ddb-verify baseline --json` (a child process under
//!   `/usr/bin/time -v`) over a small and a large table.
//!
//!     baseline [throughput] [rate] [memory]   (default: all three)
//!
//! `BASELINE_MEMORY_LARGE` sets the large table's items (default 100,000).

mod support;

// The binaries' allocator: the figures are what the functions and the CLI pay.
ddb_verify::use_mimalloc!();

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use ddb_verify::aws::checkpoints::{create_checkpoint_table, DynamoDbCheckpoints};
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::aws::scanner::DynamoDbScanner;
use ddb_verify::baseline::{Baseline, BaselineParts};
use ddb_verify::config::{BaselineConfig, Config, TableRef};
use ddb_verify::ports::checkpoint::BaselineCounts;
use ddb_verify::ports::findings::NoFindings;
use ddb_verify::record::Item;
use ddb_verify::report::metrics::InvocationMetrics;
use ddb_verify_testkit::setup::{recreate_table, write_items, ORDER_KEYS};
use futures::stream::{self, StreamExt};

const ITEMS: usize = 20_000;
const SEGMENTS: u32 = 8;
const CONCURRENCY: usize = 8;
const RUNS: usize = 3;
/// No rate limit: far above what DynamoDB Local serves.
const UNLIMITED: f64 = 1_000_000.0;
/// Since the baseline reads each table once, about 2,000 read units a table: ten seconds at
/// `RATE_UNITS`, long enough that the first second's allowance does not hide the rate.
const RATE_ITEMS: usize = 50_000;
const RATE_UNITS: f64 = 200.0;
const MEMORY_SMALL: usize = 10_000;
const MEMORY_RUNS: usize = 3;
/// Each BatchWriteItem loader writes its own slice of a table, this many at once.
const LOADERS: usize = 4;

const SOURCE_ACCOUNT: &str = "sourceaccount";
const TARGET_ACCOUNT: &str = "targetaccount";
const CHECKPOINTS: &str = "BenchBaselineCheckpoints";

type AwsBaseline = Baseline<DynamoDbReader, DynamoDbScanner, DynamoDbCheckpoints, NoFindings>;

fn sdk(endpoint: &str, key: &str) -> SdkConfig {
    ddb_verify_testkit::setup::local_account_config(endpoint, key)
}

/// A ~300-byte item: ten orders per customer.
fn item(i: usize) -> Item {
    let s = |v: &str| AttributeValue::S(v.to_string());
    let n = |v: &str| AttributeValue::N(v.to_string());
    [
        ("customerId", s(&format!("customer#{:06}", i / 10))),
        ("orderId", n(&i.to_string())),
        ("status", s("PLACED")),
        ("total", n("1234.56")),
        ("createdAt", n("1793577600")),
        ("city", s("Oslo")),
        ("note", s(&"x".repeat(220))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

struct Accounts {
    endpoint: String,
    source: aws_sdk_dynamodb::Client,
    target: aws_sdk_dynamodb::Client,
}

impl Accounts {
    /// `table` in both accounts with `items` of the same items (not timed).
    async fn load(&self, table: &str, items: usize) {
        let started = Instant::now();
        let all: Arc<Vec<Item>> = Arc::new((0..items).map(item).collect());
        let mut tasks = tokio::task::JoinSet::new();
        for client in [&self.source, &self.target] {
            recreate_table(client, table, ORDER_KEYS, None)
                .await
                .expect("create table");
            let per = items.div_ceil(LOADERS);
            for part in 0..LOADERS {
                let (client, table, all) = (client.clone(), table.to_string(), Arc::clone(&all));
                tasks.spawn(async move {
                    let slice =
                        &all[(part * per).min(all.len())..((part + 1) * per).min(all.len())];
                    write_items(&client, &table, slice)
                        .await
                        .expect("load items")
                });
            }
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        eprintln!(
            "bench: loaded {items} items into {table} in both accounts in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    fn baseline(&self, table: &str, max_read_units: f64) -> AwsBaseline {
        let mut verify = Config::new(TableRef::parse(table).unwrap());
        verify.max_concurrency = CONCURRENCY;
        // A difference waits out this window before its verdict (the drift run).
        verify.max_replication_lag = std::time::Duration::from_secs(1);
        let config = BaselineConfig {
            verify,
            source_table: table.to_string(),
            checkpoint_table: CHECKPOINTS.to_string(),
            max_read_units,
            page_limit: None,
            pending_limit: ddb_verify::config::DEFAULT_PENDING_LIMIT,
        };
        Baseline::new(
            config,
            BaselineParts {
                source_reader: DynamoDbReader::new(self.source.clone()),
                source_scanner: DynamoDbScanner::new(self.source.clone()),
                target_reader: DynamoDbReader::new(self.target.clone()),
                target_scanner: DynamoDbScanner::new(self.target.clone()),
                store: DynamoDbCheckpoints::new(self.source.clone(), CHECKPOINTS),
            },
        )
    }
}

/// What one run did.
#[derive(Default)]
struct Calls {
    batch_get: u64,
    scan_pages: u64,
    /// Both tables' read units (`ConsumedCapacity`).
    read_units: f64,
}

/// Every segment, `CONCURRENCY` at a time, as `ddb-verify baseline` runs them; the counts.
async fn run_baseline(baseline: &AwsBaseline, run_id: &str) -> (BaselineCounts, Calls) {
    baseline.start(run_id, SEGMENTS).await.expect("start");
    let pages = std::sync::atomic::AtomicU64::new(0);
    let on_page = |_: &BaselineCounts| {
        pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let metrics: Vec<InvocationMetrics> = stream::iter(0..SEGMENTS)
        .map(|segment| {
            let on_page = &on_page;
            async move {
                let mut metrics = InvocationMetrics::default();
                let report = baseline
                    .run_segment(run_id, segment, SEGMENTS, None, &mut metrics, on_page)
                    .await
                    .expect("segment");
                assert!(report.done, "segment {segment} not done");
                metrics
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let summary = baseline.finish(run_id, SEGMENTS).await.expect("finish");
    assert!(summary.complete());
    let calls = Calls {
        batch_get: metrics
            .iter()
            .map(|m| m.lookup_calls + m.source_rechecks)
            .sum(),
        scan_pages: pages.into_inner(),
        read_units: {
            let (source, target) = baseline.consumed_read_units();
            source + target
        },
    };
    (summary.counts, calls)
}

/// One table's segment scanned to its end (whole items): items, pages, read units.
async fn scan_segment(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    segment: u32,
) -> (usize, u64, f64) {
    let (mut items, mut pages, mut units) = (0, 0, 0.0);
    let mut start = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .segment(segment as i32)
            .total_segments(SEGMENTS as i32)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        pages += 1;
        items += out.items.as_ref().map_or(0, Vec::len);
        units += out
            .consumed_capacity
            .and_then(|c| c.capacity_units)
            .unwrap_or_default();
        start = out.last_evaluated_key.filter(|k| !k.is_empty());
        if start.is_none() {
            return (items, pages, units);
        }
    }
}

/// The floor: a parallel Scan of each table, segment by segment side by side, with the SDK alone.
async fn run_floor(accounts: &Accounts, table: &str) -> (usize, Calls) {
    let segments: Vec<(usize, u64, f64)> = stream::iter(0..SEGMENTS)
        .map(|segment| async move {
            let (source, target) = tokio::join!(
                scan_segment(&accounts.source, table, segment),
                scan_segment(&accounts.target, table, segment)
            );
            (
                source.0 + target.0,
                source.1 + target.1,
                source.2 + target.2,
            )
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let calls = Calls {
        batch_get: 0,
        scan_pages: segments.iter().map(|s| s.1).sum(),
        read_units: segments.iter().map(|s| s.2).sum(),
    };
    (segments.iter().map(|s| s.0).sum(), calls)
}

/// CPU seconds (user and system) this process has used so far: where the wall time goes, beside
/// DynamoDB Local on the same cores.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command's closing parenthesis: state is field 3, utime and stime are 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
    // Linux's USER_HZ.
    ticks(14)
        .zip(ticks(15))
        .map_or(0.0, |(u, s)| (u + s) / 100.0)
}

fn report(name: &str, items: usize, seconds: &[f64], cpu: &[f64], calls: &Calls) {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rate = |s: f64| items as f64 / s;
    println!(
        "{}",
        serde_json::json!({
            "name": name, "items": items, "runs": seconds.len(), "seconds": seconds,
            "best_per_s": rate(sorted[0]), "median_per_s": rate(sorted[sorted.len() / 2]),
            "cpu_seconds": cpu, "batch_get_calls": calls.batch_get, "scan_pages": calls.scan_pages,
            "read_units": calls.read_units,
            "segments": SEGMENTS, "concurrency": CONCURRENCY,
        })
    );
}

async fn throughput(accounts: &Accounts) {
    let table = "BenchBaseline";
    accounts.load(table, ITEMS).await;
    let (mut baseline_s, mut floor_s) = (Vec::new(), Vec::new());
    let (mut baseline_cpu, mut floor_cpu) = (Vec::new(), Vec::new());
    let (mut baseline_calls, mut floor_calls) = (Calls::default(), Calls::default());
    for run in 0..RUNS {
        let baseline = accounts.baseline(table, UNLIMITED);
        let run_id = format!("bench-{}-{run}", fastrand::u32(..));
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let (counts, calls) = run_baseline(&baseline, &run_id).await;
        baseline_s.push(started.elapsed().as_secs_f64());
        baseline_cpu.push(cpu_seconds() - cpu);
        assert_eq!(
            (counts.items_source, counts.items_target, counts.matched),
            (ITEMS as u64, ITEMS as u64, ITEMS as u64),
            "every item compared, all equal: {counts:?}"
        );
        assert_eq!(counts.problems(), 0);
        baseline_calls = calls;

        let (started, cpu) = (Instant::now(), cpu_seconds());
        let (items, calls) = run_floor(accounts, table).await;
        floor_s.push(started.elapsed().as_secs_f64());
        floor_cpu.push(cpu_seconds() - cpu);
        assert_eq!(items, 2 * ITEMS);
        floor_calls = calls;
        eprintln!(
            "bench: run {run}: baseline {:.2} s ({:.2} s CPU here), floor {:.2} s ({:.2} s CPU)",
            baseline_s[run], baseline_cpu[run], floor_s[run], floor_cpu[run]
        );
    }
    // Items compared: both tables' items.
    report(
        "baseline_compare",
        2 * ITEMS,
        &baseline_s,
        &baseline_cpu,
        &baseline_calls,
    );
    report(
        "baseline_floor",
        2 * ITEMS,
        &floor_s,
        &floor_cpu,
        &floor_calls,
    );
    drift(accounts, table).await;
}

/// 1% of the other side's items changed: the baseline's point reads against the drifted items.
async fn drift(accounts: &Accounts, table: &str) {
    let drifted: Vec<Item> = (0..ITEMS)
        .step_by(100)
        .map(|i| {
            let mut changed = item(i);
            changed.insert("status".into(), AttributeValue::S("SHIPPED".into()));
            changed
        })
        .collect();
    write_items(&accounts.target, table, &drifted)
        .await
        .expect("drift");
    let baseline = accounts.baseline(table, UNLIMITED);
    let (counts, calls) =
        run_baseline(&baseline, &format!("bench-drift-{}", fastrand::u32(..))).await;
    assert_eq!(counts.mismatched, drifted.len() as u64, "{counts:?}");
    println!(
        "{}",
        serde_json::json!({
            "name": "baseline_drift", "items": ITEMS, "drifted": drifted.len(),
            "point_reads": counts.point_reads, "read_units": calls.read_units,
            "batch_get_calls": calls.batch_get,
        })
    );
}

async fn rate(accounts: &Accounts) {
    let table = "BenchBaselineRate";
    accounts.load(table, RATE_ITEMS).await;
    // The bucket starts with a second's allowance when the baseline is built: time from there.
    let baseline = accounts.baseline(table, RATE_UNITS);
    let started = Instant::now();
    let (counts, calls) =
        run_baseline(&baseline, &format!("bench-rate-{}", fastrand::u32(..))).await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(counts.matched, RATE_ITEMS as u64);
    let (source_units, target_units) = baseline.consumed_read_units();
    let per_s = |units: f64| (units - RATE_UNITS) / took;
    println!(
        "{}",
        serde_json::json!({
            "name": "baseline_rate", "items": RATE_ITEMS, "max_read_units": RATE_UNITS,
            "seconds": took, "source_units": source_units, "target_units": target_units,
            "source_per_s": per_s(source_units), "target_per_s": per_s(target_units),
            "batch_get_calls": calls.batch_get, "scan_pages": calls.scan_pages,
        })
    );
}

/// Peak resident memory (MB) of `ddb-verify baseline --json` over `table`, under `/usr/bin/time -v`.
fn cli_peak_mb(accounts: &Accounts, table: &str, items: usize) -> f64 {
    let config_file = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/local-aws-config");
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_ddb-verify"))
        .args(["baseline", "--segments", &SEGMENTS.to_string(), "--json"])
        .env_clear()
        .envs([
            ("AWS_ACCESS_KEY_ID", SOURCE_ACCOUNT),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL_DYNAMODB", accounts.endpoint.as_str()),
            ("AWS_CONFIG_FILE", config_file),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("VERIFY_TABLE_NAME", table),
            ("VERIFY_PROFILE", "target-account"),
            ("SOURCE_TABLE_NAME", table),
            ("CHECKPOINT_TABLE", CHECKPOINTS),
            ("MAX_CONCURRENCY", &CONCURRENCY.to_string()),
            ("MAX_READ_UNITS", &UNLIMITED.to_string()),
            ("RUST_LOG", "warn"),
        ])
        .output()
        .expect("run /usr/bin/time -v ddb-verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ddb-verify failed: {stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["items_scanned"]["source"], items);
    assert_eq!(summary["items_scanned"]["target"], items);
    assert_eq!(summary["verdicts"]["MATCH"], items);
    let kb: f64 = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .expect("/usr/bin/time -v reports the peak")
        .trim()
        .parse()
        .unwrap();
    kb / 1024.0
}

async fn memory(accounts: &Accounts) {
    let large: usize = std::env::var("BASELINE_MEMORY_LARGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    for items in [MEMORY_SMALL, large] {
        let table = format!("BenchBaseline{items}");
        accounts.load(&table, items).await;
        let mut peaks = Vec::new();
        let mut seconds = Vec::new();
        for _ in 0..MEMORY_RUNS {
            let started = Instant::now();
            peaks.push(cli_peak_mb(accounts, &table, items));
            seconds.push(started.elapsed().as_secs_f64());
        }
        eprintln!("bench: memory over {items} items: {peaks:?} MB, {seconds:?} s");
        let mut sorted = peaks.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{}",
            serde_json::json!({
                "name": "baseline_memory", "items": items, "peaks_mb": peaks, "seconds": seconds,
                "min_mb": sorted[0], "median_mb": sorted[sorted.len() / 2],
            })
        );
        // DynamoDB Local keeps every table in its heap: drop this one.
        for client in [&accounts.source, &accounts.target] {
            let _ = client.delete_table().table_name(&table).send().await;
        }
    }
}

#[tokio::main]
async fn main() {
    let endpoint = std::env::var("DYNAMODB_LOCAL_ENDPOINT")
        .expect("DYNAMODB_LOCAL_ENDPOINT is not set: run `make bench`, or start DynamoDB Local with scripts/dynamodb-local.sh start");
    let accounts = Accounts {
        source: aws_sdk_dynamodb::Client::new(&sdk(&endpoint, SOURCE_ACCOUNT)),
        target: aws_sdk_dynamodb::Client::new(&sdk(&endpoint, TARGET_ACCOUNT)),
        endpoint,
    };
    let _ = accounts
        .source
        .delete_table()
        .table_name(CHECKPOINTS)
        .send()
        .await;
    create_checkpoint_table(&accounts.source, CHECKPOINTS)
        .await
        .expect("create the checkpoint table");
    // `cargo bench` passes `--bench`: only our own words select parts.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |part: &str| args.is_empty() || args.iter().any(|a| a == part);
    if wanted("throughput") {
        throughput(&accounts).await;
    }
    if wanted("rate") {
        rate(&accounts).await;
    }
    if wanted("memory") {
        memory(&accounts).await;
    }
}
