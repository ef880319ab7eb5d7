//! Sync sessions from the archive's point of view: what a peer may receive, and what the hub
//! has not confirmed yet.

use std::collections::BTreeSet;

use rusqlite::OptionalExtension;
use serde::Serialize;

use super::Archive;
use crate::doc::DocId;
use crate::error::Result;
use crate::ids::ChildId;
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
    /// Documents in which the peer refused changes from this device: (label, changes, the
    /// Chinese reason). They are not offered again until the document changes here.
    pub refused: Vec<(String, u32, String)>,
}

/// A change another device sent that the trust rules refused (kept in quarantine, never
/// merged, never passed on), or one taken on a standing its member has lost since (listed for
/// review: [`Archive::outdated_standing`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantinedChange {
    pub doc: String,
    /// Who the change's device is registered to ("未登记的设备" if nobody).
    pub member: String,
    pub device: String,
    pub reason: String,
    /// Where it came from: a peer's device id (or its hub's endpoint id), or `bundle:` and the
    /// device that signed the file (`bundle` alone from older builds).
    pub source: String,
    /// The same for people ([`source_label`]).
    pub from: String,
    /// Device clock when it was refused, seconds since the epoch.
    pub at: i64,
}

/// Where a change came from (a `source`: a device id, or a data file that device signed), for
/// people: `王瑞侠（设备 1a2b3c4d）`, `王瑞侠（设备 1a2b3c4d）的数据文件`, `学校服务器` (`hub`,
/// the endpoint id of this device's hub, if it has one), `未登记的设备 …`.
pub fn source_label(school: &crate::school::SchoolView, hub: Option<&str>, source: &str) -> String {
    if source.is_empty() {
        return "未注明来源".to_owned();
    }
    let (device, file) = match crate::store::source_device(source) {
        (Some(device), file) => (device, file),
        (None, _) => return "数据文件".to_owned(),
    };
    if !file && hub == Some(device) {
        return "学校服务器".to_owned();
    }
    let short: String = device.chars().take(8).collect();
    let who = match school.device_owner_name(device) {
        Some(name) => format!("{name}（设备 {short}）"),
        None => format!("未登记的设备 {short}"),
    };
    if file {
        format!("{who}的数据文件")
    } else {
        who
    }
}

/// A change of a revoked device that another device handed on and this side accepted: the
/// revoked device will never send it itself, and the other device's own work may rest on it.
/// Listed for an administrator to review (and void what should not stand).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayedChange {
    pub doc: String,
    /// Who the revoked device is registered to, and the device.
    pub member: String,
    pub device: String,
    /// The member and device that handed it on (`via_device` a `source`, as
    /// [`QuarantinedChange::source`]), and the same for people ([`source_label`]).
    pub via_member: String,
    pub via_device: String,
    pub via: String,
    /// Device clock when it was accepted, seconds since the epoch.
    pub at: i64,
}

impl Archive {
    /// The documents `member` may receive from this device and send to it.
    pub fn scope_for(&mut self, member: &crate::school::Member) -> Result<Scope> {
        if member.active && member.roles.iter().any(|r| r.administers()) {
            return Ok(Scope::All);
        }
        let school = self.school()?;
        let facts = self.children_facts()?;
        // For this device's own member, what it takes in and hands in (`ChildFacts::for_own_member`).
        let own_member = member.id == self.me;
        let mut facts_of = |c: &ChildId| {
            let f = facts.get(c).cloned().unwrap_or_default();
            Ok(if own_member { f.for_own_member() } else { f })
        };
        let mut docs = BTreeSet::new();
        for id in self.store.doc_ids()? {
            if super::scope::may_see(&school, member, &id, &mut facts_of)? {
                docs.insert(id);
            }
        }
        // The parts of a child's file a 班主任 may create on her phone (the first 三特 flag or
        // employer written for a child whose staff part nobody made yet) are in scope before
        // they exist here, so the hub takes them.
        let children: Vec<_> = docs
            .iter()
            .filter_map(|d| match d {
                DocId::Child(c) => Some(c.clone()),
                _ => None,
            })
            .collect();
        for c in children {
            for id in [DocId::Staff(c.clone()), DocId::Private(c)] {
                if super::scope::may_see(&school, member, &id, &mut facts_of)? {
                    docs.insert(id);
                }
            }
        }
        // A member's own new documents are theirs to send before the hub holds them: her
        // devices' access logs, her contact document, her classes' logs. (Without this, a
        // phone's access log was refused out of scope at its first sync and dropped.)
        let own = school
            .devices
            .iter()
            .filter(|d| d.member == member.id)
            .map(|d| DocId::Audit(d.id.clone()))
            .chain(std::iter::once(DocId::Contact(member.id.clone())))
            .chain(school.classes.iter().map(|k| DocId::Class(k.id.clone())))
            .collect::<Vec<_>>();
        for id in own {
            if !docs.contains(&id) && super::scope::may_see(&school, member, &id, &mut facts_of)? {
                docs.insert(id);
            }
        }
        Ok(Scope::Only(docs))
    }

