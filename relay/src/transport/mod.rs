//! The transport: iroh endpoints speaking `shouwang/sync/1`.
//!
//! One [`Node`] (one iroh endpoint) per device. A connection carries one bidirectional QUIC
//! stream of length-prefixed frames ([`frame`]). What the frames mean is up to a
//! [`Conversation`]: the transport only moves them, so the sync protocol plugs in without
//! touching the network code. Both sides run the same loop ([`driver`]):
//!
//! 1. the side that connects opens the stream and sends its conversation's opening frames (it
//!    must have at least one: QUIC only shows a stream to the peer once data flows); the side
//!    that accepts sends its own opening frames as soon as the stream arrives;
//! 2. every frame received goes to [`Conversation::on_frame`]; the frames of its [`Reply`] are
//!    sent back; [`Conversation::on_wake`] runs when the owner pokes the conversation (live
//!    mode: the app wrote a record; on the hub, another connection brought changes);
//! 3. a reply with `done` finishes this side's half of the stream; the acceptor finishes its
//!    own only after reading the dialer's end. When both halves are finished and the peer has
//!    received everything, the connection is closed with [`close::DONE`]. The dialer reports
//!    success as soon as its conversation is done and its half finished, without waiting for
//!    the acceptor's end (on EDGE that last round trip is a second of the teacher's wait):
//!    the connection stays open to deliver what it sent, a task of its node reads and drops
//!    the rest of the acceptor's half and then closes (or keeps the connection warm, point
//!    6), and [`Node::shutdown`] waits briefly for those tasks;
//! 4. an error from the conversation sends its [`Conversation::error_frame`] (if any) and closes
//!    with [`close::REFUSED`] and the Chinese message as the reason; an oversized frame closes
//!    with [`close::TOO_LARGE`]; a quiet connection closes with [`close::IDLE`], so phones
//!    can sleep (point 5).
//! 5. *Quiet* means: no frame in either direction for [`ConversationOptions::idle_timeout`],
//!    and, once the peer is authenticated (or this side has said everything), no stream data
//!    moving either way either (QUIC STREAM frames sent or received; keep-alive pings and
//!    acknowledgements do not count), and more than the time what this side sent since the
//!    peer's last frame takes on the slowest link served (1 KB/s). On 2G a class's year of
//!    records is one long transfer: the receiver sees it arriving, the sender knows how much
//!    it put on the way. An unauthenticated peer gets no such allowance: it has
//!    [`frame::HANDSHAKE_TIMEOUT`] for its small handshake frames, however slowly it trickles.
//! 6. *Warm connections* ([`ConversationOptions::warm`]). A connection may carry several
//!    conversations, one after another, each on its own stream: a phone connects ahead (when
//!    the app opens, or the network returns) with [`Node::warm_up`], or keeps the connection
//!    of its last sync, and its next sync costs the protocol's round trips only, not QUIC's
//!    handshake (on EDGE a lost handshake datagram alone costs seconds of probe timeouts).
//!    When both halves of a stream are finished, the acceptor waits up to `warm` for the
//!    next stream and closes with [`close::IDLE`] if none comes; the dialer keeps the
//!    connection for `warm` and closes it with [`close::DONE`] when the node shuts down. Each
//!    conversation starts from nothing: the hub checks the device's certificate again, and a
//!    stranger's connection still gets [`frame::HANDSHAKE_TIMEOUT`] for its first stream. A
//!    dialer with `warm` zero closes after its conversation, as before, so hubs and devices
//!    of either kind talk to each other.
//! 7. *Priming a connection made ahead.* After its handshake, QUIC's loss recovery has one or
//!    two round-trip samples, and a lost datagram at the end of a flight waits a probe
//!    timeout of about three round trips (RFC 9002 §6.2.1; 2.6 s on EDGE). Once
//!    [`Node::warm_up`] has its handshake confirmed it sends [`PRIMING_DATAGRAMS`] one-byte
//!    QUIC datagrams, spaced beyond the peer's ack delay, and waits one round trip; the hub
//!    sends each back to a known device (never to a stranger). The acknowledgements of both
//!    give each end's recovery more samples, so the probe timeout is nearer 1.6 round trips
//!    when the sync starts. No node reads datagrams otherwise, and none buffers more than
//!    [`DATAGRAM_BUFFER`] bytes of them (QUIC's default, 1.25 MB a connection, would let
//!    a stranger's connections park memory on the hub).
//! 8. *Dialing again when the handshake is not confirmed.* `Endpoint::connect` returns once
//!    the dialer has sent its `Finished`, and the dialer sends its opening at once; the
//!    acceptor confirms the handshake (HANDSHAKE_DONE) when the `Finished` arrives, one round
//!    trip later. If the `Finished` is lost, QUIC resends it only after a probe timeout of
//!    about three round trips (RFC 9002 §6.2.1: one sample, `rttvar` half of it; 2.9 s on
//!    EDGE), the acceptor drops the opening meanwhile, and that is resent later still: the
//!    worst EDGE sync of the benches, 2.4× its limit. So a dialer on a connection it just made
//!    waits one and a half round trips (and 150 ms, at least 1 s) for the confirmation or a
//!    frame; without either, it closes the connection with [`close::REDIAL`] and runs the
//!    conversation again, the same opening first, on a new connection, once. Its
//!    conversation has then sent its opening and heard nothing, which is what it believes,
//!    and an acceptor that did read the opening saw a conversation cut, which the sync
//!    protocol resumes from (it counts the conversation `redialed`, not failed).
//!    [`Node::warm_up`] does the same before it primes. The round trip is path 0's, the
//!    handshake's own sample; without one the dialer waits for QUIC. On a fast link QUIC's own
//!    probe timeout comes well within the 1 s, so a dialer dials again after a loss on a slow
//!    link, or when the acceptor takes longer than that to answer (an overloaded hub); each
//!    attempt has its own [`ConversationOptions::connect_timeout`]. Wakes wait until the
//!    handshake is confirmed, so nothing but the opening is ever replayed
//!    (`tests/tests/lost_handshake.rs`; [`Node::redials`] counts them).
//! 9. *Tail probes.* When the last datagram of a flight is lost, QUIC finds out only from
//!    an acknowledgement of something sent later (RFC 9002 §6.1.2: 9/8 of a round trip after
//!    it was sent) or when its probe timeout fires, and every ack-eliciting packet sent meanwhile
//!    restarts that timeout: on EDGE a phone's opening lost at the end of its flight was resent
//!    2.2 s later. So a dialer on a link with a round trip of 200 ms or more, a quarter of a
//!    round trip after it writes frames, sends one one-byte QUIC datagram if no stream data
//!    came in the meantime. Its acknowledgement comes about a round trip and a quarter after
//!    the flight and shows any datagram of the flight missing then (RFC 8985's tail loss
//!    probe, made from outside QUIC). Not after a flight over 16 KB (still leaving when the
//!    probe is due; its later packets show a loss anyway), and not after the last frames
//!    of a conversation (the dialer returns then). It costs a packet of about 30 bytes each
//!    way per flight on slow links only. Nothing reads it, except that a hub echoes the first
//!    four datagrams of a connection (point 7), so on a connection not primed the first probes
//!    come back too.
//!
//! Conversation callbacks run on tokio's blocking pool: they may read and write the SQLite
//! store without stalling the network.
//!
//! No third-party infrastructure is contacted: the relay map and the peers' addresses come
//! only from configuration or an invite, there is no DNS or pkarr address lookup, and the port
//! mapper (which would probe the LAN gateway) is not compiled in. See [`NodeConfig`].

