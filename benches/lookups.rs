//! Lookups and poller drain against DynamoDB Local (`DYNAMODB_LOCAL_ENDPOINT`, started by
//! `make bench`): 10,000 items of ~1 KB in both accounts, the same keys and concurrency for each
//! variant, several runs. Prints one JSON line per measurement (`scripts/bench.py` makes the table).
//!
//! - a: a raw BatchGetItem loop over the keys (the ceiling for this endpoint);
//! - b: the verification engine verifying 10,000 records whose items all match;
//! - c: the original tool's strategy: one eventually consistent GetItem per record, sequentially,
//!   existence only (without its fixed 5 s and 2 s sleeps);
//! - d: the engine and the findings leg (the stream verifier with `FINDINGS_TABLE`);
//! - a to d again through the fault proxy with 2 ms added to every call (`_2ms`);
//! - poller: one shard-poller run over the 10,000-record stream, against a raw GetRecords loop,
//!   and against that loop and the engine (b) run at once. Its checkpoints are kept under a third
//!   access key (a database of their own in DynamoDB Local).
//!
//! `LOOKUPS_TRACE=1` adds diagnostics: a and b again with each call's start, end, time in `poll`
//! and wait between being woken and polled (calls in flight, gaps before a freed slot is used), and
//! how busy the machine is (and this process) during the GetRecords loop and the poller run.

mod support;

// The binaries' allocator: the figures are what the functions and the CLI pay.
ddb_verify::use_mimalloc!();

#[path = "../tests/it/common/fault_proxy.rs"]
#[allow(dead_code)]
mod fault_proxy;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::StreamViewType;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use ddb_verify::aws::checkpoints::{create_checkpoint_table, DynamoDbCheckpoints};
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::aws::streams::DynamoDbStreams;
use ddb_verify::config::{Config, LagWindowFrom, TableRef};
use ddb_verify::config::{PollerConfig, StreamSelector};
use ddb_verify::poller::Poller;
use ddb_verify::ports::stream::StartAt;
use ddb_verify::record::{Expectation, Item};
use ddb_verify::verify::Verifier;
use ddb_verify_testkit::setup::{recreate_table, write_items, ORDER_KEYS};
use tokio::sync::Semaphore;

const ITEMS: usize = 10_000;
const CONCURRENCY: usize = 5;
const RUNS: usize = 3;
const FINDINGS_TABLE: &str = "BenchFindings";
/// Added to every lookup by the fault proxy in the second set of runs.
const ADDED_LATENCY: Duration = Duration::from_millis(2);

fn sdk(endpoint: &str, key: &str) -> SdkConfig {
    ddb_verify_testkit::setup::local_account_config(endpoint, key)
}

/// Prints one measurement; returns its median rate.
fn report(name: &str, records: usize, seconds: &[f64], calls: usize) -> f64 {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rate = |s: f64| records as f64 / s;
    println!(
        "{}",
        serde_json::json!({
            "name": name, "records": records, "runs": seconds.len(),
            "best_per_s": rate(sorted[0]), "median_per_s": rate(sorted[sorted.len() / 2]),
            "calls": calls,
        })
    );
    rate(sorted[sorted.len() / 2])
}

async fn create(client: &aws_sdk_dynamodb::Client, table: &str, stream: bool) {
    let view = stream.then_some(StreamViewType::NewAndOldImages);
    recreate_table(client, table, ORDER_KEYS, view)
        .await
        .expect("create table");
}

fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(k, _)| *k == "customerId" || *k == "orderId")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What the lookup variants (a to d) read, through one pair of clients.
struct Lookups<'a> {
    source: &'a aws_sdk_dynamodb::Client,
    target: &'a aws_sdk_dynamodb::Client,
    table: &'a str,
    keys: &'a [Item],
    records: &'a [Expectation],
    /// Keys the original tool's sequential GetItem loop reads (fewer under added latency).
    original_keys: usize,
}

/// A reader that logs each call's timing (`LOOKUPS_TRACE=1`).
#[derive(Clone)]
struct TracedReader {
    inner: DynamoDbReader,
    log: trace::Log,
}

