//! Keeping the store in shape: rebuilding its projections, purging documents with every
//! trace of them, and folding documents into their snapshots (module docs, "Compaction" and
//! "Purging").

use rusqlite::TransactionBehavior;

use super::cache::load_doc;
use super::persist::{self, store_as_snapshot};
use super::{Store, conflicted, doc_label, projection};
use crate::doc::DocId;
use crate::error::{Error, Result};

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
            removed += persist::forget(&tx, id)?;
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
    pub(super) fn scrub(&mut self) -> Result<()> {
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
