//! The findings store against DynamoDB Local: what each verifier records, idempotently under
//! re-delivery; resolution by a later MATCH; accepted and re-opened findings; coverage; and a
//! findings write that fails losing nothing.

use std::time::Duration;

use crate::common::fault_proxy::{Fault, FaultKind, FaultProxy, Rule, GET_RECORDS, UPDATE_ITEM};
use crate::common::*;
use aws_sdk_dynamodb::types::StreamViewType;
use ddb_verify::aws::checkpoints::{create_checkpoint_table, DynamoDbCheckpoints};
use ddb_verify::aws::findings::DynamoDbFindings;
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::aws::scanner::DynamoDbScanner;
use ddb_verify::aws::streams::DynamoDbStreams;
use ddb_verify::baseline::{Baseline, BaselineParts};
use ddb_verify::cli::findings::parse_key;
use ddb_verify::config::{BaselineConfig, Config, LagWindowFrom, TableRef};
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::lambda::handler::StreamVerifier;
use ddb_verify::poller::Poller;
use ddb_verify::ports::findings::{
    finding_id, CoverageSource, CoverageWrite, Finding, FindingOrigin, FindingStatus,
    FindingsStore, Gap, GapCause, GapWrite, Problem, ProblemWrite, Resolution,
};
use ddb_verify::record::Expectation;
use ddb_verify::record::Item;
use ddb_verify::report::findings::{FindingsWriter, Occurrence, Pass};
use ddb_verify::report::metrics::InvocationMetrics;
use ddb_verify::shared::epoch_ms;
use ddb_verify::verify::{Outcome, Verdict, Verifier};
use ddb_verify_testkit::setup::ORDER_KEYS;

const SEED: u64 = 0x0f1d_1265;

fn adjust(c: &mut Config) {
    // DynamoDB Local's creation times are rounded to the minute.
    c.lag_window_from = LagWindowFrom::Arrival;
    c.max_replication_lag = Duration::from_millis(300);
}

/// The stream verifier of `pair` recording findings in `store` as function `verifier-fn`.
fn with_findings(
    pair: &TablePair,
    store: DynamoDbFindings,
) -> StreamVerifier<DynamoDbReader, DynamoDbFindings> {
    verifier(&pair.table, &pair.source, &pair.target, adjust).with_findings(
        FindingsWriter::new(store, FindingOrigin::Stream, None),
        "verifier-fn",
    )
}

/// A new `Orders` pair, a findings table, and the stream verifier of the pair recording in it (as
/// [`with_findings`]).
async fn recording_verifier() -> (
    TablePair,
    DynamoDbFindings,
    StreamVerifier<DynamoDbReader, DynamoDbFindings>,
) {
    let pair = orders_pair().await;
    let store = findings_store(&pair.source).await;
    let handler = with_findings(&pair, store.clone());
    (pair, store, handler)
}

/// The stream's records so far as one event.
async fn event(pair: &TablePair) -> StreamEvent {
    let events = stream_events(&pair.source, &pair.stream_arn, 1000).await;
    assert_eq!(events.len(), 1);
    parse_event(&events[0])
}

/// Order c#1 written to the source only (MISSING) and c#2 to both (MATCH): their records as one event.
async fn one_missing_one_matching(pair: &TablePair) -> StreamEvent {
    put(&pair.source, &pair.table, &order_item("c#1", "1", "PLACED")).await;
    pair.put_replicated(&order_item("c#2", "2", "PLACED")).await;
    event(pair).await
}

