//! Test support: DynamoDB Local (found or started), two simulated accounts, tables, stream events.
#![allow(dead_code)] // some helpers serve the benches too (fault_proxy) or only some modules

pub mod fake_aws;
pub mod fault_proxy;

use std::collections::HashMap;
use std::fmt::Display;
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType, StreamViewType};
use ddb_verify::aws::reader::DynamoDbReader;
use ddb_verify::config::{Config, PollerConfig, StreamSelector, TableRef};
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::lambda::handler::StreamVerifier;
use ddb_verify::ports::findings::Problem;
use ddb_verify::ports::stream::StartAt;
use ddb_verify::record::Item;
use ddb_verify::verify::Verifier;

pub const REGION: &str = "us-east-1";
/// DynamoDB Local keeps one database per access key id: these stand for the two AWS accounts.
pub const SOURCE_ACCOUNT: &str = "sourceaccount";
pub const TARGET_ACCOUNT: &str = "targetaccount";

const HOW_TO_START: &str = "start it with `scripts/dynamodb-local.sh start` (needs Java 17 and npm; it installs \
DynamoDB Local 1.25.1 from the npm package amplify-dynamodb-simulator@2.9.30) or set DYNAMODB_LOCAL_ENDPOINT \
to a running instance";

fn reachable(endpoint: &str) -> bool {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    host.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
}

fn find_or_start() -> Result<String, String> {
    if let Ok(endpoint) = std::env::var("DYNAMODB_LOCAL_ENDPOINT") {
        return if reachable(&endpoint) {
            Ok(endpoint)
        } else {
            Err(format!(
                "DYNAMODB_LOCAL_ENDPOINT={endpoint} does not answer"
            ))
        };
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/dynamodb-local.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("start")
        .output()
        .map_err(|e| format!("could not run {script}: {e}"))?;
    let endpoint = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && reachable(&endpoint) {
        Ok(endpoint)
    } else {
        Err(format!(
            "{script} start failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The endpoint of a running DynamoDB Local; started when none runs. Fails the test, never skips it.
pub fn endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| match find_or_start() {
        Ok(endpoint) => endpoint,
        Err(why) => panic!(
            "DynamoDB Local is needed by this test and is not reachable: {why}.\n{HOW_TO_START}"
        ),
    })
}

pub fn sdk_config(access_key: &str) -> SdkConfig {
    sdk_config_at(endpoint(), access_key)
}

/// An account's config with another endpoint (the fault proxy in front of DynamoDB Local).
pub fn sdk_config_at(endpoint: &str, access_key: &str) -> SdkConfig {
    ddb_verify_testkit::setup::local_account_config(endpoint, access_key)
}

/// One simulated AWS account on DynamoDB Local.
#[derive(Clone)]
pub struct Account {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
}

pub fn account(access_key: &str) -> Account {
    let config = sdk_config(access_key);
    Account {
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
        streams: aws_sdk_dynamodbstreams::Client::new(&config),
    }
}

/// An account's clients through the proxy. One attempt per call: the SDK's standard retries (three
/// attempts with backoff) would absorb nearly every injected fault before our code saw it, and
/// slowly. What is under test is what our code does with a call that failed after the SDK's
/// retries, so every injected failure must reach it (production keeps the SDK's retries: fewer
/// failures reach the code, none of another kind).
pub fn account_through(proxy: &fault_proxy::FaultProxy, access_key: &str) -> Account {
    let config = sdk_config_at(proxy.endpoint(), access_key)
        .into_builder()
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    Account {
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
        streams: aws_sdk_dynamodbstreams::Client::new(&config),
    }
}

/// A table name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand::u32(..))
}

/// Creates a table; returns its stream ARN when it has a stream.
pub async fn create_table(
    account: &Account,
    name: &str,
    keys: &[(&str, ScalarAttributeType)],
    stream: Option<StreamViewType>,
) -> Option<String> {
    ddb_verify_testkit::setup::create_table(&account.dynamodb, name, keys, stream)
        .await
        .expect("create table")
}

/// A new findings table (`Findings-<random>`, with its `byStatus` index) in `account`, and the store
/// over it.
pub async fn findings_store(account: &Account) -> ddb_verify::aws::findings::DynamoDbFindings {
    let name = unique("Findings");
    ddb_verify::aws::findings::create_findings_table(&account.dynamodb, &name)
        .await
        .expect("create the findings table");
    ddb_verify::aws::findings::DynamoDbFindings::new(account.dynamodb.clone(), name)
}

/// A table in both simulated accounts, the source's with a stream.
pub struct TablePair {
    pub source: Account,
    pub target: Account,
    pub table: String,
    pub stream_arn: String,
}

impl TablePair {
    /// Puts `item` in the source, then the same in the target: a write replicated correctly.
    pub async fn put_replicated(&self, item: &Item) {
        put_replicated(&self.source, &self.target, &self.table, item).await;
    }
}

/// Creates `prefix-<random>` in the source account with a stream of `view`, and (when `in_target`) in
/// the target account.
pub async fn table_pair(
    prefix: &str,
    keys: &[(&str, ScalarAttributeType)],
    view: StreamViewType,
    in_target: bool,
) -> TablePair {
    let source = account(SOURCE_ACCOUNT);
    let target = account(TARGET_ACCOUNT);
    let table = unique(prefix);
    let stream_arn = create_table(&source, &table, keys, Some(view))
        .await
        .expect("a stream ARN");
    if in_target {
        create_table(&target, &table, keys, None).await;
    }
    TablePair {
        source,
        target,
        table,
        stream_arn,
    }
}

/// The `Orders` table (`customerId` S, `orderId` N) in both accounts, the source's with a
/// NEW_AND_OLD_IMAGES stream.
pub async fn orders_pair() -> TablePair {
    let keys = ddb_verify_testkit::setup::ORDER_KEYS;
    table_pair("Orders", keys, StreamViewType::NewAndOldImages, true).await
}

pub async fn put(account: &Account, table: &str, item: &Item) {
    account
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item.clone()))
        .send()
        .await
        .expect("put item");
}

