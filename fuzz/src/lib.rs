//! Shared set-up for the fuzz targets (`fuzz_targets/`) and the seed generator
//! (`src/bin/seeds.rs`).
//!
//! Each target that runs against a store starts every input from the same state: the [`World`]
//! is built once per process (the test fixtures' school: 郭庄小学 with its class, four
//! children, carers and pairings, and the 爱心妈妈 刘桂兰's device joined by file, holding one
//! 谈心 record the office has not received yet), its two store files are kept as bytes, and
//! [`World::open`] writes one into a fresh temporary directory and opens it for the input. So
//! a crash reproduces from its input alone, and nothing one input wrote is seen by the next.
//!
//! The rule every target checks: bad input gets an error (never a panic, a hang or an
//! unbounded allocation) and changes nothing; good input is taken as the real code takes it.

pub mod seeds;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use shouwang_core::Archive;
use shouwang_core::device_key::DeviceSecret;
use shouwang_core::doc::DocId;
use shouwang_core::ids::{ChildId, MemberId, SchoolId};
use shouwang_core::membership::{
    Certificate, CertificateBody, DeviceKey, Invite, InviteSecret, SchoolKey,
};
use shouwang_core::roles::Role;
use shouwang_core::school::Member;
use shouwang_core::store::Sender;
use shouwang_core::sync::Session;
use shouwang_tests::fixtures;
use tempfile::TempDir;

/// Unix seconds the membership targets take as "now" (2026-12-01), so certificates and invites
/// verify the same on every run.
pub const NOW: i64 = 1_796_083_200;

/// The school as the targets find it; see the module docs.
#[derive(Debug)]
pub struct World {
    admin_db: Vec<u8>,
    mother_db: Vec<u8>,
    /// The office's device (the school's founding administrator, 张长友).
    pub admin_device: DeviceKey,
    admin_secret: [u8; 32],
    /// 刘桂兰's device and member.
    pub mother_device: DeviceKey,
    mother_secret: [u8; 32],
    pub mother: Member,
    pub admin: Member,
    pub school: SchoolId,
    /// 王小雨, paired with 刘桂兰.
    pub child: ChildId,
    /// The school's signing key for invites and certificates (fixed, for reproducible runs).
    pub school_key: SchoolKey,
}

/// A store opened for one input; the directory goes with it.
#[derive(Debug)]
pub struct Opened {
    pub archive: Archive,
    pub dir: TempDir,
}

