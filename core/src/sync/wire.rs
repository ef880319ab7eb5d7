//! The wire format of `shouwang/sync/1` frames.
//!
//! ```text
//! frame  = version:u8 (1) | kind:u8 | flags:u8 | check:[u8; 4] | body
//! flags  = bit 0: body is zstd-compressed
//! check  = the first 4 bytes of SHA-256(kind | flags | body): a damaged frame is refused
//!          rather than applied
//! Hello     = digest:[u8; 16] | marks         (the sender's digest, and the documents it changed)
//! Inventory = docs                            (every document in scope, the fallback)
//! Doc       = key | automerge sync message    (one document's sync message)
//! Changes   = count:u32 | (key | len:u32 | automerge changes)*
//!                                             (the changes the peer lacks, for many documents)
//! Idle      = digest:[u8; 16] | seen:u64 | [later]
//!                                             (nothing more to send: the sender's digest now,
//!                                              and how many non-Idle frames it has received;
//!                                              `later`, only when not empty: the documents left
//!                                              out of the digest for the peer's next sync)
//! Error     = UTF-8 text
//! Refused   = key | why:u8 | count:u32 | UTF-8 reason    (why: 0 refused, 1 deferred,
//!                                                          2 outside the receiver's scope)
//!                                             (changes of one document were not accepted: the
//!                                              sender stops offering it for now)
//! marks     = count:u32 | (key | heads digest:[u8; 4])*
//! docs      = count:u32 | (key | n:u8 | n × hash:[u8; 32])*
//! later     = count:u32 | key*
//! key       = len:u16 | UTF-8 document key
//! ```
//!
//! A body over 200 bytes is compressed when that makes it smaller, at the level the sender
//! chose ([`Compression`]: the fewest bytes on a phone, speed on the hub); the receiver needs
//! no setting.
//!
//! Decoding is bounded: a frame over [`MAX_FRAME`] bytes, a body that decompresses past
//! [`body_limit`] (at most [`MAX_BODY`]), a list longer than [`MAX_DOCS`], an unknown document key or any truncation is
//! an error, never a panic and never an unbounded allocation.

use automerge::ChangeHash;

use crate::doc::DocId;
use crate::error::{Error, Result};

/// Protocol version carried in every frame.
pub const VERSION: u8 = 1;
/// Largest frame accepted.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Largest decompressed body accepted.
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// A compressed body may decompress to this many bytes whatever its size...
pub const BODY_FLOOR: usize = 8 * 1024 * 1024;
/// ...and beyond that to this many times its compressed size (up to [`MAX_BODY`]). zstd packs
/// zeros about thirty-thousandfold, so without a ratio a frame of 2 KB from any device could
/// make the receiver allocate and fill [`MAX_BODY`]. Honest frames (automerge's columns, keys
/// and random hashes) pack a few times over; a body of repeated note text packs further, and
/// stays under the floor unless it is megabytes of the same words.
pub const BODY_RATIO: usize = 64;

/// The most a body of `compressed` bytes may decompress to.
pub fn body_limit(compressed: usize) -> usize {
    BODY_FLOOR
        .max(BODY_RATIO.saturating_mul(compressed))
        .min(MAX_BODY)
}
/// Most documents named in one list.
pub const MAX_DOCS: usize = 200_000;
/// Bodies larger than this are compressed.
const COMPRESS_OVER: usize = 200;
/// How hard a frame's body is compressed (zstd). Measured on the frames sessions send
/// (BENCHMARKS §5, `cargo bench -p shouwang-tests --bench compression`): level 15 takes 1–2 %
/// fewer bytes than level 6 for about fifty times its CPU (2.4 ms against 47 µs a frame).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Fewest bytes (zstd level 15): a phone's frames, over EDGE or 2G where a byte costs more
    /// than the CPU to save it.
    #[default]
    Smallest,
    /// A fiftieth of the CPU for 1–2 % more bytes (zstd level 6): the hub's frames, which serve
    /// every phone of the school and, in a reconnect storm, all of them at once.
    Fast,
}

