//! The accepting node's loop: every incoming QUIC connection, from the first packet to the
//! protocol handler, under a budget of connection states a stranger can make the node hold.
//!
//! Before its TLS handshake ends, nobody can tell a phone from a stranger: both cost the node
//! a QUIC connection state (≈ 60–80 KB in noq) and the handshake's cryptography. After it, the
//! [`super::Admission`] hook closes a stranger's connection at once, but QUIC keeps a closed
//! connection draining for three probe timeouts, and a probe timeout grows with the round trip
//! measured during the handshake, which grows when the node's cores are busy: under a flood of
//! 1,000 connections on two shared cores, a refused connection's state lived 5 s at the median
//! (9.5 s at worst) instead of 0.1 s, and the hub held ≈ 3,000 of them (BENCHMARKS.md §10).
//!
//! So the node holds at most [`HANDSHAKE_BUDGET`] connection states it has not admitted:
//! handshakes in progress, connections refused by the hook while iroh still holds them,
//! connections whose handshake failed or was abandoned by the client (each counted for
//! [`DRAIN_HOLD`]), and strangers let in (the hub, while an invite is open) until their
//! connection has ended, then for [`DRAIN_HOLD`]. A connection attempt beyond it is ignored
//! before any state exists for it (`Incoming::ignore`: no packet is sent back, nothing is
//! kept); the client's QUIC stack sends its first packet again after its probe timeout
//! (≈ 1 s). Connections from devices the node knows (enrolled ones) leave the budget once
//! their handshake is done: the conversation's own limits ([`super::ConnectionLimits`])
//! govern them.
//!
//! A device the node knows must not queue behind a flood of strangers for a place in that
//! budget: under 1,000 strangers its first packet found the budget full again and again, and
//! its connection timed out. So a first packet the node can tell comes from a known device
//! takes a second budget of its own, [`KNOWN_BUDGET`], that strangers never enter:
//! - through a relay, the sender's endpoint id is known before the handshake (the relay
//!   authenticated it, and the school's relay serves only enrolled devices anyway);
//! - directly, by its address: the UDP addresses from which known devices completed a
//!   handshake are remembered ([`KnownAddrs`], for [`KNOWN_ADDR_TTL`]). A phone reconnecting
//!   from the same socket (the app keeps one endpoint while it is open) is recognised.
//!
//! The address is not proof: a stranger can forge a known device's address on its first
//! packet. It then takes a place in the known lane, whose handshake it cannot complete (the
//! answer goes to the real device), so it costs one state for one probe timeout; and the
//! known lane is bounded like the other, so forging costs the hub nothing more than the
//! stranger budget already allows. The identity is proved by the handshake, after which the
//! admission hook decides as it does for everyone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use iroh::endpoint::{ConnectingError, Connection, IncomingAddr, WeakConnectionHandle};
use iroh::protocol::ProtocolHandler;
use iroh::{Endpoint, TransportAddr};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{ALPN, Admission, SyncProtocol, TransportMetrics};

/// Connection states an accepting node holds at once for connections it has not admitted:
/// handshakes in progress (≈ 80 KB of QUIC and TLS state each), connections refused after
/// their handshake while iroh still holds them, and connections whose handshake failed or was
/// abandoned, for [`DRAIN_HOLD`]. At most ≈ 10 MiB.
pub const HANDSHAKE_BUDGET: usize = 128;

/// Handshakes in progress at once from known devices (recognised by their relay-authenticated
/// endpoint id or a remembered address), apart from [`HANDSHAKE_BUDGET`].
pub const KNOWN_BUDGET: usize = 128;

/// How long the address a known device connected from is remembered.
pub const KNOWN_ADDR_TTL: Duration = Duration::from_secs(3600);

/// Addresses remembered at most (≈ 100 KB): more than a school's devices.
const KNOWN_ADDRS: usize = 4096;

/// How long a connection whose handshake failed or was abandoned is counted: QUIC drains for
/// three probe timeouts, and a probe timeout is ≈ 1 s before a round trip has been measured
/// (RFC 9002's initial RTT of 333 ms, noq's default).
pub const DRAIN_HOLD: Duration = Duration::from_secs(3);

