//! The baseline compare against DynamoDB Local: both directions, every verdict, resuming, live
//! writes, faults and the read rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::fault_proxy::{Fault, FaultProxy, Rule};
use crate::common::*;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType as T, StreamViewType};
use ddb_verify::aws::checkpoints::{create_checkpoint_table, DynamoDbCheckpoints};
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::aws::scanner::DynamoDbScanner;
use ddb_verify::baseline::{Baseline, BaselineParts, RunSummary};
use ddb_verify::config::{BaselineConfig, Config, TableRef};
use ddb_verify::ports::checkpoint::BaselineCounts;
use ddb_verify::ports::findings::NoFindings;
use ddb_verify::record::Item;
use ddb_verify::report::metrics::InvocationMetrics;
use tokio::sync::Notify;
use tokio::time::Instant;

type AwsBaseline = Baseline<DynamoDbReader, DynamoDbScanner, DynamoDbCheckpoints, NoFindings>;

const SCAN: &str = "DynamoDB_20120810.Scan";
const DESCRIBE_TABLE: &str = "DynamoDB_20120810.DescribeTable";
const BATCH_GET_ITEM: &str = "DynamoDB_20120810.BatchGetItem";

/// A source table and its copy, with a checkpoint table in the source account.
struct Pair {
    pair: TablePair,
    checkpoints: String,
}

async fn pair(keys: &[(&str, T)]) -> Pair {
    let pair = table_pair("Base", keys, StreamViewType::NewAndOldImages, true).await;
    let checkpoints = unique("BaseCheckpoints");
    create_checkpoint_table(&pair.source.dynamodb, &checkpoints)
        .await
        .expect("create checkpoint table");
    Pair { pair, checkpoints }
}

impl Pair {
    fn config(&self, adjust: impl FnOnce(&mut BaselineConfig)) -> BaselineConfig {
        let mut verify = Config::new(TableRef::parse(&self.pair.table).unwrap());
        verify.max_replication_lag = Duration::from_millis(500);
        let mut config = BaselineConfig {
            verify,
            source_table: self.pair.table.clone(),
            checkpoint_table: self.checkpoints.clone(),
            max_read_units: 10_000.0,
            page_limit: None,
            pending_limit: ddb_verify::config::DEFAULT_PENDING_LIMIT,
        };
        adjust(&mut config);
        config
    }

    /// The baseline reading both accounts through `source` and `target` (direct, or a proxy).
    fn baseline_through(
        &self,
        source: &Account,
        target: &Account,
        config: BaselineConfig,
    ) -> AwsBaseline {
        Baseline::new(
            config,
            BaselineParts {
                source_reader: DynamoDbReader::new(source.dynamodb.clone()),
                source_scanner: DynamoDbScanner::new(source.dynamodb.clone()),
                target_reader: DynamoDbReader::new(target.dynamodb.clone()),
                target_scanner: DynamoDbScanner::new(target.dynamodb.clone()),
                store: DynamoDbCheckpoints::new(
                    self.pair.source.dynamodb.clone(),
                    &self.checkpoints,
                ),
            },
        )
    }

    fn baseline(&self, config: BaselineConfig) -> AwsBaseline {
        self.baseline_through(&self.pair.source, &self.pair.target, config)
    }

    /// Both tables hold `items`: a copy without drift.
    async fn both_hold(&self, items: &[Item]) {
        write_items(&self.pair.source, &self.pair.table, items).await;
        write_items(&self.pair.target, &self.pair.table, items).await;
    }

    /// A fault proxy (seeded) in front of DynamoDB Local, and both accounts through it.
    async fn proxied(&self, seed: u64) -> (FaultProxy, Account, Account) {
        let proxy = FaultProxy::start(endpoint(), seed).await;
        let (source, target) = (
            account_through(&proxy, SOURCE_ACCOUNT),
            account_through(&proxy, TARGET_ACCOUNT),
        );
        (proxy, source, target)
    }
}

/// Every segment to its end, all at once as the CLI runs them, then the run's summary.
async fn run_all(baseline: &AwsBaseline, run_id: &str, segments: u32) -> RunSummary {
    baseline.start(run_id, segments).await.expect("start");
    let work = (0..segments).map(|segment| async move {
        let mut metrics = InvocationMetrics::default();
        let report = baseline
            .run_segment(run_id, segment, segments, None, &mut metrics, &|_| {})
            .await
            .expect("segment");
        assert!(report.done, "segment {segment} not done");
    });
    futures::future::join_all(work).await;
    baseline.finish(run_id, segments).await.expect("finish")
}

fn orders(count: u32) -> Vec<Item> {
    (0..count)
        .map(|i| order_item(&format!("c#{}", i % 17), i, "PLACED"))
        .collect()
}

/// A pair of `Orders` tables that both hold the same [`orders`]`(count)`: a copy without drift.
async fn orders_on_both_sides(count: u32) -> Pair {
    let p = pair(ORDER_KEYS_T).await;
    p.both_hold(&orders(count)).await;
    p
}

/// A pair of `Orders` tables: [`orders`]`(count)` in the source, all but the last of them on the
/// other side (one MISSING).
async fn orders_with_the_last_not_copied(count: u32) -> Pair {
    let p = pair(ORDER_KEYS_T).await;
    let all = orders(count);
    write_items(&p.pair.source, &p.pair.table, &all).await;
    write_items(&p.pair.target, &p.pair.table, &all[..all.len() - 1]).await;
    p
}

