//! Least collection per role (issue 11 point 6, 《儿童个人信息网络保护规定》第15条): what each
//! role receives is decided per document by `scope::may_see`, so a field a role does not need
//! lives in a document that role does not receive.
//!
//! - `child/<id>/staff` holds the fields of a child's file only the 班主任 and administrators
//!   need: the 三特 flags, the parents' work place and employer, the guardian's occupation, age
//!   and health ([`crate::kinds::Section::part_of`]). The shared file keeps what a carer needs
//!   to care and to reach the family.
//! - `contact/<member>` holds a member's phone number instead of the school document, which
//!   every member holds. Who holds which is `scope::may_reach`.
//! - ID numbers are masked in every view and list; [`Archive::reveal_id`] shows them to a role
//!   that needs them, with a reason, recorded in the device's access log first.
//!
//! A school made by an older build keeps every field in the shared file and every phone in the
//! school document until an administrator runs [`Archive::split_for_roles`] (`shouwang school
//! split`): it marks the school split, moves the phones into contact documents, moves each
//! child's staff fields into the staff part and re-bases the child's file (`rebase.rs`), so
//! the moved values leave the history every carer's copy holds; each device replaces its copy
//! at its next sync or import. The phone numbers also leave the school document's history: it
//! is rewritten change by change without them (`store::school_history`), and every replica
//! switches to the rewritten history when it meets one that has.

use automerge::ROOT;
use serde::Serialize;

use super::Archive;
use crate::doc::access::{get_str, map_at, put_str, read_field, write_field};
use crate::doc::layout::{CONTACT, MEMBERS};
use crate::doc::{DocId, map_at_path};
use crate::error::{Error, Result};
use crate::ids::MemberId;
use crate::kinds::{DocPart, SECTIONS};
use crate::school;

/// A member whose phone number this device holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactRow {
    pub member: MemberId,
    pub name: String,
    /// The member's roles, in Chinese.
    pub roles: String,
    pub phone: Option<String>,
}

/// What splitting an old school's files did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SplitReport {
    /// Children whose staff fields were moved (and whose file was re-based).
    pub children: usize,
    /// Members whose phone moved out of the school document.
    pub phones: usize,
    /// Changes of the school document's history rewritten without the phone numbers
    /// (`store::school_history`).
    pub history: usize,
}

/// The reason recorded for the re-basing a split makes.
const SPLIT_REASON: &str = "按角色拆分档案（最少够用）";

impl Archive {
    /// The members whose phone number this device holds, as its member may see them (see
    /// `scope::may_reach`). In a school not split yet, the school document still carries
    /// every phone.
    pub fn contacts(&mut self) -> Result<Vec<ContactRow>> {
        let school = self.school()?;
        let mut out = Vec::new();
        for m in school.members.iter().filter(|m| m.active) {
            let phone = match self.store.doc(&DocId::Contact(m.id.clone()))? {
                Some(doc) => map_at(doc, &ROOT, CONTACT).and_then(|o| get_str(doc, &o, "phone")),
                None if school.split_for_roles => continue,
                None => m.phone.clone(),
            };
            out.push(ContactRow {
                member: m.id.clone(),
                name: m.name.clone(),
                roles: m.role_labels(),
                phone,
            });
        }
        Ok(out)
    }

    /// A child's file with the ID numbers shown in full: for a role that needs them (the
    /// 班主任 of the child's class, administrators), with a reason, recorded in this device's
    /// access log before anything is shown.
    pub fn reveal_id(&mut self, child: &str, why: &str) -> Result<crate::archive::ChildFile> {
        let why = why.trim();
        if why.is_empty() {
            return Err(Error::Missing("查看完整身份证号的原因".into()));
        }
        crate::forms::check_line("原因", why, 200)?;
        let me = self.me()?;
        let id = self.find_child_seen_by(&me, child)?;
        let private = DocId::Private(id.clone());
        if !self.may_see(&me, &private)? {
            if self.closed_by_withdrawal(&me, &id)? {
                return Err(Error::NotPermitted(
                    "监护人已撤回对隐私部分的同意，只有学校管理员还保留这部分信息，不能再查看身份证号"
                        .into(),
                ));
            }
            return Err(Error::NotPermitted(format!(
                "{}（{}）不能查看这名学生的身份证号",
                me.name,
                me.role_labels()
            )));
        }
        self.audit(super::audit_kind::ID_REVEAL, id.as_str(), Some(why))?;
        self.child_file_revealed(id.as_str())
    }

