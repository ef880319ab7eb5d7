//! A device's network life, shared by the CLI and the phone apps (through `shouwang-ffi`):
//! its identity, enrolling with an invite ticket, syncing with the hub, and syncing with
//! another device directly.
//!
//! The identity (the iroh secret key, the membership certificate and the invite that names
//! the hub, relay and school key) lives in the store's `meta` table, written in the same
//! transaction that sets the store up, so a device is either fully joined or not at all.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shouwang_core::Archive;
use shouwang_core::Error;
use shouwang_core::archive::JoinOptions;
use shouwang_core::membership::{Certificate, Invite};
use shouwang_core::store::StoreKey;
use shouwang_core::sync::Progress;

use crate::handshake;
use crate::peer::{PeerFactory, PeerOutcome, PeerSynced, PeerTrust, sync_with_peer};
use crate::syncing::{DeviceSync, ProgressHook, sync_with_progress};
use crate::transport::{
    ConversationOptions, EndpointAddr, Node, NodeConfig, SecretKey, TransportError,
    TransportMetrics,
};

use shouwang_core::archive::META_NETWORK_KEY as META_SECRET;
pub(crate) const META_CERTIFICATE: &str = "net.certificate";
const META_INVITE: &str = shouwang_core::membership::INVITE_META;

/// How long a device waits to reach a peer or the hub: generous, for EDGE links.
pub fn default_options() -> ConversationOptions {
    ConversationOptions {
        connect_timeout: Duration::from_secs(30),
        ..ConversationOptions::default()
    }
}

/// [`default_options`] for a phone waiting for other members' devices ([`serve_peers`]): a
/// handful of connections at once, not a hub's hundreds. Each conversation opens the store
/// only once its peer's certificate verified (`peer::PeerFactory`), so a crowd of devices
/// that show none costs connections only, and these bound them: devices this phone does not
/// know as registered get [`PEER_STRANGER_PLACES`] of them at most (`peer::Colleagues`).
pub fn peer_options() -> ConversationOptions {
    ConversationOptions {
        limits: crate::transport::ConnectionLimits {
            total: 16,
            per_endpoint: 2,
            strangers: PEER_STRANGER_PLACES,
        },
        ..default_options()
    }
}

/// Of a waiting phone's connections, how many devices it does not know as registered may hold
/// at once: a colleague's phone registered since this one last heard from the hub (its
/// certificate still checks out), or outsiders on the same Wi-Fi, who must not keep
/// colleagues out.
pub const PEER_STRANGER_PLACES: usize = 4;

/// How long an app keeps its connection to the hub open after a sync (or after connecting
/// ahead with [`Node::warm_up`]) for the next one: less than the hub's wait (its idle
/// timeout, 60 s by default), so the device lets go first.
pub const WARM: Duration = Duration::from_secs(45);

/// [`default_options`] for an app that keeps one node while it is open: its syncs with the
/// hub reuse a warm connection ([`WARM`]; `transport` module docs, point 6).
pub fn warm_options() -> ConversationOptions {
    ConversationOptions {
        warm: WARM,
        ..default_options()
    }
}

/// A device's network identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub secret: SecretKey,
    pub certificate: Certificate,
    pub invite: Invite,
}

impl Identity {
    /// The identity stored in `archive`; [`Error::NotEnrolled`] if it joined without a ticket.
    pub fn load(archive: &mut Archive) -> Result<Identity, Error> {
        let store = archive.store();
        let (Some(secret), Some(cert), Some(invite)) = (
            store.meta(META_SECRET)?,
            store.meta(META_CERTIFICATE)?,
            store.meta(META_INVITE)?,
        ) else {
            return Err(Error::NotEnrolled);
        };
        let secret = hex::decode(&secret)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(|b| SecretKey::from_bytes(&b))
            .ok_or_else(|| Error::Corrupt("设备密钥已损坏，请重新加入".into()))?;
        Ok(Identity {
            secret,
            certificate: Certificate::decode(&cert)?,
            invite: Invite::decode(&invite)?,
        })
    }

