//! The care file: profile edits, records, the file view, conflicts and their resolution.

use std::collections::HashMap;

use automerge::ROOT;
use serde::Serialize;

use super::Archive;
use crate::dates::parse_past_date;
use crate::doc::access::{map_at, put_scalar, read_field, write_field};
use crate::doc::conflicts::{self, Conflict};
use crate::doc::{self, DocId};
use crate::error::{Error, Result};
use crate::forms::{FieldValue, parse_fields};
use crate::id_card::IdCardNumber;
use crate::ids::{ChildId, RecordId};
use crate::kinds::{DocPart, PROGRESS_FIELDS, RecordKind, SECTIONS, Section, section};
use crate::records::{self, NewRecord, RecordView, ShownField};
use crate::school::Member;

/// A record as a person enters it: raw strings, validated by [`Archive::add_record`].
#[derive(Debug, Clone, Default)]
pub struct RecordInput {
    pub kind: String,
    /// Child id, 学籍号 or name (for child and private records).
    pub child: Option<String>,
    /// Class id or name (for class records).
    pub class: Option<String>,
    /// The date it happened.
    pub date: String,
    /// `(field key or label, value)`.
    pub fields: Vec<(String, String)>,
}

/// A section of the file as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SectionView {
    pub key: String,
    pub label: String,
    pub fields: Vec<ShownField>,
}

/// One change in a file's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Device clock in seconds (advisory).
    pub time: i64,
    pub member: String,
    pub message: String,
}

/// A child's whole file, as the member using this device may see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChildFile {
    pub id: ChildId,
    pub name: String,
    pub class_name: Option<String>,
    pub sections: Vec<SectionView>,
    pub records: Vec<RecordView>,
    /// Open conflicts, with the document they are in.
    pub conflicts: Vec<(String, Conflict)>,
    pub history: Vec<HistoryEntry>,
    /// Whether the private part was available to show.
    pub private_shown: bool,
    /// The guardian consent the file records (`None`: none recorded).
    pub consent: Option<crate::consent::Consent>,
    /// Whether the school requires consent for the private part.
    pub consent_required: bool,
    /// The school's 个人信息保护负责人, shown at the foot of the file.
    pub privacy_officer: Option<crate::school::PrivacyOfficer>,
}

/// A child in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChildRow {
    pub id: ChildId,
    pub name: String,
    pub class_name: Option<String>,
    pub sex: Option<String>,
    pub parents_away: Option<String>,
    pub flags: Vec<&'static str>,
    pub records: i64,
    pub last_record: Option<String>,
}

/// What a member is told to do about what a guardian withdrew: who does it, in words any
/// app shows as they are (the CLI adds its command, `apps/cli`).
pub const ERASE_ADVICE: &str = "已有内容如需删除，请学校管理员删除这名学生的档案";

/// What a member is told to do where consent is missing (the CLI adds its command).
pub const CONSENT_ADVICE: &str = "请班主任或管理员先登记监护人同意书";

/// The error a write refused by consent gives: the reason, and what to do about it.
pub(super) fn consent_error(reason: &str, auth: &crate::trust::AuthState<'_>) -> Error {
    let next = if auth.consent.as_ref().is_some_and(|c| c.withdrawn.is_some()) {
        ERASE_ADVICE
    } else {
        CONSENT_ADVICE
    };
    Error::NotPermitted(format!("{reason}。{next}"))
}

fn doc_for(part: DocPart, child: &ChildId) -> DocId {
    match part {
        DocPart::Private => DocId::Private(child.clone()),
        DocPart::Staff => DocId::Staff(child.clone()),
        _ => DocId::Child(child.clone()),
    }
}

/// Shows an identity field masked: a 身份证号, and a 学籍号 that embeds one ("G" + the number).
pub(crate) fn mask_identity(key: &str, value: &str) -> String {
    match key {
        "id_card" => IdCardNumber::parse(value)
            .map(|id| id.masked())
            .unwrap_or_else(|_| value.to_owned()),
        "student_no" => {
            let digits = value.trim_start_matches(|c: char| c.is_ascii_alphabetic());
            match IdCardNumber::parse(digits) {
                Ok(id) => format!("{}{}", &value[..value.len() - digits.len()], id.masked()),
                Err(_) => value.to_owned(),
            }
        }
        _ => value.to_owned(),
    }
}

