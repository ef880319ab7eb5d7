//! Automerge's own sync protocol (module docs, points 2 to 4): for a document with no shared
//! state here, one whose delta rested on changes this side lacks, and the `Inventory`
//! fallback. Every message received is applied and its state saved in one store write.

use std::collections::{BTreeSet, HashMap};

use automerge::sync::{Message as AmMessage, State, SyncDoc};
use automerge::{Automerge, ChangeHash};

use super::{Phase, Session};
use crate::doc::DocId;
use crate::error::Result;
use crate::store::{Store, stored_heads};
use crate::sync::wire::{DocHeads, Message};

impl Session {
    /// The peer's `Inventory`: the documents whose heads differ go through automerge's sync.
    pub(super) fn on_inventory(
        &mut self,
        store: &mut Store,
        theirs: Vec<DocHeads>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        self.phase = Phase::Syncing;
        let mine: HashMap<DocId, Vec<ChangeHash>> = self
            .scoped_heads(store)?
            .into_iter()
            .map(|(d, h)| (d, stored_heads(&h)))
            .collect();
        // What the peer holds that it may no longer exchange here: say so, once.
        let outside: Vec<DocId> = theirs
            .iter()
            .map(|(d, _)| d.clone())
            .filter(|d| !self.allows(d) && !self.held.contains(d))
            .collect();
        for doc in &outside {
            self.refuse_out_of_scope(doc, out)?;
            self.refused_unseen.insert(doc.clone());
        }
        let theirs: HashMap<DocId, Vec<ChangeHash>> = theirs
            .into_iter()
            .filter(|(d, _)| self.allows(d) && !self.held.contains(d))
            .collect();
        let mut candidates = BTreeSet::new();
        for doc in mine.keys().chain(theirs.keys()) {
            let mut a = mine.get(doc).cloned().unwrap_or_default();
            let mut b = theirs.get(doc).cloned().unwrap_or_default();
            a.sort();
            b.sort();
            if a != b {
                candidates.insert(doc.clone());
            }
        }
        if !self.sent_inventory {
            self.send_inventory(store, out)?;
        }
        for doc in candidates {
            self.step_doc(store, &doc, out)?;
        }
        self.maybe_idle(store, out)?;
        Ok(())
    }

    /// A `Doc` frame: one automerge sync message, applied and its state saved in one write.
    pub(super) fn on_doc(
        &mut self,
        store: &mut Store,
        doc: DocId,
        payload: Vec<u8>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        if !self.allows(&doc) {
            if !self.held.contains(&doc) {
                self.refuse_out_of_scope(&doc, out)?;
                self.refused_unseen.insert(doc.clone());
            }
            return Ok(());
        }
        if self.phase == Phase::AwaitHello {
            self.phase = Phase::Syncing;
        }
        if self.held.contains(&doc) {
            // The peer deferred it and now starts it over: take it up again.
            if !self.deferred_there.remove(&doc) {
                return Ok(()); // left out of this exchange
            }
            self.held.remove(&doc);
            self.docs.insert(doc.clone(), State::new());
        }
        // Its lists must fit its bytes before automerge decodes it (`doc::bounds`): the
        // decoder keeps an entry for every item a count claims.
        if !crate::doc::bounds::sync_message_is_sound(&payload) {
            return Err(crate::store::malformed_by_peer(&doc));
        }
        let message = crate::store::from_peer(&doc, || {
            AmMessage::decode(&payload).map_err(|e| format!("同步消息无效：{e}"))
        })?;
        // The message holds its own copy: the frame's body (up to `wire::MAX_BODY`) goes now.
        drop(payload);
        self.caught_up = false;
        self.peer_idle = None;
        self.settled.remove(&doc);
        let mut state = self.state_for(store, &doc)?;
        let before = store.heads(&doc)?;
        let peer = self.peer.clone();
        let sender = self.sender.clone();
        let quota = self.quota.clone();
        let wire_bytes = self.frame_wire_bytes;
        let admission = store.write(|b| {
            b.set_source(&peer);
            b.set_sender(sender);
            if let Some((m, q)) = quota {
                b.set_daily_quota(m, q);
            }
            b.grant_free_rows_for(wire_bytes);
            b.sync_receive(&peer, &doc, &mut state, message)
        })?;
        if doc == DocId::School {
            self.erased = store.erased_children()?;
        }
        if store.heads(&doc)? != before {
            self.changed_here.insert(doc.clone());
            self.writes += 1;
        }
        if admission.only_stale() {
            self.send_generation(store, &doc, out)?;
            self.maybe_idle(store, out)?;
            return Ok(());
        }
        if !admission.is_clean() {
            self.refuse(store, &doc, &admission, out)?;
            self.maybe_idle(store, out)?;
            return Ok(());
        }
        if admission.replaced > 0 {
            self.restart_generation(store, &doc, out)?;
            self.maybe_idle(store, out)?;
            return Ok(());
        }
        self.docs.insert(doc.clone(), state);
        self.step_doc(store, &doc, out)?;
        self.maybe_idle(store, out)?;
        Ok(())
    }

    pub(super) fn send_inventory(&mut self, store: &Store, out: &mut Vec<Message>) -> Result<()> {
        self.sent_inventory = true;
        let all = self
            .scoped_heads(store)?
            .into_iter()
            .map(|(d, h)| (d, stored_heads(&h)))
            .collect();
        out.push(Message::Inventory(all));
        Ok(())
    }

    pub(super) fn state_for(&mut self, store: &Store, doc: &DocId) -> Result<State> {
        if let Some(s) = self.docs.remove(doc) {
            return Ok(s);
        }
        let saved = store.sync_state(&self.peer, doc)?;
        Ok(saved
            .and_then(|bytes| State::decode(&bytes).ok())
            .unwrap_or_default())
    }

    /// Starts exchanging `doc` again after it changed here.
    pub(super) fn restart_doc(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        self.caught_up = false;
        self.settled.remove(doc);
        self.step_doc(store, doc, out)
    }

    /// Generates the next automerge sync message for `doc`, if there is one.
    pub(super) fn step_doc(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        if self.held.contains(doc) {
            return Ok(());
        }
        // Exchanged with automerge now: whatever it holds crosses, later arrivals included.
        self.later.remove(doc);
        let mut state = self.state_for(store, doc)?;
        let empty;
        let am: &Automerge = match store.doc(doc)? {
            Some(d) => d,
            None => {
                empty = Automerge::new();
                &empty
            }
        };
        match am.generate_sync_message(&mut state) {
            Some(m) => {
                self.sent_idle = None;
                self.caught_up = false;
                if !m.changes.is_empty() {
                    self.delivering.insert(doc.clone());
                }
                out.push(Message::Doc {
                    doc: doc.clone(),
                    payload: m.encode(),
                });
            }
            None => {
                self.settled.insert(doc.clone());
            }
        }
        self.docs.insert(doc.clone(), state);
        Ok(())
    }
}
