//! The documents a store holds in memory, and how each copy is kept true to the database.
//!
//! A copy is loaded once (snapshot plus stored changes) and kept across writes. Another
//! connection to the same file (the hub's other archives, a phone's second connection during a
//! sync, the CLI) may write the same document in between, so before a copy is used it is
//! caught up with what the database holds ([`DocCache::refresh`]), and loaded again only when
//! that fails. With each loaded copy goes a watermark: a `changes.seq` up to which every
//! stored change of the document is in the copy, so a catch-up reads only the rows written
//! after it.
//!
//! Correctness never rests on the watermark: a copy is used only when its heads are the
//! stored heads. A wrong or missing watermark costs a scan of the document's hashes, or a
//! reload. The watermark moves whenever a copy is found current, not only when it gains
//! changes: a catch-up then reads only what was written since this connection last looked at
//! the document. (Before, a document the other archive wrote was read from the watermark of
//! its last change here, through every row the storm had written since: BENCHMARKS §7.)
//!
//! A copy checked against the database is not checked again until something was committed:
//! by another connection (`PRAGMA data_version` moved) or by this one (its count of changed
//! rows moved). Reading a document nobody wrote since costs no query of its rows.

use std::collections::HashMap;

use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use rusqlite::{Connection, OptionalExtension};

use super::{doc_label, heads_text};
use crate::doc::DocId;
use crate::error::{Error, Result};

/// The cached copies, by document, with their watermarks.
#[derive(Debug, Default)]
pub(super) struct DocCache {
    docs: HashMap<DocId, Automerge>,
    /// Per loaded copy, the `changes.seq` up to which every stored change of it is in the copy.
    seen: HashMap<DocId, i64>,
    /// Per copy, the database's [`Stamp`] when the copy was last found current.
    checked: HashMap<DocId, Stamp>,
    /// Per copy holding changes automerge set aside (what they rest on is not in it), who
    /// sent them ([`DocCache::drop_set_aside_unless_from`]).
    set_aside: HashMap<DocId, Origin>,
}

/// Who sent the changes a merge applies: the peer (or file) they came from, and what the
/// connection proved of it.
pub(super) type Origin = (String, super::Sender);

/// What has been committed to the database, as one connection can tell cheaply: commits of
/// other connections (`PRAGMA data_version`) and rows this connection changed. Equal stamps:
/// nothing was committed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    others: i64,
    mine: u64,
}

pub(super) fn stamp(conn: &Connection) -> Result<Stamp> {
    Ok(Stamp {
        others: conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?,
        mine: conn.total_changes(),
    })
}

impl DocCache {
    /// The cached copy of `id`, as it is (use [`DocCache::current`] to read the database's).
    pub(super) fn get(&self, id: &DocId) -> Option<&Automerge> {
        self.docs.get(id)
    }

    pub(super) fn get_mut(&mut self, id: &DocId) -> Option<&mut Automerge> {
        self.docs.get_mut(id)
    }

    pub(super) fn contains_key(&self, id: &DocId) -> bool {
        self.docs.contains_key(id)
    }

    /// Caches `doc` as the copy of `id` (a new document, a new generation, a compaction, a
    /// rebuilt one). It keeps the watermark of the copy it replaces, if any: [`catch_up`]
    /// never trusts that beyond checking the heads.
    pub(super) fn insert(&mut self, id: DocId, doc: Automerge) -> Option<Automerge> {
        self.checked.remove(&id);
        self.docs.insert(id, doc)
    }

    /// Forgets the copy of `id` and its watermark (it is loaded again on next use).
    pub(super) fn remove(&mut self, id: &DocId) -> Option<Automerge> {
        self.seen.remove(id);
        self.checked.remove(id);
        self.set_aside.remove(id);
        self.docs.remove(id)
    }

    /// Before `from`'s changes are merged into the copy of `id`: drops the changes an earlier
    /// merge left set aside in it (automerge keeps a change whose dependencies are missing,
    /// and applies it as soon as they arrive), unless `from` sent them. Applied with the
    /// changes of another sender, they would be judged as that sender's: a member's change
    /// under the office's actor, set aside on top of an office change this copy lacks, would
    /// be taken as the office's once the office sends its own (trust story 19). The same
    /// sender may complete what it began (automerge's sync sends what a bloom filter hid).
    pub(super) fn drop_set_aside_unless_from(&mut self, id: &DocId, from: &Origin) -> Result<()> {
        if self.set_aside.get(id) == Some(from) {
            return Ok(());
        }
        self.drop_set_aside(id)
    }

