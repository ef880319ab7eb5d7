//! Care records inside a document's `records` map.
//!
//! A record is a map: `kind`, `happened_on` (the date the user entered), `author`,
//! `author_role`, `device`, `written_at` (the device clock, shown but never trusted), `child`,
//! a `fields` map following the kind's form, a `void` map, and for a 学习帮扶计划 a `progress`
//! map of 进步档案 entries. Records are shown ordered by the date they happened, then by the
//! device time, then by id: a phone with a wrong clock only misorders records within one day.
//!
//! **A record key holding several concurrent records shows each.** Honest devices never make
//! two records under one id (ids are the device clock and random digits), but a modified app
//! can make one under another's id on a copy that had not seen it: where that change rests,
//! the key held nothing, so every part of it is its author's to write and the trust rules take
//! it. automerge then holds both objects at the key and reads one, the one made by the later
//! operation. Read that way, the other record would vanish from the file, due work and
//! reports on every copy, and its author could no longer edit it. So every record object at a
//! key is shown ([`each_record`]): the one automerge reads keeps the key as its id; each other
//! is shown under the key followed by its object's operation (counter, 16 hex digits, then
//! actor, in hex), which every copy reads the same (the index an `ObjId` carries is local) and
//! which is hex like every id, so it is found by a prefix (`Archive::find_record`). An id a
//! key already shows is never given twice: a key written to look like another's composite id
//! pushes that one to the operation written twice, and so on. Edits, voids and 进步档案 entries
//! find the exact object by its id ([`record_obj`]). The same holds for 进步档案 entries in a
//! plan's `progress`.

use automerge::transaction::Transactable;
use std::collections::HashMap;

use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value, hydrate};
use chrono::NaiveDate;
use serde::Serialize;

use crate::doc::access::{
    copy_map, get_i64, get_str, map_at, put_str, read_field, scalar, write_field,
};
use crate::doc::layout::*;
use crate::error::{Error, Result};
use crate::forms::{FieldSpec, FieldValue};
use crate::ids::{ChildId, DeviceId, MemberId, RecordId};
use crate::kinds::{PROGRESS_FIELDS, RecordKind};
use crate::roles::Role;

/// A record about to be written.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub kind: RecordKind,
    pub child: Option<ChildId>,
    pub happened_on: NaiveDate,
    pub author: MemberId,
    pub author_role: Role,
    pub device: DeviceId,
    pub fields: Vec<(&'static FieldSpec, FieldValue)>,
}

fn records_map<D: ReadDoc>(doc: &D) -> Result<ObjId> {
    map_at(doc, &ROOT, RECORDS).ok_or_else(|| Error::Corrupt("档案缺少记录表".into()))
}

fn record_obj<D: ReadDoc>(doc: &D, id: &RecordId) -> Result<ObjId> {
    records_map(doc)?; // no records map: a damaged file, not a missing record
    record_at(doc, id.as_str())
        .map(|s| s.obj)
        .ok_or_else(|| Error::not_found("记录", id))
}

/// One map object held at a key of a map, with the id it is shown by (module docs).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shown {
    /// The id it is shown by: the key for the object automerge reads there, a composite id
    /// for every other.
    pub id: String,
    /// The key holding it.
    pub key: String,
    pub obj: ObjId,
}

/// What a composite id adds to a key for the object `obj`: the operation that made it,
/// counter (16 hex digits) then actor, the same on every copy.
fn op_suffix(obj: &ObjId) -> String {
    match obj {
        ObjId::Id(counter, actor, _) => format!("{counter:016x}{}", actor.to_hex_string()),
        ObjId::Root => String::new(),
    }
}

