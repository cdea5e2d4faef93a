//! The Lambda side of the stream verifier: a [`StreamEvent`] in, [`Expectation`]s to the engine, a
//! `DynamoDbEventResponse` (batch item failures) and EMF metrics out.

use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::lambda::event::StreamEvent;
use crate::ports::findings::NoFindings;
use crate::ports::findings::{CoverageSource, CoverageWrite, FindingsStore};
use crate::ports::table::TableReader;
use crate::record::{Expectation, MalformedRecord};
use crate::report::findings::{stream_coverage, CoverageOf, FindingsWriter, OpenFindings};
use crate::report::metrics::InvocationMetrics;
use crate::report::{emf, log_summary, OutcomeSink, RecordReport};
use crate::shared::error_chain;
use crate::verify::{BatchReport, Outcome, RetryReason, Verifier};

/// What an invocation produced.
#[derive(Debug)]
pub struct Invocation {
    pub response: DynamoDbEventResponse,
    /// In the order of the event's records; empty from [`StreamVerifier::respond`].
    pub records: Vec<RecordReport>,
    pub metrics: InvocationMetrics,
}

/// The stream verifier: the engine plus what Lambda needs around it, and the findings store when
/// there is one.
pub struct StreamVerifier<R, F> {
    verifier: Verifier<R>,
    findings: Option<Findings<F>>,
    /// Reads the source table's TTL attribute (DescribeTimeToLive) on the first batch: the events
    /// name the table, the configuration does not. `None`: `TTL_ATTRIBUTE` or nothing.
    ttl: Option<TtlLookup>,
}

/// The source table's TTL attribute by its name, as `ports::ttl::resolve` tells it.
pub type TtlLookup = Box<dyn Fn(String) -> BoxFuture<'static, Option<String>> + Send + Sync>;

/// Where the stream verifier keeps findings, and the name its coverage goes under (the function's).
struct Findings<F> {
    writer: FindingsWriter<F>,
    name: String,
}

impl<R: TableReader> StreamVerifier<R, NoFindings> {
    pub fn new(verifier: Verifier<R>) -> StreamVerifier<R, NoFindings> {
        StreamVerifier {
            verifier,
            findings: None,
            ttl: None,
        }
    }
}

impl<R: TableReader, F: FindingsStore> StreamVerifier<R, F> {
    /// Records problems and coverage (under `name`, the function's) in `writer`'s store (`None`:
    /// no store, a choice the wiring makes at run time).
    pub fn with_findings<G: FindingsStore>(
        self,
        writer: impl Into<Option<FindingsWriter<G>>>,
        name: impl Into<String>,
    ) -> StreamVerifier<R, G> {
        let name = name.into();
        StreamVerifier {
            verifier: self.verifier,
            findings: writer.into().map(|writer| Findings { writer, name }),
            ttl: self.ttl,
        }
    }

    /// Reads the source table's TTL attribute with `lookup` on the first batch, unless
    /// `TTL_ATTRIBUTE` named it.
    pub fn with_ttl_lookup(mut self, lookup: TtlLookup) -> Self {
        self.ttl = Some(lookup);
        self
    }

    /// Once per process: the TTL attribute of the table the first records come from.
    async fn settle_ttl_attribute(&self, event: &StreamEvent) {
        let Some(lookup) = &self.ttl else { return };
        if self.verifier.knows_ttl_attribute() {
            return;
        }
        if let Some(table) = event.records.iter().find_map(|r| r.source_table.clone()) {
            self.verifier.set_ttl_attribute(lookup(table).await);
        }
    }

    pub fn verifier(&self) -> &Verifier<R> {
        &self.verifier
    }

    /// Verifies an event's records; never fails: what cannot be decided is a batch item failure.
    /// Every record goes to the outcome sink: its finding written first (a problem not recorded is
    /// a batch item failure), then one WARN line per problem verdict and per retry (see
    /// [`RecordReport::log`]); then one INFO summary.
    pub async fn handle(&self, event: &StreamEvent, deadline: Option<Instant>) -> Invocation {
        self.handle_keeping(event, deadline, Keep::Reports).await
    }

