//! The shard poller against DynamoDB Local: its checkpoint table, an end-to-end run with drift, a
//! second run resuming from the checkpoint, two overlapping runs, and the 10,000-record figure.

use std::time::Duration;

use crate::common::*;
use aws_sdk_dynamodb::types::AttributeValue;
use ddb_verify::aws::checkpoints::{create_checkpoint_table, DynamoDbCheckpoints};
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::aws::streams::DynamoDbStreams;
use ddb_verify::config::PollerConfig;
use ddb_verify::config::{Config, LagWindowFrom, TableRef};
use ddb_verify::poller::{PollReport, Poller};
use ddb_verify::ports::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, Lease};
use ddb_verify::ports::findings::NoFindings;
use ddb_verify::ports::stream::StartAt;
use ddb_verify::record::Item;
use ddb_verify::verify::{Outcome, Verifier};
use tokio::time::Instant;

type LocalPoller = Poller<DynamoDbStreams, DynamoDbCheckpoints, DynamoDbReader, NoFindings>;

struct Setup {
    source: Account,
    target: Account,
    table: String,
    stream_arn: String,
    checkpoints: String,
}

async fn setup() -> Setup {
    let pair = orders_pair().await;
    // The poller's own account keeps the checkpoints (here: the target account).
    let checkpoints = unique("Checkpoints");
    create_checkpoint_table(&pair.target.dynamodb, &checkpoints)
        .await
        .expect("checkpoint table");
    Setup {
        source: pair.source,
        target: pair.target,
        table: pair.table,
        stream_arn: pair.stream_arn,
        checkpoints,
    }
}

fn poller(s: &Setup, lag: Duration) -> LocalPoller {
    poller_from(s, lag, StartAt::TrimHorizon)
}

/// A poller that starts shards without a checkpoint at `starting_position`.
fn poller_from(s: &Setup, lag: Duration, starting_position: StartAt) -> LocalPoller {
    let mut verify = Config::new(TableRef::parse(&s.table).unwrap());
    // DynamoDB Local's ApproximateCreationDateTime does not follow the writes.
    verify.lag_window_from = LagWindowFrom::Arrival;
    verify.max_replication_lag = lag;
    let config = PollerConfig {
        starting_position,
        ..poller_config(&verify, &s.stream_arn, &s.checkpoints, 1000)
    };
    Poller::new(
        DynamoDbStreams::new(s.source.streams.clone()),
        DynamoDbCheckpoints::new(s.target.dynamodb.clone(), &s.checkpoints),
        Verifier::new(
            verify,
            DynamoDbReader::new(s.target.dynamodb.clone()),
            DynamoDbReader::new(s.source.dynamodb.clone()),
        ),
        config,
    )
}

/// `count` PLACED orders (c#0, c#1, ...) in both accounts, written in bulk: set-up, not under test.
async fn write_placed_orders(s: &Setup, count: u32) {
    let orders: Vec<Item> = (0..count)
        .map(|i| order_item(&format!("c#{i}"), i, "PLACED"))
        .collect();
    for account in [&s.source, &s.target] {
        write_items(account, &s.table, &orders).await;
    }
}

fn verdict_of<'a>(report: &'a PollReport, key: &str, event: &str) -> &'a str {
    let r = report
        .records
        .iter()
        .rev()
        .find(|r| r.key.as_deref() == Some(key) && r.event_name == Some(event))
        .unwrap_or_else(|| panic!("no {event} for {key}: {:#?}", report.records));
    match &r.outcome {
        Outcome::Verdict(v) => v.name(),
        Outcome::Retry(_) => "RETRY",
        Outcome::NotSampled => "NOT_SAMPLED",
    }
}

