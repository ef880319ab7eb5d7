//! Bundles: a device's changes on a USB stick or sent over 微信.
//!
//! A bundle *file* is always sealed ([`seal`]): signed by the device that exported it and
//! encrypted to the devices that may read it. This module is the plain encoding inside the
//! seal, also sent as it is over a connection both ends have authenticated (the hub's
//! enrollment).
//!
//! # Plain format (version 3)
//!
//! ```text
//! "SWBUNDLE"           8 bytes magic
//! version              u8 (3 when the file lists held documents, else 2; version 1 files,
//!                      without the next field, are still read)
//! school id            u8 length, then UTF-8
//! new device           u8 length (0: none), then UTF-8: the device this bundle enrolls
//! held documents       version 3 only: u16 count (at least 1), then per document its key
//!                      (u16 length, UTF-8) and the changes held (u16 count, 32-byte hashes)
//! payload length       u32 little-endian
//! payload              zstd-compressed entries
//! checksum             SHA-256 of every byte before it
//! ```
//!
//! The payload is a sequence of entries, each: document key (u16 length, UTF-8), the document's
//! heads when exported (u16 count, then 32-byte hashes), and automerge bytes (u32 length): a
//! whole saved document, or only the changes after heads the receiver is known to have. A
//! whole document is saved without automerge's own deflate: zstd over the plain columns of all
//! the documents together is about 0.6× the size of the deflated documents (a class's year:
//! 21.9 KB against 36.2 KB). Either form is read.
//!
//! *Held documents* are documents the exporting device holds and does not send, because the
//! receiver's member may no longer see them, with the hashes of the changes her devices made
//! in them that it holds: the receiver may then drop its copy without losing work nobody else
//! has (`Archive::purge_out_of_scope`). No data, only hashes of the receiver's own changes. A
//! file without them is written as version 2, byte for byte what older builds read.
//!
//! Decoding checks everything before anything is applied: magic, version, lengths, checksum,
//! the decompressed size (at most [`MAX_PAYLOAD`], and no more than [`payload_limit`] allows
//! for its compressed size), every document key, at most `sync::wire::MAX_DOCS` documents. A truncated or altered
//! file is refused as a whole. Applying a bundle twice changes nothing: automerge ignores
//! changes it already has, and the store writes nothing when no document's heads moved.

pub mod seal;

use std::collections::BTreeMap;

use automerge::ChangeHash;
use sha2::{Digest, Sha256};

use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, SchoolId};

const MAGIC: &[u8; 8] = b"SWBUNDLE";
const VERSION: u8 = 3;
/// The version of a file that lists no held documents (older builds read it).
const VERSION_WITHOUT_HELD: u8 = 2;
/// Largest decompressed payload accepted.
pub const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

/// The most a payload of `compressed` bytes may unpack to: as a sync frame's body
/// (`sync::wire::body_limit`: 8 MiB whatever its size, beyond that 64 times its size), up to
/// [`MAX_PAYLOAD`]. zstd packs zeros about thirty-thousandfold, so without a ratio a file of a
/// few KB from any device of the school made the receiver allocate and fill 256 MiB; an honest
/// file (automerge's plain columns, keys, random hashes) packs a few times over.
pub fn payload_limit(compressed: usize) -> usize {
    use crate::sync::wire::{BODY_FLOOR, BODY_RATIO};
    BODY_FLOOR
        .max(BODY_RATIO.saturating_mul(compressed))
        .min(MAX_PAYLOAD)
}

/// One document's part of a bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub doc: DocId,
    pub heads: Vec<ChangeHash>,
    pub data: Vec<u8>,
}

/// A document the exporting device holds and does not send (the receiver may no longer see
/// it), and which of the receiver's own changes in it the exporter holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub doc: DocId,
    pub changes: Vec<ChangeHash>,
}

/// A decoded bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    pub school: SchoolId,
    /// The device an administrator registered for the member this bundle is for: a new device
    /// set up from the bundle takes this id (and its automerge actor).
    pub device: Option<DeviceId>,
    pub entries: Vec<Entry>,
    /// Documents held and not sent (see the module docs); empty in most files.
    pub held: Vec<Held>,
}

