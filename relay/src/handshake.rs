//! The first frames of a `shouwang/sync/1` connection: who the device is, before any record.
//!
//! A device opens with one of:
//! - [`Message::Enroll`]: "I hold this invite" (member and one-time secret). The hub answers
//!   with [`Message::Certificate`] (signed for the device's endpoint id, which QUIC has already
//!   authenticated), the school's documents this member may see as [`Message::BundleChunk`]s,
//!   and [`Message::BundleEnd`]; then both sides are done.
//! - [`Message::Hello`]: "here is my certificate". The hub verifies it against the school key
//!   and answers [`Message::Welcome`]; the sync session follows. A device that stays connected
//!   (live mode) sends [`Message::Live`] right after its Hello: the hub then passes on, as they
//!   arrive, the changes other devices bring. Without it the device finishes once caught up.
//!
//! - [`Message::Undelivered`]: "the hub told me I am revoked; before I wipe myself, here is
//!   what I had not delivered" (changes and records). The hub records the counts against the
//!   device in the school document, where the office sees them, and answers
//!   [`Message::Revoked`]. Only a revoked device may send it; QUIC has authenticated which.
//!   A hub from before this message refuses it as an unknown kind (the device wipes anyway).
//!
//! A hub that refuses sends [`Message::Refused`] with a Chinese reason and closes; nothing else
//! has been sent.
//!
//! ```text
//! frame = 0xA7 | version:u8 (1) | kind:u8 | body
//! Enroll      (1) = member:len u8 + UTF-8 | secret:[u8; 16]
//! Hello       (2) = certificate (binary form)
//! Certificate (3) = certificate (binary form)
//! BundleChunk (4) = bytes
//! BundleEnd   (5) = total length:u64 LE
//! Welcome     (6) = school id (UTF-8)
//! Live        (7) = (empty)
//! Undelivered (8) = changes:u64 LE | records:u64 LE
//! Revoked    (14) = (empty)
//! Refused    (15) = reason (UTF-8)
//! ```
//!
//! The leading 0xA7 cannot begin a sync frame (those begin with their version, 1), so the two
//! phases can never be mistaken for each other.

use shouwang_core::Error;
use shouwang_core::ids::{MemberId, SchoolId};
use shouwang_core::membership::{Certificate, DeviceKey, Invite, InviteSecret};

use crate::transport::{
    Conversation, ConversationOptions, EndpointAddr, EndpointId, Node, RelayUrl, Reply,
    TransportError,
};

/// First byte of every handshake frame (sync frames start with their version, 1).
pub const MAGIC: u8 = 0xA7;
const VERSION: u8 = 1;
/// Bundle bytes per chunk frame: small enough that a phone on 2G (about 4 KB/s) reports
/// progress every two seconds, large enough that the 7 bytes of framing per chunk are noise.
pub const CHUNK: usize = 8 * 1024;
/// Largest bundle a device accepts at enrollment.
pub const MAX_BUNDLE: usize = shouwang_core::bundle::MAX_PAYLOAD;
/// Longest reason text kept from a refusal.
const MAX_REASON: usize = 1024;

/// A handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Enroll {
        member: MemberId,
        secret: InviteSecret,
    },
    Hello(Vec<u8>),
    Certificate(Vec<u8>),
    BundleChunk(Vec<u8>),
    BundleEnd(u64),
    Welcome(SchoolId),
    /// The device stays connected after catching up: send it what others write.
    Live,
    /// A revoked device's last word: what it had not delivered when it wiped itself.
    Undelivered {
        changes: u64,
        records: u64,
    },
    /// The school revoked this device: it wipes its store.
    Revoked,
    Refused(String),
}

fn bad(what: &str) -> Error {
    Error::Corrupt(format!("握手消息无效（{what}）"))
}