impl World {
    /// The world, built on first use.
    pub fn get() -> &'static World {
        static WORLD: OnceLock<World> = OnceLock::new();
        WORLD.get_or_init(World::build)
    }

    #[allow(clippy::unwrap_used)]
    fn build() -> World {
        let_caught_panics_be();
        let mut admin = fixtures::school();
        let mut mother = fixtures::join(&mut admin, fixtures::LOVE_MOTHER);
        mother.record(
            "谈心",
            fixtures::CHILDREN[0].1,
            "2026-11-20",
            &[
                ("notes", "聊了这一周的学习和朋友"),
                ("emotion", "想妈妈，但情绪稳定"),
            ],
        );
        let child = admin.archive.find_child(fixtures::CHILDREN[0].1).unwrap();
        let admin_secret = admin.archive.device_secret().unwrap();
        let mother_secret = mother.archive.device_secret().unwrap();
        let admin_member = admin.archive.me().unwrap();
        let mother_member = mother.archive.me().unwrap();
        let school = admin.archive.school_id().clone();
        let (admin_path, mother_path) = (admin.path(), mother.path());
        // Closing the last connection checkpoints the WAL into the file.
        let fixtures::Device {
            archive,
            dir: admin_dir,
            ..
        } = admin;
        drop(archive);
        let fixtures::Device {
            archive,
            dir: mother_dir,
            ..
        } = mother;
        drop(archive);
        let world = World {
            admin_db: read_store(&admin_path),
            mother_db: read_store(&mother_path),
            admin_device: admin_secret.public(),
            admin_secret: admin_secret.to_bytes(),
            mother_device: mother_secret.public(),
            mother_secret: mother_secret.to_bytes(),
            mother: mother_member,
            admin: admin_member,
            school,
            child,
            school_key: SchoolKey::from_secret_bytes(&[7; 32]),
        };
        drop((admin_dir, mother_dir));
        world
    }

    /// The office's store, fresh for one input.
    pub fn open_admin(&self) -> Opened {
        open_copy(&self.admin_db)
    }

    /// 刘桂兰's store, fresh for one input.
    pub fn open_mother(&self) -> Opened {
        open_copy(&self.mother_db)
    }

    pub fn admin_secret(&self) -> DeviceSecret {
        DeviceSecret::from_bytes(&self.admin_secret)
    }

    pub fn mother_secret(&self) -> DeviceSecret {
        DeviceSecret::from_bytes(&self.mother_secret)
    }

    /// Who 刘桂兰's device is to the office: held to its own changes and her roles.
    pub fn mother_sender(&self) -> Sender {
        Sender::for_device(&self.mother_device.0, &self.mother, &self.mother.roles)
    }

    /// The office's session with 刘桂兰's device, as the hub makes it (her scope, her device
    /// held to its own changes).
    #[allow(clippy::unwrap_used)]
    pub fn office_session(&self, office: &mut Archive) -> Session {
        office
            .session(self.mother_device.to_hex().as_str(), Some(&self.mother))
            .unwrap()
            .taking_hand_ins()
            .with_sender(self.mother_sender())
    }

    /// 刘桂兰's session with the office's device, met directly (an administrator's device, as
    /// `relay::peer` makes it: not her hub).
    #[allow(clippy::unwrap_used)]
    pub fn mother_session(&self, phone: &mut Archive) -> Session {
        phone
            .peer_session(self.admin_device.to_hex().as_str(), &self.admin)
            .unwrap()
            .with_sender(Sender::for_device(
                &self.admin_device.0,
                &self.admin,
                &self.admin.roles,
            ))
    }

    /// An invite of the school for a new 爱心妈妈 (fixed secret and keys).
    pub fn invite(&self) -> Invite {
        Invite {
            school_id: self.school.clone(),
            school_name: "郭庄小学".into(),
            school_key: self.school_key.public(),
            hub: DeviceKey([9; 32]),
            hub_addrs: vec![
                SocketAddr::from(([127, 0, 0, 1], 3341)),
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 3341)),
            ],
            relay_url: Some("http://127.0.0.1:3340".into()),
            role: Role::LoveMother,
            member: self.mother.id.clone(),
            secret: InviteSecret([5; 16]),
            expires_at: NOW + 7 * 86_400,
        }
    }

    /// A certificate for `device` as 刘桂兰, valid at [`NOW`].
    #[allow(clippy::unwrap_used)]
    pub fn certificate(&self, device: DeviceKey) -> Certificate {
        self.school_key
            .issue(CertificateBody {
                school_id: self.school.clone(),
                member: self.mother.id.clone(),
                roles: self.mother.roles.clone(),
                device,
                issued_at: NOW - 86_400,
                expires_at: NOW + 30 * 86_400,
            })
            .unwrap()
    }

    /// The documents a merge target picks from (by the input's first byte).
    pub fn doc_ids(&self) -> Vec<DocId> {
        vec![
            DocId::School,
            DocId::Child(self.child.clone()),
            DocId::Private(self.child.clone()),
            DocId::Staff(self.child.clone()),
            DocId::Contact(self.mother.id.clone()),
            DocId::Keys,
            DocId::Audit(self.mother_device_id()),
            DocId::Child(ChildId("fuzz-new-child".into())),
            DocId::Contact(MemberId("fuzz-new-member".into())),
        ]
    }

    pub fn mother_device_id(&self) -> shouwang_core::ids::DeviceId {
        shouwang_core::ids::DeviceId::from_key(&self.mother_device.0)
    }
}

#[allow(clippy::expect_used)]
fn read_store(path: &Path) -> Vec<u8> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the store's WAL was not checkpointed"
    );
    std::fs::read(path).expect("read the store")
}

