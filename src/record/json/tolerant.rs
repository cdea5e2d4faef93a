//! DynamoDB JSON (`{"S": "x"}`, `{"M": {...}}`, ...) and Lambda's stream records, read in one pass
//! over the event: each record straight into an [`Expectation`], its new image into a compact
//! [`Tape`] (`record::image`), its keys into an SDK item.
//!
//! Why not `aws_lambda_events`' `EventRecord`: it goes through serde_dynamo and serde's buffered
//! `Content`, then every image is converted again into the SDK's types; and why not the SDK's tree
//! either: about 90 allocations for a 1.7 KB image, most of the CPU a record costs (docs/benchmarks-log.md, "The record model").
//! Here unknown fields are skipped without being built, `OldImage` is kept as its JSON (parsed only
//! when a verdict depends on it), and every error names the field, the attribute or the type.
//!
//! The function reads an event with the byte reader of `events` first (the common case, without
//! serde's per-token work), and with this serde reader when that one declines; both write the same
//! tapes through the same checks (`record::change::finish`).
//!
//! One bad record never fails the event: every visitor here accepts whatever JSON it meets, keeps
//! the first problem (with the path to it) and reads past the rest of the value, so the record
//! becomes a reason (UNVERIFIABLE) and the next one is read as usual. Only text that is not JSON
//! fails the event.
//!
//! Errors never quote an item value: they become UNVERIFIABLE reasons, which are logged, and item
//! values are logged only with `LOG_ITEM_VALUES=true`. A problem names only the kind of value
//! found (`invalid type: a string, expected a boolean`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::record::change::{finish, Fields, Malformed, NOT_A_RECORD};
use crate::record::image::{Kind, TapeWriter};
use crate::record::{type_name, Expectation, Item, Tape};

/// One Lambda DynamoDB stream record (`{"eventID": ..., "dynamodb": {...}}`) as a [`Expectation`];
/// the error is the reason it cannot be one.
pub fn parse_record(json: &str) -> Result<Expectation, String> {
    let mut reading = Parsing::default();
    let mut de = serde_json::Deserializer::from_str(json);
    let fields = RecordSeed::new(&mut reading)
        .deserialize(&mut de)
        .and_then(|fields| de.end().map(|()| fields))
        .map_err(|e| format!("{NOT_A_RECORD}: {e}"))?;
    finish(fields, reading.problem.take()).map_err(|m| m.reason)
}

/// An item in DynamoDB JSON (`{"id": {"S": "1"}, ...}`) as a tape.
pub fn parse_tape(json: &str) -> Result<Tape, serde_json::Error> {
    let mut reading = Parsing::default();
    let mut de = serde_json::Deserializer::from_str(json);
    let present = ItemSeed {
        r: &mut reading,
        tagged: false,
    }
    .deserialize(&mut de)?;
    de.end()?;
    if !present {
        reading.fail(format_args!("invalid type: null, expected {ITEM}"));
    }
    match reading.problem {
        Some(problem) => Err(de::Error::custom(problem)),
        None => Ok(reading.tape.take(0)),
    }
}

/// An item in DynamoDB JSON (`{"id": {"S": "1"}, ...}`) as an SDK item.
pub fn parse_item(json: &str) -> Result<Item, serde_json::Error> {
    parse_tape(json).map(|tape| tape.to_item())
}

/// An SDK item as DynamoDB JSON, the inverse of [`parse_item`]; `None` if an attribute has a type
/// this version does not know.
pub fn item_json(item: &Item) -> Option<Value> {
    item.iter()
        .map(|(name, value)| Some((name.clone(), attribute_json(value)?)))
        .collect::<Option<Map<String, Value>>>()
        .map(Value::Object)
}

