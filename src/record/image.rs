//! The image an expectation holds, and the compact form Lambda's records keep it in.
//!
//! A stream record's new image used to be built as the SDK's tree (`HashMap<String,
//! AttributeValue>`): about 90 allocations for a 1.7 KB image, most of the parse's time and ten
//! times the image's size in memory. A [`Tape`] holds the same item in one buffer, written by a
//! JSON reader as it reads the event (`record::json`) or the other side's answer (`aws::reader`),
//! and is compared by walking it against the other side's item, a tape or an SDK item. It is turned
//! into an SDK item only on the rare paths that need one (a difference to describe, an evidence
//! log, an old state to compare).
//!
//! Layout (lengths, counts and sizes are little-endian `u32`): an item is `count size` then `count`
//! times `name value`, `size` being the bytes of those entries; a name is `len bytes`; a value is a
//! type tag, then for S, N and B `len bytes` (B decoded from base64), for BOOL and NULL one byte,
//! for M an item, for L `count size` then `count` values, and for SS, NS and BS `count size` then
//! `count` times `len bytes`. The size lets a walk skip a container without reading it. Names
//! within one map are unique (the parser refuses a repeated one), so a count compares as a set of
//! names.

use std::borrow::Cow;
use std::fmt;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Item, ItemKey, KeyPart};
use crate::compare::{canonical_number_text, items_equal, numbers_equal, unknown_attribute};

// The tags as written on a tape: `Kind`'s discriminants, so the two cannot drift apart.
const S: u8 = Kind::S as u8;
const N: u8 = Kind::N as u8;
const B: u8 = Kind::B as u8;
const BOOL: u8 = Kind::Bool as u8;
const NULL: u8 = Kind::Null as u8;
const M: u8 = Kind::M as u8;
const L: u8 = Kind::L as u8;
const SS: u8 = Kind::Ss as u8;
const NS: u8 = Kind::Ns as u8;
const BS: u8 = Kind::Bs as u8;

/// What the other side should hold: an SDK item (a scanned item, the poller's records) or a
/// Lambda record's image as a [`Tape`].
#[derive(Clone)]
pub enum Image {
    Item(Item),
    Tape(Tape),
}

impl Image {
    /// Whether `found` holds this image, DynamoDB's equality (`compare::items_equal`), the
    /// top-level attributes in `ignore` aside.
    pub fn equals(&self, found: &Item, ignore: &[String]) -> bool {
        match self {
            Image::Item(item) => items_equal(item, found, ignore),
            Image::Tape(tape) => tape.equals(found, ignore),
        }
    }

    /// Whether `found` (an answer, as an SDK item or a tape) holds this image: [`Image::equals`]
    /// for any two forms.
    pub fn same_as(&self, found: &Image, ignore: &[String]) -> bool {
        match (self, found) {
            (image, Image::Item(found)) => image.equals(found, ignore),
            // Equality is symmetric, ignored names included (they are left out on both sides).
            (Image::Item(item), Image::Tape(found)) => found.equals(item, ignore),
            (Image::Tape(tape), Image::Tape(found)) => tape.equals_tape(found, ignore),
        }
    }

    /// The canonical key of this item projected on `sorted_key_names` ([`ItemKey::project`]).
    pub fn project(&self, sorted_key_names: &[String]) -> ItemKey {
        match self {
            Image::Item(item) => ItemKey::project(item, sorted_key_names),
            Image::Tape(tape) => tape.project(sorted_key_names),
        }
    }

    /// The item's attributes named in `names`, as an SDK item (a key, from a whole item).
    pub fn key_item(&self, names: &[String]) -> Item {
        match self {
            Image::Item(item) => names
                .iter()
                .filter_map(|name| item.get(name).map(|v| (name.clone(), v.clone())))
                .collect(),
            Image::Tape(tape) => tape.key_item(names),
        }
    }

    /// The path of an attribute of a type this version does not know (`compare::unknown_attribute`);
    /// a tape never holds one.
    pub fn unknown_attribute(&self) -> Option<String> {
        match self {
            Image::Item(item) => unknown_attribute(item),
            Image::Tape(_) => None,
        }
    }

