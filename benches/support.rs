//! Shared by the bench binaries: generated ~1 KB items and Lambda events.
#![allow(dead_code)]

use serde_json::{json, Value};

/// A ~1 KB item in DynamoDB JSON, with nested maps, lists, sets and numbers.
pub fn item_json(i: usize) -> Value {
    json!({
        "customerId": {"S": format!("customer#{i}")},
        "orderId": {"N": i.to_string()},
        "status": {"S": "PLACED"},
        "total": {"N": "1234.5600"},
        "createdAt": {"N": "1793577600"},
        "note": {"S": "x".repeat(300)},
        "address": {"M": {
            "street": {"S": "1 Long Street Name"}, "city": {"S": "Oslo"}, "zip": {"S": "0150"},
            "geo": {"M": {"lat": {"N": "59.9139"}, "lon": {"N": "10.7522"}}}
        }},
        "lines": {"L": (0..5).map(|j| json!({"M": {
            "sku": {"S": format!("SKU-{j:04}")}, "qty": {"N": (j + 1).to_string()},
            "price": {"N": "19.90"}, "tags": {"SS": ["a", "b"]}
        }})).collect::<Vec<_>>()},
        "tags": {"SS": ["gift", "priority", "express", "fragile"]},
        "scores": {"NS": ["1", "2.5", "3E1", "42"]},
        "flags": {"M": {"vip": {"BOOL": true}, "blocked": {"BOOL": false}, "legacy": {"NULL": true}}}
    })
}

/// A Lambda DynamoDB stream event of `n` INSERT records with ~1 KB images.
pub fn event_json(n: usize) -> String {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let image = item_json(i);
            json!({
                "eventID": format!("{i:032x}"),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1793577600,
                    "Keys": {"customerId": image["customerId"], "orderId": image["orderId"]},
                    "NewImage": image,
                    "SequenceNumber": format!("{}", 100_000_000_000_000_000_000u128 + i as u128),
                    "SizeBytes": 1024,
                    "StreamViewType": "NEW_IMAGE"
                },
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2026-11-01T00:00:00.000"
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// One BatchGetItem chunk (at most 100 keys) of `table`, strongly consistent as the engine reads,
/// unprocessed keys asked again, with the SDK alone: (calls made, items found).
pub async fn batch_get_chunk(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut chunk: Vec<ddb_verify::record::Item>,
) -> (usize, usize) {
    let (mut made, mut found) = (0, 0);
    while !chunk.is_empty() {
        made += 1;
        let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(chunk))
            .consistent_read(true)
            .build()
            .unwrap();
        let out = client
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .unwrap();
        found += out
            .responses
            .and_then(|mut r| r.remove(table))
            .map(|v| v.len())
            .unwrap_or(0);
        chunk = out
            .unprocessed_keys
            .and_then(|mut u| u.remove(table))
            .map(|k| k.keys)
            .unwrap_or_default();
    }
    (made, found)
}
