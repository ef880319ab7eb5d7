//! Carrying a device's unsent work into a new generation of a document.
//!
//! When the office re-bases a child's file (`archive::rebase`), every copy of the older
//! generation is replaced whole, and every device refuses that generation's changes. What a
//! device wrote on its copy and had not sent would vanish with it. So when the new generation
//! replaces a copy (`store::admit`), the device writes its work again, as its own new changes,
//! one per record, each judged by the trust rules first:
//!
//! - a record of its own (by the record's `device`) that the new generation lacks: whole;
//! - what a record of its own that the new generation holds lacks: a key first filled in, and
//!   what its date or fields changed since the state the new generation was built from
//!   (`doc::covered`): a correction typed offline, which no comparison of the two states could
//!   tell from the office's value;
//! - on any record the new generation holds, the parts this device wrote (their operations are
//!   this device's): a void, a 进步档案 entry on a colleague's 学习帮扶计划.
//!
//! Nothing another device wrote is carried: written as this device's change it would be
//! refused, and that device carries it itself when its copy is replaced. The one exception is
//! a hub's console devices (`archive::console`): they never sync, the hub writes for them, and
//! it carries their work under their own actors (`store::admit`, `Batch::writers_here`).

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};

use super::{each_record, meta_of};
use crate::doc::access::{Held, changed_since, copy_missing_key, differs, lacks, map_at, put_held};
use crate::doc::layout::*;
use crate::error::{Error, Result};

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
    fn wrote<D: ReadDoc>(self, doc: &D, obj: &ObjId, key: &str) -> bool {
        matches!(
            doc.get(obj, key),
            Ok(Some((_, ObjId::Id(_, actor, _)))) if actor.to_hex_string().starts_with(self.0)
        )
    }
}

/// The records of `old`, a copy of an older generation of a document, that hold work of this
/// device the new generation `new` lacks (module docs): what [`carry_over`] takes into it.
/// `covered` is the state of `old` the new generation was built from, where its base change
/// names it.
pub fn lacking_here(
    old: &Automerge,
    covered: Option<&[ChangeHash]>,
    new: &Automerge,
    this: ThisDevice<'_>,
) -> Vec<String> {
    let records = map_at(new, &ROOT, RECORDS);
    each_record(old)
        .into_iter()
        .filter(|(id, from)| {
            let own = this.owns(old, id, from);
            match records.as_ref().and_then(|r| map_at(new, r, id)) {
                None => own,
                Some(to) if own => {
                    lacks(old, from, new, &to)
                        || edited_since(old, covered, id, from)
                            .iter()
                            .any(|(part, key, value)| {
                                part.of(new, &to)
                                    .is_some_and(|t| differs(new, &t, key, value))
                            })
                }
                Some(to) => parts_here(old, from, this).iter().any(|(parent, key)| {
                    let (Some(mine), Some(there)) =
                        (map_at(old, from, parent), map_at(new, &to, parent))
                    else {
                        return false;
                    };
                    match (map_at(old, &mine, key), map_at(new, &there, key)) {
                        (Some(a), Some(b)) => lacks(old, &a, new, &b),
                        (Some(_), None) => true,
                        // A void's `by`: a scalar in the void map.
                        (None, _) => new.get(&there, key.as_str()).ok().flatten().is_none(),
                    }
                }),
            }
        })
        .map(|(id, _)| id)
        .collect()
}

/// Carries the record `id` of `old` (one of [`lacking_here`]) into the new generation `tx`
/// writes: what of it this device wrote and the new generation lacks (module docs).
pub fn carry_over<T: Transactable + ReadDoc>(
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
    if own && !whole {
        for (part, key, value) in edited_since(old, covered, id, &from) {
            if let Some(there) = part.of(tx, &to) {
                put_held(tx, &there, &key, &value)?;
            }
        }
    }
    Ok(())
}

/// The parts of the record `from` of `old` this device wrote, as (the record's key holding
/// them, the key within): its void, its 进步档案 entries.
fn parts_here(old: &Automerge, from: &ObjId, this: ThisDevice<'_>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(void) = map_at(old, from, R_VOID)
        && this.wrote(old, &void, "by")
    {
        out.push((R_VOID, "by".to_owned()));
    }
    if let Some(progress) = map_at(old, from, R_PROGRESS) {
        out.extend(
            old.keys(&progress)
                .filter(|e| this.wrote(old, &progress, e))
                .map(|e| (R_PROGRESS, e)),
        );
    }
    out
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

/// What the record `id` (`from`) of `old` changed since the state `covered` of `old`, as an
/// edit writes it (`records::edit`): its date and its fields, each with its value now.
/// Nothing if `covered` is unknown or the record was not in it (then the new generation lacks
/// it whole).
fn edited_since(
    old: &Automerge,
    covered: Option<&[ChangeHash]>,
    id: &str,
    from: &ObjId,
) -> Vec<(Part, String, Option<Held>)> {
    let Some(heads) = covered else {
        return Vec::new();
    };
    let then = |obj: &ObjId, key: &str| {
        matches!(
            old.get_at(obj, key, heads),
            Ok(Some((Value::Object(ObjType::Map), _)))
        )
    };
    if !map_at(old, &ROOT, RECORDS).is_some_and(|r| then(&r, id)) {
        return Vec::new();
    }
    let mut out: Vec<_> = changed_since(old, heads, from)
        .into_iter()
        .filter(|(key, _)| key == R_HAPPENED)
        .map(|(key, value)| (Part::Record, key, value))
        .collect();
    if let Some(fields) = map_at(old, from, R_FIELDS).filter(|_| then(from, R_FIELDS)) {
        out.extend(
            changed_since(old, heads, &fields)
                .into_iter()
                .map(|(key, value)| (Part::Fields, key, value)),
        );
    }
    out
}
