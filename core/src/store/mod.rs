//! The durable store: automerge documents in SQLite, with query projections.
//!
//! # Layout
//!
//! - `docs`: one row per document: its latest compacted snapshot (may be empty) and its heads.
//! - `changes`: every change since the snapshot, appended as automerge's own encoding, unique by
//!   `(doc_id, hash)` so a change received twice is stored once.
//! - `p_*`: projections (children by class, pairings by carer, records by child, author, kind and
//!   date) that lists and due work query without loading any document.
//!
//! # Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: when [`Store::write`] returns, the
//! new changes and their projections are on disk in one SQLite transaction. A failure anywhere in
//! a write (bad input found late, a full disk) rolls everything back and drops the affected
//! documents from memory, so memory never holds what the disk does not.
//!
//! # Compaction
//!
//! A write that would leave a document with [`COMPACT_AFTER`] loose changes stores it folded
//! into its snapshot instead (`persist`), in the write's own transaction: the snapshot is saved,
//! loaded back to check its heads, and only then are the change rows deleted.
//! [`Store::compact`] does the same for every document (stores written before writes folded).
//! Neither changes what a document contains.
//!
//! # Purging
//!
//! Every connection runs with `secure_delete = ON`: what SQLite deletes is overwritten with
//! zeros, not left in free space. [`Store::purge`] removes whole documents (a child this device
//! no longer cares for) with their changes, sync state and projection rows in one transaction,
//! then rebuilds the file (`VACUUM`) and folds the WAL back and truncates it, so no byte of
//! what was purged stays in the store file or its WAL.

mod admit;
mod batch;
mod cache;
pub mod cipher;
mod conflicted;
mod deliveries;
pub mod migrations;
mod peers;
mod persist;
pub mod projection;
pub mod school_history;
mod upkeep;

pub use admit::{Admission, Sender};
pub use cipher::StoreKey;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use automerge::{ActorId, Automerge, ChangeHash};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::doc::{self, DocId};
use crate::error::{Error, Result};
use cache::{DocCache, load_doc};
pub use deliveries::MAX_DELIVERIES;
use persist::{forget_replaced, persist};
use projection::Touched;
pub use upkeep::{PurgeNote, wipe_file, zero_file};

/// A document is folded into its snapshot by the write that brings it to this many changes
/// outside the snapshot (`fold`); `compact` folds documents stored before that with at least
/// this many.
pub const COMPACT_AFTER: i64 = 64;

/// WAL pages before SQLite checkpoints on a write (16 MiB at 4 KiB pages).
const WAL_AUTOCHECKPOINT_PAGES: i64 = 4000;

/// Prepared statements kept per connection. A 家访 saved runs about 20 distinct statements
/// (lookups, the change, the heads, the projections); rusqlite's default of 16 would evict and
/// re-parse some of them on every write.
const STATEMENT_CACHE: usize = 128;

/// A device's store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The key it was opened with, to open it again (a second connection).
    key: Option<StoreKey>,
    /// The documents in memory, kept across writes.
    docs: DocCache,
    actor: ActorId,
    clock_skew_ms: i64,
    /// The school as read at heads changes declared, kept across writes (see `admit`).
    school_views: admit::SchoolViews,
}

/// The documents one [`Store::write`] touches; persisted together or not at all.
#[derive(Debug)]
pub struct Batch<'a> {
    conn: &'a Connection,
    docs: &'a mut DocCache,
    actor: &'a ActorId,
    school_views: &'a mut admit::SchoolViews,
    touched: Vec<(DocId, Vec<ChangeHash>)>,
    hints: HashMap<DocId, Touched>,
    meta: Vec<(String, String)>,
    sync_states: Vec<(String, DocId, String, Vec<u8>)>,
    quarantine: Vec<admit::Quarantined>,
    /// Changes of revoked devices accepted from another device (see `admit`).
    relayed: Vec<admit::Quarantined>,
    /// Changes accepted at the school state they declare that their member's standing now
    /// would not allow (see `admit`).
    outdated: Vec<admit::Quarantined>,
    source: String,
    sender: Sender,
    /// The sender's member and how many bytes of changes a day may be taken from them.
    quota: Option<(crate::ids::MemberId, u64)>,
    /// What this batch took from the quota's member: the bytes of the changes kept, and what
    /// her inputs claimed beyond their bytes ([`admit::claimed_weight`]).
    intake: u64,
    /// Of `intake`, what her inputs claimed: kept even when the batch fails, as automerge has
    /// done the work by then (a failure must not refund it for the next attempt).
    claimed: u64,
    /// Rows her inputs may still claim in this write at no cost ([`admit::FREE_ROWS`]).
    free_rows: u64,
    now_ms: i64,
    /// Documents replaced whole (a new generation): their stored changes, sync state and
    /// quarantine go, and the file is scrubbed after the commit.
    replaced: Vec<DocId>,
    /// While carrying over a console device's work (`Batch::carry_over`), the actor its changes
    /// are written under instead of `actor`.
    writing_as: Option<ActorId>,
    /// While judging a revoked device's change as its carrier's (`Batch::carrier_may_write`),
    /// the carrier's member.
    judging_as: Option<crate::ids::MemberId>,
}