#[allow(clippy::expect_used)]
fn open_copy(bytes: &[u8]) -> Opened {
    let dir = TempDir::new().expect("temporary directory");
    let path = dir.path().join("shouwang.db");
    std::fs::write(&path, bytes).expect("write the store");
    let archive = Archive::open(&path).expect("open the store copy");
    Opened { archive, dir }
}

/// libfuzzer-sys's panic hook aborts at any panic, caught or not. The store catches automerge's
/// panics on damaged bytes and turns them into errors (`core::store::from_peer`), so the targets
/// that reach automerge replace the hook with one that only prints: a panic that reaches the
/// target is still a crash (libfuzzer-sys catches it and aborts), one the product catches is
/// not.
fn let_caught_panics_be() {
    std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
}

/// Splits an input into frames: each is a little-endian `u32` length and that many bytes (a
/// length past the end takes what is left). The seeds are written the same way ([`join_frames`]).
pub fn split_frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let (len, rest) = data.split_at(4);
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (frame, rest) = rest.split_at(len.min(rest.len()));
        out.push(frame);
        data = rest;
    }
    out
}

/// The inverse of [`split_frames`].
pub fn join_frames<T: AsRef<[u8]>>(frames: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let f = f.as_ref();
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// A fingerprint of everything a store holds that an input could change: every document's
/// heads and change rows, the quarantine and the projections. Equal before and after a refused
/// input.
#[allow(clippy::unwrap_used)]
pub fn fingerprint(archive: &mut Archive) -> String {
    let conn = archive.store().conn();
    let mut out = String::new();
    for q in [
        "SELECT doc_id || ':' || hex(hash) FROM changes ORDER BY seq",
        "SELECT doc_id || ':' || heads FROM docs ORDER BY doc_id",
        "SELECT count(*) FROM quarantine",
        "SELECT record_id || ':' || kind || ':' || voided FROM p_records ORDER BY record_id",
        "SELECT child_id || ':' || name FROM p_children ORDER BY child_id",
        "SELECT member_id || ':' || name FROM p_members ORDER BY member_id",
    ] {
        let mut stmt = conn.prepare(q).unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, rusqlite::types::Value>(0))
            .unwrap()
            .map(|v| format!("{:?}", v.unwrap()))
            .collect();
        out.push_str(&rows.join("\n"));
        out.push('\n');
    }
    out
}

/// The iroh endpoint id of the device in the handshake targets (a fixed key).
pub fn device_endpoint() -> shouwang_relay::transport::EndpointId {
    shouwang_relay::transport::SecretKey::from_bytes(&[3; 32]).public()
}

/// Reads `data` as a roster file with extension `ext`, as `shouwang roster import` does. The
/// file is written over in one directory kept for the process (a new directory per input
/// costs more than the parse).
#[allow(clippy::expect_used)]
pub fn read_roster(data: &[u8], ext: &str) {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| TempDir::new().expect("temporary directory"));
    let path = dir.path().join(format!("名单.{ext}"));
    std::fs::write(&path, data).expect("write the roster");
    if let Ok(rows) = shouwang_core::roster::read_file(&path) {
        assert!(rows.len() <= 20_000, "more rows than a roster may have");
    }
}

/// Runs a future that never waits on anything but its input (see [`Pieces`]).
#[allow(clippy::expect_used)]
pub fn block_on<F: Future>(f: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime")
        })
        .block_on(f)
}

/// A stream that delivers its bytes at most `piece` at a time, as a network does.
#[derive(Debug)]
pub struct Pieces<'a> {
    data: &'a [u8],
    piece: usize,
}

impl<'a> Pieces<'a> {
    pub fn new(data: &'a [u8], piece: usize) -> Pieces<'a> {
        Pieces {
            data,
            piece: piece.max(1),
        }
    }
}

impl tokio::io::AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.piece.min(self.data.len()).min(buf.remaining());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        std::task::Poll::Ready(Ok(()))
    }
}

