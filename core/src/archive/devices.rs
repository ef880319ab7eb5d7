//! Devices and members leaving: listing devices, revoking a lost phone, deactivating a member.
//! Revocation is a fact in the school document that only administrators may write (the trust
//! rules); the hub and every peer that knows it refuse the device's certificate, and no change
//! of a revoked device is accepted against a school state that records the revocation.

use rusqlite::OptionalExtension;
use serde::Serialize;

use super::Archive;
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::school;

/// A registered device, as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceRow {
    /// The device id (also its automerge actor, or the start of it); `device revoke` takes it or
    /// a prefix of it.
    pub id: String,
    pub member: String,
    pub label: String,
    pub revoked: bool,
    /// When this store last completed a sync with it, ms since the epoch (the hub's view).
    pub last_sync: Option<i64>,
    /// For a revoked device that reached the hub and wiped itself: what it had not delivered.
    pub undelivered: Option<school::Undelivered>,
}

impl DeviceRow {
    /// Its standing in one Chinese phrase: 正常, 已停用, or, once a revoked device has
    /// reached the hub and wiped itself, what it had not delivered.
    pub fn status(&self) -> String {
        match (self.revoked, self.undelivered) {
            (false, _) => "正常".to_owned(),
            (true, None) => "已停用".to_owned(),
            (true, Some(u)) => format!(
                "已停用，已清除本机档案；未送达 {} 项修改（其中新记录 {} 条）",
                u.changes, u.records
            ),
        }
    }
}

impl Archive {
    /// Every registered device, by member name.
    pub fn devices(&mut self) -> Result<Vec<DeviceRow>> {
        let school = self.school()?;
        let doc = self.store.doc(&DocId::School)?.cloned();
        let mut rows = Vec::new();
        for d in &school.devices {
            // A device enrolled through the hub is its network key's first 16 bytes: the hub's
            // sync record is keyed by the whole key.
            let last_sync: Option<i64> = self
                .store
                .conn()
                .query_row(
                    "SELECT max(last_success) FROM sync_peers WHERE substr(peer, 1, ?2) = ?1",
                    rusqlite::params![d.id.as_str(), d.id.as_str().len() as i64],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            rows.push(DeviceRow {
                id: d.id.to_string(),
                member: school.member_name(d.member.as_str()),
                label: d.label.clone(),
                revoked: d.revoked,
                last_sync,
                undelivered: doc.as_ref().and_then(|doc| school::undelivered(doc, &d.id)),
            });
        }
        rows.sort_by(|a, b| (&a.member, &a.id).cmp(&(&b.member, &b.id)));
        Ok(rows)
    }

    /// Whether the device whose network key is `key` has been revoked, or belongs to a member
    /// no longer active (a certificate it presents is then refused, whatever its validity).
    pub fn is_revoked(&mut self, key: &[u8; 32]) -> Result<bool> {
        let id = crate::ids::DeviceId::from_key(key);
        let school = self.school()?;
        // A device of a member no longer active counts as revoked: deactivating a member
        // revokes her devices in the same change, but one enrolled while that change was on
        // its way to the hub is not among them.
        Ok(school.devices.iter().any(|d| {
            d.id == id && (d.revoked || school.member(&d.member).is_none_or(|m| !m.active))
        }))
    }

    /// Revokes the device whose id is `key` or starts with it (at least 6 characters), or
    /// whose device code (`sync --wait` prints it: the network key, 64 hex digits) is `key`.
    /// Administrators only. Revoking an already revoked device changes nothing.
    pub fn revoke_device(&mut self, key: &str) -> Result<DeviceRow> {
        self.require_admin()?;
        let mut key = key.trim().to_lowercase();
        if key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()) {
            key.truncate(32);
        }
        if key.len() < 6 {
            return Err(Error::invalid("设备编号", "至少填写编号的前6位"));
        }
        let found: Vec<DeviceRow> = self
            .devices()?
            .into_iter()
            .filter(|d| d.id.starts_with(&key))
            .collect();
        let row = match found.as_slice() {
            [one] => one.clone(),
            [] => return Err(Error::not_found("设备", key)),
            _ => {
                return Err(Error::Ambiguous {
                    what: "设备", key
                });
            }
        };
        if row.id == self.device.as_str() {
            return Err(Error::NotPermitted("不能停用正在使用的这台设备".into()));
        }
        // A member's console device is no phone that can be lost: nobody holds its key, and
        // her next change at the console would register another (`console.rs`). What stops
        // her is deactivating her, or her password.
        if self
            .school()?
            .devices
            .iter()
            .any(|d| d.id.as_str() == row.id && d.console)
        {
            return Err(Error::NotPermitted(format!(
                "“{}”是{}在办公室网页上记录时用的身份，不是一台设备，不能单独停用；\
                 如需让其不能再使用办公室网页，请停用该成员或重置其密码",
                row.label, row.member
            )));
        }
        if !row.revoked {
            let id = crate::ids::DeviceId(row.id.clone());
            let message = format!("停用设备：{}的{}", row.member, row.label);
            self.store.write(|b| {
                b.change(&DocId::School, false, &message, |tx| {
                    school::revoke_device(tx, &id)
                })
            })?;
        }
        Ok(DeviceRow {
            revoked: true,
            ..row
        })
    }

