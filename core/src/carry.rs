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
//!   of the two states could tell from the office's value. An edit is this device's when one
//!   of its operations since made it: a key it put or removed (a consent granted again removes
//!   the withdrawal), a text it typed in ([`Written`]).
//!
//! One change per record, then the sections in one change, then once more the records the
//! rules refused before it (a consent granted again offline, then a 谈心 written under it).
//! Each is made on the new generation **as the office made it** (its base change) plus this
//! device's carried changes before it, not on everything the copy holds by then: it is
//! concurrent with what other devices wrote in the new generation meanwhile, as the offline
//! work it is. A field another device of the same member changed there too is then a conflict
//! both values stand in (listed for the office to resolve: `doc::conflicts`), and a text both
//! edited merges character by character, where writing on top would have silently replaced
//! the other's value. (A part on a colleague's record that came into the new generation after
//! its base, carried by her device, is written last, on top: the record is not there before.)
//! Each is judged at what it rests on and, for the care file, at the file as it is now too: a
//! consent withdrawn in the new generation meanwhile stops it.
//!
//! Nothing another device wrote is carried: written as this device's change it would be
//! refused, or taken as this device's, and that device carries it itself when its copy is
//! replaced. The one exception is a hub's console devices (`archive::console`): they never
//! sync, the hub writes for them, and it carries their work under their own actors
//! (`store::admit`). Not carried: a part written on another device's record the new
//! generation lacks (that device carries the record; the part is lost), what a section's
//! nested maps hold, an edit to an existing 进步档案 entry, and anything the rules refuse by
//! then (a consent withdrawn meanwhile).

use std::borrow::Borrow;
use std::collections::HashSet;

use automerge::legacy::{Key as LegacyKey, ObjectId as LegacyObj};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, Value};

use crate::doc::access::{Held, changed_since, copy_missing_key, differs, lacks, map_at, put_held};
use crate::doc::layout::*;
use crate::doc::{KIND, SCHEMA};
use crate::error::{Error, Result};
use crate::records::{each_record, meta_of, record_at};

/// This device, by its id (hex): a record's `device` names it, and its operations' actors
/// start with it.
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

/// What [`carry_sections`] and [`carry_record`] would take from `old` into `new`. `written`:
/// this device's operations since the state the new generation was built from.
pub fn lacking_here(
    old: &Automerge,
    written: &Written,
    new: &Automerge,
    this: ThisDevice<'_>,
) -> Lacking {
    let sections = section_edits(old, written)
        .iter()
        .any(|(section, key, value)| {
            map_at(new, &ROOT, section).is_some_and(|to| differs(new, &to, key, value))
        });
    let records = each_record(old)
        .into_iter()
        .filter(|(id, from)| {
            let own = this.owns(old, id, from);
            let Some(to) = record_at(new, id).map(|s| s.obj) else {
                return own;
            };
            (own && lacks_keys(old, from, new, &to))
                || parts_lacking(old, from, new, &to, this)
                || edited_since(old, written, id, from)
                    .iter()
                    .any(|(part, key, value)| {
                        part.of(new, &to)
                            .is_some_and(|t| differs(new, &t, key, value))
                    })
        })
        .map(|(id, _)| id)
        .collect();
    Lacking { sections, records }
}