mod accept;
mod driver;
pub mod frame;
mod listen;
mod node;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use accept::SyncProtocol;
pub use frame::{HANDSHAKE_MAX_FRAME, MAX_FRAME};
pub use iroh::{EndpointAddr, EndpointId, RelayUrl, SecretKey};
pub use listen::{DRAIN_HOLD, HANDSHAKE_BUDGET, KNOWN_ADDR_TTL, KNOWN_BUDGET};
pub use node::{DATAGRAM_BUFFER, Node, NodeConfig, PRIMING_DATAGRAMS};

/// The ALPN of the protocol, versioned.
pub const ALPN: &[u8] = b"shouwang/sync/1";

/// Application close codes of a `shouwang/sync/1` connection.
pub mod close {
    /// Both sides finished.
    pub const DONE: u32 = 0;
    /// Nothing was sent for too long.
    pub const IDLE: u32 = 1;
    /// The peer broke the framing (truncated frame, data after it finished).
    pub const PROTOCOL: u32 = 2;
    /// The conversation refused the peer; the reason is the Chinese message.
    pub const REFUSED: u32 = 3;
    /// The node is shutting down.
    pub const SHUTDOWN: u32 = 4;
    /// A frame was over the size limit.
    pub const TOO_LARGE: u32 = 5;
    /// Too many connections at once (from this endpoint, or in total); try again later.
    pub const BUSY: u32 = 6;
    /// The accepting node does not take connections from this endpoint (see
    /// [`super::Admission`]): closed right after the QUIC handshake.
    pub const STRANGER: u32 = 7;
    /// The dialer gave up on this connection's handshake, which the acceptor had not
    /// confirmed in time, and dials again (point 8 of the module docs).
    pub const REDIAL: u32 = 8;
}

