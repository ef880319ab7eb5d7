//! Bounds on automerge chunks a peer sent, checked before automerge reads them.
//!
//! automerge stores its columns run-length encoded: a run says "this value, N times" in a few
//! bytes, and its loaders collect each column into a vector. A chunk of 3 KB claiming a run of
//! 2³³ actors made automerge 0.12 ask for more than 4 GB and the process abort (found by
//! fuzzing, RELIABILITY.md crash 5); a compressed column or change can likewise inflate a
//! thousandfold. An allocation failure aborts the process: it cannot be caught, so a modified
//! app could take the hub down with one small file. [`check`] therefore walks every chunk of a
//! peer's bytes (document, change, compressed change and bundle chunks, as in automerge's
//! binary format) and every column in them, counting the rows each column claims and the bytes
//! each compressed part inflates to, without building anything:
//!
//! - a column may claim at most [`MAX_ROWS`] rows plus [`ROWS_PER_BYTE`] per byte of its
//!   chunk, and never more than [`MAX_COLUMN_ROWS`]; all columns of one input together at
//!   most that for the whole input, and never more than [`MAX_TOTAL_ROWS`] (a chunk may be the
//!   output of a decompression, so its own size is not a bound); nor may the change chunks of
//!   one sync message together, which all go into one document;
//! - inputs that arrive together share what is given whatever the size: the change chunks of
//!   one sync message share one [`MAX_ROWS`] ([`check_together`]), and the documents of one
//!   `Changes` frame or bundle get [`DOC_FLOOR`] each and one [`MAX_ROWS`] between them
//!   ([`check_documents`]). With [`MAX_ROWS`] each, a message of twenty 100-byte changes
//!   claimed twenty times what its bytes hold, and every row claimed is an operation automerge
//!   builds. A document's own floor is for a saved document, whose compressed columns claim
//!   many rows per byte honestly;
//! - what passes is returned as the rows it claims: the hub counts them against the sender's
//!   daily quota before automerge reads the input (`store::admit::claimed_weight`), which
//!   bounds the work of many inputs, each within its floor, sent one after another;
//! - a compressed column or change may inflate to at most [`MAX_INFLATED`] bytes plus
//!   [`INFLATE_RATIO`] times its own size, and all the compressed parts of inputs checked
//!   together to that for their bytes together (zeros claim no rows, so without it five hundred
//!   parts of 16 KB each could make one message inflate 8 GiB).
//!
//! The same walk refuses any input whose op columns hold an increment ([`INCREMENT`]): no
//! school file holds a counter, and automerge 0.12 both takes an increment of a value that is
//! not one and may panic listing it back out.
//!
//! Real documents stay far below: an op costs at least a byte in some column, and the largest
//! file the benchmarks build (500 records with 1,000-character notes, held as automerge Text by
//! older builds: one op per character) has about 600,000 ops in 0.8 MB. Bytes this walk cannot
//! follow (not a chunk, cut short) are left to automerge, which refuses them; only what it can
//! follow and finds too large is refused here.

use std::io::Read;

/// Rows any column (and any set of inputs that arrive together, [`check_together`]) may claim
/// whatever its size. A saved document compresses its columns, so a file of repetitive notes
/// held as Text by older builds claims many rows per byte: 200 notes of a repeated sentence
/// (32,000 characters) claim 163,000 rows in 3.4 KB. A lower floor would refuse such honest
/// files; what a dense input costs is bounded instead by sharing the floor among inputs that
/// arrive together (about 110 ms and 31 MB of automerge's work for the whole floor).
pub const MAX_ROWS: u64 = 1 << 20;
/// Rows each document of a frame or a bundle may claim beyond what its bytes allow, on top of
/// the [`MAX_ROWS`] they share ([`check_documents`]): a saved document of 200 notes of one
/// repeated sentence, held as Text by an older build, claims 163,000 rows in 3.4 KB, 136,000
/// beyond its bytes' share.
pub const DOC_FLOOR: u64 = 1 << 18;
/// Rows a column may claim per byte of the chunk that holds it, beyond [`MAX_ROWS`].
pub const ROWS_PER_BYTE: u64 = 8;
/// Rows no column may claim, however large its chunk: a chunk can itself be the output of a
/// decompression (a bundle's zstd payload, a sync frame's body), so its size proves little.
pub const MAX_COLUMN_ROWS: u64 = 1 << 23;
/// Rows all the columns of one input may claim together, however large it is.
pub const MAX_TOTAL_ROWS: u64 = 1 << 25;
/// Bytes any compressed part may inflate to whatever its size.
pub const MAX_INFLATED: u64 = 16 << 20;
/// How many times its own size a compressed part may inflate to, beyond [`MAX_INFLATED`].
pub const INFLATE_RATIO: u64 = 64;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DEFLATE: u32 = 0b1000;

