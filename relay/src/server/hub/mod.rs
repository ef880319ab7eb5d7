//! The hub's side of a connection: enrollment and certificate checks before anything else.
//!
//! Every conversation borrows one of a few archives the hub keeps open ([`ArchivePool`]) for
//! the length of one callback. The store checks each cached document against the database on
//! every use, so members that `shouwang-relay invite` added from another process are seen at
//! once.
//! After [`Message::Welcome`] the connection carries the sync protocol: the hub runs a
//! [`Session`] scoped to what the certificate's member may see. The device decides when the
//! exchange is over; the hub never finishes first.
//!
//! Live devices ([`Message::Live`]) hear at once what other devices bring: a conversation whose
//! frame wrote changes to the hub's store wakes every conversation ([`HubState::changed`]), and
//! each live one announces, with [`Event::Poll`], the documents in its member's scope that
//! moved. A conversation in mid-exchange polls after every frame anyway and takes the wake only
//! once caught up; one-shot conversations never take it. A one-shot device's session
//! ([`Session::one_shot_peer`]) leaves what other devices bring after its `Hello` for its next
//! sync: it ends as soon as it holds what the hub held, instead of taking in every record that
//! arrives while it is connected.

mod gate;
mod pool;
pub mod relay_access;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use shouwang_core::Archive;
use shouwang_core::Error;
use shouwang_core::archive::REVOKED_DEVICE;
use shouwang_core::doc::DocId;
use shouwang_core::ids::{DeviceId, MemberId, SchoolId};
use shouwang_core::membership::{
    Certificate, CertificateBody, DeviceKey, InviteSecret, SchoolKey, SchoolPublicKey,
};
use shouwang_core::roles::Role;
use shouwang_core::school::{Member, Undelivered};
use shouwang_core::store::Sender;
use shouwang_core::sync::{Event, Session};
use tracing::{debug, info, warn};

use super::data::DataDir;
use crate::handshake::{CHUNK, MAGIC, Message};
use crate::pace::FrameRate;
use crate::transport::{
    Conversation, ConversationFactory, EndpointId, HANDSHAKE_MAX_FRAME, Reply, TransportMetrics,
    Wake,
};
pub(crate) use crate::unix_now;
pub(crate) use gate::Enrolled;
pub(crate) use pool::{ArchivePool, HUB_ARCHIVES};
pub(crate) use relay_access::EnrolledOnly;

/// Counters of the hub's own events (the transport counts bytes and connections).
#[derive(Debug, Default)]
pub struct HubMetrics {
    /// Devices enrolled (certificates issued).
    pub enrollments: AtomicU64,
    /// Devices whose certificate verified.
    pub greetings: AtomicU64,
    /// Devices refused: bad or spent invites, bad certificates.
    pub refusals: AtomicU64,
    /// Reads of the archive for `/health` and `/metrics`, each on a connection of its own (at
    /// most one every `STATUS_EVERY`).
    pub status_reads: AtomicU64,
    /// Sync frames welcomed devices sent.
    pub frames: AtomicU64,
    /// Times a device's next frame was held back: it sent faster than [`FrameRate`] allows.
    pub held_off: AtomicU64,
    /// Connections the built-in relay holds for devices now (the hub's own not counted).
    pub relay_connections: AtomicU64,
    /// Relay connections refused: not the school's, or over a limit (`relay_access`).
    pub relay_refused: AtomicU64,
    /// Relay connections ended because their device was revoked, or the invite that let a
    /// stranger in closed.
    pub relay_evicted: AtomicU64,
}

/// What a device reads while the hub rebuilds from a backup and cannot take it yet.
pub(crate) const REBUILDING: &str =
    "学校服务器刚从备份恢复，正在等管理员的设备先同步一次；请过一会儿再同步（本机的记录都还在）";

/// What every hub conversation shares.
#[derive(Debug)]
pub struct HubState {
    pub(crate) data: DataDir,
    pub(crate) school_id: SchoolId,
    pub(crate) school_key: SchoolKey,
    pub(crate) certificate_days: u32,
    /// Bytes of changes taken from one (non-administrator) member a day.
    pub(crate) daily_change_bytes: u64,
    pub(crate) metrics: Arc<HubMetrics>,
    pub(crate) archives: ArchivePool,
    /// Woken whenever a conversation writes a device's changes to the store.
    pub(crate) changed: Wake,
    /// Who may connect at all: registered devices, and anyone while an invite is open.
    pub(crate) enrolled: Arc<Enrolled>,
    /// How fast each welcomed device may send frames.
    pub(crate) frame_rate: FrameRate,
}

