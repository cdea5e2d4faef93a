//! Proves that a DynamoDB table's changes arrived in another account's table, record by record.
//!
//! The data flow, from every entry point to the one verdict path:
//!
//! ```text
//!  Lambda event ──► lambda::event ──► lambda::handler ──┐
//!  stream shards ──► aws::streams ──► poller ───────────┤
//!  table scans ──► aws::scanner ──► baseline ───────────┼─► verify::Verifier ──► report::findings ──► report::OutcomeSink
//!  open findings ──► revalidate ────────────────────────┘     │ Expectations in,   problems kept,      one RecordReport
//!  (ports::stream, ports::scan, ports::findings)              │ Outcomes out       MATCHes resolve;    per record:
//!        leases, checkpoints, segments: ports::checkpoint     ▼                    not written: retry  WARN lines, counters,
//!                                       ports::table::TableReader                  (ports::findings,   EMF documents
//!                                       └─► aws::reader (BatchGetItem,             aws::findings)
//!                                           both accounts)
//!  readiness ◄── findings and coverage (what each verifier has verified)
//! ```
//!
//! The layers, inner first; each imports only those before it (`tests/architecture.rs` holds it):
//! 1. [`compare`] (the item type, equality and diffs as DynamoDB means them) and [`shared`] (the
//!    clock, errors as text): leaves.
//! 2. [`record`]: what the engine verifies, [`record::Expectation`] (a key, what the other side
//!    should hold, since when, from where), stream records' checks, canonical keys, images as SDK
//!    items or compact tapes ([`record::image`]), and all DynamoDB JSON reading ([`record::json`]).
//! 3. [`ports`]: the seams as traits, with one failure shape ([`ports::failure`]):
//!    [`ports::table::TableReader`], [`ports::scan::TableScanner`], [`ports::stream::StreamSource`],
//!    [`ports::checkpoint::CheckpointStore`] / [`ports::checkpoint::BaselineStore`] (and the state
//!    they save), [`ports::findings::FindingsStore`], [`ports::ttl::TimeToLive`], the failure queue,
//!    the event source mappings and Lambda's delivery metrics ([`ports::delivery`]);
//!    [`ports::rate`], a port under a read-rate limit.
//! 4. [`config`]: every variable of every function, parsed once, each error naming its variable.
//! 5. [`verify`]: the engine, [`verify::Verifier`]: verdicts on proof, replication-lag waits,
//!    source re-checks, retries; [`verify::timing`], [`verify::expiry`] (EXPIRED).
//! 6. [`report`]: one verdict path: problems recorded and MATCHes resolved in the findings store
//!    ([`report::findings`]; a problem not recorded becomes a retry), then each record's
//!    [`report::RecordReport`] into the [`report::OutcomeSink`]; counters and EMF documents.
//! 7. The features: [`baseline`] (the full-table compare, both directions, resumable),
//!    [`poller`] (the shard poller: lineage, leases, checkpoints), [`revalidate`] (open findings
//!    read again), [`readiness`] (GO / NO-GO: [`readiness::assess`] is pure, [`readiness::gather`]
//!    reads; [`readiness::freeze`], the cut-over's freeze proven from Lambda's metrics), [`repair`] (open findings made right on the other side by conditional writes,
//!    [`repair::decide`] pure, then judged again by revalidation), [`preflight`] (the set-up
//!    checked before a migration: [`preflight::assess`] is pure, `aws::preflight::gather` reads).
//! 8. The outer ring: [`aws`] (every SDK call: the two accounts' clients and the adapters behind
//!    the ports; each classifies its failures), [`lambda`] (the event envelope, the runtime entry,
//!    the handler, one verifier per pair of `TABLE_PAIRS` chosen by each event's table
//!    ([`lambda::pairs`]), the baseline segment function's contract), [`wiring`] (the composition root:
//!    each function built from its configuration with the AWS adapters), [`cli`] (`ddb-verify`).
//!    The binaries in `src/bin/` are thin: the allocator ([`allocator`]), configuration, wiring
//!    and the runtime loop. The test kit (in-memory ports that fail on demand, stream-to-event
//!    helpers, table set-up) is the workspace's dev-only crate `testkit/`, never in the binaries.
//!
//! Words used throughout:
//! - **other side**: the table the source's changes should have arrived in (another account's).
//! - **tape**: an item written as compact bytes as it is read, compared by walking it.
//! - **coverage**: what a verifier has verified of a stream, from when to when, and its gaps: the
//!   ledger readiness links into one chain.
//! - **occurrence**: one appearance of a problem under a finding; a MATCH resolves only the
//!   occurrences recorded before it was observed.
//! - **unsettled**: a finding whose key kept changing through revalidations: it stays open (and
//!   blocks GO) but is parked, not re-checked on schedule, until asked for.
//! - **leg**: one stage of the outcome path after the engine: the findings leg (problems recorded,
//!   MATCHes resolve) before the report leg (log lines, counters, EMF).

pub mod allocator;
pub mod aws;
pub mod baseline;
pub mod cli;
pub mod compare;
pub mod config;
pub mod lambda;
pub mod poller;
pub mod ports;
pub mod preflight;
pub mod readiness;
pub mod record;
pub mod repair;
pub mod report;
pub mod revalidate;
pub mod shared;

// The unit tests use the test kit's fakes. Built as its own crate, the kit would implement the
// ports of the library as the binaries see it, not of this test build; so the unit tests compile
// its files in, and its `ddb_verify::` paths name this crate.
#[cfg(test)]
extern crate self as ddb_verify;
#[cfg(test)]
#[path = "../testkit/src/lib.rs"]
pub mod testkit;
pub mod verify;
pub mod wiring;

// The few names every entry point starts from.
pub use config::{Config, PollerConfig};
pub use verify::Verifier;