fn attribute_json(value: &aws_sdk_dynamodb::types::AttributeValue) -> Option<Value> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let b64 = |b: &aws_sdk_dynamodb::primitives::Blob| {
        Value::String(aws_smithy_types::base64::encode(b.as_ref()))
    };
    let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    let inner = match value {
        AttributeValue::S(s) | AttributeValue::N(s) => Value::String(s.clone()),
        AttributeValue::B(b) => b64(b),
        AttributeValue::Bool(b) | AttributeValue::Null(b) => Value::Bool(*b),
        AttributeValue::M(m) => item_json(m)?,
        AttributeValue::L(l) => Value::Array(l.iter().map(attribute_json).collect::<Option<_>>()?),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => strings(v),
        AttributeValue::Bs(v) => Value::Array(v.iter().map(b64).collect()),
        _ => return None,
    };
    let mut object = Map::with_capacity(1);
    object.insert(type_name(value).to_string(), inner);
    Some(Object(object))
}

use Value::Object;

use super::MAX_NESTING;

const ITEM: &str = "a map of attribute names to DynamoDB JSON values";

/// Reads the records of an event's `Records` list one at a time, reusing one tape buffer.
#[derive(Default)]
pub(crate) struct RecordReader {
    reading: Parsing,
}

impl RecordReader {
    /// The next record of `seq`: an expectation, or why it cannot be one; `None` at the end.
    pub(crate) fn next<'de, A: SeqAccess<'de>>(
        &mut self,
        seq: &mut A,
    ) -> Result<Option<Result<Expectation, Malformed>>, A::Error> {
        self.reading.depth = 0;
        let Some(fields) = seq.next_element_seed(RecordSeed::new(&mut self.reading))? else {
            return Ok(None);
        };
        Ok(Some(finish(fields, self.reading.problem.take())))
    }
}

/// The parser's state across records: the tape being written and the record's first problem.
#[derive(Default)]
struct Parsing {
    tape: TapeWriter,
    problem: Option<String>,
    /// Maps and lists entered in the current image.
    depth: usize,
}

impl Parsing {
    fn fail(&mut self, problem: impl fmt::Display) {
        if self.problem.is_none() {
            self.problem = Some(problem.to_string());
        }
    }

    fn failed(&self) -> bool {
        self.problem.is_some()
    }

    /// Runs `read`, naming `context` in front of a problem it meets.
    fn within<T>(&mut self, context: impl fmt::Display, read: impl FnOnce(&mut Parsing) -> T) -> T {
        let before = self.failed();
        let out = read(self);
        if !before {
            if let Some(problem) = &mut self.problem {
                *problem = format!("{context}: {problem}");
            }
        }
        out
    }
}

/// A visitor that takes whatever JSON it meets: a kind of value it does not expect is a problem
/// (naming the kind, never the value), read past.
trait Tolerant: Sized {
    type Out: Default;
    /// What it expects, for problems and serde's `expecting`.
    const EXPECTED: &'static str;

    fn reading(&mut self) -> &mut Parsing;

    fn unexpected(mut self, found: &str) -> Self::Out {
        self.reading().fail(format_args!(
            "invalid type: {found}, expected {}",
            Self::EXPECTED
        ));
        Self::Out::default()
    }
}

/// `visit_*` methods of a [`Tolerant`] visitor for the kinds of JSON value it does not expect.
macro_rules! tolerate {
    ($($kind:ident),+) => { $(tolerate!(@ $kind);)+ };
    (@ boolean) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(self.unexpected("a boolean"))
        }
    };
    (@ number) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(self.unexpected("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(self.unexpected("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(self.unexpected("a number"))
        }
    };
    (@ string) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(self.unexpected("a string"))
        }
    };
    (@ null) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(self.unexpected("null"))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(self.unexpected("null"))
        }
    };
    (@ map) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            drain_map(&mut map)?;
            Ok(self.unexpected("an object"))
        }
    };
    (@ seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(self.unexpected("a list"))
        }
    };
}

/// `expecting` and `deserialize` (through `deserialize_any`) of a [`Tolerant`] seed.
macro_rules! seed {
    ($t:ty) => {
        impl<'de> DeserializeSeed<'de> for $t {
            type Value = <Self as Tolerant>::Out;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

fn drain_map<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A map key (an attribute name, a field, a type tag), borrowed from the input when it can be.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for NameSeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a name")
    }
    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(name))
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name.to_owned()))
    }
    fn visit_string<E: de::Error>(self, name: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(name))
    }
}