/// Runs automerge on bytes another device sent (a bundle's entry, a `Changes` delta, a sync
/// message). automerge 0.12 panics on some malformed input whose checksums are right: its column
/// library (hexane) asserts "RawColumnIter::take would cross slab boundary" while rebuilding the
/// changes of a damaged document chunk (found by fuzzing, `fuzz/`, RELIABILITY.md). Such a panic
/// is taken as what it is, damaged bytes: an error, so the batch fails, the document it left
/// half-merged is dropped from memory, and nothing is written.
///
/// The user sees one Chinese sentence naming the document. automerge's own text (its error's
/// `Display`, the panic's message) is English and goes only to the developer log (`tracing`,
/// at debug level; the CLI installs no subscriber, the hub's log shows it when asked). The
/// panic prints nothing ([`crate::panics::catch_quietly`]).
pub(crate) fn from_peer<T, E: std::fmt::Display>(
    id: &DocId,
    f: impl FnOnce() -> std::result::Result<T, E>,
) -> Result<T> {
    peer_guarded(id, || {
        f().map_err(|e| {
            tracing::debug!(doc = %id, error = %e, "automerge refused a peer's bytes");
            malformed_by_peer(id)
        })
    })
}

/// Runs a step that reads a document holding a peer's merged bytes: a panic there is taken as
/// those bytes being damaged, like one in [`from_peer`]; the step's own errors pass through.
pub(crate) fn peer_guarded<T>(id: &DocId, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match crate::panics::catch_quietly(f) {
        Ok(result) => result,
        Err(payload) => {
            let text = crate::panics::message(payload.as_ref());
            tracing::debug!(doc = %id, panic = %text, "automerge panicked on a peer's bytes");
            Err(Error::Corrupt(format!(
                "{}：对方发来的档案数据已损坏，无法读取",
                doc_label(id)
            )))
        }
    }
}

/// A peer's bytes for `id` that are not what they claim to be (automerge refused them, or a
/// check before automerge did).
pub(crate) fn malformed_by_peer(id: &DocId) -> Error {
    Error::Corrupt(format!(
        "{}：对方发来的档案数据格式不对，无法读取",
        doc_label(id)
    ))
}

/// Refuses a peer's automerge bytes that claim far more than they hold (a run of billions in
/// a few bytes, a compressed part that inflates a thousandfold: [`doc::bounds`]) before
/// automerge reads them, as its allocation would abort the process; and those holding an
/// increment, which no school file has and automerge mishandles
/// ([`doc::bounds::INCREMENT`]).
pub(crate) fn bounded(id: &DocId, bytes: &[u8]) -> Result<u64> {
    bounded_together(&doc_label(id), &[bytes])
}

/// [`bounded`] for the parts of one input (a sync message's changes), which share one
/// allowance ([`doc::bounds::check_together`]); `what` names them for the user. Returns the
/// rows they claim.
pub(crate) fn bounded_together(what: &str, parts: &[&[u8]]) -> Result<u64> {
    too_large(what, doc::bounds::check_together(parts))
}

/// [`bounded`] for the documents of one frame or bundle ([`doc::bounds::check_documents`]).
pub(crate) fn bounded_documents(what: &str, docs: &[&[u8]]) -> Result<u64> {
    too_large(what, doc::bounds::check_documents(docs))
}

