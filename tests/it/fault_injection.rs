//! "Prove it loses nothing": the stream verifier and the shard poller against DynamoDB Local through
//! a fault-injecting proxy (tests/it/common/fault_proxy.rs) that throttles, fails, resets and delays
//! lookups, stream reads and checkpoint writes. Every record must end with a verdict or go back to
//! be delivered (or read) again; in the end every record has a verdict, and the metrics add up.
//!
//! Run with `--nocapture` to see the figures (faults injected by kind, batches, records, records
//! lost, re-deliveries).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::fault_proxy::{
    mix, Fault, FaultKind, FaultProxy, Injected, Rule, BATCH_GET_ITEM, GET_RECORDS, UPDATE_ITEM,
};
use crate::common::*;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType as T, StreamViewType};
use ddb_verify::aws::checkpoints::{create_checkpoint_table, DynamoDbCheckpoints};
use ddb_verify::aws::findings::DynamoDbFindings;
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::aws::streams::DynamoDbStreams;
use ddb_verify::config::PollerConfig;
use ddb_verify::config::{Config, LagWindowFrom, TableRef};
use ddb_verify::lambda::handler::Invocation;
use ddb_verify::poller::{PollReport, Poller};
use ddb_verify::ports::checkpoint::CheckpointStore;
use ddb_verify::ports::findings::FindingsStore;
use ddb_verify::ports::findings::NoFindings;
use ddb_verify::ports::table::{BatchGet, BatchGetOutput, LookupError, TableReader};
use ddb_verify::record::{compare_sequence_numbers, Item};
use ddb_verify::shared::epoch_ms;
use ddb_verify::verify::{Outcome, RetryReason, Verifier};
use serde_json::{json, Value};
use tokio::time::Instant;

/// Fixed, so a run injects the same faults as the last one (for the same order of requests).
const SEED: u64 = 0x0610_55e5;

fn row(i: usize) -> Item {
    item(&[
        ("pk", s(&format!("item-{i:05}"))),
        ("n", n(&i.to_string())),
        ("payload", s(&format!("payload of item {i}"))),
    ])
}

fn text<'a>(record: &'a Value, pointer: &str) -> &'a str {
    record
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {record}"))
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Verdict(v) => v.name(),
        Outcome::Retry(_) => "RETRY",
        Outcome::NotSampled => "NOT_SAMPLED",
    }
}

/// A metric's values over a set of EMF documents, and how many documents carry it.
fn emf(docs: &[Value], metric: &str) -> (Vec<f64>, usize) {
    let carrying: Vec<&Value> = docs.iter().filter_map(|d| d.get(metric)).collect();
    let values = carrying
        .iter()
        .flat_map(|v| match v {
            Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap()).collect(),
            x => vec![x.as_f64().unwrap()],
        })
        .collect();
    (values, carrying.len())
}

const VERDICT_METRICS: [(&str, &str); 6] = [
    ("MATCH", "Match"),
    ("MISSING", "Missing"),
    ("MISMATCH", "Mismatch"),
    ("DELETE_NOT_APPLIED", "DeleteNotApplied"),
    ("SUPERSEDED", "Superseded"),
    ("UNVERIFIABLE", "Unverifiable"),
];