    /// The hub's address, from the invite.
    pub fn hub(&self) -> Result<EndpointAddr, Error> {
        handshake::hub_addr(&self.invite)
    }

    /// What this device trusts when it meets another device directly.
    pub fn trust(&self) -> PeerTrust {
        PeerTrust::new(self.certificate.clone(), self.invite.school_key)
    }

    /// This device's endpoint id as text: the code another device names to sync with it.
    pub fn device_code(&self) -> String {
        self.secret.public().to_string()
    }

    /// The certificate's expiry, and a Chinese warning when it is near (under 7 days left) or
    /// past: renewal is automatic at a hub sync, so the user only needs to get online.
    pub fn certificate_warning(&self, now: i64) -> (i64, Option<String>) {
        let (expires, day) = expiry_day(self.certificate.body().expires_at);
        let warning = if expires <= now {
            Some(format!(
                "成员证书已于 {day} 过期：学校服务器和附近的设备都不再与本机同步。请让管理员为你重新生成邀请码，用它给本机续期（本机的档案和没有同步的记录都会保留）"
            ))
        } else if expires - now < 7 * 86_400 {
            Some(format!(
                "成员证书将于 {day} 到期：请尽快联网与学校服务器同步，证书会自动续期"
            ))
        } else {
            None
        };
        (expires, warning)
    }

    /// The node settings of this device: every interface, the invite's relay, and mDNS when
    /// `lan` is set (needs the `mdns` feature).
    pub fn node_config(&self, lan: bool) -> Result<NodeConfig, Error> {
        let mut config = NodeConfig::new(self.secret.clone());
        if let Some(relay) = handshake::invite_relay(&self.invite)? {
            config = config.with_relay(relay);
        }
        config.lan_discovery = lan;
        Ok(config)
    }

    /// Binds this device's endpoint (it dials; it does not accept).
    pub async fn bind(&self, lan: bool) -> Result<Node, TransportError> {
        Node::bind(self.node_config(lan)?).await
    }
}

