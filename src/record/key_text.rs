//! The key text: how `ddb-verify findings` shows a key, what the findings table keeps beside it
//! (`keyText`), and what `ddb-verify accept` reads back. [`KeyText`] prints it, [`KeyText::parse`]
//! reads it (and the older form, below); [`legacy_text`] prints the older form, which logs show
//! and finding ids are made of.
//!
//! # The form
//!
//! ```text
//! customerId=S:"customer#1", orderId=N:7, blob=B:AAE=, "order id"=S:"a \"quoted\" \\ word"
//! ```
//!
//! - The attributes in the byte order of their names, separated by `, ` (a comma and a space).
//! - Each is `name=T:value`, `T` the attribute's type:
//!   - `S:"text"`: a string, in double quotes, escaped as below;
//!   - `N:-1.5E-3`: a number, its text as DynamoDB holds it, not quoted;
//!   - `B:AAE=`: a binary, in standard base64 with padding;
//!   - any other type (never in a key) prints as `<M>`, `<BOOL>`, ..., which does not parse.
//! - A name made only of ASCII letters, digits, `_`, `-` and `.` is written bare; any other name is
//!   quoted and escaped as a string is (`"order id"=N:7`).
//!
//! Escaping inside quotes is a fixed set, not Unicode tables that change between releases, so the
//! text of a key is the same in every version:
//! - `"` is `\"`, `\` is `\\`;
//! - line feed, carriage return and tab are `\n`, `\r`, `\t`;
//! - the other control characters (U+0000 to U+001F, U+007F to U+009F), the line and paragraph
//!   separators (U+2028, U+2029), the bidirectional-text controls (U+200E, U+200F, U+202A to
//!   U+202E, U+2066 to U+2069) and U+FEFF are `\u{hex}`, lower-case hex without leading zeros
//!   (`\u{0}`, `\u{202e}`): they would break the line, or hide or reorder text on a terminal;
//! - every other character, commas, `=`, spaces and all other Unicode included, is as it is.
//!
//! The parser takes those escapes, `\u{...}` for any character (1 to 6 hex digits), `\0` and `\'`
//! (Rust's, which the older form below may hold), any other character unescaped but `"` and `\`,
//! and any whitespace around the commas and the key. The key it
//! reads then passes the checks a stream record's key passes ([`check_key_attribute`] for each
//! attribute, [`check_key`] for the whole: S, N or B, no empty string or binary, a DynamoDB number,
//! one or two attributes). Its errors ([`KeyTextError`]) say at which character of the text given
//! (1-based) and, where there is one, which attribute.
//!
//! # The older form, and what stays compatible
//!
//! Versions before this module showed a key in Rust's `{:?}` escaping, attributes separated by
//! spaces: `blob=b64:AAE= customerId="customer#1" orderId=7` ([`legacy_text`]). That form stays:
//! - in finding ids (`finding#<table>#<text>`, `ports::findings::canonical_key`): the id is the
//!   findings table's partition key, so a new text would orphan every stored finding (no accept, no
//!   resolution). [`legacy_text`] is frozen for that. (Rust's `{:?}` escapes a few rare characters
//!   by its Unicode tables, which a toolchain update can change; that was so before, and is not
//!   changed here.)
//! - in logs and the verifiers' reports (`record::describe_key`);
//! - in `keyText` of findings written by older versions.
//!
//! Hence the decision: [`KeyText::parse`] also reads the older form (a text whose first value does
//! not start with a type, `S:`, `N:` or `B:`), with the same checks at the end, so a key copied from
//! an older `findings`, a log line or a script is still accepted. `findings` does not show a stored
//! `keyText`: the store prints each finding's text from its stored key map (`key`), so findings
//! written earlier show in this form too. And `accept` finds a finding by the id made from the key
//! it parsed, never by its text: either form of a key, or its DynamoDB JSON, finds the same finding.

use std::fmt::{self, Write as _};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{check_key, check_key_attribute, type_name, Item};

/// A key in the key text form (see the module's documentation): `Display` prints it.
#[derive(Debug, Clone, Copy)]
pub struct KeyText<'a>(pub &'a Item);

