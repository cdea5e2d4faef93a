//! What the engine verifies ([`Expectation`]: a key, what the other side should hold, since when,
//! and from where), built from stream records through one set of checks; and the canonical form
//! of an item key used for sampling, de-duplication and matching lookup results; [`image`]: the
//! image an expectation holds, compact for Lambda's records; [`key_text`]: a key as text
//! (`findings` prints it, `accept` reads it back), ending in the same key checks.

pub(crate) mod change;
pub mod image;
pub mod json;
pub mod key_text;

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::compare::{write_canonical_number, CanonicalNumber};
pub use image::{Image, Tape};
pub use key_text::{KeyText, KeyTextError};

pub use crate::compare::Item;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Insert => "INSERT",
            ChangeKind::Modify => "MODIFY",
            ChangeKind::Remove => "REMOVE",
        }
    }
}

/// What the stream carries for each change (`StreamViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewType {
    KeysOnly,
    NewImage,
    OldImage,
    NewAndOldImages,
    /// The record did not say.
    Unknown,
}

impl ViewType {
    pub fn carries_new_image(self) -> bool {
        matches!(self, ViewType::NewImage | ViewType::NewAndOldImages)
    }
}

/// What the engine verifies: what one key should look like on the other side, since when, and
/// where that came from. A stream record, an item read by a scan and a stored finding are each
/// one, so no caller needs to make up a stream record.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub keys: Item,
    pub expected: Expected,
    /// When the source had this state: the replication window starts here (`None`: when the
    /// engine first sees it). A stream record's approximate creation time, to the second.
    pub since: Option<SystemTime>,
    /// The table the expectation comes from, to read its current item again (`RECHECK_SOURCE`).
    pub source_table: Option<String>,
    pub origin: Origin,
}

/// What the other side should hold for the key.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// This image (attributes in `IGNORE_ATTRIBUTES` aside).
    Image(Image),
    /// Nothing: the item was deleted.
    Absent,
    /// Whatever the source holds now: a change whose stream carries no new image, or a key whose
    /// state is known only from the source (a finding checked again).
    SourceCurrent,
    /// Some item under the key, whatever it holds: the baseline's check that an item found on one
    /// side exists on the other (its contents are compared the other way round).
    Present,
}

/// Where an expectation came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A record of the source table's stream (Lambda's event or the poller's reads).
    Stream(StreamChange),
    /// An item read by a scan of the source table (the baseline compare).
    Scan,
    /// A finding stored earlier, checked again.
    Finding,
}

/// What only a stream record has: its identity, the change it made and the state it replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChange {
    pub event_id: String,
    pub kind: ChangeKind,
    pub sequence_number: String,
    /// The item before the change (`NEW_AND_OLD_IMAGES`, `OLD_IMAGE`): read only to prove that the
    /// other side still holds a replaced state.
    pub old_image: Option<OldImage>,
    pub view_type: ViewType,
    /// A delete by DynamoDB's Time to Live, not by a client.
    pub ttl_delete: bool,
    /// The stream it was read from (`eventSourceARN`), shared by the records of one stream: each
    /// stream's coverage is its own.
    pub stream_arn: Option<Arc<str>>,
}

/// A stream record that could not be turned into an [`Expectation`]: it gets an UNVERIFIABLE verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct MalformedRecord {
    /// Position in the batch (0-based).
    pub position: usize,
    pub event_id: Option<String>,
    pub sequence_number: Option<String>,
    pub reason: String,
    /// The record's key, when it could be read although another check failed: its UNVERIFIABLE
    /// verdict is kept as a finding under it.
    pub keys: Option<Box<Item>>,
    /// The table of the stream it came from, when known.
    pub source_table: Option<Box<str>>,
}

/// Why a stream record cannot be verified, and its key when that was readable.
#[derive(Debug, Clone, PartialEq)]
pub struct NotVerifiable {
    pub reason: String,
    pub keys: Option<Item>,
}

impl NotVerifiable {
    fn keyless(reason: impl Into<String>) -> NotVerifiable {
        NotVerifiable {
            reason: reason.into(),
            keys: None,
        }
    }
}

