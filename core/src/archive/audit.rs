//! The access log (《儿童个人信息网络保护规定》第15条: staff access approved and recorded).
//!
//! Every opening of a child's private part (身份证号, 心理辅导记录, 个别教育管理方案, the
//! 涉嫌违法/纪律处分/心理问题 flags) and every export of a file that carries personal data is
//! recorded on the device that did it, in that device's own document `audit/<device>`:
//!
//! ```text
//! entries/<seq, 8 digits> = { at, member, device, what, target, why, prev, hash }
//! hash = hex SHA-256( prev "\n" seq "\n" at "\n" member "\n" device "\n" what "\n" target "\n" why )
//! ```
//!
//! `prev` is the previous entry's hash (empty for the first), so the entries form a chain.
//! The document syncs like any other, to the hub and the administrators' devices (and the
//! device's own member), and the trust rules let only the device itself append to it, one new
//! entry at a time, never overwriting or deleting one. So its user cannot edit or drop what
//! has reached the hub: a modified app's edit is refused there, and an edit of the raw store
//! breaks the chain, which [`Archive::audit_log`] reports. Entries written after the last sync
//! are only on the device until its next sync.

use automerge::{ObjType, ROOT, ReadDoc, transaction::Transactable};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Archive;
use crate::doc::DocId;
use crate::doc::access::{get_i64, get_str, map_at};
use crate::doc::layout::AUDIT_ENTRIES;
use crate::error::Result;
use crate::ids::{ChildId, DeviceId};

/// What an entry records.
pub mod what {
    /// A child's private part was opened.
    pub const PRIVATE_VIEW: &str = "private_view";
    /// A file of records was exported (`bundle export`).
    pub const BUNDLE_EXPORT: &str = "bundle_export";
    /// A file that sets up a new device was exported (`device add`).
    pub const DEVICE_FILE: &str = "device_file";
    /// A child's ID numbers were shown in full (`child show --reveal-id --why …`).
    pub const ID_REVEAL: &str = "id_reveal";
    /// A report listing children's personal data was printed or exported in bulk (the
    /// command, and how many children it named).
    pub const REPORT: &str = "report";
    /// An invite that enrolls a device for a member was issued (by the member whose device
    /// wrote the entry, for the member named as its target).
    pub const INVITE: &str = "invite";
}

/// One entry of a device's access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub device: String,
    pub seq: u64,
    /// Unix seconds, by the device's clock.
    pub at: i64,
    /// The member using the device (id).
    pub member: String,
    pub what: String,
    /// What was opened or exported: a child id, a member, `school`.
    pub target: String,
    pub why: Option<String>,
    pub prev: String,
    pub hash: String,
}

impl AuditEntry {
    fn digest(&self) -> String {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.prev,
            self.seq,
            self.at,
            self.member,
            self.device,
            self.what,
            self.target,
            self.why.as_deref().unwrap_or("")
        );
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

/// Every access log this device holds, checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
    /// Where a chain is broken (an entry altered, missing or written twice), in Chinese.
    pub problems: Vec<String>,
}

/// An access-log entry as a person reads it (the CLI's `audit` and the office console).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditLine {
    /// Unix seconds, by the device's clock.
    pub at: i64,
    pub member: String,
    /// What was done, in Chinese.
    pub what: String,
    /// What it was done to: a child's name, a member's, a report, 全校.
    pub target: String,
    /// The device, by the first 8 digits of its id.
    pub device: String,
    pub why: Option<String>,
}

/// What an entry's `what` means, in Chinese.
pub fn what_label(what: &str) -> &'static str {
    match what {
        what::PRIVATE_VIEW => "查看保密档案",
        what::BUNDLE_EXPORT => "导出数据文件",
        what::DEVICE_FILE => "导出新设备登记文件",
        what::ID_REVEAL => "查看完整身份证号",
        what::REPORT => "导出或打印名单",
        what::INVITE => "发放设备邀请码",
        _ => "其他操作",
    }
}

