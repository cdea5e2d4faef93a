//! The Lambda side: the stream event as Lambda delivers it ([`event`], read with [`json`]) and the
//! handler that verifies it ([`handler`]).

pub mod baseline;
pub mod event;
pub mod handler;
pub mod json;
