//! Many tables in one configuration (`TABLE_PAIRS`) through the built binaries, against DynamoDB
//! Local: three pairs, one with drift; the shard poller (one run over every pair, or `--table`)
//! and the baseline over each; `readiness
//! --all` NO-GO naming the drifted pair, then GO after `repair --table`; and the cut-over's freeze
//! (`--writes-stopped-at`, or recorded by `ddb-verify freeze`), NO-GO until a poller pass has read
//! past it.

use std::process::Output;

use crate::common::*;
use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use ddb_verify::shared::{epoch_ms, rfc3339};
use ddb_verify_testkit::setup::ORDER_KEYS;

const MIN: u64 = 60_000;

struct Deployment {
    findings: String,
    checkpoints: String,
    pairs: String,
    /// (source table, other side's table, ignore list) of each pair.
    tables: Vec<(String, String, &'static str)>,
}

impl Deployment {
    fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("TABLE_PAIRS", self.pairs.as_str()),
            ("VERIFY_PROFILE", "target-account"),
            ("FINDINGS_TABLE", self.findings.as_str()),
            ("CHECKPOINT_TABLE", self.checkpoints.as_str()),
            ("MAX_REPLICATION_LAG", "500ms"),
            ("LAG_WINDOW_FROM", "arrival"),
        ]
    }

    fn cli(&self, args: &[&str]) -> Output {
        ddb_verify_cli(args, &self.env())
    }

    /// One `shard-poller --once` run: a pass over every pair's stream at once, each under its
    /// own pair's variables.
    fn poll_all(&self) {
        let out = self.poller(&["--once"]);
        assert!(out.status.success(), "{}", output_of(&out));
    }

    fn poller(&self, args: &[&str]) -> Output {
        run_binary(env!("CARGO_BIN_EXE_shard-poller"), args, &self.env())
    }
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", output_of(out)))
}

