//! [`StreamSource`] over DynamoDB Streams (DescribeStream, GetShardIterator, GetRecords), and stream
//! records as the engine's [`Expectation`]s. Images are converted between the Streams SDK's and the
//! DynamoDB SDK's twin attribute types directly.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as TableAttribute;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsOutput;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, Record, ShardFilter, ShardFilterType, ShardIteratorType,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::Spawned;
use crate::record::{Expectation, Image, Item, MalformedRecord, OldImage, RecordParts};
use crate::source::stream::{
    RecordsPage, ShardInfo, ShardPage, ShardRef, StartAt, StreamError, StreamSource,
};

/// [`StreamSource`] over an `aws_sdk_dynamodbstreams::Client`.
#[derive(Debug, Clone)]
pub struct DynamoDbStreams {
    client: aws_sdk_dynamodbstreams::Client,
}

impl DynamoDbStreams {
    pub fn new(client: aws_sdk_dynamodbstreams::Client) -> DynamoDbStreams {
        DynamoDbStreams { client }
    }
}

fn classify<E>(
    stream_arn: &str,
    operation: &'static str,
    err: aws_sdk_dynamodbstreams::error::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> StreamError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    aws_sdk_dynamodbstreams::Error: From<
        aws_sdk_dynamodbstreams::error::SdkError<
            E,
            aws_smithy_runtime_api::client::orchestrator::HttpResponse,
        >,
    >,
{
    use aws_sdk_dynamodbstreams::error::SdkError;
    let code = err.code().unwrap_or_default().to_string();
    let server_error =
        matches!(&err, SdkError::ServiceError(e) if e.raw().status().as_u16() >= 500);
    match code.as_str() {
        "ExpiredIteratorException" => StreamError::ExpiredIterator,
        "TrimmedDataAccessException" => StreamError::TrimmedData,
        "ResourceNotFoundException" => StreamError::NotFound {
            stream_arn: stream_arn.to_string(),
        },
        "LimitExceededException"
        | "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "InternalServerError" => StreamError::Throttled { code },
        _ if server_error
            || matches!(
                err,
                SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
            ) =>
        {
            StreamError::Throttled {
                code: if code.is_empty() {
                    "network or 5xx".into()
                } else {
                    code
                },
            }
        }
        _ => StreamError::Service {
            operation,
            source: Box::new(err.into()),
        },
    }
}

fn shard_info(shard: aws_sdk_dynamodbstreams::types::Shard) -> ShardInfo {
    ShardInfo {
        shard_id: shard.shard_id.unwrap_or_default(),
        parent_shard_id: shard.parent_shard_id,
        ending_sequence_number: shard
            .sequence_number_range
            .and_then(|r| r.ending_sequence_number),
    }
}

impl StreamSource for DynamoDbStreams {
    async fn list_shards(
        &self,
        stream_arn: &str,
        exclusive_start_shard_id: Option<String>,
    ) -> Result<ShardPage, StreamError> {
        let out = self
            .client
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(exclusive_start_shard_id)
            .send()
            .await
            .map_err(|e| classify(stream_arn, "DescribeStream", e))?;
        let description = out.stream_description.unwrap_or_else(|| {
            aws_sdk_dynamodbstreams::types::StreamDescription::builder().build()
        });
        Ok(ShardPage {
            shards: description
                .shards
                .unwrap_or_default()
                .into_iter()
                .map(shard_info)
                .collect(),
            last_evaluated_shard_id: description.last_evaluated_shard_id,
        })
    }

    async fn child_shards(&self, shard: ShardRef<'_>) -> Result<Vec<ShardInfo>, StreamError> {
        let ShardRef {
            stream_arn,
            shard_id,
        } = shard;
        let filter = ShardFilter::builder()
            .r#type(ShardFilterType::ChildShards)
            .shard_id(shard_id)
            .build();
        let out = self
            .client
            .describe_stream()
            .stream_arn(stream_arn)
            .shard_filter(filter)
            .send()
            .await
            .map_err(|e| classify(stream_arn, "DescribeStream", e))?;
        let listed = out.stream_description.and_then(|d| d.shards);
        Ok(ShardInfo::children_of(
            listed.unwrap_or_default().into_iter().map(shard_info),
            shard_id,
        ))
    }

    async fn shard_iterator(
        &self,
        shard: ShardRef<'_>,
        start: &StartAt,
    ) -> Result<Option<String>, StreamError> {
        let stream_arn = shard.stream_arn;
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard.shard_id);
        let request = match start {
            StartAt::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            StartAt::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            StartAt::AfterSequenceNumber(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
        };
        let out = request
            .send()
            .await
            .map_err(|e| classify(stream_arn, "GetShardIterator", e))?;
        Ok(out.shard_iterator)
    }

    async fn get_records(
        &self,
        stream_arn: &str,
        iterator: &str,
        limit: i32,
    ) -> Result<RecordsPage, StreamError> {
        // Its own task: a page of 1,000 records is megabytes of JSON, and its decoding and
        // conversion would otherwise hold back the poller's task, which verifies the page before.
        let send = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send();
        let arn = stream_arn.to_string();
        let read = Spawned::spawn(async move {
            let out = send.await.map_err(|e| classify(&arn, "GetRecords", e))?;
            Ok(records_page(out, &arn))
        });
        read.await.map_err(|source| StreamError::Task {
            operation: "GetRecords",
            source,
        })?
    }
}

/// A GetRecords answer as the engine's records, each converted or said why not.
fn records_page(out: GetRecordsOutput, stream_arn: &str) -> RecordsPage {
    let records = out
        .records
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(position, record)| {
            change_record(record, stream_arn).map_err(|reason| MalformedRecord {
                position,
                event_id: record.event_id.clone(),
                sequence_number: record
                    .dynamodb
                    .as_ref()
                    .and_then(|d| d.sequence_number.clone()),
                reason,
            })
        })
        .collect();
    RecordsPage {
        records,
        next_iterator: out.next_shard_iterator,
    }
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

pub(crate) fn to_item(image: &HashMap<String, AttributeValue>) -> Option<Item> {
    image
        .iter()
        .map(|(name, value)| Some((name.clone(), to_table_attribute(value)?)))
        .collect()
}

/// A stream record as the engine's [`Expectation`], through the same checks as Lambda's records
/// (the error is the reason it cannot be one).
pub fn change_record(record: &Record, stream_arn: &str) -> Result<Expectation, String> {
    let change = record.dynamodb.as_ref();
    let image = |image: Option<&HashMap<String, AttributeValue>>, field: &str| match image {
        None => Ok(None),
        Some(image) => to_item(image).map(Some).ok_or_else(|| {
            format!("dynamodb.{field} has an attribute of a type this version does not know")
        }),
    };
    Expectation::from_stream(RecordParts {
        event_id: record.event_id.clone().unwrap_or_default(),
        event_name: record.event_name.as_ref().map(|n| n.as_str()),
        keys: image(change.and_then(|c| c.keys.as_ref()), "Keys")?,
        new_image: image(change.and_then(|c| c.new_image.as_ref()), "NewImage")?.map(Image::Item),
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
