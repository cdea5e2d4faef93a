//! DynamoDB Streams records in the shape Lambda delivers them.
//!
//! The demo and the integration tests read a real stream (DynamoDB Local's) with GetRecords and turn
//! the records into the exact event JSON an event source mapping would send, so the handler is
//! exercised on what Lambda gives it. Images are converted
//! between the Streams SDK's and the DynamoDB SDK's twin attribute types directly.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as TableAttribute;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::lambda_json::item_json;
use crate::record::{ChangeRecord, Item, OldImage, RecordParts};

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

/// A Streams API attribute value as the DynamoDB SDK's (the two crates have twin types); `None` for a
/// type this SDK version does not know.
pub fn to_table_attribute(value: &AttributeValue) -> Option<TableAttribute> {
    Some(match value {
        AttributeValue::S(s) => TableAttribute::S(s.clone()),
        AttributeValue::N(n) => TableAttribute::N(n.clone()),
        AttributeValue::B(b) => TableAttribute::B(b.clone()),
        AttributeValue::Bool(b) => TableAttribute::Bool(*b),
        AttributeValue::Null(b) => TableAttribute::Null(*b),
        AttributeValue::M(m) => TableAttribute::M(to_item(m)?),
        AttributeValue::L(l) => {
            TableAttribute::L(l.iter().map(to_table_attribute).collect::<Option<_>>()?)
        }
        AttributeValue::Ss(v) => TableAttribute::Ss(v.clone()),
        AttributeValue::Ns(v) => TableAttribute::Ns(v.clone()),
        AttributeValue::Bs(v) => TableAttribute::Bs(v.clone()),
        _ => return None,
    })
}

fn to_item(image: &HashMap<String, AttributeValue>) -> Option<Item> {
    image
        .iter()
        .map(|(name, value)| Some((name.clone(), to_table_attribute(value)?)))
        .collect()
}

/// A stream record as the engine's [`ChangeRecord`], through the same checks as Lambda's records
/// (the error is the reason it cannot be one).
pub fn change_record(record: &Record, stream_arn: &str) -> Result<ChangeRecord, String> {
    let change = record.dynamodb.as_ref();
    let image = |image: Option<&HashMap<String, AttributeValue>>, field: &str| match image {
        None => Ok(None),
        Some(image) => to_item(image).map(Some).ok_or_else(|| {
            format!("dynamodb.{field} has an attribute of a type this version does not know")
        }),
    };
    ChangeRecord::from_parts(RecordParts {
        event_id: record.event_id.clone().unwrap_or_default(),
        event_name: record.event_name.as_ref().map(|n| n.as_str()),
        keys: image(change.and_then(|c| c.keys.as_ref()), "Keys")?,
        new_image: image(change.and_then(|c| c.new_image.as_ref()), "NewImage")?,
        old_image: image(change.and_then(|c| c.old_image.as_ref()), "OldImage")?
            .map(OldImage::Item),
        sequence_number: change.and_then(|c| c.sequence_number.clone()),
        view_type: change
            .and_then(|c| c.stream_view_type.as_ref())
            .map(|v| v.as_str()),
        created_epoch_seconds: change
            .and_then(|c| c.approximate_creation_date_time)
            .map(|t| t.as_secs_f64()),
        ttl_delete: record.user_identity.as_ref().is_some_and(|u| {
            u.r#type.as_deref() == Some("Service")
                && u.principal_id.as_deref() == Some("dynamodb.amazonaws.com")
        }),
        source_arn: Some(stream_arn),
    })
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
