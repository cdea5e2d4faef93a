//! Reading a DynamoDB stream shard by shard: the [`StreamSource`] seam, its DynamoDB Streams
//! implementation ([`DynamoDbStreams`]) and an in-memory stream ([`InMemoryStream`]) that can split
//! shards, page its listing, trim, throttle and expire iterators (what DynamoDB Local cannot do).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use aws_sdk_dynamodbstreams::types::{ShardFilter, ShardFilterType, ShardIteratorType};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use thiserror::Error;

use crate::record::{ChangeRecord, MalformedRecord};

/// One shard of a stream, as DescribeStream lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    /// Set once the shard is closed (split or stream disabled).
    pub ending_sequence_number: Option<String>,
}

/// One page of a stream's shard listing.
#[derive(Debug, Clone, Default)]
pub struct ShardPage {
    pub shards: Vec<ShardInfo>,
    pub last_evaluated_shard_id: Option<String>,
}

/// Where to start reading a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartAt {
    TrimHorizon,
    Latest,
    AfterSequenceNumber(String),
}

/// A record read from a shard: the engine's record, or why it cannot be one.
pub type PolledRecord = Result<ChangeRecord, MalformedRecord>;

/// One GetRecords page.
#[derive(Debug, Default)]
pub struct RecordsPage {
    pub records: Vec<PolledRecord>,
    /// `None` once the shard is closed and read to its end.
    pub next_iterator: Option<String>,
}

#[derive(Debug, Error)]
pub enum StreamError {
    #[error("shard iterator expired")]
    ExpiredIterator,
    #[error("stream data was trimmed (older than 24 hours) before it was read")]
    TrimmedData,
    #[error("stream reads throttled or the service failed ({code})")]
    Throttled { code: String },
    #[error("stream {stream_arn} not found (disabled or deleted?)")]
    NotFound { stream_arn: String },
    #[error("{operation} failed")]
    Service {
        operation: &'static str,
        #[source]
        source: Box<aws_sdk_dynamodbstreams::Error>,
    },
}

/// Reads a DynamoDB stream.
pub trait StreamSource: Send + Sync {
    /// One DescribeStream page (after `exclusive_start_shard_id`).
    fn list_shards(
        &self,
        stream_arn: &str,
        exclusive_start_shard_id: Option<String>,
    ) -> impl Future<Output = Result<ShardPage, StreamError>> + Send;

    /// The children of a shard (DescribeStream with the CHILD_SHARDS filter).
    fn child_shards(
        &self,
        stream_arn: &str,
        shard_id: &str,
    ) -> impl Future<Output = Result<Vec<ShardInfo>, StreamError>> + Send;

    fn shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        start: &StartAt,
    ) -> impl Future<Output = Result<Option<String>, StreamError>> + Send;

    fn get_records(
        &self,
        stream_arn: &str,
        iterator: &str,
        limit: i32,
    ) -> impl Future<Output = Result<RecordsPage, StreamError>> + Send;
}

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

    async fn child_shards(
        &self,
        stream_arn: &str,
        shard_id: &str,
    ) -> Result<Vec<ShardInfo>, StreamError> {
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
        Ok(out
            .stream_description
            .and_then(|d| d.shards)
            .unwrap_or_default()
            .into_iter()
            .map(shard_info)
            .filter(|s| s.parent_shard_id.as_deref() == Some(shard_id))
            .collect())
    }

    async fn shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        start: &StartAt,
    ) -> Result<Option<String>, StreamError> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard_id);
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
        let out = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify(stream_arn, "GetRecords", e))?;
        let records = out
            .records
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(position, record)| {
                crate::streams::change_record(record, stream_arn).map_err(|reason| {
                    MalformedRecord {
                        position,
                        event_id: record.event_id.clone(),
                        sequence_number: record
                            .dynamodb
                            .as_ref()
                            .and_then(|d| d.sequence_number.clone()),
                        reason,
                    }
                })
            })
            .collect();
        Ok(RecordsPage {
            records,
            next_iterator: out.next_shard_iterator,
        })
    }
}