impl HubState {
    /// The school's public key.
    pub fn school_public(&self) -> SchoolPublicKey {
        self.school_key.public()
    }

    /// The school.
    pub fn school_id(&self) -> &SchoolId {
        &self.school_id
    }

    /// Wakes every hub conversation when one wrote changes (give it to the accepting side's
    /// [`crate::transport::ConversationOptions::wake`]).
    pub fn changed(&self) -> &Wake {
        &self.changed
    }

    /// The hub's own counters.
    pub fn metrics(&self) -> &Arc<HubMetrics> {
        &self.metrics
    }

    /// Connections the school's built-in relay has admitted and not yet seen end (the hub's
    /// own not counted).
    pub fn relay_connections(&self) -> usize {
        self.enrolled.relay.admitted()
    }

    /// How many times a conversation has borrowed one of the hub's archives. A device whose
    /// invite or certificate does not verify never borrows one.
    pub fn archive_borrows(&self) -> u64 {
        TransportMetrics::get(&self.archives.borrows)
    }

    /// Checks an invite presented by `device` and returns its certificate and the member's
    /// bundle. The invite is spent once its checks pass and before the device is registered;
    /// the same device may present it again for a while (a retried enrollment, until it has
    /// synced: [`super::data::AGAIN_SECONDS`]), and a revoked device never.
    pub fn enroll(
        &self,
        device: DeviceKey,
        member: &MemberId,
        secret: &InviteSecret,
        now: i64,
    ) -> Result<(Certificate, Vec<u8>), Error> {
        let Some(issued) = self.data.find_invite(secret)? else {
            return Err(Error::NotPermitted(
                "邀请码无效，请核对或让管理员重新生成".into(),
            ));
        };
        if issued.member != *member {
            return Err(Error::NotPermitted("邀请码与成员不符".into()));
        }
        if now > issued.expires_at {
            return Err(Error::NotPermitted(
                "邀请码已过期，请让管理员重新生成邀请码".into(),
            ));
        }
        // A used ticket (a photographed QR code) costs no archive.
        self.data.check_not_spent_by_another(secret, &device)?;
        let mut archive = self.archives.get()?;
        let m = archive.find_member(member.as_str())?;
        if !m.active {
            return Err(Error::NotPermitted("这位成员已停用".into()));
        }
        // An invite is for the role it was issued for. A member who no longer holds it, or who
        // was made an administrator since (the whole school, its secret; the console issues no
        // invite for another administrator), needs a new one: an old ticket kept by whoever
        // issued it must not enroll a device with more than it was issued for.
        let administers = |r: &Role| r.administers();
        if !m.roles.contains(&issued.role)
            || (m.roles.iter().any(administers) && !issued.role.administers())
        {
            return Err(Error::NotPermitted(
                "这位成员的角色在邀请码生成后变了，请让管理员重新生成邀请码".into(),
            ));
        }
        if archive.is_revoked(&device.0)? {
            return Err(Error::NotPermitted(REVOKED_DEVICE.into()));
        }
        // Spent before anything is written: a second device presenting the same invite is
        // refused here, before it is registered in the school document. The device that spent
        // it may present it again (`Spend::Again`) if what follows fails.
        let spend = self.data.spend(secret, &device, now)?;
        // Presented again by the device that spent it: an enrollment cut off before its
        // bundle arrived. Not once the device has synced since: each enrollment exports the
        // member's whole file (the whole school for an administrator), outside any quota. (A
        // device that synced before the invite was spent is one renewing its expired
        // certificate on the store it holds, `device::renew`: its retry goes on. The spend
        // is kept in whole seconds: a sync in its own second counts as after it.)
        if let super::data::Spend::Again { at } = spend
            && archive.has_synced_with_since(&device.to_string(), at.saturating_mul(1000))?
        {
            return Err(Error::NotPermitted(
                "这台设备已经加入学校，请直接同步，不用再用邀请码".into(),
            ));
        }
        let issued = self
            .school_key
            .issue(CertificateBody {
                school_id: self.school_id.clone(),
                member: m.id.clone(),
                roles: m.roles.clone(),
                device,
                issued_at: now,
                expires_at: now + i64::from(self.certificate_days) * 86_400,
            })
            .and_then(|certificate| {
                // The hub registers the device (its id derives from the key the QUIC
                // handshake authenticated) before the device writes anything: every change it
                // makes is then attributed to this member on every device.
                let bundle = archive.export_enrollment(
                    m.id.as_str(),
                    &device.to_string(),
                    &device,
                    &format!("{}的设备", m.name),
                )?;
                Ok((certificate, bundle))
            });
        let (certificate, bundle) = match issued {
            Ok(done) => done,
            Err(e) => {
                // Spent now and nothing registered (the key is another member's device, the
                // store busy): the invite is given back, as the phone drops a key the school
                // refused. A device registered before the failure keeps it spent: its retry
                // with the same key goes on (`Spend::Again`).
                let id = DeviceId::from_key(&device.0);
                let registered = archive
                    .school()
                    .map(|s| s.devices.iter().any(|d| d.id == id && d.member == m.id))
                    .unwrap_or(true);
                if matches!(spend, super::data::Spend::Fresh) && !registered {
                    self.data.unspend(secret, &device)?;
                }
                return Err(e);
            }
        };
        // Its next connection (the first sync, at once) must get past the gate before the
        // school watcher has seen the registration.
        self.enrolled.register(DeviceId::from_key(&device.0));
        info!(member = %m.id, device = %device, "enrolled");
        Ok((certificate, bundle))
    }

