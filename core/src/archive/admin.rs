//! Running the school: classes, members, pairings, rules and the roster.

use std::collections::HashMap;

use super::Archive;
use crate::doc::DocId;
use crate::doc::access::{map_at, read_all, write_field};
use crate::error::{Error, Result};
use crate::forms::{FieldSpec, FieldValue, parse_phone};
use crate::ids::{ChildId, ClassId, MemberId, PairingId};
use crate::kinds::{GUARDIAN, IDENTITY, PROFILE, Section};
use crate::roles::Role;
use crate::roster::RosterRow;
use crate::rules::parse_rule;
use crate::school::{self, ClassInfo, Member, Pairing};

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RosterReport {
    pub rows: usize,
    pub new_children: usize,
    /// Fields whose value in the archive differed from the file's. Left as they were, unless
    /// the import was run with `update`.
    pub differences: Vec<RosterDifference>,
    /// How many differences were overwritten with the file's value (`update` only).
    pub updated: usize,
    /// Rows whose 身份证号 and 学籍号 were not stored because the child's guardian has not
    /// consented to the private part (or withdrew consent): they are in no document, and the
    /// same roster imported again once consent is recorded stores them.
    pub withheld: Vec<Withheld>,
}

/// A roster row whose identity numbers were not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Withheld {
    pub line: usize,
    pub child: String,
    /// Why, in Chinese.
    pub reason: String,
}

/// One field where the roster file and the archive disagree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RosterDifference {
    /// The row's line in the file.
    pub line: usize,
    /// The child's name as the file gives it.
    pub child: String,
    pub student_no: Option<String>,
    /// The field's Chinese label (`家庭住址`, `监护人·电话`).
    pub field: String,
    pub in_file: String,
    /// The archive's value; several joined with ` / ` when the field is in conflict.
    pub in_archive: String,
}

/// What [`Archive::set_class_head`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClassHeadChange {
    pub class: String,
    /// The children of the class, whose files (private parts included) the new head now sees.
    pub children: usize,
    pub new_head: String,
    /// Whether the new head did not hold the 班主任 role before.
    pub new_head_gains_role: bool,
    pub old_head: Option<String>,
    /// Whether the old head heads no other class and so loses the 班主任 role.
    pub old_head_loses_role: bool,
    /// False when the member named already headed the class: nothing was written.
    pub changed: bool,
}

/// A head change worked out, before it is written.
struct HeadPlan {
    change: ClassHeadChange,
    class: ClassInfo,
    new: Member,
    old: Option<Member>,
}

fn require_active(m: &Member) -> Result<()> {
    if m.active {
        Ok(())
    } else {
        Err(Error::NotPermitted(format!(
            "{}已停用，不能担任班主任",
            m.name
        )))
    }
}

fn spec(section: &Section, key: &str) -> Result<&'static FieldSpec> {
    section
        .fields
        .iter()
        .find(|f| f.key == key)
        .ok_or_else(|| Error::Corrupt(format!("表单缺少{key}")))
}

