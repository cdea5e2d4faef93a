//! End to end against DynamoDB Local: two accounts (two access key ids), writes to the source,
//! replication to the target with deliberate drift, the source stream read with GetRecords and turned
//! into Lambda's event JSON, the handler run on it, every verdict and the EMF figures asserted.

use std::time::{Duration, Instant};

use crate::common::*;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType as T, StreamViewType};
use ddb_verify::lambda::handler::Invocation;
use ddb_verify::verify::{Outcome, RetryReason, Supersession, Verdict};
use ddb_verify_testkit::setup::ORDER_KEYS;

/// DynamoDB Local's ApproximateCreationDateTime does not follow the writes (it stays at one value),
/// so replication windows here start when the verifier receives a record.
fn local_windows(c: &mut ddb_verify::config::Config, lag: Duration) {
    c.max_replication_lag = lag;
    c.lag_window_from = ddb_verify::config::LagWindowFrom::Arrival;
}

fn order(customer: &str, id: &str, status: &str) -> ddb_verify::record::Item {
    item(&[
        ("customerId", s(customer)),
        ("orderId", n(id)),
        ("status", s(status)),
        ("total", n("19.90")),
        (
            "lines",
            AttributeValue::L(vec![AttributeValue::M(item(&[
                ("sku", s("A-1")),
                ("qty", n("2")),
            ]))]),
        ),
        (
            "tags",
            AttributeValue::Ss(vec!["gift".into(), "priority".into()]),
        ),
    ])
}

/// The outcome of the `nth` record (0-based) with this key and event name.
fn outcome<'a>(inv: &'a Invocation, key: &str, event_name: &str, nth: usize) -> &'a Outcome {
    &inv.records
        .iter()
        .filter(|r| r.key.as_deref() == Some(key) && r.event_name == Some(event_name))
        .nth(nth)
        .unwrap_or_else(|| panic!("no {event_name} #{nth} for {key} in {:#?}", inv.records))
        .outcome
}

fn name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Verdict(v) => v.name(),
        Outcome::Retry(_) => "RETRY",
        Outcome::NotSampled => "NOT_SAMPLED",
    }
}