    /// Drops the changes set aside in the copy of `id`, whoever sent them: before this device
    /// applies a change of its own making to it (`Batch::upgrade_layout`, `Batch::change_at`),
    /// which automerge would apply them with, unjudged, as this device's write.
    pub(super) fn drop_set_aside(&mut self, id: &DocId) -> Result<()> {
        let Some(doc) = self.docs.get(id) else {
            return Ok(());
        };
        if doc.get_missing_deps(&[]).is_empty() {
            return Ok(());
        }
        // The applied history alone, rebuilt (a rare path: an honest peer never leaves a
        // change without what it rests on beyond one exchange).
        let mut clean = doc.fork_at(&doc.get_heads()).map_err(|e| {
            tracing::warn!(doc = %id, error = %e, "could not rebuild a copy without set-aside changes");
            damaged(id)
        })?;
        clean.set_actor(doc.get_actor().clone());
        self.docs.insert(id.clone(), clean);
        self.set_aside.remove(id);
        Ok(())
    }

    /// After `from`'s changes were merged into the copy of `id`: remembers `from` if some of
    /// them were set aside.
    pub(super) fn note_set_aside(&mut self, id: &DocId, from: &Origin) {
        match self.docs.get(id) {
            Some(d) if !d.get_missing_deps(&[]).is_empty() => {
                self.set_aside.insert(id.clone(), from.clone());
            }
            _ => {
                self.set_aside.remove(id);
            }
        }
    }

    pub(super) fn values_mut(&mut self) -> impl Iterator<Item = &mut Automerge> {
        self.docs.values_mut()
    }

    /// Brings the cached copy of `id`, if any, up to what the database holds, or drops it
    /// (it is loaded again on next use, which reports any damage).
    pub(super) fn refresh(&mut self, conn: &Connection, id: &DocId) -> Result<()> {
        let Some(d) = self.docs.get_mut(id) else {
            return Ok(());
        };
        // Read before the check: a commit after it moves the stamp, and the next use checks
        // again.
        let now = stamp(conn)?;
        if self.checked.get(id) == Some(&now) {
            return Ok(());
        }
        let school_before = (*id == DocId::School).then(|| d.get_heads());
        if catch_up(conn, id, d, &mut self.seen)? {
            self.checked.insert(id.clone(), now);
            if school_before.is_some_and(|h| self.docs.get(id).map(Automerge::get_heads) != Some(h))
            {
                self.forget_erased();
            }
        } else {
            self.remove(id);
        }
        Ok(())
    }

    /// Drops the copies of the documents of every child the school document records as
    /// erased. Another connection's erasure purges the database, and a copy is dropped when
    /// next used ([`catch_up`] finds it gone), but a copy this connection never uses again
    /// would keep the child's file decoded in memory for as long as the connection lives (the
    /// hub's archives, the console's): so it goes as soon as this connection sees the school
    /// change.
    fn forget_erased(&mut self) {
        let Some(school) = self.docs.get(&DocId::School) else {
            return;
        };
        let erased = crate::school::erased_children(school);
        if erased.is_empty() {
            return;
        }
        let gone: Vec<DocId> = self
            .docs
            .keys()
            .filter(|d| d.child().is_some_and(|c| erased.contains(c)))
            .cloned()
            .collect();
        for id in &gone {
            self.remove(id);
        }
    }

    /// The documents held decoded in memory.
    pub(super) fn ids(&self) -> impl Iterator<Item = &DocId> {
        self.docs.keys()
    }

