//! Running the school: classes, members, pairings, rules and the roster.

use std::collections::HashMap;

use super::Archive;
use crate::doc::DocId;
use crate::doc::access::{map_at, write_field};
use crate::error::{Error, Result};
use crate::forms::{FieldSpec, FieldValue, parse_phone};
use crate::ids::{ChildId, ClassId, MemberId, PairingId};
use crate::kinds::{GUARDIAN, IDENTITY, PROFILE, Section};
use crate::roles::Role;
use crate::roster::RosterRow;
use crate::rules::parse_rule;
use crate::school::{self, ClassInfo, Member, Pairing};

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RosterReport {
    pub rows: usize,
    pub new_children: usize,
}

fn spec(section: &Section, key: &str) -> Result<&'static FieldSpec> {
    section
        .fields
        .iter()
        .find(|f| f.key == key)
        .ok_or_else(|| Error::Corrupt(format!("表单缺少{key}")))
}

impl Archive {
    /// Adds a class (idempotent by name), optionally naming its 班主任.
    pub fn add_class(&mut self, name: &str, head_teacher: Option<&str>) -> Result<ClassId> {
        self.require_admin()?;
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Missing("班级名称".into()));
        }
        let head = head_teacher.map(|h| self.find_member(h)).transpose()?;
        let id = ClassId::for_name(&self.school_id, name);
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
        if roles.is_empty() {
            return Err(Error::Missing("角色".into()));
        }
        let class = class.map(|c| self.find_class(c)).transpose()?;
        let phone = phone.map(|p| parse_phone("电话", p)).transpose()?;
        let m = Member {
            id: MemberId::random(),
            name: name.to_owned(),
            roles: roles.to_vec(),
            class_id: class.as_ref().map(|c| c.id.clone()),
            phone,
            active: true,
        };
        let id = m.id.clone();
        self.store.write(|b| {
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
            .into_iter()
            .filter(|p| p.active && p.carer == carer.id && p.child == child)
            .map(|p| Pairing { active: false, ..p })
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

    /// Imports a validated roster: every row's class must exist; all rows are written in one
    /// transaction or none. Importing the same roster again changes nothing.
    pub fn import_roster(&mut self, rows: &[RosterRow]) -> Result<RosterReport> {
        self.require_admin()?;
        let school = self.school()?;
        let mut classes: HashMap<&str, ClassId> = HashMap::new();
        for c in &school.classes {
            classes.insert(c.name.as_str(), c.id.clone());
        }
        let mut plan = Vec::with_capacity(rows.len());
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
            let id = match &row.student_no {
                Some(no) => ChildId::for_student(&self.school_id, no),
                None => ChildId::random(),
            };
            plan.push((id, class, row));
        }
        let mut new_children = 0;
        self.store.write(|b| {
            for (id, class, row) in &plan {
                let doc = DocId::Child(id.clone());
                if !b.has(&doc)? {
                    new_children += 1;
                }
                b.change(&doc, true, "导入名单", |tx| {
                    write_roster_row(tx, class, row)
                })?;
                b.change(&DocId::Private(id.clone()), true, "导入名单", |tx| {
                    let identity = map_at(tx, &automerge::ROOT, IDENTITY.key)
                        .ok_or_else(|| Error::Corrupt("档案缺少身份信息".into()))?;
                    if let Some(no) = &row.student_no {
                        write_field(
                            tx,
                            &identity,
                            spec(&IDENTITY, "student_no")?,
                            &FieldValue::Str(no.clone()),
                        )?;
                    }
                    if let Some(card) = &row.id_card {
                        write_field(
                            tx,
                            &identity,
                            spec(&IDENTITY, "id_card")?,
                            &FieldValue::Str(card.clone()),
                        )?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
        Ok(RosterReport {
            rows: plan.len(),
            new_children,
        })
    }
}

fn write_roster_row(
    tx: &mut automerge::transaction::Transaction<'_>,
    class: &ClassId,
    row: &RosterRow,
) -> Result<()> {
    use automerge::ROOT;
    let profile =
        map_at(tx, &ROOT, PROFILE.key).ok_or_else(|| Error::Corrupt("档案缺少基本情况".into()))?;
    let put = |tx: &mut automerge::transaction::Transaction<'_>,
               obj: &automerge::ObjId,
               section: &Section,
               key: &str,
               v: FieldValue| { write_field(tx, obj, spec(section, key)?, &v) };
    put(
        tx,
        &profile,
        &PROFILE,
        "name",
        FieldValue::Str(row.name.clone()),
    )?;
    put(
        tx,
        &profile,
        &PROFILE,
        "class_id",
        FieldValue::Str(class.0.clone()),
    )?;
    if let Some(s) = &row.sex {
        put(tx, &profile, &PROFILE, "sex", FieldValue::Str(s.clone()))?;
    }
    if let Some(d) = row.birth_date {
        put(tx, &profile, &PROFILE, "birth_date", FieldValue::Date(d))?;
    }
    if let Some(a) = &row.address {
        put(
            tx,
            &profile,
            &PROFILE,
            "address",
            FieldValue::Str(a.clone()),
        )?;
    }
    if let Some(p) = &row.parents_away {
        put(
            tx,
            &profile,
            &PROFILE,
            "parents_away",
            FieldValue::Str(p.clone()),
        )?;
    }
    if let Some(bd) = row.boarding {
        put(tx, &profile, &PROFILE, "boarding", FieldValue::Bool(bd))?;
    }
    let guardian =
        map_at(tx, &ROOT, GUARDIAN.key).ok_or_else(|| Error::Corrupt("档案缺少监护人".into()))?;
    for (key, v) in [
        ("name", &row.guardian),
        ("relation", &row.guardian_relation),
        ("phone", &row.guardian_phone),
    ] {
        if let Some(v) = v {
            put(tx, &guardian, &GUARDIAN, key, FieldValue::Str(v.clone()))?;
        }
    }
    for (section, name, phone) in [
        (crate::kinds::FATHER, &row.father, &row.father_phone),
        (crate::kinds::MOTHER, &row.mother, &row.mother_phone),
    ] {
        let obj = map_at(tx, &ROOT, section.key)
            .ok_or_else(|| Error::Corrupt("档案缺少联系卡".into()))?;
        if let Some(n) = name {
            put(tx, &obj, &section, "name", FieldValue::Str(n.clone()))?;
        }
        if let Some(p) = phone {
            put(tx, &obj, &section, "phone", FieldValue::Str(p.clone()))?;
        }
    }
    Ok(())
}
