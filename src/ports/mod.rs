//! The read seams (ports): what the engine and the poller need from the outside world, as traits.
//! The DynamoDB adapters live in `aws` (they know the ports; the ports know no adapter); in-memory
//! ones, for tests, in the test kit. Every port reports a failed call with a [`failure::FailureKind`].

pub mod checkpoint;
pub mod delivery;
pub mod failure;
pub mod findings;
pub mod layout;
pub mod mappings;
pub mod queue;
pub mod rate;
pub mod scan;
pub mod stream;
pub mod table;
pub mod ttl;