    /// Records what the revoked device `id` reported it had not delivered before wiping
    /// itself (the hub calls it when the device reports). Administrators only (the hub's
    /// device is one); refused for a device that is not revoked and whose member is active. Only the first report is
    /// kept: an honest device reports once (again only if its wipe failed, with the same
    /// counts), and a modified one cannot make the school document grow by reporting in a
    /// loop.
    pub fn record_undelivered(
        &mut self,
        id: &crate::ids::DeviceId,
        undelivered: school::Undelivered,
    ) -> Result<()> {
        self.require_admin()?;
        let school = self.school()?;
        let Some(device) = school.devices.iter().find(|d| d.id == *id).cloned() else {
            return Err(Error::not_found("设备", id.as_str()));
        };
        // A device of a member no longer active is told it is revoked too (one enrolled while
        // the deactivation was on its way), and reports the same way.
        let member_gone = school.member(&device.member).is_none_or(|m| !m.active);
        if !device.revoked && !member_gone {
            return Err(Error::NotPermitted("这台设备没有被停用".into()));
        }
        let known = self
            .store
            .doc(&DocId::School)?
            .and_then(|doc| school::undelivered(doc, id));
        if known.is_some() {
            return Ok(());
        }
        let message = format!(
            "停用设备未送达：{} 项修改，{} 条记录",
            undelivered.changes, undelivered.records
        );
        self.store.write(|b| {
            b.change(&DocId::School, false, &message, |tx| {
                // A device of a member no longer active was told it is revoked: the school
                // document says so too, as the device list shows it.
                if !device.revoked {
                    school::revoke_device(tx, id)?;
                }
                school::set_undelivered(tx, id, undelivered)
            })
        })?;
        Ok(())
    }

    /// Deactivates a member (a volunteer who left) and revokes every device of theirs:
    /// administrators only, and never the member using this device. Returns how many devices
    /// were revoked.
    pub fn deactivate_member(&mut self, name: &str) -> Result<usize> {
        self.require_admin()?;
        let m = self.find_member(name)?;
        if m.id == self.me {
            return Err(Error::NotPermitted("不能停用自己".into()));
        }
        let devices: Vec<_> = self
            .school()?
            .devices
            .iter()
            .filter(|d| d.member == m.id && !d.revoked)
            .map(|d| d.id.clone())
            .collect();
        if !m.active && devices.is_empty() {
            return Ok(0);
        }
        let message = format!("停用成员：{}", m.name);
        self.store.write(|b| {
            b.change(&DocId::School, false, &message, |tx| {
                school::deactivate_member(tx, &m.id)?;
                for d in &devices {
                    school::revoke_device(tx, d)?;
                }
                Ok(())
            })
        })?;
        Ok(devices.len())
    }
}
