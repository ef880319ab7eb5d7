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
//! [`Store::compact`] folds a document's changes into a new snapshot, verifies that the snapshot
//! loads back with the same heads, and only then replaces the changes, in one transaction. It
//! never changes what the document contains.
//!
//! # Purging
//!
//! Every connection runs with `secure_delete = ON`: what SQLite deletes is overwritten with
//! zeros, not left in free space. [`Store::purge`] removes whole documents (a child this device
//! no longer cares for) with their changes, sync state and projection rows in one transaction,
//! then rebuilds the file (`VACUUM`) and folds the WAL back and truncates it, so no byte of
//! what was purged stays in the store file or its WAL.

mod admit;
mod cache;
mod conflicted;
mod deliveries;
pub mod migrations;
pub mod projection;
pub mod school_history;

pub use admit::{Admission, Sender};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge, ChangeHash};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::doc::{self, DocId};
use crate::error::{Error, Result};
use crate::ids::RecordId;
use cache::{DocCache, load_doc};
pub use deliveries::MAX_DELIVERIES;
use projection::Touched;

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
    /// Bytes of changes this batch took from the quota's member.
    intake: u64,
    now_ms: i64,
    /// Documents replaced whole (a new generation): their stored changes, sync state and
    /// quarantine go, and the file is scrubbed after the commit.
    replaced: Vec<DocId>,
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
fn malformed_by_peer(id: &DocId) -> Error {
    Error::Corrupt(format!(
        "{}：对方发来的档案数据格式不对，无法读取",
        doc_label(id)
    ))
}

/// Refuses a peer's automerge bytes that claim far more than they hold (a run of billions in
/// a few bytes, a compressed part that inflates a thousandfold: [`doc::bounds`]) before
/// automerge reads them, as its allocation would abort the process.
pub(crate) fn bounded(id: &DocId, bytes: &[u8]) -> Result<()> {
    doc::bounds::check(bytes).map_err(|e| {
        tracing::debug!(doc = %id, bounds = ?e, "a peer's automerge bytes claim too much");
        Error::Corrupt(format!(
            "{}：对方发来的档案数据声称的内容远超其大小，没有读取",
            doc_label(id)
        ))
    })
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

/// The key that encrypts a store at rest (SQLCipher, a raw 256-bit key). On a phone the
/// platform keystore holds it; it never leaves the device and is never written to the store.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoreKey> {
        <[u8; 32]>::try_from(bytes)
            .map(StoreKey)
            .map_err(|_| Error::invalid("存储密钥", "必须是 32 字节"))
    }

    /// A new random key.
    pub fn generate() -> StoreKey {
        StoreKey(rand::random())
    }

    /// The key's bytes, for the platform keystore.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(…)")
    }
}

/// Applies `key` to a freshly opened connection and checks that it opens the file.
fn unlock(conn: &Connection, key: Option<&StoreKey>) -> Result<()> {
    if let Some(key) = key {
        let cipher: Option<String> = conn
            .query_row("PRAGMA cipher_version", [], |r| r.get(0))
            .optional()?;
        if cipher.is_none() {
            return Err(Error::NotPermitted(
                "这个版本没有编入加密存储，不能打开加密档案库".into(),
            ));
        }
        // A wrong key is reported as `Error::Locked`, not logged to stderr by SQLCipher.
        conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        conn.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(key.0)))?;
    }
    // The first read decrypts page 1: a wrong or missing key fails here.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Err(if looks_encrypted(conn) {
                Error::Locked
            } else {
                Error::NotAStore
            })
        }
        other => Ok(other?),
    }
}