/// A certificate's expiry, and its day as `YYYY-MM-DD` (UTC).
fn expiry_day(expires: i64) -> (i64, String) {
    let day = chrono::DateTime::from_timestamp(expires, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    (expires, day)
}

/// Enrolls a new device at `store` (encrypted with `key` if given) with an invite `ticket`
/// and sets the store up from the member's documents. Nothing is written at `store` if any
/// step fails; the store path is checked before the invite is spent on the hub.
///
/// The hub spends the invite for this device's key. A join cut after that (the app closed,
/// the battery died, the store could not be written) would leave the member's invite spent
/// for a key nobody has. So the key is generated once and kept beside the store
/// ([`pending_key_path`]) until the store exists: a retry with the same ticket presents the
/// same key, and the hub lets the same device enroll again.
pub async fn join(
    store: &Path,
    key: Option<&StoreKey>,
    ticket: &str,
    device_label: &str,
    now: i64,
    opts: &ConversationOptions,
) -> Result<Archive, TransportError> {
    join_with(
        store,
        key,
        ticket,
        device_label,
        now,
        opts,
        JoinSettings::default(),
    )
    .await
}

/// How a [`join_with`] runs, beyond the conversation options.
#[derive(Default)]
pub struct JoinSettings {
    /// Where the device's endpoint binds; `None`: every interface. (Tests and benchmarks
    /// bind one loopback address so that an emulated link is the only path to the hub.)
    pub bind: Option<Vec<std::net::SocketAddr>>,
    /// Called with the bytes of the member's documents received so far: 0 once the hub has
    /// accepted the invite, then as they arrive. On 2G a year of a class takes a minute, and
    /// the teacher should see it move.
    pub progress: Option<handshake::EnrollProgress>,
}

impl std::fmt::Debug for JoinSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinSettings")
            .field("bind", &self.bind)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// [`join`], with [`JoinSettings`].
pub async fn join_with(
    store: &Path,
    key: Option<&StoreKey>,
    ticket: &str,
    device_label: &str,
    now: i64,
    opts: &ConversationOptions,
    settings: JoinSettings,
) -> Result<Archive, TransportError> {
    let (invite, secret, enrolled) = enroll_with(store, key, ticket, now, opts, settings).await?;
    let ticket = ticket.trim();
    let certificate = enrolled.certificate.encode();
    let secret = hex::encode(secret.to_bytes());
    let hub = handshake::hub_addr(&invite)?.id.to_string();
    let _ = device_label; // the hub registers the device under the member's name
    let archive = Archive::join_enrolled(
        store,
        &enrolled.bundle,
        invite.member.as_str(),
        &JoinOptions {
            key,
            meta: &[
                (META_SECRET, secret.as_str()),
                (META_CERTIFICATE, certificate.as_str()),
                (META_INVITE, ticket),
            ],
            // The hub had every document of the bundle when it sent it: the first sync sends
            // only what this device wrote since.
            shared_with: Some(&hub),
        },
    )?;
    // The key is in the store now: the file holding it in the clear is overwritten, not only
    // unlinked. (Left behind, it would only be reused by the next join at this path.)
    let _ = shouwang_core::store::wipe_file(&pending_key_path(store));
    Ok(archive)
}

/// The first half of [`join`]: checks the ticket and the store path, and enrolls with the
/// hub under the device key kept at [`pending_key_path`].
pub async fn enroll(
    store: &Path,
    ticket: &str,
    now: i64,
    opts: &ConversationOptions,
) -> Result<(Invite, SecretKey, handshake::Enrolled), TransportError> {
    enroll_with(store, None, ticket, now, opts, JoinSettings::default()).await
}

async fn enroll_with(
    store: &Path,
    key: Option<&StoreKey>,
    ticket: &str,
    now: i64,
    opts: &ConversationOptions,
    settings: JoinSettings,
) -> Result<(Invite, SecretKey, handshake::Enrolled), TransportError> {
    // A store this key opens that names no school is what a join cut off left (the phone
    // died while writing it): joined again over it, with the device key kept beside it.
    if Archive::exists_with_key(store, key)? {
        return Err(Error::archive_exists().into());
    }
    let invite = Invite::decode(ticket.trim())?;
    invite.check_valid(now)?;
    let secret = pending_key(store)?;
    match enroll_as(&secret, &invite, now, opts, settings).await {
        Ok(enrolled) => Ok((invite, secret, enrolled)),
        Err(e) => {
            // A refusal spent nothing for this key: nothing to keep it for.
            if matches!(
                e,
                TransportError::Refused(_) | TransportError::Conversation(Error::NotPermitted(_))
            ) {
                let _ = shouwang_core::store::wipe_file(&pending_key_path(store));
            }
            Err(e)
        }
    }
}

/// Enrolls with the hub `invite` names, as the device whose key is `secret`.
async fn enroll_as(
    secret: &SecretKey,
    invite: &Invite,
    now: i64,
    opts: &ConversationOptions,
    settings: JoinSettings,
) -> Result<handshake::Enrolled, TransportError> {
    let mut config = NodeConfig::new(secret.clone());
    if let Some(relay) = handshake::invite_relay(invite)? {
        config = config.with_relay(relay);
    }
    if let Some(bind) = settings.bind {
        config.bind = bind;
    }
    let node = Node::bind(config).await?;
    let enrolled =
        handshake::enroll_with_progress(&node, invite, now, opts, settings.progress).await;
    node.shutdown().await;
    enrolled
}

/// Renews this device's expired membership with a new invite `ticket` for its member, on the
/// store it holds (`shouwang_core::archive`'s renewal module): it enrolls again with its own
/// key, takes the new certificate and the member's documents in one transaction, and keeps
/// everything it holds, its unsent work included (the next sync sends it). Nothing is written
/// if any step fails, and a ticket for another school or member is refused before the hub
/// spends the invite (one while the certificate is valid renews it too). A renewal cut off
/// after the hub spent the invite may be tried again with the same ticket for a while
/// (`server::data::AGAIN_SECONDS`).
pub async fn renew(
    archive: &mut Archive,
    ticket: &str,
    now: i64,
    opts: &ConversationOptions,
    settings: JoinSettings,
) -> Result<shouwang_core::archive::ImportReport, TransportError> {
    let identity = Identity::load(archive)?;
    let ticket = ticket.trim();
    let invite = Invite::decode(ticket)?;
    if invite.school_id != *archive.school_id() || invite.school_key != identity.invite.school_key {
        return Err(Error::NotPermitted(
            "这个邀请码是另一所学校的，不能用来给本机续期；没有改动本机的档案".into(),
        )
        .into());
    }
    if invite.member != identity.certificate.body().member {
        let name = archive.me().map(|m| m.name).unwrap_or_default();
        return Err(Error::NotPermitted(format!(
            "这个邀请码是给另一位成员的；本机属于{name}，请让管理员为{name}生成邀请码。没有改动本机的档案"
        ))
        .into());
    }
    // Whether the certificate expired is the hub's word, by its clock: a phone whose clock
    // is behind (a battery run flat resets some to 1970) would wrongly think it valid.
    invite.check_valid(now)?;
    let enrolled = enroll_as(&identity.secret, &invite, now, opts, settings).await?;
    let certificate = enrolled.certificate.encode();
    // The peer a sync with this hub is recorded as.
    let hub = handshake::hub_addr(&invite)?.id.to_string();
    Ok(archive.renew_enrolled(
        &enrolled.bundle,
        &hub,
        &[
            (META_CERTIFICATE, certificate.as_str()),
            (META_INVITE, ticket),
        ],
    )?)
}

/// Where a join in progress keeps its device key: `<store>.joining`, beside the store.
pub fn pending_key_path(store: &Path) -> std::path::PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".joining");
    name.into()
}

