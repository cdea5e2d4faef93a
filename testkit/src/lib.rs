//! The test kit of `ddb_verify`: in-memory ports that misbehave on demand, stream records turned
//! into Lambda's events, and table set-up on DynamoDB Local. A dev-only crate of the workspace, so
//! the library is built once, without it, for the binaries, the tests, the benches and the
//! examples. The library's own unit tests compile these files into themselves (`src/lib.rs`),
//! since a fake from this crate would implement the ports of another copy of the library.

pub mod checkpoints;
pub mod events;
pub mod items;
pub mod setup;
pub mod stream;
pub mod tables;

pub use checkpoints::InMemoryCheckpoints;
pub use items::item;
pub use stream::{InMemoryStream, StreamFault};
pub use tables::{Fault, InMemoryTables};
