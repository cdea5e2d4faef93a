//! Every AWS SDK call: clients for both accounts, and the adapters behind the read seams
//! ([`crate::source`]).

pub mod checkpoints;
pub mod clients;
pub mod reader;
pub mod streams;
