//! A shard's lease and checkpoint as the read loop uses them: taken before the first read (with
//! the freshest checkpoint), extended by every checkpoint, given up when the shard is done or the
//! run stops. The store behind them is the [`CheckpointStore`] seam.

use std::time::Duration;

use crate::ports::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, Lease};
use crate::ports::stream::ShardInfo;
use crate::record::compare_sequence_numbers;
use crate::report::metrics::PollerMetrics;
use crate::shared::epoch_ms as now_ms;

/// A lease this run holds on one shard.
pub(super) struct HeldLease<'a, C> {
    store: &'a C,
    lease: Lease<'a>,
    duration: Duration,
}

impl<'a, C: CheckpointStore> HeldLease<'a, C> {
    /// Takes the lease if it is free, expired or already ours, with the shard's stored checkpoint;
    /// `None` when another reader holds it.
    pub(super) async fn take(
        store: &'a C,
        lease: Lease<'a>,
        duration: Duration,
    ) -> Result<Option<(HeldLease<'a, C>, Checkpoint)>, CheckpointError> {
        let held = HeldLease {
            store,
            lease,
            duration,
        };
        let stored = store.acquire(&held.extended()).await?;
        Ok(stored.map(|checkpoint| (held, checkpoint)))
    }

    /// The lease with a full term from now.
    fn extended(&self) -> Lease<'a> {
        let now = now_ms();
        self.lease.term(now, now + self.duration.as_millis() as u64)
    }

    /// Saves the position and extends the lease; the caller counts the write.
    pub(super) async fn write(&self, position: &Checkpoint) -> Result<(), CheckpointError> {
        self.store.save(&self.extended(), position).await
    }

    /// Marks the shard read to its end, and gives the lease up.
    pub(super) async fn finish(
        &self,
        position: &mut Checkpoint,
        metrics: &mut PollerMetrics,
    ) -> Result<(), CheckpointError> {
        position.shard_end = true;
        // Saved with a lease that ends now: the release below may fail without holding the shard.
        let now = now_ms();
        self.store
            .save(&self.lease.term(now, now), position)
            .await?;
        metrics.checkpoint_writes += 1;
        self.release().await?;
        metrics.shards_finished += 1;
        Ok(())
    }

    /// Gives the lease up, so the next run need not wait for it to expire.
    pub(super) async fn release(&self) -> Result<(), CheckpointError> {
        self.store.release(&self.lease).await
    }
}

/// The checkpoint has reached the closed shard's ending sequence number: nothing is left to read.
pub(super) fn reached_end(shard: &ShardInfo, position: &Checkpoint) -> bool {
    match (&shard.ending_sequence_number, &position.sequence_number) {
        (Some(end), Some(seq)) => compare_sequence_numbers(seq, end).is_ge(),
        _ => false,
    }
}
