//! Purging members' phone numbers from the school document's history.
//!
//! A school made by an older build wrote every member's phone number into the school document
//! (`members/<id>/phone`), which every member's device holds. `shouwang school split` moves the
//! numbers into contact documents and deletes them from the current state, but automerge keeps
//! every value in the history, so every copy of the school document still holds them. The
//! school document is also the trust root: every change to any other document *declares* the
//! school heads it was written against, and is judged against the school state at those heads
//! ([`crate::trust`]). Re-basing it as a child's file is re-based (one base change, new heads)
//! would leave every declared head, of every change in every file, pointing at nothing.
//!
//! # The redaction
//!
//! Instead the history is **rewritten change by change**, by a function every replica computes
//! the same way ([`redact`]):
//!
//! - each change keeps its actor, sequence number, first op counter, time, message and
//!   operations; only the value of a `phone` key in a member's map becomes null;
//! - its dependencies are replaced by the rewritten hashes of the changes they named;
//! - a change with no phone and no rewritten dependency is kept byte for byte (the genesis).
//!
//! Every operation keeps its id (counter and actor), so automerge resolves every concurrent
//! write the same way as before: the school state at any rewritten heads is the state at the
//! original heads, less the phone numbers. No trust decision reads a phone number, so every
//! verdict stays the same. The replica keeps the pairs (original hash, rewritten hash) in the
//! `school_history` table and the redacting administrator writes them into the school document
//! (`school.history_map`, 64 bytes a pair), so that a device which never held the originals (one
//! enrolled afterwards) still resolves what older changes declare ([`Batch::resolve_school_heads`]).
//!
//! # How replicas switch
//!
//! - The administrator's device redacts its copy when the school is split
//!   ([`Batch::purge_school_history`]).
//! - Any other replica switches when a peer's school changes do not fit its copy (an automerge
//!   error, as the rewritten changes reuse the (actor, seq) of the originals, or missing
//!   dependencies) but fit the redaction of its copy exactly, and the merged result is a split
//!   school ([`Batch::school_mismatch`]). The switch only ever drops phone numbers the split has
//!   already removed from the current state; a peer cannot make it lose anything else.
//! - A redacted replica that receives original changes answers them as *stale*, like the old
//!   generation of a re-based file: the session sends the peer its whole school document, and the
//!   peer switches.
//!
//! Switching replaces the stored document whole and scrubs the file (as a re-based file is),
//! so no store, WAL or free page keeps a number. What is not covered: a change to the school
//! document that no replica that redacted ever held in its original form (an administrator's
//! offline change made concurrently with the split) is redacted by whichever replica switches
//! with it, and only that replica knows its pair; a change elsewhere that declares it waits
//! until that replica's copy is the one it meets. Bundles written before the split still carry
//! the originals.

use std::collections::HashMap;

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{Automerge, AutomergeError, Change, ChangeHash, ObjType, ROOT, ReadDoc};
use rusqlite::{OptionalExtension, params};

use super::Batch;
use super::admit::Admission;
use crate::doc::DocId;
use crate::doc::layout::{MEMBERS, SCHOOL_PROFILE};
use crate::error::Result;

/// Where the redacting administrator records the pairs in the school document (profile map).
pub const HISTORY_MAP: &str = "history_map";

/// Why original school changes are not taken by a replica whose copy was redacted.
pub const OLD_SCHOOL_HISTORY: &str =
    "学校信息的修改历史已清除电话号码，对方的旧版本需先更新（会自动完成）";

/// A school document's history with the members' phone numbers taken out.
#[derive(Debug)]
pub struct Redaction {
    /// The rewritten document.
    pub doc: Automerge,
    /// (original hash, rewritten hash) for every change that was rewritten.
    pub pairs: Vec<(ChangeHash, ChangeHash)>,
}

/// Two saved copies of a school document as one, saved again: every change of either. When
/// one is a split school's rewritten history and the other is not (yet), the other is
/// redacted first ([`redact`]), as a replica switches, so the result follows the split and
/// keeps no phone number. (The hub's school ledger beside its backups takes the hub's copy
/// this way at every backup.)
pub fn merge_saved(held: &[u8], newer: &[u8]) -> Result<Vec<u8>> {
    let fits = |mut doc: Automerge, other: &[u8]| -> Option<Vec<u8>> {
        doc.load_incremental(other).ok()?;
        doc.get_missing_deps(&[]).is_empty().then(|| doc.save())
    };
    if let Some(saved) = fits(Automerge::load(held)?, newer) {
        return Ok(saved);
    }
    for (old, new) in [(held, newer), (newer, held)] {
        if let Some(r) = redact(&Automerge::load(old)?)?
            && let Some(saved) = fits(r.doc, new)
        {
            return Ok(saved);
        }
    }
    Err(crate::Error::Corrupt("两份学校信息的修改历史对不上".into()))
}