/// Checks one invocation on `delivered` (the records Lambda handed it): every record once, in order,
/// with a verdict or as a batch item failure (never both, never neither); the metrics and their EMF
/// documents count exactly that; every injected lookup failure is one LookupErrors. Returns the
/// position of the lowest failed sequence number, from where Lambda delivers again.
fn check_invocation(
    delivered: &[Value],
    inv: &Invocation,
    injected: &Injected,
    lookups_seen: u64,
    table: &str,
) -> Option<usize> {
    let ids: Vec<&str> = delivered.iter().map(|r| text(r, "/eventID")).collect();
    let reported: Vec<&str> = inv
        .records
        .iter()
        .map(|r| r.event_id.as_deref().expect("an event id"))
        .collect();
    assert_eq!(reported, ids, "every record reported once, in event order");

    let failures: Vec<&str> = inv
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_deref().expect("an item identifier"))
        .collect();
    let failed: HashSet<&str> = failures.iter().copied().collect();
    assert_eq!(failed.len(), failures.len(), "a failure listed twice");
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for (record, report) in delivered.iter().zip(&inv.records) {
        let seq = text(record, "/dynamodb/SequenceNumber");
        assert_eq!(report.sequence_number.as_deref(), Some(seq));
        match &report.outcome {
            Outcome::Verdict(_) => assert!(!failed.contains(seq), "{seq}: verdict and failure"),
            Outcome::Retry(reason) => {
                assert!(failed.contains(seq), "{seq}: retry not returned to Lambda");
                // Everything injected is throttling, 5xx or a reset: worth asking again.
                assert!(
                    matches!(
                        reason,
                        RetryReason::LookupFailed {
                            transient: true,
                            ..
                        }
                    ),
                    "{seq}: {reason}"
                );
            }
            Outcome::NotSampled => panic!("{seq}: not sampled at SAMPLE_RATE=1"),
        }
        *counts.entry(outcome_name(&report.outcome)).or_default() += 1;
    }
    let retries = counts.get("RETRY").copied().unwrap_or(0);
    assert_eq!(
        failures.len() as u64,
        retries,
        "failures name exactly the retries"
    );

    let m = &inv.metrics;
    let n = delivered.len() as u64;
    assert_eq!((m.records_received, m.records_sampled), (n, n));
    let verdicts = m.matches
        + m.missing
        + m.mismatches
        + m.deletes_not_applied
        + m.superseded
        + m.unverifiable;
    assert_eq!(verdicts + m.batch_item_failures, m.records_sampled);
    assert_eq!(m.batch_item_failures, retries);
    assert_eq!(m.replication_lag_ms.len() as u64, m.matches);
    assert_eq!(
        m.lookup_errors,
        injected.failures(BATCH_GET_ITEM),
        "one LookupErrors per injected failure ({injected})"
    );
    assert_eq!(
        m.lookup_calls, lookups_seen,
        "every lookup went through the proxy"
    );

    // As CloudWatch reads them: each counter in exactly one document, and they add up.
    let docs = m.emf_documents("Verifier/Faults", table, epoch_ms());
    let counter = |name: &str| {
        let (values, documents) = emf(&docs, name);
        assert_eq!((values.len(), documents), (1, 1), "{name} once: {docs:?}");
        values[0] as u64
    };
    let mut emf_verdicts = 0;
    for (verdict, metric) in VERDICT_METRICS {
        let value = counter(metric);
        assert_eq!(value, counts.get(verdict).copied().unwrap_or(0), "{metric}");
        emf_verdicts += value;
    }
    assert_eq!(counter("BatchItemFailures"), retries);
    assert_eq!(counter("RecordsReceived"), n);
    assert_eq!(
        emf_verdicts + counter("BatchItemFailures"),
        counter("RecordsSampled")
    );
    assert_eq!(counter("LookupErrors"), m.lookup_errors);
    assert_eq!(emf(&docs, "ReplicationLag").0.len() as u64, m.matches);

    failures
        .iter()
        .min_by(|a, b| compare_sequence_numbers(a, b))
        .map(|lowest| {
            delivered
                .iter()
                .position(|r| text(r, "/dynamodb/SequenceNumber") == *lowest)
                .expect("the failure names a delivered record")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_verifier_loses_no_record_under_lookup_faults() {
    // 104 records a batch: two BatchGetItem calls (100 + 4 keys), so a batch can fail in part.
    // (Not more: DynamoDB Local's writes slow down with every stream record it holds.)
    const BATCHES: usize = 25;
    const BATCH_SIZE: usize = 104;
    let pair = table_pair(
        "Faults",
        &[("pk", T::S)],
        StreamViewType::NewAndOldImages,
        true,
    )
    .await;
    let items: Vec<Item> = (0..BATCHES * BATCH_SIZE).map(row).collect();
    write_items(&pair.source, &pair.table, &items).await;
    write_items(&pair.target, &pair.table, &items).await;
    let events = stream_events(&pair.source, &pair.stream_arn, BATCH_SIZE).await;
    assert_eq!(events.len(), BATCHES);

    let proxy = FaultProxy::start(endpoint(), SEED).await;
    proxy.set_rules(vec![Rule::new(
        BATCH_GET_ITEM,
        0.2,
        mix(Duration::from_millis(300)),
    )]);
    let handler = verifier(
        &pair.table,
        &account_through(&proxy, SOURCE_ACCOUNT),
        &account_through(&proxy, TARGET_ACCOUNT),
        |c| {
            // DynamoDB Local's creation times do not follow the writes.
            c.lag_window_from = LagWindowFrom::Arrival;
            c.max_replication_lag = Duration::from_secs(1);
        },
    );

    let (mut invocations, mut redeliveries, mut max_rounds, mut reverified) = (0, 0, 0, 0);
    let (mut records, mut lost, mut lookup_errors) = (0, 0, 0);
    for (b, event) in events.iter().enumerate() {
        let batch = event["Records"].as_array().unwrap().clone();
        let mut verdicts: HashMap<String, &'static str> = HashMap::new();
        let mut delivery = batch.clone();
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds <= 50, "batch {b} still fails after 50 deliveries");
            let (before, seen) = (proxy.injected(), proxy.seen(BATCH_GET_ITEM));
            let deadline = Instant::now() + Duration::from_secs(10);
            let inv = handler
                .handle(
                    &parse_event(&json!({ "Records": delivery })),
                    Some(deadline),
                )
                .await;
            invocations += 1;
            let injected = proxy.injected().since(&before);
            let lowest_failed = check_invocation(
                &delivery,
                &inv,
                &injected,
                proxy.seen(BATCH_GET_ITEM) - seen,
                &pair.table,
            );
            lookup_errors += inv.metrics.lookup_errors;
            for r in &inv.records {
                if let Outcome::Verdict(v) = &r.outcome {
                    if verdicts
                        .insert(r.event_id.clone().unwrap(), v.name())
                        .is_some()
                    {
                        reverified += 1; // delivered again after a lower record failed
                    }
                }
            }
            match lowest_failed {
                None => break,
                // As Lambda does: the failed record and every later one, again.
                Some(position) => delivery = delivery[position..].to_vec(),
            }
            redeliveries += 1;
        }
        max_rounds = max_rounds.max(rounds);
        records += batch.len();
        let without_verdict = batch
            .iter()
            .filter(|r| !verdicts.contains_key(text(r, "/eventID")))
            .count();
        lost += without_verdict;
        let not_matched: Vec<_> = verdicts.iter().filter(|(_, v)| **v != "MATCH").collect();
        assert!(not_matched.is_empty(), "the tables match: {not_matched:?}");
    }

    let injected = proxy.injected();
    println!(
        "stream verifier under lookup faults: {injected}; {BATCHES} batches, {records} records, \
         {invocations} invocations, {redeliveries} re-deliveries (at most {max_rounds} deliveries \
         of a batch), {reverified} records verified again, {lookup_errors} lookup errors, \
         {lost} records lost"
    );
    assert_eq!(lost, 0, "records without a final verdict");
    assert_eq!(records, BATCHES * BATCH_SIZE);
    assert_eq!(proxy.upstream_failures(), 0, "the proxy itself failed");
    for kind in FaultKind::ALL {
        assert!(
            injected.of_kind(kind) > 0,
            "no {kind:?} injected: {injected}"
        );
    }
    assert_eq!(lookup_errors, injected.failures(BATCH_GET_ITEM));
    assert!(redeliveries > 0, "no fault reached the verifier");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_slower_than_the_deadline_send_every_record_back_in_time() {
    const RECORDS: usize = 30;
    let pair = table_pair("Deadline", &[("pk", T::S)], StreamViewType::NewImage, true).await;
    let items: Vec<Item> = (0..RECORDS).map(row).collect();
    write_items(&pair.source, &pair.table, &items).await;
    write_items(&pair.target, &pair.table, &items).await;
    let events = stream_events(&pair.source, &pair.stream_arn, 100).await;
    let event = parse_event(&events[0]);

    let proxy = FaultProxy::start(endpoint(), SEED).await;
    proxy.set_rules(vec![Rule::new(
        BATCH_GET_ITEM,
        1.0,
        vec![Fault::Delay(Duration::from_secs(5))],
    )]);
    let margin = Duration::from_millis(500);
    let handler = verifier(
        &pair.table,
        &account_through(&proxy, SOURCE_ACCOUNT),
        &account_through(&proxy, TARGET_ACCOUNT),
        |c| c.deadline_margin = margin,
    );
    let started = Instant::now();
    let deadline = started + Duration::from_millis(1500);
    let inv = handler.handle(&event, Some(deadline)).await;
    let elapsed = started.elapsed();
    println!(
        "deadline 1.5 s ahead, lookups delayed 5 s: answered after {elapsed:?} with {} batch item \
         failures of {RECORDS} records",
        inv.response.batch_item_failures.len()
    );
    assert!(
        elapsed < deadline - started,
        "answered after the deadline: {elapsed:?}"
    );
    // It waited for the lookup until its margin, not less.
    assert!(
        elapsed >= deadline - started - margin - Duration::from_millis(50),
        "{elapsed:?}"
    );
    assert_eq!(proxy.injected().get(BATCH_GET_ITEM, FaultKind::Delay), 1);

    let delivered = events[0]["Records"].as_array().unwrap();
    assert_eq!(delivered.len(), RECORDS);
    let failures: Vec<&str> = inv
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_deref().unwrap())
        .collect();
    let expected: Vec<&str> = delivered
        .iter()
        .map(|r| text(r, "/dynamodb/SequenceNumber"))
        .collect();
    assert_eq!(
        failures, expected,
        "every record returned, once, none dropped"
    );
    for r in &inv.records {
        let Outcome::Retry(RetryReason::LookupFailed { message, transient }) = &r.outcome else {
            panic!("{:?}", r.outcome)
        };
        assert!(*transient && message.contains("deadline"), "{message}");
    }
    assert_eq!(inv.metrics.batch_item_failures, RECORDS as u64);
    assert_eq!(inv.metrics.lookup_errors, 1);

    // Delivered again with the service fast again: every record verified.
    proxy.clear_rules();
    let again = handler
        .handle(&event, Some(Instant::now() + Duration::from_secs(10)))
        .await;
    assert!(again.response.batch_item_failures.is_empty());
    assert_eq!(again.metrics.matches, RECORDS as u64);
}

