//! An in-memory stream behind the [`StreamSource`] port: it can split shards, page its listing,
//! trim, throttle and expire iterators (what DynamoDB Local cannot do).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ddb_verify::ports::stream::{
    PolledRecord, RecordsPage, ShardInfo, ShardPage, ShardRef, StartAt, StreamError, StreamSource,
};
use ddb_verify::record::Expectation;

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
    records: Vec<Expectation>,
    /// Records before this position were trimmed.
    trimmed_before: usize,
    /// Empty pages an iterator at TRIM_HORIZON gives before reaching the records.
    empty_pages_first: usize,
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
            empty_pages_first: 0,
        });
    }

    pub fn push(&self, shard_id: &str, record: Expectation) {
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
                .map(|r| r.position())
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

    /// Makes every iterator at TRIM_HORIZON of a shard give `n` empty pages before its records, as
    /// the service may ("it might take multiple calls to get to a portion of the shard that
    /// contains stream records").
    pub fn empty_pages_first(&self, shard_id: &str, n: usize) {
        let mut shards = self.shards.lock().unwrap();
        let shard = shards
            .iter_mut()
            .find(|s| s.info.shard_id == shard_id)
            .expect("known shard");
        shard.empty_pages_first = n;
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

    /// `shard_id/position`, or `shard_id/position~empty` with `empty` pages left before it.
    fn parse_iterator(iterator: &str) -> Option<(String, usize, usize)> {
        let (shard, at) = iterator.rsplit_once('/')?;
        let (position, empty) = at.split_once('~').unwrap_or((at, "0"));
        Some((
            shard.to_string(),
            position.parse().ok()?,
            empty.parse().ok()?,
        ))
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

    async fn child_shards(&self, shard: ShardRef<'_>) -> Result<Vec<ShardInfo>, StreamError> {
        let failing =
            self.child_shard_faults
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(StreamError::Throttled {
                code: "InternalServerError".into(),
            });
        }
        let shards = self.shards.lock().unwrap();
        let listed = shards.iter().map(|s| s.info.clone());
        Ok(ShardInfo::children_of(listed, shard.shard_id))
    }

    async fn shard_iterator(
        &self,
        at: ShardRef<'_>,
        start: &StartAt,
    ) -> Result<Option<String>, StreamError> {
        let shards = self.shards.lock().unwrap();
        let shard = shards
            .iter()
            .find(|s| s.info.shard_id == at.shard_id)
            .ok_or_else(|| StreamError::NotFound {
                stream_arn: at.stream_arn.to_string(),
            })?;
        let position = match start {
            StartAt::TrimHorizon if shard.empty_pages_first > 0 => {
                let (at, empty) = (shard.trimmed_before, shard.empty_pages_first);
                return Ok(Some(format!("{}/{at}~{empty}", shard.info.shard_id)));
            }
            StartAt::TrimHorizon => shard.trimmed_before,
            StartAt::Latest => shard.records.len(),
            StartAt::AfterSequenceNumber(seq) => {
                let at = shard
                    .records
                    .iter()
                    .position(|r| r.sequence_number() == Some(seq.as_str()))
                    .map(|p| p + 1);
                match at {
                    Some(p) if p > shard.trimmed_before => p,
                    Some(p) if p == shard.trimmed_before => p,
                    _ => return Err(StreamError::TrimmedData),
                }
            }
        };
        Ok(Some(format!("{}/{position}", at.shard_id)))
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
        let (shard_id, position, empty) =
            Self::parse_iterator(iterator).ok_or(StreamError::ExpiredIterator)?;
        if empty > 0 {
            let left = empty - 1;
            return Ok(RecordsPage {
                records: Vec::new(),
                next_iterator: Some(format!("{shard_id}/{position}~{left}")),
            });
        }
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
