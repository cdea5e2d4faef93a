//! Security properties of the stream verifier (issue 6), on the real `stream-verifier` binary under
//! a fake Lambda Runtime API, with DynamoDB Local as both accounts and a fake STS:
//!
//! 1. `VERIFY_ROLE_ARN` is assumed with `VERIFY_ROLE_EXTERNAL_ID` and the verifier's session name,
//!    signed with the function's own credentials, and the other account's table is then read with the
//!    assumed credentials (and only with them);
//! 2. logs, EMF metrics and the answer to Lambda hold no item values unless `LOG_ITEM_VALUES=true`,
//!    and never a secret access key or session token, at the levels an operator would use (INFO, and
//!    DEBUG; TRACE is a dependency's debugging aid that prints whole events and requests).
//!
//! The binary is run (rather than the library in-process) because the STS endpoint can only be set
//! through the environment (`AWS_ENDPOINT_URL_STS`, read by aws-config when `clients` loads the
//! other account's config), and because what leaks is what the process prints.

use crate::common::fake_aws::{run_stream_verifier, BinaryRun, FakeSts, IssuedCredentials, Posted};
use crate::common::*;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType, StreamViewType};
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_stream-verifier");
const ROLE_ARN: &str = "arn:aws:iam::222222222222:role/verifier-read";
const EXTERNAL_ID: &str = "ext-id-5c1e9d2b7a40";

/// The function's own credentials, as Lambda sets them (a session token included).
const SOURCE_SECRET: &str = "srcSecretKey0c8Fq2Zr9LmW4tYx7Hb3NvPd6KsJ1gEaU";
const SOURCE_TOKEN: &str = "srcSessionToken9d4Xk2Qw7Rt5Yp8Lm3Nb6Vc1Zx0Ja";
/// What the fake STS issues: the access key id is DynamoDB Local's database of the other account.
const ASSUMED_KEY: &str = "assumedtarget";
const ASSUMED_SECRET: &str = "assumedSecretKey3Hn8Wq1Ze6Rt4Yu7Io2Pa5Sd9Fg0Jk";
const ASSUMED_TOKEN: &str = "assumedSessionToken7Lk2Mj5Nh8Bg1Vf4Cd6Xs3Za9Qw";

fn issued(access_key_id: &str) -> IssuedCredentials {
    IssuedCredentials {
        access_key_id: access_key_id.into(),
        secret_access_key: ASSUMED_SECRET.into(),
        session_token: ASSUMED_TOKEN.into(),
    }
}

/// The binary's environment as in Lambda: own credentials from the environment, the other account
/// through the role, endpoints on this machine, and windows that suit DynamoDB Local (its stream
/// creation times do not follow the writes).
fn lambda_env(
    sts: &FakeSts,
    table: &str,
    external_id: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", SOURCE_ACCOUNT.to_string()),
        ("AWS_SECRET_ACCESS_KEY", SOURCE_SECRET.to_string()),
        ("AWS_SESSION_TOKEN", SOURCE_TOKEN.to_string()),
        // No shared files or instance metadata of this machine.
        ("AWS_CONFIG_FILE", "/dev/null".to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint().to_string()),
        ("AWS_ENDPOINT_URL_STS", sts.endpoint()),
        ("VERIFY_TABLE_NAME", table.to_string()),
        ("VERIFY_ROLE_ARN", ROLE_ARN.to_string()),
        ("LAG_WINDOW_FROM", "arrival".to_string()),
        ("MAX_REPLICATION_LAG", "200ms".to_string()),
    ];
    if let Some(external_id) = external_id {
        env.push(("VERIFY_ROLE_EXTERNAL_ID", external_id.to_string()));
    }
    env
}

