//! `ddb-verify findings`, `ddb-verify accept` and `ddb-verify readiness`: the findings table of
//! `SOURCE_TABLE_NAME`, read in this process's own account (`FINDINGS_TABLE`).
//!
//! Exit statuses: `findings` 0 when none is open, 2 when some are (`--accepted`: 0); `accept` 0 when
//! accepted; `readiness` 0 for GO, 2 for NO-GO; 1 on any error.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};

use super::baseline::CliError;
use super::{Ending, Env};
use crate::aws::checkpoints::DynamoDbCheckpoints;
use crate::aws::findings::DynamoDbFindings;
use crate::config::FindingsCliConfig;
use crate::ports::checkpoint::BaselineStore;
use crate::ports::findings::{Finding, FindingStatus, FindingsStore};
use crate::readiness::{self, ReadinessOptions};
use crate::record::{Item, KeyText};
use crate::shared::epoch_ms;
use crate::shared::rfc3339;

/// What `accept` takes as a key, for its error messages.
pub const KEY_ACCEPTS: &str = "the key as `ddb-verify findings` shows it, such as \
customerId=S:\"customer#1\", orderId=N:7 (S: a quoted string, N: a number, B: base64; older versions' \
customerId=\"customer#1\" orderId=7 too), or DynamoDB JSON such as \
{\"customerId\":{\"S\":\"customer#1\"},\"orderId\":{\"N\":\"7\"}}";

#[derive(Debug, clap::Args)]
pub struct FindingsArgs {
    /// Prints a JSON array of the findings instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The findings of every pair of TABLE_PAIRS.
    #[arg(long, conflicts_with = "table")]
    pub all: bool,
    /// Lists the accepted findings instead of the open ones.
    #[arg(long)]
    pub accepted: bool,
}

#[derive(Debug, clap::Args)]
pub struct AcceptArgs {
    /// The finding's key as `ddb-verify findings` shows it (`customerId=S:"c#1", orderId=N:7`;
    /// older versions' `customerId="c#1" orderId=7` too), or DynamoDB JSON
    /// (`{"customerId":{"S":"c#1"},"orderId":{"N":"7"}}`).
    pub key: String,
    /// Why it may stay as it is (kept with the finding, shown by `readiness`).
    #[arg(long)]
    pub reason: String,
    /// Prints the accepted finding as a JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReadinessArgs {
    /// Prints one JSON object instead of the text (with --all, an array of one per pair).
    #[arg(long)]
    pub json: bool,
    /// Every pair of TABLE_PAIRS: a line each with GO or NO-GO and the first reason; exit 0 only
    /// when every pair is GO.
    #[arg(long, conflicts_with = "table")]
    pub all: bool,
    /// How far behind now stream verification may be, and how long a record handed back for
    /// re-delivery blocks (500ms, 30s, 5m, 1h).
    #[arg(long, default_value = "5m", value_parser = parse_max_lag)]
    pub max_lag: Duration,
    /// How far apart the clocks of the machines that recorded coverage (the verifiers, the
    /// baseline's host) may be: every time compared across them carries it, on the strict side.
    #[arg(long, default_value = "1s", value_parser = parse_clock_skew)]
    pub clock_skew: Duration,
    /// The cut-over's freeze: when the source's writes stopped (RFC 3339, such as
    /// 2026-12-07T18:00:00Z). GO then needs every change created before it verified (a shard
    /// poller pass after it, or Lambda's metrics showing the stream verifier was handed them
    /// all), instead of coverage reaching within --max-lag of now. Given, it is used instead of
    /// a freeze `ddb-verify freeze` recorded.
    #[arg(long, value_parser = parse_writes_stopped_at)]
    pub writes_stopped_at: Option<u64>,
    /// With writes frozen (--writes-stopped-at, or `ddb-verify freeze`): how long Lambda's
    /// metrics may take to appear in CloudWatch (a later batch would show after it).
    #[arg(long, default_value = "2m", value_parser = parse_metrics_delay)]
    pub metrics_delay: Duration,
}

