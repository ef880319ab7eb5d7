//! Writing a batch's documents to SQLite, inside the write's transaction: the new changes as
//! rows, or the document folded into its snapshot once its loose changes pile up; the
//! projections; and removing documents a batch replaced whole.

use std::collections::HashMap;

use automerge::{Automerge, ChangeHash};
use rusqlite::params;

use super::cache::DocCache;
use super::projection::{self, Touched};
use super::{COMPACT_AFTER, conflicted, heads_text};
use crate::doc::DocId;
use crate::error::Result;

/// Removes everything stored of the documents a batch replaced whole; `persist` then writes
/// the new generation as a new document.
pub(super) fn forget_replaced(tx: &rusqlite::Transaction<'_>, replaced: &[DocId]) -> Result<()> {
    for id in replaced {
        // Its `purged` mark stays: the copy that replaces it (a peer's, a file's) may still
        // lack this device's own work there (`Batch::require_own_work`).
        forget_rows(tx, id)?;
    }
    Ok(())
}

/// The tables besides `docs` that keep rows of a document by its `doc_id`: its changes, sync
/// state, what was held back or refused of it, its quarantine and review rows. A table that
/// names a document is added here, or a purge leaves it behind. Some hold rows of a document
/// the store never stored (a refused change of a document it does not hold is kept for
/// review): [`super::Store::held_doc_ids`] lists those too.
pub(super) const PER_DOC_TABLES: [&str; 8] = [
    "changes",
    "sync_state",
    "held",
    "refusals",
    "quarantine",
    "relayed",
    "outdated",
    "out_of_scope",
];

#[cfg(test)]
thread_local! {
    /// Makes [`persist`] panic (the store's tests: a bug in what reads the merged documents
    /// while a write is persisted).
    pub(super) static PANIC_WHILE_PERSISTING: std::cell::Cell<bool> =
        const { std::cell::Cell::new(false) };
}

/// What [`forget`] deleted: `docs` rows (0 or 1), and rows in all.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Forgotten {
    pub docs: usize,
    pub rows: usize,
}

/// Deletes every row this store keeps of document `id`, in every table (the purge of a
/// document no longer cared for, an erasure, a document replaced whole): its snapshot, the
/// rows of [`PER_DOC_TABLES`], and its projections.
pub(super) fn forget(tx: &rusqlite::Transaction<'_>, id: &DocId) -> Result<Forgotten> {
    let mut gone = forget_rows(tx, id)?;
    // The mark that this store once dropped it (`Store::purge_remembering` writes it again
    // after this when it is to be kept).
    gone.rows += tx
        .prepare_cached("DELETE FROM purged WHERE doc_id = ?1")?
        .execute([id.key()])?;
    Ok(gone)
}

/// [`forget`], but the `purged` mark.
fn forget_rows(tx: &rusqlite::Transaction<'_>, id: &DocId) -> Result<Forgotten> {
    let key = id.key();
    let docs = tx
        .prepare_cached("DELETE FROM docs WHERE doc_id = ?1")?
        .execute([&key])?;
    let mut rows = docs;
    for table in PER_DOC_TABLES {
        rows += tx.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [&key])?;
    }
    projection::forget(tx, id)?;
    Ok(Forgotten { docs, rows })
}

/// Writes a batch's new changes, projections, sync states and meta values inside `tx`.
pub(super) fn persist(
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
    #[cfg(test)]
    if PANIC_WHILE_PERSISTING.with(std::cell::Cell::get) {
        panic!("a bug while persisting");
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
pub(super) fn store_as_snapshot(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    doc: &Automerge,
) -> Result<bool> {
    let snapshot = crate::doc::saved(doc, true);
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