/// An image or a key (`tagged`: the map of an M value): attribute name → value, onto the tape.
/// `false` for a JSON null where an image may be absent.
struct ItemSeed<'r> {
    r: &'r mut Parsing,
    tagged: bool,
}

impl Tolerant for ItemSeed<'_> {
    type Out = bool;
    const EXPECTED: &'static str = ITEM;
    fn reading(&mut self) -> &mut Parsing {
        self.r
    }
}
seed!(ItemSeed<'_>);

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(ITEM)
    }
    tolerate!(boolean, number, string, seq);

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        if self.tagged {
            return Ok(self.unexpected("null"));
        }
        Ok(false)
    }

    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        self.visit_unit()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let r = self.r;
        let open = r.tape.open_map(self.tagged);
        let mut count = 0;
        while let Some(name) = map.next_key_seed(NameSeed)? {
            if r.failed() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            r.tape.name(&name);
            r.within(format_args!("attribute {name:?}"), |r| {
                map.next_value_seed(AttributeSeed(r))
            })?;
            count += 1;
        }
        if let Err(name) = r.tape.close(open, count) {
            r.fail(format_args!("attribute {name:?} appears more than once"));
        }
        Ok(true)
    }
}

/// One DynamoDB JSON value (`{"S": "x"}`), onto the tape.
struct AttributeSeed<'r>(&'r mut Parsing);

const ATTRIBUTE: &str = "a DynamoDB JSON value such as {\"S\": \"text\"}";

impl Tolerant for AttributeSeed<'_> {
    type Out = ();
    const EXPECTED: &'static str = ATTRIBUTE;
    fn reading(&mut self) -> &mut Parsing {
        self.0
    }
}
seed!(AttributeSeed<'_>);

impl<'de> Visitor<'de> for AttributeSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(ATTRIBUTE)
    }
    tolerate!(boolean, number, string, null, seq);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let r = self.0;
        let Some(tag) = map.next_key_seed(NameSeed)? else {
            r.fail("attribute value has no type");
            return Ok(());
        };
        let kind = match Kind::from_tag(&tag) {
            Some(kind) => kind,
            None => {
                r.fail(format_args!(
                    "unknown attribute type {tag:?} (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)"
                ));
                map.next_value::<IgnoredAny>()?;
                return drain_map(&mut map);
            }
        };
        if matches!(kind, Kind::M | Kind::L) && r.depth >= MAX_NESTING {
            // Read past, not into: serde_json would refuse the whole event past 128 levels.
            r.fail(format_args!(
                "value nested more than {MAX_NESTING} levels deep (DynamoDB's limit)"
            ));
            map.next_value::<IgnoredAny>()?;
            return drain_map(&mut map);
        }
        r.depth += 1;
        match kind {
            Kind::S | Kind::N | Kind::B => map.next_value_seed(TextSeed {
                r: &mut *r,
                kind: Some(kind),
                binary: kind == Kind::B,
            })?,
            Kind::Bool | Kind::Null => map.next_value_seed(FlagSeed(&mut *r, kind))?,
            Kind::M => {
                map.next_value_seed(ItemSeed {
                    r: &mut *r,
                    tagged: true,
                })?;
            }
            Kind::L => map.next_value_seed(ListSeed(&mut *r))?,
            Kind::Ss | Kind::Ns | Kind::Bs => map.next_value_seed(SetSeed(&mut *r, kind))?,
        }
        r.depth -= 1;
        if map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value::<IgnoredAny>()?;
            drain_map(&mut map)?;
            r.fail("attribute value has more than one type");
        }
        Ok(())
    }
}

/// The string of an S, N or B value, or of a set's element (`kind` None), onto the tape (B and BS
/// decoded from base64).
struct TextSeed<'r> {
    r: &'r mut Parsing,
    kind: Option<Kind>,
    binary: bool,
}