/// Every map object at a key of `map`, in key order, each under the id it is shown by: the
/// object automerge reads at a key keeps the key, every other concurrent one there gets the
/// key followed by its operation (module docs), unique among every id shown.
pub(crate) fn shown_maps<D: ReadDoc>(doc: &D, map: &ObjId) -> Vec<Shown> {
    let items: Vec<(String, bool, Option<ObjId>)> = doc
        .map_range(map, ..)
        .map(|item| {
            let obj = match item.value {
                automerge::ValueRef::Object(ObjType::Map) => Some(item.id()),
                _ => None,
            };
            (item.key.to_string(), item.conflict, obj)
        })
        .collect();
    // Every key is taken first: no composite id is one (nor can a copy write it as a key,
    // `copy_records`). Only a map with a conflict needs them.
    let mut taken: std::collections::HashSet<String> = if items.iter().any(|(_, c, _)| *c) {
        items.iter().map(|(key, _, _)| key.clone()).collect()
    } else {
        std::collections::HashSet::new()
    };
    let mut out = Vec::with_capacity(items.len());
    for (key, conflict, read) in items {
        if let Some(obj) = &read {
            out.push(Shown {
                id: key.clone(),
                key: key.clone(),
                obj: obj.clone(),
            });
        }
        if !conflict {
            continue;
        }
        for (value, obj) in doc.get_all(map, key.as_str()).unwrap_or_default() {
            if !matches!(value, Value::Object(ObjType::Map)) || read.as_ref() == Some(&obj) {
                continue;
            }
            let suffix = op_suffix(&obj);
            let mut id = format!("{key}{suffix}");
            while !taken.insert(id.clone()) {
                id.push_str(&suffix);
            }
            out.push(Shown {
                id,
                key: key.clone(),
                obj,
            });
        }
    }
    out
}

/// Copies the `records` map `from` of `old` into `to` (a new generation, `archive::rebase`):
/// every key's value as read, and every other record shown, under the id it is shown by as
/// its key; in each, every 进步档案 entry shown likewise. So a re-based file still shows each
/// record, under the same id.
pub(crate) fn copy_records<T: Transactable + ReadDoc>(
    old: &Automerge,
    from: &ObjId,
    tx: &mut T,
    to: &ObjId,
) -> Result<()> {
    copy_map(old, from, tx, to)?;
    for record in shown_maps(old, from) {
        let there = if record.id == record.key {
            map_at(tx, to, &record.key)
        } else {
            let there = tx.put_object(to, record.id.as_str(), ObjType::Map)?;
            copy_map(old, &record.obj, tx, &there)?;
            Some(there)
        };
        let (Some(progress), Some(into)) = (
            map_at(old, &record.obj, R_PROGRESS),
            there.and_then(|t| map_at(tx, &t, R_PROGRESS)),
        ) else {
            continue;
        };
        for entry in shown_maps(old, &progress) {
            if entry.id != entry.key {
                let e = tx.put_object(&into, entry.id.as_str(), ObjType::Map)?;
                copy_map(old, &entry.obj, tx, &e)?;
            }
        }
    }
    Ok(())
}

/// The record shown as `id` in `doc` and the key of `records` holding it, if there is one.
pub(crate) fn record_at<D: ReadDoc>(doc: &D, id: &str) -> Option<Shown> {
    let records = map_at(doc, &ROOT, RECORDS)?;
    // A key's own object is shown under the key itself; only an id no key holds a map at can
    // be a composite one.
    match map_at(doc, &records, id) {
        Some(obj) => Some(Shown {
            id: id.to_owned(),
            key: id.to_owned(),
            obj,
        }),
        // Only a key with a conflict shows composite ids: without one (every honest file),
        // a miss is a miss, and no id of every record is built.
        None if doc.map_range(&records, ..).any(|item| item.conflict) => {
            shown_maps(doc, &records).into_iter().find(|s| s.id == id)
        }
        None => None,
    }
}

/// Writes a new record. Every nested map it will ever have is created here, by its one author.
pub fn insert<T: Transactable + ReadDoc>(
    tx: &mut T,
    id: &RecordId,
    rec: &NewRecord,
    now_ms: i64,
) -> Result<()> {
    let records = records_map(tx)?;
    if map_at(tx, &records, id.as_str()).is_some() {
        return Err(Error::NotPermitted("记录编号重复".into()));
    }
    // The whole record in one batch: automerge splices a transaction's ops into the document
    // one by one, which was most of a durable 家访 write (BENCHMARKS §1); a batch is two
    // splices and the same operations.
    let str = |s: &str| hydrate::Value::Scalar(ScalarValue::Str(s.into()));
    let mut fields = HashMap::new();
    for spec in rec.kind.fields() {
        if let Some((_, v)) = rec.fields.iter().find(|(s, _)| s.key == spec.key)
            && !v.is_empty_text()
        {
            fields.insert(spec.key, hydrate::Value::Scalar(scalar(v)));
        }
    }
    let mut record: HashMap<&str, hydrate::Value> = HashMap::from([
        (R_KIND, str(rec.kind.key())),
        (
            R_HAPPENED,
            str(&rec.happened_on.format("%Y-%m-%d").to_string()),
        ),
        (R_AUTHOR, str(rec.author.as_str())),
        (R_ROLE, str(rec.author_role.key())),
        (R_DEVICE, str(rec.device.as_str())),
        (R_WRITTEN, hydrate::Value::Scalar(ScalarValue::Int(now_ms))),
        (R_FIELDS, hydrate::Map::from(fields).into()),
        (R_VOID, hydrate::Map::default().into()),
    ]);
    if let Some(child) = &rec.child {
        record.insert(R_CHILD, str(child.as_str()));
    }
    if rec.kind == RecordKind::StudyPlan {
        record.insert(R_PROGRESS, hydrate::Map::default().into());
    }
    tx.batch_create_object(
        &records,
        id.as_str(),
        &hydrate::Map::from(record).into(),
        false,
    )?;
    Ok(())
}

