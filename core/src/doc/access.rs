//! Typed reads and writes of fields in automerge maps.
//!
//! Writes are minimal: a scalar that already holds exactly the new value is not written again
//! (no needless operations, no needless bytes on the wire); text is updated with a diff.

use automerge::transaction::Transactable;
use automerge::{
    Automerge, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef,
};
use chrono::NaiveDate;

use crate::error::Result;
use crate::forms::{FieldKind, FieldSpec, FieldValue};

/// Copies the contents of the map `from` of `old` into the map `to` (current values only:
/// a conflict keeps the value every reader shows).
pub fn copy_map<T: Transactable + ReadDoc>(
    old: &Automerge,
    from: &ObjId,
    tx: &mut T,
    to: &ObjId,
) -> Result<()> {
    for key in old.keys(from).collect::<Vec<_>>() {
        if let Some((value, id)) = old.get(from, key.as_str())? {
            copy_value(old, value, &id, tx, to, &key)?;
        }
    }
    Ok(())
}

/// Writes `value` of `old` (its object `id`, if an object) as `to[key]`, objects whole.
fn copy_value<T: Transactable + ReadDoc>(
    old: &Automerge,
    value: Value<'_>,
    id: &ObjId,
    tx: &mut T,
    to: &ObjId,
    key: &str,
) -> Result<()> {
    match value {
        Value::Scalar(s) => tx.put(to, key, s.into_owned())?,
        Value::Object(ObjType::Map) => {
            let obj = tx.put_object(to, key, ObjType::Map)?;
            copy_map(old, id, tx, &obj)?;
        }
        Value::Object(ObjType::Text) => {
            let obj = tx.put_object(to, key, ObjType::Text)?;
            tx.splice_text(&obj, 0, 0, &old.text(id)?)?;
        }
        // Lists do not occur in this layout; a newer version's list is kept empty.
        Value::Object(t) => {
            tx.put_object(to, key, t)?;
        }
    }
    Ok(())
}

/// Copies into the map `to` what the map `from` of `old` holds and `to` does not: keys it
/// lacks (whole), and within maps both hold, the same again. A value both hold is left as `to`
/// has it.
pub fn copy_missing<T: Transactable + ReadDoc>(
    old: &Automerge,
    from: &ObjId,
    tx: &mut T,
    to: &ObjId,
) -> Result<()> {
    for key in old.keys(from).collect::<Vec<_>>() {
        copy_missing_key(old, from, &key, tx, to)?;
    }
    Ok(())
}

/// [`copy_missing`] for one key of `from`.
pub fn copy_missing_key<T: Transactable + ReadDoc>(
    old: &Automerge,
    from: &ObjId,
    key: &str,
    tx: &mut T,
    to: &ObjId,
) -> Result<()> {
    let Some((value, id)) = old.get(from, key)? else {
        return Ok(());
    };
    match (value, tx.get(to, key)?) {
        (Value::Object(ObjType::Map), Some((Value::Object(ObjType::Map), there))) => {
            copy_missing(old, &id, tx, &there)
        }
        (_, Some(_)) => Ok(()),
        (value, None) => copy_value(old, value, &id, tx, to, key),
    }
}

/// Whether [`copy_missing`] would copy anything from the map `from` of `old` into the map
/// `to` of `new`.
pub fn lacks<D: ReadDoc>(old: &Automerge, from: &ObjId, new: &D, to: &ObjId) -> bool {
    old.keys(from).any(|key| {
        let Ok(Some((value, id))) = old.get(from, key.as_str()) else {
            return false;
        };
        match (value, new.get(to, key.as_str())) {
            (Value::Object(ObjType::Map), Ok(Some((Value::Object(ObjType::Map), there)))) => {
                lacks(old, &id, new, &there)
            }
            (_, Ok(Some(_))) => false,
            (_, Ok(None)) => true,
            (_, Err(_)) => false,
        }
    })
}