/// The verifier's reader, noting the keys each successful lookup found (the target side), so the
/// tests see what was verified even by an invocation whose report never came back.
#[derive(Clone)]
struct RecordingReader {
    inner: DynamoDbReader,
    found: Option<Arc<Mutex<HashMap<String, u32>>>>,
}

impl TableReader for RecordingReader {
    async fn batch_get(&self, request: BatchGet<'_>) -> Result<BatchGetOutput, LookupError> {
        let out = self.inner.batch_get(request).await?;
        if let Some(found) = &self.found {
            let mut found = found.lock().unwrap();
            for item in &out.items {
                if let Some(AttributeValue::S(pk)) = item.item().get("pk") {
                    *found.entry(pk.clone()).or_default() += 1;
                }
            }
        }
        Ok(out)
    }
}

type FaultyPoller<F = NoFindings> =
    Poller<DynamoDbStreams, DynamoDbCheckpoints, RecordingReader, F>;

struct PollerSetup {
    pair: TablePair,
    checkpoints: String,
    /// (sequence number, pk) of every record in the stream, in order.
    written: Vec<(String, String)>,
    found: Arc<Mutex<HashMap<String, u32>>>,
}

impl PollerSetup {
    async fn new(prefix: &str, records: usize, replicated: impl Fn(usize) -> bool) -> Self {
        let pair = table_pair(
            prefix,
            &[("pk", T::S)],
            StreamViewType::NewAndOldImages,
            true,
        )
        .await;
        let checkpoints = unique("Checkpoints");
        create_checkpoint_table(&pair.target.dynamodb, &checkpoints)
            .await
            .expect("checkpoint table");
        let items: Vec<Item> = (0..records).map(row).collect();
        write_items(&pair.source, &pair.table, &items).await;
        let copies: Vec<Item> = (0..records).filter(|i| replicated(*i)).map(row).collect();
        write_items(&pair.target, &pair.table, &copies).await;
        let written = ddb_verify_testkit::events::read_all(&pair.source.streams, &pair.stream_arn)
            .await
            .expect("read stream")
            .into_iter()
            .map(|r| {
                let d = r.dynamodb.unwrap();
                let pk = d.keys.unwrap()["pk"].as_s().unwrap().clone();
                (d.sequence_number.unwrap(), pk)
            })
            .collect::<Vec<_>>();
        assert_eq!(written.len(), records);
        PollerSetup {
            pair,
            checkpoints,
            written,
            found: Arc::default(),
        }
    }

