//! The cut-over's freeze with the stream verifier (Lambda) alone, through the built binaries
//! against DynamoDB Local: the function (through the Runtime API) verifies every change, writes
//! stop, and `readiness --writes-stopped-at T` says GO from Lambda's metrics (a fake CloudWatch
//! answering GetMetricData as CloudWatch does) while plain readiness says NO-GO past `--max-lag`.

use std::process::Output;
use std::time::Duration;

use crate::common::fake_aws::{
    run_stream_verifier, FakeCloudWatch, FakeLambda, FakeSqs, Metrics, Posted,
};
use crate::common::*;
use ddb_verify::shared::{epoch_ms, rfc3339};

const MIN: u64 = 60_000;

/// The stream verifier binary over every record of the pair's stream, each batch verified.
async fn verify_stream(pair: &TablePair, findings: &str) {
    let mut env = function_env();
    env.extend([
        ("VERIFY_TABLE_NAME", pair.table.clone()),
        ("FINDINGS_TABLE", findings.to_string()),
        ("LAG_WINDOW_FROM", "arrival".to_string()),
        ("MAX_REPLICATION_LAG", "300ms".to_string()),
    ]);
    for event in stream_events(&pair.source, &pair.stream_arn, 100).await {
        let run = run_stream_verifier(env!("CARGO_BIN_EXE_stream-verifier"), &env, &event).await;
        let Some(Posted::Response(body)) = &run.posted else {
            panic!("no answer: {:?}\n{}", run.posted, run.stderr);
        };
        let response: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            response["batchItemFailures"],
            serde_json::json!([]),
            "{}",
            run.stderr
        );
    }
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", output_of(out)))
}

