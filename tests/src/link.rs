//! A userspace link emulator: a UDP forwarder with the impairments of a slow mobile link.
//!
//! iroh speaks QUIC over UDP, so putting a [`Link`] between a device and the hub's UDP socket
//! is enough to give their connection an EDGE-like path when the kernel has no `netem`.
//!
//! # Spec
//!
//! - **Forwarding.** The link listens on [`LinkConfig::listen`]. Each new client address gets
//!   its own upstream socket (like a NAT mapping), from which its datagrams go to
//!   [`LinkConfig::target`]; datagrams the target sends to that upstream socket go back to the
//!   client from the listening socket. *Up* is client → target, *down* is target → client.
//!   Datagrams from anyone but the target on an upstream socket are ignored.
//! - **Each direction** ([`Direction`]) is, in order, like `netem` with a rate:
//!   1. *down state*: while the link is down (see below) every datagram is dropped;
//!   2. *random loss*: a datagram is dropped with probability `loss`, drawn from a generator
//!      seeded with [`LinkConfig::seed`] (each direction has its own stream), so the same
//!      traffic loses the same datagrams;
//!   3. *bottleneck*: with a `rate`, datagrams are serialised one after another, each taking
//!      `(len + overhead) × 8 / rate` seconds ([`LinkConfig::overhead`] models the IP and UDP
//!      headers). Datagrams wait in a FIFO queue while the link is busy; a datagram that would
//!      make the queue hold more than `queue_bytes` is dropped (tail drop, like a real
//!      bottleneck buffer);
//!   4. *propagation*: once serialised, a datagram arrives `delay` ± a uniform `jitter` later,
//!      but never before the previous one (jitter as netem does with a rate: no reordering).
//!
//!   A datagram due while the link is down is dropped too, so "down" means nothing gets
//!   through, including what was in flight.
//! - **Up and down.** [`Link::set_up`] sets the state by hand; [`Link::flap`] starts a
//!   [`Flapping`] schedule now: down for `down`, up for `up`, repeating, until the next
//!   `set_up` or `flap`. [`LinkConfig::schedule`] starts one when the link starts.
//! - **Chosen losses.** [`Link::lose_up`] drops one upward datagram picked by its order from
//!   now (the second: a QUIC client's `Finished`), before the random loss is drawn.
//! - **Counters** ([`LinkStats`]) per direction: datagrams and bytes offered and delivered
//!   (UDP payload, without `overhead`), drops by cause, and the datagrams that begin with a
//!   QUIC Initial packet (the datagrams of handshakes).
//! - **Lifetime.** Everything runs as tokio tasks owned by the [`Link`]; dropping it aborts
//!   them and closes the sockets. [`Link::start`] must run inside a tokio runtime.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep_until};

/// Bytes of IPv4 and UDP headers per datagram, counted against the rate.
pub const IPV4_UDP_OVERHEAD: usize = 28;
/// The most client addresses one link maps (a test has a handful).
const MAX_CLIENTS: usize = 256;

/// The impairments of one direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Direction {
    /// One-way propagation delay.
    pub delay: Duration,
    /// Uniform jitter: each datagram's delay is `delay ± jitter`.
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a datagram is lost.
    pub loss: f64,
    /// Bottleneck rate in bits per second; `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Bytes the bottleneck queue holds (payload and overhead) before it drops.
    pub queue_bytes: usize,
}

impl Direction {
    /// No delay, no loss, no rate limit.
    pub fn ideal() -> Direction {
        Direction {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            rate_bps: None,
            queue_bytes: usize::MAX,
        }
    }

    /// An EDGE direction: 420 ms ± 50 ms, 1.5 % loss, `rate_bps`, a queue of about 2.5 s.
    pub fn edge(rate_bps: u64) -> Direction {
        Direction {
            delay: Duration::from_millis(420),
            jitter: Duration::from_millis(50),
            loss: 0.015,
            rate_bps: Some(rate_bps),
            queue_bytes: (rate_bps / 8 * 5 / 2) as usize,
        }
    }