fn too_large(what: &str, checked: std::result::Result<u64, doc::bounds::Unsound>) -> Result<u64> {
    checked.map_err(|e| {
        tracing::debug!(what, bounds = ?e, "a peer's automerge bytes were not read");
        Error::Corrupt(match e {
            doc::bounds::Unsound::Increment => {
                format!("{what}：对方发来的修改含有本系统不使用的计数操作，没有读取")
            }
            _ => format!("{what}：对方发来的档案数据声称的内容远超其大小，没有读取"),
        })
    })
}

/// What a file's changes are recorded as coming from (the `source` of quarantined, listed and
/// relayed rows): `bundle:` and the signing device.
pub fn bundle_source(signer: &crate::ids::DeviceId) -> String {
    format!("bundle:{}", signer.as_str())
}

/// The device a `source` names (a session's peer, or a file's signer), and whether the changes
/// came in a file; `None` for a file from before files named their signer (`bundle`).
pub fn source_device(source: &str) -> (Option<&str>, bool) {
    match source.strip_prefix("bundle:") {
        Some(device) => (Some(device), true),
        None if source == "bundle" => (None, true),
        None => (Some(source), false),
    }
}

/// A document named in Chinese for the user, by what it holds (its key is for developers).
pub fn doc_label(id: &DocId) -> String {
    match id {
        DocId::School => "学校信息".to_owned(),
        DocId::Child(c) => format!("学生档案（编号 {}）", c.as_str()),
        DocId::Private(c) => format!("学生档案（编号 {}）的隐私部分", c.as_str()),
        DocId::Staff(c) => format!("学生档案（编号 {}）的教师部分", c.as_str()),
        DocId::Contact(m) => format!("成员（编号 {}）的联系方式", m.as_str()),
        DocId::Class(c) => format!("班级记录（编号 {}）", c.as_str()),
        DocId::Keys => "学校密钥".to_owned(),
        DocId::Audit(d) => format!("设备（编号 {}）的访问记录", d.as_str()),
    }
}

/// Heads as stored: sorted hex hashes joined by commas.
pub fn heads_text(heads: &[ChangeHash]) -> String {
    let mut hs: Vec<String> = heads.iter().map(ChangeHash::to_string).collect();
    hs.sort();
    hs.join(",")
}

/// The heads in `text` as [`heads_text`] writes them, or `None` if any entry is not a change
/// hash. Empty text is no heads. Text from another device (a change's declared heads) is read
/// with this, so that a malformed declaration declares nothing rather than part of itself.
pub fn parse_heads(text: &str) -> Option<Vec<ChangeHash>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',').map(|h| h.parse().ok()).collect()
}

/// The heads in `text` as this store wrote it ([`heads_text`]); an entry that is not a change
/// hash is skipped (the store writes none).
pub fn stored_heads(text: &str) -> Vec<ChangeHash> {
    text.split(',').filter_map(|h| h.parse().ok()).collect()
}