impl Compression {
    fn level(self) -> i32 {
        match self {
            Compression::Smallest => 15,
            Compression::Fast => 6,
        }
    }
}

/// One document and its heads.
pub type DocHeads = (DocId, Vec<ChangeHash>);

/// One document and a short digest of its heads (enough to tell equal heads apart).
pub type DocMark = (DocId, [u8; 4]);

/// A protocol message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello {
        digest: [u8; 16],
        changed: Vec<DocMark>,
    },
    Inventory(Vec<DocHeads>),
    Doc {
        doc: DocId,
        payload: Vec<u8>,
    },
    Changes(Vec<(DocId, Vec<u8>)>),
    Idle {
        digest: [u8; 16],
        seen: u64,
        /// Documents left out of `digest`: they changed on the sender after its `Hello` and
        /// wait for the peer's next sync, which syncs once (`Session::one_shot_peer`). The
        /// receiver leaves them out of its own digest to compare. Empty in every other case,
        /// and then not on the wire.
        later: Vec<DocId>,
    },
    Error(String),
    /// The receiver did not accept `count` changes of `doc` from the sender (see [`Why`]).
    /// Both sides leave the document out of the rest of the exchange.
    Refused {
        doc: DocId,
        why: Why,
        count: u32,
        reason: String,
    },
}

/// Why changes were not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Refused by the trust rules: quarantined, never to be accepted.
    Refused,
    /// Not judgeable yet (the auth state it declares is not there): offered again later. With
    /// a count of 0, from the hub, for a device's hand-in: nothing of it could be read (it
    /// rests on changes the hub lacks), and the device hands in the whole document.
    Deferred,
    /// The document is outside what the receiver exchanges with the sender at all (the sender's
    /// member may no longer see it). From the hub, the device drops its copy.
    OutOfScope,
}

fn bad(what: &str) -> Error {
    Error::Corrupt(format!("同步消息无效（{what}）"))
}

fn put_key(buf: &mut Vec<u8>, doc: &DocId) {
    let key = doc.key();
    buf.extend_from_slice(&(key.len() as u16).to_le_bytes());
    buf.extend_from_slice(key.as_bytes());
}