impl ddb_verify::ports::table::TableReader for TracedReader {
    fn batch_get(
        &self,
        request: ddb_verify::ports::table::BatchGet<'_>,
    ) -> impl std::future::Future<
        Output = Result<
            ddb_verify::ports::table::BatchGetOutput,
            ddb_verify::ports::table::LookupError,
        >,
    > + Send {
        trace::timed(&self.log, self.inner.batch_get(request))
    }
}

/// a and b with each call's timing logged.
async fn trace_lookups(l: &Lookups<'_>, suffix: &str) {
    let log = trace::Log::default();
    let mut config = Config::new(TableRef::parse(l.table).unwrap());
    config.max_concurrency = CONCURRENCY;
    let verifier = Verifier::new(
        config.clone(),
        TracedReader {
            inner: DynamoDbReader::new(l.target.clone()),
            log: log.clone(),
        },
        TracedReader {
            inner: DynamoDbReader::new(l.source.clone()),
            log: log.clone(),
        },
    );
    for _ in 0..RUNS {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let sample = trace::begin(&log);
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in l.keys.chunks(100) {
            let (client, permits, chunk) = (l.target.clone(), permits.clone(), chunk.to_vec());
            let table = l.table.to_string();
            let log = log.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                trace::timed(&log, support::batch_get_chunk(&client, &table, chunk)).await
            });
        }
        while tasks.join_next().await.is_some() {}
        trace::summary(&format!("a{suffix}"), &log, sample, CONCURRENCY);

        let sample = trace::begin(&log);
        let out = verifier.verify(l.records, None).await;
        trace::summary(&format!("b{suffix}"), &log, sample, CONCURRENCY);
        assert_eq!(out.lookup_calls, 100);
    }
}

/// a to d through `l`'s clients; `suffix` names the setting in the JSON lines. Returns b's median
/// rate.
async fn measure_lookups(l: &Lookups<'_>, suffix: &str) -> f64 {
    if std::env::var_os("LOOKUPS_TRACE").is_some() {
        trace_lookups(l, suffix).await;
    }
    // a: raw BatchGetItem loop, 100 keys a call, CONCURRENCY calls in flight.
    let mut seconds = Vec::new();
    let mut calls = 0;
    for _ in 0..RUNS {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in l.keys.chunks(100) {
            let (client, permits, chunk) = (l.target.clone(), permits.clone(), chunk.to_vec());
            let table = l.table.to_string();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                support::batch_get_chunk(&client, &table, chunk).await
            });
        }
        let (mut made, mut found) = (0, 0);
        while let Some(r) = tasks.join_next().await {
            let (m, f) = r.unwrap();
            made += m;
            found += f;
        }
        seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(found, l.keys.len());
        calls = made;
    }
    report(
        &format!("a_raw_batch_get_item{suffix}"),
        l.keys.len(),
        &seconds,
        calls,
    );

    // b: the engine, every record matching.
    let mut config = Config::new(TableRef::parse(l.table).unwrap());
    config.max_concurrency = CONCURRENCY;
    let verifier = Verifier::new(
        config.clone(),
        DynamoDbReader::new(l.target.clone()),
        DynamoDbReader::new(l.source.clone()),
    );
    let mut seconds = Vec::new();
    let mut calls = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let out = verifier.verify(l.records, None).await;
        seconds.push(started.elapsed().as_secs_f64());
        let matched = out
            .outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    ddb_verify::verify::Outcome::Verdict(ddb_verify::verify::Verdict::Match { .. })
                )
            })
            .count();
        assert_eq!(matched, l.records.len());
        calls = out.lookup_calls + out.source_calls;
    }
    let engine = report(
        &format!("b_engine{suffix}"),
        l.records.len(),
        &seconds,
        calls,
    );

    // d: the engine and the findings leg, as the stream verifier with FINDINGS_TABLE runs them: which
    // keys have an open finding is read (100 keys a call) beside the engine's lookups; every record
    // MATCHes, so nothing is written.
    let writer = ddb_verify::report::findings::FindingsWriter::new(
        ddb_verify::aws::findings::DynamoDbFindings::new(l.source.clone(), FINDINGS_TABLE),
        ddb_verify::ports::findings::FindingOrigin::Stream,
        None,
    );
    let mut seconds = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let (mut out, open) = tokio::join!(
            verifier.verify(l.records, None),
            writer.open_findings(l.records)
        );
        let mut metrics = ddb_verify::report::metrics::InvocationMetrics::default();
        writer
            .write_with(
                l.records,
                &mut out.outcomes,
                &out.evidence,
                ddb_verify::report::findings::Pass {
                    occurrence: ddb_verify::report::findings::Occurrence::Stream,
                    observed_from_ms: out.started_at_ms,
                },
                open,
                &mut metrics,
            )
            .await;
        seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(metrics.findings_write_failures, 0);
        calls = out.lookup_calls + out.source_calls + l.records.len().div_ceil(100);
    }
    report(
        &format!("d_engine_findings{suffix}"),
        l.records.len(),
        &seconds,
        calls,
    );

    // c: the original tool: GetItem per record, sequential, eventually consistent, existence only.
    let mut seconds = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let mut present = 0;
        for key in &l.keys[..l.original_keys] {
            let out = l
                .target
                .get_item()
                .table_name(l.table)
                .set_key(Some(key.clone()))
                .send()
                .await
                .unwrap();
            present += usize::from(out.item.is_some());
        }
        seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(present, l.original_keys);
    }
    report(
        &format!("c_original_get_item{suffix}"),
        l.original_keys,
        &seconds,
        l.original_keys,
    );
    engine
}