/// Edits some fields of a record (and optionally the date it happened). Fields not named are
/// left as they are, including fields this version does not know.
pub fn edit<T: Transactable + ReadDoc>(
    tx: &mut T,
    id: &RecordId,
    happened_on: Option<NaiveDate>,
    fields: &[(&'static FieldSpec, FieldValue)],
) -> Result<()> {
    let obj = record_obj(tx, id)?;
    if let Some(d) = happened_on {
        put_str(tx, &obj, R_HAPPENED, &d.format("%Y-%m-%d").to_string())?;
    }
    let fmap = map_at(tx, &obj, R_FIELDS).ok_or_else(|| Error::Corrupt("记录缺少字段表".into()))?;
    for (spec, value) in fields {
        write_field(tx, &fmap, spec, value)?;
    }
    Ok(())
}

/// The longest reason a record is voided for, in characters.
pub const MAX_VOID_REASON_CHARS: usize = 200;

/// Voids (作废) a record: who, when, why. The record and everything in it stays.
pub fn void<T: Transactable + ReadDoc>(
    tx: &mut T,
    id: &RecordId,
    by: &MemberId,
    now_ms: i64,
    reason: &str,
) -> Result<()> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Error::Missing("作废原因".into()));
    }
    crate::forms::check_line("作废原因", reason, MAX_VOID_REASON_CHARS)?;
    let obj = record_obj(tx, id)?;
    let vmap = map_at(tx, &obj, R_VOID).ok_or_else(|| Error::Corrupt("记录缺少作废表".into()))?;
    tx.put(&vmap, "by", by.as_str())?;
    tx.put(&vmap, "at", now_ms)?;
    tx.put(&vmap, "reason", reason)?;
    Ok(())
}