/// The device key of a join in progress at `store`: the one an earlier, cut attempt kept, or
/// a new one, written (owner-only, synced to disk) before it is used.
fn pending_key(store: &Path) -> Result<SecretKey, Error> {
    let path = pending_key_path(store);
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some(bytes) = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
    {
        return Ok(SecretKey::from_bytes(&bytes));
    }
    let secret = SecretKey::generate();
    let tmp = path.with_extension("joining.tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(hex::encode(secret.to_bytes()).as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(secret)
}

/// One progress hook shared by the attempts of one sync.
fn shared_hook(hook: Option<ProgressHook>) -> impl Fn() -> Option<ProgressHook> {
    let hook = hook.map(|h| Arc::new(std::sync::Mutex::new(h)));
    move || {
        hook.clone().map(|h| {
            Box::new(move |p: &Progress| {
                if let Ok(mut h) = h.lock() {
                    h(p);
                }
            }) as ProgressHook
        })
    }
}

/// Syncs `archive` with the hub over `node` once, until both have everything.
///
/// The device holds only what its member may see: documents outside that (a pairing ended, a
/// class handed over, the member deactivated) are purged before connecting, judged against
/// the school document the device has, and again after the exchange, judged against the one
/// the hub just sent. The hub refuses a session in which a device offers a document outside
/// its member's scope; if that happens because the news came in this very session (the
/// school document arrived before the refusal), the purge removes the document and the sync
/// is tried once more.
pub async fn sync_hub(
    node: &Node,
    identity: &Identity,
    archive: Archive,
    opts: &ConversationOptions,
    hook: Option<ProgressHook>,
) -> Result<(Archive, Progress), TransportError> {
    sync_hub_with(node, identity, archive, opts, hook, WhenRevoked::Wipe).await
}

/// What a sync does when the hub says the school revoked this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenRevoked {
    /// Reports what the hub had not received, then wipes the store: for a caller that holds
    /// no other connection to it (the command line).
    Wipe,
    /// Reports what the hub had not received and returns [`Error::Revoked`] with the store
    /// left in place: for a caller that holds other connections to it (the phone app keeps
    /// one for the screens, and may sync live or with colleagues). It closes every one of
    /// them first and then wipes the store itself ([`shouwang_core::archive::Reopen::wipe`]):
    /// zeroing a file another connection writes to may leave what that connection commits.
    Report,
}