    /// [`StreamVerifier::handle`] as the function runs it: the response and the metrics, with a
    /// report built only for the records that are logged (`Invocation::records` stays empty).
    pub async fn respond(&self, event: &StreamEvent, deadline: Option<Instant>) -> Invocation {
        self.handle_keeping(event, deadline, Keep::Counts).await
    }

    async fn handle_keeping(
        &self,
        event: &StreamEvent,
        deadline: Option<Instant>,
        keep: Keep,
    ) -> Invocation {
        self.settle_ttl_attribute(event).await;
        let mut findings_metrics = InvocationMetrics::default();
        let (report, unreadable) = match &self.findings {
            None => (
                self.verifier.verify(&event.records, deadline).await,
                Vec::new(),
            ),
            // Boxed: one allocation per batch keeps the handler's future type shallow.
            Some(findings) => {
                Box::pin(findings.verify(&self.verifier, event, deadline, &mut findings_metrics))
                    .await
            }
        };
        let mut invocation = assemble(event, &report, &unreadable, keep);
        invocation.metrics.findings_recorded += findings_metrics.findings_recorded;
        invocation.metrics.findings_resolved += findings_metrics.findings_resolved;
        invocation.metrics.findings_write_failures += findings_metrics.findings_write_failures;
        invocation.metrics.findings_rejected += findings_metrics.findings_rejected;
        log_summary("batch verified", &invocation.metrics, None);
        invocation
    }

    /// Handles an event and prints its metrics as EMF lines on stdout (what the Lambda binary does).
    pub async fn handle_and_emit(
        &self,
        event: &StreamEvent,
        deadline: Option<Instant>,
    ) -> DynamoDbEventResponse {
        let invocation = self.respond(event, deadline).await;
        emf::emit(self.verifier.config(), &invocation.metrics.metrics());
        invocation.response
    }
}

impl<F: FindingsStore> Findings<F> {
    /// Verifies the batch, reading which keys have an open finding beside the engine's lookups,
    /// then records its findings (the unreadable records' too) and coverage. Also returns, by
    /// malformed record, why it must be delivered again (its finding not written).
    async fn verify<R: TableReader>(
        &self,
        verifier: &Verifier<R>,
        event: &StreamEvent,
        deadline: Option<Instant>,
        metrics: &mut InvocationMetrics,
    ) -> (BatchReport, Vec<Option<String>>) {
        let records = &event.records;
        let (mut report, open) = tokio::join!(
            verifier.verify(records, deadline),
            self.writer.open_findings(records)
        );
        let unreadable = self
            .writer
            .write_unreadable(&event.malformed, metrics)
            .await;
        let batch = Batch {
            records,
            open,
            sample_rate: verifier.config().sample_rate,
            unreadable_handed_back: unreadable.iter().any(Option::is_some),
        };
        self.record(batch, &mut report, metrics).await;
        (report, unreadable)
    }

    /// The batch's findings and the function's coverage. When a record goes back to Lambda and
    /// the coverage cannot say so, the whole batch goes back: readiness must not miss a retry.
    async fn record(
        &self,
        batch: Batch<'_>,
        report: &mut BatchReport,
        metrics: &mut InvocationMetrics,
    ) {
        let Batch {
            records,
            open,
            sample_rate,
            unreadable_handed_back,
        } = batch;
        self.writer
            .write_stream(records, report, open, metrics)
            .await;
        // One coverage entry per stream read (an event holds one stream's records).
        let mut streams: Vec<(&str, Option<&str>)> = Vec::new();
        for r in records {
            if let Some(table) = r.source_table.as_deref() {
                if !streams.contains(&(table, r.stream_arn())) {
                    streams.push((table, r.stream_arn()));
                }
            }
        }
        for (table, stream_arn) in streams {
            let of = CoverageOf {
                table,
                source: CoverageSource::Stream,
                name: &self.name,
                stream_arn,
                sample_rate,
                problems_refused: metrics.findings_rejected,
            };
            let mine: Vec<usize> = (0..records.len())
                .filter(|&i| {
                    records[i].source_table.as_deref() == Some(table)
                        && records[i].stream_arn() == stream_arn
                })
                .collect();
            let mut coverage = if mine.len() == records.len() {
                stream_coverage(of, records, &report.outcomes)
            } else {
                let (some, outcomes): (Vec<Expectation>, Vec<Outcome>) = mine
                    .iter()
                    .map(|&i| (records[i].clone(), report.outcomes[i].clone()))
                    .unzip();
                stream_coverage(of, &some, &outcomes)
            };
            if unreadable_handed_back {
                coverage.retry_at_ms = Some(coverage.now_ms);
                coverage.verified_until_ms = None;
            }
            self.cover(coverage, report, metrics).await;
        }
    }

