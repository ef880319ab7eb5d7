//! One sync session with one peer, as a state machine with no IO.
//!
//! The driver (a QUIC stream, a test harness) feeds [`Event`]s in and sends the frames of each
//! [`Output`] to the peer; the session reads and writes the [`Store`] it is handed.
//!
//! 1. [`Event::Start`]: send `Hello { digest, changed }`. `digest` covers the heads of every
//!    document in scope; `changed` lists only documents whose heads moved since the last
//!    exchange with this peer (from the persisted sync state), so a reconnect with nothing new
//!    costs one small frame each way whatever the number of documents.
//! 2. On the peer's `Hello`: equal digests mean nothing to do (caught up after one round trip).
//!    Otherwise the documents either side changed are synced with automerge's sync protocol,
//!    starting from the persisted shared heads. If neither side changed anything yet the
//!    digests differ (state lost, a restored phone), both send an `Inventory` of every document
//!    in scope and sync the ones that differ.
//! 3. `Doc` frames carry automerge sync messages. Each received message is applied and its sync
//!    state saved in one durable store write, so a cut transfer resumes where it stopped and a
//!    message received twice has no effect.
//! 4. A side with nothing more to send says `Idle`; when both have, the session is caught up.
//!    It stays open: [`Event::LocalChange`] (live mode) restarts the exchange for one document.
//!
//! Only documents in the session's [`Scope`] are offered or accepted; anything else from the
//! peer ends the session with an error.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::sync::{Message as AmMessage, State, SyncDoc};
use automerge::{Automerge, ChangeHash};
use sha2::{Digest, Sha256};

use super::wire::{DocHeads, Message};
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::store::Store;

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
}

/// What the session wants done.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    /// Frames to send to the peer, in order.
    pub frames: Vec<Vec<u8>>,
    /// Both sides have nothing more to send.
    pub caught_up: bool,
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
    my_changed: Vec<DocHeads>,
    /// Documents being synced, with automerge's per-peer state.
    docs: BTreeMap<DocId, State>,
    settled: BTreeSet<DocId>,
    changed_here: BTreeSet<DocId>,
    sent_inventory: bool,
    sent_idle: bool,
    peer_idle: bool,
    caught_up: bool,
    progress: Progress,
}