fn failing(r: &serde_json::Value) -> Vec<&str> {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_writes_frozen_lambdas_metrics_back_to_zero_make_the_stream_verifier_alone_go() {
    let pair = orders_pair().await;
    let store = findings_store(&pair.source).await;
    let checkpoints = unique("Checkpoints");
    ddb_verify::aws::checkpoints::create_checkpoint_table(&pair.source.dynamodb, &checkpoints)
        .await
        .expect("checkpoint table");
    pair.put_replicated(&order_item("c#1", 1, "PLACED")).await;
    verify_stream(&pair, store.table()).await;
    // DynamoDB Local cuts creation times to the minute: the function's coverage counts from the
    // end of its first change's minute, which the baseline must begin after.
    let now = epoch_ms();
    tokio::time::sleep(Duration::from_millis(MIN - now % MIN + 1_500)).await;
    let out = ddb_verify_cli(
        &["baseline", "--json"],
        &[
            ("SOURCE_TABLE_NAME", pair.table.as_str()),
            ("VERIFY_TABLE_NAME", pair.table.as_str()),
            ("VERIFY_PROFILE", "target-account"),
            ("CHECKPOINT_TABLE", checkpoints.as_str()),
            ("FINDINGS_TABLE", store.table()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_of(&out));
    // The last changes, verified; then writes stop.
    pair.put_replicated(&order_item("c#2", 2, "PLACED")).await;
    pair.put_replicated(&order_item("c#1", 1, "PAID")).await;
    verify_stream(&pair, store.table()).await;
    let stopped = epoch_ms();

    // Lambda: the mapping attached two hours ago, enabled and reading, the function's timeout 3 s;
    // its failure queue empty; CloudWatch:
    // a batch 45 s behind three minutes ago, the last one (this minute) 250 ms behind.
    let lambda = FakeLambda::start().await;
    lambda.set_mappings(&[("stream-verifier", stopped / 1000 - 7200)]);
    let sqs = FakeSqs::start().await;
    let cloudwatch = FakeCloudWatch::start().await;
    let minute = stopped - stopped % MIN;
    let caught_up = Metrics {
        iterator_age: vec![(minute - 3 * MIN, 45_000.0), (minute, 250.0)],
        ..Metrics::default()
    };
    cloudwatch.set(caught_up.clone());
    let (lambda_url, sqs_url, cloudwatch_url) =
        (lambda.endpoint(), sqs.endpoint(), cloudwatch.endpoint());
    let queue = format!("{sqs_url}/000000000000/verifier-failures");
    let readiness = |more: &[&str]| {
        let out = ddb_verify_cli(
            &[&["readiness", "--json", "--max-lag", "1s"], more].concat(),
            &[
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("FINDINGS_TABLE", store.table()),
                ("SOURCE_TABLE_NAME", pair.table.as_str()),
                ("AWS_ENDPOINT_URL_LAMBDA", lambda_url.as_str()),
                ("FAILURE_QUEUE_URL", queue.as_str()),
                ("AWS_ENDPOINT_URL_SQS", sqs_url.as_str()),
                ("AWS_ENDPOINT_URL_CLOUDWATCH", cloudwatch_url.as_str()),
            ],
        );
        let r = json_of(&out);
        let expected = if r["ready"] == true { 0 } else { 2 };
        assert_eq!(out.status.code(), Some(expected), "{}", output_of(&out));
        r
    };
    // Past the function's timeout (3 s) and the clock margin (1 s) since T.
    tokio::time::sleep(Duration::from_millis(4_100)).await;

    // Plain readiness: nothing verified within --max-lag, so NO-GO.
    let r = readiness(&[]);
    assert_eq!(failing(&r), ["stream_recent"], "{r}");
    // Frozen at T: the function was handed everything before T. GO.
    let t = rfc3339(stopped);
    let frozen = ["--writes-stopped-at", t.as_str(), "--metrics-delay", "0s"];
    let r = readiness(&frozen);
    assert_eq!(r["ready"], true, "{r}");
    let freeze = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "verified_past_freeze")
        .unwrap_or_else(|| panic!("no freeze check: {r}"));
    assert!(
        freeze["detail"]
            .as_str()
            .unwrap()
            .contains("nothing delivered since"),
        "{freeze}"
    );
    assert!(cloudwatch.asked_for("stream-verifier"));
    // The same freeze recorded (`ddb-verify freeze`): plain readiness, as the revalidator's,
    // judges against it, from Lambda's metrics; lifted, it is stale again.
    let freeze_cli = |args: &[&str]| {
        let out = ddb_verify_cli(
            &[&["freeze"], args].concat(),
            &[
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("FINDINGS_TABLE", store.table()),
                ("SOURCE_TABLE_NAME", pair.table.as_str()),
            ],
        );
        assert!(out.status.success(), "{}", output_of(&out));
    };
    freeze_cli(&["--at", t.as_str()]);
    let r = readiness(&["--metrics-delay", "0s"]);
    assert_eq!(r["ready"], true, "{r}");
    assert_eq!(r["writes_stopped_at"], t.as_str(), "{r}");
    freeze_cli(&["--lift"]);
    let r = readiness(&["--metrics-delay", "0s"]);
    assert_eq!(failing(&r), ["stream_recent"], "{r}");

    // With CloudWatch's usual delay, a later batch could still show: not yet.
    let r = readiness(&["--writes-stopped-at", t.as_str()]);
    assert_eq!(failing(&r), ["verified_past_freeze"], "{r}");
    assert!(
        r["reasons"][0]
            .as_str()
            .unwrap()
            .contains("check again then"),
        "{r}"
    );
    // Throttled after the freeze, or the last batch behind: NO-GO, each saying why.
    cloudwatch.set(Metrics {
        throttles: vec![(minute, 2.0)],
        ..caught_up.clone()
    });
    let r = readiness(&frozen);
    assert!(
        r["reasons"][0].as_str().unwrap().contains("Throttles"),
        "{r}"
    );
    cloudwatch.set(Metrics {
        iterator_age: vec![(minute, 30_000.0)],
        ..Metrics::default()
    });
    let r = readiness(&frozen);
    assert!(
        r["reasons"][0]
            .as_str()
            .unwrap()
            .contains("not back to zero"),
        "{r}"
    );
    // A series CloudWatch could not complete is no proof of "no errors".
    cloudwatch.set(Metrics {
        status: Some("InternalError"),
        ..caught_up.clone()
    });
    let r = readiness(&frozen);
    assert!(
        r["reasons"][0].as_str().unwrap().contains("InternalError"),
        "{r}"
    );
    // CloudWatch unreachable: NO-GO, saying what to allow.
    drop(cloudwatch);
    let r = readiness(&frozen);
    assert!(
        r["reasons"][0]
            .as_str()
            .unwrap()
            .contains("cloudwatch:GetMetricData"),
        "{r}"
    );
}
