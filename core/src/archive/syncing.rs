//! Sync sessions from the archive's point of view: what a peer may receive, and what the hub
//! has not confirmed yet.

use std::collections::BTreeSet;

use rusqlite::OptionalExtension;
use serde::Serialize;

use super::Archive;
use crate::doc::DocId;
use crate::error::Result;
use crate::sync::{Scope, Session};

/// How this device stands with one peer (the hub).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStatus {
    /// Device clock of the last completed exchange, ms since the epoch.
    pub last_success: Option<i64>,
    pub last_error: Option<String>,
    /// Documents with changes the peer has not confirmed, with a Chinese label.
    pub pending: Vec<(String, String)>,
    /// Records written on this device since the last completed exchange.
    pub records_since: i64,
}

impl Archive {
    /// The documents `member` may receive from this device and send to it.
    pub fn scope_for(&mut self, member: &crate::school::Member) -> Result<Scope> {
        if member.active && member.roles.iter().any(|r| r.administers()) {
            return Ok(Scope::All);
        }
        let school = self.school()?;
        let mut docs = BTreeSet::new();
        for id in self.store.doc_ids()? {
            if super::scope::may_see(&school, member, &id, &mut |c| self.class_of(c))? {
                docs.insert(id);
            }
        }
        // A member's own new documents (a class log) are theirs to send.
        Ok(Scope::Only(docs))
    }

    /// A session with the peer device `peer`, used by `member` (None: a peer with full access,
    /// such as the hub seen from a device).
    pub fn session(
        &mut self,
        peer: &str,
        member: Option<&crate::school::Member>,
    ) -> Result<Session> {
        let scope = match member {
            Some(m) => self.scope_for(m)?,
            None => Scope::All,
        };
        Ok(Session::new(peer, scope))
    }

    /// A session with another member's device met directly (on the LAN, with no hub): only the
    /// documents that both this device's member and `peer_member` may see are offered or
    /// accepted.
    pub fn peer_session(
        &mut self,
        peer: &str,
        peer_member: &crate::school::Member,
    ) -> Result<Session> {
        let theirs = self.scope_for(peer_member)?;
        let me = self.me()?;
        let mine = self.scope_for(&me)?;
        Ok(Session::new(peer, theirs.intersect(&mine)))
    }

    /// Records how an exchange with `peer` ended.
    pub fn record_sync_result(&mut self, peer: &str, error: Option<&str>) -> Result<()> {
        self.store.record_sync_result(peer, error)
    }

    /// What `peer` has not confirmed yet, and when the last exchange completed.
    pub fn sync_status(&mut self, peer: &str) -> Result<SyncStatus> {
        let (last_success, last_error): (Option<i64>, Option<String>) = self
            .store
            .conn()
            .query_row(
                "SELECT last_success, last_error FROM sync_peers WHERE peer = ?1",
                [peer],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((None, None));
        let shared = self.store.sync_states(peer)?;
        let mut pending = Vec::new();
        for (doc, heads) in self.store.all_heads()? {
            if shared.get(&doc).is_some_and(|(h, _)| *h == heads) {
                continue;
            }
            let label = match &doc {
                DocId::School => "学校信息".to_owned(),
                DocId::Child(c) | DocId::Private(c) => {
                    let name: Option<String> = self
                        .store
                        .conn()
                        .query_row(
                            "SELECT name FROM p_children WHERE child_id = ?1",
                            [c.as_str()],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let part = if matches!(doc, DocId::Private(_)) {
                        "（保密）"
                    } else {
                        ""
                    };
                    format!("{}的档案{part}", name.unwrap_or_else(|| c.to_string()))
                }
                DocId::Class(k) => format!("班级记录 {k}"),
            };
            pending.push((doc.key(), label));
        }
        let records_since: i64 = self.store.conn().query_row(
            "SELECT count(*) FROM p_records WHERE author = ?1 AND written_at > ?2",
            rusqlite::params![self.me.as_str(), last_success.unwrap_or(0)],
            |r| r.get(0),
        )?;
        Ok(SyncStatus {
            last_success,
            last_error,
            pending,
            records_since,
        })
    }
}