/// The budget's bookkeeping, shared by the accept loop and the admission hook.
#[derive(Debug)]
pub(crate) struct HandshakeBudget {
    /// States held at most.
    cap: usize,
    /// Handshakes started and not yet ended (admitted, refused or failed).
    in_flight: AtomicUsize,
    /// Connections that ended unadmitted: refused ones (counted while iroh holds them) and
    /// failed ones (counted for [`DRAIN_HOLD`] from when they ended).
    draining: Mutex<Vec<Draining>>,
}

#[derive(Debug)]
enum Draining {
    Refused(WeakConnectionHandle),
    Failed(Instant),
}

impl Draining {
    fn alive(&self) -> bool {
        match self {
            Draining::Refused(conn) => conn.upgrade().is_some(),
            Draining::Failed(at) => at.elapsed() < DRAIN_HOLD,
        }
    }
}

/// One handshake's place in the budget. Dropped before [`Handshake::ended`] (the task
/// aborted), it counts as failed.
pub(crate) struct Handshake {
    budget: Arc<HandshakeBudget>,
    ended: bool,
}

impl Handshake {
    /// The handshake is over: admitted (its state is the conversation's to bound), refused
    /// (the hook has counted it) or failed.
    fn ended(mut self, failed: bool) {
        self.ended = true;
        self.budget.in_flight.fetch_sub(1, Ordering::Relaxed);
        if failed {
            self.budget.push(Draining::Failed(Instant::now()));
        }
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        if !self.ended {
            self.budget.in_flight.fetch_sub(1, Ordering::Relaxed);
            self.budget.push(Draining::Failed(Instant::now()));
        }
    }
}

impl HandshakeBudget {
    /// A budget of `cap` connection states.
    pub(crate) fn new(cap: usize) -> HandshakeBudget {
        HandshakeBudget {
            cap,
            in_flight: AtomicUsize::new(0),
            draining: Mutex::new(Vec::new()),
        }
    }

    /// A place for one more handshake, if the budget has room.
    fn start(self: &Arc<Self>) -> Option<Handshake> {
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        if in_flight >= self.cap {
            return None;
        }
        let mut draining = self.draining.lock().unwrap_or_else(PoisonError::into_inner);
        if in_flight + draining.len() >= self.cap {
            // Forget the connections whose state is gone (at most the budget to look at).
            draining.retain(Draining::alive);
            if in_flight + draining.len() >= self.cap {
                return None;
            }
        }
        drop(draining);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(Handshake {
            budget: self.clone(),
            ended: false,
        })
    }

    /// A connection refused after its handshake, by the admission hook.
    pub(crate) fn refused(&self, conn: WeakConnectionHandle) {
        self.push(Draining::Refused(conn));
    }

    fn push(&self, d: Draining) {
        self.draining
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(d);
    }
}

/// The UDP addresses known devices completed a handshake from, each for [`KNOWN_ADDR_TTL`].
#[derive(Debug, Default)]
pub(crate) struct KnownAddrs {
    seen: Mutex<HashMap<SocketAddr, Instant>>,
}

impl KnownAddrs {
    /// Whether a known device connected from `addr` within [`KNOWN_ADDR_TTL`].
    fn contains(&self, addr: &SocketAddr) -> bool {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.get(addr)
            .is_some_and(|at| at.elapsed() < KNOWN_ADDR_TTL)
    }

