//! One sync session with one peer, as a state machine with no IO.
//!
//! The driver (a QUIC stream, a test harness) feeds [`Event`]s in and sends the frames of each
//! [`Output`] to the peer; the session reads and writes the [`Store`] it is handed.
//!
//! 1. [`Event::Start`]: send `Hello { digest, changed }`. `digest` covers the heads of every
//!    document in scope; `changed` lists only documents whose heads moved since the last
//!    exchange with this peer (from the persisted sync state), so a reconnect with nothing new
//!    costs one small frame each way whatever the number of documents.
//! 2. On the peer's `Hello`: equal digests mean nothing to do (caught up after one round trip;
//!    the heads this side's Hello covered are recorded as shared, and nothing is read again).
//!    Otherwise the documents either side changed are synced with automerge's sync protocol,
//!    starting from the persisted shared heads. If neither side changed anything yet the
//!    digests differ (state lost, a restored phone), both send an `Inventory` of every document
//!    in scope and sync the ones that differ.
//! 3. `Doc` frames carry automerge sync messages. Each received message is applied and its sync
//!    state saved in one durable store write, so a cut transfer resumes where it stopped and a
//!    message received twice has no effect.
//! 4. A side with nothing more to send says `Idle { digest, seen }`: its digest now and how many
//!    non-Idle frames it has received. The session is caught up when the peer has seen every
//!    frame this side sent and their digests agree. If the peer has seen everything yet the
//!    digests differ (shared state that was recorded but never reached the peer, after a cut),
//!    this side sends its `Inventory` once and the differing documents are synced again, so the
//!    session never ends believing it is in sync when it is not.
//!    It stays open: [`Event::LocalChange`] (live mode) announces one document that moved, and
//!    [`Event::Poll`] every document another connection changed meanwhile. A document the
//!    session knows what the peer holds of (the shared heads stored, and whatever crossed in
//!    this session either way) is sent as one `Changes` delta of just what is new, answered by
//!    an `Idle`; only one in the middle of an automerge exchange goes on with it. (Before, every
//!    such document went through automerge's rounds of heads and requests, whose last round
//!    carries every change since the heads last shared: a phone whose records crossed the hub's
//!    changes to the same child sent them twice, BENCHMARKS §7.)
//! 5. Shared heads are recorded only when known to hold on both sides: equal marks in the
//!    Hellos, equal digests, a received delta that left none of this side's own heads standing,
//!    or automerge's own sync state. A sender never records what it has just sent: if the
//!    frame is lost (a link cut), the next session still offers it from the last agreed heads,
//!    and at once re-sends just those changes.
//!
//! 6. A document whose changes cannot be judged yet (the school state they declare is not
//!    here) is answered `Refused { Deferred }` and both sides leave it out of the exchange, so
//!    the rest can catch up. As soon as the school document gains changes in the same
//!    session, the side that deferred starts the document over, and the peer takes it up
//!    again; before, it waited for the next session, and a session could end caught up with
//!    that document still apart (found by the convergence property; `sync_stories` story 12
//!    tells the case).
//!
//! 7. *A peer that syncs once* ([`Session::one_shot_peer`]: a phone's sync, which closes once
//!    caught up, unlike a live connection). A document that changes here after this side's
//!    Hello, through another connection (the hub's other phones), is not sent to it: it is
//!    left for the peer's next sync, as a one-shot pull in CouchDB-style replication takes
//!    the changes up to where it started. Every `Idle` this side sends lists those documents
//!    (`later`) and leaves them out of its digest; the peer leaves them out of its own digest
//!    to compare, so the sync ends as soon as both hold the same of everything else. Before
//!    ending, the peer checks that this side holds its own heads of each document left for
//!    later (the peer has sent them; otherwise it sends them first): a record written on the
//!    phone is never left behind. On ending, each side records as shared what it knows both
//!    hold of those documents (what crossed in the session), so the next sync sends only the
//!    rest. The peer may end on any recent `Idle` of this side, not only the last: this side
//!    keeps the heads its last few Idles covered ([`IDLE_SNAPSHOTS`]) to record what was
//!    agreed. (Before, in a storm of 200 phones, each phone's sync stayed open for seconds
//!    while the records of the others caring for its children kept arriving, and took them
//!    in one by one: BENCHMARKS §7.)
//!
//! Only documents in the session's [`Scope`] are offered or accepted; anything else from the
//! peer is answered `Refused { OutOfScope }` and left out. A side that may hold every document
//! (the hub, [`Session::taking_hand_ins`]) still takes the peer's own changes to such a
//! document from a `Changes` frame, sending nothing of it back: the work a member did before
//! hearing that the document is no longer theirs reaches the school before the device drops it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use automerge::sync::{Message as AmMessage, State, SyncDoc};
use automerge::{Automerge, ChangeHash, ReadDoc};
use sha2::{Digest, Sha256};

