//! Opening an exchange (module docs, points 1 and 2): this side's `Hello`, and what the
//! peer's says: nothing (equal digests), the documents either side changed, or an `Inventory`.

use std::collections::{BTreeSet, HashMap};

use super::{Phase, Session, digest_of, mark_of};
use crate::doc::DocId;
use crate::error::Result;
use crate::store::{Store, stored_heads};
use crate::sync::wire::{DocMark, Message};

impl Session {
    /// [`super::Event::Start`]: the `Hello`, with the digest of every document in scope and the
    /// marks of those whose heads moved since the last exchange with this peer.
    pub(super) fn start(&mut self, store: &mut Store, out: &mut Vec<Message>) -> Result<()> {
        // Documents held back with this peer stay out while their heads have not moved.
        for (doc, heads) in store.held(&self.peer)? {
            if store.heads(&doc)? == heads {
                self.held.insert(doc);
            } else {
                store.set_held(&self.peer, &doc, false)?;
            }
        }
        let heads = self.scoped_heads(store)?;
        let shared = store.shared_with(&self.peer)?;
        self.digest = digest_of(&heads);
        self.my_changed = heads
            .into_iter()
            .filter(|(d, h)| shared.get(d) != Some(h))
            .collect();
        self.phase = Phase::AwaitHello;
        out.push(Message::Hello {
            digest: self.digest,
            changed: self
                .my_changed
                .iter()
                .map(|(d, h)| (d.clone(), mark_of(h)))
                .collect(),
        });
        Ok(())
    }

    /// The peer's `Hello`: what either side changed since the last exchange is sent.
    pub(super) fn on_hello(
        &mut self,
        store: &mut Store,
        digest: [u8; 16],
        changed: Vec<DocMark>,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        if self.phase != Phase::AwaitHello {
            return Ok(()); // a duplicate
        }
        self.phase = Phase::Syncing;
        // A held document the peer changed since: try it again.
        let retry: Vec<DocId> = changed
            .iter()
            .map(|(d, _)| d.clone())
            .filter(|d| self.held.contains(d))
            .collect();
        for d in &retry {
            self.release(store, d)?;
        }
        if digest == self.digest && retry.is_empty() {
            // Everything in scope is shared, as both sides held it when they said
            // Hello: remember it, so the next Hello lists nothing.
            let shared = std::mem::take(&mut self.my_changed)
                .into_iter()
                .map(|(d, h)| (d, stored_heads(&h)))
                .collect();
            self.mark_shared(store, shared)?;
            self.caught_up = true;
            return Ok(());
        }
        let mine: HashMap<DocId, String> = self.scoped_heads(store)?.into_iter().collect();
        let theirs: HashMap<DocId, [u8; 4]> = changed.into_iter().collect();
        let mut candidates = BTreeSet::new();
        let mut already_shared = Vec::new();
        for doc in theirs.keys().chain(self.my_changed.iter().map(|(d, _)| d)) {
            if !self.allows(doc) {
                continue;
            }
            let ours = mine.get(doc);
            match (theirs.get(doc), ours) {
                (Some(mark), Some(h)) if *mark == mark_of(h) => {
                    already_shared.push((doc.clone(), stored_heads(h)));
                }
                _ => {
                    candidates.insert(doc.clone());
                }
            }
        }
        self.mark_shared(store, already_shared)?;
        if candidates.is_empty() {
            self.send_inventory(store, out)?;
        } else {
            self.send_deltas(store, &candidates, out)?;
        }
        self.maybe_idle(store, out)?;
        Ok(())
    }
}
