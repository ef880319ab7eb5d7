//! What a re-based generation was built from.
//!
//! When an administrator re-bases a document (`archive::rebase`), the new generation's base
//! change holds the current state of *her* copy. Another device may hold changes her copy did
//! not: its own work, typed offline on the older generation and not yet sent. To carry that
//! work into the new generation (`store::admit`, `crate::carry`) the device must know
//! which of its changes the base already holds, including a new value of a field both
//! generations hold, which no comparison of the two states can tell from the office's value.
//!
//! The base change says so in its message, as a part `k=` after the declaration
//! ([`crate::trust::auth::with_part`]): for every actor of the re-based copy, the number of
//! its changes that copy held.
//!
//! ```text
//! 重建档案（去掉修改历史）␞s=<hash>␞k=<actor hex>:<seq>,<actor hex>:<seq>
//! ```
//!
//! An actor's changes are numbered 1, 2, … and each depends on the one before, so "the first
//! `seq` changes of each actor" names a set of changes closed under their dependencies. A
//! receiving device's copy holds some of them; the ones it holds, [`heads_in`], are a state of
//! its copy, and whatever its copy changed since that state the base does not hold.
//!
//! The message is an administrator's, read only by devices that hold the document, and it only
//! decides which of a device's own changes that device writes again (each judged by the trust
//! rules as any other change): a malformed part names nothing, and the device carries only
//! what the base lacks whole, as before this part existed.

use std::collections::{BTreeMap, HashSet};

use automerge::{Automerge, ChangeHash};

use crate::trust::auth;

/// The message part's tag.
const TAG: &str = "k";

/// The most actors a part names (more is malformed: a child's file has a few writers per
/// generation).
const MAX_ACTORS: usize = 4096;

/// The changes of each actor a re-based copy held: actor (hex) → how many.
pub type Clock = BTreeMap<String, u64>;

/// `message` with the part naming what `doc` holds.
pub fn declare(message: &str, doc: &Automerge) -> String {
    let mut clock = Clock::new();
    for c in doc.get_changes(&[]) {
        let seq = clock.entry(c.actor_id().to_hex_string()).or_default();
        *seq = (*seq).max(c.seq());
    }
    let text: Vec<String> = clock.iter().map(|(a, s)| format!("{a}:{s}")).collect();
    auth::with_part(message, TAG, &text.join(","))
}

/// The clock a base change's message names, if it names one well-formed.
pub fn read(message: &str) -> Option<Clock> {
    let text = auth::part(message, TAG)?;
    let mut clock = Clock::new();
    for entry in text.split(',').filter(|e| !e.is_empty()) {
        let (actor, seq) = entry.split_once(':')?;
        if actor.is_empty() || !actor.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        clock.insert(actor.to_ascii_lowercase(), seq.parse().ok()?);
        if clock.len() > MAX_ACTORS {
            return None;
        }
    }
    Some(clock)
}

/// The heads, in `doc`, of the changes it holds that `clock` names: the state of `doc` the
/// re-based copy held too.
pub fn heads_in(doc: &Automerge, clock: &Clock) -> Vec<ChangeHash> {
    let held: Vec<_> = doc
        .get_changes(&[])
        .into_iter()
        .filter(|c| {
            clock
                .get(&c.actor_id().to_hex_string())
                .is_some_and(|&n| c.seq() <= n)
        })
        .collect();
    let depended: HashSet<ChangeHash> = held.iter().flat_map(|c| c.deps().to_vec()).collect();
    let mut heads: Vec<ChangeHash> = held
        .iter()
        .map(|c| c.hash())
        .filter(|h| !depended.contains(h))
        .collect();
    heads.sort();
    heads
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ROOT, ReadDoc};

    fn write(doc: &mut Automerge, key: &str, value: &str) {
        let mut tx = doc.transaction();
        tx.put(ROOT, key, value).unwrap();
        tx.commit();
    }

    #[test]
    fn the_heads_name_the_state_the_rebased_copy_held() {
        let mut office = Automerge::new().with_actor(ActorId::from(vec![1u8; 16]));
        write(&mut office, "name", "王小雨");
        let mut phone = office.fork().with_actor(ActorId::from(vec![2u8; 16]));
        write(&mut phone, "notes", "奶奶在家");
        office.merge(&mut phone.clone()).unwrap();
        // The office re-bases now; the phone goes on writing.
        let message = declare("重建档案", &office);
        let before = phone.get_heads();
        write(&mut phone, "notes", "奶奶在家，已约好下次家访");
        write(&mut office, "name", "王晓雨"); // the phone never holds this one

        let clock = read(&message).unwrap();
        assert_eq!(clock.len(), 2, "{clock:?}");
        assert_eq!(heads_in(&phone, &clock), before);
        let then = phone.fork_at(&heads_in(&phone, &clock)).unwrap();
        assert_eq!(
            then.get(ROOT, "notes").unwrap().unwrap().0.to_string(),
            "\"奶奶在家\""
        );
    }

    #[test]
    fn a_malformed_part_names_nothing() {
        for m in [
            "重建档案",
            "重建档案\u{1e}k=zz:1",
            "重建档案\u{1e}k=0101:x",
            "重建档案\u{1e}k=0101",
            "重建档案\u{1e}k=:1",
        ] {
            assert_eq!(read(m), None, "{m}");
        }
        assert_eq!(read("x\u{1e}k=").unwrap().len(), 0);
    }
}
