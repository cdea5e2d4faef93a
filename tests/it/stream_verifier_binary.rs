//! The Lambda binary itself: bad configuration stops it at start-up with a message naming the variable.

use std::process::Command;

#[test]
fn bad_configuration_fails_at_start_naming_the_variable() {
    for (vars, named) in [
        (vec![], "VERIFY_TABLE_NAME is required"),
        (
            vec![("VERIFY_TABLE_NAME", "Orders"), ("SAMPLE_RATE", "2")],
            "SAMPLE_RATE=\"2\" is not valid",
        ),
        (
            vec![
                ("VERIFY_TABLE_NAME", "Orders"),
                ("MAX_REPLICATION_LAG", "soon"),
            ],
            "MAX_REPLICATION_LAG=\"soon\"",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stream-verifier"))
            .env_clear()
            .envs(vars)
            .output()
            .expect("run the binary");
        assert!(!out.status.success());
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(printed.contains(named), "expected {named:?} in: {printed}");
    }
}

/// One function, three event source mappings' worth of events (`TABLE_PAIRS`): each event is
/// verified against its own pair's other side (a copy named otherwise, an attribute the pair
/// ignores), and an event of a table no pair lists is handed back whole, naming the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_function_verifies_each_events_table_against_its_own_pair() {
    use crate::common::fake_aws::{run_stream_verifier, Posted};
    use crate::common::*;
    use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
    use ddb_verify_testkit::setup::ORDER_KEYS;

    let (source, target) = (account(SOURCE_ACCOUNT), account(TARGET_ACCOUNT));
    let (a, b, c) = (unique("LambdaA"), unique("LambdaB"), unique("LambdaC"));
    let b_copy = format!("{b}-copy");
    let mut streams = Vec::new();
    for (s, o) in [(&a, &a), (&b, &b_copy), (&c, &c)] {
        let stream = create_table(
            &source,
            s,
            ORDER_KEYS,
            Some(StreamViewType::NewAndOldImages),
        )
        .await
        .expect("stream");
        create_table(&target, o, ORDER_KEYS, None).await;
        let item = order_item("c#1", 1, "PAID");
        put(&source, s, &item).await;
        let mut copy = item.clone();
        if o != s {
            copy.insert("syncedAt".into(), AttributeValue::N("1".into()));
        }
        put(&target, o, &copy).await;
        streams.push(stream);
    }
    let pairs = format!(
        r#"[{{"source": "{a}"}}, {{"source": "{b}", "other": "{b_copy}", "ignore": ["syncedAt"]}}]"#
    );
    let mut env = function_env();
    env.extend([
        ("TTL_ATTRIBUTE", "expiresAt".to_string()),
        ("LAG_WINDOW_FROM", "arrival".to_string()),
        ("MAX_REPLICATION_LAG", "300ms".to_string()),
        ("TABLE_PAIRS", pairs),
    ]);
    let binary = env!("CARGO_BIN_EXE_stream-verifier");
    let mut answers = Vec::new();
    for stream in &streams {
        let event = stream_events(&source, stream, 100).await.remove(0);
        let run = run_stream_verifier(binary, &env, &event).await;
        let Some(Posted::Response(body)) = &run.posted else {
            panic!("no answer: {:?}\n{}", run.posted, run.stderr);
        };
        let response: serde_json::Value = serde_json::from_str(body).unwrap();
        answers.push((response, run.stdout, run.stderr));
    }
    // A and B: verified, MATCH, each under its own other side's table (B's by its copy's name).
    for (i, other) in [(0, &a), (1, &b_copy)] {
        let (response, stdout, stderr) = &answers[i];
        assert_eq!(
            response["batchItemFailures"],
            serde_json::json!([]),
            "{stderr}"
        );
        let emf = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|d| d.get("Match").is_some())
            .unwrap_or_else(|| panic!("no metrics: {stdout}"));
        assert_eq!(emf["Match"], 1.0, "{emf}");
        assert_eq!(emf["VerifyTable"], other.as_str(), "{emf}");
    }
    // C: no pair; every record handed back, and the log says which table.
    let (response, _, stderr) = &answers[2];
    assert_eq!(
        response["batchItemFailures"].as_array().map(Vec::len),
        Some(1),
        "{response}"
    );
    assert!(stderr.contains(&c) || answers[2].1.contains(&c), "{stderr}");
}