    /// A fresh certificate for a device whose certificate has less than half its validity
    /// left (renewed on every hub sync, so a phone that never comes back falls out of peer
    /// trust by itself), carrying the member's roles as the school document gives them now.
    ///
    /// Before that, only for a role the school gave the member since (peers bound her changes
    /// by the certificate's roles): the same certificate with the new roles added, none taken
    /// away, issued at the same time and valid no longer (a new issue time would be refused
    /// as "issued in the future" by a peer whose clock is minutes behind the hub's). A role taken away stays until the renewal at half-life,
    /// which is the certificate's cut-off: until then, what she wrote before she heard (her
    /// phone may not send it at this sync, or may meet a colleague first) is taken and listed
    /// for review everywhere, not refused by whoever holds her new certificate.
    fn renewal(
        &self,
        cert: &Certificate,
        member: &Member,
        now: i64,
    ) -> Result<Option<Certificate>, Error> {
        // A member left with no role (her only class given to another head) is not certified
        // anew: a certificate names at least one role. Hers runs out as it is, and until then
        // her phone still hands in what she wrote before she heard.
        if member.roles.is_empty() {
            return Ok(None);
        }
        let body = cert.body();
        let validity = i64::from(self.certificate_days) * 86_400;
        let body = if body.expires_at - now < validity / 2 {
            CertificateBody {
                roles: member.roles.clone(),
                issued_at: now,
                expires_at: now + validity,
                ..body.clone()
            }
        } else if member.roles.iter().any(|r| !body.roles.contains(r)) {
            let mut roles = body.roles.clone();
            roles.extend(member.roles.iter().filter(|r| !body.roles.contains(r)));
            CertificateBody {
                roles,
                ..body.clone()
            }
        } else {
            return Ok(None);
        };
        Ok(Some(self.school_key.issue(body)?))
    }

    /// While the hub rebuilds from a backup, only a device whose certificate is an
    /// administrator's may sync: its school document brings back the devices, members and
    /// pairings of the time since the backup. Everyone else waits, a device the backup knows
    /// included: it may have been revoked or its member deactivated since, or its pairings
    /// ended, and the restored copy cannot tell until an administrator's device has synced.
    /// Unless told by hand that no such device can come (`admit-phones`): then the devices
    /// the backup registers sync meanwhile.
    fn check_rebuild(&self, device: &DeviceKey, cert: &Certificate) -> Result<(), Error> {
        if !self.enrolled.rebuilding()
            || cert.body().roles.iter().any(|r| r.administers())
            || (self.enrolled.phones_admitted()
                && self
                    .enrolled
                    .standing(&DeviceId::from_key(&device.0))
                    .is_some())
        {
            return Ok(());
        }
        Err(Error::NotPermitted(REBUILDING.into()))
    }

