//! Documents left out of an exchange (module docs, point 6): changes refused or deferred, a
//! document outside the scope, one replaced by a new generation; and taking them up again.

use automerge::sync::State;

use super::Session;
use crate::doc::DocId;
use crate::error::Result;
use crate::store::{Sender, Store};
use crate::sync::wire::{Message, Why};

impl Session {
    /// Leaves `doc` out of the rest of the exchange (and, if `persist`, of later exchanges
    /// until its heads move here).
    pub(super) fn hold(&mut self, store: &mut Store, doc: &DocId, persist: bool) -> Result<()> {
        self.held.insert(doc.clone());
        self.docs.remove(doc);
        self.settled.remove(doc);
        // What was sent of it may not have been taken.
        self.peer_has.remove(doc);
        if persist {
            store.set_held(&self.peer, doc, true)?;
        }
        Ok(())
    }

    /// Takes `doc` back into the exchange (it changed since it was held).
    pub(super) fn release(&mut self, store: &mut Store, doc: &DocId) -> Result<()> {
        if self.held.remove(doc) {
            store.set_held(&self.peer, doc, false)?;
        }
        Ok(())
    }

    /// Releases every held document whose heads moved since it was held.
    pub(super) fn release_moved(&mut self, store: &mut Store) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let saved = store.held(&self.peer)?;
        let moved: Vec<DocId> = self
            .held
            .iter()
            .filter(|d| {
                saved
                    .get(*d)
                    .is_some_and(|h| store.heads(d).is_ok_and(|now| now != *h))
            })
            .cloned()
            .collect();
        for d in moved {
            self.release(store, &d)?;
        }
        Ok(())
    }

    /// The peer sent changes of an older generation of `doc` (re-based here, see
    /// `archive::rebase`): automerge's sync would go on asking it for them, so send it the
    /// whole current generation instead (its base change makes the peer replace its copy)
    /// and start this document's sync over.
    pub(super) fn send_generation(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let Some(whole) = store.doc(doc)?.map(|d| crate::doc::saved(d, true)) else {
            return Ok(());
        };
        out.push(Message::Changes(vec![(doc.clone(), whole)]));
        // A whole file sent is a delivery like any other: the hub checks the member may still
        // see it before it goes, and logs it.
        self.delivering.insert(doc.clone());
        self.peer_has.remove(doc);
        self.docs.insert(doc.clone(), State::new());
        self.settled.insert(doc.clone());
        Ok(())
    }

    /// This side's copy of `doc` was just replaced by a newer generation: what the sync state
    /// knew of the old one no longer holds, so the document's sync starts over.
    pub(super) fn restart_generation(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        self.peer_has.remove(doc);
        self.docs.insert(doc.clone(), State::new());
        self.restart_doc(store, doc, out)
    }

    /// The hub refused `doc` before it could take this side's work on it: the document went
    /// through automerge's sync (nothing of it was shared with the hub yet, so no delta), and
    /// a hub takes a member's work on a document no longer hers only from a `Changes` frame.
    /// If the copy here holds changes this device made, it is handed in whole, once per
    /// session, and the hub's answer to that is the one kept. `false`: nothing to hand in
    /// (sent as a delta already, handed in already, or none of this device's work in it).
    pub(super) fn hand_in(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<bool> {
        if self.sent_deltas.contains(doc) {
            return Ok(false);
        }
        self.hand_in_whole(store, doc, out)
    }

    /// [`Session::hand_in`], also after a delta of it: the hub could not read the delta (it
    /// lacks what the delta rests on) and said so.
    fn hand_in_whole(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<bool> {
        if self.handed_in.contains(doc) {
            return Ok(false);
        }
        let device = crate::ids::device_hex(store.actor());
        let Some(am) = store.doc(doc)? else {
            return Ok(false);
        };
        if !crate::doc::written_by(am, &device) {
            return Ok(false);
        }
        let whole = crate::doc::saved(am, true);
        self.first_sent
            .entry(doc.clone())
            .or_insert_with(|| am.get_heads());
        self.handed_in.insert(doc.clone());
        // Its automerge sync is over: the hub takes nothing of it that way.
        self.docs.remove(doc);
        out.push(Message::Changes(vec![(doc.clone(), whole)]));
        Ok(true)
    }

    /// The hub deferred this side's work on `doc`: a refusal out of scope it gave before,
    /// recorded or not, no longer stands, and the hub is offered it again at the next sync.
    /// (What other peers held back of it stays as it was.)
    fn overtake_mark(&mut self, store: &mut Store, doc: &DocId) -> Result<()> {
        self.pending_marks.remove(doc);
        store.unmark_out_of_scope(doc)?;
        store.set_held(&self.peer, doc, false)
    }

    /// Once the hub has answered every frame this side sent (its `Idle` says it saw them
    /// all): its refusals out of scope are recorded, each with what it is known to have
    /// taken ([`Store::mark_out_of_scope`]). Before then a refusal may answer an earlier
    /// frame while a delta is still on its way, to be deferred, or lost with the connection:
    /// recorded at once, the purge after a failed sync would drop work the hub never took.
    pub(super) fn settle_marks(&mut self, store: &mut Store) -> Result<()> {
        for (doc, covered) in std::mem::take(&mut self.pending_marks) {
            if !self.hand_in_deferred.contains(&doc) {
                store.mark_out_of_scope(&doc, &covered)?;
            }
        }
        Ok(())
    }

    /// Tells the peer it may not send `doc` here at all, and leaves it out.
    pub(super) fn refuse_out_of_scope(
        &mut self,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        self.leave_out_unread(doc, Why::OutOfScope, 0, "对方无权在这里同步这份档案", out)
    }

    /// A hand-in of a document this side never held (see `Session::on_changes`): not read,
    /// and answered `Deferred`, so the device keeps its copy and its work (an `OutOfScope`
    /// would tell it the school holds that work). Counted with the documents outside the
    /// scope: a modified app inventing ids ends its session as it does with those.
    pub(super) fn refuse_never_held(&mut self, doc: &DocId, out: &mut Vec<Message>) -> Result<()> {
        self.leave_out_unread(doc, Why::Deferred, 1, NEVER_HELD, out)
    }

    /// Answers `doc` unread (`why`, `count`, `reason`) and leaves it out of the session,
    /// counted against [`super::MAX_OUT_OF_SCOPE`]: past it, the session ends.
    fn leave_out_unread(
        &mut self,
        doc: &DocId,
        why: Why,
        count: u32,
        reason: &str,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        self.out_of_scope += 1;
        if self.out_of_scope > super::MAX_OUT_OF_SCOPE {
            return Err(crate::error::Error::NotPermitted(
                "对方发来太多无权同步的档案，同步已结束".into(),
            ));
        }
        out.push(Message::Refused {
            doc: doc.clone(),
            why,
            count,
            reason: reason.into(),
        });
        self.held.insert(doc.clone());
        self.docs.remove(doc);
        Ok(())
    }

    /// Tells the peer that changes of `doc` were not accepted, and leaves it out.
    pub(super) fn refuse(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        admission: &crate::store::Admission,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        self.refused_here += admission.refused as u64;
        out.push(Message::Refused {
            doc: doc.clone(),
            why: if admission.refused == 0 {
                Why::Deferred
            } else {
                Why::Refused
            },
            count: u32::try_from(admission.refused + admission.deferred).unwrap_or(u32::MAX),
            reason: admission.reason.clone().unwrap_or_default(),
        });
        if admission.refused == 0 {
            self.deferred_here.insert(doc.clone());
        }
        self.hold(store, doc, admission.refused > 0)
    }

    /// The documents the ones this side deferred rest on, with their heads here: the school
    /// document, and a deferred private or staff part's care file (its changes declare the
    /// care file's heads; a re-based part waits for the care file's new generation). Empty
    /// when nothing is deferred.
    pub(super) fn deferred_rest_on(&self, store: &mut Store) -> Result<Vec<(DocId, String)>> {
        if self.deferred_here.is_empty() {
            return Ok(Vec::new());
        }
        let mut on = std::collections::BTreeSet::from([DocId::School]);
        for doc in &self.deferred_here {
            if let DocId::Private(c) | DocId::Staff(c) = doc {
                on.insert(DocId::Child(c.clone()));
            }
        }
        on.into_iter()
            .map(|d| Ok((d.clone(), store.heads(&d)?)))
            .collect()
    }

    /// A document the deferred ones rest on ([`Session::deferred_rest_on`]) gained changes in
    /// this event: documents this side deferred (their changes declare a school state or care
    /// file that was not here) are taken up again at once, from a fresh automerge state, so
    /// the peer sends them again. Without this they waited for the next session, and a session
    /// could end caught up with them still apart.
    pub(super) fn retry_deferred(
        &mut self,
        store: &mut Store,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        for doc in std::mem::take(&mut self.deferred_here) {
            // A hand-in (outside the peer's scope) is not started over from here: this side
            // sends nothing of it, and the peer's answer to a restart would be refused out of
            // scope. The device offers it again at its next sync.
            if !self.allows(&doc) {
                continue;
            }
            if !self.held.remove(&doc) {
                continue;
            }
            self.docs.insert(doc.clone(), State::new());
            self.restart_doc(store, &doc, out)?;
        }
        Ok(())
    }

    /// The peer did not accept changes of `doc`: it is left out of the rest of the exchange.
    pub(super) fn on_refused(
        &mut self,
        store: &mut Store,
        doc: DocId,
        why: Why,
        count: u32,
        reason: String,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        // This side never offers a document outside the scope: a refusal of one is noise
        // (from a modified app, it would add a row here for every document it invents).
        if !self.allows(&doc) {
            return Ok(());
        }
        match why {
            Why::Refused => store.record_refusal(&self.peer, &doc, count, &reason)?,
            // Kept here, but no sync will settle it: `status` says why, and to whom to turn.
            // Told by its reason, which this build's hub sends: a `Why` of its own would make
            // older phones refuse the frame and fail every sync.
            Why::Deferred if reason == NEVER_HELD => {
                store.record_refusal(&self.peer, &doc, count, &reason)?;
            }
            // Only the relay this side trusts, its hub, says what it may keep: not an
            // administrator's phone met directly (a modified app's answer, or one behind on a
            // pairing, would make this side drop work that exists nowhere else).
            Why::OutOfScope if matches!(self.sender, Sender::Relay) => {
                if self.hand_in(store, &doc, out)? {
                    self.caught_up = false;
                    self.sent_idle = None;
                    return Ok(());
                }
                // Once the hub deferred this side's work on it in this session, a later
                // refusal is no word that the hub holds that work: kept for the next sync.
                // Otherwise the hub holds what this side first sent of it (nothing, if it
                // sent none: then no work of this device is in it, or it was handed in),
                // once the hub has answered every frame sent (`Session::settle_marks`).
                if !self.hand_in_deferred.contains(&doc) {
                    let covered = self.first_sent.get(&doc).cloned().unwrap_or_default();
                    self.pending_marks.insert(doc.clone(), covered);
                }
            }
            // The hub read nothing of a delta handed in (it lacks what the delta rests on):
            // the whole file goes instead, and the hub takes it.
            Why::Deferred
                if count == 0
                    && matches!(self.sender, Sender::Relay)
                    && self.sent_deltas.contains(&doc)
                    && !self.handed_in.contains(&doc) =>
            {
                self.overtake_mark(store, &doc)?;
                if self.hand_in_whole(store, &doc, out)? {
                    self.caught_up = false;
                    self.sent_idle = None;
                    return Ok(());
                }
                self.hand_in_deferred.insert(doc.clone());
            }
            Why::Deferred if self.handed_in.contains(&doc) || self.sent_deltas.contains(&doc) => {
                self.hand_in_deferred.insert(doc.clone());
                // A refusal out of scope that came first answered an earlier frame (the
                // `Hello` listing it): the hub does not hold this work, so its mark goes.
                self.overtake_mark(store, &doc)?;
            }
            _ => {}
        }
        if why == Why::Deferred {
            self.deferred_there.insert(doc.clone());
        }
        // Left out with this peer until its heads move: what it refused, and what a peer
        // other than the hub says is outside its scope. Not what the hub deferred (offered
        // again at the next sync whatever it says after), nor what the hub says this side
        // may no longer hold (dropped after the sync, or offered again: the purge decides).
        let persist = why == Why::Refused
            || (why == Why::OutOfScope && !matches!(self.sender, Sender::Relay));
        self.hold(store, &doc, persist)?;
        self.caught_up = false;
        self.maybe_idle(store, out)?;
        Ok(())
    }
}

/// Whether any of `rests_on` ([`Session::deferred_rest_on`]) has other heads now.
pub(super) fn moved_since(store: &mut Store, rests_on: &[(DocId, String)]) -> Result<bool> {
    for (doc, heads) in rests_on {
        if store.heads(doc)? != *heads {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Why a hand-in of a file the hub never held is not taken (the device keeps it).
const NEVER_HELD: &str =
    "学校服务器上没有这份档案，不能作为交回的记录接收；本机的记录都还在，请联系学校管理员";

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::ids::ChildId;
    use crate::sync::session::Scope;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("phone.db")).unwrap();
        (dir, store)
    }

    fn file() -> DocId {
        DocId::Child(ChildId::from("c1"))
    }

    /// The hub's answer `why` about [`file`] (a deferral counts one change, as the daily
    /// quota's does).
    fn hub_says(s: &mut Session, store: &mut Store, why: Why) {
        let count = u32::from(why == Why::Deferred);
        s.on_refused(store, file(), why, count, String::new(), &mut Vec::new())
            .unwrap();
    }

    fn marked(store: &Store) -> bool {
        store
            .out_of_scope()
            .unwrap()
            .iter()
            .any(|(d, _)| *d == file())
    }

    /// A device whose hand-in the hub deferred in this session does not drop the document on
    /// a later refusal out of scope in the same session: the hub does not hold that work.
    #[test]
    fn a_refusal_after_a_deferred_hand_in_leaves_the_document() {
        let (_dir, mut store) = store();
        let mut s = Session::new("hub", Scope::All);
        s.handed_in.insert(file());
        hub_says(&mut s, &mut store, Why::Deferred);
        hub_says(&mut s, &mut store, Why::OutOfScope);
        s.settle_marks(&mut store).unwrap();
        assert!(!marked(&store));
        // Nor is it left out of the next session with the hub (it would never be offered
        // again until she wrote on it once more).
        assert!(!store.held("hub").unwrap().contains_key(&file()));
        // Without a deferral, the hub's refusal after the hand-in is kept, once the hub has
        // answered every frame (not before: the connection may be lost first).
        let mut s = Session::new("hub", Scope::All);
        s.handed_in.insert(file());
        hub_says(&mut s, &mut store, Why::OutOfScope);
        assert!(
            !marked(&store),
            "recorded before the hub answered everything"
        );
        s.settle_marks(&mut store).unwrap();
        assert!(marked(&store));
    }

    /// The hub's `OutOfScope` may answer an earlier frame (the `Hello` listing the document)
    /// while this side's delta of it is still on its way; the hub then defers that delta.
    /// The mark the refusal left is undone: the hub does not hold that work.
    #[test]
    fn a_deferral_after_the_refusal_undoes_its_mark() {
        let (_dir, mut store) = store();
        // A colleague's phone held it back earlier: that is not the hub's to undo.
        store.set_held("colleague", &file(), true).unwrap();
        let mut s = Session::new("hub", Scope::All);
        s.sent_deltas.insert(file());
        hub_says(&mut s, &mut store, Why::OutOfScope);
        hub_says(&mut s, &mut store, Why::Deferred);
        s.settle_marks(&mut store).unwrap();
        assert!(!marked(&store));
        assert!(!store.held("hub").unwrap().contains_key(&file()));
        assert!(store.held("colleague").unwrap().contains_key(&file()));
    }

    /// A side taking hand-ins does not start a deferred one over when what it rests on moves:
    /// it sends nothing of a document outside the peer's scope, and the peer's answer would be
    /// refused out of scope.
    #[test]
    fn a_deferred_hand_in_is_not_started_over() {
        let (_dir, mut store) = store();
        let mut s = Session::new("phone", Scope::Only(BTreeSet::new())).taking_hand_ins();
        s.held.insert(file());
        s.deferred_here.insert(file());
        let mut out = Vec::new();
        s.retry_deferred(&mut store, &mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
        assert!(s.held.contains(&file()));
    }
}