/// Whether a file SQLite cannot read could be an encrypted store: SQLCipher writes whole
/// pages (at least 1 KiB each), so a text file, a spreadsheet or a truncated copy is not one.
fn looks_encrypted(conn: &Connection) -> bool {
    let Some(path) = conn.path().filter(|p| !p.is_empty()) else {
        return false;
    };
    std::fs::metadata(path).is_ok_and(|m| m.len() >= 1024 && m.len() % 1024 == 0)
}

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
        let conn = Connection::open_with_flags(
            format!("{uri}?immutable=1"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )?;
        unlock(&conn, key)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != migrations::latest() {
            return Err(Error::NotPermitted(
                "档案库文件是只读的，又需要升级到新版本，无法打开；请把它放到可写的位置".into(),
            ));
        }
        let actor = match meta_get(&conn, "device_id")? {
            Some(d) => crate::ids::DeviceId(d).actor(),
            None => ActorId::random(),
        };
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
        let mut conn = Connection::open(path)?;
        unlock(&conn, key)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Deleted content is zeroed, never left readable in free pages (purged children).
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Checkpoint the WAL rarely on the write path; `compact` checkpoints in the background.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let rebuild = migrations::apply(&mut conn, migrations::latest())?;
        let actor = match meta_get(&conn, "device_id")? {
            Some(d) => crate::ids::DeviceId(d).actor(),
            None => ActorId::random(),
        };
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

    /// The automerge actor everything is written under (the device id).
    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// Sets the automerge actor for everything written from now on (the device id).
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
            now_ms: chrono::Utc::now().timestamp_millis() + *clock_skew_ms,
            replaced: Vec::new(),
        };
        let result = f(&mut batch);
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
            replaced,
            ..
        } = batch;
        let outcome = result
            .and_then(|r| forget_replaced(&tx, &replaced).map(|()| r))
            .and_then(|r| persist(&tx, docs, &touched, &hints, &meta, &sync_states).map(|()| r))
            .and_then(|r| admit::persist_quarantine(&tx, &quarantine, &source, now_ms).map(|()| r))
            .and_then(|r| admit::persist_relayed(&tx, &relayed, &source, now_ms).map(|()| r))
            .and_then(|r| admit::persist_outdated(&tx, &outdated, &source, now_ms).map(|()| r))
            .and_then(|r| admit::persist_intake(&tx, quota.as_ref(), intake, now_ms).map(|()| r))
            .and_then(|r| tx.commit().map(|()| r).map_err(Error::from));
        if outcome.is_err() {
            for (id, _) in &touched {
                docs.remove(id);
            }
            return outcome;
        }
        let written: Vec<DocId> = touched.into_iter().map(|(id, _)| id).collect();
        docs.committed(before, conn.total_changes(), &written);
        if !replaced.is_empty() {
            // No byte of the old generation may stay in free pages or the WAL.
            self.scrub()?;
        }
        outcome
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

    /// The heads this store shares with `peer`, per document: as both sides held them at the
    /// end of the last exchange (or learned from a Hello). Without automerge's sync states,
    /// which a sync needs only for the documents it exchanges ([`Store::sync_state`]).
    pub fn shared_with(&self, peer: &str) -> Result<HashMap<DocId, String>> {
        doc_text_rows(
            &self.conn,
            "SELECT doc_id, shared_heads FROM sync_state WHERE peer = ?1",
            [peer],
        )
    }

    /// automerge's encoded sync state with `peer` for `doc`, as persisted.
    pub fn sync_state(&self, peer: &str, doc: &DocId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .prepare_cached("SELECT state FROM sync_state WHERE peer = ?1 AND doc_id = ?2")?
            .query_row([peer, doc.key().as_str()], |r| r.get(0))
            .optional()?)
    }

    /// Every peer this store has a sync state with for `doc`, and the heads they are known to
    /// share.
    pub fn shared_heads_of(&self, doc: &DocId) -> Result<Vec<(String, Vec<ChangeHash>)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT peer, shared_heads FROM sync_state WHERE doc_id = ?1")?;
        let rows = stmt
            .query_map([doc.key()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?
            .filter_map(|row| {
                let (peer, heads) = row.ok()?;
                Some((peer, stored_heads(&heads)))
            })
            .collect();
        Ok(rows)
    }

    /// Documents held back with `peer` (a refusal either way): per document, this side's heads
    /// when it was held. A document is exchanged again once its heads move.
    pub fn held(&self, peer: &str) -> Result<HashMap<DocId, String>> {
        doc_text_rows(
            &self.conn,
            "SELECT doc_id, heads FROM held WHERE peer = ?1",
            [peer],
        )
    }

    /// Holds `doc` back with `peer` at this side's current heads (or releases it: `None`).
    pub fn set_held(&mut self, peer: &str, doc: &DocId, held: bool) -> Result<()> {
        if held {
            let heads = self.heads(doc)?;
            self.conn
                .prepare_cached(
                    "INSERT INTO held (peer, doc_id, heads) VALUES (?1, ?2, ?3)
                 ON CONFLICT (peer, doc_id) DO UPDATE SET heads = excluded.heads",
                )?
                .execute(params![peer, doc.key(), heads])?;
        } else {
            self.conn
                .prepare_cached("DELETE FROM held WHERE peer = ?1 AND doc_id = ?2")?
                .execute(params![peer, doc.key()])?;
        }
        Ok(())
    }

    /// Records that `peer` refused `count` changes of `doc` from this device, and why.
    pub fn record_refusal(
        &mut self,
        peer: &str,
        doc: &DocId,
        count: u32,
        reason: &str,
    ) -> Result<()> {
        let now = chrono::Utc::now().timestamp_millis() + self.clock_skew_ms;
        self.conn
            .prepare_cached(
                "INSERT INTO refusals (peer, doc_id, count, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (peer, doc_id) DO UPDATE
             SET count = excluded.count, reason = excluded.reason, at = excluded.at",
            )?
            .execute(params![peer, doc.key(), count, reason, now])?;
        Ok(())
    }

    /// Records that the hub says this device may no longer hold `doc`: the next
    /// [`crate::archive::Archive::purge_out_of_scope`] drops it.
    pub fn mark_out_of_scope(&mut self, doc: &DocId) -> Result<()> {
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO out_of_scope (doc_id) VALUES (?1)")?
            .execute([doc.key()])?;
        Ok(())
    }

    /// Documents the hub said this device may no longer hold.
    pub fn out_of_scope(&self) -> Result<Vec<DocId>> {
        doc_id_rows(&self.conn, "SELECT doc_id FROM out_of_scope")
    }

    /// What `peer` refused from this device: (document, changes, reason).
    pub fn refusals(&self, peer: &str) -> Result<Vec<(DocId, u32, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT doc_id, count, reason FROM refusals WHERE peer = ?1 ORDER BY doc_id",
        )?;
        let rows = stmt
            .query_map([peer], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .filter_map(|row| {
                let (k, n, why) = row.ok()?;
                Some((DocId::parse(&k)?, n, why))
            })
            .collect();
        Ok(rows)
    }

    /// Records how the last exchange with `peer` ended.
    pub fn record_sync_result(&mut self, peer: &str, error: Option<&str>) -> Result<()> {
        let now = chrono::Utc::now().timestamp_millis() + self.clock_skew_ms;
        match error {
            None => self.conn.prepare_cached("INSERT INTO sync_peers (peer, last_success, last_error) VALUES (?1, ?2, NULL)
                 ON CONFLICT (peer) DO UPDATE SET last_success = excluded.last_success, last_error = NULL")?.execute(
                params![peer, now],
            )?,
            Some(e) => self.conn.prepare_cached("INSERT INTO sync_peers (peer, last_error) VALUES (?1, ?2)
                 ON CONFLICT (peer) DO UPDATE SET last_error = excluded.last_error")?.execute(
                params![peer, e],
            )?,
        };
        Ok(())
    }

    /// Rebuilds every projection from the documents (after a migration that needs it).
    pub fn rebuild_projections(&mut self) -> Result<()> {
        let ids = self.doc_ids()?;
        for id in &ids {
            self.doc(id)?;
        }
        let tx = self.conn.transaction()?;
        projection::clear(&tx)?;
        for id in &ids {
            if let Some(doc) = self.docs.get(id) {
                projection::project(&tx, id, doc)?;
                conflicted::update(&tx, id, doc, &[], &[])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The child documents that hold a conflict ([`crate::doc::conflicts::list`] not empty),
    /// from their projection: a school-wide list of open conflicts reads only these.
    pub fn conflicted_docs(&self) -> Result<Vec<DocId>> {
        conflicted::list(&self.conn)
    }

    /// Removes documents for good: their rows, changes, sync state with every peer and
    /// projection rows, in one transaction. Then the file is rebuilt (`VACUUM`) and the WAL
    /// folded back and truncated, so that (with `secure_delete`) none of their bytes remain in
    /// the store file or its WAL. Returns how many documents were removed.
    ///
    /// If another connection is reading at that moment, the WAL cannot be truncated yet; its
    /// old frames are then overwritten by later writes and truncated at the next purge or
    /// [`Store::compact`].
    pub fn purge(&mut self, ids: &[DocId]) -> Result<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut removed = 0;
        for id in ids {
            let key = id.key();
            removed += tx
                .prepare_cached("DELETE FROM docs WHERE doc_id = ?1")?
                .execute([&key])?;
            tx.prepare_cached("DELETE FROM changes WHERE doc_id = ?1")?
                .execute([&key])?;
            tx.prepare_cached("DELETE FROM sync_state WHERE doc_id = ?1")?
                .execute([&key])?;
            for table in [
                "held",
                "refusals",
                "quarantine",
                "relayed",
                "outdated",
                "out_of_scope",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [&key])?;
            }
            projection::forget(&tx, id)?;
        }
        tx.commit()?;
        for id in ids {
            self.docs.remove(id);
        }
        if removed > 0 {
            self.scrub()?;
        }
        Ok(removed)
    }

    /// Rewrites the database without its free pages (the temporary copy stays in memory, never
    /// in a temporary file), then copies the WAL into it and truncates the WAL to nothing.
    fn scrub(&mut self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA temp_store = MEMORY; VACUUM; PRAGMA temp_store = DEFAULT;")?;
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Compacts every document with at least `threshold` loose changes. Returns how many were
    /// compacted.
    pub fn compact(&mut self, threshold: i64) -> Result<usize> {
        let ids: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT doc_id FROM changes GROUP BY doc_id HAVING count(*) >= ?1")?;
            stmt.query_map([threshold], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut done = 0;
        for key in ids {
            let Some(id) = DocId::parse(&key) else {
                continue;
            };
            // Loaded under the write lock: a change another connection commits after the
            // load would otherwise be deleted with the rows without being in the snapshot.
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(doc) = load_doc(&tx, &id, &self.actor)? else {
                continue;
            };
            if !store_as_snapshot(&tx, &key, &doc)? {
                return Err(Error::Corrupt(format!("{key}: 压缩校验失败")));
            }
            tx.commit()?;
            self.docs.insert(id, doc);
            done += 1;
        }
        // Fold the WAL back into the database file while nobody waits on it.
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(done)
    }
}

/// Removes everything stored of the documents a batch replaced whole; `persist` then writes
/// the new generation as a new document.
fn forget_replaced(tx: &rusqlite::Transaction<'_>, replaced: &[DocId]) -> Result<()> {
    for id in replaced {
        let key = id.key();
        for table in [
            "docs",
            "changes",
            "sync_state",
            "held",
            "refusals",
            "quarantine",
            "relayed",
            "outdated",
            "out_of_scope",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [&key])?;
        }
        projection::forget(tx, id)?;
    }
    Ok(())
}

/// Writes a batch's new changes, projections, sync states and meta values inside `tx`.
fn persist(
    tx: &rusqlite::Transaction<'_>,
    docs: &DocCache,
    touched: &[(DocId, Vec<ChangeHash>)],
    hints: &HashMap<DocId, Touched>,
    meta: &[(String, String)],
    sync_states: &[(String, DocId, String, Vec<u8>)],
) -> Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    for (k, v) in meta {
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![k, v])?;
    }
    for (peer, id, shared, state) in sync_states {
        tx.prepare_cached(
            "INSERT INTO sync_state (peer, doc_id, shared_heads, state) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (peer, doc_id) DO UPDATE
             SET shared_heads = excluded.shared_heads, state = excluded.state",
        )?
        .execute(params![peer, id.key(), shared, state])?;
    }
    for (id, before) in touched {
        let Some(doc) = docs.get(id) else {
            continue;
        };
        let heads = doc.get_heads();
        // An empty document (a peer asked about one this side never had) is not stored.
        if heads.is_empty() || (heads == *before && !before.is_empty()) {
            continue;
        }
        let key = id.key();
        tx.prepare_cached(
            "INSERT INTO docs (doc_id, heads, updated) VALUES (?1, ?2, ?3)
             ON CONFLICT (doc_id) DO UPDATE SET heads = excluded.heads, updated = excluded.updated",
        )?
        .execute(params![key, heads_text(&heads), now])?;
        let new = doc.get_changes(before);
        if !fold(tx, &key, doc, new.len())? {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO changes (doc_id, hash, bytes) VALUES (?1, ?2, ?3)",
            )?;
            for change in &new {
                insert.execute(params![key, change.hash().as_ref(), change.raw_bytes()])?;
            }
        }
        match hints.get(id) {
            Some(t) if !before.is_empty() => projection::project_touched(tx, id, doc, t)?,
            _ => projection::project(tx, id, doc)?,
        }
        conflicted::update(tx, id, doc, before, &new)?;
    }
    Ok(())
}