    /// Checks a certificate presented by `device`.
    pub fn check_certificate(
        &self,
        device: DeviceKey,
        bytes: &[u8],
        now: i64,
    ) -> Result<Certificate, Error> {
        let cert = self.verify_certificate(device, bytes, now)?;
        let mut archive = self.archives.get()?;
        self.check_member(&mut archive, &cert)?;
        Ok(cert)
    }

    /// Checks a certificate's signature, school, device and validity: no archive needed, so
    /// a stranger costs the hub no more than this.
    fn verify_certificate(
        &self,
        device: DeviceKey,
        bytes: &[u8],
        now: i64,
    ) -> Result<Certificate, Error> {
        let cert = Certificate::from_bytes(bytes)?;
        cert.verify(&self.school_id, &self.school_key.public(), &device, now)?;
        Ok(cert)
    }

    /// The member a verified certificate names, if still active in `archive`. A revoked
    /// device, or any device of a member no longer active (deactivating a member revokes her
    /// devices in the same change), is answered `Revoked`: that answer makes it wipe itself,
    /// where any other refusal leaves the school's files on it.
    fn check_member(&self, archive: &mut Archive, cert: &Certificate) -> Result<Member, Error> {
        if archive.is_revoked(&cert.body().device.0)? {
            return Err(Error::Revoked);
        }
        let m = archive.find_member(cert.body().member.as_str())?;
        if !m.active {
            return Err(Error::Revoked);
        }
        Ok(m)
    }
}

/// Whether the device (by its network key) may still sync: not revoked.
fn check_standing(archive: &mut Archive, device: &DeviceKey) -> shouwang_core::Result<()> {
    if archive.is_revoked(&device.0)? {
        return Err(Error::Revoked);
    }
    Ok(())
}

/// Watches the school document in `hub.db` (written by this hub's conversations or by the
/// office from another process: a revocation, an erasure) and, when it changes, purges the
/// documents of children the school erased and wakes every live conversation, so each
/// re-checks its device's standing within `every`.
pub(crate) async fn watch_school(state: Arc<HubState>, every: std::time::Duration) {
    let mut last = String::new();
    // The heads at which erased children's documents were last purged (a purge that failed,
    // the store busy, is tried again at the next tick).
    let mut purged_at = String::new();
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let s = state.clone();
        let done = purged_at.clone();
        let seen = tokio::task::spawn_blocking(move || {
            let mut a = s.archives.get_quietly().ok();
            let heads = a
                .as_mut()
                .and_then(|a| a.store().heads(&DocId::School).ok());
            if let (Some(a), Some(h)) = (a.as_mut(), &heads)
                && *h != s.enrolled.seen_heads()
            {
                s.enrolled.refresh(a);
            }
            // Relay connections of strangers once no invite is open, and a revoked device's
            // but one, end here (from memory: also while the archive is busy).
            let open = s.enrolled.invite_open() || s.enrolled.rebuilding();
            let evicted = s.enrolled.relay.evict(|id| s.enrolled.standing(id), open);
            TransportMetrics::add(&s.metrics.relay_evicted, evicted);
            let (mut a, heads) = (a?, heads?);
            // Nothing of an erased child stays on the hub but the school's record of it, nor
            // in the WAL a reader kept from being folded back (`Store::scrub_if_due`).
            let purged = heads == done || a.purge_erased().is_ok();
            if let Err(e) = a.store().scrub_if_due() {
                tracing::debug!("scrub: {e}");
            }
            Some((heads, purged))
        })
        .await
        .ok()
        .flatten();
        let heads = seen.map(|(h, purged)| {
            if purged {
                purged_at.clone_from(&h);
            }
            h
        });
        if let Some(h) = heads
            && h != last
        {
            if !last.is_empty() {
                state.changed.wake();
            }
            last = h;
        }
    }
}

/// Makes a [`HubConversation`] per connection.
#[derive(Debug, Clone)]
pub struct HubFactory {
    state: Arc<HubState>,
}

impl HubFactory {
    /// A factory over shared hub state.
    pub fn new(state: Arc<HubState>) -> HubFactory {
        HubFactory { state }
    }
}

