//! Which documents hold a conflict (`p_conflicted`), so that a list of the open conflicts of a
//! whole school reads those documents only, not all of them (the office console's 冲突 page
//! loaded the three documents of each of 2,000 children: half a second on its first visit).
//!
//! A row names a child's document (its file, staff part or private part) for which
//! [`crate::doc::conflicts::list`] is not empty. Like every projection it is written in the
//! transaction that brings the changes, and can be rebuilt from the documents:
//!
//! 1. Changes that only continue the document's history in a line from the heads it had (each
//!    depends on exactly the heads before it: what this device writes) cannot make a conflict,
//!    since each value they write supersedes every value the writer had seen. They can resolve
//!    one, so a document with a row is checked again.
//! 2. Anything else (changes merged from a peer or a file, a new or replaced document, a
//!    rebuild) is checked: one pass over its maps, reading again only the keys automerge says
//!    hold more than one value.

use automerge::{Automerge, Change, ChangeHash};
use rusqlite::{OptionalExtension, Transaction};

use crate::doc::DocId;
use crate::doc::conflicts;
use crate::error::Result;

/// Whether conflicts in `id` are listed for people to resolve (the child's documents).
fn tracked(id: &DocId) -> bool {
    matches!(id, DocId::Child(_) | DocId::Staff(_) | DocId::Private(_))
}

/// Brings `id`'s row up to date after its heads moved from `before` to `doc`'s by the changes
/// `new` (in causal order: what `doc.get_changes(before)` returns).
pub fn update(
    tx: &Transaction<'_>,
    id: &DocId,
    doc: &Automerge,
    before: &[ChangeHash],
    new: &[Change],
) -> Result<()> {
    if !tracked(id) {
        return Ok(());
    }
    let key = id.key();
    let flagged = tx
        .prepare_cached("SELECT 1 FROM p_conflicted WHERE doc_id = ?1")?
        .query_row([&key], |_| Ok(()))
        .optional()?
        .is_some();
    if !flagged && extends_in_a_line(before, new) {
        return Ok(());
    }
    let conflicted = !conflicts::list(doc).is_empty();
    if conflicted && !flagged {
        tx.prepare_cached("INSERT INTO p_conflicted (doc_id) VALUES (?1)")?
            .execute([&key])?;
    } else if flagged && !conflicted {
        tx.prepare_cached("DELETE FROM p_conflicted WHERE doc_id = ?1")?
            .execute([&key])?;
    }
    Ok(())
}

/// Whether the changes after `before` form one line from exactly those heads (point 1).
fn extends_in_a_line(before: &[ChangeHash], new: &[Change]) -> bool {
    if before.is_empty() {
        return false;
    }
    let mut tip = before.to_vec();
    tip.sort_unstable();
    for change in new {
        let mut deps = change.deps().to_vec();
        deps.sort_unstable();
        if deps != tip {
            return false;
        }
        tip = vec![change.hash()];
    }
    true
}

/// The documents that hold a conflict.
pub fn list(conn: &rusqlite::Connection) -> Result<Vec<DocId>> {
    let mut stmt = conn.prepare_cached("SELECT doc_id FROM p_conflicted ORDER BY doc_id")?;
    let keys = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(keys.iter().filter_map(|k| DocId::parse(k)).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use automerge::transaction::Transactable;
    use automerge::{ActorId, ROOT};

    use super::*;

    fn doc(actor: u8) -> Automerge {
        let mut d = Automerge::new();
        d.set_actor(ActorId::from(vec![actor; 16]));
        d
    }

    #[test]
    fn a_line_of_own_changes_extends_and_a_merge_does_not() {
        let mut a = doc(1);
        a.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "phone", "13800001111")?;
            Ok(())
        })
        .unwrap();
        let before = a.get_heads();
        let mut b = a.fork().with_actor(ActorId::from(vec![2; 16]));
        for v in ["13900002222", "13700003333"] {
            a.transact::<_, _, automerge::AutomergeError>(|tx| {
                tx.put(ROOT, "phone", v)?;
                Ok(())
            })
            .unwrap();
        }
        assert!(extends_in_a_line(&before, &a.get_changes(&before)));
        assert!(
            !extends_in_a_line(&[], &a.get_changes(&[])),
            "a new document is checked"
        );
        b.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(ROOT, "phone", "13600004444")?;
            Ok(())
        })
        .unwrap();
        let line = a.get_heads();
        a.merge(&mut b).unwrap();
        assert!(
            !extends_in_a_line(&line, &a.get_changes(&line)),
            "a merge is checked"
        );
        assert_eq!(conflicts::list(&a).len(), 1);
    }
}