use super::wire::{Compression, DocHeads, Message, Why};
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::store::{Sender, Store, stored_heads};

mod one_shot;

pub use one_shot::IDLE_SNAPSHOTS;

/// Which documents a session may offer and accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every document (two devices of the same school with full access, or a hub with an
    /// administrator's device).
    All,
    /// Only these documents.
    Only(BTreeSet<DocId>),
}

impl Scope {
    /// Whether the document is in scope.
    pub fn allows(&self, doc: &DocId) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(set) => set.contains(doc),
        }
    }

    /// The documents both scopes allow.
    pub fn intersect(&self, other: &Scope) -> Scope {
        match (self, other) {
            (Scope::All, s) | (s, Scope::All) => s.clone(),
            (Scope::Only(a), Scope::Only(b)) => Scope::Only(a.intersection(b).cloned().collect()),
        }
    }
}

/// Something that happened to the session.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// The connection is up: send the opening frame.
    Start,
    /// A frame from the peer.
    Frame(&'a [u8]),
    /// A document changed locally while connected (live mode).
    LocalChange(&'a DocId),
    /// The store may have been written by another connection while connected (the app
    /// writing while sync runs in the background): every document in scope whose heads moved
    /// past what the peer is known to have, and that is not being exchanged right now, is
    /// announced as by [`Event::LocalChange`]. Costs one read of the heads table.
    Poll,
}

/// What the session wants done.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    /// Frames to send to the peer, in order.
    pub frames: Vec<Vec<u8>>,
    /// Both sides have nothing more to send.
    pub caught_up: bool,
    /// Changes from the peer were written to the store by this event: other sessions over the
    /// same store (a hub's other connections) should [`Event::Poll`] to pass them on.
    pub wrote: bool,
    /// Documents whose changes this event's frames carry to the peer (a `Changes` delta, or
    /// an automerge sync message holding changes): the hub's delivery log.
    pub delivered: Vec<DocId>,
}

/// Counters for progress displays and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Documents being synced in this session.
    pub docs_syncing: usize,
    /// Of those, documents with nothing left to exchange.
    pub docs_settled: usize,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Documents that gained changes from the peer.
    pub docs_changed: usize,
    /// Frames whose changes from the peer moved a document here: grows with every arrival,
    /// also a second one for a document already counted in `docs_changed` (live mode).
    pub arrivals: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    New,
    AwaitHello,
    Syncing,
}