/// Puts `item` in the source, then the same in the target: a write replicated correctly.
pub async fn put_replicated(source: &Account, target: &Account, table: &str, item: &Item) {
    put(source, table, item).await;
    put(target, table, item).await;
}

/// The `Orders` items `c#<i>`/`<i>`, PLACED, for each `i` of `ids`, written to the source and then
/// the same to the target: replicated correctly.
pub async fn put_replicated_orders(pair: &TablePair, ids: impl IntoIterator<Item = u32>) {
    for i in ids {
        pair.put_replicated(&order_item(&format!("c#{i}"), i, "PLACED"))
            .await;
    }
}

/// Writes directly to DynamoDB Local (setup is not under test), 25 items a call.
pub async fn write_items(account: &Account, table: &str, items: &[Item]) {
    ddb_verify_testkit::setup::write_items(&account.dynamodb, table, items)
        .await
        .expect("batch write");
}

pub async fn delete(account: &Account, table: &str, key: &Item) {
    account
        .dynamodb
        .delete_item()
        .table_name(table)
        .set_key(Some(key.clone()))
        .send()
        .await
        .expect("delete item");
}

use ddb_verify::ports::findings::NoFindings;
pub use ddb_verify_testkit::item;

pub fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

pub fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The key of an `Orders` item: `customerId` (S) and `orderId` (N).
pub fn order_key(customer: &str, id: impl Display) -> Item {
    item(&[("customerId", s(customer)), ("orderId", n(&id.to_string()))])
}

/// An `Orders` item: its key and a `status`.
pub fn order_item(customer: &str, id: impl Display, status: &str) -> Item {
    let mut order = order_key(customer, id);
    order.insert("status".into(), s(status));
    order
}

/// A MISMATCH on `status`, proven by `proof`, as a verifier records it.
pub fn status_mismatch(proof: &'static str) -> Problem {
    Problem {
        verdict: "MISMATCH",
        proof: Some(proof),
        detail: "status differs".into(),
        attributes: vec!["status".into()],
        values: None,
    }
}

/// The AWS config file of the local demo and tests: the target account as profile `target-account`.
pub const LOCAL_AWS_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/local-aws-config");

/// The environment of a built binary run as the source account against DynamoDB Local: its keys,
/// the region, DynamoDB Local for DynamoDB and its streams, [`LOCAL_AWS_CONFIG`] and no shared
/// credentials file.
pub fn local_account_env() -> [(&'static str, &'static str); 7] {
    [
        ("AWS_ACCESS_KEY_ID", SOURCE_ACCOUNT),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_REGION", REGION),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint()),
        ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", endpoint()),
        ("AWS_CONFIG_FILE", LOCAL_AWS_CONFIG),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ]
}

/// The environment of a Lambda binary run under the fake Runtime API as the source account, the
/// other account through profile `target-account`: keys, region, DynamoDB Local, no shared files
/// or instance metadata of this machine.
pub fn function_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", SOURCE_ACCOUNT.to_string()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_string()),
        ("AWS_CONFIG_FILE", LOCAL_AWS_CONFIG.to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint().to_string()),
        ("VERIFY_PROFILE", "target-account".to_string()),
    ]
}

/// Runs the built `binary` (`env!("CARGO_BIN_EXE_…")`) with `args` in a cleared environment holding
/// the source account's keys, the region, DynamoDB Local's endpoint, [`LOCAL_AWS_CONFIG`] and no
/// shared credentials file, then `env` (which may override any of these).
pub fn run_binary(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary)
        .args(args)
        .env_clear()
        .envs(local_account_env())
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("run {binary}: {e}"))
}

