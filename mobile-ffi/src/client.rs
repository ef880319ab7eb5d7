//! [`ShouwangClient`]: one device's archive, as the app sees it.
//!
//! A thin exported object over [`Inner`]. The inner object holds the store path, its key, and
//! the app's connection to the store ([`Archive`] is not `Sync`: it sits behind a mutex that
//! is never held across an await). Syncs open a second connection to the same store, so the
//! app keeps reading and writing while a sync runs; the store is safe across connections
//! (every write takes SQLite's write lock and catches up on documents another connection
//! changed).
//! Syncs of one client run one at a time.
//!
//! When the hub says the school revoked this device, the client closes its own connection
//! (every later call returns [`ShouwangError::Revoked`]), ends its background and live sync and
//! its waiting for colleagues, and only then wipes the store ([`Inner::end_revoked`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use shouwang_core::Archive;
use shouwang_core::RecordInput;
use shouwang_core::dates::parse_date;
use shouwang_core::store::StoreKey;
use shouwang_relay::device::{self, Identity, JoinSettings, WhenRevoked};
use shouwang_relay::handshake::EnrollProgress;
use shouwang_relay::syncing::ProgressHook;
use shouwang_relay::transport::{EndpointAddr, EndpointId, Node};
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

use crate::error::ShouwangError;
use crate::runtime::{blocking, run, runtime};
use crate::tasks::{
    ChangeListener, JoinListener, PeerListener, SyncListener, SyncUpdates, TaskHandle, sync_pump,
};
use crate::types::{
    ChangeEvent, ChangeOrigin, ChildFile, ChildSummary, ComplianceRow, DueItem, FieldInput, Me,
    NearbyPeer, PeerSyncReport, RecordDraft, Resolution, SyncProgress, SyncReport, SyncState,
    SyncUpdate, child_file, pairs,
};

type Result<T, E = ShouwangError> = std::result::Result<T, E>;

/// After a local write wakes background sync, wait this long for more writes (a form saved
/// field by field, a burst of records) before syncing.
const WRITE_SETTLE: Duration = Duration::from_secs(2);

/// How many change events a slow listener may fall behind before it misses some (it is then
/// told about the next one, which is enough to reload).
const CHANGE_BACKLOG: usize = 256;

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn store_key(bytes: &[u8]) -> Result<StoreKey> {
    Ok(StoreKey::from_bytes(bytes)?)
}

/// One device's archive: open it with [`ShouwangClient::open`] or enroll a new device with
/// [`ShouwangClient::join`]. Every method may be called from any thread; the blocking ones
/// (all but the `async` ones) touch only the local store and return in milliseconds, so call
/// them off the UI thread (Kotlin: `Dispatchers.IO`). Close the client when done (`close()`
/// in Kotlin, or `use { }`); closing frees the store connection once in-flight calls return.
#[derive(Debug, uniffi::Object)]
pub struct ShouwangClient {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) path: PathBuf,
    pub(crate) key: StoreKey,
    /// The app's connection; `None` once the school revoked this device (the store is wiped).
    archive: Mutex<Option<Archive>>,
    /// Change events for [`ChangeListener`]s.
    pub(crate) changes: broadcast::Sender<ChangeEvent>,
    /// Counts local writes: wakes background sync.
    pub(crate) writes: watch::Sender<u64>,
    /// One sync at a time per client. Live sync holds it while connected (an `Arc`, so that
    /// its task holds the lock without holding the client).
    pub(crate) sync_lock: Arc<tokio::sync::Mutex<()>>,
    /// Counts syncs waiting for the lock: a live connection holding it gives way.
    pub(crate) sync_wanted: watch::Sender<u64>,
    /// The endpoint hub syncs go out from, bound at the first and kept while the client is
    /// open, with its warm connection to the hub ([`device::warm_options`]).
    hub_node: tokio::sync::Mutex<Option<Node>>,
    /// The background sync running, if any: one per client.
    background: Mutex<Option<AbortHandle>>,
    /// The live sync running, if any: one per client.
    pub(crate) live: Mutex<Option<AbortHandle>>,
    /// The tasks waiting for colleagues' devices ([`ShouwangClient::accept_peers`]).
    peers: Mutex<Vec<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close the warm connection with "done" rather than leave the hub to time it out.
        if let Some(node) = self.hub_node.get_mut().take()
            && let Ok(rt) = runtime()
        {
            rt.spawn(node.shutdown());
        }
    }
}

