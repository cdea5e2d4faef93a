//! `ddb-verify repair` against DynamoDB Local: a plan that writes nothing, then conditional writes
//! that fix MISSING, MISMATCH and DELETE_NOT_APPLIED and leave the findings to a verified MATCH;
//! a race lost to replication that writes nothing; a deleted source item never resurrected; EXTRA
//! left alone without `--delete-extra`; the write rate held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use ddb_verify::aws::findings::DynamoDbFindings;
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::aws::writer::DynamoDbWriter;
use ddb_verify::config::{Config, RepairConfig, RevalidatorConfig, TableRef};
use ddb_verify::ports::failure::{CallFailure, FailureKind};
use ddb_verify::ports::findings::{
    FindingOrigin, FindingStatus, FindingsStore, Problem, ProblemWrite,
};
use ddb_verify::ports::table::{
    BatchGet, BatchGetOutput, ConditionalWrite, LookupError, TableReader, TableWriter, WriteError,
    WriteOutcome,
};
use ddb_verify::record::Item;
use ddb_verify::repair::{RepairOptions, RepairParts, Repairer};
use ddb_verify::shared::epoch_ms;
use ddb_verify_testkit::setup::ORDER_KEYS;

struct World {
    pair: TablePair,
    store: DynamoDbFindings,
}

async fn world() -> World {
    let pair = table_pair("Repair", ORDER_KEYS, StreamViewType::NewAndOldImages, true).await;
    let store = findings_store(&pair.source).await;
    World { pair, store }
}

impl World {
    /// The repair's configuration for this world: the other side as `other` (the table's name,
    /// or an ARN), fast windows, no rate to speak of.
    fn config(&self, other: &str) -> RepairConfig {
        RepairConfig {
            revalidator: self.revalidator_config(other),
            max_write_units: 10_000.0,
            version_attribute: None,
            role_arn: None,
            role_external_id: None,
        }
    }

    /// `c#1` SHIPPED in the source, PLACED on the other side, its MISMATCH open; and the item
    /// replication would write for it (the source's, with an attribute the replicator adds).
    async fn shipped_with_a_placed_copy(&self) -> (Item, Item) {
        let (source, target, table) = (&self.pair.source, &self.pair.target, &self.pair.table);
        let key = order_key("c#1", 1);
        put(source, table, &order_item("c#1", 1, "SHIPPED")).await;
        put(target, table, &order_item("c#1", 1, "PLACED")).await;
        self.open(&key, "MISMATCH").await;
        let mut replicated = order_item("c#1", 1, "SHIPPED");
        replicated.insert("syncedBy".into(), AttributeValue::S("replicator".into()));
        (key, replicated)
    }

    fn revalidator_config(&self, other: &str) -> RevalidatorConfig {
        let mut verify = Config::new(TableRef::parse(other).unwrap());
        verify.max_replication_lag = Duration::from_millis(300);
        verify.findings_table = Some(self.store.table().to_string());
        RevalidatorConfig {
            verify,
            source_table: self.pair.table.clone(),
            findings_table: self.store.table().to_string(),
            max_read_units: 10_000.0,
            failure_queue_url: None,
        }
    }
}

fn problem(verdict: &'static str) -> Problem {
    Problem {
        verdict,
        proof: (verdict != "UNVERIFIABLE").then_some("source_as_recorded"),
        detail: format!("{verdict} as a verifier saw it"),
        attributes: vec!["status".into()],
        values: Some("expected status=\"PAID-secret\"".into()),
    }
}

