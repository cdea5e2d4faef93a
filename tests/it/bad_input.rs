//! Hostile and odd input through the handler, against DynamoDB Local: every record ends with a
//! verdict (UNVERIFIABLE with the reason when it cannot be read) or a batch item failure; nothing
//! panics, nothing is dropped.

use std::time::Duration;

use crate::common::*;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType as T};
use ddb_verify::config::{Config, LagWindowFrom};
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::lambda::handler::Invocation;
use ddb_verify::verify::{Outcome, Verdict};
use serde_json::{json, Value};

const ARN: &str =
    "arn:aws:dynamodb:us-east-1:000000000000:table/Bad/stream/2026-01-01T00:00:00.000";

/// Verdicts at once (no replication wait), no source re-check: the records here have no source.
fn immediate(c: &mut Config) {
    c.max_replication_lag = Duration::ZERO;
    c.lag_window_from = LagWindowFrom::Arrival;
    c.recheck_source = false;
}

fn record(seq: u64, name: &str, dynamodb: Value) -> Value {
    json!({
        "eventID": format!("ev{seq}"),
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": ARN
    })
}

fn insert(seq: u64, keys: Value, image: Value) -> Value {
    record(
        seq,
        "INSERT",
        json!({"Keys": keys, "NewImage": image, "SequenceNumber": seq.to_string(),
               "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"}),
    )
}

/// The event read as the function reads it (from its bytes): the same as the serde reader's.
fn event(records: Vec<Value>) -> StreamEvent {
    let text = json!({ "Records": records }).to_string();
    let event = StreamEvent::from_slice(text.as_bytes()).expect("the event parses");
    assert_eq!(event, serde_json::from_str(&text).unwrap());
    event
}

fn reason(inv: &Invocation, i: usize) -> String {
    match &inv.records[i].outcome {
        Outcome::Verdict(Verdict::Unverifiable { reason }) => reason.clone(),
        other => panic!("record {i}: {other:?}"),
    }
}

fn verdict(inv: &Invocation, i: usize) -> &'static str {
    match &inv.records[i].outcome {
        Outcome::Verdict(v) => v.name(),
        other => panic!("record {i}: {other:?}"),
    }
}

async fn target_table(prefix: &str, key: T) -> (Account, String) {
    let target = account(TARGET_ACCOUNT);
    let table = unique(prefix);
    create_table(&target, &table, &[("pk", key)], None).await;
    (target, table)
}

