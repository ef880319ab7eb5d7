//! The delta path (module docs, points 2 and 5): a document whose shared heads this side
//! knows goes as one `Changes` frame of just what the peer lacks; the peer's deltas are judged
//! and merged in one store write, which also records what they show the two sides share.

use std::collections::{BTreeSet, HashMap, HashSet};

use automerge::sync::State;
use automerge::{Automerge, ReadDoc};

use super::Session;
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::store::{Store, stored_heads};
use crate::sync::wire::{Message, Why};

/// The hub's answer to a hand-in resting on changes it lacks (`Refused { Deferred }` with a
/// count of 0: nothing of it was read): the device hands in the whole file.
pub(super) const WHOLE_HAND_IN: &str = "学校服务器缺少这份档案此前的修改，请整份交来";

impl Session {
    /// A `Changes` frame: the peer's deltas, judged and merged in one write.
    pub(super) fn on_changes(
        &mut self,
        store: &mut Store,
        docs: Vec<(DocId, Vec<u8>)>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        // An honest side lists a document once per frame; a modified app repeating one would
        // have it loaded, judged and merged again for every copy.
        let mut listed = HashSet::with_capacity(docs.len());
        if !docs.iter().all(|(d, _)| listed.insert(d)) {
            return Err(Error::Corrupt(
                "对方发来的修改重复列出同一份档案，同步已结束".into(),
            ));
        }
        // Every document the frame lists shares one allowance for what its bytes may claim
        // (`doc::bounds`), checked before any is read.
        let inputs: Vec<&[u8]> = docs.iter().map(|(_, b)| b.as_slice()).collect();
        crate::store::bounded_documents("这批修改", &inputs)?;
        // A document outside the scope (the two sides see the school differently, or a
        // modified app) is refused and left out; the others go on.
        let (mut docs, outside): (Vec<_>, Vec<_>) =
            docs.into_iter().partition(|(d, _)| self.allows(d));
        // A document refused from automerge's sync (no hand-in can be taken there) is taken
        // once when the device hands it in as `Changes` ([`Session::hand_in`]). A hand-in is
        // work on a file its member once had, of something the school knows ([`known_here`]).
        // Any other is not taken (each would make a document here:
        // the genesis change is the same for every document of a kind, anyone can make it; a
        // modified app's frame of invented ids made a blank child in every administrator's
        // list for each, `sync_stories.rs` 9c), and not answered `OutOfScope` either, which
        // tells a device the school holds its work and it may drop its copy: an honest one
        // (an archivist made a file offline and lost her role before she synced) keeps it,
        // deferred, and says so.
        if self.hand_ins && outside.len() > 2 * super::MAX_OUT_OF_SCOPE {
            return Err(Error::NotPermitted(
                "对方发来太多无权同步的档案，同步已结束".into(),
            ));
        }
        let mut hand_ins: Vec<&(DocId, Vec<u8>)> = Vec::new();
        let mut never_held: Vec<&DocId> = Vec::new();
        for entry in &outside {
            let d = &entry.0;
            let may_hand_in = self.hand_ins
                && (!self.held.contains(d) || self.refused_unseen.contains(d))
                && !d.child().is_some_and(|c| self.erased.contains(c));
            if !may_hand_in {
                continue;
            }
            if known_here(store, d)? {
                hand_ins.push(entry);
            } else {
                never_held.push(d);
            }
        }
        for (d, _) in &hand_ins {
            self.refused_unseen.remove(d);
        }
        // The others are answered at once: too many end the session before anything is
        // merged. (Hand-ins, a member's work on files no longer hers, are merged first and
        // counted as they are answered.)
        if self.out_of_scope + (outside.len() - hand_ins.len()) > super::MAX_OUT_OF_SCOPE {
            return Err(Error::NotPermitted(
                "对方发来太多无权同步的档案，同步已结束".into(),
            ));
        }
        let handed_in: HashSet<&DocId> = hand_ins.iter().map(|(d, _)| d).collect();
        for doc in &never_held {
            self.refuse_never_held(doc, out)?;
        }
        let never_held: HashSet<&DocId> = never_held.into_iter().collect();
        // The school document first (then care files before private parts): what the
        // others are judged against may arrive in the same frame.
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        // A hand-in is answered once it is merged (below): a device drops its copy on
        // `OutOfScope`, so that answer waits until nothing of it is left to take.
        for (doc, _) in outside
            .iter()
            .filter(|(d, _)| !handed_in.contains(d) && !never_held.contains(d))
        {
            self.refuse_out_of_scope(doc, out)?;
        }
        self.caught_up = false;
        self.peer_idle = None;
        let before: HashMap<DocId, String> = docs
            .iter()
            .map(|(d, _)| Ok((d.clone(), store.heads(d)?)))
            .collect::<Result<_>>()?;
        let peer = self.peer.clone();
        let held = self.held.clone();
        let sender = self.sender.clone();
        let quota = self.quota.clone();
        let wire_bytes = self.frame_wire_bytes;
        let (incomplete, refused, taken, tips, shared) = store.write(|b| {
            b.set_source(&peer);
            b.set_sender(sender);
            if let Some((m, q)) = quota {
                b.set_daily_quota(m, q);
            }
            b.grant_free_rows_for(wire_bytes);
            let mut incomplete = Vec::new();
            let mut refused = Vec::new();
            let mut tips = Vec::new();
            let mut shared = Vec::new();
            for (doc, bytes) in docs.iter().filter(|(d, _)| !held.contains(d)) {
                let pre = b.doc(doc)?.map(Automerge::get_heads).unwrap_or_default();
                let admission = b.merge_bytes(doc, bytes)?;
                if !admission.is_clean() {
                    refused.push((doc.clone(), admission));
                    continue;
                }
                let replaced = admission.replaced > 0;
                // Records carried over into a replacing generation are this side's, not the
                // sender's: its heads are not the sender's.
                let carried = admission.carried > 0;
                if replaced {
                    refused.push((doc.clone(), admission));
                }
                let Some(d) = b.doc(doc)? else {
                    continue;
                };
                if !d.get_missing_deps(&[]).is_empty() {
                    incomplete.push(doc.clone());
                    continue;
                }
                let mut now = d.get_heads();
                now.sort();
                // The heads the delta added: the peer holds them (they are its).
                if !replaced {
                    let new = now.iter().filter(|h| !pre.contains(h)).copied();
                    tips.push((doc.clone(), new.collect::<Vec<_>>()));
                }
                // The sender has exactly these heads only if the delta moved ours and
                // none of ours survived as a head (a change of ours the sender lacks):
                // recorded as shared in the same write as the merge. Otherwise wait for
                // the end of the exchange: recording heads the peer may never receive
                // would poison the next session.
                if !carried && now != pre && !now.iter().any(|h| pre.contains(h)) {
                    let state = State {
                        shared_heads: now.clone(),
                        ..State::new()
                    };
                    b.save_sync_state(&peer, doc, &state);
                    shared.push((doc.clone(), now));
                }
            }
            // Handed in from outside the scope, after the documents in scope (the
            // school document they are judged against may be among those): judged and
            // kept, nothing sent back (the refusal above tells the device to drop its
            // copy).
            let mut taken = Vec::new();
            for (doc, bytes) in &hand_ins {
                let admission = b.merge_bytes(doc, bytes)?;
                // A delta resting on changes this side lacks (it was restored from an older
                // backup, or the changes went with a re-basing) is set aside unread.
                let unread = b
                    .doc(doc)?
                    .is_some_and(|d| !d.get_missing_deps(&[]).is_empty());
                taken.push((doc.clone(), admission, unread));
            }
            Ok((incomplete, refused, taken, tips, shared))
        })?;
        // A hand-in taken whole (accepted, or refused into the quarantine, where an
        // administrator sees it) lets the device drop its copy; one deferred (the daily
        // quota, a dependency not here yet) is answered `Deferred`, so the device keeps
        // its work and offers it again at its next sync.
        for (doc, admission, unread) in &taken {
            if *unread {
                // Not taken: the device hands the whole file in, which is taken once more.
                out.push(Message::Refused {
                    doc: doc.clone(),
                    why: Why::Deferred,
                    count: 0,
                    reason: WHOLE_HAND_IN.into(),
                });
                self.hold(store, doc, false)?;
                self.refused_unseen.insert(doc.clone());
            } else if admission.deferred > 0 {
                self.refuse(store, doc, admission, out)?;
            } else if admission.stale > 0 {
                // Work on an older generation of a re-based file is not kept here (only a
                // file in scope is answered with the current generation, which carries it
                // over): the device keeps its copy rather than drop what the school lacks.
                out.push(Message::Refused {
                    doc: doc.clone(),
                    why: Why::Deferred,
                    count: u32::try_from(admission.stale).unwrap_or(u32::MAX),
                    reason: "这份档案已被学校重整，请把它交给学校处理".into(),
                });
                self.hold(store, doc, false)?;
            } else {
                self.refuse_out_of_scope(doc, out)?;
            }
        }
        // The school document may have brought an erasure.
        self.erased = store.erased_children()?;
        for (doc, admission) in &refused {
            if admission.replaced > 0 {
                self.restart_generation(store, doc, out)?;
            } else if admission.only_stale() {
                self.send_generation(store, doc, out)?;
            } else {
                self.refuse(store, doc, admission, out)?;
            }
        }
        self.note_shared(&shared);
        for (doc, _) in docs.iter().filter(|(d, _)| !self.held.contains(d)) {
            if before.get(doc) != Some(&store.heads(doc)?) {
                self.changed_here.insert(doc.clone());
                self.writes += 1;
            }
            self.received_deltas.insert(doc.clone());
        }
        // What the peer holds now: what it was known to hold, and what its delta added
        // (less than all it holds, if some of its heads were already here: that only
        // costs a change sent twice, never one not sent).
        for (doc, _) in &tips {
            self.leave_automerge(doc);
        }
        let stored = if tips.iter().any(|(d, _)| !self.peer_has.contains_key(d)) {
            store.shared_with(&self.peer)?
        } else {
            HashMap::new()
        };
        for (doc, new) in tips {
            if new.is_empty() {
                continue;
            }
            let mut has = match self.peer_has.remove(&doc) {
                Some(has) => has,
                None => stored
                    .get(&doc)
                    .map(|h| stored_heads(h))
                    .unwrap_or_default(),
            };
            has.extend(new);
            self.peer_has.insert(doc, has);
        }
        // A delta built on heads this side does not have: fall back to automerge's sync,
        // which asks for exactly what is missing.
        for doc in incomplete {
            self.step_doc(store, &doc, out)?;
        }
        self.maybe_idle(store, out)?;
        Ok(())
    }

