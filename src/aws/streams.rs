//! [`StreamSource`] over DynamoDB Streams (DescribeStream, GetShardIterator, GetRecords), and stream
//! records as the engine's [`Expectation`]s. GetRecords answers are read by the byte reader as
//! Lambda's records are (`record::change`); an answer it declines is decoded by the SDK, and its
//! images converted between the Streams SDK's and the DynamoDB SDK's twin attribute types.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as TableAttribute;
use aws_sdk_dynamodbstreams::operation::get_records::{GetRecords, GetRecordsOutput};
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, Record, ShardFilter, ShardFilterType, ShardIteratorType,
};
use aws_smithy_runtime_api::client::interceptors::context::Output;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::answers::ByteReader;
use super::Spawned;
use crate::ports::failure::{CallFailure, FailureKind};
use crate::ports::stream::{
    RecordsPage, ShardInfo, ShardPage, ShardRef, StartAt, StreamError, StreamSource,
};
use crate::record::change::Shape;
use crate::record::json::Reader;
use crate::record::{
    Expectation, Image, Item, MalformedRecord, NotVerifiable, OldImage, RecordParts,
};

/// [`StreamSource`] over an `aws_sdk_dynamodbstreams::Client`. GetRecords answers are read by the
/// byte reader (`aws::answers`): new images onto tapes, old images kept as their JSON, as Lambda's
/// records are.
#[derive(Debug, Clone)]
pub struct DynamoDbStreams {
    client: aws_sdk_dynamodbstreams::Client,
    pages: ByteReader,
}

impl DynamoDbStreams {
    pub fn new(client: aws_sdk_dynamodbstreams::Client) -> DynamoDbStreams {
        DynamoDbStreams {
            client,
            pages: ByteReader::new(&GetRecords::new(), || {
                Output::erase(GetRecordsOutput::builder().build())
            }),
        }
    }
}