fn parse_heads(text: &str) -> Vec<ChangeHash> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect()
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
            changed_here: BTreeSet::new(),
            sent_inventory: false,
            sent_idle: false,
            peer_idle: false,
            caught_up: false,
            progress: Progress::default(),
        }
    }

    /// The peer's id.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Counters so far.
    pub fn progress(&self) -> Progress {
        Progress {
            docs_syncing: self.docs.len(),
            docs_settled: self.settled.len(),
            docs_changed: self.changed_here.len(),
            ..self.progress
        }
    }

    /// Whether both sides had nothing more to send at the last exchange.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// Feeds one event; returns the frames to send.
    pub fn handle(&mut self, store: &mut Store, event: Event<'_>) -> Result<Output> {
        let mut out = Vec::new();
        match event {
            Event::Start => self.start(store, &mut out)?,
            Event::Frame(bytes) => {
                self.progress.frames_received += 1;
                self.progress.bytes_received += bytes.len() as u64;
                let msg = Message::decode(bytes)?;
                self.on_message(store, msg, &mut out)?;
            }
            Event::LocalChange(doc) => {
                if self.phase != Phase::New && self.scope.allows(doc) {
                    self.caught_up = false;
                    self.settled.remove(doc);
                    self.step_doc(store, doc, &mut out)?;
                    self.maybe_idle(store, &mut out)?;
                }
            }
        }
        let frames: Vec<Vec<u8>> = out.iter().map(Message::encode).collect();
        self.progress.frames_sent += frames.len() as u64;
        self.progress.bytes_sent += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        Ok(Output {
            frames,
            caught_up: self.caught_up,
        })
    }

    fn scoped_heads(&self, store: &Store) -> Result<Vec<(DocId, String)>> {
        Ok(store
            .all_heads()?
            .into_iter()
            .filter(|(d, _)| self.scope.allows(d))
            .collect())
    }

    fn start(&mut self, store: &mut Store, out: &mut Vec<Message>) -> Result<()> {
        let heads = self.scoped_heads(store)?;
        let states = store.sync_states(&self.peer)?;
        self.digest = digest_of(&heads);
        self.my_changed = heads
            .iter()
            .filter(|(d, h)| states.get(d).is_none_or(|(shared, _)| shared != h))
            .map(|(d, h)| (d.clone(), parse_heads(h)))
            .collect();
        self.phase = Phase::AwaitHello;
        out.push(Message::Hello {
            digest: self.digest,
            changed: self.my_changed.clone(),
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
                if digest == self.digest {
                    // Everything in scope is shared: remember it, so the next Hello lists nothing.
                    let shared = std::mem::take(&mut self.my_changed);
                    self.mark_shared(store, shared)?;
                    self.caught_up = true;
                    return Ok(());
                }
                let mine: HashMap<DocId, Vec<ChangeHash>> = self
                    .scoped_heads(store)?
                    .into_iter()
                    .map(|(d, h)| (d, parse_heads(&h)))
                    .collect();
                let mut candidates = BTreeSet::new();
                let mut already_shared = Vec::new();
                for (doc, heads) in changed.iter().chain(self.my_changed.iter()) {
                    if !self.scope.allows(doc) {
                        continue;
                    }
                    let mut theirs = heads.clone();
                    theirs.sort();
                    let mut ours = mine.get(doc).cloned().unwrap_or_default();
                    ours.sort();
                    if theirs != ours || !changed.iter().any(|(d, _)| d == doc) {
                        candidates.insert(doc.clone());
                    } else if !ours.is_empty() {
                        already_shared.push((doc.clone(), ours));
                    }
                }
                already_shared.retain(|(d, _)| !candidates.contains(d));
                self.mark_shared(store, already_shared)?;
                if candidates.is_empty() {
                    self.send_inventory(store, out)?;
                } else {
                    for doc in candidates {
                        self.step_doc(store, &doc, out)?;
                    }
                }
                self.maybe_idle(store, out)?;
            }
            Message::Inventory(theirs) => {
                self.phase = Phase::Syncing;
                let mine: HashMap<DocId, Vec<ChangeHash>> = self
                    .scoped_heads(store)?
                    .into_iter()
                    .map(|(d, h)| (d, parse_heads(&h)))
                    .collect();
                let theirs: HashMap<DocId, Vec<ChangeHash>> = theirs
                    .into_iter()
                    .filter(|(d, _)| self.scope.allows(d))
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
                if !self.scope.allows(&doc) {
                    return Err(Error::NotPermitted(format!(
                        "对方发来了无权同步的档案 {doc}"
                    )));
                }
                if self.phase == Phase::AwaitHello {
                    self.phase = Phase::Syncing;
                }
                let message = AmMessage::decode(&payload)
                    .map_err(|e| Error::Corrupt(format!("同步消息无效：{e}")))?;
                self.caught_up = false;
                self.peer_idle = false;
                self.settled.remove(&doc);
                let mut state = self.state_for(store, &doc)?;
                let before = store.heads(&doc)?;
                let peer = self.peer.clone();
                store.write(|b| b.sync_receive(&peer, &doc, &mut state, message))?;
                if store.heads(&doc)? != before {
                    self.changed_here.insert(doc.clone());
                }
                self.docs.insert(doc.clone(), state);
                self.step_doc(store, &doc, out)?;
                self.maybe_idle(store, out)?;
            }
            Message::Idle => {
                self.peer_idle = true;
                self.maybe_idle(store, out)?;
            }
            Message::Error(text) => {
                return Err(Error::NotPermitted(format!("对方结束了同步：{text}")));
            }
        }
        Ok(())
    }

    /// Records that both sides have these heads (learned from a Hello, not from a sync).
    fn mark_shared(&mut self, store: &mut Store, docs: Vec<DocHeads>) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
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

    fn send_inventory(&mut self, store: &Store, out: &mut Vec<Message>) -> Result<()> {
        self.sent_inventory = true;
        let all = self
            .scoped_heads(store)?
            .into_iter()
            .map(|(d, h)| (d, parse_heads(&h)))
            .collect();
        out.push(Message::Inventory(all));
        Ok(())
    }

    fn state_for(&mut self, store: &Store, doc: &DocId) -> Result<State> {
        if let Some(s) = self.docs.remove(doc) {
            return Ok(s);
        }
        let saved = store.sync_states(&self.peer)?.remove(doc);
        Ok(saved
            .and_then(|(_, bytes)| State::decode(&bytes).ok())
            .unwrap_or_default())
    }

    /// Generates the next automerge sync message for `doc`, if there is one.
    fn step_doc(&mut self, store: &mut Store, doc: &DocId, out: &mut Vec<Message>) -> Result<()> {
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
                self.sent_idle = false;
                self.caught_up = false;
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
        if !self.sent_idle {
            self.sent_idle = true;
            out.push(Message::Idle);
        }
        if self.peer_idle {
            self.caught_up = true;
        }
        Ok(())
    }
}