    /// A poller as [`Self::poller`] (30 s leases, pages of 100) that records its findings in
    /// `store`, also through the proxy.
    fn recording_poller(
        &self,
        proxy: &FaultProxy,
        store: &DynamoDbFindings,
    ) -> FaultyPoller<DynamoDbFindings> {
        let own = account_through(proxy, TARGET_ACCOUNT);
        self.poller(proxy, Duration::from_secs(30), 100)
            .with_findings(ddb_verify::report::findings::FindingsWriter::new(
                DynamoDbFindings::new(own.dynamodb.clone(), store.table()),
                ddb_verify::ports::findings::FindingOrigin::Poller,
                None,
            ))
    }

    /// One run of `poller` over the stream, 20 s at most.
    async fn run<F: FindingsStore>(&self, poller: &FaultyPoller<F>) -> PollReport {
        poller
            .run(
                &self.pair.stream_arn,
                Instant::now() + Duration::from_secs(20),
            )
            .await
            .expect("run")
    }

    /// A poller whose every call goes through the proxy.
    fn poller(&self, proxy: &FaultProxy, lease: Duration, page: i32) -> FaultyPoller {
        let source = account_through(proxy, SOURCE_ACCOUNT);
        let target = account_through(proxy, TARGET_ACCOUNT);
        let mut verify = Config::new(TableRef::parse(&self.pair.table).unwrap());
        verify.lag_window_from = LagWindowFrom::Arrival;
        verify.max_replication_lag = Duration::from_millis(300);
        verify.deadline_margin = Duration::from_secs(1);
        let config = PollerConfig {
            lease_duration: lease,
            ..poller_config(&verify, &self.pair.stream_arn, &self.checkpoints, page)
        };
        Poller::new(
            DynamoDbStreams::new(source.streams.clone()),
            DynamoDbCheckpoints::new(target.dynamodb.clone(), &self.checkpoints),
            Verifier::new(
                verify,
                RecordingReader {
                    inner: DynamoDbReader::new(target.dynamodb.clone()),
                    found: Some(Arc::clone(&self.found)),
                },
                RecordingReader {
                    inner: DynamoDbReader::new(source.dynamodb.clone()),
                    found: None,
                },
            ),
            config,
        )
    }