/// Why a text is not a key: where (the 1-based character of the text given), for which attribute
/// when known, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTextError {
    pub position: usize,
    pub attribute: Option<String>,
    pub problem: String,
}

impl fmt::Display for KeyTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.position, self.problem)
    }
}

impl std::error::Error for KeyTextError {}

impl fmt::Display for KeyText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        for (i, name) in names.into_iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if is_bare_name(name) {
                f.write_str(name)?;
            } else {
                write_quoted(f, name)?;
            }
            f.write_char('=')?;
            match &self.0[name] {
                AttributeValue::S(s) => {
                    f.write_str("S:")?;
                    write_quoted(f, s)?;
                }
                AttributeValue::N(n) => write!(f, "N:{n}")?,
                AttributeValue::B(b) => {
                    write!(f, "B:{}", aws_smithy_types::base64::encode(b.as_ref()))?
                }
                other => write!(f, "<{}>", type_name(other))?,
            }
        }
        Ok(())
    }
}

impl KeyText<'_> {
    /// Reads a key from its key text, or from the older form (see the module's documentation),
    /// and checks it as a stream record's key is checked.
    pub fn parse(text: &str) -> Result<Item, KeyTextError> {
        let mut parser = Parser { text, at: 0 };
        parser.skip_space();
        if parser.rest().is_empty() {
            return Err(parser.error(0, None, "it is empty"));
        }
        if is_legacy(parser.rest()) {
            parser.legacy_key()
        } else {
            parser.key()
        }
    }
}

/// The older form: `name="text"` (Rust's `{:?}`), `name=7`, `name=b64:...`, in name order,
/// separated by spaces; another type as `name=<M>`. Frozen: finding ids are made of it.
pub fn legacy_text(keys: &Item) -> String {
    let mut names: Vec<&String> = keys.keys().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = match &keys[name] {
            AttributeValue::S(s) => write!(out, "{name}={s:?}"),
            AttributeValue::N(n) => write!(out, "{name}={n}"),
            AttributeValue::B(b) => {
                write!(out, "{name}=b64:{}", aws_smithy_types::base64::encode(b))
            }
            other => write!(out, "{name}=<{}>", type_name(other)),
        };
    }
    out
}

fn is_bare_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_bare_char)
}

fn is_bare_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// The characters written as `\u{hex}` (see the module's documentation).
fn is_escaped_as_code(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{200e}' | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}')
}