impl Tolerant for TextSeed<'_> {
    type Out = ();
    const EXPECTED: &'static str = "a string";
    fn reading(&mut self) -> &mut Parsing {
        self.r
    }
}
seed!(TextSeed<'_>);

impl<'de> Visitor<'de> for TextSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    tolerate!(boolean, number, null, map, seq);

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        if !self.binary {
            self.r.tape.scalar(self.kind, text.as_bytes());
            return Ok(());
        }
        match aws_smithy_types::base64::decode(text) {
            Ok(bytes) => self.r.tape.scalar(self.kind, &bytes),
            Err(e) => self.r.fail(format_args!("binary value is not base64: {e}")),
        }
        Ok(())
    }
}

/// The boolean of a BOOL or NULL value, onto the tape.
struct FlagSeed<'r>(&'r mut Parsing, Kind);

impl Tolerant for FlagSeed<'_> {
    type Out = ();
    const EXPECTED: &'static str = "a boolean";
    fn reading(&mut self) -> &mut Parsing {
        self.0
    }
}
seed!(FlagSeed<'_>);

impl<'de> Visitor<'de> for FlagSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean")
    }
    tolerate!(number, string, null, map, seq);

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<(), E> {
        self.0.tape.flag(self.1, flag);
        Ok(())
    }
}

/// The values of an L, onto the tape.
struct ListSeed<'r>(&'r mut Parsing);

const LIST: &str = "a list of DynamoDB JSON values";

impl Tolerant for ListSeed<'_> {
    type Out = ();
    const EXPECTED: &'static str = LIST;
    fn reading(&mut self) -> &mut Parsing {
        self.0
    }
}
seed!(ListSeed<'_>);

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(LIST)
    }
    tolerate!(boolean, number, string, null, map);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let r = self.0;
        let open = r.tape.open(Kind::L);
        let mut count = 0;
        while seq.next_element_seed(AttributeSeed(&mut *r))?.is_some() {
            count += 1;
        }
        // A list has no names: closing it cannot fail.
        let _ = r.tape.close(open, count);
        Ok(())
    }
}

/// The strings of an SS, NS or BS, onto the tape.
struct SetSeed<'r>(&'r mut Parsing, Kind);

const SET: &str = "a list of strings";

impl Tolerant for SetSeed<'_> {
    type Out = ();
    const EXPECTED: &'static str = SET;
    fn reading(&mut self) -> &mut Parsing {
        self.0
    }
}
seed!(SetSeed<'_>);

impl<'de> Visitor<'de> for SetSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(SET)
    }
    tolerate!(boolean, number, string, null, map);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (r, kind) = (self.0, self.1);
        let open = r.tape.open(kind);
        let mut count = 0;
        while seq
            .next_element_seed(TextSeed {
                r: &mut *r,
                kind: None,
                binary: kind == Kind::Bs,
            })?
            .is_some()
        {
            count += 1;
        }
        // A set has no names: closing it cannot fail.
        let _ = r.tape.close(open, count);
        Ok(())
    }
}

/// A record field that is a string (`None` for null or absent), borrowed where it can be.
struct StringSeed<'r, 'de>(&'r mut Parsing, std::marker::PhantomData<&'de ()>);

impl<'de> Tolerant for StringSeed<'_, 'de> {
    type Out = Option<Cow<'de, str>>;
    const EXPECTED: &'static str = "a string";
    fn reading(&mut self) -> &mut Parsing {
        self.0
    }
}
impl<'de> DeserializeSeed<'de> for StringSeed<'_, 'de> {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StringSeed<'_, 'de> {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    tolerate!(boolean, number, map, seq);

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(text)))
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text.to_owned())))
    }
    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A record field that is a number (`None` for null).
struct NumberSeed<'r>(&'r mut Parsing);

impl Tolerant for NumberSeed<'_> {
    type Out = Option<f64>;
    const EXPECTED: &'static str = "a number";
    fn reading(&mut self) -> &mut Parsing {
        self.0
    }
}
seed!(NumberSeed<'_>);

impl<'de> Visitor<'de> for NumberSeed<'_> {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    tolerate!(boolean, string, map, seq);

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Some(n as f64))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Some(n as f64))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Some(n))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// One stream record's fields; its first problem goes to the [`Parsing`].
struct RecordSeed<'r, 'de>(&'r mut Parsing, std::marker::PhantomData<&'de ()>);