/// Why a peer's bytes were not given to automerge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsound {
    /// A column (or all of them together) claims more rows than the bytes could hold.
    Rows { claimed: u64, allowed: u64 },
    /// A compressed part inflates to more than its size allows.
    Inflated { allowed: u64 },
    /// An operation increments a counter ([`INCREMENT`]).
    Increment,
}

/// The action automerge's op columns give an increment of a counter. No school file holds a
/// counter, and automerge 0.12 takes an increment naming a value that is not one: a modified
/// app's increment over a withdrawal of consent took its place, and listing such a change back
/// out of the document (`Automerge::get_changes`, which the store does for every merge) made
/// automerge panic, depending on the actors' order (consent story 16b). So an input holding
/// one is refused whole, before automerge reads it.
pub const INCREMENT: u64 = 5;

/// The op columns' action column: column 4, unsigned integers (`(4 << 4) | 2`).
const ACTION_COLUMN: u32 = 0x42;

/// Checks every chunk in `bytes` (see the module docs); returns the rows they claim.
pub fn check(bytes: &[u8]) -> Result<u64, Unsound> {
    check_group(&[bytes], 0, MAX_TOTAL_ROWS)
}

/// Checks the parts of one input that arrived together (the change chunks of one sync
/// message): each as [`check`] would, and all of them against one allowance for their bytes
/// together, never more than [`MAX_TOTAL_ROWS`]: they all go into one document, as one
/// input's chunks do (see the module docs). Returns the rows they claim together: what
/// automerge will build from them, which the hub counts against the sender's daily quota
/// before it does.
pub fn check_together(parts: &[&[u8]]) -> Result<u64, Unsound> {
    check_group(parts, 0, MAX_TOTAL_ROWS)
}

/// Checks the documents of one `Changes` frame or one bundle: each as [`check`] would, and all
/// of them against one allowance of [`MAX_ROWS`] plus [`DOC_FLOOR`] each beyond what their
/// bytes allow (see the module docs). Returns the rows they claim together. Each document is
/// its own input, capped at [`MAX_TOTAL_ROWS`]; the documents together are not (a whole
/// school's file for an administrator's new device holds every child's file), and what a
/// member's documents claim is charged to her day before any is read.
pub fn check_documents(docs: &[&[u8]]) -> Result<u64, Unsound> {
    check_group(docs, DOC_FLOOR, u64::MAX)
}

fn check_group(inputs: &[&[u8]], floor_each: u64, cap: u64) -> Result<u64, Unsound> {
    let bytes: usize = inputs.iter().map(|i| i.len()).sum();
    let allowed = inputs
        .iter()
        .fold(allowed_rows(bytes), |sum, _| sum.saturating_add(floor_each))
        .min(cap);
    let mut claimed: u64 = 0;
    let mut inflated = Budget {
        used: 0,
        allowed: inflate_allowance(bytes),
    };
    for input in inputs {
        // Each input is bounded alone as before (its own total, capped), then counted into the
        // group's.
        let mut walk = Walk {
            total: 0,
            allowed_total: allowed_rows(input.len()).min(MAX_TOTAL_ROWS),
            inflated: &mut inflated,
        };
        let mut rest = *input;
        while let Some(next) = walk.chunk(rest)? {
            rest = next;
        }
        claimed = claimed.saturating_add(walk.total);
        if claimed > allowed {
            return Err(Unsound::Rows { claimed, allowed });
        }
    }
    Ok(claimed)
}

/// Bytes the compressed parts of a group may inflate to, together.
struct Budget {
    used: u64,
    allowed: u64,
}

fn inflate_allowance(len: usize) -> u64 {
    MAX_INFLATED.saturating_add(INFLATE_RATIO.saturating_mul(len as u64))
}

fn allowed_rows(len: usize) -> u64 {
    MAX_ROWS.saturating_add(ROWS_PER_BYTE.saturating_mul(len as u64))
}

