//! Keeping the store in shape: rebuilding its projections, purging documents with every
//! trace of them, and folding documents into their snapshots (module docs, "Compaction" and
//! "Purging").

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::cache::load_doc;
use super::persist::{self, store_as_snapshot};
use super::{BUSY_TIMEOUT, Store, conflicted, doc_label, projection};
use crate::doc::DocId;
use crate::error::{Error, Result};

/// Set (in `meta`) by a purge in the transaction that removes the rows, cleared once the store
/// file and its WAL hold none of their bytes (see [`Store::purge`]). Its value says what is
/// left, the rebuild ([`VACUUM_DUE`]) or only the fold ([`FOLD_DUE`]), followed by a mark that
/// tells one setting from another: a connection clears only the setting it finished.
pub(super) const SCRUB_DUE: &str = "scrub_due";
pub(super) const VACUUM_DUE: &str = "vacuum";
pub(super) const FOLD_DUE: &str = "fold";

fn set_scrub_due(conn: &rusqlite::Connection, what: &str) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        [SCRUB_DUE, &due_value(what)],
    )?;
    Ok(())
}

/// Replaces the `scrub_due` value `before` with a new one saying `what` is left; `None` if
/// another connection had set it anew (then that setting stays for its own scrub).
fn replace_scrub_due(
    conn: &rusqlite::Connection,
    before: &str,
    what: &str,
) -> Result<Option<String>> {
    let value = due_value(what);
    let changed = conn.execute(
        "UPDATE meta SET value = ?3 WHERE key = ?1 AND value = ?2",
        [SCRUB_DUE, before, value.as_str()],
    )?;
    Ok((changed == 1).then_some(value))
}

fn due_value(what: &str) -> String {
    let mark = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{what} {mark} {}", std::process::id())
}

/// A `meta` key and how a purge rewrites its value ([`Store::purge_noting`]): given the value
/// and the documents the purge removed, the new value.
pub type PurgeNote<'a> = (&'a str, &'a dyn Fn(&str, &[DocId]) -> String);

impl Store {
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
        tx.execute(
            "DELETE FROM meta WHERE key = ?1",
            [super::migrations::PROJECTIONS_STALE],
        )?;
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
    /// folded back and truncated, so that (with `secure_delete`, which zeroes what a delete
    /// frees) none of their bytes remain in the store file or its WAL. Returns how many
    /// documents were removed.
    ///
    /// Another connection in the way (a writer when the file is rebuilt, a reader past the
    /// busy timeout when the WAL is folded back) leaves the scrub unfinished: the purge is
    /// done all the same (its rows are gone), and `scrub_due`, written in the transaction that
    /// removed them, stays until a later [`Store::scrub_if_due`] (every purge, and the hub's
    /// watcher at each tick) finishes it: the rebuild again if it did not run, else the fold.
    pub fn purge(&mut self, ids: &[DocId]) -> Result<usize> {
        self.purge_remembering(ids, &[])
    }

    /// [`Store::purge`], remembering that this store dropped `remembered` (of `ids`: the
    /// documents it may see again, a class or a part given back later). A local write never
    /// starts one of them afresh: its changes there would be numbered from 1 again under this
    /// device's actor, which a peer holding the earlier ones refuses for good (automerge's
    /// "duplicate seq"), so every later sync with it would fail. Such a write is refused
    /// until a peer brings the document back (`Batch::change`). Only a document holding this
    /// device's own changes needs it (a copy started afresh where it wrote nothing numbers
    /// nothing twice). A document purged and not remembered loses its mark (an erased
    /// child's: `Archive::purge_out_of_scope` lists the marks of her documents too).
    pub fn purge_remembering(&mut self, ids: &[DocId], remembered: &[DocId]) -> Result<usize> {
        self.purge_unless_written(ids, remembered, None)
    }