impl Message {
    /// The frame.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, body): (u8, Vec<u8>) = match self {
            Message::Enroll { member, secret } => {
                let id = member.as_str().as_bytes();
                let id = &id[..id.len().min(255)];
                let mut b = vec![id.len() as u8];
                b.extend_from_slice(id);
                b.extend_from_slice(&secret.0);
                (1, b)
            }
            Message::Hello(c) => (2, c.clone()),
            Message::Certificate(c) => (3, c.clone()),
            Message::BundleChunk(c) => (4, c.clone()),
            Message::BundleEnd(n) => (5, n.to_le_bytes().to_vec()),
            Message::Welcome(s) => (6, s.as_str().as_bytes().to_vec()),
            Message::Live => (7, Vec::new()),
            Message::Undelivered { changes, records } => {
                let mut b = changes.to_le_bytes().to_vec();
                b.extend_from_slice(&records.to_le_bytes());
                (8, b)
            }
            Message::Revoked => (14, Vec::new()),
            Message::Refused(r) => (15, r.as_bytes().to_vec()),
        };
        let mut f = Vec::with_capacity(3 + body.len());
        f.extend_from_slice(&[MAGIC, VERSION, kind]);
        f.extend_from_slice(&body);
        f
    }

    /// Decodes a frame; anything malformed is an error.
    pub fn decode(frame: &[u8]) -> shouwang_core::Result<Message> {
        let [magic, version, kind, body @ ..] = frame else {
            return Err(bad("太短"));
        };
        if *magic != MAGIC {
            return Err(bad("不是握手消息"));
        }
        if *version != VERSION {
            return Err(Error::NotPermitted(
                "对方的守望版本不同，请把两边都升级到最新版本".into(),
            ));
        }
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| bad("文字编码"))
        };
        Ok(match kind {
            1 => {
                let [n, rest @ ..] = body else {
                    return Err(bad("入校请求"));
                };
                let n = *n as usize;
                if n == 0 || rest.len() != n + 16 {
                    return Err(bad("入校请求"));
                }
                let mut secret = [0u8; 16];
                secret.copy_from_slice(&rest[n..]);
                Message::Enroll {
                    member: MemberId(text(&rest[..n])?),
                    secret: InviteSecret(secret),
                }
            }
            2 => Message::Hello(body.to_vec()),
            3 => Message::Certificate(body.to_vec()),
            4 => Message::BundleChunk(body.to_vec()),
            5 => {
                let b: [u8; 8] = body.try_into().map_err(|_| bad("文件长度"))?;
                Message::BundleEnd(u64::from_le_bytes(b))
            }
            6 => Message::Welcome(SchoolId(text(body)?)),
            7 if body.is_empty() => Message::Live,
            8 => {
                let b: [u8; 16] = body.try_into().map_err(|_| bad("未送达报告"))?;
                let (c, r) = b.split_at(8);
                let n = |x: &[u8]| u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
                Message::Undelivered {
                    changes: n(c),
                    records: n(r),
                }
            }
            14 if body.is_empty() => Message::Revoked,
            15 => {
                let cut = &body[..body.len().min(MAX_REASON)];
                Message::Refused(String::from_utf8_lossy(cut).into_owned())
            }
            _ => return Err(bad("未知类型")),
        })
    }
}

/// The error a device reports when the hub refuses it.
pub fn refused(reason: &str) -> Error {
    // The hub's own refusals are `NotPermitted` too: their prefix is said once.
    let reason = reason.strip_prefix("不允许此操作：").unwrap_or(reason);
    Error::NotPermitted(format!("学校服务器拒绝了这台设备：{reason}"))
}

/// The error a device reports when a colleague's device refuses it: said as the colleague's
/// word, not the school server's (a modified app could otherwise put any text in the school's
/// mouth).
pub fn refused_by_peer(reason: &str) -> Error {
    let reason = reason.strip_prefix("不允许此操作：").unwrap_or(reason);
    Error::NotPermitted(format!("对方设备拒绝了同步：{reason}"))
}

/// What a device receives when it enrolls.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The membership certificate, verified against the school key in the invite.
    pub certificate: Certificate,
    /// The school's documents this member may see: a bundle for `Archive::join`.
    pub bundle: Vec<u8>,
}

/// Called with the bundle bytes received so far during an enrollment: with 0 once the hub has
/// accepted the invite (its certificate arrived), then after every chunk.
pub type EnrollProgress = Box<dyn FnMut(u64) + Send>;