/// Reading position in a byte slice; `None` when the bytes end or are malformed (then the walk
/// stops, and automerge refuses them).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn uleb(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn sleb(&mut self) -> Option<i64> {
        let mut value: i64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift >= 64 {
                return None;
            }
            value |= i64::from(b & 0x7f).checked_shl(shift)?;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Some(value);
            }
        }
    }

    /// A length-prefixed byte string.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.uleb()?;
        self.take(n)
    }

    /// `count` items of `size` bytes each, after a count.
    fn fixed_items(&mut self, size: u64) -> Option<()> {
        let n = self.uleb()?;
        self.take(n.checked_mul(size)?).map(|_| ())
    }

    /// Length-prefixed byte strings, after a count.
    fn strings(&mut self) -> Option<()> {
        let n = self.uleb()?;
        for _ in 0..n {
            self.bytes()?;
        }
        Some(())
    }
}

struct Walk<'b> {
    total: u64,
    allowed_total: u64,
    inflated: &'b mut Budget,
}

/// What a malformed part means for the walk: stop, automerge will refuse it.
type Step<T> = Result<Option<T>, Unsound>;

impl Walk<'_> {
    /// Checks the chunk at the start of `bytes`; the bytes after it, or `None` to stop.
    fn chunk<'a>(&mut self, bytes: &'a [u8]) -> Step<&'a [u8]> {
        let mut r = Reader(bytes);
        let Some(magic) = r.take(4) else {
            return Ok(None);
        };
        if magic != MAGIC {
            return Ok(None);
        }
        let (Some(_checksum), Some(kind), Some(len)) = (r.take(4), r.byte(), r.uleb()) else {
            return Ok(None);
        };
        let Some(body) = r.take(len) else {
            return Ok(None);
        };
        let allowed = allowed_rows(body.len()).min(MAX_COLUMN_ROWS);
        let done = match kind {
            0 => self.document(body, allowed)?,
            1 => self.change(body, allowed)?,
            2 => {
                let inflated = self.inflate(body)?;
                self.change(&inflated, allowed)?
            }
            3 => self.bundle(body, allowed)?,
            _ => None,
        };
        Ok(done.map(|()| r.0))
    }

    /// Actors, heads, the metadata of the change columns and of the op columns, then the
    /// data of each.
    fn document(&mut self, body: &[u8], allowed: u64) -> Step<()> {
        let mut r = Reader(body);
        let Some((changes, ops)) = r
            .strings()
            .and_then(|()| r.fixed_items(32))
            .and_then(|()| Some((meta(&mut r)?, meta(&mut r)?)))
        else {
            return Ok(None);
        };
        if self.data(&mut r, changes, allowed, false)?.is_none() {
            return Ok(None);
        }
        self.data(&mut r, ops, allowed, true)
    }

    /// Dependencies, actor, sequence number, first op, time, message, other actors, then the op
    /// columns.
    fn change(&mut self, body: &[u8], allowed: u64) -> Step<()> {
        let mut r = Reader(body);
        let Some(ops) = r
            .fixed_items(32)
            .and_then(|()| r.bytes())
            .and_then(|_| r.uleb())
            .and_then(|_| r.uleb())
            .and_then(|_| r.sleb())
            .and_then(|_| r.bytes())
            .and_then(|_| r.strings())
            .and_then(|()| meta(&mut r))
        else {
            return Ok(None);
        };
        self.data(&mut r, ops, allowed, true)
    }

    /// Dependencies, actors, then the change columns and the op columns, each with its data.
    fn bundle(&mut self, body: &[u8], allowed: u64) -> Step<()> {
        let mut r = Reader(body);
        let Some(changes) = r
            .fixed_items(32)
            .and_then(|()| r.strings())
            .and_then(|()| meta(&mut r))
        else {
            return Ok(None);
        };
        if self.data(&mut r, changes, allowed, false)?.is_none() {
            return Ok(None);
        }
        let Some(ops) = meta(&mut r) else {
            return Ok(None);
        };
        self.data(&mut r, ops, allowed, true)
    }

    /// The data of the columns `specs` describes, each counted against `allowed`; in `ops`
    /// columns, an increment is refused ([`INCREMENT`]).
    fn data(
        &mut self,
        r: &mut Reader<'_>,
        specs: Vec<(u32, u64)>,
        allowed: u64,
        ops: bool,
    ) -> Step<()> {
        for (spec, len) in specs {
            let Some(data) = r.take(len) else {
                return Ok(None);
            };
            let inflated;
            let data = if spec & DEFLATE != 0 {
                inflated = self.inflate(data)?;
                &inflated[..]
            } else {
                data
            };
            if ops && spec & !DEFLATE == ACTION_COLUMN && holds(data, INCREMENT) {
                return Err(Unsound::Increment);
            }
            let rows = rows_of(spec & 0b111, data);
            if rows > allowed {
                return Err(Unsound::Rows {
                    claimed: rows,
                    allowed,
                });
            }
            self.total = self.total.saturating_add(rows);
            if self.total > self.allowed_total {
                return Err(Unsound::Rows {
                    claimed: self.total,
                    allowed: self.allowed_total,
                });
            }
        }
        Ok(Some(()))
    }
}