fn parse_metrics_delay(value: &str) -> Result<Duration, String> {
    crate::config::parse_duration("--metrics-delay", value).map_err(|e| e.to_string())
}

/// `--writes-stopped-at`: an RFC 3339 time, as epoch milliseconds.
fn parse_writes_stopped_at(value: &str) -> Result<u64, String> {
    parse_time("--writes-stopped-at", value)
}

/// A time flag's value, RFC 3339, as epoch milliseconds; an error names `flag`.
pub(crate) fn parse_time(flag: &str, value: &str) -> Result<u64, String> {
    let time = aws_smithy_types::DateTime::from_str(
        value.trim(),
        aws_smithy_types::date_time::Format::DateTime,
    )
    .map_err(|e| format!("{flag} takes an RFC 3339 time such as 2026-12-07T18:00:00Z ({e})"))?;
    time.to_millis()
        .ok()
        .and_then(|ms| u64::try_from(ms).ok())
        .ok_or_else(|| format!("{flag} {value} is before 1970"))
}

fn parse_clock_skew(value: &str) -> Result<Duration, String> {
    crate::config::parse_duration("--clock-skew", value).map_err(|e| e.to_string())
}

fn parse_max_lag(value: &str) -> Result<Duration, String> {
    crate::config::parse_duration("--max-lag", value).map_err(|e| e.to_string())
}

/// The configuration and the findings store, in this process's own account.
pub(crate) async fn store(env: &Env) -> Result<(FindingsCliConfig, DynamoDbFindings), CliError> {
    let config = FindingsCliConfig::from_lookup(|n| env.get(n))?;
    let sdk = crate::aws::clients::source_sdk_config().await;
    let store = DynamoDbFindings::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.findings_table.clone(),
    );
    Ok((config, store))
}

pub async fn run_findings(args: FindingsArgs, env: &Env) -> Result<Ending, CliError> {
    let (config, store) = store(env).await?;
    let status = if args.accepted {
        FindingStatus::Accepted
    } else {
        FindingStatus::Open
    };
    let findings = store.list(&config.source_table, status, None, None).await?;
    if args.json {
        let all: Vec<Value> = findings.iter().map(finding_json).collect();
        println!("{}", Value::Array(all));
    } else {
        print!(
            "{}",
            findings_table(
                &format!("table {}", config.source_table),
                status,
                &findings,
                false
            )
        );
    }
    Ok(if args.accepted || findings.is_empty() {
        Ending::Equal
    } else {
        Ending::Problems
    })
}

pub async fn run_accept(args: AcceptArgs, env: &Env) -> Result<Ending, CliError> {
    let reason = args.reason.trim();
    if reason.is_empty() {
        return Err("--reason must say why the finding may stay (it is empty)".into());
    }
    let key = parse_key(&args.key)?;
    let (config, store) = store(env).await?;
    let table = &config.source_table;
    let shown = KeyText(&key);
    let no_open = |what: &str| -> CliError {
        format!("no open finding for key {shown} in table {table} ({what}); `ddb-verify findings` lists the open ones").into()
    };
    match store.get(table, &key).await? {
        None => return Err(no_open("there is none")),
        Some(f) if f.status == FindingStatus::Resolved => {
            return Err(no_open("its finding is resolved"))
        }
        Some(_) => {}
    }
    if !store.accept(table, &key, reason, epoch_ms()).await? {
        return Err(no_open("it was resolved meanwhile"));
    }
    let finding = store
        .get(table, &key)
        .await?
        .ok_or_else(|| no_open("it is gone"))?;
    if args.json {
        println!("{}", finding_json(&finding));
    } else {
        println!(
            "accepted: {} {} in table {} ({}): {reason}",
            finding.key_text, finding.verdict, table, finding.detail
        );
    }
    Ok(Ending::Equal)
}