/// How long a statement waits for another connection's lock before it gives up.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Store {
    /// Opens (creating if needed) the unencrypted store at `path` and brings its schema up to
    /// date.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with_key(path, None)
    }

    /// Opens (creating if needed) the store at `path`, encrypted with `key` if given, and
    /// brings its schema up to date. A wrong or missing key is [`Error::Locked`] and changes
    /// nothing.
    pub fn open_with_key(path: &Path, key: Option<&StoreKey>) -> Result<Store> {
        match Store::open_writable(path, key) {
            Err(Error::Storage(rusqlite::Error::SqliteFailure(f, _)))
                if path.exists()
                    && matches!(
                        f.code,
                        rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen
                    ) =>
            {
                Store::open_read_only(path, key)
            }
            other => other,
        }
    }

    /// Opens a store on a medium this process cannot write (a write-protected card, a
    /// read-only mount, a file without write permission): read commands work, and every write
    /// fails with SQLite's read-only error, which says so in Chinese. The file is opened as
    /// immutable (no `-shm` can be made there), so a WAL left by a crash is not read; a store
    /// closed cleanly has none.
    fn open_read_only(path: &Path, key: Option<&StoreKey>) -> Result<Store> {
        use rusqlite::OpenFlags;
        let mut uri = String::from("file:");
        for c in path.to_string_lossy().chars() {
            match c {
                '?' | '#' | '%' => uri.push_str(&format!("%{:02X}", c as u32)),
                _ => uri.push(c),
            }
        }
        let conn = cipher::open(
            Path::new(&format!("{uri}?immutable=1")),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
            key,
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != migrations::latest() {
            return Err(Error::NotPermitted(
                "档案库文件是只读的，又需要升级到新版本，无法打开；请把它放到可写的位置".into(),
            ));
        }
        let actor = own_actor(&conn)?;
        Ok(Store {
            conn,
            path: path.to_owned(),
            key: key.cloned(),
            docs: DocCache::default(),
            actor,
            clock_skew_ms: 0,
            school_views: admit::SchoolViews::default(),
        })
    }

    fn open_writable(path: &Path, key: Option<&StoreKey>) -> Result<Store> {
        let mut conn = cipher::open(path, rusqlite::OpenFlags::default(), key)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Deleted content is zeroed, never left readable in free pages (purged children).
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Checkpoint the WAL rarely on the write path; `compact` checkpoints in the background.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let rebuild = migrations::apply(&mut conn, migrations::latest())?;
        let actor = own_actor(&conn)?;
        let mut store = Store {
            conn,
            path: path.to_owned(),
            key: key.cloned(),
            docs: DocCache::default(),
            actor,
            clock_skew_ms: 0,
            school_views: admit::SchoolViews::default(),
        };
        if rebuild {
            store.rebuild_projections()?;
        }
        Ok(store)
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key the store was opened with (`None`: not encrypted).
    pub fn key(&self) -> Option<&StoreKey> {
        self.key.as_ref()
    }

    /// The SQLite connection, for projection queries.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The SQLite connection, to set what takes `&mut` (tests hook its busy handler to hold
    /// a write at a chosen point).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The automerge actor everything is written under (the device id, followed by the store's
    /// restore epoch if it has one).
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Writes from now on as `device`: under its actor, in this store's restore epoch if it
    /// has one ([`crate::ids::Epoch`]).
    pub fn set_device(&mut self, device: &crate::ids::DeviceId) {
        let epoch = crate::ids::Epoch::of_actor(&self.actor);
        self.set_actor(crate::ids::Epoch::actor_of(epoch.as_ref(), device));
    }

    /// The restore epoch this store writes in, if it was restored from a backup.
    pub fn epoch(&self) -> Option<crate::ids::Epoch> {
        crate::ids::Epoch::of_actor(&self.actor)
    }

    /// Starts a new restore epoch: this store is a copy restored from a backup, and from now
    /// on writes under new actors, so that it never numbers a change again as its lost copy
    /// did ([`crate::ids::Epoch`]). A store restored again gets another epoch.
    pub fn begin_epoch(&mut self) -> Result<crate::ids::Epoch> {
        let epoch = crate::ids::Epoch::random();
        self.write(|b| {
            b.set_meta(META_EPOCH, &epoch.0);
            Ok(())
        })?;
        self.actor = own_actor(&self.conn)?;
        let actor = self.actor.clone();
        self.set_actor(actor);
        Ok(epoch)
    }

    /// Sets the automerge actor for everything written from now on, as it is (no epoch added:
    /// [`Store::set_device`] adds it).
    pub fn set_actor(&mut self, actor: ActorId) {
        for doc in self.docs.values_mut() {
            doc.set_actor(actor.clone());
        }
        self.actor = actor;
    }

    /// Makes this store's clock wrong by `ms` (a phone whose clock was never set): used by tests
    /// that show wrong clocks cannot break ordering or due work.
    pub fn set_clock_skew(&mut self, ms: i64) {
        self.clock_skew_ms = ms;
    }

    /// This store's clock (the device's, with any skew set for tests), ms since the epoch.
    pub fn clock_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.clock_skew_ms
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        meta_get(&self.conn, key)
    }

    /// Every document id in the store.
    pub fn doc_ids(&self) -> Result<Vec<DocId>> {
        doc_id_rows(&self.conn, "SELECT doc_id FROM docs ORDER BY doc_id")
    }

    /// Every document this store keeps anything of: the ones it holds ([`Store::doc_ids`]) and
    /// the ones only other tables name (a refused change of a document it never stored, kept
    /// in the quarantine with its bytes; a sync state saved for a document whose changes were
    /// all refused, or written just after a purge). What a purge judges, so that nothing of a
    /// document outlives it. (`changes` rows exist only beside a `docs` row, written and
    /// deleted with it in one transaction: not scanned.)
    pub fn held_doc_ids(&self) -> Result<Vec<DocId>> {
        held_doc_ids_from(&self.conn, |_| true)
    }

    /// The documents holding a record `author` wrote (the projection's `p_records`).
    pub fn docs_with_records_by(
        &self,
        author: &crate::ids::MemberId,
    ) -> Result<std::collections::BTreeSet<DocId>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT doc_id FROM p_records WHERE author = ?1")?;
        let mut rows = stmt.query([author.as_str()])?;
        let mut out = std::collections::BTreeSet::new();
        while let Some(row) = rows.next()? {
            out.extend(DocId::parse(&row.get::<_, String>(0)?));
        }
        Ok(out)
    }

    /// The heads of a document as stored, sorted, comma-separated (empty if absent).
    pub fn heads(&self, id: &DocId) -> Result<String> {
        Ok(self
            .conn
            .prepare_cached("SELECT heads FROM docs WHERE doc_id = ?1")?
            .query_row([id.key()], |r| r.get(0))
            .optional()?
            .unwrap_or_default())
    }

    /// A document, loaded on first use.
    pub fn doc(&mut self, id: &DocId) -> Result<Option<&Automerge>> {
        self.docs.current(&self.conn, id, &self.actor)
    }

    /// The school document as it is now, read once per school state (kept with the states
    /// admission judges changes against; a state is named by its heads, so a view never goes
    /// stale). `None` if this store has no school document yet.
    pub fn school_view(&mut self) -> Result<Option<std::sync::Arc<crate::school::SchoolView>>> {
        let Some(doc) = self.docs.current(&self.conn, &DocId::School, &self.actor)? else {
            return Ok(None);
        };
        Ok(self.school_views.at(doc, &doc.get_heads()))
    }

    /// The documents whose stored bytes no longer load (tries every document not in memory).
    pub fn damaged_docs(&mut self) -> Result<Vec<DocId>> {
        let mut out = Vec::new();
        for id in self.doc_ids()? {
            if self.docs.contains_key(&id) {
                continue;
            }
            match load_doc(&self.conn, &id, &self.actor) {
                Err(Error::Damaged { .. }) => out.push(id),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        Ok(out)
    }

    /// The documents this connection holds decoded in memory (for diagnostics and tests: what
    /// a long-lived connection keeps of a child's file).
    pub fn cached(&self) -> Vec<DocId> {
        let mut ids: Vec<DocId> = self.docs.ids().cloned().collect();
        ids.sort();
        ids
    }

    /// Forgets every cached document (they are reloaded from disk on next use).
    pub fn clear_cache(&mut self) {
        self.docs.clear();
    }

    /// Runs `f` over a [`Batch`] and persists everything it changed in one durable transaction.
    /// If `f` or the persisting fails, nothing is written and the touched documents are dropped
    /// from memory.
    pub fn write<R>(&mut self, f: impl FnOnce(&mut Batch<'_>) -> Result<R>) -> Result<R> {
        let Store {
            conn,
            docs,
            actor,
            clock_skew_ms,
            school_views,
            ..
        } = self;
        // Take the write lock first: another connection (the hub's other sessions, the CLI
        // while a phone syncs) cannot commit between reading a document and writing it.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Holding the write lock: every other connection's commit so far is in this stamp.
        let before = cache::stamp(&tx)?;
        let mut batch = Batch {
            conn: &tx,
            docs,
            actor,
            school_views,
            touched: Vec::new(),
            hints: HashMap::new(),
            meta: Vec::new(),
            sync_states: Vec::new(),
            quarantine: Vec::new(),
            relayed: Vec::new(),
            outdated: Vec::new(),
            source: String::new(),
            sender: Sender::Relay,
            quota: None,
            intake: 0,
            claimed: 0,
            free_rows: admit::FREE_ROWS,
            now_ms: chrono::Utc::now().timestamp_millis() + *clock_skew_ms,
            replaced: Vec::new(),
            writing_as: None,
            judging_as: None,
        };
        // A panic that escapes the write (one `peer_guarded` did not catch: a bug) must not
        // leave half-merged documents in this connection's cache for the next write or read to
        // use (the hub lends an archive to one session after another): they are dropped as on
        // an error, the transaction rolls back, and the panic goes on.
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut batch)))
        {
            Ok(result) => result,
            Err(panic) => {
                let touched = std::mem::take(&mut batch.touched);
                let (quota, claimed, now_ms) = (batch.quota.take(), batch.claimed, batch.now_ms);
                drop(batch);
                drop(tx);
                Self::abandon(conn, docs, &touched, quota.as_ref(), claimed, now_ms);
                std::panic::resume_unwind(panic);
            }
        };
        let Batch {
            touched,
            hints,
            meta,
            sync_states,
            quarantine,
            relayed,
            outdated,
            source,
            now_ms,
            quota,
            intake,
            claimed,
            replaced,
            ..
        } = batch;
        // Persisting reads the merged documents too (projections, the fold's save): the same
        // for a panic there.
        let persisted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            result
                .and_then(|r| forget_replaced(&tx, &replaced).map(|()| r))
                .and_then(|r| persist(&tx, docs, &touched, &hints, &meta, &sync_states).map(|()| r))
                .and_then(|r| {
                    admit::persist_quarantine(&tx, &quarantine, &source, now_ms).map(|()| r)
                })
                .and_then(|r| admit::persist_relayed(&tx, &relayed, &source, now_ms).map(|()| r))
                .and_then(|r| admit::persist_outdated(&tx, &outdated, &source, now_ms).map(|()| r))
                .and_then(|r| {
                    admit::persist_intake(&tx, quota.as_ref(), intake, now_ms).map(|()| r)
                })
                .and_then(|r| tx.commit().map(|()| r).map_err(Error::from))
        }));
        let outcome = match persisted {
            Ok(outcome) => outcome,
            Err(panic) => {
                Self::abandon(conn, docs, &touched, quota.as_ref(), claimed, now_ms);
                std::panic::resume_unwind(panic);
            }
        };
        if outcome.is_err() {
            Self::abandon(conn, docs, &touched, quota.as_ref(), claimed, now_ms);
            return outcome;
        }
        let written: Vec<DocId> = touched.into_iter().map(|(id, _)| id).collect();
        docs.committed(before, conn.total_changes(), &written);
        if !replaced.is_empty() {
            // No byte of the old generation may stay in free pages or the WAL. The write has
            // committed: a reader in the way leaves the scrub to the next purge.
            self.scrub_later()?;
            if !self.scrub()? {
                tracing::warn!("a reader kept the store from being scrubbed; scrubbed later");
            }
        }
        outcome
    }

    /// After a write that failed or panicked (its transaction rolled back): the documents it
    /// touched leave the cache (the next read loads them as committed, not half merged), and
    /// what its inputs claimed of the sender's daily quota stays spent, so input that makes the
    /// write fail can be sent again and again only within the day's allowance.
    fn abandon(
        conn: &mut Connection,
        docs: &mut DocCache,
        touched: &[(DocId, Vec<ChangeHash>)],
        quota: Option<&(crate::ids::MemberId, u64)>,
        claimed: u64,
        now_ms: i64,
    ) {
        for (id, _) in touched {
            docs.remove(id);
        }
        if claimed == 0 {
            return;
        }
        let spent = conn.transaction().map_err(Error::from).and_then(|t| {
            admit::persist_intake(&t, quota, claimed, now_ms)?;
            t.commit().map_err(Error::from)
        });
        if let Err(e) = spent {
            tracing::warn!("a failed batch's claimed rows were not counted: {e}");
        }
    }

    /// Every document's heads, as stored.
    pub fn all_heads(&self) -> Result<Vec<(DocId, String)>> {
        doc_text_rows(
            &self.conn,
            "SELECT doc_id, heads FROM docs ORDER BY doc_id",
            [],
        )
    }

    /// The stored heads of each of `ids` the store has, in document key order (the order of
    /// [`Store::all_heads`]): from the cached copy when nothing was committed since it was found
    /// current, else one indexed lookup per document, whatever the store holds. (The hub asks
    /// this after every frame of every session, for every document in the phone's scope.)
    pub fn heads_of<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a DocId>,
    ) -> Result<Vec<(DocId, String)>> {
        let now = cache::stamp(&self.conn)?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT heads FROM docs WHERE doc_id = ?1")?;
        let mut out = Vec::new();
        for id in ids {
            let key = id.key();
            let heads = match self.docs.known_heads(id, now) {
                Some(known) => known,
                None => stmt
                    .query_row([&key], |r| r.get::<_, String>(0))
                    .optional()?,
            };
            if let Some(heads) = heads {
                out.push((key, id.clone(), heads));
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(out.into_iter().map(|(_, id, heads)| (id, heads)).collect())
    }
}

/// The document ids in the first column of `sql`'s rows (a key this build does not know is
/// skipped; a read error is an error).
/// Every document a store file holds anything of, as [`Store::held_doc_ids`] lists them, read
/// over a plain connection to a file that is not opened as a store (an old backup: only the
/// tables its schema has are read).
pub fn held_doc_ids_in(conn: &Connection) -> Result<Vec<DocId>> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let tables = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if !tables.iter().any(|t| t == "docs") {
        return Err(Error::NotAStore);
    }
    held_doc_ids_from(conn, |t| tables.iter().any(|have| have == t))
}

