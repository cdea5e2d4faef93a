//! The read seams (ports): what the engine and the poller need from the outside world, as traits.
//! The DynamoDB adapters live in [`crate::aws`]; in-memory ones, for tests, in the test kit.

pub mod checkpoint;
pub mod findings;
pub mod mappings;
pub mod queue;
pub mod rate;
pub mod scan;
pub mod stream;
pub mod table;
pub mod ttl;
