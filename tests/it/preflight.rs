//! `ddb-verify preflight` and `ddb-verify init` through the built binary against DynamoDB Local,
//! as an operator runs them: the two accounts are two access keys (the other one through the
//! profile of `scripts/local-aws-config`). Every check DynamoDB Local can serve: the tables
//! reachable and not one table, key schemas, TTL, the stream's view type, the checkpoint and
//! findings tables before and after `init`. What it cannot (Lambda, STS, point-in-time recovery,
//! resource policies) comes out NOT CHECKED, quickly; the rules for those are unit-tested on facts
//! (`src/preflight/rules.rs`), and the stream's readers are counted against a fake Lambda endpoint.

use std::process::Output;

use crate::common::*;
use aws_sdk_dynamodb::types::{ScalarAttributeType, StreamViewType, TimeToLiveSpecification};
use serde_json::Value;

/// Lambda and STS are not served next to DynamoDB Local: a closed port answers at once.
const NOWHERE: &str = "http://127.0.0.1:1";

/// Runs `ddb-verify ARGS` as the source account, the other side through its profile, with `env`
/// on top.
fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec![
        ("VERIFY_PROFILE", "target-account"),
        ("AWS_ENDPOINT_URL_LAMBDA", NOWHERE),
        ("AWS_ENDPOINT_URL_STS", NOWHERE),
    ];
    all.extend_from_slice(env);
    ddb_verify_cli(args, &all)
}

/// `preflight --json` on `table` in both accounts, then `env`: its exit status and its checks.
fn preflight(table: &str, env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let mut all = vec![("SOURCE_TABLE_NAME", table), ("VERIFY_TABLE_NAME", table)];
    all.extend_from_slice(env);
    let out = cli(&["preflight", "--json"], &all);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "preflight --json printed no JSON ({e}): {}",
            output_of(&out)
        )
    });
    (out.status.code(), json)
}

/// The one check of that name: (status, found, todo).
fn check(json: &Value, name: &str) -> (String, String, String) {
    let found: Vec<&Value> = json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{name} in {json:#}");
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        text(&found[0]["status"]),
        text(&found[0]["found"]),
        text(&found[0]["todo"]),
    )
}

fn status(json: &Value, name: &str) -> String {
    check(json, name).0
}

