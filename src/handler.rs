//! The Lambda side of the stream verifier: a DynamoDB stream event in, [`ChangeRecord`]s to the
//! engine, a `DynamoDbEventResponse` (batch item failures) and EMF metrics out.
//!
//! Records are parsed one by one from the raw event, so one malformed record gets an UNVERIFIABLE
//! verdict (with the reason) instead of failing the whole batch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::dynamodb::EventRecord;
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::engine::{BatchReport, Outcome, Verdict, Verifier};
use crate::metrics::InvocationMetrics;
use crate::reader::TableReader;
use crate::record::{describe_key, ChangeRecord, MalformedRecord};

/// A DynamoDB stream event as Lambda delivers it, records still unparsed.
#[derive(Debug, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records")]
    pub records: Vec<Box<RawValue>>,
}

/// One record's result, for logs, the demo's table and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordReport {
    pub event_id: Option<String>,
    pub sequence_number: Option<String>,
    pub event_name: Option<&'static str>,
    /// The key as `name=value` pairs (see [`describe_key`]).
    pub key: Option<String>,
    pub ttl_delete: bool,
    pub outcome: Outcome,
}

/// What an invocation produced.
#[derive(Debug)]
pub struct Invocation {
    pub response: DynamoDbEventResponse,
    /// In the order of the event's records.
    pub records: Vec<RecordReport>,
    pub metrics: InvocationMetrics,
}

/// Splits an event into engine records and malformed ones (with their reasons).
pub fn parse_records(event: &StreamEvent) -> (Vec<ChangeRecord>, Vec<MalformedRecord>) {
    let mut records = Vec::with_capacity(event.records.len());
    let mut malformed = Vec::new();
    for (position, raw) in event.records.iter().enumerate() {
        let parsed = serde_json::from_str::<EventRecord>(raw.get())
            .map_err(|e| format!("record does not parse as a DynamoDB stream record: {e}"))
            .and_then(ChangeRecord::from_lambda);
        match parsed {
            Ok(record) => records.push(record),
            Err(reason) => {
                // Salvage what identifies the record, for the log line.
                let loose: serde_json::Value = serde_json::from_str(raw.get()).unwrap_or_default();
                let text = |v: &serde_json::Value| v.as_str().map(String::from);
                malformed.push(MalformedRecord {
                    position,
                    event_id: text(&loose["eventID"]),
                    sequence_number: text(&loose["dynamodb"]["SequenceNumber"]),
                    reason,
                });
            }
        }
    }
    (records, malformed)
}

/// The time left before a Lambda deadline (milliseconds since the epoch), as a tokio instant.
pub fn deadline_instant(deadline_epoch_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    Instant::now() + Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}

/// The stream verifier: the engine plus what Lambda needs around it.
pub struct StreamVerifier<R> {
    verifier: Verifier<R>,
}

impl<R: TableReader> StreamVerifier<R> {
    pub fn new(verifier: Verifier<R>) -> StreamVerifier<R> {
        StreamVerifier { verifier }
    }

    pub fn verifier(&self) -> &Verifier<R> {
        &self.verifier
    }

    /// Verifies an event's records; never fails: what cannot be decided is a batch item failure.
    pub async fn handle(&self, event: &StreamEvent, deadline: Option<Instant>) -> Invocation {
        let (records, malformed) = parse_records(event);
        let report = self.verifier.verify(&records, deadline).await;
        let invocation = self.assemble(&records, &malformed, &report);
        self.log(&records, &malformed, &report, &invocation);
        invocation
    }

    /// Handles an event and prints its metrics as EMF lines on stdout (what the Lambda binary does).
    pub async fn handle_and_emit(&self, event: &StreamEvent, deadline: Option<Instant>) -> DynamoDbEventResponse {
        let invocation = self.handle(event, deadline).await;
        let config = self.verifier.config();
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        for doc in invocation
            .metrics
            .emf_documents(&config.metrics_namespace, &config.target_table.name, timestamp_ms)
        {
            println!("{doc}");
        }
        invocation.response
    }