pub async fn run_readiness(args: ReadinessArgs, env: &Env) -> Result<Ending, CliError> {
    let (answer, compared) = readiness_of(&args, env).await?;
    if args.json {
        let mut json = answer.to_json();
        if let Some(out) = json.as_object_mut() {
            out.insert("compared".into(), compared.into());
        }
        println!("{json}");
    } else {
        print!("{}", answer.to_text());
        println!("compared: {compared}");
    }
    Ok(if answer.ready {
        Ending::Equal
    } else {
        Ending::Problems
    })
}

/// Readiness of the pair `env` stands for, and which tables its baseline run compared.
async fn readiness_of(
    args: &ReadinessArgs,
    env: &Env,
) -> Result<(readiness::Readiness, String), CliError> {
    let config = FindingsCliConfig::from_lookup(|n| env.get(n))?;
    // The source table where the functions find it: through SOURCE_ROLE_ARN from the other
    // account, by its ARN when given one.
    let source = crate::aws::clients::source_dynamodb(&config.source_access).await;
    let sources = crate::wiring::ReadinessSources::new(
        &config.findings_table,
        config.failure_queue_url.as_deref(),
        source,
    )
    .await;
    let options = ReadinessOptions {
        max_lag: args.max_lag,
        clock_skew: args.clock_skew,
        writes_stopped_at_ms: args.writes_stopped_at,
        metrics_delay: args.metrics_delay,
    };
    let answer = sources
        .assess(&config.source_table, &config.source_api_name, &options)
        .await?;
    let run_id = answer.baseline.as_ref().map(|b| b.run_id.as_str());
    let compared = compared(&config, run_id).await;
    Ok((answer, compared))
}

/// The pairs of `TABLE_PAIRS`, for `--all`.
pub(crate) fn every_pair() -> Result<Vec<crate::config::pairs::TablePair>, CliError> {
    Env::pairs()?.ok_or_else(|| {
        "--all walks the pairs of TABLE_PAIRS, which is not set: set it, or leave --all out".into()
    })
}

/// `readiness --all`: every pair's GO or NO-GO and first reason; GO (exit 0) only when all are.
pub async fn run_readiness_all(args: ReadinessArgs) -> Result<Ending, CliError> {
    let mut answers = Vec::new();
    for pair in every_pair()? {
        let name = pair.name();
        // One pair that cannot be read is shown as such; the others are still answered.
        let answer = readiness_of(&args, &Env::of(pair))
            .await
            .map_err(|e| crate::shared::error_chain(e.as_ref()));
        answers.push((name, answer));
    }
    if args.json {
        let all: Vec<Value> = answers
            .iter()
            .map(|(table, answer)| match answer {
                Ok((a, compared)) => {
                    let mut json = a.to_json();
                    json["compared"] = compared.clone().into();
                    json
                }
                Err(e) => json!({ "table": table, "ready": false, "error": e }),
            })
            .collect();
        println!("{}", Value::Array(all));
    } else {
        print!("{}", readiness_table(&answers));
    }
    let failed = answers.iter().filter(|(_, a)| a.is_err()).count();
    if failed > 0 {
        return Err(
            format!("readiness of {failed} table(s) could not be read (shown as ERROR)").into(),
        );
    }
    let all_go = answers
        .iter()
        .all(|(_, a)| a.as_ref().is_ok_and(|(r, _)| r.ready));
    Ok(if all_go {
        Ending::Equal
    } else {
        Ending::Problems
    })
}

/// Each pair's readiness, or why it could not be read.
type PairAnswer = (String, Result<(readiness::Readiness, String), String>);

