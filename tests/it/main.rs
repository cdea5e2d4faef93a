//! The integration tests, one test binary (linking the SDK once, not once a file): a module per
//! subject, and the shared set-up in `common` (DynamoDB Local, the two accounts, tables, stream
//! events, the fault proxy and the fake AWS endpoints). Most need DynamoDB Local
//! (`scripts/dynamodb-local.sh start`, or `DYNAMODB_LOCAL_ENDPOINT`); `properties` and `template`
//! do not. Tests share this process: none sets a process environment variable (a test that needs
//! one runs itself again as a child process, see `profile_credentials`), and every table name is
//! made unique by `common::unique`.
//!
//! `cargo test --test it MODULE::` runs one module (`make fuzz`: `properties::`).

mod common;

mod architecture;
mod bad_input;
mod baseline;
mod correctness;
mod fault_injection;
mod findings;
mod freeze;
mod pairs;
mod preflight;
mod profile_credentials;
mod properties;
mod readiness;
mod repair;
mod revalidation;
mod security;
mod shard_poller;
mod stream_verifier;
mod stream_verifier_binary;
mod template;
