//! `ddb-verify findings`, `accept` and `readiness` against DynamoDB Local: readiness over a real
//! findings table (coverage written with `cover`, findings with `record`), each reason in turn, and
//! the built binary's output and exit statuses.

use std::process::Output;

use crate::common::*;
use aws_sdk_dynamodb::types::{ScalarAttributeType, StreamSpecification, StreamViewType};
use ddb_verify::aws::findings::DynamoDbFindings;
use ddb_verify::ports::findings::{
    CoverageSource, CoverageWrite, FindingOrigin, FindingStatus, FindingsStore, GapCause, GapWrite,
    ProblemWrite,
};
use ddb_verify::readiness::{self, Readiness, ReadinessOptions, TableStream};
use ddb_verify::record::Item;
use ddb_verify::shared::epoch_ms;

const MIN: u64 = 60_000;

const ORDER_KEY_TYPES: [(&str, ScalarAttributeType); 2] = [
    ("customerId", ScalarAttributeType::S),
    ("orderId", ScalarAttributeType::N),
];

/// One input of readiness made to fail.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Break {
    Nothing,
    NoBaseline,
    IncompleteBaseline,
    StreamAfterBaseline,
    StaleStream,
    NoStream,
    OpenFinding,
    RecentRetry,
    Sampled,
    Trimmed,
}

async fn record_problem(store: &DynamoDbFindings, table: &str, key: &Item, now: u64) {
    let problem = status_mismatch("source_as_recorded");
    store
        .record(&ProblemWrite {
            table,
            key,
            problem: &problem,
            origin: FindingOrigin::Baseline,
            occurrence: "baseline:run-1",
            sequence_number: None,
            baseline_run: Some("run-1"),
            now_ms: now,
            next_check_ms: now + MIN,
        })
        .await
        .expect("record a finding");
}

/// A source table with a stream, and a findings table holding what makes it GO (stream
/// verification since an hour ago, verified up to 30 seconds ago; a baseline run from 30 to 10
/// minutes ago), but for `broken`.
async fn state(broken: Break) -> (DynamoDbFindings, String) {
    let source = account(SOURCE_ACCOUNT);
    let store = findings_store(&source).await;
    let table = unique("Orders");
    let stream = create_table(
        &source,
        &table,
        &ORDER_KEY_TYPES,
        Some(StreamViewType::NewAndOldImages),
    )
    .await
    .expect("a stream");
    let now = epoch_ms();
    if broken != Break::NoStream {
        let started = match broken {
            Break::StreamAfterBaseline => now - 20 * MIN,
            _ => now - 60 * MIN,
        };
        let until = match broken {
            Break::StaleStream => now - 8 * MIN,
            _ => now - 30_000,
        };
        store
            .cover(&CoverageWrite {
                table: &table,
                source: CoverageSource::Stream,
                name: "stream-verifier",
                stream_arn: Some(&stream),
                started_at_ms: Some(started),
                verified_until_ms: Some(until),
                retry_at_ms: match broken {
                    Break::RecentRetry => Some(now - MIN),
                    _ => Some(now - 30 * MIN),
                },
                complete: None,
                sample_rate: Some(if broken == Break::Sampled { 0.5 } else { 1.0 }),
                // Trimmed after the baseline began (30 minutes ago).
                gaps: (broken == Break::Trimmed)
                    .then(|| GapWrite {
                        cause: GapCause::Trimmed,
                        detail: "trimmed in a test".into(),
                    })
                    .into_iter()
                    .collect(),
                // The gap's time is the write's: 5 minutes ago.
                now_ms: if broken == Break::Trimmed {
                    now - 5 * MIN
                } else {
                    now
                },
            })
            .await
            .expect("cover");
    }
    if broken != Break::NoBaseline {
        let complete = broken != Break::IncompleteBaseline;
        store
            .cover(&CoverageWrite {
                table: &table,
                source: CoverageSource::Baseline,
                name: "run-1",
                stream_arn: None,
                started_at_ms: Some(now - 30 * MIN),
                verified_until_ms: complete.then_some(now - 10 * MIN),
                retry_at_ms: None,
                complete: Some(complete),
                sample_rate: None,
                gaps: Vec::new(),
                now_ms: now,
            })
            .await
            .expect("cover");
    }
    if broken == Break::OpenFinding {
        record_problem(&store, &table, &order_key("customer#1", 7), now - 20 * MIN).await;
    }
    (store, table)
}