    /// Writes one stream's coverage. When a record goes back to Lambda, or the batch left a gap,
    /// and the coverage cannot say so, the whole batch goes back: readiness must miss neither a
    /// retry nor a gap (a gap is written again when the batch is).
    async fn cover(
        &self,
        coverage: CoverageWrite<'_>,
        report: &mut BatchReport,
        metrics: &mut InvocationMetrics,
    ) {
        let retried = coverage.retry_at_ms.is_some() || !coverage.gaps.is_empty();
        if let Err(e) = self.writer.cover(coverage).await {
            metrics.findings_write_failures += 1;
            let message = error_chain(&e);
            tracing::warn!(error = %message, "coverage not recorded");
            if retried {
                for outcome in report.outcomes.iter_mut() {
                    if !matches!(outcome, Outcome::NotSampled) {
                        *outcome = Outcome::Retry(RetryReason::FindingNotRecorded {
                            message: message.clone(),
                        });
                    }
                }
            }
        }
    }
}

/// A verified batch, as its findings and coverage are recorded.
struct Batch<'a> {
    records: &'a [Expectation],
    open: OpenFindings,
    sample_rate: f64,
    /// An unreadable record goes back to Lambda (its finding was not written).
    unreadable_handed_back: bool,
}

/// Which records' reports an invocation keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Every record's (tests, the demo's table).
    Reports,
    /// None: they are built for the log lines only (the function).
    Counts,
}