/// The shortest interval [`ShouwangClient::start_background_sync`] takes, in seconds.
pub const MIN_BACKGROUND_INTERVAL_SECS: u32 = 60;

impl Inner {
    fn new(path: PathBuf, key: StoreKey, archive: Archive) -> Inner {
        Inner {
            path,
            key,
            archive: Mutex::new(Some(archive)),
            changes: broadcast::channel(CHANGE_BACKLOG).0,
            writes: watch::channel(0).0,
            sync_lock: Arc::new(tokio::sync::Mutex::new(())),
            sync_wanted: watch::channel(0).0,
            hub_node: tokio::sync::Mutex::new(None),
            background: Mutex::new(None),
            live: Mutex::new(None),
            peers: Mutex::new(Vec::new()),
        }
    }

    /// Takes the sync lock, asking a live connection that holds it to give way.
    pub(crate) async fn lock_sync(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.sync_wanted.send_modify(|n| *n = n.wrapping_add(1));
        self.sync_lock.clone().lock_owned().await
    }

    /// `Revoked` once the school revoked this device.
    pub(crate) fn ensure_open(&self) -> Result<()> {
        self.with_archive(|_| Ok(()))
    }

    /// Whether live sync is running (background sync then leaves the syncing to it).
    fn live_running(&self) -> bool {
        self.live
            .lock()
            .is_ok_and(|l| l.as_ref().is_some_and(|h| !h.is_finished()))
    }