impl<'r> RecordSeed<'r, '_> {
    fn new(r: &'r mut Parsing) -> Self {
        RecordSeed(r, std::marker::PhantomData)
    }
}

impl<'de> Tolerant for RecordSeed<'_, 'de> {
    type Out = Fields<'de>;
    const EXPECTED: &'static str = "a stream record (an object)";
    fn reading(&mut self) -> &mut Parsing {
        self.0
    }
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, 'de> {
    type Value = Fields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_, 'de> {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }
    tolerate!(boolean, number, string, null, seq);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let r = self.0;
        let mut fields = Fields::default();
        let text = |r: &mut Parsing, map: &mut A, field: &str| {
            r.within(field, |r| {
                map.next_value_seed(StringSeed(r, std::marker::PhantomData))
            })
        };
        while let Some(field) = map.next_key_seed(NameSeed)? {
            match &*field {
                "eventID" => fields.event_id = text(r, &mut map, "eventID")?,
                "eventName" => fields.event_name = text(r, &mut map, "eventName")?,
                "eventSourceARN" => fields.source_arn = text(r, &mut map, "eventSourceARN")?,
                "userIdentity" => r.within("userIdentity", |r| {
                    map.next_value_seed(PartSeed(r, &mut fields, Part::Identity))
                })?,
                "dynamodb" => r.within("dynamodb", |r| {
                    map.next_value_seed(PartSeed(r, &mut fields, Part::Change))
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// A part of a record that is an object of its own, read into the record's fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `userIdentity`: who made the change (DynamoDB's Time to Live, or not).
    Identity,
    /// `dynamodb`: the keys, the images, the sequence number and the rest of the change.
    Change,
}

struct PartSeed<'r, 'f, 'de>(&'r mut Parsing, &'f mut Fields<'de>, Part);

impl Tolerant for PartSeed<'_, '_, '_> {
    type Out = ();
    const EXPECTED: &'static str = "an object";
    fn reading(&mut self) -> &mut Parsing {
        self.0
    }
}

impl<'de> DeserializeSeed<'de> for PartSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PartSeed<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(Self::EXPECTED)
    }
    tolerate!(boolean, number, string, seq);

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        match self.2 {
            Part::Identity => identity(self.0, self.1, map),
            Part::Change => change(self.0, self.1, map),
        }
    }
}