impl ConversationFactory for HubFactory {
    fn start(&self, remote: EndpointId) -> shouwang_core::Result<Box<dyn Conversation>> {
        Ok(Box::new(HubConversation {
            state: self.state.clone(),
            device: DeviceKey(*remote.as_bytes()),
            answered: false,
            sync: None,
            live: false,
            admin: false,
            recorded: false,
            hold_off: None,
            deliveries: DeliveryLog {
                device: DeviceId::from_key(remote.as_bytes()),
                member: None,
                logged: std::collections::BTreeSet::new(),
            },
        }))
    }
}

/// The hub's side: the device's first frame decides everything.
#[derive(Debug)]
pub struct HubConversation {
    state: Arc<HubState>,
    device: DeviceKey,
    answered: bool,
    /// After the handshake: the session with this device.
    sync: Option<Session>,
    /// The device stays connected: pass on what other devices write.
    live: bool,
    /// The welcomed member administers the school (its sync ends a rebuild).
    admin: bool,
    /// The sync's end is recorded and nothing was exchanged since: a caught-up device
    /// repeating its last frame (`Idle`) costs no write.
    recorded: bool,
    /// How long the device's next frame waits: it sent faster than [`FrameRate`] allows.
    hold_off: Option<std::time::Duration>,
    deliveries: DeliveryLog,
}

/// Why a device with a valid certificate that the school document does not register is
/// refused.
const UNREGISTERED: &str =
    "学校服务器上没有这台设备的登记（服务器可能从备份恢复过），请向管理员要新的邀请码重新加入";

/// Why a connection ended when a document it was about to send left its member's scope.
const SCOPE_CHANGED: &str = "学校刚调整了你能查看的学生范围，这次同步已停止；请重新同步";

/// What this connection has put in the hub's delivery log (issue 11).
#[derive(Debug)]
struct DeliveryLog {
    device: DeviceId,
    /// The member the welcomed certificate names (nothing is logged before).
    member: Option<MemberId>,
    /// Documents already logged for the current exchange (cleared once caught up, so a live
    /// connection logs each later delivery again).
    logged: std::collections::BTreeSet<DocId>,
}

impl DeliveryLog {
    /// Releases what `out` sends to the device, before the frames leave: checks that its
    /// member may still see each document it carries (the session's scope was fixed at its
    /// `Hello`; a live connection can outlive a pairing), then logs them. If either fails, the
    /// frames are not sent and the conversation ends; the device's next sync starts from a
    /// scope computed anew.
    fn release(
        &mut self,
        archive: &mut Archive,
        out: &shouwang_core::sync::Output,
    ) -> Result<(), Error> {
        if let Some(member) = &self.member
            && let Some(doc) = archive.first_not_visible(member, &out.delivered)?
        {
            // Not a child's id: the service's log outlives her file's erasure.
            let doc = if doc.child().is_some() {
                "a child's file".to_owned()
            } else {
                doc.key()
            };
            info!(device = %self.device, %doc, "left the member's scope mid-connection");
            return Err(Error::NotPermitted(SCOPE_CHANGED.into()));
        }
        let new: Vec<_> = out
            .delivered
            .iter()
            .filter(|d| self.logged.insert((*d).clone()))
            .cloned()
            .collect();
        if out.caught_up {
            self.logged.clear();
        }
        let Some(member) = &self.member else {
            return Ok(());
        };
        archive
            .store()
            .log_deliveries(self.device.as_str(), member.as_str(), &new, unix_now())
    }
}

