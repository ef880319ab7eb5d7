//! Keeping the store in shape: rebuilding its projections, purging documents with every
//! trace of them, and folding documents into their snapshots (module docs, "Compaction" and
//! "Purging").

use rusqlite::TransactionBehavior;

use super::cache::load_doc;
use super::persist::{self, store_as_snapshot};
use super::{BUSY_TIMEOUT, Store, conflicted, doc_label, projection};
use crate::doc::DocId;
use crate::error::{Error, Result};

/// Set (in `meta`) by a purge in the transaction that removes the rows, cleared once the store
/// file and its WAL hold none of their bytes (see [`Store::purge`]).
pub(super) const SCRUB_DUE: &str = "scrub_due";

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
    /// If another connection keeps reading past the busy timeout, the WAL cannot all reach the
    /// store file yet: the old pages may still be there. The purge is done all the same (its
    /// rows are gone), and `scrub_due`, written in the transaction that removed them, stays
    /// until a later [`Store::scrub_if_due`] (every purge, and the hub's watcher at each tick)
    /// gets the WAL folded back.
    pub fn purge(&mut self, ids: &[DocId]) -> Result<usize> {
        if ids.is_empty() {
            self.scrub_if_due()?;
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut removed = 0;
        for id in ids {
            removed += persist::forget(&tx, id)?;
        }
        if removed > 0 {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, '1')",
                [SCRUB_DUE],
            )?;
        }
        tx.commit()?;
        for id in ids {
            self.docs.remove(id);
        }
        if removed > 0 {
            if !self.scrub()? {
                tracing::warn!("a reader kept the store from being scrubbed; scrubbed later");
            }
        } else {
            self.scrub_if_due()?;
        }
        Ok(removed)
    }

    /// Rewrites the database without its free pages (the temporary copy stays in memory, never
    /// in a temporary file), then folds the WAL into it and truncates it ([`Store::fold_wal`]).
    /// `false` if a reader kept the WAL from being folded back (`scrub_due` then stays).
    pub(super) fn scrub(&mut self) -> Result<bool> {
        match self
            .conn
            .execute_batch("PRAGMA temp_store = MEMORY; VACUUM; PRAGMA temp_store = DEFAULT;")
        {
            // A reader in the way: what the delete freed is zeroed already (`secure_delete`);
            // the WAL still has to reach the file.
            Err(rusqlite::Error::SqliteFailure(f, _))
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                self.conn.execute_batch("PRAGMA temp_store = DEFAULT;")?;
            }
            other => other?,
        }
        self.fold_wal()
    }

    /// Folds the WAL into the store file and truncates it, waiting for readers as long as the
    /// busy timeout allows; clears `scrub_due` once done. `false` if a reader was still in the
    /// way.
    fn fold_wal(&mut self) -> Result<bool> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy != 0 {
            return Ok(false);
        }
        if self.meta(SCRUB_DUE)?.is_some() {
            self.conn
                .execute("DELETE FROM meta WHERE key = ?1", [SCRUB_DUE])?;
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(true)
    }

    /// Folds the WAL back if a purge or a re-basing left that to do (`scrub_due`), waiting for
    /// readers at most a tenth of a second: cheap to call often (one `meta` read when nothing
    /// is due). Whether nothing is left due.
    pub fn scrub_if_due(&mut self) -> Result<bool> {
        if self.meta(SCRUB_DUE)?.is_none() {
            return Ok(true);
        }
        self.conn
            .busy_timeout(std::time::Duration::from_millis(100))?;
        let folded = self.fold_wal();
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        folded
    }

    /// Marks the store to be scrubbed ([`Store::scrub_if_due`]), for bytes left in free pages
    /// or the WAL by a write that could not scrub at once.
    pub(super) fn scrub_later(&mut self) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, '1')",
            [SCRUB_DUE],
        )?;
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