/// A set of columns' metadata: how many, then each one's spec and length.
fn meta(r: &mut Reader<'_>) -> Option<Vec<(u32, u64)>> {
    let n = r.uleb()?;
    let mut specs = Vec::new();
    for _ in 0..n {
        let spec = u32::try_from(r.uleb()?).ok()?;
        specs.push((spec, r.uleb()?));
    }
    Some(specs)
}

/// Whether an unsigned run-length encoded column holds `value` (as far as its bytes can be
/// followed).
fn holds(data: &[u8], value: u64) -> bool {
    let mut r = Reader(data);
    while let Some(n) = r.sleb() {
        let found = match n {
            0 => r.uleb().map(|_| false),
            n if n > 0 => r.uleb().map(|v| v == value),
            n => {
                let mut found = Some(false);
                for _ in 0..n.unsigned_abs() {
                    match r.uleb() {
                        Some(v) if v == value => return true,
                        Some(_) => {}
                        None => {
                            found = None;
                            break;
                        }
                    }
                }
                found
            }
        };
        match found {
            Some(true) => return true,
            Some(false) => {}
            None => return false,
        }
    }
    false
}

/// The rows a column of this type claims (as far as its bytes can be followed).
fn rows_of(kind: u32, data: &[u8]) -> u64 {
    let mut r = Reader(data);
    let mut rows: u64 = 0;
    match kind {
        // Boolean: alternating run lengths.
        4 => {
            while let Some(n) = r.uleb() {
                rows = rows.saturating_add(n);
            }
        }
        // Raw values: counted through their metadata column.
        7 => {}
        // Run-length encoded: group, actor, unsigned, delta, string, value metadata.
        _ => {
            let value = |r: &mut Reader<'_>| -> Option<()> {
                match kind {
                    3 => r.sleb().map(|_| ()),
                    5 => r.bytes().map(|_| ()),
                    _ => r.uleb().map(|_| ()),
                }
            };
            while let Some(n) = r.sleb() {
                let more = match n {
                    0 => r.uleb(),
                    n if n > 0 => value(&mut r).map(|()| n.unsigned_abs()),
                    n => {
                        let literals = n.unsigned_abs();
                        let mut read = 0;
                        while read < literals && value(&mut r).is_some() {
                            read += 1;
                        }
                        Some(read)
                    }
                };
                let Some(more) = more else { break };
                rows = rows.saturating_add(more);
            }
        }
    }
    rows
}

impl Walk<'_> {
    /// [`inflate`], within what the group has left to inflate.
    fn inflate(&mut self, data: &[u8]) -> Result<Vec<u8>, Unsound> {
        let left = self.inflated.allowed.saturating_sub(self.inflated.used);
        let out = inflate_within(data, inflate_allowance(data.len()).min(left))?;
        self.inflated.used = self.inflated.used.saturating_add(out.len() as u64);
        Ok(out)
    }
}

/// Inflates a compressed part (raw DEFLATE, as automerge writes it), refusing it once it
/// passes its bound.
#[cfg(test)]
fn inflate(data: &[u8]) -> Result<Vec<u8>, Unsound> {
    inflate_within(data, inflate_allowance(data.len()))
}

/// Inflates a compressed part, refusing it once it passes `allowed` bytes.
fn inflate_within(data: &[u8], allowed: u64) -> Result<Vec<u8>, Unsound> {
    let mut out = Vec::new();
    let mut reader = flate2::read::DeflateDecoder::new(data).take(allowed.saturating_add(1));
    // Bytes that do not inflate are automerge's to refuse: the walk sees what came out.
    let _ = reader.read_to_end(&mut out);
    if out.len() as u64 > allowed {
        return Err(Unsound::Inflated { allowed });
    }
    Ok(out)
}

/// Probes per hash a peer's bloom filter may ask for (automerge's own filters use 7).
pub const MAX_BLOOM_PROBES: u64 = 64;