    /// The school revoked this device: a sync with the hub returned `Revoked` and left the
    /// store in place ([`WhenRevoked::Report`]). Closes the app's connection (every later call
    /// returns `Revoked`), ends this client's other tasks (background and live sync, waiting
    /// for colleagues; not the task calling this, which ends by itself) and its connection to
    /// the hub, then wipes the store. Called with the sync lock held, so no other sync of this
    /// client has the store open. Returns the error to report.
    pub(crate) async fn end_revoked(&self) -> ShouwangError {
        // Taken even from a poisoned lock: what is taken here is wiped below, whatever else
        // failed before.
        let archive = match self.archive.lock() {
            Ok(mut a) => a.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let current = tokio::task::try_id();
        let end = |task: AbortHandle| {
            if Some(task.id()) != current {
                task.abort();
            }
        };
        if let Some(task) = self.background.lock().ok().and_then(|mut b| b.take()) {
            end(task);
        }
        if let Some(task) = self.live.lock().ok().and_then(|mut l| l.take()) {
            end(task);
        }
        if let Ok(mut peers) = self.peers.lock() {
            peers.drain(..).for_each(end);
        }
        // The rest runs on a task of its own, which the caller's cancellation (the app
        // leaving the sync screen, a live sync's handle dropped) cannot stop half-way: the
        // app's connection is already gone, so a wipe not done now would never be.
        let node = self.hub_node.try_lock().ok().and_then(|mut n| n.take());
        let wipe = async move {
            if let Some(node) = node {
                node.shutdown().await;
            }
            if let Some(archive) = archive {
                let reopen = archive.reopen();
                drop(archive);
                // Failing, what remains is encrypted with the key the app now deletes.
                let _ = blocking(move || Ok(reopen.wipe()?)).await;
            }
        };
        match runtime() {
            Ok(rt) => {
                let _ = rt.spawn(wipe).await;
            }
            Err(_) => wipe.await,
        }
        ShouwangError::revoked()
    }

    /// The hub node, bound now if this is the first use.
    async fn hub_node(
        &self,
        identity: &Identity,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, Node>> {
        let mut slot = self.hub_node.lock().await;
        if slot.is_none() {
            *slot = Some(identity.bind(false).await?);
        }
        tokio::sync::MutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| ShouwangError::internal())
    }

    /// Connects to the hub ahead of the next sync (see [`ShouwangClient::prepare_sync`]).
    async fn prepare_sync(&self) -> Result<()> {
        let identity = self.identity()?;
        let hub = identity.hub()?;
        let node = self.hub_node(&identity).await?;
        Ok(node.warm_up(hub, &device::warm_options()).await?)
    }

    /// Runs `f` on the app's connection. Never called across an await.
    pub(crate) fn with_archive<T>(
        &self,
        f: impl FnOnce(&mut Archive) -> shouwang_core::Result<T>,
    ) -> Result<T> {
        let mut archive = self.archive.lock().map_err(|_| ShouwangError::internal())?;
        let archive = archive.as_mut().ok_or_else(ShouwangError::revoked)?;
        Ok(f(archive)?)
    }

    /// Tells the change listeners (and background sync, for local writes).
    fn changed(&self, origin: ChangeOrigin, documents: u64) {
        // No subscriber is not an error.
        let _ = self.changes.send(ChangeEvent { origin, documents });
        if origin == ChangeOrigin::Local {
            self.writes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Runs a write on the app's connection and tells the listeners.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut Archive) -> shouwang_core::Result<T>,
    ) -> Result<T> {
        let out = self.with_archive(f)?;
        self.changed(ChangeOrigin::Local, 1);
        Ok(out)
    }

    pub(crate) fn identity(&self) -> Result<Identity> {
        self.with_archive(Identity::load)
    }

    /// A second connection to the store and the device's identity, for a sync.
    async fn open_for_sync(&self) -> Result<(Archive, Identity)> {
        self.ensure_open()?;
        let (path, key) = (self.path.clone(), self.key.clone());
        blocking(move || {
            let mut archive = Archive::open_with_key(&path, Some(&key))?;
            let identity = Identity::load(&mut archive)?;
            Ok((archive, identity))
        })
        .await
    }

    /// Best effort: keeps why the last attempt failed, for [`ShouwangClient::sync_state`].
    fn note_failure(&self, identity: Option<&Identity>, error: &ShouwangError) {
        if matches!(
            error,
            ShouwangError::Cancelled { .. } | ShouwangError::Revoked { .. }
        ) {
            return;
        }
        if let Some(hub) = identity.and_then(|i| i.hub().ok()) {
            let _ = self
                .with_archive(|a| a.record_sync_result(&hub.id.to_string(), Some(error.message())));
        }
    }

    /// [`ShouwangClient::renew_membership`], holding the sync lock (no sync runs meanwhile).
    async fn renew(&self, ticket: &str) -> Result<()> {
        self.ensure_open()?;
        let _one_at_a_time = self.lock_sync().await;
        let (mut archive, _) = self.open_for_sync().await?;
        let report = device::renew(
            &mut archive,
            ticket,
            unix_now(),
            &device::default_options(),
            JoinSettings::default(),
        )
        .await?;
        if report.changed > 0 {
            self.changed(ChangeOrigin::Hub, report.changed as u64);
        }
        Ok(())
    }

    /// One sync with the hub, reporting to `updates`. Failures are returned, not reported.
    async fn sync_hub(&self, updates: Option<&SyncUpdates>) -> Result<SyncReport> {
        self.ensure_open()?;
        let _one_at_a_time = self.lock_sync().await;
        let send = |u: SyncUpdate| {
            if let Some(tx) = updates {
                let _ = tx.send(u);
            }
        };
        send(SyncUpdate::Connecting);
        let started = Instant::now();
        let (archive, identity) = self.open_for_sync().await?;
        let hook: Option<ProgressHook> = updates.map(|tx| {
            let tx = tx.clone();
            Box::new(move |p: &shouwang_core::sync::Progress| {
                let _ = tx.send(SyncUpdate::Progress {
                    progress: SyncProgress::from(p),
                });
            }) as ProgressHook
        });
        let synced = async {
            let node = self.hub_node(&identity).await?;
            let (mut archive, progress) = device::sync_hub_with(
                &node,
                &identity,
                archive,
                &device::warm_options(),
                hook,
                WhenRevoked::Report,
            )
            .await?;
            let hub = identity.hub()?.id.to_string();
            let (status, refetched_damaged, not_kept) = blocking(move || {
                Ok((
                    archive.sync_status(&hub)?,
                    archive.refetched_damaged()?,
                    archive.not_carried()?,
                ))
            })
            .await?;
            Ok::<_, ShouwangError>(SyncReport {
                refetched_damaged,
                not_kept,
                progress: SyncProgress::from(&progress),
                last_success_ms: status
                    .last_success
                    .unwrap_or_else(|| chrono::Utc::now().timestamp_millis()),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
        }
        .await;
        match synced {
            Ok(report) => {
                if report.progress.documents_changed > 0 {
                    self.changed(ChangeOrigin::Hub, report.progress.documents_changed);
                }
                send(SyncUpdate::Succeeded {
                    report: report.clone(),
                });
                Ok(report)
            }
            Err(ShouwangError::Revoked { .. }) => Err(self.end_revoked().await),
            Err(e) => {
                self.note_failure(Some(&identity), &e);
                Err(e)
            }
        }
    }

    /// One sync with another member's device.
    async fn sync_peer(&self, peer: EndpointAddr) -> Result<PeerSyncReport> {
        let _one_at_a_time = self.lock_sync().await;
        let (archive, identity) = self.open_for_sync().await?;
        let node = identity.bind(true).await?;
        let result =
            device::sync_peer(&node, &identity, peer, archive, &device::default_options()).await;
        node.shutdown().await;
        let own_expired = identity.certificate.body().expires_at <= unix_now();
        let (_archive, synced) = result.map_err(|e| ShouwangError::from_peer(e, own_expired))?;
        let progress = SyncProgress::from(&synced.progress);
        if progress.documents_changed > 0 {
            self.changed(ChangeOrigin::Peer, progress.documents_changed);
        }
        Ok(PeerSyncReport {
            peer_name: synced.member.name,
            progress,
        })
    }
}

/// Whether background and live sync should give up after `e` rather than try again later:
/// what no later attempt can change (not enrolled, the wrong key, the device revoked, its
/// certificate expired: the message says what to do). Other refusals may pass (a hub being
/// rebuilt refuses phones for a while).
pub(crate) fn is_final(e: &ShouwangError) -> bool {
    match e {
        ShouwangError::NotEnrolled { .. }
        | ShouwangError::Locked { .. }
        | ShouwangError::Cancelled { .. }
        | ShouwangError::Revoked { .. } => true,
        // As `error.rs` reports it.
        ShouwangError::NotPermitted { msg } => msg == device::CERTIFICATE_EXPIRED,
        _ => false,
    }
}

/// What a sync listener is told of a failed attempt: [`SyncUpdate::Revoked`] for a revoked
/// device, [`SyncUpdate::Failed`] otherwise (with `retry_in_secs` if it is tried again).
pub(crate) fn failure_update(e: &ShouwangError, retry_in_secs: Option<u32>) -> SyncUpdate {
    match e {
        ShouwangError::Revoked { msg } => SyncUpdate::Revoked {
            message: msg.clone(),
        },
        e => SyncUpdate::Failed {
            message: e.message().to_owned(),
            retry_in_secs,
        },
    }
}

fn parse_peer(device_code: &str, addresses: &[String]) -> Result<EndpointAddr> {
    let id = EndpointId::from_str(device_code.trim()).map_err(|_| {
        ShouwangError::invalid(
            "设备码",
            "设备码填写有误：请核对对方设备上显示的设备码".into(),
        )
    })?;
    let mut peer = EndpointAddr::new(id);
    for a in addresses {
        let addr = a.trim().parse().map_err(|_| {
            ShouwangError::invalid(
                "地址",
                "地址填写有误：应写成 地址:端口，例如 192.168.43.1:4433".into(),
            )
        })?;
        peer = peer.with_ip_addr(addr);
    }
    Ok(peer)
}

impl ShouwangClient {
    async fn join_reporting(
        path: String,
        key: Vec<u8>,
        ticket: String,
        device_label: String,
        listener: Option<Box<dyn JoinListener>>,
    ) -> Result<Arc<ShouwangClient>> {
        let key = store_key(&key)?;
        let (store, store_key) = (PathBuf::from(&path), key.clone());
        let archive = run(async move {
            let settings = JoinSettings {
                // The app's listener failing (a Kotlin exception reaches Rust as a panic of
                // the callback) must not fail the join: the hub has taken the invite by the
                // first report, and a failed join throws the device key away.
                progress: listener.map(|l| {
                    Box::new(move |bytes: u64| {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            l.on_received(bytes)
                        }));
                    }) as EnrollProgress
                }),
                ..JoinSettings::default()
            };
            Ok(device::join_with(
                &store,
                Some(&store_key),
                &ticket,
                &device_label,
                unix_now(),
                &device::default_options(),
                settings,
            )
            .await?)
        })
        .await?;
        Ok(ShouwangClient::new(path, key, archive))
    }
    fn new(path: String, key: StoreKey, archive: Archive) -> Arc<ShouwangClient> {
        Arc::new(ShouwangClient {
            inner: Arc::new(Inner::new(PathBuf::from(path), key, archive)),
        })
    }
}

#[uniffi::export]
impl ShouwangClient {
    /// Opens the store at `path` with its 32-byte `key` (from the platform keystore). No store
    /// there: [`ShouwangError::NotEnrolled`] (join first); the wrong key:
    /// [`ShouwangError::Locked`], and nothing is changed.
    #[uniffi::constructor]
    pub fn open(path: String, key: Vec<u8>) -> Result<Arc<ShouwangClient>> {
        let key = store_key(&key)?;
        let archive = Archive::open_with_key(Path::new(&path), Some(&key))?;
        Ok(ShouwangClient::new(path, key, archive))
    }

