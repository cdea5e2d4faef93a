//! DynamoDB Streams records in the shape Lambda delivers them.
//!
//! The demo and the integration tests read a real stream (DynamoDB Local's) with GetRecords and turn
//! the records into the exact event JSON an event source mapping would send, so the handler is
//! exercised on what Lambda gives it. Image conversion goes through serde_dynamo.

use std::collections::HashMap;

use aws_lambda_events::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::record::ChangeRecord;

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

/// Whether an attribute (or anything inside it) has a type this SDK version does not know; serde_dynamo
/// cannot convert those, so such records are reported as malformed instead.
fn has_unknown_type(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::M(m) => m.values().any(has_unknown_type),
        AttributeValue::L(l) => l.iter().any(has_unknown_type),
        AttributeValue::S(_)
        | AttributeValue::N(_)
        | AttributeValue::B(_)
        | AttributeValue::Bool(_)
        | AttributeValue::Null(_)
        | AttributeValue::Ss(_)
        | AttributeValue::Ns(_)
        | AttributeValue::Bs(_) => false,
        _ => true,
    }
}

/// A stream record as the engine's [`ChangeRecord`], through the same checks as Lambda's records
/// (the error is the reason it cannot be one).
pub fn change_record(record: &Record, stream_arn: &str) -> Result<ChangeRecord, String> {
    if let Some(change) = &record.dynamodb {
        let images = [&change.keys, &change.new_image, &change.old_image];
        if images
            .iter()
            .any(|i| i.as_ref().is_some_and(|m| m.values().any(has_unknown_type)))
        {
            return Err("record has an attribute of a type this version does not know".to_string());
        }
    }
    let event: EventRecord = serde_json::from_value(lambda_record_json(record, stream_arn))
        .map_err(|e| format!("record does not parse as a DynamoDB stream record: {e}"))?;
    ChangeRecord::from_lambda(event)
}

fn image_json(image: &Option<HashMap<String, AttributeValue>>) -> Option<Value> {
    if image.as_ref()?.values().any(has_unknown_type) {
        return None;
    }
    let item: serde_dynamo::Item = image.clone()?.into();
    serde_json::to_value(item).ok()
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