/// A record's place in the event, and how to report it.
enum Line<'a> {
    Engine(usize, &'a Expectation),
    /// With why it goes back, when its finding was not written.
    Malformed(&'a MalformedRecord, Option<String>),
}

/// The engine's outcomes and the malformed records, in event order, through the outcome sink. A
/// malformed record whose finding was not written (`unreadable`, by malformed record) goes back.
fn assemble(
    event: &StreamEvent,
    report: &BatchReport,
    unreadable: &[Option<String>],
    keep: Keep,
) -> Invocation {
    let (records, malformed) = (&event.records, &event.malformed);
    let mut lines: Vec<(usize, Line<'_>)> = Vec::with_capacity(records.len() + malformed.len());
    let mut failures = Vec::new();
    // Engine records come back in event order, with the malformed ones' positions left out.
    let mut is_malformed = vec![false; records.len() + malformed.len()];
    for m in malformed {
        is_malformed[m.position] = true;
    }
    let mut positions = (0..is_malformed.len()).filter(|p| !is_malformed[*p]);
    for (index, (record, outcome)) in records.iter().zip(&report.outcomes).enumerate() {
        let position = positions.next().unwrap_or_default();
        if matches!(outcome, Outcome::Retry(_)) {
            // Both types are non-exhaustive: build from Default, then set the field.
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = record.sequence_number().map(str::to_string);
            failures.push(failure);
        }
        lines.push((position, Line::Engine(index, record)));
    }
    for (i, m) in malformed.iter().enumerate() {
        let retry = unreadable.get(i).cloned().flatten();
        if retry.is_some() {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = m.sequence_number.clone();
            failures.push(failure);
        }
        lines.push((m.position, Line::Malformed(m, retry)));
    }
    lines.sort_by_key(|(p, _)| *p);
    let mut metrics = InvocationMetrics {
        records_received: lines.len() as u64,
        ..InvocationMetrics::default()
    };
    metrics.add_calls(report);
    let mut kept = Vec::new();
    let mut sink = match keep {
        Keep::Reports => {
            kept.reserve(lines.len());
            OutcomeSink::new(&mut metrics, &mut kept)
        }
        Keep::Counts => OutcomeSink::counting(&mut metrics),
    };
    for (_, line) in lines {
        match line {
            Line::Engine(index, record) => {
                sink.accept_with(report.outcomes[index].clone(), |outcome| {
                    let mut line = RecordReport::of(record, outcome);
                    line.evidence = report.evidence.get(&index).cloned();
                    line
                });
            }
            Line::Malformed(m, None) => sink.accept(RecordReport::malformed(m)),
            Line::Malformed(m, Some(message)) => {
                let mut line = RecordReport::malformed(m);
                line.outcome = Outcome::Retry(RetryReason::FindingNotRecorded { message });
                sink.accept(line);
            }
        }
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures;
    Invocation {
        response,
        records: kept,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, TableRef};
    use crate::record::Item;
    use crate::testkit::{Fault, InMemoryTables};
    use crate::verify::timing::deadline_instant;
    use crate::verify::{Supersession, Verdict};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    struct Setup {
        target: Arc<InMemoryTables>,
        source: Arc<InMemoryTables>,
        handler: StreamVerifier<Arc<InMemoryTables>, NoFindings>,
    }

    fn setup(target_table: &str) -> Setup {
        let config = Config::new(TableRef::parse(target_table).unwrap());
        let target = Arc::new(InMemoryTables::new());
        let source = Arc::new(InMemoryTables::new());
        let handler = StreamVerifier::new(Verifier::new(
            config,
            Arc::clone(&target),
            Arc::clone(&source),
        ));
        Setup {
            target,
            source,
            handler,
        }
    }

    fn event(json: &str) -> StreamEvent {
        serde_json::from_str(json).expect("sample event parses")
    }

    /// The images of an event's records, as SDK items, in order (`None` for records without one).
    fn images(json: &str) -> Vec<Option<Item>> {
        event(json)
            .records
            .into_iter()
            .map(|r| r.image().map(|i| i.item().into_owned()))
            .collect()
    }

    fn names(inv: &Invocation) -> Vec<String> {
        inv.records
            .iter()
            .map(|r| match &r.outcome {
                Outcome::Verdict(v) => v.name().to_string(),
                Outcome::Retry(_) => "RETRY".to_string(),
                Outcome::NotSampled => "NOT_SAMPLED".to_string(),
            })
            .collect()
    }

    const ORDER_KEYS: &[&str] = &["customerId", "orderId"];
    const INSERT: &str = include_str!("../../events/insert.json");
    const MODIFY: &str = include_str!("../../events/modify.json");
    const REMOVE: &str = include_str!("../../events/remove.json");
    const TTL_DELETE: &str = include_str!("../../events/ttl-delete.json");
    const MIXED_KEYS: &str = include_str!("../../events/mixed-keys.json");
    const SAME_KEY: &str = include_str!("../../events/same-key-batch.json");
    const KEYS_ONLY: &str = include_str!("../../events/keys-only.json");
    const MALFORMED: &str = include_str!("../../events/malformed.json");

    #[tokio::test(start_paused = true)]
    async fn insert_matches_when_replicated_and_is_missing_when_not() {
        let image = images(INSERT)[0].clone().unwrap();
        let s = setup("Orders");
        s.target.put("Orders", ORDER_KEYS, image.clone());
        let inv = s.handler.handle(&event(INSERT), None).await;
        assert_eq!(names(&inv), ["MATCH"]);
        assert_eq!(
            inv.records[0].key.as_deref(),
            Some("customerId=\"customer#1001\" orderId=1")
        );
        assert_eq!(inv.metrics.matches, 1);
        assert_eq!(inv.metrics.replication_lag_ms.len(), 1);

        let s = setup("Orders");
        s.source.put("Orders", ORDER_KEYS, image);
        let inv = s.handler.handle(&event(INSERT), None).await;
        assert_eq!(names(&inv), ["MISSING"]);
        assert!(inv.response.batch_item_failures.is_empty());
        assert_eq!(inv.metrics.missing, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn modify_not_applied_is_a_mismatch_naming_the_attribute() {
        let new = images(MODIFY)[0].clone().unwrap();
        let mut stale = new.clone();
        stale.insert(
            "status".into(),
            aws_sdk_dynamodb::types::AttributeValue::S("PLACED".into()),
        );
        let s = setup("Orders");
        s.target.put("Orders", ORDER_KEYS, stale);
        s.source.put("Orders", ORDER_KEYS, new);
        let inv = s.handler.handle(&event(MODIFY), None).await;
        let Outcome::Verdict(Verdict::Mismatch { diff, .. }) = &inv.records[0].outcome else {
            panic!("{:?}", inv.records)
        };
        assert_eq!(diff.different, vec!["status"]);
        assert!(diff.only_in_source.is_empty() && diff.only_in_target.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn removes_and_ttl_deletes() {
        let ev = event(REMOVE);
        let mut still_there = ev.records[0].keys.clone();
        still_there.insert(
            "status".into(),
            aws_sdk_dynamodb::types::AttributeValue::S("CANCELLED".into()),
        );
        let s = setup("Orders");
        s.target.put("Orders", ORDER_KEYS, still_there);
        let inv = s.handler.handle(&ev, None).await;
        assert_eq!(names(&inv), ["DELETE_NOT_APPLIED"]);
        assert_eq!(inv.metrics.deletes_not_applied, 1);

        let s = setup("Orders");
        let inv = s.handler.handle(&event(TTL_DELETE), None).await;
        assert_eq!(names(&inv), ["MATCH"]);
        assert!(inv.records[0].ttl_delete);
        assert!(!s.handler.handle(&ev, None).await.records[0].ttl_delete);
    }

    #[tokio::test(start_paused = true)]
    async fn binary_and_number_keys_match_across_notations() {
        let s = setup("Devices");
        let imgs = images(MIXED_KEYS);
        for image in imgs.iter().take(3) {
            let mut image = image.clone().unwrap();
            // DynamoDB stores numbers normalised: the other side answers "150", not "1.5E2".
            if let Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) = image.get("value") {
                if n == "1.5E2" {
                    image.insert(
                        "value".into(),
                        aws_sdk_dynamodb::types::AttributeValue::N("150".into()),
                    );
                }
            }
            s.target.put("Devices", &["deviceId", "readingAt"], image);
        }
        let inv = s.handler.handle(&event(MIXED_KEYS), None).await;
        assert_eq!(names(&inv), ["MATCH", "MATCH", "MATCH", "MATCH"]);
        assert_eq!(
            inv.records[2].key.as_deref(),
            Some("deviceId=b64:/wD/AA== readingAt=1.79357772E9")
        );
        assert_eq!(inv.metrics.lookup_calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn several_records_for_one_key_check_only_the_latest() {
        let imgs = images(SAME_KEY);
        let s = setup("Orders");
        s.target.put("Orders", ORDER_KEYS, imgs[3].clone().unwrap());
        s.target.put("Orders", ORDER_KEYS, imgs[2].clone().unwrap());
        let inv = s.handler.handle(&event(SAME_KEY), None).await;
        assert_eq!(names(&inv), ["SUPERSEDED", "SUPERSEDED", "MATCH", "MATCH"]);
        assert_eq!(
            inv.records[0].outcome,
            Outcome::Verdict(Verdict::Superseded {
                by: Supersession::LaterRecord {
                    sequence_number: "300000000000000000004".into()
                }
            })
        );
        assert_eq!(inv.metrics.superseded, 2);
        assert_eq!(s.target.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_only_records_are_compared_with_the_source_item() {
        let image = images(INSERT)[0].clone().unwrap();
        let s = setup("Orders");
        s.target.put("Orders", ORDER_KEYS, image.clone());
        s.source.put("Orders", ORDER_KEYS, image);
        let inv = s.handler.handle(&event(KEYS_ONLY), None).await;
        assert_eq!(names(&inv), ["MATCH", "MATCH"]);
        assert_eq!(inv.metrics.source_rechecks, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn malformed_records_get_unverifiable_with_a_reason_and_the_rest_is_verified() {
        let s = setup("Orders");
        let good = images(INSERT)[0].clone().unwrap();
        s.target.put("Orders", ORDER_KEYS, good);
        let inv = s.handler.handle(&event(MALFORMED), None).await;
        assert_eq!(
            names(&inv),
            [
                "UNVERIFIABLE",
                "UNVERIFIABLE",
                "UNVERIFIABLE",
                "UNVERIFIABLE",
                "MATCH"
            ]
        );
        let reasons: Vec<String> = inv.records[..4]
            .iter()
            .map(|r| match &r.outcome {
                Outcome::Verdict(Verdict::Unverifiable { reason }) => reason.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(reasons[0].contains("no dynamodb.Keys"), "{}", reasons[0]);
        assert!(reasons[1].contains("does not parse"), "{}", reasons[1]);
        assert!(
            reasons[2].contains("INSERT on a NEW_IMAGE stream has no dynamodb.NewImage"),
            "{}",
            reasons[2]
        );
        assert!(reasons[3].contains("UPSERT"), "{}", reasons[3]);
        // The salvaged identifiers name the records in the report.
        assert_eq!(
            inv.records[1].event_id.as_deref(),
            Some("0badbad0000000000000000000000002")
        );
        assert_eq!(
            inv.records[1].sequence_number.as_deref(),
            Some("400000000000000000002")
        );
        assert!(inv.response.batch_item_failures.is_empty());
        assert_eq!(inv.metrics.unverifiable, 4);
        assert_eq!(inv.metrics.records_received, 5);
        assert_eq!(inv.metrics.records_sampled, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_lookups_become_batch_item_failures_in_lambda_json() {
        let s = setup("Orders");
        s.target.plan_faults([Fault::Fail { transient: true }]);
        let inv = s.handler.handle(&event(SAME_KEY), None).await;
        assert_eq!(names(&inv), ["SUPERSEDED", "SUPERSEDED", "RETRY", "RETRY"]);
        let json = serde_json::to_value(&inv.response).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batchItemFailures": [
                {"itemIdentifier": "300000000000000000003"},
                {"itemIdentifier": "300000000000000000004"}
            ]})
        );
        assert_eq!(inv.metrics.batch_item_failures, 2);
        assert_eq!(inv.metrics.lookup_errors, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_functions_path_answers_and_counts_as_the_full_reports_do_but_keeps_none() {
        // Verdicts of every kind the sink treats differently: matches (not logged), problems and
        // malformed records (logged), retries (logged, and batch item failures).
        for (json, fault) in [(MALFORMED, false), (SAME_KEY, true), (MIXED_KEYS, false)] {
            let full = setup("Orders");
            let lean = setup("Orders");
            for s in [&full, &lean] {
                s.target
                    .put("Orders", ORDER_KEYS, images(INSERT)[0].clone().unwrap());
                if fault {
                    s.target.plan_faults([Fault::Fail { transient: true }]);
                }
            }
            let reports = full.handler.handle(&event(json), None).await;
            let counts = lean.handler.respond(&event(json), None).await;
            assert!(!reports.records.is_empty());
            assert!(counts.records.is_empty());
            let mut expected = reports.metrics.clone();
            let mut got = counts.metrics.clone();
            // Lags are measured against the clock; only their number is compared.
            assert_eq!(
                expected.replication_lag_ms.len(),
                got.replication_lag_ms.len()
            );
            expected.replication_lag_ms.clear();
            got.replication_lag_ms.clear();
            assert_eq!(got, expected, "{json}");
            assert_eq!(
                serde_json::to_value(&counts.response).unwrap(),
                serde_json::to_value(&reports.response).unwrap()
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_as_lambda_and_cargo_lambda_send_them() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let left = deadline_instant(now_ms + 5_000) - Instant::now();
        assert!(
            left > Duration::from_millis(4_900) && left <= Duration::from_millis(5_000),
            "{left:?}"
        );
        assert_eq!(
            deadline_instant(600_000) - Instant::now(),
            Duration::from_secs(600)
        );
        assert_eq!(deadline_instant(now_ms - 1_000), Instant::now());
    }

    #[test]
    fn an_event_without_records_is_an_error_naming_the_field() {
        let err = serde_json::from_str::<StreamEvent>(r#"{"records": []}"#).unwrap_err();
        assert!(err.to_string().contains("Records"), "{err}");
        let empty = event(r#"{"Records": []}"#);
        assert!(empty.is_empty());
    }
}