    /// Enrolls this device with an invite `ticket` (the text of the school's QR code), creating
    /// the store at `path` encrypted with `key`, and receives the member's documents.
    /// `device_label` names the device in the school's list (`王老师的手机`). Nothing is written
    /// at `path` if any step fails.
    #[uniffi::constructor]
    pub async fn join(
        path: String,
        key: Vec<u8>,
        ticket: String,
        device_label: String,
    ) -> Result<Arc<ShouwangClient>> {
        Self::join_reporting(path, key, ticket, device_label, None).await
    }

    /// [`ShouwangClient::join`], telling `listener` how much of the member's documents has
    /// arrived as they come in (called on a background thread).
    #[uniffi::constructor]
    pub async fn join_with_progress(
        path: String,
        key: Vec<u8>,
        ticket: String,
        device_label: String,
        listener: Box<dyn JoinListener>,
    ) -> Result<Arc<ShouwangClient>> {
        Self::join_reporting(path, key, ticket, device_label, Some(listener)).await
    }

    /// The member using this device, and the school.
    pub fn me(&self) -> Result<Me> {
        self.inner.with_archive(|a| {
            let member = a.me()?;
            let school = a.school()?;
            Ok(Me::new(member, a.school_id().0.clone(), &school))
        })
    }

    /// Children on this device: with `mine_only`, those this member cares for (a 班主任's
    /// class, a volunteer's paired children).
    pub fn children(&self, mine_only: bool) -> Result<Vec<ChildSummary>> {
        self.inner.with_archive(|a| {
            Ok(a.children(None, mine_only)?
                .into_iter()
                .map(ChildSummary::from)
                .collect())
        })
    }