fn verdicts(c: &BaselineCounts) -> HashMap<&'static str, u64> {
    c.verdicts().into_iter().filter(|(_, n)| *n > 0).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_loaded_in_different_orders_are_each_read_once_without_a_point_read() {
    let p = pair(ORDER_KEYS_T).await;
    let all = orders(600);
    write_items(&p.pair.source, &p.pair.table, &all).await;
    let reversed: Vec<Item> = all.iter().rev().cloned().collect();
    write_items(&p.pair.target, &p.pair.table, &reversed).await;
    let baseline = p.baseline(p.config(|_| {}));
    let summary = run_all(&baseline, "orders", 4).await;
    let c = &summary.counts;
    assert_eq!((c.items_source, c.items_target, c.matched), (600, 600, 600));
    assert_eq!(c.problems(), 0);
    assert_eq!(c.point_reads, 0, "every item settled from the two scans");
    // A consistent point read costs at least 1 unit an item; the scans, about 0.5 per 4 KB.
    let (source_units, target_units) = baseline.consumed_read_units();
    assert!(
        source_units < 30.0 && target_units < 30.0,
        "each table read once: {source_units} and {target_units} units for 600 items"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_past_the_merge_limit_are_settled_by_point_reads_with_the_same_verdicts() {
    // Half the keys on both sides, a quarter on each side alone.
    let p = pair(ORDER_KEYS_T).await;
    let all = orders(200);
    write_items(&p.pair.source, &p.pair.table, &all[..150]).await;
    write_items(&p.pair.target, &p.pair.table, &all[50..]).await;
    let expected = HashMap::from([("MATCH", 100), ("MISSING", 50), ("EXTRA", 50)]);
    let mut point_reads = Vec::new();
    for (run, limit) in [("roomy", 10_000), ("tight", 1)] {
        let baseline = p.baseline(p.config(|c| {
            c.pending_limit = limit;
            c.page_limit = Some(40);
        }));
        let summary = run_all(&baseline, run, 2).await;
        assert_eq!(verdicts(&summary.counts), expected, "{run}");
        assert_eq!(
            (summary.counts.items_source, summary.counts.items_target),
            (150, 150),
            "{run}: every item counted once"
        );
        point_reads.push(summary.counts.point_reads);
    }
    assert_eq!(point_reads[0], 100, "only the keys on one side alone");
    assert!(
        point_reads[1] > point_reads[0],
        "a full merge settles keys both sides hold by point reads too: {point_reads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_with_a_difference_on_every_page_moves_on_through_short_invocations() {
    let p = pair(ORDER_KEYS_T).await;
    let all = orders(60);
    write_items(&p.pair.source, &p.pair.table, &all).await;
    // Every tenth order never copied: each page of 10 holds a MISSING, whose window its round
    // waits out, and the two scans' pages end on different keys, so items wait at every save.
    let copies: Vec<Item> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 3)
        .map(|(_, item)| item.clone())
        .collect();
    write_items(&p.pair.target, &p.pair.table, &copies).await;
    let baseline = p.baseline(p.config(|c| {
        c.page_limit = Some(10);
        c.verify.deadline_margin = Duration::from_millis(500);
    }));
    baseline.start("short", 1).await.expect("start");
    let mut metrics = InvocationMetrics::default();
    let mut invocations = 0;
    // Each invocation has time for a round or two, as a function near its timeout would.
    let report = loop {
        invocations += 1;
        assert!(invocations <= 40, "the segment stopped moving on");
        let deadline = Instant::now() + Duration::from_millis(2_000);
        let report = baseline
            .run_segment("short", 0, 1, Some(deadline), &mut metrics, &|_| {})
            .await
            .expect("segment");
        if report.done {
            break report;
        }
    };
    let c = report.counts;
    assert_eq!(
        (c.items_source, c.items_target),
        (60, 54),
        "each item counted once"
    );
    assert_eq!(
        (c.matched, c.missing, c.problems()),
        (54, 6, 6),
        "{:?}",
        verdicts(&c)
    );
    assert_eq!(c.point_reads, 6, "only the missing keys were read by key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verdict_of_a_bulk_loaded_copy_with_drift() {
    let p = orders_on_both_sides(200).await;
    let (source, target, table) = (&p.pair.source, &p.pair.target, &p.pair.table);
    // Drift: one never copied, one different, one only on the other side.
    put(source, table, &order_item("c#x", 1001, "PLACED")).await;
    put(source, table, &order_item("c#x", 1002, "PAID")).await;
    put(target, table, &order_item("c#x", 1002, "PLACED")).await;
    put(target, table, &order_item("c#x", 1003, "PLACED")).await;
    // Equal as DynamoDB means it: number notation, set order, an ignored attribute.
    let mut a = order_item("c#y", 2001, "PLACED");
    a.insert("total".into(), n("1.50"));
    a.insert(
        "tags".into(),
        AttributeValue::Ss(vec!["a".into(), "b".into()]),
    );
    a.insert("updatedAt".into(), n("1"));
    let mut b = a.clone();
    b.insert("total".into(), n("1.5"));
    b.insert(
        "tags".into(),
        AttributeValue::Ss(vec!["b".into(), "a".into()]),
    );
    b.insert("updatedAt".into(), n("2"));
    put(source, table, &a).await;
    put(target, table, &b).await;

    let baseline = p.baseline(p.config(|c| {
        c.verify.ignore_attributes = vec!["updatedAt".into()];
        c.page_limit = Some(40);
    }));
    let summary = run_all(&baseline, "drift", 3).await;
    assert!(summary.complete());
    assert!(summary.run.finished_at_ms >= Some(summary.run.started_at_ms));
    let c = summary.counts;
    assert_eq!(
        verdicts(&c),
        HashMap::from([
            ("MATCH", 201),
            ("MISSING", 1),
            ("MISMATCH", 1),
            ("EXTRA", 1)
        ])
    );
    assert_eq!((c.items_source, c.items_target), (203, 203));
}

const ORDER_KEYS_T: &[(&str, T)] = &[("customerId", T::S), ("orderId", T::N)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_whose_key_schemas_differ_are_refused_before_anything_is_scanned_naming_both() {
    let source = account(SOURCE_ACCOUNT);
    let target = account(TARGET_ACCOUNT);
    let table = unique("KeyChange");
    create_table(
        &source,
        &table,
        &[("customerId", T::S), ("orderId", T::N)],
        None,
    )
    .await;
    // The copy's sort key became a string: no source key can be looked up in it.
    create_table(
        &target,
        &table,
        &[("customerId", T::S), ("orderId", T::S)],
        None,
    )
    .await;
    let checkpoints = unique("BaseCheckpoints");
    create_checkpoint_table(&source.dynamodb, &checkpoints)
        .await
        .expect("create checkpoint table");
    let pair = Pair {
        pair: TablePair {
            source,
            target,
            table,
            stream_arn: String::new(),
        },
        checkpoints,
    };
    let (proxy, source_seen, target_seen) = pair.proxied(29).await;
    let baseline = pair.baseline_through(&source_seen, &target_seen, pair.config(|_| {}));
    baseline.start("key-change", 2).await.expect("start");
    let mut metrics = InvocationMetrics::default();
    let refused = baseline
        .run_segment("key-change", 0, 2, None, &mut metrics, &|_| {})
        .await
        .expect_err("refused")
        .to_string();
    assert!(
        refused.contains("key schemas differ")
            && refused.contains("customerId (S), orderId (N)")
            && refused.contains("customerId (S), orderId (S)"),
        "{refused}"
    );
    assert_eq!(proxy.seen(SCAN), 0, "nothing scanned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_and_number_keys_are_compared_both_ways() {
    let p = pair(&[("device", T::B), ("at", T::N)]).await;
    let (source, target, table) = (&p.pair.source, &p.pair.target, &p.pair.table);
    let reading = |device: u8, at: u32| {
        item(&[
            ("device", AttributeValue::B(Blob::new(vec![0xff, device]))),
            ("at", n(&at.to_string())),
            ("value", n("7")),
        ])
    };
    for i in 0..30 {
        put_replicated(source, target, table, &reading(i, 100 + u32::from(i))).await;
    }
    put(target, table, &reading(200, 1)).await;
    put(source, table, &reading(201, 1)).await;
    let summary = run_all(&p.baseline(p.config(|_| {})), "keys", 2).await;
    assert_eq!(
        verdicts(&summary.counts),
        HashMap::from([("MATCH", 30), ("MISSING", 1), ("EXTRA", 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanned_pages_are_read_onto_tapes_and_end_with_their_last_key() {
    use ddb_verify::ports::scan::{ScanRequest, TableScanner};
    use ddb_verify::record::Image;

    let p = pair(ORDER_KEYS_T).await;
    let rows = orders(25);
    for row in &rows {
        put(&p.pair.source, &p.pair.table, row).await;
    }
    let scanner = DynamoDbScanner::new(p.pair.source.dynamodb.clone());
    let key_names = vec!["customerId".to_string(), "orderId".to_string()];
    let (mut start_key, mut read, mut pages) = (None, Vec::new(), 0);
    loop {
        let page = scanner
            .scan(ScanRequest {
                table: &p.pair.table,
                segment: 0,
                total_segments: 1,
                start_key: start_key.take(),
                attributes: None,
                limit: Some(10),
            })
            .await
            .expect("scan");
        pages += 1;
        assert!(page.consumed_read_units > 0.0);
        for found in page.items {
            // Read by the byte reader, not decoded by the SDK.
            assert!(matches!(found, Image::Tape(_)), "{found:?}");
            let key = found.key_item(&key_names);
            assert_eq!(key.len(), 2);
            read.push(found.into_item());
        }
        match page.last_evaluated_key {
            Some(key) => start_key = Some(key),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    assert_eq!(read.len(), rows.len());
    for row in &rows {
        assert!(read
            .iter()
            .any(|r| ddb_verify::compare::items_equal(r, row, &[])));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_and_verifies_at_most_one_page_per_segment_again() {
    let p = orders_on_both_sides(300).await;
    let (proxy, source_seen, target_seen) = p.proxied(7).await;
    let config = || p.config(|c| c.page_limit = Some(25));
    let segments = 2;
    let baseline = p.baseline_through(&source_seen, &target_seen, config());
    baseline.start("killed", segments).await.unwrap();
    // Killed in the middle: each segment's future is dropped once it has saved two pages, while
    // it reads its third.
    for segment in 0..segments {
        let mut metrics = InvocationMetrics::default();
        let saved = AtomicU32::new(0);
        let enough = Notify::new();
        let on_page = |_: &BaselineCounts| {
            if saved.fetch_add(1, Ordering::SeqCst) + 1 == 2 {
                enough.notify_one();
            }
        };
        let work = baseline.run_segment("killed", segment, segments, None, &mut metrics, &on_page);
        tokio::select! {
            report = work => panic!("segment {segment} finished before it was killed: {report:?}"),
            _ = enough.notified() => {}
        }
    }
    assert!(
        proxy.seen(SCAN) >= 4,
        "two pages a segment were read before the kill"
    );

    let resumed = p.baseline_through(&source_seen, &target_seen, config());
    let summary = run_all(&resumed, "killed", segments).await;
    assert!(summary.complete());
    // Every item counted once, none twice, none lost.
    assert_eq!(
        (summary.counts.items_source, summary.counts.items_target),
        (300, 300)
    );
    assert_eq!(verdicts(&summary.counts), HashMap::from([("MATCH", 300)]));
    // Pages: 300 items in pages of 25, per table, plus each segment's last empty page; the
    // resumed run read again at most one page per segment and table.
    let pages = proxy.seen(SCAN);
    let minimum = 2 * (300 / 25);
    assert!(
        pages <= minimum + 2 * segments as u64 + 2 * segments as u64,
        "{pages} Scan pages for a minimum of {minimum}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_read_each_tables_key_schema_once_beside_their_checkpoints() {
    let p = orders_on_both_sides(40).await;
    let (proxy, source_seen, target_seen) = p.proxied(13).await;
    let baseline = p.baseline_through(&source_seen, &target_seen, p.config(|_| {}));
    for run in ["first", "second"] {
        let summary = run_all(&baseline, run, 4).await;
        assert!(summary.complete(), "{run}");
        assert_eq!(verdicts(&summary.counts), HashMap::from([("MATCH", 40)]));
    }
    // Two runs of four segments, both directions: one DescribeTable per table in all.
    assert_eq!(proxy.seen(DESCRIBE_TABLE), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_cannot_read_a_key_schema_before_its_deadline_stops_not_done_and_resumes() {
    let p = orders_on_both_sides(30).await;
    let (proxy, source_seen, target_seen) = p.proxied(17).await;
    proxy.set_rules(vec![Rule::new(
        DESCRIBE_TABLE,
        1.0,
        vec![Fault::ProvisionedThroughputExceeded],
    )]);
    let baseline = p.baseline_through(&source_seen, &target_seen, p.config(|_| {}));
    baseline.start("late", 1).await.unwrap();
    let mut metrics = InvocationMetrics::default();
    // The default margin is 2 s: the segment must stop within the first 2.
    let deadline = Instant::now() + Duration::from_secs(4);
    let work = baseline.run_segment("late", 0, 1, Some(deadline), &mut metrics, &|_| {});
    let report = tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .expect("the segment returned, not retried past its deadline")
        .expect("time running out is not an error");
    assert!(!report.done);
    assert!(Instant::now() < deadline - Duration::from_secs(1));
    assert!(proxy.injected().failures(DESCRIBE_TABLE) > 1, "retried");
    assert_eq!(proxy.seen(SCAN), 0, "nothing scanned without the key names");

    // The next invocation, once DescribeTable answers, does the whole segment.
    proxy.clear_rules();
    let report = baseline
        .run_segment("late", 0, 1, None, &mut metrics, &|_| {})
        .await
        .unwrap();
    assert!(report.done);
    assert_eq!(
        (report.counts.items_source, report.counts.matched),
        (30, 30)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_the_compare_give_no_false_difference() {
    let p = orders_on_both_sides(150).await;
    let (source, target, table) = (&p.pair.source, &p.pair.target, &p.pair.table);
    // A live table: orders change, new ones arrive, old ones go, each replicated 150 ms later.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (source, target, table, stop) = (
            source.clone(),
            target.clone(),
            table.clone(),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let changed = order_item(&format!("c#{}", i % 17), i % 150, &format!("v{i}"));
                let added = order_item("c#new", 5000 + i, "PLACED");
                put(&source, &table, &changed).await;
                put(&source, &table, &added).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
                put(&target, &table, &changed).await;
                put(&target, &table, &added).await;
                i += 1;
            }
        })
    };
    let baseline = p.baseline(p.config(|c| {
        c.verify.max_replication_lag = Duration::from_secs(2);
        c.page_limit = Some(20);
    }));
    let summary = run_all(&baseline, "live", 2).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert_eq!(summary.counts.problems(), 0, "{:?}", summary.counts);
    assert!(summary.counts.matched >= 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_lose_nothing() {
    let p = orders_with_the_last_not_copied(120).await;
    let (proxy, source_seen, target_seen) = p.proxied(11).await;
    let faults = vec![
        Fault::ProvisionedThroughputExceeded,
        Fault::InternalServerError,
    ];
    proxy.set_rules(vec![
        Rule::new(SCAN, 0.4, faults.clone()),
        Rule::new(BATCH_GET_ITEM, 0.4, faults),
    ]);
    let baseline = p.baseline_through(
        &source_seen,
        &target_seen,
        p.config(|c| c.page_limit = Some(30)),
    );
    let summary = run_all(&baseline, "faults", 2).await;
    assert!(proxy.injected().failures(SCAN) > 0 && proxy.injected().failures(BATCH_GET_ITEM) > 0);
    assert_eq!(
        verdicts(&summary.counts),
        HashMap::from([("MATCH", 119), ("MISSING", 1)])
    );
    assert_eq!(summary.counts.items_source, 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_rate_holds_over_a_run() {
    // Long enough that the last calls' overdraw (a call in flight may consume more than its
    // estimate, and a run's last debt is never repaid) stays within the margin below: items of
    // about 2 KB, so that the scans alone (the run reads each table once) cost about 200 units.
    let p = pair(ORDER_KEYS_T).await;
    let padded: Vec<Item> = orders(800)
        .into_iter()
        .map(|mut item| {
            item.insert("note".into(), s(&"x".repeat(2048)));
            item
        })
        .collect();
    p.both_hold(&padded).await;
    let baseline = p.baseline(p.config(|c| {
        c.max_read_units = 40.0;
        c.page_limit = Some(50);
    }));
    let started = Instant::now();
    run_all(&baseline, "rate", 4).await;
    let took = started.elapsed().as_secs_f64();
    let (source_units, target_units) = baseline.consumed_read_units();
    assert!(
        source_units > 100.0,
        "DynamoDB Local reports consumed capacity ({source_units})"
    );
    // The first second's allowance is spent at once; the rest at the rate.
    for units in [source_units, target_units] {
        let rate = (units - 40.0) / took;
        assert!(
            rate <= 44.0,
            "{rate:.1} units/s for MAX_READ_UNITS=40 ({units:.0} units in {took:.1} s)"
        );
    }
    // How close to the rate a run gets depends on the machine: `make bench` measures it.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_one_json_object_and_exits_2_on_problems() {
    let p = orders_with_the_last_not_copied(50).await;
    let (target, table) = (&p.pair.target, &p.pair.table);
    let run = |run_id: &str| {
        ddb_verify_cli(
            &["baseline", "--segments", "3", "--json", "--run-id", run_id],
            &[
                ("VERIFY_TABLE_NAME", table.as_str()),
                ("VERIFY_PROFILE", "target-account"),
                ("SOURCE_TABLE_NAME", table.as_str()),
                ("CHECKPOINT_TABLE", p.checkpoints.as_str()),
                ("MAX_REPLICATION_LAG", "500ms"),
            ],
        )
    };
    let out = run("cli");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(json["run_id"], "cli");
    assert_eq!(json["complete"], true);
    assert_eq!(json["items_scanned"]["source"], 50);
    assert_eq!(json["items_scanned"]["target"], 49);
    assert_eq!(json["verdicts"]["MATCH"], 49);
    assert_eq!(json["verdicts"]["MISSING"], 1);
    assert_eq!(json["verdicts"]["EXTRA"], 0);
    // The problem is repaired: a new run finds the tables equal and exits 0.
    put(target, table, &orders(50)[49]).await;
    let out = run("cli-2");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A variable that is wrong is named, with exit status 1.
    let out = run_binary_with_only(
        env!("CARGO_BIN_EXE_ddb-verify"),
        &["baseline"],
        &[
            ("VERIFY_TABLE_NAME", "Orders"),
            ("SOURCE_TABLE_NAME", "Orders"),
            ("CHECKPOINT_TABLE", "C"),
            ("MAX_READ_UNITS", "lots"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAX_READ_UNITS=\"lots\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segment_function_answers_not_done_until_its_segment_is_done_then_finish_records_the_run(
) {
    use ddb_verify::lambda::baseline::{handle, BaselineRequest};
    // Enough pages that no invocation finishes a segment (about 40 a direction, each a few ms),
    // and invocations long enough for several pages each, however fast or slow the machine.
    let p = orders_on_both_sides(400).await;
    let all = orders(400);
    let baseline = p.baseline(p.config(|c| {
        c.page_limit = Some(5);
        c.verify.deadline_margin = Duration::ZERO;
    }));
    let segments = 2;
    let mut invocations: u64 = 0;
    for segment in 0..segments {
        let request = BaselineRequest::Segment {
            run_id: "sfn".into(),
            segment,
            total_segments: segments,
            table: None,
        };
        loop {
            invocations += 1;
            assert!(invocations < 500, "no progress");
            // A short invocation, as a Lambda function near its timeout; a little longer each
            // time, so that a loaded machine (where one page may take longer than 100 ms, and a
            // page cut short is read again) still gets through its pages.
            let budget = Duration::from_millis(100 + 10 * invocations);
            let deadline = Instant::now() + budget;
            let answer = handle(&baseline, request.clone(), deadline).await.unwrap();
            assert_eq!(answer["segment"], segment);
            if answer["done"] == true {
                break;
            }
            assert_eq!(answer["done"], false);
        }
    }
    assert!(
        invocations > 2,
        "the segments took several invocations ({invocations})"
    );
    let finish = BaselineRequest::Finish {
        run_id: "sfn".into(),
        total_segments: segments,
        table: None,
    };
    let answer = handle(&baseline, finish, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(answer["complete"], true, "{answer}");
    assert_eq!(answer["segments_done"], 2);
    assert_eq!(answer["items_scanned"]["source"], all.len());
    assert_eq!(answer["items_scanned"]["target"], all.len());
    assert_eq!(answer["verdicts"]["MATCH"], all.len());
    // A done segment answers done at once when invoked again (a re-driven execution).
    let again = BaselineRequest::Segment {
        run_id: "sfn".into(),
        segment: 0,
        total_segments: segments,
        table: None,
    };
    let answer = handle(&baseline, again, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(answer["done"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_keeps_changing_is_unverifiable_after_a_bounded_time_not_judged() {
    let p = orders_on_both_sides(20).await;
    let (source, target, table) = (&p.pair.source, &p.pair.target, &p.pair.table);
    // The other side holds a state the source never had; the source changes every 50 ms, so
    // neither "kept up" nor "behind for a whole window" can be shown.
    put(target, table, &order_item("c#hot", 1, "STALE")).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (source, table, stop) = (source.clone(), table.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                put(&source, &table, &order_item("c#hot", 1, &format!("v{i}"))).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                i += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let summary = run_all(&p.baseline(p.config(|_| {})), "hot", 1).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert_eq!(
        verdicts(&summary.counts),
        HashMap::from([("MATCH", 20), ("UNVERIFIABLE", 1)])
    );
    // Three attempts of two 500 ms windows, and some reads: far from the engine's own bound.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

/// `ddb-verify baseline` on `table` (both accounts, the other one through its profile) with its
/// checkpoints in `checkpoints`, then `env`.
fn cli_baseline(
    table: &str,
    checkpoints: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut all = vec![
        ("VERIFY_TABLE_NAME", table),
        ("VERIFY_PROFILE", "target-account"),
        ("SOURCE_TABLE_NAME", table),
        ("CHECKPOINT_TABLE", checkpoints),
        ("MAX_REPLICATION_LAG", "500ms"),
    ];
    all.extend_from_slice(env);
    ddb_verify_cli(&[&["baseline", "--segments", "2"], args].concat(), &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_id_reused_for_another_table_or_other_settings_is_refused_naming_the_difference() {
    // Orders and Catalog, their checkpoints in one table, as an operator would keep them.
    let first = pair(ORDER_KEYS_T).await;
    let catalog = table_pair(
        "Catalog",
        ORDER_KEYS_T,
        StreamViewType::NewAndOldImages,
        true,
    )
    .await;
    let checkpoints = first.checkpoints.as_str();
    first.both_hold(&orders(20)).await;
    write_items(&catalog.source, &catalog.table, &orders(5)).await;
    let out = cli_baseline(&first.pair.table, checkpoints, &["--run-id", "R"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));

    // Catalog under Orders' finished run: refused, not "every segment done" and exit 0.
    let out = cli_baseline(
        &catalog.table,
        checkpoints,
        &["--run-id", "R", "--json"],
        &[],
    );
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("baseline run R compares something else")
            && stderr.contains("SOURCE_TABLE_NAME (the source table) was ")
            && stderr.contains(&first.pair.table)
            && stderr.contains(&catalog.table),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no summary of a refused run");
    // Without the run id, Catalog gets a run of its own and its drift is found.
    let out = cli_baseline(&catalog.table, checkpoints, &["--json"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));

    // Each setting the run compares with is named when it differs.
    for (env, named) in [
        (
            &[("IGNORE_ATTRIBUTES", "syncedAt")][..],
            "IGNORE_ATTRIBUTES was (none) and is now syncedAt",
        ),
        (
            &[("FINDINGS_TABLE", "SomeFindings")][..],
            "FINDINGS_TABLE was (unset) and is now SomeFindings",
        ),
        (
            &[
                ("VERIFY_PROFILE", ""),
                ("VERIFY_ROLE_ARN", "arn:aws:iam::222233334444:role/r"),
            ][..],
            "account 222233334444",
        ),
    ] {
        let out = cli_baseline(&first.pair.table, checkpoints, &["--run-id", "R"], env);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{env:?}: {stderr}");
        assert!(stderr.contains(named), "{env:?} should be named: {stderr}");
    }
    let out = ddb_verify_cli(
        &["baseline", "--segments", "3", "--run-id", "R"],
        &[
            ("VERIFY_TABLE_NAME", &first.pair.table),
            ("VERIFY_PROFILE", "target-account"),
            ("SOURCE_TABLE_NAME", &first.pair.table),
            ("CHECKPOINT_TABLE", checkpoints),
        ],
    );
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("segments (--segments, total_segments) was 2 and is now 3"),
        "{stderr}"
    );
    // The same settings resume (an IGNORE_ATTRIBUTES of another order or spacing is the same).
    let out = cli_baseline(&first.pair.table, checkpoints, &["--run-id", "R"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_recorded_by_an_older_version_without_its_settings_is_not_resumed() {
    let p = orders_on_both_sides(10).await;
    // The run item as versions before the settings were recorded wrote it: finished, 2 segments.
    p.pair
        .source
        .dynamodb
        .put_item()
        .table_name(&p.checkpoints)
        .item("streamArn", s("baseline#old"))
        .item("shardId", s("run"))
        .item("startedAt", n("1"))
        .item("totalSegments", n("2"))
        .item("finishedAt", n("2"))
        .send()
        .await
        .unwrap();
    let out = cli_baseline(&p.pair.table, &p.checkpoints, &["--run-id", "old"], &[]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("baseline run old was recorded by an older version")
            && stderr.contains("start a new run id"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segment_function_refuses_a_run_started_with_other_settings() {
    use ddb_verify::lambda::baseline::{handle, BaselineRequest};
    let p = orders_on_both_sides(10).await;
    let deadline = || Instant::now() + Duration::from_secs(30);
    let segment = |run_id: &str| BaselineRequest::Segment {
        run_id: run_id.into(),
        segment: 0,
        total_segments: 1,
        table: None,
    };
    let first = p.baseline(p.config(|_| {}));
    let answer = handle(&first, segment("sfn-r"), deadline()).await.unwrap();
    assert_eq!(answer["done"], true, "{answer}");
    // The same run id from a function configured otherwise: no segment counted for it.
    let other = p.baseline(p.config(|c| c.verify.ignore_attributes = vec!["syncedAt".into()]));
    let err = handle(&other, segment("sfn-r"), deadline())
        .await
        .unwrap_err();
    let message = ddb_verify::shared::error_chain(&err);
    assert!(
        message.contains("IGNORE_ATTRIBUTES was (none) and is now syncedAt"),
        "{message}"
    );
    let finish = BaselineRequest::Finish {
        run_id: "sfn-r".into(),
        total_segments: 1,
        table: None,
    };
    let err = handle(&other, finish, deadline()).await.unwrap_err();
    assert!(ddb_verify::shared::error_chain(&err).contains("IGNORE_ATTRIBUTES"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_compared_with_itself_is_refused_by_the_baseline_and_its_function() {
    let p = pair(ORDER_KEYS_T).await;
    // The source only: its own table on "the other side" would match every item.
    write_items(&p.pair.source, &p.pair.table, &orders(10)).await;
    let out = cli_baseline(
        &p.pair.table,
        &p.checkpoints,
        &["--json"],
        &[("VERIFY_PROFILE", "")],
    );
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("VERIFY_TABLE_NAME names the very table verified")
            && stderr.contains(&format!("{} (this account, us-east-1)", p.pair.table)),
        "{stderr}"
    );
    // The same region given explicitly is the same table; another region is another table.
    let out = cli_baseline(
        &p.pair.table,
        &p.checkpoints,
        &["--json"],
        &[("VERIFY_PROFILE", ""), ("VERIFY_REGION", "us-east-1")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    // The Step Functions segment function refuses at start-up, before any invocation.
    let out = run_binary(
        env!("CARGO_BIN_EXE_baseline-segment"),
        &[],
        &[
            ("VERIFY_TABLE_NAME", p.pair.table.as_str()),
            ("SOURCE_TABLE_NAME", p.pair.table.as_str()),
            ("CHECKPOINT_TABLE", p.checkpoints.as_str()),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
        ],
    );
    let output = output_of(&out);
    assert!(!out.status.success(), "{output}");
    assert!(
        output.contains("VERIFY_TABLE_NAME names the very table verified"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_summary_names_both_tables_with_their_account_and_region() {
    let p = orders_on_both_sides(10).await;
    let table = &p.pair.table;
    let out = cli_baseline(table, &p.checkpoints, &[], &[]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("source:     {table} (this account, us-east-1)"))
            && stdout.contains(&format!(
                "other side: {table} (the account of profile target-account, us-east-1)"
            )),
        "{stdout}"
    );
    let out = cli_baseline(table, &p.checkpoints, &["--json"], &[]);
    let json: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON object");
    assert_eq!(json["source"], format!("{table} (this account, us-east-1)"));
    assert_eq!(
        json["other_side"],
        format!("{table} (the account of profile target-account, us-east-1)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_without_findings_table_says_at_its_start_and_in_its_summary_that_it_will_not_count(
) {
    let p = orders_on_both_sides(10).await;
    let table = &p.pair.table;
    let out = cli_baseline(table, &p.checkpoints, &[], &[]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), stderr_of(&out));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Said at the start, before hours of scanning, and in the summary: how to make it count.
    let how = "set FINDINGS_TABLE to the findings table the verifiers write to";
    assert!(
        stderr.contains(how) && stderr.contains("readiness will not count it"),
        "{stderr}"
    );
    assert!(
        stdout.contains("findings:   not recorded") && stdout.contains(how),
        "{stdout}"
    );
    let out = cli_baseline(table, &p.checkpoints, &["--json"], &[]);
    let json: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON object");
    assert_eq!(json["counts_for_readiness"], false, "{json}");
    assert_eq!(json["findings_table"], serde_json::Value::Null, "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_names_the_tables_its_baseline_run_compared() {
    let p = orders_on_both_sides(10).await;
    let table = p.pair.table.as_str();
    let findings = findings_store(&p.pair.source).await;
    let out = cli_baseline(
        table,
        &p.checkpoints,
        &["--run-id", "named"],
        &[("FINDINGS_TABLE", findings.table())],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let readiness = |extra: &[&str]| {
        ddb_verify_cli(
            &[&["readiness"], extra].concat(),
            &[
                ("FINDINGS_TABLE", findings.table()),
                ("SOURCE_TABLE_NAME", table),
                ("CHECKPOINT_TABLE", p.checkpoints.as_str()),
            ],
        )
    };
    let compared = format!(
        "source {table} (this account, us-east-1) against other side {table} (the account of profile target-account, us-east-1) (baseline run named)"
    );
    // NO-GO here (no stream verifier has covered the table), but what was compared is said.
    let out = readiness(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("compared: {compared}")),
        "{stdout}"
    );
    let out = readiness(&["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["compared"], compared.as_str(), "{json}");
}

const HOUR_S: i64 = 3600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_past_their_ttl_on_one_side_only_are_expired_not_missing_or_extra() {
    let p = pair(ORDER_KEYS_T).await;
    let (source, target, table) = (&p.pair.source, &p.pair.target, &p.pair.table);
    assert_eq!(described_ttl(source, table).await, None, "TTL still off");
    enable_ttl(source, table, "expiresAt").await;
    let ttl = described_ttl(source, table).await;
    assert_eq!(ttl.as_deref(), Some("expiresAt"));
    // Deleted by TTL on the other side and not yet on the source; and the other way round.
    put_expiring_order(source, table, ("c#t", 1, "PLACED"), -HOUR_S).await;
    put_expiring_order(target, table, ("c#t", 2, "PLACED"), -HOUR_S).await;
    // Compared as usual: a TTL ahead (either side), one DynamoDB ignores (six years past), one
    // that is not a Number.
    put_expiring_order(source, table, ("c#t", 3, "PLACED"), HOUR_S).await;
    put_expiring_order(target, table, ("c#t", 4, "PLACED"), HOUR_S).await;
    let six_years = -6 * 365 * 24 * HOUR_S;
    put_expiring_order(source, table, ("c#t", 5, "PLACED"), six_years).await;
    let mut text = expiring(order_item("c#t", 6, "PLACED"), -HOUR_S);
    let past = text["expiresAt"].as_n().unwrap().clone();
    text.insert("expiresAt".into(), s(&past));
    put(source, table, &text).await;
    // Expired and on both sides alike: a MATCH.
    let both = expiring(order_item("c#t", 7, "PLACED"), -HOUR_S);
    put_replicated(source, target, table, &both).await;

    let baseline = p.baseline(p.config(|c| {
        c.verify.ttl_attribute = ttl;
        // A window of a second: slow reads on a busy machine give no verdict but UNVERIFIABLE.
        c.verify.max_replication_lag = Duration::from_secs(1);
    }));
    let summary = run_all(&baseline, "ttl", 2).await;
    let v = verdicts(&summary.counts);
    // DynamoDB Local deletes expired items of a table whose TTL is on (the source's), at its own
    // pace: one may be gone before the scan, or between the scan and the re-read (then both sides
    // lack it: SUPERSEDED). Never MISSING or EXTRA. The other side's TTL is off: its expired item
    // stays, and is EXPIRED, never EXTRA.
    assert_eq!(
        (v.get("MISSING"), v.get("EXTRA")),
        (Some(&3), Some(&1)),
        "{v:?}"
    );
    assert!(v.get("EXPIRED").is_some_and(|&n| n >= 1), "{v:?}");
    assert!(
        v.keys()
            .all(|k| ["MATCH", "EXPIRED", "SUPERSEDED", "MISSING", "EXTRA"].contains(k)),
        "{v:?}"
    );
    assert_eq!(summary.counts.problems(), 4);
    assert_eq!(
        summary.to_json()["verdicts"]["EXPIRED"],
        v.get("EXPIRED").copied().unwrap_or(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_whose_ttl_passes_during_the_compare_is_expired_and_one_ahead_still_missing() {
    let p = pair(ORDER_KEYS_T).await;
    let (source, table) = (&p.pair.source, &p.pair.table);
    // Ahead when scanned, past when the source is read again after the window.
    put_expiring_order(source, table, ("c#d", 1, "PLACED"), 2).await;
    put_expiring_order(source, table, ("c#d", 2, "PLACED"), HOUR_S).await;
    let baseline = p.baseline(p.config(|c| {
        c.verify.ttl_attribute = Some("expiresAt".into());
        c.verify.max_replication_lag = Duration::from_secs(4);
    }));
    let summary = run_all(&baseline, "ttl-passes", 1).await;
    assert_eq!(
        verdicts(&summary.counts),
        HashMap::from([("EXPIRED", 1), ("MISSING", 1)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddb_verify_baseline_reads_the_source_tables_ttl_and_exits_0_when_only_expired_items_differ(
) {
    let p = pair(ORDER_KEYS_T).await;
    let (source, target, table) = (&p.pair.source, &p.pair.target, &p.pair.table);
    put_replicated(source, target, table, &order_item("c#e", 1, "PLACED")).await;
    // Gone from the other side by its TTL, and from the source: not a difference.
    put_expiring_order(source, table, ("c#e", 2, "PLACED"), -HOUR_S).await;
    put_expiring_order(target, table, ("c#e", 3, "PLACED"), -HOUR_S).await;
    let run = |run_id: &str| {
        let args = ["--json", "--run-id", run_id];
        cli_baseline(
            table,
            &p.checkpoints,
            &args,
            &[("MAX_REPLICATION_LAG", "1s")],
        )
    };
    // TTL off on the source table: DescribeTimeToLive names no attribute, compared as usual.
    let out = run("ttl-off");
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    enable_ttl(source, table, "expiresAt").await;
    let out = run("ttl-on");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let json: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("one JSON object");
    // The source's expired item may be deleted by DynamoDB Local's TTL meanwhile (the source's
    // TTL is on now); the other side's stays and is EXPIRED.
    assert!(
        json["verdicts"]["EXPIRED"].as_u64().is_some_and(|n| n >= 1),
        "{json}"
    );
    assert_eq!(json["verdicts"]["MATCH"], 1);
    assert_eq!(json["verdicts"]["MISSING"], 0);
    assert_eq!(json["verdicts"]["EXTRA"], 0);
}

/// With `TABLE_PAIRS`, one segment function compares the pair the request names (through the
/// binary and the Runtime API); a table no pair lists is an error naming the pairs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segment_function_compares_the_pair_its_request_names() {
    use crate::common::fake_aws::{run_stream_verifier, Posted};
    let (first, second) = (orders_pair().await, orders_pair().await);
    put_replicated_orders(&first, 0..3).await;
    put_replicated_orders(&second, 0..7).await;
    let checkpoints = unique("Checkpoints");
    ddb_verify::aws::checkpoints::create_checkpoint_table(&first.source.dynamodb, &checkpoints)
        .await
        .expect("checkpoint table");
    let mut env = function_env();
    env.extend([
        (
            "TABLE_PAIRS",
            format!(
                r#"[{{"source": "{}"}}, {{"source": "{}"}}]"#,
                first.table, second.table
            ),
        ),
        ("CHECKPOINT_TABLE", checkpoints.clone()),
    ]);
    let invoke = |table: &str| {
        let request = serde_json::json!({"action": "segment", "run_id": format!("r-{table}"),
            "segment": 0, "total_segments": 1, "table": table});
        let env = env.clone();
        async move { run_stream_verifier(env!("CARGO_BIN_EXE_baseline-segment"), &env, &request).await }
    };
    for (pair, items) in [(&second, 7), (&first, 3)] {
        let run = invoke(&pair.table).await;
        let Some(Posted::Response(body)) = &run.posted else {
            panic!("no answer: {:?}\n{}", run.posted, run.stderr);
        };
        let answer: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(answer["done"], true, "{answer}");
        assert_eq!(answer["items_scanned"]["source"], items, "{answer}");
        let emf = run
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|d| d.get("SegmentsTotal").is_some())
            .unwrap_or_else(|| panic!("no SegmentsTotal: {}", run.stdout));
        assert_eq!(emf["SegmentsTotal"], 1.0, "{emf}");
        assert_eq!(emf["SegmentsCompleted"], 1.0, "{emf}");
    }
    let run = invoke("Nope").await;
    let Some(Posted::Error(body)) = &run.posted else {
        panic!("no error: {:?}\n{}", run.posted, run.stderr);
    };
    assert!(
        body.contains("Nope") && body.contains(&first.table),
        "{body}"
    );
}