    fn assemble(&self, records: &[ChangeRecord], malformed: &[MalformedRecord], report: &BatchReport) -> Invocation {
        let mut reports: Vec<(usize, RecordReport)> = Vec::with_capacity(records.len() + malformed.len());
        let mut failures = Vec::new();
        // Engine records come back in event order, with the malformed ones' positions left out.
        let mut is_malformed = vec![false; records.len() + malformed.len()];
        for m in malformed {
            is_malformed[m.position] = true;
        }
        let mut positions = (0..is_malformed.len()).filter(|p| !is_malformed[*p]);
        for (record, outcome) in records.iter().zip(&report.outcomes) {
            let position = positions.next().unwrap_or_default();
            if matches!(outcome, Outcome::Retry(_)) {
                // Both types are non-exhaustive: build from Default, then set the field.
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(record.sequence_number.clone());
                failures.push(failure);
            }
            reports.push((
                position,
                RecordReport {
                    event_id: Some(record.event_id.clone()),
                    sequence_number: Some(record.sequence_number.clone()),
                    event_name: Some(record.kind.as_str()),
                    key: Some(describe_key(&record.keys)),
                    ttl_delete: record.ttl_delete,
                    outcome: outcome.clone(),
                },
            ));
        }
        for m in malformed {
            reports.push((
                m.position,
                RecordReport {
                    event_id: m.event_id.clone(),
                    sequence_number: m.sequence_number.clone(),
                    event_name: None,
                    key: None,
                    ttl_delete: false,
                    outcome: Outcome::Verdict(Verdict::Unverifiable {
                        reason: m.reason.clone(),
                    }),
                },
            ));
        }
        reports.sort_by_key(|(p, _)| *p);
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = failures;
        Invocation {
            response,
            records: reports.into_iter().map(|(_, r)| r).collect(),
            metrics: InvocationMetrics::from_report(report, malformed.len()),
        }
    }

    /// One WARN line per problem verdict and per retry; one INFO summary. Keys, attribute names and
    /// verdicts only: item values only with `LOG_ITEM_VALUES=true`.
    fn log(&self, records: &[ChangeRecord], malformed: &[MalformedRecord], report: &BatchReport, invocation: &Invocation) {
        let log_values = self.verifier.config().log_item_values;
        for m in malformed {
            tracing::warn!(
                position = m.position,
                event_id = m.event_id.as_deref().unwrap_or("-"),
                sequence_number = m.sequence_number.as_deref().unwrap_or("-"),
                verdict = "UNVERIFIABLE",
                reason = %m.reason,
                "malformed record"
            );
        }
        for (i, (record, outcome)) in records.iter().zip(&report.outcomes).enumerate() {
            let key = describe_key(&record.keys);
            match outcome {
                Outcome::Verdict(verdict) if verdict.is_problem() => {
                    let (attributes, detail) = match verdict {
                        Verdict::Mismatch { diff } => (diff.attribute_names().join(","), diff.to_string()),
                        Verdict::Unverifiable { reason } => (String::new(), reason.clone()),
                        _ => (String::new(), String::new()),
                    };
                    let evidence = report
                        .evidence
                        .get(&i)
                        .filter(|_| log_values)
                        .map(|e| format!("expected={:?} found={:?}", e.expected, e.found));
                    tracing::warn!(
                        key = %key,
                        event_id = %record.event_id,
                        sequence_number = %record.sequence_number,
                        event_name = record.kind.as_str(),
                        ttl_delete = record.ttl_delete,
                        verdict = verdict.name(),
                        attributes = %attributes,
                        detail = %detail,
                        values = evidence.as_deref(),
                        "replication problem"
                    );
                }
                Outcome::Retry(reason) => tracing::warn!(
                    key = %key,
                    event_id = %record.event_id,
                    sequence_number = %record.sequence_number,
                    reason = %reason,
                    "not verified in this invocation; returned as a batch item failure"
                ),
                _ => {}
            }
        }
        let m = &invocation.metrics;
        tracing::info!(
            received = m.records_received,
            sampled = m.records_sampled,
            matched = m.matches,
            missing = m.missing,
            mismatched = m.mismatches,
            delete_not_applied = m.deletes_not_applied,
            superseded = m.superseded,
            unverifiable = m.unverifiable,
            batch_item_failures = m.batch_item_failures,
            lookup_calls = m.lookup_calls,
            duration_ms = m.verify_duration_ms as u64,
            "batch verified"
        );
    }
}