#[tokio::test]
async fn hostile_records_are_unverifiable_with_their_reason_and_the_rest_is_verified() {
    let (target, table) = target_table("Hostile", T::S).await;
    put(&target, &table, &item(&[("pk", s("good")), ("v", n("1"))])).await;
    let mut deep = json!({"S": "bottom"});
    for _ in 0..300 {
        deep = json!({"M": {"d": deep}});
    }
    let key = json!({"pk": {"S": "x"}});
    let cases: Vec<(Value, &str)> = vec![
        (json!(42), "does not parse"),
        (json!("a string"), "does not parse"),
        (
            record(
                3,
                "INSERT",
                json!({"NewImage": key, "SequenceNumber": "3", "StreamViewType": "NEW_IMAGE"}),
            ),
            "record has no dynamodb.Keys",
        ),
        (
            record(
                4,
                "INSERT",
                json!({"Keys": key, "SequenceNumber": "4", "StreamViewType": "NEW_IMAGE"}),
            ),
            "INSERT on a NEW_IMAGE stream has no dynamodb.NewImage",
        ),
        (
            insert(
                5,
                key.clone(),
                json!({"pk": {"S": "x"}, "when": {"DATE": "2026-01-01"}}),
            ),
            "attribute \"when\": unknown attribute type \"DATE\"",
        ),
        (
            insert(6, json!({"pk": {"M": {}}}), json!({"pk": {"M": {}}})),
            "key attribute \"pk\" has type M",
        ),
        (
            insert(7, json!({"pk": {"B": "%%%"}}), json!({"pk": {"B": "%%%"}})),
            "not base64",
        ),
        (
            insert(8, key.clone(), json!({"pk": {"S": "x"}, "deep": deep})),
            "nested more than 32 levels deep",
        ),
        (
            record(9, "UPSERT", json!({"Keys": key, "SequenceNumber": "9"})),
            "eventName \"UPSERT\"",
        ),
        (
            record(10, "INSERT", json!({"Keys": key, "NewImage": key})),
            "no dynamodb.SequenceNumber",
        ),
        (
            insert(
                11,
                key.clone(),
                json!({"pk": {"S": "x"}, "two": {"S": "a", "N": "1"}}),
            ),
            "more than one type",
        ),
        (
            insert(12, key.clone(), json!({"pk": {"S": "x"}, "n": {"N": 5}})),
            "attribute \"n\"",
        ),
    ];
    let count = cases.len();
    let mut records: Vec<Value> = cases.iter().map(|(r, _)| r.clone()).collect();
    records.push(insert(
        100,
        json!({"pk": {"S": "good"}}),
        json!({"pk": {"S": "good"}, "v": {"N": "1"}}),
    ));
    let handler = verifier(&table, &account(SOURCE_ACCOUNT), &target, immediate);
    let inv = handler.handle(&event(records), None).await;

    assert_eq!(inv.records.len(), count + 1, "one report per record");
    for (i, (_, expected)) in cases.iter().enumerate() {
        let why = reason(&inv, i);
        assert!(
            why.contains(expected),
            "record {i}: {why:?} should contain {expected:?}"
        );
    }
    assert_eq!(verdict(&inv, count), "MATCH");
    assert!(inv.response.batch_item_failures.is_empty());
    assert_eq!(inv.metrics.unverifiable as usize, count);
    assert_eq!(inv.metrics.matches, 1);
    assert_eq!(inv.metrics.records_received as usize, count + 1);
    // The salvaged identifiers of a record that did not parse name it in the report.
    assert_eq!(inv.records[4].event_id.as_deref(), Some("ev5"));
    assert_eq!(inv.records[4].sequence_number.as_deref(), Some("5"));
}

