//! Device-to-device sync: two members' devices that meet (on one Wi-Fi or phone hotspot, or
//! named explicitly) sync directly, with no hub.
//!
//! # Handshake
//!
//! Both sides present their membership certificate before any record flows:
//!
//! ```text
//! dialer                                   acceptor
//!   Hello(dialer's certificate)  ───────▶   verifies it (see below)
//!                                ◀───────   Hello(acceptor's certificate), sync frames…
//!   verifies it, sync frames…    ───────▶
//! ```
//!
//! The dialer shows its certificate (its school, member and roles) first, before it has seen
//! anything of the other end but its key: so it dials only a device its copy of the school
//! document registers and holds active ([`sync_with_peer`]). A phone on the same Wi-Fi
//! advertising an endpoint learns nothing of who dialed it; a colleague's phone registered
//! since this one last heard from the hub is dialed after its next sync with the hub.
//!
//! A certificate is accepted when it is signed by this device's school key (from the invite
//! it joined with), names this school, is bound to the endpoint id the QUIC handshake
//! authenticated (so it cannot be replayed by another device), has not expired, and names a
//! member this device's copy of the school document knows and holds active (a member the
//! school has deactivated is refused by every device that has heard of it).
//!
//! # Scope
//!
//! Each side runs a [`Session`] scoped by [`Archive::peer_session`]: only documents that both
//! members may see are offered or accepted. A 爱心妈妈 and a 班主任 who meet exchange the files
//! of the children they share and nothing else; the hub remains the only place where
//! everything meets.
//!
//! The dialer ends the exchange once both sessions are caught up, as a device does with the
//! hub; the acceptor never finishes first.
//!
//! # Who gets a place
//!
//! A phone waiting for colleagues holds a handful of connections
//! (`device::peer_options`). Before any certificate, right after the QUIC handshake, it sorts
//! the connecting devices by what its copy of the school document says of them
//! ([`Colleagues`], the transport's admission hook, answered from memory): a device the
//! school revoked is turned away at once; a registered device gets any free place; any other
//! device (an outsider on the same Wi-Fi, or a colleague's phone registered since this one
//! last heard from the hub) only one of the few places for strangers. So outsiders holding
//! connections open never keep a colleague out. The list is read when the phone starts
//! waiting, when it opens its store for a certificate that verified (it may have heard from
//! the hub meanwhile), and after every exchange, which may bring a newer school document; a
//! device it lists too late is at worst held to a stranger's places, or turned away by the
//! certificate check instead of at the door.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use shouwang_core::Archive;

use crate::pace::FrameRate;
use shouwang_core::Error;
use shouwang_core::ids::{DeviceId, SchoolId};
use shouwang_core::membership::{Certificate, DeviceKey, SchoolPublicKey};
use shouwang_core::school::Member;
use shouwang_core::store::{Sender, StoreKey};
use shouwang_core::sync::{Event, Progress, Session};
use tokio::sync::mpsc;

use crate::handshake::{MAGIC, Message, refused_by_peer};
use crate::transport::{
    Admission, Conversation, ConversationFactory, ConversationOptions, EndpointAddr, EndpointId,
    HANDSHAKE_MAX_FRAME, Node, Reply, TransportError,
};

/// What a device trusts: its school and the school's public key (from its invite), and its
/// own certificate to present.
#[derive(Debug, Clone)]
pub struct PeerTrust {
    pub school: SchoolId,
    pub school_key: SchoolPublicKey,
    pub certificate: Certificate,
    /// The most bytes of changes a day (UTC) this device keeps from one colleague, all her
    /// devices together (the ones it takes, and the refused ones the quarantine keeps for
    /// review), as the hub does with its quota: a modified app cannot fill the phone with
    /// changes it knows are refused. Not for an administrator's devices, which relay.
    pub daily_change_bytes: u64,
}

/// [`PeerTrust::daily_change_bytes`] by default (the same allowance a member's files get).
pub use shouwang_core::trust::PEER_DAILY_CHANGE_BYTES;

impl PeerTrust {
    /// Trust for a device holding `certificate`, of the school whose public key is
    /// `school_key`.
    pub fn new(certificate: Certificate, school_key: SchoolPublicKey) -> PeerTrust {
        PeerTrust {
            school: certificate.body().school_id.clone(),
            school_key,
            certificate,
            daily_change_bytes: PEER_DAILY_CHANGE_BYTES,
        }
    }

