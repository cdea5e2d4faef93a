//! Properties of the event parser and the comparator, over generated input (proptest): equality is
//! reflexive and symmetric, numbers are equal across notations, sets are equal in any order, DynamoDB
//! JSON reads back what it wrote, and no input makes the parser panic or lose a record.
//!
//! `PROPTEST_CASES` sets the cases per property (proptest's default is 256); `make fuzz` runs many
//! more for a bounded time. No DynamoDB Local needed.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use ddb_verify::compare::{diff_items, items_equal, numbers_equal, values_equal};
use ddb_verify::lambda::event::StreamEvent;
use ddb_verify::record::json::{item_json, parse_item, parse_tape};
use ddb_verify::record::{Image, Item, ItemKey, Tape};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A decimal as (negative, significant digits, exponent): value = ±digits × 10^exponent.
fn decimal() -> impl Strategy<Value = (bool, String, i32)> {
    (any::<bool>(), "[1-9][0-9]{0,15}", -20i32..20)
}

/// The same decimal in several of the notations DynamoDB accepts.
fn notations(negative: bool, digits: &str, exponent: i32) -> Vec<String> {
    let sign = if negative { "-" } else { "" };
    let mut out = vec![
        format!("{sign}{digits}E{exponent}"),
        format!("{sign}{digits}e{exponent:+}"),
        format!("{sign}00{digits}000E{}", exponent - 3),
    ];
    if exponent >= 0 {
        out.push(format!("{sign}{digits}{}", "0".repeat(exponent as usize)));
        out.push(format!(
            "{sign}{digits}{}.000",
            "0".repeat(exponent as usize)
        ));
    } else if (-exponent as usize) < digits.len() {
        let at = digits.len() - (-exponent as usize);
        out.push(format!("{sign}{}.{}", &digits[..at], &digits[at..]));
        out.push(format!("{sign}{}.{}00", &digits[..at], &digits[at..]));
    } else {
        let zeros = "0".repeat(-exponent as usize - digits.len());
        out.push(format!("{sign}0.{zeros}{digits}"));
        out.push(format!("{sign}.{zeros}{digits}"));
    }
    out
}

fn number() -> impl Strategy<Value = String> {
    (decimal(), 0usize..5).prop_map(|((neg, digits, exp), pick)| {
        let all = notations(neg, &digits, exp);
        all[pick % all.len()].clone()
    })
}

fn blob() -> impl Strategy<Value = Blob> {
    prop::collection::vec(any::<u8>(), 0..16).prop_map(Blob::new)
}

fn attribute() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        any::<String>().prop_map(AttributeValue::S),
        number().prop_map(AttributeValue::N),
        blob().prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null(true)),
        prop::collection::btree_set(any::<String>(), 1..5)
            .prop_map(|s| AttributeValue::Ss(s.into_iter().collect())),
        prop::collection::btree_set(0u32..1000, 1..5)
            .prop_map(|s| AttributeValue::Ns(s.into_iter().map(|n| n.to_string()).collect())),
        prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..8), 1..4)
            .prop_map(|s| AttributeValue::Bs(s.into_iter().map(Blob::new).collect())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(AttributeValue::L),
            prop::collection::hash_map("[a-z]{1,6}", inner, 0..6).prop_map(AttributeValue::M),
        ]
    })
}

fn an_item() -> impl Strategy<Value = Item> {
    prop::collection::hash_map("[a-zA-Z_#.]{1,10}", attribute(), 1..10)
}