/// A line per pair: its table, GO, NO-GO or ERROR, how far it is verified, the first reason.
fn readiness_table(answers: &[PairAnswer]) -> String {
    let go = answers
        .iter()
        .filter(|(_, a)| a.as_ref().is_ok_and(|(r, _)| r.ready))
        .count();
    let mut out = format!(
        "{} for {} table{}: {go} GO, {} NO-GO\n",
        if go == answers.len() { "GO" } else { "NO-GO" },
        answers.len(),
        if answers.len() == 1 { "" } else { "s" },
        answers.len() - go
    );
    out.push_str(&format!(
        "{:<32} {:<6} {:<25} {}\n",
        "TABLE", "READY", "VERIFIED UNTIL", "FIRST REASON"
    ));
    for (table, answer) in answers {
        let (ready, until, reason) = match answer {
            Ok((a, _)) => (
                if a.ready { "GO" } else { "NO-GO" },
                a.verified_until_ms
                    .map(rfc3339)
                    .unwrap_or_else(|| "-".into()),
                a.reasons().first().copied().unwrap_or("").to_string(),
            ),
            Err(e) => ("ERROR", "-".to_string(), e.clone()),
        };
        out.push_str(&format!("{table:<32} {ready:<6} {until:<25} {reason}\n"));
    }
    out
}

/// `findings --all`: the open (or accepted) findings of every pair, in one list.
pub async fn run_findings_all(args: FindingsArgs) -> Result<Ending, CliError> {
    let status = match args.accepted {
        true => FindingStatus::Accepted,
        false => FindingStatus::Open,
    };
    let mut all = Vec::new();
    for pair in every_pair()? {
        let (config, store) = store(&Env::of(pair)).await?;
        all.extend(store.list(&config.source_table, status, None, None).await?);
    }
    if args.json {
        let json: Vec<Value> = all.iter().map(finding_json).collect();
        println!("{}", Value::Array(json));
    } else {
        print!(
            "{}",
            findings_table("the tables of TABLE_PAIRS", status, &all, true)
        );
    }
    Ok(if args.accepted || all.is_empty() {
        Ending::Equal
    } else {
        Ending::Problems
    })
}

/// Which tables the counted baseline run compared, from its record in `CHECKPOINT_TABLE`: the
/// verifiers' findings do not say which other side they read.
async fn compared(config: &FindingsCliConfig, run_id: Option<&str>) -> String {
    let Some(run_id) = run_id else {
        return "no baseline run counted".into();
    };
    let Some(checkpoints) = &config.checkpoint_table else {
        return format!(
            "baseline run {run_id}; set CHECKPOINT_TABLE to name the tables it compared"
        );
    };
    let sdk = crate::aws::clients::source_sdk_config().await;
    let store = DynamoDbCheckpoints::new(aws_sdk_dynamodb::Client::new(&sdk), checkpoints);
    match store.load_run(run_id).await {
        Ok(Some(run)) => format!(
            "source {} against other side {} (baseline run {run_id})",
            run.settings.source, run.settings.other_side
        ),
        Ok(None) => format!("baseline run {run_id} is not in {checkpoints}"),
        Err(e) => format!(
            "baseline run {run_id}: its tables are not known ({})",
            crate::shared::error_chain(&e)
        ),
    }
}

/// A finding as `findings --json` prints it.
pub fn finding_json(f: &Finding) -> Value {
    let mut out = json!({
        "table": f.table,
        "key": f.key_text,
        "key_json": crate::record::json::item_json(&f.key),
        "verdict": f.verdict,
        "proof": f.proof,
        "detail": f.detail,
        "attributes": f.attributes,
        "origin": f.origin,
        "status": f.status.as_str(),
        "reason": f.reason,
        "first_seen": rfc3339(f.first_seen_ms),
        "last_seen": rfc3339(f.last_seen_ms),
        "times_seen": f.times_seen,
        "sequence_number": f.sequence_number,
        "baseline_run": f.baseline_run,
        "next_check": f.next_check_ms.map(rfc3339),
        "checks": f.checks,
        "unsettled": f.unsettled,
    });
    if let Some(values) = &f.values {
        out["values"] = Value::String(values.clone());
    }
    out
}

