//! Finding and resolving conflicts.
//!
//! A conflict is a map key holding more than one distinct scalar value: two devices wrote the
//! same field while apart. Nothing is lost: [`list`] returns every value. A resolution writes the
//! chosen value, which supersedes every value the resolving device has seen; it is an ordinary
//! change and merges like one (two devices resolving differently while apart make a new conflict
//! between the two resolutions, which is what actually happened).

use automerge::{ObjId, ObjType, ROOT, ReadDoc, Value};
use serde::Serialize;

use super::access::read_all;
use super::layout::*;
use crate::forms::{FieldKind, FieldSpec, FieldValue};
use crate::kinds::{RecordKind, section};

/// One field with concurrent values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conflict {
    /// Path of map keys from the root, e.g. `["guardian", "phone"]`.
    pub path: Vec<String>,
    /// Chinese label, e.g. `监护人·电话`.
    pub label: String,
    /// The distinct values, as stored (shown with the field's labels).
    pub values: Vec<String>,
}

impl Conflict {
    /// The path as `guardian.phone`, the form the CLI takes.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

const META_SPECS: &[FieldSpec] = &[
    FieldSpec::req(R_HAPPENED, "日期", FieldKind::Date),
    FieldSpec::opt("reason", "作废原因", FieldKind::Line),
    FieldSpec::opt("name", "姓名", FieldKind::Line),
    FieldSpec::opt("phone", "电话", FieldKind::Phone),
];

/// A 进步档案 entry's date, resolved as a record's date is.
const PROGRESS_DATE: FieldSpec = FieldSpec::req(R_PROGRESS_DATE, "日期", FieldKind::Date);

/// The field spec and Chinese label of a path, where this version knows it.
pub fn spec_for_path<D: ReadDoc>(doc: &D, path: &[String]) -> (Option<&'static FieldSpec>, String) {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        [sec, key] => {
            if let Some(s) = section(sec)
                && let Some(f) = s.fields.iter().find(|f| f.key == *key)
            {
                return (Some(f), format!("{}·{}", s.label, f.label));
            }
        }
        [RECORDS, _, R_PROGRESS, _, R_PROGRESS_DATE] => {
            return (Some(&PROGRESS_DATE), "进步档案·日期".to_owned());
        }
        [RECORDS, rid, R_FIELDS, key] | [RECORDS, rid, R_PROGRESS, _, key] => {
            let kind = super::map_at_path(doc, &[RECORDS, rid])
                .and_then(|r| super::access::get_str(doc, &r, R_KIND))
                .and_then(|k| RecordKind::parse(&k));
            if let Some(kind) = kind {
                let form = if p[2] == R_PROGRESS {
                    crate::kinds::PROGRESS_FIELDS
                } else {
                    kind.fields()
                };
                if let Some(f) = form.iter().find(|f| f.key == *key) {
                    return (Some(f), format!("{}·{}", kind.label(), f.label));
                }
            }
        }
        [RECORDS, _, key] | [RECORDS, _, R_VOID, key] | [_, _, key] => {
            if let Some(f) = META_SPECS.iter().find(|f| f.key == *key) {
                return (Some(f), f.label.to_owned());
            }
        }
        _ => {}
    }
    (None, path.join("."))
}

/// How a field this version does not know is read: as plain text.
const PLAIN: FieldSpec = FieldSpec::opt("", "", FieldKind::Line);

/// Every conflict in the document, in key order.
/// Keys whose concurrent values are no conflict for people: a grant's
/// [`crate::consent::RECORDED`], a new value at every grant.
fn is_marker(path: &[String]) -> bool {
    matches!(path, [top, key] if top == "profile" && key == crate::consent::RECORDED)
}

pub fn list<D: ReadDoc>(doc: &D) -> Vec<Conflict> {
    let mut out = Vec::new();
    walk(doc, &ROOT, &mut Vec::new(), &mut out);
    out
}

fn walk<D: ReadDoc>(doc: &D, obj: &ObjId, path: &mut Vec<String>, out: &mut Vec<Conflict>) {
    // One pass over the map says which keys hold more than one value; only those are read
    // again (`get_all`). Seeking every key of a file of 500 records was a fifth of showing it.
    let items: Vec<(String, bool, Option<ObjId>)> = doc
        .map_range(obj, ..)
        .map(|item| {
            let child = match item.value {
                automerge::ValueRef::Object(ObjType::Map) => Some(item.id()),
                _ => None,
            };
            (item.key.to_string(), item.conflict, child)
        })
        .collect();
    for (key, conflict, child) in items {
        path.push(key.clone());
        if conflict && is_marker(path) {
            // Two grants recorded apart always differ here, by design: nobody chose it.
        } else if conflict {
            let all = doc.get_all(obj, key.as_str()).unwrap_or_default();
            if all.len() > 1 && all.iter().all(|(v, _)| v.is_scalar()) {
                let (spec, label) = spec_for_path(doc, path);
                let spec = spec.unwrap_or(&PLAIN);
                let values: Vec<String> = read_all(doc, obj, &key, spec)
                    .iter()
                    .map(|v| spec.display(v))
                    .collect();
                if values.len() > 1 {
                    out.push(Conflict {
                        path: path.clone(),
                        label,
                        values,
                    });
                }
            } else if let Some((Value::Object(ObjType::Map), child)) = all.last().cloned() {
                walk(doc, &child, path, out);
            }
        } else if let Some(child) = child {
            walk(doc, &child, path, out);
        }
        path.pop();
    }
}

/// Parses a user's resolution value for the field at `path`.
pub fn parse_for_path<D: ReadDoc>(
    doc: &D,
    path: &[String],
    raw: &str,
) -> crate::Result<FieldValue> {
    match spec_for_path(doc, path) {
        (Some(spec), _) => spec.parse(raw),
        // A field this version does not know: free text, as long as a note at most.
        (None, label) => {
            let text = raw.trim();
            crate::forms::check_text(&label, text)?;
            if text.chars().count() > crate::forms::MAX_NOTE_CHARS {
                return Err(crate::Error::invalid(
                    &label,
                    format!("太长了，最多{}个字", crate::forms::MAX_NOTE_CHARS),
                ));
            }
            Ok(FieldValue::Str(text.to_owned()))
        }
    }
}

/// The values of the conflict at `path` as [`FieldValue`]s, for picking one.
pub fn values_at<D: ReadDoc>(doc: &D, path: &[String]) -> Vec<FieldValue> {
    let Some((last, parents)) = path.split_last() else {
        return Vec::new();
    };
    let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
    let Some(obj) = super::map_at_path(doc, &parents) else {
        return Vec::new();
    };
    let spec = spec_for_path(doc, path).0.unwrap_or(&PLAIN);
    read_all(doc, &obj, last, spec)
}