    /// The image as an SDK item (built for a tape: for the rare paths only).
    pub fn item(&self) -> Cow<'_, Item> {
        match self {
            Image::Item(item) => Cow::Borrowed(item),
            Image::Tape(tape) => Cow::Owned(tape.to_item()),
        }
    }

    /// No attributes (a record without an image).
    pub fn is_empty(&self) -> bool {
        match self {
            Image::Item(item) => item.is_empty(),
            Image::Tape(tape) => tape.is_empty(),
        }
    }

    pub fn into_item(self) -> Item {
        match self {
            Image::Item(item) => item,
            Image::Tape(tape) => tape.to_item(),
        }
    }
}

impl From<Item> for Image {
    fn from(item: Item) -> Image {
        Image::Item(item)
    }
}

impl PartialEq for Image {
    fn eq(&self, other: &Image) -> bool {
        self.item() == other.item()
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.item().fmt(f)
    }
}

/// One item in one buffer (layout in the module's doc). Only [`TapeWriter`] makes one, so its
/// layout always holds; reading is bounds-checked all the same, and never panics.
#[derive(Clone)]
pub struct Tape(Box<[u8]>);

/// The same item, whatever the order its attributes were written in.
impl PartialEq for Tape {
    fn eq(&self, other: &Tape) -> bool {
        self.to_item() == other.to_item()
    }
}

impl Tape {
    /// An SDK item as a tape; `None` if it has an attribute of a type this version does not know.
    pub fn from_item(item: &Item) -> Option<Tape> {
        let mut w = TapeWriter::default();
        let start = w.mark();
        write_item(&mut w, item)?;
        Some(w.take(start))
    }

    pub fn is_empty(&self) -> bool {
        self.attribute_count() == 0
    }

    pub fn attribute_count(&self) -> usize {
        TapeReader::new(&self.0).count().unwrap_or(0) as usize
    }

    pub fn equals(&self, found: &Item, ignore: &[String]) -> bool {
        item_equals(&mut TapeReader::new(&self.0), found, ignore).unwrap_or(false)
    }

    /// Both tapes hold the same item, DynamoDB's equality, the top-level attributes in `ignore`
    /// aside.
    pub fn equals_tape(&self, other: &Tape, ignore: &[String]) -> bool {
        tapes_equal(
            &mut TapeReader::new(&self.0),
            &mut TapeReader::new(&other.0),
            ignore,
        )
        .unwrap_or(false)
    }

    /// The canonical key of this item projected on `sorted_key_names` ([`ItemKey::project`]).
    pub fn project(&self, sorted_key_names: &[String]) -> ItemKey {
        let mut parts: Vec<Option<KeyPart>> = vec![None; sorted_key_names.len()];
        let mut c = TapeReader::new(&self.0);
        let count = c.count().unwrap_or(0);
        for _ in 0..count {
            let Some(name) = c.bytes() else { break };
            let at = sorted_key_names.iter().position(|n| n.as_bytes() == name);
            let part = match (at, c.u8()) {
                (Some(_), Some(S)) => c.bytes().map(KeyPart::S),
                (Some(_), Some(N)) => c.str().map(KeyPart::N),
                (Some(_), Some(B)) => c.bytes().map(KeyPart::B),
                (_, Some(_)) => {
                    c.at -= 1;
                    c.skip_value().map(|()| KeyPart::Other)
                }
                (_, None) => None,
            };
            let Some(part) = part else { break };
            if let Some(at) = at {
                parts[at] = Some(part);
            }
        }
        ItemKey::from_parts(sorted_key_names.iter().map(String::as_str).zip(parts))
    }

    /// The attributes named in `names`, as an SDK item; the others are skipped, not built.
    pub fn key_item(&self, names: &[String]) -> Item {
        let mut key = Item::with_capacity(names.len());
        let mut c = TapeReader::new(&self.0);
        for _ in 0..c.count().unwrap_or(0) {
            let Some(name) = c.str() else { break };
            let read = match names.iter().find(|n| n.as_str() == name) {
                Some(n) => read_value(&mut c).map(|v| {
                    key.insert(n.clone(), v);
                }),
                None => c.skip_value(),
            };
            if read.is_none() {
                break;
            }
        }
        key
    }