    /// What this member owes: the current period's unmet work (待完成) and the previous
    /// period's (已逾期); with `include_done`, met work too. `today` is `YYYY-MM-DD`, or the
    /// device's date if absent.
    pub fn due(&self, today: Option<String>, include_done: bool) -> Result<Vec<DueItem>> {
        let today = match today {
            Some(d) => parse_date("日期", &d)?,
            None => chrono::Local::now().date_naive(),
        };
        self.inner.with_archive(|a| {
            Ok(a.due(None, today, include_done)?
                .into_iter()
                .map(DueItem::from)
                .collect())
        })
    }

    /// The school's compliance per rule over the complete periods within `[from, to]`.
    pub fn compliance(&self, from: String, to: String) -> Result<Vec<ComplianceRow>> {
        let from = parse_date("开始日期", &from)?;
        let to = parse_date("结束日期", &to)?;
        self.inner.with_archive(|a| {
            Ok(a.compliance(from, to)?
                .into_iter()
                .map(ComplianceRow::from)
                .collect())
        })
    }

    /// A child's file: sections, every record, open conflicts and history.
    pub fn child_file(&self, child_id: String) -> Result<ChildFile> {
        self.inner.with_archive(|a| {
            let file = a.child_file_for(&child_id, None)?;
            let school = a.school()?;
            Ok(child_file(file, &school))
        })
    }

    /// A child's file with the ID numbers in full (`child_file` masks them): for the 班主任 and
    /// administrators, with a reason, recorded in the device's access log first.
    pub fn reveal_id(&self, child_id: String, why: String) -> Result<ChildFile> {
        self.inner.with_archive(|a| {
            let file = a.reveal_id(&child_id, &why)?;
            let school = a.school()?;
            Ok(child_file(file, &school))
        })
    }

    /// Writes a new record. Returns its id.
    pub fn add_record(&self, draft: RecordDraft) -> Result<String> {
        let input = RecordInput {
            kind: draft.kind,
            child: draft.child_id,
            class: draft.class_id,
            date: draft.date,
            fields: pairs(draft.fields),
        };
        self.inner.write(|a| Ok(a.add_record(&input)?.0))
    }

    /// Changes some fields of a record (and its date, if given). Fields not named stay.
    pub fn edit_record(
        &self,
        record_id: String,
        date: Option<String>,
        fields: Vec<FieldInput>,
    ) -> Result<()> {
        let fields = pairs(fields);
        self.inner
            .write(|a| a.edit_record(&record_id, date.as_deref(), &fields))
    }