fn emf_value(docs: &[serde_json::Value], metric: &str) -> Vec<f64> {
    docs.iter()
        .filter_map(|d| d.get(metric))
        .flat_map(|v| match v {
            serde_json::Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap()).collect(),
            x => vec![x.as_f64().unwrap()],
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verdict_on_a_composite_key_table_with_drift() {
    let pair = orders_pair().await;

    // 1 replicated correctly
    put(&pair.source, &pair.table, &order("c#1", "1", "PLACED")).await;
    put(&pair.target, &pair.table, &order("c#1", "1", "PLACED")).await;
    // 2 never replicated
    put(&pair.source, &pair.table, &order("c#2", "2", "PLACED")).await;
    // 3 replicated with an attribute changed
    put(&pair.source, &pair.table, &order("c#3", "3", "PAID")).await;
    put(&pair.target, &pair.table, &order("c#3", "3", "PLACED")).await;
    // 4 created then deleted; the delete never reached the target
    put(&pair.source, &pair.table, &order("c#4", "4", "PLACED")).await;
    put(&pair.target, &pair.table, &order("c#4", "4", "PLACED")).await;
    delete(&pair.source, &pair.table, &order_key("c#4", "4")).await;
    // 5 reaches the target late, within MAX_REPLICATION_LAG (written below while the handler runs)
    put(&pair.source, &pair.table, &order("c#5", "5", "PLACED")).await;
    // 6 changed twice in one batch; the target has the second version
    put(&pair.source, &pair.table, &order("c#6", "6", "PLACED")).await;
    put(&pair.source, &pair.table, &order("c#6", "6", "SHIPPED")).await;
    put(&pair.target, &pair.table, &order("c#6", "6", "SHIPPED")).await;
    // 7 deleted on both sides
    put(&pair.source, &pair.table, &order("c#7", "7", "PLACED")).await;
    delete(&pair.source, &pair.table, &order_key("c#7", "7")).await;

    let events = stream_events(&pair.source, &pair.stream_arn, 100).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["Records"].as_array().unwrap().len(), 10);
    let event = parse_event(&events[0]);

    let handler = verifier(&pair.table, &pair.source, &pair.target, |c| {
        local_windows(c, Duration::from_secs(5))
    });
    let late = {
        let (target, table) = (pair.target.clone(), pair.table.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            put(&target, &table, &order("c#5", "5", "PLACED")).await;
        })
    };
    let started = Instant::now();
    let inv = handler.handle(&event, None).await;
    let took = started.elapsed();
    late.await.unwrap();

    // The orders by their numbers in the writes above.
    for (n, event_name, verdict) in [
        (1, "INSERT", "MATCH"),
        (2, "INSERT", "MISSING"),
        (4, "INSERT", "SUPERSEDED"),
        (4, "REMOVE", "DELETE_NOT_APPLIED"),
        (6, "MODIFY", "MATCH"),
        (7, "INSERT", "SUPERSEDED"),
        (7, "REMOVE", "MATCH"),
    ] {
        let key = format!(r#"customerId="c#{n}" orderId={n}"#);
        let got = name(outcome(&inv, &key, event_name, 0));
        assert_eq!(got, verdict, "{event_name} {key}");
    }
    let Outcome::Verdict(Verdict::Mismatch { diff, .. }) =
        outcome(&inv, r#"customerId="c#3" orderId=3"#, "INSERT", 0)
    else {
        panic!("{:#?}", inv.records)
    };
    assert_eq!(diff.different, vec!["status"]);
    assert!(diff.only_in_source.is_empty() && diff.only_in_target.is_empty());
    let Outcome::Verdict(Verdict::Match { lag }) =
        outcome(&inv, r#"customerId="c#5" orderId=5"#, "INSERT", 0)
    else {
        panic!("{:#?}", inv.records)
    };
    // Written 1.5 s after the handler started.
    assert!(
        *lag >= Duration::from_millis(1500) && *lag < Duration::from_secs(5),
        "{lag:?}"
    );
    assert_eq!(
        outcome(&inv, r#"customerId="c#6" orderId=6"#, "INSERT", 0),
        &Outcome::Verdict(Verdict::Superseded {
            by: Supersession::LaterRecord {
                sequence_number: inv
                    .records
                    .iter()
                    .find(
                        |r| r.key.as_deref() == Some(r#"customerId="c#6" orderId=6"#)
                            && r.event_name == Some("MODIFY")
                    )
                    .and_then(|r| r.sequence_number.clone())
                    .unwrap()
            }
        })
    );
    assert!(inv.response.batch_item_failures.is_empty());
    // The negative verdicts waited for the window (5 s), not much longer.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "{took:?}"
    );

    // EMF figures, as CloudWatch would read them.
    let docs = inv.metrics.emf_documents("Verifier/Test", &pair.table, 1);
    assert_eq!(docs[0]["VerifyTable"], pair.table.as_str());
    let count = |m: &str| emf_value(&docs, m);
    assert_eq!(count("RecordsReceived"), [10.0]);
    assert_eq!(count("RecordsSampled"), [10.0]);
    assert_eq!(count("Match"), [4.0]);
    assert_eq!(count("Missing"), [1.0]);
    assert_eq!(count("Mismatch"), [1.0]);
    assert_eq!(count("DeleteNotApplied"), [1.0]);
    assert_eq!(count("Superseded"), [3.0]);
    assert_eq!(count("Unverifiable"), [0.0]);
    assert_eq!(count("BatchItemFailures"), [0.0]);
    assert_eq!(count("LookupErrors"), [0.0]);
    assert_eq!(count("ReplicationLag").len(), 4);
    assert!(count("LookupCalls")[0] >= 2.0, "re-reads while waiting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_moved_on_supersedes_an_older_batch() {
    let pair = orders_pair().await;

    put(&pair.source, &pair.table, &order("c#1", "1", "PLACED")).await;
    put(&pair.source, &pair.table, &order("c#1", "1", "PAID")).await;
    put(&pair.source, &pair.table, &order("c#1", "1", "SHIPPED")).await;
    put(&pair.target, &pair.table, &order("c#1", "1", "SHIPPED")).await;

    // Lambda with BatchSize 1: the first record arrives alone, when the item has moved on twice.
    let events = stream_events(&pair.source, &pair.stream_arn, 1).await;
    assert_eq!(events.len(), 3);
    let handler = verifier(&pair.table, &pair.source, &pair.target, |c| {
        local_windows(c, Duration::from_secs(1))
    });
    let first = handler.handle(&parse_event(&events[0]), None).await;
    assert_eq!(
        first.records[0].outcome,
        Outcome::Verdict(Verdict::Superseded {
            by: Supersession::MatchesCurrentSource
        })
    );
    assert_eq!(first.metrics.source_rechecks, 1);
    let last = handler.handle(&parse_event(&events[2]), None).await;
    assert_eq!(name(&last.records[0].outcome), "MATCH");

    // Without the source re-check, the stale record is reported as a mismatch.
    let no_recheck = verifier(&pair.table, &pair.source, &pair.target, |c| {
        local_windows(c, Duration::from_secs(1));
        c.recheck_source = false;
    });
    let inv = no_recheck.handle(&parse_event(&events[0]), None).await;
    assert_eq!(name(&inv.records[0].outcome), "MISMATCH");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_keys_and_keys_only_streams() {
    let keys = [("deviceId", T::B)];
    let pair = table_pair("Devices", &keys, StreamViewType::KeysOnly, true).await;

    let device = |id: &[u8], fw: &str| {
        item(&[
            ("deviceId", AttributeValue::B(Blob::new(id.to_vec()))),
            ("firmware", s(fw)),
            (
                "readings",
                AttributeValue::Ns(vec!["1.50".into(), "2".into()]),
            ),
        ])
    };
    // Non-UTF-8 key bytes.
    put(
        &pair.source,
        &pair.table,
        &device(&[0xff, 0x00, 0xfe], "1.4"),
    )
    .await;
    put(
        &pair.target,
        &pair.table,
        &device(&[0xff, 0x00, 0xfe], "1.4"),
    )
    .await;
    put(&pair.source, &pair.table, &device(&[0x01], "2.0")).await;
    put(&pair.target, &pair.table, &device(&[0x01], "1.9")).await;

    let events = stream_events(&pair.source, &pair.stream_arn, 100).await;
    let event = parse_event(&events[0]);

    // Compared with the source item, since the stream carries no image.
    let handler = verifier(&pair.table, &pair.source, &pair.target, |c| {
        local_windows(c, Duration::from_secs(1))
    });
    let inv = handler.handle(&event, None).await;
    assert_eq!(
        name(outcome(&inv, "deviceId=b64:/wD+", "INSERT", 0)),
        "MATCH"
    );
    let Outcome::Verdict(Verdict::Mismatch { diff, .. }) =
        outcome(&inv, "deviceId=b64:AQ==", "INSERT", 0)
    else {
        panic!("{:#?}", inv.records)
    };
    assert_eq!(diff.different, vec!["firmware"]);

    // Without re-reading the source, the contents cannot be compared: UNVERIFIABLE, with the reason.
    let handler = verifier(&pair.table, &pair.source, &pair.target, |c| {
        c.recheck_source = false
    });
    let inv = handler.handle(&event, None).await;
    let Outcome::Verdict(Verdict::Unverifiable { reason }) =
        outcome(&inv, "deviceId=b64:/wD+", "INSERT", 0)
    else {
        panic!("{:#?}", inv.records)
    };
    assert!(reason.contains("no new image"), "{reason}");
    assert_eq!(inv.metrics.unverifiable, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_target_table_sends_every_record_back() {
    let pair = table_pair("Orders", ORDER_KEYS, StreamViewType::NewImage, false).await;
    put(&pair.source, &pair.table, &order("c#1", "1", "PLACED")).await;
    put(&pair.source, &pair.table, &order("c#2", "2", "PLACED")).await;
    let events = stream_events(&pair.source, &pair.stream_arn, 100).await;

    // The target account has no such table: a permanent error, and still no verdict is invented.
    let handler = verifier(&pair.table, &pair.source, &pair.target, |_| {});
    let inv = handler.handle(&parse_event(&events[0]), None).await;
    assert_eq!(inv.response.batch_item_failures.len(), 2);
    for r in &inv.records {
        let Outcome::Retry(RetryReason::LookupFailed { message, transient }) = &r.outcome else {
            panic!("{:#?}", inv.records)
        };
        assert!(!transient);
        assert!(
            message.contains("ResourceNotFoundException") || message.contains("non-existent"),
            "{message}"
        );
    }
    assert_eq!(inv.metrics.lookup_errors, 1);
    assert_eq!(inv.metrics.batch_item_failures, 2);
}

/// The closing note's figure: a 1,000-record batch against DynamoDB Local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_record_batch_takes_ten_lookups() {
    let pair = orders_pair().await;
    for i in 0..1000 {
        let o = order(&format!("c#{i}"), &i.to_string(), "PLACED");
        pair.put_replicated(&o).await;
    }
    let events = stream_events(&pair.source, &pair.stream_arn, 1000).await;
    assert_eq!(events.len(), 1);
    let handler = verifier(&pair.table, &pair.source, &pair.target, |_| {});
    let event = parse_event(&events[0]);
    let started = Instant::now();
    let inv = handler.handle(&event, None).await;
    let took = started.elapsed();
    assert_eq!(inv.metrics.matches, 1000);
    assert_eq!(inv.metrics.lookup_calls, 10);
    assert_eq!(inv.metrics.source_rechecks, 0);
    eprintln!(
        "1,000-record batch: {} BatchGetItem calls, {took:?}",
        inv.metrics.lookup_calls
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_items_past_their_ttl_are_expired_where_the_other_side_differs() {
    let pair = orders_pair().await;
    let (source, target, table) = (&pair.source, &pair.target, &pair.table);
    enable_ttl(source, table, "expiresAt").await;
    let hour = 3600;
    // Never seen on the other side (deleted there by TTL), still on the source: re-read, expired.
    put(source, table, &expiring(order("c#1", "1", "PLACED"), -hour)).await;
    // Deleted on the source, still on the other side past its TTL: DynamoDB will delete it.
    let gone = expiring(order("c#2", "2", "PLACED"), -hour);
    put_replicated(source, target, table, &gone).await;
    delete(source, table, &order_key("c#2", "2")).await;
    // Its TTL ahead: a real MISSING.
    put(source, table, &expiring(order("c#3", "3", "PLACED"), hour)).await;

    let events = stream_events(source, &pair.stream_arn, 100).await;
    // The TTL attribute as the function reads it: DescribeTimeToLive on the events' table, once.
    let client = source.dynamodb.clone();
    let handler = verifier(table, source, target, |c| {
        local_windows(c, Duration::from_millis(500))
    })
    .with_ttl_lookup(Box::new(move |table| {
        let port = ddb_verify::aws::ttl::DynamoDbTimeToLive::new(client.clone());
        Box::pin(async move { ddb_verify::ports::ttl::resolve(None, &port, &table).await })
    }));
    let inv = handler.handle(&parse_event(&events[0]), None).await;
    let key = |c: &str, id: &str| format!(r#"customerId="{c}" orderId={id}"#);
    let expired = |o: &Outcome| match o {
        Outcome::Verdict(Verdict::Expired { instead_of, .. }) => *instead_of,
        other => panic!("expected EXPIRED, got {other:?}"),
    };
    // DynamoDB Local may delete the source's expired item before it is re-read (the source's TTL
    // is on): then neither side has it, and the record is SUPERSEDED. Never MISSING.
    match outcome(&inv, &key("c#1", "1"), "INSERT", 0) {
        Outcome::Verdict(Verdict::Superseded { .. }) => {}
        other => assert_eq!(expired(other), "MISSING"),
    }
    assert_eq!(
        expired(outcome(&inv, &key("c#2", "2"), "REMOVE", 0)),
        "DELETE_NOT_APPLIED"
    );
    assert_eq!(
        name(outcome(&inv, &key("c#3", "3"), "INSERT", 0)),
        "MISSING"
    );
    assert!((1..=2).contains(&inv.metrics.expired), "{:?}", inv.metrics);
    assert_eq!(inv.metrics.missing, 1);
    // Neither is a batch item failure: EXPIRED is a verdict.
    assert_eq!(inv.response.batch_item_failures.len(), 0);
}
