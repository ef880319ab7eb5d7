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
//!    here, or for a private or staff part the care file's) is answered `Refused { Deferred }`
//!    and both sides leave it out of the exchange, so the rest can catch up. As soon as what
//!    it rests on (the school document; a part's care file) gains changes in the same
//!    session, the side that deferred starts the document over, and the peer takes it up
//!    again; before, it waited for the next session, and a session could end caught up with
//!    that document still apart (found by the convergence property; `sync_stories` stories 12
//!    and 12b tell the cases).
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
//! The parts: `hello.rs` (points 1 and 2), `deltas.rs` (the `Changes` path, points 2 and 5),
//! `exchange.rs` (automerge's own sync and the `Inventory` fallback, points 2 to 4),
//! `held.rs` (documents left out, point 6), `one_shot.rs` (point 7); this file holds the
//! state, the event loop, the Idle and what is recorded as shared.
//!
//! Only documents in the session's [`Scope`] are offered or accepted; anything else from the
//! peer is answered `Refused { OutOfScope }` and left out. A side that may hold every document
//! (the hub, [`Session::taking_hand_ins`]) still takes the peer's own changes to such a
//! document from a `Changes` frame, sending nothing of it back: the work a member did before
//! hearing that the document is no longer theirs reaches the school before the device drops it.
//! A device drops a document on `OutOfScope` only from its hub (`Sender::Relay`), never from a
//! phone met directly; and when the hub refused one that went through automerge's sync (no
//! delta: nothing of it shared yet, where no hand-in can be taken), a device whose copy holds
//! its own changes hands it in whole as `Changes` first ([`Session::hand_in`]), which the hub
//! takes once, and keeps the answer to that.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use automerge::ChangeHash;
use automerge::sync::State;
use sha2::{Digest, Sha256};

use super::wire::{Compression, DocHeads, Message};
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::store::{Sender, Store, stored_heads};

mod deltas;
mod exchange;
mod held;
mod hello;
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