    /// Voids (作废) a record with a reason: it stays in the file, marked, and counts nowhere.
    pub fn void_record(&self, record_id: String, reason: String) -> Result<()> {
        self.inner.write(|a| a.void_record(&record_id, &reason))
    }

    /// Adds a 进步档案 entry to a 学习帮扶计划. Returns the entry's id.
    pub fn add_progress(
        &self,
        plan_id: String,
        date: String,
        fields: Vec<FieldInput>,
    ) -> Result<String> {
        let fields = pairs(fields);
        self.inner
            .write(|a| Ok(a.add_progress(&plan_id, &date, &fields)?.0))
    }

    /// Changes fields of a section of a child's file (`guardian`, `father`, `flags`, …).
    pub fn edit_child(
        &self,
        child_id: String,
        section: String,
        fields: Vec<FieldInput>,
    ) -> Result<()> {
        let fields = pairs(fields);
        self.inner
            .write(|a| a.edit_child(&child_id, &section, &fields))
    }

    /// Changes several sections of a child's file in one write: the 联系卡's father, mother
    /// and guardian saved together. Every section is checked first; one refused
    /// (`InvalidInput` naming the field) writes none of them.
    pub fn edit_child_sections(
        &self,
        child_id: String,
        sections: Vec<crate::types::SectionInput>,
    ) -> Result<()> {
        let sections: Vec<(String, Vec<(String, String)>)> = sections
            .into_iter()
            .map(|s| (s.section, pairs(s.fields)))
            .collect();
        self.inner
            .write(|a| a.edit_child_sections(&child_id, &sections))
    }

    /// Resolves the conflict at `path` (from [`crate::types::Conflict::path`]) in a child's
    /// file.
    pub fn resolve_conflict(
        &self,
        child_id: String,
        path: String,
        resolution: Resolution,
    ) -> Result<()> {
        let (pick, value) = match resolution {
            Resolution::Keep { index } => {
                let pick = usize::try_from(index)
                    .ok()
                    .and_then(|i| i.checked_add(1))
                    .ok_or_else(|| ShouwangError::invalid("选择", "选择超出范围".into()))?;
                (Some(pick), None)
            }
            Resolution::NewValue { value } => (None, Some(value)),
        };
        self.inner
            .write(|a| a.resolve(&child_id, &path, pick, value.as_deref()))
    }

    /// Folds documents with many small changes into snapshots. Every write already folds a
    /// document before its loose changes reach 64; this catches documents stored by an older
    /// version of the app. Safe at any time.
    pub fn compact(&self) -> Result<u64> {
        self.inner.with_archive(|a| Ok(a.compact()? as u64))
    }

    /// How this device stands with the school server: the last success, the last error and
    /// what the server has not received yet. [`ShouwangError::NotEnrolled`] if the device
    /// never joined with an invite.
    pub fn sync_state(&self) -> Result<SyncState> {
        self.inner.with_archive(|a| {
            let id = Identity::load(a)?;
            let hub = id.hub()?.id.to_string();
            let s = a.sync_status(&hub)?;
            let (certificate_expires_at, certificate_warning) =
                id.certificate_warning(chrono::Utc::now().timestamp());
            Ok(SyncState {
                certificate_expires_at,
                certificate_warning,
                last_success_ms: s.last_success,
                last_error: s.last_error,
                pending: s.pending.into_iter().map(|(_, label)| label).collect(),
                records_since: s.records_since,
                refused: s
                    .refused
                    .into_iter()
                    .map(|(label, n, why)| format!("{label}：{n} 项修改被拒绝：{why}"))
                    .collect(),
            })
        })
    }

    /// This device's code: what another device needs to sync with it directly.
    pub fn device_code(&self) -> Result<String> {
        Ok(self.inner.identity()?.device_code())
    }

    /// Syncs with the school server now, until both sides have everything. `listener`, if
    /// given, receives the progress and the outcome; every update is delivered before this
    /// returns. Cancelling the calling coroutine stops the sync at once; what was received
    /// so far is kept and the next sync resumes from there.
    pub async fn sync_now(&self, listener: Option<Box<dyn SyncListener>>) -> Result<SyncReport> {
        let inner = self.inner.clone();
        let (updates, delivery) = match listener.and_then(sync_pump) {
            Some((tx, task)) => (Some(tx), Some(task)),
            None => (None, None),
        };
        let result = run(async move {
            let result = inner.sync_hub(updates.as_ref()).await;
            if let (Err(e), Some(tx)) = (&result, &updates) {
                let _ = tx.send(failure_update(e, None));
            }
            result
        })
        .await;
        if let Some(delivery) = delivery {
            let _ = delivery.await;
        }
        result
    }

