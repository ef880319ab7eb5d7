//! A peer that syncs once (module docs, point 7): documents that change on this side after its
//! Hello wait for the peer's next sync, and both sides leave them out of the digests they
//! compare.
//!
//! - The side whose peer syncs once (the hub, [`Session::one_shot_peer`]) leaves out every
//!   document whose heads here are not all known to the peer: not in what crossed in this
//!   session ([`Session::peer_has`]) nor in the heads shared before. It never leaves out one
//!   in the middle of an automerge exchange, and before the peer's Hello is answered it leaves
//!   out nothing (what changed before the Hello is sent as usual).
//! - The peer leaves out what the other side's last Idle listed, once every head of its own in
//!   those documents is known to be there; one that is not is sent first, as a delta.
//! - On ending, the side whose peer syncs once records as shared what the peer is known to
//!   hold of each document left out; the peer, its own heads as read for the Idle that
//!   concluded, in the documents where all of them were checked to be on the other side (a
//!   record the app writes while the session handles that Idle is in neither, and goes at the
//!   next sync).

use std::collections::{BTreeSet, HashMap};

use automerge::ChangeHash;

use super::{Message, Phase, Session};
use crate::doc::DocId;
use crate::error::Result;
use crate::store::{Store, stored_heads};

/// How many of its last Idles a side whose peer syncs once remembers the heads of: the peer
/// may end on one of them while later ones are on their way.
pub const IDLE_SNAPSHOTS: usize = 4;

impl Session {
    /// The peer syncs once and then closes (a phone's sync, not a live connection): documents
    /// that change here after this side's Hello, through other connections, are left for its
    /// next sync instead of being sent (module docs, point 7). The hub sets this for every
    /// device until the device says it stays connected ([`Session::peer_went_live`]).
    pub fn one_shot_peer(mut self) -> Session {
        self.one_shot_peer = true;
        self
    }

    /// The peer stays connected after all (live mode): from now on, documents that change
    /// here are sent as they change, those left for later included (at the next
    /// [`super::Event::Poll`]).
    pub fn peer_went_live(&mut self) {
        self.one_shot_peer = false;
        self.later.clear();
        self.idle_snapshots.clear();
    }

    /// The documents the next Idle leaves out of its digest. On the peer's side, first sends
    /// (into `out`) whatever of its own the other side may not hold in them.
    /// `heads`: this side's, as [`Session::scoped_heads`] read them for this Idle; what is
    /// checked here and what [`Session::mark_left_out`] records on ending are both read from
    /// them, so a record the app writes meanwhile is neither checked nor recorded.
    pub(super) fn left_out(
        &mut self,
        store: &mut Store,
        heads: &[(DocId, String)],
        out: &mut Vec<Message>,
    ) -> Result<BTreeSet<DocId>> {
        if self.one_shot_peer {
            if self.phase == Phase::Syncing {
                self.leave_for_later(store, heads)?;
            }
            return Ok(self.later.clone());
        }
        if self.peer_later.is_empty() {
            return Ok(BTreeSet::new());
        }
        let shared = store.shared_with(&self.peer)?;
        let unsent: BTreeSet<DocId> = heads
            .iter()
            .filter(|(doc, here)| {
                self.peer_later.contains(doc)
                    && !self.mid_exchange(doc)
                    && !self.all_known_there(doc, here, &shared)
            })
            .map(|(doc, _)| doc.clone())
            .collect();
        if !unsent.is_empty() {
            self.send_deltas(store, &unsent, out)?;
        }
        Ok(self.peer_later.clone())
    }

    /// What the peer is known to hold of `doc`: what crossed in this session, and the heads
    /// shared before it.
    fn known_there(&self, doc: &DocId, shared: Option<&String>) -> Vec<ChangeHash> {
        let mut known = self.peer_has.get(doc).cloned().unwrap_or_default();
        known.extend(shared.map(|h| stored_heads(h)).unwrap_or_default());
        known
    }

    /// Adds to [`Session::later`] every document that moved here ([`Session::moved`]) to heads
    /// the peer is not known to hold.
    fn leave_for_later(&mut self, store: &Store, heads: &[(DocId, String)]) -> Result<()> {
        let shared = store.shared_with(&self.peer)?;
        let behind: Vec<DocId> = self
            .moved(heads, &shared)
            .filter(|(doc, h)| !self.later.contains(doc) && !self.all_known_there(doc, h, &shared))
            .map(|(doc, _)| doc.clone())
            .collect();
        self.later.extend(behind);
        Ok(())
    }

    /// Whether every head `here` (this side's of `doc`, as stored) is known to the peer.
    fn all_known_there(&self, doc: &DocId, here: &str, shared: &HashMap<DocId, String>) -> bool {
        let known = self.known_there(doc, shared.get(doc));
        stored_heads(here).iter().all(|h| known.contains(h))
    }

    /// Remembers what an Idle to a peer that syncs once covered.
    pub(super) fn keep_snapshot(&mut self, digest: [u8; 16], covered: &[(DocId, String)]) {
        if !self.one_shot_peer {
            return;
        }
        if self.idle_snapshots.len() == IDLE_SNAPSHOTS {
            self.idle_snapshots.pop_front();
        }
        self.idle_snapshots.push_back((digest, covered.to_vec()));
    }

    /// The heads an earlier Idle with this digest covered, if it is one of the last few.
    pub(super) fn snapshot(&self, digest: [u8; 16]) -> Option<Vec<(DocId, String)>> {
        self.idle_snapshots
            .iter()
            .rev()
            .find(|(d, _)| *d == digest)
            .map(|(_, heads)| heads.clone())
    }

    /// On ending: records as shared what both sides are known to hold of the documents left
    /// out of the digests. `heads`: this side's, as read for the Idle that concluded.
    pub(super) fn mark_left_out(
        &mut self,
        store: &mut Store,
        left_out: &BTreeSet<DocId>,
        heads: &[(DocId, String)],
    ) -> Result<()> {
        if left_out.is_empty() {
            return Ok(());
        }
        let shared = store.shared_with(&self.peer)?;
        let mut both = Vec::new();
        for doc in left_out {
            if self.held.contains(doc) {
                continue;
            }
            let heads = if self.one_shot_peer {
                // What the peer is known to hold, all of which is here.
                match self.peer_has.get(doc) {
                    Some(has) => has.clone(),
                    None => continue,
                }
            } else {
                // This side's own heads, as checked to be on the other side (`left_out`).
                match heads.iter().find(|(d, _)| d == doc) {
                    Some((_, here))
                        if !self.mid_exchange(doc) && self.all_known_there(doc, here, &shared) =>
                    {
                        stored_heads(here)
                    }
                    _ => continue,
                }
            };
            // Sorted, as automerge's sync state keeps them.
            let mut heads = heads;
            heads.sort();
            heads.dedup();
            let mut before = shared.get(doc).map(|h| stored_heads(h)).unwrap_or_default();
            before.sort();
            if !heads.is_empty() && heads != before {
                both.push((doc.clone(), heads));
            }
        }
        self.mark_shared(store, both)
    }
}