    /// The stored checkpoint, read directly (not through the proxy).
    async fn checkpoint(&self) -> Option<String> {
        let store = DynamoDbCheckpoints::new(self.pair.target.dynamodb.clone(), &self.checkpoints);
        let all = store.load_all(&self.pair.stream_arn).await.unwrap();
        assert!(
            all.len() <= 1,
            "DynamoDB Local gave one shard so far: {all:?}"
        );
        all.into_values().next().and_then(|c| c.sequence_number)
    }

    /// The shard's lease as stored: (owner, expiry in epoch ms).
    async fn lease(&self) -> Option<(String, u64)> {
        let out = self
            .pair
            .target
            .dynamodb
            .scan()
            .table_name(&self.checkpoints)
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        // The shard's item: the stream's own (`#stream`) holds no lease.
        let row = out
            .items
            .unwrap_or_default()
            .into_iter()
            .find(|row| row.contains_key("leaseOwner"))?;
        let owner = row.get("leaseOwner")?.as_s().ok()?.clone();
        let until = row.get("leaseExpiresAt")?.as_n().ok()?.parse().ok()?;
        Some((owner, until))
    }

    fn found(&self, pk: &str) -> u32 {
        self.found.lock().unwrap().get(pk).copied().unwrap_or(0)
    }

    /// Records after `from` up to and including `to` (checkpoints), in stream order.
    fn between(&self, from: Option<&str>, to: Option<&str>) -> Vec<(String, String)> {
        let Some(to) = to else { return Vec::new() };
        self.written
            .iter()
            .filter(|(seq, _)| from.is_none_or(|f| compare_sequence_numbers(seq, f).is_gt()))
            .filter(|(seq, _)| compare_sequence_numbers(seq, to).is_le())
            .cloned()
            .collect()
    }
}