#[tokio::main]
async fn main() {
    let endpoint = std::env::var("DYNAMODB_LOCAL_ENDPOINT")
        .expect("DYNAMODB_LOCAL_ENDPOINT is not set: run `make bench`, or start DynamoDB Local with scripts/dynamodb-local.sh start");
    let source_config = sdk(&endpoint, "benchsource");
    let source = aws_sdk_dynamodb::Client::new(&source_config);
    let streams = aws_sdk_dynamodbstreams::Client::new(&source_config);
    let target = aws_sdk_dynamodb::Client::new(&sdk(&endpoint, "benchtarget"));
    // The poller's checkpoints in a database of their own. DynamoDB Local serializes the calls to
    // one account's database, so checkpoints beside the stream would wait for its GetRecords; in
    // AWS a table and a stream do not share such a lock (docs/benchmarks-log.md, "The checkpoints in a database of their own").
    let poller_account = aws_sdk_dynamodb::Client::new(&sdk(&endpoint, "benchpoller"));
    let table = "BenchOrders";

    // The same ~1 KB items in both accounts; the source's stream holds 10,000 INSERT records.
    let items: Vec<Item> = (0..ITEMS)
        .map(|i| ddb_verify::record::json::parse_item(&support::item_json(i).to_string()).unwrap())
        .collect();
    create(&source, table, true).await;
    create(&target, table, false).await;
    let (loaded_source, loaded_target) = tokio::join!(
        write_items(&source, table, &items),
        write_items(&target, table, &items)
    );
    loaded_source.expect("load the source");
    loaded_target.expect("load the target");
    let keys: Vec<Item> = items.iter().map(key_of).collect();
    let stream_arn = source
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .latest_stream_arn
        .unwrap();
    let stream_records = ddb_verify_testkit::events::read_all(&streams, &stream_arn)
        .await
        .unwrap();
    assert_eq!(stream_records.len(), ITEMS, "stream holds every write");
    let records: Vec<Expectation> = stream_records
        .iter()
        .map(|r| ddb_verify::aws::streams::change_record(r, &stream_arn).unwrap())
        .collect();

    let source_findings = &source;
    let _ = source_findings
        .delete_table()
        .table_name(FINDINGS_TABLE)
        .send()
        .await;
    ddb_verify::aws::findings::create_findings_table(source_findings, FINDINGS_TABLE)
        .await
        .expect("create the findings table");
    let engine = measure_lookups(
        &Lookups {
            source: &source,
            target: &target,
            table,
            keys: &keys,
            records: &records,
            original_keys: ITEMS,
        },
        "",
    )
    .await;

    // The same through the fault proxy with a fixed 2 ms added to every DynamoDB call (a
    // cross-account call within a region), where batching's value shows.
    let proxy = fault_proxy::FaultProxy::start(&endpoint, 1).await;
    let delay = vec![fault_proxy::Fault::Delay(ADDED_LATENCY)];
    proxy.set_rules(
        ["BatchGetItem", "GetItem"]
            .iter()
            .map(|op| {
                fault_proxy::Rule::new(&format!("DynamoDB_20120810.{op}"), 1.0, delay.clone())
            })
            .collect(),
    );
    let source_far = aws_sdk_dynamodb::Client::new(&sdk(proxy.endpoint(), "benchsource"));
    let target_far = aws_sdk_dynamodb::Client::new(&sdk(proxy.endpoint(), "benchtarget"));
    measure_lookups(
        &Lookups {
            source: &source_far,
            target: &target_far,
            table,
            keys: &keys,
            records: &records,
            // 2 ms a call, one call a key: 1,000 keys are enough for its rate.
            original_keys: 1_000,
        },
        "_2ms",
    )
    .await;

    let mut config = Config::new(TableRef::parse(table).unwrap());
    config.max_concurrency = CONCURRENCY;

    // Poller drain: a raw GetRecords loop, then one poller run (fresh checkpoints each time).
    let shard_id = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap()
        .shards
        .unwrap()[0]
        .shard_id
        .clone()
        .unwrap();
    let mut seconds = Vec::new();
    let mut calls = 0;
    for _ in 0..RUNS {
        let sample = trace::Sample::now();
        let started = Instant::now();
        calls = drain_stream(&streams, &stream_arn, &shard_id).await;
        seconds.push(started.elapsed().as_secs_f64());
        sample.cpu_line("raw GetRecords loop", ITEMS);
    }
    let raw = report("poller_raw_get_records", ITEMS, &seconds, calls);

    // Both ceilings at once: the raw GetRecords loop beside the engine verifying the same records
    // (as b), until both finish. Here one DynamoDB Local serves both, so they compete for its 2
    // cores; against AWS they would not.
    let engine_alone = Verifier::new(
        config.clone(),
        DynamoDbReader::new(target.clone()),
        DynamoDbReader::new(source.clone()),
    );
    let mut seconds = Vec::new();
    for _ in 0..RUNS {
        let sample = trace::Sample::now();
        let started = Instant::now();
        let (_, out) = tokio::join!(
            drain_stream(&streams, &stream_arn, &shard_id),
            engine_alone.verify(&records, None)
        );
        seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(out.lookup_calls, ITEMS / 100);
        sample.cpu_line("raw GetRecords loop and engine at once", ITEMS);
    }
    let at_once = report("poller_ceiling_at_once", ITEMS, &seconds, 0);

    let mut seconds = Vec::new();
    let mut calls = 0;
    for run in 0..RUNS {
        let checkpoints = format!("BenchCheckpoints{run}");
        let _ = poller_account
            .delete_table()
            .table_name(&checkpoints)
            .send()
            .await;
        create_checkpoint_table(&poller_account, &checkpoints)
            .await
            .unwrap();
        let mut verify = config.clone();
        verify.lag_window_from = LagWindowFrom::Arrival;
        let poller_config = PollerConfig {
            verify: verify.clone(),
            stream: StreamSelector::Arn(stream_arn.clone()),
            stream_role_arn: None,
            stream_role_external_id: None,
            checkpoint_table: checkpoints.clone(),
            starting_position: StartAt::TrimHorizon,
            get_records_limit: 1000,
            lease_duration: Duration::from_secs(300),
            poll_interval: Duration::from_secs(300),
        };
        let poller = Poller::new(
            DynamoDbStreams::new(streams.clone()),
            DynamoDbCheckpoints::new(poller_account.clone(), &checkpoints),
            Verifier::new(
                verify,
                DynamoDbReader::new(target.clone()),
                DynamoDbReader::new(source.clone()),
            ),
            poller_config,
        );
        let sample = trace::Sample::now();
        let started = tokio::time::Instant::now();
        let out = poller
            .run(
                &stream_arn,
                tokio::time::Instant::now() + Duration::from_secs(600),
            )
            .await
            .unwrap();
        // The poller stops a caught-up shard after empty reads with back-off (the raw loop stops at
        // its first empty page): count to the checkpoint of the last record.
        let drained = out.last_progress_at.expect("the poller made progress");
        seconds.push((drained - started).as_secs_f64());
        assert_eq!(out.poller.records_read as usize, ITEMS);
        assert_eq!(out.verification.matches as usize, ITEMS);
        calls = out.poller.get_records_calls as usize;
        sample.cpu_line("poller run", ITEMS);
    }
    let poller = report("poller_run", ITEMS, &seconds, calls);
    // The poller cannot beat the slower of its two ceilings, both measured in this run: reading
    // the stream (the raw loop) and the engine's lookups (b, on loopback like the poller).
    println!(
        "{}",
        serde_json::json!({
            "name": "poller_ratio", "poller_per_s": poller, "raw_get_records_per_s": raw,
            "engine_per_s": engine, "ratio": poller / raw.min(engine),
            "at_once_per_s": at_once, "ratio_at_once": poller / at_once,
        })
    );
}