/// A planned misbehaviour of [`InMemoryStream`] on its next GetRecords call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFault {
    /// This call goes through.
    Pass,
    Throttle,
    ExpireIterator,
    /// An empty page whose next iterator is the one given: the service may answer so before a
    /// shard's records, even on a closed shard.
    EmptyPage,
}

#[derive(Debug, Clone)]
struct MemoryShard {
    info: ShardInfo,
    records: Vec<ChangeRecord>,
    /// Records before this position were trimmed.
    trimmed_before: usize,
}

/// An in-memory stream: shards with lineage, records, trimming, paging of 100 shards, and faults.
/// Iterators are `shard_id/position`.
#[derive(Debug, Default)]
pub struct InMemoryStream {
    shards: Mutex<Vec<MemoryShard>>,
    faults: Mutex<VecDeque<StreamFault>>,
    /// How many of the next child-shard lookups fail.
    child_shard_faults: AtomicUsize,
    get_records_calls: AtomicUsize,
    reads_per_shard: Mutex<HashMap<String, usize>>,
}

/// DescribeStream's page size.
pub const SHARDS_PER_PAGE: usize = 100;

impl InMemoryStream {
    pub fn new() -> InMemoryStream {
        InMemoryStream::default()
    }

    /// Adds an open shard.
    pub fn add_shard(&self, shard_id: &str, parent: Option<&str>) {
        self.shards.lock().unwrap().push(MemoryShard {
            info: ShardInfo {
                shard_id: shard_id.to_string(),
                parent_shard_id: parent.map(String::from),
                ending_sequence_number: None,
            },
            records: Vec::new(),
            trimmed_before: 0,
        });
    }

    pub fn push(&self, shard_id: &str, record: ChangeRecord) {
        let mut shards = self.shards.lock().unwrap();
        let shard = shards
            .iter_mut()
            .find(|s| s.info.shard_id == shard_id)
            .expect("known shard");
        assert!(
            shard.info.ending_sequence_number.is_none(),
            "shard {shard_id} is closed"
        );
        shard.records.push(record);
    }

    /// Closes a shard (as a split does).
    pub fn close(&self, shard_id: &str) {
        let mut shards = self.shards.lock().unwrap();
        let shard = shards
            .iter_mut()
            .find(|s| s.info.shard_id == shard_id)
            .expect("known shard");
        shard.info.ending_sequence_number = Some(
            shard
                .records
                .last()
                .map(|r| r.sequence_number.clone())
                .unwrap_or_else(|| "0".into()),
        );
    }

    /// Trims the first `n` records of a shard.
    pub fn trim(&self, shard_id: &str, n: usize) {
        let mut shards = self.shards.lock().unwrap();
        let shard = shards
            .iter_mut()
            .find(|s| s.info.shard_id == shard_id)
            .expect("known shard");
        shard.trimmed_before = n;
    }

    /// Removes a shard from the listing (trimmed away entirely).
    pub fn remove_shard(&self, shard_id: &str) {
        self.shards
            .lock()
            .unwrap()
            .retain(|s| s.info.shard_id != shard_id);
    }

    pub fn plan_faults(&self, faults: impl IntoIterator<Item = StreamFault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    /// Makes the next `n` child-shard lookups (DescribeStream with CHILD_SHARDS) fail.
    pub fn fail_child_shard_lookups(&self, n: usize) {
        self.child_shard_faults.store(n, Ordering::SeqCst);
    }

    pub fn get_records_calls(&self) -> usize {
        self.get_records_calls.load(Ordering::SeqCst)
    }

    /// How many records were handed out per shard (to prove nothing is read twice).
    pub fn records_read(&self, shard_id: &str) -> usize {
        self.reads_per_shard
            .lock()
            .unwrap()
            .get(shard_id)
            .copied()
            .unwrap_or(0)
    }

    fn parse_iterator(iterator: &str) -> Option<(String, usize)> {
        let (shard, position) = iterator.rsplit_once('/')?;
        Some((shard.to_string(), position.parse().ok()?))
    }
}

impl StreamSource for InMemoryStream {
    async fn list_shards(
        &self,
        _stream_arn: &str,
        exclusive_start_shard_id: Option<String>,
    ) -> Result<ShardPage, StreamError> {
        let shards = self.shards.lock().unwrap();
        let start = match &exclusive_start_shard_id {
            Some(id) => shards
                .iter()
                .position(|s| &s.info.shard_id == id)
                .map(|p| p + 1)
                .unwrap_or(shards.len()),
            None => 0,
        };
        let page: Vec<ShardInfo> = shards
            .iter()
            .skip(start)
            .take(SHARDS_PER_PAGE)
            .map(|s| s.info.clone())
            .collect();
        let more = start + page.len() < shards.len();
        Ok(ShardPage {
            last_evaluated_shard_id: more
                .then(|| page.last().map(|s| s.shard_id.clone()))
                .flatten(),
            shards: page,
        })
    }