/// Adds a 进步档案 entry to a 学习帮扶计划.
pub fn add_progress<T: Transactable + ReadDoc>(
    tx: &mut T,
    plan: &RecordId,
    entry: &RecordId,
    date: NaiveDate,
    author: &MemberId,
    now_ms: i64,
    fields: &[(&'static FieldSpec, FieldValue)],
) -> Result<()> {
    let obj = record_obj(tx, plan)?;
    let progress = map_at(tx, &obj, R_PROGRESS)
        .ok_or_else(|| Error::NotPermitted("只有学习帮扶计划可以添加进步档案".into()))?;
    let e = tx.put_object(&progress, entry.as_str(), ObjType::Map)?;
    tx.put(&e, R_PROGRESS_DATE, date.format("%Y-%m-%d").to_string())?;
    tx.put(&e, R_AUTHOR, author.as_str())?;
    tx.put(&e, R_WRITTEN, now_ms)?;
    for spec in PROGRESS_FIELDS {
        if let Some((_, v)) = fields.iter().find(|(s, _)| s.key == spec.key)
            && !v.is_empty_text()
        {
            write_field(tx, &e, spec, v)?;
        }
    }
    Ok(())
}

/// The indexed facts of a record (what projections and due work need).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordMeta {
    pub id: RecordId,
    /// The kind key as stored (a newer app may write kinds this version does not know).
    pub kind_key: String,
    pub happened_on: String,
    pub author: String,
    pub author_role: String,
    pub device: String,
    pub written_at: i64,
    pub child: Option<String>,
    pub voided: bool,
}

impl RecordMeta {
    /// The kind, when this version knows it.
    pub fn kind(&self) -> Option<RecordKind> {
        RecordKind::parse(&self.kind_key)
    }
}

pub(crate) fn meta_of<D: ReadDoc>(doc: &D, id: &str, obj: &ObjId) -> RecordMeta {
    // One pass over the record's keys (their winning values), rather than a seek per key: a
    // file of 500 records is read whole each time it is shown.
    let mut meta = RecordMeta {
        id: RecordId(id.to_owned()),
        kind_key: String::new(),
        happened_on: String::new(),
        author: String::new(),
        author_role: String::new(),
        device: String::new(),
        written_at: 0,
        child: None,
        voided: false,
    };
    for item in doc.map_range(obj, ..) {
        let text = || match &item.value {
            automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) => Some(s.to_string()),
            _ => None,
        };
        match item.key.as_ref() {
            R_KIND => meta.kind_key = text().unwrap_or_default(),
            R_HAPPENED => meta.happened_on = text().unwrap_or_default(),
            R_AUTHOR => meta.author = text().unwrap_or_default(),
            R_ROLE => meta.author_role = text().unwrap_or_default(),
            R_DEVICE => meta.device = text().unwrap_or_default(),
            R_CHILD => meta.child = text(),
            R_WRITTEN => {
                meta.written_at = match &item.value {
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Int(n))
                    | automerge::ValueRef::Scalar(automerge::ScalarValueRef::Timestamp(n)) => *n,
                    automerge::ValueRef::Scalar(automerge::ScalarValueRef::Uint(n)) => {
                        i64::try_from(*n).unwrap_or_default()
                    }
                    _ => 0,
                }
            }
            R_VOID => {
                if let automerge::ValueRef::Object(ObjType::Map) = item.value {
                    meta.voided = get_str(doc, &item.id(), "reason").is_some();
                }
            }
            _ => {}
        }
    }
    meta
}

/// Every record of a document, each with the id it is shown by: every record object at a key,
/// not only the one automerge reads there (module docs).
pub(crate) fn each_record<D: ReadDoc>(doc: &D) -> Vec<(String, ObjId)> {
    let Some(records) = map_at(doc, &ROOT, RECORDS) else {
        return Vec::new();
    };
    shown_maps(doc, &records)
        .into_iter()
        .map(|s| (s.id, s.obj))
        .collect()
}

/// The meta of one record (by the id it is shown by), if the document has it.
pub fn meta<D: ReadDoc>(doc: &D, id: &str) -> Option<RecordMeta> {
    let shown = record_at(doc, id)?;
    Some(meta_of(doc, id, &shown.obj))
}

/// The meta of every record in a document.
pub fn metas<D: ReadDoc>(doc: &D) -> Vec<RecordMeta> {
    each_record(doc)
        .into_iter()
        .map(|(id, obj)| meta_of(doc, &id, &obj))
        .collect()
}

/// One field as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShownField {
    pub key: String,
    pub label: String,
    pub value: String,
}

/// Who voided a record, when and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoidInfo {
    pub by: String,
    pub at: i64,
    pub reason: String,
}

/// A 进步档案 entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressView {
    pub id: String,
    pub date: String,
    pub author: String,
    pub fields: Vec<ShownField>,
}

/// A record as shown to a person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordView {
    #[serde(flatten)]
    pub meta: RecordMeta,
    /// Chinese name of the kind (`未知类型` for kinds from a newer version).
    pub kind_label: String,
    /// The form's fields that have a value, in form order.
    pub fields: Vec<ShownField>,
    /// Fields this version does not know, shown as text and kept on every write.
    pub other_fields: Vec<ShownField>,
    pub void: Option<VoidInfo>,
    pub progress: Vec<ProgressView>,
}