/// A sync session with one peer.
#[derive(Debug)]
pub struct Session {
    peer: String,
    scope: Scope,
    phase: Phase,
    digest: [u8; 16],
    /// The documents in scope whose heads are not known to be shared with the peer, with
    /// those heads as the Hello listed them: what is shared once the digests agree.
    my_changed: Vec<(DocId, String)>,
    /// Documents being synced, with automerge's per-peer state.
    docs: BTreeMap<DocId, State>,
    settled: BTreeSet<DocId>,
    /// Documents sent or received as one-frame deltas (`Changes`), for progress.
    sent_deltas: BTreeSet<DocId>,
    /// What the peer is known to hold of a document in this session beyond the shared heads
    /// stored: the heads of every delta sent to it, and the tips of every delta taken from it
    /// (its own changes). A document that moves again while the session is open (live mode,
    /// or the hub's other connections writing it) is sent as one more delta of just what is
    /// new, never again what already crossed. In memory only: what was sent is never recorded
    /// as shared (point 5).
    peer_has: HashMap<DocId, Vec<ChangeHash>>,
    /// Documents whose changes the current event's frames carry ([`Output::delivered`]).
    delivering: BTreeSet<DocId>,
    received_deltas: BTreeSet<DocId>,
    changed_here: BTreeSet<DocId>,
    sent_inventory: bool,
    /// The last Idle sent (digest, frames seen), if no state frame was sent since.
    sent_idle: Option<([u8; 16], u64)>,
    /// The peer's last Idle: its digest and how many of our non-Idle frames it had seen.
    peer_idle: Option<([u8; 16], u64)>,
    /// Non-Idle frames sent and received.
    state_sent: u64,
    state_received: u64,
    caught_up: bool,
    /// Events so far that wrote the peer's changes to the store.
    writes: u64,
    /// Documents left out of this exchange: changes of them were not accepted, one way or the
    /// other. Left out of digests and inventories on both sides, so the rest still catches up.
    held: BTreeSet<DocId>,
    /// Of the held documents, those this side answered `Deferred` (what their changes rest on
    /// was not here yet, typically the school state they declare): taken up again in this
    /// session as soon as the school document gains changes ([`Session::retry_deferred`]).
    deferred_here: BTreeSet<DocId>,
    /// Of the held documents, those the peer answered `Deferred`: taken up again when the peer
    /// starts them over with a `Doc` frame.
    deferred_there: BTreeSet<DocId>,
    /// Changes this side refused from the peer in this session.
    refused_here: u64,
    /// Who the peer is, for judging what it sends.
    sender: Sender,
    /// The peer's member and the bytes of changes a day taken from them.
    quota: Option<(crate::ids::MemberId, u64)>,
    /// Children whose files the school erased (as this side's school document says, read at
    /// every event): their documents are out of every scope, whatever `scope` says.
    erased: BTreeSet<crate::ids::ChildId>,
    /// Whether this side takes the peer's own changes to documents outside the scope
    /// ([`Session::taking_hand_ins`]).
    hand_ins: bool,
    /// How this side's frames are compressed ([`Session::compressing_fast`]).
    compression: Compression,
    /// The peer syncs once and closes ([`Session::one_shot_peer`], point 7).
    one_shot_peer: bool,
    /// Documents that changed here after the Hello and wait for the peer's next sync (point 7).
    later: BTreeSet<DocId>,
    /// The documents the peer's last Idle left for this side's next sync.
    peer_later: BTreeSet<DocId>,
    /// The digests of the last Idles sent to a peer that syncs once, with the heads each
    /// covered: the peer may end on any of them (point 7).
    idle_snapshots: VecDeque<IdleSnapshot>,
    progress: Progress,
}

/// An Idle's digest and the heads (as stored) of the documents it covered.
type IdleSnapshot = ([u8; 16], Vec<(DocId, String)>);

/// A short digest of one document's heads as stored.
fn mark_of(heads: &str) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(&Sha256::digest(heads.as_bytes())[..4]);
    out
}