/// What a conversation wants sent after an event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Frames to send, in order.
    pub frames: Vec<Vec<u8>>,
    /// This side has nothing more to send: its half of the stream is finished after `frames`.
    /// A dialer also needs nothing more from the peer: it returns at once (point 3 of the
    /// module docs), and what the peer still sends is dropped.
    pub done: bool,
}

impl Reply {
    /// Nothing to send; not finished.
    pub fn nothing() -> Reply {
        Reply::default()
    }

    /// Frames to send; not finished.
    pub fn send(frames: Vec<Vec<u8>>) -> Reply {
        Reply {
            frames,
            done: false,
        }
    }

    /// Last frames: this side is finished after them.
    pub fn finish(frames: Vec<Vec<u8>>) -> Reply {
        Reply { frames, done: true }
    }
}

/// The protocol spoken over one connection, without IO. Both sides implement it.
///
/// Errors are [`shouwang_core::Error`]s: their Chinese message becomes the close reason the peer
/// sees.
pub trait Conversation: Send + 'static {
    /// Frames to send when the stream opens. The connecting side must send at least one.
    fn opening(&mut self) -> shouwang_core::Result<Reply>;

    /// A frame arrived from the peer.
    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply>;

    /// The owner woke the conversation (see [`ConversationOptions::wake`]).
    fn on_wake(&mut self) -> shouwang_core::Result<Reply> {
        Ok(Reply::nothing())
    }

    /// Whether [`Conversation::on_wake`] has anything to do now. While it is false, wakes
    /// wait, folded into one, and are delivered once it turns true.
    fn listening(&self) -> bool {
        true
    }

    /// The frame to send the peer before closing because of `error`, if the protocol has one.
    fn error_frame(&mut self, error: &shouwang_core::Error) -> Option<Vec<u8>> {
        let _ = error;
        None
    }

    /// The largest frame accepted from the peer now, if less than
    /// [`ConversationOptions::max_frame`] (the hub: [`HANDSHAKE_MAX_FRAME`] until it has
    /// welcomed the device). Asked before each frame's length is read.
    fn max_frame(&self) -> Option<usize> {
        None
    }

    /// How long to wait before reading the peer's next frame, asked after each frame is
    /// answered. The peer is not refused: QUIC's flow control holds what it sends meanwhile,
    /// so a peer sending faster than the conversation allows is slowed to its pace (the hub:
    /// [`crate::pace::FrameRate`]). Wakes, the shutdown and the idle timeout are served
    /// during the wait, which does not count as the peer being quiet.
    fn hold_off(&mut self) -> Option<Duration> {
        None
    }
}

impl Conversation for Box<dyn Conversation> {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        (**self).opening()
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        (**self).on_frame(frame)
    }

    fn on_wake(&mut self) -> shouwang_core::Result<Reply> {
        (**self).on_wake()
    }

    fn listening(&self) -> bool {
        (**self).listening()
    }

    fn error_frame(&mut self, error: &shouwang_core::Error) -> Option<Vec<u8>> {
        (**self).error_frame(error)
    }

    fn max_frame(&self) -> Option<usize> {
        (**self).max_frame()
    }

    fn hold_off(&mut self) -> Option<Duration> {
        (**self).hold_off()
    }
}

/// Which remote endpoints an accepting node keeps, decided right after the QUIC handshake
/// (iroh's `EndpointHooks::after_handshake`), before any stream, conversation or blocking
/// task exists for the connection. A connection it does not admit is closed at once with
/// [`close::STRANGER`] and costs nothing more than its handshake and QUIC's short drain.
///
/// It runs on the network's threads for every connection, strangers included: it must answer
/// from memory (or a stat) and never block on the store.
pub trait Admission: Send + Sync + fmt::Debug + 'static {
    /// Whether a connection from `remote` (authenticated by the handshake) is kept.
    fn admits(&self, remote: &EndpointId) -> bool;

    /// Whether `remote` is one the node knows (the hub: a registered device), as opposed to a
    /// stranger it admits for now (the hub, while an invite is open: a device enrolling).
    /// Strangers' connections count against [`ConnectionLimits::strangers`].
    fn knows(&self, remote: &EndpointId) -> bool {
        let _ = remote;
        true
    }

    /// What a remote it does not admit reads as the close reason (in Chinese, for the user of
    /// that device). By default the school server's words.
    fn refusal(&self) -> &str {
        node::STRANGER_REASON
    }
}