fn shown<D: ReadDoc>(
    doc: &D,
    obj: &ObjId,
    form: &'static [FieldSpec],
) -> (Vec<ShownField>, Vec<ShownField>) {
    let mut known = Vec::new();
    for spec in form {
        if let Some(v) = read_field(doc, obj, spec) {
            if v.is_empty_text() {
                continue;
            }
            known.push(ShownField {
                key: spec.key.to_owned(),
                label: spec.label.to_owned(),
                value: spec.display(&v),
            });
        }
    }
    let other = doc
        .keys(obj)
        .filter(|k| !form.iter().any(|f| f.key == k))
        .filter_map(|k| {
            let v = match doc.get(obj, k.as_str()) {
                Ok(Some((Value::Object(ObjType::Text), id))) => doc.text(&id).ok()?,
                Ok(Some((Value::Scalar(_), _))) => scalar_text(doc, obj, &k)?,
                _ => return None,
            };
            Some(ShownField {
                label: k.clone(),
                key: k,
                value: v,
            })
        })
        .collect();
    (known, other)
}

fn scalar_text<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(s), _))) => Some(match s.as_ref() {
            ScalarValue::Str(t) => t.to_string(),
            other => other.to_string(),
        }),
        _ => None,
    }
}

/// Every record of a document as shown, in the order people expect (date happened, device
/// time, id).
pub fn views<D: ReadDoc>(doc: &D) -> Vec<RecordView> {
    let mut out: Vec<RecordView> = each_record(doc)
        .into_iter()
        .map(|(id, obj)| {
            let meta = meta_of(doc, &id, &obj);
            let kind = meta.kind();
            let form: &'static [FieldSpec] = kind.map_or(&[], RecordKind::fields);
            let (fields, other_fields) = match map_at(doc, &obj, R_FIELDS) {
                Some(f) => shown(doc, &f, form),
                None => (Vec::new(), Vec::new()),
            };
            let void = map_at(doc, &obj, R_VOID).and_then(|v| {
                Some(VoidInfo {
                    reason: get_str(doc, &v, "reason")?,
                    by: get_str(doc, &v, "by").unwrap_or_default(),
                    at: get_i64(doc, &v, "at").unwrap_or_default(),
                })
            });
            let progress = map_at(doc, &obj, R_PROGRESS)
                .map(|p| {
                    // Every entry object at a key, as every record at a key (module docs).
                    let mut entries: Vec<ProgressView> = shown_maps(doc, &p)
                        .into_iter()
                        .filter_map(|Shown { id, obj: e, .. }| {
                            Some(ProgressView {
                                date: get_str(doc, &e, R_PROGRESS_DATE)?,
                                author: get_str(doc, &e, R_AUTHOR).unwrap_or_default(),
                                fields: shown(doc, &e, PROGRESS_FIELDS).0,
                                id,
                            })
                        })
                        .collect();
                    entries.sort_by(|a, b| (&a.date, &a.id).cmp(&(&b.date, &b.id)));
                    entries
                })
                .unwrap_or_default();
            RecordView {
                kind_label: kind.map_or("未知类型", RecordKind::label).to_owned(),
                meta,
                fields,
                other_fields,
                void,
                progress,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.meta.happened_on, a.meta.written_at, &a.meta.id).cmp(&(
            &b.meta.happened_on,
            b.meta.written_at,
            &b.meta.id,
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use automerge::{ActorId, Automerge, ROOT};

    use super::*;
    use crate::doc::DocId;

    fn record(kind: RecordKind, author: &str) -> NewRecord {
        NewRecord {
            kind,
            child: Some(ChildId("c1".into())),
            happened_on: NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default(),
            author: MemberId(author.into()),
            author_role: Role::HeadTeacher,
            device: DeviceId(author.into()),
            fields: Vec::new(),
        }
    }

    fn write(doc: &mut Automerge, f: impl FnOnce(&mut automerge::transaction::Transaction<'_>)) {
        let mut tx = doc.transaction();
        f(&mut tx);
        tx.commit();
    }

    fn authors(doc: &Automerge) -> Vec<(String, String)> {
        let mut out: Vec<_> = metas(doc).into_iter().map(|m| (m.id.0, m.author)).collect();
        out.sort();
        out
    }

    /// Two copies make a record under one id apart (the second after one of its own, so its
    /// operation wins the key); then a key written to look like the other's composite id.
    #[test]
    fn every_record_at_a_key_is_shown_under_its_own_id() {
        let base = crate::doc::genesis(&DocId::Child(ChildId("c1".into())), ActorId::random())
            .expect("genesis");
        let id = RecordId::new(1_700_000_000_000);
        let mut his = base.fork().with_actor(ActorId::from([1; 16]));
        write(&mut his, |tx| {
            insert(tx, &id, &record(RecordKind::StudyPlan, "him"), 0).expect("his")
        });
        let mut hers = base.fork().with_actor(ActorId::from([2; 16]));
        write(&mut hers, |tx| {
            insert(tx, &RecordId::new(1), &record(RecordKind::Talk, "her"), 0).expect("padding");
            insert(tx, &id, &record(RecordKind::Talk, "her"), 0).expect("hers");
        });
        let mut doc = his.fork();
        doc.merge(&mut hers).expect("merge");
        let records = map_at(&doc, &ROOT, RECORDS).expect("records");
        let his_obj = doc
            .get_all(&records, id.as_str())
            .expect("key")
            .into_iter()
            .map(|(_, o)| o)
            .find(|o| matches!(o, ObjId::Id(_, a, _) if *a == ActorId::from([1; 16])))
            .expect("his object");
        // automerge reads hers at the key; his is shown under the key and his operation.
        let composite = format!("{id}{}", op_suffix(&his_obj));
        assert_eq!(composite.len(), 20 + 16 + 32);
        assert!(composite.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            meta(&doc, id.as_str()).map(|m| m.author).as_deref(),
            Some("her")
        );
        assert_eq!(
            meta(&doc, &composite).map(|m| m.author).as_deref(),
            Some("him")
        );
        assert_eq!(metas(&doc).len(), 3);
        assert_eq!(
            record_obj(&doc, &RecordId(composite.clone())).ok(),
            Some(his_obj.clone())
        );

        // An edit by that id goes to his record, and his plan's entries made apart under one
        // id are each shown.
        let entry = RecordId::new(2);
        let mut a = doc.fork().with_actor(ActorId::from([1; 16]));
        let mut b = doc.fork().with_actor(ActorId::from([3; 16]));
        let plan = RecordId(composite.clone());
        let date = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap_or_default();
        let him = MemberId("him".into());
        write(&mut a, |tx| {
            edit(tx, &plan, Some(date), &[]).expect("edit");
            add_progress(tx, &plan, &entry, date, &him, 0, &[]).expect("entry");
        });
        write(&mut b, |tx| {
            add_progress(tx, &plan, &entry, date, &MemberId("helper".into()), 0, &[])
                .expect("entry");
        });
        a.merge(&mut b).expect("merge");
        let doc = a;
        let shown = views(&doc);
        let plan_view = shown.iter().find(|v| v.meta.id == plan).expect("his plan");
        assert_eq!(plan_view.meta.happened_on, "2026-11-21");
        let mut entries: Vec<&str> = plan_view
            .progress
            .iter()
            .map(|p| p.author.as_str())
            .collect();
        entries.sort_unstable();
        assert_eq!(entries, ["helper", "him"]);
        assert_ne!(plan_view.progress[0].id, plan_view.progress[1].id);

        // A re-based copy shows the same records under the same ids, entries and all.
        let mut new = crate::doc::genesis(&DocId::Child(ChildId("c1".into())), ActorId::random())
            .expect("genesis");
        let to = map_at(&new, &ROOT, RECORDS).expect("records");
        let from = map_at(&doc, &ROOT, RECORDS).expect("records");
        write(&mut new, |tx| {
            copy_records(&doc, &from, tx, &to).expect("copy")
        });
        assert_eq!(authors(&new), authors(&doc));
        let rebased = views(&new);
        let plan_there = rebased
            .iter()
            .find(|v| v.meta.id == plan)
            .expect("his plan");
        assert_eq!(plan_there.progress.len(), 2);

        // A key written to look like his composite id does not take it from him: his moves on
        // to his operation written twice, and every id stays distinct.
        let mut doc = doc;
        write(&mut doc, |tx| {
            insert(
                tx,
                &RecordId(composite.clone()),
                &record(RecordKind::Talk, "her"),
                0,
            )
            .expect("lookalike");
        });
        let twice = format!("{composite}{}", op_suffix(&his_obj));
        assert_eq!(
            meta(&doc, &composite).map(|m| m.author).as_deref(),
            Some("her")
        );
        assert_eq!(meta(&doc, &twice).map(|m| m.author).as_deref(), Some("him"));
        let ids: std::collections::HashSet<String> =
            metas(&doc).into_iter().map(|m| m.id.0).collect();
        assert_eq!(ids.len(), 4);
    }
}
