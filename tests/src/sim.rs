//! A deterministic multi-peer sync simulation.
//!
//! Peers are real devices (real SQLite stores); links carry the real `shouwang/sync/1` frames
//! between two [`Session`]s, one at each end, through an in-memory queue. Everything that
//! happens is decided by a seeded RNG, so a failing schedule replays exactly.
//!
//! - [`Net::connect`] opens a link (both sessions start and send their Hello);
//!   [`Net::connect_one_shot`] opens one as a phone's sync with the hub: the hub's end treats
//!   the phone as syncing once ([`Session::one_shot_peer`]) and polls after every frame until
//!   caught up, as the hub does; the phone's end stops once caught up and drops what arrives
//!   after, as a phone that has finished its half of the stream does;
//!   [`Net::disconnect`] cuts it, losing whatever was in flight; [`Net::partition`] cuts every
//!   link between two groups.
//! - [`Faults`] drop, duplicate, reorder and corrupt frames while they are set.
//! - [`Net::run_until_quiescent`] delivers frames until none is in flight. A session that fails
//!   (a corrupted frame, a refused document) closes its link, as the transport would.

use std::collections::{BTreeMap, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shouwang_core::doc::DocId;
use shouwang_core::sync::{Event, Scope, Session};

use crate::fixtures::Device;

/// Fault probabilities applied to each frame in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub corrupt: f64,
}

#[derive(Debug)]
struct Link {
    sessions: [Session; 2],
    /// Frames in flight: (receiving end 0 or 1, bytes).
    queue: VecDeque<(usize, Vec<u8>)>,
    caught_up: [bool; 2],
    /// For a phone's one-shot sync, the hub's end: it polls after every frame while not caught
    /// up, and the other end stops once caught up.
    hub_end: Option<usize>,
    /// Ends that have stopped (the phone's end of a one-shot sync, once caught up).
    finished: [bool; 2],
}

/// What happened on the network, for assertions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub frames: u64,
    pub bytes: u64,
    pub dropped: u64,
    pub session_errors: u64,
}

/// The simulated network.
#[derive(Debug)]
pub struct Net {
    pub peers: Vec<Device>,
    links: BTreeMap<(usize, usize), Link>,
    rng: StdRng,
    pub faults: Faults,
    pub stats: Stats,
    scopes: BTreeMap<(usize, usize), Scope>,
}

fn key(a: usize, b: usize) -> (usize, usize) {
    if a < b { (a, b) } else { (b, a) }
}

