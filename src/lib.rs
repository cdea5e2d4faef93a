//! Proves that a DynamoDB table's changes arrived in another account's table, record by record.
//!
//! The data flow, from every entry point to the one verdict path:
//!
//! ```text
//!  Lambda event ──► lambda::event ──► lambda::handler ──┐
//!  stream shards ──► aws::streams ──► poller ───────────┤
//!  table scans ──► aws::scanner ──► baseline ───────────┼─► verify::Verifier ──► report::findings ──► report::OutcomeSink
//!  open findings ──► revalidate ────────────────────────┘     │ Expectations in,   problems kept,      one RecordReport
//!  (source::stream, source::scan, source::findings)           │ Outcomes out       MATCHes resolve;    per record:
//!        leases, checkpoints, segments: source::checkpoint    ▼                    not written: retry  WARN lines, counters,
//!                                       source::table::TableReader                 (source::findings,  EMF documents
//!                                       └─► aws::reader (BatchGetItem,             aws::findings)
//!                                           both accounts)
//!  readiness ◄── findings and coverage (what each verifier has verified)
//! ```
//!
//! Module map:
//! - [`config`]: every variable of every function, parsed once: [`config::Config`],
//!   [`config::PollerConfig`], [`config::BaselineConfig`], [`config::RevalidatorConfig`],
//!   [`config::FindingsCliConfig`].
//! - [`record`]: what the engine verifies, [`record::Expectation`]: a key, what the other side
//!   should hold (an image, nothing, or the source's current item), since when, and from where (a
//!   stream record, a scan, a finding); stream records' checks; canonical keys for sampling and
//!   de-duplication; [`record::image`]: an item as an SDK item or as a compact tape compared by
//!   walking it (Lambda's images, the poller's, the other side's answers); `record::json`: the
//!   byte reader that writes tapes from DynamoDB JSON; `record::change`: a stream record's JSON
//!   read into an expectation (Lambda's events and GetRecords' answers).
//! - [`compare`]: item equality and diffs as DynamoDB means them (numbers as decimals, sets unordered).
//! - [`verify`]: the engine, [`verify::Verifier`]: verdicts on proof, replication-lag waits, source
//!   re-checks, retries; key lookups; [`verify::timing`]: the window's clock, backoff, deadlines;
//!   [`verify::expiry`]: whether an item is past its TTL (EXPIRED).
//! - [`baseline`]: the full-table compare: a parallel Scan of each side, its pages as expectations for
//!   the engine (both directions, `EXTRA`), per-segment checkpoints, the read rate
//!   ([`baseline::rate`]).
//! - [`report`]: one verdict path: problems recorded and MATCHes resolved in the findings store
//!   ([`report::findings`]; a problem not recorded becomes a retry), then each record's
//!   [`report::RecordReport`] into the [`report::OutcomeSink`] (log lines and counters); counters
//!   that add up, EMF documents.
//! - [`lambda`]: the stream event as Lambda delivers it, read from the invocation's bytes
//!   ([`lambda::entry`]; the common case by a byte reader, the rest by serde, [`record::json`]), and
//!   the handler (batch item failures); the baseline segment function's contract
//!   ([`lambda::baseline`]).
//! - [`cli`]: `ddb-verify`, the operator's command line over the same library.
//! - [`poller`]: the shard poller: discovery, lineage and runs; a shard's read loop; its lease and
//!   checkpoints.
//! - [`readiness`]: GO / NO-GO for cut-over, from the findings table's coverage and findings:
//!   [`readiness::assess`] (pure, every reason) and [`readiness::gather`].
//! - [`revalidate`]: open findings read again through the engine, on a schedule or by hand:
//!   [`revalidate::Revalidator`] resolves those that now match, backs off those still wrong, and
//!   marks keys that keep changing.
//! - [`source`]: the read seams (ports): [`ports::table::TableReader`],
//!   [`ports::scan::TableScanner`], [`ports::stream::StreamSource`],
//!   [`ports::checkpoint::CheckpointStore`], [`ports::checkpoint::BaselineStore`],
//!   [`ports::findings::FindingsStore`] (findings and coverage; the table's schema) and
//!   [`ports::ttl::TimeToLive`] (the source table's TTL attribute, read once at the edge).
//! - [`aws`]: every SDK call: clients for the two accounts, the DynamoDB adapters of the seams, and
//!   [`aws::stream_verifier`] / [`aws::poller`] / [`aws::baseline`] / [`aws::revalidator`], which
//!   wire them for the binaries.
//! - `testkit` (feature `testkit`, and unit tests): in-memory seams and stream-to-event helpers,
//!   never in the binaries.
//!
//! The binaries in `src/bin/` are thin: the allocator ([`allocator`]), configuration, clients, and
//! the runtime loop.

pub mod allocator;
pub mod aws;
pub mod baseline;
pub mod cli;
pub mod compare;
pub mod config;
pub mod lambda;
pub mod poller;
pub mod ports;
pub mod readiness;
pub mod record;
pub mod report;
pub mod revalidate;
pub mod shared;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod verify;
pub mod wiring;

// The few names every entry point starts from.
pub use config::{Config, PollerConfig};
pub use verify::Verifier;