    pub fn to_item(&self) -> Item {
        read_item(&mut TapeReader::new(&self.0)).unwrap_or_default()
    }
}

impl fmt::Debug for Tape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_item().fmt(f)
    }
}

/// Writes tapes into one reusable buffer: a parser writes each image here as it reads it, then
/// [`TapeWriter::take`]s it at its exact size.
#[derive(Default)]
pub struct TapeWriter {
    buf: Vec<u8>,
    /// Where the names of the maps being written are (offset, length), to refuse a repeated one.
    names: Vec<(usize, usize)>,
}

/// A map, list or set being written: where its count goes, and where its names start.
pub struct Open {
    count_at: usize,
    names_from: usize,
}

/// The types a tape holds, as the writer's callers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    S = 1,
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

impl Kind {
    fn tag(self) -> u8 {
        self as u8
    }

    /// The type a DynamoDB JSON tag names (`S`, `BOOL`, ...), for both of Lambda's readers.
    pub fn from_tag(tag: &str) -> Option<Kind> {
        Some(match tag {
            "S" => Kind::S,
            "N" => Kind::N,
            "B" => Kind::B,
            "BOOL" => Kind::Bool,
            "NULL" => Kind::Null,
            "M" => Kind::M,
            "L" => Kind::L,
            "SS" => Kind::Ss,
            "NS" => Kind::Ns,
            "BS" => Kind::Bs,
            _ => return None,
        })
    }
}

impl TapeWriter {
    /// Where the next tape starts.
    pub fn mark(&self) -> usize {
        self.buf.len()
    }

    /// The tape written since `start`, at its exact size; the buffer is ready for the next one.
    pub fn take(&mut self, start: usize) -> Tape {
        let tape = Tape(self.buf[start..].into());
        self.truncate(start);
        tape
    }

    /// The tape written since `start` as an SDK item (a key: small, and needed as an item).
    pub fn take_item(&mut self, start: usize) -> Item {
        let item = read_item(&mut TapeReader::new(&self.buf[start..])).unwrap_or_default();
        self.truncate(start);
        item
    }

    /// Forgets what was written since `start` (an image that turned out malformed).
    pub fn truncate(&mut self, start: usize) {
        self.buf.truncate(start);
        self.names.retain(|&(at, _)| at < start);
    }

