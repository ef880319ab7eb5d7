//! Typed reads and writes of fields in automerge maps.
//!
//! Writes are minimal: a scalar that already holds exactly the new value is not written again
//! (no needless operations, no needless bytes on the wire); text is updated with a diff.

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value};
use chrono::NaiveDate;

use crate::error::Result;
use crate::forms::{FieldKind, FieldSpec, FieldValue};

/// The map at `parent[key]`, if it is one.
pub fn map_at<D: ReadDoc>(doc: &D, parent: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(parent, key) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

/// A string scalar at `obj[key]`.
pub fn get_str<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// An integer scalar at `obj[key]`.
pub fn get_i64<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<i64> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Int(n) => Some(*n),
            ScalarValue::Uint(n) => i64::try_from(*n).ok(),
            ScalarValue::Timestamp(n) => Some(*n),
            _ => None,
        },
        _ => None,
    }
}

/// A boolean scalar at `obj[key]`.
pub fn get_bool<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str) -> Option<bool> {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Boolean(b) => Some(*b),
            _ => None,
        },
        _ => None,
    }
}

/// Converts one stored value to a [`FieldValue`] of the spec's kind. Values of an unexpected
/// type (written by another version) are shown as text rather than dropped.
fn to_field_value<D: ReadDoc>(
    doc: &D,
    spec: &FieldSpec,
    v: &Value<'_>,
    id: &ObjId,
) -> Option<FieldValue> {
    match v {
        Value::Object(ObjType::Text) => doc.text(id).ok().map(FieldValue::Text),
        Value::Object(_) => None,
        Value::Scalar(s) => Some(match (spec.kind, s.as_ref()) {
            (FieldKind::Date, ScalarValue::Str(t)) => {
                match NaiveDate::parse_from_str(t, "%Y-%m-%d") {
                    Ok(d) => FieldValue::Date(d),
                    Err(_) => FieldValue::Str(t.to_string()),
                }
            }
            (_, ScalarValue::Str(t)) => FieldValue::Str(t.to_string()),
            (_, ScalarValue::Int(n)) => FieldValue::Int(*n),
            (_, ScalarValue::Uint(n)) => FieldValue::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
            (_, ScalarValue::F64(n)) => FieldValue::F64(*n),
            (_, ScalarValue::Boolean(b)) => FieldValue::Bool(*b),
            (_, ScalarValue::Null) => return None,
            (_, other) => FieldValue::Str(other.to_string()),
        }),
    }
}

/// The current value of a field (automerge's deterministic winner when there is a conflict).
pub fn read_field<D: ReadDoc>(doc: &D, obj: &ObjId, spec: &FieldSpec) -> Option<FieldValue> {
    match doc.get(obj, spec.key) {
        Ok(Some((v, id))) => to_field_value(doc, spec, &v, &id),
        _ => None,
    }
}

/// Every distinct concurrent value at `obj[key]`, read as `spec`'s kind: more than one means a
/// conflict.
pub fn read_all<D: ReadDoc>(doc: &D, obj: &ObjId, key: &str, spec: &FieldSpec) -> Vec<FieldValue> {
    let mut out: Vec<FieldValue> = Vec::new();
    for (v, id) in doc.get_all(obj, key).unwrap_or_default() {
        if let Some(fv) = to_field_value(doc, spec, &v, &id)
            && !out.contains(&fv)
        {
            out.push(fv);
        }
    }
    out
}

/// The scalar a field's value is stored as.
pub fn scalar(value: &FieldValue) -> ScalarValue {
    match value {
        FieldValue::Text(s) | FieldValue::Str(s) => ScalarValue::Str(s.as_str().into()),
        FieldValue::Int(n) => ScalarValue::Int(*n),
        FieldValue::F64(n) => ScalarValue::F64(*n),
        FieldValue::Bool(b) => ScalarValue::Boolean(*b),
        FieldValue::Date(d) => ScalarValue::Str(d.format("%Y-%m-%d").to_string().into()),
    }
}

