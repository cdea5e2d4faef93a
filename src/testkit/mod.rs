//! Test support, behind the `testkit` feature (and in unit tests), never in the production API:
//! in-memory seams that misbehave on demand, stream records turned into Lambda's events, and table
//! set-up on DynamoDB Local.

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