/// Folds the document `key` into its snapshot inside `tx` when its loose changes and the
/// `new` ones about to be stored would reach [`COMPACT_AFTER`]: the snapshot becomes `doc` as
/// it is now (the new changes included) and its change rows go. `false`: not folded (too few
/// changes, or the snapshot did not load back to the same heads), the caller stores the new
/// changes as rows.
///
/// Loading replays every loose change one by one; a snapshot loads at about half the cost
/// (the storm's school document: 2.8 ms against 5.0 ms for 695 changes, BENCHMARKS §7). A
/// document is saved whole once per [`COMPACT_AFTER`] changes, so what a write pays for it
/// is a share of one save, and a batch of many changes (an import, a join) is stored folded.
/// Other connections with a copy from before see heads they cannot reach from the rows and
/// load the document again (`cache::catch_up`).
fn fold(tx: &rusqlite::Transaction<'_>, key: &str, doc: &Automerge, new: usize) -> Result<bool> {
    if new == 0 {
        return Ok(false);
    }
    let loose: i64 = tx
        .prepare_cached("SELECT count(*) FROM changes WHERE doc_id = ?1")?
        .query_row([key], |r| r.get(0))?;
    if loose.saturating_add(i64::try_from(new).unwrap_or(i64::MAX)) < COMPACT_AFTER {
        return Ok(false);
    }
    if store_as_snapshot(tx, key, doc)? {
        return Ok(true);
    }
    tracing::warn!(
        doc = key,
        "snapshot did not load back the same; changes kept as rows"
    );
    Ok(false)
}

/// Stores `doc` as the snapshot of `key` and deletes its change rows, inside `tx`, which must
/// hold the write lock from before `doc` was read (or every change committed since would be
/// deleted without being in the snapshot). `false`, and nothing written, if the saved
/// snapshot does not load back to the same heads.
fn store_as_snapshot(tx: &rusqlite::Transaction<'_>, key: &str, doc: &Automerge) -> Result<bool> {
    let snapshot = doc.save();
    match Automerge::load(&snapshot) {
        Ok(check) if check.get_heads() == doc.get_heads() => {}
        _ => return Ok(false),
    }
    tx.prepare_cached("UPDATE docs SET snapshot = ?2 WHERE doc_id = ?1")?
        .execute(params![key, snapshot])?;
    tx.prepare_cached("DELETE FROM changes WHERE doc_id = ?1")?
        .execute([key])?;
    Ok(true)
}

/// The document ids in the first column of `sql`'s rows (a key this build does not know is
/// skipped; a read error is an error).
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

fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