/// The device side of enrollment.
pub struct Enrollment {
    invite: Invite,
    device: DeviceKey,
    now: i64,
    certificate: Option<Certificate>,
    bundle: Vec<u8>,
    finished: bool,
    progress: Option<EnrollProgress>,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("member", &self.invite.member)
            .field("certificate", &self.certificate.is_some())
            .field("bundle", &self.bundle.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Enrollment {
    /// Enrollment with `invite` for the device whose endpoint id is `device`, at `now`.
    pub fn new(invite: Invite, device: EndpointId, now: i64) -> Enrollment {
        Enrollment {
            invite,
            device: DeviceKey(*device.as_bytes()),
            now,
            certificate: None,
            bundle: Vec::new(),
            finished: false,
            progress: None,
        }
    }

    /// Reports progress to `progress` (see [`EnrollProgress`]).
    pub fn with_progress(mut self, progress: EnrollProgress) -> Enrollment {
        self.progress = Some(progress);
        self
    }

    /// The result, once the conversation is done.
    pub fn result(self) -> shouwang_core::Result<Enrolled> {
        match (self.finished, self.certificate) {
            (true, Some(certificate)) => Ok(Enrolled {
                certificate,
                bundle: self.bundle,
            }),
            _ => Err(Error::Corrupt("入校没有完成，请重试".into())),
        }
    }
}

impl Conversation for Enrollment {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        self.invite.check_valid(self.now)?;
        Ok(Reply::send(vec![
            Message::Enroll {
                member: self.invite.member.clone(),
                secret: self.invite.secret.clone(),
            }
            .encode(),
        ]))
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        match Message::decode(frame)? {
            Message::Certificate(bytes) if self.certificate.is_none() => {
                let cert = Certificate::from_bytes(&bytes)?;
                // Judged at its own issue time: the school's server (pinned by the invite)
                // issued it just now by its clock, and this phone's may be hours off. Judged
                // by the phone's, a phone an hour slow refused it after the server had spent
                // the invite and registered the device: nobody held that device, and the
                // invite was gone.
                cert.verify(
                    &self.invite.school_id,
                    &self.invite.school_key,
                    &self.device,
                    cert.body().issued_at,
                )?;
                if cert.body().member != self.invite.member {
                    return Err(Error::NotPermitted("证书上的成员与邀请码不符".into()));
                }
                self.certificate = Some(cert);
                // The school took the invite: the documents come next. On 2G the first
                // chunk is seconds away; say so now.
                if let Some(progress) = self.progress.as_mut() {
                    progress(0);
                }
                Ok(Reply::nothing())
            }
            Message::BundleChunk(bytes) if self.certificate.is_some() => {
                if self.bundle.len() + bytes.len() > MAX_BUNDLE {
                    return Err(Error::Corrupt("学校档案文件过大".into()));
                }
                self.bundle.extend_from_slice(&bytes);
                // Reports only bytes that arrived, so that they strictly increase (an empty
                // chunk, which an honest hub never sends, reports nothing).
                if let Some(progress) = self.progress.as_mut().filter(|_| !bytes.is_empty()) {
                    progress(self.bundle.len() as u64);
                }
                Ok(Reply::nothing())
            }
            Message::BundleEnd(total) if self.certificate.is_some() => {
                if total != self.bundle.len() as u64 {
                    return Err(Error::Corrupt("学校档案文件不完整".into()));
                }
                self.finished = true;
                Ok(Reply::finish(vec![]))
            }
            Message::Refused(reason) => Err(refused(&reason)),
            _ => Err(bad("顺序不对")),
        }
    }
}

/// The device side of a greeting: presents the certificate, expects a welcome.
#[derive(Debug)]
pub struct Greeting {
    certificate: Vec<u8>,
    school: Option<SchoolId>,
}

impl Greeting {
    /// A greeting presenting `certificate`.
    pub fn new(certificate: &Certificate) -> Greeting {
        Greeting {
            certificate: certificate.to_bytes(),
            school: None,
        }
    }