fn write_quoted(f: &mut impl fmt::Write, text: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if is_escaped_as_code(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Whether a key text (its leading whitespace skipped) is in the older form: its first value does
/// not start with a type. A quoted first name is only in the current form.
fn is_legacy(text: &str) -> bool {
    if text.starts_with('"') {
        return false;
    }
    match text.find('=') {
        Some(eq) => {
            let value = &text[eq + 1..];
            !["S:", "N:", "B:"].iter().any(|t| value.starts_with(t))
        }
        None => true,
    }
}

/// A reader over the text given: `at` is a byte offset into it.
struct Parser<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Parser<'t> {
    fn rest(&self) -> &'t str {
        &self.text[self.at..]
    }

    fn error(
        &self,
        at: usize,
        attribute: Option<&str>,
        problem: impl Into<String>,
    ) -> KeyTextError {
        KeyTextError {
            position: self.text[..at].chars().count() + 1,
            attribute: attribute.map(str::to_string),
            problem: problem.into(),
        }
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, what: &str) -> bool {
        let found = self.rest().starts_with(what);
        if found {
            self.at += what.len();
        }
        found
    }

    /// Up to the next comma or whitespace, or the end.
    fn word(&mut self) -> &'t str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    /// The current form: `name=T:value` pairs separated by commas.
    fn key(mut self) -> Result<Item, KeyTextError> {
        let mut item = Item::new();
        let mut starts = Vec::new();
        loop {
            let start = self.at;
            let (name, value) = self.attribute()?;
            if item.contains_key(&name) {
                let problem = format!("attribute {name} is given twice");
                return Err(self.error(start, Some(&name), problem));
            }
            starts.push(start);
            self.skip_space();
            if self.rest().is_empty() {
                item.insert(name, value);
                return self.checked(item, &starts);
            }
            if !self.eat(",") {
                let problem = format!(
                    "after attribute {name}'s value: expected `,` and the next attribute, or the end"
                );
                return Err(self.error(self.at, Some(&name), problem));
            }
            item.insert(name, value);
            self.skip_space();
            if self.rest().is_empty() {
                return Err(self.error(self.at, None, "no attribute after the last `,`"));
            }
        }
    }

    fn attribute(&mut self) -> Result<(String, AttributeValue), KeyTextError> {
        let start = self.at;
        let name = if self.eat("\"") {
            self.quoted(None)?
        } else {
            let len = self
                .rest()
                .find(|c: char| !is_bare_char(c))
                .unwrap_or(self.rest().len());
            self.at += len;
            self.text[start..self.at].to_string()
        };
        if name.is_empty() {
            return Err(self.error(start, None, "expected an attribute name"));
        }
        if !self.eat("=") {
            let problem = format!(
                "expected `=` after attribute name {name:?} (a name of other characters than \
                 ASCII letters, digits, `_`, `-` and `.` is quoted)"
            );
            return Err(self.error(self.at, Some(&name), problem));
        }
        let value_at = self.at;
        let value = if self.eat("S:") {
            if !self.eat("\"") {
                let problem = format!("attribute {name}: S: must be followed by a quoted string");
                return Err(self.error(self.at, Some(&name), problem));
            }
            AttributeValue::S(self.quoted(Some(&name))?)
        } else if self.eat("N:") {
            AttributeValue::N(self.word().to_string())
        } else if self.eat("B:") {
            let word = self.word();
            let bytes = aws_smithy_types::base64::decode(word).map_err(|e| {
                let problem = format!("attribute {name}: B:{word} is not base64 ({e})");
                self.error(value_at, Some(&name), problem)
            })?;
            AttributeValue::B(Blob::new(bytes))
        } else {
            let problem = format!("attribute {name}: expected its type, S:, N: or B:, after `=`");
            return Err(self.error(value_at, Some(&name), problem));
        };
        check_key_attribute(&name, &value).map_err(|why| self.error(value_at, Some(&name), why))?;
        Ok((name, value))
    }

    /// A quoted string after its opening quote, up to and past its closing quote.
    fn quoted(&mut self, attribute: Option<&str>) -> Result<String, KeyTextError> {
        let what = match attribute {
            Some(name) => format!("attribute {name}: "),
            None => "a quoted name: ".into(),
        };
        let opened = self.at - 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        let base = self.at;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at = base + i + 1;
                    return Ok(out);
                }
                '\\' => {
                    let escape =
                        |problem: String| self.error(base + i, attribute, what.clone() + &problem);
                    let Some((_, e)) = chars.next() else {
                        return Err(escape("a `\\` at the end".into()));
                    };
                    out.push(match e {
                        '"' | '\\' | '\'' => e,
                        '0' => '\0',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'u' => {
                            let code = chars.as_str();
                            let hex = code
                                .strip_prefix('{')
                                .and_then(|c| c.split_once('}'))
                                .map(|(hex, _)| hex)
                                .filter(|h| (1..=6).contains(&h.len()))
                                .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
                                .ok_or_else(|| {
                                    escape("\\u must be followed by 1 to 6 hex digits in {}".into())
                                })?;
                            let c = u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| {
                                    escape(format!("\\u{{{hex}}} is not a character"))
                                })?;
                            for _ in 0..hex.len() + 2 {
                                chars.next();
                            }
                            c
                        }
                        other => return Err(escape(format!("\\{other} is not an escape"))),
                    });
                }
                c => out.push(c),
            }
        }
        Err(self.error(opened, attribute, what + "the string has no closing quote"))
    }

    /// The key as a whole passes the key checks ([`check_key`]); its attributes passed theirs.
    fn checked(&self, item: Item, starts: &[usize]) -> Result<Item, KeyTextError> {
        check_key(&item).map_err(|why| {
            // Only the count is left to fail: point at the first attribute too many.
            let at = starts.get(2).copied().unwrap_or(0);
            self.error(at, None, why)
        })?;
        Ok(item)
    }

    /// The older form: `name="text"` in Rust's `{:?}` escaping, `name=7`, `name=b64:...`,
    /// separated by whitespace.
    fn legacy_key(mut self) -> Result<Item, KeyTextError> {
        let mut item = Item::new();
        let mut starts = Vec::new();
        while !self.rest().is_empty() {
            let start = self.at;
            let rest = self.rest();
            let Some(eq) = rest.find('=') else {
                return Err(self.error(start, None, format!("{rest:?} has no `=`")));
            };
            let name = &rest[..eq];
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(self.error(start, None, format!("{name:?} is not an attribute name")));
            }
            self.at += eq + 1;
            let value_at = self.at;
            let value = if self.eat("\"") {
                AttributeValue::S(self.quoted(Some(name))?)
            } else {
                let word = self.rest();
                let word = &word[..word.find(char::is_whitespace).unwrap_or(word.len())];
                self.at += word.len();
                if let Some(b64) = word.strip_prefix("b64:") {
                    let bytes = aws_smithy_types::base64::decode(b64).map_err(|e| {
                        let problem = format!("attribute {name}: b64:{b64} is not base64 ({e})");
                        self.error(value_at, Some(name), problem)
                    })?;
                    AttributeValue::B(Blob::new(bytes))
                } else {
                    let number = AttributeValue::N(word.to_string());
                    if check_key_attribute(name, &number).is_err() {
                        let problem = format!(
                            "attribute {name}: {word:?} is neither a quoted string, a number nor \
                             b64:... (as older versions showed keys), nor a typed value such as \
                             S:\"text\", N:7 or B:AAE="
                        );
                        return Err(self.error(value_at, Some(name), problem));
                    }
                    number
                }
            };
            if !(self.rest().is_empty() || self.rest().starts_with(char::is_whitespace)) {
                let problem = format!("attribute {name}: a space must follow its value");
                return Err(self.error(self.at, Some(name), problem));
            }
            check_key_attribute(name, &value)
                .map_err(|why| self.error(value_at, Some(name), why))?;
            if item.insert(name.to_string(), value).is_some() {
                let problem = format!("attribute {name} is given twice");
                return Err(self.error(start, Some(name), problem));
            }
            starts.push(start);
            self.skip_space();
        }
        self.checked(item, &starts)
    }
}