    /// A 2G (GPRS) direction: 650 ms ± 100 ms, 2 % loss, `rate_bps`, a queue of about 2.5 s.
    pub fn gprs(rate_bps: u64) -> Direction {
        Direction {
            delay: Duration::from_millis(650),
            jitter: Duration::from_millis(100),
            loss: 0.02,
            ..Direction::edge(rate_bps)
        }
    }

    /// How long the bottleneck takes to send `bytes` of payload in `datagrams` datagrams.
    pub fn serialisation(&self, bytes: u64, datagrams: u64, overhead: usize) -> Duration {
        match self.rate_bps {
            Some(rate) if rate > 0 => {
                let bits = (bytes + datagrams * overhead as u64) as f64 * 8.0;
                Duration::from_secs_f64(bits / rate as f64)
            }
            _ => Duration::ZERO,
        }
    }
}

/// A link that is down for `down`, then up for `up`, over and over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flapping {
    pub down: Duration,
    pub up: Duration,
}

impl Flapping {
    /// Whether the link is up `elapsed` after the schedule started (it starts down).
    pub fn is_up_after(&self, elapsed: Duration) -> bool {
        let period = self.down + self.up;
        if period.is_zero() {
            return true;
        }
        let into = elapsed.as_nanos() % period.as_nanos();
        into >= self.down.as_nanos()
    }
}

/// Where a link listens and forwards, and how it behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Where clients send their datagrams (port 0: any free port; see [`Link::addr`]).
    pub listen: SocketAddr,
    /// Where the datagrams go.
    pub target: SocketAddr,
    /// Client → target.
    pub up: Direction,
    /// Target → client.
    pub down: Direction,
    /// Seed of the loss and jitter generators.
    pub seed: u64,
    /// Bytes added to each datagram's length when computing its time on the bottleneck.
    pub overhead: usize,
    /// A flapping schedule started with the link.
    pub schedule: Option<Flapping>,
}

impl LinkConfig {
    /// A transparent forwarder (it still counts, and can be taken down).
    pub fn ideal(listen: SocketAddr, target: SocketAddr) -> LinkConfig {
        LinkConfig {
            listen,
            target,
            up: Direction::ideal(),
            down: Direction::ideal(),
            seed: 0x5EED,
            overhead: IPV4_UDP_OVERHEAD,
            schedule: None,
        }
    }

    /// The EDGE link of issue 3: 420 ms ± 50 ms each way, 1.5 % loss each way, 200 kbit/s up
    /// and 240 kbit/s down.
    pub fn edge(listen: SocketAddr, target: SocketAddr) -> LinkConfig {
        LinkConfig {
            up: Direction::edge(200_000),
            down: Direction::edge(240_000),
            ..LinkConfig::ideal(listen, target)
        }
    }

    /// The 2G link of issue 14: 650 ms ± 100 ms each way, 2 % loss each way, 32 kbit/s up
    /// and 35 kbit/s down.
    pub fn gprs(listen: SocketAddr, target: SocketAddr) -> LinkConfig {
        LinkConfig {
            up: Direction::gprs(32_000),
            down: Direction::gprs(35_000),
            ..LinkConfig::ideal(listen, target)
        }
    }

    /// The least time a transfer that moved `moved` can take on this link: `round_trips`
    /// round trips of `rtt`, plus what it offered each way at the link's rate (with
    /// [`IPV4_UDP_OVERHEAD`] per datagram). The benches hold their wall times to it.
    pub fn limit(&self, round_trips: u32, rtt: Duration, moved: &LinkStats) -> Duration {
        rtt * round_trips
            + self.up.serialisation(
                moved.up.offered_bytes,
                moved.up.offered_datagrams,
                IPV4_UDP_OVERHEAD,
            )
            + self.down.serialisation(
                moved.down.offered_bytes,
                moved.down.offered_datagrams,
                IPV4_UDP_OVERHEAD,
            )
    }
}

