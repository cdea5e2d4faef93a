//! DynamoDB Streams records in the shape Lambda delivers them.
//!
//! The demo and the integration tests read a real stream (DynamoDB Local's) with GetRecords and turn
//! the records into the exact event JSON an event source mapping would send, so the handler is
//! exercised on what Lambda gives it.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use serde_json::{json, Map, Value};
use thiserror::Error;

use ddb_verify::aws::streams::to_item;
use ddb_verify::record::json::item_json;

#[derive(Debug, Error)]
pub enum StreamReadError {
    #[error("DescribeStream on {stream_arn} failed")]
    DescribeStream {
        stream_arn: String,
        #[source]
        source: Box<aws_sdk_dynamodbstreams::Error>,
    },
    #[error("GetShardIterator on shard {shard_id} failed")]
    GetShardIterator {
        shard_id: String,
        #[source]
        source: Box<aws_sdk_dynamodbstreams::Error>,
    },
    #[error("GetRecords on shard {shard_id} failed")]
    GetRecords {
        shard_id: String,
        #[source]
        source: Box<aws_sdk_dynamodbstreams::Error>,
    },
}

/// Every record currently in the stream, shard by shard from TRIM_HORIZON, in stream order.
/// Reads each shard until a page comes back empty (an open shard never ends).
pub async fn read_all(client: &Client, stream_arn: &str) -> Result<Vec<Record>, StreamReadError> {
    let describe_error =
        |e: aws_sdk_dynamodbstreams::error::SdkError<_, _>| StreamReadError::DescribeStream {
            stream_arn: stream_arn.to_string(),
            source: Box::new(aws_sdk_dynamodbstreams::Error::from(e)),
        };
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = client
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(start.clone())
            .send()
            .await
            .map_err(describe_error)?;
        let description = out.stream_description;
        start = description
            .as_ref()
            .and_then(|d| d.last_evaluated_shard_id.clone());
        shards.extend(description.and_then(|d| d.shards).unwrap_or_default());
        if start.is_none() {
            break;
        }
    }
    let mut records = Vec::new();
    for shard in shards {
        let shard_id = shard.shard_id.unwrap_or_default();
        let mut iterator = client
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(&shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| StreamReadError::GetShardIterator {
                shard_id: shard_id.clone(),
                source: Box::new(e.into()),
            })?
            .shard_iterator;
        while let Some(it) = iterator {
            let out = client
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .map_err(|e| StreamReadError::GetRecords {
                    shard_id: shard_id.clone(),
                    source: Box::new(e.into()),
                })?;
            let page = out.records.unwrap_or_default();
            if page.is_empty() {
                break;
            }
            records.extend(page);
            iterator = out.next_shard_iterator;
        }
    }
    Ok(records)
}

fn image_json(image: &Option<HashMap<String, AttributeValue>>) -> Option<Value> {
    item_json(&to_item(image.as_ref()?)?)
}

/// One stream record as Lambda's event JSON record (`eventID`, `dynamodb.Keys`, ...).
pub fn lambda_record_json(record: &Record, stream_arn: &str) -> Value {
    let mut dynamodb = Map::new();
    if let Some(change) = &record.dynamodb {
        if let Some(t) = change.approximate_creation_date_time {
            // Lambda sends epoch seconds as a number.
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
        }
        for (name, image) in [
            ("Keys", &change.keys),
            ("NewImage", &change.new_image),
            ("OldImage", &change.old_image),
        ] {
            if let Some(v) = image_json(image) {
                dynamodb.insert(name.into(), v);
            }
        }
        dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number));
        dynamodb.insert(
            "SizeBytes".into(),
            json!(change.size_bytes.unwrap_or_default()),
        );
        if let Some(view) = &change.stream_view_type {
            dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
        }
    }
    let mut out = json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": record.event_version,
        "eventSource": record.event_source,
        "awsRegion": record.aws_region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    });
    if let Some(identity) = &record.user_identity {
        out["userIdentity"] =
            json!({"type": identity.r#type, "principalId": identity.principal_id});
    }
    out
}

/// A Lambda DynamoDB stream event holding these records.
pub fn lambda_event_json(records: &[Record], stream_arn: &str) -> Value {
    json!({ "Records": records.iter().map(|r| lambda_record_json(r, stream_arn)).collect::<Vec<_>>() })
}