/// Rewrites `doc`'s history without the members' phone numbers (see the module docs), or
/// `None` when no change holds one and none needs rewriting.
pub fn redact(doc: &Automerge) -> Result<Option<Redaction>> {
    let mut map: HashMap<ChangeHash, ChangeHash> = HashMap::new();
    let mut members: Option<OpId> = None;
    let mut member_maps: std::collections::HashSet<OpId> = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut pairs = Vec::new();
    for change in doc.get_changes(&[]) {
        let mut expanded = change.decode();
        let mut touched = false;
        let start = expanded.start_op.get();
        for (i, op) in expanded.operations.iter_mut().enumerate() {
            let id = OpId(start + i as u64, expanded.actor_id.clone());
            let key_is = |k: &str| matches!(&op.key, Key::Map(s) if s.as_str() == k);
            match (&op.obj, &op.action) {
                (ObjectId::Root, OpType::Make(ObjType::Map)) if key_is(MEMBERS) => {
                    members = Some(id);
                }
                (ObjectId::Id(parent), OpType::Make(ObjType::Map))
                    if Some(parent) == members.as_ref() =>
                {
                    member_maps.insert(id);
                }
                (ObjectId::Id(parent), OpType::Put(v))
                    if member_maps.contains(parent) && key_is("phone") && !v.is_null() =>
                {
                    op.action = OpType::Put(automerge::ScalarValue::Null);
                    touched = true;
                }
                _ => {}
            }
        }
        for dep in expanded.deps.iter_mut() {
            if let Some(new) = map.get(dep) {
                *dep = *new;
                touched = true;
            }
        }
        if touched {
            expanded.hash = None;
            let rewritten = Change::from(expanded);
            map.insert(change.hash(), rewritten.hash());
            pairs.push((change.hash(), rewritten.hash()));
            out.push(rewritten);
        } else {
            out.push(change.clone());
        }
    }
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut fresh = Automerge::new();
    fresh.apply_changes(out)?;
    Ok(Some(Redaction { doc: fresh, pairs }))
}

/// The pairs as the school document records them: 32 bytes of the original hash, then 32 of
/// the rewritten one, for each.
pub fn encode_pairs(pairs: &[(ChangeHash, ChangeHash)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 64);
    for (old, new) in pairs {
        out.extend_from_slice(old.as_ref());
        out.extend_from_slice(new.as_ref());
    }
    out
}

/// The rewritten hash the school document records for `old`, if any.
fn recorded_pair(school: &Automerge, old: &ChangeHash) -> Option<ChangeHash> {
    let profile = crate::doc::access::map_at(school, &ROOT, SCHOOL_PROFILE)?;
    let Ok(Some((automerge::Value::Scalar(v), _))) = school.get(&profile, HISTORY_MAP) else {
        return None;
    };
    let automerge::ScalarValue::Bytes(bytes) = v.as_ref() else {
        return None;
    };
    bytes
        .chunks_exact(64)
        .find(|pair| pair[..32] == *old.as_ref())
        .and_then(|pair| ChangeHash::try_from(&pair[32..]).ok())
}

/// Whether the school document records a redaction (see the module docs).
fn records_redaction(school: &Automerge) -> bool {
    crate::doc::access::map_at(school, &ROOT, SCHOOL_PROFILE)
        .is_some_and(|p| matches!(school.get(&p, HISTORY_MAP), Ok(Some(_))))
}

/// Runs automerge on a peer's bytes for a trial, a panic being a failure like an error.
fn fits(
    doc: &mut Automerge,
    apply: &dyn Fn(&mut Automerge) -> std::result::Result<(), AutomergeError>,
) -> bool {
    matches!(crate::panics::catch_quietly(|| apply(doc)), Ok(Ok(())))
        && doc.get_missing_deps(&[]).is_empty()
}

/// The school document `current` will be once a peer's `bytes` are merged into it, without
/// merging them: for a redacted peer's changes, the redaction of `current` with them (what
/// [`Batch::school_mismatch`] switches to); for a redacted `current` and the peer's original
/// changes, `current` unchanged (they are not taken).
pub fn preview(current: Option<&Automerge>, bytes: &[u8]) -> Result<Automerge> {
    let id = DocId::School;
    let mut merged = current.cloned().unwrap_or_default();
    let outcome = super::from_peer(&id, || merged.load_incremental(bytes));
    let Some(current) = current else {
        outcome?;
        return Ok(merged);
    };
    if outcome.is_ok() && merged.get_missing_deps(&[]).is_empty() {
        return Ok(merged);
    }
    match redact(current)? {
        Some(redaction) => {
            let mut trial = redaction.doc;
            if fits(&mut trial, &|d| d.load_incremental(bytes).map(|_| ())) {
                return Ok(trial);
            }
        }
        None if records_redaction(current) => return Ok(current.clone()),
        None => {}
    }
    outcome?;
    Ok(merged)
}

