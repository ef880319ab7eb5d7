//! What the store keeps of each peer: the heads shared with it, automerge's sync states, the
//! documents held back from it or refused by it, and how its last sync ended.

use std::collections::HashMap;

use automerge::ChangeHash;
use rusqlite::{OptionalExtension, params};

use super::{Store, doc_text_rows, stored_heads};
use crate::doc::DocId;
use crate::error::Result;

impl Store {
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

    /// Records that the hub says this device may no longer hold `doc`, and `covered`: the
    /// heads of what the hub is known to have taken of it (what this device sent it first in
    /// the session). The next [`crate::archive::Archive::purge_out_of_scope`] drops the
    /// document unless it holds work of this device beyond those heads.
    pub fn mark_out_of_scope(&mut self, doc: &DocId, covered: &[ChangeHash]) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO out_of_scope (doc_id, covered) VALUES (?1, ?2)
                 ON CONFLICT (doc_id) DO UPDATE SET covered = excluded.covered",
            )?
            .execute(params![doc.key(), super::heads_text(covered)])?;
        Ok(())
    }

    /// Documents the hub said this device may no longer hold, with the heads it is known to
    /// have taken of each (none known for a mark an older build made).
    pub fn out_of_scope(&self) -> Result<Vec<(DocId, Vec<ChangeHash>)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT doc_id, covered FROM out_of_scope")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, covered) = row?;
            if let Some(doc) = DocId::parse(&key) {
                out.push((
                    doc,
                    covered
                        .as_deref()
                        .and_then(super::parse_heads)
                        .unwrap_or_default(),
                ));
            }
        }
        Ok(out)
    }

    /// Forgets that the hub said this device may no longer hold `doc`: a later answer of the
    /// hub's overtook it (it deferred this device's work there).
    pub fn unmark_out_of_scope(&mut self, doc: &DocId) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM out_of_scope WHERE doc_id = ?1")?
            .execute([doc.key()])?;
        Ok(())
    }

    /// Forgets that the hub said this device may no longer hold `doc`, and that any peer held
    /// it back: the device offers it again at its next sync (work written on it after the
    /// hub's word, handed in then).
    pub fn offer_again(&mut self, doc: &DocId) -> Result<()> {
        for sql in [
            "DELETE FROM out_of_scope WHERE doc_id = ?1",
            "DELETE FROM held WHERE doc_id = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([doc.key()])?;
        }
        Ok(())
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
}
