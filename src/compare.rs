//! Equality and differences of DynamoDB items, with DynamoDB's own meaning of equal: numbers as
//! decimals (`1.0` = `1`, `1E2` = `100`), sets without order, maps and lists recursively, binary as
//! bytes. A leaf: the item type is defined here, and `record` builds on it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// An item (or a key) as the DynamoDB SDK represents it.
pub type Item = HashMap<String, AttributeValue>;

/// A DynamoDB number in a canonical form: equal numbers have equal forms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CanonicalNumber {
    negative: bool,
    /// Significant digits, without leading or trailing zeros (empty for zero).
    digits: String,
    /// The value is `digits × 10^exponent`.
    exponent: i64,
}

impl CanonicalNumber {
    /// Parses what DynamoDB accepts as a number (`-12.50`, `1E+2`, `.5`); `None` for anything else.
    pub fn parse(text: &str) -> Option<CanonicalNumber> {
        let parts = NumberParts::parse(text)?;
        Some(CanonicalNumber {
            negative: parts.negative,
            digits: format!("{}{}", parts.int, parts.frac),
            exponent: parts.exponent,
        })
    }
}

/// A number's canonical form borrowed from its text: the significant digits are `int` then
/// `frac` (the digits either side of the point, leading and trailing zeros trimmed), and the value
/// is those digits × 10^`exponent`. Comparing these allocates nothing.
struct NumberParts<'a> {
    negative: bool,
    int: &'a str,
    frac: &'a str,
    exponent: i64,
}

impl<'a> NumberParts<'a> {
    fn parse(text: &'a str) -> Option<NumberParts<'a>> {
        let text = text.trim();
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
            None => (unsigned, None),
        };
        let (int, frac) = match mantissa.find('.') {
            Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
            None => (mantissa, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.len() + frac.len() == 0 || !all_digits(int) || !all_digits(frac) {
            return None;
        }
        let mut exponent: i64 = match exponent {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                // DynamoDB's exponents stay within ±130; a longer one is not a DynamoDB number.
                if digits.is_empty() || digits.len() > 9 || !all_digits(digits) {
                    return None;
                }
                e.parse().ok()?
            }
        };
        exponent -= frac.len() as i64;
        // Leading zeros, across the point.
        let mut int = int.trim_start_matches('0');
        let mut frac = if int.is_empty() {
            frac.trim_start_matches('0')
        } else {
            frac
        };
        // Trailing zeros, across the point: each one trimmed moves the exponent up.
        let kept = frac.trim_end_matches('0');
        exponent += (frac.len() - kept.len()) as i64;
        frac = kept;
        if frac.is_empty() {
            let kept = int.trim_end_matches('0');
            exponent += (int.len() - kept.len()) as i64;
            int = kept;
        }
        if int.is_empty() && frac.is_empty() {
            return Some(NumberParts {
                negative: false,
                int: "",
                frac: "",
                exponent: 0,
            });
        }
        Some(NumberParts {
            negative,
            int,
            frac,
            exponent,
        })
    }

    fn same_number(&self, other: &NumberParts) -> bool {
        self.negative == other.negative
            && self.exponent == other.exponent
            && self.int.len() + self.frac.len() == other.int.len() + other.frac.len()
            && self
                .int
                .bytes()
                .chain(self.frac.bytes())
                .eq(other.int.bytes().chain(other.frac.bytes()))
    }
}

/// Numbers compare as decimals; text that is not a number compares as text.
pub fn numbers_equal(a: &str, b: &str) -> bool {
    a == b
        || match (NumberParts::parse(a), NumberParts::parse(b)) {
            (Some(x), Some(y)) => x.same_number(&y),
            _ => false,
        }
}

/// The canonical text of a number (used for hashing and sorting keys); the text itself when it is
/// not a number.
pub fn canonical_number_text(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 4);
    write_canonical_number(text, &mut out);
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

/// [`canonical_number_text`] appended to `out`, without allocating on its own.
pub fn write_canonical_number(text: &str, out: &mut Vec<u8>) {
    match NumberParts::parse(text) {
        Some(n) if n.int.is_empty() && n.frac.is_empty() => out.push(b'0'),
        Some(n) => {
            if n.negative {
                out.push(b'-');
            }
            out.extend_from_slice(n.int.as_bytes());
            out.extend_from_slice(n.frac.as_bytes());
            out.push(b'e');
            push_decimal(n.exponent, out);
        }
        None => out.extend_from_slice(text.as_bytes()),
    }
}

/// `n` in decimal, as `{}` formats it (without the formatting machinery: keys are canonicalised for
/// every record).
fn push_decimal(n: i64, out: &mut Vec<u8>) {
    if n < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Set equality without order. Sets are usually written and read back in the same order, so that
/// case costs one pass and no allocation.
fn same_set<'a, T: PartialEq, K: Ord>(x: &'a [T], y: &'a [T], key: impl Fn(&'a T) -> K) -> bool {
    if x.len() != y.len() {
        return false;
    }
    if x == y {
        return true;
    }
    let sorted = |v: &'a [T]| {
        let mut keys: Vec<K> = v.iter().map(&key).collect();
        keys.sort_unstable();
        keys
    };
    sorted(x) == sorted(y)
}