/// What a stream record says, before it is checked: from Lambda's JSON ([`crate::record::json`]) or
/// from the Streams API (`aws::streams`), both through the same checks.
#[derive(Debug, Default)]
pub struct RecordParts<'a> {
    pub event_id: String,
    pub event_name: Option<&'a str>,
    pub keys: Option<Item>,
    pub new_image: Option<Image>,
    pub old_image: Option<OldImage>,
    pub sequence_number: Option<String>,
    pub view_type: Option<&'a str>,
    pub created_epoch_seconds: Option<f64>,
    /// The change was made by DynamoDB's Time to Live (`userIdentity` is the dynamodb service).
    pub ttl_delete: bool,
    pub source_arn: Option<&'a str>,
}

impl Expectation {
    /// Checks a stream record's parts and builds what the engine verifies; the error is the reason
    /// it cannot be verified, with its key when the key itself is sound.
    pub fn from_stream(parts: RecordParts<'_>) -> Result<Expectation, NotVerifiable> {
        let keys = parts
            .keys
            .filter(|k| !k.is_empty())
            .ok_or_else(|| NotVerifiable::keyless("record has no dynamodb.Keys"))?;
        check_key(&keys).map_err(NotVerifiable::keyless)?;
        let kind = match parts.event_name.unwrap_or_default() {
            "INSERT" => ChangeKind::Insert,
            "MODIFY" => ChangeKind::Modify,
            "REMOVE" => ChangeKind::Remove,
            other => {
                return Err(NotVerifiable {
                    reason: format!("eventName {other:?} is not INSERT, MODIFY or REMOVE"),
                    keys: Some(keys),
                })
            }
        };
        let Some(sequence_number) = parts.sequence_number.filter(|s| !s.is_empty()) else {
            return Err(NotVerifiable {
                reason: "record has no dynamodb.SequenceNumber".into(),
                keys: Some(keys),
            });
        };
        let view_type = match parts.view_type {
            Some("KEYS_ONLY") => ViewType::KeysOnly,
            Some("NEW_IMAGE") => ViewType::NewImage,
            Some("OLD_IMAGE") => ViewType::OldImage,
            Some("NEW_AND_OLD_IMAGES") => ViewType::NewAndOldImages,
            _ => ViewType::Unknown,
        };
        let new_image = parts.new_image.filter(|i| !i.is_empty());
        if kind != ChangeKind::Remove && new_image.is_none() && view_type.carries_new_image() {
            return Err(NotVerifiable {
                reason: format!(
                    "{} on a {} stream has no dynamodb.NewImage",
                    kind.as_str(),
                    parts.view_type.unwrap_or_default()
                ),
                keys: Some(keys),
            });
        }
        let approximate_creation = parts
            .created_epoch_seconds
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| UNIX_EPOCH + Duration::from_millis((s * 1000.0).round() as u64));
        let expected = match (kind, new_image) {
            (ChangeKind::Remove, _) => Expected::Absent,
            (_, Some(image)) => Expected::Image(image),
            (_, None) => Expected::SourceCurrent,
        };
        Ok(Expectation {
            keys,
            expected,
            since: approximate_creation,
            source_table: parts.source_arn.and_then(table_name_from_arn),
            origin: Origin::Stream(StreamChange {
                event_id: parts.event_id,
                kind,
                sequence_number,
                old_image: parts.old_image,
                view_type,
                ttl_delete: kind == ChangeKind::Remove && parts.ttl_delete,
                stream_arn: parts.source_arn.map(shared_arn),
            }),
        })
    }

    pub fn item_key(&self) -> ItemKey {
        ItemKey::of(&self.keys)
    }

    /// The image the other side should hold, when there is one.
    pub fn image(&self) -> Option<&Image> {
        match &self.expected {
            Expected::Image(image) => Some(image),
            Expected::Absent | Expected::SourceCurrent | Expected::Present => None,
        }
    }

    pub fn is_delete(&self) -> bool {
        self.expected == Expected::Absent
    }

    /// The stream record this came from, if it did.
    pub fn stream(&self) -> Option<&StreamChange> {
        match &self.origin {
            Origin::Stream(change) => Some(change),
            Origin::Scan | Origin::Finding => None,
        }
    }

    pub fn sequence_number(&self) -> Option<&str> {
        self.stream().map(|c| c.sequence_number.as_str())
    }

    /// The stream the record was read from.
    pub fn stream_arn(&self) -> Option<&str> {
        self.stream().and_then(|c| c.stream_arn.as_deref())
    }

    /// The state the change replaced, when its stream carries it.
    pub fn old_image(&self) -> Option<&OldImage> {
        self.stream().and_then(|c| c.old_image.as_ref())
    }

    /// Names this expectation among others of its key: a stream record's sequence number, or
    /// where it came from.
    pub fn position(&self) -> String {
        match &self.origin {
            Origin::Stream(change) => change.sequence_number.clone(),
            Origin::Scan => "(scanned item)".into(),
            Origin::Finding => "(finding)".into(),
        }
    }
}