impl World {
    async fn open(&self, key: &Item, verdict: &'static str) {
        let now = epoch_ms();
        self.store
            .record(&ProblemWrite {
                table: &self.pair.table,
                key,
                problem: &problem(verdict),
                origin: FindingOrigin::Baseline,
                occurrence: "baseline:run-1",
                sequence_number: None,
                baseline_run: Some("run-1"),
                now_ms: now.saturating_sub(1000),
                next_check_ms: now + 3_600_000,
            })
            .await
            .expect("record a finding");
    }

    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("VERIFY_TABLE_NAME", self.pair.table.as_str()),
            ("VERIFY_PROFILE", "target-account"),
            ("SOURCE_TABLE_NAME", self.pair.table.as_str()),
            ("FINDINGS_TABLE", self.store.table()),
            ("MAX_REPLICATION_LAG", "300ms"),
        ]
    }

    fn repair(&self, args: &[&str]) -> (std::process::Output, serde_json::Value) {
        let out = ddb_verify_cli(&[&["repair", "--json"], args].concat(), &self.env());
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{e}: {}", output_of(&out)));
        (out, json)
    }

    async fn target_item(&self, key: &Item) -> Option<Item> {
        get(&self.pair.target, &self.pair.table, key).await
    }

    async fn status(&self, key: &Item) -> (FindingStatus, Option<String>) {
        let f = self
            .store
            .get(&self.pair.table, key)
            .await
            .unwrap()
            .expect("a finding");
        (
            f.status,
            f.repair.map(|r| format!("{} {}", r.action, r.outcome)),
        )
    }

    /// A repairer in this process, writing through `writer`.
    fn repairer<W: TableWriter>(&self, writer: W) -> Repairer<DynamoDbReader, W, DynamoDbFindings> {
        let config = self.config(&self.pair.table);
        let parts = RepairParts {
            source: DynamoDbReader::new(self.pair.source.dynamodb.clone()),
            target: DynamoDbReader::new(self.pair.target.dynamodb.clone()),
            writer,
            store: self.store.clone(),
        };
        Repairer::new(config, parts)
    }
}

async fn get(account: &Account, table: &str, key: &Item) -> Option<Item> {
    account
        .dynamodb
        .get_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
}

