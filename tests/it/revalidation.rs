//! Revalidation against DynamoDB Local: open findings read again through the engine, resolved
//! once repaired, backed off while still wrong, left alone until due, and marked unsettled when the
//! key keeps changing; and `ddb-verify revalidate`'s exit statuses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::fake_aws::{run_stream_verifier, BinaryRun, Posted};
use crate::common::*;
use aws_sdk_dynamodb::types::StreamViewType;
use ddb_verify::aws::findings::DynamoDbFindings;
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::config::{Config, RevalidatorConfig, TableRef};
use ddb_verify::ports::findings::{
    finding_id, Coverage, CoverageWrite, Finding, FindingOrigin, FindingStatus, FindingsError,
    FindingsStore, ListPage, PageRequest, Problem, ProblemWrite, Recheck, RecordedFreeze,
    RepairRecord, Resolution,
};
use ddb_verify::record::Item;
use ddb_verify::revalidate::{RevalidateOptions, Revalidator, UNSETTLED_PARKED};
use ddb_verify::shared::epoch_ms;
use ddb_verify_testkit::setup::ORDER_KEYS;

type AwsRevalidator = Revalidator<DynamoDbReader, DynamoDbFindings>;

const HOUR_MS: u64 = 3_600_000;

/// A table in both accounts and a findings table in the source account (the functions' own).
struct World {
    pair: TablePair,
    store: DynamoDbFindings,
}

async fn world() -> World {
    let pair = table_pair("Reval", ORDER_KEYS, StreamViewType::NewAndOldImages, true).await;
    let store = findings_store(&pair.source).await;
    World { pair, store }
}

impl World {
    fn revalidator(&self) -> AwsRevalidator {
        self.revalidator_with(|_| {})
    }

    fn revalidator_with(&self, adjust: impl FnOnce(&mut Config)) -> AwsRevalidator {
        let mut verify = Config::new(TableRef::parse(&self.pair.table).unwrap());
        adjust(&mut verify);
        verify.max_replication_lag = Duration::from_millis(300);
        verify.findings_table = Some(self.store.table().to_string());
        let config = RevalidatorConfig {
            verify,
            source_table: self.pair.table.clone(),
            findings_table: self.store.table().to_string(),
            max_read_units: 10_000.0,
            failure_queue_url: None,
        };
        Revalidator::new(
            config,
            DynamoDbReader::new(self.pair.target.dynamodb.clone()),
            DynamoDbReader::new(self.pair.source.dynamodb.clone()),
            self.store.clone(),
        )
    }

    /// An open finding of `key`, as the stream verifier records a MISMATCH, due at `next_check_ms`.
    async fn open_finding(&self, key: &Item, next_check_ms: u64) {
        self.open_problem(key, status_mismatch("source_as_recorded"), next_check_ms)
            .await;
    }

    /// An open finding of `key` with `problem`, due at `next_check_ms`.
    async fn open_problem(&self, key: &Item, problem: Problem, next_check_ms: u64) {
        let now = epoch_ms();
        self.store
            .record(&ProblemWrite {
                table: &self.pair.table,
                key,
                problem: &problem,
                origin: FindingOrigin::Stream,
                occurrence: "000000000000000000001",
                sequence_number: Some("000000000000000000001"),
                baseline_run: None,
                now_ms: now.saturating_sub(1000),
                next_check_ms,
            })
            .await
            .expect("record a finding");
    }

    /// `c#1` PAID in the source and PLACED on the other side, with its finding open and due now.
    async fn wrong_copy_with_its_finding_open(&self) {
        let (source, target, table) = (&self.pair.source, &self.pair.target, &self.pair.table);
        put(source, table, &order_item("c#1", "1", "PAID")).await;
        put(target, table, &order_item("c#1", "1", "PLACED")).await;
        self.open_finding(&order_key("c#1", "1"), epoch_ms()).await;
    }

    async fn finding(&self, key: &Item) -> Finding {
        self.store
            .get(&self.pair.table, key)
            .await
            .unwrap()
            .expect("a finding")
    }

