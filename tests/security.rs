//! Security properties of the stream verifier (issue 6), on the real `stream-verifier` binary under
//! a fake Lambda Runtime API, with DynamoDB Local as both accounts and a fake STS:
//!
//! `VERIFY_ROLE_ARN` is assumed with `VERIFY_ROLE_EXTERNAL_ID` and the verifier's session name,
//! signed with the function's own credentials, and the other account's table is then read with the
//! assumed credentials (and only with them).
//!
//! The binary is run (rather than the library in-process) because the STS endpoint can only be set
//! through the environment (`AWS_ENDPOINT_URL_STS`, read by aws-config when `clients` loads the
//! other account's config).

mod common;

use aws_sdk_dynamodb::types::{ScalarAttributeType, StreamViewType};
use common::fake_aws::{run_stream_verifier, BinaryRun, FakeSts, IssuedCredentials, Posted};
use common::*;
use serde_json::Value;

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
        Some(ddb_verify::clients::ROLE_SESSION_NAME)
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