    /// The school the hub welcomed us to.
    pub fn welcomed(&self) -> Option<&SchoolId> {
        self.school.as_ref()
    }
}

impl Conversation for Greeting {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(Reply::send(vec![
            Message::Hello(self.certificate.clone()).encode(),
        ]))
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        if self.school.is_some() && frame.first() != Some(&MAGIC) {
            // The hub starts syncing after its welcome; a greeting only wanted the welcome.
            return Ok(Reply::nothing());
        }
        match Message::decode(frame)? {
            Message::Welcome(school) if self.school.is_none() => {
                self.school = Some(school);
                Ok(Reply::finish(vec![]))
            }
            // A renewed certificate after the welcome: a greeting does not keep it.
            Message::Certificate(_) if self.school.is_some() => Ok(Reply::nothing()),
            Message::Refused(reason) => Err(refused(&reason)),
            Message::Revoked => Err(Error::Revoked),
            _ => Err(bad("顺序不对")),
        }
    }
}

/// The device side of a revoked device's last connection: reports what it had not delivered
/// ([`Message::Undelivered`]) and expects the hub's [`Message::Revoked`] as the receipt.
#[derive(Debug)]
pub struct Farewell {
    changes: u64,
    records: u64,
    acknowledged: bool,
}

impl Farewell {
    /// A report of `changes` undelivered changes, `records` of them new records.
    pub fn new(changes: u64, records: u64) -> Farewell {
        Farewell {
            changes,
            records,
            acknowledged: false,
        }
    }

    /// Whether the hub took the report.
    pub fn acknowledged(&self) -> bool {
        self.acknowledged
    }
}

impl Conversation for Farewell {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(Reply::send(vec![
            Message::Undelivered {
                changes: self.changes,
                records: self.records,
            }
            .encode(),
        ]))
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        match Message::decode(frame)? {
            Message::Revoked => {
                self.acknowledged = true;
                Ok(Reply::finish(vec![]))
            }
            Message::Refused(reason) => Err(refused(&reason)),
            _ => Err(bad("顺序不对")),
        }
    }
}

/// Tells the hub what this revoked device had not delivered; `Ok` once the hub recorded it.
pub async fn report_undelivered(
    node: &Node,
    hub: EndpointAddr,
    changes: u64,
    records: u64,
    opts: &ConversationOptions,
) -> Result<(), TransportError> {
    let (conv, _stats) = node
        .converse(hub, Farewell::new(changes, records), opts)
        .await?;
    if conv.acknowledged() {
        Ok(())
    } else {
        Err(TransportError::Protocol("服务器没有回应".into()))
    }
}

/// The hub's address as an invite gives it.
pub fn hub_addr(invite: &Invite) -> shouwang_core::Result<EndpointAddr> {
    let id = EndpointId::from_bytes(&invite.hub.0)
        .map_err(|_| Error::invalid("邀请码", "服务器编号无效"))?;
    let mut addr = EndpointAddr::new(id);
    if let Some(url) = invite_relay(invite)? {
        addr = addr.with_relay_url(url);
    }
    for a in &invite.hub_addrs {
        addr = addr.with_ip_addr(*a);
    }
    Ok(addr)
}

/// The relay an invite names, parsed.
pub fn invite_relay(invite: &Invite) -> shouwang_core::Result<Option<RelayUrl>> {
    invite
        .relay_url
        .as_deref()
        .map(|u| {
            u.parse::<RelayUrl>()
                .map_err(|_| Error::invalid("中继地址", "网址无效"))
        })
        .transpose()
}

/// Enrolls this node's device with the hub an invite names.
pub async fn enroll(
    node: &Node,
    invite: &Invite,
    now: i64,
    opts: &ConversationOptions,
) -> Result<Enrolled, TransportError> {
    enroll_with_progress(node, invite, now, opts, None).await
}

/// [`enroll`], reporting the bundle bytes received after every chunk.
pub async fn enroll_with_progress(
    node: &Node,
    invite: &Invite,
    now: i64,
    opts: &ConversationOptions,
    progress: Option<EnrollProgress>,
) -> Result<Enrolled, TransportError> {
    let addr = hub_addr(invite)?;
    let mut conv = Enrollment::new(invite.clone(), node.id(), now);
    if let Some(progress) = progress {
        conv = conv.with_progress(progress);
    }
    let (conv, _stats) = node.converse(addr, conv, opts).await?;
    Ok(conv.result()?)
}

