//! The stream event as Lambda delivers it, parsed record by record: one malformed record gets an
//! UNVERIFIABLE verdict (with the reason) instead of failing the whole batch.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::lambda::json::parse_record;
use crate::record::{Expectation, MalformedRecord};

/// A DynamoDB stream event as Lambda delivers it, each record parsed as it is read: the raw JSON of
/// one record lives only while that record is parsed, so a 10,000-record event is never held twice.
#[derive(Debug, Default)]
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

    /// Parses one record (its JSON) into the event, or records why it is malformed.
    fn push(&mut self, raw: &RawValue) {
        let position = self.len();
        match parse_record(raw.get()) {
            Ok(record) => self.records.push(record),
            Err(reason) => {
                // Salvage what identifies the record, for the log line.
                let loose: serde_json::Value = serde_json::from_str(raw.get()).unwrap_or_default();
                let text = |v: &serde_json::Value| v.as_str().map(String::from);
                self.malformed.push(MalformedRecord {
                    position,
                    event_id: text(&loose["eventID"]),
                    sequence_number: text(&loose["dynamodb"]["SequenceNumber"]),
                    reason,
                });
            }
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
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            event.push(&raw);
        }
        Ok(event)
    }
}