    fn u32(&mut self, n: usize) {
        // DynamoDB items are at most 400 KB and Lambda's payloads 6 MB: every length fits.
        self.buf
            .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.u32(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// An item (`tagged`: the map of an M value, after its tag): close it with [`Self::close`].
    pub fn open_map(&mut self, tagged: bool) -> Open {
        if tagged {
            self.buf.push(M);
        }
        self.open_count()
    }

    /// A list or set value (L, SS, NS, BS).
    pub fn open(&mut self, kind: Kind) -> Open {
        self.buf.push(kind.tag());
        self.open_count()
    }

    fn open_count(&mut self) -> Open {
        let count_at = self.buf.len();
        // The count and the size, patched by `close`.
        self.u32(0);
        self.u32(0);
        Open {
            count_at,
            names_from: self.names.len(),
        }
    }

    /// The next attribute's name in the open map.
    pub fn name(&mut self, name: &str) {
        self.u32(name.len());
        self.names.push((self.buf.len(), name.len()));
        self.buf.extend_from_slice(name.as_bytes());
    }

    /// An S, N or B value (B's bytes decoded), or an element of a set.
    pub fn scalar(&mut self, kind: Option<Kind>, bytes: &[u8]) {
        if let Some(kind) = kind {
            self.buf.push(kind.tag());
        }
        self.bytes(bytes);
    }

    pub fn flag(&mut self, kind: Kind, value: bool) {
        self.buf.push(kind.tag());
        self.buf.push(u8::from(value));
    }

    /// Ends a map, list or set of `count` entries; for a map, the name that appears twice, if one
    /// does (DynamoDB never writes one: such an image is refused, not guessed at).
    pub fn close(&mut self, open: Open, count: usize) -> Result<(), String> {
        let count_bytes = u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes();
        self.buf[open.count_at..open.count_at + 4].copy_from_slice(&count_bytes);
        let size = self.buf.len() - (open.count_at + 8);
        let size_bytes = u32::try_from(size).unwrap_or(u32::MAX).to_le_bytes();
        self.buf[open.count_at + 4..open.count_at + 8].copy_from_slice(&size_bytes);
        let names = &self.names[open.names_from..];
        let name = |&(at, len): &(usize, usize)| &self.buf[at..at + len];
        // A name is compared with the earlier ones only when its signature (length, first and
        // last byte) was seen before: no allocation, and few comparisons.
        let signature = |n: &[u8]| {
            let (first, last) = (n.first().copied(), n.last().copied());
            let mixed = n.len()
                ^ (usize::from(first.unwrap_or(0)) * 7)
                ^ (usize::from(last.unwrap_or(0)) * 13);
            1u64 << (mixed % 64)
        };
        let mut seen = 0u64;
        let mut repeated = None;
        for (i, entry) in names.iter().enumerate() {
            let a = name(entry);
            let bit = signature(a);
            if seen & bit != 0 && names[..i].iter().any(|b| name(b) == a) {
                repeated = Some(String::from_utf8_lossy(a).into_owned());
                break;
            }
            seen |= bit;
        }
        self.names.truncate(open.names_from);
        repeated.map_or(Ok(()), Err)
    }
}

fn write_item(w: &mut TapeWriter, item: &Item) -> Option<()> {
    let open = w.open_map(false);
    for (name, value) in item {
        w.name(name);
        write_value(w, value)?;
    }
    w.close(open, item.len()).ok()
}

fn write_value(w: &mut TapeWriter, value: &AttributeValue) -> Option<()> {
    let set = |w: &mut TapeWriter, kind, elements: &mut dyn ExactSizeIterator<Item = &[u8]>| {
        let open = w.open(kind);
        let count = elements.len();
        for e in elements {
            w.scalar(None, e);
        }
        w.close(open, count).ok()
    };
    match value {
        AttributeValue::S(s) => w.scalar(Some(Kind::S), s.as_bytes()),
        AttributeValue::N(n) => w.scalar(Some(Kind::N), n.as_bytes()),
        AttributeValue::B(b) => w.scalar(Some(Kind::B), b.as_ref()),
        AttributeValue::Bool(b) => w.flag(Kind::Bool, *b),
        AttributeValue::Null(b) => w.flag(Kind::Null, *b),
        AttributeValue::M(m) => {
            let open = w.open_map(true);
            for (name, value) in m {
                w.name(name);
                write_value(w, value)?;
            }
            w.close(open, m.len()).ok()?;
        }
        AttributeValue::L(l) => {
            let open = w.open(Kind::L);
            for value in l {
                write_value(w, value)?;
            }
            w.close(open, l.len()).ok()?;
        }
        AttributeValue::Ss(v) => set(w, Kind::Ss, &mut v.iter().map(|s| s.as_bytes()))?,
        AttributeValue::Ns(v) => set(w, Kind::Ns, &mut v.iter().map(|s| s.as_bytes()))?,
        AttributeValue::Bs(v) => set(w, Kind::Bs, &mut v.iter().map(|b| b.as_ref()))?,
        _ => return None,
    }
    Some(())
}

/// Reads a tape; every read is bounds-checked (`None`: the tape ended early).
struct TapeReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> TapeReader<'a> {
    fn new(bytes: &'a [u8]) -> TapeReader<'a> {
        TapeReader { bytes, at: 0 }
    }

    fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        let b = self.bytes.get(self.at..self.at + len)?;
        self.at += len;
        Some(b)
    }

    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// A map's, list's or set's count; its size (the bytes of its entries) is read past.
    fn count(&mut self) -> Option<u32> {
        let count = self.u32()?;
        self.u32()?;
        Some(count)
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.u8()? {
            S | N | B => {
                self.bytes()?;
            }
            BOOL | NULL => {
                self.u8()?;
            }
            // A container is skipped by its size, not walked.
            M | L | SS | NS | BS => {
                self.u32()?;
                let size = self.u32()? as usize;
                self.bytes.get(self.at..self.at + size)?;
                self.at += size;
            }
            _ => return None,
        }
        Some(())
    }
}

/// Up to this many attributes, a name is looked for by comparing it with each (see `item_equals`).
const LINEAR_SEARCH_UP_TO: usize = 16;

/// An item of the tape against an SDK item: `compare::items_equal`'s meaning, walked.
fn item_equals<'a>(c: &mut TapeReader<'a>, found: &'a Item, ignore: &[String]) -> Option<bool> {
    let count = c.count()? as usize;
    if ignore.is_empty() && count != found.len() {
        return Some(false);
    }
    let mut compared = 0;
    for _ in 0..count {
        let name = c.bytes()?;
        if !ignore.is_empty() && ignore.iter().any(|i| i.as_bytes() == name) {
            c.skip_value()?;
            continue;
        }
        // A small map is searched in place: cheaper than hashing the name (SipHash).
        let other = if found.len() <= LINEAR_SEARCH_UP_TO {
            found
                .iter()
                .find_map(|(k, v)| (k.as_bytes() == name).then_some(v))
        } else {
            std::str::from_utf8(name)
                .ok()
                .and_then(|name| found.get(name))
        };
        match other {
            Some(other) if value_equals(c, other)? => compared += 1,
            _ => return Some(false),
        }
    }
    // Names are unique on both sides: as many compared as found means the same names.
    let wanted = if ignore.is_empty() {
        found.len()
    } else {
        found.keys().filter(|k| !ignore.contains(k)).count()
    };
    Some(compared == wanted)
}