impl HubConversation {
    fn answer(&mut self, frame: &[u8]) -> Result<Reply, Error> {
        let now = unix_now();
        match Message::decode(frame)? {
            Message::Enroll { member, secret } => {
                if self.state.enrolled.rebuilding() {
                    return Err(Error::NotPermitted(REBUILDING.into()));
                }
                let (cert, bundle) = self.state.enroll(self.device, &member, &secret, now)?;
                TransportMetrics::add(&self.state.metrics.enrollments, 1);
                let mut frames = vec![Message::Certificate(cert.to_bytes()).encode()];
                for chunk in bundle.chunks(CHUNK) {
                    frames.push(Message::BundleChunk(chunk.to_vec()).encode());
                }
                frames.push(Message::BundleEnd(bundle.len() as u64).encode());
                Ok(Reply::finish(frames))
            }
            Message::Hello(bytes) => {
                // A revoked device is told so whatever else is wrong, an expired certificate
                // included: that answer is what makes it wipe itself. A device the school
                // never registered (an open invite lets anyone through the gate) costs no
                // archive; a registered one is looked up, since the gate's list may not have
                // heard of a revocation written a moment ago.
                let cert = match self.state.verify_certificate(self.device, &bytes, now) {
                    Ok(cert) => cert,
                    Err(e) => {
                        let id = DeviceId::from_key(&self.device.0);
                        match self.state.enrolled.standing(&id) {
                            None => {}
                            Some(gate::Standing::Revoked) => return Err(Error::Revoked),
                            Some(gate::Standing::Active) => {
                                let mut archive = self.state.archives.get()?;
                                check_standing(&mut archive, &self.device)?;
                            }
                        }
                        return Err(e);
                    }
                };
                let mut archive = self.state.archives.get()?;
                let member = self.state.check_member(&mut archive, &cert)?;
                self.state.check_rebuild(&self.device, &cert)?;
                // A certificate says the school issued it, not that the school still knows
                // the device: a registration a restored hub lost (a phone enrolled after the
                // office's device last synced) is in no copy it has, the office could not
                // revoke such a phone, and what it writes rests on a school the hub will never
                // hold. It joins again. Not an administrator's device: it relays the school,
                // so it brings back its own registration, and the hub's other lost changes
                // with it (as while rebuilding).
                let id = DeviceId::from_key(&self.device.0);
                let administers = |roles: &[Role]| roles.iter().any(|r| r.administers());
                let relays_the_school =
                    administers(&cert.body().roles) && administers(&member.roles);
                if !self.state.enrolled.rebuilding()
                    && !relays_the_school
                    && !archive
                        .school()?
                        .devices
                        .iter()
                        .any(|d| d.id == id && d.member == member.id)
                {
                    return Err(Error::NotPermitted(UNREGISTERED.into()));
                }
                TransportMetrics::add(&self.state.metrics.greetings, 1);
                // Every sync of every phone: kept out of the default log (journald keeps it
                // unbounded), where the delivery log in `hub.db` keeps it bounded and encrypted.
                debug!(member = %cert.body().member, device = %self.device, "welcomed");
                let mut session = archive
                    .session(&self.device.to_string(), Some(&member))?
                    .taking_hand_ins()
                    .compressing_fast()
                    // Until it says `Live`: a device's sync ends once it holds what the hub
                    // held, and what other phones bring meanwhile waits for its next sync.
                    .one_shot_peer()
                    .with_sender(Sender::for_device(
                        &self.device.0,
                        &member,
                        &cert.body().roles,
                    ));
                if !member.roles.iter().any(|r| r.administers()) {
                    session =
                        session.with_daily_quota(member.id.clone(), self.state.daily_change_bytes);
                }
                let out = session.handle(archive.store(), Event::Start)?;
                self.deliveries.member = Some(member.id.clone());
                self.admin = member.roles.iter().any(|r| r.administers());
                self.deliveries.release(&mut archive, &out)?;
                let mut frames = vec![Message::Welcome(self.state.school_id.clone()).encode()];
                // A renewal that cannot be made does not cost the device its sync.
                match self.state.renewal(&cert, &member, now) {
                    Ok(Some(renewed)) => {
                        frames.push(Message::Certificate(renewed.to_bytes()).encode());
                    }
                    Ok(None) => {}
                    Err(e) => warn!(member = %member.id, "certificate not renewed: {e}"),
                }
                frames.extend(out.frames);
                self.sync = Some(session);
                Ok(Reply::send(frames))
            }
            Message::Undelivered { changes, records } => {
                // The device is the one QUIC authenticated; `record_undelivered` refuses it
                // unless the school has revoked it. One the school never registered (an
                // invite open lets any device through the gate) is refused from memory, the
                // gate's list, before it borrows an archive. (Not "unless revoked" here: a
                // revocation written by another process reaches that list a moment later.)
                let id = DeviceId::from_key(&self.device.0);
                if self.state.enrolled.standing(&id).is_none() {
                    return Err(Error::not_found("设备", id.as_str()));
                }
                let mut archive = self.state.archives.get()?;
                archive.record_undelivered(&id, Undelivered { changes, records })?;
                info!(device = %id, changes, records, "revoked device wiped; undelivered reported");
                // The school document changed: administrators' live devices hear it.
                self.state.changed.wake();
                Ok(Reply::finish(vec![Message::Revoked.encode()]))
            }
            _ => Err(Error::NotPermitted("请先出示成员证书或邀请码".into())),
        }
    }
}