    /// Loads `id` from the database if no copy is cached. `false` if the store does not have
    /// the document.
    pub(super) fn load(&mut self, conn: &Connection, id: &DocId, actor: &ActorId) -> Result<bool> {
        if self.docs.contains_key(id) {
            return Ok(true);
        }
        // Read before the load: every change up to it is in what is loaded.
        let seq = last_change_seq(conn)?;
        match load_doc(conn, id, actor)? {
            Some(d) => {
                self.docs.insert(id.clone(), d);
                self.seen.insert(id.clone(), seq);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The stored heads of `id` as its copy knows them, if the copy was found current at
    /// `now` (nothing committed since): `Some(None)` for a copy of a document the store does
    /// not have. `None`: ask the database.
    pub(super) fn known_heads(&self, id: &DocId, now: Stamp) -> Option<Option<String>> {
        if self.checked.get(id) != Some(&now) {
            return None;
        }
        let heads = self.docs.get(id)?.get_heads();
        Some((!heads.is_empty()).then(|| heads_text(&heads)))
    }

    /// The watermark of the copy of `id` (tests).
    #[cfg(test)]
    pub(super) fn watermark(&self, id: &DocId) -> Option<i64> {
        self.seen.get(id).copied()
    }

    /// A current copy of `id`: caught up, or loaded. `None` if the store does not have it.
    pub(super) fn current(
        &mut self,
        conn: &Connection,
        id: &DocId,
        actor: &ActorId,
    ) -> Result<Option<&Automerge>> {
        self.refresh(conn, id)?;
        self.load(conn, id, actor)?;
        Ok(self.docs.get(id))
    }

    /// After this connection committed a write that began at `before` (read inside the write
    /// transaction, so every other connection's commit up to the write lock is in it): the
    /// documents it wrote are current, and so is every copy found current during or just
    /// before it, since a write changes only the documents it touches. They are not checked
    /// again until the next commit. (Without this, a device's own write made every copy be
    /// checked again at the next read: two queries per document per 家访 saved.)
    pub(super) fn committed(&mut self, before: Stamp, mine_after: u64, touched: &[DocId]) {
        let after = Stamp {
            others: before.others,
            mine: mine_after,
        };
        for s in self.checked.values_mut() {
            if s.others == before.others && (before.mine..=mine_after).contains(&s.mine) {
                *s = after;
            }
        }
        for id in touched {
            if self.docs.contains_key(id) {
                self.checked.insert(id.clone(), after);
            }
        }
    }

    /// Forgets every copy (each is loaded again on next use).
    pub(super) fn clear(&mut self) {
        self.docs.clear();
        self.seen.clear();
        self.checked.clear();
        self.set_aside.clear();
    }
}

/// A document whose stored bytes no longer load (see [`Error::Damaged`]).
fn damaged(id: &DocId) -> Error {
    Error::Damaged {
        what: doc_label(id),
        doc: id.key(),
    }
}

/// Loads a document, reporting damaged bytes (an automerge checksum or a damaged SQLite page
/// under its rows) as [`Error::Damaged`] for that document alone.
pub(super) fn load_doc(
    conn: &Connection,
    id: &DocId,
    actor: &ActorId,
) -> Result<Option<Automerge>> {
    load_doc_raw(conn, id, actor).map_err(|e| match e {
        Error::Corrupt(_) => damaged(id),
        Error::Storage(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::DatabaseCorrupt =>
        {
            damaged(id)
        }
        other => other,
    })
}

fn load_doc_raw(conn: &Connection, id: &DocId, actor: &ActorId) -> Result<Option<Automerge>> {
    let key = id.key();
    // The snapshot, the heads and the change rows from one state of the database: read in
    // separate statements, another connection's commit in between (a change added, the
    // document folded into its snapshot) would give heads that do not match what was loaded,
    // and a sound document would be reported damaged. Inside a write, the write's
    // transaction already holds one state. (The read transaction only reads: dropping it
    // rolls back nothing.)
    let _one_state = if conn.is_autocommit() {
        Some(conn.unchecked_transaction()?)
    } else {
        None
    };
    let row: Option<(Option<Vec<u8>>, String)> = conn
        .prepare_cached("SELECT snapshot, heads FROM docs WHERE doc_id = ?1")?
        .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((snapshot, stored_heads)) = row else {
        return Ok(None);
    };
    let mut doc = match snapshot {
        Some(bytes) if !bytes.is_empty() => {
            Automerge::load(&bytes).map_err(|e| Error::Corrupt(format!("{key}: {e}")))?
        }
        _ => Automerge::new(),
    };
    // Each row is one change, parsed (and its checksum checked) on its own: automerge's
    // `load_incremental` stops at the first bad chunk and keeps what came before without an
    // error, which would show a damaged file as a silently shorter one.
    let mut stmt =
        conn.prepare_cached("SELECT bytes FROM changes WHERE doc_id = ?1 ORDER BY seq")?;
    let mut rows = stmt.query([&key])?;
    let mut changes = Vec::new();
    while let Some(row) = rows.next()? {
        let bytes: Vec<u8> = row.get(0)?;
        changes.push(
            automerge::Change::from_bytes(bytes)
                .map_err(|e| Error::Corrupt(format!("{key}: {e}")))?,
        );
    }
    if !changes.is_empty() {
        doc.apply_changes(changes)
            .map_err(|e| Error::Corrupt(format!("{key}: {e}")))?;
    }
    // The heads are hashes over every change's content: a damaged byte anywhere in what was
    // loaded gives other heads than those written with it.
    if !stored_heads.is_empty() && heads_text(&doc.get_heads()) != stored_heads {
        return Err(Error::Corrupt(format!(
            "{key}: heads differ from those stored"
        )));
    }
    doc.set_actor(actor.clone());
    Ok(Some(doc))
}

/// At most this many rows written since a copy's watermark, a catch-up reads them along the
/// table (about four rows to a page); more, along the document's index entries.
const ROWID_SCAN_ROWS: i64 = 32;

/// The highest `changes.seq` stored now (0 if none): read before a document is loaded, every
/// change of it up to this one is in the loaded copy.
pub(super) fn last_change_seq(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM changes")?
        .query_row([], |r| r.get(0))?)
}

/// Brings the cached copy of a document up to what the database holds (another connection
/// may have written since it was loaded): applies the stored changes the copy lacks rather
/// than loading the document again. On the hub, whose archives write the same documents by
/// turns, and on a phone after a sync on its second connection, that is a few changes against
/// a whole document's load.
///
/// With a watermark in `seen` (every stored change of the document up to that `seq` is in the
/// copy), only the rows after it are read, along the table's rowid: a few rows, however long
/// the document's history (the school document's is thousands of changes). Without one, or if
/// those rows do not bring the copy to the stored heads, every stored hash of the document is
/// checked (`changes_by_doc`).
///
/// `false`: the copy cannot be brought up to date this way (the document was compacted or
/// rewritten, purged, or a stored change does not parse) and must be loaded again, which
/// reports any damage. Whatever the watermark says, the copy is used only if it then has the
/// stored heads.
fn catch_up(
    conn: &Connection,
    id: &DocId,
    doc: &mut Automerge,
    seen: &mut HashMap<DocId, i64>,
) -> Result<bool> {
    let key = id.key();
    // Read before the heads: every change up to it is in what they name.
    let before = last_change_seq(conn)?;
    let stored: Option<String> = conn
        .prepare_cached("SELECT heads FROM docs WHERE doc_id = ?1")?
        .query_row([&key], |r| r.get(0))
        .optional()?;
    let Some(stored) = stored else {
        // Never stored (an empty document a peer asked about), or purged since it was loaded.
        seen.remove(id);
        return Ok(doc.get_heads().is_empty());
    };
    if stored == heads_text(&doc.get_heads()) {
        // Current: the next catch-up reads only what is written from here on.
        let mark = seen.entry(id.clone()).or_insert(before);
        *mark = (*mark).max(before);
        return Ok(true);
    }
    if let Some(&from) = seen.get(id) {
        // Read first: every row up to it is among those read below, so the watermark moves
        // past the other documents' rows too (or the next catch-up would read them again).
        let now = last_change_seq(conn)?;
        // A few rows since the watermark: read along the rowid (every document's rows, each
        // with its bytes). More: along the document's own entries of `changes_by_doc` (its
        // whole history, but small index entries), reading only its new rows' bytes. On the
        // hub, whose archives write by turns, hundreds of rows can separate two looks at one
        // document.
        let sql = if now - from <= ROWID_SCAN_ROWS {
            "SELECT seq, bytes FROM changes WHERE seq > ?1 AND +doc_id = ?2"
        } else {
            "SELECT seq, bytes FROM changes WHERE doc_id = ?2 AND +seq > ?1 ORDER BY seq"
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query(rusqlite::params![from, &key])?;
        let (mut changes, mut last) = (Vec::new(), now.max(from));
        while let Some(row) = rows.next()? {
            last = last.max(row.get::<_, i64>(0)?);
            match automerge::Change::from_bytes(row.get::<_, Vec<u8>>(1)?) {
                Ok(c) => changes.push(c),
                Err(_) => return Ok(false),
            }
        }
        if !changes.is_empty() && doc.apply_changes(changes).is_err() {
            return Ok(false);
        }
        if stored == heads_text(&doc.get_heads()) {
            seen.insert(id.clone(), last);
            return Ok(true);
        }
    }
    let watermark = last_change_seq(conn)?;
    let mut missing = Vec::new();
    {
        let mut stmt = conn.prepare_cached("SELECT hash FROM changes WHERE doc_id = ?1")?;
        let mut rows = stmt.query([&key])?;
        while let Some(row) = rows.next()? {
            let hash: Vec<u8> = row.get(0)?;
            match ChangeHash::try_from(hash.as_slice()) {
                Ok(h) if crate::doc::has_change(doc, &h) => {}
                Ok(_) => missing.push(hash),
                Err(_) => return Ok(false),
            }
        }
    }
    if missing.is_empty() {
        return Ok(false);
    }
    let mut changes = Vec::with_capacity(missing.len());
    let mut stmt =
        conn.prepare_cached("SELECT bytes FROM changes WHERE doc_id = ?1 AND hash = ?2")?;
    for hash in missing {
        let bytes: Vec<u8> = stmt.query_row(rusqlite::params![&key, hash], |r| r.get(0))?;
        match automerge::Change::from_bytes(bytes) {
            Ok(c) => changes.push(c),
            Err(_) => return Ok(false),
        }
    }
    if doc.apply_changes(changes).is_err() {
        return Ok(false);
    }
    let current = stored == heads_text(&doc.get_heads());
    if current {
        seen.insert(id.clone(), watermark);
    }
    Ok(current)
}