/// Keys that exercise the text forms (quotes, backslashes, control characters, commas and `=` in
/// values, unicode, binary, a 38-digit number), for the tests here and the CLI's.
#[cfg(test)]
pub(crate) fn sample_keys() -> Vec<Item> {
    let s = |v: &str| AttributeValue::S(v.into());
    let n = |v: &str| AttributeValue::N(v.into());
    let key = |attributes: &[(&str, AttributeValue)]| -> Item {
        attributes
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect()
    };
    vec![
        key(&[("customerId", s("customer#1")), ("orderId", n("7"))]),
        key(&[("pk", s("with \"quotes\" and \\ and\nnew line\t tab = x, y"))]),
        key(&[
            ("pk", s("ünïcødé ✓ 😀 \u{1} \u{301}e")),
            ("sk", n("-1.5E-3")),
        ]),
        key(&[("id", AttributeValue::B(Blob::new(vec![0u8, 1, 254, 255])))]),
        key(&[("id", n("12345678901234567890123456789012345678"))]),
        key(&[("pk", s("a")), ("sk", s("a b=c d"))]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::item as key;
    use proptest::prelude::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.into())
    }

    fn b(v: &[u8]) -> AttributeValue {
        AttributeValue::B(Blob::new(v.to_vec()))
    }

    fn text(k: &Item) -> String {
        KeyText(k).to_string()
    }

    #[test]
    fn a_key_prints_typed_in_name_order() {
        let k = key(&[("orderId", n("7")), ("customerId", s("customer#1"))]);
        assert_eq!(text(&k), r#"customerId=S:"customer#1", orderId=N:7"#);
        let k = key(&[("blob", b(&[0, 1])), ("n", n("-1.5E-3"))]);
        assert_eq!(text(&k), "blob=B:AAE=, n=N:-1.5E-3");
    }

    #[test]
    fn strings_and_odd_names_are_quoted_and_escaped() {
        let k = key(&[("pk", s("a \"b\" \\ c, d=e\nf\rg\th"))]);
        assert_eq!(text(&k), r#"pk=S:"a \"b\" \\ c, d=e\nf\rg\th""#);
        let k = key(&[("pk", s("\u{0}\u{1f}\u{7f}\u{85}\u{2028}\u{202e}\u{feff}"))]);
        assert_eq!(
            text(&k),
            r#"pk=S:"\u{0}\u{1f}\u{7f}\u{85}\u{2028}\u{202e}\u{feff}""#
        );
        // Every other character as it is: accents, combining marks, emoji, joiners.
        let k = key(&[("pk", s("ünï 😀 e\u{301} 👨\u{200d}👩"))]);
        assert_eq!(text(&k), "pk=S:\"ünï 😀 e\u{301} 👨\u{200d}👩\"");
        let k = key(&[
            ("order id", n("1")),
            ("a=b", s("x")),
            ("ok_name-1.x", n("2")),
        ]);
        assert_eq!(text(&k), r#""a=b"=S:"x", ok_name-1.x=N:2, "order id"=N:1"#);
        let k = key(&[("m", AttributeValue::Bool(true))]);
        assert_eq!(text(&k), "m=<BOOL>");
    }

    #[test]
    fn a_printed_key_parses_back() {
        let mut keys = sample_keys();
        keys.push(key(&[("\"odd\" name", s("a")), ("sk", s("a b=c d"))]));
        for k in keys {
            let t = text(&k);
            assert_eq!(KeyText::parse(&t).as_ref(), Ok(&k), "{t}");
            assert_eq!(KeyText::parse(&format!(" \n {t}  ")).as_ref(), Ok(&k));
        }
        // Any whitespace around the commas, any escape for any character.
        let k = KeyText::parse("a=S:\"\\u{41}\\u{1F600}\" ,b=N:1").unwrap();
        assert_eq!(k, key(&[("a", s("A😀")), ("b", n("1"))]));
    }

    #[test]
    fn the_older_form_parses_too() {
        let keys = sample_keys();
        for k in keys {
            let t = legacy_text(&k);
            assert_eq!(KeyText::parse(&t).as_ref(), Ok(&k), "{t}");
        }
        assert_eq!(
            legacy_text(&key(&[
                ("b", b(&[0, 1])),
                ("n", n("5")),
                ("pk", s("user#1"))
            ])),
            "b=b64:AAE= n=5 pk=\"user#1\""
        );
        // Frozen: finding ids are made of it.
        assert_eq!(
            legacy_text(&key(&[("pk", s("a\"b\\c\nd\te\u{1}é😀, x=y"))])),
            r#"pk="a\"b\\c\nd\te\u{1}é😀, x=y""#
        );
    }

    #[test]
    fn errors_name_the_attribute_and_the_position() {
        let err = |t: &str| KeyText::parse(t).unwrap_err();
        for (t, position, attribute, why) in [
            ("", 1, None, "it is empty"),
            ("   ", 1, None, "it is empty"),
            (
                "pk=S:x",
                6,
                Some("pk"),
                "S: must be followed by a quoted string",
            ),
            (
                "pk=S:\"x",
                6,
                Some("pk"),
                "attribute pk: the string has no closing quote",
            ),
            ("pk=S:\"a\\qb\"", 8, Some("pk"), "\\q is not an escape"),
            (
                "pk=S:\"\\u{d800}\"",
                7,
                Some("pk"),
                "\\u{d800} is not a character",
            ),
            ("pk=S:\"\\u{}\"", 7, Some("pk"), "1 to 6 hex digits"),
            (
                "pk=S:\"a\", sk=N:12x",
                14,
                Some("sk"),
                "key attribute \"sk\" is not a DynamoDB number",
            ),
            (
                "pk=S:\"\"",
                4,
                Some("pk"),
                "key attribute \"pk\" is an empty string",
            ),
            ("pk=B:!!", 4, Some("pk"), "B:!! is not base64"),
            (
                "pk=B:",
                4,
                Some("pk"),
                "key attribute \"pk\" is an empty binary",
            ),
            (
                "pk=S:\"a\" sk=N:1",
                10,
                Some("pk"),
                "expected `,` and the next attribute",
            ),
            (
                "pk=S:\"a\", pk=N:1",
                11,
                Some("pk"),
                "attribute pk is given twice",
            ),
            ("pk=S:\"a\",", 10, None, "no attribute after the last `,`"),
            (
                "pk=S:\"a\", sk=X:1",
                14,
                Some("sk"),
                "expected its type, S:, N: or B:",
            ),
            (
                "pk=S:\"a\", my key=S:\"b\"",
                13,
                Some("my"),
                "expected `=` after attribute name \"my\"",
            ),
            ("\"\"=S:\"a\"", 1, None, "expected an attribute name"),
            (
                "a=S:\"1\", b=S:\"2\", c=S:\"3\"",
                19,
                None,
                "has 3 attributes",
            ),
            (
                "pk=S:\"ü\", sk=N:x",
                14,
                Some("sk"),
                "is not a DynamoDB number",
            ),
            // The older form's errors.
            ("customerId", 1, None, "has no `=`"),
            (
                "customerId=customer#1",
                12,
                Some("customerId"),
                "neither a quoted string",
            ),
            ("a=\"x\"b=1", 6, Some("a"), "a space must follow"),
            ("a=1 a=2", 5, Some("a"), "attribute a is given twice"),
            ("a=b64:!!", 3, Some("a"), "not base64"),
            ("a=\"\" b=1", 3, Some("a"), "is an empty string"),
            ("a=1 b=2 c=3", 9, None, "has 3 attributes"),
        ] {
            let e = err(t);
            assert!(e.problem.contains(why), "{t}: {e}");
            assert_eq!(e.position, position, "{t}: {e}");
            assert_eq!(e.attribute.as_deref(), attribute, "{t}: {e}");
            assert!(e
                .to_string()
                .starts_with(&format!("at character {position}: ")));
        }
    }

    /// A character, often one the form escapes or separates by.
    fn character() -> impl Strategy<Value = char> {
        prop_oneof![
            any::<char>(),
            prop::sample::select(vec![
                '"', '\\', ',', '=', ' ', '\n', '\r', '\t', '\u{0}', '\u{7f}', '\u{85}',
                '\u{2028}', '\u{202e}', '\u{feff}', '\u{301}', 'é', '😀', ':', '{', '}', 'u',
            ]),
        ]
    }

    fn text_of(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        prop::collection::vec(character(), len).prop_map(String::from_iter)
    }

    /// A valid key attribute value: S, N in several notations, or B.
    fn key_value() -> impl Strategy<Value = AttributeValue> {
        prop_oneof![
            text_of(1..24).prop_map(AttributeValue::S),
            (any::<bool>(), "[1-9][0-9]{0,20}", -30i32..30, 0usize..3).prop_map(
                |(negative, digits, exponent, notation)| {
                    let sign = if negative { "-" } else { "" };
                    AttributeValue::N(match notation {
                        0 => format!("{sign}{digits}"),
                        1 => format!("{sign}{digits}E{exponent}"),
                        _ => format!("{sign}0.{digits}e{exponent:+}"),
                    })
                }
            ),
            prop::collection::vec(any::<u8>(), 1..32)
                .prop_map(|bytes| AttributeValue::B(Blob::new(bytes))),
        ]
    }

    /// A key of one or two attributes with any names.
    fn any_key(name: BoxedStrategy<String>) -> impl Strategy<Value = Item> {
        prop::collection::hash_map(name, key_value(), 1..=2)
    }

    proptest! {
        #[test]
        fn print_then_parse_gives_the_same_key(k in any_key(text_of(1..12).boxed())) {
            let t = text(&k);
            prop_assert_eq!(KeyText::parse(&t), Ok(k), "{}", t);
        }

        #[test]
        fn the_older_form_parses_to_the_same_key(
            k in any_key("[A-Za-z0-9_#.:-]{1,12}".boxed())
        ) {
            let t = legacy_text(&k);
            prop_assert_eq!(KeyText::parse(&t), Ok(k), "{}", t);
        }

        #[test]
        fn no_text_makes_the_parser_panic(t in text_of(0..40)) {
            let _ = KeyText::parse(&t);
        }
    }
}
