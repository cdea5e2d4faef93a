//! The Lambda side: the stream event as Lambda delivers it ([`event`], read with `record::json`), how it
//! reaches the handler from the runtime ([`entry`]) and the handler that verifies it ([`handler`]).

pub mod baseline;
pub mod entry;
pub mod event;
pub mod handler;
pub mod pairs;