/// `frame` with its check (the first 4 bytes of SHA-256 over kind, flags and body, as
/// `core::sync::wire` computes it) made right, so the fuzzer's changes reach the decoder
/// behind it. A damaged check is fuzzed as it comes by the `wire_frame` target.
pub fn with_sync_check(frame: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut f = frame.to_vec();
    if f.len() >= 7 {
        let mut h = Sha256::new();
        h.update([f[1], f[2]]);
        h.update(&f[7..]);
        let d = h.finalize();
        f[3..7].copy_from_slice(&d[..4]);
    }
    f
}

/// A sync frame with its body stored uncompressed (flag bit 0 clear), check made right: the
/// form of a seed the fuzzer can change meaningfully.
pub fn uncompressed_sync_frame(frame: &[u8]) -> Vec<u8> {
    match frame {
        [v, kind, flags, _, _, _, _, body @ ..] if flags & 1 == 1 => {
            match zstd::bulk::decompress(body, shouwang_core::sync::wire::MAX_BODY) {
                Ok(plain) => {
                    let mut f = vec![*v, *kind, flags & !1, 0, 0, 0, 0];
                    f.extend_from_slice(&plain);
                    with_sync_check(&f)
                }
                Err(_) => frame.to_vec(),
            }
        }
        _ => frame.to_vec(),
    }
}

/// A plain bundle (`core::bundle`, version 2) of `school`, enrolling `device` if given, around
/// the uncompressed `payload` (its entries): compressed and checksummed as `Bundle::encode`
/// does, so the fuzzer's changes to the entries reach `Bundle::decode`'s entry parser.
pub fn bundle_around(school: &str, device: Option<&str>, payload: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let compressed = zstd::bulk::compress(payload, 1).unwrap_or_default();
    let mut out = b"SWBUNDLE".to_vec();
    out.push(2);
    out.push(school.len().min(255) as u8);
    out.extend_from_slice(&school.as_bytes()[..school.len().min(255)]);
    let device = device.unwrap_or("").as_bytes();
    out.push(device.len().min(255) as u8);
    out.extend_from_slice(&device[..device.len().min(255)]);
    out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
    out.extend_from_slice(&compressed);
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// The uncompressed entries of a plain bundle written by `Bundle::encode` (the inverse of
/// [`bundle_around`]), for seeds.
pub fn bundle_payload(plain: &[u8]) -> Option<Vec<u8>> {
    let rest = plain.strip_prefix(b"SWBUNDLE")?;
    let (&version, rest) = rest.split_first()?;
    if version != 2 {
        return None;
    }
    let (&slen, rest) = rest.split_first()?;
    let rest = rest.get(usize::from(slen)..)?;
    let (&dlen, rest) = rest.split_first()?;
    let rest = rest.get(usize::from(dlen)..)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let compressed = rest.get(4..4 + len)?;
    zstd::bulk::decompress(compressed, shouwang_core::bundle::MAX_PAYLOAD).ok()
}

/// The id of the device the enrollment seeds and the `bundle` target's enrollment path enroll.
pub fn enrolled_device_id() -> shouwang_core::ids::DeviceId {
    shouwang_core::ids::DeviceId::from_key(device_endpoint().as_bytes())
}

/// A school hub's data directory (the test fixtures' `small_hub`: 郭庄小学 with 王瑞侠's class,
/// 王小雨 and 赵子涵, and 刘桂兰 paired with 王小雨), with an open invite for 刘桂兰 and a
/// certificate for her device ([`device_endpoint`]), kept as bytes like [`World`]'s stores.
#[derive(Debug)]
pub struct Hub {
    /// Every file under the temporary directory the hub was made in, by relative path.
    files: Vec<(std::path::PathBuf, Vec<u8>)>,
    pub member: MemberId,
    pub secret: InviteSecret,
    pub certificate: Certificate,
}

/// A hub opened for one input.
#[derive(Debug)]
pub struct OpenedHub {
    pub state: std::sync::Arc<shouwang_relay::server::HubState>,
    pub dir: TempDir,
}

impl Hub {
    /// The hub, built on first use.
    pub fn get() -> &'static Hub {
        static HUB: OnceLock<Hub> = OnceLock::new();
        HUB.get_or_init(Hub::build)
    }

    #[allow(clippy::unwrap_used)]
    fn build() -> Hub {
        let_caught_panics_be();
        use shouwang_relay::server::{HubContact, issue_invite};
        let dir = TempDir::new().unwrap();
        let data = fixtures::small_hub(dir.path());
        let now = chrono::Utc::now().timestamp();
        let contact = HubContact {
            relay_url: None,
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 3341))],
        };
        let issued = issue_invite(
            &data,
            &contact,
            fixtures::LOVE_MOTHER,
            Role::LoveMother,
            now,
            now + 10 * 365 * 86_400,
        )
        .unwrap();
        let key = data.data_key().unwrap();
        let school_key = data.school_key_with(&key).unwrap();
        let member = issued.invite.member.clone();
        let certificate = school_key
            .issue(CertificateBody {
                school_id: issued.invite.school_id.clone(),
                member: member.clone(),
                roles: vec![Role::LoveMother],
                device: DeviceKey(*device_endpoint().as_bytes()),
                issued_at: now - 86_400,
                expires_at: now + 10 * 365 * 86_400,
            })
            .unwrap();
        let mut files = Vec::new();
        collect(dir.path(), dir.path(), &mut files);
        Hub {
            files,
            member,
            secret: issued.invite.secret,
            certificate,
        }
    }

    /// The hub, fresh for one input.
    #[allow(clippy::expect_used)]
    pub fn open(&self) -> OpenedHub {
        let dir = TempDir::new().expect("temporary directory");
        for (rel, bytes) in &self.files {
            let path = dir.path().join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("hub directory");
                set_mode(parent, 0o700);
            }
            std::fs::write(&path, bytes).expect("hub file");
            set_mode(&path, 0o600);
        }
        let config = shouwang_relay::server::ServerConfig::new(dir.path().join("hub"));
        let state = shouwang_relay::server::HubState::open(&config).expect("open the hub copy");
        OpenedHub { state, dir }
    }

    /// A conversation of the hub with [`device_endpoint`], as its transport makes one.
    #[allow(clippy::expect_used)]
    pub fn conversation(opened: &OpenedHub) -> Box<dyn shouwang_relay::transport::Conversation> {
        use shouwang_relay::transport::ConversationFactory;
        shouwang_relay::server::HubFactory::new(opened.state.clone())
            .start(device_endpoint())
            .expect("a hub conversation")
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

#[allow(clippy::expect_used)]
fn collect(root: &Path, dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read the hub directory") {
        let path = entry.expect("hub entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .to_path_buf();
            out.push((rel, std::fs::read(&path).expect("read a hub file")));
        }
    }
}