#[test]
fn a_malformed_event_is_an_error_naming_what_is_wrong() {
    for (text, expected) in [
        ("{", "EOF"),
        ("[]", "a DynamoDB stream event"),
        ("{}", "missing field `Records`"),
        (r#"{"records": []}"#, "missing field `Records`"),
        (r#"{"Records": 5}"#, "a list of stream records"),
        (r#"{"Records": [{"eventID": "a"}"#, "EOF"),
    ] {
        let err = StreamEvent::from_slice(text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(expected),
            "{text:?}: {err:?} should contain {expected:?}"
        );
    }
}

#[tokio::test]
async fn an_empty_batch_is_answered_at_once_with_zero_metrics() {
    let (target, table) = target_table("Empty", T::S).await;
    let handler = verifier(&table, &account(SOURCE_ACCOUNT), &target, immediate);
    let inv = handler.handle(&event(vec![]), None).await;
    assert!(inv.records.is_empty());
    assert!(inv.response.batch_item_failures.is_empty());
    assert_eq!(inv.metrics.records_received, 0);
    assert_eq!(inv.metrics.lookup_calls, 0);
    let docs = inv.metrics.emf_documents("Ns", &table, 0);
    let text = serde_json::to_string(&docs).unwrap();
    assert!(text.contains("\"RecordsReceived\":0"), "{text}");
}

#[tokio::test]
async fn a_10000_record_batch_gives_every_record_an_outcome_in_100_lookups() {
    const RECORDS: usize = 10_000;
    let (target, table) = target_table("Large", T::S).await;
    // Every other item reached the other side.
    let present: Vec<_> = (0..RECORDS)
        .step_by(2)
        .map(|i| item(&[("pk", s(&format!("k{i}"))), ("v", n(&i.to_string()))]))
        .collect();
    write_items(&target, &table, &present).await;
    let records = (0..RECORDS)
        .map(|i| {
            insert(
                i as u64 + 1,
                json!({"pk": {"S": format!("k{i}")}}),
                json!({"pk": {"S": format!("k{i}")}, "v": {"N": i.to_string()}}),
            )
        })
        .collect();
    let handler = verifier(&table, &account(SOURCE_ACCOUNT), &target, immediate);
    let inv = handler.handle(&event(records), None).await;
    assert_eq!(inv.records.len(), RECORDS);
    for (i, r) in inv.records.iter().enumerate() {
        assert_eq!(r.event_id.as_deref(), Some(format!("ev{}", i + 1).as_str()));
        let expected = if i % 2 == 0 { "MATCH" } else { "MISSING" };
        assert_eq!(verdict(&inv, i), expected, "record {i}");
    }
    assert_eq!(inv.metrics.matches as usize, RECORDS / 2);
    assert_eq!(inv.metrics.missing as usize, RECORDS / 2);
    assert_eq!(inv.metrics.lookup_calls, 100);
    assert!(inv.response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn a_400_kb_item_is_compared_and_a_difference_named_without_its_value() {
    let (target, table) = target_table("Big", T::S).await;
    // DynamoDB's limit is 400 KB per item, names included.
    let big = "x".repeat(399 * 1024);
    put(
        &target,
        &table,
        &item(&[("pk", s("big")), ("body", s(&big))]),
    )
    .await;
    let same = insert(
        1,
        json!({"pk": {"S": "big"}}),
        json!({"pk": {"S": "big"}, "body": {"S": big}}),
    );
    let mut changed = big.clone();
    changed.replace_range(200_000..200_001, "y");
    let different = insert(
        2,
        json!({"pk": {"S": "big"}}),
        json!({"pk": {"S": "big"}, "body": {"S": changed}}),
    );
    let handler = verifier(&table, &account(SOURCE_ACCOUNT), &target, immediate);

    let inv = handler.handle(&event(vec![same]), None).await;
    assert_eq!(verdict(&inv, 0), "MATCH");
    let inv = handler.handle(&event(vec![different]), None).await;
    let Outcome::Verdict(Verdict::Mismatch { diff, .. }) = &inv.records[0].outcome else {
        panic!("{:?}", inv.records[0].outcome)
    };
    assert_eq!(diff.different, ["body"]);
    assert!(!diff.to_string().contains("xxx"));
}

#[tokio::test]
async fn binary_keys_that_are_not_utf8_are_looked_up_and_logged_as_base64() {
    let (target, table) = target_table("Binary", T::B).await;
    let bytes = vec![0xff, 0xfe, 0x00, 0x80, 0xc3];
    let key = item(&[("pk", AttributeValue::B(Blob::new(bytes.clone())))]);
    let mut stored = key.clone();
    stored.insert("v".into(), n("7"));
    put(&target, &table, &stored).await;
    let b64 = aws_smithy_types::base64::encode(&bytes);
    let records = vec![
        insert(
            1,
            json!({"pk": {"B": b64}}),
            json!({"pk": {"B": b64}, "v": {"N": "7"}}),
        ),
        insert(
            2,
            json!({"pk": {"B": "AAE="}}),
            json!({"pk": {"B": "AAE="}, "v": {"N": "7"}}),
        ),
    ];
    let handler = verifier(&table, &account(SOURCE_ACCOUNT), &target, immediate);
    let inv = handler.handle(&event(records), None).await;
    assert_eq!(verdict(&inv, 0), "MATCH");
    assert_eq!(verdict(&inv, 1), "MISSING");
    assert_eq!(
        inv.records[0].key.as_deref(),
        Some(format!("pk=b64:{b64}").as_str())
    );
}