/// The EMF documents the run printed on stdout.
fn emf(run: &BinaryRun) -> Vec<Value> {
    run.stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

/// A counter's value in the run's EMF documents (each counter is in exactly one document).
fn metric(run: &BinaryRun, name: &str) -> f64 {
    let docs = emf(run);
    let values: Vec<f64> = docs.iter().filter_map(|d| d.get(name)?.as_f64()).collect();
    assert_eq!(
        values.len(),
        1,
        "{name} once in the EMF documents: {docs:#?}\n{}",
        run.everything()
    );
    values[0]
}

/// The answer posted to the Runtime API, as JSON (the run must have answered normally).
fn response(run: &BinaryRun) -> Value {
    match &run.posted {
        Some(Posted::Response(body)) => serde_json::from_str(body).expect("JSON response"),
        _ => panic!(
            "the binary did not answer the invocation:\n{}",
            run.everything()
        ),
    }
}

fn failures(run: &BinaryRun) -> Vec<String> {
    response(run)["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assume_role_sends_the_external_id_and_its_credentials_read_the_other_account() {
    let source = account(SOURCE_ACCOUNT);
    let assumed = account(ASSUMED_KEY);
    // Different names, so a verifier reading with the wrong credentials cannot find the item in a
    // same-named table of another account.
    let source_table = unique("SecRoleSrc");
    let target_table = unique("SecRoleDst");
    let keys = [("pk", ScalarAttributeType::S)];
    let stream = create_table(
        &source,
        &source_table,
        &keys,
        Some(StreamViewType::NewAndOldImages),
    )
    .await
    .expect("stream");
    create_table(&assumed, &target_table, &keys, None).await;
    let row = item(&[("pk", s("order-1")), ("status", s("SHIPPED"))]);
    put(&source, &source_table, &row).await;
    put(&assumed, &target_table, &row).await;
    let event = stream_events(&source, &stream, 100).await.remove(0);
    let sequence_number = event["Records"][0]["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .to_string();
    // The table is in the assumed key's database only: the function's own key cannot see it.
    assert!(source
        .dynamodb
        .describe_table()
        .table_name(&target_table)
        .send()
        .await
        .is_err());

    // (a)+(b) with the external id; (c) without; and a control where STS hands out the key of an
    // account without the table, to show that the MATCH depends on the assumed credentials.
    let (with_id, without_id, elsewhere) = (
        FakeSts::start(issued(ASSUMED_KEY)).await,
        FakeSts::start(issued(ASSUMED_KEY)).await,
        FakeSts::start(issued("assumedelsewhere")).await,
    );
    let env_with_id = lambda_env(&with_id, &target_table, Some(EXTERNAL_ID));
    let env_without_id = lambda_env(&without_id, &target_table, None);
    let env_elsewhere = lambda_env(&elsewhere, &target_table, Some(EXTERNAL_ID));
    let (run_with_id, run_without_id, run_elsewhere) = tokio::join!(
        run_stream_verifier(BINARY, &env_with_id, &event),
        run_stream_verifier(BINARY, &env_without_id, &event),
        run_stream_verifier(BINARY, &env_elsewhere, &event),
    );

    // (a) One AssumeRole call (the credentials are cached), signed with the function's own key,
    // for the configured role, with the verifier's session name and the external id.
    let calls = with_id.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}\n{}", run_with_id.everything());
    let call = &calls[0];
    assert_eq!(
        call.params.get("Action").map(String::as_str),
        Some("AssumeRole")
    );
    assert_eq!(
        call.params.get("Version").map(String::as_str),
        Some("2011-06-15")
    );
    assert_eq!(
        call.params.get("RoleArn").map(String::as_str),
        Some(ROLE_ARN)
    );
    assert_eq!(
        call.params.get("RoleSessionName").map(String::as_str),
        Some(ddb_verify::aws::clients::ROLE_SESSION_NAME)
    );
    assert_eq!(
        call.params.get("ExternalId").map(String::as_str),
        Some(EXTERNAL_ID),
        "{call:#?}"
    );
    assert_eq!(call.signed_by.as_deref(), Some(SOURCE_ACCOUNT), "{call:#?}");

    // (b) The other account's table exists only under the assumed key: a MATCH proves the lookup
    // used it.
    assert_eq!(
        metric(&run_with_id, "Match"),
        1.0,
        "{}",
        run_with_id.everything()
    );
    assert_eq!(metric(&run_with_id, "LookupErrors"), 0.0);
    assert!(failures(&run_with_id).is_empty());

    // (c) Without VERIFY_ROLE_EXTERNAL_ID, no ExternalId parameter at all (not an empty one).
    let calls = without_id.calls();
    assert_eq!(
        calls.len(),
        1,
        "{calls:#?}\n{}",
        run_without_id.everything()
    );
    assert!(
        !calls[0].params.contains_key("ExternalId"),
        "{:#?}",
        calls[0]
    );
    assert_eq!(
        calls[0].params.get("RoleArn").map(String::as_str),
        Some(ROLE_ARN)
    );
    assert_eq!(metric(&run_without_id, "Match"), 1.0);

    // Control: the same run with credentials of another account finds no table, so the record is not
    // matched but goes back to Lambda.
    assert_eq!(elsewhere.calls().len(), 1);
    assert_eq!(
        metric(&run_elsewhere, "Match"),
        0.0,
        "{}",
        run_elsewhere.everything()
    );
    assert_eq!(metric(&run_elsewhere, "LookupErrors"), 1.0);
    assert_eq!(failures(&run_elsewhere), vec![sequence_number]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verifier_in_the_other_account_re_reads_the_source_through_source_role_arn() {
    const SOURCE_ROLE: &str = "arn:aws:iam::111111111111:role/verifier-source-read";
    let source = account(SOURCE_ACCOUNT);
    let target = account(TARGET_ACCOUNT);
    let source_table = unique("SecSrcRole");
    let target_table = unique("SecSrcRoleDst");
    let keys = [("pk", ScalarAttributeType::S)];
    let stream = create_table(
        &source,
        &source_table,
        &keys,
        Some(StreamViewType::NewImage),
    )
    .await
    .expect("stream");
    create_table(&target, &target_table, &keys, None).await;
    put(
        &source,
        &source_table,
        &item(&[("pk", s("order-1")), ("status", s("SHIPPED"))]),
    )
    .await;
    put(
        &target,
        &target_table,
        &item(&[("pk", s("order-1")), ("status", s("PLACED"))]),
    )
    .await;
    let event = stream_events(&source, &stream, 100).await.remove(0);

    // The function's own credentials are the other (target) account's; STS hands out the source
    // account's key for the source role.
    let env = |sts: &FakeSts, role: bool| {
        let mut env = vec![
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ACCESS_KEY_ID", TARGET_ACCOUNT.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SOURCE_SECRET.to_string()),
            ("AWS_CONFIG_FILE", "/dev/null".to_string()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint().to_string()),
            ("AWS_ENDPOINT_URL_STS", sts.endpoint()),
            ("VERIFY_TABLE_NAME", target_table.clone()),
            ("LAG_WINDOW_FROM", "arrival".to_string()),
            ("MAX_REPLICATION_LAG", "200ms".to_string()),
        ];
        if role {
            env.push(("SOURCE_ROLE_ARN", SOURCE_ROLE.to_string()));
            env.push(("SOURCE_ROLE_EXTERNAL_ID", EXTERNAL_ID.to_string()));
        }
        env
    };
    let (with_role, without_role) = (
        FakeSts::start(issued(SOURCE_ACCOUNT)).await,
        FakeSts::start(issued(SOURCE_ACCOUNT)).await,
    );
    let (env_with, env_without) = (env(&with_role, true), env(&without_role, false));
    let (run_with, run_without) = tokio::join!(
        run_stream_verifier(BINARY, &env_with, &event),
        run_stream_verifier(BINARY, &env_without, &event),
    );
    // Through the role the source still holds what the record says: a proven MISMATCH.
    let calls = with_role.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}\n{}", run_with.everything());
    assert_eq!(
        calls[0].params.get("RoleArn").map(String::as_str),
        Some(SOURCE_ROLE)
    );
    assert_eq!(
        calls[0].params.get("ExternalId").map(String::as_str),
        Some(EXTERNAL_ID)
    );
    assert_eq!(calls[0].signed_by.as_deref(), Some(TARGET_ACCOUNT));
    assert_eq!(
        metric(&run_with, "Mismatch"),
        1.0,
        "{}",
        run_with.everything()
    );
    assert!(run_with.everything().contains("source_as_recorded"));
    // With its own credentials the function cannot see the source table: no verdict on a guess.
    assert!(without_role.calls().is_empty());
    assert_eq!(
        metric(&run_without, "Mismatch"),
        0.0,
        "{}",
        run_without.everything()
    );
    assert_eq!(metric(&run_without, "LookupErrors"), 1.0);
    assert_eq!(failures(&run_without).len(), 1);
}

/// In every item value of the scenario below; never in a key or an attribute name.
const MARKER: &str = "SECRET-VALUE-7f3a";
/// A number value (a card number, say) in a malformed record.
const NUMBER_MARKER: &str = "731958264093";

/// Stream records that cannot be read, each with an item value that must not reach the logs through
/// the reason given for the UNVERIFIABLE verdict.
fn malformed_records(stream_arn: &str) -> Vec<Value> {
    let record = |n: u32, value: Value| {
        json!({
            "eventID": format!("malformed-{n}"),
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": REGION,
            "dynamodb": {
                "ApproximateCreationDateTime": 1793577600,
                "Keys": {"pk": {"S": format!("order-malformed-{n}")}},
                "NewImage": {"pk": {"S": format!("order-malformed-{n}")}, "cardNote": value},
                "SequenceNumber": format!("90000000000000000000{n}"),
                "SizeBytes": 100,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            },
            "eventSourceARN": stream_arn
        })
    };
    vec![
        // A value of the wrong JSON type for its DynamoDB type.
        record(1, json!({"BOOL": format!("{MARKER}-malformed-bool")})),
        // Plain JSON instead of DynamoDB JSON.
        record(2, json!(format!("{MARKER}-malformed-plain"))),
        // A set that is not a list.
        record(3, json!({"SS": format!("{MARKER}-malformed-set")})),
        // An unknown type descriptor.
        record(4, json!({"Q": format!("{MARKER}-malformed-type")})),
        // A number sent as a JSON number instead of a string.
        record(5, json!({"N": NUMBER_MARKER.parse::<u64>().unwrap()})),
    ]
}

/// The lines of `text` that contain `needle`, for failure messages.
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

fn assert_absent(run: &BinaryRun, what: &str, needle: &str) {
    let all = run.everything();
    assert!(
        !all.contains(needle),
        "{what} ({needle:?}) is in the output:\n{:#?}",
        lines_with(&all, needle)
    );
}

fn assert_no_credentials(run: &BinaryRun) {
    for (what, secret) in [
        ("the function's secret access key", SOURCE_SECRET),
        ("the function's session token", SOURCE_TOKEN),
        ("the assumed role's secret access key", ASSUMED_SECRET),
        ("the assumed role's session token", ASSUMED_TOKEN),
    ] {
        assert_absent(run, what, secret);
    }
}

/// Verdicts, keys and attribute names are reported; the answer to Lambda is complete.
fn assert_reported(run: &BinaryRun, label: &str) {
    let all = run.everything();
    for (metric_name, expected) in [
        ("RecordsReceived", 8.0),
        ("Match", 1.0),
        ("Mismatch", 1.0),
        ("Missing", 1.0),
        ("Unverifiable", 5.0),
        ("BatchItemFailures", 0.0),
    ] {
        assert_eq!(
            metric(run, metric_name),
            expected,
            "{label}: {metric_name}\n{all}"
        );
    }
    assert!(failures(run).is_empty(), "{label}");
    for needle in [
        "MISMATCH",
        "MISSING",
        "UNVERIFIABLE",
        "order-mismatch",
        "order-missing",
        "cardNote",
        "address.city",
        "malformed-1",
        "malformed-5",
    ] {
        assert!(
            all.contains(needle),
            "{label}: {needle:?} not reported:\n{all}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_metrics_and_answers_hold_no_item_values_without_opt_in_and_never_credentials() {
    let source = account(SOURCE_ACCOUNT);
    let assumed = account(ASSUMED_KEY);
    let table = unique("SecLogs");
    let keys = [("pk", ScalarAttributeType::S)];
    let stream = create_table(
        &source,
        &table,
        &keys,
        Some(StreamViewType::NewAndOldImages),
    )
    .await
    .expect("stream");
    create_table(&assumed, &table, &keys, None).await;

    let order = |pk: &str, note: &str, city: &str| {
        item(&[
            ("pk", s(pk)),
            ("cardNote", s(&format!("{MARKER}-{note}"))),
            (
                "address",
                AttributeValue::M(item(&[("city", s(&format!("{MARKER}-{city}")))])),
            ),
        ])
    };
    // Drift: a MISMATCH in a top-level and a nested attribute, a MISSING item, and a MATCH.
    put(
        &source,
        &table,
        &order("order-mismatch", "note-source", "city-source"),
    )
    .await;
    put(
        &assumed,
        &table,
        &order("order-mismatch", "note-target", "city-target"),
    )
    .await;
    put(
        &source,
        &table,
        &order("order-missing", "note-missing", "city-missing"),
    )
    .await;
    let matching = order("order-match", "note-match", "city-match");
    put(&source, &table, &matching).await;
    put(&assumed, &table, &matching).await;
    let mut event = stream_events(&source, &stream, 100).await.remove(0);
    event["Records"]
        .as_array_mut()
        .unwrap()
        .extend(malformed_records(&stream));

    let sts = FakeSts::start(issued(ASSUMED_KEY)).await;
    let with = |extra: &[(&'static str, &str)]| {
        let mut env = lambda_env(&sts, &table, Some(EXTERNAL_ID));
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        env
    };
    // INFO in text (the default), DEBUG in JSON as Lambda's advanced logging controls set it, and
    // the opt-in.
    let info = with(&[("RUST_LOG", "info")]);
    let debug = with(&[
        ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
    ]);
    let opt_in = with(&[("RUST_LOG", "info"), ("LOG_ITEM_VALUES", "true")]);
    let (info, debug, opt_in) = tokio::join!(
        run_stream_verifier(BINARY, &info, &event),
        run_stream_verifier(BINARY, &debug, &event),
        run_stream_verifier(BINARY, &opt_in, &event),
    );

    for (run, label) in [(&info, "INFO"), (&debug, "DEBUG, JSON")] {
        assert_reported(run, label);
        assert_absent(run, &format!("{label}: an item value"), MARKER);
        assert_absent(run, &format!("{label}: a number value"), NUMBER_MARKER);
        assert_no_credentials(run);
    }
    // DEBUG really was on (the SDK's and the runtime's own lines), else it tested nothing more.
    assert!(
        debug.stdout.contains(r#""level":"DEBUG""#),
        "{}",
        debug.everything()
    );

    // The opt-in shows the MISMATCH's expected and found values, so the checks above can fail; it
    // adds nothing else (not the missing or matching items', not the malformed records').
    assert_reported(&opt_in, "LOG_ITEM_VALUES=true");
    let all = opt_in.everything();
    for value in ["note-source", "note-target", "city-source", "city-target"] {
        let value = format!("{MARKER}-{value}");
        assert!(
            all.contains(&value),
            "{value} not logged with LOG_ITEM_VALUES=true:\n{all}"
        );
    }
    for value in [
        "note-missing",
        "city-missing",
        "note-match",
        "city-match",
        "malformed",
    ] {
        assert_absent(
            &opt_in,
            "LOG_ITEM_VALUES=true: another value",
            &format!("{MARKER}-{value}"),
        );
    }
    assert_absent(
        &opt_in,
        "LOG_ITEM_VALUES=true: a number value",
        NUMBER_MARKER,
    );
    assert_no_credentials(&opt_in);
}