/// The union of the document ids of `docs` and of every per-document table but `changes`
/// (written and deleted with a `docs` row) that `has` says exists.
fn held_doc_ids_from(conn: &Connection, has: impl Fn(&str) -> bool) -> Result<Vec<DocId>> {
    let sql = std::iter::once("SELECT doc_id FROM docs".to_owned())
        .chain(
            persist::PER_DOC_TABLES
                .iter()
                .filter(|t| **t != "changes" && has(t))
                .map(|t| format!("SELECT doc_id FROM {t}")),
        )
        .collect::<Vec<_>>()
        .join(" UNION ");
    doc_id_rows(conn, &format!("{sql} ORDER BY doc_id"))
}

/// What this store remembers a dropped document held of its own work
/// ([`Store::purge_remembering`]), as `(actor, its last change)`: `None` if it has no mark;
/// empty for a mark made before the store recorded that (migration 18).
fn purged_tips(conn: &Connection, id: &DocId) -> Result<Option<Vec<(ActorId, ChangeHash)>>> {
    let tips: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT tips FROM purged WHERE doc_id = ?1")?
        .query_row([id.key()], |r| r.get(0))
        .optional()?;
    Ok(tips.map(|t| decode_tips(&t.unwrap_or_default())))
}

/// `purged.tips`: for each actor, its length (one byte), its bytes, and the 32-byte hash of
/// its last change.
fn encode_tips(tips: &[(ActorId, ChangeHash)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (actor, hash) in tips {
        let bytes = actor.to_bytes();
        let Ok(len) = u8::try_from(bytes.len()) else {
            continue;
        };
        out.push(len);
        out.extend_from_slice(bytes);
        out.extend_from_slice(&hash.0);
    }
    out
}

/// [`encode_tips`] read back; anything that does not parse is no tip (nothing known).
fn decode_tips(mut bytes: &[u8]) -> Vec<(ActorId, ChangeHash)> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = bytes.split_first() {
        let len = usize::from(len);
        let (Some(actor), Some(hash)) = (rest.get(..len), rest.get(len..len + 32)) else {
            return Vec::new();
        };
        let Ok(hash) = ChangeHash::try_from(hash) else {
            return Vec::new();
        };
        out.push((ActorId::from(actor), hash));
        bytes = &rest[len + 32..];
    }
    out
}