/// The findings as a table for a terminal, with a count line.
/// The findings as a table; `scope` says whose (`table Orders`); `show_table` adds a column
/// with each finding's table.
fn findings_table(
    scope: &str,
    status: FindingStatus,
    findings: &[Finding],
    show_table: bool,
) -> String {
    let what = match status {
        FindingStatus::Accepted => "accepted",
        _ => "open",
    };
    if findings.is_empty() {
        return format!("no {what} findings for {scope}\n");
    }
    let accepted = status == FindingStatus::Accepted;
    let mut header = vec![
        "KEY",
        "VERDICT",
        "ATTRIBUTES",
        "ORIGIN",
        "FIRST SEEN",
        "LAST SEEN",
        "SEEN",
        "CHECKS",
    ];
    if accepted {
        header.push("REASON");
    }
    if show_table {
        header.insert(0, "TABLE");
    }
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            let mut row = finding_row(f, accepted);
            if show_table {
                row.insert(0, f.table.clone());
            }
            row
        })
        .collect();
    let mut out = aligned(&header, &rows);
    let n = findings.len();
    out.push_str(&format!(
        "{n} {what} finding{} for {scope}\n",
        if n == 1 { "" } else { "s" }
    ));
    out
}

/// One finding's cells, in the header's order (the reason last, for accepted findings).
fn finding_row(f: &Finding, accepted: bool) -> Vec<String> {
    let second = |ms: u64| rfc3339(ms - ms % 1000);
    let mut row = vec![
        f.key_text.clone(),
        f.verdict.clone(),
        if f.attributes.is_empty() {
            "-".to_string()
        } else {
            f.attributes.join(",")
        },
        f.origin.clone(),
        second(f.first_seen_ms),
        second(f.last_seen_ms),
        f.times_seen.to_string(),
        if f.unsettled {
            format!("{} unsettled", f.checks)
        } else {
            f.checks.to_string()
        },
    ];
    if accepted {
        row.push(f.reason.clone().unwrap_or_default());
    }
    row
}