fn digest_of(heads: &[(DocId, String)]) -> [u8; 16] {
    let mut h = Sha256::new();
    for (doc, hs) in heads {
        h.update(doc.key().as_bytes());
        h.update(b"=");
        h.update(hs.as_bytes());
        h.update(b"\n");
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

impl Session {
    /// A session with `peer` (a stable id: the peer's device id) over `scope`.
    pub fn new(peer: impl Into<String>, scope: Scope) -> Session {
        Session {
            peer: peer.into(),
            scope,
            phase: Phase::New,
            digest: [0; 16],
            my_changed: Vec::new(),
            docs: BTreeMap::new(),
            settled: BTreeSet::new(),
            sent_deltas: BTreeSet::new(),
            peer_has: HashMap::new(),
            delivering: BTreeSet::new(),
            received_deltas: BTreeSet::new(),
            changed_here: BTreeSet::new(),
            sent_inventory: false,
            sent_idle: None,
            peer_idle: None,
            state_sent: 0,
            state_received: 0,
            caught_up: false,
            writes: 0,
            held: BTreeSet::new(),
            deferred_here: BTreeSet::new(),
            deferred_there: BTreeSet::new(),
            refused_here: 0,
            sender: Sender::Relay,
            quota: None,
            erased: BTreeSet::new(),
            hand_ins: false,
            compression: Compression::Smallest,
            one_shot_peer: false,
            later: BTreeSet::new(),
            peer_later: BTreeSet::new(),
            idle_snapshots: VecDeque::new(),
            progress: Progress::default(),
        }
    }

    /// Takes, from the peer, its changes to documents outside the scope, sending nothing of
    /// them back: for a side that may hold every document (the hub). A document leaves a
    /// device's scope when its member's standing shrinks (the class given to another head, a
    /// pairing ended, the child left); work the member did on it before hearing would be lost
    /// when the device drops its copy. The changes are judged like any others (the sender's
    /// own only, against the school state they declare, listed for review where the standing
    /// was lost: `trust::standing`). Once merged, the document is answered `Refused {
    /// OutOfScope }`, so the device drops it; a hand-in not taken whole (deferred: the daily
    /// quota, a missing dependency) is answered `Deferred`, so the device keeps its work for
    /// the next sync. An erased child's documents are never taken.
    pub fn taking_hand_ins(mut self) -> Session {
        self.hand_ins = true;
        self
    }

    /// Whether `doc` is exchanged in this session: in scope, and not an erased child's.
    fn allows(&self, doc: &DocId) -> bool {
        self.scope.allows(doc) && !doc.child().is_some_and(|c| self.erased.contains(c))
    }

    /// Compresses this side's frames for speed rather than for the fewest bytes
    /// ([`Compression::Fast`]): for the side that serves every device of the school (the hub).
    pub fn compressing_fast(mut self) -> Session {
        self.compression = Compression::Fast;
        self
    }

    /// Takes from the peer only what its own device made (see [`Sender`]); a session is a
    /// trusted relay by default (a device talking to its school hub).
    pub fn with_sender(mut self, sender: Sender) -> Session {
        self.sender = sender;
        self
    }

    /// Takes at most `bytes` of changes a day from the peer's `member` (the hub's quota); the
    /// rest is deferred to the next day.
    pub fn with_daily_quota(mut self, member: crate::ids::MemberId, bytes: u64) -> Session {
        self.quota = Some((member, bytes));
        self
    }

    /// The peer's id.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Counters so far. A document sent as a delta counts as settled once the session is
    /// caught up; one received as a delta, once merged.
    pub fn progress(&self) -> Progress {
        let fast: BTreeSet<&DocId> = self
            .sent_deltas
            .iter()
            .chain(&self.received_deltas)
            .filter(|d| !self.docs.contains_key(*d))
            .collect();
        let fast_settled = fast
            .iter()
            .filter(|d| self.caught_up || !self.sent_deltas.contains(**d))
            .count();
        Progress {
            docs_syncing: self.docs.len() + fast.len(),
            docs_settled: self.settled.len() + fast_settled,
            docs_changed: self.changed_here.len(),
            arrivals: self.writes,
            ..self.progress
        }
    }

    /// Whether both sides had nothing more to send at the last exchange.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// Documents left out of this exchange because changes were not accepted.
    pub fn held(&self) -> &BTreeSet<DocId> {
        &self.held
    }

    /// Changes this side refused from the peer in this session.
    pub fn refused_here(&self) -> u64 {
        self.refused_here
    }

    /// Leaves `doc` out of the rest of the exchange (and, if `persist`, of later exchanges
    /// until its heads move here).
    fn hold(&mut self, store: &mut Store, doc: &DocId, persist: bool) -> Result<()> {
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
    fn release(&mut self, store: &mut Store, doc: &DocId) -> Result<()> {
        if self.held.remove(doc) {
            store.set_held(&self.peer, doc, false)?;
        }
        Ok(())
    }

    /// Releases every held document whose heads moved since it was held.
    fn release_moved(&mut self, store: &mut Store) -> Result<()> {
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
    fn send_generation(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let Some(whole) = store.doc(doc)?.map(Automerge::save) else {
            return Ok(());
        };
        out.push(Message::Changes(vec![(doc.clone(), whole)]));
        self.peer_has.remove(doc);
        self.docs.insert(doc.clone(), State::new());
        self.settled.insert(doc.clone());
        Ok(())
    }

    /// This side's copy of `doc` was just replaced by a newer generation: what the sync state
    /// knew of the old one no longer holds, so the document's sync starts over.
    fn restart_generation(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        self.peer_has.remove(doc);
        self.docs.insert(doc.clone(), State::new());
        self.restart_doc(store, doc, out)
    }

    /// Tells the peer it may not send `doc` here at all, and leaves it out.
    fn refuse_out_of_scope(&mut self, doc: &DocId, out: &mut Vec<Message>) -> Result<()> {
        out.push(Message::Refused {
            doc: doc.clone(),
            why: Why::OutOfScope,
            count: 0,
            reason: "对方无权在这里同步这份档案".into(),
        });
        self.held.insert(doc.clone());
        self.docs.remove(doc);
        Ok(())
    }

    /// Tells the peer that changes of `doc` were not accepted, and leaves it out.
    fn refuse(
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

    /// The school document gained changes in this event: documents this side deferred (their
    /// changes declare a school state that was not here) are taken up again at once, from a
    /// fresh automerge state, so the peer sends them again. Without this they waited for the
    /// next session, and a session could end caught up with them still apart.
    fn retry_deferred(&mut self, store: &mut Store, out: &mut Vec<Message>) -> Result<()> {
        for doc in std::mem::take(&mut self.deferred_here) {
            if !self.held.remove(&doc) {
                continue;
            }
            self.docs.insert(doc.clone(), State::new());
            self.restart_doc(store, &doc, out)?;
        }
        Ok(())
    }

    /// Feeds one event; returns the frames to send.
    pub fn handle(&mut self, store: &mut Store, event: Event<'_>) -> Result<Output> {
        let mut out = Vec::new();
        let writes = self.writes;
        self.erased = store.erased_children()?;
        let school_before = if self.deferred_here.is_empty() {
            None
        } else {
            Some(store.heads(&DocId::School)?)
        };
        match event {
            Event::Start => self.start(store, &mut out)?,
            Event::Frame(bytes) => {
                self.progress.frames_received += 1;
                self.progress.bytes_received += bytes.len() as u64;
                let msg = Message::decode(bytes)?;
                if !matches!(msg, Message::Idle { .. }) {
                    self.state_received += 1;
                }
                self.on_message(store, msg, &mut out)?;
            }
            Event::LocalChange(doc) => {
                if self.held.contains(doc) {
                    self.release(store, doc)?;
                }
                if self.phase != Phase::New && self.allows(doc) {
                    self.announce(store, std::slice::from_ref(doc), &mut out)?;
                    self.maybe_idle(store, &mut out)?;
                }
            }
            Event::Poll => {
                self.release_moved(store)?;
                if self.one_shot_peer {
                    // What moved here is left for the peer's next sync (point 7); an Idle
                    // says so if it changes what this side's digest covers.
                    if self.phase == Phase::Syncing {
                        self.maybe_idle(store, &mut out)?;
                    }
                } else if self.phase != Phase::New {
                    let moved = self.moved_docs(store)?;
                    self.announce(store, &moved, &mut out)?;
                    if !moved.is_empty() {
                        self.maybe_idle(store, &mut out)?;
                    }
                }
            }
        }
        if let Some(before) = school_before
            && store.heads(&DocId::School)? != before
        {
            self.retry_deferred(store, &mut out)?;
        }
        self.state_sent += out
            .iter()
            .filter(|m| !matches!(m, Message::Idle { .. }))
            .count() as u64;
        let delivered = std::mem::take(&mut self.delivering).into_iter().collect();
        let frames: Vec<Vec<u8>> = out
            .iter()
            .map(|m| m.encode_with(self.compression))
            .collect();
        self.progress.frames_sent += frames.len() as u64;
        self.progress.bytes_sent += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        Ok(Output {
            frames,
            caught_up: self.caught_up,
            wrote: self.writes != writes,
            delivered,
        })
    }

    /// The heads of every stored document in scope and not held back, in document key order
    /// (the order [`digest_of`] needs on both sides). A scope of named documents (a phone's, on
    /// the hub) reads just those: the hub runs this after every frame of every session, and
    /// reading the whole school's heads each time was half of its CPU under a storm of 200
    /// phones (BENCHMARKS §7).
    fn scoped_heads(&self, store: &Store) -> Result<Vec<(DocId, String)>> {
        let heads = match &self.scope {
            Scope::All => store.all_heads()?,
            Scope::Only(docs) => store.heads_of(docs)?,
        };
        Ok(heads
            .into_iter()
            .filter(|(d, _)| self.allows(d) && !self.held.contains(d))
            .collect())
    }

    fn start(&mut self, store: &mut Store, out: &mut Vec<Message>) -> Result<()> {
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

    fn on_message(
        &mut self,
        store: &mut Store,
        msg: Message,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        match msg {
            Message::Hello { digest, changed } => {
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
            }
            Message::Changes(docs) => {
                // A document outside the scope (the two sides see the school differently, or a
                // modified app) is refused and left out; the others go on.
                let (mut docs, outside): (Vec<_>, Vec<_>) =
                    docs.into_iter().partition(|(d, _)| self.allows(d));
                let hand_ins: Vec<&(DocId, Vec<u8>)> = outside
                    .iter()
                    .filter(|(d, _)| {
                        self.hand_ins
                            && !self.held.contains(d)
                            && !d.child().is_some_and(|c| self.erased.contains(c))
                    })
                    .collect();
                // The school document first (then care files before private parts): what the
                // others are judged against may arrive in the same frame.
                docs.sort_by(|a, b| a.0.cmp(&b.0));
                // A hand-in is answered once it is merged (below): a device drops its copy on
                // `OutOfScope`, so that answer waits until nothing of it is left to take.
                for (doc, _) in outside
                    .iter()
                    .filter(|(d, _)| !hand_ins.iter().any(|(h, _)| h == d))
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
                let (incomplete, refused, taken, tips, shared) = store.write(|b| {
                    b.set_source(&peer);
                    b.set_sender(sender);
                    if let Some((m, q)) = quota {
                        b.set_daily_quota(m, q);
                    }
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
                        if now != pre && !now.iter().any(|h| pre.contains(h)) {
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
                        taken.push((doc.clone(), b.merge_bytes(doc, bytes)?));
                    }
                    Ok((incomplete, refused, taken, tips, shared))
                })?;
                // A hand-in taken whole (accepted, or refused into the quarantine, where an
                // administrator sees it) lets the device drop its copy; one deferred (the daily
                // quota, a dependency not here yet) is answered `Deferred`, so the device keeps
                // its work and offers it again at its next sync.
                for (doc, admission) in &taken {
                    if admission.deferred > 0 {
                        self.refuse(store, doc, admission, out)?;
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
            }
            Message::Inventory(theirs) => {
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
            }
            Message::Doc { doc, payload } => {
                if !self.allows(&doc) {
                    if !self.held.contains(&doc) {
                        self.refuse_out_of_scope(&doc, out)?;
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
                let message = crate::store::from_peer(&doc, || {
                    AmMessage::decode(&payload).map_err(|e| format!("同步消息无效：{e}"))
                })?;
                self.caught_up = false;
                self.peer_idle = None;
                self.settled.remove(&doc);
                let mut state = self.state_for(store, &doc)?;
                let before = store.heads(&doc)?;
                let peer = self.peer.clone();
                let sender = self.sender.clone();
                let quota = self.quota.clone();
                let admission = store.write(|b| {
                    b.set_source(&peer);
                    b.set_sender(sender);
                    if let Some((m, q)) = quota {
                        b.set_daily_quota(m, q);
                    }
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
            }
            Message::Idle {
                digest,
                seen,
                later,
            } => {
                self.peer_idle = Some((digest, seen));
                self.peer_later = later.into_iter().filter(|d| self.allows(d)).collect();
                self.maybe_idle(store, out)?;
            }
            Message::Error(text) => {
                return Err(Error::NotPermitted(format!("对方结束了同步：{text}")));
            }
            Message::Refused {
                doc,
                why,
                count,
                reason,
            } => {
                match why {
                    Why::Refused => store.record_refusal(&self.peer, &doc, count, &reason)?,
                    // Only a relay this side trusts (its hub) says what it may keep.
                    Why::OutOfScope if self.sender == Sender::Relay => {
                        store.mark_out_of_scope(&doc)?;
                    }
                    _ => {}
                }
                if why == Why::Deferred {
                    self.deferred_there.insert(doc.clone());
                }
                self.hold(store, &doc, why != Why::Deferred)?;
                self.caught_up = false;
                self.maybe_idle(store, out)?;
            }
        }
        Ok(())
    }

    /// Both sides hold `agreed` (their digests agree over these documents): records them as
    /// shared where the saved state says otherwise.
    fn mark_agreed(&mut self, store: &mut Store, agreed: Vec<(DocId, String)>) -> Result<()> {
        let shared = store.shared_with(&self.peer)?;
        let differing = agreed
            .into_iter()
            .filter(|(d, h)| shared.get(d) != Some(h))
            .map(|(d, h)| (d, stored_heads(&h)))
            .collect();
        self.mark_shared(store, differing)
    }

    /// Records that both sides have these heads (learned from a Hello, not from a sync).
    fn mark_shared(&mut self, store: &mut Store, docs: Vec<DocHeads>) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        self.note_shared(&docs);
        let peer = self.peer.clone();
        store.write(|b| {
            for (doc, heads) in &docs {
                let state = State {
                    shared_heads: heads.clone(),
                    ..State::new()
                };
                b.save_sync_state(&peer, doc, &state);
            }
            Ok(())
        })
    }

    /// Announces documents that moved here while the session is open (live mode, or another
    /// connection writing them): one in the middle of an automerge exchange goes on with it;
    /// the others are sent as deltas from what the peer is known to hold.
    fn announce(
        &mut self,
        store: &mut Store,
        docs: &[DocId],
        out: &mut Vec<Message>,
    ) -> Result<()> {
        let (active, rest): (Vec<&DocId>, Vec<&DocId>) = docs
            .iter()
            .partition(|d| self.docs.contains_key(*d) && !self.settled.contains(*d));
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
    fn leave_automerge(&mut self, doc: &DocId) {
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

    /// A document still in the middle of an automerge exchange saves its in-memory state with
    /// every message it receives: that state must know the heads recorded as shared too, or a
    /// late message would write older shared heads over these (the document then shows as not
    /// delivered although the peer has it).
    fn note_shared(&mut self, docs: &[DocHeads]) {
        for (doc, heads) in docs {
            if let Some(state) = self.docs.get_mut(doc) {
                state.shared_heads = heads.clone();
            }
        }
    }

    /// For each candidate document, sends the changes the peer lacks when this side knows what
    /// the peer has (the heads shared at the end of the last exchange, and what crossed in this
    /// session: [`Session::peer_has`], all known here), all in one compressed `Changes` frame;
    /// the others go through automerge's sync protocol.
    fn send_deltas(
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
                    if !base.is_empty()
                        && base.iter().all(|h| am.get_change_by_hash(h).is_some()) =>
                {
                    // Not recorded as shared yet: the frame may never arrive. The peer records
                    // it on receipt, this side once the exchange ends in agreement.
                    let heads = am.get_heads();
                    if !heads.iter().all(|h| base.contains(h)) {
                        deltas.push((doc.clone(), am.save_after(&base)));
                        self.later.remove(doc);
                        self.sent_deltas.insert(doc.clone());
                        self.delivering.insert(doc.clone());
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

    fn send_inventory(&mut self, store: &Store, out: &mut Vec<Message>) -> Result<()> {
        self.sent_inventory = true;
        let all = self
            .scoped_heads(store)?
            .into_iter()
            .map(|(d, h)| (d, stored_heads(&h)))
            .collect();
        out.push(Message::Inventory(all));
        Ok(())
    }

    fn state_for(&mut self, store: &Store, doc: &DocId) -> Result<State> {
        if let Some(s) = self.docs.remove(doc) {
            return Ok(s);
        }
        let saved = store.sync_state(&self.peer, doc)?;
        Ok(saved
            .and_then(|bytes| State::decode(&bytes).ok())
            .unwrap_or_default())
    }

    /// Starts exchanging `doc` again after it changed here.
    fn restart_doc(
        &mut self,
        store: &mut Store,
        doc: &DocId,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        self.caught_up = false;
        self.settled.remove(doc);
        self.step_doc(store, doc, out)
    }

    /// Documents in scope whose heads differ from those shared with the peer and that are not
    /// in the middle of an exchange.
    fn moved_docs(&self, store: &Store) -> Result<Vec<DocId>> {
        let shared = store.shared_with(&self.peer)?;
        Ok(self
            .scoped_heads(store)?
            .into_iter()
            .filter(|(d, h)| shared.get(d) != Some(h))
            .filter(|(d, _)| !self.docs.contains_key(d) || self.settled.contains(d))
            .map(|(d, _)| d)
            .collect())
    }

    /// Generates the next automerge sync message for `doc`, if there is one.
    fn step_doc(&mut self, store: &mut Store, doc: &DocId, out: &mut Vec<Message>) -> Result<()> {
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

    /// After handling a frame: if nothing is in flight from this side, say so once; when the
    /// peer has said so too, the session is caught up.
    fn maybe_idle(&mut self, store: &mut Store, out: &mut Vec<Message>) -> Result<()> {
        if out.iter().any(|m| matches!(m, Message::Doc { .. })) {
            return Ok(());
        }
        // Nothing was produced by this frame: check every active document once more (a change
        // may have arrived for one while another was being answered).
        let active: Vec<DocId> = self
            .docs
            .keys()
            .filter(|d| !self.settled.contains(*d))
            .cloned()
            .collect();
        for doc in active {
            self.step_doc(store, &doc, out)?;
        }
        if out.iter().any(|m| matches!(m, Message::Doc { .. })) {
            return Ok(());
        }
        let left_out = self.left_out(store, out)?;
        if out.iter().any(|m| matches!(m, Message::Doc { .. })) {
            return Ok(());
        }
        let covered: Vec<(DocId, String)> = self
            .scoped_heads(store)?
            .into_iter()
            .filter(|(d, _)| !left_out.contains(d))
            .collect();
        let digest = digest_of(&covered);
        if self.sent_idle != Some((digest, self.state_received)) {
            self.sent_idle = Some((digest, self.state_received));
            out.push(Message::Idle {
                digest,
                seen: self.state_received,
                later: left_out.iter().cloned().collect(),
            });
            self.keep_snapshot(digest, &covered);
        }
        // The peer cannot have seen the state frames this event is sending (a `Changes` delta,
        // a `Refused`): its last Idle says nothing about them.
        let sending = out
            .iter()
            .filter(|m| !matches!(m, Message::Idle { .. }))
            .count() as u64;
        if let Some((theirs, seen)) = self.peer_idle
            && seen == self.state_sent + sending
        {
            let agreed = if theirs == digest {
                Some(covered)
            } else {
                self.snapshot(theirs)
            };
            if let Some(agreed) = agreed {
                if !self.caught_up {
                    self.mark_agreed(store, agreed)?;
                    self.mark_left_out(store, &left_out)?;
                }
                self.caught_up = true;
            } else if self.one_shot_peer && self.peer_later != self.later {
                // The peer had not heard yet which documents this side leaves for later: its
                // digest covered them. Its answer to this side's last Idle will not.
            } else if !self.sent_inventory {
                // The peer has everything this side sent, yet the two differ.
                self.send_inventory(store, out)?;
                self.sent_idle = None;
            }
        }
        Ok(())
    }
}