/// What one direction carried.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DirStats {
    pub offered_datagrams: u64,
    pub offered_bytes: u64,
    pub delivered_datagrams: u64,
    pub delivered_bytes: u64,
    /// Dropped at random.
    pub lost: u64,
    /// Dropped because the link was down.
    pub dropped_down: u64,
    /// Dropped because the bottleneck queue was full.
    pub dropped_queue: u64,
    /// Dropped because a test chose it ([`Link::lose_up`]).
    pub dropped_chosen: u64,
    /// Offered datagrams that begin with a QUIC Initial packet (first byte `0b1100_xxxx`:
    /// long header, fixed bit, type Initial; RFC 9000 §17.2.2). A client sends two of them
    /// in a handshake without loss (its ClientHello, then its acknowledgement of the server's
    /// Initial with its `Finished`), so more than two mean a handshake began again.
    pub quic_initials: u64,
}

impl DirStats {
    /// The counters since `earlier` (a snapshot of the same direction).
    pub fn since(&self, earlier: &DirStats) -> DirStats {
        DirStats {
            offered_datagrams: self.offered_datagrams - earlier.offered_datagrams,
            offered_bytes: self.offered_bytes - earlier.offered_bytes,
            delivered_datagrams: self.delivered_datagrams - earlier.delivered_datagrams,
            delivered_bytes: self.delivered_bytes - earlier.delivered_bytes,
            lost: self.lost - earlier.lost,
            dropped_down: self.dropped_down - earlier.dropped_down,
            dropped_queue: self.dropped_queue - earlier.dropped_queue,
            dropped_chosen: self.dropped_chosen - earlier.dropped_chosen,
            quic_initials: self.quic_initials - earlier.quic_initials,
        }
    }
}

/// Both directions' counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    /// Client → target.
    pub up: DirStats,
    /// Target → client.
    pub down: DirStats,
}

impl LinkStats {
    /// The counters since `earlier`.
    pub fn since(&self, earlier: &LinkStats) -> LinkStats {
        LinkStats {
            up: self.up.since(&earlier.up),
            down: self.down.since(&earlier.down),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    offered_datagrams: AtomicU64,
    offered_bytes: AtomicU64,
    delivered_datagrams: AtomicU64,
    delivered_bytes: AtomicU64,
    lost: AtomicU64,
    dropped_down: AtomicU64,
    dropped_queue: AtomicU64,
    dropped_chosen: AtomicU64,
    quic_initials: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> DirStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirStats {
            offered_datagrams: g(&self.offered_datagrams),
            offered_bytes: g(&self.offered_bytes),
            delivered_datagrams: g(&self.delivered_datagrams),
            delivered_bytes: g(&self.delivered_bytes),
            lost: g(&self.lost),
            dropped_down: g(&self.dropped_down),
            dropped_queue: g(&self.dropped_queue),
            dropped_chosen: g(&self.dropped_chosen),
            quic_initials: g(&self.quic_initials),
        }
    }
}

/// Whether the link is up: by hand, or by a schedule.
#[derive(Debug)]
struct Gate {
    manual_up: AtomicBool,
    schedule: Mutex<Option<(Instant, Flapping)>>,
}

impl Gate {
    fn is_up(&self, now: Instant) -> bool {
        let schedule = *self.schedule.lock().unwrap();
        match schedule {
            Some((start, f)) => f.is_up_after(now.saturating_duration_since(start)),
            None => self.manual_up.load(Ordering::Relaxed),
        }
    }
}

/// A datagram on its way.
struct Packet {
    due: Instant,
    data: Vec<u8>,
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

struct PipeState {
    loss_rng: StdRng,
    jitter_rng: StdRng,
    /// When the bottleneck finishes sending what is queued.
    busy_until: Instant,
    /// When the last datagram arrives (no reordering).
    last_due: Instant,
}

/// One direction: admission (down, loss, queue, rate, delay) and a delivery task.
struct Pipe {
    cfg: Direction,
    overhead: usize,
    state: Mutex<PipeState>,
    counters: Counters,
    gate: Arc<Gate>,
    queue: mpsc::UnboundedSender<Packet>,
    /// A schedule to start once this direction has delivered so many bytes in all
    /// ([`Link::flap_after`]): the cut comes at a byte, not at whenever a test polls.
    trigger: Mutex<Option<(u64, Flapping)>>,
    /// The index (in offered order, from 0) of a datagram to drop ([`Link::lose_up`]);
    /// `u64::MAX`: none.
    lose_at: AtomicU64,
}

impl Pipe {
    fn new(
        cfg: Direction,
        overhead: usize,
        seed: u64,
        gate: Arc<Gate>,
    ) -> (Arc<Pipe>, mpsc::UnboundedReceiver<Packet>) {
        let (queue, rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        let pipe = Pipe {
            cfg,
            overhead,
            state: Mutex::new(PipeState {
                loss_rng: StdRng::seed_from_u64(seed),
                jitter_rng: StdRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15),
                busy_until: now,
                last_due: now,
            }),
            counters: Counters::default(),
            gate,
            queue,
            trigger: Mutex::new(None),
            lose_at: AtomicU64::new(u64::MAX),
        };
        (Arc::new(pipe), rx)
    }

