//! DynamoDB JSON (`{"S": "x"}`, `{"M": {...}}`, ...) read straight into the SDK's
//! [`AttributeValue`], and Lambda's stream record JSON straight into a [`Expectation`].
//!
//! Why not `aws_lambda_events`' `EventRecord`: it goes through serde_dynamo and serde's buffered
//! `Content`, then every image is converted again into the SDK's types; that cost about 25 µs per
//! 1.7 KB record and several copies of it in memory (see BENCHMARKS.md). Here a record is read once,
//! unknown fields are skipped without being built, `OldImage` is kept as its JSON (parsed only when
//! a verdict depends on it), and every error names the field, the attribute or the type.
//!
//! Errors never quote an item value: they become UNVERIFIABLE reasons, which are logged, and item
//! values are logged only with `LOG_ITEM_VALUES=true`. serde's own type errors do quote the value
//! they met (`invalid type: string "…"`), so the values here are read with `deserialize_any` and
//! visitors whose errors name only the kind of value found (`reject!`).

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::record::{type_name, Expectation, Item, OldImage, RecordParts};

/// One Lambda DynamoDB stream record (`{"eventID": ..., "dynamodb": {...}}`) as a [`Expectation`];
/// the error is the reason it cannot be one.
pub fn parse_record(json: &str) -> Result<Expectation, String> {
    let wire: WireRecord = serde_json::from_str(json)
        .map_err(|e| format!("record does not parse as a DynamoDB stream record: {e}"))?;
    let change = wire.dynamodb.unwrap_or_default();
    Expectation::from_stream(RecordParts {
        event_id: wire.event_id.unwrap_or_default(),
        event_name: wire.event_name.as_deref(),
        keys: change.keys.map(|i| i.0),
        new_image: change.new_image.map(|i| i.0),
        old_image: change.old_image.map(OldImage::Json),
        sequence_number: change.sequence_number,
        view_type: change.stream_view_type.as_deref(),
        created_epoch_seconds: change.approximate_creation_date_time,
        ttl_delete: wire.user_identity.is_some_and(|u| {
            u.kind.as_deref() == Some("Service")
                && u.principal_id.as_deref() == Some("dynamodb.amazonaws.com")
        }),
        source_arn: wire.event_source_arn.as_deref(),
    })
}

/// An item in DynamoDB JSON (`{"id": {"S": "1"}, ...}`) as an SDK item.
pub fn parse_item(json: &str) -> Result<Item, serde_json::Error> {
    serde_json::from_str::<Image>(json).map(|i| i.0)
}

/// An SDK item as DynamoDB JSON, the inverse of [`parse_item`]; `None` if an attribute has a type
/// this version does not know.
pub fn item_json(item: &Item) -> Option<Value> {
    item.iter()
        .map(|(name, value)| Some((name.clone(), attribute_json(value)?)))
        .collect::<Option<Map<String, Value>>>()
        .map(Value::Object)
}

fn attribute_json(value: &AttributeValue) -> Option<Value> {
    let b64 = |b: &Blob| Value::String(aws_smithy_types::base64::encode(b.as_ref()));
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
    Some(Value::Object(object))
}

#[derive(Deserialize)]
struct WireRecord {
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
    dynamodb: Option<WireChange>,
    #[serde(rename = "userIdentity")]
    user_identity: Option<WireIdentity>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct WireChange {
    keys: Option<Image>,
    new_image: Option<Image>,
    /// Validated, not built: most records never need it.
    old_image: Option<Box<serde_json::value::RawValue>>,
    sequence_number: Option<String>,
    stream_view_type: Option<String>,
    /// Epoch seconds (a number).
    approximate_creation_date_time: Option<f64>,
}

#[derive(Deserialize)]
struct WireIdentity {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "principalId")]
    principal_id: Option<String>,
}

/// `visit_*` methods rejecting the scalar JSON values a visitor does not accept with an error that
/// names the kind of value, never the value (serde's defaults quote it, and it is an item value).
macro_rules! reject {
    ($($kind:ident),+) => { $(reject!(@ $kind);)+ };
    (@ boolean) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a boolean"), &self))
        }
    };
    (@ number) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a number"), &self))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a number"), &self))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a number"), &self))
        }
    };
    (@ string) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::invalid_type(de::Unexpected::Other("a string"), &self))
        }
    };
}

/// An image or a key: attribute name → value.
struct Image(Item);

impl<'de> Deserialize<'de> for Image {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Image, D::Error> {
        deserializer.deserialize_any(ImageVisitor).map(Image)
    }
}

struct ImageVisitor;

impl<'de> Visitor<'de> for ImageVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of attribute names to DynamoDB JSON values")
    }

    reject!(boolean, number, string);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        // Collected first, so the map is allocated once at its exact size: a map grown from a guess
        // costs rehashing or, for the many small maps of nested items, several times its memory.
        let mut attributes = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            // Name the attribute in the error (only on the error path: no cost otherwise).
            let value = map
                .next_value_seed(AttributeSeed)
                .map_err(|e| de::Error::custom(format_args!("attribute {name:?}: {e}")))?;
            attributes.push((name, value));
        }
        let mut item = HashMap::with_capacity(attributes.len());
        item.extend(attributes);
        Ok(item)
    }
}

