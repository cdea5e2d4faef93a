//! The common case of an event read straight from its bytes, without serde.
//!
//! The serde reader (the parent module) visits every token through serde's visitor calls, which
//! costs about three times a pass of serde_json that builds nothing (BENCHMARKS.md). Events as
//! Lambda sends them are regular: objects of known fields, DynamoDB JSON values of one type each,
//! strings without escapes. This reader handles exactly that, writing the same tapes and the same
//! record fields through the same checks ([`finish`]), and gives up (`None`) on anything else: a
//! record with a problem, a number field that is not an integer, JSON nested deeper than it
//! allows, text that is not JSON. The caller then reads the whole event with the serde reader,
//! which gives the exact reasons and errors; the property tests hold the two to the same records.
//!
//! Declining is always correct, so this reader stays simple: it never words a problem.

use std::borrow::Cow;

use super::{finish, Fields, Malformed, MAX_NESTING};
use crate::record::image::{Kind, TapeWriter};
use crate::record::Expectation;

/// JSON nested deeper than this (outside images) is left to serde_json, which has its own limit.
const MAX_SKIP_DEPTH: usize = 100;

/// Each record of a stream event (`{"Records": [...]}`), in order, handed to `each`: an
/// expectation, or why the record cannot be one (the checks of [`finish`], as the serde reader
/// gives them). `None` if the event is not in the common case: read it with the serde reader
/// instead (records handed over so far are to be discarded).
pub(crate) fn read_event(
    json: &[u8],
    mut each: impl FnMut(Result<Expectation, Malformed>),
) -> Option<()> {
    // Valid UTF-8 once for the whole event (fast for ASCII), so that every string is a slice of
    // it: strings start after a quote and end at one, always character boundaries.
    let text = std::str::from_utf8(json).ok()?;
    let mut r = Reader {
        text,
        json,
        at: 0,
        tape: TapeWriter::default(),
    };
    let mut records = false;
    r.object(|r, key| {
        if key == "Records" {
            // A second list replaces the first in serde's reading: not the common case.
            if records {
                return None;
            }
            records = true;
            r.array(|r| {
                each(r.record()?);
                Some(())
            })
            .map(drop)
        } else {
            r.skip(1)
        }
    })?;
    // Only whitespace after the event, and the list was there.
    (r.peek().is_none() && records).then_some(())
}

struct Reader<'a> {
    text: &'a str,
    /// `text`'s bytes.
    json: &'a [u8],
    at: usize,
    /// One buffer for every image, as in the serde reader.
    tape: TapeWriter,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The first of the 8 bytes of `v` (little-endian) that is a quote, a backslash or a control
/// character, the bytes a string scan stops at; `None` if none is. The classic has-zero-byte and
/// has-less-than tests: a byte above a match may be flagged wrongly (a borrow), the lowest never.
fn special(v: u64) -> Option<usize> {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = v.wrapping_sub(ONES * 0x20) & !v & HIGHS;
    let mask =
        zero(v ^ (ONES * u64::from(b'"'))) | zero(v ^ (ONES * u64::from(b'\\'))) | below_space;
    (mask != 0).then(|| mask.trailing_zeros() as usize / 8)
}

