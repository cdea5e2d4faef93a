//! The baseline compare's demo: a `Catalog` table bulk-loaded into both simulated accounts with
//! known drift, then `ddb-verify baseline` (the same code, in process) over it while the source keeps
//! taking writes that reach the other side a moment later.
//!
//! Run it with `make demo` (after the stream verifier's demo; it needs `CHECKPOINT_TABLE`, made by
//! that demo, and the environment of the CLI: `SOURCE_TABLE_NAME`, `VERIFY_TABLE_NAME`, ...).

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use ddb_verify::aws::clients::dynamodb_clients;
use ddb_verify::cli::baseline::{run, BaselineArgs};
use ddb_verify::config::BaselineConfig;
use ddb_verify::record::Item;
use ddb_verify::testkit::setup::{recreate_table, write_items, ORDER_KEYS};

type Error = Box<dyn std::error::Error + Send + Sync>;

const ITEMS: u32 = 3_000;

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

    println!("\n== Baseline compare: {ITEMS} orders bulk-loaded into {table} in both accounts, with drift");
    recreate_table(&source, &table, ORDER_KEYS, None).await?;
    recreate_table(&target, &table, ORDER_KEYS, None).await?;
    let source_items: Vec<Item> = (0..ITEMS).map(|id| order(id, "PLACED")).collect();
    let mut target_items = Vec::new();
    for (id, item) in (0..ITEMS).zip(&source_items) {
        let mut copy = item.clone();
        match id {
            // Never copied.
            7 | 1_234 | 2_900 => continue,
            // Copied with a different status.
            42 | 777 | 2_048 => {
                copy.insert("status".into(), AttributeValue::S("CANCELLED".into()));
            }
            // Equal as DynamoDB means it: another number notation, another set order, and an
            // attribute in IGNORE_ATTRIBUTES that differs.
            _ => {
                copy.insert("total".into(), AttributeValue::N(format!("{}.5", id % 300)));
                copy.insert(
                    "tags".into(),
                    AttributeValue::Ss(vec!["express".into(), "gift".into()]),
                );
                copy.insert("syncedAt".into(), AttributeValue::N("2".into()));
            }
        }
        target_items.push(copy);
    }
    // Only on the other side.
    target_items.push(order(90_001, "PLACED"));
    target_items.push(order(90_002, "PLACED"));
    write_items(&source, &table, &source_items).await?;
    write_items(&target, &table, &target_items).await?;
    println!(
        "   drift: 3 missing (orders 7, 1234, 2900), 3 different (42, 777, 2048), 2 only on the other side (90001, 90002);\n   \
         the rest equal despite number notation (1.50 / 1.5), set order and IGNORE_ATTRIBUTES=syncedAt"
    );

    println!("== ddb-verify baseline --segments 4, while the source takes writes replicated 300 ms later");
    let writer = tokio::spawn(live_writes(source.clone(), target.clone(), table.clone()));
    let ending = run(BaselineArgs {
        segments: 4,
        run_id: None,
        json: false,
    })
    .await?;
    writer.abort();
    println!(
        "ddb-verify would exit with status {} ({ending:?}): the drift above, and nothing else",
        ending.exit_code_number()
    );
    Ok(())
}

/// Orders changing on the source during the compare, each change copied to the other side 300 ms
/// later: they must not show up as differences.
async fn live_writes(source: Client, target: Client, table: String) {
    for round in 0u32.. {
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