    /// The same, keeping at most `bytes` of changes a day from one colleague's device.
    pub fn with_daily_change_bytes(mut self, bytes: u64) -> PeerTrust {
        self.daily_change_bytes = bytes;
        self
    }

    /// Checks the certificate a peer presented from `device` by itself: signed by this
    /// school's key, naming this school, bound to the device, not expired. Needs no store.
    fn verify(&self, device: &DeviceKey, bytes: &[u8], now: i64) -> Result<Certificate, Error> {
        let cert = Certificate::from_bytes(bytes)?;
        cert.verify(&self.school, &self.school_key, device, now)?;
        Ok(cert)
    }

    /// Checks a verified certificate's member and device against this device's copy of the
    /// school document: see the module docs.
    fn check(
        &self,
        archive: &mut Archive,
        device: &DeviceKey,
        cert: &Certificate,
    ) -> Result<(Member, Vec<shouwang_core::roles::Role>), Error> {
        let member = archive
            .find_member(cert.body().member.as_str())
            .map_err(|_| Error::NotPermitted("对方不是本校已登记的成员".into()))?;
        if !member.active {
            return Err(Error::NotPermitted("对方成员已停用".into()));
        }
        if archive.is_revoked(&device.0)? {
            return Err(Error::NotPermitted("对方设备已被学校停用".into()));
        }
        Ok((member, cert.body().roles.clone()))
    }
}

/// The devices this phone's copy of the school document registers, and whether each is
/// revoked: the admission hook of a phone waiting for colleagues (module docs, "Who gets a
/// place"). Answers from memory.
#[derive(Debug, Default)]
pub struct Colleagues {
    /// Registered devices: `true` if revoked (or its member no longer active, as
    /// `Archive::is_revoked` counts it).
    devices: RwLock<HashMap<DeviceId, bool>>,
}

/// What a device the school revoked reads when a colleague's phone turns it away.
const REVOKED_AT_PEER: &str = "这台设备已被学校停用，同事的设备不再与它同步";

impl Colleagues {
    /// The devices `archive`'s school document registers now.
    pub fn read(archive: &mut Archive) -> Result<Colleagues, Error> {
        let colleagues = Colleagues::default();
        colleagues.refresh(archive)?;
        Ok(colleagues)
    }

    /// Reads the list again from `archive`.
    fn refresh(&self, archive: &mut Archive) -> Result<(), Error> {
        let school = archive.school()?;
        let devices = school
            .devices
            .iter()
            .map(|d| {
                let inactive = school.member(&d.member).is_none_or(|m| !m.active);
                (d.id.clone(), d.revoked || inactive)
            })
            .collect();
        *self.devices.write().unwrap_or_else(PoisonError::into_inner) = devices;
        Ok(())
    }

    /// [`Colleagues::refresh`] for a side that is reading `archive` anyway: a list it could not
    /// read again stays as it was (the certificate check still guards every exchange).
    fn refresh_quietly(&self, archive: &mut Archive) {
        if let Err(e) = self.refresh(archive) {
            tracing::warn!(error = %e, "the list of the school's devices was not read again");
        }
    }

    fn revoked(&self, remote: &EndpointId) -> Option<bool> {
        self.devices
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&DeviceId::from_key(remote.as_bytes()))
            .copied()
    }
}

impl Admission for Colleagues {
    fn admits(&self, remote: &EndpointId) -> bool {
        self.revoked(remote) != Some(true)
    }

    fn knows(&self, remote: &EndpointId) -> bool {
        self.revoked(remote) == Some(false)
    }

    fn refusal(&self) -> &str {
        REVOKED_AT_PEER
    }
}

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Dialer,
    Acceptor,
}

/// One side of a device-to-device sync.
pub struct PeerSync {
    /// The dialer's store, or the acceptor's once the peer's certificate verified.
    archive: Option<Archive>,
    /// Where the acceptor opens its store from: only once the peer has shown a certificate
    /// this school signed for its key, so a device that cannot costs no store opened and
    /// nothing written (`PeerFactory`).
    closed: Option<(PathBuf, Option<StoreKey>)>,
    trust: PeerTrust,
    remote: DeviceKey,
    end: End,
    now: i64,
    session: Option<Session>,
    peer_member: Option<Member>,
    caught_up: bool,
    done: Option<mpsc::UnboundedSender<PeerOutcome>>,
    /// The accepting side's admission list, read again after each exchange.
    colleagues: Option<Arc<Colleagues>>,
    /// How fast the peer may send sync frames (shared by the accepting side's conversations).
    pace: Arc<FrameRate>,
    /// How long the peer's next frame waits: it sent faster than `pace` allows.
    hold_off: Option<std::time::Duration>,
}