impl Conversation for HubConversation {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        // The device speaks first.
        Ok(Reply::nothing())
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        if let Some(session) = self.sync.as_mut()
            && frame.first() != Some(&MAGIC)
        {
            TransportMetrics::add(&self.state.metrics.frames, 1);
            // Not an administrator's device, as the daily quota: its sync after a restore
            // exchanges every document of the school (a frame each), and the rebuild waits on
            // it.
            if !self.admin {
                self.hold_off = self.state.frame_rate.take(
                    &DeviceId::from_key(&self.device.0),
                    std::time::Instant::now(),
                );
                if self.hold_off.is_some() {
                    TransportMetrics::add(&self.state.metrics.held_off, 1);
                }
            }
            let mut archive = self.state.archives.get()?;
            // Revoked since the welcome: refused at the next frame.
            check_standing(&mut archive, &self.device)?;
            let mut out = session.handle(archive.store(), Event::Frame(frame))?;
            if !out.caught_up {
                // Other connections write the same documents meanwhile (several carers of one
                // child syncing at once): announce what they wrote. Without this, a digest
                // that includes their changes can leave both sides waiting for each other
                // until the idle timeout.
                let polled = session.handle(archive.store(), Event::Poll)?;
                out.frames.extend(polled.frames);
                out.caught_up = polled.caught_up;
                out.delivered.extend(polled.delivered);
            }
            self.deliveries.release(&mut archive, &out)?;
            let recorded = std::mem::replace(&mut self.recorded, out.caught_up);
            if out.caught_up && (out.wrote || !recorded) {
                archive.record_sync_result(session.peer(), None)?;
                if self.admin && self.state.enrolled.rebuilding() {
                    self.state.enrolled.refresh(&mut archive);
                    self.state.enrolled.rebuilt();
                }
            }
            if out.wrote {
                // A device registered by the office (a bundle-joined phone) may connect as
                // soon as the office's sync has brought its registration: the gate learns it
                // now, not at the watcher's next tick.
                if archive.store().heads(&DocId::School).ok().as_ref()
                    != Some(&self.state.enrolled.seen_heads())
                {
                    self.state.enrolled.refresh(&mut archive);
                }
                self.state.changed.wake();
            }
            return Ok(Reply::send(out.frames));
        }
        if self.answered {
            if let Some(session) = self.sync.as_mut()
                && Message::decode(frame)? == Message::Live
            {
                self.live = true;
                session.peer_went_live();
                return Ok(Reply::nothing());
            }
            return Err(Error::NotPermitted("握手已经完成".into()));
        }
        self.answered = true;
        let r = self.answer(frame);
        if r.is_err() {
            TransportMetrics::add(&self.state.metrics.refusals, 1);
        }
        r
    }

    fn listening(&self) -> bool {
        // Mid-exchange, the hub polls after every frame; a wake then waits until caught up.
        self.live && self.sync.as_ref().is_some_and(Session::is_caught_up)
    }

    fn on_wake(&mut self) -> shouwang_core::Result<Reply> {
        let Some(session) = self.sync.as_mut() else {
            return Ok(Reply::nothing());
        };
        let mut archive = self.state.archives.get()?;
        // A live connection of a device revoked meanwhile ends here (the school watcher wakes
        // every live conversation when the school document changes).
        check_standing(&mut archive, &self.device)?;
        let out = session.handle(archive.store(), Event::Poll)?;
        self.deliveries.release(&mut archive, &out)?;
        // An exchange begins: its end is recorded again.
        self.recorded &= out.frames.is_empty();
        Ok(Reply::send(out.frames))
    }

    fn error_frame(&mut self, error: &Error) -> Option<Vec<u8>> {
        if matches!(error, Error::Revoked) {
            return Some(Message::Revoked.encode());
        }
        Some(Message::Refused(error.to_string()).encode())
    }

    fn max_frame(&self) -> Option<usize> {
        // Until the device is welcomed, nobody can make the hub reserve more than this.
        self.sync.is_none().then_some(HANDSHAKE_MAX_FRAME)
    }

    fn hold_off(&mut self) -> Option<std::time::Duration> {
        self.hold_off.take()
    }
}