/// Writes a field. A note (a `Text` field) is a plain string: a record is edited only by its
/// author, so character-wise merging buys nothing, while a Text object costs an operation per
/// character to load, keep in memory and send (BENCHMARKS §13: a child with 500 notes of
/// 1,000 characters). A note written before 2026-12-03 is a Text object and is still edited as
/// one, as a diff. Any other scalar is written unless every value it holds is already this
/// one. Writing a scalar whose values differ always writes, which resolves the conflict.
pub fn write_field<T: Transactable + ReadDoc>(
    tx: &mut T,
    obj: &ObjId,
    spec: &FieldSpec,
    value: &FieldValue,
) -> Result<()> {
    if let (FieldKind::Text, FieldValue::Text(text)) = (spec.kind, value)
        && let Some((Value::Object(ObjType::Text), text_obj)) = tx.get(obj, spec.key)?
    {
        if tx.text(&text_obj)? != *text {
            tx.update_text(&text_obj, text)?;
        }
        return Ok(());
    }
    let new = scalar(value);
    let current = tx.get_all(obj, spec.key)?;
    // Identical values written concurrently (two devices importing the same roster) are not a
    // conflict and need no new write.
    let same = !current.is_empty()
        && current
            .iter()
            .all(|(v, _)| matches!(v, Value::Scalar(s) if s.as_ref() == &new));
    if !same {
        tx.put(obj, spec.key, new)?;
    }
    Ok(())
}

/// Puts a scalar unconditionally: a resolution supersedes every value it has seen, even when
/// the chosen value is one of them.
pub fn put_scalar<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: &FieldValue,
) -> Result<()> {
    tx.put(obj, key, scalar(value))?;
    Ok(())
}

/// Puts a plain string unless it already holds exactly that value.
pub fn put_str<T: Transactable + ReadDoc>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
    value: &str,
) -> Result<()> {
    let current = tx.get_all(obj, key)?;
    let same = !current.is_empty()
        && current.iter().all(|(v, _)| {
            matches!(v, Value::Scalar(s) if matches!(s.as_ref(), ScalarValue::Str(t) if t.as_str() == value))
        });
    if !same {
        tx.put(obj, key, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{ActorId, Automerge, ROOT};

    #[test]
    fn identical_concurrent_values_need_no_write() {
        let spec = FieldSpec::opt("name", "姓名", FieldKind::Line);
        let mut a = Automerge::new().with_actor(ActorId::random());
        let mut b = Automerge::new().with_actor(ActorId::random());
        for d in [&mut a, &mut b] {
            let mut tx = d.transaction();
            write_field(&mut tx, &ROOT, &spec, &FieldValue::Str("陈思远".into())).unwrap();
            tx.commit();
        }
        a.merge(&mut b).unwrap();
        let all = a.get_all(ROOT, "name").unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        let heads = a.get_heads();
        let mut tx = a.transaction();
        write_field(&mut tx, &ROOT, &spec, &FieldValue::Str("陈思远".into())).unwrap();
        tx.commit();
        assert_eq!(a.get_heads(), heads);
    }

    #[test]
    fn a_new_note_is_a_plain_string_and_an_old_text_note_stays_text() {
        let spec = FieldSpec::req("notes", "情况记录", FieldKind::Text);
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        let old = tx.put_object(ROOT, "old", ObjType::Map).unwrap();
        let text = tx.put_object(&old, "notes", ObjType::Text).unwrap();
        tx.splice_text(&text, 0, 0, "奶奶在家").unwrap();
        let new = tx.put_object(ROOT, "new", ObjType::Map).unwrap();
        write_field(&mut tx, &new, &spec, &FieldValue::Text("爷爷在家".into())).unwrap();
        write_field(
            &mut tx,
            &old,
            &spec,
            &FieldValue::Text("奶奶和爷爷在家".into()),
        )
        .unwrap();
        tx.commit();
        // The new note: one scalar, read back as the text typed.
        assert!(matches!(
            doc.get(&new, "notes").unwrap(),
            Some((Value::Scalar(_), _))
        ));
        assert_eq!(
            read_field(&doc, &new, &spec),
            Some(FieldValue::Str("爷爷在家".into()))
        );
        // The old note: still its Text object, edited in place.
        assert_eq!(
            doc.get(&old, "notes").unwrap().map(|(_, id)| id),
            Some(text)
        );
        assert_eq!(
            read_field(&doc, &old, &spec),
            Some(FieldValue::Text("奶奶和爷爷在家".into()))
        );
    }
}