fn identity<'de, A: MapAccess<'de>>(
    r: &mut Parsing,
    fields: &mut Fields<'de>,
    mut map: A,
) -> Result<(), A::Error> {
    while let Some(field) = map.next_key_seed(NameSeed)? {
        let slot = match &*field {
            "type" => &mut fields.identity_type,
            "principalId" => &mut fields.principal_id,
            _ => {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
        };
        *slot = r.within(&*field, |r| {
            map.next_value_seed(StringSeed(r, std::marker::PhantomData))
        })?;
    }
    Ok(())
}

fn change<'de, A: MapAccess<'de>>(
    r: &mut Parsing,
    fields: &mut Fields<'de>,
    mut map: A,
) -> Result<(), A::Error> {
    while let Some(field) = map.next_key_seed(NameSeed)? {
        match &*field {
            "Keys" | "NewImage" => {
                let start = r.tape.mark();
                let present = r.within(&*field, |r| {
                    map.next_value_seed(ItemSeed { r, tagged: false })
                })?;
                if !present || r.failed() {
                    r.tape.truncate(start);
                } else if &*field == "Keys" {
                    fields.keys = Some(r.tape.take_item(start));
                } else {
                    fields.new_image = Some(r.tape.take(start));
                }
            }
            // Validated as JSON, not built: most records never need it.
            "OldImage" => {
                fields.old_image = map.next_value::<Option<Box<RawValue>>>()?.map(Into::into)
            }
            "SequenceNumber" => {
                fields.sequence_number = r.within("SequenceNumber", |r| {
                    map.next_value_seed(StringSeed(r, std::marker::PhantomData))
                })?
            }
            "StreamViewType" => {
                fields.view_type = r.within("StreamViewType", |r| {
                    map.next_value_seed(StringSeed(r, std::marker::PhantomData))
                })?
            }
            "ApproximateCreationDateTime" => {
                fields.created_epoch_seconds = r.within("ApproximateCreationDateTime", |r| {
                    map.next_value_seed(NumberSeed(r))
                })?
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;

    #[test]
    fn every_type_reads_and_writes_back() {
        let json = r#"{"s":{"S":"x"},"n":{"N":"1.5E2"},"b":{"B":"AAE="},"t":{"BOOL":true},
            "z":{"NULL":true},"m":{"M":{"inner":{"L":[{"S":"a"},{"N":"1"}]}}},
            "ss":{"SS":["a","b"]},"ns":{"NS":["1","2"]},"bs":{"BS":["AA==","AQ=="]}}"#;
        let item = parse_item(json).unwrap();
        assert_eq!(item["s"], AttributeValue::S("x".into()));
        assert_eq!(item["n"], AttributeValue::N("1.5E2".into()));
        assert_eq!(item["b"], AttributeValue::B(Blob::new(vec![0, 1])));
        assert_eq!(item["t"], AttributeValue::Bool(true));
        assert_eq!(item["z"], AttributeValue::Null(true));
        assert_eq!(
            item["m"],
            AttributeValue::M(HashMap::from([(
                "inner".to_string(),
                AttributeValue::L(vec![
                    AttributeValue::S("a".into()),
                    AttributeValue::N("1".into())
                ])
            )]))
        );
        assert_eq!(
            item["bs"],
            AttributeValue::Bs(vec![Blob::new(vec![0]), Blob::new(vec![1])])
        );
        let back = item_json(&item).unwrap();
        assert_eq!(parse_item(&back.to_string()).unwrap(), item);
        let expected: Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, expected);
    }

    #[test]
    fn errors_name_the_attribute_and_the_problem() {
        let err = |json: &str| parse_item(json).unwrap_err().to_string();
        let e = err(r#"{"a":{"M":{"deep":{"X":"1"}}}}"#);
        assert!(
            e.contains("attribute \"a\"") && e.contains("attribute \"deep\""),
            "{e}"
        );
        assert!(e.contains("unknown attribute type \"X\""), "{e}");
        assert!(err(r#"{"a":{}}"#).contains("no type"));
        assert!(err(r#"{"a":{"S":"x","N":"1"}}"#).contains("more than one type"));
        // A repeated name is refused, at the top and inside maps (DynamoDB never writes one).
        let e = err(r#"{"a":{"S":"x"},"b":{"N":"1"},"a":{"S":"y"}}"#);
        assert!(e.contains("attribute \"a\" appears more than once"), "{e}");
        let e = err(r#"{"m":{"M":{"x":{"N":"1"},"y":{"N":"2"},"x":{"N":"3"}}}}"#);
        assert!(
            e.contains("attribute \"m\": attribute \"x\" appears more than once"),
            "{e}"
        );
        assert!(parse_item(r#"{"ab":{"S":"x"},"ba":{"S":"y"},"b":{"S":"z"}}"#).is_ok());
        assert!(err(r#"{"a":{"B":"not base64!"}}"#).contains("not base64"));
        assert!(err(r#"{"a":{"S":5}}"#).contains("attribute \"a\""));
        assert!(err(r#"{"a":"plain"}"#).contains("attribute \"a\""));
    }

    #[test]
    fn errors_never_quote_a_value() {
        for (json, says) in [
            (
                r#"{"a":{"BOOL":"hidden-1"}}"#,
                "a string, expected a boolean",
            ),
            (r#"{"a":{"NULL":7}}"#, "a number, expected a boolean"),
            (
                r#"{"a":"hidden-2"}"#,
                "a string, expected a DynamoDB JSON value",
            ),
            (r#"{"a":12345}"#, "a number, expected a DynamoDB JSON value"),
            (r#"{"a":{"S":12345}}"#, "a number, expected a string"),
            (r#"{"a":{"N":true}}"#, "a boolean, expected a string"),
            (r#"{"a":{"B":1.5}}"#, "a number, expected a string"),
            (
                r#"{"a":{"SS":"hidden-3"}}"#,
                "a string, expected a list of strings",
            ),
            (r#"{"a":{"NS":["1",12345]}}"#, "a number, expected a string"),
            (
                r#"{"a":{"L":"hidden-4"}}"#,
                "a string, expected a list of DynamoDB JSON values",
            ),
            (
                r#"{"a":{"M":"hidden-5"}}"#,
                "a string, expected a map of attribute names",
            ),
            (
                r#"{"a":{"M":{"b":{"L":[{"S":false}]}}}}"#,
                "a boolean, expected a string",
            ),
        ] {
            let e = parse_item(json).unwrap_err().to_string();
            assert!(
                e.contains("attribute \"a\"") && e.contains(says),
                "{json}: {e}"
            );
            assert!(!e.contains("hidden") && !e.contains("12345"), "{json}: {e}");
        }
        let e = parse_record(
            r#"{"eventName":"INSERT","dynamodb":{"Keys":{"id":{"N":"1"}},"NewImage":"hidden","SequenceNumber":"1"}}"#,
        )
        .unwrap_err();
        assert!(!e.contains("hidden"), "{e}");
    }

    #[test]
    fn a_record_reads_into_the_engine_type() {
        let record = parse_record(
            r#"{"eventID":"e1","eventName":"REMOVE","eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/Orders/stream/x",
            "userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"},
            "dynamodb":{"Keys":{"id":{"N":"7"}},"OldImage":{"id":{"N":"7"},"weird":{"Q":1}},
            "SequenceNumber":"12","StreamViewType":"NEW_AND_OLD_IMAGES","ApproximateCreationDateTime":1700000000.5,"SizeBytes":9}}"#,
        )
        .unwrap();
        let change = record.stream().unwrap();
        assert_eq!(change.event_id, "e1");
        assert!(change.ttl_delete);
        assert_eq!(record.source_table.as_deref(), Some("Orders"));
        assert_eq!(record.keys["id"], AttributeValue::N("7".into()));
        assert_eq!(
            record.since,
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_500))
        );
        let e = parse_record(r#"{"eventName":"INSERT","dynamodb":{"Keys":{"id":{"N":"1"}},"NewImage":{"id":{"Q":"1"}},"SequenceNumber":"1"}}"#)
            .unwrap_err();
        assert!(
            e.contains("attribute \"id\": unknown attribute type \"Q\""),
            "{e}"
        );
    }

    #[test]
    fn a_record_nested_too_deep_is_malformed_and_the_event_still_parses() {
        // Past 128 levels serde_json refuses the whole text: the parser must stop before that.
        let mut deep = r#"{"S":"bottom"}"#.to_string();
        for _ in 0..300 {
            deep = format!(r#"{{"M":{{"d":{deep}}}}}"#);
        }
        let mut noise = "1".to_string();
        for _ in 0..300 {
            noise = format!("[{noise}]");
        }
        let record = |seq: u32, image: &str| {
            format!(
                r#"{{"eventName":"INSERT","noise":{noise},"dynamodb":{{"Keys":{{"id":{{"N":"{seq}"}}}},"NewImage":{image},"SequenceNumber":"{seq}","StreamViewType":"NEW_IMAGE"}}}}"#
            )
        };
        let json = format!(
            r#"{{"Records":[{},{}]}}"#,
            record(1, &format!(r#"{{"id":{{"N":"1"}},"deep":{deep}}}"#)),
            record(2, r#"{"id":{"N":"2"}}"#)
        );
        let event: crate::lambda::event::StreamEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(event.records.len(), 1);
        assert_eq!(event.malformed.len(), 1);
        let m = &event.malformed[0];
        assert_eq!(m.sequence_number.as_deref(), Some("1"));
        assert!(
            m.reason.contains("attribute \"deep\"") && m.reason.contains("more than 32 levels"),
            "{}",
            m.reason
        );
    }
}