fn options(apply: bool) -> RepairOptions {
    RepairOptions {
        apply,
        by: "a test".into(),
        ..RepairOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_writes_nothing_then_apply_fixes_missing_mismatch_and_delete_not_applied() {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    let (missing, mismatch, not_deleted, extra, unverifiable) = (
        order_key("c#1", 1),
        order_key("c#2", 2),
        order_key("c#3", 3),
        order_key("c#4", 4),
        order_key("c#5", 5),
    );
    put(source, table, &order_item("c#1", 1, "PAID")).await;
    put(source, table, &order_item("c#2", 2, "PAID")).await;
    put(target, table, &order_item("c#2", 2, "PLACED")).await;
    put(target, table, &order_item("c#3", 3, "PLACED")).await;
    put(target, table, &order_item("c#4", 4, "PLACED")).await;
    put_replicated(source, target, table, &order_item("c#5", 5, "PAID")).await;
    w.open(&missing, "MISSING").await;
    w.open(&mismatch, "MISMATCH").await;
    w.open(&not_deleted, "DELETE_NOT_APPLIED").await;
    w.open(&extra, "EXTRA").await;
    w.open(&unverifiable, "UNVERIFIABLE").await;

    // The plan: three writes, two findings never touched; nothing read or written; no values.
    let (out, plan) = w.repair(&[]);
    assert_eq!(out.status.code(), Some(2), "{plan}");
    assert_eq!(plan["applied"], false);
    assert_eq!(plan["findings"], 5, "{plan}");
    assert_eq!(plan["planned"], 3, "{plan}");
    assert_eq!(plan["skipped"]["extra (needs --delete-extra)"], 1, "{plan}");
    assert_eq!(
        plan["skipped"]["unverifiable (never repaired)"], 1,
        "{plan}"
    );
    assert!(
        !plan.to_string().contains("PAID-secret"),
        "values only with LOG_ITEM_VALUES: {plan}"
    );
    assert_eq!(w.target_item(&missing).await, None);
    assert!(w.target_item(&not_deleted).await.is_some());
    let text = ddb_verify_cli(&["repair"], &w.env());
    assert!(
        output_of(&text).contains("nothing was written"),
        "{}",
        output_of(&text)
    );

    // Applied: the three repaired, then resolved by revalidation's MATCH; EXTRA and
    // UNVERIFIABLE stay open (exit 2).
    let (out, done) = w.repair(&["--apply"]);
    assert_eq!(out.status.code(), Some(2), "{done}");
    assert_eq!(done["repaired"], 3, "{done}");
    assert_eq!(done["lost_races"], 0, "{done}");
    assert_eq!(done["resolved"], 3, "{done}");
    assert_eq!(done["open_remaining"], 2, "{done}");
    assert_eq!(
        w.target_item(&missing).await,
        Some(order_item("c#1", 1, "PAID"))
    );
    assert_eq!(
        w.target_item(&mismatch).await,
        Some(order_item("c#2", 2, "PAID"))
    );
    assert_eq!(w.target_item(&not_deleted).await, None);
    assert_eq!(
        w.target_item(&extra).await,
        Some(order_item("c#4", 4, "PLACED")),
        "EXTRA is deleted only with --delete-extra"
    );
    // The audit trail on each finding.
    assert_eq!(
        w.status(&missing).await,
        (FindingStatus::Resolved, Some("put written".into()))
    );
    assert_eq!(
        w.status(&not_deleted).await,
        (FindingStatus::Resolved, Some("delete written".into()))
    );
    assert_eq!(w.status(&extra).await, (FindingStatus::Open, None));
    assert_eq!(w.status(&unverifiable).await, (FindingStatus::Open, None));

    // With --delete-extra the extra item goes too; UNVERIFIABLE never.
    let (out, done) = w.repair(&["--apply", "--delete-extra"]);
    assert_eq!(out.status.code(), Some(2), "{done}");
    assert_eq!(done["repaired"], 1, "{done}");
    assert_eq!(w.target_item(&extra).await, None);
    assert_eq!(w.status(&extra).await.0, FindingStatus::Resolved);
    assert_eq!(w.status(&unverifiable).await, (FindingStatus::Open, None));
}

/// Writes the other side's item (as replication would) just before the repair's write.
struct ReplicationFirst {
    inner: DynamoDbWriter,
    target: Account,
    table: String,
    replicated: Item,
    done: AtomicBool,
}

impl TableWriter for ReplicationFirst {
    async fn write(&self, write: ConditionalWrite<'_>) -> Result<WriteOutcome, WriteError> {
        if !self.done.swap(true, Ordering::SeqCst) {
            put(&self.target, &self.table, &self.replicated).await;
        }
        self.inner.write(write).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_race_lost_to_replication_writes_nothing_and_revalidation_decides() {
    let w = world().await;
    let (target, table) = (&w.pair.target, &w.pair.table);
    // Replication writes the source's newest state, with an attribute it adds, between the
    // repair's read and its write.
    let (key, replicated) = w.shipped_with_a_placed_copy().await;
    let writer = ReplicationFirst {
        inner: DynamoDbWriter::new(target.dynamodb.clone()),
        target: target.clone(),
        table: table.clone(),
        replicated: replicated.clone(),
        done: AtomicBool::new(false),
    };
    let report = w
        .repairer(writer)
        .run(&options(true), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((report.repaired, report.lost_races), (0, 1), "{report:?}");
    // Nothing overwritten: replication's item stands, and revalidation judges it (the extra
    // attribute differs from the source, so the finding stays open).
    assert_eq!(w.target_item(&key).await, Some(replicated));
    assert_eq!(report.resolved, 0, "{report:?}");
    assert_eq!(report.still_open, 1, "{report:?}");
    let (status, repair) = w.status(&key).await;
    assert_eq!(status, FindingStatus::Open);
    assert!(repair.unwrap().starts_with("put lost race"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_item_deleted_before_the_repair_is_never_resurrected() {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    let (gone, gone_but_copied) = (order_key("c#1", 1), order_key("c#2", 2));
    // MISSING when recorded; the source item has been deleted since.
    w.open(&gone, "MISSING").await;
    // MISMATCH when recorded; deleted in the source since, the old copy still on the other side.
    put(target, table, &order_item("c#2", 2, "PLACED")).await;
    w.open(&gone_but_copied, "MISMATCH").await;
    assert_eq!(get(source, table, &gone).await, None);

    let writer = DynamoDbWriter::new(target.dynamodb.clone());
    let report = w
        .repairer(writer)
        .run(&options(true), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.repaired, 0, "{report:?}");
    assert_eq!(
        report.skipped.get("source has no item (never resurrected)"),
        Some(&2),
        "{report:?}"
    );
    assert_eq!(w.target_item(&gone).await, None);
    assert_eq!(
        w.target_item(&gone_but_copied).await,
        Some(order_item("c#2", 2, "PLACED")),
        "a MISMATCH is not turned into a delete"
    );
    // Both sides without the item: revalidation resolves the first; the second stays open.
    assert_eq!(w.status(&gone).await.0, FindingStatus::Resolved);
    assert_eq!(w.status(&gone_but_copied).await.0, FindingStatus::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repairs_are_written_at_max_write_units() {
    let w = world().await;
    let (source, table) = (&w.pair.source, &w.pair.table);
    // 20 items of about 2 KB: two write units each, 40 in all, at 10 a second with a second's
    // worth up front: at least 3 seconds.
    let padding = "x".repeat(1800);
    for id in 0..20 {
        let mut item = order_item("c#1", id, "PAID");
        item.insert("padding".into(), AttributeValue::S(padding.clone()));
        put(source, table, &item).await;
        w.open(&order_key("c#1", id), "MISSING").await;
    }
    let mut env = w.env();
    env.push(("MAX_WRITE_UNITS", "10"));
    let started = Instant::now();
    let out = ddb_verify_cli(&["repair", "--apply", "--json"], &env);
    let took = started.elapsed();
    let json: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap_or_else(|e| panic!("{e}: {}", output_of(&out)));
    assert_eq!(out.status.code(), Some(0), "{json}");
    assert_eq!(json["repaired"], 20, "{json}");
    assert!(
        took >= Duration::from_millis(2_900),
        "40 units at 10/s took {took:?}"
    );

    // A limit: at most that many findings repaired.
    let out = ddb_verify_cli(&["repair", "--limit", "0"], &w.env());
    assert_eq!(out.status.code(), Some(1), "--limit 0 is refused");
    let bad = [w.env(), vec![("MAX_WRITE_UNITS", "0")]].concat();
    let out = ddb_verify_cli(&["repair"], &bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("MAX_WRITE_UNITS"),
        "{}",
        stderr_of(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_repairs_at_most_that_many_findings() {
    let w = world().await;
    let (source, table) = (&w.pair.source, &w.pair.table);
    for id in 0..5 {
        put(source, table, &order_item("c#1", id, "PAID")).await;
        w.open(&order_key("c#1", id), "MISSING").await;
    }
    let (out, done) = w.repair(&["--apply", "--limit", "2"]);
    assert_eq!(out.status.code(), Some(2), "{done}");
    assert_eq!(done["repaired"], 2, "{done}");
    assert_eq!(done["open_remaining"], 3, "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_condition_holds_for_every_attribute_type_and_for_a_version_attribute() {
    use AttributeValue as V;
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    // Maps, lists and sets on the other side: the equality condition on each holds as read.
    let mut other = order_item("c#1", 1, "PLACED");
    other.insert(
        "address".into(),
        V::M([("city".to_string(), V::S("Lyon".into()))].into()),
    );
    other.insert("lines".into(), V::L(vec![V::N("1".into()), V::Bool(true)]));
    other.insert("tags".into(), V::Ss(vec!["b".into(), "a".into()]));
    other.insert("sizes".into(), V::Ns(vec!["2".into(), "10".into()]));
    other.insert("none".into(), V::Null(true));
    put(target, table, &other).await;
    put(source, table, &order_item("c#1", 1, "PAID")).await;
    w.open(&order_key("c#1", 1), "MISMATCH").await;
    // An item of 200 attributes: too large for an equality condition.
    let wide = |status: &str, version: &str| {
        let mut item = order_item("c#2", 2, status);
        for i in 0..200 {
            item.insert(format!("a{i}"), V::N(i.to_string()));
        }
        item.insert("version".into(), V::N(version.into()));
        item
    };
    put(target, table, &wide("PLACED", "1")).await;
    put(source, table, &wide("PAID", "2")).await;
    w.open(&order_key("c#2", 2), "MISMATCH").await;

    let (_, done) = w.repair(&["--apply"]);
    assert_eq!(done["repaired"], 1, "{done}");
    assert_eq!(
        done["skipped"]["too large for a condition (set REPAIR_VERSION_ATTRIBUTE)"], 1,
        "{done}"
    );
    assert_eq!(
        w.target_item(&order_key("c#1", 1)).await,
        Some(order_item("c#1", 1, "PAID"))
    );
    let env = [w.env(), vec![("REPAIR_VERSION_ATTRIBUTE", "version")]].concat();
    let out = ddb_verify_cli(&["repair", "--apply", "--json"], &env);
    let done: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(out.status.code(), Some(0), "{done}");
    assert_eq!(done["repaired"], 1, "{done}");
    assert_eq!(
        w.target_item(&order_key("c#2", 2)).await,
        Some(wide("PAID", "2"))
    );
}

/// A reader that runs `before` once, before its first read (replication landing, the source
/// changing), then reads as DynamoDB does.
struct ReadsAfter {
    inner: DynamoDbReader,
    before:
        std::sync::Mutex<Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>>,
}

impl ReadsAfter {
    fn plain(client: &aws_sdk_dynamodb::Client) -> ReadsAfter {
        ReadsAfter {
            inner: DynamoDbReader::new(client.clone()),
            before: std::sync::Mutex::new(None),
        }
    }
}

impl TableReader for ReadsAfter {
    async fn batch_get(&self, request: BatchGet<'_>) -> Result<BatchGetOutput, LookupError> {
        let before = self.before.lock().unwrap().take();
        if let Some(before) = before {
            before.await;
        }
        self.inner.batch_get(request).await
    }
}

impl World {
    fn repairer_with(
        &self,
        source: ReadsAfter,
        writer: impl TableWriter,
    ) -> Repairer<std::sync::Arc<ReadsAfter>, impl TableWriter, DynamoDbFindings> {
        let config = self.config(&self.pair.table);
        // One reader type for both sides: the other side's runs nothing before it reads.
        let target = std::sync::Arc::new(ReadsAfter::plain(&self.pair.target.dynamodb));
        let parts = RepairParts {
            source: std::sync::Arc::new(source),
            target,
            writer,
            store: self.store.clone(),
        };
        Repairer::new(config, parts)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_landing_between_the_two_reads_is_not_overwritten() {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    // Replication writes the source's state, with the attribute it adds, just before the
    // repair reads the source (after it read the other side).
    let (key, replicated) = w.shipped_with_a_placed_copy().await;
    let (t, name, item) = (target.clone(), table.clone(), replicated.clone());
    let source_reader = ReadsAfter::plain(&source.dynamodb);
    *source_reader.before.lock().unwrap() =
        Some(Box::pin(async move { put(&t, &name, &item).await }));
    let report = w
        .repairer_with(source_reader, DynamoDbWriter::new(target.dynamodb.clone()))
        .run(&options(true), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((report.repaired, report.lost_races), (0, 1), "{report:?}");
    assert_eq!(w.target_item(&key).await, Some(replicated));
}

/// A writer that runs `before` once, before its first write, then writes as DynamoDB does.
struct WritesAfter {
    inner: DynamoDbWriter,
    before:
        std::sync::Mutex<Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>>,
}

impl TableWriter for WritesAfter {
    async fn write(&self, write: ConditionalWrite<'_>) -> Result<WriteOutcome, WriteError> {
        let before = self.before.lock().unwrap().take();
        if let Some(before) = before {
            before.await;
        }
        self.inner.write(write).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_item_deleted_between_the_read_and_the_write_is_removed_again() {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    let key = order_key("c#1", 1);
    put(source, table, &order_item("c#1", 1, "PAID")).await;
    w.open(&key, "MISSING").await;
    // The source deletes the item after the repair read it; replication's REMOVE found nothing to
    // remove on the other side, so only the repair can take its put back.
    let (s, name, k) = (source.clone(), table.clone(), key.clone());
    let writer = WritesAfter {
        inner: DynamoDbWriter::new(target.dynamodb.clone()),
        before: std::sync::Mutex::new(Some(Box::pin(async move { delete(&s, &name, &k).await }))),
    };
    let report = w
        .repairer_with(ReadsAfter::plain(&source.dynamodb), writer)
        .run(&options(true), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.repaired, 1, "{report:?}");
    assert_eq!(
        report.entries[0].outcome,
        "written, then undone (the source changed meanwhile)"
    );
    assert_eq!(w.target_item(&key).await, None, "never resurrected");
    // Both sides without it: resolved by the recheck.
    assert_eq!(w.status(&key).await.0, FindingStatus::Resolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_the_source_creates_again_during_a_delete_is_put_back() {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    let key = order_key("c#1", 1);
    put(target, table, &order_item("c#1", 1, "PLACED")).await;
    w.open(&key, "DELETE_NOT_APPLIED").await;
    let (s, name) = (source.clone(), table.clone());
    let writer = WritesAfter {
        inner: DynamoDbWriter::new(target.dynamodb.clone()),
        before: std::sync::Mutex::new(Some(Box::pin(async move {
            put(&s, &name, &order_item("c#1", 1, "REOPENED")).await
        }))),
    };
    let report = w
        .repairer_with(ReadsAfter::plain(&source.dynamodb), writer)
        .run(&options(true), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.repaired, 1, "{report:?}");
    assert_eq!(
        w.target_item(&key).await,
        Some(order_item("c#1", 1, "REOPENED")),
        "the source's new item is on the other side"
    );
}

/// A reader whose every call is throttled.
struct AlwaysThrottled;

impl TableReader for AlwaysThrottled {
    async fn batch_get(&self, request: BatchGet<'_>) -> Result<BatchGetOutput, LookupError> {
        Err(LookupError::Service(CallFailure::new(
            "BatchGetItem",
            format!("table {}", request.table),
            FailureKind::Transient,
            "ProvisionedThroughputExceededException",
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recheck_whose_lookups_keep_failing_leaves_the_findings_due_instead_of_hanging() {
    use ddb_verify::revalidate::Revalidator;
    let w = world().await;
    let key = order_key("c#1", 1);
    w.open(&key, "MISMATCH").await;
    let finding = w.store.get(&w.pair.table, &key).await.unwrap().unwrap();
    let config = w.revalidator_config(&w.pair.table);
    let revalidator = Revalidator::new(config, AlwaysThrottled, AlwaysThrottled, w.store.clone());
    let report = tokio::time::timeout(Duration::from_secs(60), revalidator.recheck(&[finding]))
        .await
        .expect("the recheck ends")
        .unwrap();
    assert_eq!(report.left_due, 1, "{report:?}");
    assert_eq!(report.resolved, 0);
    assert_eq!(w.status(&key).await.0, FindingStatus::Open);
}

/// What AWS does and DynamoDB Local does not: a table ARN taken where a name is. Every table name
/// asked for is kept, and an ARN is read or written as the table it names.
#[derive(Clone)]
struct TakesArns {
    reader: DynamoDbReader,
    writer: DynamoDbWriter,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TakesArns {
    fn new(account: &Account) -> TakesArns {
        TakesArns {
            reader: DynamoDbReader::new(account.dynamodb.clone()),
            writer: DynamoDbWriter::new(account.dynamodb.clone()),
            asked: Default::default(),
        }
    }

    fn name<'a>(&self, table: &'a str) -> &'a str {
        self.asked.lock().unwrap().push(table.to_string());
        table.rsplit("table/").next().unwrap_or(table)
    }
}

impl TableReader for TakesArns {
    async fn batch_get(&self, request: BatchGet<'_>) -> Result<BatchGetOutput, LookupError> {
        let table = self.name(request.table);
        self.reader.batch_get(BatchGet { table, ..request }).await
    }
}

impl TableWriter for TakesArns {
    async fn write(&self, write: ConditionalWrite<'_>) -> Result<WriteOutcome, WriteError> {
        let table = self.name(write.table);
        self.writer.write(ConditionalWrite { table, ..write }).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_other_side_given_as_an_arn_is_read_and_written_by_its_arn() {
    let w = world().await;
    let (source, target, table) = (&w.pair.source, &w.pair.target, &w.pair.table);
    let key = order_key("c#1", 1);
    put(source, table, &order_item("c#1", 1, "PAID")).await;
    w.open(&key, "MISSING").await;
    let arn = format!("arn:aws:dynamodb:us-east-1:111122223333:table/{table}");
    let config = w.config(&arn);
    let other = TakesArns::new(target);
    let parts = RepairParts {
        source: TakesArns::new(source),
        target: other.clone(),
        writer: other.clone(),
        store: w.store.clone(),
    };
    let report = Repairer::new(config, parts)
        .run(&options(true), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.repaired, 1, "{report:?}");
    // By its name alone, a call would go to a table of that name in the caller's own account.
    let asked = other.asked.lock().unwrap().clone();
    assert!(
        !asked.is_empty() && asked.iter().all(|t| *t == arn),
        "{asked:?}"
    );
    assert_eq!(
        w.target_item(&key).await,
        Some(order_item("c#1", 1, "PAID"))
    );
}