    /// The first of `docs` that the member `member` may not see by this store's school and
    /// classes as they are now (`None`: all of them). A session's scope is fixed when it
    /// begins ([`Archive::session`]); the hub asks this of every document as it leaves for a
    /// device, so a connection that outlives a pairing, a class handed over or a child's
    /// departure carries nothing of that child from then on. A member the school no longer
    /// lists may see none of them.
    pub fn first_not_visible(
        &mut self,
        member: &crate::ids::MemberId,
        docs: &[DocId],
    ) -> Result<Option<DocId>> {
        if docs.is_empty() {
            return Ok(None);
        }
        let school = self.school()?;
        let Some(m) = school.member(member) else {
            return Ok(docs.first().cloned());
        };
        let mut facts_of = |c: &ChildId| self.child_facts(c);
        for doc in docs {
            if !super::scope::may_see(&school, m, doc, &mut facts_of)? {
                return Ok(Some(doc.clone()));
            }
        }
        Ok(None)
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
        // A device that may hold every document (an administrator's) takes the peer's own
        // work on documents that left the peer's scope (see `Session::taking_hand_ins`).
        let everything = mine == Scope::All;
        let session = Session::new(peer, theirs.intersect(&mine));
        Ok(if everything {
            session.taking_hand_ins()
        } else {
            session
        })
    }

    /// Records how an exchange with `peer` ended.
    pub fn record_sync_result(&mut self, peer: &str, error: Option<&str>) -> Result<()> {
        self.store.record_sync_result(peer, error)
    }

