//! Carrying a device's unsent work into a new generation of a document.
//!
//! When the office re-bases a child's file (`archive::rebase`), every copy of the older
//! generation is replaced whole, and every device refuses that generation's changes. What a
//! device wrote on its copy and had not sent would vanish with it. So when the new generation
//! replaces a copy (`store::admit`), the device writes its work again as its own new changes,
//! each judged by the trust rules first:
//!
//! - **records of its own** (by the record's `device`) that the new generation lacks: whole;
//!   of those it holds, a key first filled in;
//! - **on any record** the new generation holds, the parts this device wrote (their operations
//!   are this device's): a void, a 进步档案 entry on a colleague's 学习帮扶计划;
//! - **edits**: what this device changed, since the state the new generation was built from
//!   (`doc::covered`), in a record's date or fields, or in a section of the file (基本情况,
//!   联系卡, a 身份证号 in the private part): a correction typed offline, which no comparison
//!   of the two states could tell from the office's value. An edit is this device's when the
//!   value's operation is (a field emptied is carried only on its own records).
//!
//! The sections in one change, then one change per record. Each is made on the new generation
//! **as the office made it** (its base change) plus this device's carried changes before it,
//! not on everything the copy holds by then: it is concurrent with what other devices wrote
//! in the new generation meanwhile, as the offline work it is. A field another device of the
//! same member changed there too is then a conflict both values stand in (listed for the
//! office to resolve: `doc::conflicts`), and a text both edited merges character by
//! character, where writing on top would have silently replaced the other's value.
//!
//! Nothing another device wrote is carried: written as this device's change it would be
//! refused, or taken as this device's, and that device carries it itself when its copy is
//! replaced. The one exception is a hub's console devices (`archive::console`): they never
//! sync, the hub writes for them, and it carries their work under their own actors
//! (`store::admit`). Not carried: a part written on another device's record the new
//! generation lacks (that device carries the record; the part is lost), what a section's
//! nested maps hold, an edit to an existing 进步档案 entry, and anything the rules refuse by
//! then (a consent withdrawn meanwhile).

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};

use crate::doc::access::{Held, changed_since, copy_missing_key, differs, lacks, map_at, put_held};
use crate::doc::layout::*;
use crate::doc::{KIND, SCHEMA};
use crate::error::{Error, Result};
use crate::records::{each_record, meta_of};

/// This device, by its actor (hex): a record's `device` names it, and its operations carry it.
#[derive(Debug, Clone, Copy)]
pub struct ThisDevice<'a>(pub &'a str);

impl ThisDevice<'_> {
    /// Whether this device created the record `id` (`from`) of `doc`.
    fn owns<D: ReadDoc>(self, doc: &D, id: &str, from: &ObjId) -> bool {
        let device = meta_of(doc, id, from).device;
        !device.is_empty() && self.0.starts_with(&device)
    }

    /// Whether this device wrote `obj[key]` of `doc` (its value's operation, or the map's).
    /// (A base change's operations are the re-basing device's: it "wrote" what a generation
    /// it made holds, which the next generation holds again, so nothing is carried for it.)
    fn wrote<D: ReadDoc>(self, doc: &D, obj: &ObjId, key: &str) -> bool {
        matches!(
            doc.get(obj, key),
            Ok(Some((_, ObjId::Id(_, actor, _)))) if actor.to_hex_string().starts_with(self.0)
        )
    }
}

/// What `old`, a copy of an older generation of a document, holds of this device's work that
/// the new generation `new` lacks (module docs).
#[derive(Debug, Default)]
pub struct Lacking {
    /// Whether a section of the file holds an edit of this device the new generation lacks.
    pub sections: bool,
    /// The records to carry, one change each.
    pub records: Vec<String>,
}

impl Lacking {
    pub fn is_empty(&self) -> bool {
        !self.sections && self.records.is_empty()
    }
}

