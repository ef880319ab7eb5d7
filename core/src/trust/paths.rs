//! What a change writes, as paths of map keys from the document's root.
//!
//! An automerge operation names the object it writes by id (the operation that created it).
//! Objects never move, so an object's path is where it was created, whatever happened to it
//! since: [`ReadDoc::parents`] gives it for objects of any visibility. The change must already
//! be applied to the document (objects it creates are then known too).

use std::collections::HashMap;

use automerge::{ActorId, Automerge, ObjId, ObjType, Prop, ReadDoc, ScalarValue, legacy};

/// One operation of a change, located.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// Map keys from the root to the written key (for text and lists: to the sequence).
    pub path: Vec<String>,
    pub action: Action,
    /// The objects reached along `path` (one per key, the last being the written object when
    /// the path ends at an object).
    pub objects: Vec<ObjId>,
    /// The operation supersedes values already there (automerge's `pred`): an overwrite, as
    /// opposed to writing a key for the first time.
    pub replaces: bool,
    /// The operations it supersedes (`counter`, actor).
    pub pred: Vec<(u64, ActorId)>,
}

/// What an operation does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Creates an object at the path.
    Make(ObjType),
    /// Puts a scalar at the path.
    Put(ScalarValue),
    /// Deletes the key at the path.
    Delete,
    /// Edits a sequence (text) at the path: inserts, deletions, marks. (Increments are
    /// refused, [`writes`].)
    Edit,
}

/// The deepest object any document's layout has, with room to spare (`doc::layout`: a record's
/// field is `records/<id>/fields/<key>`; a progress entry's, `records/<id>/progress/<id>/<key>`).
/// A change reaching deeper is not one of ours.
pub const MAX_DEPTH: usize = 16;

/// The longest map key any layout writes (ids, field names), with room to spare.
pub const MAX_KEY_BYTES: usize = 256;

/// The most path text one change may make this module hold (the sum over its operations of
/// their paths' bytes). A long note in one change is about 60 bytes of path per character;
/// without a bound, a small change nesting thousands of objects with long keys would make the
/// paths quadratic in its size before any rule could refuse it.
pub const MAX_PATH_BYTES: usize = 64 << 20;

/// The paths of every operation of `change`, which `doc` already holds. `None` if an object it
/// names is unknown, or the change does not fit any layout (deeper than [`MAX_DEPTH`], a key
/// longer than [`MAX_KEY_BYTES`], more than [`MAX_PATH_BYTES`] of paths): a malformed change.
pub fn writes(doc: &Automerge, change: &automerge::Change) -> Option<Vec<Write>> {
    let expanded = change.decode();
    type Located = (Vec<String>, Vec<ObjId>);
    let mut cache: HashMap<(u64, ActorId), Located> = HashMap::new();
    let mut out = Vec::with_capacity(expanded.operations.len());
    let mut held = 0usize;
    for op in &expanded.operations {
        let (mut path, objects) = match &op.obj {
            legacy::ObjectId::Root => (Vec::new(), Vec::new()),
            legacy::ObjectId::Id(id) => {
                let key = (id.counter(), id.actor().clone());
                if let Some(hit) = cache.get(&key) {
                    hit.clone()
                } else {
                    let located = object_path(doc, id.counter(), id.actor())?;
                    cache.insert(key, located.clone());
                    located
                }
            }
        };
        let seq = matches!(op.key, legacy::Key::Seq(_));
        if let legacy::Key::Map(k) = &op.key {
            if k.len() > MAX_KEY_BYTES || path.len() >= MAX_DEPTH {
                return None;
            }
            path.push(k.to_string());
        }
        held += path.iter().map(|k| k.len() + 24).sum::<usize>();
        if held > MAX_PATH_BYTES {
            return None;
        }
        let action = match &op.action {
            // No layout holds a counter, and automerge lets an increment naming a value that
            // is not one take its place (a delete no rule would see as one).
            legacy::OpType::Increment(_) => return None,
            _ if seq => Action::Edit,
            legacy::OpType::Make(t) => Action::Make(*t),
            legacy::OpType::Put(v) => Action::Put(v.clone()),
            legacy::OpType::Delete => Action::Delete,
            // Marks belong to text.
            legacy::OpType::MarkBegin(..) | legacy::OpType::MarkEnd(_) => return None,
        };
        out.push(Write {
            path,
            action,
            objects,
            replaces: !op.pred.is_empty(),
            pred: op
                .pred
                .iter()
                .map(|p| (p.counter(), p.actor().clone()))
                .collect(),
        });
    }
    Some(out)
}

/// The map keys leading to the object `counter@actor`, and the objects along them (the last
/// is the object itself); `None` if it is not reached by map keys alone.
fn object_path(
    doc: &Automerge,
    counter: u64,
    actor: &ActorId,
) -> Option<(Vec<String>, Vec<ObjId>)> {
    let exid = doc
        .import_obj(&format!("{counter}@{}", actor.to_hex_string()))
        .ok()?;
    let mut keys = Vec::new();
    let mut objs = vec![exid.clone()];
    for parent in doc.parents(&exid).ok()? {
        if keys.len() >= MAX_DEPTH {
            return None;
        }
        match parent.prop {
            Prop::Map(k) if k.len() > MAX_KEY_BYTES => return None,
            Prop::Map(k) => keys.push(k),
            // Objects inside lists do not occur in this layout.
            Prop::Seq(_) => return None,
        }
        objs.push(parent.obj);
    }
    keys.reverse();
    objs.reverse();
    // `objs` now starts with the root; drop it so objs[i] is the object at keys[..=i].
    objs.remove(0);
    Some((keys, objs))
}

/// The actor that created an object.
pub fn creator(obj: &ObjId) -> Option<&ActorId> {
    match obj {
        ObjId::Id(_, actor, _) => Some(actor),
        ObjId::Root => None,
    }
}