impl Bundle {
    /// The heads per document, to export only what came after ("since this bundle").
    pub fn heads(&self) -> BTreeMap<DocId, Vec<ChangeHash>> {
        self.entries
            .iter()
            .map(|e| (e.doc.clone(), e.heads.clone()))
            .collect()
    }

    /// Encodes the bundle.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut payload = Vec::new();
        for e in &self.entries {
            let key = e.doc.key();
            payload.extend_from_slice(&(key.len() as u16).to_le_bytes());
            payload.extend_from_slice(key.as_bytes());
            payload.extend_from_slice(&(e.heads.len() as u16).to_le_bytes());
            for h in &e.heads {
                payload.extend_from_slice(h.as_ref());
            }
            let len = u32::try_from(e.data.len())
                .map_err(|_| Error::invalid("导出文件", "单个档案太大"))?;
            payload.extend_from_slice(&len.to_le_bytes());
            payload.extend_from_slice(&e.data);
        }
        let compressed = zstd::bulk::compress(&payload, 9)?;
        self.around(&compressed)
    }

    /// The file around a compressed payload: header, payload, checksum.
    fn around(&self, compressed: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(compressed.len() + 80);
        out.extend_from_slice(MAGIC);
        out.push(if self.held.is_empty() {
            VERSION_WITHOUT_HELD
        } else {
            VERSION
        });
        let school = self.school.as_str().as_bytes();
        out.push(u8::try_from(school.len()).map_err(|_| Error::Corrupt("学校编号太长".into()))?);
        out.extend_from_slice(school);
        let device = self
            .device
            .as_ref()
            .map_or(&[][..], |d| d.as_str().as_bytes());
        out.push(u8::try_from(device.len()).map_err(|_| Error::Corrupt("设备编号太长".into()))?);
        out.extend_from_slice(device);
        if !self.held.is_empty() {
            let too_many = || Error::invalid("导出文件", "不再发送的档案太多");
            out.extend_from_slice(
                &u16::try_from(self.held.len())
                    .map_err(|_| too_many())?
                    .to_le_bytes(),
            );
            for h in &self.held {
                let key = h.doc.key();
                out.extend_from_slice(&(key.len() as u16).to_le_bytes());
                out.extend_from_slice(key.as_bytes());
                let n = u16::try_from(h.changes.len()).map_err(|_| too_many())?;
                out.extend_from_slice(&n.to_le_bytes());
                for c in &h.changes {
                    out.extend_from_slice(c.as_ref());
                }
            }
        }
        let plen =
            u32::try_from(compressed.len()).map_err(|_| Error::invalid("导出文件", "太大"))?;
        out.extend_from_slice(&plen.to_le_bytes());
        out.extend_from_slice(compressed);
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        Ok(out)
    }

    /// The school an encoded bundle says it is from, read from its header without unpacking
    /// it (and without checking it: [`Bundle::decode`] does).
    pub fn school_of(bytes: &[u8]) -> Option<&str> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let (_version, rest) = rest.split_first()?;
        let (len, rest) = rest.split_first()?;
        std::str::from_utf8(rest.get(..usize::from(*len))?).ok()
    }

    /// Decodes and verifies a bundle. Any defect refuses the whole file.
    pub fn decode(bytes: &[u8]) -> Result<Bundle> {
        let bad = |what: &str| Error::Corrupt(format!("不是有效的守望数据文件（{what}）"));
        if bytes.len() < MAGIC.len() + 2 + 4 + 32 || &bytes[..8] != MAGIC {
            return Err(bad("文件头不对"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != sum {
            return Err(bad("校验失败，文件不完整或被改动"));
        }
        let mut r = Cursor { buf: &body[8..] };
        let version = r.u8()?;
        if !(1..=VERSION).contains(&version) {
            return Err(bad("版本不支持，请升级守望"));
        }
        let slen = r.u8()? as usize;
        let school = std::str::from_utf8(r.take(slen)?).map_err(|_| bad("学校编号"))?;
        let device = if version >= 2 {
            let dlen = r.u8()? as usize;
            let d = std::str::from_utf8(r.take(dlen)?).map_err(|_| bad("设备编号"))?;
            if !d.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("设备编号"));
            }
            (!d.is_empty()).then(|| DeviceId::from(d))
        } else {
            None
        };
        let mut held = Vec::new();
        if version >= 3 {
            // A version 3 file lists at least one (one listing none is written as version 2).
            let n = r.u16()?;
            if n == 0 {
                return Err(bad("不再发送的档案"));
            }
            for _ in 0..n {
                let klen = r.u16()? as usize;
                let key = std::str::from_utf8(r.take(klen)?).map_err(|_| bad("档案编号"))?;
                let doc = DocId::parse(key).ok_or_else(|| bad("未知的档案"))?;
                let count = r.u16()? as usize;
                let mut changes = Vec::with_capacity(count.min(r.buf.len() / 32));
                for _ in 0..count {
                    changes.push(ChangeHash::try_from(r.take(32)?).map_err(|_| bad("版本号"))?);
                }
                held.push(Held { doc, changes });
            }
        }
        let plen = r.u32()? as usize;
        let compressed = r.take(plen)?;
        if !r.buf.is_empty() {
            return Err(bad("多余的数据"));
        }
        // The size the payload declares (our encoder writes it) is allocated, not the bound;
        // neither may pass what its compressed size allows.
        let limit = payload_limit(compressed.len());
        let capacity = match zstd::zstd_safe::get_frame_content_size(compressed) {
            Ok(Some(n)) if n <= limit as u64 => n as usize,
            Ok(Some(_)) => return Err(bad("解压后过大")),
            _ => limit,
        };
        let payload = zstd::bulk::decompress(compressed, capacity).map_err(|_| bad("解压失败"))?;
        let mut r = Cursor { buf: &payload };
        let mut entries = Vec::new();
        // An honest file lists each document once. Every copy of a repeated one would be
        // merged again, each with its own share of the allowance a file's documents get
        // beyond their bytes (`doc::bounds::check_documents`), as a `Changes` frame's would.
        let mut listed = std::collections::HashSet::new();
        while !r.buf.is_empty() {
            // Each entry is kept until the file is merged: no more than a frame lists.
            if entries.len() >= crate::sync::wire::MAX_DOCS {
                return Err(bad("档案太多"));
            }
            let klen = r.u16()? as usize;
            let key = std::str::from_utf8(r.take(klen)?).map_err(|_| bad("档案编号"))?;
            let doc = DocId::parse(key).ok_or_else(|| bad("未知的档案"))?;
            if !listed.insert(doc.clone()) {
                return Err(bad("同一份档案重复列出"));
            }
            let n = r.u16()? as usize;
            let mut heads = Vec::with_capacity(n.min(r.buf.len() / 32));
            for _ in 0..n {
                let h = ChangeHash::try_from(r.take(32)?).map_err(|_| bad("版本号"))?;
                heads.push(h);
            }
            let dlen = r.u32()? as usize;
            let data = r.take(dlen)?.to_vec();
            entries.push(Entry { doc, heads, data });
        }
        Ok(Bundle {
            school: SchoolId::from(school),
            device,
            entries,
            held,
        })
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::Corrupt(
                "不是有效的守望数据文件（内容被截断）".into(),
            ));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A bundle of `bundle`'s header around `compressed`, whatever it unpacks to (tests of what a
/// modified app could send).
#[cfg(test)]
pub(crate) fn with_payload(bundle: &Bundle, compressed: &[u8]) -> Vec<u8> {
    bundle.around(compressed).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ChildId;

    fn sample() -> Bundle {
        Bundle {
            school: SchoolId::from("s1"),
            device: Some(DeviceId::from("0a1b")),
            entries: vec![
                Entry {
                    doc: DocId::School,
                    heads: vec![ChangeHash([7u8; 32])],
                    data: vec![1, 2, 3],
                },
                Entry {
                    doc: DocId::Child(ChildId::from("c1")),
                    heads: vec![],
                    data: vec![9; 1000],
                },
            ],
            held: vec![],
        }
    }

    fn with_held() -> Bundle {
        Bundle {
            held: vec![
                Held {
                    doc: DocId::Private(ChildId::from("c2")),
                    changes: vec![ChangeHash([3u8; 32]), ChangeHash([4u8; 32])],
                },
                Held {
                    doc: DocId::Staff(ChildId::from("c3")),
                    changes: vec![],
                },
            ],
            ..sample()
        }
    }

    #[test]
    fn roundtrips() {
        for b in [sample(), with_held()] {
            assert_eq!(Bundle::decode(&b.encode().unwrap()).unwrap(), b);
        }
    }

    /// A file listing no held documents is the version 2 file older builds read; one listing
    /// some is version 3, and a version 3 file listing none is refused (one encoding only).
    #[test]
    fn held_documents_make_a_version_3_file_and_only_they_do() {
        let plain = sample().encode().unwrap();
        assert_eq!(plain[8], 2);
        let held = with_held().encode().unwrap();
        assert_eq!(held[8], 3);
        let mut empty = plain[..plain.len() - 32].to_vec();
        empty[8] = 3;
        let at = 8 + 1 + 1 + 2 + 1 + 4; // magic, version, school "s1", device "0a1b"
        empty.splice(at..at, [0u8, 0]);
        let sum = Sha256::digest(&empty);
        empty.extend_from_slice(&sum);
        let err = Bundle::decode(&empty).unwrap_err();
        assert!(err.to_string().contains("不再发送的档案"), "{err}");
        // The same bytes with one held document listed are read.
        let mut one = empty[..empty.len() - 32].to_vec();
        let key = b"school";
        let mut item = vec![1u8, 0, key.len() as u8, 0];
        item.extend_from_slice(key);
        item.extend_from_slice(&[0, 0]);
        one.splice(at..at + 2, item);
        let sum = Sha256::digest(&one);
        one.extend_from_slice(&sum);
        assert_eq!(Bundle::decode(&one).unwrap().held.len(), 1);
    }

    /// A payload is unpacked no further than its compressed size allows (as a sync frame's
    /// body is: `sync::wire::body_limit`), whatever size it declares: 9 MB of zeros pack into
    /// a few hundred bytes. And a file lists at most `wire::MAX_DOCS` documents, each of which
    /// the decoder keeps: empty entries of 20 bytes each, 13 million in the 256 MB a payload
    /// could unpack to, would take gigabytes.
    #[test]
    fn a_payload_unpacking_past_its_ratio_or_listing_too_many_documents_is_refused() {
        let zeros = zstd::bulk::compress(&vec![0u8; 9 << 20], 19).unwrap();
        assert!(zeros.len() < 4096, "{}", zeros.len());
        let err = Bundle::decode(&with_payload(&sample(), &zeros)).unwrap_err();
        assert!(err.to_string().contains("解压后过大"), "{err}");

        let entries = |n: usize| {
            let mut payload = Vec::new();
            for i in 0..n {
                let key = format!("child/c{i}");
                payload.extend_from_slice(&(key.len() as u16).to_le_bytes());
                payload.extend_from_slice(key.as_bytes());
                payload.extend_from_slice(&[0; 6]);
            }
            zstd::bulk::compress(&payload, 3).unwrap()
        };
        let max = crate::sync::wire::MAX_DOCS;
        let file = with_payload(&sample(), &entries(max));
        assert_eq!(Bundle::decode(&file).unwrap().entries.len(), max);
        let err = Bundle::decode(&with_payload(&sample(), &entries(max + 1)))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("档案太多")),
            "{err:?}"
        );
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        for bundle in [sample(), with_held()] {
            let bytes = bundle.encode().unwrap();
            for cut in 0..bytes.len() {
                assert!(Bundle::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            for i in 0..bytes.len() {
                let mut b = bytes.clone();
                b[i] ^= 0x40;
                assert!(Bundle::decode(&b).is_err(), "flip at {i}");
            }
        }
    }
}