/// [`sync_hub`], doing `when_revoked` if the hub says this device is revoked.
pub async fn sync_hub_with(
    node: &Node,
    identity: &Identity,
    mut archive: Archive,
    opts: &ConversationOptions,
    hook: Option<ProgressHook>,
    when_revoked: WhenRevoked,
) -> Result<(Archive, Progress), TransportError> {
    let hub = identity.hub()?;
    let hook = shared_hook(hook);
    let reopen = archive.reopen();
    // Damaged documents go first: the hub sends them again whole.
    archive.drop_damaged()?;
    archive.purge_out_of_scope()?;
    let mut retried = false;
    loop {
        // A warm connection may have died unseen (the hub restarted, the phone changed
        // networks): a sync cut on one is tried once more, on a new connection.
        let warm = node.is_warm(hub.id);
        match sync_with_progress(
            node,
            hub.clone(),
            archive,
            &identity.certificate,
            opts,
            hook(),
        )
        .await
        {
            Ok((mut archive, progress)) => {
                archive.purge_out_of_scope()?;
                return Ok((archive, progress));
            }
            Err(e) if is_revoked(&e) => {
                // The school revoked this device: nothing of the children stays on it. What
                // it had not sent is lost with it; the office sees how much.
                return Err(wipe_revoked(node, &hub, &reopen, opts, when_revoked).await);
            }
            Err(e) => {
                // The failed conversation took the archive with it: open the store again.
                let purged = reopen
                    .open()
                    .and_then(|mut a| Ok((a.purge_out_of_scope()?, a)));
                match purged {
                    Ok((n, a)) if (n > 0 || (warm && is_cut(&e))) && !retried => archive = a,
                    _ => return Err(e),
                }
                retried = true;
            }
        }
    }
}

/// How long a revoked device tries to tell the hub what it had not delivered before it wipes
/// itself anyway.
const REPORT_WAIT: Duration = Duration::from_secs(15);

/// A revoked device's end: it tells the hub how many of its changes (and new records) the hub
/// had not confirmed ([`Archive::undelivered`], reported with [`handshake::Farewell`]; the
/// office sees the counts in `device list`), then overwrites its store with zeros and deletes
/// it (with [`WhenRevoked::Report`], leaves that to the caller). The report is best effort, at
/// most [`REPORT_WAIT`]: the store is wiped whatever happens to it. Returns the error the sync
/// reports: [`Error::Revoked`], or why the wipe failed.
async fn wipe_revoked(
    node: &Node,
    hub: &EndpointAddr,
    reopen: &shouwang_core::archive::Reopen,
    opts: &ConversationOptions,
    when_revoked: WhenRevoked,
) -> TransportError {
    let counted = reopen
        .open()
        .and_then(|mut archive| archive.undelivered(&hub.id.to_string()));
    match counted {
        Ok(u) => {
            let report =
                handshake::report_undelivered(node, hub.clone(), u.changes, u.records, opts);
            match tokio::time::timeout(REPORT_WAIT, report).await {
                Ok(Ok(())) => {
                    tracing::info!(
                        changes = u.changes,
                        records = u.records,
                        "undelivered reported"
                    )
                }
                Ok(Err(e)) => tracing::warn!("could not report what was undelivered: {e}"),
                Err(_) => tracing::warn!("could not report what was undelivered: timed out"),
            }
        }
        Err(e) => tracing::warn!("could not count what was undelivered: {e}"),
    }
    if when_revoked == WhenRevoked::Report {
        return TransportError::Conversation(Error::Revoked);
    }
    match reopen.wipe() {
        Ok(()) => TransportError::Conversation(Error::Revoked),
        Err(e) => e.into(),
    }
}

/// Whether the connection broke under the conversation (as opposed to a refusal or an error
/// of ours).
fn is_cut(e: &TransportError) -> bool {
    matches!(
        e,
        TransportError::Io(_)
            | TransportError::Truncated
            | TransportError::Idle
            | TransportError::ShuttingDown
    )
}

/// Why a hub refuses a certificate past its expiry (`Certificate::verify`, checked against it
/// in this module's tests).
pub const CERTIFICATE_EXPIRED: &str = "成员证书已过期，请让管理员重新邀请这台设备";