impl<'a> Reader<'a> {
    /// The next byte that is not whitespace (not consumed); `None` at the end.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.json.get(self.at) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.peek()?;
        let end = self.at + word.len();
        (self.json.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `null`, consumed, or `false` (nothing consumed) for anything else.
    fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(true);
        }
        Some(false)
    }

    /// An object, each entry's value read by `entry` after its key.
    fn object(
        &mut self,
        mut entry: impl FnMut(&mut Self, Cow<'a, str>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            entry(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A list, each element read by `element`; how many there were.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<usize> {
        self.eat(b'[')?;
        if self.eat(b']').is_some() {
            return Some(0);
        }
        let mut count = 0;
        loop {
            element(self)?;
            count += 1;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(count);
                }
                _ => return None,
            }
        }
    }

    /// A string, borrowed from the event unless it has escapes (decoded by serde_json then).
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let json = self.json;
        let start = self.at;
        let mut i = start;
        // 8 bytes at a time to the first special byte; the last few one by one.
        while let Some(chunk) = json.get(i..i + 8) {
            match special(u64::from_le_bytes(chunk.try_into().ok()?)) {
                Some(at) => {
                    i += at;
                    break;
                }
                None => i += 8,
            }
        }
        loop {
            match *json.get(i)? {
                b'"' => {
                    self.at = i + 1;
                    return Some(Cow::Borrowed(self.text.get(start..i)?));
                }
                b'\\' => return self.escaped(start - 1),
                0..=0x1f => return None,
                _ => i += 1,
            }
        }
    }

    /// A string with escapes, from its opening quote at `quote`.
    fn escaped(&mut self, quote: usize) -> Option<Cow<'a, str>> {
        let json = self.json;
        let mut i = quote + 1;
        loop {
            match *json.get(i)? {
                b'"' => break,
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        let text = serde_json::from_slice::<String>(json.get(quote..=i)?).ok()?;
        self.at = i + 1;
        Some(Cow::Owned(text))
    }

    /// A number, as JSON writes one; its text.
    fn number(&mut self) -> Option<&'a str> {
        self.peek()?;
        let json = self.json;
        let start = self.at;
        let mut i = start;
        let digits = |i: &mut usize| {
            let from = *i;
            while json.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        if json.get(i) == Some(&b'-') {
            i += 1;
        }
        match json.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                digits(&mut i);
            }
            _ => return None,
        }
        if json.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i).then_some(())?;
        }
        if matches!(json.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(json.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            digits(&mut i).then_some(())?;
        }
        self.at = i;
        self.text.get(start..i)
    }

    /// Any JSON value, read past (validated, not built).
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_SKIP_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|r, _| r.skip(depth + 1)),
            b'[' => self.array(|r| r.skip(depth + 1)).map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(drop),
        }
    }

    /// A record field that is a string or null.
    fn text(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null()? {
            return Some(None);
        }
        self.string().map(Some)
    }

    fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// One stream record: its fields, through the serde reader's checks.
    fn record(&mut self) -> Option<Result<Expectation, Malformed>> {
        let mut fields = Fields::default();
        self.object(|r, field| {
            match &*field {
                "eventID" => fields.event_id = r.text()?,
                "eventName" => fields.event_name = r.text()?,
                "eventSourceARN" => fields.source_arn = r.text()?,
                "userIdentity" => {
                    if !r.null()? {
                        r.object(|r, field| match &*field {
                            "type" => r.text().map(|t| fields.identity_type = t),
                            "principalId" => r.text().map(|t| fields.principal_id = t),
                            _ => r.skip(2),
                        })?;
                    }
                }
                "dynamodb" => {
                    if !r.null()? {
                        r.object(|r, field| r.change(&mut fields, &field))?;
                    }
                }
                _ => r.skip(1)?,
            }
            Some(())
        })?;
        Some(finish(fields, None))
    }

    /// One field of a record's `dynamodb` object.
    fn change(&mut self, fields: &mut Fields<'a>, field: &str) -> Option<()> {
        match field {
            "Keys" | "NewImage" => {
                // A null image is an absent one, as in the serde reader.
                if self.null()? {
                    return Some(());
                }
                let start = self.tape.mark();
                self.item(false, 0)?;
                if field == "Keys" {
                    fields.keys = Some(self.tape.take_item(start));
                } else {
                    fields.new_image = Some(self.tape.take(start));
                }
            }
            "OldImage" => {
                fields.old_image = if self.null()? {
                    None
                } else {
                    let start = self.at;
                    self.skip(2)?;
                    Some(self.text.get(start..self.at)?.into())
                }
            }
            "SequenceNumber" => fields.sequence_number = self.text()?,
            "StreamViewType" => fields.view_type = self.text()?,
            "ApproximateCreationDateTime" => {
                fields.created_epoch_seconds = if self.null()? {
                    None
                } else {
                    // Integers only: they convert to f64 exactly as serde_json converts them;
                    // a fraction or an exponent is left to serde_json's own float parsing.
                    let n = self.number()?;
                    let digits = n.strip_prefix('-').unwrap_or(n);
                    if digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    Some(n.parse::<i64>().ok()? as f64)
                };
            }
            _ => self.skip(2)?,
        }
        Some(())
    }

    /// An image or a key (`tagged`: the map of an M value) onto the tape; `depth`: the DynamoDB
    /// values it is nested in.
    fn item(&mut self, tagged: bool, depth: usize) -> Option<()> {
        let open = self.tape.open_map(tagged);
        let mut count = 0;
        self.object(|r, name| {
            r.tape.name(&name);
            count += 1;
            r.attribute(depth)
        })?;
        // A repeated name: the serde reader words the problem.
        self.tape.close(open, count).ok()
    }

    /// A type tag and its colon written as Lambda writes them (`"S":`, no space, no escape), read
    /// at once: a third of an image's strings are tags. `None` (nothing read) otherwise.
    fn compact_tag(&mut self) -> Option<Kind> {
        let rest = self.json.get(self.at..)?;
        // Tags are 1, 2 or 4 letters: the closing quote at 2, 3 or 5, then the colon.
        let close = [2, 3, 5]
            .into_iter()
            .find(|&i| rest.get(i) == Some(&b'"'))?;
        if rest.first() != Some(&b'"') || rest.get(close + 1) != Some(&b':') {
            return None;
        }
        let kind = Kind::from_tag(self.text.get(self.at + 1..self.at + close)?)?;
        self.at += close + 2;
        Some(kind)
    }

    /// One DynamoDB JSON value of exactly one type (`{"S": "x"}`) onto the tape.
    fn attribute(&mut self, depth: usize) -> Option<()> {
        self.eat(b'{')?;
        let kind = match self.compact_tag() {
            Some(kind) => kind,
            None => {
                let tag = self.string()?;
                self.eat(b':')?;
                Kind::from_tag(&tag)?
            }
        };
        if matches!(kind, Kind::M | Kind::L) && depth >= MAX_NESTING {
            return None;
        }
        match kind {
            Kind::S | Kind::N => {
                let text = self.string()?;
                self.tape.scalar(Some(kind), text.as_bytes());
            }
            Kind::B => {
                let bytes = aws_smithy_types::base64::decode(&*self.string()?).ok()?;
                self.tape.scalar(Some(kind), &bytes);
            }
            Kind::Bool | Kind::Null => {
                let flag = self.boolean()?;
                self.tape.flag(kind, flag);
            }
            Kind::M => self.item(true, depth + 1)?,
            Kind::L => {
                let open = self.tape.open(kind);
                let count = self.array(|r| r.attribute(depth + 1))?;
                // A list has no names: closing it cannot fail.
                let _ = self.tape.close(open, count);
            }
            Kind::Ss | Kind::Ns | Kind::Bs => {
                let open = self.tape.open(kind);
                let count = self.array(|r| {
                    let text = r.string()?;
                    if kind == Kind::Bs {
                        let bytes = aws_smithy_types::base64::decode(&*text).ok()?;
                        r.tape.scalar(None, &bytes);
                    } else {
                        r.tape.scalar(None, text.as_bytes());
                    }
                    Some(())
                })?;
                let _ = self.tape.close(open, count);
            }
        }
        // Exactly one type.
        self.eat(b'}')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Option<Vec<Result<Expectation, Malformed>>> {
        let mut out = Vec::new();
        read_event(json.as_bytes(), |r| out.push(r))?;
        Some(out)
    }

    #[test]
    fn the_special_bytes_are_found_in_any_position_and_only_they() {
        for at in 0..8 {
            for byte in [b'"', b'\\', 0x00, 0x1f] {
                // Special bytes after it too (of every kind), and bytes that borrow.
                for after in [0x00, 0x01, 0x1f, b'"', b'\\', 0x20, 0x21, 0x80, 0xff] {
                    let mut chunk = *b"abcdefgh";
                    chunk[at] = byte;
                    chunk[at + 1..].fill(after);
                    let found = special(u64::from_le_bytes(chunk));
                    assert_eq!(found, Some(at), "{byte:#x} at {at}, then {after:#x}");
                }
            }
        }
        for byte in [b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xa0, 0xff] {
            assert_eq!(special(u64::from_le_bytes([byte; 8])), None, "{byte:#x}");
        }
    }

    #[test]
    fn a_regular_event_is_read_and_anything_else_declined() {
        let record = |image: &str| {
            format!(
                r#"{{"Records": [ {{"eventID":"1","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:us-east-1:1:table/T/stream/x",
                "dynamodb":{{"Keys":{{"id":{{"S":"a"}}}},"NewImage":{image},"SequenceNumber":"1","StreamViewType":"NEW_IMAGE",
                "ApproximateCreationDateTime":1793577600}}}} ]}}"#
            )
        };
        let read_one = |image: &str| read(&record(image));
        let ok = read_one(r#"{"id":{"S":"a"},"n":{"N":"1.5"},"l":{"L":[{"BOOL":true},{"NULL":true}]},"s":{"SS":["x","y\n"]},"b":{"B":"AAE="}}"#)
            .expect("the common case");
        assert_eq!(ok.len(), 1);
        let image = ok[0].as_ref().unwrap().image().unwrap().item().into_owned();
        assert_eq!(image.len(), 5);
        assert_eq!(
            image["s"],
            aws_sdk_dynamodb::types::AttributeValue::Ss(vec!["x".into(), "y\n".into()])
        );
        for declined in [
            r#"{"id":{"S":"a"},"id":{"S":"b"}}"#, // a repeated name
            r#"{"id":{"S":"a","N":"1"}}"#,        // two types
            r#"{"id":{"X":"a"}}"#,                // an unknown type
            r#"{"id":{"B":"not base64!"}}"#,
            r#"{"id":{"S":1}}"#,
            r#"{"id":{"S":"a"}"#, // cut short
        ] {
            assert!(read_one(declined).is_none(), "{declined}");
        }
        assert!(read(r#"{"Records": []} x"#).is_none());
        assert!(read(r#"{"records": []}"#).is_none());
        assert!(read(r#"{"Records": [], "Records": []}"#).is_none());
        assert!(
            read(r#"{"Records": [{"dynamodb": {"ApproximateCreationDateTime": 1.5}}]}"#).is_none()
        );
        assert_eq!(read(r#" {"Records": [] } "#).map(|r| r.len()), Some(0));
    }
}