/// The finding of order `customer`/`id` in `pair`'s table, if there is one.
async fn finding_of(
    store: &DynamoDbFindings,
    pair: &TablePair,
    customer: &str,
    id: &str,
) -> Option<Finding> {
    store
        .get(&pair.table, &order_key(customer, id))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_batch_records_each_problem_once_and_a_later_match_resolves_it() {
    let (pair, store, handler) = recording_verifier().await;
    let first = one_missing_one_matching(&pair).await;

    let inv = handler.handle(&first, None).await;
    assert!(inv.response.batch_item_failures.is_empty());
    assert_eq!((inv.metrics.missing, inv.metrics.matches), (1, 1));
    assert_eq!(inv.metrics.findings_recorded, 1);
    // Lambda delivers the same batch again (a timeout, a retry): nothing new is counted.
    handler.handle(&first, None).await;

    let finding = finding_of(&store, &pair, "c#1", "1")
        .await
        .expect("a finding for the missing order");
    assert_eq!(finding.status, FindingStatus::Open);
    assert_eq!(finding.verdict, "MISSING");
    assert_eq!(finding.origin, "stream");
    assert_eq!(finding.times_seen, 1, "a re-delivery is not a new sighting");
    assert_eq!(
        finding.sequence_number,
        first.records[0].sequence_number().map(str::to_string)
    );
    assert!(finding.next_check_ms.unwrap() > finding.last_seen_ms);
    assert_eq!(finding.key_text, "customerId=S:\"c#1\", orderId=N:1");
    assert!(finding_of(&store, &pair, "c#2", "2").await.is_none());
    let open = store
        .list(&pair.table, FindingStatus::Open, None, None)
        .await
        .unwrap();
    assert_eq!(open.len(), 1);

    // The order is repaired and changed again: its new record MATCHes and clears the finding.
    pair.put_replicated(&order_item("c#1", "1", "SHIPPED"))
        .await;
    let inv = handler.handle(&event(&pair).await, None).await;
    assert!(inv.response.batch_item_failures.is_empty());
    assert_eq!(inv.metrics.findings_resolved, 1);
    let finding = finding_of(&store, &pair, "c#1", "1").await.unwrap();
    assert_eq!(finding.status, FindingStatus::Resolved);
    assert!(finding.resolved_at_ms.is_some());
    let open = store
        .list(&pair.table, FindingStatus::Open, None, None)
        .await
        .unwrap();
    assert!(open.is_empty(), "{open:?}");

    // Coverage: the function's first and newest verified changes, nothing handed back.
    let coverage = store.coverage(&pair.table).await.unwrap();
    assert_eq!(coverage.len(), 1, "{coverage:?}");
    let c = &coverage[0];
    assert_eq!(
        (c.source, c.name.as_str()),
        (CoverageSource::Stream, "verifier-fn")
    );
    assert!(c.started_at_ms.unwrap() <= c.verified_until_ms.unwrap());
    assert_eq!(c.last_retry_at_ms, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_findings_write_that_fails_hands_the_record_back_and_loses_nothing() {
    let pair = orders_pair().await;
    let store = findings_store(&pair.source).await;
    let proxy = FaultProxy::start(endpoint(), SEED).await;
    let through = account_through(&proxy, SOURCE_ACCOUNT);
    let faulty = DynamoDbFindings::new(through.dynamodb.clone(), store.table());
    let handler = with_findings(&pair, faulty);
    let batch = one_missing_one_matching(&pair).await;
    let missing_seq = batch.records[0].sequence_number().unwrap().to_string();

    proxy.set_rules(vec![Rule::server_error_when(UPDATE_ITEM, "finding#")]);
    let inv = handler.handle(&batch, None).await;
    let failed: Vec<_> = inv
        .response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        vec![missing_seq],
        "only the record whose finding was not written goes back"
    );
    assert!(inv.metrics.findings_write_failures >= 1);
    assert_eq!(inv.metrics.missing, 0, "not counted until it is recorded");
    assert_eq!(inv.metrics.matches, 1);
    assert!(finding_of(&store, &pair, "c#1", "1").await.is_none());
    // A handed-back record is coverage's business too (readiness must see it).
    let coverage = store.coverage(&pair.table).await.unwrap();
    assert!(coverage[0].last_retry_at_ms.is_some());

    // Lambda delivers it again once the table answers: recorded.
    proxy.clear_rules();
    let inv = handler.handle(&batch, None).await;
    assert!(inv.response.batch_item_failures.is_empty());
    assert_eq!(inv.metrics.missing, 1);
    let finding = finding_of(&store, &pair, "c#1", "1")
        .await
        .expect("recorded on the second delivery");
    assert_eq!(finding.status, FindingStatus::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coverage_write_that_fails_after_a_retry_hands_the_whole_batch_back() {
    let pair = orders_pair().await;
    let store = findings_store(&pair.source).await;
    let proxy = FaultProxy::start(endpoint(), SEED).await;
    let own = account_through(&proxy, SOURCE_ACCOUNT);
    let target = account_through(&proxy, TARGET_ACCOUNT);
    // The other side's lookups fail, so the record is handed back; and the coverage write,
    // which must say so, fails too.
    let handler = verifier(&pair.table, &pair.source, &target, adjust).with_findings(
        FindingsWriter::new(
            DynamoDbFindings::new(own.dynamodb.clone(), store.table()),
            FindingOrigin::Stream,
            None,
        ),
        "verifier-fn",
    );
    put(&pair.source, &pair.table, &order_item("c#1", "1", "PLACED")).await;
    proxy.set_rules(vec![
        Rule::server_error_when("DynamoDB_20120810.BatchGetItem", &pair.table),
        Rule::server_error_when(UPDATE_ITEM, "coverage#"),
    ]);
    let batch = event(&pair).await;
    let inv = handler
        .handle(
            &batch,
            Some(tokio::time::Instant::now() + Duration::from_secs(4)),
        )
        .await;
    assert_eq!(
        inv.response.batch_item_failures.len(),
        batch.records.len(),
        "every record goes back when the retry cannot be recorded"
    );
    assert!(inv.metrics.findings_write_failures >= 1);
}

/// Records a baseline's sighting of `problem` under `key` (see [`sighting`]) in `store`.
async fn record_sighting(
    store: &DynamoDbFindings,
    table: &str,
    key: &Item,
    problem: &Problem,
    occurrence: &str,
    at: u64,
) {
    let write = sighting(table, key, problem, occurrence, at);
    store.record(&write).await.unwrap();
}

/// A baseline's sighting of `problem` under `key`.
fn sighting<'a>(
    table: &'a str,
    key: &'a Item,
    problem: &'a Problem,
    occurrence: &'a str,
    at: u64,
) -> ProblemWrite<'a> {
    ProblemWrite {
        table,
        key,
        problem,
        origin: FindingOrigin::Baseline,
        occurrence,
        sequence_number: None,
        baseline_run: occurrence.strip_prefix("baseline:"),
        now_ms: at,
        next_check_ms: at + 1000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_finding_stays_accepted_and_a_resolved_one_opens_again() {
    let account = account(SOURCE_ACCOUNT);
    let store = findings_store(&account).await;
    let table = "Orders";
    let (k1, k2) = (order_key("c#1", "1"), order_key("c#2", "2"));
    let problem = status_mismatch("source_unchanged_for_window");
    let now = epoch_ms();
    let seen = |key, occurrence, at| sighting(table, key, &problem, occurrence, at);
    let (k1, k2) = (&k1, &k2);

    store
        .record(&seen(k1, "baseline:run-1", now))
        .await
        .unwrap();
    assert!(store
        .accept(table, k1, "price rounding, agreed", now + 1)
        .await
        .unwrap());
    store
        .record(&seen(k1, "baseline:run-2", now + 2))
        .await
        .unwrap();
    store
        .record(&seen(k1, "baseline:run-2", now + 3))
        .await
        .unwrap();
    let f = store.get(table, k1).await.unwrap().unwrap();
    assert_eq!(f.status, FindingStatus::Accepted);
    assert_eq!(f.reason.as_deref(), Some("price rounding, agreed"));
    assert_eq!(f.times_seen, 2);
    let accepted = store
        .list(table, FindingStatus::Accepted, None, None)
        .await
        .unwrap();
    assert_eq!(accepted.len(), 1);
    assert!(store
        .list(table, FindingStatus::Open, None, None)
        .await
        .unwrap()
        .is_empty());
    // A MATCH does not resolve what is not open.
    let resolution = |key, at| Resolution {
        table,
        key,
        origin: FindingOrigin::Stream,
        judged_at_ms: at,
    };
    assert!(!store.resolve(&resolution(k1, now + 4)).await.unwrap());

    store
        .record(&seen(k2, "baseline:run-1", now))
        .await
        .unwrap();
    // A MATCH judged before the finding was last seen does not clear it.
    assert!(!store.resolve(&resolution(k2, now - 1)).await.unwrap());
    assert!(store.resolve(&resolution(k2, now + 1)).await.unwrap());
    let f = store.get(table, k2).await.unwrap().unwrap();
    assert_eq!(f.status, FindingStatus::Resolved);
    assert!(f.next_check_ms.is_none(), "out of the status index");
    store
        .record(&seen(k2, "baseline:run-2", now + 5))
        .await
        .unwrap();
    let f = store.get(table, k2).await.unwrap().unwrap();
    assert_eq!(
        f.status,
        FindingStatus::Open,
        "seen wrong again: open again"
    );
    assert_eq!(f.resolved_at_ms, None);
    assert_eq!((f.times_seen, f.first_seen_ms), (2, now));
}

/// Writes `coverage` to `store`; the write must succeed.
async fn cover(store: &DynamoDbFindings, coverage: &CoverageWrite<'_>) {
    store.cover(coverage).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_keeps_its_first_start_and_never_moves_back() {
    let account = account(SOURCE_ACCOUNT);
    let store = findings_store(&account).await;
    let write = |started, until, retry, now| CoverageWrite {
        table: "Orders",
        source: CoverageSource::Poller,
        name: "arn:stream",
        stream_arn: Some("arn:stream"),
        started_at_ms: started,
        verified_until_ms: until,
        retry_at_ms: retry,
        complete: None,
        sample_rate: Some(1.0),
        gaps: Vec::new(),
        now_ms: now,
    };
    cover(&store, &write(Some(100), Some(500), None, 600)).await;
    cover(&store, &write(Some(50), Some(400), Some(650), 700)).await;
    let c = store.coverage("Orders").await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].started_at_ms, Some(100));
    assert_eq!(c[0].verified_until_ms, Some(500), "never moved back");
    assert_eq!(c[0].last_retry_at_ms, Some(650));
    assert_eq!(c[0].checked_at_ms, 700);
    cover(&store, &write(None, Some(900), None, 950)).await;
    let c = store.coverage("Orders").await.unwrap();
    assert_eq!(c[0].verified_until_ms, Some(900));
    assert!(store.coverage("Other").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_gaps_are_kept_by_cause_never_moved_back_and_each_stream_has_its_own_entry() {
    let account = account(SOURCE_ACCOUNT);
    let store = findings_store(&account).await;
    let table = unique("Ledger");
    let gap = |cause, detail: &str| GapWrite {
        cause,
        detail: detail.to_string(),
    };
    let write = |stream, gaps: Vec<GapWrite>, rate, now| CoverageWrite {
        table: &table,
        source: CoverageSource::Stream,
        name: "verifier-fn",
        stream_arn: Some(stream),
        started_at_ms: Some(100),
        verified_until_ms: Some(now),
        retry_at_ms: None,
        complete: None,
        sample_rate: Some(rate),
        gaps,
        now_ms: now,
    };
    // A sampled batch, then full batches: the gap stays.
    let sampled = vec![gap(GapCause::Sampled, "SAMPLE_RATE=0.000001")];
    cover(&store, &write("arn:old", sampled.clone(), 0.000001, 1_000)).await;
    cover(&store, &write("arn:old", vec![], 1.0, 2_000)).await;
    // A slower writer's older gap does not move the newer one back; its count still adds.
    cover(
        &store,
        &write("arn:old", vec![gap(GapCause::Trimmed, "new")], 1.0, 3_000),
    )
    .await;
    cover(
        &store,
        &write("arn:old", vec![gap(GapCause::Trimmed, "old")], 1.0, 2_500),
    )
    .await;
    // The same function on the table's new stream: an entry of its own.
    cover(&store, &write("arn:new", vec![], 1.0, 4_000)).await;
    let mut c = store.coverage(&table).await.unwrap();
    c.sort_by_key(|c| c.stream_arn.clone());
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(c[0].stream_arn.as_deref(), Some("arn:new"));
    assert!(c[0].gaps.is_empty());
    let old = &c[1];
    assert_eq!(old.sample_rate, Some(1.0), "the last write's rate");
    assert_eq!(
        old.gaps,
        vec![
            Gap {
                cause: GapCause::Sampled,
                at_ms: 1_000,
                count: 1,
                detail: "SAMPLE_RATE=0.000001".into()
            },
            Gap {
                cause: GapCause::Trimmed,
                at_ms: 3_000,
                count: 2,
                detail: "new".into()
            },
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_records_its_problems_and_its_run_and_a_later_run_resolves_them() {
    let pair = table_pair(
        "BaseFind",
        ORDER_KEYS,
        StreamViewType::NewAndOldImages,
        true,
    )
    .await;
    let store = findings_store(&pair.source).await;
    let checkpoints = unique("BaseFindCheckpoints");
    create_checkpoint_table(&pair.source.dynamodb, &checkpoints)
        .await
        .unwrap();
    let items: Vec<Item> = (0..20)
        .map(|i| order_item(&format!("c#{i}"), i, "PLACED"))
        .collect();
    write_items(&pair.source, &pair.table, &items).await;
    let mut copies = items.clone();
    copies.remove(3); // MISSING
    copies[4].insert("status".into(), s("LOST")); // item 5: MISMATCH
    copies.push(order_item("c#99", "99", "GHOST")); // EXTRA
    write_items(&pair.target, &pair.table, &copies).await;

    let baseline = || {
        let mut verify = Config::new(TableRef::parse(&pair.table).unwrap());
        verify.max_replication_lag = Duration::from_millis(300);
        let config = BaselineConfig {
            verify,
            source_table: pair.table.clone(),
            checkpoint_table: checkpoints.clone(),
            max_read_units: 10_000.0,
            page_limit: None,
            pending_limit: ddb_verify::config::DEFAULT_PENDING_LIMIT,
        };
        Baseline::new(
            config,
            BaselineParts {
                source_reader: DynamoDbReader::new(pair.source.dynamodb.clone()),
                source_scanner: DynamoDbScanner::new(pair.source.dynamodb.clone()),
                target_reader: DynamoDbReader::new(pair.target.dynamodb.clone()),
                target_scanner: DynamoDbScanner::new(pair.target.dynamodb.clone()),
                store: DynamoDbCheckpoints::new(pair.source.dynamodb.clone(), &checkpoints),
            },
        )
        .with_findings(FindingsWriter::new(
            store.clone(),
            FindingOrigin::Baseline,
            Some(pair.table.clone()),
        ))
    };
    let run = |run_id: &'static str| {
        let b = baseline();
        async move {
            b.start(run_id, 2).await.unwrap();
            for segment in 0..2 {
                let mut metrics = InvocationMetrics::default();
                let report = b
                    .run_segment(run_id, segment, 2, None, &mut metrics, &|_| {})
                    .await
                    .unwrap();
                assert!(report.done);
            }
            b.finish(run_id, 2).await.unwrap()
        }
    };
    let summary = run("run-1").await;
    assert!(summary.complete());
    let mut open: Vec<(String, String, Option<String>)> = store
        .list(&pair.table, FindingStatus::Open, None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|f| {
            assert_eq!(f.origin, "baseline");
            (f.key_text, f.verdict, f.baseline_run)
        })
        .collect();
    open.sort();
    let run1 = Some("run-1".to_string());
    assert_eq!(
        open,
        vec![
            (
                "customerId=S:\"c#3\", orderId=N:3".into(),
                "MISSING".into(),
                run1.clone()
            ),
            (
                "customerId=S:\"c#5\", orderId=N:5".into(),
                "MISMATCH".into(),
                run1.clone()
            ),
            (
                "customerId=S:\"c#99\", orderId=N:99".into(),
                "EXTRA".into(),
                run1.clone()
            ),
        ]
    );
    let mismatch = finding_of(&store, &pair, "c#5", "5").await.unwrap();
    assert_eq!(mismatch.attributes, vec!["status".to_string()]);
    assert_eq!(mismatch.values, None, "values only with LOG_ITEM_VALUES");
    let coverage = store.coverage(&pair.table).await.unwrap();
    let run_cover = coverage
        .iter()
        .find(|c| c.source == CoverageSource::Baseline && c.name == "run-1")
        .expect("the run's coverage");
    assert!(run_cover.complete);
    assert_eq!(run_cover.started_at_ms, Some(summary.run.started_at_ms));
    assert_eq!(run_cover.verified_until_ms, summary.run.finished_at_ms);

    // Repaired: a later run's MATCHes resolve the MISSING and MISMATCH findings. Items both scans
    // read alike rest on eventually consistent reads, which may be stale by a moment: a run that
    // starts within 5 s of a finding's recording resolves nothing by them.
    put(&pair.target, &pair.table, &items[3]).await;
    put(&pair.target, &pair.table, &items[5]).await;
    delete(&pair.target, &pair.table, &order_key("c#99", "99")).await;
    run("run-2").await;
    let f = finding_of(&store, &pair, "c#3", "3").await.unwrap();
    assert_eq!(
        f.status,
        FindingStatus::Open,
        "not resolved by scans that may predate the finding"
    );
    tokio::time::sleep(Duration::from_millis(5_100)).await;
    run("run-3").await;
    let open = store
        .list(&pair.table, FindingStatus::Open, None, None)
        .await
        .unwrap();
    assert_eq!(
        open.iter().map(|f| f.key_text.as_str()).collect::<Vec<_>>(),
        vec!["customerId=S:\"c#99\", orderId=N:99"],
        "an EXTRA gone from the other side has no MATCH to clear it: revalidation does"
    );
    let f = finding_of(&store, &pair, "c#3", "3").await.unwrap();
    assert_eq!(f.status, FindingStatus::Resolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_later_record_is_wrong_keeps_the_keys_open_finding_open() {
    let (pair, store, handler) = recording_verifier().await;
    // Order 1 was copied as PLACED; its change to SHIPPED never arrived.
    pair.put_replicated(&order_item("c#1", "1", "PLACED")).await;
    put(
        &pair.source,
        &pair.table,
        &order_item("c#1", "1", "SHIPPED"),
    )
    .await;
    let batch = event(&pair).await;
    assert_eq!(batch.records.len(), 2);
    // An open finding from before, which this batch must not clear.
    let key = order_key("c#1", "1");
    let problem = status_mismatch("source_unchanged_for_window");
    let earlier = epoch_ms() - 60_000;
    store
        .record(&ProblemWrite {
            table: &pair.table,
            key: &key,
            problem: &problem,
            origin: FindingOrigin::Baseline,
            occurrence: "baseline:run-0",
            sequence_number: None,
            baseline_run: Some("run-0"),
            now_ms: earlier,
            next_check_ms: earlier,
        })
        .await
        .unwrap();

    let inv = handler.handle(&batch, None).await;
    let names: Vec<String> = inv
        .records
        .iter()
        .map(|r| match &r.outcome {
            ddb_verify::verify::Outcome::Verdict(v) => v.name().to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["SUPERSEDED", "MISMATCH"]);
    let finding = finding_of(&store, &pair, "c#1", "1").await.unwrap();
    assert_eq!(finding.status, FindingStatus::Open, "{names:?}");
    assert_eq!(finding.origin, "stream");
    assert_eq!(inv.metrics.findings_resolved, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shard_poller_resolves_a_problem_of_one_page_by_a_match_on_the_next_checked_meanwhile()
{
    // Pages of one record. Order c#1 is written PLACED, then SHIPPED; the target holds SHIPPED.
    // Without re-reading the source, the first record is a MISMATCH and the second a MATCH. Page
    // 2's lookup runs while page 1's finding is written (slowed down); the MATCH, judged after the
    // MISMATCH, resolves it only if page 2's open findings are read after page 1's write.
    let pair = orders_pair().await;
    let store = findings_store(&pair.source).await;
    let checkpoints = unique("PollFindCheckpoints");
    create_checkpoint_table(&pair.source.dynamodb, &checkpoints)
        .await
        .unwrap();
    put(&pair.source, &pair.table, &order_item("c#1", "1", "PLACED")).await;
    pair.put_replicated(&order_item("c#1", "1", "SHIPPED"))
        .await;
    let proxy = FaultProxy::start(endpoint(), SEED).await;
    let through = account_through(&proxy, SOURCE_ACCOUNT);
    proxy.set_rules(vec![
        Rule::new(
            GET_RECORDS,
            1.0,
            vec![Fault::Delay(Duration::from_millis(400))],
        ),
        Rule::new(
            UPDATE_ITEM,
            1.0,
            vec![Fault::Delay(Duration::from_millis(1000))],
        ),
    ]);

    let mut verify = Config::new(TableRef::parse(&pair.table).unwrap());
    verify.lag_window_from = LagWindowFrom::Arrival;
    verify.max_replication_lag = Duration::ZERO;
    verify.recheck_source = false;
    let config = poller_config(&verify, &pair.stream_arn, &checkpoints, 1);
    let poller = Poller::new(
        DynamoDbStreams::new(through.streams.clone()),
        DynamoDbCheckpoints::new(pair.source.dynamodb.clone(), &checkpoints),
        Verifier::new(
            verify,
            DynamoDbReader::new(pair.target.dynamodb.clone()),
            DynamoDbReader::new(pair.source.dynamodb.clone()),
        ),
        config,
    )
    .with_findings(FindingsWriter::new(
        DynamoDbFindings::new(through.dynamodb.clone(), store.table()),
        FindingOrigin::Poller,
        None,
    ));
    let report = poller
        .run(
            &pair.stream_arn,
            tokio::time::Instant::now() + Duration::from_secs(120),
        )
        .await
        .expect("poll run");

    let m = &report.verification;
    assert_eq!((m.mismatches, m.matches), (1, 1), "{:#?}", report.records);
    assert_eq!((m.findings_recorded, m.findings_resolved), (1, 1));
    let finding = finding_of(&store, &pair, "c#1", "1")
        .await
        .expect("the first record's finding");
    assert_eq!(finding.status, FindingStatus::Resolved);
    assert!(proxy.injected().get(UPDATE_ITEM, FaultKind::Delay) >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn which_of_many_keys_have_an_open_finding_is_answered_in_order_across_calls_read_at_once() {
    let account = account(SOURCE_ACCOUNT);
    let store = findings_store(&account).await;
    let table = "Orders";
    let problem = status_mismatch("source_unchanged_for_window");
    let now = epoch_ms();
    // 350 keys: four calls of at most 100, read at once. Open findings in each call's share, one
    // accepted and one resolved (neither open).
    let keys: Vec<Item> = (0..350).map(|i| order_key(&format!("c#{i}"), i)).collect();
    let open: Vec<usize> = vec![0, 99, 100, 201, 299, 300, 349];
    for &i in open.iter().chain(&[150, 250]) {
        record_sighting(&store, table, &keys[i], &problem, "baseline:run-1", now).await;
    }
    assert!(store
        .accept(table, &keys[150], "agreed", now + 1)
        .await
        .unwrap());
    assert!(store
        .resolve(&Resolution {
            table,
            key: &keys[250],
            origin: FindingOrigin::Stream,
            judged_at_ms: now + 1,
        })
        .await
        .unwrap());
    // Asked in another order than written, one key twice.
    let mut asked: Vec<&Item> = keys.iter().rev().collect();
    asked.push(&keys[0]);
    let found = store.open_among(table, &asked).await.unwrap();
    assert_eq!(found.len(), asked.len());
    let expected: Vec<bool> = (0..350)
        .rev()
        .chain([0])
        .map(|i| open.contains(&i))
        .collect();
    assert_eq!(found, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_written_by_an_older_version_shows_in_the_key_text_and_accepts_in_either_form() {
    let account = account(SOURCE_ACCOUNT);
    let store = findings_store(&account).await;
    let table = "Orders";
    let key = order_key("c\"1, x=y", "1");
    let now = epoch_ms();
    let problem = status_mismatch("source_unchanged_for_window");
    store
        .record(&sighting(table, &key, &problem, "baseline:run-1", now))
        .await
        .unwrap();
    // An older version wrote the key text in Rust's `{:?}` form, under the same id.
    let older = r#"customerId="c\"1, x=y" orderId=1"#;
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key("id", s(&finding_id(table, &key)))
        .update_expression("SET keyText = :older")
        .expression_attribute_values(":older", s(older))
        .send()
        .await
        .unwrap();
    let shown = store.get(table, &key).await.unwrap().unwrap().key_text;
    assert_eq!(shown, r#"customerId=S:"c\"1, x=y", orderId=N:1"#);
    // What `findings` shows, and the older text, both read back as the key the finding is under.
    for text in [shown.as_str(), older] {
        assert_eq!(parse_key(text).as_ref(), Ok(&key), "{text}");
    }
    assert!(store
        .accept(table, &parse_key(older).unwrap(), "agreed", now + 1)
        .await
        .unwrap());
    let f = store.get(table, &key).await.unwrap().unwrap();
    assert_eq!(f.status, FindingStatus::Accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acceptance_covers_the_problem_accepted_and_a_different_problem_opens_the_finding_again()
{
    let account = account(SOURCE_ACCOUNT);
    let store = findings_store(&account).await;
    let table = "Orders";
    let key = order_key("c#1", "1");
    let now = epoch_ms();
    let price = Problem {
        attributes: vec!["price".into()],
        detail: "price differs".into(),
        ..status_mismatch("source_unchanged_for_window")
    };
    let missing = Problem {
        verdict: "MISSING",
        attributes: vec![],
        detail: "absent on the other side".into(),
        ..status_mismatch("source_as_recorded")
    };
    record_sighting(&store, table, &key, &price, "baseline:run-1", now).await;
    assert!(store
        .accept(table, &key, "price rounding, agreed", now + 1)
        .await
        .unwrap());
    // The same problem again: still accepted.
    record_sighting(&store, table, &key, &price, "baseline:run-2", now + 2).await;
    let f = store.get(table, &key).await.unwrap().unwrap();
    assert_eq!(f.status, FindingStatus::Accepted);
    // The item is gone from the other side: not what was accepted.
    record_sighting(&store, table, &key, &missing, "baseline:run-3", now + 3).await;
    let f = store.get(table, &key).await.unwrap().unwrap();
    assert_eq!(f.status, FindingStatus::Open, "{f:?}");
    assert_eq!(f.verdict, "MISSING");
    assert_eq!(f.reason, None);
    assert_eq!(f.times_seen, 3);
    let open = store
        .list(table, FindingStatus::Open, None, None)
        .await
        .unwrap();
    assert_eq!(open.len(), 1);
    // A MISMATCH on another attribute is a different problem too.
    let other = order_key("c#2", "2");
    record_sighting(&store, table, &other, &price, "baseline:run-1", now).await;
    assert!(store
        .accept(table, &other, "rounding", now + 1)
        .await
        .unwrap());
    let status = status_mismatch("source_unchanged_for_window");
    record_sighting(&store, table, &other, &status, "baseline:run-2", now + 2).await;
    let f = store.get(table, &other).await.unwrap().unwrap();
    assert_eq!(f.status, FindingStatus::Open, "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolved_finding_seen_wrong_again_by_the_same_occurrence_opens_again_without_counting_twice(
) {
    let account = account(SOURCE_ACCOUNT);
    let store = findings_store(&account).await;
    let table = "Orders";
    let key = order_key("c#1", "1");
    let problem = status_mismatch("source_unchanged_for_window");
    let now = epoch_ms();
    record_sighting(&store, table, &key, &problem, "baseline:run-1", now).await;
    assert!(store
        .resolve(&Resolution {
            table,
            key: &key,
            origin: FindingOrigin::Stream,
            judged_at_ms: now + 1,
        })
        .await
        .unwrap());
    // The run's page is resumed and judged again: the key is wrong again.
    record_sighting(&store, table, &key, &problem, "baseline:run-1", now + 2).await;
    let f = store.get(table, &key).await.unwrap().unwrap();
    assert_eq!(f.status, FindingStatus::Open, "{f:?}");
    assert_eq!(f.resolved_at_ms, None);
    assert_eq!(f.times_seen, 1, "the same occurrence is not counted twice");
    // And a re-delivery of an open finding's occurrence still changes nothing.
    record_sighting(&store, table, &key, &problem, "baseline:run-1", now + 3).await;
    let again = store.get(table, &key).await.unwrap().unwrap();
    assert_eq!(again.last_seen_ms, f.last_seen_ms);
}

/// A record MATCHed, as the findings writer is handed it after a pass, and the metrics it adds to.
struct MatchPass {
    outcomes: [Outcome; 1],
    metrics: InvocationMetrics,
}

impl Default for MatchPass {
    fn default() -> Self {
        MatchPass {
            outcomes: [Outcome::Verdict(Verdict::Match {
                lag: Duration::ZERO,
            })],
            metrics: InvocationMetrics::default(),
        }
    }
}

impl MatchPass {
    /// `writer` writes what the MATCH of `records` means for their findings, in a pass of
    /// `occurrence` whose reads began at `observed_from_ms`.
    async fn write<F: FindingsStore>(
        &mut self,
        writer: &FindingsWriter<F>,
        records: &[Expectation],
        occurrence: Occurrence<'_>,
        observed_from_ms: u64,
    ) {
        let pass = Pass {
            occurrence,
            observed_from_ms,
        };
        writer
            .write(
                records,
                &mut self.outcomes,
                &Default::default(),
                pass,
                &mut self.metrics,
            )
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_observed_before_a_newer_finding_was_recorded_does_not_resolve_it() {
    // A baseline page read at T0 matches key c#1; before its findings are written (a page can
    // take minutes) the stream verifier records a newer MISSING for it.
    let pair = orders_pair().await;
    let store = findings_store(&pair.source).await;
    let writer = FindingsWriter::new(
        store.clone(),
        FindingOrigin::Baseline,
        Some(pair.table.clone()),
    );
    let key = order_key("c#1", "1");
    let page_read = std::time::SystemTime::now() - Duration::from_secs(60);
    let record = ddb_verify::record::Expectation {
        keys: key.clone(),
        expected: ddb_verify::record::Expected::Present,
        since: Some(page_read),
        source_table: Some(pair.table.clone()),
        origin: ddb_verify::record::Origin::Scan,
    };
    let missing = Problem {
        verdict: "MISSING",
        attributes: vec![],
        detail: "absent".into(),
        ..status_mismatch("source_as_recorded")
    };
    record_sighting(
        &store,
        &pair.table,
        &key,
        &missing,
        "seq-9",
        epoch_ms() - 1_000,
    )
    .await;
    let records = [record];
    let mut matched = MatchPass::default();
    matched
        .write(&writer, &records, Occurrence::Baseline("run-1"), epoch_ms())
        .await;
    let f = store.get(&pair.table, &key).await.unwrap().unwrap();
    assert_eq!(f.status, FindingStatus::Open, "the stale MATCH resolved it");
    assert_eq!(matched.metrics.findings_resolved, 0);
    // A stream record's MATCH from reads that began before the finding was last seen: the same.
    let stream_events = one_missing_one_matching(&pair).await;
    let mut streamed = stream_events.records[1].clone();
    streamed.keys = key.clone();
    let stream_writer = FindingsWriter::new(
        store.clone(),
        FindingOrigin::Stream,
        Some(pair.table.clone()),
    );
    let streamed = std::slice::from_ref(&streamed);
    matched
        .write(
            &stream_writer,
            streamed,
            Occurrence::Stream,
            epoch_ms() - 5_000,
        )
        .await;
    let f = store.get(&pair.table, &key).await.unwrap().unwrap();
    assert_eq!(
        f.status,
        FindingStatus::Open,
        "the stale stream MATCH resolved it"
    );
    // A MATCH observed after the finding was last seen resolves it.
    let records = [ddb_verify::record::Expectation {
        since: Some(std::time::SystemTime::now()),
        ..records[0].clone()
    }];
    matched
        .write(&writer, &records, Occurrence::Baseline("run-2"), epoch_ms())
        .await;
    let f = store.get(&pair.table, &key).await.unwrap().unwrap();
    assert_eq!(f.status, FindingStatus::Resolved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_too_long_for_a_findings_id_and_values_too_large_for_an_item_are_still_recorded() {
    let pair = orders_pair().await;
    let store = findings_store(&pair.source).await;
    let handler = verifier(&pair.table, &pair.source, &pair.target, |c| {
        adjust(c);
        c.log_item_values = true;
    })
    .with_findings(
        FindingsWriter::new(store.clone(), FindingOrigin::Stream, None),
        "verifier-fn",
    );
    // A partition key of 2,000 bytes: its finding's id would be over DynamoDB's 2,048.
    let customer = "c".repeat(2000);
    put(
        &pair.source,
        &pair.table,
        &order_item(&customer, "1", "PLACED"),
    )
    .await;
    // An item of about 300 KB, different on the other side: expected and found values are over
    // the 400 KB of an item together.
    let mut big = order_item("c#big", "2", "PLACED");
    big.insert("blob".into(), s(&"x".repeat(300_000)));
    put(&pair.source, &pair.table, &big).await;
    big.insert("blob".into(), s(&"y".repeat(300_000)));
    put(&pair.target, &pair.table, &big).await;

    let inv = handler.handle(&event(&pair).await, None).await;
    assert!(
        inv.response.batch_item_failures.is_empty(),
        "{:?}",
        inv.records
    );
    assert_eq!((inv.metrics.missing, inv.metrics.mismatches), (1, 1));
    assert_eq!(inv.metrics.findings_recorded, 2);
    let long = store
        .get(&pair.table, &order_key(&customer, "1"))
        .await
        .unwrap()
        .expect("recorded under the key's hash");
    assert_eq!(long.key, order_key(&customer, "1"), "the whole key is kept");
    assert!(long.key_text.contains("[cut: "), "{}", &long.key_text[..80]);
    let large = store
        .get(&pair.table, &order_key("c#big", "2"))
        .await
        .unwrap()
        .expect("recorded with its values cut");
    let values = large.values.expect("values kept (LOG_ITEM_VALUES)");
    assert!(values.len() < 70_000 && values.contains("[cut: "));
    let open = store
        .list(&pair.table, FindingStatus::Open, None, None)
        .await
        .unwrap();
    assert_eq!(open.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_with_a_key_that_fail_another_check_are_kept_as_unverifiable_findings_under_it() {
    let (pair, store, handler) = recording_verifier().await;
    put_replicated_orders(&pair, 1..=4).await;
    let mut events = stream_events(&pair.source, &pair.stream_arn, 1000).await;
    let records = events[0]["Records"].as_array_mut().unwrap();
    assert_eq!(records.len(), 4);
    // An unknown eventName, an INSERT without its NewImage on a NEW_AND_OLD_IMAGES stream, and a
    // NewImage attribute of a type this version does not know. The fourth is sound.
    records[0]["eventName"] = "UPSERT".into();
    records[1]["dynamodb"]
        .as_object_mut()
        .unwrap()
        .remove("NewImage");
    records[2]["dynamodb"]["NewImage"]["status"] = serde_json::json!({"Q": "x"});
    let event = parse_event(&events[0]);
    assert_eq!((event.records.len(), event.malformed.len()), (1, 3));

    let inv = handler.handle(&event, None).await;
    assert!(inv.response.batch_item_failures.is_empty());
    assert_eq!((inv.metrics.unverifiable, inv.metrics.matches), (3, 1));
    assert_eq!(inv.metrics.findings_recorded, 3);
    let reasons = [
        (1, "eventName \"UPSERT\""),
        (2, "has no dynamodb.NewImage"),
        (3, "unknown attribute type"),
    ];
    for (i, reason) in reasons {
        let f = finding_of(&store, &pair, &format!("c#{i}"), &i.to_string())
            .await
            .unwrap_or_else(|| panic!("no finding for c#{i}"));
        assert_eq!(
            (f.verdict.as_str(), f.status),
            ("UNVERIFIABLE", FindingStatus::Open)
        );
        assert!(f.detail.contains(reason), "{}", f.detail);
        assert_eq!(f.origin, "stream");
    }
    assert!(finding_of(&store, &pair, "c#4", "4").await.is_none());
    // A re-delivery is not counted twice.
    handler.handle(&event, None).await;
    let f = finding_of(&store, &pair, "c#1", "1").await.unwrap();
    assert_eq!(f.times_seen, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creation_times_the_engine_does_not_believe_move_no_coverage_and_are_a_gap() {
    let (pair, store, handler) = recording_verifier().await;
    put_replicated_orders(&pair, 1..=3).await;
    let mut events = stream_events(&pair.source, &pair.stream_arn, 1000).await;
    let records = events[0]["Records"].as_array_mut().unwrap();
    let good = records[2]["dynamodb"]["ApproximateCreationDateTime"]
        .as_f64()
        .unwrap();
    // Milliseconds read as seconds (tens of thousands of years ahead), and a time near 1970.
    records[0]["dynamodb"]["ApproximateCreationDateTime"] = (good * 1000.0).into();
    records[1]["dynamodb"]["ApproximateCreationDateTime"] = 5.into();
    let inv = handler.handle(&parse_event(&events[0]), None).await;
    assert_eq!(inv.metrics.matches, 3);
    let coverage = store.coverage(&pair.table).await.unwrap();
    assert_eq!(coverage.len(), 1, "{coverage:?}");
    let c = &coverage[0];
    let good_ms = (good * 1000.0) as u64;
    assert_eq!(c.started_at_ms, Some(good_ms), "not moved back to 1970");
    assert_eq!(
        c.verified_until_ms,
        Some(good_ms),
        "not moved ahead for ever"
    );
    assert_eq!(c.stream_arn.as_deref(), Some(pair.stream_arn.as_str()));
    let causes: Vec<_> = c.gaps.iter().map(|g| g.cause).collect();
    assert_eq!(causes, [GapCause::BadCreationTime]);
    assert!(
        c.gaps[0].detail.starts_with("2 record(s)"),
        "{}",
        c.gaps[0].detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_runs_without_findings_table_are_a_gap_in_the_next_recorded_runs_coverage() {
    let pair = orders_pair().await;
    let store = findings_store(&pair.source).await;
    let checkpoints = unique("UnrecordedCheckpoints");
    create_checkpoint_table(&pair.source.dynamodb, &checkpoints)
        .await
        .unwrap();
    let mut verify = Config::new(TableRef::parse(&pair.table).unwrap());
    verify.lag_window_from = LagWindowFrom::Arrival;
    verify.max_replication_lag = Duration::from_millis(300);
    let poller = || {
        let config = poller_config(&verify, &pair.stream_arn, &checkpoints, 100);
        Poller::new(
            DynamoDbStreams::new(pair.source.streams.clone()),
            DynamoDbCheckpoints::new(pair.source.dynamodb.clone(), &checkpoints),
            Verifier::new(
                verify.clone(),
                DynamoDbReader::new(pair.target.dynamodb.clone()),
                DynamoDbReader::new(pair.source.dynamodb.clone()),
            ),
            config,
        )
    };
    let recording = || {
        poller().with_findings(FindingsWriter::new(
            store.clone(),
            FindingOrigin::Poller,
            None,
        ))
    };
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(20);
    let pair = &pair;
    let write = |i: u32| async move {
        pair.put_replicated(&order_item(&format!("c#{i}"), i, "PLACED"))
            .await;
    };
    write(1).await;
    recording().run(&pair.stream_arn, deadline()).await.unwrap();
    let gaps = |c: &[ddb_verify::ports::findings::Coverage]| -> Vec<GapCause> {
        c[0].gaps.iter().map(|g| g.cause).collect()
    };
    assert_eq!(gaps(&store.coverage(&pair.table).await.unwrap()), []);

    // FINDINGS_TABLE unset for a while: a missing item's problem is only logged.
    put(&pair.source, &pair.table, &order_item("c#2", 2, "PLACED")).await;
    // Its mark is its deadline: a recording run before then records the gap again later.
    let short = tokio::time::Instant::now() + Duration::from_secs(4);
    let report = poller().run(&pair.stream_arn, short).await.unwrap();
    tokio::time::sleep_until(short + Duration::from_millis(100)).await;
    assert_eq!(report.verification.missing, 1);
    assert!(store
        .get(&pair.table, &order_key("c#2", 2))
        .await
        .unwrap()
        .is_none());

    // Recorded again: the time in between is a gap, written once.
    write(3).await;
    recording().run(&pair.stream_arn, deadline()).await.unwrap();
    let coverage = store.coverage(&pair.table).await.unwrap();
    assert_eq!(gaps(&coverage), [GapCause::Unrecorded], "{coverage:?}");
    let first = coverage[0].gaps[0].clone();
    write(4).await;
    recording().run(&pair.stream_arn, deadline()).await.unwrap();
    let coverage = store.coverage(&pair.table).await.unwrap();
    assert_eq!(coverage[0].gaps, vec![first], "not written again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_gap_cannot_be_written_goes_back_to_lambda_whole() {
    let pair = orders_pair().await;
    let store = findings_store(&pair.source).await;
    let proxy = FaultProxy::start(endpoint(), 7).await;
    let own = account_through(&proxy, SOURCE_ACCOUNT);
    // Sampling: every batch's coverage carries a `sampled` gap.
    let handler = verifier(&pair.table, &pair.source, &pair.target, |c| {
        adjust(c);
        c.sample_rate = 0.999;
    })
    .with_findings(
        FindingsWriter::new(
            DynamoDbFindings::new(own.dynamodb.clone(), store.table()),
            FindingOrigin::Stream,
            None,
        ),
        "verifier-fn",
    );
    put_replicated_orders(&pair, 1..=3).await;
    let event = event(&pair).await;
    proxy.set_rules(vec![Rule::server_error_when(UPDATE_ITEM, "coverage#")]);
    let inv = handler.handle(&event, None).await;
    let sampled = inv.metrics.records_sampled as usize;
    assert!(sampled > 0);
    assert_eq!(
        inv.response.batch_item_failures.len(),
        sampled,
        "every sampled record goes back, so that the gap is written when they come again"
    );
    proxy.clear_rules();
    let inv = handler.handle(&event, None).await;
    assert!(inv.response.batch_item_failures.is_empty());
    let coverage = store.coverage(&pair.table).await.unwrap();
    assert_eq!(coverage[0].gaps[0].cause, GapCause::Sampled);
}