impl Archive {
    /// The access log ([`Archive::audit_log`]) as a person reads it, optionally only the
    /// entries of one member (name or id) or about one child (name, 学籍号 or id); with what is
    /// wrong with any chain.
    pub fn audit_lines(
        &mut self,
        member: Option<&str>,
        child: Option<&str>,
    ) -> Result<(Vec<AuditLine>, Vec<String>)> {
        let mut log = self.audit_log()?;
        if let Some(m) = member {
            let id = self.find_member(m)?.id;
            log.entries.retain(|e| e.member == id.as_str());
        }
        if let Some(c) = child {
            let id = self.find_child(c)?;
            log.entries.retain(|e| e.target == id.as_str());
        }
        let school = self.school()?;
        let mut lines = Vec::with_capacity(log.entries.len());
        for e in log.entries {
            let target = if e.target == "school" {
                "全校".to_owned()
            } else if let Some(name) = self.child_name(&e.target) {
                name
            } else if school
                .member(&crate::ids::MemberId(e.target.clone()))
                .is_some()
            {
                school.member_name(&e.target)
            } else {
                e.target.clone()
            };
            lines.push(AuditLine {
                at: e.at,
                member: school.member_name(&e.member),
                what: what_label(&e.what).to_owned(),
                target,
                device: e.device.chars().take(8).collect(),
                why: e.why,
            });
        }
        Ok((lines, log.problems))
    }
}

fn seq_key(seq: u64) -> String {
    format!("{seq:08}")
}

/// The entries of one device's log, in order, and what is wrong with its chain.
fn read_log(device: &DeviceId, doc: &automerge::Automerge) -> (Vec<AuditEntry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let short = &device.as_str()[..device.as_str().len().min(8)];
    let Some(list) = map_at(doc, &ROOT, AUDIT_ENTRIES) else {
        return (entries, problems);
    };
    let mut expected_prev = String::new();
    for (i, item) in doc.map_range(&list, ..).enumerate() {
        let seq = i as u64 + 1;
        if item.key != seq_key(seq) {
            problems.push(format!(
                "设备 {short} 的查阅记录在第 {seq} 条处不连续（缺少或多出记录）"
            ));
            break;
        }
        if doc
            .get_all(&list, item.key.as_ref())
            .map(|v| v.len())
            .unwrap_or(0)
            > 1
        {
            problems.push(format!("设备 {short} 的查阅记录第 {seq} 条被写了两次"));
        }
        let o = item.id();
        let entry = AuditEntry {
            device: device.to_string(),
            seq,
            at: get_i64(doc, &o, "at").unwrap_or_default(),
            member: get_str(doc, &o, "member").unwrap_or_default(),
            what: get_str(doc, &o, "what").unwrap_or_default(),
            target: get_str(doc, &o, "target").unwrap_or_default(),
            why: get_str(doc, &o, "why"),
            prev: get_str(doc, &o, "prev").unwrap_or_default(),
            hash: get_str(doc, &o, "hash").unwrap_or_default(),
        };
        if entry.prev != expected_prev || entry.hash != entry.digest() {
            problems.push(format!("设备 {short} 的查阅记录第 {seq} 条被改动过"));
        }
        expected_prev.clone_from(&entry.hash);
        entries.push(entry);
    }
    (entries, problems)
}

impl Archive {
    /// Appends an entry to this device's access log, durably, before the access it records
    /// is shown or written.
    ///
    /// The log is append-only and outlives a child's erasure, so what names a child is taken
    /// out of a reason before it is written, as out of a report's command
    /// ([`Archive::log_report`]): a child's name or 学籍号, a word of 10 or more digits. (Not
    /// refused: a refusal would tell a member which names belong to children of the school
    /// they may not see.)
    pub(crate) fn audit(&mut self, what: &str, target: &str, why: Option<&str>) -> Result<()> {
        let why = match why.map(str::trim).filter(|w| !w.is_empty()) {
            Some(w) => {
                // About one child (her ID number shown, her file opened; the member may see
                // it): what else names her or her family goes too, as an erasure's reason may
                // not hold it (`Archive::check_reason`): her given name, her parents' and
                // guardians' names and phones, addresses, employers, as her file holds them.
                let child = ChildId(target.to_owned());
                let w = if self.store.doc(&DocId::Child(child.clone()))?.is_some() {
                    let mut w = w.to_owned();
                    for (_, value) in self.identifying_values(&child)? {
                        if w.contains(value.as_str()) {
                            w = w.replace(value.as_str(), "＊");
                        }
                    }
                    w
                } else {
                    w.to_owned()
                };
                Some(self.without_children(&w)?)
            }
            None => None,
        };
        let device = self.device.clone();
        let doc_id = DocId::Audit(device.clone());
        let member = self.me.to_string();
        self.store.write(|b| {
            // The last entry is read inside the write, which holds the store's write lock:
            // another connection of this device (the hub's other archive, the CLI beside the
            // app) may have logged since this one last looked, and an entry written under the
            // same number would replace its entry (story 5 of `tests/tests/audit.rs`).
            let (last_seq, prev) = match b.doc(&doc_id)? {
                Some(doc) => {
                    let (entries, _) = read_log(&device, doc);
                    entries
                        .last()
                        .map_or((0, String::new()), |e| (e.seq, e.hash.clone()))
                }
                None => (0, String::new()),
            };
            let mut entry = AuditEntry {
                device: device.to_string(),
                seq: last_seq + 1,
                at: chrono::Utc::now().timestamp(),
                member,
                what: what.to_owned(),
                target: target.to_owned(),
                why,
                prev,
                hash: String::new(),
            };
            entry.hash = entry.digest();
            b.change(&doc_id, true, "查阅记录", |tx| {
                let list = match map_at(tx, &ROOT, AUDIT_ENTRIES) {
                    Some(l) => l,
                    None => tx.put_object(&ROOT, AUDIT_ENTRIES, ObjType::Map)?,
                };
                let o = tx.put_object(&list, seq_key(entry.seq), ObjType::Map)?;
                tx.put(&o, "at", entry.at)?;
                tx.put(&o, "member", entry.member.as_str())?;
                tx.put(&o, "device", entry.device.as_str())?;
                tx.put(&o, "what", entry.what.as_str())?;
                tx.put(&o, "target", entry.target.as_str())?;
                if let Some(why) = &entry.why {
                    tx.put(&o, "why", why.as_str())?;
                }
                tx.put(&o, "prev", entry.prev.as_str())?;
                tx.put(&o, "hash", entry.hash.as_str())?;
                Ok(())
            })
        })
    }