impl Batch<'_> {
    /// The device clock at the start of the batch, ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Tells the store that this batch changed only `record` in `doc` (plus anything else
    /// declared), so only its projection row is rewritten. Documents changed without a
    /// declaration are re-projected whole, which is always correct.
    pub fn touched_record(&mut self, doc: &DocId, record: &RecordId) {
        self.hints
            .entry(doc.clone())
            .or_default()
            .records
            .insert(record.0.clone());
    }

    /// Tells the store that this batch changed what `doc` describes (profile, contact card).
    pub fn touched_subject(&mut self, doc: &DocId) {
        self.hints.entry(doc.clone()).or_default().subject = true;
    }

    /// Records a `meta` value to write with the batch.
    pub fn set_meta(&mut self, key: &str, value: &str) {
        self.meta.push((key.to_owned(), value.to_owned()));
    }

    fn ensure(&mut self, id: &DocId, create: bool) -> Result<bool> {
        self.refresh(id)?;
        if !self.docs.load(self.conn, id, self.actor)? {
            if !create {
                return Ok(false);
            }
            self.docs
                .insert(id.clone(), doc::genesis(id, self.actor.clone())?);
            self.touched.push((id.clone(), Vec::new()));
            return Ok(true);
        }
        if !self.touched.iter().any(|(t, _)| t == id)
            && let Some(d) = self.docs.get(id)
        {
            self.touched.push((id.clone(), d.get_heads()));
        }
        Ok(true)
    }

    /// Drops a cached document that another connection has written since (not one this batch
    /// has already changed).
    fn refresh(&mut self, id: &DocId) -> Result<()> {
        if self.touched.iter().any(|(t, _)| t == id) {
            return Ok(());
        }
        self.docs.refresh(self.conn, id)
    }

    /// A document, if the store has it.
    pub fn doc(&mut self, id: &DocId) -> Result<Option<&Automerge>> {
        self.refresh(id)?;
        self.docs.load(self.conn, id, self.actor)?;
        Ok(self.docs.get(id))
    }

    /// Replaces a document whole with `doc` (a new generation, see [`crate::school::Rebase`]):
    /// its stored changes, sync state and quarantine are removed in this batch, and the store
    /// file is scrubbed after the commit, so nothing of the old history remains.
    pub fn replace(&mut self, id: &DocId, mut doc: Automerge) {
        doc.set_actor(self.actor.clone());
        self.docs.insert(id.clone(), doc);
        self.touched.retain(|(t, _)| t != id);
        self.touched.push((id.clone(), Vec::new()));
        self.hints.remove(id);
        if !self.replaced.contains(id) {
            self.replaced.push(id.clone());
        }
    }

    /// Adds the layout upgrade ([`doc::layout_upgrade`]) to a document made by an older build,
    /// so the maps this version's genesis creates exist. Nothing if none are missing.
    pub fn upgrade_layout(&mut self, id: &DocId) -> Result<()> {
        if !self.ensure(id, false)? {
            return Ok(());
        }
        let Some(doc) = self.docs.get_mut(id) else {
            return Ok(());
        };
        if let Some(change) = doc::layout_upgrade(id, doc)? {
            doc.apply_changes([change])?;
        }
        Ok(())
    }

    /// Whether the store has the document.
    pub fn has(&mut self, id: &DocId) -> Result<bool> {
        Ok(self.doc(id)?.is_some())
    }

    /// Applies `f` to a document in one automerge change (creating the document from its genesis
    /// if `create` and it does not exist). An error from `f` rolls the change back.
    /// `message` is kept with the change and shown in the file's history.
    pub fn change<R>(
        &mut self,
        id: &DocId,
        create: bool,
        message: &str,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<R>,
    ) -> Result<R> {
        let message = self.declared_message(id, message)?;
        if !self.ensure(id, create)? {
            return Err(Error::not_found("档案", id.key()));
        }
        let secs = self.now_ms / 1000;
        // In a re-based document this device writes under its actor for that generation.
        let actor = match self.docs.get(&DocId::School) {
            Some(s) if *id != DocId::School => crate::school::generation(s, id)
                .map_or_else(|| self.actor.clone(), |g| g.actor_of(self.actor)),
            _ => self.actor.clone(),
        };
        let doc = self
            .docs
            .get_mut(id)
            .ok_or_else(|| Error::not_found("档案", id.key()))?;
        doc.set_actor(actor);
        doc.transact_with(
            |_| {
                CommitOptions::default()
                    .with_time(secs)
                    .with_message(message.as_str())
            },
            f,
        )
        .map(|s| s.result)
        .map_err(|f| f.error)
    }

    /// A local change's message with the auth state it declares (see [`crate::trust`]): the
    /// school heads this device holds, and for a private part the child file's heads.
    fn declared_message(&mut self, id: &DocId, message: &str) -> Result<String> {
        if *id == DocId::School {
            return Ok(message.to_owned());
        }
        let Some(school) = self.doc(&DocId::School)?.map(Automerge::get_heads) else {
            return Ok(message.to_owned());
        };
        let child = match id {
            DocId::Private(c) | DocId::Staff(c) => Some(
                self.doc(&DocId::Child(c.clone()))?
                    .map(Automerge::get_heads)
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        Ok(crate::trust::declare(message, &school, child.as_deref()))
    }

    /// Applies one automerge sync message from a peer to a document (creating the document if
    /// absent), judges every change it brought ([`crate::trust`]), and queues the updated sync
    /// state to be saved with the batch. If a change was not accepted, the sync state starts
    /// afresh (automerge's state would otherwise believe this side has it).
    pub fn sync_receive(
        &mut self,
        peer: &str,
        id: &DocId,
        state: &mut automerge::sync::State,
        message: automerge::sync::Message,
    ) -> Result<Admission> {
        use automerge::sync::SyncDoc;
        for chunk in message.changes.iter() {
            bounded(id, chunk)?;
        }
        if !message
            .have
            .iter()
            .all(|h| doc::bounds::bloom_is_sound(&h.bloom.to_bytes()))
        {
            tracing::debug!(doc = %id, "a peer's sync message carries an unsound bloom filter");
            return Err(malformed_by_peer(id));
        }
        let before = self.heads_before_merge(id)?;
        let target = self.merge_target(id)?;
        let kept = (*id == DocId::School).then(|| message.clone());
        let outcome = from_peer(id, || target.receive_sync_message(state, message));
        if let Some(message) = kept
            && self.school_misfit(&outcome)
            && let Some(admission) = self.school_mismatch(&before, &|d| {
                d.receive_sync_message(&mut automerge::sync::State::new(), message.clone())
            })?
        {
            *state = automerge::sync::State::new();
            self.save_sync_state(peer, id, state);
            return Ok(admission);
        }
        outcome?;
        let admission = self.admit(id, &before)?;
        if !admission.is_clean() {
            *state = automerge::sync::State::new();
        }
        self.save_sync_state(peer, id, state);
        Ok(admission)
    }

    fn heads_before_merge(&mut self, id: &DocId) -> Result<Vec<ChangeHash>> {
        self.ensure_context(id)?;
        Ok(self.doc(id)?.map(Automerge::get_heads).unwrap_or_default())
    }

    /// Loads what judging changes to `id` needs: the school document, and for a private part
    /// the child's shared file.
    fn ensure_context(&mut self, id: &DocId) -> Result<()> {
        self.doc(&DocId::School)?;
        if let DocId::Private(c) | DocId::Staff(c) = id {
            self.doc(&DocId::Child(c.clone()))?;
        }
        Ok(())
    }

    /// Queues a sync state to be saved with the batch (heads known to be shared with `peer`).
    pub fn save_sync_state(&mut self, peer: &str, id: &DocId, state: &automerge::sync::State) {
        self.sync_states.push((
            peer.to_owned(),
            id.clone(),
            heads_text(&state.shared_heads),
            state.encode(),
        ));
    }

    /// Merges encoded changes or a saved document into a document (creating it if absent),
    /// keeping only the changes [`crate::trust`] accepts. Changes already present have no
    /// effect.
    pub fn merge_bytes(&mut self, id: &DocId, bytes: &[u8]) -> Result<Admission> {
        bounded(id, bytes)?;
        let before = self.heads_before_merge(id)?;
        let target = self.merge_target(id)?;
        let outcome = from_peer(id, || target.load_incremental(bytes));
        if *id == DocId::School
            && self.school_misfit(&outcome)
            && let Some(admission) =
                self.school_mismatch(&before, &|d| d.load_incremental(bytes).map(|_| ()))?
        {
            return Ok(admission);
        }
        outcome?;
        self.admit(id, &before)
    }

    /// Whether a peer's school changes did not fit this copy: automerge refused them, or they
    /// left dependencies missing (see [`school_history`]).
    fn school_misfit<T>(&self, outcome: &Result<T>) -> bool {
        outcome.is_err()
            || self
                .docs
                .get(&DocId::School)
                .is_some_and(|d| !automerge::ReadDoc::get_missing_deps(d, &[]).is_empty())
    }

    /// The document to merge a peer's changes into: the stored one, or a new empty one (the
    /// peer's changes bring its whole history, genesis included).
    fn merge_target(&mut self, id: &DocId) -> Result<&mut Automerge> {
        if !self.ensure(id, false)? {
            let mut doc = Automerge::new();
            doc.set_actor(self.actor.clone());
            self.docs.insert(id.clone(), doc);
            self.touched.push((id.clone(), Vec::new()));
        }
        self.docs
            .get_mut(id)
            .ok_or_else(|| Error::not_found("档案", id.key()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::roles::Role;
    use crate::{Archive, SchoolSetup};
    use automerge::ROOT;
    use automerge::transaction::Transactable as _;
    use cache::last_change_seq;

    /// A school with its leadership's device, in `dir`.
    pub(crate) fn school(dir: &Path) -> Archive {
        Archive::create_school(
            &dir.join("shouwang.db"),
            &SchoolSetup {
                name: "郭庄小学".into(),
                town: "丁里镇".into(),
                hotline: None,
                admin_name: "张长友".into(),
                admin_role: Role::Leadership,
                device_label: "校长办公室电脑".into(),
            },
        )
        .unwrap()
    }

    /// A connection that finds its copy of a document current moves the copy's watermark to
    /// the end of the changes table, so its next catch-up reads only what was written after.
    /// (Before, the watermark moved only when the copy gained changes: with two connections
    /// writing by turns, as the hub's archives do, a catch-up read every row the other had
    /// written since, for every document: BENCHMARKS §7.) And a copy found current is not
    /// checked again while nothing is committed, yet a commit from either side is seen.
    #[test]
    fn a_copy_found_current_reads_only_what_is_written_after() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = school(dir.path());
        let path = a.store().path().to_owned();
        let mut other = Store::open(&path).unwrap();
        let class = DocId::parse("class/c3-1").unwrap();
        let note = |store: &mut Store, id: &DocId, text: &str| {
            store
                .write(|b| b.change(id, true, "测试", |tx| Ok(tx.put(ROOT, "note", text)?)))
                .unwrap();
        };
        note(a.store(), &class, "一");
        assert!(a.store().doc(&class).unwrap().is_some());
        let loaded = a.store().docs.watermark(&class).unwrap_or(0);
        // The other connection writes other documents: many rows after the watermark.
        for i in 0..20 {
            note(
                &mut other,
                &DocId::parse(&format!("class/c{i}")).unwrap(),
                "二",
            );
        }
        let last = last_change_seq(&a.store().conn).unwrap();
        assert!(last > loaded + 20, "{loaded} {last}");
        assert!(a.store().doc(&class).unwrap().is_some());
        assert_eq!(
            a.store().docs.watermark(&class),
            Some(last),
            "found current, the copy's watermark moves past the other documents' rows"
        );
        // A commit on either connection is seen at the next read.
        note(&mut other, &class, "三");
        let read = |store: &mut Store| {
            doc::access::get_str(store.doc(&class).unwrap().unwrap(), &ROOT, "note")
        };
        assert_eq!(read(a.store()).as_deref(), Some("三"));
        note(a.store(), &class, "四");
        assert_eq!(read(&mut other).as_deref(), Some("四"));
        assert_eq!(read(a.store()).as_deref(), Some("四"));
        // Many rows since the watermark (read along the document's index entries), one of them
        // this document's.
        for i in 0..40 {
            note(
                &mut other,
                &DocId::parse(&format!("class/d{i}")).unwrap(),
                "五",
            );
            if i == 20 || i == 30 {
                note(&mut other, &class, if i == 20 { "六" } else { "六又六" });
            }
        }
        assert_eq!(read(a.store()).as_deref(), Some("六又六"));
        assert_eq!(
            a.store().docs.watermark(&class),
            Some(last_change_seq(&a.store().conn).unwrap())
        );
        // This connection's own write keeps its copies current without checking them again,
        // and the other connection's next commit is still seen.
        let elsewhere = DocId::parse("class/c0").unwrap();
        note(a.store(), &elsewhere, "七");
        note(&mut other, &class, "八");
        assert_eq!(read(a.store()).as_deref(), Some("八"));
        note(a.store(), &class, "九");
        note(&mut other, &elsewhere, "十");
        assert_eq!(read(a.store()).as_deref(), Some("九"));
        assert_eq!(read(&mut other).as_deref(), Some("九"));
    }

    /// `heads_of` reads what `all_heads` reads for the documents asked, in the same order (key
    /// order, not `DocId`'s), and leaves out those the store does not have: the sync digest
    /// of a scope of named documents is computed from it and must equal the peer's.
    #[test]
    fn heads_of_named_documents_match_all_heads() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = school(dir.path());
        a.store()
            .write(|b| {
                for key in ["class/c3-1", "audit/d1", "contact/m-1"] {
                    b.ensure(&DocId::parse(key).unwrap(), true)?;
                }
                Ok(())
            })
            .unwrap();
        let all = a.store().all_heads().unwrap();
        assert!(all.len() >= 3, "{all:?}");
        let mut asked: std::collections::BTreeSet<DocId> =
            all.iter().map(|(d, _)| d.clone()).collect();
        asked.insert(DocId::parse("child/not-here").unwrap());
        let by_variant: Vec<DocId> = asked.iter().cloned().collect();
        let by_key: Vec<DocId> = all.iter().map(|(d, _)| d.clone()).collect();
        assert_ne!(
            by_variant
                .iter()
                .filter(|d| by_key.contains(d))
                .collect::<Vec<_>>(),
            by_key.iter().collect::<Vec<_>>(),
            "the fixture tells the two orders apart"
        );
        assert_eq!(a.store().heads_of(&asked).unwrap(), all);
        let one = &all[1];
        assert_eq!(a.store().heads_of([&one.0]).unwrap(), vec![one.clone()]);
        // Every copy read, then another connection writes one of them and makes a new one:
        // its copies' heads are no longer taken as stored.
        for (id, _) in &all {
            a.store().doc(id).unwrap();
        }
        let mut other = Store::open(a.store().path()).unwrap();
        other
            .write(|b| {
                b.change(&all[0].0, false, "测试", |tx| Ok(tx.put(ROOT, "x", 1)?))?;
                b.ensure(&DocId::parse("class/c9-9").unwrap(), true)?;
                Ok(())
            })
            .unwrap();
        let now = a.store().all_heads().unwrap();
        assert_ne!(now[0], all[0]);
        asked.insert(DocId::parse("class/c9-9").unwrap());
        assert_eq!(a.store().heads_of(&asked).unwrap(), now);
    }

    /// A document is never left with [`COMPACT_AFTER`] or more loose changes: the write that
    /// would reach that many folds the document into its snapshot, in the same transaction.
    /// (Before, only an app calling `compact()` did, and every load replayed the whole history
    /// change by change: 36 % of the phones' CPU in the storm, BENCHMARKS §7.) Nothing is lost:
    /// the store reopens with every change, and another connection holding a copy from before
    /// reads what was folded in.
    #[test]
    fn a_document_is_folded_into_its_snapshot_before_its_loose_changes_pile_up() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = school(dir.path());
        let path = a.store().path().to_owned();
        let mut other = Store::open(&path).unwrap();
        let class = DocId::parse("class/c3-1").unwrap();
        let loose = |store: &Store, id: &DocId| -> i64 {
            store
                .conn
                .query_row(
                    "SELECT count(*) FROM changes WHERE doc_id = ?1",
                    [id.key()],
                    |r| r.get(0),
                )
                .unwrap()
        };
        let note = |store: &mut Store, id: &DocId, text: &str| {
            store
                .write(|b| b.change(id, true, "测试", |tx| Ok(tx.put(ROOT, "note", text)?)))
                .unwrap();
        };
        note(a.store(), &class, "0");
        // The other connection holds a copy from before.
        assert!(other.doc(&class).unwrap().is_some());
        let rounds = usize::try_from(COMPACT_AFTER).unwrap() + 5;
        for i in 1..=rounds {
            note(a.store(), &class, &i.to_string());
            assert!(loose(a.store(), &class) < COMPACT_AFTER, "after write {i}");
        }
        let heads = a.store().doc(&class).unwrap().unwrap().get_heads();
        assert_eq!(
            a.store()
                .doc(&class)
                .unwrap()
                .unwrap()
                .get_changes(&[])
                .len(),
            rounds + 2,
            "the genesis change and every note"
        );
        let snapshot: Option<Vec<u8>> = a
            .store()
            .conn
            .query_row(
                "SELECT snapshot FROM docs WHERE doc_id = ?1",
                [class.key()],
                |r| r.get(0),
            )
            .unwrap();
        assert!(snapshot.is_some_and(|s| !s.is_empty()));
        // One batch of many changes (an import) is stored folded.
        let big = DocId::parse("class/c3-2").unwrap();
        a.store()
            .write(|b| {
                for i in 0..rounds {
                    b.change(&big, true, "测试", |tx| {
                        Ok(tx.put(ROOT, "note", i as i64)?)
                    })?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(loose(a.store(), &big), 0);
        // The copy from before, and a new connection, read every change.
        let read = |store: &mut Store, id: &DocId| {
            let doc = store.doc(id).unwrap().unwrap();
            (doc.get_heads(), doc::access::get_str(doc, &ROOT, "note"))
        };
        let expected = (heads.clone(), Some(rounds.to_string()));
        assert_eq!(read(&mut other, &class), expected);
        let mut reopened = Store::open(&path).unwrap();
        assert_eq!(read(&mut reopened, &class), expected);
        assert_eq!(
            reopened.doc(&big).unwrap().unwrap().get_changes(&[]).len(),
            rounds + 1
        );
    }

    /// A document is loaded from one state of the database: its snapshot, heads and change
    /// rows are read in one read transaction. Read in separate statements, another
    /// connection's commit in between (a change added, or a document folded into its snapshot)
    /// gave heads that did not match what was loaded, and the document was reported damaged
    /// (seen on the hub during the storm's enrollment, BENCHMARKS §7).
    #[test]
    fn a_document_loaded_while_another_connection_writes_it_is_never_reported_damaged() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = school(dir.path());
        let path = a.store().path().to_owned();
        let class = DocId::parse("class/c3-1").unwrap();
        let note = |store: &mut Store, i: usize| {
            store
                .write(|b| {
                    b.change(&class, true, "测试", |tx| {
                        Ok(tx.put(ROOT, "note", i as i64)?)
                    })
                })
                .unwrap();
        };
        note(a.store(), 0);
        let writes = 3 * usize::try_from(COMPACT_AFTER).unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, class, done) = (path.clone(), class.clone(), done.clone());
            std::thread::spawn(move || {
                let mut store = Store::open(&path).unwrap();
                let mut loads = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    store.clear_cache();
                    if let Err(e) = store.doc(&class) {
                        return Err(format!("load {loads}: {e}"));
                    }
                    loads += 1;
                }
                Ok(loads)
            })
        };
        for i in 1..=writes {
            note(a.store(), i);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let loads = reader.join().unwrap().unwrap();
        assert!(loads > 0);
    }

    /// Compacting on one connection while another writes the same document loses nothing:
    /// the document is loaded under the write lock. (Loaded before it, a change committed in
    /// between was deleted with the rows without being in the snapshot.)
    #[test]
    fn compacting_while_another_connection_writes_loses_no_change() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = school(dir.path());
        let path = a.store().path().to_owned();
        let class = DocId::parse("class/c3-1").unwrap();
        let writes = 500;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let compactor = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut store = Store::open(&path).unwrap();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    store.compact(1).unwrap();
                }
            })
        };
        for i in 0..writes {
            a.store()
                .write(|b| {
                    b.change(&class, true, "测试", |tx| {
                        Ok(tx.put(ROOT, format!("written_{i}"), i as i64)?)
                    })
                })
                .unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        compactor.join().unwrap();
        let mut reopened = Store::open(&path).unwrap();
        let doc = reopened.doc(&class).unwrap().unwrap();
        let keys = automerge::ReadDoc::keys(doc, ROOT)
            .filter(|k| k.starts_with("written_"))
            .count();
        assert_eq!(keys, writes, "every change is in the store");
    }

    /// A damaged automerge document chunk, checksum right (fuzz target `doc_merge`, its
    /// crash-5c2985c2 with the chunk checksum fixed as the target does; RELIABILITY.md).
    pub(super) const HEXANE_PANIC: &[&str] = &[
        "856f4a832851733e00dd03021073686f7577616e672d67656e6573697310ff7605130bcc9bee66b5b471eb12",
        "c8e301366c6110ff0c45129d1b40a23889eed6c883b5d93ced6fe0646d138ad4c97dea080103030313032307",
        "34534003430256020a0106020615452104230d3401420856105789018001027e00017e01007e03087e00ceed",
        "c4d80600017f4fe69fa5e99885e8aeb0e5bd951e733d32313663613535643630303434393366663062396639",
        "3937336466336430326436636662343937396137656361383466373333313834353638643938623165397e00",
        "017f00020700037f00070100037f0307047507656e7472696573046b696e6406736368656d61083030303030",
        "303031026174066465766963650468617368066d656d62657204707265760674617267657404776861740300",
        "08017f03027f7a030102047b04027f0b7f0002017f00070175005614005486048608b6010666d63061756469",
        "7401ceedc4d80666663736303531333062636339626565363662356234373165623132633865333665633365",
        "3639366339383131633066623030613532626537303738323161663636393061353539333363613834653161",
        "3835666364323923623532376631656d653636326463363065637363686f6f6c62756e646c655f6578706f72",
        "740b0001",
    ];

    /// The fuzzer's input that claimed 2⁴⁰ actors in its change columns (RELIABILITY.md crash 5).
    const RUN_OF_BILLIONS: [&str; 29] = [
        "856f4a836a5ecbe000d909021015b960bf5b02e46216b8b0c9f00bca7c1073686f7577616e672d67656e6573",
        "6973013fa0061a9b504685209567d9d98a4b860eb6c297aab4593984cd382b088ff68e080104030513072309",
        "35604004430456020a010602321ddf022105235a3401422756625fe5028001037f010c007e0100ffffffffff",
        "ffff1f057e00cef4c5d8060b0000017d0ce5889be5bbbae5ada6e6a0a10ce6b7bbe58aa0e68890e591980ce6",
        "b7bbe58aa0e78fade7baa7040ce6b7bbe58aa0e68890e59198040ce7bb93e5afb9e5b8aee689b67f18e799bb",
        "e8aeb0e8aebee5a487efbc9ae58898e6a182e585b07f000c017f000b010d07000a11013200000a04037f0406",
        "0502060407030f7f11041403197f1b021e03217f2303267f28032b7f2d03307f320435043a043f04440449ad",
        "914d6edc300c8581663c4ee31ab9428ea01f5b1e5da55d181449c5c24896217926e8ed8b499ad504e8a62b02",
        "7c1f09bec79f2d46a8956b4b7c0dc8f5910bd44be17a388795dac4c971a98f1b8412d6d7da167650b936e512",
        "b91e2b2e9ce056728eed92f718563eac90f8b96e31ecaecf652e39723decf96dedcea4251069ebb94b4a49e3",
        "26ef0d7649ab69242bb5365dd2c69d3c1932d4a50158b055e45597268b445e5b945d723c213a63a57991a3b3",
        "46383f3aa17830b7a52727d07a211cc2842f2349e587411b406b88fc20e464c8681ab47108aadf249c9c0710",
        "7a24d96ffae4941e951b41d87e9ba48093d5931b90fb0d0da332dab9c1b823e01eae1f769b77934f9181b8d4",
        "256c0f67fedd44701c8f1f19f6855f43ddb930cdb0dfcf7efbb130d0bc33e0c2e5d7bb724f3dff7dc427774f",
        "74315f794e79ff527dc27c592bc798bf10bf43c1255c43fd3caf41285c1a5c42a4c30df95ffd7fa4f3070a01",
        "c3000063040203790302037e79020a7e037e120d76050a5f0a7b357605767b5e7d02017f05027f7d03057d02",
        "017c047f067d02017e067d02017e067d02017e067d02017e067d02017e067d02017e067d02017e067d02017f",
        "05027f7f034d03007f0104007e010004010d0002017f0007017f0005017f0003017f0003017f0003017f0015",
        "0103007f6604007e140002c6017e0296010d006f02960100028608d602b601640296010002b601f601029601",
        "0002027e96010002027e660002027e96010002026db6018602b60102b6018602f60102b6018602f60102b601",
        "8602a60186089601b601645d90dd4a55411480e96dec229859336bcdccd3c85e6b665238db2d47eb3ad38396",
        "e241505250395aa8179ef0a2c0a49f87e80de2ccdeedb708bb90f2fee383ef5b9185a6193c5148f69945044b",
        "d4af4fcbdd46b91997e9c5ec76addfdce90f36cbd7497ff0a38cb7357220c5195941b2049ad8b392909562a9",
        "9cc4e0238b67e35d5409d028a3bdf108c67a0d60dac9d9bde8ed69195d978f1fbafdcfbf37f66a1724c66c82",
        "e8e3f577bfdedb6e77bbdb3b9d7d9fd49c9c0853d035bb7d53be7ceaee2ee7f4d36e3c6da717dde5abf67c54",
        "b60edbb3d76574d39e5c956fd7edd15a7bbcd59f1cd586d8e7489122649114588893b10a71d0bc4cf375b3ba",
        "9086b50187316863e831b55c2d0e17979ecfafa64afe27192c644c21137867133d26e17e8bcb998413a266a7",
        "9c05b43a69695e2cada4c1a01962d490ad355449a018b355da512413ad21960a107d0230016236603d861c9c",
        "525ea3ca3e54953c64ffd3f9f3efbc3fcd00000c",
    ];

    /// Fuzzing found that this document, sent by another device, made automerge 0.12 panic
    /// while loading it ("RawColumnIter::take would cross slab boundary", in hexane): a bundle
    /// or a sync frame carrying it killed the app or the hub's connection task. Now the merge is
    /// an error, for any document it is merged into, and the store is as it was.
    #[test]
    fn a_document_that_makes_automerge_panic_is_refused_and_changes_nothing() {
        let bytes = hex::decode(HEXANE_PANIC.concat()).unwrap();
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = school(dir.path());
        let device = a.device().clone();
        let before = a.store().all_heads().unwrap();
        for doc in [
            DocId::Audit(device),
            DocId::Audit(crate::ids::DeviceId::from(
                "00112233445566778899aabbccddeeff",
            )),
            DocId::School,
        ] {
            let err = a
                .store()
                .write(|b| b.merge_bytes(&doc, &bytes))
                .unwrap_err();
            assert!(matches!(err, Error::Corrupt(_)), "{doc}: {err}");
            assert!(err.to_string().contains("已损坏"), "{err}");
            assert_eq!(a.store().all_heads().unwrap(), before, "{doc}");
        }
        // The store still works: the next write goes through.
        a.add_class("三年级(1)班", None).unwrap();
    }

    /// Fuzzing (target `bundle`, 2026-12-04) found a 308-byte document that automerge 0.12
    /// loads without complaint but whose change metadata names operations it does not hold:
    /// reading its changes back (`get_changes`, which admission does to judge them) panicked
    /// (`MissingOps` unwrapped in automerge's change collector), outside the guard around the
    /// load, and took down the import or the hub's session. Now that is an error too, for a
    /// new document and for one the store holds, and the store is as it was.
    #[test]
    fn a_document_whose_changes_cannot_be_read_back_is_refused_and_changes_nothing() {
        let bytes = include_bytes!("../../testdata/missing-ops-contact.automerge");
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = school(dir.path());
        let before = a.store().all_heads().unwrap();
        let contact = DocId::Contact(crate::ids::MemberId::from("mf18fda5eab"));
        for doc in [contact, DocId::School] {
            let err = a.store().write(|b| b.merge_bytes(&doc, bytes)).unwrap_err();
            assert!(matches!(err, Error::Corrupt(_)), "{doc}: {err}");
            assert!(err.to_string().contains("已损坏"), "{err}");
            assert_eq!(a.store().all_heads().unwrap(), before, "{doc}");
        }
        // The half-merged document did not stay in memory: the school reads as stored, and
        // the next write goes through.
        a.add_class("三年级(1)班", None).unwrap();
        assert_eq!(a.store().all_heads().unwrap().len(), before.len());
    }

    /// Fuzzing found that this 1,252-byte document chunk, sent by another device, made
    /// automerge 0.12 allocate more than 4 GB (an RLE run of 2⁴⁰ actors) and the process abort,
    /// which no catch can stop. Now it is refused before automerge reads it (`doc::bounds`),
    /// with one Chinese line, and the store is as it was, through each path a peer's bytes
    /// take: a bundle's entry or a `Changes` frame, a sync message, the scope check of a bundle.
    #[test]
    fn a_document_claiming_billions_of_rows_is_refused_before_automerge_reads_it() {
        let bytes = hex::decode(RUN_OF_BILLIONS.concat()).unwrap();
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = school(dir.path());
        let before = a.store().all_heads().unwrap();
        for doc in [DocId::School, DocId::Child(crate::ids::ChildId::from("c1"))] {
            let err = a
                .store()
                .write(|b| b.merge_bytes(&doc, &bytes))
                .unwrap_err();
            assert!(matches!(err, Error::Corrupt(_)), "{doc}: {err}");
            assert!(err.to_string().contains("远超其大小"), "{err}");
            assert_eq!(a.store().all_heads().unwrap(), before, "{doc}");
        }
        let message = automerge::sync::Message {
            heads: Vec::new(),
            need: Vec::new(),
            have: Vec::new(),
            changes: vec![bytes.clone()].into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        let err = a
            .store()
            .write(|b| {
                b.sync_receive(
                    "peer",
                    &DocId::School,
                    &mut automerge::sync::State::new(),
                    message,
                )
            })
            .unwrap_err();
        assert!(err.to_string().contains("远超其大小"), "{err}");
        assert_eq!(a.store().all_heads().unwrap(), before);
        a.add_class("三年级(1)班", None).unwrap();
    }
}