#[derive(Clone, Copy)]
struct AttributeSeed;

impl<'de> DeserializeSeed<'de> for AttributeSeed {
    type Value = AttributeValue;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<AttributeValue, D::Error> {
        deserializer.deserialize_any(AttributeVisitor)
    }
}

/// The type descriptor of a DynamoDB JSON value: the single key of `{"S": "x"}`.
enum TypeTag {
    S,
    N,
    B,
    Bool,
    Null,
    M,
    L,
    Ss,
    Ns,
    Bs,
}

impl<'de> Deserialize<'de> for TypeTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<TypeTag, D::Error> {
        struct TagVisitor;
        impl Visitor<'_> for TagVisitor {
            type Value = TypeTag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB type (S, N, B, BOOL, NULL, M, L, SS, NS or BS)")
            }
            fn visit_str<E: de::Error>(self, tag: &str) -> Result<TypeTag, E> {
                Ok(match tag {
                    "S" => TypeTag::S,
                    "N" => TypeTag::N,
                    "B" => TypeTag::B,
                    "BOOL" => TypeTag::Bool,
                    "NULL" => TypeTag::Null,
                    "M" => TypeTag::M,
                    "L" => TypeTag::L,
                    "SS" => TypeTag::Ss,
                    "NS" => TypeTag::Ns,
                    "BS" => TypeTag::Bs,
                    other => {
                        return Err(E::custom(format_args!(
                            "unknown attribute type {other:?} (expected S, N, B, BOOL, NULL, M, L, SS, NS or BS)"
                        )))
                    }
                })
            }
        }
        deserializer.deserialize_str(TagVisitor)
    }
}

struct AttributeVisitor;

impl<'de> Visitor<'de> for AttributeVisitor {
    type Value = AttributeValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a DynamoDB JSON value such as {\"S\": \"text\"}")
    }

    reject!(boolean, number, string);

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttributeValue, A::Error> {
        let Some(tag) = map.next_key::<TypeTag>()? else {
            return Err(de::Error::custom("attribute value has no type"));
        };
        let value = match tag {
            TypeTag::S => AttributeValue::S(map.next_value_seed(Text)?),
            TypeTag::N => AttributeValue::N(map.next_value_seed(Text)?),
            TypeTag::B => {
                AttributeValue::B(decode_base64::<A::Error>(&map.next_value_seed(Text)?)?)
            }
            TypeTag::Bool => AttributeValue::Bool(map.next_value_seed(Flag)?),
            TypeTag::Null => AttributeValue::Null(map.next_value_seed(Flag)?),
            TypeTag::M => AttributeValue::M(map.next_value::<Image>()?.0),
            TypeTag::L => AttributeValue::L(map.next_value_seed(ATTRIBUTES)?),
            TypeTag::Ss => AttributeValue::Ss(map.next_value_seed(TEXTS)?),
            TypeTag::Ns => AttributeValue::Ns(map.next_value_seed(TEXTS)?),
            TypeTag::Bs => AttributeValue::Bs(
                map.next_value_seed(TEXTS)?
                    .iter()
                    .map(|s| decode_base64::<A::Error>(s))
                    .collect::<Result<_, _>>()?,
            ),
        };
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("attribute value has more than one type"));
        }
        Ok(value)
    }
}

fn decode_base64<E: de::Error>(text: &str) -> Result<Blob, E> {
    aws_smithy_types::base64::decode(text)
        .map(Blob::new)
        .map_err(|e| E::custom(format_args!("binary value is not base64: {e}")))
}

/// A JSON list whose elements `element` reads (L: attribute values; SS, NS, BS: strings); `what`
/// names it in errors.
#[derive(Clone, Copy)]
struct ListOf<S> {
    element: S,
    what: &'static str,
}

const ATTRIBUTES: ListOf<AttributeSeed> = ListOf {
    element: AttributeSeed,
    what: "a list of DynamoDB JSON values",
};
const TEXTS: ListOf<Text> = ListOf {
    element: Text,
    what: "a list of strings",
};

impl<'de, S: DeserializeSeed<'de> + Copy> DeserializeSeed<'de> for ListOf<S> {
    type Value = Vec<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, S: DeserializeSeed<'de> + Copy> Visitor<'de> for ListOf<S> {
    type Value = Vec<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.what)
    }

    reject!(boolean, number, string);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(value) = seq.next_element_seed(self.element)? {
            list.push(value);
        }
        Ok(list)
    }
}

/// The string of an S, N or B value.
#[derive(Clone, Copy)]
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for Text {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }

    reject!(boolean, number);
}

/// The boolean of a BOOL or NULL value.
struct Flag;

impl<'de> DeserializeSeed<'de> for Flag {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for Flag {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a boolean")
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<bool, E> {
        Ok(flag)
    }

    reject!(number, string);
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