impl std::fmt::Debug for PeerSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSync")
            .field("remote", &self.remote)
            .field("end", &self.end)
            .field("caught_up", &self.caught_up)
            .finish_non_exhaustive()
    }
}

/// How a sync with a peer ended, as the accepting side reports it.
#[derive(Debug, Clone)]
pub struct PeerOutcome {
    /// The peer's member name (never a child's data).
    pub member_name: String,
    /// The peer's endpoint id.
    pub device: String,
    pub progress: Progress,
}

impl PeerSync {
    fn new(
        archive: Option<Archive>,
        trust: PeerTrust,
        remote: EndpointId,
        end: End,
        now: i64,
    ) -> Self {
        PeerSync {
            archive,
            closed: None,
            trust,
            remote: DeviceKey(*remote.as_bytes()),
            end,
            now,
            session: None,
            peer_member: None,
            caught_up: false,
            done: None,
            colleagues: None,
            pace: Arc::new(FrameRate::default()),
            hold_off: None,
        }
    }

    /// The dialing side, syncing `archive` with the device `remote`.
    pub fn dialer(archive: Archive, trust: PeerTrust, remote: EndpointId, now: i64) -> Self {
        PeerSync::new(Some(archive), trust, remote, End::Dialer, now)
    }

    /// Whether both sides were in sync when the exchange ended.
    pub fn caught_up(&self) -> bool {
        self.caught_up
    }

    /// The peer's member, once its certificate checked out.
    pub fn peer_member(&self) -> Option<&Member> {
        self.peer_member.as_ref()
    }

    /// Counters so far.
    pub fn progress(&self) -> Progress {
        self.session
            .as_ref()
            .map(Session::progress)
            .unwrap_or_default()
    }

    /// The archive back, after the conversation (`None` on an accepting side that never
    /// opened its store).
    pub fn into_archive(self) -> Option<Archive> {
        self.archive
    }

    fn peer_key(&self) -> String {
        self.remote.to_string()
    }

    /// Checks the peer's certificate and opens the session: its first frames, and whether
    /// the two sides were already caught up.
    fn greet(&mut self, bytes: &[u8]) -> Result<(Vec<Vec<u8>>, bool), Error> {
        let cert = self.trust.verify(&self.remote, bytes, self.now)?;
        let peer_key = self.peer_key();
        let archive = opened(&mut self.archive, &self.closed)?;
        // What the phone learned since it began waiting (a sync with the hub meanwhile).
        if let Some(colleagues) = &self.colleagues {
            colleagues.refresh_quietly(archive);
        }
        let (member, roles) = self.trust.check(archive, &self.remote, &cert)?;
        // Only what the peer's own device made is taken from it (crate docs of
        // `shouwang_core::trust`): it authenticated as this key, nothing more.
        let mut session = archive
            .peer_session(&peer_key, &member)?
            .with_sender(Sender::for_device(&self.remote.0, &member, &roles));
        // As the hub does: an administrator's device relays the whole school's history (a new
        // office phone may take it all at once); anyone else's, only her own work.
        if !member.roles.iter().any(|r| r.administers()) {
            session = session.with_daily_quota(member.id.clone(), self.trust.daily_change_bytes);
        }
        let out = session.handle(archive.store(), Event::Start)?;
        self.session = Some(session);
        self.peer_member = Some(member);
        let mut frames = Vec::new();
        if self.end == End::Acceptor {
            frames.push(Message::Hello(self.trust.certificate.to_bytes()).encode());
        }
        frames.extend(out.frames);
        Ok((frames, out.caught_up))
    }