/// What [`carry_sections`] and [`carry_record`] would take from `old` into `new`. `covered` is
/// the state of `old` the new generation was built from, where its base change names it.
pub fn lacking_here(
    old: &Automerge,
    covered: Option<&[ChangeHash]>,
    new: &Automerge,
    this: ThisDevice<'_>,
) -> Lacking {
    let sections = section_edits(old, covered, this)
        .iter()
        .any(|(section, key, value)| {
            map_at(new, &ROOT, section).is_some_and(|to| differs(new, &to, key, value))
        });
    let records = map_at(new, &ROOT, RECORDS);
    let records = each_record(old)
        .into_iter()
        .filter(|(id, from)| {
            let own = this.owns(old, id, from);
            let Some(to) = records.as_ref().and_then(|r| map_at(new, r, id)) else {
                return own;
            };
            (own && lacks_keys(old, from, new, &to))
                || parts_lacking(old, from, new, &to, this)
                || edited_since(old, covered, id, from, own, this).iter().any(
                    |(part, key, value)| {
                        part.of(new, &to)
                            .is_some_and(|t| differs(new, &t, key, value))
                    },
                )
        })
        .map(|(id, _)| id)
        .collect();
    Lacking { sections, records }
}

/// Carries this device's edits of the file's sections (module docs) into the new generation
/// `tx` writes.
pub fn carry_sections<T: Transactable + ReadDoc>(
    old: &Automerge,
    covered: Option<&[ChangeHash]>,
    tx: &mut T,
    this: ThisDevice<'_>,
) -> Result<()> {
    for (section, key, value) in section_edits(old, covered, this) {
        if let Some(to) = map_at(tx, &ROOT, &section) {
            put_held(tx, &to, &key, &value)?;
        }
    }
    Ok(())
}

/// Carries the record `id` of `old` (one of [`Lacking::records`]) into the new generation `tx`
/// writes: what of it this device wrote and the new generation lacks (module docs).
pub fn carry_record<T: Transactable + ReadDoc>(
    old: &Automerge,
    covered: Option<&[ChangeHash]>,
    tx: &mut T,
    id: &str,
    this: ThisDevice<'_>,
) -> Result<()> {
    let Some(from) = map_at(old, &ROOT, RECORDS).and_then(|r| map_at(old, &r, id)) else {
        return Ok(());
    };
    let own = this.owns(old, id, &from);
    let records = map_at(tx, &ROOT, RECORDS).ok_or_else(|| Error::Corrupt("档案结构".into()))?;
    let (to, whole) = match map_at(tx, &records, id) {
        Some(to) => (to, false),
        None if own => (tx.put_object(&records, id, ObjType::Map)?, true),
        None => return Ok(()),
    };
    for key in old.keys(&from).collect::<Vec<_>>() {
        match (key.as_str(), map_at(old, &from, &key)) {
            (R_VOID, Some(void)) => {
                if this.wrote(old, &void, "by") {
                    copy_missing_key(old, &from, &key, tx, &to)?;
                } else if whole {
                    // A record is created with an empty void map, which nobody may add later.
                    tx.put_object(&to, R_VOID, ObjType::Map)?;
                }
            }
            (R_PROGRESS, Some(progress)) => {
                let there = match map_at(tx, &to, R_PROGRESS) {
                    Some(p) => p,
                    None if whole => tx.put_object(&to, R_PROGRESS, ObjType::Map)?,
                    None => continue,
                };
                for entry in old.keys(&progress).collect::<Vec<_>>() {
                    if this.wrote(old, &progress, &entry) {
                        copy_missing_key(old, &progress, &entry, tx, &there)?;
                    }
                }
            }
            _ if own => copy_missing_key(old, &from, &key, tx, &to)?,
            _ => {}
        }
    }
    if !whole {
        for (part, key, value) in edited_since(old, covered, id, &from, own, this) {
            if let Some(there) = part.of(tx, &to) {
                put_held(tx, &there, &key, &value)?;
            }
        }
    }
    Ok(())
}

/// Whether the record `to` of `new` lacks a key of `from` of `old` other than its void and
/// progress entries (whose parts are carried by who wrote them: [`parts_lacking`]).
fn lacks_keys(old: &Automerge, from: &ObjId, new: &Automerge, to: &ObjId) -> bool {
    old.keys(from)
        .filter(|k| k != R_VOID && k != R_PROGRESS)
        .any(
            |key| match (map_at(old, from, &key), map_at(new, to, &key)) {
                (Some(a), Some(b)) => lacks(old, &a, new, &b),
                _ => new.get(to, key.as_str()).ok().flatten().is_none(),
            },
        )
}