const ORDER_KEYS: [(&str, ScalarAttributeType); 2] = [
    ("customerId", ScalarAttributeType::S),
    ("orderId", ScalarAttributeType::N),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_pair_passes_and_what_dynamodb_local_cannot_answer_is_not_checked_quickly() {
    let pair = orders_pair().await;
    let started = std::time::Instant::now();
    let (code, json) = preflight(&pair.table, &[]);
    assert_eq!(code, Some(0), "{json:#}");
    for name in [
        "source table",
        "other side",
        "two tables",
        "key schema",
        "secondary indexes",
        "time to live",
        "stream",
    ] {
        assert_eq!(status(&json, name), "OK", "{name}: {json:#}");
    }
    for name in ["stream readers", "point-in-time recovery"] {
        assert_eq!(status(&json, name), "NOT CHECKED", "{name}: {json:#}");
    }
    assert_eq!(json["failed"], 0);
    assert!(json["other_side"]
        .as_str()
        .unwrap()
        .contains("the account of profile target-account"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_another_type_on_the_other_side_fail_the_run_with_exit_2() {
    let source = account(SOURCE_ACCOUNT);
    let target = account(TARGET_ACCOUNT);
    let table = unique("Orders");
    create_table(
        &source,
        &table,
        &ORDER_KEYS,
        Some(StreamViewType::NewAndOldImages),
    )
    .await;
    let other_keys = [
        ("customerId", ScalarAttributeType::S),
        ("orderId", ScalarAttributeType::S),
    ];
    create_table(&target, &table, &other_keys, None).await;
    let (code, json) = preflight(&table, &[]);
    assert_eq!(code, Some(2), "{json:#}");
    let (status, found, todo) = check(&json, "key schema");
    assert_eq!(status, "FAIL");
    assert!(
        found.contains("orderId N (sort)") && found.contains("orderId S (sort)"),
        "{found}"
    );
    assert!(todo.contains("same key schema"), "{todo}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_on_one_side_only_warns_without_failing() {
    let pair = orders_pair().await;
    let spec = TimeToLiveSpecification::builder()
        .attribute_name("expiresAt")
        .enabled(true)
        .build()
        .unwrap();
    pair.target
        .dynamodb
        .update_time_to_live()
        .table_name(&pair.table)
        .time_to_live_specification(spec)
        .send()
        .await
        .expect("TTL on the other side");
    let (code, json) = preflight(&pair.table, &[]);
    assert_eq!(code, Some(0), "{json:#}");
    let (status, found, _) = check(&json, "time to live");
    assert_eq!(status, "WARN");
    assert_eq!(found, "source: off; other side: on expiresAt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_only_stream_warns_unless_the_source_is_read_again() {
    let pair = table_pair("Orders", &ORDER_KEYS, StreamViewType::KeysOnly, true).await;
    let (code, json) = preflight(&pair.table, &[("RECHECK_SOURCE", "false")]);
    assert_eq!(code, Some(0), "{json:#}");
    let (status, found, _) = check(&json, "stream");
    assert_eq!(status, "WARN");
    assert!(
        found.contains("KEYS_ONLY") && found.contains("RECHECK_SOURCE=true"),
        "{found}"
    );
    let (_, json) = preflight(&pair.table, &[]);
    assert_eq!(self::status(&json, "stream"), "INFO");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_other_side_or_source_fails_as_not_reachable() {
    let pair = table_pair(
        "Orders",
        &ORDER_KEYS,
        StreamViewType::NewAndOldImages,
        false,
    )
    .await;
    let (code, json) = preflight(&pair.table, &[]);
    assert_eq!(code, Some(2), "{json:#}");
    let (status, found, todo) = check(&json, "other side");
    assert_eq!(status, "FAIL");
    assert!(
        found.contains("not reachable") && found.contains("ResourceNotFoundException"),
        "{found}"
    );
    assert!(todo.contains("VERIFY_TABLE_NAME"), "{todo}");
    assert_eq!(self::status(&json, "key schema"), "NOT CHECKED");

    let missing = unique("Absent");
    let (code, json) = preflight(&missing, &[("VERIFY_TABLE_NAME", &pair.table)]);
    assert_eq!(code, Some(2), "{json:#}");
    assert_eq!(self::status(&json, "source table"), "FAIL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_compared_with_itself_fails() {
    let pair = orders_pair().await;
    // No profile, no role: the other side is the source itself.
    let (code, json) = preflight(&pair.table, &[("VERIFY_PROFILE", "")]);
    assert_eq!(code, Some(2), "{json:#}");
    let (status, found, _) = check(&json, "two tables");
    assert_eq!(status, "FAIL");
    assert!(
        found.starts_with("VERIFY_TABLE_NAME names the very table verified"),
        "{found}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_checkpoint_and_findings_tables_fail_until_init_creates_them_and_init_twice_is_fine(
) {
    let pair = orders_pair().await;
    let (checkpoints, findings) = (unique("Checkpoints"), unique("Findings"));
    let own = [
        ("CHECKPOINT_TABLE", checkpoints.as_str()),
        ("FINDINGS_TABLE", findings.as_str()),
    ];
    let (code, json) = preflight(&pair.table, &own);
    assert_eq!(code, Some(2), "{json:#}");
    for name in ["checkpoint table", "findings table"] {
        let (status, _, todo) = check(&json, name);
        assert_eq!(status, "FAIL", "{name}");
        assert!(todo.contains("ddb-verify init"), "{todo}");
    }

    let out = cli(&["init"], &own);
    let text = output_of(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("CHECKPOINT_TABLE {checkpoints}: created")),
        "{text}"
    );
    assert!(
        text.contains(&format!("FINDINGS_TABLE {findings}: created")),
        "{text}"
    );
    assert!(text.contains("TTL: turned on"), "{text}");
    // DynamoDB Local has no point-in-time recovery: said, not an error.
    assert!(
        text.contains("point-in-time recovery: not supported by this endpoint"),
        "{text}"
    );

    let again = cli(&["init", "--json"], &own);
    assert_eq!(again.status.code(), Some(0), "{}", output_of(&again));
    let json: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(json["tables"][0]["created"], false, "{json:#}");
    assert_eq!(json["tables"][1]["time_to_live"], "on", "{json:#}");

    let (code, json) = preflight(&pair.table, &own);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(status(&json, "checkpoint table"), "OK");
    assert_eq!(status(&json, "findings table"), "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refuses_a_table_of_another_layout_naming_it_and_needs_one_of_its_variables() {
    let source = account(SOURCE_ACCOUNT);
    let taken = unique("Orders");
    create_table(&source, &taken, &ORDER_KEYS, None).await;
    let out = cli(&["init"], &[("FINDINGS_TABLE", &taken)]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "FINDINGS_TABLE {taken} exists but is not a findings table"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("it has no index byStatus"), "{stderr}");

    let out = cli(&["init"], &[]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CHECKPOINT_TABLE") && stderr.contains("FINDINGS_TABLE"),
        "{stderr}"
    );
}

#[test]
fn preflight_without_a_source_table_is_an_error_naming_the_variable() {
    let out = cli(&["preflight"], &[("VERIFY_TABLE_NAME", "Orders")]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SOURCE_TABLE_NAME is required"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_role_that_cannot_be_assumed_from_here_is_not_checked_and_a_bad_arn_is_refused()
{
    let pair = orders_pair().await;
    let role = "arn:aws:iam::111111111111:role/stream-verifier";
    let out = cli(
        &["preflight", "--json", "--as-deployed", role],
        &[
            ("SOURCE_TABLE_NAME", &pair.table),
            ("VERIFY_TABLE_NAME", &pair.table),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_of(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (status, found, todo) = check(&json, "deployed role");
    assert_eq!(status, "NOT CHECKED");
    assert!(
        found.starts_with(role) && found.contains("sts:AssumeRole"),
        "{found}"
    );
    assert!(todo.contains("lambda.amazonaws.com"), "{todo}");

    let out = cli(&["preflight", "--as-deployed", "stream-verifier"], &[]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("an IAM role ARN"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_readers_of_the_stream_warn_counting_the_mappings_lambda_lists_and_the_poller() {
    use crate::common::fake_aws::FakeLambda;
    let pair = orders_pair().await;
    let lambda = FakeLambda::start().await;
    let endpoint = lambda.endpoint();
    let with_lambda = [("AWS_ENDPOINT_URL_LAMBDA", endpoint.as_str())];
    let readers = |args: &[&str]| {
        let mut all = vec![
            ("SOURCE_TABLE_NAME", pair.table.as_str()),
            ("VERIFY_TABLE_NAME", pair.table.as_str()),
        ];
        all.extend_from_slice(&with_lambda);
        let out = cli(&[&["preflight", "--json"], args].concat(), &all);
        let json: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON ({e}): {}", output_of(&out)));
        check(&json, "stream readers")
    };
    // The stream verifier's mapping and a replicator's: two readers, as the service allows.
    lambda.set_mappings(&[
        ("stream-verifier", 1_800_000_000),
        ("replicator", 1_800_000_000),
    ]);
    let (status, found, _) = readers(&[]);
    assert_eq!(status, "OK", "{found}");
    assert!(found.contains("readers of each shard: 2"), "{found}");
    // The shard poller beside them is a third: throttled.
    let (status, found, todo) = readers(&["--poller"]);
    assert_eq!(status, "WARN", "{found}");
    assert!(found.contains("readers of each shard: 3"), "{found}");
    assert!(todo.contains("keep one"), "{todo}");
    // One mapping and a reader preflight cannot list.
    lambda.set_mappings(&[("stream-verifier", 1_800_000_000)]);
    let (status, found, _) = readers(&["--other-readers", "2"]);
    assert_eq!(status, "WARN", "{found}");
}