    /// Whether an exchange with `peer` completed here at or after `since_ms` (this store's
    /// clock, ms since the epoch).
    pub fn has_synced_with_since(&mut self, peer: &str, since_ms: i64) -> Result<bool> {
        Ok(self
            .store
            .conn()
            .query_row(
                "SELECT last_success FROM sync_peers WHERE peer = ?1",
                [peer],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()?
            .flatten()
            .is_some_and(|t| t >= since_ms))
    }

    /// What this device made that `peer` (the hub) has not confirmed: its own changes after
    /// the heads it shares with the peer, and the records among them the peer never had
    /// (created here, absent at the shared heads). A revoked device reports this before it
    /// wipes itself, so the office knows what was lost with it. Changes other devices made
    /// are not counted: they are theirs to deliver.
    pub fn undelivered(&mut self, peer: &str) -> Result<crate::school::Undelivered> {
        use automerge::{ChangeHash, ObjType, ROOT, ReadDoc, Value};
        let shared = self.store.shared_with(peer)?;
        // Every actor of this device: its own, a re-based document's generation's, a restored
        // copy's epoch's.
        let me = self.device.as_str().to_owned();
        let mut out = crate::school::Undelivered {
            changes: 0,
            records: 0,
        };
        for id in self.store.doc_ids()? {
            let heads: Vec<ChangeHash> = shared
                .get(&id)
                .map(|h| crate::store::stored_heads(h))
                .unwrap_or_default();
            let Some(doc) = self.store.doc(&id)? else {
                continue;
            };
            let mine = doc
                .get_changes(&heads)
                .iter()
                .filter(|c| c.actor_id().to_hex_string().starts_with(&me))
                .count();
            if mine == 0 {
                continue;
            }
            out.changes += mine as u64;
            let Ok(Some((Value::Object(ObjType::Map), records))) =
                doc.get(ROOT, crate::doc::layout::RECORDS)
            else {
                continue;
            };
            for key in doc.keys(&records) {
                let known = doc.get_at(&records, &key, &heads).ok().flatten().is_some();
                let created_here = matches!(
                    doc.get(&records, &key),
                    Ok(Some((_, automerge::ObjId::Id(_, actor, _))))
                        if actor.to_hex_string().starts_with(&me)
                );
                if created_here && !known {
                    out.records += 1;
                }
            }
        }
        Ok(out)
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
        let shared = self.store.shared_with(peer)?;
        let held = self.store.held(peer)?;
        let mut pending = Vec::new();
        for (doc, heads) in self.store.all_heads()? {
            if shared.get(&doc).is_some_and(|h| *h == heads) {
                continue;
            }
            if held.get(&doc).is_some_and(|h| *h == heads) {
                continue; // refused there: listed below, not pending
            }
            pending.push((doc.key(), self.doc_label(&doc)?));
        }
        let mut refused = Vec::new();
        for (doc, count, reason) in self.store.refusals(peer)? {
            refused.push((self.doc_label(&doc)?, count, reason));
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
            refused,
        })
    }