fn put_docs(buf: &mut Vec<u8>, docs: &[DocHeads]) {
    buf.extend_from_slice(&(docs.len() as u32).to_le_bytes());
    for (doc, heads) in docs {
        put_key(buf, doc);
        buf.push(heads.len().min(255) as u8);
        for h in heads.iter().take(255) {
            buf.extend_from_slice(h.as_ref());
        }
    }
}

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Message::Hello { .. } => 1,
            Message::Inventory(_) => 2,
            Message::Doc { .. } => 3,
            Message::Idle { .. } => 4,
            Message::Error(_) => 5,
            Message::Changes(_) => 6,
            Message::Refused { .. } => 7,
        }
    }

    /// Encodes the message as one frame, compressed for the fewest bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(Compression::Smallest)
    }

    /// Encodes the message as one frame, its body compressed as `compression` says.
    pub fn encode_with(&self, compression: Compression) -> Vec<u8> {
        let mut body = Vec::new();
        match self {
            Message::Hello { digest, changed } => {
                body.extend_from_slice(digest);
                body.extend_from_slice(&(changed.len() as u32).to_le_bytes());
                for (doc, mark) in changed {
                    put_key(&mut body, doc);
                    body.extend_from_slice(mark);
                }
            }
            Message::Changes(docs) => {
                body.extend_from_slice(&(docs.len() as u32).to_le_bytes());
                for (doc, bytes) in docs {
                    put_key(&mut body, doc);
                    body.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                    body.extend_from_slice(bytes);
                }
            }
            Message::Inventory(docs) => put_docs(&mut body, docs),
            Message::Doc { doc, payload } => {
                put_key(&mut body, doc);
                body.extend_from_slice(payload);
            }
            Message::Idle {
                digest,
                seen,
                later,
            } => {
                body.extend_from_slice(digest);
                body.extend_from_slice(&seen.to_le_bytes());
                if !later.is_empty() {
                    body.extend_from_slice(&(later.len() as u32).to_le_bytes());
                    for doc in later {
                        put_key(&mut body, doc);
                    }
                }
            }
            Message::Error(text) => body.extend_from_slice(text.as_bytes()),
            Message::Refused {
                doc,
                why,
                count,
                reason,
            } => {
                put_key(&mut body, doc);
                body.push(match why {
                    Why::Refused => 0,
                    Why::Deferred => 1,
                    Why::OutOfScope => 2,
                });
                body.extend_from_slice(&count.to_le_bytes());
                body.extend_from_slice(reason.as_bytes());
            }
        }
        let mut flags = 0u8;
        if body.len() > COMPRESS_OVER
            && let Ok(z) = zstd::bulk::compress(&body, compression.level())
            && z.len() < body.len()
        {
            body = z;
            flags |= 1;
        }
        let mut frame = Vec::with_capacity(body.len() + 7);
        frame.extend_from_slice(&[VERSION, self.kind(), flags]);
        frame.extend_from_slice(&check(self.kind(), flags, &body));
        frame.extend_from_slice(&body);
        frame
    }

    /// Decodes one frame.
    pub fn decode(frame: &[u8]) -> Result<Message> {
        if frame.len() > MAX_FRAME {
            return Err(bad("过大"));
        }
        let [version, kind, flags, c0, c1, c2, c3, rest @ ..] = frame else {
            return Err(bad("过短"));
        };
        if *version != VERSION {
            return Err(Error::NotPermitted(
                "对方的守望版本不同，请两边都升级到最新版本".into(),
            ));
        }
        if check(*kind, *flags, rest) != [*c0, *c1, *c2, *c3] {
            return Err(bad("校验失败"));
        }
        let owned: Option<Vec<u8>> = if flags & 1 == 1 {
            // The frame header says how large the body is (our encoder always writes it):
            // allocate that, not `MAX_BODY`. A 64 MiB buffer per frame cost the hub a 64 MiB
            // mapping and unmapping for every frame of every phone (`relay/benches/storm.rs`).
            // A body that lies about its size fails to decompress; one that does not say is
            // given the bound.
            let limit = body_limit(rest.len());
            let capacity = match zstd::zstd_safe::get_frame_content_size(rest) {
                Ok(Some(n)) if n <= limit as u64 => n as usize,
                Ok(Some(_)) => return Err(bad("解压后过大")),
                _ => limit,
            };
            Some(zstd::bulk::decompress(rest, capacity).map_err(|_| bad("解压失败"))?)
        } else {
            None
        };
        let body: &[u8] = owned.as_deref().unwrap_or(rest);
        if *kind == 3 {
            // A document's sync message is the rest of the body, handed on without a copy: a
            // body may be `MAX_BODY` from a frame of a few KB, and a second copy doubled that.
            let mut r = Reader { buf: body };
            let doc = r.key()?;
            let consumed = body.len() - r.buf.len();
            let payload = match owned {
                Some(mut body) => {
                    body.drain(..consumed);
                    body
                }
                None => rest[consumed..].to_vec(),
            };
            return Ok(Message::Doc { doc, payload });
        }
        let mut r = Reader { buf: body };
        let msg = match kind {
            1 => {
                let digest: [u8; 16] = r.take(16)?.try_into().map_err(|_| bad("摘要"))?;
                Message::Hello {
                    digest,
                    changed: r.marks()?,
                }
            }
            6 => Message::Changes(r.changes()?),
            2 => Message::Inventory(r.docs()?),
            4 => {
                let digest: [u8; 16] = r.take(16)?.try_into().map_err(|_| bad("摘要"))?;
                let seen = u64::from_le_bytes(r.take(8)?.try_into().map_err(|_| bad("计数"))?);
                let later = if r.buf.is_empty() {
                    Vec::new()
                } else {
                    r.keys()?
                };
                Message::Idle {
                    digest,
                    seen,
                    later,
                }
            }
            5 => Message::Error(String::from_utf8_lossy(body).chars().take(500).collect()),
            7 => {
                let doc = r.key()?;
                let why = match r.take(1)?[0] {
                    0 => Why::Refused,
                    1 => Why::Deferred,
                    2 => Why::OutOfScope,
                    _ => return Err(bad("拒绝原因")),
                };
                let count = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| bad("计数"))?);
                let reason = String::from_utf8_lossy(r.buf).chars().take(200).collect();
                r.buf = &[];
                Message::Refused {
                    doc,
                    why,
                    count,
                    reason,
                }
            }
            _ => return Err(bad("未知类型")),
        };
        if !matches!(msg, Message::Doc { .. } | Message::Error(_)) && !r.buf.is_empty() {
            return Err(bad("多余数据"));
        }
        Ok(msg)
    }
}