    /// [`Store::purge_remembering`] of what was decided on the heads in `seen` (each
    /// document's stored heads when the decision began, as [`Store::heads_of`] gives them; a
    /// document missing there had none): one written since by another connection (the app
    /// saving a 家访 while its sync decides) is left as it is, for the next purge to judge.
    /// Checked inside the purge's own transaction, so no write can fall between.
    pub fn purge_unless_written(
        &mut self,
        ids: &[DocId],
        remembered: &[DocId],
        seen: Option<&[(DocId, String)]>,
    ) -> Result<usize> {
        self.purge_noting(ids, remembered, seen, None)
    }

    /// [`Store::purge_unless_written`], rewriting in the same transaction the `meta` value
    /// under `note`'s key with its function, given the value and the documents this purge
    /// removed (what she is told of work that went with them: `Archive::take_not_carried`).
    pub fn purge_noting(
        &mut self,
        ids: &[DocId],
        remembered: &[DocId],
        seen: Option<&[(DocId, String)]>,
        note: Option<PurgeNote<'_>>,
    ) -> Result<usize> {
        if ids.is_empty() && note.is_none() {
            self.scrub_if_due_quietly();
            return Ok(0);
        }
        // What each remembered copy holds of this device's own work, with what an earlier
        // mark recorded (a copy brought back without it and dropped again still lacks it).
        let device = crate::ids::device_hex(&self.actor);
        let mut marks = Vec::new();
        for id in remembered.iter().filter(|d| ids.contains(d)) {
            let mut tips = super::purged_tips(&self.conn, id)?.unwrap_or_default();
            // A copy whose bytes no longer load (`Archive::drop_damaged`) is remembered with
            // what an earlier mark said: its own changes cannot be read.
            let held = match self.doc(id) {
                Err(Error::Damaged { .. }) => None,
                other => other?,
            };
            if let Some(doc) = held {
                for tip in crate::doc::own_tips(doc, &device) {
                    if !tips.contains(&tip) {
                        tips.push(tip);
                    }
                }
            }
            marks.push((id.key(), super::encode_tips(&tips)));
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mut removed, mut rows) = (0, 0);
        let mut left = Vec::new();
        for id in ids {
            if let Some(seen) = seen {
                let was = seen
                    .iter()
                    .find(|(d, _)| d == id)
                    .map_or("", |(_, h)| h.as_str());
                let now: Option<String> = tx
                    .prepare_cached("SELECT heads FROM docs WHERE doc_id = ?1")?
                    .query_row([id.key()], |r| r.get(0))
                    .optional()?;
                if now.as_deref().unwrap_or("") != was {
                    left.push(id.key());
                    continue;
                }
            }
            let gone = persist::forget(&tx, id)?;
            removed += gone.docs;
            rows += gone.rows;
        }
        if let Some((key, rewrite)) = note {
            let was = super::meta_get(&tx, key)?.unwrap_or_default();
            let purged: Vec<DocId> = ids
                .iter()
                .filter(|d| !left.contains(&d.key()))
                .cloned()
                .collect();
            let now = rewrite(&was, &purged);
            if now != was {
                tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
                    .execute(rusqlite::params![key, now])?;
                // The value it replaces may have named a child now erased: scrubbed below.
                rows += 1;
            }
        }
        for (key, tips) in marks.iter().filter(|(k, _)| !left.contains(k)) {
            tx.prepare_cached("INSERT OR REPLACE INTO purged (doc_id, tips) VALUES (?1, ?2)")?
                .execute(rusqlite::params![key, tips])?;
        }
        // Any row gone leaves its bytes in free pages: a refused change of a document never
        // stored (quarantine) as much as a document.
        if rows > 0 {
            set_scrub_due(&tx, VACUUM_DUE)?;
        }
        tx.commit()?;
        for id in ids {
            self.docs.remove(id);
        }
        if rows > 0 {
            if !self.scrub()? {
                tracing::warn!("another connection kept the store from being scrubbed; later");
            }
        } else {
            self.scrub_if_due_quietly();
        }
        Ok(removed)
    }