    /// A child's name as this device's lists show it, if it holds her file.
    pub(super) fn projected_name(&self, child: &ChildId) -> Result<Option<String>> {
        Ok(self
            .store
            .conn()
            .query_row(
                "SELECT name FROM p_children WHERE child_id = ?1",
                [child.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A document as people name it: 学校信息, 王小雨的档案, 王小雨档案的隐私部分 (as the
    /// consent names the part), 班级记录 ….
    pub(super) fn doc_label(&self, doc: &DocId) -> Result<String> {
        Ok(match doc {
            DocId::School => "学校信息".to_owned(),
            DocId::Child(c) | DocId::Private(c) | DocId::Staff(c) => {
                let name = self.projected_name(c)?.unwrap_or_else(|| c.to_string());
                match doc {
                    DocId::Private(_) => format!("{name}档案的隐私部分"),
                    DocId::Staff(_) => format!("{name}档案的教师部分"),
                    _ => format!("{name}的档案"),
                }
            }
            DocId::Class(k) => format!("班级记录 {k}"),
            DocId::Keys => "学校密钥".to_owned(),
            DocId::Contact(m) => {
                let name: Option<String> = self
                    .store
                    .conn()
                    .query_row(
                        "SELECT name FROM p_members WHERE member_id = ?1",
                        [m.as_str()],
                        |r| r.get(0),
                    )
                    .optional()?;
                format!("{}的联系方式", name.unwrap_or_else(|| m.to_string()))
            }
            DocId::Audit(d) => {
                format!("设备 {} 的查阅记录", &d.as_str()[..d.as_str().len().min(8)])
            }
        })
    }

    /// Changes other devices sent that were refused, newest first.
    pub fn quarantined(&mut self) -> Result<Vec<QuarantinedChange>> {
        self.listed_changes("quarantine")
    }

    /// Changes taken but listed for an administrator to review, newest first: ones their
    /// member's standing here and now would not allow (written on a phone that had not yet
    /// heard that a class, a pairing or a role was taken away: `trust::standing`), ones that
    /// ignored a consent, class or departure known before, and ones whose record dates or
    /// clock reading are past what a clock allows (`store::admit`). The reason says which.
    pub fn outdated_standing(&mut self) -> Result<Vec<QuarantinedChange>> {
        self.listed_changes("outdated")
    }

    /// How many changes wait for an administrator's review: refused ([`Archive::quarantined`]),
    /// taken but listed ([`Archive::outdated_standing`]), and relayed from revoked devices
    /// ([`Archive::relayed_from_revoked`]).
    pub fn to_review(&mut self) -> Result<usize> {
        let n: i64 = self.store.conn().query_row(
            "SELECT (SELECT COUNT(*) FROM quarantine) + (SELECT COUNT(*) FROM outdated)
                  + (SELECT COUNT(*) FROM relayed)",
            [],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The endpoint id of the hub this device enrolled with (from its invite), if any.
    fn hub_endpoint(&self) -> Option<String> {
        let invite = self
            .store
            .meta(crate::membership::INVITE_META)
            .ok()
            .flatten()?;
        crate::membership::Invite::decode(&invite)
            .ok()
            .map(|i| i.hub.to_hex())
    }

    /// The rows of `quarantine` or `outdated`, labelled for people.
    fn listed_changes(&mut self, table: &str) -> Result<Vec<QuarantinedChange>> {
        let school = self.school()?;
        let hub = self.hub_endpoint();
        let rows: Vec<(String, String, String, String, i64)> = {
            let mut stmt = self.store.conn().prepare(&format!(
                "SELECT doc_id, actor, reason, source, at FROM {table} ORDER BY at DESC"
            ))?;
            stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::new();
        for (doc, actor, reason, source, at) in rows {
            let label = match DocId::parse(&doc) {
                Some(d) => self.doc_label(&d)?,
                None => doc,
            };
            // An actor is the device id, maybe plus a restore epoch and a generation tag.
            let member = school
                .device_owner_name(&actor)
                .unwrap_or_else(|| "未登记的设备".to_owned());
            out.push(QuarantinedChange {
                doc: label,
                member,
                device: actor,
                reason,
                from: source_label(&school, hub.as_deref(), &source),
                source,
                at: at / 1000,
            });
        }
        Ok(out)
    }

    /// Changes of revoked devices accepted from other devices, newest first.
    pub fn relayed_from_revoked(&mut self) -> Result<Vec<RelayedChange>> {
        let school = self.school()?;
        let hub = self.hub_endpoint();
        let rows: Vec<(String, String, String, i64)> = {
            let mut stmt = self
                .store
                .conn()
                .prepare("SELECT doc_id, actor, source, at FROM relayed ORDER BY at DESC")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let name_of = |device: &str| {
            school
                .device_owner_name(device)
                .unwrap_or_else(|| "未登记的设备".to_owned())
        };
        let mut out = Vec::new();
        for (doc, actor, source, at) in rows {
            let label = match DocId::parse(&doc) {
                Some(d) => self.doc_label(&d)?,
                None => doc,
            };
            out.push(RelayedChange {
                doc: label,
                member: name_of(&actor),
                device: actor,
                via_member: match crate::store::source_device(&source) {
                    (Some(device), false) if hub.as_deref() == Some(device) => {
                        "学校服务器".to_owned()
                    }
                    (Some(device), _) => name_of(device),
                    (None, _) => "数据文件".to_owned(),
                },
                via: source_label(&school, hub.as_deref(), &source),
                via_device: source,
                at: at / 1000,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::source_label;

    #[test]
    fn sources_are_labelled_for_people() {
        let school = crate::school::read(&automerge::Automerge::new());
        let hub = "ab".repeat(32);
        let phone = "4b6bb6ce".repeat(8);
        assert_eq!(source_label(&school, Some(&hub), &hub), "学校服务器");
        assert_eq!(
            source_label(&school, Some(&hub), &phone),
            "未登记的设备 4b6bb6ce"
        );
        assert_eq!(
            source_label(&school, None, &format!("bundle:{phone}")),
            "未登记的设备 4b6bb6ce的数据文件"
        );
        // A file the hub signed is not the hub's sync.
        assert_ne!(
            source_label(&school, Some(&hub), &format!("bundle:{hub}")),
            "学校服务器"
        );
        assert_eq!(source_label(&school, None, "bundle"), "数据文件");
        assert_eq!(source_label(&school, None, ""), "未注明来源");
    }
}