impl Batch<'_> {
    /// Rewrites this replica's school document without the members' phone numbers and records
    /// the pairs in it (see the module docs). Administrators only (the caller checks); for a
    /// school already split. Returns how many changes were rewritten (0: nothing to purge).
    pub fn purge_school_history(&mut self) -> Result<usize> {
        let Some(doc) = self.doc(&DocId::School)? else {
            return Ok(0);
        };
        let Some(redaction) = redact(doc)? else {
            return Ok(0);
        };
        let count = redaction.pairs.len();
        self.keep_pairs(&redaction.pairs)?;
        self.replace(&DocId::School, redaction.doc);
        let bytes = encode_pairs(&redaction.pairs);
        self.change(
            &DocId::School,
            false,
            "清除学校信息历史中的电话号码",
            |tx| {
                use automerge::transaction::Transactable;
                let profile = crate::doc::access::map_at(tx, &ROOT, SCHOOL_PROFILE)
                    .ok_or_else(|| crate::error::Error::Corrupt("学校信息".into()))?;
                tx.put(&profile, HISTORY_MAP, automerge::ScalarValue::Bytes(bytes))?;
                Ok(())
            },
        )?;
        Ok(count)
    }

    fn keep_pairs(&self, pairs: &[(ChangeHash, ChangeHash)]) -> Result<()> {
        let mut insert = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO school_history (old, new) VALUES (?1, ?2)")?;
        for (old, new) in pairs {
            insert.execute(params![old.as_ref(), new.as_ref()])?;
        }
        Ok(())
    }

    /// The school heads a change declares, as this replica's school document holds them: a
    /// head of the original history (before the phone numbers were purged) is replaced by its
    /// rewritten hash, from this replica's own pairs or the ones the document records.
    pub(super) fn resolve_school_heads(&self, heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
        let Some(school) = self.docs.get(&DocId::School) else {
            return heads;
        };
        if heads.iter().all(|h| crate::doc::has_change(school, h)) {
            return heads;
        }
        heads
            .into_iter()
            .map(|h| {
                if crate::doc::has_change(school, &h) {
                    return h;
                }
                let kept: Option<Vec<u8>> = self
                    .conn
                    .prepare_cached("SELECT new FROM school_history WHERE old = ?1")
                    .and_then(|mut s| s.query_row([h.as_ref()], |r| r.get(0)).optional())
                    .ok()
                    .flatten();
                kept.and_then(|b| ChangeHash::try_from(b.as_slice()).ok())
                    .or_else(|| recorded_pair(school, &h))
                    .unwrap_or(h)
            })
            .collect()
    }

    /// A peer's school changes did not fit this replica's copy (`apply` failed on it, or left
    /// dependencies missing; `before` are the heads before the attempt). If they fit the
    /// redaction of this copy and the result is a split school, this replica switches to the
    /// redacted history and takes them (`replaced` is 1); if this copy is the redacted one and
    /// the peer's the original, they are answered as stale. `None`: neither, the caller goes on
    /// as before.
    pub(super) fn school_mismatch(
        &mut self,
        before: &[ChangeHash],
        apply: &dyn Fn(&mut Automerge) -> std::result::Result<(), AutomergeError>,
    ) -> Result<Option<Admission>> {
        let Some(current) = self.docs.get(&DocId::School) else {
            return Ok(None);
        };
        if before.is_empty() {
            return Ok(None);
        }
        let base = current.fork_at(before)?;
        let Some(redaction) = redact(&base)? else {
            let redacted = records_redaction(&base)
                || self
                    .conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM school_history)")?
                    .query_row([], |r| r.get::<_, bool>(0))?;
            if !redacted {
                return Ok(None);
            }
            // This copy is the redacted one: the peer's original changes are not taken, and
            // nothing they brought stays in memory.
            let mut base = base;
            base.set_actor(self.actor.clone());
            self.docs.insert(DocId::School, base);
            return Ok(Some(Admission {
                refused: 1,
                stale: 1,
                reason: Some(OLD_SCHOOL_HISTORY.into()),
                ..Admission::default()
            }));
        };
        let mut trial = redaction.doc;
        let start = trial.get_heads();
        if !fits(&mut trial, apply) {
            return Ok(None);
        }
        let held = self.docs.insert(DocId::School, trial);
        let mut admission = self.admit(&DocId::School, &start)?;
        let split = self
            .docs
            .get(&DocId::School)
            .is_some_and(|d| crate::school::read(d).split_for_roles);
        if !split {
            if let Some(held) = held {
                self.docs.insert(DocId::School, held);
            }
            return Ok(None);
        }
        let Some(switched) = self.docs.remove(&DocId::School) else {
            return Ok(None);
        };
        self.keep_pairs(&redaction.pairs)?;
        self.replace(&DocId::School, switched);
        admission.replaced = 1;
        Ok(Some(admission))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::roles::Role;
    use crate::school;

    const PHONE: &str = "13805640077";

    /// A school in the layout of an older build (phones in the school document), with two
    /// members who have phone numbers, one of whom changed it later.
    fn old_school(dir: &std::path::Path) -> crate::Archive {
        let mut a = crate::store::tests::school(dir);
        a.store()
            .write(|b| {
                b.change(&DocId::School, false, "旧版学校", |tx| {
                    use automerge::transaction::Transactable;
                    let p = crate::doc::access::map_at(tx, &ROOT, SCHOOL_PROFILE).unwrap();
                    tx.put(&p, "split_for_roles", false)?;
                    Ok(())
                })
            })
            .unwrap();
        a.add_member("王瑞侠", &[Role::HeadTeacher], None, Some(PHONE))
            .unwrap();
        a.add_member("刘桂兰", &[Role::LoveMother], None, Some("13905640001"))
            .unwrap();
        a.add_class("三年级(1)班", Some("王瑞侠")).unwrap();
        a
    }

    fn without_phones(mut view: school::SchoolView) -> school::SchoolView {
        for m in &mut view.members {
            m.phone = None;
        }
        view
    }

    fn holds(doc: &Automerge, text: &str) -> bool {
        doc.get_changes(&[])
            .iter()
            .any(|c| format!("{:?}", c.decode()).contains(text))
    }

    #[test]
    fn the_school_at_every_rewritten_head_is_the_original_less_the_phones() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = old_school(dir.path());
        let doc = a.store().doc(&DocId::School).unwrap().unwrap().clone();
        assert!(holds(&doc, PHONE));
        let r = redact(&doc).unwrap().unwrap();
        assert!(!holds(&r.doc, PHONE));
        assert!(!holds(&r.doc, "13905640001"));
        let map: HashMap<ChangeHash, ChangeHash> = r.pairs.iter().copied().collect();
        for c in doc.get_changes(&[]) {
            let new = map.get(&c.hash()).copied().unwrap_or(c.hash());
            let before = school::read(&doc.fork_at(&[c.hash()]).unwrap());
            let after = school::read(&r.doc.fork_at(&[new]).unwrap());
            assert_eq!(without_phones(before), after, "at {}", c.hash());
        }
        // The genesis is kept as it is; the same input gives the same hashes; nothing is left
        // to rewrite.
        let genesis = doc.get_changes(&[])[0].hash();
        assert!(r.doc.get_change_by_hash(&genesis).is_some());
        assert_eq!(redact(&doc).unwrap().unwrap().pairs, r.pairs);
        assert!(redact(&r.doc).unwrap().is_none());
    }

    #[test]
    fn a_peer_cannot_make_an_unsplit_school_drop_its_phone_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = old_school(dir.path());
        let doc = a.store().doc(&DocId::School).unwrap().unwrap().clone();
        // A peer sends the rewritten history of a school that is not split.
        let rewritten = redact(&doc).unwrap().unwrap().doc.save();
        let outcome = a
            .store()
            .write(|b| b.merge_bytes(&DocId::School, &rewritten));
        assert!(outcome.is_err(), "{outcome:?}");
        let doc = a.store().doc(&DocId::School).unwrap().unwrap().clone();
        assert!(holds(&doc, PHONE));
        assert_eq!(
            a.school()
                .unwrap()
                .members
                .iter()
                .find(|m| m.name == "王瑞侠")
                .and_then(|m| m.phone.clone())
                .as_deref(),
            Some(PHONE)
        );
    }

    #[test]
    fn a_redacted_copy_answers_the_original_history_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = old_school(dir.path());
        let original = a.store().doc(&DocId::School).unwrap().unwrap().save();
        a.split_for_roles().unwrap();
        let admission = a
            .store()
            .write(|b| b.merge_bytes(&DocId::School, &original))
            .unwrap();
        assert!(admission.only_stale(), "{admission:?}");
        let doc = a.store().doc(&DocId::School).unwrap().unwrap().clone();
        assert!(!holds(&doc, PHONE));
    }
}