    /// Renews this device's membership after its certificate expired (a sync failed with
    /// [`ShouwangError::NotPermitted`] saying so, and background sync stopped): `ticket` is the
    /// text of a new invite QR code an administrator made for this member. The store stays as
    /// it is, with everything not yet synced; the next sync sends it (start background sync
    /// again). Refused, changing nothing and keeping the invite unused, if the ticket is for
    /// another school or member. A renewal cut off may be tried again with the same ticket.
    pub async fn renew_membership(&self, ticket: String) -> Result<()> {
        let inner = self.inner.clone();
        run(async move { inner.renew(&ticket).await }).await
    }

    /// Forgets what the last sync reports said of work not kept (`SyncReport.notKept`) and of
    /// files fetched again after damage (`refetchedDamaged`): call it once the member has seen
    /// them (she closed the dialog). Until then every sync report says them again, so a report
    /// delivered while the app was in the background loses nothing.
    pub fn dismiss_sync_notices(&self) -> Result<()> {
        self.inner.with_archive(|a| {
            a.forget_not_carried()?;
            a.forget_refetched_damaged()
        })
    }

    /// Connects to the school server ahead of a sync: call it when the app comes to the
    /// foreground, when the sync screen opens, or when the network comes back. A sync within
    /// the next 45 seconds (and the syncs after it, each within 45 seconds of the last) then
    /// skips the connection's set-up: on EDGE or 2G that is a second or more, and several
    /// seconds when a packet of the set-up is lost. It costs one connection's set-up (about
    /// 5 KB) and a keep-alive every few seconds while it stays open. Fails as [`sync_now`]
    /// does (no network, not enrolled), changing nothing.
    ///
    /// [`sync_now`]: ShouwangClient::sync_now
    pub async fn prepare_sync(&self) -> Result<()> {
        let inner = self.inner.clone();
        run(async move { inner.prepare_sync().await }).await
    }

