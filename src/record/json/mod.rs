//! DynamoDB JSON (`{"S": "x"}`, `{"M": {...}}`, ...), read in one place:
//! - [`bytes`]: the byte reader, which writes items onto tapes straight from the bytes and declines
//!   (`None`) whatever is not the common case;
//! - [`events`]: a stream event's records (`{"Records": [...]}`) read by the byte reader;
//! - [`tolerant`]: serde's reader, which reads anything, words every problem and keeps one bad
//!   record from failing the event; items and tapes from JSON text, and items back to JSON.
//!
//! Lambda's events, GetRecords' and BatchGetItem's answers, and the CLI's key texts carry the same
//! values, so they share these readers and their checks (`record::change::finish`).

pub(crate) mod bytes;
pub(crate) mod events;
pub mod tolerant;

pub(crate) use bytes::{Reader, MAX_NESTING};
pub(crate) use events::read_event;
pub(crate) use tolerant::RecordReader;
pub use tolerant::{item_json, parse_item, parse_record, parse_tape};