/// What BatchGetItem would reject for the whole request (so for up to 99 other records): a key
/// of more than two attributes, a type other than S/N/B, an empty S or B, an N that is not a
/// DynamoDB number. Checked before any lookup; the reason names the attribute, never its value.
/// The key text's parser ([`KeyText::parse`]) ends in the same checks.
pub fn check_key(keys: &Item) -> Result<(), String> {
    if keys.len() > 2 {
        return Err(format!(
            "dynamodb.Keys has {} attributes, but a DynamoDB key has one or two",
            keys.len()
        ));
    }
    keys.iter()
        .try_for_each(|(name, value)| check_key_attribute(name, value))
}

/// One key attribute's part of [`check_key`]: S, N or B; no empty S or B; N a DynamoDB number.
#[inline]
pub fn check_key_attribute(name: &str, value: &AttributeValue) -> Result<(), String> {
    let problem = match value {
        AttributeValue::S(s) if s.is_empty() => "is an empty string",
        AttributeValue::B(b) if b.as_ref().is_empty() => "is an empty binary",
        AttributeValue::N(n) if CanonicalNumber::parse(n).is_none() => "is not a DynamoDB number",
        AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_) => return Ok(()),
        other => {
            return Err(format!(
                "key attribute {name:?} has type {}, but keys are S, N or B",
                type_name(other)
            ))
        }
    };
    Err(format!("key attribute {name:?} {problem}"))
}

/// A record's old image, kept as the event's JSON (Lambda) or as the SDK item (the poller): most
/// records never need it, so Lambda's are parsed only when a verdict depends on them.
#[derive(Debug, Clone)]
pub enum OldImage {
    /// The image's DynamoDB JSON text (validated as JSON when the event was read).
    Json(Box<str>),
    Item(Item),
}

impl OldImage {
    /// The image as an item; `None` (with the reason) if its JSON is not a DynamoDB image.
    pub fn item(&self) -> Result<std::borrow::Cow<'_, Item>, String> {
        match self {
            OldImage::Item(item) => Ok(std::borrow::Cow::Borrowed(item)),
            OldImage::Json(json) => crate::record::json::parse_item(json)
                .map(std::borrow::Cow::Owned)
                .map_err(|e| format!("dynamodb.OldImage: {e}")),
        }
    }
}

impl PartialEq for OldImage {
    fn eq(&self, other: &OldImage) -> bool {
        // Two images that do not parse, for the same reason, are as equal as can be known.
        self.item() == other.item()
    }
}

/// `arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL` → `NAME`.
/// One allocation per stream, not per record: the records of a batch share their stream's ARN.
fn shared_arn(arn: &str) -> Arc<str> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<Arc<str>>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some(shared) if &**shared == arn => Arc::clone(shared),
            _ => {
                let shared: Arc<str> = Arc::from(arn);
                *last = Some(Arc::clone(&shared));
                shared
            }
        }
    })
}

pub fn table_name_from_arn(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let name = resource.strip_prefix("table/")?.split('/').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

pub fn type_name(value: &AttributeValue) -> &'static str {
    match value {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::B(_) => "B",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::Null(_) => "NULL",
        AttributeValue::M(_) => "M",
        AttributeValue::L(_) => "L",
        AttributeValue::Ss(_) => "SS",
        AttributeValue::Ns(_) => "NS",
        AttributeValue::Bs(_) => "BS",
        _ => "unknown",
    }
}

/// Orders DynamoDB stream sequence numbers (decimal strings of up to 40 digits).
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A key in canonical form: the same key always gives the same bytes, whatever the attribute order
/// or number notation. Used to sample, to find several changes to one key, and to match lookups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey(Vec<u8>);

impl ItemKey {
    /// The canonical key of `keys` (all of its attributes are taken as key attributes).
    pub fn of(keys: &Item) -> ItemKey {
        // Pairs sorted by name: no lookup (a SipHash each) back into the map.
        let mut attrs: Vec<(&String, &AttributeValue)> = keys.iter().collect();
        attrs.sort_unstable_by_key(|&(name, _)| name);
        ItemKey::from_attributes(attrs.into_iter().map(|(n, v)| (n.as_str(), Some(v))))
    }