/// Makes the conversation for each accepted connection.
pub trait ConversationFactory: Send + Sync + fmt::Debug + 'static {
    /// A conversation with `remote`, whose endpoint id the QUIC handshake has authenticated.
    /// An error refuses the connection.
    fn start(&self, remote: EndpointId) -> shouwang_core::Result<Box<dyn Conversation>>;
}

/// Settings of the frame loop.
#[derive(Debug, Clone)]
pub struct ConversationOptions {
    /// Close the connection after this long with no frame in either direction.
    pub idle_timeout: Duration,
    /// Largest frame accepted or sent.
    pub max_frame: usize,
    /// Longest wait for the peer to acknowledge the last frames before closing.
    pub close_timeout: Duration,
    /// Longest wait to reach a peer.
    pub connect_timeout: Duration,
    /// Pokes the conversation: [`Conversation::on_wake`] runs after each [`Wake::wake`].
    pub wake: Option<Wake>,
    /// Connections the accepting side holds open at once.
    pub limits: ConnectionLimits,
    /// Whom the accepting side keeps after the QUIC handshake; `None`: everyone (a peer
    /// checks certificates in its conversation instead).
    pub admission: Option<std::sync::Arc<dyn Admission>>,
    /// How long a connection stays open, warm, for another conversation after one ends
    /// (point 6); zero: closed as soon as the conversation ends. The accepting side waits
    /// this long for the next stream (a known remote also this long for its first); the
    /// connecting side reuses the connection within this long (it should be shorter than
    /// the acceptor's).
    pub warm: Duration,
}

impl Default for ConversationOptions {
    fn default() -> Self {
        ConversationOptions {
            idle_timeout: Duration::from_secs(60),
            max_frame: MAX_FRAME,
            close_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(30),
            wake: None,
            limits: ConnectionLimits::default(),
            admission: None,
            warm: Duration::ZERO,
        }
    }
}

/// How many connections an accepting node holds open at once. One more is closed with
/// [`close::BUSY`] as soon as it arrives, before its stream is accepted or a conversation is
/// made for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From everyone.
    pub total: usize,
    /// From one remote endpoint (a phone: one live connection, a sync, a retry).
    pub per_endpoint: usize,
    /// From remotes the [`Admission`] admits without knowing them (the hub, while an invite
    /// is open: devices enrolling, and anyone else who tries), all together.
    pub strangers: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            total: 512,
            per_endpoint: 4,
            strangers: 16,
        }
    }
}

/// Pokes every conversation running with a clone of it: each runs
/// [`Conversation::on_wake`] once after every [`Wake::wake`]. Wakes that come while a
/// conversation is busy are folded into one, never lost. (A phone's app wakes its live sync
/// after each record it writes; the hub wakes every live connection when one of them brought
/// changes.)
#[derive(Debug, Clone)]
pub struct Wake(std::sync::Arc<tokio::sync::watch::Sender<u64>>);

impl Wake {
    /// A wake nobody listens to yet.
    pub fn new() -> Wake {
        Wake(std::sync::Arc::new(tokio::sync::watch::Sender::new(0)))
    }

    /// Wakes every conversation listening now.
    pub fn wake(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A listener that sees the wakes from now on.
    pub(crate) fn listen(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.subscribe()
    }
}

impl Default for Wake {
    fn default() -> Self {
        Wake::new()
    }
}

/// What one conversation moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub remote: EndpointId,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Payload and length prefixes received.
    pub bytes_in: u64,
    /// Payload and length prefixes sent.
    pub bytes_out: u64,
}

