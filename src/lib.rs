//! Proves that a DynamoDB table's changes arrived in another account's table, record by record.
//!
//! Module map:
//! - [`config`]: environment variables parsed once into a typed [`config::Config`].
//! - [`record`]: the engine's own [`record::ChangeRecord`], built from Lambda stream records; canonical
//!   keys for sampling and de-duplication.
//! - [`compare`]: item equality and diffs as DynamoDB means them (numbers as decimals, sets unordered).
//! - [`source`]: the read seams (ports): [`source::table::TableReader`],
//!   [`source::stream::StreamSource`], [`source::checkpoint::CheckpointStore`].
//! - [`aws`]: every SDK call: clients for the two accounts and the DynamoDB adapters of the seams.
//! - [`verify`]: the engine, [`verify::Verifier`]: verdicts, replication-lag waits, source
//!   re-checks, retries; [`verify::timing`]: the window's clock, backoff, deadlines.
//! - [`report`]: one verdict path: [`report::RecordReport`] into the [`report::OutcomeSink`] (logs
//!   and metrics), counters that add up, EMF documents.
//! - [`lambda`]: the stream event as Lambda delivers it, and the handler.
//! - [`poller`]: the shard poller: discovery, lineage, leases, reading, verification, checkpoints.
//! - `testkit` (feature `testkit`, and unit tests): in-memory seams and stream-to-event helpers.
//!
//! The binaries in `src/bin/` are thin: configuration, clients, and the Lambda runtime loop.

pub mod aws;
pub mod compare;
pub mod config;
pub mod lambda;
pub mod poller;
pub mod record;
pub mod report;
pub mod source;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod verify;