    /// Announces documents that moved here while the session is open (live mode, or another
    /// connection writing them): one in the middle of an automerge exchange goes on with it;
    /// the others are sent as deltas from what the peer is known to hold.
    pub(super) fn announce(
        &mut self,
        store: &mut Store,
        docs: &[DocId],
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let (active, rest): (Vec<&DocId>, Vec<&DocId>) =
            docs.iter().partition(|d| self.mid_exchange(d));
        for doc in active {
            self.restart_doc(store, doc, out)?;
        }
        for doc in &rest {
            self.leave_automerge(doc);
        }
        if !rest.is_empty() {
            self.send_deltas(store, &rest.into_iter().cloned().collect(), out)?;
        }
        Ok(())
    }

    /// A document whose automerge exchange has settled goes on with deltas: what that
    /// exchange learned the peer holds (the heads shared, and the peer's heads as it last
    /// said them) joins [`Session::peer_has`], and automerge's state is let go (a later
    /// exchange starts from the one saved in the store).
    pub(super) fn leave_automerge(&mut self, doc: &DocId) {
        if !self.settled.remove(doc) {
            return;
        }
        let Some(state) = self.docs.remove(doc) else {
            return;
        };
        let has = self.peer_has.entry(doc.clone()).or_default();
        let learned = state
            .shared_heads
            .into_iter()
            .chain(state.their_heads.into_iter().flatten());
        for h in learned {
            if !has.contains(&h) {
                has.push(h);
            }
        }
    }