/// A value of a map's key as readers see it, to compare two states of the key (maps and
/// other objects by their type alone).
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    Scalar(ScalarValue),
    Text(String),
    Object(ObjType),
}

fn held_at<D: ReadDoc>(
    doc: &D,
    obj: &ObjId,
    key: &str,
    heads: Option<&[ChangeHash]>,
) -> Result<Option<Held>> {
    let got = match heads {
        Some(h) => doc.get_at(obj, key, h)?,
        None => doc.get(obj, key)?,
    };
    Ok(match got {
        None => None,
        Some((Value::Scalar(s), _)) => Some(Held::Scalar(s.into_owned())),
        Some((Value::Object(ObjType::Text), id)) => Some(Held::Text(match heads {
            Some(h) => doc.text_at(&id, h)?,
            None => doc.text(&id)?,
        })),
        Some((Value::Object(t), _)) => Some(Held::Object(t)),
    })
}

/// The keys of the map `from` of `old` whose scalar or text value differs from what it was
/// in the state `heads` of `old`, each with its value now (`None`: removed since). Maps are
/// compared by type, not entered. `from` must be a map `old` held at `heads`.
pub fn changed_since(
    old: &Automerge,
    heads: &[ChangeHash],
    from: &ObjId,
) -> Vec<(String, Option<Held>)> {
    let mut keys: Vec<String> = old.keys(from).chain(old.keys_at(from, heads)).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let now = held_at(old, from, &key, None).ok()?;
            let before = held_at(old, from, &key, Some(heads)).ok()?;
            (now != before && !matches!(now, Some(Held::Object(_)))).then_some((key, now))
        })
        .collect()
}

/// Whether `to[key]` of `doc` is not `value`.
pub fn differs<D: ReadDoc>(doc: &D, to: &ObjId, key: &str, value: &Option<Held>) -> bool {
    held_at(doc, to, key, None).map_or(true, |h| &h != value)
}

/// Makes `to[key]` hold `value` (text updated in place where it is text; `None` removes it),
/// writing nothing where it already does.
pub fn put_held<T: Transactable + ReadDoc>(
    tx: &mut T,
    to: &ObjId,
    key: &str,
    value: &Option<Held>,
) -> Result<()> {
    if !differs(tx, to, key, value) {
        return Ok(());
    }
    match value {
        None => tx.delete(to, key)?,
        Some(Held::Scalar(s)) => tx.put(to, key, s.clone())?,
        Some(Held::Text(text)) => match tx.get(to, key)? {
            Some((Value::Object(ObjType::Text), obj)) => tx.update_text(&obj, text)?,
            _ => {
                let obj = tx.put_object(to, key, ObjType::Text)?;
                tx.splice_text(&obj, 0, 0, text)?;
            }
        },
        // Not written by [`changed_since`].
        Some(Held::Object(_)) => {}
    }
    Ok(())
}

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

/// A document as it is, or as it was at some heads: the reads a view of it needs, either way.
/// Reading a past state this way walks the document once with a clock, where
/// `Automerge::fork_at` rebuilds the document from its history first (on a phone, a school
/// document's fork cost more than the whole read of it, BENCHMARKS §7).
#[derive(Debug)]
pub struct Version<'a, D> {
    doc: &'a D,
    heads: Option<&'a [ChangeHash]>,
}

impl<D> Clone for Version<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D> Copy for Version<'_, D> {}

impl<'a, D: ReadDoc> Version<'a, D> {
    /// The document as it is.
    pub fn now(doc: &'a D) -> Self {
        Version { doc, heads: None }
    }

    /// The document as it was at `heads` (each of which it must hold).
    pub fn at(doc: &'a D, heads: &'a [ChangeHash]) -> Self {
        Version::of(doc, Some(heads))
    }

    /// The document at `heads`, or as it is if `None`.
    pub fn of(doc: &'a D, heads: Option<&'a [ChangeHash]>) -> Self {
        Version { doc, heads }
    }

