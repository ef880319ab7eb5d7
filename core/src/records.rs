//! Care records inside a document's `records` map.
//!
//! A record is a map: `kind`, `happened_on` (the date the user entered), `author`,
//! `author_role`, `device`, `written_at` (the device clock, shown but never trusted), `child`,
//! a `fields` map following the kind's form, a `void` map, and for a 学习帮扶计划 a `progress`
//! map of 进步档案 entries. Records are shown ordered by the date they happened, then by the
//! device time, then by id: a phone with a wrong clock only misorders records within one day.

use automerge::transaction::Transactable;
use std::collections::HashMap;

use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value, hydrate};
use chrono::NaiveDate;
use serde::Serialize;

use crate::doc::access::{get_i64, get_str, map_at, put_str, read_field, scalar, write_field};
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
    let records = records_map(doc)?;
    map_at(doc, &records, id.as_str()).ok_or_else(|| Error::not_found("记录", id))
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

pub(crate) fn each_record<D: ReadDoc>(doc: &D) -> Vec<(String, ObjId)> {
    let Some(records) = map_at(doc, &ROOT, RECORDS) else {
        return Vec::new();
    };
    doc.map_range(&records, ..)
        .filter_map(|item| match item.value {
            automerge::ValueRef::Object(ObjType::Map) => Some((item.key.to_string(), item.id())),
            _ => None,
        })
        .collect()
}

/// The meta of one record, if the document has it.
pub fn meta<D: ReadDoc>(doc: &D, id: &str) -> Option<RecordMeta> {
    let records = map_at(doc, &ROOT, RECORDS)?;
    let obj = map_at(doc, &records, id)?;
    Some(meta_of(doc, id, &obj))
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
                    let mut entries: Vec<ProgressView> = doc
                        .map_range(&p, ..)
                        .filter_map(|item| {
                            let eid = item.key.to_string();
                            let e = item.id();
                            Some(ProgressView {
                                date: get_str(doc, &e, R_PROGRESS_DATE)?,
                                author: get_str(doc, &e, R_AUTHOR).unwrap_or_default(),
                                fields: shown(doc, &e, PROGRESS_FIELDS).0,
                                id: eid,
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
