//! `MAX_READ_UNITS` (and `MAX_WRITE_UNITS` for `repair`): a token bucket of capacity units per
//! table, fed by what each call really consumed (`ReturnConsumedCapacity`), shared by every
//! segment of a process.
//!
//! A call waits until the bucket is not in debt, then takes an estimate of what it will consume;
//! when the answer says what it consumed, the difference is settled. Calls in flight may overdraw
//! the bucket by what they consume beyond their estimates; later calls wait until it is repaid, so
//! over a run the rate holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::ports::scan::{ScanError, ScanPage, ScanRequest, TableScanner, TableShape};
use crate::ports::table::{
    BatchGet, BatchGetOutput, ConditionalWrite, LookupError, TableReader, TableWriter, WriteAction,
    WriteError, WriteOutcome,
};

/// Capacity units (read or write) per second on one table.
#[derive(Debug)]
pub struct CapacityRate {
    units_per_second: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Units available now; negative while in debt.
    balance: f64,
    at: Instant,
    /// What the last scan page consumed: the estimate for the next one.
    last_scan: f64,
    /// Every unit consumed, for the metrics.
    consumed: f64,
}

impl CapacityRate {
    pub fn new(units_per_second: f64) -> Arc<CapacityRate> {
        Arc::new(CapacityRate {
            units_per_second,
            state: Mutex::new(Bucket {
                // A second's worth to start with: no burst beyond the rate.
                balance: units_per_second,
                at: Instant::now(),
                last_scan: 1.0,
                consumed: 0.0,
            }),
        })
    }

    /// Units consumed so far through this rate.
    pub fn consumed(&self) -> f64 {
        self.state.lock().unwrap().consumed
    }

    /// Waits until the bucket is not in debt, then takes `estimate` units.
    async fn take(&self, estimate: f64) {
        loop {
            let wait = {
                let mut bucket = self.state.lock().unwrap();
                let now = Instant::now();
                let earned = (now - bucket.at).as_secs_f64() * self.units_per_second;
                // At most a second's worth is saved up.
                bucket.balance = (bucket.balance + earned).min(self.units_per_second);
                bucket.at = now;
                if bucket.balance >= 0.0 {
                    bucket.balance -= estimate;
                    return;
                }
                Duration::from_secs_f64(-bucket.balance / self.units_per_second)
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Settles a call: `consumed` replaces its estimate.
    fn settle(&self, estimate: f64, consumed: f64) {
        let mut bucket = self.state.lock().unwrap();
        bucket.balance += estimate - consumed;
        bucket.consumed += consumed;
    }
}

/// A reader or a scanner whose calls go through a [`CapacityRate`].
#[derive(Debug, Clone)]
pub struct Limited<T> {
    inner: T,
    rate: Arc<CapacityRate>,
}

impl<T> Limited<T> {
    pub fn new(inner: T, rate: Arc<CapacityRate>) -> Limited<T> {
        Limited { inner, rate }
    }
}

impl<T: TableReader> TableReader for Limited<T> {
    async fn batch_get(&self, request: BatchGet<'_>) -> Result<BatchGetOutput, LookupError> {
        // Items of up to 4 KB: a unit each read consistently, half otherwise.
        let per_key = if request.consistent_read { 1.0 } else { 0.5 };
        let estimate = request.keys.len() as f64 * per_key;
        self.rate.take(estimate).await;
        let result = self.inner.batch_get(request).await;
        let consumed = result.as_ref().map_or(0.0, |out| out.consumed_read_units);
        self.rate.settle(estimate, consumed);
        result
    }
}

impl<T: TableWriter> TableWriter for Limited<T> {
    async fn write(&self, write: ConditionalWrite<'_>) -> Result<WriteOutcome, WriteError> {
        // A unit per KB written; a delete (and a failed condition) at least one.
        let estimate = match &write.action {
            WriteAction::Put(item) => (crate::compare::item_size(item) as f64 / 1024.0).ceil(),
            WriteAction::Delete(_) => 1.0,
        }
        .max(1.0);
        self.rate.take(estimate).await;
        let result = self.inner.write(write).await;
        let consumed = match &result {
            Ok(outcome) if outcome.consumed_write_units() > 0.0 => outcome.consumed_write_units(),
            // Not reported (a failed condition's answer carries no capacity): the estimate.
            _ => estimate,
        };
        self.rate.settle(estimate, consumed);
        result
    }
}

impl<T: TableScanner> TableScanner for Limited<T> {
    async fn scan(&self, request: ScanRequest<'_>) -> Result<ScanPage, ScanError> {
        let estimate = self.rate.state.lock().unwrap().last_scan;
        self.rate.take(estimate).await;
        let result = self.inner.scan(request).await;
        let consumed = result.as_ref().map_or(0.0, |page| page.consumed_read_units);
        self.rate.settle(estimate, consumed);
        if consumed > 0.0 {
            self.rate.state.lock().unwrap().last_scan = consumed;
        }
        result
    }

    async fn describe(&self, table: &str) -> Result<TableShape, ScanError> {
        self.inner.describe(table).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Item;
    use crate::testkit::InMemoryTables;
    use aws_sdk_dynamodb::types::AttributeValue as V;

    #[tokio::test(start_paused = true)]
    async fn reads_are_held_to_the_rate_over_a_run() {
        let tables = Arc::new(InMemoryTables::new());
        for id in 0..100 {
            let item: Item = [("pk".to_string(), V::N(id.to_string()))].into();
            tables.put("T", &["pk"], item);
        }
        let rate = CapacityRate::new(50.0);
        let reader = Limited::new(Arc::clone(&tables), Arc::clone(&rate));
        let keys: Vec<Item> = (0..100)
            .map(|id| [("pk".to_string(), V::N(id.to_string()))].into())
            .collect();
        let started = Instant::now();
        // 20 calls of 100 consistent reads: 2,000 units at 50 a second, 50 of them up front.
        for _ in 0..20 {
            let request = BatchGet {
                table: "T",
                keys: keys.clone(),
                consistent_read: true,
            };
            reader.batch_get(request).await.unwrap();
        }
        let took = started.elapsed().as_secs_f64();
        assert_eq!(rate.consumed(), 2_000.0);
        let per_second = (rate.consumed() - 50.0) / took;
        assert!(
            (per_second - 50.0).abs() <= 5.0,
            "{per_second:.1} units/s over {took:.1} s"
        );
    }
}