    /// Remembers the direct addresses of `conn`, a known device's connection.
    fn remember(&self, conn: &Connection) {
        let addrs: Vec<SocketAddr> = conn
            .paths()
            .iter()
            .filter_map(|path| match path.remote_addr() {
                TransportAddr::Ip(addr) => Some(*addr),
                _ => None,
            })
            .collect();
        if addrs.is_empty() {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        for addr in addrs {
            if seen.len() >= KNOWN_ADDRS && !seen.contains_key(&addr) {
                seen.retain(|_, at| at.elapsed() < KNOWN_ADDR_TTL);
                if seen.len() >= KNOWN_ADDRS {
                    // Still full of live entries: the oldest makes room.
                    if let Some(oldest) = seen.iter().min_by_key(|(_, at)| **at).map(|(a, _)| *a) {
                        seen.remove(&oldest);
                    }
                }
            }
            seen.insert(addr, now);
        }
    }
}

/// The two budgets an incoming connection may take a place in, and how to tell which.
#[derive(Debug)]
pub(crate) struct Lanes {
    /// Everyone the node cannot tell from a stranger before the handshake.
    pub(crate) strangers: Arc<HandshakeBudget>,
    /// First packets from known devices ([`KNOWN_BUDGET`]).
    known: Arc<HandshakeBudget>,
    addrs: KnownAddrs,
}

impl Default for Lanes {
    fn default() -> Lanes {
        Lanes {
            strangers: Arc::new(HandshakeBudget::new(HANDSHAKE_BUDGET)),
            known: Arc::new(HandshakeBudget::new(KNOWN_BUDGET)),
            addrs: KnownAddrs::default(),
        }
    }
}

impl Lanes {
    /// The budget whose place a first packet from `from` takes.
    fn lane(
        &self,
        from: &IncomingAddr,
        admission: Option<&dyn Admission>,
        metrics: &TransportMetrics,
    ) -> &Arc<HandshakeBudget> {
        let known = match from {
            IncomingAddr::Relay { endpoint_id, .. } => {
                admission.is_some_and(|a| a.knows(endpoint_id))
            }
            IncomingAddr::Ip(addr) => self.addrs.contains(addr),
            _ => false,
        };
        if known {
            TransportMetrics::add(&metrics.handshakes_known, 1);
            &self.known
        } else {
            &self.strangers
        }
    }
}

/// Runs until `cancel`: accepts `shouwang/sync/1` connections on `endpoint` and hands each to
/// `protocol`. Then shuts the protocol down (conversations end after their current frame) and
/// closes the endpoint.
pub(crate) async fn accept_loop(
    endpoint: Endpoint,
    protocol: SyncProtocol,
    lanes: Arc<Lanes>,
    admission: Option<Arc<dyn Admission>>,
    metrics: Arc<TransportMetrics>,
    cancel: CancellationToken,
) {
    let mut tasks = JoinSet::new();
    // Conversations are cut only after the protocol's own shutdown had its grace period.
    let handlers = CancellationToken::new();
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let lane = lanes.lane(&incoming.remote_addr(), admission.as_deref(), &metrics);
                let Some(handshake) = lane.start() else {
                    TransportMetrics::add(&metrics.handshakes_ignored, 1);
                    incoming.ignore();
                    continue;
                };
                let protocol = protocol.clone();
                let handlers = handlers.clone();
                let admission = admission.clone();
                let lanes = lanes.clone();
                tasks.spawn(async move {
                    let connected = match incoming.accept() {
                        Ok(accepting) => accepting.await,
                        Err(e) => {
                            debug!("incoming connection failed: {e}");
                            return;
                        }
                    };
                    // Past the handshake: admitted, refused by the admission hook (which
                    // counted it), or failed.
                    let conn = match connected {
                        Ok(conn) => conn,
                        Err(e) => {
                            let refused = matches!(e, ConnectingError::LocallyRejected { .. });
                            handshake.ended(!refused);
                            debug!("handshake ended: {e}");
                            return;
                        }
                    };
                    // A device the node knows leaves the budget now: its connection is the
                    // conversation's limits' to bound. A stranger let in (the hub, while an
                    // invite is open) keeps its place until its connection has ended and
                    // drained, like a refused one.
                    let known = admission.as_ref().is_none_or(|a| a.knows(&conn.remote_id()));
                    if known {
                        handshake.ended(false);
                        if admission.is_some() {
                            lanes.addrs.remember(&conn);
                        }
                    }
                    if conn.alpn() == ALPN {
                        let _ = handlers.run_until_cancelled(protocol.accept(conn)).await;
                    }
                });
            }
        }
    }
    protocol.shutdown().await;
    handlers.cancel();
    endpoint.close().await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
}