/// Carries this device's edits of the file's sections (module docs) into the new generation
/// `tx` writes.
pub fn carry_sections<T: Transactable + ReadDoc>(
    old: &Automerge,
    written: &Written,
    tx: &mut T,
) -> Result<()> {
    for (section, key, value) in section_edits(old, written) {
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
    written: &Written,
    tx: &mut T,
    id: &str,
    this: ThisDevice<'_>,
) -> Result<()> {
    let Some(from) = record_at(old, id).map(|s| s.obj) else {
        return Ok(());
    };
    let own = this.owns(old, id, &from);
    let records = map_at(tx, &ROOT, RECORDS).ok_or_else(|| Error::Corrupt("档案结构".into()))?;
    // A record shown under a composite id (one of several made apart under one id,
    // `crate::records`) that the new generation lacks is carried under that id as its key.
    let (to, whole) = match record_at(tx, id).map(|s| s.obj) {
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
        for (part, key, value) in edited_since(old, written, id, &from) {
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

/// Whether the record `id` of `old` (its object `from`) was there in the state `heads`: that
/// object, not another made apart under the same key (`crate::records`).
fn record_held_at(old: &Automerge, heads: &[ChangeHash], id: &str, from: &ObjId) -> bool {
    let (Some(records), Some(shown)) = (map_at(old, &ROOT, RECORDS), record_at(old, id)) else {
        return false;
    };
    old.get_all_at(&records, shown.key.as_str(), heads)
        .is_ok_and(|all| all.iter().any(|(_, obj)| obj == from))
}

/// What this device changed in the record `id` (`from`) of `old` since the state `covered`
/// names (`written`: its operations there), as an edit writes it (`records::edit`): its date
/// and its fields, each with its value now. Nothing if the state is unknown or the record was
/// not in it (then the new generation lacks it whole).
fn edited_since(
    old: &Automerge,
    written: &Written,
    id: &str,
    from: &ObjId,
) -> Vec<(Part, String, Option<Held>)> {
    let Some(heads) = written.covered.as_deref() else {
        return Vec::new();
    };
    if !record_held_at(old, heads, id, from) {
        return Vec::new();
    }
    let mut out: Vec<_> = changed_since(old, heads, from)
        .into_iter()
        .filter(|(key, _)| key == R_HAPPENED && written.wrote(old, from, key))
        .map(|(key, value)| (Part::Record, key, value))
        .collect();
    if let Some(fields) =
        map_at(old, from, R_FIELDS).filter(|_| held_map_at(old, heads, from, R_FIELDS))
    {
        out.extend(
            changed_since(old, heads, &fields)
                .into_iter()
                .filter(|(key, _)| written.wrote(old, &fields, key))
                .map(|(key, value)| (Part::Fields, key, value)),
        );
    }
    out
}

/// What this device changed in the file's sections (the maps at its root other than
/// `records`) since the state `written` names: (section, key, value now; `None`: removed, as
/// a consent granted again removes its withdrawal).
fn section_edits(old: &Automerge, written: &Written) -> Vec<(String, String, Option<Held>)> {
    let Some(heads) = written.covered.as_deref() else {
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
                .filter(|(key, _)| written.wrote(old, &from, key))
                .map(|(key, value)| (section.clone(), key, value)),
        );
    }
    out
}

/// What this device's changes after the state `covered` of a copy wrote: the map keys it put
/// or removed, and the texts it edited. An edit is this device's when one of its operations
/// made it; the value's own operation would not say who removed a key or typed in a text.
#[derive(Debug, Default)]
pub struct Written {
    /// The state of the copy the new generation was built from (`doc::covered`), if known.
    covered: Option<Vec<ChangeHash>>,
    keys: HashSet<(ObjId, String)>,
    texts: HashSet<ObjId>,
}

impl Written {
    /// What `this` wrote in `old` after `covered` (nothing when it is unknown).
    pub fn since(old: &Automerge, covered: Option<&[ChangeHash]>, this: ThisDevice<'_>) -> Written {
        let Some(heads) = covered else {
            return Written::default();
        };
        let mut out = Written {
            covered: Some(heads.to_vec()),
            ..Written::default()
        };
        for change in old.get_changes(heads) {
            if !change.actor_id().to_hex_string().starts_with(this.0) {
                continue;
            }
            for op in change.decode().operations {
                let obj = match op.obj {
                    LegacyObj::Root => ObjId::Root,
                    LegacyObj::Id(id) => ObjId::Id(id.0, id.1, 0),
                };
                match op.key {
                    LegacyKey::Map(key) => {
                        out.keys.insert((obj, key.to_string()));
                    }
                    LegacyKey::Seq(_) => {
                        out.texts.insert(obj);
                    }
                }
            }
        }
        out
    }

    /// Whether this device's operations wrote the current value of `obj[key]` of `old` (or
    /// removed it, or edited the text it holds).
    fn wrote(&self, old: &Automerge, obj: &ObjId, key: &str) -> bool {
        self.keys.contains(&(obj.clone(), key.to_owned()))
            || matches!(
                old.get(obj, key),
                Ok(Some((Value::Object(ObjType::Text), text))) if self.texts.contains(&text)
            )
    }
}

/// The store's `meta` key under which work the rules refused to carry over is noted, one
/// [`NotCarried`] a line, written in the batch that replaced the copy and taken when the
/// member is told (`Archive::take_not_carried`).
pub const NOT_CARRIED: &str = "carry.refused";

/// At most this many notes are kept (the oldest go first), should nobody ever take them.
pub const NOT_CARRIED_KEPT: usize = 100;

/// Work this device wrote on an older generation that the rules refused to carry over into
/// the new one (a consent withdrawn meanwhile, a role lost): it is not kept, and the member
/// who typed it is told what it was and why. Never what she typed: which file, what kind of
/// record, its date, the rules' reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCarried {
    pub doc: crate::doc::DocId,
    /// The child's name as the new generation has it (the file may have left this device by
    /// the time she is told); empty if not known.
    pub child: String,
    pub what: NotKept,
    /// The rules' reason, in Chinese.
    pub why: String,
}

/// What of a device's work was not carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotKept {
    /// A record the new generation lacks, whole: its kind (the key as stored) and date.
    Record { kind: String, date: String },
    /// What this device wrote on a record the new generation holds (an edit, a void, a
    /// 进步档案 entry).
    Part { kind: String, date: String },
    /// Edits to the file's sections.
    Sections,
    /// The whole copy, an older generation no longer sent to this device, left it with work
    /// it had not sent (`Archive::purge_out_of_scope`, rebase story 2c).
    StaleCopy,
    /// The file of a child the school erased left this device with work it had not sent
    /// (the erasure is final). The child is not named.
    Erased,
}

impl NotCarried {
    /// The note as one line of [`NOT_CARRIED`].
    pub fn line(&self) -> String {
        let (what, kind, date) = match &self.what {
            NotKept::Record { kind, date } => ("record", kind.as_str(), date.as_str()),
            NotKept::Part { kind, date } => ("part", kind.as_str(), date.as_str()),
            NotKept::Sections => ("sections", "", ""),
            NotKept::StaleCopy => ("stale", "", ""),
            NotKept::Erased => ("erased", "", ""),
        };
        [
            self.doc.key().as_str(),
            &self.child,
            what,
            kind,
            date,
            &self.why,
        ]
        .map(|f| f.replace(['\t', '\n', '\r'], " "))
        .join("\t")
    }

    /// A line [`NotCarried::line`] wrote, or `None`.
    pub fn parse(line: &str) -> Option<NotCarried> {
        let mut f = line.splitn(6, '\t');
        let doc = crate::doc::DocId::parse(f.next()?)?;
        let child = f.next()?.to_owned();
        let tag = f.next()?;
        let kind = f.next()?.to_owned();
        let date = f.next()?.to_owned();
        let why = f.next()?.to_owned();
        let what = match tag {
            "record" => NotKept::Record { kind, date },
            "part" => NotKept::Part { kind, date },
            "sections" => NotKept::Sections,
            "stale" => NotKept::StaleCopy,
            "erased" => NotKept::Erased,
            _ => return None,
        };
        Some(NotCarried {
            doc,
            child,
            what,
            why,
        })
    }
}

/// The notes `was` (lines of [`NOT_CARRIED`]) after a purge that removed `purged`: each of
/// `new` whose document went is added, and an earlier note on the file of a child now erased
/// (`erased`) no longer names her (the erasure is final: she is told only that work went with
/// an erased file). The last [`NOT_CARRIED_KEPT`] are kept.
pub fn notes_after_purge(
    was: &str,
    new: &[NotCarried],
    purged: &[crate::doc::DocId],
    erased: &dyn Fn(&crate::ids::ChildId) -> bool,
) -> String {
    let lines = was.lines().filter_map(NotCarried::parse).map(|mut n| {
        if n.doc.child().is_some_and(erased) {
            n.child.clear();
            n.what = NotKept::Erased;
            n.why.clear();
        }
        n.line()
    });
    let added = new
        .iter()
        .filter(|n| purged.contains(&n.doc))
        .map(NotCarried::line);
    noted_with(lines, added)
}

/// The text of [`NOT_CARRIED`] once the notes `added` (lines) follow those `noted`: one a
/// line, in that order, the last [`NOT_CARRIED_KEPT`] kept (the oldest go first).
pub(crate) fn noted_with<S: Borrow<str>>(
    noted: impl IntoIterator<Item = S>,
    added: impl IntoIterator<Item = S>,
) -> String {
    let lines: Vec<S> = noted.into_iter().chain(added).collect();
    let from = lines.len().saturating_sub(NOT_CARRIED_KEPT);
    lines[from..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::{NOT_CARRIED_KEPT, noted_with};

    #[test]
    fn the_last_notes_are_kept_in_order() {
        let noted: Vec<String> = (0..NOT_CARRIED_KEPT).map(|i| i.to_string()).collect();
        let text = noted_with(noted, ["new".to_owned()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), NOT_CARRIED_KEPT);
        assert_eq!(lines.first(), Some(&"1"), "the oldest went first");
        assert_eq!(lines.last(), Some(&"new"));
        assert_eq!(noted_with(["a"], ["b", "c"]), "a\nb\nc");
        assert_eq!(noted_with::<&str>([], []), "");
    }
}