/// Any JSON value, for records that are not what they should be.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        prop_oneof![
            Just("S"),
            Just("N"),
            Just("M"),
            Just("SS"),
            Just("INSERT"),
            Just("Keys")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::hash_map(
                prop_oneof![
                    Just("S".to_string()),
                    Just("N".to_string()),
                    Just("M".to_string()),
                    Just("L".to_string()),
                    Just("B".to_string()),
                    "[A-Za-z]{1,12}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Reverses every set inside a value (sets are unordered, so this must not change equality).
fn reorder_sets(value: &AttributeValue) -> AttributeValue {
    match value {
        AttributeValue::Ss(v) => AttributeValue::Ss(v.iter().rev().cloned().collect()),
        AttributeValue::Ns(v) => AttributeValue::Ns(v.iter().rev().cloned().collect()),
        AttributeValue::Bs(v) => AttributeValue::Bs(v.iter().rev().cloned().collect()),
        AttributeValue::L(l) => AttributeValue::L(l.iter().map(reorder_sets).collect()),
        AttributeValue::M(m) => AttributeValue::M(
            m.iter()
                .map(|(k, v)| (k.clone(), reorder_sets(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Writes every number without an exponent with one (`12` as `12E0`): the same number.
fn renotate(value: &AttributeValue) -> AttributeValue {
    let again = |n: &String| {
        if n.contains(['e', 'E']) {
            n.clone()
        } else {
            format!("{n}E0")
        }
    };
    match value {
        AttributeValue::N(n) => AttributeValue::N(again(n)),
        AttributeValue::Ns(v) => AttributeValue::Ns(v.iter().map(again).collect()),
        AttributeValue::L(l) => AttributeValue::L(l.iter().map(renotate).collect()),
        AttributeValue::M(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), renotate(v))).collect())
        }
        other => other.clone(),
    }
}

/// Changes the first string, number or flag met depth first (`None`: there is none).
fn change_deepest(value: &AttributeValue) -> Option<AttributeValue> {
    Some(match value {
        AttributeValue::S(s) => AttributeValue::S(format!("{s}x")),
        AttributeValue::N(n) => AttributeValue::N(format!("1{n}")),
        AttributeValue::Bool(b) => AttributeValue::Bool(!b),
        AttributeValue::L(l) => {
            let (i, changed) = l
                .iter()
                .enumerate()
                .find_map(|(i, v)| Some((i, change_deepest(v)?)))?;
            let mut l = l.clone();
            l[i] = changed;
            AttributeValue::L(l)
        }
        AttributeValue::M(m) => {
            let (k, changed) = m
                .iter()
                .find_map(|(k, v)| Some((k.clone(), change_deepest(v)?)))?;
            let mut m = m.clone();
            m.insert(k, changed);
            AttributeValue::M(m)
        }
        _ => return None,
    })
}

const INSERT: &str = include_str!("../../events/insert.json");

/// Every sample event, for byte-level mutations.
const SAMPLES: [&str; 7] = [
    INSERT,
    include_str!("../../events/keys-only.json"),
    include_str!("../../events/malformed.json"),
    include_str!("../../events/mixed-keys.json"),
    include_str!("../../events/modify.json"),
    include_str!("../../events/remove.json"),
    include_str!("../../events/ttl-delete.json"),
];

proptest! {
    #[test]
    fn equality_is_reflexive_and_a_diff_with_itself_is_empty(item in an_item()) {
        prop_assert!(items_equal(&item, &item, &[]));
        prop_assert!(diff_items(&item, &item, &[]).is_empty());
        for value in item.values() {
            prop_assert!(values_equal(value, value));
        }
    }

    #[test]
    fn equality_is_symmetric_and_agrees_with_the_diff(a in an_item(), b in an_item(), pick in 0usize..3) {
        // Unrelated items, an item and a copy with one attribute changed, or with one added.
        let other = match pick {
            0 => b,
            1 => {
                let mut c = a.clone();
                if let (Some(name), Some(value)) = (a.keys().next(), b.values().next()) {
                    c.insert(name.clone(), value.clone());
                }
                c
            }
            _ => {
                let mut c = a.clone();
                c.extend(b);
                c
            }
        };
        let equal = items_equal(&a, &other, &[]);
        prop_assert_eq!(equal, items_equal(&other, &a, &[]));
        prop_assert_eq!(equal, diff_items(&a, &other, &[]).is_empty());
        let diff = diff_items(&a, &other, &[]);
        let back = diff_items(&other, &a, &[]);
        prop_assert_eq!(&diff.only_in_source, &back.only_in_target);
        prop_assert_eq!(&diff.different, &back.different);
    }

    #[test]
    fn the_compact_image_compares_as_the_sdk_items_do(a in an_item(), b in an_item(), pick in 0usize..6, ignore_one in any::<bool>()) {
        // Read as Lambda's records are (DynamoDB JSON to a tape), then walked against the other
        // side's SDK item: it must agree with the SDK-typed comparison, and read back the item.
        let tape = parse_tape(&item_json(&a).expect("known types").to_string()).unwrap();
        prop_assert_eq!(&tape.to_item(), &a);
        prop_assert_eq!(&Tape::from_item(&a).expect("known types"), &tape);
        let mut other = a.clone();
        match pick {
            0 => other = b,
            1 => other.extend(b),
            2 => other = a.iter().map(|(k, v)| (k.clone(), reorder_sets(v))).collect(),
            3 => other = a.iter().map(|(k, v)| (k.clone(), renotate(v))).collect(),
            4 => {
                if let Some((k, changed)) = a.iter().find_map(|(k, v)| Some((k.clone(), change_deepest(v)?))) {
                    other.insert(k, changed);
                }
            }
            _ => {
                if let Some(k) = a.keys().next().cloned() {
                    other.remove(&k);
                }
            }
        }
        let ignore: Vec<String> = if ignore_one { a.keys().take(1).cloned().collect() } else { Vec::new() };
        let equal = items_equal(&a, &other, &ignore);
        prop_assert_eq!(tape.equals(&other, &ignore), equal);
        prop_assert_eq!(tape.equals(&a, &[]), true);
        // The other side's answer as a tape too (attributes in another order, as a HashMap
        // iterates them): tape against tape, and an SDK item against a tape.
        let found = Image::Tape(Tape::from_item(&other).expect("known types"));
        prop_assert_eq!(Image::Tape(tape.clone()).same_as(&found, &ignore), equal);
        prop_assert_eq!(Image::Item(a.clone()).same_as(&found, &ignore), equal);
        prop_assert_eq!(found.same_as(&Image::Tape(tape.clone()), &ignore), equal);
    }

    #[test]
    fn wide_maps_in_another_order_compare_as_the_sdk_items_do(a in prop::collection::hash_map("[a-zA-Z_#.]{1,10}", attribute(), 12..40), b in an_item(), pick in 0usize..3) {
        // Maps wider than the stack's index (16 names) spill to the heap: both must agree.
        let reordered = |item: &Item| -> Item { item.iter().map(|(k, v)| (k.clone(), v.clone())).collect() };
        let mut other = reordered(&a);
        match pick {
            0 => {}
            1 => other.extend(b),
            _ => {
                if let Some((k, changed)) = a.iter().find_map(|(k, v)| Some((k.clone(), change_deepest(v)?))) {
                    other.insert(k, changed);
                }
            }
        }
        let nested = |item: &Item| -> Item { [("m".to_string(), AttributeValue::M(item.clone()))].into() };
        for (x, y) in [(a.clone(), other.clone()), (nested(&a), nested(&other))] {
            let equal = items_equal(&x, &y, &[]);
            let (tx, ty) = (Tape::from_item(&x).expect("known types"), Tape::from_item(&y).expect("known types"));
            prop_assert_eq!(Image::Tape(tx.clone()).same_as(&Image::Tape(ty.clone()), &[]), equal);
            prop_assert_eq!(Image::Tape(ty).same_as(&Image::Tape(tx), &[]), equal);
        }
    }

    #[test]
    fn a_key_taken_from_a_tape_is_the_key_taken_from_the_item(item in an_item(), take in 0usize..4, missing in any::<bool>()) {
        let mut names: Vec<String> = item.keys().take(take).cloned().collect();
        if missing {
            names.push("not-an-attribute".into());
        }
        names.sort();
        let tape = Image::Tape(Tape::from_item(&item).expect("known types"));
        prop_assert_eq!(tape.project(&names), ItemKey::project(&item, &names));
        // The key as an SDK item, as a scanned page's expectations take it.
        let key = tape.key_item(&names);
        prop_assert_eq!(&key, &Image::Item(item.clone()).key_item(&names));
        prop_assert_eq!(key.len(), names.iter().filter(|n| item.contains_key(*n)).count());
    }

    #[test]
    fn numbers_are_equal_across_notations_and_only_then((negative, digits, exponent) in decimal()) {
        let all = notations(negative, &digits, exponent);
        for a in &all {
            for b in &all {
                prop_assert!(numbers_equal(a, b), "{} != {}", a, b);
            }
        }
        // One more in the last significant digit is another number.
        let mut bumped: Vec<u8> = digits.clone().into_bytes();
        let last = bumped.last_mut().unwrap();
        *last = if *last == b'9' { b'8' } else { *last + 1 };
        let other = format!("{}{}E{exponent}", if negative { "-" } else { "" }, String::from_utf8(bumped).unwrap());
        prop_assert!(!numbers_equal(&all[0], &other), "{} == {}", all[0], other);
        // And keys built from either notation are the same key.
        let key = |n: &str| ItemKey::of(&HashMap::from([("id".to_string(), AttributeValue::N(n.to_string()))]));
        prop_assert_eq!(key(&all[0]), key(&all[all.len() - 1]));
    }

    #[test]
    fn sets_are_equal_in_any_order(item in an_item()) {
        let reordered: Item = item.iter().map(|(k, v)| (k.clone(), reorder_sets(v))).collect();
        prop_assert!(items_equal(&item, &reordered, &[]));
    }

    #[test]
    fn dynamodb_json_reads_back_what_it_wrote(item in an_item()) {
        let json = item_json(&item).expect("every generated type is known");
        prop_assert_eq!(parse_item(&json.to_string()).unwrap(), item);
    }

    #[test]
    fn any_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<StreamEvent>(&bytes);
        let _ = StreamEvent::from_slice(&bytes);
        let _ = parse_item(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn every_record_of_any_shape_is_kept_as_a_record_or_a_reason(records in prop::collection::vec(json_value(), 0..8)) {
        let n = records.len();
        let event: StreamEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
        prop_assert_eq!(event.len(), n);
        for m in &event.malformed {
            prop_assert!(!m.reason.is_empty());
        }
    }

    #[test]
    fn a_sample_record_with_a_part_replaced_is_kept(field in prop_oneof![
            Just("/eventName"), Just("/eventID"), Just("/dynamodb"), Just("/dynamodb/Keys"),
            Just("/dynamodb/NewImage"), Just("/dynamodb/SequenceNumber"),
            Just("/dynamodb/StreamViewType"), Just("/dynamodb/ApproximateCreationDateTime"),
            Just("/dynamodb/NewImage/status"), Just("/dynamodb/Keys/orderId"), Just("/userIdentity")],
        replacement in json_value()) {
        let mut event: Value = serde_json::from_str(INSERT).unwrap();
        let record = &mut event["Records"][0];
        let (parent, name) = field.rsplit_once('/').unwrap();
        if let Some(Value::Object(map)) = record.pointer_mut(parent) {
            map.insert(name.to_string(), replacement);
        }
        let parsed: StreamEvent = serde_json::from_value(event).unwrap();
        prop_assert_eq!(parsed.len(), 1);
    }

    #[test]
    fn the_byte_reader_reads_each_event_as_the_serde_reader_does(
        image in an_item(),
        old in proptest::option::of(an_item()),
        pretty in any::<bool>(),
        // "" (twice, so a sixth of the cases): the record as generated, nothing replaced.
        field in prop_oneof![Just(""), Just(""), Just("/eventName"), Just("/eventID"), Just("/dynamodb"),
            Just("/dynamodb/Keys"), Just("/dynamodb/NewImage/status"), Just("/dynamodb/OldImage"),
            Just("/dynamodb/SequenceNumber"), Just("/dynamodb/ApproximateCreationDateTime"),
            Just("/userIdentity"), Just("/userIdentity/type"), Just("/awsRegion")],
        replacement in json_value(),
    ) {
        // A sample record with a generated new image (strings of any characters, so escapes),
        // perhaps an old image, perhaps one part replaced by any JSON at all.
        let mut event: Value = serde_json::from_str(INSERT).unwrap();
        let record = &mut event["Records"][0];
        record["dynamodb"]["NewImage"] = item_json(&image).unwrap();
        if let Some(old) = &old {
            record["dynamodb"]["OldImage"] = item_json(old).unwrap();
            record["eventName"] = json!("MODIFY");
        }
        if let Some((parent, name)) = field.rsplit_once('/') {
            if let Some(Value::Object(map)) = record.pointer_mut(parent) {
                map.insert(name.to_string(), replacement);
            }
        }
        let text = if pretty { serde_json::to_string_pretty(&event) } else { serde_json::to_string(&event) }.unwrap();
        let by_serde: StreamEvent = serde_json::from_str(&text).unwrap();
        let fast = StreamEvent::from_slice_fast(text.as_bytes());
        // The common case must not be declined (or the byte reader would never run).
        if field.is_empty() {
            prop_assert!(fast.is_some(), "declined: {}", text);
        }
        if let Some(fast) = fast {
            prop_assert_eq!(&fast, &by_serde);
        }
        prop_assert_eq!(&StreamEvent::from_slice(text.as_bytes()).unwrap(), &by_serde);
    }

    #[test]
    fn a_sample_event_with_bytes_changed_reads_the_same_either_way(
        sample in 0..SAMPLES.len(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..3),
    ) {
        let mut bytes = SAMPLES[sample].as_bytes().to_vec();
        for (at, byte) in changes {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let by_serde = serde_json::from_slice::<StreamEvent>(&bytes).map_err(|e| e.to_string());
        if let Some(fast) = StreamEvent::from_slice_fast(&bytes) {
            prop_assert_eq!(Some(&fast), by_serde.as_ref().ok(), "serde: {:?}", by_serde.as_ref().err());
        }
        let either = StreamEvent::from_slice(&bytes).map_err(|e| e.to_string());
        prop_assert_eq!(either, by_serde);
    }
}