async fn readiness_of(store: &DynamoDbFindings, table: &str) -> Readiness {
    let stream = match ddb_verify::aws::describe::enabled_stream(store.client(), table).await {
        Ok(Some(arn)) => TableStream::Current(arn),
        Ok(None) => TableStream::Disabled,
        Err(why) => TableStream::Unknown(why),
    };
    let mut input = readiness::gather(store, table, stream)
        .await
        .expect("gather");
    // The stream verifier's failure queue, read and empty (the CLI tests read a fake one).
    input.failure_queue = readiness::FailureQueueState::Read {
        url: "https://sqs.us-east-1.amazonaws.com/000000000000/verifier-failures".into(),
        depth: Default::default(),
    };
    readiness::assess(&input, epoch_ms(), &ReadinessOptions::default())
}

fn failing(r: &Readiness) -> Vec<&'static str> {
    r.checks.iter().filter(|c| !c.ok).map(|c| c.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_once_every_check_holds() {
    let (store, table) = state(Break::Nothing).await;
    let r = readiness_of(&store, &table).await;
    assert!(r.ready, "{}", r.to_text());
    assert_eq!(r.checks.len(), 7);
    assert_eq!(r.baseline.as_ref().unwrap().run_id, "run-1");
    assert!(r.baseline.as_ref().unwrap().complete);
    assert_eq!(r.open_findings, 0);
    assert!(r.verified_until_ms.is_some());
    // Another table's state is not this one's.
    let other = readiness_of(&store, "OtherTable").await;
    assert!(!other.ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_go_for_each_reason_in_turn() {
    use ddb_verify::readiness::*;
    for (broken, expected) in [
        (Break::NoBaseline, &[CHECK_BASELINE, CHECK_NO_GAP][..]),
        (
            Break::IncompleteBaseline,
            &[CHECK_BASELINE, CHECK_NO_GAP][..],
        ),
        (Break::StreamAfterBaseline, &[CHECK_NO_GAP][..]),
        (Break::StaleStream, &[CHECK_STREAM_RECENT][..]),
        (Break::NoStream, &[CHECK_NO_GAP, CHECK_STREAM_RECENT][..]),
        (Break::OpenFinding, &[CHECK_NO_OPEN_FINDINGS][..]),
        (Break::RecentRetry, &[CHECK_NO_RECENT_RETRIES][..]),
        (Break::Sampled, &[CHECK_EVERY_CHANGE][..]),
        (Break::Trimmed, &[CHECK_EVERY_CHANGE][..]),
    ] {
        let (store, table) = state(broken).await;
        let r = readiness_of(&store, &table).await;
        assert!(!r.ready, "{broken:?}: {}", r.to_text());
        assert_eq!(failing(&r), expected, "{broken:?}: {}", r.to_text());
        assert_eq!(r.reasons().len(), expected.len());
        // The passing checks are listed too.
        assert_eq!(r.checks.len(), 7);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_moves_a_finding_out_of_the_open_list_and_readiness_lists_it() {
    let (store, table) = state(Break::OpenFinding).await;
    let key = order_key("customer#1", 7);
    let other = order_key("customer#2", 8);
    assert!(!readiness_of(&store, &table).await.ready);
    // No finding for this key: nothing accepted.
    assert!(!store
        .accept(&table, &other, "n/a", epoch_ms())
        .await
        .unwrap());
    assert!(store
        .accept(&table, &key, "known test item", epoch_ms())
        .await
        .unwrap());
    let open = store
        .list(&table, FindingStatus::Open, None, None)
        .await
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
    let accepted = store
        .list(&table, FindingStatus::Accepted, None, None)
        .await
        .unwrap();
    assert_eq!(accepted.len(), 1);
    let r = readiness_of(&store, &table).await;
    assert!(r.ready, "{}", r.to_text());
    assert_eq!(r.accepted.len(), 1);
    assert_eq!(
        r.accepted[0].key,
        r#"customerId=S:"customer#1", orderId=N:7"#
    );
    assert_eq!(r.accepted[0].reason, "known test item");
    assert_eq!(r.to_json()["accepted_findings"][0]["verdict"], "MISMATCH");
}

/// Endpoints for every test's readiness, on a thread of their own: Lambda, where the stream
/// verifier's event source mapping was attached in 2020 and is unchanged since, and SQS, where its
/// failure queue is empty.
fn fake_endpoints() -> &'static (String, String) {
    static ENDPOINTS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    ENDPOINTS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the fakes");
            runtime.block_on(async {
                let lambda = crate::common::fake_aws::FakeLambda::start().await;
                lambda.set_mappings(&[("stream-verifier", 1_600_000_000)]);
                let sqs = crate::common::fake_aws::FakeSqs::start().await;
                tx.send((lambda.endpoint(), sqs.endpoint()))
                    .expect("send the endpoints");
                std::future::pending::<()>().await;
            });
        });
        rx.recv().expect("the fakes' endpoints")
    })
}