    async fn open(&self) -> Vec<Finding> {
        self.store
            .list(&self.pair.table, FindingStatus::Open, None, None)
            .await
            .unwrap()
    }

    /// The finding's `resolvedBy`, which `Finding` does not carry.
    async fn resolved_by(&self, key: &Item) -> Option<String> {
        let id = finding_id(&self.pair.table, key);
        let out = self
            .pair
            .source
            .dynamodb
            .get_item()
            .table_name(self.store.table())
            .key("id", s(&id))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item?.get("resolvedBy")?.as_s().ok().cloned()
    }
}

fn now_options() -> RevalidateOptions {
    RevalidateOptions::default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_finding_whose_key_was_repaired_is_resolved_by_revalidation() {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    put(source, table, &order_item("c#1", "1", "PAID")).await;
    // Repaired on the other side since the finding was recorded.
    put(target, table, &order_item("c#1", "1", "PAID")).await;
    // A MISSING whose source item was deleted since: neither side has it, so they agree.
    put(target, table, &order_item("c#2", "2", "PAID")).await;
    delete(target, table, &order_key("c#2", "2")).await;
    let now = epoch_ms();
    w.open_finding(&order_key("c#1", "1"), now).await;
    w.open_finding(&order_key("c#2", "2"), now).await;

    let report = w.revalidator().run(None, &now_options()).await.unwrap();
    assert_eq!(
        (report.checked, report.resolved, report.still_open),
        (2, 2, 0),
        "{report:?}"
    );
    assert_eq!(report.open_remaining, 0);
    assert_eq!(report.metrics.findings_resolved, 2);
    for k in [order_key("c#1", "1"), order_key("c#2", "2")] {
        let f = w.finding(&k).await;
        assert_eq!(f.status, FindingStatus::Resolved);
        assert!(f.resolved_at_ms.is_some());
        assert_eq!(w.resolved_by(&k).await.as_deref(), Some("revalidation"));
    }
    assert!(w.open().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_still_wrong_stays_open_with_one_more_check_a_later_next_check_and_its_verdict_as_it_is_now(
) {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    put(source, table, &order_item("c#1", "1", "SHIPPED")).await;
    put(target, table, &order_item("c#1", "1", "PLACED")).await;
    put(source, table, &order_item("c#2", "2", "PLACED")).await;
    let now = epoch_ms();
    w.open_finding(&order_key("c#1", "1"), now).await;
    w.open_finding(&order_key("c#2", "2"), now).await;
    let before = w.finding(&order_key("c#2", "2")).await;
    assert_eq!(before.verdict, "MISMATCH");

    let report = w.revalidator().run(None, &now_options()).await.unwrap();
    assert_eq!(
        (report.checked, report.resolved, report.still_open),
        (2, 0, 2),
        "{report:?}"
    );
    assert_eq!(report.open_remaining, 2);
    assert_eq!((report.metrics.mismatches, report.metrics.missing), (1, 1));

    let changed = w.finding(&order_key("c#1", "1")).await;
    assert_eq!(changed.status, FindingStatus::Open);
    assert_eq!(changed.checks, 1);
    assert_eq!(changed.verdict, "MISMATCH");
    assert_eq!(changed.attributes, ["status"]);
    assert_eq!(
        changed.proof.as_deref(),
        Some("source_unchanged_for_window")
    );
    assert_eq!(changed.origin, "revalidation");
    assert!(!changed.unsettled);
    // Backed off: later than a first check's five minutes.
    let next = changed.next_check_ms.unwrap();
    assert!(next >= now + 10 * 60_000, "{next} vs {now}");
    assert!(next <= epoch_ms() + 6 * HOUR_MS);

    // Recorded as a MISMATCH, now absent from the other side while the source has it: MISSING.
    let missing = w.finding(&order_key("c#2", "2")).await;
    assert_eq!(missing.verdict, "MISSING");
    assert_eq!(
        missing.proof.as_deref(),
        Some("absent_while_source_has_item")
    );
    assert!(missing.attributes.is_empty());
    assert_eq!(missing.checks, 1);
    assert!(missing.last_seen_ms > before.last_seen_ms);

    // Not due any more: the next run reads nothing; checked again later, the wait doubles.
    let report = w.revalidator().run(None, &now_options()).await.unwrap();
    assert_eq!((report.checked, report.metrics.lookup_calls), (0, 0));
    let later = RevalidateOptions {
        due_by_ms: Some(epoch_ms() + HOUR_MS),
        ..RevalidateOptions::default()
    };
    let report = w.revalidator().run(None, &later).await.unwrap();
    assert_eq!(report.still_open, 2);
    let again = w.finding(&order_key("c#1", "1")).await;
    assert_eq!(again.checks, 2);
    assert!(again.next_check_ms.unwrap() >= epoch_ms() + 19 * 60_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_not_yet_due_is_not_read() {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    // Both repaired: only the due one is read, so only it is resolved.
    for id in ["1", "2"] {
        put_replicated(source, target, table, &order_item("c#1", id, "PAID")).await;
    }
    let now = epoch_ms();
    w.open_finding(&order_key("c#1", "1"), now).await;
    w.open_finding(&order_key("c#1", "2"), now + HOUR_MS).await;
    let not_due = w.finding(&order_key("c#1", "2")).await;

    let revalidator = w.revalidator();
    let report = revalidator.run(None, &now_options()).await.unwrap();
    assert_eq!((report.checked, report.resolved), (1, 1), "{report:?}");
    assert_eq!(report.metrics.records_received, 1);
    assert_eq!(report.open_remaining, 1);
    assert_eq!(w.finding(&order_key("c#1", "2")).await, not_due);
    // One key read on each side.
    assert_eq!(
        (report.metrics.lookup_calls, report.metrics.source_rechecks),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_keeps_changing_is_marked_unsettled_after_three_runs_and_then_no_longer_checked()
{
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    put(target, table, &order_item("c#1", "1", "v0")).await;
    // A writer that never lets the source settle for a window (300 ms).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (source, table, stop) = (source.clone(), table.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut version = 1;
            while !stop.load(Ordering::Relaxed) {
                put(
                    &source,
                    &table,
                    &order_item("c#1", "1", &format!("v{version}")),
                )
                .await;
                version += 1;
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.open_finding(&order_key("c#1", "1"), epoch_ms()).await;
    let revalidator = w.revalidator();
    // Each run takes what is due by then: the schedule, hours later (past the 6 h cap).
    let on_schedule = || RevalidateOptions {
        due_by_ms: Some(epoch_ms() + 7 * HOUR_MS),
        ..RevalidateOptions::default()
    };
    for run in 1..=3 {
        let report = revalidator.run(None, &on_schedule()).await.unwrap();
        assert_eq!(
            (report.checked, report.still_open, report.resolved),
            (1, 1, 0),
            "run {run}: {report:?}"
        );
        assert_eq!(report.metrics.unverifiable, 1, "run {run}");
        assert_eq!(report.marked_unsettled, u64::from(run == 3), "run {run}");
        let f = w.finding(&order_key("c#1", "1")).await;
        assert_eq!(f.checks, run);
        assert_eq!(f.unsettled, run == 3, "run {run}");
        assert_eq!(f.verdict, "UNVERIFIABLE");
        assert!(f.detail.contains("kept changing"), "{}", f.detail);
        assert_eq!(f.detail.matches("last proven: ").count(), 1, "{}", f.detail);
        assert!(
            f.detail.ends_with("MISMATCH (status differs)"),
            "{}",
            f.detail
        );
    }
    let f = w.finding(&order_key("c#1", "1")).await;
    assert_eq!(f.status, FindingStatus::Open);
    let parked = epoch_ms() + UNSETTLED_PARKED.as_millis() as u64 - HOUR_MS;
    assert!(f.next_check_ms.unwrap() > parked);

    // No longer checked on schedule, even hours later; still open (it blocks readiness).
    let report = revalidator.run(None, &on_schedule()).await.unwrap();
    assert_eq!((report.checked, report.metrics.lookup_calls), (0, 0));
    assert_eq!(report.open_remaining, 1);
    let all = RevalidateOptions {
        due_by_ms: Some(u64::MAX),
        ..RevalidateOptions::default()
    };
    let report = revalidator.run(None, &all).await.unwrap();
    assert_eq!(report.checked, 0, "unsettled findings only when asked");

    // Asked for: checked again, and it stays unsettled while the key keeps changing.
    let asked = RevalidateOptions {
        include_unsettled: true,
        ..RevalidateOptions::default()
    };
    let report = revalidator.run(None, &asked).await.unwrap();
    assert_eq!(report.checked, 1);
    assert!(w.finding(&order_key("c#1", "1")).await.unsettled);
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    // Once it settles and matches, the unsettled finding is resolved.
    let current = source
        .dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(order_key("c#1", "1")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    put(target, table, &current).await;
    let report = revalidator.run(None, &asked).await.unwrap();
    assert_eq!(report.resolved, 1, "{report:?}");
    assert_eq!(report.open_remaining, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddb_verify_revalidate_exits_2_while_a_finding_stays_open_and_0_once_all_are_resolved() {
    let w = world().await;
    let (target, table) = (&w.pair.target, &w.pair.table);
    w.wrong_copy_with_its_finding_open().await;
    let findings_table = w.store.table().to_string();
    let run = |args: &[&str]| {
        ddb_verify_cli(
            &[&["revalidate"], args].concat(),
            &[
                ("VERIFY_TABLE_NAME", table.as_str()),
                ("VERIFY_PROFILE", "target-account"),
                ("SOURCE_TABLE_NAME", table.as_str()),
                ("FINDINGS_TABLE", findings_table.as_str()),
                ("MAX_REPLICATION_LAG", "300ms"),
            ],
        )
    };
    let json_of = |out: &std::process::Output| -> serde_json::Value {
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "one JSON object ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };

    let out = run(&["--json"]);
    let json = json_of(&out);
    assert_eq!(out.status.code(), Some(2), "{json}");
    assert_eq!(json["checked"], 1);
    assert_eq!(json["still_open"], 1);
    assert_eq!(json["open_remaining"], 1);

    // Repaired; the finding is not due again for a while, `--all` checks it now.
    put(target, table, &order_item("c#1", "1", "PAID")).await;
    let out = run(&["--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json_of(&out)["checked"], 0);
    let out = run(&["--all", "--json"]);
    let json = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{json}");
    assert_eq!(json["resolved"], 1);
    assert_eq!(json["open_remaining"], 0);
    // The summary without --json.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("open remaining"));

    // FINDINGS_TABLE is required here: named, with exit status 1.
    let out = run_binary_with_only(
        env!("CARGO_BIN_EXE_ddb-verify"),
        &["revalidate"],
        &[
            ("VERIFY_TABLE_NAME", "Orders"),
            ("SOURCE_TABLE_NAME", "Orders"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FINDINGS_TABLE is required"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_function_stops_at_its_deadline_and_leaves_what_it_did_not_judge_due() {
    use ddb_verify::revalidate::scheduled;
    use tokio::time::Instant;
    let w = world().await;
    w.wrong_copy_with_its_finding_open().await;
    let before = w.finding(&order_key("c#1", "1")).await;
    let revalidator = w.revalidator();
    // Within the deadline margin (2 s): no work starts.
    let answer = scheduled(&revalidator, Instant::now() + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(answer["checked"], 0, "{answer}");
    assert_eq!(answer["left_due"], 1, "{answer}");
    assert_eq!(answer["open_remaining"], 1, "{answer}");
    assert_eq!(w.finding(&order_key("c#1", "1")).await, before);
    // With time for a window: judged, and the answer says so.
    let answer = scheduled(&revalidator, Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(answer["checked"], 1, "{answer}");
    assert_eq!(answer["still_open"], 1, "{answer}");
}

/// The findings store, watched: the most findings any one call handed the revalidator.
#[derive(Clone)]
struct Watched {
    inner: DynamoDbFindings,
    most: Arc<std::sync::atomic::AtomicUsize>,
}

impl Watched {
    fn saw(&self, n: usize) {
        self.most.fetch_max(n, Ordering::SeqCst);
    }
}

impl FindingsStore for Watched {
    async fn record(&self, w: &ProblemWrite<'_>) -> Result<(), FindingsError> {
        self.inner.record(w).await
    }
    async fn open_among(&self, table: &str, keys: &[&Item]) -> Result<Vec<bool>, FindingsError> {
        self.inner.open_among(table, keys).await
    }
    async fn resolve(&self, r: &Resolution<'_>) -> Result<bool, FindingsError> {
        self.inner.resolve(r).await
    }
    async fn recheck(&self, r: &Recheck<'_>) -> Result<(), FindingsError> {
        self.inner.recheck(r).await
    }
    async fn get(&self, table: &str, key: &Item) -> Result<Option<Finding>, FindingsError> {
        self.inner.get(table, key).await
    }
    async fn list(
        &self,
        table: &str,
        status: FindingStatus,
        due_by_ms: Option<u64>,
        limit: Option<usize>,
    ) -> Result<Vec<Finding>, FindingsError> {
        let all = self.inner.list(table, status, due_by_ms, limit).await?;
        self.saw(all.len());
        Ok(all)
    }
    async fn list_page(&self, request: PageRequest<'_>) -> Result<ListPage, FindingsError> {
        let page = self.inner.list_page(request).await?;
        self.saw(page.findings.len());
        Ok(page)
    }
    async fn count(
        &self,
        table: &str,
        status: FindingStatus,
        due_by_ms: Option<u64>,
    ) -> Result<u64, FindingsError> {
        self.inner.count(table, status, due_by_ms).await
    }
    async fn accept(
        &self,
        table: &str,
        key: &Item,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, FindingsError> {
        self.inner.accept(table, key, reason, now_ms).await
    }
    async fn record_repair(&self, r: &RepairRecord<'_>) -> Result<bool, FindingsError> {
        self.inner.record_repair(r).await
    }
    async fn cover(&self, w: &CoverageWrite<'_>) -> Result<(), FindingsError> {
        self.inner.cover(w).await
    }
    async fn coverage(&self, table: &str) -> Result<Vec<Coverage>, FindingsError> {
        self.inner.coverage(table).await
    }
    async fn record_freeze(&self, table: &str, f: &RecordedFreeze) -> Result<(), FindingsError> {
        self.inner.record_freeze(table, f).await
    }
    async fn freeze(&self, table: &str) -> Result<Option<RecordedFreeze>, FindingsError> {
        self.inner.freeze(table).await
    }
    async fn lift_freeze(&self, table: &str) -> Result<bool, FindingsError> {
        self.inner.lift_freeze(table).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revalidator_reads_open_findings_a_page_at_a_time_and_judges_every_one() {
    // A partial import leaves many MISSING findings: memory must be bounded by the page.
    const FINDINGS: usize = 1_100;
    let w = world().await;
    let due = epoch_ms() - HOUR_MS;
    let keys: Vec<Item> = (0..FINDINGS)
        .map(|i| order_key(&format!("c#{i}"), i))
        .collect();
    futures::future::join_all(keys.iter().map(|k| w.open_finding(k, due))).await;
    let watched = Watched {
        inner: w.store.clone(),
        most: Arc::default(),
    };
    let base = w.revalidator();
    let revalidator = Revalidator::new(
        base.config().clone(),
        DynamoDbReader::new(w.pair.target.dynamodb.clone()),
        DynamoDbReader::new(w.pair.source.dynamodb.clone()),
        watched.clone(),
    );
    let report = revalidator.run(None, &now_options()).await.expect("run");
    // Every finding judged once (absent on both sides: resolved; a lookup that failed under load
    // leaves it open), none left due, and no call handed over more than a page.
    assert_eq!(report.checked, FINDINGS as u64, "{report:?}");
    assert_eq!(report.resolved + report.still_open, FINDINGS as u64);
    assert!(report.resolved > 0);
    assert_eq!(report.left_due, 0);
    assert_eq!(report.open_remaining, report.still_open);
    let most = watched.most.load(Ordering::SeqCst);
    assert!(most <= 500, "one call handed over {most} findings");
    assert_eq!(w.open().await.len() as u64, report.still_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddb_verify_revalidate_refuses_a_table_compared_with_itself_and_names_both_tables() {
    let w = world().await;
    let table = &w.pair.table;
    w.wrong_copy_with_its_finding_open().await;
    let before = w.finding(&order_key("c#1", "1")).await;
    let findings_table = w.store.table().to_string();
    let run = |profile: &str| {
        ddb_verify_cli(
            &["revalidate", "--all"],
            &[
                ("VERIFY_TABLE_NAME", table.as_str()),
                ("VERIFY_PROFILE", profile),
                ("SOURCE_TABLE_NAME", table.as_str()),
                ("FINDINGS_TABLE", findings_table.as_str()),
                ("MAX_REPLICATION_LAG", "300ms"),
            ],
        )
    };
    // No profile or role: the other side is the source table itself, which would resolve it.
    let out = run("");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("VERIFY_TABLE_NAME names the very table verified")
            && stderr.contains(&format!("{table} (this account, us-east-1)")),
        "{stderr}"
    );
    assert_eq!(w.finding(&order_key("c#1", "1")).await, before, "left open");
    // With the other account: the summary says what was compared.
    let out = run("target-account");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(&format!("source:     {table} (this account, us-east-1)"))
            && stdout.contains(&format!(
                "other side: {table} (the account of profile target-account, us-east-1)"
            )),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revalidator_and_shard_poller_functions_refuse_a_table_compared_with_itself_at_start_up(
) {
    let w = world().await;
    let table = w.pair.table.as_str();
    let findings_table = w.store.table().to_string();
    for binary in [
        env!("CARGO_BIN_EXE_revalidator"),
        env!("CARGO_BIN_EXE_shard-poller"),
    ] {
        let mut env = vec![
            ("VERIFY_TABLE_NAME", table),
            ("SOURCE_TABLE_NAME", table),
            ("FINDINGS_TABLE", findings_table.as_str()),
            ("CHECKPOINT_TABLE", "NoCheckpoints"),
        ];
        // The revalidator only runs as a function: a runtime API that never answers.
        if binary.ends_with("revalidator") {
            env.push(("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"));
        }
        let out = run_binary(binary, &["--once"], &env);
        let output = output_of(&out);
        assert!(!out.status.success(), "{binary}: {output}");
        assert!(
            output.contains("VERIFY_TABLE_NAME names the very table verified"),
            "{binary}: {output}"
        );
    }
}

/// A problem as the baseline records it: `verdict`, proven by `proof`.
fn problem(verdict: &'static str, proof: &'static str) -> Problem {
    Problem {
        verdict,
        proof: Some(proof),
        detail: format!("{verdict} when recorded"),
        attributes: Vec::new(),
        values: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_findings_of_items_past_their_ttl_are_resolved_as_expired_and_one_ahead_stays_open() {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    enable_ttl(source, table, "expiresAt").await;
    let hour = 3600;
    // A MISSING whose copy the other side deleted by TTL; an EXTRA the source deleted by TTL.
    put_expiring_order(source, table, ("c#1", "1", "PAID"), -hour).await;
    put_expiring_order(target, table, ("c#2", "2", "PAID"), -hour).await;
    // A MISSING whose TTL is ahead: still a real difference.
    put_expiring_order(source, table, ("c#3", "3", "PAID"), hour).await;
    let now = epoch_ms();
    let missing = problem("MISSING", "absent_while_source_has_item");
    w.open_problem(&order_key("c#1", "1"), missing.clone(), now)
        .await;
    let extra = problem("EXTRA", "only_on_other_side");
    w.open_problem(&order_key("c#2", "2"), extra, now).await;
    w.open_problem(&order_key("c#3", "3"), missing, now).await;

    let ttl = described_ttl(source, table).await;
    let revalidator = w.revalidator_with(|c| c.ttl_attribute = ttl);
    let report = revalidator.run(None, &now_options()).await.unwrap();
    assert_eq!(
        (report.checked, report.resolved, report.still_open),
        (3, 2, 1),
        "{report:?}"
    );
    // DynamoDB Local deletes the source's expired item at its own pace (the source's TTL is on):
    // then both sides lack it and it is resolved as agreeing. The other side's stays: EXPIRED.
    assert!((1..=2).contains(&report.metrics.expired), "{report:?}");
    assert_eq!(report.metrics.missing, 1);
    for k in [order_key("c#1", "1"), order_key("c#2", "2")] {
        assert_eq!(w.finding(&k).await.status, FindingStatus::Resolved);
        assert_eq!(w.resolved_by(&k).await.as_deref(), Some("revalidation"));
    }
    let open = w.finding(&order_key("c#3", "3")).await;
    assert_eq!(
        (open.status, open.verdict.as_str()),
        (FindingStatus::Open, "MISSING")
    );
}

/// The scheduled revalidator's binary, run once on `extra` (over [`function_env`]) with the
/// findings table `findings` and a 300 ms lag window, through the fake Runtime API.
async fn run_revalidator(findings: &str, extra: Vec<(&'static str, String)>) -> BinaryRun {
    let mut env = function_env();
    env.extend([
        ("FINDINGS_TABLE", findings.to_string()),
        ("MAX_REPLICATION_LAG", "300ms".to_string()),
    ]);
    env.extend(extra);
    run_stream_verifier(
        env!("CARGO_BIN_EXE_revalidator"),
        &env,
        &serde_json::json!({}),
    )
    .await
}

/// The function's answer, which must be a response (not an error).
fn answer_of(run: &BinaryRun) -> serde_json::Value {
    let Some(Posted::Response(body)) = &run.posted else {
        panic!("no answer: {:?}\n{}", run.posted, run.stderr);
    };
    serde_json::from_str(body).unwrap()
}

/// The EMF documents carrying `Ready`, in the order emitted: one per pair assessed.
fn readiness_documents(run: &BinaryRun) -> Vec<serde_json::Value> {
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|doc| doc.get("Ready").is_some())
        .collect()
}

/// The `VerifyTable` of each readiness document.
fn assessed_tables(run: &BinaryRun) -> Vec<String> {
    readiness_documents(run)
        .iter()
        .map(|doc| doc["VerifyTable"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_function_reports_readiness_as_a_metric_after_its_run() {
    let w = world().await;
    w.wrong_copy_with_its_finding_open().await;
    let table = w.pair.table.clone();
    let run = run_revalidator(
        w.store.table(),
        vec![
            ("VERIFY_TABLE_NAME", table.clone()),
            ("SOURCE_TABLE_NAME", table.clone()),
        ],
    )
    .await;
    let answer = answer_of(&run);
    assert_eq!(answer["still_open"], 1, "{answer}");
    // NO-GO, and why: no baseline, no stream coverage, the finding still open.
    assert_eq!(answer["ready"], false, "{answer}");
    let reasons = answer["reasons"].to_string();
    assert!(reasons.contains("no baseline run recorded"), "{answer}");
    // The EMF document carries Ready 0 and a metric per check, under the other side's table.
    let docs = readiness_documents(&run);
    let ready = docs
        .first()
        .unwrap_or_else(|| panic!("no Ready metric: {}", run.stdout));
    assert_eq!(ready["Ready"], 0.0, "{ready}");
    assert_eq!(ready["ReadyBaseline"], 0.0, "{ready}");
    assert_eq!(ready["ReadyNoOpenFindings"], 0.0, "{ready}");
    assert_eq!(ready["ReadyNoRecentRetries"], 1.0, "{ready}");
    assert_eq!(ready["VerifyTable"], table.as_str(), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_function_judges_readiness_against_a_recorded_freeze_until_it_is_lifted() {
    let w = world().await;
    let table = w.pair.table.clone();
    let env = vec![
        ("VERIFY_TABLE_NAME", table.clone()),
        ("SOURCE_TABLE_NAME", table.clone()),
    ];
    let freeze = RecordedFreeze {
        writes_stopped_at_ms: epoch_ms() - 60_000,
        recorded_at_ms: epoch_ms(),
        recorded_by: "ddb-verify freeze (test)".into(),
        valid_until_ms: epoch_ms() + 3_600_000,
    };
    w.store.record_freeze(&table, &freeze).await.unwrap();
    assert_eq!(w.store.freeze(&table).await.unwrap(), Some(freeze));
    let run = run_revalidator(w.store.table(), env.clone()).await;
    let answer = answer_of(&run);
    let docs = readiness_documents(&run);
    // The freeze's check, not the recent-coverage one: nothing verified past it, so NO-GO,
    // saying whose freeze it is and how to end it.
    assert_eq!(docs[0]["ReadyVerifiedPastFreeze"], 0.0, "{}", docs[0]);
    assert!(docs[0].get("ReadyStreamRecent").is_none(), "{}", docs[0]);
    let reasons = answer["reasons"].to_string();
    assert!(
        reasons.contains("recorded by ddb-verify freeze (test)") && reasons.contains("--lift"),
        "{answer}"
    );
    assert!(w.store.lift_freeze(&table).await.unwrap());
    assert!(!w.store.lift_freeze(&table).await.unwrap(), "lifted once");
    let run = run_revalidator(w.store.table(), env).await;
    let docs = readiness_documents(&run);
    assert_eq!(docs[0]["ReadyStreamRecent"], 0.0, "{}", docs[0]);
    assert!(
        docs[0].get("ReadyVerifiedPastFreeze").is_none(),
        "{}",
        docs[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_function_with_table_pairs_checks_and_assesses_every_pair() {
    let w = world().await;
    w.wrong_copy_with_its_finding_open().await;
    // A second pair, in the same findings table, with nothing open.
    let second = orders_pair().await;
    let (first, other) = (w.pair.table.clone(), second.table.clone());
    let pairs = format!(r#"[{{"source": "{first}"}}, {{"source": "{other}"}}]"#);
    let run = run_revalidator(w.store.table(), vec![("TABLE_PAIRS", pairs)]).await;
    let answer = answer_of(&run);
    assert_eq!(answer["ready"], false, "{answer}");
    let pairs = answer["pairs"].as_array().expect("a report per pair");
    let tables: Vec<&str> = pairs.iter().map(|p| p["table"].as_str().unwrap()).collect();
    assert_eq!(tables, [first.as_str(), other.as_str()], "{answer}");
    assert_eq!(pairs[0]["still_open"], 1, "{answer}");
    assert_eq!(pairs[1]["checked"], 0, "{answer}");
    // Readiness of each, as a metric under its own table.
    assert_eq!(assessed_tables(&run), [first, other], "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_function_still_serves_every_pair_when_one_pairs_run_fails() {
    let w = world().await;
    w.wrong_copy_with_its_finding_open().await;
    let second = orders_pair().await;
    let (first, other) = (w.pair.table.clone(), second.table.clone());
    // The first pair's other side does not exist: its open finding cannot be looked up.
    let pairs =
        format!(r#"[{{"source": "{first}", "other": "{first}-gone"}}, {{"source": "{other}"}}]"#);
    let run = run_revalidator(w.store.table(), vec![("TABLE_PAIRS", pairs)]).await;
    assert_eq!(
        assessed_tables(&run),
        [format!("{first}-gone"), other],
        "{}",
        run.stdout
    );
    let Some(Posted::Error(body)) = &run.posted else {
        panic!("no error: {:?}\n{}", run.posted, run.stderr);
    };
    assert!(body.contains(&format!("{first}-gone")), "{body}");
}