/// The header and rows as lines, each column as wide as its widest cell, two spaces apart.
fn aligned(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i != last {
                let pad = widths[i] - cell.chars().count();
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A key as `ddb-verify findings` shows it ([`KeyText`], which also reads the older form that logs
/// show), or DynamoDB JSON; either way checked as a stream record's key is.
pub fn parse_key(text: &str) -> Result<Item, String> {
    let invalid = |why: String| {
        format!(
            "the key {:?} is not valid: {why}; expected {KEY_ACCEPTS}",
            text.trim()
        )
    };
    if !text.trim_start().starts_with('{') {
        return KeyText::parse(text).map_err(|e| invalid(e.to_string()));
    }
    let item = crate::record::json::parse_item(text.trim())
        .map_err(|e| invalid(format!("not DynamoDB JSON ({e})")))?;
    if item.is_empty() {
        return Err(invalid("it has no attributes".into()));
    }
    for (name, value) in &item {
        if !matches!(
            value,
            AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_)
        ) {
            return Err(invalid(format!(
                "{name} is of type {}, and key attributes are S, N or B",
                crate::record::type_name(value)
            )));
        }
    }
    crate::record::check_key(&item).map_err(invalid)?;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::describe_key;
    use crate::testkit::item as key;

    #[test]
    fn a_key_as_findings_shows_it_parses_back() {
        let s = |v: &str| AttributeValue::S(v.into());
        let keys = crate::record::key_text::sample_keys();
        for k in keys {
            // As `findings` shows it now, and as older versions and logs show it.
            for text in [KeyText(&k).to_string(), describe_key(&k)] {
                assert_eq!(parse_key(&text).as_ref(), Ok(&k), "{text}");
                assert_eq!(parse_key(&format!("  {text}  ")).as_ref(), Ok(&k));
            }
        }
        // A key DynamoDB would refuse (an empty string) is no finding's: the key checks refuse it.
        let empty = key(&[("pk", s("")), ("sk", s("a b=c d"))]);
        for text in [KeyText(&empty).to_string(), describe_key(&empty)] {
            let err = parse_key(&text).unwrap_err();
            assert!(
                err.contains("key attribute \"pk\" is an empty string"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_key_in_dynamodb_json_parses() {
        let k = parse_key(r#"{"customerId":{"S":"customer#1"},"orderId":{"N":"7"}}"#).unwrap();
        assert_eq!(describe_key(&k), r#"customerId="customer#1" orderId=7"#);
        assert_eq!(
            KeyText(&k).to_string(),
            r#"customerId=S:"customer#1", orderId=N:7"#
        );
        let err = parse_key(r#"{"a":{"L":[]}}"#).unwrap_err();
        assert!(err.contains("a is of type L"), "{err}");
        assert!(parse_key(r#"{"a":"#)
            .unwrap_err()
            .contains("not DynamoDB JSON"));
        let err = parse_key(r#"{"a":{"N":"12x"}}"#).unwrap_err();
        assert!(
            err.contains("key attribute \"a\" is not a DynamoDB number"),
            "{err}"
        );
    }

    #[test]
    fn a_key_that_does_not_parse_says_what_is_accepted() {
        for (text, why) in [
            ("", "it is empty"),
            ("customerId", "has no `=`"),
            ("customerId=customer#1", "neither a quoted string"),
            ("customerId=\"open", "no closing quote"),
            ("a=\"x\"b=1", "a space must follow"),
            ("a=1 a=2", "a is given twice"),
            ("a=b64:!!", "not base64"),
            ("a=\"\\q\"", "\\q is not an escape"),
            ("a=1e", "neither a quoted string"),
            (
                "a=S:\"x\", b=N:1x",
                "at character 12: key attribute \"b\" is not",
            ),
            ("a=S:\"x\" b=N:1", "expected `,` and the next attribute"),
        ] {
            let err = parse_key(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
            assert!(err.contains("expected the key as `ddb-verify findings` shows it"));
        }
    }

    #[test]
    fn the_commands_configuration_names_the_variable() {
        let vars = |pairs: &[(&str, &str)]| {
            let map: std::collections::HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            FindingsCliConfig::from_lookup(|k| map.get(k).cloned())
        };
        let ok = vars(&[
            ("FINDINGS_TABLE", "Findings"),
            ("SOURCE_TABLE_NAME", "Orders"),
        ])
        .unwrap();
        assert_eq!(ok.findings_table, "Findings");
        assert_eq!(ok.source_table, "Orders");
        // VERIFY_TABLE_NAME is not needed; an ARN gives the table's name.
        let arn = vars(&[
            ("FINDINGS_TABLE", "Findings"),
            (
                "SOURCE_TABLE_NAME",
                "arn:aws:dynamodb:eu-west-1:111111111111:table/Orders",
            ),
        ])
        .unwrap();
        assert_eq!(arn.source_table, "Orders");
        for (pairs, variable) in [
            (&[("SOURCE_TABLE_NAME", "Orders")][..], "FINDINGS_TABLE"),
            (
                &[("FINDINGS_TABLE", " "), ("SOURCE_TABLE_NAME", "Orders")][..],
                "FINDINGS_TABLE",
            ),
            (
                &[
                    ("FINDINGS_TABLE", "my findings"),
                    ("SOURCE_TABLE_NAME", "Orders"),
                ][..],
                "FINDINGS_TABLE",
            ),
            (&[("FINDINGS_TABLE", "Findings")][..], "SOURCE_TABLE_NAME"),
        ] {
            let err = vars(pairs).unwrap_err().to_string();
            assert!(err.starts_with(variable), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn max_lag_parses_as_a_duration() {
        assert_eq!(parse_max_lag("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_max_lag("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_max_lag("soon").unwrap_err().contains("--max-lag"));
    }
}
