//! A lost phone (《儿童个人信息网络保护规定》第21条): revoke it and say which children's files it
//! may have held, and since when, for the school's duty to notify.
//!
//! What is known, and how exactly:
//! - *which files, exactly*: on the hub's store, the documents the hub has synced with the
//!   device (its `sync_state` rows for that device: both sides held the file at the end of an
//!   exchange). `HeldChild::synced` marks them; it is exact about what reached the phone
//!   through the hub, whatever the scope is now.
//! - *which files, at most*: those the device's member may hold under the school document now
//!   ([`super::scope::may_see`], the rule sync and bundles obey), as if the member were still
//!   active, plus the children of pairings of theirs that have ended (the device dropped those
//!   at its first sync after the end, so it may still hold them if it has not synced since).
//!   An upper bound: a device that never synced a file does not hold it. A device holds no
//!   file outside this list unless its member's scope was wider before and it never synced
//!   since (a class they no longer head).
//! - *since when*: not before the device was registered (`registered_at`, the registering
//!   device's clock; absent for devices registered before it was recorded). That is a bound,
//!   not the moment a given file arrived.
//! - *until*: the last sync this store completed with it (`last_sync`, known on the hub):
//!   what changed in a file after that never reached the phone.

use serde::Serialize;

use super::Archive;
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::ids::ChildId;

/// A child whose file a lost device may have held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldChild {
    pub id: ChildId,
    pub name: String,
    pub class_name: Option<String>,
    /// Whether the private part (身份证号, 心理辅导记录, …) was in scope too, or synced.
    pub private: bool,
    /// Whether this store's sync record shows the file reached the device (exact; on the
    /// hub's store).
    pub synced: bool,
}

/// The lost-phone report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostDeviceReport {
    pub device: String,
    pub label: String,
    pub member: String,
    /// False if the device had been revoked before this report.
    pub newly_revoked: bool,
    /// When it was registered, ms since the epoch: the earliest it could hold anything.
    pub registered_at: Option<i64>,
    /// The last sync this store completed with it, ms since the epoch (the hub knows).
    pub last_sync: Option<i64>,
    /// Files in its member's scope, and files the hub synced with it: what it may have held
    /// (an upper bound; `synced` marks the ones known to have reached it).
    pub children: Vec<HeldChild>,
    /// Children of ended pairings, and children who left the school whose files its member
    /// had: dropped at its first sync after the end, if there was one.
    pub ended_pairings: Vec<HeldChild>,
}

impl Archive {
    /// Reports a device lost: revokes it ([`Archive::revoke_device`]) and lists the children's
    /// files it may have held. Administrators only. Reporting a revoked device again lists
    /// the same without writing anything.
    pub fn report_lost_device(&mut self, key: &str) -> Result<LostDeviceReport> {
        self.require_admin()?;
        let before = self.devices()?;
        let row = self.revoke_device(key)?;
        let newly_revoked = !before.iter().any(|d| d.id == row.id && d.revoked);
        let school = self.school()?;
        let device = school
            .devices
            .iter()
            .find(|d| d.id.as_str() == row.id)
            .cloned()
            .ok_or_else(|| Error::not_found("设备", &row.id))?;
        let mut member = school
            .member(&device.member)
            .cloned()
            .ok_or_else(|| Error::not_found("成员", device.member.as_str()))?;
        // What it held while its member was active.
        member.active = true;
        let rows: Vec<(String, String, Option<String>)> = {
            let mut stmt = self
                .store
                .conn()
                .prepare("SELECT child_id, name, class_id FROM p_children ORDER BY name")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        // The hub keys its sync record by the device's whole network key; the device id is its
        // first 16 bytes.
        let synced: std::collections::HashSet<String> = {
            let mut stmt = self
                .store
                .conn()
                .prepare("SELECT DISTINCT doc_id FROM sync_state WHERE substr(peer, 1, ?2) = ?1")?;
            stmt.query_map(
                rusqlite::params![row.id.as_str(), row.id.len() as i64],
                |r| r.get(0),
            )?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut children = Vec::new();
        let mut ended_pairings = Vec::new();
        for (id, name, class) in rows {
            let id = ChildId(id);
            let private_doc = DocId::Private(id.clone());
            let got = synced.contains(&DocId::Child(id.clone()).key());
            let held = HeldChild {
                synced: got,
                private: synced.contains(&private_doc.key())
                    || self.may_see(&member, &private_doc)?
                    || self.closed_by_withdrawal(&member, &id)?,
                class_name: class.and_then(|c| {
                    school
                        .classes
                        .iter()
                        .find(|k| k.id.as_str() == c)
                        .map(|k| k.name.clone())
                }),
                name,
                id: id.clone(),
            };
            if got || self.may_see(&member, &DocId::Child(id.clone()))? {
                children.push(held);
            } else if school
                .pairings
                .iter()
                .any(|p| p.carer == member.id && p.child == id && !p.active)
            {
                ended_pairings.push(HeldChild {
                    private: false,
                    ..held
                });
            } else if school.has_left(&id) {
                // A child who left: the device held the file if its member cared for the
                // child before (until its first sync after the leave).
                let mut before = crate::school::SchoolView::clone(&school);
                before.departures.retain(|d| d.child != id);
                // What it may have held then: a withdrawal since does not take it back.
                let mut facts_of = |c: &ChildId| {
                    self.child_facts(c)
                        .map(super::scope::ChildFacts::before_withdrawals)
                };
                if super::scope::may_see(
                    &before,
                    &member,
                    &DocId::Child(id.clone()),
                    &mut facts_of,
                )? {
                    let private =
                        super::scope::may_see(&before, &member, &private_doc, &mut facts_of)?;
                    ended_pairings.push(HeldChild { private, ..held });
                }
            }
        }
        Ok(LostDeviceReport {
            device: row.id,
            label: row.label,
            member: member.name,
            newly_revoked,
            registered_at: device.registered_at,
            last_sync: row.last_sync,
            children,
            ended_pairings,
        })
    }
}