/// Equality of two attribute values as DynamoDB means it.
pub fn values_equal(a: &AttributeValue, b: &AttributeValue) -> bool {
    use AttributeValue as V;
    match (a, b) {
        (V::S(x), V::S(y)) => x == y,
        (V::N(x), V::N(y)) => numbers_equal(x, y),
        (V::B(x), V::B(y)) => x.as_ref() == y.as_ref(),
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Null(_), V::Null(_)) => true,
        (V::Ss(x), V::Ss(y)) => same_set(x, y, |s| s.as_str()),
        (V::Ns(x), V::Ns(y)) => {
            same_set(x, y, |n| n.as_str()) || same_set(x, y, |n| canonical_number_text(n))
        }
        (V::Bs(x), V::Bs(y)) => same_set(x, y, |b| b.as_ref()),
        (V::L(x), V::L(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (V::M(x), V::M(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        // Different types, or a type this SDK version does not know: never equal.
        _ => false,
    }
}

/// An item's size as DynamoDB counts it for capacity, close enough to estimate write units: names
/// and string bytes, about a byte per two digits of a number, 3 bytes per list or map plus a
/// byte per element.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, v)| name.len() + value_size(v))
        .sum()
}

fn value_size(v: &AttributeValue) -> usize {
    use AttributeValue as V;
    let number = |n: &str| n.len().div_ceil(2) + 1;
    match v {
        V::S(s) => s.len(),
        V::N(n) => number(n),
        V::B(b) => b.as_ref().len(),
        V::Bool(_) | V::Null(_) => 1,
        V::Ss(set) => set.iter().map(String::len).sum(),
        V::Ns(set) => set.iter().map(|n| number(n)).sum(),
        V::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        V::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        V::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// Where two items differ, by attribute path (`a`, `a.b` inside maps). Paths are sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// In the expected item (the source's change) but not on the other side.
    pub only_in_source: Vec<String>,
    /// On the other side but not in the expected item.
    pub only_in_target: Vec<String>,
    /// On both sides with different values (or types).
    pub different: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.only_in_source.is_empty()
            && self.only_in_target.is_empty()
            && self.different.is_empty()
    }

    /// Every path in the diff, for a one-line log field.
    pub fn attribute_names(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .only_in_source
            .iter()
            .chain(&self.only_in_target)
            .chain(&self.different)
            .map(String::as_str)
            .collect();
        all.sort_unstable();
        all
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.only_in_source.is_empty() {
            parts.push(format!(
                "only in source: {}",
                self.only_in_source.join(", ")
            ));
        }
        if !self.only_in_target.is_empty() {
            parts.push(format!(
                "only in target: {}",
                self.only_in_target.join(", ")
            ));
        }
        if !self.different.is_empty() {
            parts.push(format!("different: {}", self.different.join(", ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// Differences between the item the source says should exist and the one found, skipping the
/// top-level attributes in `ignore`.
pub fn diff_items(expected: &Item, actual: &Item, ignore: &[String]) -> Diff {
    let mut diff = Diff::default();
    let ignored = |name: &str| ignore.iter().any(|i| i == name);
    diff_maps(expected, actual, "", &ignored, &mut diff);
    diff.only_in_source.sort();
    diff.only_in_target.sort();
    diff.different.sort();
    diff
}

/// Whether two items are equal, skipping the top-level attributes in `ignore`.
pub fn items_equal(expected: &Item, actual: &Item, ignore: &[String]) -> bool {
    let ignored = |name: &String| ignore.contains(name);
    expected
        .iter()
        .filter(|(k, _)| !ignored(k))
        .all(|(k, v)| actual.get(k).is_some_and(|w| values_equal(v, w)))
        && actual
            .keys()
            .filter(|k| !ignored(k))
            .all(|k| expected.contains_key(k))
}

fn diff_maps(
    expected: &Item,
    actual: &Item,
    prefix: &str,
    ignored: &dyn Fn(&str) -> bool,
    diff: &mut Diff,
) {
    let path = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    for (name, value) in expected {
        if prefix.is_empty() && ignored(name) {
            continue;
        }
        match actual.get(name) {
            None => diff.only_in_source.push(path(name)),
            Some(other) if values_equal(value, other) => {}
            Some(other) => match (value, other) {
                // Name the differing attribute inside a map rather than the whole map.
                (AttributeValue::M(a), AttributeValue::M(b)) => {
                    diff_maps(a, b, &path(name), &|_| false, diff)
                }
                _ => diff.different.push(path(name)),
            },
        }
    }
    for name in actual.keys() {
        let skipped = prefix.is_empty() && ignored(name);
        if !skipped && !expected.contains_key(name) {
            diff.only_in_target.push(path(name));
        }
    }
}

/// The path of the first attribute whose type this SDK version does not know (`AttributeValue::
/// Unknown`, nested in maps and lists too): such an item can be neither equal nor different.
pub fn unknown_attribute(item: &Item) -> Option<String> {
    fn has(value: &AttributeValue) -> bool {
        match value {
            AttributeValue::M(m) => m.values().any(has),
            AttributeValue::L(l) => l.iter().any(has),
            other => other.is_unknown(),
        }
    }
    // The path is built only on the rare way out: this runs on every item read.
    fn path(value: &AttributeValue, at: String) -> String {
        match value {
            AttributeValue::M(m) => match m.iter().find(|(_, v)| has(v)) {
                Some((k, v)) => path(v, format!("{at}.{k}")),
                None => at,
            },
            AttributeValue::L(l) => match l.iter().position(has) {
                Some(i) => path(&l[i], format!("{at}[{i}]")),
                None => at,
            },
            _ => at,
        }
    }
    let (name, value) = item.iter().find(|(_, v)| has(v))?;
    Some(path(value, name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use AttributeValue as V;

    fn n(s: &str) -> V {
        V::N(s.to_string())
    }
    fn s(x: &str) -> V {
        V::S(x.to_string())
    }
    fn item(pairs: &[(&str, V)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn exponents_are_written_as_format_writes_them() {
        for e in [0, 1, -1, 9, 10, -10, 125, -130, 99_999, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            push_decimal(e, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), e.to_string());
        }
    }

    #[test]
    fn numbers_are_equal_across_notations() {
        for (a, b) in [
            ("1", "1.0"),
            ("1E2", "100"),
            ("1e+2", "100.000"),
            ("0.5", ".5"),
            ("-0", "0"),
            ("0.000", "0E10"),
            ("123.4500", "1.2345E2"),
            ("-1.5e-3", "-0.0015"),
            ("+7", "7"),
            ("00012", "12"),
            (
                "12345678901234567890123456789012345678",
                "1.2345678901234567890123456789012345678E37",
            ),
        ] {
            assert!(numbers_equal(a, b), "{a} = {b}");
            assert_eq!(
                canonical_number_text(a),
                canonical_number_text(b),
                "{a} ~ {b}"
            );
        }
        for (a, b) in [
            ("1", "-1"),
            ("1", "10"),
            ("0.1", "0.01"),
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345679",
            ),
            ("1e2", "1e3"),
        ] {
            assert!(!numbers_equal(a, b), "{a} != {b}");
        }
    }

    #[test]
    fn malformed_numbers_are_rejected_not_misread() {
        for bad in [
            "",
            "-",
            "1.2.3",
            "1e",
            "e5",
            "abc",
            "1e9999999999",
            "1,5",
            "0x10",
        ] {
            assert_eq!(CanonicalNumber::parse(bad), None, "{bad}");
        }
        assert!(numbers_equal("abc", "abc"));
        assert!(!numbers_equal("abc", "abd"));
    }

    #[test]
    fn sets_compare_without_order() {
        let a = V::Ss(vec!["x".into(), "y".into()]);
        let b = V::Ss(vec!["y".into(), "x".into()]);
        assert!(values_equal(&a, &b));
        assert!(values_equal(
            &V::Ns(vec!["1".into(), "2.50".into()]),
            &V::Ns(vec!["2.5".into(), "1.0".into()])
        ));
        assert!(!values_equal(
            &V::Ns(vec!["1".into(), "2".into()]),
            &V::Ns(vec!["1".into(), "3".into()])
        ));
        assert!(values_equal(
            &V::Bs(vec![Blob::new(vec![1]), Blob::new(vec![2, 3])]),
            &V::Bs(vec![Blob::new(vec![2, 3]), Blob::new(vec![1])])
        ));
        assert!(!values_equal(&a, &V::Ss(vec!["x".into()])));
    }

    #[test]
    fn lists_keep_order_and_maps_recurse() {
        let l1 = V::L(vec![n("1"), s("a")]);
        let l2 = V::L(vec![n("1.0"), s("a")]);
        let l3 = V::L(vec![s("a"), n("1")]);
        assert!(values_equal(&l1, &l2));
        assert!(!values_equal(&l1, &l3));
        let m1 = V::M(item(&[
            ("a", n("1")),
            ("b", V::M(item(&[("c", l1.clone())]))),
        ]));
        let m2 = V::M(item(&[("b", V::M(item(&[("c", l2)]))), ("a", n("1.00"))]));
        let m3 = V::M(item(&[("b", V::M(item(&[("c", l3)]))), ("a", n("1.00"))]));
        assert!(values_equal(&m1, &m2));
        assert!(!values_equal(&m1, &m3));
    }

    #[test]
    fn types_must_match() {
        assert!(!values_equal(&n("1"), &s("1")));
        assert!(!values_equal(&V::B(Blob::new(b"1".to_vec())), &s("1")));
        assert!(values_equal(&V::Null(true), &V::Null(true)));
        assert!(!values_equal(&V::Bool(true), &V::Bool(false)));
    }

    #[test]
    fn diff_names_each_side_and_nested_paths() {
        let expected = item(&[
            ("pk", s("k")),
            ("gone", s("x")),
            ("same", n("1")),
            ("changed", n("2")),
            ("addr", V::M(item(&[("city", s("Oslo")), ("zip", s("1"))]))),
            ("migrated_at", n("5")),
        ]);
        let actual = item(&[
            ("pk", s("k")),
            ("same", n("1.0")),
            ("changed", n("3")),
            ("extra", V::Bool(true)),
            (
                "addr",
                V::M(item(&[("city", s("Bergen")), ("zip", s("1"))])),
            ),
            ("migrated_at", n("6")),
        ]);
        let ignore = vec!["migrated_at".to_string()];
        let d = diff_items(&expected, &actual, &ignore);
        assert_eq!(d.only_in_source, vec!["gone"]);
        assert_eq!(d.only_in_target, vec!["extra"]);
        assert_eq!(d.different, vec!["addr.city", "changed"]);
        assert_eq!(
            d.to_string(),
            "only in source: gone; only in target: extra; different: addr.city, changed"
        );
        assert!(!items_equal(&expected, &actual, &ignore));

        let d = diff_items(&expected, &expected, &[]);
        assert!(d.is_empty());
        // Ignored attributes are skipped on both sides.
        let mut a2 = expected.clone();
        a2.insert("migrated_at".into(), s("other"));
        a2.insert("only_marker".into(), s("z"));
        let ignore = vec!["migrated_at".to_string(), "only_marker".to_string()];
        assert!(items_equal(&expected, &a2, &ignore));
        assert!(diff_items(&expected, &a2, &ignore).is_empty());
    }
}