fn doc_id_rows(conn: &Connection, sql: &str) -> Result<Vec<DocId>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.extend(DocId::parse(&row.get::<_, String>(0)?));
    }
    Ok(out)
}

/// The `(doc_id, text)` rows `sql` reads: heads, per document. A row whose key is not a
/// document id (written by a newer build) is left out; a row SQLite cannot read is an error.
fn doc_text_rows<C: FromIterator<(DocId, String)>>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<C> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        if let Some(id) = DocId::parse(&row.get::<_, String>(0)?) {
            out.push((id, row.get::<_, String>(1)?));
        }
    }
    Ok(out.into_iter().collect())
}

/// The meta key of the store's restore epoch ([`Store::begin_epoch`]).
const META_EPOCH: &str = "actor_epoch";

/// The actor a store writes under when opened: its device's (`device_id`), in its restore
/// epoch if it has one; a random one before it has a device.
fn own_actor(conn: &Connection) -> Result<ActorId> {
    let Some(device) = meta_get(conn, "device_id")? else {
        return Ok(ActorId::random());
    };
    let epoch = meta_get(conn, META_EPOCH)?
        .filter(|e| crate::ids::Epoch::is_epoch(e))
        .map(crate::ids::Epoch);
    Ok(crate::ids::Epoch::actor_of(
        epoch.as_ref(),
        &crate::ids::DeviceId(device),
    ))
}

pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod panic_output;