    async fn child_shards(
        &self,
        _stream_arn: &str,
        shard_id: &str,
    ) -> Result<Vec<ShardInfo>, StreamError> {
        let failing =
            self.child_shard_faults
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(StreamError::Throttled {
                code: "InternalServerError".into(),
            });
        }
        Ok(self
            .shards
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.info.parent_shard_id.as_deref() == Some(shard_id))
            .map(|s| s.info.clone())
            .collect())
    }

    async fn shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        start: &StartAt,
    ) -> Result<Option<String>, StreamError> {
        let shards = self.shards.lock().unwrap();
        let shard = shards
            .iter()
            .find(|s| s.info.shard_id == shard_id)
            .ok_or_else(|| StreamError::NotFound {
                stream_arn: stream_arn.to_string(),
            })?;
        let position = match start {
            StartAt::TrimHorizon => shard.trimmed_before,
            StartAt::Latest => shard.records.len(),
            StartAt::AfterSequenceNumber(seq) => {
                let at = shard
                    .records
                    .iter()
                    .position(|r| &r.sequence_number == seq)
                    .map(|p| p + 1);
                match at {
                    Some(p) if p > shard.trimmed_before => p,
                    Some(p) if p == shard.trimmed_before => p,
                    _ => return Err(StreamError::TrimmedData),
                }
            }
        };
        Ok(Some(format!("{shard_id}/{position}")))
    }

    async fn get_records(
        &self,
        _stream_arn: &str,
        iterator: &str,
        limit: i32,
    ) -> Result<RecordsPage, StreamError> {
        self.get_records_calls.fetch_add(1, Ordering::SeqCst);
        match self.faults.lock().unwrap().pop_front() {
            Some(StreamFault::Throttle) => {
                return Err(StreamError::Throttled {
                    code: "LimitExceededException".into(),
                })
            }
            Some(StreamFault::ExpireIterator) => return Err(StreamError::ExpiredIterator),
            Some(StreamFault::EmptyPage) => {
                return Ok(RecordsPage {
                    records: Vec::new(),
                    next_iterator: Some(iterator.to_string()),
                })
            }
            Some(StreamFault::Pass) | None => {}
        }
        let (shard_id, position) =
            Self::parse_iterator(iterator).ok_or(StreamError::ExpiredIterator)?;
        let shards = self.shards.lock().unwrap();
        let shard = shards
            .iter()
            .find(|s| s.info.shard_id == shard_id)
            .ok_or(StreamError::TrimmedData)?;
        if position < shard.trimmed_before {
            return Err(StreamError::TrimmedData);
        }
        let end = (position + limit.max(1) as usize).min(shard.records.len());
        let records: Vec<PolledRecord> = shard.records[position..end]
            .iter()
            .cloned()
            .map(Ok)
            .collect();
        *self
            .reads_per_shard
            .lock()
            .unwrap()
            .entry(shard_id.clone())
            .or_default() += records.len();
        let closed_and_done =
            shard.info.ending_sequence_number.is_some() && end == shard.records.len();
        Ok(RecordsPage {
            records,
            next_iterator: (!closed_and_done).then(|| format!("{shard_id}/{end}")),
        })
    }
}