/// A run's own figures agree with each other and with what the proxy saw.
fn check_poll_report(report: &PollReport, injected: &Injected, lookups: u64, reads: u64) {
    let v = &report.verification;
    // A page counts once its checkpoint is written: with a failed shard, its last page is read but
    // not counted (the next run reads and counts it).
    if report.failures.is_empty() {
        assert_eq!(v.records_received, report.poller.records_read);
    } else {
        assert!(v.records_received <= report.poller.records_read);
    }
    assert_eq!(report.poller.shard_failures, report.failures.len() as u64);
    // Each record counted: a verdict, or deferred to the next run (as for the stream verifier).
    assert_eq!(v.records_sampled, v.records_received);
    let verdicts = v.matches
        + v.missing
        + v.mismatches
        + v.deletes_not_applied
        + v.superseded
        + v.unverifiable;
    assert_eq!(verdicts + v.batch_item_failures, v.records_sampled);
    assert_eq!(report.records.len() as u64, verdicts);
    assert_eq!(
        v.lookup_errors,
        injected.failures(BATCH_GET_ITEM),
        "{injected}"
    );
    assert_eq!(v.lookup_calls + v.source_rechecks, lookups);
    assert_eq!(report.poller.get_records_calls, reads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_verifies_every_record_under_stream_lookup_and_checkpoint_faults() {
    const RECORDS: usize = 300;
    let lease = Duration::from_secs(2);
    let s = PollerSetup::new("PollFaults", RECORDS, |_| true).await;
    let proxy = FaultProxy::start(endpoint(), SEED).await;
    proxy.set_rules(vec![
        Rule::new(GET_RECORDS, 0.25, mix(Duration::from_millis(200))),
        Rule::new(BATCH_GET_ITEM, 0.25, mix(Duration::from_millis(100))),
        // Lease takes, checkpoints and releases: a failed one ends that shard's reading in the run.
        Rule::new(
            UPDATE_ITEM,
            0.1,
            vec![
                Fault::ProvisionedThroughputExceeded,
                Fault::Throttling,
                Fault::InternalServerError,
                Fault::Reset,
            ],
        )
        .when_body_contains(&s.checkpoints),
    ]);
    let poller = s.poller(&proxy, lease, 20);

    let last = s.written.last().unwrap().0.clone();
    let mut reported: BTreeMap<String, u32> = BTreeMap::new();
    let (mut runs, mut failed_runs, mut lease_waits, mut deferred) = (0, 0, 0, 0);
    while s.checkpoint().await.as_deref() != Some(last.as_str()) {
        runs += 1;
        assert!(runs <= 40, "not drained after 40 runs");
        let from = s.checkpoint().await;
        let (before, lookups, reads) = (
            proxy.injected(),
            proxy.seen(BATCH_GET_ITEM),
            proxy.seen(GET_RECORDS),
        );
        let report = poller
            .run(&s.pair.stream_arn, Instant::now() + Duration::from_secs(8))
            .await
            .expect("a shard's failure is in the report, not an error of the run");
        check_poll_report(
            &report,
            &proxy.injected().since(&before),
            proxy.seen(BATCH_GET_ITEM) - lookups,
            proxy.seen(GET_RECORDS) - reads,
        );
        deferred += report.verification.batch_item_failures;
        if !report.failures.is_empty() {
            failed_runs += 1;
        }
        println!(
            "run {runs}: read {}, verified {}, deferred {}, lease conflicts {}, failures {:?}",
            report.poller.records_read,
            report.records.len(),
            report.verification.batch_item_failures,
            report.poller.lease_conflicts,
            report
                .failures
                .iter()
                .map(|f| format!(
                    "{}: {}",
                    f.error,
                    std::error::Error::source(&f.error)
                        .map(|e| e.to_string())
                        .unwrap_or_default()
                ))
                .collect::<Vec<_>>()
        );
        for r in &report.records {
            assert_eq!(outcome_name(&r.outcome), "MATCH", "{r:?}");
            *reported
                .entry(r.sequence_number.clone().unwrap())
                .or_default() += 1;
        }
        // Reported records are exactly the ones this run checkpointed past, failed shard or not.
        let to = s.checkpoint().await;
        let moved: Vec<String> = s
            .between(from.as_deref(), to.as_deref())
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        let seqs: Vec<String> = report
            .records
            .iter()
            .map(|r| r.sequence_number.clone().unwrap())
            .collect();
        assert_eq!(seqs, moved, "run {runs}");
        if report.poller.lease_conflicts > 0 {
            // A lease left behind (its release failed too): it expires, then the shard is taken over.
            lease_waits += 1;
            tokio::time::sleep(lease).await;
        }
    }

    // At-least-once shows in the lookups: a page verified by a run whose checkpoint write then
    // failed is verified again by the next run.
    let reverified = s.written.iter().filter(|(_, pk)| s.found(pk) > 1).count();
    let reported_twice = reported.values().filter(|n| **n > 1).count();
    assert_eq!(
        reported_twice, 0,
        "a run read past a checkpointed record again"
    );
    let skipped: Vec<&(String, String)> = s
        .written
        .iter()
        .filter(|(seq, _)| !reported.contains_key(seq))
        .collect();
    let injected = proxy.injected();
    println!(
        "poller under faults: {injected} (GetRecords {}, BatchGetItem {}, checkpoint writes {}); \
         {RECORDS} records, {runs} runs ({failed_runs} failed, {lease_waits} waited for a lease), \
         {deferred} records deferred to the next run after a failed lookup, {reverified} records \
         verified more than once, {} records reported verified (each once), {} records skipped",
        injected.on(GET_RECORDS),
        injected.on(BATCH_GET_ITEM),
        injected.on(UPDATE_ITEM),
        reported.len(),
        skipped.len()
    );
    assert!(skipped.is_empty(), "records never verified: {skipped:?}");
    for (_, pk) in &s.written {
        assert!(s.found(pk) > 0, "{pk} was never looked up successfully");
    }
    assert_eq!(proxy.upstream_failures(), 0, "the proxy itself failed");
    assert!(injected.failures(GET_RECORDS) > 0, "{injected}");
    assert!(injected.failures(UPDATE_ITEM) > 0, "{injected}");
    assert!(failed_runs > 0, "no checkpoint fault failed a shard");
    assert!(deferred > 0, "no lookup fault deferred a record");
}

/// Waits until `done` holds, at most `limit`.
async fn wait_until(limit: Duration, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "still waiting after {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_invocation_loses_nothing_and_its_lease_is_taken_over() {
    const RECORDS: usize = 60;
    let lease = Duration::from_secs(3);
    let s = PollerSetup::new("PollKill", RECORDS, |_| true).await;
    let proxy = FaultProxy::start(endpoint(), SEED).await;
    // Checkpoint writes (not lease takes: those do not set shardEnd) hang.
    proxy.set_rules(vec![Rule::new(
        UPDATE_ITEM,
        1.0,
        vec![Fault::Delay(Duration::from_secs(3600))],
    )
    .when_body_contains("shardEnd")]);

    // Killed once it has verified its page and is writing the checkpoint: the future is dropped,
    // as when Lambda's time runs out or the process dies.
    let dead = s.poller(&proxy, lease, 1000);
    tokio::select! {
        result = dead.run(&s.pair.stream_arn, Instant::now() + Duration::from_secs(30)) => {
            panic!("the run should hang on its checkpoint write: {result:?}")
        }
        _ = wait_until(Duration::from_secs(20), || proxy.injected().get(UPDATE_ITEM, FaultKind::Delay) == 1) => {}
    }
    for (_, pk) in &s.written {
        assert_eq!(s.found(pk), 1, "the dead run verified {pk} once");
    }
    assert_eq!(
        s.checkpoint().await,
        None,
        "the dead run never checkpointed"
    );
    let (owner, until) = s.lease().await.expect("the dead run's lease");
    assert!(until > epoch_ms(), "lease of {owner} still running");
    proxy.clear_rules();

    // The next invocation leaves the shard to its (dead) owner while the lease runs.
    let report = s
        .poller(&proxy, lease, 1000)
        .run(&s.pair.stream_arn, Instant::now() + Duration::from_secs(30))
        .await
        .expect("run");
    assert_eq!(report.poller.shards_discovered, 1);
    assert_eq!(report.poller.lease_conflicts, 1);
    assert_eq!(report.poller.records_read, 0);
    assert!(report.records.is_empty());

    // Once it expires, the next invocation takes the shard over and verifies the same records again.
    tokio::time::sleep(Duration::from_millis(
        until.saturating_sub(epoch_ms()) + 100,
    ))
    .await;
    let report = s
        .poller(&proxy, lease, 1000)
        .run(&s.pair.stream_arn, Instant::now() + Duration::from_secs(30))
        .await
        .expect("run");
    assert_eq!(report.poller.lease_conflicts, 0);
    assert_eq!(report.poller.records_read, RECORDS as u64);
    let verified: Vec<(String, &str)> = report
        .records
        .iter()
        .map(|r| (r.sequence_number.clone().unwrap(), outcome_name(&r.outcome)))
        .collect();
    let expected: Vec<(String, &str)> = s
        .written
        .iter()
        .map(|(seq, _)| (seq.clone(), "MATCH"))
        .collect();
    assert_eq!(
        verified, expected,
        "every record verified again, none skipped"
    );
    for (_, pk) in &s.written {
        assert_eq!(
            s.found(pk),
            2,
            "{pk}: verified by the dead run and by the takeover"
        );
    }
    assert_eq!(
        s.checkpoint().await,
        Some(s.written.last().unwrap().0.clone())
    );
    assert_eq!(s.lease().await, None, "released at the end of the run");
    println!(
        "killed invocation: {RECORDS} records verified by it, 1 lease conflict while its lease ran, \
         {RECORDS} verified again by the invocation that took the shard over, 0 skipped"
    );
}

/// A failed checkpoint write must not take the verdicts of pages already checkpointed with it: those
/// records are never read again, so a MISSING among them would never reach the metrics (and the
/// `Missing > 0` alarm never fire). Each record is counted exactly once over the runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_checkpointed_before_a_failed_checkpoint_write_are_still_counted() {
    const RECORDS: usize = 30;
    // item 3 never reached the other side: one MISSING on the first page.
    let s = PollerSetup::new("PollLost", RECORDS, |i| i != 3).await;
    let proxy = FaultProxy::start(endpoint(), SEED).await;
    // The second page's checkpoint write fails, once.
    proxy.set_rules(vec![
        Rule::server_error_when(UPDATE_ITEM, &s.written[19].0).times(1)
    ]);
    let poller = s.poller(&proxy, Duration::from_secs(2), 10);
    let mut counted = ddb_verify::report::metrics::InvocationMetrics::default();
    let mut shard_failures = 0;
    for _ in 0..3 {
        let report = s.run(&poller).await;
        counted.records_sampled += report.verification.records_sampled;
        counted.missing += report.verification.missing;
        shard_failures += report.poller.shard_failures;
    }
    assert_eq!(shard_failures, 1);
    assert_eq!(proxy.injected().failures(UPDATE_ITEM), 1);
    assert_eq!(s.checkpoint().await, Some(s.written[RECORDS - 1].0.clone()));
    assert_eq!(
        counted.missing, 1,
        "the MISSING verdict never reached the metrics"
    );
    assert_eq!(counted.records_sampled, RECORDS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_does_not_checkpoint_past_a_problem_whose_finding_was_not_written() {
    const RECORDS: usize = 10;
    // Item 4 never reached the other side: one MISSING in the middle of the shard.
    let s = PollerSetup::new("PollFind", RECORDS, |i| i != 4).await;
    let store = findings_store(&s.pair.target).await;
    let proxy = FaultProxy::start(endpoint(), SEED).await;
    let poller = s.recording_poller(&proxy, &store);
    let missing = &s.written[4];
    let key = item(&[("pk", AttributeValue::S(missing.1.clone()))]);
    proxy.set_rules(vec![Rule::server_error_when(UPDATE_ITEM, "finding#")]);
    let report = s.run(&poller).await;
    assert_eq!(report.verification.missing, 0);
    assert!(report.verification.findings_write_failures >= 1);
    assert_eq!(
        s.checkpoint().await,
        Some(s.written[3].0.clone()),
        "checkpointed up to the record before the one whose finding failed"
    );
    assert!(store.get(&s.pair.table, &key).await.unwrap().is_none());

    proxy.clear_rules();
    let report = s.run(&poller).await;
    assert_eq!(report.verification.missing, 1);
    assert_eq!(s.checkpoint().await, Some(s.written[RECORDS - 1].0.clone()));
    let finding = store
        .get(&s.pair.table, &key)
        .await
        .unwrap()
        .expect("recorded by the next run");
    assert_eq!(finding.origin, "poller");
    assert_eq!(finding.sequence_number.as_deref(), Some(missing.0.as_str()));
    // The poller's coverage: the first run handed a record back; the second caught up.
    let coverage = store.coverage(&s.pair.table).await.unwrap();
    assert_eq!(coverage.len(), 1, "{coverage:?}");
    assert!(coverage[0].last_retry_at_ms.is_some());
    assert!(coverage[0].verified_until_ms.is_some());
    assert_eq!(coverage[0].sample_rate, Some(1.0));
    assert_eq!(coverage[0].gaps, vec![], "nothing was trimmed or skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_the_table_refuses_does_not_stall_the_poller_and_leaves_a_gap_in_its_coverage() {
    const RECORDS: usize = 10;
    // Item 4 never reached the other side; the findings table refuses its finding as it is.
    let s = PollerSetup::new("PollRefused", RECORDS, |i| i != 4).await;
    let store = findings_store(&s.pair.target).await;
    let proxy = FaultProxy::start(endpoint(), SEED).await;
    let poller = s.recording_poller(&proxy, &store);
    proxy.set_rules(vec![
        Rule::new(UPDATE_ITEM, 1.0, vec![Fault::Validation]).when_body_contains("finding#")
    ]);
    let report = s.run(&poller).await;
    // Not retried for ever: the verdict stands and the shard is checkpointed to its end.
    assert_eq!(report.verification.missing, 1);
    assert_eq!(report.verification.findings_rejected, 1);
    assert_eq!(report.verification.batch_item_failures, 0);
    assert_eq!(s.checkpoint().await, Some(s.written[RECORDS - 1].0.clone()));
    // Readiness must not miss it: the stream's coverage carries the gap.
    let coverage = store.coverage(&s.pair.table).await.unwrap();
    assert_eq!(coverage.len(), 1, "{coverage:?}");
    let causes: Vec<_> = coverage[0].gaps.iter().map(|g| g.cause).collect();
    assert_eq!(
        causes,
        [ddb_verify::ports::findings::GapCause::ProblemNotRecorded]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_run_whose_coverage_cannot_be_written_is_an_unrecorded_gap_for_the_next() {
    const RECORDS: usize = 5;
    let s = PollerSetup::new("PollCoverFails", RECORDS, |_| true).await;
    let store = findings_store(&s.pair.target).await;
    let proxy = FaultProxy::start(endpoint(), SEED).await;
    let poller = s.recording_poller(&proxy, &store);
    proxy.set_rules(vec![Rule::server_error_when(UPDATE_ITEM, "coverage#")]);
    let report = s.run(&poller).await;
    assert_eq!(report.verification.matches, RECORDS as u64);
    assert!(store.coverage(&s.pair.table).await.unwrap().is_empty());
    // The run's checkpoints are written; its coverage (and any gap in it) is not: the next run
    // writes it down as unrecorded.
    proxy.clear_rules();
    s.run(&poller).await;
    let coverage = store.coverage(&s.pair.table).await.unwrap();
    let causes: Vec<_> = coverage[0].gaps.iter().map(|g| g.cause).collect();
    assert_eq!(
        causes,
        [ddb_verify::ports::findings::GapCause::Unrecorded],
        "{coverage:?}"
    );
}