fn check(kind: u8, flags: u8, body: &[u8]) -> [u8; 4] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update([kind, flags]);
    h.update(body);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(bad("被截断"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    fn key(&mut self) -> Result<DocId> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| bad("长度"))?) as usize;
        let key = std::str::from_utf8(self.take(len)?).map_err(|_| bad("档案编号"))?;
        DocId::parse(key).ok_or_else(|| bad("未知档案"))
    }

    fn count(&mut self, min_entry: usize) -> Result<usize> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| bad("长度"))?) as usize;
        if n > MAX_DOCS || n.saturating_mul(min_entry) > self.buf.len() {
            return Err(bad("数量不对"));
        }
        Ok(n)
    }

    fn marks(&mut self) -> Result<Vec<DocMark>> {
        let n = self.count(6)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let doc = self.key()?;
            let mark: [u8; 4] = self.take(4)?.try_into().map_err(|_| bad("摘要"))?;
            out.push((doc, mark));
        }
        Ok(out)
    }

    fn keys(&mut self) -> Result<Vec<DocId>> {
        let n = self.count(2)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.key()?);
        }
        Ok(out)
    }

    fn changes(&mut self) -> Result<Vec<(DocId, Vec<u8>)>> {
        let n = self.count(6)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let doc = self.key()?;
            let len =
                u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| bad("长度"))?) as usize;
            out.push((doc, self.take(len)?.to_vec()));
        }
        Ok(out)
    }

    fn docs(&mut self) -> Result<Vec<DocHeads>> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| bad("长度"))?) as usize;
        if n > MAX_DOCS {
            return Err(bad("档案太多"));
        }
        // Each entry takes at least 3 bytes: refuse a count the body cannot hold before
        // allocating for it.
        if n.saturating_mul(3) > self.buf.len() {
            return Err(bad("被截断"));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let doc = self.key()?;
            let k = self.take(1)?[0] as usize;
            let mut heads = Vec::with_capacity(k);
            for _ in 0..k {
                heads.push(ChangeHash::try_from(self.take(32)?).map_err(|_| bad("版本号"))?);
            }
            out.push((doc, heads));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ChildId;

    fn samples() -> Vec<Message> {
        let docs: Vec<DocHeads> = (0..50)
            .map(|i| {
                (
                    DocId::Child(ChildId(format!("c{i}"))),
                    vec![ChangeHash([i as u8; 32])],
                )
            })
            .collect();
        vec![
            Message::Hello {
                digest: [9; 16],
                changed: docs.iter().map(|(d, _)| (d.clone(), [7; 4])).collect(),
            },
            Message::Changes(
                docs.iter()
                    .map(|(d, _)| (d.clone(), vec![1, 2, 3]))
                    .collect(),
            ),
            Message::Hello {
                digest: [1; 16],
                changed: vec![],
            },
            Message::Inventory(docs),
            Message::Doc {
                doc: DocId::School,
                payload: vec![1, 2, 3],
            },
            Message::Idle {
                digest: [3; 16],
                seen: 42,
                later: vec![],
            },
            Message::Idle {
                digest: [4; 16],
                seen: 7,
                later: vec![DocId::School, DocId::Child(ChildId("c1".into()))],
            },
            Message::Error("拒绝".into()),
            Message::Refused {
                doc: DocId::School,
                why: Why::OutOfScope,
                count: 3,
                reason: "修改来自未登记的设备".into(),
            },
        ]
    }

    #[test]
    fn roundtrips_and_an_empty_hello_is_tiny() {
        for m in samples() {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
        let hello = Message::Hello {
            digest: [0; 16],
            changed: vec![],
        };
        assert_eq!(hello.encode().len(), 3 + 4 + 16 + 4);
        // An Idle with nothing left for later is as it always was: digest and count.
        let idle = Message::Idle {
            digest: [0; 16],
            seen: 1,
            later: vec![],
        };
        assert_eq!(idle.encode().len(), 3 + 4 + 16 + 8);
    }

    /// A frame compressed for speed (the hub's) decodes as any other: the receiver needs no
    /// setting, and a compressed body is smaller than the plain one either way.
    #[test]
    fn frames_compressed_for_speed_decode_the_same() {
        let changes = Message::Changes(vec![(
            DocId::School,
            "新增谈心记录：孩子这周情绪稳定，和奶奶一起完成了作业。"
                .repeat(40)
                .into_bytes(),
        )]);
        for m in samples().into_iter().chain([changes.clone()]) {
            let fast = m.encode_with(Compression::Fast);
            assert_eq!(Message::decode(&fast).unwrap(), m);
        }
        let [small, fast] =
            [Compression::Smallest, Compression::Fast].map(|c| changes.encode_with(c).len());
        let plain = "新增谈心记录：孩子这周情绪稳定，和奶奶一起完成了作业。".len() * 40;
        assert!(small <= fast && fast < plain / 4, "{small} {fast} {plain}");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for m in samples() {
            let f = m.encode();
            for cut in 0..f.len() {
                let _ = Message::decode(&f[..cut]);
            }
            for i in 0..f.len() {
                let mut g = f.clone();
                g[i] ^= 0x5a;
                assert!(Message::decode(&g).is_err(), "flipped byte {i} accepted");
            }
        }
        // A count far beyond the body is refused before allocating.
        for count in [u32::MAX, 100_000] {
            let body = count.to_le_bytes();
            let mut f = vec![VERSION, 2, 0];
            f.extend_from_slice(&check(2, 0, &body));
            f.extend_from_slice(&body);
            assert!(Message::decode(&f).is_err());
        }
        assert!(Message::decode(&[2, 4, 0, 0, 0, 0, 0]).is_err());
        assert!(Message::decode(&[VERSION, 4, 0, 0, 0, 0, 0]).is_err());
    }

    /// A body may unpack to the floor whatever its frame's size, and beyond it only in
    /// proportion to its compressed size.
    #[test]
    fn a_small_frame_may_not_unpack_to_the_largest_body() {
        let doc = DocId::Child(ChildId("0123456789abcdef".into()));
        let frame = |len: usize| {
            Message::Doc {
                doc: doc.clone(),
                payload: vec![0; len],
            }
            .encode()
        };
        let key_len = 2 + doc.key().len();
        let at_floor = frame(BODY_FLOOR - key_len);
        assert!(at_floor.len() < 4096, "{}", at_floor.len());
        assert!(Message::decode(&at_floor).is_ok());
        let err = Message::decode(&frame(BODY_FLOOR - key_len + 1)).unwrap_err();
        assert!(err.to_string().contains("解压后过大"), "{err}");
        assert_eq!(body_limit(4096), BODY_FLOOR);
        assert_eq!(body_limit(1 << 20), MAX_BODY);
        assert_eq!(body_limit(512 << 10), 32 << 20);
    }
}