    /// For each candidate document, sends the changes the peer lacks when this side knows what
    /// the peer has (the heads shared at the end of the last exchange, and what crossed in this
    /// session: [`Session::peer_has`], all known here), all in one compressed `Changes` frame;
    /// the others go through automerge's sync protocol.
    pub(super) fn send_deltas(
        &mut self,
        store: &mut Store,
        candidates: &BTreeSet<DocId>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let shared = store.shared_with(&self.peer)?;
        let mut deltas = Vec::new();
        let mut slow = Vec::new();
        for doc in candidates {
            let base = match self.peer_has.get(doc) {
                Some(has) => Some(has.clone()),
                None => shared.get(doc).map(|h| stored_heads(h)),
            };
            let Some(am) = store.doc(doc)? else {
                if base.is_none() {
                    slow.push(doc.clone());
                }
                continue; // nothing to offer; the peer sends what it has
            };
            match base {
                Some(base)
                    if !base.is_empty() && base.iter().all(|h| crate::doc::has_change(am, h)) =>
                {
                    // Not recorded as shared yet: the frame may never arrive. The peer records
                    // it on receipt, this side once the exchange ends in agreement.
                    let heads = am.get_heads();
                    if !heads.iter().all(|h| base.contains(h)) {
                        deltas.push((doc.clone(), am.save_after(&base)));
                        self.later.remove(doc);
                        self.sent_deltas.insert(doc.clone());
                        self.delivering.insert(doc.clone());
                        self.first_sent
                            .entry(doc.clone())
                            .or_insert_with(|| heads.clone());
                        // Everything here is in the history of these heads, what the peer
                        // held before included.
                        self.peer_has.insert(doc.clone(), heads);
                    }
                }
                _ => slow.push(doc.clone()),
            }
        }
        if !deltas.is_empty() {
            self.sent_idle = None;
            self.caught_up = false;
            // Keep frames well under the limit: split large batches.
            let mut batch = Vec::new();
            let mut size = 0;
            for (doc, bytes) in deltas {
                size += bytes.len();
                batch.push((doc, bytes));
                if size > 4 * 1024 * 1024 {
                    out.push(Message::Changes(std::mem::take(&mut batch)));
                    size = 0;
                }
            }
            if !batch.is_empty() {
                out.push(Message::Changes(batch));
            }
        }
        for doc in slow {
            self.step_doc(store, &doc, out)?;
        }
        Ok(())
    }