    /// The canonical key of a whole item, projected on the given key attribute names (sorted).
    pub fn project(item: &Item, sorted_key_names: &[String]) -> ItemKey {
        ItemKey::from_attributes(sorted_key_names.iter().map(|n| (n.as_str(), item.get(n))))
    }

    fn from_attributes<'a>(
        attrs: impl Iterator<Item = (&'a str, Option<&'a AttributeValue>)>,
    ) -> ItemKey {
        ItemKey::from_parts(attrs.map(|(name, value)| {
            let part = value.map(|value| match value {
                AttributeValue::S(s) => KeyPart::S(s.as_bytes()),
                AttributeValue::N(n) => KeyPart::N(n),
                AttributeValue::B(b) => KeyPart::B(b.as_ref()),
                _ => KeyPart::Other,
            });
            (name, part)
        }))
    }

    /// The canonical key of key attributes in name order, each value as a [`KeyPart`] (`None`:
    /// the attribute is absent), whatever form the item is held in.
    pub(crate) fn from_parts<'a>(
        attrs: impl Iterator<Item = (&'a str, Option<KeyPart<'a>>)>,
    ) -> ItemKey {
        let mut bytes = Vec::with_capacity(64);
        for (name, value) in attrs {
            // Length-prefixed, so no name or value can run into the next one.
            push_part(&mut bytes, name.as_bytes());
            match value {
                Some(KeyPart::S(s)) => {
                    bytes.push(b'S');
                    push_part(&mut bytes, s);
                }
                Some(KeyPart::N(n)) => {
                    bytes.push(b'N');
                    // Length-prefixed like the others: the length is patched once it is written.
                    let at = bytes.len();
                    bytes.extend_from_slice(&[0; 4]);
                    write_canonical_number(n, &mut bytes);
                    let len = (bytes.len() - at - 4) as u32;
                    bytes[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
                Some(KeyPart::B(b)) => {
                    bytes.push(b'B');
                    push_part(&mut bytes, b);
                }
                Some(KeyPart::Other) => bytes.push(b'?'),
                None => bytes.push(b'-'),
            }
        }
        ItemKey(bytes)
    }

    /// A stable 64-bit hash (FNV-1a): the same on every machine and every release, so sampling
    /// decisions never change under a running migration.
    pub fn stable_hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in &self.0 {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // FNV's low bits mix poorly for short inputs; a final avalanche (from splitmix64) fixes that.
        hash ^= hash >> 30;
        hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        hash ^= hash >> 27;
        hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
        hash ^ (hash >> 31)
    }

    /// Whether this key is verified at `rate` (0 < rate <= 1): always the same answer for a key.
    pub fn is_sampled(&self, rate: f64) -> bool {
        if rate >= 1.0 {
            return true;
        }
        (self.stable_hash() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - rate
    }
}

/// A key attribute's value as a canonical key takes it: S, N and B; any other type is `Other`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyPart<'a> {
    S(&'a [u8]),
    N(&'a str),
    B(&'a [u8]),
    Other,
}

fn push_part(bytes: &mut Vec<u8>, part: &[u8]) {
    bytes.extend_from_slice(&(part.len() as u32).to_be_bytes());
    bytes.extend_from_slice(part);
}

/// A key for logs: `pk="user#1" sk=5 blob=b64:AAE=` (key values are not item contents; see
/// docs/metrics.md, Logs). The older key text form ([`key_text::legacy_text`]), which `accept`
/// also reads; finding ids are made of it, so it does not change.
pub fn describe_key(keys: &Item) -> String {
    key_text::legacy_text(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::item as key;
    use aws_sdk_dynamodb::primitives::Blob;

    #[test]
    fn item_key_ignores_number_notation_and_attribute_order() {
        let a = key(&[
            ("pk", AttributeValue::S("a".into())),
            ("sk", AttributeValue::N("10".into())),
        ]);
        let b = key(&[
            ("sk", AttributeValue::N("1E1".into())),
            ("pk", AttributeValue::S("a".into())),
        ]);
        assert_eq!(ItemKey::of(&a), ItemKey::of(&b));
        let c = key(&[
            ("pk", AttributeValue::S("a".into())),
            ("sk", AttributeValue::N("11".into())),
        ]);
        assert_ne!(ItemKey::of(&a), ItemKey::of(&c));
        // A string "10" and a number 10 are different keys.
        let d = key(&[
            ("pk", AttributeValue::S("a".into())),
            ("sk", AttributeValue::S("10".into())),
        ]);
        assert_ne!(ItemKey::of(&a), ItemKey::of(&d));
        // Projection of a full item matches the key alone.
        let mut full = a.clone();
        full.insert("other".into(), AttributeValue::Bool(true));
        assert_eq!(
            ItemKey::project(&full, &["pk".into(), "sk".into()]),
            ItemKey::of(&a)
        );
    }

    #[test]
    fn sampling_is_deterministic_and_close_to_the_rate() {
        let keys: Vec<ItemKey> = (0..20_000)
            .map(|i| ItemKey::of(&key(&[("id", AttributeValue::N(i.to_string()))])))
            .collect();
        for rate in [0.01, 0.1, 0.5, 0.9] {
            let sampled = keys.iter().filter(|k| k.is_sampled(rate)).count();
            let expected = rate * keys.len() as f64;
            assert!(
                (sampled as f64 - expected).abs() < expected * 0.1 + 30.0,
                "rate {rate}: {sampled} of {}",
                keys.len()
            );
            // Same answer every time, and a key sampled at a rate is sampled at every higher rate.
            for k in keys.iter().take(500) {
                assert_eq!(k.is_sampled(rate), k.is_sampled(rate));
                if k.is_sampled(rate) {
                    assert!(k.is_sampled((rate + 0.05).min(1.0)));
                }
            }
        }
        assert!(keys.iter().all(|k| k.is_sampled(1.0)));
        // Pinned value: a change here would re-sample every running migration.
        assert_eq!(
            ItemKey::of(&key(&[("id", AttributeValue::S("user#1".into()))])).stable_hash(),
            0x3333_56f3_5bbf_a130
        );
    }

    #[test]
    fn sequence_numbers_order_numerically() {
        assert_eq!(compare_sequence_numbers("9", "10"), Ordering::Less);
        assert_eq!(compare_sequence_numbers("000100", "100"), Ordering::Equal);
        assert_eq!(
            compare_sequence_numbers(
                "111111110000000000000000000001",
                "111111110000000000000000000002"
            ),
            Ordering::Less
        );
    }

    #[test]
    fn keys_that_batch_get_item_would_reject_are_refused_before_any_lookup() {
        let parts = |keys: Item| RecordParts {
            event_id: "e1".into(),
            event_name: Some("INSERT"),
            keys: Some(keys),
            sequence_number: Some("1".into()),
            view_type: Some("KEYS_ONLY"),
            ..RecordParts::default()
        };
        let reason = |keys: Item| Expectation::from_stream(parts(keys)).unwrap_err().reason;
        let e = reason(key(&[("pk", AttributeValue::N("12abc".into()))]));
        assert_eq!(e, "key attribute \"pk\" is not a DynamoDB number");
        let e = reason(key(&[("pk", AttributeValue::S(String::new()))]));
        assert_eq!(e, "key attribute \"pk\" is an empty string");
        let e = reason(key(&[("pk", AttributeValue::B(Blob::new(vec![])))]));
        assert_eq!(e, "key attribute \"pk\" is an empty binary");
        let e = reason(key(&[
            ("a", AttributeValue::S("1".into())),
            ("b", AttributeValue::S("2".into())),
            ("c", AttributeValue::S("3".into())),
        ]));
        assert!(e.contains("has 3 attributes"), "{e}");
        let e = reason(key(&[("pk", AttributeValue::Bool(true))]));
        assert!(e.contains("has type BOOL"), "{e}");
        // Good keys pass, numbers in any notation.
        assert!(Expectation::from_stream(parts(key(&[
            ("pk", AttributeValue::S("x".into())),
            ("sk", AttributeValue::N("-1.5E3".into())),
        ])))
        .is_ok());
    }

    #[test]
    fn keys_are_described_without_other_attributes() {
        let k = key(&[
            ("pk", AttributeValue::S("user#1".into())),
            ("n", AttributeValue::N("5".into())),
            ("b", AttributeValue::B(Blob::new(vec![0, 1]))),
        ]);
        assert_eq!(describe_key(&k), "b=b64:AAE= n=5 pk=\"user#1\"");
    }

    #[test]
    fn table_name_comes_from_a_stream_arn() {
        assert_eq!(
            table_name_from_arn("arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2024-01-01T00:00:00.000").as_deref(),
            Some("Orders")
        );
        assert_eq!(
            table_name_from_arn("arn:aws:dynamodb:us-east-1:1:table/").as_deref(),
            None
        );
        assert_eq!(table_name_from_arn("nonsense"), None);
    }
}