impl Net {
    /// A network of `peers` with a seeded schedule.
    pub fn new(peers: Vec<Device>, seed: u64) -> Net {
        Net {
            peers,
            links: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed),
            faults: Faults::default(),
            stats: Stats::default(),
            scopes: BTreeMap::new(),
        }
    }

    /// Limits what `from` offers to and accepts from `to` (default: everything).
    pub fn set_scope(&mut self, from: usize, to: usize, scope: Scope) {
        self.scopes.insert((from, to), scope);
    }

    fn peer_id(&self, i: usize) -> String {
        self.peers[i].archive_ref().device().to_string()
    }

    /// Opens a link between `a` and `b`; both send their opening frame.
    pub fn connect(&mut self, a: usize, b: usize) {
        self.open(a, b, None);
    }

    /// Opens a link for a phone's one-shot sync with `hub` (module docs).
    pub fn connect_one_shot(&mut self, hub: usize, phone: usize) {
        self.open(hub, phone, Some(hub));
    }

    fn open(&mut self, a: usize, b: usize, hub: Option<usize>) {
        let (x, y) = key(a, b);
        if x == y || self.links.contains_key(&(x, y)) {
            return;
        }
        let scope =
            |from: usize, to: usize| self.scopes.get(&(from, to)).cloned().unwrap_or(Scope::All);
        let session = |me: usize, peer: usize| {
            let s = Session::new(self.peer_id(peer), scope(me, peer));
            if hub == Some(me) {
                s.one_shot_peer()
            } else {
                s
            }
        };
        let mut link = Link {
            sessions: [session(x, y), session(y, x)],
            queue: VecDeque::new(),
            caught_up: [false; 2],
            hub_end: hub.map(|h| if h == x { 0 } else { 1 }),
            finished: [false; 2],
        };
        for (end, peer) in [(0usize, x), (1usize, y)] {
            let store = self.peers[peer].archive.store();
            let out = link.sessions[end]
                .handle(store, Event::Start)
                .expect("start");
            for f in out.frames {
                link.queue.push_back((1 - end, f));
            }
        }
        self.links.insert((x, y), link);
    }

    /// Cuts the link; frames in flight are lost.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        self.links.remove(&key(a, b));
    }

    /// Cuts every link between the two groups.
    pub fn partition(&mut self, left: &[usize], right: &[usize]) {
        for &a in left {
            for &b in right {
                self.disconnect(a, b);
            }
        }
    }

    /// Whether `a` and `b` are linked.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.links.contains_key(&key(a, b))
    }

    /// Whether both ends of the link reported caught-up at their last frame.
    pub fn caught_up(&self, a: usize, b: usize) -> bool {
        self.links
            .get(&key(a, b))
            .is_some_and(|l| l.caught_up[0] && l.caught_up[1])
    }

    /// Tells every open session of `peer` that `doc` changed locally (live mode).
    pub fn local_change(&mut self, peer: usize, doc: &DocId) {
        self.notify(peer, Event::LocalChange(doc));
    }

    /// Tells every open session of `peer` to look for documents another connection changed.
    pub fn poll(&mut self, peer: usize) {
        self.notify(peer, Event::Poll);
    }

    fn notify(&mut self, peer: usize, event: Event<'_>) {
        let keys: Vec<(usize, usize)> = self
            .links
            .keys()
            .copied()
            .filter(|(x, y)| *x == peer || *y == peer)
            .collect();
        for k in keys {
            let end = if k.0 == peer { 0 } else { 1 };
            let store = self.peers[peer].archive.store();
            let Some(link) = self.links.get_mut(&k) else {
                continue;
            };
            if link.finished[end] {
                continue;
            }
            let result = link.sessions[end].handle(store, event);
            self.deliver(k, end, result);
        }
    }

    /// Delivers one frame somewhere. Returns false when nothing is in flight.
    pub fn step(&mut self) -> bool {
        let busy: Vec<(usize, usize)> = self
            .links
            .iter()
            .filter(|(_, l)| !l.queue.is_empty())
            .map(|(k, _)| *k)
            .collect();
        if busy.is_empty() {
            return false;
        }
        let k = busy[self.rng.random_range(0..busy.len())];
        let faults = self.faults;
        let Some(link) = self.links.get_mut(&k) else {
            return true;
        };
        let idx = if link.queue.len() > 1 && self.rng.random_bool(faults.reorder) {
            self.rng.random_range(0..link.queue.len())
        } else {
            0
        };
        let Some((end, mut frame)) = link.queue.remove(idx) else {
            return true;
        };
        if link.finished[end] {
            return true; // the phone's half is closed: what comes now is read and dropped
        }
        if self.rng.random_bool(faults.drop) {
            self.stats.dropped += 1;
            return true;
        }
        if self.rng.random_bool(faults.duplicate) {
            link.queue.push_back((end, frame.clone()));
        }
        if !frame.is_empty() && self.rng.random_bool(faults.corrupt) {
            let i = self.rng.random_range(0..frame.len());
            frame[i] ^= 1 << self.rng.random_range(0..8);
        }
        self.stats.frames += 1;
        self.stats.bytes += frame.len() as u64;
        let peer = if end == 0 { k.0 } else { k.1 };
        let store = self.peers[peer].archive.store();
        let result = link.sessions[end].handle(store, Event::Frame(&frame));
        let polls = link.hub_end == Some(end) && result.as_ref().is_ok_and(|o| !o.caught_up);
        self.deliver(k, end, result);
        if polls && let Some(link) = self.links.get_mut(&k) {
            let store = self.peers[peer].archive.store();
            let result = link.sessions[end].handle(store, Event::Poll);
            self.deliver(k, end, result);
        }
        true
    }

    /// Queues what a session answered on the link, or closes the link if the session failed
    /// (as the transport closes a connection).
    fn deliver(
        &mut self,
        k: (usize, usize),
        end: usize,
        result: shouwang_core::Result<shouwang_core::sync::Output>,
    ) {
        match result {
            Ok(out) => {
                if let Some(link) = self.links.get_mut(&k) {
                    link.caught_up[end] = out.caught_up;
                    link.finished[end] |= link.hub_end == Some(1 - end) && out.caught_up;
                    for f in out.frames {
                        link.queue.push_back((1 - end, f));
                    }
                }
            }
            Err(_) => {
                self.stats.session_errors += 1;
                self.links.remove(&k);
            }
        }
    }

    /// Delivers frames until none is in flight, or `max_steps` frames (an endless exchange is a
    /// bug: returns an error).
    pub fn run_until_quiescent(&mut self, max_steps: usize) -> Result<usize, String> {
        for n in 0..max_steps {
            if !self.step() {
                return Ok(n);
            }
        }
        Err(format!("still exchanging after {max_steps} frames"))
    }

    /// Cuts and reopens every given link, then runs until quiescent.
    pub fn reconnect_all(
        &mut self,
        pairs: &[(usize, usize)],
        max_steps: usize,
    ) -> Result<usize, String> {
        for &(a, b) in pairs {
            self.disconnect(a, b);
            self.connect(a, b);
        }
        self.run_until_quiescent(max_steps)
    }

    /// Frames and bytes exchanged on the link so far (both directions).
    pub fn link_traffic(&self, a: usize, b: usize) -> Option<(u64, u64)> {
        self.links.get(&key(a, b)).map(|l| {
            let p0 = l.sessions[0].progress();
            let p1 = l.sessions[1].progress();
            (
                p0.frames_sent + p1.frames_sent,
                p0.bytes_sent + p1.bytes_sent,
            )
        })
    }
}