/// Counters shared by every connection of a node (for `/metrics`).
#[derive(Debug, Default)]
pub struct TransportMetrics {
    /// Connections accepted or opened, ever.
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Conversations that ended with both sides done.
    pub conversations_done: AtomicU64,
    /// Conversations that ended in an error (refusals, idle, broken links, bad frames).
    pub conversations_failed: AtomicU64,
    /// Of those, refusals by our conversation.
    pub refused: AtomicU64,
    /// Of those, idle timeouts.
    pub idle_closed: AtomicU64,
    /// Of those, oversized frames from the peer.
    pub oversized: AtomicU64,
    /// Conversations the dialer gave up with [`close::REDIAL`] (its handshake was not
    /// confirmed in time, point 8 of the module docs) to run again on a new connection; not
    /// counted as failed.
    pub redialed: AtomicU64,
    /// Connections closed at once because too many were open (see [`ConnectionLimits`]);
    /// not counted in `connections_total`.
    pub busy: AtomicU64,
    /// Connections closed right after the QUIC handshake because [`Admission`] did not admit
    /// the remote; not counted in `connections_total`.
    pub strangers: AtomicU64,
    /// Connection attempts ignored before their handshake because the node already held
    /// [`HANDSHAKE_BUDGET`] handshakes and unadmitted connections draining (the client tries
    /// again).
    pub handshakes_ignored: AtomicU64,
    /// Handshakes started in the known devices' lane ([`KNOWN_BUDGET`]): a first packet
    /// through the relay from an enrolled device, or from an address one connected from.
    pub handshakes_known: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl TransportMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn ended(&self, result: Result<(), &TransportError>) {
        match result {
            Ok(_) => Self::add(&self.conversations_done, 1),
            Err(TransportError::Redialed) => Self::add(&self.redialed, 1),
            Err(e) => {
                Self::add(&self.conversations_failed, 1);
                match e {
                    TransportError::Conversation(_) => Self::add(&self.refused, 1),
                    TransportError::Idle => Self::add(&self.idle_closed, 1),
                    TransportError::FrameTooLarge { .. } => Self::add(&self.oversized, 1),
                    _ => {}
                }
            }
        }
    }
}

/// Why a connection or conversation failed. `Display` is a Chinese sentence.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Our own conversation refused or failed.
    #[error("{0}")]
    Conversation(#[from] shouwang_core::Error),
    /// The peer refused us.
    #[error("对方拒绝了连接：{0}")]
    Refused(String),
    /// A frame over the limit, from either side.
    #[error("消息过大（{len} 字节，上限 {max} 字节）")]
    FrameTooLarge { len: usize, max: usize },
    /// The stream ended in the middle of a frame.
    #[error("连接在消息中途断开")]
    Truncated,
    /// The peer broke the protocol. (The detail, English from the network stack, is for the
    /// logs: `Debug`; people see what it means, in Chinese.)
    #[error("对方不符合通信协议（{}）", plain(.0))]
    Protocol(String),
    /// No frame in either direction for too long.
    #[error("连接长时间没有活动，已断开")]
    Idle,
    /// The node (ours or the peer's) is shutting down.
    #[error("连接因关机而断开")]
    ShuttingDown,
    /// The dialer left this connection for a new one (point 8 of the module docs).
    #[error("对方已换用新的连接重试")]
    Redialed,
    /// The peer could not be reached.
    #[error("连接不上对方（{}）", plain(.0))]
    Connect(String),
    /// The connection broke.
    #[error("连接中断（{}）", plain(.0))]
    Io(String),
    /// The endpoint could not start.
    #[error("无法启动网络端点（{}）", plain(.0))]
    Bind(String),
}

/// What an error text of the network stack (English) means, in Chinese words a teacher can
/// act on.
pub(crate) fn plain(detail: &str) -> &'static str {
    let d = detail.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| d.contains(w));
    if has(&["timed out", "timeout", "deadline"]) {
        "等待超时：网络不通、信号太弱，或对方不在线"
    } else if has(&["address in use", "addrinuse", "address already in use"]) {
        "端口已被占用"
    } else if has(&["permission", "denied", "not permitted"]) {
        "系统不允许使用网络"
    } else if has(&[
        "unreachable",
        "no route",
        "network is down",
        "dns",
        "resolve",
    ]) {
        "网络不通"
    } else if has(&["refused"]) {
        "对方拒绝连接"
    } else if has(&["reset", "closed", "lost", "aborted", "broken pipe", "eof"]) {
        "连接被断开"
    } else if has(&["alpn", "tls", "crypto", "certificate", "handshake"]) {
        "加密握手失败，双方版本可能不一致"
    } else {
        "网络出错"
    }
}

impl TransportError {
    pub(crate) fn io(e: impl fmt::Display) -> Self {
        TransportError::Io(e.to_string())
    }
}