/// The most documents a peer may try to exchange outside the scope in one session. An honest
/// peer tries a few (a document that left its scope since its last sync, answered
/// `OutOfScope` once); a modified app naming invented documents would otherwise make the
/// session remember each one, without end.
pub const MAX_OUT_OF_SCOPE: usize = 1024;

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
    /// session as soon as what they rest on gains changes ([`Session::retry_deferred`]).
    deferred_here: BTreeSet<DocId>,
    /// Of the held documents, those the peer answered `Deferred`: taken up again when the peer
    /// starts them over with a `Doc` frame.
    deferred_there: BTreeSet<DocId>,
    /// Taking hand-ins: documents refused out of scope from automerge's sync or an
    /// `Inventory`, where no hand-in can be taken; the device's `Changes` of one is taken
    /// once (`Session::on_changes`).
    refused_unseen: BTreeSet<DocId>,
    /// A device: documents the hub refused out of scope before it could take this side's
    /// work on them, handed in whole as `Changes` in this session ([`Session::hand_in`]).
    handed_in: BTreeSet<DocId>,
    /// A device: documents whose work the hub deferred in this session; a later refusal out
    /// of scope does not make this side drop them.
    hand_in_deferred: BTreeSet<DocId>,
    /// A device: the heads of the first `Changes` this side sent of each document in this
    /// session (a delta, or a whole hand-in). A hub takes that one whether the document is
    /// in the member's scope or handed in from outside it (once a session), so if it answers
    /// `OutOfScope`, that much of this side's work is known to be there; what was written
    /// after may not be, and is kept for the next sync ([`Store::mark_out_of_scope`]).
    first_sent: HashMap<DocId, Vec<ChangeHash>>,
    /// A device: the hub's refusals out of scope in this session, with what each is known to
    /// have taken, recorded once the hub has answered every frame ([`Session::settle_marks`]).
    pending_marks: BTreeMap<DocId, Vec<ChangeHash>>,
    /// Changes this side refused from the peer in this session.
    refused_here: u64,
    /// The bytes of the frame being handled, as received (0 outside one).
    frame_wire_bytes: u64,
    /// Documents the peer tried to exchange outside the scope in this session (bounded by
    /// [`MAX_OUT_OF_SCOPE`]).
    out_of_scope: usize,
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
            refused_unseen: BTreeSet::new(),
            handed_in: BTreeSet::new(),
            hand_in_deferred: BTreeSet::new(),
            first_sent: HashMap::new(),
            pending_marks: BTreeMap::new(),
            refused_here: 0,
            frame_wire_bytes: 0,
            out_of_scope: 0,
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

    /// Feeds one event; returns the frames to send.
    pub fn handle(&mut self, store: &mut Store, event: Event<'_>) -> Result<Output> {
        let mut out = Vec::new();
        let writes = self.writes;
        self.erased = store.erased_children()?;
        let rests_on = self.deferred_rest_on(store)?;
        match event {
            Event::Start => self.start(store, &mut out)?,
            Event::Frame(bytes) => {
                self.progress.frames_received += 1;
                self.progress.bytes_received += bytes.len() as u64;
                let msg = Message::decode(bytes)?;
                if !matches!(msg, Message::Idle { .. }) {
                    self.state_received += 1;
                }
                // What the peer sent for the writes this frame makes: their free share of
                // rows grows with it (`Batch::grant_free_rows_for`), not with what it unpacks to.
                self.frame_wire_bytes = bytes.len() as u64;
                let handled = self.on_message(store, msg, &mut out);
                self.frame_wire_bytes = 0;
                handled?;
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
                    let heads = self.scoped_heads(store)?;
                    let shared = store.shared_with(&self.peer)?;
                    let moved: Vec<DocId> = self
                        .moved(&heads, &shared)
                        .map(|(d, _)| d.clone())
                        .collect();
                    self.announce(store, &moved, &mut out)?;
                    if !moved.is_empty() {
                        self.maybe_idle(store, &mut out)?;
                    }
                }
            }
        }
        // Only what they rested on before this event: a document deferred in it adds its care
        // file to the list without anything having moved (retrying then would restart it at
        // once, and with a deferral that lasts, a daily quota spent, again at every event).
        if held::moved_since(store, &rests_on)? {
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

    fn on_message(
        &mut self,
        store: &mut Store,
        msg: Message,
        out: &mut Vec<Message>,
    ) -> Result<()> {
        match msg {
            Message::Hello { digest, changed } => self.on_hello(store, digest, changed, out)?,
            Message::Changes(docs) => self.on_changes(store, docs, out)?,
            Message::Inventory(theirs) => self.on_inventory(store, theirs, out)?,
            Message::Doc { doc, payload } => self.on_doc(store, doc, payload, out)?,
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
            } => self.on_refused(store, doc, why, count, reason, out)?,
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
            .filter(|d| self.mid_exchange(d))
            .cloned()
            .collect();
        for doc in active {
            self.step_doc(store, &doc, out)?;
        }
        if out.iter().any(|m| matches!(m, Message::Doc { .. })) {
            return Ok(());
        }
        let heads = self.scoped_heads(store)?;
        let left_out = self.left_out(store, &heads, out)?;
        if out.iter().any(|m| matches!(m, Message::Doc { .. })) {
            return Ok(());
        }
        let covered: Vec<(DocId, String)> = heads
            .iter()
            .filter(|(d, _)| !left_out.contains(d))
            .cloned()
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
                    // An earlier Idle may have covered a document left out since: what it
                    // agreed on is exact, and recorded rather than what is known to cross.
                    let left_out: BTreeSet<DocId> = left_out
                        .into_iter()
                        .filter(|d| !agreed.iter().any(|(a, _)| a == d))
                        .collect();
                    self.mark_agreed(store, agreed)?;
                    self.mark_left_out(store, &left_out, &heads)?;
                }
                self.settle_marks(store)?;
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
