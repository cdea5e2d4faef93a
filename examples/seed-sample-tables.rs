//! Seeds DynamoDB Local for the sample events in `events/`: `Orders` and `Devices` in both simulated
//! accounts, with drift chosen so that the sample events give every verdict (see
//! `events/expected.json`). Used by `make watch` and the smoke test (scripts/smoke_test.py).
//!
//! Configured like the function (`Config::from_env()`, `VERIFY_PROFILE` for the other account).

use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType as T, StreamViewType};
use aws_sdk_dynamodb::Client;
use ddb_verify::aws::clients::dynamodb_clients;
use ddb_verify::config::Config;
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::record::{Expected, Item};
use ddb_verify_testkit::setup::{recreate_table, ORDER_KEYS};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The new images of a sample event's records, in order.
fn images(json: &str) -> Result<Vec<Item>, Error> {
    let event: StreamEvent = serde_json::from_str(json)?;
    Ok(event
        .records
        .into_iter()
        .filter_map(|r| match r.expected {
            Expected::Image(image) => Some(image.into_item()),
            _ => None,
        })
        .collect())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_env()?;
    let (source, target) = dynamodb_clients(&config).await;
    let tables: [(&str, &[(&str, T)]); 2] = [
        ("Orders", ORDER_KEYS),
        ("Devices", &[("deviceId", T::B), ("readingAt", T::N)]),
    ];
    for client in [&source, &target] {
        for (table, keys) in tables {
            recreate_table(client, table, keys, Some(StreamViewType::NewAndOldImages)).await?;
        }
    }
    let placed = images(include_str!("../events/insert.json"))?.remove(0);
    let shipped = images(include_str!("../events/modify.json"))?.remove(0);
    let same_key = images(include_str!("../events/same-key-batch.json"))?;
    let devices = images(include_str!("../events/mixed-keys.json"))?;
    let cancelled: Item = [
        (
            "customerId".to_string(),
            AttributeValue::S("customer#1002".into()),
        ),
        ("orderId".to_string(), AttributeValue::N("7".into())),
        ("status".to_string(), AttributeValue::S("CANCELLED".into())),
    ]
    .into();

    // Source: customer#1001 already SHIPPED; customer#3001 SHIPPED; customer#3002 placed.
    for item in [&shipped, &same_key[3], &same_key[2]] {
        put(&source, "Orders", item).await?;
    }
    // Target: customer#1001 still PLACED (the MODIFY never arrived), customer#1002 not deleted,
    // customer#3001 up to date, customer#3002 missing.
    for item in [&placed, &cancelled, &same_key[3]] {
        put(&target, "Orders", item).await?;
    }
    for (i, device) in devices.iter().enumerate() {
        put(&source, "Devices", device).await?;
        let mut replica = device.clone();
        if i == 1 {
            // Stored normalised on the other side: 150 for the source's 1.5E2 (equal numbers).
            replica.insert("value".into(), AttributeValue::N("150".into()));
        }
        put(&target, "Devices", &replica).await?;
    }
    println!("seeded Orders and Devices in both accounts");
    Ok(())
}

async fn put(client: &Client, table: &str, item: &Item) -> Result<(), Error> {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item.clone()))
        .send()
        .await?;
    Ok(())
}
