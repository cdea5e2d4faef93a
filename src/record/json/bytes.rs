//! DynamoDB JSON read straight from its bytes, without serde: Lambda's stream events
//! (`record::json`) and BatchGetItem's answers (`aws::reader`) carry the same values.
//!
//! serde's visitor calls cost about three times a pass of serde_json that builds nothing
//! (docs/benchmarks-log.md, "The byte reader"). What DynamoDB and Lambda write is regular: objects of known fields, DynamoDB
//! JSON values of one type each, strings without escapes. This reader handles exactly that, writing
//! each item onto a tape as it reads it, and gives up (`None`) on anything else: JSON nested deeper
//! than it allows, an unknown type, text that is not JSON. Its callers then read the whole text the
//! slow way (serde's reader, the SDK's), which words the problem or knows the type; declining is
//! always correct, so this reader stays simple.

use std::borrow::Cow;

use crate::record::image::{Kind, Tape, TapeWriter};
use crate::record::Item;

/// DynamoDB nests maps and lists at most 32 levels deep.
pub(crate) const MAX_NESTING: usize = 32;

/// JSON nested deeper than this (outside items) is declined.
const MAX_SKIP_DEPTH: usize = 100;

pub(crate) struct Reader<'a> {
    pub(crate) text: &'a str,
    /// `text`'s bytes.
    pub(crate) json: &'a [u8],
    pub(crate) at: usize,
    /// One buffer for every image, as in the serde reader.
    pub(crate) tape: TapeWriter,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The first of the 8 bytes of `v` (little-endian) that is a quote, a backslash or a control
/// character, the bytes a string scan stops at; `None` if none is. The classic has-zero-byte and
/// has-less-than tests: a byte above a match may be flagged wrongly (a borrow), the lowest never.
#[inline]
fn special(v: u64) -> Option<usize> {
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = v.wrapping_sub(ONES * 0x20) & !v & HIGHS;
    let mask =
        zero(v ^ (ONES * u64::from(b'"'))) | zero(v ^ (ONES * u64::from(b'\\'))) | below_space;
    (mask != 0).then(|| mask.trailing_zeros() as usize / 8)
}

impl<'a> Reader<'a> {
    /// A reader of `json`; `None` if it is not UTF-8. Valid UTF-8 once for the whole text (fast
    /// for ASCII), so that every string is a slice of it: strings start after a quote and end at
    /// one, always character boundaries.
    pub(crate) fn new(json: &'a [u8]) -> Option<Reader<'a>> {
        Some(Reader {
            text: std::str::from_utf8(json).ok()?,
            json,
            at: 0,
            tape: TapeWriter::default(),
        })
    }

    /// The next byte that is not whitespace (not consumed); `None` at the end.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.json.get(self.at) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.at += 1;
        }
        None
    }

    #[inline]
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    #[inline]
    pub(crate) fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.peek()?;
        let end = self.at + word.len();
        (self.json.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// `null`, consumed, or `false` (nothing consumed) for anything else.
    #[inline]
    pub(crate) fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(true);
        }
        Some(false)
    }

    /// An object, each entry's value read by `entry` after its key.
    pub(crate) fn object(
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
    pub(crate) fn array(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<usize> {
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
    #[inline]
    pub(crate) fn string(&mut self) -> Option<Cow<'a, str>> {
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
    #[inline]
    pub(crate) fn number(&mut self) -> Option<&'a str> {
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
    pub(crate) fn skip(&mut self, depth: usize) -> Option<()> {
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
    pub(crate) fn text(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null()? {
            return Some(None);
        }
        self.string().map(Some)
    }

    pub(crate) fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => None,
        }
    }

    /// A whole item on a tape of its own (an image, an item found).
    pub(crate) fn item_tape(&mut self) -> Option<Tape> {
        let start = self.tape.mark();
        self.item(false, 0)?;
        Some(self.tape.take(start))
    }

    /// An item as an SDK item (a key: small, and needed as an item).
    pub(crate) fn item_sdk(&mut self) -> Option<Item> {
        let start = self.tape.mark();
        self.item(false, 0)?;
        Some(self.tape.take_item(start))
    }

    /// An image or a key (`tagged`: the map of an M value) onto the tape; `depth`: the DynamoDB
    /// values it is nested in.
    pub(crate) fn item(&mut self, tagged: bool, depth: usize) -> Option<()> {
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
    pub(crate) fn attribute(&mut self, depth: usize) -> Option<()> {
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
}
