//! Checkpoints and leases in memory, with the same conditions as the DynamoDB store.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use ddb_verify::ports::checkpoint::{
    Checkpoint, CheckpointError, CheckpointStore, Lease, StreamStart,
};
use ddb_verify::ports::failure::{CallFailure, FailureKind};

#[derive(Debug, Clone, Default)]
struct MemoryEntry {
    checkpoint: Checkpoint,
    owner: Option<String>,
    lease_until_ms: u64,
}

/// [`CheckpointStore`] in memory, with the same conditions as the DynamoDB one.
#[derive(Debug, Default)]
pub struct InMemoryCheckpoints {
    entries: Mutex<HashMap<(String, String), MemoryEntry>>,
    /// Each stream's start, by stream ARN.
    streams: Mutex<HashMap<String, StreamStart>>,
    /// Each stream's mark of runs without a findings store (kept apart: a mark does not start
    /// the stream).
    unrecorded: Mutex<HashMap<String, u64>>,
    /// How many of the next stream-start writes fail.
    start_faults: Mutex<usize>,
    /// The next saves, each failing (`true`) or not; then every save passes.
    save_faults: Mutex<VecDeque<bool>>,
}

impl InMemoryCheckpoints {
    pub fn new() -> InMemoryCheckpoints {
        InMemoryCheckpoints::default()
    }

    /// Makes the next `n` stream-start writes fail.
    pub fn fail_stream_starts(&self, n: usize) {
        *self.start_faults.lock().unwrap() += n;
    }

    /// Plans the next saves: each fails (`true`, as an internal server error would) or passes.
    pub fn plan_save_failures(&self, fail: impl IntoIterator<Item = bool>) {
        self.save_faults.lock().unwrap().extend(fail);
    }

    pub fn get(&self, stream_arn: &str, shard_id: &str) -> Option<Checkpoint> {
        self.entries
            .lock()
            .unwrap()
            .get(&(stream_arn.to_string(), shard_id.to_string()))
            .map(|e| e.checkpoint.clone())
    }
}

impl CheckpointStore for InMemoryCheckpoints {
    async fn load_all(
        &self,
        stream_arn: &str,
    ) -> Result<HashMap<String, Checkpoint>, CheckpointError> {
        Ok(self
            .entries
            .lock()
            .unwrap()
            .iter()
            .filter(|((arn, _), _)| arn == stream_arn)
            .map(|((_, shard), e)| (shard.clone(), e.checkpoint.clone()))
            .collect())
    }

    async fn start_stream(
        &self,
        stream_arn: &str,
        start: &StreamStart,
    ) -> Result<(StreamStart, bool), CheckpointError> {
        let mut faults = self.start_faults.lock().unwrap();
        if *faults > 0 {
            *faults -= 1;
            return Err(simulated_failure());
        }
        drop(faults);
        let unrecorded_at_ms = self.unrecorded.lock().unwrap().get(stream_arn).copied();
        let mut streams = self.streams.lock().unwrap();
        match streams.get(stream_arn) {
            Some(recorded) => Ok((
                StreamStart {
                    unrecorded_at_ms,
                    ..recorded.clone()
                },
                false,
            )),
            None => {
                streams.insert(stream_arn.to_string(), start.clone());
                Ok((start.clone(), true))
            }
        }
    }

    async fn mark_unrecorded(&self, stream_arn: &str, at_ms: u64) -> Result<(), CheckpointError> {
        let mut marks = self.unrecorded.lock().unwrap();
        let mark = marks.entry(stream_arn.to_string()).or_default();
        *mark = (*mark).max(at_ms);
        Ok(())
    }

    async fn clear_unrecorded(
        &self,
        stream_arn: &str,
        seen_ms: u64,
    ) -> Result<(), CheckpointError> {
        let mut marks = self.unrecorded.lock().unwrap();
        if marks.get(stream_arn) == Some(&seen_ms) {
            marks.remove(stream_arn);
        }
        Ok(())
    }

    async fn acquire(&self, lease: &Lease<'_>) -> Result<Option<Checkpoint>, CheckpointError> {
        let (stream_arn, shard_id, owner) = (lease.stream_arn, lease.shard_id, lease.owner);
        let mut entries = self.entries.lock().unwrap();
        let entry = entries
            .entry((stream_arn.to_string(), shard_id.to_string()))
            .or_default();
        let free = entry.owner.as_deref().is_none_or(|o| o == owner)
            || entry.lease_until_ms < lease.now_ms;
        if !free {
            return Ok(None);
        }
        entry.owner = Some(owner.to_string());
        entry.lease_until_ms = lease.until_ms;
        Ok(Some(entry.checkpoint.clone()))
    }

    async fn save(
        &self,
        lease: &Lease<'_>,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        let (stream_arn, shard_id, owner) = (lease.stream_arn, lease.shard_id, lease.owner);
        if self.save_faults.lock().unwrap().pop_front() == Some(true) {
            return Err(simulated_failure());
        }
        let mut entries = self.entries.lock().unwrap();
        let entry = entries
            .entry((stream_arn.to_string(), shard_id.to_string()))
            .or_default();
        if entry.owner.as_deref() != Some(owner) {
            return Err(CheckpointError::LeaseLost {
                shard_id: shard_id.to_string(),
            });
        }
        if checkpoint.sequence_number.is_some() {
            entry.checkpoint.sequence_number = checkpoint.sequence_number.clone();
        }
        if entry.checkpoint.started_at_ms.is_none() {
            entry.checkpoint.started_at_ms = checkpoint.started_at_ms;
        }
        entry.checkpoint.shard_end = checkpoint.shard_end;
        entry.lease_until_ms = lease.until_ms;
        Ok(())
    }

    async fn release(&self, lease: &Lease<'_>) -> Result<(), CheckpointError> {
        let (stream_arn, shard_id, owner) = (lease.stream_arn, lease.shard_id, lease.owner);
        let mut entries = self.entries.lock().unwrap();
        if let Some(entry) = entries.get_mut(&(stream_arn.to_string(), shard_id.to_string())) {
            if entry.owner.as_deref() == Some(owner) {
                entry.owner = None;
                entry.lease_until_ms = 0;
            }
        }
        Ok(())
    }
}

/// A write that failed as an internal server error would.
fn simulated_failure() -> CheckpointError {
    let error = aws_sdk_dynamodb::types::error::InternalServerError::builder()
        .message("simulated")
        .build();
    CheckpointError::Service(CallFailure::new(
        "UpdateItem",
        "checkpoint table Checkpoints",
        FailureKind::Transient,
        aws_sdk_dynamodb::Error::InternalServerError(error),
    ))
}