fn lambda_endpoint() -> &'static str {
    &fake_endpoints().0
}

/// The empty failure queue's URL, and its endpoint.
fn empty_queue() -> (String, &'static str) {
    let endpoint = &fake_endpoints().1;
    (
        format!("{endpoint}/000000000000/verifier-failures"),
        endpoint,
    )
}

fn ddb_verify(store: &DynamoDbFindings, table: &str, args: &[&str]) -> Output {
    let (queue, sqs) = empty_queue();
    ddb_verify_cli(
        args,
        &[
            // No AWS config file here: these commands take no profile.
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("FINDINGS_TABLE", store.table()),
            ("SOURCE_TABLE_NAME", table),
            ("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint()),
            ("FAILURE_QUEUE_URL", &queue),
            ("AWS_ENDPOINT_URL_SQS", sqs),
        ],
    )
}

/// `ddb-verify readiness --json` with `more` arguments: its JSON, once its exit status is shown to
/// be `status` (0 GO, 2 NO-GO).
fn readiness_json(
    store: &DynamoDbFindings,
    table: &str,
    more: &[&str],
    status: i32,
) -> serde_json::Value {
    let out = ddb_verify(store, table, &[&["readiness", "--json"], more].concat());
    assert_eq!(out.status.code(), Some(status), "{}", output_of(&out));
    json_of(&out)
}

/// The first reason readiness gives for a NO-GO.
fn first_reason(r: &serde_json::Value) -> &str {
    r["reasons"][0].as_str().expect("a reason")
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_findings_accept_and_readiness_exit_2_then_0() {
    let (store, table) = state(Break::OpenFinding).await;
    let key_text = r#"customerId=S:"customer#1", orderId=N:7"#;

    let out = ddb_verify(&store, &table, &["findings", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let open = json_of(&out);
    assert_eq!(open.as_array().unwrap().len(), 1);
    assert_eq!(open[0]["key"], key_text);
    assert_eq!(open[0]["verdict"], "MISMATCH");
    assert_eq!(open[0]["status"], "OPEN");
    assert_eq!(open[0]["attributes"], serde_json::json!(["status"]));
    assert_eq!(open[0]["key_json"]["orderId"]["N"], "7");

    let out = ddb_verify(&store, &table, &["findings"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("KEY"), "{text}");
    assert!(
        text.contains(key_text) && text.contains("1 open finding for table"),
        "{text}"
    );

    let r = readiness_json(&store, &table, &[], 2);
    assert_eq!(r["ready"], false);
    assert_eq!(r["open_findings"], 1);
    assert_eq!(r["reasons"].as_array().unwrap().len(), 1);
    assert!(first_reason(&r).contains("1 open finding"));
    assert_eq!(r["baseline"]["run_id"], "run-1");
    assert!(r["verified_until"].as_str().unwrap().ends_with('Z'));

    let out = ddb_verify(&store, &table, &["readiness"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("NO-GO for table"));

    // Errors: exit 1, with what is wrong. (A key in the older form, as logs show it, parses.)
    let out = ddb_verify(
        &store,
        &table,
        &["accept", "customerId=\"nobody\" orderId=1", "--reason", "x"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains(r#"no open finding for key customerId=S:"nobody", orderId=N:1"#),
        "{}",
        stderr_of(&out)
    );
    let out = ddb_verify(
        &store,
        &table,
        &["accept", "customerId=nobody", "--reason", "x"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("expected the key as `ddb-verify findings` shows it"));
    let out = ddb_verify(&store, &table, &["accept", key_text, "--reason", "  "]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("--reason"));
    let out = ddb_verify(&store, &table, &["accept", key_text]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a usage error is 1, not NO-GO's 2"
    );
    let out = ddb_verify(&store, &table, &["readiness", "--max-lag", "soon"]);
    assert_eq!(out.status.code(), Some(1));

    let out = ddb_verify(
        &store,
        &table,
        &["accept", key_text, "--reason", "known test item"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("accepted: customerId=S:\"customer#1\", orderId=N:7 MISMATCH"));

    let out = ddb_verify(&store, &table, &["findings", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(json_of(&out), serde_json::json!([]));
    let out = ddb_verify(&store, &table, &["findings", "--json", "--accepted"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)[0]["reason"], "known test item");

    let r = readiness_json(&store, &table, &[], 0);
    assert_eq!(r["ready"], true);
    assert_eq!(r["reasons"], serde_json::json!([]));
    assert_eq!(r["accepted_findings"][0]["key"], key_text);
    assert_eq!(r["accepted_findings"][0]["reason"], "known test item");

    // A tighter allowance than the stream's 30 s lag: NO-GO again.
    let checks = &readiness_json(&store, &table, &["--max-lag", "10s"], 2)["checks"];
    assert_eq!(checks[3]["name"], "stream_recent");
    assert_eq!(checks[3]["ok"], false);
}

/// Sets the table's stream on or off, as an operator's UpdateTable does.
async fn set_stream(table: &str, enabled: bool) {
    let mut spec = StreamSpecification::builder().stream_enabled(enabled);
    if enabled {
        spec = spec.stream_view_type(StreamViewType::NewAndOldImages);
    }
    account(SOURCE_ACCOUNT)
        .dynamodb
        .update_table()
        .table_name(table)
        .stream_specification(spec.build().unwrap())
        .send()
        .await
        .expect("update the table's stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_no_go_once_the_stream_is_disabled_and_again_after_it_is_enabled_anew() {
    let (store, table) = state(Break::Nothing).await;
    let r = readiness_json(&store, &table, &[], 0);
    assert!(r["stream"].as_str().unwrap().contains(&table), "{r}");
    assert_eq!(r["chain"][0]["name"], "stream-verifier");
    assert_eq!(r["clock_skew_ms"], 1000);

    set_stream(&table, false).await;
    let out = ddb_verify(&store, &table, &["readiness"]);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("has no stream enabled"), "{text}");

    // A new stream: the verifier's coverage of the old one, begun before the baseline and recent,
    // does not count for it.
    set_stream(&table, true).await;
    let r = readiness_json(&store, &table, &[], 2);
    let reason = r["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("no stream verification recorded"),
        "{reason}"
    );
    assert!(reason.contains("1 entry of other streams"), "{reason}");

    // The clock margin is read from the command line, and named when wrong.
    let out = ddb_verify(&store, &table, &["readiness", "--clock-skew", "soon"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("--clock-skew"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn the_commands_name_a_missing_variable() {
    let out = run_binary_with_only(
        env!("CARGO_BIN_EXE_ddb-verify"),
        &["readiness"],
        &[("SOURCE_TABLE_NAME", "Orders")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("FINDINGS_TABLE is required"),
        "{}",
        stderr_of(&out)
    );
    let out = run_binary_with_only(
        env!("CARGO_BIN_EXE_ddb-verify"),
        &["findings"],
        &[("FINDINGS_TABLE", "Findings")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("SOURCE_TABLE_NAME is required"));
}

/// Runs the built `shard-poller --once` as `ddb_verify_cli` runs `ddb-verify`.
fn shard_poller(env: &[(&str, &str)]) -> Output {
    let lag = [
        ("MAX_REPLICATION_LAG", "500ms"),
        ("LAG_WINDOW_FROM", "arrival"),
    ];
    let env = [&lag[..], env].concat();
    run_binary(env!("CARGO_BIN_EXE_shard-poller"), &["--once"], &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_poller_run_after_the_baseline_began_stays_no_go_after_full_runs_through_the_binaries(
) {
    let pair = orders_pair().await;
    let (source, target, table) = (&pair.source, &pair.target, pair.table.as_str());
    let store = findings_store(source).await;
    let checkpoints = unique("Checkpoints");
    ddb_verify::aws::checkpoints::create_checkpoint_table(&source.dynamodb, &checkpoints)
        .await
        .expect("checkpoint table");
    let env = |rate: &'static str| {
        vec![
            ("SOURCE_TABLE_NAME", table),
            ("VERIFY_TABLE_NAME", table),
            ("VERIFY_PROFILE", "target-account"),
            ("CHECKPOINT_TABLE", checkpoints.as_str()),
            ("FINDINGS_TABLE", store.table()),
            ("SAMPLE_RATE", rate),
        ]
    };
    let write = |from: u32| async move {
        for i in from..from + 5 {
            let item = order_item(&format!("c#{i}"), i, "PLACED");
            put_replicated(source, target, table, &item).await;
        }
    };
    let readiness = || {
        let out = ddb_verify_cli(
            &["readiness", "--json"],
            &[
                ("FINDINGS_TABLE", store.table()),
                ("SOURCE_TABLE_NAME", table),
            ],
        );
        json_of(&out)
    };
    let poll = |rate| {
        let out = shard_poller(&env(rate));
        assert!(out.status.success(), "{}", stderr_of(&out));
    };
    write(0).await;
    poll("1");
    // DynamoDB Local cuts creation times to the minute: the poller's coverage counts from the end
    // of its first change's minute, which the baseline must begin after.
    let now = epoch_ms();
    tokio::time::sleep(std::time::Duration::from_millis(MIN - now % MIN + 1_500)).await;
    let out = ddb_verify_cli(&["baseline", "--json"], &env("1"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    write(10).await;
    poll("1");
    let r = readiness();
    assert_eq!(r["ready"], true, "{r}");

    // A run that verified one key in a million, then full runs again.
    write(20).await;
    poll("0.000001");
    write(30).await;
    poll("1");
    let r = readiness();
    assert_eq!(r["ready"], false, "{r}");
    let failing: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["every_change"], "{r}");
    assert!(first_reason(&r).contains("sampled"), "{r}");
    assert_eq!(r["gaps"][0]["cause"], "sampled");
    assert_eq!(r["gaps"][0]["after_baseline"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_no_go_while_the_failure_queue_holds_records_and_names_a_bad_queue_url() {
    let (store, table) = state(Break::Nothing).await;
    let sqs = crate::common::fake_aws::FakeSqs::start().await;
    let endpoint = sqs.endpoint();
    let url = format!("{endpoint}/000000000000/verifier-failures");
    let run = |queue_url: &str| {
        ddb_verify_cli(
            &["readiness", "--json"],
            &[
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("FINDINGS_TABLE", store.table()),
                ("SOURCE_TABLE_NAME", &table),
                ("FAILURE_QUEUE_URL", queue_url),
                ("AWS_ENDPOINT_URL_SQS", &endpoint),
                ("AWS_ENDPOINT_URL_LAMBDA", lambda_endpoint()),
            ],
        )
    };
    sqs.set_depth(2, 1, 0);
    let out = run(&url);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let r = json_of(&out);
    let reason = r["reasons"][0].as_str().unwrap();
    assert!(reason.contains("holds 3 message(s)"), "{r}");
    assert!(reason.contains(&url), "{reason}");

    sqs.set_depth(0, 0, 0);
    let out = run(&url);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(json_of(&out)["checks"][6]["name"], "failure_queue_empty");

    let out = run("verifier-failures");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("FAILURE_QUEUE_URL"),
        "{}",
        stderr_of(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_says_no_go_once_the_stream_verifiers_mapping_was_attached_again_after_the_baseline(
) {
    let (store, table) = state(Break::Nothing).await;
    let lambda = crate::common::fake_aws::FakeLambda::start().await;
    let endpoint = lambda.endpoint();
    let (queue, sqs) = empty_queue();
    let run = || {
        ddb_verify_cli(
            &["readiness", "--json"],
            &[
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("FINDINGS_TABLE", store.table()),
                ("SOURCE_TABLE_NAME", &table),
                ("AWS_ENDPOINT_URL_LAMBDA", &endpoint),
                ("FAILURE_QUEUE_URL", &queue),
                ("AWS_ENDPOINT_URL_SQS", sqs),
            ],
        )
    };
    let now_s = epoch_ms() / 1000;
    // Attached two hours ago, before the stream verifier's coverage began: GO.
    lambda.set_mappings(&[("stream-verifier", now_s - 7200)]);
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Detached and attached again a minute ago (the baseline began 30 minutes ago): whatever
    // came in between may never have been read, and the function cannot tell.
    lambda.set_mappings(&[("stream-verifier", now_s - 60)]);
    let out = run();
    assert_eq!(out.status.code(), Some(2));
    let r = json_of(&out);
    assert!(first_reason(&r).contains("mapping_changed"), "{r}");
    assert!(r["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["cause"] == "mapping_changed" && g["after_baseline"] == true));
    // Without a Lambda to ask (nothing answers there): NO-GO, saying what to allow.
    let out = ddb_verify_cli(
        &["readiness", "--json"],
        &[
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("FINDINGS_TABLE", store.table()),
            ("SOURCE_TABLE_NAME", &table),
            ("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9"),
            ("FAILURE_QUEUE_URL", &queue),
            ("AWS_ENDPOINT_URL_SQS", sqs),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let r = json_of(&out);
    assert!(
        first_reason(&r).contains("lambda:ListEventSourceMappings"),
        "{r}"
    );
}