/// `bytes` with the checksum of every automerge chunk found in it made right (the first 4
/// bytes of SHA-256 over the chunk's type, its LEB128 length and its data, as automerge checks
/// on load), wherever the chunk sits: a saved document, changes, or changes inside a sync frame
/// or a bundle's entries. So the fuzzer's changes reach automerge's decoders and the trust
/// rules behind them rather than stopping at the checksum. Compressed chunks (type 2, whose
/// checksum covers the uncompressed change) are left as they are.
pub fn with_automerge_checksums(bytes: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
    let mut out = bytes.to_vec();
    let mut at = 0;
    while at + 9 <= out.len() {
        if out[at..at + 4] != MAGIC || out[at + 8] == 2 {
            at += 1;
            continue;
        }
        // LEB128 length, at most 10 bytes.
        let (mut len, mut shift, mut i) = (0u64, 0u32, at + 9);
        let mut complete = false;
        while let Some(&b) = out.get(i) {
            i += 1;
            if shift < 64 {
                len |= u64::from(b & 0x7f) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                complete = true;
                break;
            }
            if shift >= 70 {
                break;
            }
        }
        let end = i.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        if complete && end <= out.len() {
            let d = Sha256::digest(&out[at + 8..end]);
            out[at + 4..at + 8].copy_from_slice(&d[..4]);
        }
        at += 1;
    }
    out
}