/// Runs the built `binary` with `args` and nothing in its environment but `env`: for the
/// configurations it refuses before it calls anything.
pub fn run_binary_with_only(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(binary)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("run {binary}: {e}"))
}

/// Runs the built `ddb-verify` as [`run_binary`] does.
pub fn ddb_verify_cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_binary(env!("CARGO_BIN_EXE_ddb-verify"), args, env)
}

/// What a binary wrote to stderr.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a binary wrote, stdout then stderr.
pub fn output_of(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr_of(out))
}

/// The stream's records, as the event JSON Lambda would deliver (split into batches of `batch_size`).
pub async fn stream_events(
    source: &Account,
    stream_arn: &str,
    batch_size: usize,
) -> Vec<serde_json::Value> {
    let records = ddb_verify_testkit::events::read_all(&source.streams, stream_arn)
        .await
        .expect("read stream");
    records
        .chunks(batch_size.max(1))
        .map(|chunk| ddb_verify_testkit::events::lambda_event_json(chunk, stream_arn))
        .collect()
}

/// The event read as the function reads it: from its bytes ([`StreamEvent::from_slice`]).
pub fn parse_event(json: &serde_json::Value) -> StreamEvent {
    StreamEvent::from_slice(json.to_string().as_bytes()).expect("event parses")
}

/// The stream verifier wired as in Lambda, reading `table` in the target account.
pub fn verifier(
    table: &str,
    source: &Account,
    target: &Account,
    adjust: impl FnOnce(&mut Config),
) -> StreamVerifier<DynamoDbReader, NoFindings> {
    let mut config = Config::new(TableRef::parse(table).unwrap());
    adjust(&mut config);
    StreamVerifier::new(Verifier::new(
        config,
        DynamoDbReader::new(target.dynamodb.clone()),
        DynamoDbReader::new(source.dynamodb.clone()),
    ))
}

/// A shard poller's configuration: `verify` over the stream `stream_arn` from its trim horizon,
/// checkpoints in `checkpoint_table`, at most `get_records_limit` records a page, leases and polls
/// of 60 s, no role to assume.
pub fn poller_config(
    verify: &Config,
    stream_arn: &str,
    checkpoint_table: &str,
    get_records_limit: i32,
) -> PollerConfig {
    PollerConfig {
        verify: verify.clone(),
        stream: StreamSelector::Arn(stream_arn.to_string()),
        stream_role_arn: None,
        stream_role_external_id: None,
        checkpoint_table: checkpoint_table.to_string(),
        starting_position: StartAt::TrimHorizon,
        get_records_limit,
        lease_duration: Duration::from_secs(60),
        poll_interval: Duration::from_secs(60),
    }
}

/// Verdict names by event id.
pub fn verdicts(inv: &ddb_verify::lambda::handler::Invocation) -> HashMap<String, String> {
    inv.records
        .iter()
        .map(|r| {
            let name = match &r.outcome {
                ddb_verify::verify::Outcome::Verdict(v) => v.name().to_string(),
                ddb_verify::verify::Outcome::Retry(_) => "RETRY".to_string(),
                ddb_verify::verify::Outcome::NotSampled => "NOT_SAMPLED".to_string(),
            };
            (r.event_id.clone().unwrap_or_default(), name)
        })
        .collect()
}

/// Turns TTL on for `table` with `attribute` (UpdateTimeToLive; DynamoDB Local never deletes by
/// it, so expired items stay where the tests put them).
pub async fn enable_ttl(account: &Account, table: &str, attribute: &str) {
    let spec = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(attribute)
        .build()
        .expect("TTL specification");
    account
        .dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .expect("update time to live");
}

/// `item` with `expiresAt` (epoch seconds, a Number) `from_now_s` seconds from now (negative: past).
pub fn expiring(mut item: Item, from_now_s: i64) -> Item {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    item.insert("expiresAt".into(), n(&(now_s + from_now_s).to_string()));
    item
}

/// Puts the `Orders` item `customer`/`id` with `status` and an `expiresAt` `from_now_s` seconds
/// from now (negative: past) in `account`.
pub async fn put_expiring_order(
    account: &Account,
    table: &str,
    (customer, id, status): (&str, impl Display, &str),
    from_now_s: i64,
) {
    put(
        account,
        table,
        &expiring(order_item(customer, id, status), from_now_s),
    )
    .await;
}

/// The TTL attribute as the functions' wiring reads it: DescribeTimeToLive on `table`.
pub async fn described_ttl(account: &Account, table: &str) -> Option<String> {
    let port = ddb_verify::aws::ttl::DynamoDbTimeToLive::new(account.dynamodb.clone());
    ddb_verify::ports::ttl::resolve(None, &port, table).await
}