    /// A datagram enters this direction, to be sent from `socket` to `dst`.
    fn admit(&self, data: Vec<u8>, socket: &Arc<UdpSocket>, dst: SocketAddr) {
        let c = &self.counters;
        let index = c.offered_datagrams.fetch_add(1, Ordering::Relaxed);
        bump(&c.offered_bytes, data.len() as u64);
        if data.first().is_some_and(|b| b & 0xF0 == 0xC0) {
            bump(&c.quic_initials, 1);
        }
        let now = Instant::now();
        if !self.gate.is_up(now) {
            bump(&c.dropped_down, 1);
            return;
        }
        if index == self.lose_at.load(Ordering::Relaxed) {
            bump(&c.dropped_chosen, 1);
            return;
        }
        let mut s = self.state.lock().unwrap();
        if self.cfg.loss > 0.0 && s.loss_rng.random::<f64>() < self.cfg.loss {
            bump(&c.lost, 1);
            return;
        }
        let wire = data.len() + self.overhead;
        let mut sent = now;
        if let Some(rate) = self.cfg.rate_bps.filter(|r| *r > 0) {
            let start = s.busy_until.max(now);
            let queued = (start - now).as_secs_f64() * rate as f64 / 8.0;
            if queued + wire as f64 > self.cfg.queue_bytes as f64 {
                bump(&c.dropped_queue, 1);
                return;
            }
            sent = start + Duration::from_secs_f64(wire as f64 * 8.0 / rate as f64);
            s.busy_until = sent;
        }
        let mut delay = self.cfg.delay;
        if !self.cfg.jitter.is_zero() {
            let j = self.cfg.jitter.as_secs_f64();
            let offset = s.jitter_rng.random_range(-j..=j);
            delay = Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0));
        }
        let due = (sent + delay).max(s.last_due);
        s.last_due = due;
        drop(s);
        let _ = self.queue.send(Packet {
            due,
            data,
            socket: socket.clone(),
            dst,
        });
    }

    /// Starts the armed schedule once this direction has delivered its bytes.
    fn maybe_trigger(&self) {
        let mut trigger = self.trigger.lock().unwrap();
        if let Some((bytes, schedule)) = *trigger
            && self.counters.delivered_bytes.load(Ordering::Relaxed) >= bytes
        {
            *trigger = None;
            *self.gate.schedule.lock().unwrap() = Some((Instant::now(), schedule));
        }
    }