/// Names of a map indexed on the stack, up to this many (a map with more spills to the heap).
const INLINE_INDEX: usize = 16;

/// An item of one tape against an item of another: [`item_equals`]'s meaning. Names are looked
/// for in the same order first (no index needed then); at the first name out of order, as
/// DynamoDB's answers and stream images often list them, b's entries are indexed once (name,
/// where its value starts). On `true`, both cursors end after their items.
fn tapes_equal<'a>(
    a: &mut TapeReader<'a>,
    b: &mut TapeReader<'a>,
    ignore: &[String],
) -> Option<bool> {
    let count = a.count()? as usize;
    let other_count = b.u32()? as usize;
    let size = b.u32()? as usize;
    if ignore.is_empty() && count != other_count {
        return Some(false);
    }
    let start = b.at;
    let end = start + size;
    // The next of b's entries in order: its index and where it starts.
    let (mut next, mut next_at) = (0, start);
    // b's names and where their values start, once needed: on the stack for most maps.
    let mut inline: [(&'a [u8], usize); INLINE_INDEX];
    let mut spilled: Vec<(&'a [u8], usize)>;
    let mut index: &mut [(&'a [u8], usize)] = &mut [];
    let mut compared = 0;
    let ignored = |name: &[u8]| ignore.iter().any(|i| i.as_bytes() == name);
    for _ in 0..count {
        let name = a.bytes()?;
        if !ignore.is_empty() && ignored(name) {
            a.skip_value()?;
            continue;
        }
        b.at = next_at;
        if next < other_count && b.bytes()? == name {
            next += 1;
        } else {
            if index.is_empty() {
                index = if other_count <= INLINE_INDEX {
                    inline = [(&[][..], 0); INLINE_INDEX];
                    &mut inline[..other_count]
                } else {
                    spilled = vec![(&[][..], 0); other_count];
                    &mut spilled
                };
                b.at = start;
                for entry in index.iter_mut() {
                    let name = b.bytes()?;
                    *entry = (name, b.at);
                    b.skip_value()?;
                }
            }
            // Length and first byte before the bytes: most names differ there.
            let same = |n: &[u8]| n.len() == name.len() && n.first() == name.first() && n == name;
            match index.iter().position(|&(n, _)| same(n)) {
                Some(i) => {
                    next = i + 1;
                    b.at = index[i].1;
                }
                None => return Some(false),
            }
        }
        if !tape_values_equal(a, b)? {
            return Some(false);
        }
        compared += 1;
        next_at = b.at;
    }
    let wanted = if ignore.is_empty() {
        other_count
    } else {
        b.at = start;
        let mut wanted = 0;
        for _ in 0..other_count {
            wanted += usize::from(!ignored(b.bytes()?));
            b.skip_value()?;
        }
        wanted
    };
    b.at = end;
    Some(compared == wanted)
}

/// `compare::values_equal` for two values of tapes. A `false` may leave the cursors inside.
fn tape_values_equal<'a>(a: &mut TapeReader<'a>, b: &mut TapeReader<'a>) -> Option<bool> {
    let tag = a.u8()?;
    if tag != b.u8()? {
        return Some(false);
    }
    fn bytes<'a>(c: &mut TapeReader<'a>) -> Option<Cow<'a, [u8]>> {
        c.bytes().map(Cow::Borrowed)
    }
    Some(match tag {
        S | B => a.bytes()? == b.bytes()?,
        N => {
            let (x, y) = (a.bytes()?, b.bytes()?);
            // The same text is the same number, without checking it is text.
            x == y || numbers_equal(std::str::from_utf8(x).ok()?, std::str::from_utf8(y).ok()?)
        }
        BOOL => (a.u8()? != 0) == (b.u8()? != 0),
        NULL => a.u8().and(b.u8()).is_some(),
        M => tapes_equal(a, b, &[])?,
        L => {
            let count = a.count()?;
            if count != b.count()? {
                return Some(false);
            }
            for _ in 0..count {
                if !tape_values_equal(a, b)? {
                    return Some(false);
                }
            }
            true
        }
        SS | BS => tape_sets_equal(a, b, bytes)?,
        NS => {
            let (a_at, b_at) = (a.at, b.at);
            tape_sets_equal(a, b, bytes)? || {
                a.at = a_at;
                b.at = b_at;
                tape_sets_equal(a, b, |c| {
                    let text = std::str::from_utf8(c.bytes()?).ok()?;
                    Some(Cow::Owned(canonical_number_text(text).into_bytes()))
                })?
            }
        }
        _ => return None,
    })
}

/// Two sets of tapes as [`same_set`] compares them; each element in the form `element` reads it.
fn tape_sets_equal<'a>(
    a: &mut TapeReader<'a>,
    b: &mut TapeReader<'a>,
    element: impl Fn(&mut TapeReader<'a>) -> Option<Cow<'a, [u8]>>,
) -> Option<bool> {
    let count = a.count()? as usize;
    if count != b.count()? as usize {
        return Some(false);
    }
    let (a_start, b_start) = (a.at, b.at);
    let mut in_order = true;
    for _ in 0..count {
        let (x, y) = (element(a)?, element(b)?);
        in_order = in_order && x == y;
    }
    if in_order {
        return Some(true);
    }
    let (a_end, b_end) = (a.at, b.at);
    let sorted = |c: &mut TapeReader<'a>, at| {
        c.at = at;
        let mut all = (0..count).map(|_| element(c)).collect::<Option<Vec<_>>>()?;
        all.sort_unstable();
        Some(all)
    };
    let equal = sorted(a, a_start)? == sorted(b, b_start)?;
    (a.at, b.at) = (a_end, b_end);
    Some(equal)
}

/// `compare::values_equal` for a value of the tape against an SDK value. A `false` may leave the
/// cursor inside the value: the walk stops there.
fn value_equals<'a>(c: &mut TapeReader<'a>, other: &'a AttributeValue) -> Option<bool> {
    use AttributeValue as V;
    Some(match (c.u8()?, other) {
        (S, V::S(y)) => c.bytes()? == y.as_bytes(),
        (N, V::N(y)) => {
            let x = c.bytes()?;
            x == y.as_bytes() || numbers_equal(std::str::from_utf8(x).ok()?, y)
        }
        (B, V::B(y)) => c.bytes()? == y.as_ref(),
        (BOOL, V::Bool(y)) => (c.u8()? != 0) == *y,
        (NULL, V::Null(_)) => c.u8().is_some(),
        (M, V::M(y)) => item_equals(c, y, &[])?,
        (L, V::L(y)) => {
            if c.count()? as usize != y.len() {
                return Some(false);
            }
            for value in y {
                if !value_equals(c, value)? {
                    return Some(false);
                }
            }
            true
        }
        (SS, V::Ss(y)) => same_set(c, y, Cow::Borrowed, |s| Cow::Borrowed(s.as_bytes()))?,
        (NS, V::Ns(y)) => {
            let at = c.at;
            same_set(c, y, Cow::Borrowed, |s| Cow::Borrowed(s.as_bytes()))? || {
                c.at = at;
                let canonical = |text: &str| Cow::Owned(canonical_number_text(text).into_bytes());
                same_set(
                    c,
                    y,
                    |b| canonical(std::str::from_utf8(b).unwrap_or_default()),
                    |s| canonical(s),
                )?
            }
        }
        (BS, V::Bs(y)) => same_set(c, y, Cow::Borrowed, |b| Cow::Borrowed(b.as_ref()))?,
        _ => false,
    })
}