    /// Syncs with the school server every `interval_secs` seconds (at least
    /// [`MIN_BACKGROUND_INTERVAL_SECS`]: each attempt wakes the radio), and soon after each
    /// local write, reporting every attempt to `listener`, until the returned handle is closed
    /// or the client is. A failed attempt is retried at the next interval; it stops for good
    /// (`Failed` with no `retry_in_secs`) if the device is not enrolled, the key is wrong or
    /// the membership certificate expired (the message says to ask for a new invite), and with [`SyncUpdate::Revoked`] if
    /// the school revoked the device (the store is then wiped). Starting it again replaces the
    /// background sync that was running (its handle reports it finished). While live sync
    /// ([`ShouwangClient::start_live_sync`]) runs, background sync makes no attempts (live sync
    /// already sends and receives everything): it resumes when live sync ends.
    pub fn start_background_sync(
        &self,
        interval_secs: u32,
        listener: Box<dyn SyncListener>,
    ) -> Result<Arc<TaskHandle>> {
        if interval_secs < MIN_BACKGROUND_INTERVAL_SECS {
            return Err(ShouwangError::invalid(
                "同步间隔",
                format!(
                    "后台同步的间隔至少{MIN_BACKGROUND_INTERVAL_SECS}秒（记录保存后会自动尽快同步）"
                ),
            ));
        }
        self.inner.ensure_open()?;
        let rt = runtime()?;
        let (updates, _delivery) = sync_pump(listener).ok_or_else(ShouwangError::internal)?;
        let client = Arc::downgrade(&self.inner);
        let mut writes = self.inner.writes.subscribe();
        let interval = Duration::from_secs(u64::from(interval_secs));
        let task = rt.spawn(async move {
            loop {
                let Some(inner) = Weak::upgrade(&client) else {
                    break;
                };
                // Writes from now on are not necessarily in this sync: they wake the next.
                writes.borrow_and_update();
                let result = if inner.live_running() {
                    Ok(None)
                } else {
                    inner.sync_hub(Some(&updates)).await.map(Some)
                };
                drop(inner);
                if let Err(e) = result {
                    let last = is_final(&e);
                    let _ = updates.send(failure_update(&e, (!last).then_some(interval_secs)));
                    if last {
                        break;
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    changed = writes.changed() => {
                        if changed.is_err() {
                            break; // the client was closed
                        }
                        tokio::time::sleep(WRITE_SETTLE).await;
                    }
                }
            }
        });
        if let Ok(mut running) = self.inner.background.lock()
            && let Some(earlier) = running.replace(task.abort_handle())
        {
            earlier.abort();
        }
        Ok(TaskHandle::new(&task))
    }

    /// Calls `listener` after every write through this client and every sync that brought
    /// changes, until the returned handle is closed.
    pub fn subscribe_changes(&self, listener: Box<dyn ChangeListener>) -> Result<Arc<TaskHandle>> {
        let rt = runtime()?;
        let mut events = self.inner.changes.subscribe();
        let listener: Arc<dyn ChangeListener> = Arc::from(listener);
        let task = rt.spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                let listener = listener.clone();
                let _ = tokio::task::spawn_blocking(move || listener.on_change(event)).await;
            }
        });
        Ok(TaskHandle::new(&task))
    }

    /// Devices of this app announcing themselves on the same Wi-Fi or hotspot, listened for
    /// `within_secs` seconds (at most 60).
    pub async fn nearby_peers(&self, within_secs: u32) -> Result<Vec<NearbyPeer>> {
        let inner = self.inner.clone();
        run(async move {
            let identity = inner.identity()?;
            let node = identity.bind(true).await?;
            let found = node
                .nearby(Duration::from_secs(u64::from(within_secs.clamp(1, 60))))
                .await;
            node.shutdown().await;
            Ok(found
                .into_iter()
                .map(|a| NearbyPeer {
                    device_code: a.id.to_string(),
                    addresses: a.ip_addrs().map(ToString::to_string).collect(),
                })
                .collect())
        })
        .await
    }

    /// Lets other members' devices of the school sync directly with this one, with no
    /// internet, until the returned handle is closed (or the client is): the phone announces
    /// itself on the Wi-Fi or hotspot, where [`ShouwangClient::nearby_peers`] on the other
    /// device finds it. `listener` hears when the phone can be reached and after every
    /// completed exchange; change listeners hear of what arrived. Each side receives only what
    /// both members may see, and only devices holding a certificate of this school get in.
    pub async fn accept_peers(&self, listener: Box<dyn PeerListener>) -> Result<Arc<TaskHandle>> {
        let inner = self.inner.clone();
        let (mut server, code) = run(async move {
            let identity = inner.identity()?;
            let server =
                device::serve_peers(&identity, &inner.path, Some(inner.key.clone()), true).await?;
            Ok((server, identity.device_code()))
        })
        .await?;
        let listener: Arc<dyn PeerListener> = Arc::from(listener);
        let client = Arc::downgrade(&self.inner);
        // Ends with an error once the client is gone.
        let mut closed = self.inner.writes.subscribe();
        let task = runtime()?.spawn(async move {
            let port = server.port();
            let ready = listener.clone();
            let _ = tokio::task::spawn_blocking(move || ready.on_ready(code, port)).await;
            loop {
                let outcome = tokio::select! {
                    outcome = server.synced.recv() => outcome,
                    gone = closed.changed() => match gone {
                        Ok(()) => continue,
                        Err(_) => None,
                    },
                };
                let Some(outcome) = outcome else { break };
                let progress = SyncProgress::from(&outcome.progress);
                match Weak::upgrade(&client) {
                    Some(inner) if progress.documents_changed > 0 => {
                        inner.changed(ChangeOrigin::Peer, progress.documents_changed);
                    }
                    Some(_) => {}
                    None => break, // the client was closed
                }
                let report = PeerSyncReport {
                    peer_name: outcome.member_name,
                    progress,
                };
                let listener = listener.clone();
                let _ = tokio::task::spawn_blocking(move || listener.on_synced(report)).await;
            }
            server.shutdown().await;
        });
        if let Ok(mut peers) = self.inner.peers.lock() {
            peers.retain(|t| !t.is_finished());
            peers.push(task.abort_handle());
        }
        Ok(TaskHandle::new(&task))
    }

    /// Syncs directly with another member's device (found with
    /// [`ShouwangClient::nearby_peers`], or by its code and addresses): only what both members
    /// may see is exchanged. Cancellable like [`ShouwangClient::sync_now`].
    pub async fn sync_with_peer(
        &self,
        device_code: String,
        addresses: Vec<String>,
    ) -> Result<PeerSyncReport> {
        let peer = parse_peer(&device_code, &addresses)?;
        let inner = self.inner.clone();
        run(async move { inner.sync_peer(peer).await }).await
    }
}