    /// Sends each datagram when it is due.
    async fn deliver(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Packet>) {
        while let Some(p) = rx.recv().await {
            // Not through the timer when already due: tokio's timer fires on its next
            // millisecond tick, which added about 1.1 ms to every datagram of a link meant to
            // add nothing (`LinkConfig::ideal`), 9 ms of a 10 ms no-op reconnect.
            if p.due > Instant::now() {
                sleep_until(p.due).await;
            }
            if !self.gate.is_up(Instant::now()) {
                bump(&self.counters.dropped_down, 1);
                continue;
            }
            // A send error (nobody listening, a full buffer) is a lost datagram, as on a
            // real link.
            if p.socket.send_to(&p.data, p.dst).await.is_ok() {
                bump(&self.counters.delivered_datagrams, 1);
                bump(&self.counters.delivered_bytes, p.data.len() as u64);
                self.maybe_trigger();
            }
        }
    }
}

/// Tasks aborted when the link is dropped.
#[derive(Debug, Default)]
struct Tasks(Mutex<Vec<AbortHandle>>);

impl Tasks {
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(fut).abort_handle();
        self.0.lock().unwrap().push(handle);
    }

    fn abort_all(&self) {
        for h in self.0.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

/// A running link emulator. Dropping it stops it.
pub struct Link {
    addr: SocketAddr,
    config: LinkConfig,
    gate: Arc<Gate>,
    up: Arc<Pipe>,
    down: Arc<Pipe>,
    tasks: Arc<Tasks>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("addr", &self.addr)
            .field("target", &self.config.target)
            .finish_non_exhaustive()
    }
}

/// The address an upstream socket binds to for reaching `target`.
fn upstream_bind(target: SocketAddr) -> SocketAddr {
    match target {
        SocketAddr::V4(a) if a.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(a) if a.ip().is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

impl Link {
    /// Binds the listening socket and starts forwarding.
    pub async fn start(config: LinkConfig) -> std::io::Result<Link> {
        let listen = Arc::new(UdpSocket::bind(config.listen).await?);
        let addr = listen.local_addr()?;
        let gate = Arc::new(Gate {
            manual_up: AtomicBool::new(true),
            schedule: Mutex::new(config.schedule.map(|f| (Instant::now(), f))),
        });
        let (up, up_rx) = Pipe::new(
            config.up.clone(),
            config.overhead,
            config.seed,
            gate.clone(),
        );
        let (down, down_rx) = Pipe::new(
            config.down.clone(),
            config.overhead,
            config.seed.wrapping_add(1),
            gate.clone(),
        );
        let tasks = Arc::new(Tasks::default());
        tasks.spawn(up.clone().deliver(up_rx));
        tasks.spawn(down.clone().deliver(down_rx));
        tasks.spawn(listen_loop(
            listen,
            config.target,
            up.clone(),
            down.clone(),
            Arc::downgrade(&tasks),
        ));
        Ok(Link {
            addr,
            config,
            gate,
            up,
            down,
            tasks,
        })
    }

    /// Where clients send their datagrams.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration the link started with.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            up: self.up.counters.snapshot(),
            down: self.down.counters.snapshot(),
        }
    }

    /// Sets the link up or down by hand; stops any schedule.
    pub fn set_up(&self, up: bool) {
        *self.gate.schedule.lock().unwrap() = None;
        self.gate.manual_up.store(up, Ordering::Relaxed);
    }

    /// Starts `schedule` now, beginning with its down phase.
    pub fn flap(&self, schedule: Flapping) {
        *self.gate.schedule.lock().unwrap() = Some((Instant::now(), schedule));
    }

    /// Starts `schedule` (beginning with its down phase) as soon as the upward direction has
    /// delivered `more` bytes beyond what it has delivered so far.
    pub fn flap_after(&self, more: u64, schedule: Flapping) {
        let at = self.up.counters.delivered_bytes.load(Ordering::Relaxed) + more;
        *self.up.trigger.lock().unwrap() = Some((at, schedule));
    }

    /// Drops the upward datagram that is the `nth` offered from now (0: the next one).
    pub fn lose_up(&self, nth: u64) {
        let at = self.up.counters.offered_datagrams.load(Ordering::Relaxed) + nth;
        self.up.lose_at.store(at, Ordering::Relaxed);
    }

    /// Whether a schedule is running (started by [`Link::flap`] or [`Link::flap_after`]).
    pub fn is_flapping(&self) -> bool {
        self.gate.schedule.lock().unwrap().is_some()
    }

    /// Whether the link is up now.
    pub fn is_up(&self) -> bool {
        self.gate.is_up(Instant::now())
    }
}