/// `compare`'s set equality (same elements, any order) between a set of the tape and an SDK
/// set, each element in the form `mine` and `theirs` give it (the canonical text of a number).
/// The same order costs one pass and no allocation; otherwise both sides are sorted.
fn same_set<'a, T>(
    c: &mut TapeReader<'a>,
    y: &'a [T],
    mine: impl Fn(&'a [u8]) -> Cow<'a, [u8]>,
    theirs: impl Fn(&'a T) -> Cow<'a, [u8]>,
) -> Option<bool> {
    let count = c.count()? as usize;
    if count != y.len() {
        return Some(false);
    }
    let start = c.at;
    let mut in_order = true;
    for element in y {
        let bytes = c.bytes()?;
        in_order = in_order && mine(bytes) == theirs(element);
    }
    if in_order {
        return Some(true);
    }
    let end = c.at;
    c.at = start;
    let mut ours = Vec::with_capacity(count);
    for _ in 0..count {
        ours.push(mine(c.bytes()?));
    }
    c.at = end;
    let mut others: Vec<Cow<[u8]>> = y.iter().map(theirs).collect();
    ours.sort_unstable();
    others.sort_unstable();
    Some(ours == others)
}

fn read_item(c: &mut TapeReader) -> Option<Item> {
    let count = c.count()? as usize;
    let mut item = Item::with_capacity(count);
    for _ in 0..count {
        let name = c.str()?.to_owned();
        item.insert(name, read_value(c)?);
    }
    Some(item)
}

fn read_value(c: &mut TapeReader) -> Option<AttributeValue> {
    let text = |c: &mut TapeReader| c.str().map(str::to_owned);
    let texts = |c: &mut TapeReader| (0..c.count()?).map(|_| text(c)).collect::<Option<Vec<_>>>();
    Some(match c.u8()? {
        S => AttributeValue::S(text(c)?),
        N => AttributeValue::N(text(c)?),
        B => AttributeValue::B(Blob::new(c.bytes()?)),
        BOOL => AttributeValue::Bool(c.u8()? != 0),
        NULL => AttributeValue::Null(c.u8()? != 0),
        M => AttributeValue::M(read_item(c)?),
        L => AttributeValue::L(
            (0..c.count()?)
                .map(|_| read_value(c))
                .collect::<Option<_>>()?,
        ),
        SS => AttributeValue::Ss(texts(c)?),
        NS => AttributeValue::Ns(texts(c)?),
        BS => AttributeValue::Bs(
            (0..c.count()?)
                .map(|_| c.bytes().map(Blob::new))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}