    /// Records a report that lists children's personal data in bulk (a whole-school list,
    /// any `--json` export of a list): `command` is what was run, without the store's path.
    /// Which reports the CLI records is its policy (ARCHITECTURE.md, "Access records").
    ///
    /// The access log is append-only and outlives a child's erasure, so what names a child
    /// is taken out of the command first (`report child --child 王小雨 --out 王小雨.xlsx`, a
    /// 学籍号, a 身份证号): every name and 学籍号 of a child this store holds, and every word of
    /// 10 or more digits, become `＊`.
    pub fn log_report(&mut self, command: &str, children: usize) -> Result<()> {
        let command = self.without_children(command.trim())?;
        let command: String = command.chars().take(200).collect();
        self.audit(
            what::REPORT,
            &format!("{command}（{children} 名学生）"),
            None,
        )
    }

    /// Records that this device's member issued an invite enrolling a device for `member`, as
    /// `role`, valid `days` days: whoever scans it writes and reads as that member from then
    /// on, so who handed it out is kept where it cannot be changed.
    pub fn log_invite(
        &mut self,
        member: &crate::ids::MemberId,
        role: &str,
        days: u32,
    ) -> Result<()> {
        let id = member;
        self.audit(
            what::INVITE,
            id.as_str(),
            Some(&format!("{role}，{days} 天内有效")),
        )
    }

    /// `text` with what names a child taken out (see [`Archive::log_report`]).
    fn without_children(&mut self, text: &str) -> Result<String> {
        let mut names: Vec<String> = self
            .store
            .conn()
            .prepare_cached("SELECT name, student_no FROM p_children")?
            .query_map([], |r| {
                Ok([
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                ])
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .flatten()
            .map(|n| n.trim().to_owned())
            .filter(|n| n.chars().count() >= 2)
            .collect();
        // Longest first: a name inside a longer one is taken out with it.
        names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        let mut out = text.to_owned();
        for name in &names {
            if out.contains(name.as_str()) {
                out = out.replace(name.as_str(), "＊");
            }
        }
        Ok(super::long_numbers::without_long_numbers(&out))
    }

    /// Every access log this device holds (its own; on an administrator's device and the hub,
    /// every device's that has synced), each chain checked.
    pub fn audit_log(&mut self) -> Result<AuditLog> {
        let mut log = AuditLog::default();
        for id in self.store.doc_ids()? {
            let DocId::Audit(device) = &id else {
                continue;
            };
            let Some(doc) = self.store.doc(&id)? else {
                continue;
            };
            let (entries, problems) = read_log(device, doc);
            log.entries.extend(entries);
            log.problems.extend(problems);
        }
        log.entries
            .sort_by(|a, b| (a.at, &a.device, a.seq).cmp(&(b.at, &b.device, b.seq)));
        Ok(log)
    }
}