/// The round-trip time through a link made from `config` (its `listen` and `target` are
/// replaced): the median of 30 small pings, 100 ms apart, to an echo server behind it.
pub async fn round_trip(config: &LinkConfig) -> Duration {
    let echo = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap_or_else(|e| {
            panic!("cannot bind the echo socket: {e}");
        });
    let target = echo.local_addr().expect("the echo socket's address");
    let echo_task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let link = Link::start(LinkConfig {
        listen: (Ipv4Addr::LOCALHOST, 0).into(),
        target,
        ..config.clone()
    })
    .await
    .expect("the link starts");
    let client = Arc::new(
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("the client socket binds"),
    );
    let start = std::time::Instant::now();
    // Replies are timed as they arrive, while the pings go out.
    let wait = config.up.delay + config.down.delay + Duration::from_secs(3);
    let receiver = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut rtts = Vec::new();
            let mut buf = [0u8; 2048];
            while let Ok(Ok((n, _))) = tokio::time::timeout(wait, client.recv_from(&mut buf)).await
            {
                if n >= 20 {
                    let mut sent = [0u8; 16];
                    sent.copy_from_slice(&buf[4..20]);
                    rtts.push(start.elapsed().as_nanos() - u128::from_le_bytes(sent));
                }
            }
            rtts
        })
    };
    for seq in 0u32..30 {
        let mut ping = vec![0u8; 64];
        ping[..4].copy_from_slice(&seq.to_le_bytes());
        ping[4..20].copy_from_slice(&start.elapsed().as_nanos().to_le_bytes());
        let _ = client.send_to(&ping, link.addr()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rtts = receiver.await.expect("the receiver task");
    echo_task.abort();
    assert!(!rtts.is_empty(), "no ping came back through the link");
    rtts.sort_unstable();
    Duration::from_nanos(rtts[rtts.len() / 2] as u64)
}

impl Drop for Link {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Receives from clients; maps each to an upstream socket and a task carrying the replies.
async fn listen_loop(
    listen: Arc<UdpSocket>,
    target: SocketAddr,
    up: Arc<Pipe>,
    down: Arc<Pipe>,
    tasks: std::sync::Weak<Tasks>,
) {
    let mut clients: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, client)) = listen.recv_from(&mut buf).await else {
            // ICMP errors from an earlier send surface here on Linux; keep listening.
            continue;
        };
        let upstream = match clients.get(&client) {
            Some(s) => s.clone(),
            None => {
                if clients.len() >= MAX_CLIENTS {
                    continue;
                }
                let Ok(socket) = UdpSocket::bind(upstream_bind(target)).await else {
                    continue;
                };
                let socket = Arc::new(socket);
                let Some(tasks) = tasks.upgrade() else {
                    return;
                };
                tasks.spawn(upstream_loop(
                    socket.clone(),
                    target,
                    client,
                    listen.clone(),
                    down.clone(),
                ));
                clients.insert(client, socket.clone());
                socket
            }
        };
        up.admit(buf[..n].to_vec(), &upstream, target);
    }
}

/// Carries what the target sends to one client's upstream socket back to the client.
async fn upstream_loop(
    socket: Arc<UdpSocket>,
    target: SocketAddr,
    client: SocketAddr,
    listen: Arc<UdpSocket>,
    down: Arc<Pipe>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if from == target {
            down.admit(buf[..n].to_vec(), &listen, client);
        }
    }
}

#[cfg(test)]
mod tests;