/// Whether a bloom filter from a peer's sync message (laid out as
/// `automerge::sync::BloomFilter::to_bytes` does: entries, bits per entry, probes, the bits) is
/// safe to hand to automerge. automerge checks every change it might send against the peer's
/// filter with the filter's own parameters: a filter with entries but no bits made it divide by
/// zero (a panic, found by fuzzing), and one claiming 4 billion probes makes it reserve 16 GiB
/// for them (an abort). A filter with no entries is automerge's "none" and is never read.
pub fn bloom_is_sound(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    let mut r = Reader(bytes);
    let (Some(entries), Some(_bits_per_entry), Some(probes)) = (r.uleb(), r.uleb(), r.uleb())
    else {
        return false;
    };
    // automerge indexes the bits with a u32 (`8 * len`).
    let bits = r.0.len() as u64;
    entries == 0 || (probes <= MAX_BLOOM_PROBES && bits > 0 && bits <= u64::from(u32::MAX) / 8)
}

/// The most `have` entries a peer's sync message may carry (automerge sends one).
pub const MAX_HAVES: u64 = 16;

/// The most `need` entries a peer's sync message may carry. automerge lists there the peer's
/// heads it lacks and what they rest on that it lacks too (`missing_deps_from`, each once):
/// a document's heads are the changes its writers made concurrently, and a child's file is
/// written by a few carers' devices and the office, the school document by its
/// administrators. Far below a thousand.
pub const MAX_NEEDS: u64 = 1024;

/// The fewest bytes a change chunk in a peer's sync message may take: magic, checksum, type
/// and length take 10, and a change's body its dependencies, actor (16 bytes), sequence,
/// start op, time, message and columns (automerge's one-op changes take 41 to 57 bytes).
pub(crate) const MIN_CHANGE_CHUNK: u64 = 32;