    /// Splits the files of a school made by an older build by role (see the module docs).
    /// Administrators only. Running it again moves only what is left (nothing, normally).
    pub fn split_for_roles(&mut self) -> Result<SplitReport> {
        self.require_admin()?;
        let mut report = SplitReport::default();
        let view = self.school()?;
        let phones: Vec<(MemberId, String)> = view
            .members
            .iter()
            .filter_map(|m| Some((m.id.clone(), m.phone.clone()?)))
            .collect();
        if !view.split_for_roles || !phones.is_empty() {
            self.store.write(|b| {
                b.change(&DocId::School, false, "按角色拆分档案", |tx| {
                    school::split_for_roles(tx)?;
                    for (m, _) in &phones {
                        if let Some(obj) = map_at_path(tx, &[MEMBERS, m.as_str()]) {
                            automerge::transaction::Transactable::delete(tx, &obj, "phone")?;
                        }
                    }
                    Ok(())
                })?;
                for (m, phone) in &phones {
                    write_contact(b, m, phone)?;
                }
                Ok(())
            })?;
            report.phones = phones.len();
        }
        // The numbers leave the school document's history too, in every copy that meets this one.
        report.history = self.store.write(|b| b.purge_school_history())?;
        let children: Vec<DocId> = self
            .store
            .doc_ids()?
            .into_iter()
            .filter(|d| matches!(d, DocId::Child(_)))
            .collect();
        for id in children {
            let Some(child) = id.child().cloned() else {
                continue;
            };
            if self.move_staff_fields(&child)? {
                self.rebase_child(child.as_str(), SPLIT_REASON)?;
                report.children += 1;
            }
        }
        Ok(report)
    }

    /// Moves the staff fields the shared file of `child` still holds into its staff part, in
    /// one write. Whether there was anything to move.
    fn move_staff_fields(&mut self, child: &crate::ids::ChildId) -> Result<bool> {
        let shared = DocId::Child(child.clone());
        let Some(doc) = self.store.doc(&shared)? else {
            return Ok(false);
        };
        let mut moved = Vec::new();
        for sec in &SECTIONS {
            let Some(obj) = map_at(doc, &ROOT, sec.key) else {
                continue;
            };
            for f in sec.fields {
                if sec.part_of(f.key, true) != DocPart::Staff {
                    continue;
                }
                if let Some(v) = read_field(doc, &obj, f) {
                    moved.push((*sec, *f, v));
                }
            }
        }
        if moved.is_empty() {
            return Ok(false);
        }
        let staff = DocId::Staff(child.clone());
        self.store.write(|b| {
            b.touched_subject(&staff);
            b.touched_subject(&shared);
            b.change(&staff, true, "按角色拆分档案", |tx| {
                for (sec, f, v) in &moved {
                    let obj = map_at(tx, &ROOT, sec.key)
                        .ok_or_else(|| Error::Corrupt("档案结构".into()))?;
                    write_field(tx, &obj, f, v)?;
                }
                Ok(())
            })?;
            b.change(&shared, false, "按角色拆分档案", |tx| {
                for (sec, f, _) in &moved {
                    let obj = map_at(tx, &ROOT, sec.key)
                        .ok_or_else(|| Error::Corrupt("档案结构".into()))?;
                    automerge::transaction::Transactable::delete(tx, &obj, f.key)?;
                }
                Ok(())
            })
        })?;
        Ok(true)
    }
}

/// Writes a member's phone into their contact document (created if new).
pub(super) fn write_contact(
    b: &mut crate::store::Batch<'_>,
    member: &MemberId,
    phone: &str,
) -> Result<()> {
    b.change(
        &DocId::Contact(member.clone()),
        true,
        "登记联系电话",
        |tx| {
            let obj =
                map_at(tx, &ROOT, CONTACT).ok_or_else(|| Error::Corrupt("联系方式".into()))?;
            put_str(tx, &obj, "phone", phone)
        },
    )
}