    fn settle(&mut self, frames: Vec<Vec<u8>>, caught_up: bool) -> Result<Reply, Error> {
        let was = std::mem::replace(&mut self.caught_up, caught_up);
        // Caught up already: a peer repeating its last frame (`Idle`) is answered, and costs
        // no purge, no write and no report each time (relay story 6b).
        if !caught_up || (was && self.end == End::Acceptor) {
            return Ok(Reply::send(frames));
        }
        let peer_key = self.peer_key();
        let archive = opened(&mut self.archive, &self.closed)?;
        archive.record_sync_result(&peer_key, None)?;
        if self.end == End::Acceptor {
            // The peer may have brought a school document that narrows this member's scope
            // (an erasure, a pairing ended): the dialer purges after the exchange
            // (`device::sync_peer`), this side at once.
            archive.purge_out_of_scope()?;
            // It may also have registered or revoked devices.
            if let Some(colleagues) = &self.colleagues {
                colleagues.refresh_quietly(archive);
            }
        }
        if let (Some(done), Some(m)) = (&self.done, &self.peer_member) {
            let _ = done.send(PeerOutcome {
                member_name: m.name.clone(),
                device: self.peer_key(),
                progress: self.progress(),
            });
        }
        match self.end {
            End::Dialer => Ok(Reply::finish(frames)),
            End::Acceptor => Ok(Reply::send(frames)),
        }
    }
}

/// The store, opened now if this is the accepting side's first need of it (`closed`: where
/// it is; see [`PeerSync`]).
fn opened<'a>(
    archive: &'a mut Option<Archive>,
    closed: &Option<(PathBuf, Option<StoreKey>)>,
) -> Result<&'a mut Archive, Error> {
    if archive.is_none()
        && let Some((path, key)) = closed
    {
        *archive = Some(Archive::open_with_key(path, key.as_ref())?);
    }
    archive
        .as_mut()
        .ok_or_else(|| Error::NotPermitted("尚未出示成员证书".into()))
}

impl Conversation for PeerSync {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        match self.end {
            End::Dialer => Ok(Reply::send(vec![
                Message::Hello(self.trust.certificate.to_bytes()).encode(),
            ])),
            End::Acceptor => Ok(Reply::nothing()),
        }
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        if frame.first() == Some(&MAGIC) {
            return match Message::decode(frame)? {
                Message::Hello(cert) if self.session.is_none() => {
                    let (frames, caught_up) = self.greet(&cert)?;
                    self.settle(frames, caught_up)
                }
                Message::Refused(reason) => {
                    // Noted only in a store already open: an accepting side does not write
                    // what a device that never showed a certificate says.
                    let peer_key = self.peer_key();
                    if let Some(archive) = self.archive.as_mut() {
                        let _ = archive.record_sync_result(&peer_key, Some(&reason));
                    }
                    Err(refused_by_peer(&reason))
                }
                _ => Err(Error::NotPermitted("请先出示成员证书".into())),
            };
        }
        let (Some(session), Some(archive), Some(member)) = (
            self.session.as_mut(),
            self.archive.as_mut(),
            self.peer_member.as_ref(),
        ) else {
            return Err(Error::NotPermitted("尚未出示成员证书就收到同步数据".into()));
        };
        self.hold_off = self.pace.take(
            &DeviceId::from_key(&self.remote.0),
            std::time::Instant::now(),
        );
        // Every frame, as the hub does: the session was opened on the school as this phone
        // knew it then, and a conversation can be kept open for long. A device revoked since,
        // or a member deactivated (this phone heard at its own sync beside it), gets nothing
        // more; nor does a document the peer's member may no longer see (relay story 7b).
        let standing = archive.find_member(member.id.as_str()).ok();
        if !standing.is_some_and(|m| m.active) {
            return Err(Error::NotPermitted("对方成员已停用，同步已结束".into()));
        }
        if archive.is_revoked(&self.remote.0)? {
            return Err(Error::NotPermitted(
                "对方设备已被学校停用，同步已结束".into(),
            ));
        }
        let out = session.handle(archive.store(), Event::Frame(frame))?;
        if archive
            .first_not_visible(&member.id, &out.delivered)?
            .is_some()
        {
            return Err(Error::NotPermitted(
                "查看档案的权限有了变化（结对或班级有调整），同步已结束；重新连接即可".into(),
            ));
        }
        self.settle(out.frames, out.caught_up)
    }

    fn error_frame(&mut self, error: &Error) -> Option<Vec<u8>> {
        let peer_key = self.peer_key();
        if let Some(archive) = self.archive.as_mut() {
            let _ = archive.record_sync_result(&peer_key, Some(&error.to_string()));
        }
        Some(Message::Refused(error.to_string()).encode())
    }

    fn max_frame(&self) -> Option<usize> {
        // Until the peer's certificate checked out, as on the hub.
        self.session.is_none().then_some(HANDSHAKE_MAX_FRAME)
    }

    fn hold_off(&mut self) -> Option<std::time::Duration> {
        self.hold_off.take()
    }
}