/// Reads the shard from TRIM_HORIZON to its first empty page, 1,000 records a call; how many calls.
async fn drain_stream(
    streams: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    shard_id: &str,
) -> usize {
    let mut it = streams
        .get_shard_iterator()
        .stream_arn(stream_arn)
        .shard_id(shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator;
    let (mut read, mut made) = (0, 0);
    while let Some(i) = it {
        made += 1;
        let out = streams
            .get_records()
            .shard_iterator(i)
            .limit(1000)
            .send()
            .await
            .unwrap();
        let n = out.records.map(|r| r.len()).unwrap_or(0);
        if n == 0 {
            break;
        }
        read += n;
        it = out.next_shard_iterator;
    }
    assert_eq!(read, ITEMS);
    made
}

/// Diagnostics (`LOOKUPS_TRACE=1`): when each BatchGetItem starts and ends, how long its future
/// spends in `poll`, and how long it waits between being woken and being polled.
mod trace {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    use futures::task::ArcWake;

    #[derive(Debug, Clone, Copy)]
    pub struct Call {
        pub start: Instant,
        pub end: Instant,
        pub busy: Duration,
        pub wait: Duration,
    }

    #[derive(Default, Clone)]
    pub struct Log(pub Arc<Mutex<Vec<Call>>>);

    struct Stamp {
        inner: Mutex<Option<Waker>>,
        woke: Mutex<Option<Instant>>,
    }

    impl ArcWake for Stamp {
        fn wake_by_ref(arc: &Arc<Self>) {
            arc.woke.lock().unwrap().get_or_insert_with(Instant::now);
            if let Some(w) = arc.inner.lock().unwrap().as_ref() {
                w.wake_by_ref();
            }
        }
    }

    pub async fn timed<F: Future>(log: &Log, fut: F) -> F::Output {
        struct Timed<F> {
            fut: Pin<Box<F>>,
            stamp: Arc<Stamp>,
            busy: Duration,
            wait: Duration,
        }
        impl<F: Future> Future for Timed<F> {
            type Output = F::Output;
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
                let woke = self.stamp.woke.lock().unwrap().take();
                if let Some(w) = woke {
                    self.wait += w.elapsed();
                }
                *self.stamp.inner.lock().unwrap() = Some(cx.waker().clone());
                let waker = futures::task::waker(self.stamp.clone());
                let mut inner = Context::from_waker(&waker);
                let t = Instant::now();
                let r = self.fut.as_mut().poll(&mut inner);
                let spent = t.elapsed();
                self.busy += spent;
                r
            }
        }
        let start = Instant::now();
        let mut t = Timed {
            fut: Box::pin(fut),
            stamp: Arc::new(Stamp {
                inner: Mutex::new(None),
                woke: Mutex::new(None),
            }),
            busy: Duration::ZERO,
            wait: Duration::ZERO,
        };
        let out = (&mut t).await;
        log.0.lock().unwrap().push(Call {
            start,
            end: Instant::now(),
            busy: t.busy,
            wait: t.wait,
        });
        out
    }

    /// Busy and total jiffies of the whole machine, and this process's CPU (utime + stime).
    fn cpu() -> (u64, u64, u64) {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fields: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total: u64 = fields.iter().sum();
        let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
        let me = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after = me.rsplit(')').next().unwrap_or_default();
        let f: Vec<&str> = after.split_whitespace().collect();
        // After the ')': state is field 0, utime 11, stime 12.
        let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
        let mine = field(11) + field(12);
        (total - idle, total, mine)
    }

    pub struct Sample(std::time::Instant, (u64, u64, u64));

    impl Sample {
        pub fn now() -> Sample {
            Sample(Instant::now(), cpu())
        }

        /// With `LOOKUPS_TRACE`: the machine's CPU (all processes) per 1,000 records since `now`.
        pub fn cpu_line(&self, name: &str, records: usize) {
            if std::env::var_os("LOOKUPS_TRACE").is_none() {
                return;
            }
            let (b1, t1, m1) = cpu();
            let (b0, t0, m0) = self.1;
            let wall = self.0.elapsed().as_secs_f64();
            // Jiffies of 10 ms.
            let busy_ms = (b1 - b0) as f64 * 10.0;
            println!(
                "trace {name}: wall {:.0} ms, machine busy {:.0}%, machine CPU {:.0} ms per 1,000 records, this process {:.0} ms",
                wall * 1000.0,
                100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64,
                busy_ms * 1000.0 / records as f64,
                (m1 - m0) as f64 * 10.0 * 1000.0 / records as f64,
            );
        }
    }

    pub fn begin(log: &Log) -> Sample {
        log.0.lock().unwrap().clear();
        Sample(Instant::now(), cpu())
    }

    pub fn summary(name: &str, log: &Log, sample: Sample, concurrency: usize) {
        let wall = sample.0.elapsed();
        let (b1, t1, m1) = cpu();
        let (b0, t0, m0) = sample.1;
        let mut calls = log.0.lock().unwrap().clone();
        let n = calls.len().max(1) as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let latency: f64 = calls.iter().map(|c| ms(c.end - c.start)).sum();
        let busy: f64 = calls.iter().map(|c| ms(c.busy)).sum();
        let wait: f64 = calls.iter().map(|c| ms(c.wait)).sum();
        calls.sort_by_key(|c| c.start);
        let mut ends: Vec<Instant> = calls.iter().map(|c| c.end).collect();
        ends.sort();
        let gaps: Vec<f64> = calls
            .iter()
            .skip(concurrency)
            .zip(ends.iter())
            .map(|(c, e)| ms(c.start.saturating_duration_since(*e)))
            .collect();
        let gap: f64 = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
        println!(
            "trace {name}: wall {:.0} ms, {} calls, in flight {:.2} avg, call {:.1} ms avg (in poll {:.2}, woken-to-polled {:.2}), start after a slot frees {:.2} ms avg; machine busy {:.0}%, machine CPU {:.0} ms per 1,000 records, this process {:.0}% of one core",
            ms(wall),
            calls.len(),
            latency / ms(wall),
            latency / n,
            busy / n,
            wait / n,
            gap,
            100.0 * (b1 - b0) as f64 / (t1 - t0).max(1) as f64,
            (b1 - b0) as f64 * 10.0 * 1000.0 / (calls.len() * 100).max(1) as f64,
            100.0 * (m1 - m0) as f64 / 100.0 / wall.as_secs_f64(),
        );
    }
}