/// Whether the record `to` of `new` lacks a part of `from` of `old` this device wrote: its
/// void, or one of its 进步档案 entries (whole or in part).
fn parts_lacking(
    old: &Automerge,
    from: &ObjId,
    new: &Automerge,
    to: &ObjId,
    this: ThisDevice<'_>,
) -> bool {
    if let Some(void) = map_at(old, from, R_VOID)
        && this.wrote(old, &void, "by")
        && map_at(new, to, R_VOID).is_some_and(|v| lacks(old, &void, new, &v))
    {
        return true;
    }
    let (Some(mine), Some(there)) = (map_at(old, from, R_PROGRESS), map_at(new, to, R_PROGRESS))
    else {
        return false;
    };
    old.keys(&mine)
        .filter(|e| this.wrote(old, &mine, e))
        .any(
            |e| match (map_at(old, &mine, &e), map_at(new, &there, &e)) {
                (Some(a), Some(b)) => lacks(old, &a, new, &b),
                (Some(_), None) => true,
                (None, _) => false,
            },
        )
}

/// Where in a record an edit is: its own map (the date) or its `fields`.
enum Part {
    Record,
    Fields,
}

impl Part {
    /// This part of the record `record` of `doc`.
    fn of<D: ReadDoc>(&self, doc: &D, record: &ObjId) -> Option<ObjId> {
        match self {
            Part::Record => Some(record.clone()),
            Part::Fields => map_at(doc, record, R_FIELDS),
        }
    }
}

/// Whether `obj[key]` of `old` held a map in the state `heads`.
fn held_map_at(old: &Automerge, heads: &[ChangeHash], obj: &ObjId, key: &str) -> bool {
    matches!(
        old.get_at(obj, key, heads),
        Ok(Some((Value::Object(ObjType::Map), _)))
    )
}

/// What this device changed in the record `id` (`from`) of `old` since the state `covered` of
/// `old`, as an edit writes it (`records::edit`): its date and its fields, each with its value
/// now. A value removed since counts only on a record of its own (`own`): no operation shows
/// who removed it. Nothing if `covered` is unknown or the record was not in it (then the new
/// generation lacks it whole).
fn edited_since(
    old: &Automerge,
    covered: Option<&[ChangeHash]>,
    id: &str,
    from: &ObjId,
    own: bool,
    this: ThisDevice<'_>,
) -> Vec<(Part, String, Option<Held>)> {
    let Some(heads) = covered else {
        return Vec::new();
    };
    if !map_at(old, &ROOT, RECORDS).is_some_and(|r| held_map_at(old, heads, &r, id)) {
        return Vec::new();
    }
    let mine = |obj: &ObjId, key: &str, value: &Option<Held>| match value {
        Some(_) => this.wrote(old, obj, key),
        None => own,
    };
    let mut out: Vec<_> = changed_since(old, heads, from)
        .into_iter()
        .filter(|(key, value)| key == R_HAPPENED && mine(from, key, value))
        .map(|(key, value)| (Part::Record, key, value))
        .collect();
    if let Some(fields) =
        map_at(old, from, R_FIELDS).filter(|_| held_map_at(old, heads, from, R_FIELDS))
    {
        out.extend(
            changed_since(old, heads, &fields)
                .into_iter()
                .filter(|(key, value)| mine(&fields, key, value))
                .map(|(key, value)| (Part::Fields, key, value)),
        );
    }
    out
}

/// What this device changed in the file's sections (the maps at its root other than
/// `records`) since the state `covered` of `old`: (section, key, value now). Only values
/// whose operation is this device's; nothing if `covered` is unknown.
fn section_edits(
    old: &Automerge,
    covered: Option<&[ChangeHash]>,
    this: ThisDevice<'_>,
) -> Vec<(String, String, Option<Held>)> {
    let Some(heads) = covered else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for section in old.keys(&ROOT).collect::<Vec<_>>() {
        if section == RECORDS || section == SCHEMA || section == KIND {
            continue;
        }
        let Some(from) = map_at(old, &ROOT, &section) else {
            continue;
        };
        if !held_map_at(old, heads, &ROOT, &section) {
            continue;
        }
        out.extend(
            changed_since(old, heads, &from)
                .into_iter()
                .filter(|(key, value)| value.is_some() && this.wrote(old, &from, key))
                .map(|(key, value)| (section.clone(), key, value)),
        );
    }
    out
}