/// Presents a certificate to a hub; returns the school it welcomed us to.
pub async fn greet(
    node: &Node,
    hub: EndpointAddr,
    certificate: &Certificate,
    opts: &ConversationOptions,
) -> Result<SchoolId, TransportError> {
    let (conv, _stats) = node.converse(hub, Greeting::new(certificate), opts).await?;
    conv.welcomed()
        .cloned()
        .ok_or_else(|| TransportError::Protocol("服务器没有回应".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_refused() {
        let all = [
            Message::Enroll {
                member: MemberId("m0a1b2c3d4e".into()),
                secret: InviteSecret([5; 16]),
            },
            Message::Hello(vec![1, 2, 3]),
            Message::Certificate(vec![]),
            Message::BundleChunk(vec![9; 100]),
            Message::BundleEnd(123_456),
            Message::Welcome(SchoolId("abc".into())),
            Message::Live,
            Message::Undelivered {
                changes: 12,
                records: u64::MAX,
            },
            Message::Revoked,
            Message::Refused("成员证书已过期".into()),
        ];
        for m in all {
            let f = m.encode();
            assert_eq!(Message::decode(&f).unwrap(), m);
            for n in 0..3.min(f.len()) {
                assert!(Message::decode(&f[..n]).is_err());
            }
        }
        assert!(Message::decode(&[MAGIC, VERSION, 99]).is_err());
        assert!(Message::decode(&[1, 1, 1, 0]).is_err());
        assert!(Message::decode(&[MAGIC, VERSION, 5, 1, 2]).is_err());
        assert!(Message::decode(&[MAGIC, VERSION, 7, 0]).is_err());
        assert!(Message::decode(&[MAGIC, VERSION, 8, 1, 2, 3]).is_err());
        assert!(Message::decode(&[MAGIC, VERSION, 1, 3, b'a']).is_err());
        let newer = Message::decode(&[MAGIC, 2, 1]).unwrap_err().to_string();
        assert!(newer.contains("升级"), "{newer}");
    }

    #[test]
    fn progress_reports_strictly_increasing_byte_counts() {
        use shouwang_core::membership::{CertificateBody, SchoolKey};
        use shouwang_core::roles::Role;
        use std::sync::{Arc, Mutex};

        let now = 1_790_000_000;
        let school_key = SchoolKey::generate();
        let device = crate::transport::SecretKey::from_bytes(&[3; 32]).public();
        let invite = Invite {
            school_id: SchoolId("s0a1b2c3d4e".into()),
            school_name: "郭庄小学".into(),
            school_key: school_key.public(),
            hub: DeviceKey([9; 32]),
            hub_addrs: vec![],
            relay_url: None,
            role: Role::LoveMother,
            member: MemberId("m0a1b2c3d4e".into()),
            secret: InviteSecret([5; 16]),
            expires_at: now + 86_400,
        };
        let certificate = school_key
            .issue(CertificateBody {
                school_id: invite.school_id.clone(),
                member: invite.member.clone(),
                roles: vec![Role::LoveMother],
                device: DeviceKey(*device.as_bytes()),
                issued_at: now - 60,
                expires_at: now + 30 * 86_400,
            })
            .unwrap();
        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = reports.clone();
        let mut enrollment = Enrollment::new(invite, device, now)
            .with_progress(Box::new(move |n| seen.lock().unwrap().push(n)));
        enrollment.opening().unwrap();
        for m in [
            Message::Certificate(certificate.to_bytes()),
            Message::BundleChunk(vec![1; 10]),
            Message::BundleChunk(vec![]),
            Message::BundleChunk(vec![2; 5]),
            Message::BundleEnd(15),
        ] {
            enrollment.on_frame(&m.encode()).unwrap();
        }
        assert_eq!(*reports.lock().unwrap(), [0, 10, 15]);
        assert_eq!(enrollment.result().unwrap().bundle.len(), 15);
    }
}