impl Archive {
    /// Adds a class, optionally naming its 班主任 (who is given the role). A class that already
    /// exists is refused, naming its current head: changing a head is [`Archive::set_class_head`].
    pub fn add_class(&mut self, name: &str, head_teacher: Option<&str>) -> Result<ClassId> {
        self.require_admin()?;
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Missing("班级名称".into()));
        }
        crate::forms::check_line("班级名称", name, 50)?;
        let id = ClassId::for_name(&self.school_id, name);
        let school = self.school()?;
        if let Some(existing) = school.class(&id) {
            let head = existing.head_teacher.as_ref().map_or_else(
                || "还没有班主任".to_owned(),
                |h| format!("班主任是{}", school.member_name(h.as_str())),
            );
            return Err(Error::NotPermitted(format!(
                "班级“{}”已经存在（{head}），没有改动；要更换班主任，请用 class head 命令",
                existing.name
            )));
        }
        let head = head_teacher.map(|h| self.find_member(h)).transpose()?;
        if let Some(h) = &head {
            require_active(h)?;
        }
        let class = ClassInfo {
            id: id.clone(),
            name: name.to_owned(),
            head_teacher: head.as_ref().map(|m| m.id.clone()),
        };
        self.store.write(|b| {
            b.change(&DocId::School, false, "添加班级", |tx| {
                school::put_class(tx, &class)?;
                if let Some(h) = &head {
                    school::grant_role(tx, &h.id, Role::HeadTeacher)?;
                }
                Ok(())
            })
        })?;
        Ok(id)
    }

    /// What [`Archive::set_class_head`] would do, without writing anything (`changed`: whether
    /// it would write): for a page that says what changes hands before it is confirmed. The
    /// same checks and refusals as `set_class_head`.
    pub fn class_head_change(&mut self, class: &str, head: &str) -> Result<ClassHeadChange> {
        Ok(self.plan_class_head(class, head)?.change)
    }

    fn plan_class_head(&mut self, class: &str, head: &str) -> Result<HeadPlan> {
        self.require_admin()?;
        let class = self.find_class(class)?;
        let new = self.find_member(head)?;
        require_active(&new)?;
        let school = self.school()?;
        let children: i64 = self.store.conn().query_row(
            "SELECT COUNT(*) FROM p_children WHERE class_id = ?1",
            [class.id.as_str()],
            |r| r.get(0),
        )?;
        let old = class
            .head_teacher
            .as_ref()
            .and_then(|id| school.member(id))
            .cloned();
        let mut change = ClassHeadChange {
            class: class.name.clone(),
            children: usize::try_from(children).unwrap_or(0),
            new_head: new.name.clone(),
            new_head_gains_role: !new.has(Role::HeadTeacher),
            old_head: old.as_ref().map(|m| m.name.clone()),
            old_head_loses_role: false,
            changed: false,
        };
        if old.as_ref().map(|m| &m.id) != Some(&new.id) {
            if let Some(o) = &old {
                let heads_another = school
                    .classes
                    .iter()
                    .any(|c| c.id != class.id && c.head_teacher.as_ref() == Some(&o.id));
                change.old_head_loses_role = o.has(Role::HeadTeacher) && !heads_another;
            }
            change.changed = true;
        }
        Ok(HeadPlan {
            change,
            class,
            new,
            old,
        })
    }

    /// Makes `head` the 班主任 of `class` on purpose, and says what changed hands: the new head
    /// gains the 班主任 role and the files of the class's children (private parts included);
    /// the old head stops heading the class, loses the 班主任 role when they head no other
    /// class, and their `class_id` is cleared when it named this class, so they keep only the
    /// children they are paired with. Naming the current head changes nothing.
    pub fn set_class_head(&mut self, class: &str, head: &str) -> Result<ClassHeadChange> {
        let HeadPlan {
            change,
            class,
            new,
            old,
        } = self.plan_class_head(class, head)?;
        if !change.changed {
            return Ok(change);
        }
        let updated = ClassInfo {
            head_teacher: Some(new.id.clone()),
            ..class.clone()
        };
        let message = format!("更换班主任：{}", class.name);
        self.store.write(|b| {
            b.change(&DocId::School, false, &message, |tx| {
                school::put_class(tx, &updated)?;
                school::grant_role(tx, &new.id, Role::HeadTeacher)?;
                if let Some(o) = &old {
                    if o.class_id.as_ref() == Some(&class.id) {
                        school::clear_member_class(tx, &o.id)?;
                    }
                    if change.old_head_loses_role {
                        school::revoke_role(tx, &o.id, Role::HeadTeacher)?;
                    }
                }
                Ok(())
            })
        })?;
        Ok(change)
    }

    /// Adds a member with one or more roles.
    pub fn add_member(
        &mut self,
        name: &str,
        roles: &[Role],
        class: Option<&str>,
        phone: Option<&str>,
    ) -> Result<MemberId> {
        self.require_admin()?;
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Missing("姓名".into()));
        }
        crate::forms::check_line("姓名", name, crate::forms::MAX_MEMBER_NAME_CHARS)?;
        if roles.is_empty() {
            return Err(Error::Missing("角色".into()));
        }
        // Two people of one name would be told apart only at the next lookup, by an id
        // nobody knows: refuse at creation and say how to make the name distinct.
        let school = self.school()?;
        if let Some(same) = school.members.iter().find(|m| m.active && m.name == name) {
            let roles: Vec<&str> = same.roles.iter().map(|r| r.label()).collect();
            return Err(Error::invalid(
                "姓名",
                format!(
                    "已有同名成员“{name}”（{}）；如是另一个人，请在名字后加区分，例如“{name}（二）”",
                    roles.join("、")
                ),
            ));
        }
        let class = class.map(|c| self.find_class(c)).transpose()?;
        let phone = phone.map(|p| parse_phone("电话", p)).transpose()?;
        // A split school keeps phones out of the school document (`least.rs`).
        let split = self.school()?.split_for_roles;
        let m = Member {
            id: MemberId::random(),
            name: name.to_owned(),
            roles: roles.to_vec(),
            class_id: class.as_ref().map(|c| c.id.clone()),
            phone: if split { None } else { phone.clone() },
            active: true,
        };
        let id = m.id.clone();
        self.store.write(|b| {
            if split && let Some(p) = &phone {
                super::least::write_contact(b, &m.id, p)?;
            }
            b.change(&DocId::School, false, "添加成员", |tx| {
                school::add_member(tx, &m)?;
                // A 班主任 named with a class becomes that class's head teacher.
                if let Some(c) = &class
                    && roles.contains(&Role::HeadTeacher)
                    && c.head_teacher.is_none()
                {
                    school::put_class(
                        tx,
                        &ClassInfo {
                            head_teacher: Some(m.id.clone()),
                            ..c.clone()
                        },
                    )?;
                }
                Ok(())
            })
        })?;
        Ok(id)
    }

    /// Pairs a carer with a child (结对帮扶). The role defaults to the carer's first caring role.
    pub fn pair(&mut self, carer: &str, child: &str, role: Option<Role>) -> Result<PairingId> {
        self.require_admin()?;
        let carer = self.find_member(carer)?;
        let child = self.find_child(child)?;
        let role = match role {
            Some(r) => r,
            None => carer
                .roles
                .iter()
                .copied()
                .find(|r| !r.administers())
                .unwrap_or(Role::PairingTeacher),
        };
        let p = Pairing {
            id: PairingId::for_pair(&carer.id, &child, role.key()),
            carer: carer.id.clone(),
            child,
            role,
            active: true,
        };
        let id = p.id.clone();
        self.store.write(|b| {
            b.change(&DocId::School, false, "结对帮扶", |tx| {
                school::put_pairing(tx, &p)
            })
        })?;
        Ok(id)
    }

    /// Ends a carer's pairing with a child (every role they were paired in). The carer's
    /// device purges the child's file at its next sync or bundle import. Returns how many
    /// pairings ended.
    pub fn end_pairing(&mut self, carer: &str, child: &str) -> Result<usize> {
        self.require_admin()?;
        let carer = self.find_member(carer)?;
        let child = self.find_child(child)?;
        let ending: Vec<Pairing> = self
            .school()?
            .pairings
            .iter()
            .filter(|p| p.active && p.carer == carer.id && p.child == child)
            .map(|p| Pairing {
                active: false,
                ..p.clone()
            })
            .collect();
        if ending.is_empty() {
            return Err(Error::NotPermitted(format!(
                "{}没有与这名学生结对，无需结束",
                carer.name
            )));
        }
        self.store.write(|b| {
            b.change(&DocId::School, false, "结束结对", |tx| {
                ending.iter().try_for_each(|p| school::put_pairing(tx, p))
            })
        })?;
        Ok(ending.len())
    }

    /// Changes a rule setting.
    pub fn set_rule(&mut self, key: &str, value: &str) -> Result<()> {
        self.require_admin()?;
        let (def, n) = parse_rule(key, value)?;
        self.store.write(|b| {
            b.change(&DocId::School, false, "修改规则", |tx| {
                school::set_rule(tx, def.key, n)
            })
        })
    }

    /// Imports a validated roster without overwriting anything: see
    /// [`Archive::import_roster_with`] with `update = false`.
    pub fn import_roster(&mut self, rows: &[RosterRow]) -> Result<RosterReport> {
        self.import_roster_with(rows, false)
    }

    /// Imports a validated roster: every row's class must exist; all rows are written in one
    /// transaction or none. New children are created and fields the archive holds no value for
    /// are filled in. A field whose value in the archive differs from the file's (someone
    /// edited it, resolved a conflict on it, or it is in conflict) is a difference: it is
    /// listed in the report and left as it is, unless `update`, when the file's value is
    /// written (which also resolves a conflict). Importing the same roster again changes
    /// nothing.
    pub fn import_roster_with(&mut self, rows: &[RosterRow], update: bool) -> Result<RosterReport> {
        self.require_admin()?;
        let school = self.school()?;
        let mut classes: HashMap<&str, ClassId> = HashMap::new();
        for c in &school.classes {
            classes.insert(c.name.as_str(), c.id.clone());
        }
        let class_names: HashMap<String, String> = school
            .classes
            .iter()
            .map(|c| (c.id.0.clone(), c.name.clone()))
            .collect();
        let mut checked = Vec::with_capacity(rows.len());
        for row in rows {
            let class = classes
                .get(row.class_name.as_str())
                .cloned()
                .ok_or_else(|| {
                    Error::invalid(
                        format!("第{}行", row.line),
                        format!("找不到班级“{}”，请先添加这个班级", row.class_name),
                    )
                })?;
            checked.push((class, row));
        }
        // Only once every row is valid: deriving an id may create the school secret (a school
        // from before ids were keyed), see `keys.rs`.
        let secret = if rows.iter().any(|r| r.student_no.is_some()) {
            self.secret_for_new_children()?
        } else {
            None
        };
        let mut plan = Vec::with_capacity(rows.len());
        for (class, row) in checked {
            let id = match &row.student_no {
                Some(no) => self.child_id_for(no, secret.as_ref())?,
                None => ChildId::random(),
            };
            let before_keyed = row
                .student_no
                .as_ref()
                .map(|no| ChildId::before_keyed(&self.school_id, no));
            if let Some(e) = school.erasures.iter().find(|e| {
                [Some(&id), before_keyed.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|i| e.child == *i || e.also.contains(i))
            }) {
                return Err(Error::invalid(
                    format!("第{}行", row.line),
                    format!(
                        "这名学生的档案已于{}删除，不能用同一学籍号重新建档；请从名单中去掉这一行",
                        e.on
                    ),
                ));
            }
            plan.push((id, class, row));
        }
        // The private part waits for consent (`crate::consent`): a child without it gets a
        // file, and its 身份证号 and 学籍号 stay in the roster file only.
        let mut withheld = Vec::new();
        let mut basic_closed = Vec::new();
        for (id, _, row) in &plan {
            if row.student_no.is_none() && row.id_card.is_none() {
                continue;
            }
            let auth_consent = self.consent_of(id)?;
            let auth = crate::trust::AuthState {
                school: &school,
                child_class: None,
                consent: auth_consent,
            };
            if let Some(reason) = crate::trust::consent_refusal(&auth, &DocId::Private(id.clone()))
                && !self.holds_identity(id, row)?
            {
                withheld.push(Withheld {
                    line: row.line,
                    child: row.name.clone(),
                    reason,
                });
            }
            if crate::trust::consent_refusal(&auth, &DocId::Child(id.clone())).is_some() {
                basic_closed.push(id.clone());
            }
        }
        let private_ok = |line: usize| !withheld.iter().any(|w: &Withheld| w.line == line);
        let mut new_children = 0;
        let mut differences = Vec::new();
        self.store.write(|b| {
            for (id, class, row) in &plan {
                let doc = DocId::Child(id.clone());
                if !b.has(&doc)? {
                    new_children += 1;
                }
                let mut fill = Fill {
                    update,
                    row,
                    class_names: &class_names,
                    differences: &mut differences,
                };
                if !basic_closed.contains(id) {
                    b.change(&doc, true, "导入名单", |tx| {
                        write_roster_row(tx, class, row, &mut fill)
                    })?;
                }
                if !private_ok(row.line) {
                    continue;
                }
                b.change(&DocId::Private(id.clone()), true, "导入名单", |tx| {
                    let identity = map_at(tx, &automerge::ROOT, IDENTITY.key)
                        .ok_or_else(|| Error::Corrupt("档案缺少身份信息".into()))?;
                    if let Some(no) = &row.student_no {
                        fill.put(
                            tx,
                            &identity,
                            &IDENTITY,
                            "student_no",
                            FieldValue::Str(no.clone()),
                        )?;
                    }
                    if let Some(card) = &row.id_card {
                        fill.put(
                            tx,
                            &identity,
                            &IDENTITY,
                            "id_card",
                            FieldValue::Str(card.clone()),
                        )?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        let updated = if update { differences.len() } else { 0 };
        Ok(RosterReport {
            rows: plan.len(),
            new_children,
            differences,
            updated,
            withheld,
        })
    }
}

/// Writes one roster row's fields into a child's documents, field by field: an empty field is
/// filled, an equal one left alone, a different one listed (and written only when `update`).
struct Fill<'a> {
    update: bool,
    row: &'a RosterRow,
    class_names: &'a HashMap<String, String>,
    differences: &'a mut Vec<RosterDifference>,
}

impl Fill<'_> {
    fn put(
        &mut self,
        tx: &mut automerge::transaction::Transaction<'_>,
        obj: &automerge::ObjId,
        section: &Section,
        key: &str,
        value: FieldValue,
    ) -> Result<()> {
        let spec = spec(section, key)?;
        let current = read_all(tx, obj, key, spec);
        if current.is_empty() {
            return write_field(tx, obj, spec, &value);
        }
        if current.len() == 1 && current[0] == value {
            return Ok(());
        }
        let show = |v: &FieldValue| -> String {
            match (section.key, key, v) {
                ("profile", "class_id", FieldValue::Str(id)) => self
                    .class_names
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| id.clone()),
                ("identity", "id_card", v) => mask_id_card(&v.to_string()),
                ("identity", "student_no", v) => {
                    super::care::mask_identity("student_no", &v.to_string())
                }
                _ => spec.display(v),
            }
        };
        let field = if section.key == PROFILE.key {
            spec.label.to_owned()
        } else {
            format!("{}·{}", section.label, spec.label)
        };
        self.differences.push(RosterDifference {
            line: self.row.line,
            child: self.row.name.clone(),
            student_no: self
                .row
                .student_no
                .as_deref()
                .map(|no| super::care::mask_identity("student_no", no)),
            field,
            in_file: show(&value),
            in_archive: current.iter().map(show).collect::<Vec<_>>().join(" / "),
        });
        if self.update {
            write_field(tx, obj, spec, &value)?;
        }
        Ok(())
    }
}

/// An ID number with its middle hidden (`341302********0021`), for listings.
fn mask_id_card(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 6 || i >= chars.len() - 4 {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

fn write_roster_row(
    tx: &mut automerge::transaction::Transaction<'_>,
    class: &ClassId,
    row: &RosterRow,
    fill: &mut Fill<'_>,
) -> Result<()> {
    use automerge::ROOT;
    let profile =
        map_at(tx, &ROOT, PROFILE.key).ok_or_else(|| Error::Corrupt("档案缺少基本情况".into()))?;
    fill.put(
        tx,
        &profile,
        &PROFILE,
        "name",
        FieldValue::Str(row.name.clone()),
    )?;
    fill.put(
        tx,
        &profile,
        &PROFILE,
        "class_id",
        FieldValue::Str(class.0.clone()),
    )?;
    if let Some(s) = &row.sex {
        fill.put(tx, &profile, &PROFILE, "sex", FieldValue::Str(s.clone()))?;
    }
    if let Some(d) = row.birth_date {
        fill.put(tx, &profile, &PROFILE, "birth_date", FieldValue::Date(d))?;
    }
    if let Some(a) = &row.address {
        fill.put(
            tx,
            &profile,
            &PROFILE,
            "address",
            FieldValue::Str(a.clone()),
        )?;
    }
    if let Some(p) = &row.parents_away {
        fill.put(
            tx,
            &profile,
            &PROFILE,
            "parents_away",
            FieldValue::Str(p.clone()),
        )?;
    }
    if let Some(bd) = row.boarding {
        fill.put(tx, &profile, &PROFILE, "boarding", FieldValue::Bool(bd))?;
    }
    let guardian =
        map_at(tx, &ROOT, GUARDIAN.key).ok_or_else(|| Error::Corrupt("档案缺少监护人".into()))?;
    for (key, v) in [
        ("name", &row.guardian),
        ("relation", &row.guardian_relation),
        ("phone", &row.guardian_phone),
    ] {
        if let Some(v) = v {
            fill.put(tx, &guardian, &GUARDIAN, key, FieldValue::Str(v.clone()))?;
        }
    }
    for (section, name, phone) in [
        (crate::kinds::FATHER, &row.father, &row.father_phone),
        (crate::kinds::MOTHER, &row.mother, &row.mother_phone),
    ] {
        let obj = map_at(tx, &ROOT, section.key)
            .ok_or_else(|| Error::Corrupt("档案缺少联系卡".into()))?;
        if let Some(n) = name {
            fill.put(tx, &obj, &section, "name", FieldValue::Str(n.clone()))?;
        }
        if let Some(p) = phone {
            fill.put(tx, &obj, &section, "phone", FieldValue::Str(p.clone()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::SchoolSetup;

    #[test]
    fn the_head_change_is_said_before_it_is_made_and_the_preview_writes_nothing() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut a = Archive::create_school(
            &dir.path().join("shouwang.db"),
            &SchoolSetup::sample("校长办公室电脑"),
        )
        .unwrap();
        a.add_member("王瑞侠", &[Role::HeadTeacher], None, None)
            .unwrap();
        a.add_class("三年级(1)班", Some("王瑞侠")).unwrap();
        a.add_member("姬广奎", &[Role::SubjectTeacher], None, None)
            .unwrap();
        let before = a.store().all_heads().unwrap();
        let preview = a.class_head_change("三年级(1)班", "姬广奎").unwrap();
        assert_eq!(a.store().all_heads().unwrap(), before, "nothing written");
        assert!(preview.changed && preview.new_head_gains_role && preview.old_head_loses_role);
        assert_eq!(preview.old_head.as_deref(), Some("王瑞侠"));
        // The change itself is what the preview said.
        assert_eq!(a.set_class_head("三年级(1)班", "姬广奎").unwrap(), preview);
        let again = a.class_head_change("三年级(1)班", "姬广奎").unwrap();
        assert!(!again.changed);
        // The same refusals as the change.
        assert!(a.class_head_change("九年级(9)班", "姬广奎").is_err());
        assert!(a.class_head_change("三年级(1)班", "不存在").is_err());
    }
}
