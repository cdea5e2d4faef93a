//! The baseline compare's demo, in three steps (the first argument), with the shard poller and
//! `ddb-verify` in between (see the Makefile's `demo`):
//! - `load`: a `Catalog` table (the source's with a stream) bulk-loaded into both simulated
//!   accounts with known drift, and the findings table (`FINDINGS_TABLE`) deleted, for
//!   `ddb-verify init` to create anew;
//! - `compare`: `ddb-verify baseline` (the same code, in process) while the source keeps taking
//!   writes that reach the other side a moment later.
//!
//! The drift is then repaired by `ddb-verify repair --apply` (the Makefile).
//!
//! It needs `CHECKPOINT_TABLE` (made by the stream verifier's demo) and the environment of the CLI:
//! `SOURCE_TABLE_NAME`, `VERIFY_TABLE_NAME`, `FINDINGS_TABLE`, ...

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use aws_sdk_dynamodb::Client;
use ddb_verify::aws::clients::dynamodb_clients;
use ddb_verify::cli::baseline::{run, BaselineArgs};
use ddb_verify::config::BaselineConfig;
use ddb_verify::record::Item;
use ddb_verify_testkit::setup::{recreate_table, write_items, ORDER_KEYS};

type Error = Box<dyn std::error::Error + Send + Sync>;

const ITEMS: u32 = 3_000;

/// Orders never copied to the other side.
const MISSING: [u32; 3] = [7, 1_234, 2_900];
/// Orders copied with another status.
const DIFFERENT: [u32; 3] = [42, 777, 2_048];
/// Orders only on the other side.
const EXTRA: [u32; 2] = [90_001, 90_002];

fn key(id: u32) -> Item {
    [
        (
            "customerId".into(),
            AttributeValue::S(format!("customer#{}", id % 97)),
        ),
        ("orderId".into(), AttributeValue::N(id.to_string())),
    ]
    .into()
}

fn order(id: u32, status: &str) -> Item {
    let mut item = key(id);
    item.insert("status".into(), AttributeValue::S(status.into()));
    item.insert(
        "total".into(),
        AttributeValue::N(format!("{}.50", id % 300)),
    );
    item.insert(
        "tags".into(),
        AttributeValue::Ss(vec!["gift".into(), "express".into()]),
    );
    item.insert("syncedAt".into(), AttributeValue::N("1".into()));
    item
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ddb_verify::cli::init_logging();
    let config = BaselineConfig::from_env()?;
    let table = config.source_table.clone();
    let (source, target) = dynamodb_clients(&config.verify).await;
    match std::env::args().nth(1).as_deref() {
        Some("load") => load(&config, &source, &target).await,
        Some("compare") => compare(source, target, table).await,
        other => Err(format!("expected load or compare, not {other:?}").into()),
    }
}

async fn load(config: &BaselineConfig, source: &Client, target: &Client) -> Result<(), Error> {
    let table = &config.source_table;
    println!("\n== Catalog: {ITEMS} orders bulk-loaded into {table} in both accounts, with drift");
    recreate_table(
        source,
        table,
        ORDER_KEYS,
        Some(StreamViewType::NewAndOldImages),
    )
    .await?;
    recreate_table(target, table, ORDER_KEYS, None).await?;
    if let Some(findings) = &config.verify.findings_table {
        // A fresh findings table for every demo (in the verifiers' own account, here the
        // source's): `ddb-verify init` creates it next.
        let _ = source.delete_table().table_name(findings).send().await;
    }
    let source_items: Vec<Item> = (0..ITEMS).map(|id| order(id, "PLACED")).collect();
    let mut target_items = Vec::new();
    for (id, item) in (0..ITEMS).zip(&source_items) {
        let mut copy = item.clone();
        if MISSING.contains(&id) {
            continue;
        } else if DIFFERENT.contains(&id) {
            copy.insert("status".into(), AttributeValue::S("CANCELLED".into()));
        } else {
            // Equal as DynamoDB means it: another number notation, another set order, and an
            // attribute in IGNORE_ATTRIBUTES that differs.
            copy.insert("total".into(), AttributeValue::N(format!("{}.5", id % 300)));
            copy.insert(
                "tags".into(),
                AttributeValue::Ss(vec!["express".into(), "gift".into()]),
            );
            copy.insert("syncedAt".into(), AttributeValue::N("2".into()));
        }
        target_items.push(copy);
    }
    target_items.extend(EXTRA.iter().map(|&id| order(id, "PLACED")));
    write_items(source, table, &source_items).await?;
    write_items(target, table, &target_items).await?;
    println!(
        "   drift: 3 missing (orders 7, 1234, 2900), 3 different (42, 777, 2048), 2 only on the other side (90001, 90002);\n   \
         the rest equal despite number notation (1.50 / 1.5), set order and IGNORE_ATTRIBUTES=syncedAt"
    );
    Ok(())
}

/// DynamoDB Local cuts creation times to the minute, so readiness counts the stream verifier's
/// coverage from the end of the minute of the first change it verified (the strict side): a
/// baseline that begins within that minute would leave a gap. The demo's baseline begins after it
/// (and the 1 s clock margin).
async fn wait_for_the_next_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let into_minute = Duration::from_millis((now.as_millis() % 60_000) as u64);
    let wait = Duration::from_secs(60) - into_minute + Duration::from_millis(1_500);
    println!(
        "\n   (waiting {:.0} s: DynamoDB Local's creation times are cut to the minute, and coverage counts from the minute's end)",
        wait.as_secs_f64()
    );
    tokio::time::sleep(wait).await;
}

async fn compare(source: Client, target: Client, table: String) -> Result<(), Error> {
    wait_for_the_next_minute().await;
    println!("\n== ddb-verify baseline --segments 4, while the source takes writes replicated 300 ms later");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(live_writes(source, target, table, Arc::clone(&stop)));
    let ending = run(
        BaselineArgs {
            segments: 4,
            run_id: None,
            json: false,
        },
        &ddb_verify::cli::Env::process(),
    )
    .await;
    // The writer finishes its round: its last change reaches the other side too.
    stop.store(true, Ordering::Relaxed);
    writer.await?;
    let ending = ending?;
    println!(
        "ddb-verify would exit with status {} ({ending:?}): the drift above, and nothing else",
        ending.exit_code_number()
    );
    Ok(())
}

/// Orders changing on the source during the compare, each change copied to the other side 300 ms
/// later: they must not show up as differences.
async fn live_writes(source: Client, target: Client, table: String, stop: Arc<AtomicBool>) {
    for round in 0u32.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // Orders the drift above does not touch.
        let id = 100 + (round * 37) % 900;
        let item = order(id, &format!("SHIPPED-{round}"));
        let put = |client: &Client| {
            client
                .put_item()
                .table_name(&table)
                .set_item(Some(item.clone()))
                .send()
        };
        if put(&source).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if put(&target).await.is_err() {
            return;
        }
    }
}