/// Whether the hub refused this device because its membership certificate expired. Unlike
/// most refusals (a hub being rebuilt refuses phones for a while) this one is final: the hub
/// renews a certificate only at a sync it accepts, so only a new invite helps, and trying
/// again wakes the radio for nothing.
pub fn is_certificate_expired(e: &TransportError) -> bool {
    let expired = Error::NotPermitted(CERTIFICATE_EXPIRED.into()).to_string();
    match e {
        // As `handshake` reports the hub's refusal frame.
        TransportError::Conversation(Error::NotPermitted(m)) => {
            matches!(handshake::refused(&expired), Error::NotPermitted(said) if *m == said)
        }
        TransportError::Refused(reason) => *reason == expired || reason == CERTIFICATE_EXPIRED,
        _ => false,
    }
}

/// Whether the hub said this device is revoked (as a frame, or as the reason it closed with).
fn is_revoked(e: &TransportError) -> bool {
    match e {
        TransportError::Conversation(Error::Revoked) => true,
        TransportError::Refused(reason) => *reason == Error::Revoked.to_string(),
        _ => false,
    }
}

/// Syncs `archive` with another member's device at `peer` once (see [`crate::peer`]). As with
/// the hub, documents outside this member's scope are purged before and after (the peer may
/// bring a school document that narrows it).
pub async fn sync_peer(
    node: &Node,
    identity: &Identity,
    peer: EndpointAddr,
    mut archive: Archive,
    opts: &ConversationOptions,
) -> Result<(Archive, PeerSynced), TransportError> {
    archive.purge_out_of_scope()?;
    let (mut archive, synced) = sync_with_peer(node, peer, archive, identity.trust(), opts).await?;
    archive.purge_out_of_scope()?;
    Ok((archive, synced))
}

/// Syncs `archive` with the hub and then stays connected (live mode): each time `opts.wake` is
/// notified (the app notifies after every write it makes, through any connection to the
/// store), whatever changed is sent at once. Returns when the connection has been idle for
/// `opts.idle_timeout` (so a phone can sleep) — the caller reconnects when it likes — or with
/// the error that broke it. Cancel it by dropping the future.
///
/// Out-of-scope documents are purged before connecting, after the connection ends, and (as
/// in [`sync_hub`]) a refusal caused by news from this very connection is followed by one
/// more attempt.
pub async fn sync_hub_live(
    node: &Node,
    identity: &Identity,
    archive: Archive,
    opts: &ConversationOptions,
    hook: Option<ProgressHook>,
) -> Result<(), TransportError> {
    sync_hub_live_with(node, identity, archive, opts, hook, WhenRevoked::Wipe).await
}

/// [`sync_hub_live`], doing `when_revoked` if the hub says this device is revoked.
pub async fn sync_hub_live_with(
    node: &Node,
    identity: &Identity,
    mut archive: Archive,
    opts: &ConversationOptions,
    hook: Option<ProgressHook>,
    when_revoked: WhenRevoked,
) -> Result<(), TransportError> {
    let hub = identity.hub()?;
    let hook = shared_hook(hook);
    let reopen = archive.reopen();
    // Damaged documents go first: the hub sends them again whole.
    archive.drop_damaged()?;
    archive.purge_out_of_scope()?;
    let mut retried = false;
    loop {
        let mut conv = DeviceSync::new(archive, &identity.certificate, hub.id.to_string(), true);
        if let Some(hook) = hook() {
            conv = conv.with_progress(hook);
        }
        let ended = node.converse(hub.clone(), conv, opts).await.map(|_| ());
        if let Err(e) = &ended
            && is_revoked(e)
        {
            return Err(wipe_revoked(node, &hub, &reopen, opts, when_revoked).await);
        }
        // The conversation took the archive with it: open the store again to purge.
        let purged = reopen
            .open()
            .and_then(|mut a| Ok((a.purge_out_of_scope()?, a)));
        match (ended, purged) {
            (Ok(()) | Err(TransportError::Idle), purged) => {
                return purged.map(|_| ()).map_err(Into::into);
            }
            (Err(_), Ok((n, a))) if n > 0 && !retried => {
                archive = a;
                retried = true;
            }
            (Err(e), _) => return Err(e),
        }
    }
}