/// Three pairs: A and C equal (C's copy named otherwise, with an attribute its pair ignores), B
/// with one order missing on the other side.
async fn deployment() -> Deployment {
    let (source, target) = (account(SOURCE_ACCOUNT), account(TARGET_ACCOUNT));
    let store = findings_store(&source).await;
    let checkpoints = unique("Checkpoints");
    ddb_verify::aws::checkpoints::create_checkpoint_table(&source.dynamodb, &checkpoints)
        .await
        .expect("checkpoint table");
    let (a, b, c) = (unique("PairA"), unique("PairB"), unique("PairC"));
    let c_copy = format!("{c}-copy");
    let tables = vec![
        (a.clone(), a.clone(), ""),
        (b.clone(), b.clone(), ""),
        (c.clone(), c_copy.clone(), "syncedAt"),
    ];
    for (s, o, _) in &tables {
        create_table(
            &source,
            s,
            ORDER_KEYS,
            Some(StreamViewType::NewAndOldImages),
        )
        .await;
        create_table(&target, o, ORDER_KEYS, None).await;
        for i in 0..5 {
            let item = order_item(&format!("c#{i}"), i, "PLACED");
            put(&source, s, &item).await;
            let mut copy = item.clone();
            if o != s {
                copy.insert("syncedAt".into(), AttributeValue::N(i.to_string()));
            }
            put(&target, o, &copy).await;
        }
    }
    // The drift: an order of B never copied.
    put(&source, &b, &order_item("c#9", 9, "PAID")).await;
    let pairs = format!(
        r#"[{{"source": "{a}"}}, {{"source": "{b}"}}, {{"source": "{c}", "other": "{c_copy}", "ignore": ["syncedAt"]}}]"#
    );
    Deployment {
        findings: store.table().to_string(),
        checkpoints,
        pairs,
        tables,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_all_names_the_drifted_pair_then_says_go_after_its_repair_and_after_a_freeze_given_or_recorded(
) {
    let d = deployment().await;
    let (a, b) = (d.tables[0].0.clone(), d.tables[1].0.clone());
    d.poll_all();
    // DynamoDB Local cuts creation times to the minute: the poller's coverage counts from the end
    // of its first change's minute, which the baselines must begin after.
    let now = epoch_ms();
    tokio::time::sleep(std::time::Duration::from_millis(MIN - now % MIN + 1_500)).await;
    for (source, _, _) in &d.tables {
        let out = d.cli(&["baseline", "--table", source, "--json"]);
        let expected = if *source == b { 2 } else { 0 };
        assert_eq!(out.status.code(), Some(expected), "{}", output_of(&out));
    }
    d.poll_all();

    let out = d.cli(&["readiness", "--all", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", output_of(&out));
    let all = json_of(&out);
    let ready: Vec<(String, bool)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["table"].as_str().unwrap().to_string(), r["ready"] == true))
        .collect();
    let expected: Vec<(String, bool)> = d
        .tables
        .iter()
        .map(|(s, _, _)| (s.clone(), *s != b))
        .collect();
    assert_eq!(ready, expected, "{all}");
    let text = output_of(&d.cli(&["readiness", "--all"]));
    assert!(
        text.starts_with("NO-GO for 3 tables: 2 GO, 1 NO-GO"),
        "{text}"
    );
    let b_line = text.lines().find(|l| l.starts_with(&b)).expect("B's line");
    assert!(
        b_line.contains("NO-GO") && b_line.contains("open finding"),
        "{text}"
    );
    let findings = json_of(&d.cli(&["findings", "--all", "--json"]));
    let tables: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["table"].as_str().unwrap())
        .collect();
    assert_eq!(tables, [b.as_str()], "{findings}");

    // One pair at a time needs --table; a table not listed is named.
    let out = d.cli(&["readiness"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("choose one with --table"),
        "{}",
        stderr_of(&out)
    );
    let out = d.cli(&["--table", &a, "readiness", "--all"]);
    assert_eq!(out.status.code(), Some(1), "--table and --all together");
    assert!(
        stderr_of(&out).contains("choose one pair, or every pair"),
        "{}",
        stderr_of(&out)
    );
    let out = d.poller(&["--once", "--table", "Nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("--table Nope is not a pair of TABLE_PAIRS"),
        "{}",
        stderr_of(&out)
    );
    let out = d.cli(&["init", "--table", &a]);
    assert_eq!(out.status.code(), Some(1), "init takes no --table");
    let out = d.cli(&["findings", "--table", "Nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains(&a), "{}", stderr_of(&out));

    let out = d.cli(&["repair", "--table", &b, "--apply", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_of(&out));
    let out = d.cli(&["readiness", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_of(&out));
    assert!(output_of(&out).starts_with("GO for 3 tables: 3 GO, 0 NO-GO"));

    // The freeze: writes stop now. GO needs a poller pass begun after it (by the 1 s margin).
    let stopped = rfc3339(epoch_ms());
    let frozen = [
        "readiness",
        "--all",
        "--json",
        "--writes-stopped-at",
        stopped.as_str(),
    ];
    let out = d.cli(&frozen);
    assert_eq!(out.status.code(), Some(2), "{}", output_of(&out));
    let r = json_of(&out);
    assert!(
        r[0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("shard-poller --once"),
        "{r}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    // One pair's pass: that pair alone is proven past the freeze.
    let out = d.poller(&["--once", "--table", &a]);
    assert!(out.status.success(), "{}", output_of(&out));
    let r = json_of(&d.cli(&frozen));
    let ready: Vec<bool> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ready"] == true)
        .collect();
    assert_eq!(ready, [true, false, false], "{r}");
    d.poll_all();
    let out = d.cli(&frozen);
    assert_eq!(out.status.code(), Some(0), "{}", output_of(&out));
    let r = json_of(&out);
    assert!(
        r.as_array().unwrap().iter().all(|t| t["ready"] == true),
        "{r}"
    );

    // The freeze recorded (`ddb-verify freeze --all`): plain readiness, and the revalidator's,
    // judge against it. Coverage is stale under --max-lag 1s once 2 s have passed.
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    let plain = ["readiness", "--all", "--json", "--max-lag", "1s"];
    let out = d.cli(&plain);
    assert_eq!(out.status.code(), Some(2), "stale: {}", output_of(&out));
    let out = d.cli(&["freeze", "--all", "--at", stopped.as_str(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_of(&out));
    let recorded = json_of(&out);
    let at: Vec<&str> = recorded
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["writes_stopped_at"].as_str().unwrap())
        .collect();
    assert_eq!(at.len(), 3, "{recorded}");
    assert!(recorded[0]["valid_until"].is_string(), "{recorded}");
    // The poller's passes read past the freeze, but none within --max-lag: a recorded freeze,
    // judged long after T, needs the poller still reading (writes may have resumed unread).
    let out = d.cli(&plain);
    assert_eq!(out.status.code(), Some(2), "{}", output_of(&out));
    let r = json_of(&out);
    assert!(
        r[0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("needs the poller still reading"),
        "{r}"
    );
    // It still reads: GO, judged against the recorded freeze.
    d.poll_all();
    let out = d.cli(&["readiness", "--all", "--json", "--max-lag", "1m"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_of(&out));
    let r = json_of(&out);
    for t in r.as_array().unwrap() {
        assert_eq!(t["writes_stopped_at"], at[0], "{r}");
        let by = t["freeze_recorded"]["recorded_by"].as_str().unwrap_or("");
        assert!(by.starts_with("ddb-verify freeze"), "{r}");
    }
    // A freeze later than the passes: NO-GO, saying how to lift it.
    let later = rfc3339(epoch_ms());
    let out = d.cli(&["freeze", "--table", &a, "--at", later.as_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", output_of(&out));
    let out = d.cli(&["readiness", "--table", &a]);
    assert_eq!(out.status.code(), Some(2), "{}", output_of(&out));
    assert!(
        output_of(&out).contains("ddb-verify freeze --lift"),
        "{}",
        output_of(&out)
    );
    // Lifted: judged against now again.
    let out = d.cli(&["freeze", "--all", "--lift"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_of(&out));
    assert_eq!(
        output_of(&out).matches("freeze lifted").count(),
        3,
        "{}",
        output_of(&out)
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_000)).await;
    let out = d.cli(&plain);
    assert_eq!(out.status.code(), Some(2), "{}", output_of(&out));
    // A time ahead of now is no freeze, and a time the flag cannot read is named.
    let ahead = rfc3339(epoch_ms() + 3_600_000);
    let out = d.cli(&["freeze", "--table", &a, "--at", ahead.as_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("in the future"),
        "{}",
        stderr_of(&out)
    );
    let out = d.cli(&["freeze", "--table", &a, "--at", "noon"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains("--at takes an RFC 3339 time"),
        "{}",
        stderr_of(&out)
    );
    for window in ["0s", "25h"] {
        let out = d.cli(&["freeze", "--table", &a, "--for", window]);
        assert_eq!(out.status.code(), Some(1), "--for {window}");
        assert!(stderr_of(&out).contains("--for"), "{}", stderr_of(&out));
    }

    let out = d.cli(&[
        "readiness",
        "--writes-stopped-at",
        "yesterday",
        "--table",
        &a,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_of(&out).contains("RFC 3339"), "{}", stderr_of(&out));
}

/// Outside Lambda, polling every pair until interrupted: a pair whose stream cannot be found ends
/// the process with an error, rather than being left unread while the others poll on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shard_poller_ends_when_one_pairs_stream_cannot_be_found() {
    let pair = orders_pair().await;
    let checkpoints = unique("Checkpoints");
    ddb_verify::aws::checkpoints::create_checkpoint_table(&pair.source.dynamodb, &checkpoints)
        .await
        .expect("checkpoint table");
    let missing = unique("Gone");
    let pairs = format!(
        r#"[{{"source": "{}"}}, {{"source": "{missing}"}}]"#,
        pair.table
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shard-poller"))
        .env_clear()
        .envs(local_account_env())
        .envs([
            ("TABLE_PAIRS", pairs.as_str()),
            ("VERIFY_PROFILE", "target-account"),
            ("CHECKPOINT_TABLE", checkpoints.as_str()),
            ("POLL_INTERVAL", "1s"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the shard poller");
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .expect("the poller ended on the pair it cannot read")
        .unwrap();
    assert!(!status.success());
}
