//! The stream event as Lambda delivers it, parsed record by record: one malformed record gets an
//! UNVERIFIABLE verdict (with the reason) instead of failing the whole batch.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::record::change::Malformed;
use crate::record::json::{read_event, RecordReader};
use crate::record::{Expectation, MalformedRecord};

/// A DynamoDB stream event as Lambda delivers it, each record parsed as it is read, in one pass
/// (`record::json`): a record's new image is kept as a compact tape, never as a second copy of the
/// event.
#[derive(Debug, Default, PartialEq)]
pub struct StreamEvent {
    /// The records that parsed, in event order.
    pub records: Vec<Expectation>,
    /// The records that did not, with their positions and reasons.
    pub malformed: Vec<MalformedRecord>,
}

impl StreamEvent {
    /// How many records the event held.
    pub fn len(&self) -> usize {
        self.records.len() + self.malformed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The event from its JSON bytes (what the Lambda runtime receives): the common case read
    /// straight from the bytes, anything else (a malformed record, escapes in a name, ...) by the
    /// serde reader, which gives the same records and the exact reasons and errors.
    pub fn from_slice(json: &[u8]) -> Result<StreamEvent, serde_json::Error> {
        match StreamEvent::from_slice_fast(json) {
            Some(event) => Ok(event),
            None => serde_json::from_slice(json),
        }
    }

    /// The common case alone (`record::json`'s byte reader): `None` where [`Self::from_slice`]
    /// falls back to the serde reader.
    pub fn from_slice_fast(json: &[u8]) -> Option<StreamEvent> {
        let mut event = StreamEvent::default();
        read_event(json, |parsed| event.push(parsed))?;
        Some(event)
    }

    /// Adds one record, or why it cannot be verified.
    fn push(&mut self, parsed: Result<Expectation, Malformed>) {
        let position = self.len();
        match parsed {
            Ok(record) => self.records.push(record),
            Err(m) => self.malformed.push(m.at(position)),
        }
    }
}

impl<'de> Deserialize<'de> for StreamEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StreamEvent, D::Error> {
        struct EventVisitor;
        impl<'de> Visitor<'de> for EventVisitor {
            type Value = StreamEvent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB stream event ({\"Records\": [...]})")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StreamEvent, A::Error> {
                let mut event = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "Records" {
                        event = Some(map.next_value_seed(RecordsSeed)?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                event.ok_or_else(|| de::Error::missing_field("Records"))
            }
        }
        deserializer.deserialize_map(EventVisitor)
    }
}

struct RecordsSeed;

impl<'de> DeserializeSeed<'de> for RecordsSeed {
    type Value = StreamEvent;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<StreamEvent, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed {
    type Value = StreamEvent;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of stream records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StreamEvent, A::Error> {
        let mut event = StreamEvent {
            records: Vec::with_capacity(seq.size_hint().unwrap_or(0)),
            malformed: Vec::new(),
        };
        let mut reader = RecordReader::default();
        while let Some(parsed) = reader.next(&mut seq)? {
            event.push(parsed);
        }
        Ok(event)
    }
}