/// A device waiting for other members' devices to sync with it directly (see [`serve_peers`]).
#[derive(Debug)]
pub struct PeerServer {
    node: Node,
    metrics: Arc<TransportMetrics>,
    /// One report per completed exchange.
    pub synced: tokio::sync::mpsc::UnboundedReceiver<PeerOutcome>,
}

impl PeerServer {
    /// The UDP port devices reach this one on (every interface).
    pub fn port(&self) -> u16 {
        self.node.bound_sockets().first().map_or(0, |a| a.port())
    }

    /// Stops accepting. Connections whose exchange this side has finished get a moment (up to
    /// five seconds) to close on their own: this side is caught up before the peer has read its
    /// last frames, and shutting down under them would fail the peer's sync.
    pub async fn shutdown(self) {
        let grace = Instant::now() + Duration::from_secs(5);
        while TransportMetrics::get(&self.metrics.connections_open) > 0 && Instant::now() < grace {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.node.shutdown().await;
    }
}

/// Serves `factory`'s store to colleagues' devices on a node made from `config`, with
/// [`peer_options`] and the factory's admission list.
pub async fn serve_peers_on(
    config: NodeConfig,
    factory: PeerFactory,
    metrics: Arc<TransportMetrics>,
) -> Result<Node, TransportError> {
    let opts = ConversationOptions {
        admission: Some(factory.colleagues()),
        ..peer_options()
    };
    Node::serve(config, Arc::new(factory), opts, metrics).await
}

/// Lets other members' devices of the school sync with this one directly, announcing it on
/// the local network (mDNS) when `lan` is set: each connection opens the store at `store`
/// (with `key`, if encrypted) and exchanges only what both members may see (see
/// [`crate::peer`]).
pub async fn serve_peers(
    identity: &Identity,
    store: &Path,
    key: Option<StoreKey>,
    lan: bool,
) -> Result<PeerServer, TransportError> {
    let (done, synced) = tokio::sync::mpsc::unbounded_channel();
    let factory = PeerFactory::new(store, key, identity.trust(), Some(done))?;
    let metrics = Arc::new(TransportMetrics::default());
    let node = serve_peers_on(identity.node_config(lan)?, factory, metrics.clone()).await?;
    Ok(PeerServer {
        node,
        metrics,
        synced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shouwang_core::ids::{MemberId, SchoolId};
    use shouwang_core::membership::{CertificateBody, DeviceKey, SchoolKey};
    use shouwang_core::roles::Role;

    /// The hub's words for an expired certificate are [`CERTIFICATE_EXPIRED`], however they
    /// arrive; other refusals are not final.
    #[test]
    fn an_expired_certificate_is_known_by_the_hubs_words() {
        let key = SchoolKey::generate();
        let school = SchoolId("school".into());
        let device = DeviceKey([7; 32]);
        let cert = key
            .issue(CertificateBody {
                school_id: school.clone(),
                member: MemberId("m1".into()),
                roles: vec![Role::HeadTeacher],
                device,
                issued_at: 1_000,
                expires_at: 2_000,
            })
            .unwrap();
        let refusal = cert
            .verify(&school, &key.public(), &device, 3_000)
            .unwrap_err()
            .to_string();
        assert_eq!(
            refusal,
            Error::NotPermitted(CERTIFICATE_EXPIRED.into()).to_string()
        );
        assert!(is_certificate_expired(&TransportError::Conversation(
            handshake::refused(&refusal)
        )));
        assert!(is_certificate_expired(&TransportError::Refused(refusal)));
        for other in [
            handshake::refused("学校服务器正在恢复数据，请稍后再同步"),
            Error::NotPermitted(CERTIFICATE_EXPIRED.into()),
            handshake::refused_by_peer(CERTIFICATE_EXPIRED),
        ] {
            assert!(!is_certificate_expired(&TransportError::Conversation(
                other
            )));
        }
    }
}