/// What the user sees when automerge (or calamine, reading a roster) panics on hostile bytes:
/// no English panic text from the default hook, only the Chinese error (`crate::panics`). The
/// work runs in a child process (this test binary again, running `peer_panic_child` alone with
/// its output not captured), since libtest captures a panic message printed inside a test.
#[cfg(test)]
mod panic_output {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const CHILD: &str = "SHOUWANG_PEER_PANIC_CHILD";

    /// Runs one test of this binary in a child process; returns its stderr.
    fn run_child(test: &str, mode: &str) -> String {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, mode)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "{test} failed: {stderr}{}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// The child: merges a document that makes automerge panic (mode `panic`) or bytes automerge
    /// refuses with its own English error (mode `refused`), and prints the error as the CLI
    /// does. In mode `elsewhere` it then panics outside `from_peer` (caught here), which must
    /// still be printed.
    #[test]
    fn peer_panic_child() {
        let Some(mode) = std::env::var_os(CHILD) else {
            return;
        };
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = tests::school(dir.path());
        let bytes = hex::decode(tests::HEXANE_PANIC.concat()).unwrap();
        let err = if mode == "roster" {
            // calamine panics on this .xlsx in a build with overflow checks (the fuzz build's
            // find; a test build has them too): the roster catches it.
            let path = dir.path().join("名单.xlsx");
            std::fs::write(
                &path,
                include_bytes!("../../testdata/roster-cell-reference-overflow.xlsx"),
            )
            .unwrap();
            crate::roster::read_file(&path).unwrap_err()
        } else if mode == "refused" {
            // A sync message automerge cannot decode, as a session decodes a peer's.
            from_peer(&DocId::School, || automerge::sync::Message::decode(&bytes)).unwrap_err()
        } else {
            a.store()
                .write(|b| b.merge_bytes(&DocId::School, &bytes))
                .unwrap_err()
        };
        eprintln!("错误：{err}");
        if mode == "elsewhere" {
            let caught = std::panic::catch_unwind(|| panic!("a bug elsewhere"));
            assert!(caught.is_err());
        }
    }