/// Masks the values of a conflict in an identity field as the field's value is shown
/// ([`mask_identity`]): every list of conflicts shown without revealing the private part (a
/// child's file, the office's 冲突 page) passes through it.
pub fn mask_conflict(c: &mut Conflict) {
    if let [section, key] = c.path.as_slice()
        && section == "identity"
    {
        let key = key.clone();
        for v in &mut c.values {
            *v = mask_identity(&key, v);
        }
    }
}

impl Archive {
    /// Edits fields of one section of a child's file (`guardian`, `father`, `flags`, …).
    pub fn edit_child(
        &mut self,
        child: &str,
        section_key: &str,
        raw: &[(String, String)],
    ) -> Result<()> {
        self.edit_child_sections(child, &[(section_key.to_owned(), raw.to_vec())])
    }

    /// Edits fields of several sections of a child's file in one write (the 联系卡's father,
    /// mother and guardian, saved together): every section is checked first, and one refused
    /// writes none of them.
    pub fn edit_child_sections(
        &mut self,
        child: &str,
        sections: &[(String, Vec<(String, String)>)],
    ) -> Result<()> {
        if sections.is_empty() {
            return Err(Error::Missing("要修改的内容".into()));
        }
        let child = self.find_child(child)?;
        let me = self.me()?;
        let school = self.school()?;
        let mut edits = Vec::with_capacity(sections.len());
        for (section_key, raw) in sections {
            edits.push(self.checked_section_edit(&child, &me, &school, section_key, raw)?);
        }
        let split = school.split_for_roles;
        let mut docs: Vec<DocId> = Vec::new();
        for (sec, values) in &edits {
            for (spec, _) in values {
                let id = doc_for(sec.part_of(spec.key, split), &child);
                if !docs.contains(&id) {
                    docs.push(id);
                }
            }
        }
        // Each document's change names the sections it holds: a carer reading the shared
        // file's history learns nothing of what changed in the staff part.
        let message_for = |doc_id: &DocId| {
            let mut labels: Vec<&str> = Vec::new();
            for (sec, values) in &edits {
                let here = values
                    .iter()
                    .any(|(spec, _)| doc_for(sec.part_of(spec.key, split), &child) == *doc_id);
                if here && !labels.contains(&sec.label) {
                    labels.push(sec.label);
                }
            }
            format!("修改{}", labels.join("、"))
        };
        self.store.write(|b| {
            for doc_id in &docs {
                b.touched_subject(doc_id);
                let staff = matches!(doc_id, DocId::Staff(_));
                let message = message_for(doc_id);
                b.change_judged(doc_id, staff, &message, |tx| {
                    for (sec, values) in &edits {
                        let mut here = values
                            .iter()
                            .filter(|(spec, _)| {
                                doc_for(sec.part_of(spec.key, split), &child) == *doc_id
                            })
                            .peekable();
                        if here.peek().is_none() {
                            continue;
                        }
                        let obj = map_at(tx, &ROOT, sec.key)
                            .ok_or_else(|| Error::Corrupt("档案结构".into()))?;
                        for (spec, v) in here {
                            write_field(tx, &obj, spec, v)?;
                        }
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
    }

    /// One section's edit of `child`'s file by `me`, checked as every other device will check
    /// the change (scope, consent, the field's writers) and as the field's value is typed.
    fn checked_section_edit(
        &mut self,
        child: &ChildId,
        me: &Member,
        school: &crate::school::SchoolView,
        section_key: &str,
        raw: &[(String, String)],
    ) -> Result<(Section, Vec<(&'static crate::forms::FieldSpec, FieldValue)>)> {
        let sec = section(section_key).ok_or_else(|| {
            let names: Vec<String> = SECTIONS
                .iter()
                .map(|s| format!("{}({})", s.key, s.label))
                .collect();
            Error::invalid(
                "栏目",
                format!("没有“{section_key}”，可选：{}", names.join("、")),
            )
        })?;
        let mut values = parse_fields(sec.fields, raw, true)?;
        if values.is_empty() {
            return Err(Error::Missing("要修改的内容".into()));
        }
        // Each field goes to the part of the file its readers hold (least collection).
        let mut docs: Vec<DocId> = Vec::new();
        for (spec, _) in &values {
            let id = doc_for(sec.part_of(spec.key, school.split_for_roles), child);
            if !docs.contains(&id) {
                docs.push(id);
            }
        }
        // The same rule every other device applies to this change when it arrives.
        let auth = crate::trust::AuthState {
            school,
            child_class: self.class_of(child)?,
            consent: self.consent_of(child)?,
        };
        for doc_id in &docs {
            self.require_care(me, doc_id)?;
            if let Some(reason) = crate::trust::consent_refusal(&auth, doc_id) {
                return Err(consent_error(&reason, &auth));
            }
        }
        for (spec, _) in &values {
            let doc_id = doc_for(sec.part_of(spec.key, school.split_for_roles), child);
            if !crate::trust::may_edit_field(&auth, me, &doc_id, sec.key, spec.key) {
                return Err(Error::NotPermitted(format!(
                    "{}（{}）不能修改{}的“{}”",
                    me.name,
                    me.role_labels(),
                    sec.label,
                    spec.label
                )));
            }
        }
        for (spec, v) in &mut values {
            self.check_typed(spec.key, v)?;
        }
        Ok((sec, values))
    }

    fn writer_role(&self, me: &Member, kind: RecordKind) -> Result<crate::roles::Role> {
        me.roles
            .iter()
            .copied()
            .find(|r| kind.writers().contains(r))
            .or_else(|| me.roles.iter().copied().find(|r| r.administers()))
            .ok_or_else(|| {
                Error::NotPermitted(format!("{}不能填写{}", me.role_labels(), kind.label()))
            })
    }

    /// Validates and writes a new record. Returns its id.
    pub fn add_record(&mut self, input: &RecordInput) -> Result<RecordId> {
        let kind = RecordKind::parse(&input.kind).ok_or_else(|| {
            let names: Vec<&str> = RecordKind::ALL.iter().map(|k| k.label()).collect();
            Error::invalid(
                "记录类型",
                format!("没有“{}”，可选：{}", input.kind, names.join("、")),
            )
        })?;
        let happened_on = parse_past_date("日期", &input.date, self.latest_allowed_date())?;
        let fields = parse_fields(kind.fields(), &input.fields, false)?;
        let me = self.me()?;
        let author_role = self.writer_role(&me, kind)?;
        let (doc_id, child) = match kind.part() {
            DocPart::Class => {
                let class = input
                    .class
                    .as_deref()
                    .ok_or_else(|| Error::Missing("班级".into()))?;
                (DocId::Class(self.find_class(class)?.id), None)
            }
            part => {
                let child = input
                    .child
                    .as_deref()
                    .ok_or_else(|| Error::Missing("学生".into()))?;
                let child = self.find_child(child)?;
                (doc_for(part, &child), Some(child))
            }
        };
        self.require_care(&me, &doc_id)?;
        if let Some(child) = &child {
            self.require_consent_for(child, &doc_id)?;
        }
        let rec = NewRecord {
            kind,
            child,
            happened_on,
            author: me.id.clone(),
            author_role,
            device: self.device.clone(),
            fields,
        };
        let message = format!("新增{}", kind.label());
        self.store.write(|b| {
            let now = b.now_ms();
            let id = RecordId::new(now);
            b.touched_record(&doc_id, &id);
            b.change(&doc_id, true, &message, |tx| {
                records::insert(tx, &id, &rec, now)
            })?;
            Ok(id)
        })
    }

    fn record_for_edit(
        &mut self,
        record: &str,
        voiding: bool,
    ) -> Result<(RecordId, DocId, RecordKind)> {
        let (rid, doc_id) = self.find_record(record)?;
        let me = self.me()?;
        self.require_care(&me, &doc_id)?;
        let doc = self
            .store
            .doc(&doc_id)?
            .ok_or_else(|| Error::not_found("记录", &rid))?;
        let meta = records::metas(doc)
            .into_iter()
            .find(|m| m.id == rid)
            .ok_or_else(|| Error::not_found("记录", &rid))?;
        let kind = meta
            .kind()
            .ok_or_else(|| Error::NotPermitted("这条记录来自新版本，请升级后再修改".into()))?;
        // A record is edited only by its author, and voided by its author or an administrator
        // (the rules every device checks, crate::trust).
        let own = meta.author == me.id.as_str();
        let admin_voiding = voiding && me.roles.iter().any(|r| r.administers());
        if !(own || admin_voiding) {
            return Err(Error::NotPermitted(if voiding {
                "只能作废自己填写的记录（校长或档案管理员可以作废任何记录）".into()
            } else {
                "只能修改自己填写的记录".into()
            }));
        }
        Ok((rid, doc_id, kind))
    }

    /// Edits fields (and optionally the date) of a record.
    pub fn edit_record(
        &mut self,
        record: &str,
        date: Option<&str>,
        raw: &[(String, String)],
    ) -> Result<()> {
        let (rid, doc_id, kind) = self.record_for_edit(record, false)?;
        let today = self.latest_allowed_date();
        let date = date
            .map(|d| parse_past_date("日期", d, today))
            .transpose()?;
        let fields = parse_fields(kind.fields(), raw, true)?;
        if fields.is_empty() && date.is_none() {
            return Err(Error::Missing("要修改的内容".into()));
        }
        let message = format!("修改{}", kind.label());
        self.store.write(|b| {
            b.touched_record(&doc_id, &rid);
            b.change_judged(&doc_id, false, &message, |tx| {
                records::edit(tx, &rid, date, &fields)
            })
        })
    }

    /// Voids (作废) a record with a reason. It stays in the file, marked.
    pub fn void_record(&mut self, record: &str, reason: &str) -> Result<()> {
        let (rid, doc_id, kind) = self.record_for_edit(record, true)?;
        let me = self.me.clone();
        let message = format!("作废{}", kind.label());
        self.store.write(|b| {
            let now = b.now_ms();
            b.touched_record(&doc_id, &rid);
            b.change_judged(&doc_id, false, &message, |tx| {
                records::void(tx, &rid, &me, now, reason)
            })
        })
    }

    /// Adds a 进步档案 entry to a 学习帮扶计划.
    pub fn add_progress(
        &mut self,
        plan: &str,
        date: &str,
        raw: &[(String, String)],
    ) -> Result<RecordId> {
        let (rid, doc_id) = self.find_record(plan)?;
        let me = self.me()?;
        self.require_care(&me, &doc_id)?;
        let kind = {
            let doc = self
                .store
                .doc(&doc_id)?
                .ok_or_else(|| Error::not_found("记录", &rid))?;
            records::metas(doc)
                .into_iter()
                .find(|m| m.id == rid)
                .and_then(|m| m.kind())
                .ok_or_else(|| Error::not_found("记录", &rid))?
        };
        let writes = me
            .roles
            .iter()
            .any(|r| RecordKind::StudyPlan.writers().contains(r) || r.administers());
        if !writes {
            return Err(Error::NotPermitted(format!(
                "{}不能添加进步档案",
                me.role_labels()
            )));
        }
        if kind != RecordKind::StudyPlan {
            return Err(Error::NotPermitted(
                "只有学习帮扶计划可以添加进步档案".into(),
            ));
        }
        if let Some(child) = doc_id.child() {
            self.require_consent_for(&child.clone(), &doc_id)?;
        }
        let date = parse_past_date("日期", date, self.latest_allowed_date())?;
        let fields = parse_fields(PROGRESS_FIELDS, raw, false)?;
        let me = self.me.clone();
        self.store.write(|b| {
            let now = b.now_ms();
            let entry = RecordId::new(now);
            b.touched_record(&doc_id, &rid);
            b.change_judged(&doc_id, false, "新增进步档案", |tx| {
                records::add_progress(tx, &rid, &entry, date, &me, now, &fields)
            })?;
            Ok(entry)
        })
    }

    /// A child's file as this member may see it.
    /// For the device's own checks (conflicts, what changed): not recorded in the access log;
    /// a person opening the file goes through [`Archive::child_file_for`].
    pub fn child_file(&mut self, child: &str) -> Result<ChildFile> {
        self.read_child_file(child, None, false, true)
    }

    /// A child's file read by a person for its conflicts (listing them, resolving one): the
    /// values of a conflict in the private part are shown, so that is recorded in the access
    /// log as opening the part, first. A file with none there records nothing.
    pub fn child_conflicts_for(&mut self, child: &str) -> Result<ChildFile> {
        let file = self.child_file(child)?;
        let private = DocId::Private(file.id.clone()).key();
        if file.conflicts.iter().any(|(doc, _)| *doc == private) {
            self.audit(super::audit_kind::PRIVATE_VIEW, file.id.as_str(), None)?;
        }
        Ok(file)
    }

    /// A child's file opened by a person (`why`, if asked): opening a private part is recorded
    /// in this device's access log first (see `audit.rs`).
    pub fn child_file_for(&mut self, child: &str, why: Option<&str>) -> Result<ChildFile> {
        self.read_child_file(child, Some(why), false, true)
    }

    /// The file with its ID numbers shown in full ([`Archive::reveal_id`] checks and records
    /// the request first).
    pub(super) fn child_file_revealed(&mut self, child: &str) -> Result<ChildFile> {
        self.read_child_file(child, None, true, true)
    }

    /// [`Archive::child_file_revealed`] for a person: opening the private part is recorded as
    /// [`Archive::child_file_for`] records it (one child's report, `reports.rs`).
    pub(super) fn child_file_revealed_for(&mut self, child: &str) -> Result<ChildFile> {
        self.read_child_file(child, Some(None), true, true)
    }

    /// The file's sections only (ID numbers masked; no records, conflicts or history), for a
    /// report that lists many children (`reports.rs` records the report itself).
    pub(super) fn child_sections(&mut self, child: &str) -> Result<ChildFile> {
        self.read_child_file(child, None, false, false)
    }

    /// The file's sections with ID numbers in full, for a report whose ID numbers were asked
    /// for with a reason (`reports.rs` checks and records the request first).
    pub(super) fn child_sections_revealed(&mut self, child: &str) -> Result<ChildFile> {
        self.read_child_file(child, None, true, false)
    }

    /// `full`: with the records, conflicts and history (else the sections only).
    fn read_child_file(
        &mut self,
        child: &str,
        opened: Option<Option<&str>>,
        reveal: bool,
        full: bool,
    ) -> Result<ChildFile> {
        // The school view once, not once per check: a report reads thousands of files.
        let school = self.school()?;
        let me = school
            .member(&self.me)
            .cloned()
            .ok_or_else(|| Error::not_found("成员", self.me.clone()))?;
        // A child whose file this member may not see is answered as one who does not exist.
        let child = self.find_child_seen_by(&me, child)?;
        let shared = DocId::Child(child.clone());
        let private = DocId::Private(child.clone());
        let sees =
            |doc: &DocId| super::scope::may_see(&school, &me, doc, &mut |c| self.child_facts(c));
        let (sees_private, sees_staff) = (sees(&private)?, sees(&DocId::Staff(child.clone()))?);
        let private_shown = sees_private && self.store.doc(&private)?.is_some();
        if private_shown && let Some(why) = opened {
            self.audit(super::audit_kind::PRIVATE_VIEW, child.as_str(), why)?;
        }
        let staff = DocId::Staff(child.clone());
        let staff_shown = sees_staff && self.store.doc(&staff)?.is_some();
        let mut docs = vec![shared];
        if private_shown {
            docs.push(private);
        }
        if staff_shown {
            docs.push(staff);
        }
        let mut file = ChildFile {
            id: child.clone(),
            name: String::new(),
            class_name: None,
            sections: Vec::new(),
            records: Vec::new(),
            conflicts: Vec::new(),
            history: Vec::new(),
            private_shown,
            consent: self.consent_of(&child)?,
            consent_required: school.consent_required,
            privacy_officer: school.privacy_officer.clone(),
        };
        let devices: HashMap<String, String> = school
            .devices
            .iter()
            .map(|d| (d.id.0.clone(), school.member_name(d.member.as_str())))
            .collect();
        // Each document once (a field's document is looked up per field otherwise), then the
        // fields in the form's order.
        let mut shown: Vec<Vec<Option<ShownField>>> = SECTIONS
            .iter()
            .map(|sec| sec.fields.iter().map(|_| None).collect())
            .collect();
        let mut held = [false; SECTIONS.len()];
        for id in &docs {
            let Some(doc) = self.store.doc(id)? else {
                continue;
            };
            for (si, sec) in SECTIONS.iter().enumerate() {
                for (fi, f) in sec.fields.iter().enumerate() {
                    if doc_for(sec.part_of(f.key, school.split_for_roles), &child) == *id {
                        held[si] = true;
                        shown[si][fi] = section_field(doc, sec, f);
                    }
                }
            }
        }
        for ((sec, fields), held) in SECTIONS.iter().zip(shown).zip(held) {
            if held {
                file.sections.push(SectionView {
                    key: sec.key.to_owned(),
                    label: sec.label.to_owned(),
                    fields: fields.into_iter().flatten().collect(),
                });
            }
        }
        for id in docs.iter().filter(|_| full) {
            let Some(doc) = self.store.doc(id)? else {
                continue;
            };
            file.records.extend(records::views(doc));
            file.conflicts
                .extend(conflicts::list(doc).into_iter().map(|c| (id.key(), c)));
            for meta in doc.get_changes_meta(&[]) {
                let Some(message) = meta
                    .message
                    .as_ref()
                    .map(|m| crate::trust::display_message(m).to_owned())
                else {
                    continue;
                };
                let device = crate::trust::device_of_actor(&school, &meta.actor);
                file.history.push(HistoryEntry {
                    time: meta.timestamp,
                    member: device
                        .and_then(|d| devices.get(d.as_str()))
                        .cloned()
                        .unwrap_or_else(|| "未知设备".into()),
                    message,
                });
            }
        }
        file.records.sort_by(|a, b| {
            (&a.meta.happened_on, a.meta.written_at, &a.meta.id).cmp(&(
                &b.meta.happened_on,
                b.meta.written_at,
                &b.meta.id,
            ))
        });
        file.history.sort_by_key(|h| h.time);
        let profile = file.sections.first();
        file.name = profile
            .and_then(|p| p.fields.iter().find(|f| f.key == "name"))
            .map(|f| f.value.clone())
            .unwrap_or_default();
        file.class_name = self
            .class_of(&child)?
            .and_then(|c| school.class(&c).map(|c| c.name.clone()));
        for sec in &mut file.sections {
            for f in &mut sec.fields {
                if f.key == "class_id" {
                    if let Some(c) = school.classes.iter().find(|c| c.id.as_str() == f.value) {
                        f.value = c.name.clone();
                    }
                } else if !reveal && sec.key == "identity" {
                    f.value = mask_identity(&f.key, &f.value);
                }
            }
        }
        // A conflict shows every value of the field: an identity field's are masked as its
        // value is (unless revealed, which the access log records).
        if !reveal {
            for (_, c) in &mut file.conflicts {
                mask_conflict(c);
            }
        }
        Ok(file)
    }

    /// Checks and normalises a value typed into a child's field `key`, beyond what its kind
    /// checks: a 身份证号 must be one (GB 11643, kept with a capital X), a class is named by
    /// its name and kept as its id.
    fn check_typed(&mut self, key: &str, v: &mut FieldValue) -> Result<()> {
        match (key, &*v) {
            ("id_card", FieldValue::Str(s)) => {
                *v = FieldValue::Str(IdCardNumber::parse(s)?.as_str().to_owned());
            }
            ("class_id", FieldValue::Str(s)) => {
                *v = FieldValue::Str(self.find_class(s)?.id.0);
            }
            _ => {}
        }
        Ok(())
    }

    /// Resolves a conflict at `path` (`guardian.phone`) in a child's file, either by picking one
    /// of the values shown (1-based) or with a new value.
    pub fn resolve(
        &mut self,
        child: &str,
        path: &str,
        pick: Option<usize>,
        value: Option<&str>,
    ) -> Result<()> {
        let me = self.me()?;
        // A child whose file this member may not see is answered as one who does not exist.
        let child = self.find_child_seen_by(&me, child)?;
        let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
        let mut target = None;
        for id in [
            DocId::Child(child.clone()),
            DocId::Staff(child.clone()),
            DocId::Private(child.clone()),
        ] {
            let conflict_here = |a: &mut Self| -> Result<bool> {
                Ok(a.store
                    .doc(&id)?
                    .is_some_and(|doc| conflicts::list(doc).iter().any(|c| c.path == parts)))
            };
            if !self.may_see(&me, &id)? {
                // Held still, but closed to this member since (a withdrawal of consent to
                // the private part, not yet purged here): say why, to her alone.
                if matches!(id, DocId::Private(_))
                    && self.closed_by_withdrawal(&me, &child)?
                    && conflict_here(self)?
                {
                    self.require_care(&me, &id)?;
                }
                continue;
            }
            if conflict_here(self)? {
                target = Some(id);
                break;
            }
        }
        let doc_id = target.ok_or_else(|| Error::not_found("冲突", path))?;
        // A field of a section: the rule every other device applies to the change.
        if let [section, field] = parts.as_slice()
            && section != doc::RECORDS
        {
            let school = self.school()?;
            let auth = crate::trust::AuthState {
                school: &school,
                child_class: self.class_of(&child)?,
                consent: self.consent_of(&child)?,
            };
            if !crate::trust::may_edit_field(&auth, &me, &doc_id, section, field) {
                return Err(match crate::trust::consent_refusal(&auth, &doc_id) {
                    Some(reason) if !field.starts_with(crate::consent::PREFIX) => {
                        consent_error(&reason, &auth)
                    }
                    _ => Error::NotPermitted(format!(
                        "{}（{}）不能修改“{path}”",
                        me.name,
                        me.role_labels()
                    )),
                });
            }
        }
        let latest = self.latest_allowed_date();
        let doc = self.store.doc(&doc_id)?.ok_or(Error::NotInitialised)?;
        let chosen = match (pick, value) {
            (Some(n), None) => {
                let values = conflicts::values_at(doc, &parts);
                n.checked_sub(1)
                    .and_then(|i| values.get(i).cloned())
                    .ok_or_else(|| {
                        Error::invalid("选择", format!("请填1到{}之间的数字", values.len()))
                    })?
            }
            (None, Some(v)) => conflicts::parse_for_path(doc, &parts, v)?,
            _ => {
                return Err(Error::invalid(
                    "解决冲突",
                    "请选择一个已有的值，或填写新值（二选一）",
                ));
            }
        };
        // A record's date or a progress entry's, as when it is entered: not after today by
        // this device's clock (every other device bounds it by the change's clock,
        // `trust::rules`).
        let keys: Vec<&str> = parts.iter().map(String::as_str).collect();
        if let FieldValue::Date(d) = &chosen
            && matches!(
                keys.as_slice(),
                [doc::RECORDS, _, doc::R_HAPPENED]
                    | [doc::RECORDS, _, doc::R_PROGRESS, _, doc::R_PROGRESS_DATE]
            )
        {
            parse_past_date("日期", &d.format("%Y-%m-%d").to_string(), latest)?;
        }
        let label = conflicts::spec_for_path(doc, &parts).1;
        // A new value of a section's field takes the checks it takes when typed (a 身份证号
        // that is one, a class named by its name).
        let mut chosen = chosen;
        if value.is_some()
            && let [section, field] = parts.as_slice()
            && section != doc::RECORDS
        {
            self.check_typed(field, &mut chosen)?;
        }
        let (last, parents) = parts
            .split_last()
            .ok_or_else(|| Error::invalid("字段", path))?;
        let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
        let message = format!("解决冲突：{label}");
        // A conflict may sit anywhere in the file (a record's fields, a progress entry): the
        // change is judged by the rules every other device applies to it before it is kept, so
        // this device never holds a change the others refuse (and every later change of the
        // file with it).
        let (school, child_class, consent) = (
            self.school()?,
            self.class_of(&child)?,
            self.consent_of(&child)?,
        );
        self.store.write(|b| {
            match parts.as_slice() {
                [records, rid, ..] if records == doc::RECORDS => {
                    b.touched_record(&doc_id, &RecordId(rid.clone()))
                }
                _ => b.touched_subject(&doc_id),
            }
            let before = b.doc(&doc_id)?.map(automerge::Automerge::get_heads);
            b.change(&doc_id, false, &message, |tx| {
                let obj =
                    doc::map_at_path(tx, &parents).ok_or_else(|| Error::not_found("字段", path))?;
                put_scalar(tx, &obj, last, &chosen)
            })?;
            let doc = b.doc(&doc_id)?.ok_or(Error::NotInitialised)?;
            if Some(doc.get_heads()) == before {
                return Ok(());
            }
            let change = doc
                .get_last_local_change()
                .ok_or_else(|| Error::not_found("修改", path))?;
            let auth = crate::trust::AuthState {
                school: &school,
                child_class: child_class.clone(),
                consent: consent.clone(),
            };
            match crate::trust::validate(&doc_id, doc, &change, &auth) {
                crate::trust::Verdict::Accept => Ok(()),
                crate::trust::Verdict::Refuse(why) | crate::trust::Verdict::Defer(why) => {
                    Err(Error::NotPermitted(format!(
                        "{}（{}）不能这样解决这处冲突：{why}",
                        me.name,
                        me.role_labels()
                    )))
                }
            }
        })
    }

    /// Children on this device, optionally only one class or only those this member cares for.
    /// Children who left the school are not listed (see [`Archive::left_children`]).
    pub fn children(&mut self, class: Option<&str>, mine_only: bool) -> Result<Vec<ChildRow>> {
        let class = class.map(|c| self.find_class(c)).transpose()?;
        let school = self.school()?;
        let me = self.me()?;
        struct Row {
            id: String,
            name: String,
            class_id: Option<String>,
            sex: Option<String>,
            away: Option<String>,
            flags: [Option<bool>; 3],
            records: i64,
            last: Option<String>,
            /// The private part's records, and the latest of them (not in the two above).
            private: i64,
            private_last: Option<String>,
        }
        // The records' count and latest date per child, the private part's apart: a member
        // who may not see the part (the guardian withdrew it; the hub keeps it for the
        // administrators) is not told how many it holds. One pass over the records.
        let mut counts: HashMap<String, [(i64, Option<String>); 2]> = HashMap::new();
        {
            let mut stmt = self.store.conn().prepare_cached(
                "SELECT child_id, doc_id LIKE '%/private', count(*), max(happened_on)
                 FROM p_records WHERE voided = 0 AND child_id IN
                     (SELECT child_id FROM p_children WHERE ?1 IS NULL OR class_id = ?1)
                 GROUP BY child_id, doc_id LIKE '%/private'",
            )?;
            let mut rows = stmt.query([class.as_ref().map(|c| c.id.as_str())])?;
            while let Some(r) = rows.next()? {
                let private: bool = r.get(1)?;
                counts.entry(r.get(0)?).or_default()[usize::from(private)] = (r.get(2)?, r.get(3)?);
            }
        }
        let rows: Vec<Row> = {
            let mut stmt = self.store.conn().prepare_cached(
                "SELECT c.child_id, c.name, c.class_id, c.sex, c.parents_away, c.hardship, c.talent, c.special
                 FROM p_children c
                 WHERE (?1 IS NULL OR c.class_id = ?1)
                 ORDER BY c.class_id, c.name",
            )?;
            stmt.query_map([class.as_ref().map(|c| c.id.as_str())], |r| {
                let id: String = r.get(0)?;
                let [(records, last), (private, private_last)] =
                    counts.remove(&id).unwrap_or_default();
                Ok(Row {
                    id,
                    name: r.get(1)?,
                    class_id: r.get(2)?,
                    sex: r.get(3)?,
                    away: r.get(4)?,
                    flags: [r.get(5)?, r.get(6)?, r.get(7)?],
                    records,
                    last,
                    private,
                    private_last,
                })
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut out = Vec::new();
        for Row {
            id,
            name,
            class_id,
            sex,
            away,
            flags,
            mut records,
            mut last,
            private,
            private_last,
        } in rows
        {
            let child = ChildId(id);
            // A child who left the school is listed only on request (`left_children`); one
            // whose file this device keeps only until the school has the member's unsent work
            // on it (`purge_out_of_scope`) is not hers to see.
            if school.has_left(&child)
                || !self.may_see(&me, &DocId::Child(child.clone()))?
                || (mine_only && !self.cares_for(&me, &child)?)
            {
                continue;
            }
            if private > 0 && self.may_see(&me, &DocId::Private(child.clone()))? {
                records += private;
                last = last.max(private_last);
            }
            // The 三特 flags of a split school come from the staff part: shown to whoever
            // holds it (a device that holds every part, the hub's lent to a member by the
            // console, holds more than she may see).
            let flags =
                if !school.split_for_roles || self.may_see(&me, &DocId::Staff(child.clone()))? {
                    flags
                } else {
                    [None; 3]
                };
            let labels = ["特困生", "特长生", "特殊学生"];
            out.push(ChildRow {
                class_name: class_id
                    .as_deref()
                    .and_then(|c| school.classes.iter().find(|k| k.id.as_str() == c))
                    .map(|c| c.name.clone()),
                flags: flags
                    .iter()
                    .zip(labels)
                    .filter(|(f, _)| **f == Some(true))
                    .map(|(_, l)| l)
                    .collect(),
                id: child,
                name,
                sex,
                parents_away: away,
                records,
                last_record: last,
            });
        }
        Ok(out)
    }
}

fn section_field(
    doc: &automerge::Automerge,
    sec: &Section,
    f: &crate::forms::FieldSpec,
) -> Option<ShownField> {
    let obj = map_at(doc, &ROOT, sec.key)?;
    read_field(doc, &obj, f).map(|v| ShownField {
        key: f.key.to_owned(),
        label: f.label.to_owned(),
        value: f.display(&v),
    })
}
