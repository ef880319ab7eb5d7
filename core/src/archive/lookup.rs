//! Finding what a person names (by id, 学籍号 or name) and deciding what they may touch.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::Archive;
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::ids::{ChildId, ClassId, RecordId};
use crate::school::{ClassInfo, Member};

/// How a key found a child: her id, her 学籍号 (read from the private part) or her name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matched {
    Id,
    Number,
    Name,
}

impl Archive {
    /// The name of the child with id `id`, if this device holds the child's file.
    pub fn child_name(&mut self, id: &str) -> Option<String> {
        self.store
            .conn()
            .prepare_cached("SELECT name FROM p_children WHERE child_id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)))
            .ok()
    }

    /// A member by id or by name.
    pub fn find_member(&mut self, key: &str) -> Result<Member> {
        let key = key.trim();
        let school = self.school()?;
        if let Some(m) = school.members.iter().find(|m| m.id.as_str() == key) {
            return Ok(m.clone());
        }
        let named: Vec<&Member> = school.members.iter().filter(|m| m.name == key).collect();
        match named.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::not_found("成员", key)),
            _ => Err(Error::Ambiguous {
                what: "成员",
                key: key.to_owned(),
            }),
        }
    }

    /// A class by id or name.
    pub fn find_class(&mut self, key: &str) -> Result<ClassInfo> {
        let key = key.trim();
        self.school()?
            .classes
            .iter()
            .find(|c| c.id.as_str() == key || c.name == key)
            .cloned()
            .ok_or_else(|| Error::not_found("班级", key))
    }

    /// A child by id, 学籍号 or name (a name must be unique in the school).
    pub fn find_child(&mut self, key: &str) -> Result<ChildId> {
        self.find_child_where(key, &mut |_, _, _| Ok(true))
    }

    /// A child by id, 学籍号 or name among the children whose file `member` may see. A child
    /// they may not see is answered exactly as one who does not exist (`NotFound`), so that a
    /// member cannot learn who else is at the school by trying names or ids.
    pub(crate) fn find_child_seen_by(&mut self, member: &Member, key: &str) -> Result<ChildId> {
        // A 学籍号 is read from the private part: it finds the child only for a member who
        // may see that part, or each number tried would tell her whether it is the child's
        // (usually "G" and the 身份证号) on a device holding more than she may see.
        let number_seen = |a: &mut Archive, child: &ChildId, how: Matched| -> Result<bool> {
            Ok(how != Matched::Number || a.may_see(member, &DocId::Private(child.clone()))?)
        };
        let found = self.find_child_where(key, &mut |a, child, how| {
            Ok(a.may_see(member, &DocId::Child(child.clone()))? && number_seen(a, child, how)?)
        });
        if let Err(Error::NotFound { .. }) = &found
            && let Ok(child) = self.find_child_where(key, &mut |a, child, how| {
                Ok(
                    a.withheld_by_withdrawal(member, &DocId::Child(child.clone()))?
                        && number_seen(a, child, how)?,
                )
            })
        {
            // A file her device still holds, closed to her by the guardian's withdrawal:
            // she is told so (`require_care`), not that the child does not exist.
            self.require_care(member, &DocId::Child(child))?;
        }
        found
    }

    /// A child by id, 学籍号 or name among those `keep` keeps: an exact id wins, then a
    /// 学籍号, then a name only one kept child has.
    fn find_child_where(
        &mut self,
        key: &str,
        keep: &mut dyn FnMut(&mut Archive, &ChildId, Matched) -> Result<bool>,
    ) -> Result<ChildId> {
        let key = key.trim();
        // An exact id wins (below), and is one indexed lookup: reports name thousands.
        let exact: Option<String> = self
            .store
            .conn()
            .prepare_cached("SELECT child_id FROM p_children WHERE child_id = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        if let Some(id) = exact.map(ChildId) {
            return if keep(self, &id, Matched::Id)? {
                Ok(id)
            } else {
                Err(Error::not_found("学生", key))
            };
        }
        // Two plain indexed lookups rather than one `OR … UNION` query: SQLite re-plans that
        // query whenever the bound name changes, which cost a fresh parse on every 家访 saved.
        let mut ids_where = |sql: &str, how: Matched| -> Result<Vec<ChildId>> {
            let ids: Vec<String> = self
                .store
                .conn()
                .prepare_cached(sql)?
                .query_map([key], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut kept = Vec::with_capacity(ids.len());
            for id in ids.into_iter().map(ChildId) {
                if keep(self, &id, how)? {
                    kept.push(id);
                }
            }
            Ok(kept)
        };
        let by_student_no = ids_where(
            "SELECT child_id FROM p_children WHERE student_no = ?1",
            Matched::Number,
        )?;
        let mut ids = by_student_no.clone();
        for id in ids_where(
            "SELECT child_id FROM p_children WHERE name = ?1",
            Matched::Name,
        )? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        match ids.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Error::not_found("学生", key)),
            // A 学籍号 wins over a name shared by several children.
            _ => by_student_no
                .into_iter()
                .next()
                .ok_or_else(|| Error::Ambiguous {
                    what: "学生",
                    key: key.to_owned(),
                }),
        }
    }

    /// The document holding a record, by the record's id or a unique prefix of it (≥ 6 chars).
    /// A whole id is that record even where it begins another's: a record made apart under
    /// the same id is shown under that id followed by more digits (`crate::records`).
    pub fn find_record(&mut self, key: &str) -> Result<(RecordId, DocId)> {
        let key = key.trim();
        if key.len() < 6 || !key.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid("记录编号", "至少填写编号的前6位"));
        }
        // The same id in two files (a modified app's) is ambiguous, not either of them.
        let exact: Vec<(String, String)> = self
            .store
            .conn()
            .prepare_cached("SELECT record_id, doc_id FROM p_records WHERE record_id = ?1 LIMIT 2")?
            .query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let rows: Vec<(String, String)> = match exact.is_empty() {
            false => exact,
            true => {
                let mut stmt = self.store.conn().prepare_cached(
                    "SELECT record_id, doc_id FROM p_records
                     WHERE record_id >= ?1 AND record_id < ?2 LIMIT 2",
                )?;
                let hi = format!("{key}g");
                stmt.query_map(params![key, hi], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?
            }
        };
        match rows.as_slice() {
            [(rid, doc)] => Ok((
                RecordId(rid.clone()),
                DocId::parse(doc).ok_or_else(|| Error::Corrupt("记录索引".into()))?,
            )),
            [] => Err(Error::not_found("记录", key)),
            _ => Err(Error::Ambiguous {
                what: "记录",
                key: key.to_owned(),
            }),
        }
    }

    /// What the scope rule needs to know of every child ([`super::scope::ChildFacts`]), per
    /// the projection: for questions about many children at once (a sync's scope), one query
    /// where [`Archive::child_facts`] would be one per child.
    pub(crate) fn children_facts(&self) -> Result<HashMap<ChildId, super::scope::ChildFacts>> {
        let mut stmt = self
            .store
            .conn()
            .prepare_cached("SELECT child_id, class_id, consent FROM p_children")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    ChildId(r.get::<_, String>(0)?),
                    super::scope::ChildFacts::projected(
                        r.get(1)?,
                        r.get::<_, Option<String>>(2)?.as_deref(),
                    ),
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// What the scope rule needs to know of a child, per the projection.
    pub(crate) fn child_facts(&self, child: &ChildId) -> Result<super::scope::ChildFacts> {
        Ok(self
            .store
            .conn()
            .prepare_cached("SELECT class_id, consent FROM p_children WHERE child_id = ?1")?
            .query_row([child.as_str()], |r| {
                Ok(super::scope::ChildFacts::projected(
                    r.get(0)?,
                    r.get::<_, Option<String>>(1)?.as_deref(),
                ))
            })
            .optional()?
            .unwrap_or_default())
    }

    /// The class a child is in, per the projection.
    pub(crate) fn class_of(&self, child: &ChildId) -> Result<Option<ClassId>> {
        Ok(self
            .store
            .conn()
            .prepare_cached("SELECT class_id FROM p_children WHERE child_id = ?1")?
            .query_row([child.as_str()], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten()
            .map(ClassId))
    }

    /// Whether `member` cares for `child`: leadership and the archivist care for every child,
    /// a 班主任 for the children of their class, anyone for the children they are paired with.
    pub fn cares_for(&mut self, member: &Member, child: &ChildId) -> Result<bool> {
        let school = self.school()?;
        super::scope::cares_for(&school, member, child, &mut |c| self.child_facts(c))
    }

    /// Whether `member` may see and write the document `doc` (DOMAIN.md §5.3): the school
    /// document everyone; a care file its carers; a private file only carers who hold a role
    /// that sees private data; a class log its teachers and the school's leaders. A member who
    /// is no longer active sees the school document only.
    pub fn may_see(&mut self, member: &Member, doc: &DocId) -> Result<bool> {
        let school = self.school()?;
        super::scope::may_see(&school, member, doc, &mut |c| self.child_facts(c))
    }

    /// What a file this device makes for `member` may carry: what she may see, and for this
    /// device's own member also a file closed by the basic file's withdrawal
    /// ([`super::scope::ChildFacts::for_own_member`]): her own work in it, the withdrawal she
    /// typed included, must still reach the school (her weekly file is made for herself).
    pub(crate) fn may_carry(&mut self, member: &Member, doc: &DocId) -> Result<bool> {
        if member.id != self.me {
            return self.may_see(member, doc);
        }
        let school = self.school()?;
        super::scope::may_see(&school, member, doc, &mut |c| {
            self.child_facts(c)
                .map(super::scope::ChildFacts::for_own_member)
        })
    }

    /// Whether `member` would hold `child`'s private part but for the guardian's withdrawal
    /// of consent to it.
    pub(crate) fn closed_by_withdrawal(
        &mut self,
        member: &Member,
        child: &ChildId,
    ) -> Result<bool> {
        if !self.child_facts(child)?.private_withdrawn {
            return Ok(false);
        }
        self.withheld_by_withdrawal(member, &DocId::Private(child.clone()))
    }

    /// Whether `member` would hold `doc` of a child but for the guardian's withdrawals of
    /// consent (to the basic file, or to the private part).
    pub(crate) fn withheld_by_withdrawal(&mut self, member: &Member, doc: &DocId) -> Result<bool> {
        let Some(child) = doc.child() else {
            return Ok(false);
        };
        let facts = self.child_facts(child)?;
        if !facts.private_withdrawn && !facts.basic_withdrawn {
            return Ok(false);
        }
        let school = self.school()?;
        let before = facts.before_withdrawals();
        super::scope::may_see(&school, member, doc, &mut |_| Ok(before.clone()))
    }

    pub(crate) fn require_care(&mut self, member: &Member, doc: &DocId) -> Result<()> {
        if self.may_see(member, doc)? {
            return Ok(());
        }
        // A file (or its private part) closed to her by the guardian's withdrawal: say so, as
        // the consent gate does, rather than blame her standing (to her alone: anyone else
        // learns nothing of another child's consent).
        if let Some(child) = doc.child()
            && self.withheld_by_withdrawal(member, doc)?
        {
            let cover = if self.child_facts(child)?.basic_withdrawn {
                crate::consent::Cover::Basic
            } else {
                crate::consent::Cover::Private
            };
            let consent = self
                .store
                .doc(&DocId::Child(child.clone()))?
                .and_then(|d| crate::consent::read(d, None));
            if let Some(reason) = crate::consent::gate(false, consent.as_ref(), cover) {
                return Err(Error::NotPermitted(format!(
                    "{reason}。{}",
                    super::care::ERASE_ADVICE
                )));
            }
        }
        Err(Error::NotPermitted(format!(
            "{}（{}）不负责这名学生的这部分档案",
            member.name,
            member.role_labels()
        )))
    }
}