    /// True if `text` holds a run of two or more ASCII words (English prose), e.g.
    /// "thread 'x' panicked at", "invalid magic bytes".
    fn has_english(text: &str) -> bool {
        let words: Vec<&str> = text
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() > 1)
            .collect();
        !words.is_empty()
    }

    #[test]
    fn a_caught_automerge_panic_prints_only_the_chinese_error() {
        let err = run_child("store::panic_output::peer_panic_child", "panic");
        assert!(!err.contains("panicked"), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {err}");
        assert!(lines[0].starts_with("错误：文件已损坏"), "{err}");
        assert!(lines[0].contains("学校信息"), "{err}");
        assert!(!has_english(lines[0]), "{err}");
    }

    #[test]
    fn automerges_own_error_reaches_the_user_in_chinese() {
        let err = run_child("store::panic_output::peer_panic_child", "refused");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {err}");
        assert!(lines[0].starts_with("错误：文件已损坏"), "{err}");
        assert!(!has_english(lines[0]), "{err}");
    }

    #[test]
    fn a_caught_calamine_panic_prints_only_the_chinese_error() {
        let err = run_child("store::panic_output::peer_panic_child", "roster");
        assert!(!err.contains("panicked"), "{err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {err}");
        assert!(lines[0].starts_with("错误：名单文件"), "{err}");
        assert!(!has_english(lines[0]), "{err}");
    }

    #[test]
    fn a_panic_elsewhere_is_still_printed() {
        let err = run_child("store::panic_output::peer_panic_child", "elsewhere");
        assert!(err.contains("a bug elsewhere"), "{err}");
        assert!(err.contains("panicked"), "{err}");
        assert_eq!(err.matches("panicked").count(), 1, "{err}");
    }
}