    /// The value at `obj[key]` (automerge's winner among concurrent values).
    pub fn get(&self, obj: &ObjId, key: &str) -> Option<(Value<'a>, ObjId)> {
        match self.heads {
            None => self.doc.get(obj, key),
            Some(heads) => self.doc.get_at(obj, key, heads),
        }
        .ok()
        .flatten()
    }

    /// Every value at `obj[key]`: automerge's winner and those concurrent with it.
    pub fn get_all(&self, obj: &ObjId, key: &str) -> Vec<(Value<'a>, ObjId)> {
        match self.heads {
            None => self.doc.get_all(obj, key),
            Some(heads) => self.doc.get_all_at(obj, key, heads),
        }
        .unwrap_or_default()
    }

    /// The map at `parent[key]`, as [`map_at`].
    pub fn map(&self, parent: &ObjId, key: &str) -> Option<ObjId> {
        match self.get(parent, key) {
            Some((Value::Object(ObjType::Map), id)) => Some(id),
            _ => None,
        }
    }

    /// The entries of the map `obj` whose keys fall in `range`.
    pub fn map_range<R: std::ops::RangeBounds<String> + 'a>(
        &self,
        obj: &ObjId,
        range: R,
    ) -> automerge::iter::MapRange<'a> {
        match self.heads {
            None => self.doc.map_range(obj, range),
            Some(heads) => self.doc.map_range_at(obj, range, heads),
        }
    }

    /// The keys of the map `obj`.
    pub fn keys(&self, obj: &ObjId) -> automerge::iter::Keys<'a> {
        match self.heads {
            None => self.doc.keys(obj),
            Some(heads) => self.doc.keys_at(obj, heads),
        }
    }

    /// The fields of the map `obj`, as [`Fields::of`].
    pub fn fields(&self, obj: &ObjId) -> Fields<'a> {
        Fields {
            items: self.map_range(obj, ..).collect(),
        }
    }

    /// A string scalar at `obj[key]`, as [`get_str`].
    pub fn str(&self, obj: &ObjId, key: &str) -> Option<String> {
        match self.get(obj, key)? {
            (Value::Scalar(s), _) => match s.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The fields of one map, read in one pass: for reading several fields of the same object.
/// One `map_range` walks the map once; a `get` per field seeks it each time (reading the
/// school document field by field cost six times a walk of it, BENCHMARKS §7). Each key holds
/// the value `get` returns (automerge's winner among concurrent values).
#[derive(Debug)]
pub struct Fields<'a> {
    items: Vec<automerge::iter::MapRangeItem<'a>>,
}

impl<'a> Fields<'a> {
    /// The fields of the map `obj` (none if it is not a map of `doc`); at some heads, with
    /// [`Version::fields`].
    pub fn of<D: ReadDoc>(doc: &'a D, obj: &ObjId) -> Fields<'a> {
        Version::now(doc).fields(obj)
    }

    fn scalar(&self, key: &str) -> Option<&ScalarValueRef<'a>> {
        match self.items.iter().find(|i| i.key == key).map(|i| &i.value) {
            Some(ValueRef::Scalar(s)) => Some(s),
            _ => None,
        }
    }

    /// A string scalar, as [`get_str`].
    pub fn str(&self, key: &str) -> Option<String> {
        match self.scalar(key)? {
            ScalarValueRef::Str(s) => Some(s.to_string()),
            _ => None,
        }
    }

    /// An integer scalar, as [`get_i64`].
    pub fn i64(&self, key: &str) -> Option<i64> {
        match *self.scalar(key)? {
            ScalarValueRef::Int(n) | ScalarValueRef::Timestamp(n) => Some(n),
            ScalarValueRef::Uint(n) => i64::try_from(n).ok(),
            _ => None,
        }
    }

    /// A boolean scalar, as [`get_bool`].
    pub fn bool(&self, key: &str) -> Option<bool> {
        match *self.scalar(key)? {
            ScalarValueRef::Boolean(b) => Some(b),
            _ => None,
        }
    }

    /// The map at `key`, as [`map_at`].
    pub fn map(&self, key: &str) -> Option<ObjId> {
        self.items
            .iter()
            .find(|i| i.key == key && matches!(i.value, ValueRef::Object(ObjType::Map)))
            .map(|i| i.id())
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

    /// `Fields` reads what the per-key reads do, conflicts included: the same winner among
    /// concurrent values, the same answer for a missing key or a value of another type.
    #[test]
    fn fields_read_in_one_pass_what_a_read_per_key_reads() {
        let mut a = Automerge::new().with_actor(ActorId::random());
        let mut tx = a.transaction();
        let m = tx.put_object(ROOT, "member", ObjType::Map).unwrap();
        tx.put(&m, "name", "刘桂兰").unwrap();
        tx.put(&m, "active", true).unwrap();
        tx.put(&m, "count", ScalarValue::Uint(7)).unwrap();
        tx.put(&m, "at", ScalarValue::Timestamp(1_764_806_400_000))
            .unwrap();
        tx.put(&m, "neg", -3_i64).unwrap();
        tx.put(&m, "huge", ScalarValue::Uint(u64::MAX)).unwrap();
        let roles = tx.put_object(&m, "roles", ObjType::Map).unwrap();
        tx.put(&roles, "care_mother", true).unwrap();
        tx.put_object(&m, "note", ObjType::Text).unwrap();
        tx.commit();
        let first = a.get_heads();
        // Two devices write the same keys while apart: conflicts, one winner each.
        let mut b = a.fork().with_actor(ActorId::random());
        for (d, name, active) in [(&mut a, "刘桂英", false), (&mut b, "刘桂芳", true)] {
            let mut tx = d.transaction();
            tx.put(&m, "name", name).unwrap();
            tx.put(&m, "active", active).unwrap();
            tx.put(&m, "count", ScalarValue::Int(i64::from(active)))
                .unwrap();
            tx.commit();
        }
        a.merge(&mut b).unwrap();
        assert_eq!(a.get_all(&m, "name").unwrap().len(), 2);
        let f = Fields::of(&a, &m);
        for key in [
            "name", "active", "count", "at", "neg", "huge", "roles", "note", "none",
        ] {
            assert_eq!(f.str(key), get_str(&a, &m, key), "{key}");
            assert_eq!(f.i64(key), get_i64(&a, &m, key), "{key}");
            assert_eq!(f.bool(key), get_bool(&a, &m, key), "{key}");
            assert_eq!(f.map(key), map_at(&a, &m, key), "{key}");
        }
        // And as they were before the conflict, as the per-key reads at those heads.
        let then = Version::at(&a, &first).fields(&m);
        for key in ["name", "active", "count", "at", "roles", "none"] {
            let get = |k: &str| match a.get_at(&m, k, &first) {
                Ok(Some((Value::Scalar(s), _))) => Some(s.into_owned()),
                _ => None,
            };
            let str_then = get(key).and_then(|s| s.as_str().map(str::to_owned));
            assert_eq!(then.str(key), str_then, "{key}");
            assert_eq!(
                then.map(key),
                a.get_at(&m, key, &first)
                    .ok()
                    .flatten()
                    .and_then(|(v, id)| matches!(v, Value::Object(ObjType::Map)).then_some(id)),
                "{key}"
            );
        }
        assert_eq!(then.str("name").as_deref(), Some("刘桂兰"));
        assert_eq!(then.bool("active"), Some(true));
        assert_eq!(then.i64("count"), Some(7));
        assert_eq!(f.i64("at"), Some(1_764_806_400_000));
        assert_eq!(f.map("roles"), Some(roles.clone()));
        assert_eq!(Fields::of(&a, &roles).bool("care_mother"), Some(true));
        // Not a map: no fields.
        assert_eq!(Fields::of(&a, &ROOT).str("member"), None);
    }

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
