//! Proves that a DynamoDB table's changes arrived in another account's table, record by record.
//!
//! Module map:
//! - [`config`]: environment variables parsed once into a typed [`config::Config`].
//! - [`record`]: the engine's own [`record::ChangeRecord`], built from Lambda stream records; canonical
//!   keys for sampling and de-duplication.
//! - [`compare`]: item equality and diffs as DynamoDB means them (numbers as decimals, sets unordered).
//! - [`reader`]: the [`reader::TableReader`] seam: BatchGetItem on DynamoDB, or in memory.
//! - [`engine`]: the [`engine::Verifier`]: verdicts, replication-lag waits, source re-checks, retries.
//! - [`metrics`]: CloudWatch Embedded Metric Format documents.
//! - [`lambda_json`]: DynamoDB JSON and Lambda stream records read straight into the SDK's types.
//! - [`handler`]: the Lambda side: stream event in, batch item failures and metrics out.
//! - [`clients`]: AWS clients for the two accounts (profile, assumed role, region, endpoint).
//! - [`streams`]: stream records shaped as Lambda delivers them, and as [`record::ChangeRecord`]s.
//! - [`shards`]: the [`shards::StreamSource`] seam: DynamoDB Streams, or an in-memory stream.
//! - [`checkpoint`]: the poller's leases and checkpoints ([`checkpoint::CheckpointStore`]).
//! - [`poller`]: the shard poller: discovery, lineage, leases, reading, verification, checkpoints.
//!
//! The binaries in `src/bin/` are thin: configuration, clients, and the Lambda runtime loop.

pub mod checkpoint;
pub mod clients;
pub mod compare;
pub mod config;
pub mod engine;
pub mod handler;
pub mod lambda_json;
pub mod metrics;
pub mod poller;
pub mod reader;
pub mod record;
pub mod shards;
pub mod streams;