/// Whether a peer's automerge sync message (laid out as `automerge::sync::Message::encode`
/// writes it: a type byte, the heads, the needs, the haves, the changes, flags) keeps to what
/// its size can honestly hold, checked before automerge decodes it.
///
/// automerge's decoder allocates an entry for each item a list's count claims as it reads
/// them: 64 million empty changes (a zero byte each) took 1.6 GiB, and 32 million empty
/// `have` entries (two zero bytes each) 2.2 GiB, from a 64 MiB body that a 2 KB compressed
/// frame unpacks to. So hashes must fit in the bytes left (32 each), at most [`MAX_NEEDS`]
/// `need` entries, none twice (automerge builds the change each one names, repeats included:
/// one hash listed a hundred thousand times in a few KB of frame would have it build that
/// change as often, outside the guard on a peer's bytes), at most [`MAX_HAVES`] haves, each with a sound bloom filter ([`bloom_is_sound`]), and every change at least
/// [`MIN_CHANGE_CHUNK`] bytes: what automerge keeps is then at most about 2.5 times the
/// message (a vector per change, 24 bytes beside its bytes).
pub fn sync_message_is_sound(bytes: &[u8]) -> bool {
    let mut r = Reader(bytes);
    if !matches!(r.byte(), Some(0x42 | 0x43)) {
        return false;
    }
    let hashes = |r: &mut Reader<'_>| {
        r.uleb()
            .and_then(|n| n.checked_mul(32))
            .and_then(|n| r.take(n))
            .is_some()
    };
    if !hashes(&mut r) {
        return false;
    }
    // automerge answers each `need` entry with that change, repeats included.
    let Some(needs) = r.uleb().filter(|n| *n <= MAX_NEEDS) else {
        return false;
    };
    let Some(mut need) = r
        .take(needs * 32)
        .map(|b| b.chunks_exact(32).collect::<Vec<_>>())
    else {
        return false;
    };
    need.sort_unstable();
    if need.windows(2).any(|w| w[0] == w[1]) {
        return false;
    }
    let Some(haves) = r.uleb().filter(|n| *n <= MAX_HAVES) else {
        return false;
    };
    for _ in 0..haves {
        if !hashes(&mut r) {
            return false;
        }
        match r.uleb().and_then(|n| r.take(n)) {
            Some(bloom) if bloom_is_sound(bloom) => {}
            _ => return false,
        }
    }
    let Some(changes) = r.uleb() else {
        return false;
    };
    if changes.saturating_mul(MIN_CHANGE_CHUNK + 1) > r.0.len() as u64 {
        return false;
    }
    for _ in 0..changes {
        match r.uleb() {
            Some(n) if n >= MIN_CHANGE_CHUNK && r.take(n).is_some() => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use automerge::sync::BloomFilter;
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ROOT};

    fn uleb(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn sleb(mut v: i64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0) {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    /// A document chunk (with its checksum right) whose change columns claim `runs` actors in
    /// one run: what the fuzzer found.
    fn claiming(runs: i64) -> Vec<u8> {
        padded(runs, 0)
    }

    /// [`claiming`] with `pad` bytes of zeros in a raw column beside it, which claims no rows:
    /// a chunk as large as its claim needs, as a compressed frame's body can hold it cheaply.
    fn padded(runs: i64, pad: usize) -> Vec<u8> {
        let mut body = Vec::new();
        uleb(1, &mut body); // one actor
        uleb(2, &mut body);
        body.extend_from_slice(&[0xaa, 0xbb]);
        uleb(0, &mut body); // no heads
        let mut actor_col = Vec::new();
        sleb(runs, &mut actor_col);
        uleb(0, &mut actor_col);
        uleb(if pad > 0 { 2 } else { 1 }, &mut body);
        uleb(1, &mut body); // the actor column (id 0, type 1)
        uleb(actor_col.len() as u64, &mut body);
        if pad > 0 {
            uleb(0x17, &mut body); // a raw column (id 1, type 7)
            uleb(pad as u64, &mut body);
        }
        uleb(0, &mut body); // no op columns
        body.extend_from_slice(&actor_col);
        body.resize(body.len() + pad, 0);
        let mut hashed = vec![0u8];
        uleb(body.len() as u64, &mut hashed);
        hashed.extend_from_slice(&body);
        use sha2::Digest;
        let sum = sha2::Sha256::digest(&hashed);
        let mut chunk = MAGIC.to_vec();
        chunk.extend_from_slice(&sum[..4]);
        chunk.extend_from_slice(&hashed);
        chunk
    }

    /// Real sync messages pass; lists longer than their bytes could hold, or empty changes by
    /// the million, do not.
    #[test]
    fn a_sync_message_claims_no_more_than_its_bytes_hold() {
        use automerge::sync::{State, SyncDoc};
        let mut a = Automerge::new();
        let mut tx = a.transaction();
        tx.put(ROOT, "name", "郭庄小学").unwrap();
        tx.commit();
        let mut b = Automerge::new();
        let (mut sa, mut sb) = (State::new(), State::new());
        // Each message checked, then passed on, until both sides have nothing to say.
        let pass =
            |from: &mut Automerge, s_from: &mut State, to: &mut Automerge, s_to: &mut State| {
                let Some(m) = from.generate_sync_message(s_from) else {
                    return false;
                };
                let bytes = m.encode();
                assert!(sync_message_is_sound(&bytes), "{bytes:?}");
                let m = automerge::sync::Message::decode(&bytes).unwrap();
                to.receive_sync_message(s_to, m).unwrap();
                true
            };
        for _ in 0..8 {
            let there = pass(&mut a, &mut sa, &mut b, &mut sb);
            let back = pass(&mut b, &mut sb, &mut a, &mut sa);
            if !there && !back {
                break;
            }
        }
        assert_eq!(b.get_heads(), a.get_heads());

        // Empty changes by the million.
        let mut bomb = vec![0x42, 0, 0, 0];
        uleb(1_000_000, &mut bomb);
        bomb.extend(std::iter::repeat_n(0u8, 1_000_000));
        assert!(!sync_message_is_sound(&bomb));
        // `have` entries by the million.
        let mut bomb = vec![0x42, 0, 0];
        uleb(1_000_000, &mut bomb);
        bomb.extend(std::iter::repeat_n(0u8, 2_000_000));
        bomb.push(0);
        assert!(!sync_message_is_sound(&bomb));
        // Heads claimed beyond the bytes.
        let mut bomb = vec![0x42];
        uleb(1 << 40, &mut bomb);
        assert!(!sync_message_is_sound(&bomb));
        assert!(!sync_message_is_sound(&[0x41, 0, 0, 0, 0]));
    }

    /// The change chunks of one sync message all go into one document: together they claim
    /// no more than one input may ([`MAX_TOTAL_ROWS`]), however many bytes they take. Five
    /// chunks of a megabyte each claim eight million rows, within what each one's bytes allow,
    /// 40 million together: a compressed frame's body holds them in a few kilobytes.
    #[test]
    fn the_changes_of_one_message_claim_no_more_than_one_input_may() {
        let chunk = padded(1 << 23, 1 << 20);
        assert_eq!(check(&chunk), Ok(1 << 23));
        let five: Vec<&[u8]> = vec![&chunk; 5];
        assert!(matches!(
            check_together(&five),
            Err(Unsound::Rows { allowed, .. }) if allowed <= MAX_TOTAL_ROWS
        ));
        assert_eq!(check_together(&five[..3]), Ok(3 << 23));
    }

    /// automerge answers a sync message's `need` list with a change for each entry, repeats
    /// included: one hash listed a hundred thousand times in 3 MB (a few KB of compressed
    /// frame) would have it build that change a hundred thousand times. Repeats are refused, and
    /// lists longer than [`MAX_NEEDS`].
    #[test]
    fn a_sync_message_needing_a_change_twice_or_too_many_is_refused() {
        // Laid out by hand: automerge's encoder insists on sorted lists.
        let message = |need: Vec<automerge::ChangeHash>| {
            let mut bytes = vec![0x42, 0];
            uleb(need.len() as u64, &mut bytes);
            for h in &need {
                bytes.extend_from_slice(&h.0);
            }
            bytes.extend_from_slice(&[0, 0]); // no haves, no changes
            bytes
        };
        let hash = |i: u64| {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_le_bytes());
            automerge::ChangeHash(h)
        };
        let distinct = |n: u64| (0..n).map(hash).collect::<Vec<_>>();
        assert!(sync_message_is_sound(&message(distinct(3))));
        assert!(sync_message_is_sound(&message(distinct(MAX_NEEDS))));
        assert!(!sync_message_is_sound(&message(distinct(MAX_NEEDS + 1))));
        assert!(!sync_message_is_sound(&message(vec![hash(7); 100_000])));
        assert!(!sync_message_is_sound(&message(vec![
            hash(1),
            hash(2),
            hash(1)
        ])));
    }

    #[test]
    fn a_run_of_billions_in_a_few_bytes_is_refused() {
        let bomb = claiming(1 << 33);
        assert!(bomb.len() < 40);
        assert!(matches!(check(&bomb), Err(Unsound::Rows { .. })));
        // The walk reads the chunk as automerge does: a modest claim passes it (automerge then
        // refuses the chunk for its missing columns).
        assert_eq!(check(&claiming(1000)), Ok(1000));
    }

    #[test]
    fn inputs_that_arrive_together_share_one_allowance() {
        let dense = claiming(700_000);
        // What passes is returned as the rows it claims.
        assert_eq!(check(&dense), Ok(700_000));
        assert_eq!(check_together(&[&dense]), Ok(700_000));
        assert!(matches!(
            check_together(&[&dense, &dense]),
            Err(Unsound::Rows { .. })
        ));
        // Documents get a floor each beyond the one they share: two pass, four do not.
        assert_eq!(check_documents(&[&dense, &dense]), Ok(1_400_000));
        assert!(matches!(
            check_documents(&[&dense, &dense, &dense, &dense]),
            Err(Unsound::Rows { .. })
        ));
        // Honest inputs together pass as they pass alone.
        let modest = claiming(1000);
        assert_eq!(check_together(&[&modest, &modest, &dense]), Ok(702_000));
    }

    /// Each compressed part may inflate to 16 MB, and all of a group's together to that for
    /// their bytes together: zeros claim no rows, so only this bounds the work.
    #[test]
    fn compressed_parts_checked_together_share_what_they_may_inflate_to() {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, &vec![0u8; 12 << 20]).unwrap();
        let zeros = e.finish().unwrap();
        // A change chunk whose body is one compressed change: 12 MB of zeros.
        let mut chunk = MAGIC.to_vec();
        chunk.extend_from_slice(&[0; 4]);
        chunk.push(2);
        let mut len = Vec::new();
        uleb(zeros.len() as u64, &mut len);
        chunk.extend_from_slice(&len);
        chunk.extend_from_slice(&zeros);
        assert!(check(&chunk).is_ok());
        assert!(matches!(
            check_together(&[&chunk, &chunk]),
            Err(Unsound::Inflated { .. })
        ));
    }

    #[test]
    fn real_documents_changes_and_sync_messages_pass() {
        let mut doc = Automerge::new();
        for i in 0..200 {
            let mut tx = doc.transaction();
            let text = tx
                .put_object(&ROOT, format!("note{i}"), automerge::ObjType::Text)
                .unwrap();
            tx.splice_text(&text, 0, 0, &"留守儿童谈心记录".repeat(20))
                .unwrap();
            tx.put(&ROOT, "count", i).unwrap();
            tx.commit();
        }
        assert!(check(&doc.save()).is_ok());
        assert!(check(&doc.save_nocompress()).is_ok());
        for c in doc.get_changes(&[]) {
            assert!(check(c.raw_bytes()).is_ok());
            assert!(check(c.clone().bytes().as_ref()).is_ok());
        }
        use automerge::sync::SyncDoc;
        let mut state = automerge::sync::State::new();
        let mut other = automerge::sync::State::new();
        let mut empty = Automerge::new();
        let mut rounds = 0;
        while rounds < 10 {
            rounds += 1;
            if let Some(m) = doc.generate_sync_message(&mut state) {
                for chunk in m.changes.iter() {
                    assert!(check(chunk).is_ok());
                }
                empty.receive_sync_message(&mut other, m).unwrap();
            }
            if let Some(m) = empty.generate_sync_message(&mut other) {
                doc.receive_sync_message(&mut state, m).unwrap();
            }
        }
        assert_eq!(empty.get_heads(), doc.get_heads());
    }

    /// An increment is found wherever automerge puts it: in a change (plain or compressed),
    /// in a saved document (its columns compressed or not), in a sync message's bundle, after
    /// other actions in a run of literals or in a run of its own.
    #[test]
    fn an_increment_is_refused_in_every_kind_of_chunk() {
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(&ROOT, "visits", automerge::ScalarValue::counter(0))
            .unwrap();
        tx.commit();
        let mut tx = doc.transaction();
        let text = tx
            .put_object(&ROOT, "note", automerge::ObjType::Text)
            .unwrap();
        // Long enough for automerge to compress the change and the document's columns.
        tx.splice_text(&text, 0, 0, &"家访记录".repeat(200))
            .unwrap();
        tx.put(&ROOT, "school", "郭庄小学").unwrap();
        tx.increment(&ROOT, "visits", 1).unwrap();
        tx.commit();
        let mut tx = doc.transaction();
        for _ in 0..3 {
            tx.increment(&ROOT, "visits", 1).unwrap();
        }
        tx.commit();
        let refused = |bytes: &[u8]| check(bytes) == Err(Unsound::Increment);
        let changes = doc.get_changes(&[]);
        assert!(
            !refused(changes[0].raw_bytes()),
            "no increment in the first"
        );
        for c in &changes[1..] {
            assert!(refused(c.raw_bytes()));
            assert!(refused(c.clone().bytes().as_ref()));
        }
        assert!(changes[1].clone().bytes().len() < changes[1].raw_bytes().len());
        assert!(refused(&doc.save()));
        assert!(refused(&doc.save_nocompress()));
        // A sync message to a peer holding nothing: the first says what it has, the peer
        // answers, the second carries the changes.
        use automerge::sync::{State, SyncDoc};
        let (mut ours, mut theirs) = (State::new(), State::new());
        let mut peer = Automerge::new();
        let first = doc.generate_sync_message(&mut ours).unwrap();
        peer.receive_sync_message(&mut theirs, first).unwrap();
        let reply = peer.generate_sync_message(&mut theirs).unwrap();
        doc.receive_sync_message(&mut ours, reply).unwrap();
        let m = doc.generate_sync_message(&mut ours).unwrap();
        assert!(!m.changes.is_empty());
        assert!(m.changes.iter().any(refused));
        let chunks: Vec<&[u8]> = m.changes.iter().collect();
        assert_eq!(check_together(&chunks), Err(Unsound::Increment));
    }

    #[test]
    fn a_compressed_part_that_inflates_too_far_is_refused() {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        // 64 MB of zeros pack into about 64 KB: far past 16 MB + 64 × 64 KB.
        std::io::Write::write_all(&mut e, &vec![0u8; 64 << 20]).unwrap();
        let packed = e.finish().unwrap();
        assert!(packed.len() < 128 << 10);
        assert!(matches!(inflate(&packed), Err(Unsound::Inflated { .. })));
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, &[7u8; 4096]).unwrap();
        assert_eq!(inflate(&e.finish().unwrap()).unwrap().len(), 4096);
    }

    #[test]
    fn a_bloom_filter_without_bits_or_with_billions_of_probes_is_unsound() {
        let hashes: Vec<automerge::ChangeHash> =
            (0..40u8).map(|i| automerge::ChangeHash([i; 32])).collect();
        for real in [
            BloomFilter::default(),
            BloomFilter::from_hashes(hashes[..1].iter()),
            BloomFilter::from_hashes(hashes.iter()),
        ] {
            assert!(bloom_is_sound(&real.to_bytes()), "{real:?}");
        }
        let broken: [&[u8]; 4] = [
            &[1, 0, 7],                                   // no bits
            &[1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0], // u32::MAX probes
            &[1, 10, 65, 0, 0],                           // one probe too many
            &[1, 10],                                     // cut short
        ];
        for bytes in broken {
            assert!(!bloom_is_sound(bytes), "{bytes:?}");
        }
        // No entries: automerge never reads the rest.
        assert!(bloom_is_sound(&[0, 0, 0]));
    }
}