/// A GetRecords answer's body read by the byte reader, its records through the same checks as
/// Lambda's; `None` if it declines any of it (the SDK's decoder reads it then).
///
/// One difference from the SDK's way, the same as Lambda's records have: an old image is kept as
/// its JSON. One with an attribute type this version does not know is logged as not usable when a
/// verdict would read it, and proves nothing; the record is verified all the same.
fn read_records(json: &[u8], stream_arn: &str) -> Option<RecordsPage> {
    let mut r = Reader::new(json)?;
    let mut page = RecordsPage {
        records: Vec::new(),
        next_iterator: None,
    };
    let shape = Shape::Api { stream_arn };
    let (mut records_seen, mut next_seen) = (false, false);
    r.object(|r, field| match &*field {
        "Records" => {
            if std::mem::replace(&mut records_seen, true) || r.null()? {
                // Given twice, or null: not what DynamoDB writes.
                return None;
            }
            r.array(|r| {
                let position = page.records.len();
                let record = r.record(shape)?.map_err(|m| m.at(position));
                page.records.push(record);
                Some(())
            })
            .map(drop)
        }
        "NextShardIterator" => {
            if std::mem::replace(&mut next_seen, true) {
                return None;
            }
            page.next_iterator = r.text()?.map(String::from);
            Some(())
        }
        _ => r.skip(1),
    })?;
    r.peek().is_none().then_some(page)
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
        _ => StreamError::Service(CallFailure::new(
            operation,
            format!("stream {stream_arn}"),
            FailureKind::Permanent,
            aws_sdk_dynamodbstreams::Error::from(err),
        )),
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
        let arn = stream_arn.to_string();
        let (interceptor, slot) = self.pages.for_call({
            let arn = arn.clone();
            move |json| read_records(json, &arn)
        });
        let send = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .customize()
            .interceptor(interceptor)
            .send();
        let read = Spawned::spawn(async move {
            let out = send.await.map_err(|e| classify(&arn, "GetRecords", e))?;
            Ok(match slot.take() {
                Some(page) => page,
                None => records_page(out, &arn),
            })
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
            change_record(record, stream_arn).map_err(|e| MalformedRecord {
                position,
                event_id: record.event_id.clone(),
                sequence_number: record
                    .dynamodb
                    .as_ref()
                    .and_then(|d| d.sequence_number.clone()),
                reason: e.reason,
                keys: e.keys.map(Box::new),
                source_table: crate::record::table_name_from_arn(stream_arn)
                    .map(String::into_boxed_str),
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

/// A stream image as a table item: `None` for an attribute type a table cannot hold.
pub fn to_item(image: &HashMap<String, AttributeValue>) -> Option<Item> {
    image
        .iter()
        .map(|(name, value)| Some((name.clone(), to_table_attribute(value)?)))
        .collect()
}

/// A stream record as the engine's [`Expectation`], through the same checks as Lambda's records
/// (the error is the reason it cannot be one).
pub fn change_record(record: &Record, stream_arn: &str) -> Result<Expectation, NotVerifiable> {
    let change = record.dynamodb.as_ref();
    let image = |image: Option<&HashMap<String, AttributeValue>>, field: &str| match image {
        None => Ok(None),
        Some(image) => to_item(image).map(Some).ok_or_else(|| {
            format!("dynamodb.{field} has an attribute of a type this version does not know")
        }),
    };
    let keys = image(change.and_then(|c| c.keys.as_ref()), "Keys")
        .map_err(|reason| NotVerifiable { reason, keys: None })?;
    // Past the key, a record that fails is still a key's problem: the key goes with the reason.
    let with_key = |reason: String| NotVerifiable {
        reason,
        keys: keys.clone().filter(|k| crate::record::check_key(k).is_ok()),
    };
    let new_image = image(change.and_then(|c| c.new_image.as_ref()), "NewImage")
        .map_err(with_key)?
        .map(Image::Item);
    let old_image = image(change.and_then(|c| c.old_image.as_ref()), "OldImage")
        .map_err(with_key)?
        .map(OldImage::Item);
    Expectation::from_stream(RecordParts {
        event_id: record.event_id.clone().unwrap_or_default(),
        event_name: record.event_name.as_ref().map(|n| n.as_str()),
        keys,
        new_image,
        old_image,
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodbstreams::types::{
        AttributeValue as V, Identity, OperationType, StreamRecord, StreamViewType,
    };
    use aws_smithy_types::DateTime;

    use super::*;
    use crate::ports::stream::PolledRecord;
    use crate::record::Expected;

    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:111122223333:table/Orders/stream/2026-11-30T00:00:00.000";

    /// A GetRecords body as DynamoDB writes it: the creation time in its float notation, the
    /// identity's fields capitalized, no ARN in the records.
    fn body(records: &[&str]) -> String {
        format!(
            r#"{{"NextShardIterator":"it-2","Records":[{}]}}"#,
            records.join(",")
        )
    }

    const INSERT: &str = r#"{"awsRegion":"us-east-1","dynamodb":{"ApproximateCreationDateTime":1.7645472E9,
        "Keys":{"customerId":{"S":"c#1"},"orderId":{"N":"1"}},
        "NewImage":{"customerId":{"S":"c#1"},"orderId":{"N":"1"},"note":{"S":"caf\u00e9 \"q\""},"l":{"L":[{"NULL":true},{"BS":["AAE="]}]}},
        "SequenceNumber":"100","SizeBytes":80,"StreamViewType":"NEW_AND_OLD_IMAGES"},
        "eventID":"e1","eventName":"INSERT","eventSource":"aws:dynamodb","eventVersion":"1.1"}"#;

    const TTL_REMOVE: &str = r#"{"dynamodb":{"ApproximateCreationDateTime":1764547201,
        "Keys":{"customerId":{"S":"c#2"},"orderId":{"N":"2"}},
        "OldImage":{"customerId":{"S":"c#2"},"orderId":{"N":"2"},"n":{"N":"5"}},
        "SequenceNumber":"200","StreamViewType":"NEW_AND_OLD_IMAGES"},
        "eventID":"e2","eventName":"REMOVE","userIdentity":{"PrincipalId":"dynamodb.amazonaws.com","Type":"Service"}}"#;

    /// The same two records as the SDK's types, through the SDK's path (`change_record`).
    fn sdk_records() -> Vec<Record> {
        let map = |pairs: &[(&str, V)]| -> HashMap<String, V> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        let key =
            |c: &str, o: &str| map(&[("customerId", V::S(c.into())), ("orderId", V::N(o.into()))]);
        let mut new_image = key("c#1", "1");
        new_image.insert("note".into(), V::S("caf\u{e9} \"q\"".into()));
        new_image.insert(
            "l".into(),
            V::L(vec![
                V::Null(true),
                V::Bs(vec![aws_smithy_types::Blob::new(vec![0, 1])]),
            ]),
        );
        let mut old_image = key("c#2", "2");
        old_image.insert("n".into(), V::N("5".into()));
        let change = |created: f64, keys, seq: &str| {
            StreamRecord::builder()
                .approximate_creation_date_time(DateTime::from_secs_f64(created))
                .set_keys(Some(keys))
                .sequence_number(seq)
                .stream_view_type(StreamViewType::NewAndOldImages)
        };
        vec![
            Record::builder()
                .event_id("e1")
                .event_name(OperationType::Insert)
                .dynamodb(
                    change(1.7645472E9, key("c#1", "1"), "100")
                        .set_new_image(Some(new_image))
                        .build(),
                )
                .build(),
            Record::builder()
                .event_id("e2")
                .event_name(OperationType::Remove)
                .dynamodb(
                    change(1764547201.0, key("c#2", "2"), "200")
                        .set_old_image(Some(old_image))
                        .build(),
                )
                .user_identity(
                    Identity::builder()
                        .principal_id("dynamodb.amazonaws.com")
                        .r#type("Service")
                        .build(),
                )
                .build(),
        ]
    }

    fn read(json: &str) -> Option<RecordsPage> {
        read_records(json.as_bytes(), ARN)
    }

    #[test]
    fn a_page_read_by_the_byte_reader_says_what_the_sdks_decoding_says() {
        let page = read(&body(&[INSERT, TTL_REMOVE])).expect("read by the byte reader");
        assert_eq!(page.next_iterator.as_deref(), Some("it-2"));
        let ours: Vec<Expectation> = page.records.into_iter().map(Result::unwrap).collect();
        let sdk: Vec<Expectation> = sdk_records()
            .iter()
            .map(|r| change_record(r, ARN).unwrap())
            .collect();
        // Images compare as items, old images too: the forms differ, not what they hold.
        assert_eq!(ours, sdk);
        let Expected::Image(Image::Tape(_)) = &ours[0].expected else {
            panic!("the new image is not on a tape: {:?}", ours[0].expected)
        };
        assert!(matches!(
            ours[1].stream().and_then(|c| c.old_image.as_ref()),
            Some(OldImage::Json(_))
        ));
        // What the capitalized identity and the stream's ARN give.
        assert!(ours[1].stream().unwrap().ttl_delete);
        assert_eq!(ours[0].source_table.as_deref(), Some("Orders"));
        assert!(ours[0].since.is_some());
    }

    #[test]
    fn a_record_that_fails_the_checks_keeps_its_place_and_its_identity() {
        let no_keys = r#"{"eventID":"e3","eventName":"INSERT","dynamodb":{"SequenceNumber":"300",
            "StreamViewType":"NEW_IMAGE","NewImage":{"a":{"S":"x"}}}}"#;
        let page = read(&body(&[INSERT, no_keys])).expect("read by the byte reader");
        let records: Vec<PolledRecord> = page.records;
        assert!(records[0].is_ok());
        let bad = records[1].as_ref().unwrap_err();
        assert_eq!(bad.position, 1);
        assert_eq!(bad.event_id.as_deref(), Some("e3"));
        assert_eq!(bad.sequence_number.as_deref(), Some("300"));
        // The same reason the SDK's path gives.
        let sdk = Record::builder()
            .event_id("e3")
            .event_name(OperationType::Insert)
            .dynamodb(
                StreamRecord::builder()
                    .sequence_number("300")
                    .stream_view_type(StreamViewType::NewImage)
                    .set_new_image(Some(HashMap::from([("a".into(), V::S("x".into()))])))
                    .build(),
            )
            .build();
        assert_eq!(bad.reason, change_record(&sdk, ARN).unwrap_err().reason);
    }

    #[test]
    fn what_the_sdk_would_read_otherwise_is_declined() {
        assert!(read(&body(&[])).is_some_and(|p| p.records.is_empty()));
        assert!(read(r#"{"Records":[]}"#).is_some_and(|p| p.next_iterator.is_none()));
        let with = |from: &str, to: &str| {
            let changed = INSERT.replacen(from, to, 1);
            assert_ne!(changed, INSERT, "{from}");
            body(&[&changed])
        };
        for declined in [
            with(r#"{"S":"c#1"}"#, r#"{"X":"c#1"}"#), // a type this version does not know
            with("1.7645472E9", r#""1764547200""#),   // a creation time that is not a number
            with(r#""eventID":"e1""#, r#""dynamodb":{},"eventID":"e1""#), // dynamodb twice
            with(r#""note""#, r#""orderId""#),        // a name twice in an image
            r#"{"Records":[],"Records":[]}"#.to_string(),
            r#"{"Records":null}"#.to_string(),
            format!("{} x", body(&[INSERT])),
            body(&[INSERT])[..60].to_string(),
        ] {
            assert!(read(&declined).is_none(), "{declined}");
        }
    }
}