    /// Of `heads` (this side's, [`Session::scoped_heads`]), the documents whose heads differ
    /// from those `shared` with the peer and that are not in the middle of an exchange.
    pub(super) fn moved<'h>(
        &self,
        heads: &'h [(DocId, String)],
        shared: &HashMap<DocId, String>,
    ) -> impl Iterator<Item = &'h (DocId, String)> {
        heads
            .iter()
            .filter(move |(d, h)| shared.get(d) != Some(h) && !self.mid_exchange(d))
    }

    /// Whether `doc` is in the middle of an automerge exchange.
    pub(super) fn mid_exchange(&self, doc: &DocId) -> bool {
        self.docs.contains_key(doc) && !self.settled.contains(doc)
    }
}

/// Whether `doc` is something this side's school knows, so that a hand-in of it may be taken
/// even where this side never held the document: one it holds; a part of a child's file it
/// holds; the log of a class, the contact card of a member, the access log of a device, its
/// school document registers (a 班主任's first class activity, written offline before she
/// lost the class). Not an id nobody has (`sync_stories.rs`, 9c).
fn known_here(store: &mut Store, doc: &DocId) -> Result<bool> {
    if !store.heads(doc)?.is_empty() {
        return Ok(true);
    }
    if let Some(c) = doc.child() {
        return Ok(!store.heads(&DocId::Child(c.clone()))?.is_empty());
    }
    let Some(school) = store.school_view()? else {
        return Ok(false);
    };
    Ok(match doc {
        DocId::Class(k) => school.class(k).is_some(),
        DocId::Contact(m) => school.member(m).is_some(),
        DocId::Audit(d) => school.devices.iter().any(|x| x.id == *d),
        _ => false,
    })
}