    /// The documents this store dropped and remembers ([`Store::purge_remembering`]).
    pub fn purged_marks(&self) -> Result<Vec<DocId>> {
        super::doc_id_rows(&self.conn, "SELECT doc_id FROM purged")
    }

    /// Rewrites the database without its free pages (the temporary copy stays in memory, never
    /// in a temporary file), then folds the WAL into it and truncates it. `false` if another
    /// connection kept either step from finishing (`scrub_due` then says which is left).
    pub(super) fn scrub(&mut self) -> Result<bool> {
        let due = self.meta(SCRUB_DUE)?;
        self.scrub_pass(due, true)
    }

    /// One scrub: the rebuild when `vacuum`, then the fold. `due` is the `scrub_due` value this
    /// pass answers: after a rebuild it says only the fold is left, and it is cleared when the
    /// fold is done, unless another connection set it anew meanwhile.
    fn scrub_pass(&mut self, mut due: Option<String>, vacuum: bool) -> Result<bool> {
        if vacuum {
            match self
                .conn
                .execute_batch("PRAGMA temp_store = MEMORY; VACUUM; PRAGMA temp_store = DEFAULT;")
            {
                Ok(()) => {}
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if matches!(
                        f.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) =>
                {
                    self.conn.execute_batch("PRAGMA temp_store = DEFAULT;")?;
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
            if let Some(before) = due {
                due = replace_scrub_due(&self.conn, &before, FOLD_DUE)?;
            }
        }
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Ok(false);
        }
        if let Some(value) = due {
            self.conn.execute(
                "DELETE FROM meta WHERE key = ?1 AND value = ?2",
                [SCRUB_DUE, value.as_str()],
            )?;
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(true)
    }

    /// Finishes a scrub a purge or a re-basing left unfinished (`scrub_due`), waiting for
    /// other connections at most a tenth of a second: cheap to call often (one `meta` read
    /// when nothing is due). Whether nothing is left due.
    pub fn scrub_if_due(&mut self) -> Result<bool> {
        let Some(due) = self.meta(SCRUB_DUE)? else {
            return Ok(true);
        };
        let vacuum = due.starts_with(VACUUM_DUE);
        self.conn
            .busy_timeout(std::time::Duration::from_millis(100))?;
        let done = self.scrub_pass(Some(due), vacuum);
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        done
    }

    /// [`Store::scrub_if_due`] for a caller whose own work is done: a failure is logged, the
    /// scrub left due.
    fn scrub_if_due_quietly(&mut self) {
        if let Err(e) = self.scrub_if_due() {
            tracing::warn!("scrub left for later: {e}");
        }
    }

    /// Marks the store to be scrubbed ([`Store::scrub_if_due`]), for bytes left in free pages
    /// or the WAL by a write that could not scrub at once.
    pub(super) fn scrub_later(&mut self) -> Result<()> {
        set_scrub_due(&self.conn, VACUUM_DUE)
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
                return Err(Error::Corrupt(format!(
                    "{}整理后未能通过校验，已保留原样，没有改动",
                    doc_label(&id)
                )));
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

/// Overwrites the file at `path` with zeros, makes that durable, and deletes it: what it held
/// (a store's pages, a key, a ticket) is not left in the blocks it frees for the next reader
/// of the disk. (On flash storage the overwrite may land elsewhere: the file's own encryption
/// is what protects it there.)
pub fn wipe_file(path: &std::path::Path) -> Result<()> {
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    zero_file(f)?;
    std::fs::remove_file(path)?;
    Ok(())
}

/// Overwrites the whole of the open file `f` with zeros, from its start, and syncs it: what
/// [`wipe_file`] does before deleting, for a file whose name already went (replaced by a
/// rename, its bytes still on the disk).
pub fn zero_file(mut f: std::fs::File) -> Result<()> {
    use std::io::{Seek, Write};
    let len = f.metadata()?.len();
    f.seek(std::io::SeekFrom::Start(0))?;
    let zeros = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    Ok(())
}