async fn run(p: &LocalPoller, s: &Setup) -> PollReport {
    p.run(&s.stream_arn, Instant::now() + Duration::from_secs(120))
        .await
        .expect("poll run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_leases_are_conditional() {
    let s = setup().await;
    let store = DynamoDbCheckpoints::new(s.target.dynamodb.clone(), &s.checkpoints);
    let arn = &s.stream_arn;
    assert_eq!(
        store
            .acquire(&Lease::new(arn, "shard-1", "a").term(1_000, 61_000))
            .await
            .unwrap(),
        Some(Checkpoint::default())
    );
    assert_eq!(
        store
            .acquire(&Lease::new(arn, "shard-1", "b").term(2_000, 62_000))
            .await
            .unwrap(),
        None,
        "held by a"
    );
    let progress = Checkpoint {
        sequence_number: Some("000000000000000000042".into()),
        ..Checkpoint::default()
    };
    assert!(matches!(
        store
            .save(
                &Lease::new(arn, "shard-1", "b").term(2_000, 62_000),
                &progress
            )
            .await,
        Err(CheckpointError::LeaseLost { .. })
    ));
    store
        .save(
            &Lease::new(arn, "shard-1", "a").term(2_000, 62_000),
            &progress,
        )
        .await
        .unwrap();
    assert_eq!(store.load_all(arn).await.unwrap()["shard-1"], progress);
    // a died: after its lease expires, b takes the shard over and gets a's checkpoint.
    assert_eq!(
        store
            .acquire(&Lease::new(arn, "shard-1", "b").term(70_000, 130_000))
            .await
            .unwrap(),
        Some(progress.clone())
    );
    store
        .release(&Lease::new(arn, "shard-1", "b"))
        .await
        .unwrap();
    assert_eq!(
        store
            .acquire(&Lease::new(arn, "shard-1", "c").term(71_000, 131_000))
            .await
            .unwrap(),
        Some(progress)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_verifies_with_drift_and_the_next_resumes_from_its_checkpoint() {
    let s = setup().await;
    let (src, dst, t) = (&s.source, &s.target, s.table.as_str());
    put_replicated(src, dst, t, &order_item("c#1", "1", "PLACED")).await;
    put(src, t, &order_item("c#2", "2", "PLACED")).await; // never replicated
    put(src, t, &order_item("c#3", "3", "PAID")).await;
    put(dst, t, &order_item("c#3", "3", "PLACED")).await; // drifted
    put_replicated(src, dst, t, &order_item("c#4", "4", "PLACED")).await;
    delete(
        src,
        t,
        &item(&[("customerId", s_("c#4")), ("orderId", n("4"))]),
    )
    .await; // delete not applied

    let p = poller(&s, Duration::from_secs(2));
    let first = run(&p, &s).await;
    for (key, event, verdict) in [
        (r#"customerId="c#1" orderId=1"#, "INSERT", "MATCH"),
        (r#"customerId="c#2" orderId=2"#, "INSERT", "MISSING"),
        (r#"customerId="c#3" orderId=3"#, "INSERT", "MISMATCH"),
        (r#"customerId="c#4" orderId=4"#, "INSERT", "SUPERSEDED"),
        (
            r#"customerId="c#4" orderId=4"#,
            "REMOVE",
            "DELETE_NOT_APPLIED",
        ),
    ] {
        assert_eq!(verdict_of(&first, key, event), verdict, "{event} {key}");
    }
    assert_eq!(first.poller.records_read, 5);
    assert_eq!(first.poller.shards_discovered, 1);
    assert_eq!(first.poller.shards_read, 1);
    assert!(first.poller.checkpoint_writes >= 1);
    assert_eq!(first.verification.matches, 1);
    assert_eq!(first.verification.batch_item_failures, 0);

    // The EMF documents carry the poller's figures with the verdicts.
    let docs = first.emf_documents("Verifier/Test", t, 1);
    assert_eq!(docs[0]["RecordsRead"], 5.0);
    assert_eq!(docs[0]["Missing"], 1.0);
    assert_eq!(docs[0]["ShardsDiscovered"], 1.0);

    // Written between runs: verified by the next run, and nothing read twice.
    put_replicated(src, dst, t, &order_item("c#5", "5", "PLACED")).await;
    put_replicated(src, dst, t, &order_item("c#1", "1", "SHIPPED")).await;
    let second = run(&p, &s).await;
    assert_eq!(second.poller.records_read, 2, "{:#?}", second.records);
    for (key, event) in [
        (r#"customerId="c#5" orderId=5"#, "INSERT"),
        (r#"customerId="c#1" orderId=1"#, "MODIFY"),
    ] {
        assert_eq!(verdict_of(&second, key, event), "MATCH", "{event} {key}");
    }

    // Nothing new: nothing read.
    let third = run(&p, &s).await;
    assert_eq!(third.poller.records_read, 0);
}

fn s_(v: &str) -> AttributeValue {
    s(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_is_remembered_so_what_is_written_between_runs_is_verified() {
    let s = setup().await;
    let (src, dst, t) = (&s.source, &s.target, s.table.as_str());
    put_replicated(src, dst, t, &order_item("c#0", "0", "PLACED")).await;
    let p = poller_from(&s, Duration::from_secs(2), StartAt::Latest);
    // LATEST is the stream's start, skipped from TRIM_HORIZON by creation time. DynamoDB Local's
    // creation times are rounded to the minute (LAG_WINDOW_FROM=arrival): nothing is skipped as
    // older than the start; c#0 is verified too.
    let first = run(&p, &s).await;
    assert_eq!(first.poller.records_read, 1, "{:#?}", first.records);
    assert_eq!(first.poller.records_before_start, 0);
    assert_eq!(first.latest_starts, 1);
    let store = DynamoDbCheckpoints::new(s.target.dynamodb.clone(), &s.checkpoints);
    let saved = store.load_all(&s.stream_arn).await.unwrap();
    assert_eq!(
        saved.len(),
        1,
        "the stream's own item is no shard: {saved:?}"
    );
    let started = saved.values().next().unwrap().started_at_ms;
    assert!(started.is_some(), "the stream's start is remembered");

    // Written between runs: the next run reads it from the checkpoint.
    put_replicated(src, dst, t, &order_item("c#1", "1", "PLACED")).await;
    let second = run(&p, &s).await;
    assert_eq!(
        verdict_of(&second, r#"customerId="c#1" orderId=1"#, "INSERT"),
        "MATCH"
    );
    assert_eq!(second.verification.matches, 1);
    assert_eq!(second.latest_starts, 0, "the start is taken once");
    let saved = store.load_all(&s.stream_arn).await.unwrap();
    let checkpoint = saved.values().next().unwrap();
    assert_eq!(checkpoint.started_at_ms, started, "the start never moves");
    assert!(checkpoint.sequence_number.is_some());

    put_replicated(src, dst, t, &order_item("c#2", "2", "PLACED")).await;
    let third = run(&p, &s).await;
    assert_eq!(third.poller.records_read, 1, "{:#?}", third.records);
    assert_eq!(
        verdict_of(&third, r#"customerId="c#2" orderId=2"#, "INSERT"),
        "MATCH"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_overlapping_runs_read_each_record_once() {
    let s = setup().await;
    write_placed_orders(&s, 300).await;
    let (a, b) = (
        poller(&s, Duration::from_secs(1)),
        poller(&s, Duration::from_secs(1)),
    );
    let (ra, rb) = tokio::join!(run(&a, &s), run(&b, &s));
    assert_eq!(ra.poller.records_read + rb.poller.records_read, 300);
    assert_eq!(ra.verification.matches + rb.verification.matches, 300);
    let mut seen: Vec<String> = ra
        .records
        .iter()
        .chain(&rb.records)
        .map(|r| r.sequence_number.clone().unwrap())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 300, "every record verified exactly once");
}

/// The closing note's figure: one run over a stream of 10,000 records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_in_one_run() {
    let s = setup().await;
    write_placed_orders(&s, 10_000).await;
    let p = poller(&s, Duration::from_secs(1));
    let started = std::time::Instant::now();
    let report = run(&p, &s).await;
    let took = started.elapsed();
    assert_eq!(report.poller.records_read, 10_000);
    assert_eq!(report.verification.matches, 10_000);
    eprintln!(
        "poller, 10,000 records: {:.0} records/s, {} GetRecords calls, {} BatchGetItem calls, {:?}",
        10_000.0 / took.as_secs_f64(),
        report.poller.get_records_calls,
        report.verification.lookup_calls,
        took
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_pages_are_read_onto_tapes_and_say_what_the_sdks_decoding_says() {
    use aws_sdk_dynamodb::primitives::Blob;
    use ddb_verify::aws::streams::change_record;
    use ddb_verify::ports::stream::{ShardRef, StreamSource};
    use ddb_verify::record::{Expectation, Expected, Image, OldImage};
    use AttributeValue as V;

    let s = setup().await;
    let row = |i: u32, status: &str| {
        let mut item = order_item(&format!("c#{i}"), i, status);
        item.insert("b".into(), V::B(Blob::new(vec![0, 255, i as u8])));
        item.insert("ss".into(), V::Ss(vec!["x".into(), format!("y{i}")]));
        item.insert(
            "m".into(),
            V::M(
                [
                    ("quote\"d \u{e9}".to_string(), s_("line\nbreak \u{1F600}")),
                    ("l".to_string(), V::L(vec![V::Null(true), n("-1.5E3")])),
                ]
                .into(),
            ),
        );
        item
    };
    // 20 inserts, 10 modifies (with old images), 5 removes.
    for i in 0..20 {
        put(&s.source, &s.table, &row(i, "PLACED")).await;
    }
    for i in 0..10 {
        put(&s.source, &s.table, &row(i, "SHIPPED")).await;
    }
    for i in 15..20 {
        delete(&s.source, &s.table, &order_key(&format!("c#{i}"), i)).await;
    }

    let streams = DynamoDbStreams::new(s.source.streams.clone());
    let shards = streams
        .list_shards(&s.stream_arn, None)
        .await
        .unwrap()
        .shards;
    let (mut ours, mut sdks): (Vec<Expectation>, Vec<Expectation>) = (Vec::new(), Vec::new());
    for shard in &shards {
        let shard_ref = ShardRef {
            stream_arn: &s.stream_arn,
            shard_id: &shard.shard_id,
        };
        // Ours, through the byte reader.
        let mut iterator = streams
            .shard_iterator(shard_ref, &StartAt::TrimHorizon)
            .await
            .unwrap();
        while let Some(it) = iterator {
            let page = streams.get_records(&s.stream_arn, &it, 7).await.unwrap();
            if page.records.is_empty() {
                break;
            }
            ours.extend(page.records.into_iter().map(|r| r.expect("a record")));
            iterator = page.next_iterator;
        }
        // The SDK's, from the same shard.
        let mut iterator = s
            .source
            .streams
            .get_shard_iterator()
            .stream_arn(&s.stream_arn)
            .shard_id(&shard.shard_id)
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(it) = iterator {
            let out = s
                .source
                .streams
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .unwrap();
            let records = out.records.unwrap_or_default();
            if records.is_empty() {
                break;
            }
            sdks.extend(
                records
                    .iter()
                    .map(|r| change_record(r, &s.stream_arn).unwrap()),
            );
            iterator = out.next_shard_iterator;
        }
    }
    assert_eq!(ours.len(), 35);
    // Images compare as items (old images too): the forms differ, not what they hold.
    assert_eq!(ours, sdks);
    let on_tapes = ours
        .iter()
        .filter(|e| matches!(e.expected, Expected::Image(Image::Tape(_))))
        .count();
    assert_eq!(on_tapes, 30, "every new image on a tape");
    let old_as_json = ours
        .iter()
        .filter(|e| {
            matches!(
                e.stream().and_then(|c| c.old_image.as_ref()),
                Some(OldImage::Json(_))
            )
        })
        .count();
    assert_eq!(old_as_json, 15, "every old image kept as its JSON");
}

#[test]
fn the_poller_binary_refuses_an_unknown_flag_and_explains_its_own() {
    let binary = env!("CARGO_BIN_EXE_shard-poller");
    // A mistyped --once used to be ignored, and the poller ran forever.
    let out = run_binary_with_only(binary, &["--onse"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_of(&out));
    assert!(stderr_of(&out).contains("--onse"), "{}", stderr_of(&out));
    let out = run_binary_with_only(binary, &["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(output_of(&out).contains("--once"), "{}", output_of(&out));
    let out = run_binary_with_only(binary, &["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_poller_writes_no_colour_codes_into_a_pipe() {
    // Outside Lambda, stderr piped: an invalid configuration's log line, in plain text.
    let out = run_binary_with_only(
        env!("CARGO_BIN_EXE_shard-poller"),
        &["--once"],
        &[
            ("VERIFY_TABLE_NAME", "Orders"),
            ("SOURCE_TABLE_NAME", "Orders"),
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("CHECKPOINT_TABLE"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a pipe: {stderr:?}"
    );
}