/// Accepts device-to-device syncs: each connection opens the store at `store` (with its key,
/// if encrypted) afresh, so records written meanwhile (by the app or the CLI) are offered,
/// and only once the peer's certificate has verified: a device with none costs no store
/// opened and leaves nothing written in it.
#[derive(Clone)]
pub struct PeerFactory {
    store: PathBuf,
    key: Option<StoreKey>,
    trust: PeerTrust,
    done: Option<mpsc::UnboundedSender<PeerOutcome>>,
    colleagues: Arc<Colleagues>,
    pace: Arc<FrameRate>,
}

impl std::fmt::Debug for PeerFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerFactory")
            .field("store", &self.store)
            .field("encrypted", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl PeerFactory {
    /// A factory serving the store at `store`, opened with `key` if it is encrypted (once
    /// now, for the devices it registers: [`PeerFactory::colleagues`]). Each completed sync
    /// is reported on `done`.
    pub fn new(
        store: impl Into<PathBuf>,
        key: Option<StoreKey>,
        trust: PeerTrust,
        done: Option<mpsc::UnboundedSender<PeerOutcome>>,
    ) -> Result<PeerFactory, Error> {
        let store = store.into();
        let colleagues = Colleagues::read(&mut Archive::open_with_key(&store, key.as_ref())?)?;
        Ok(PeerFactory {
            store,
            key,
            trust,
            done,
            colleagues: Arc::new(colleagues),
            pace: Arc::new(FrameRate::default()),
        })
    }

    /// With another pace for the devices that connect (`crate::pace::Pace::default()` unless
    /// set).
    pub fn with_pace(mut self, pace: crate::pace::Pace) -> PeerFactory {
        self.pace = Arc::new(FrameRate::new(pace));
        self
    }

    /// Whom the node serving this factory admits, and how far (the transport's admission
    /// hook; module docs, "Who gets a place").
    pub fn colleagues(&self) -> Arc<Colleagues> {
        self.colleagues.clone()
    }
}

impl ConversationFactory for PeerFactory {
    fn start(&self, remote: EndpointId) -> shouwang_core::Result<Box<dyn Conversation>> {
        let mut conv = PeerSync::new(
            None,
            self.trust.clone(),
            remote,
            End::Acceptor,
            crate::unix_now(),
        );
        conv.closed = Some((self.store.clone(), self.key.clone()));
        conv.done = self.done.clone();
        conv.colleagues = Some(self.colleagues.clone());
        conv.pace = self.pace.clone();
        Ok(Box::new(conv))
    }
}

/// What a device-to-device sync moved, as the dialer sees it.
#[derive(Debug, Clone)]
pub struct PeerSynced {
    /// The peer's member.
    pub member: Member,
    pub progress: Progress,
}

/// What a member reads when her phone will not dial a device her school does not register.
const NOT_A_COLLEAGUE: &str = "对方不是本校登记的设备（或这台手机还不知道它，比如同事刚换的新手机）：没有与它同步，也没有让它看到本机的身份。请先与学校同步，或请对方的手机来连接这台手机";

/// What she reads when the device she dials is one the school revoked, or its member's.
const A_REVOKED_COLLEAGUE: &str = "对方设备或其使用人已被学校停用，不与它同步";

/// Syncs `archive` with the device at `peer` once, until both are caught up. Only a device
/// `archive`'s school document registers and holds active is dialed (module docs, "Handshake").
pub async fn sync_with_peer(
    node: &Node,
    peer: EndpointAddr,
    mut archive: Archive,
    trust: PeerTrust,
    opts: &ConversationOptions,
) -> Result<(Archive, PeerSynced), TransportError> {
    match Colleagues::read(&mut archive)?.revoked(&peer.id) {
        Some(false) => {}
        Some(true) => return Err(Error::NotPermitted(A_REVOKED_COLLEAGUE.into()).into()),
        None => return Err(Error::NotPermitted(NOT_A_COLLEAGUE.into()).into()),
    }
    let conv = PeerSync::dialer(archive, trust, peer.id, crate::unix_now());
    let (conv, _stats) = node.converse(peer, conv, opts).await?;
    let (Some(member), true) = (conv.peer_member().cloned(), conv.caught_up()) else {
        return Err(TransportError::Protocol("同步没有完成，请稍后再试".into()));
    };
    let progress = conv.progress();
    let archive = conv
        .into_archive()
        .ok_or_else(|| TransportError::Protocol("同步没有完成，请稍后再试".into()))?;
    Ok((archive, PeerSynced { member, progress }))
}
