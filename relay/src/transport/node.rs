//! [`Node`]: a device's (or the hub's) one iroh endpoint, configured to contact nothing but
//! what it is told.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use iroh::endpoint::{
    AfterHandshakeOutcome, BindOpts, Connection, ConnectionStats, EndpointHooks, PathId,
    PortmapperConfig, QuicTransportConfig, RecvStream, SendStream, Side as QuicSide, VarInt,
    presets,
};
use iroh::{
    Endpoint, EndpointAddr, EndpointId, NetReportConfig, RelayConfig, RelayMap, RelayMode, RelayUrl,
};
use tokio::time::{Instant, timeout};

use super::driver::{Driver, Side};
use super::listen::{HandshakeBudget, Lanes, accept_loop};
use super::{
    ALPN, Admission, Conversation, ConversationFactory, ConversationOptions, Reply, Stats,
    SyncProtocol, TransportError, TransportMetrics, close,
};

/// Ack-eliciting datagrams a connection made ahead ([`Node::warm_up`]) sends once its handshake
/// is confirmed, so that QUIC's probe timeout is short when the sync starts (transport module
/// docs, point 7).
pub const PRIMING_DATAGRAMS: u64 = 4;

/// Spacing of the priming datagrams: longer than the peer's ack delay (25 ms), so that each is
/// acknowledged on its own and gives its own round-trip sample.
const PRIMING_SPACING: Duration = Duration::from_millis(60);

/// How long, past one round trip, a connection made ahead waits for the acknowledgement of its
/// last priming datagram (the link's jitter, the peer's ack delay).
const PRIMING_SLACK: Duration = Duration::from_millis(150);

/// The longest wait for the priming acknowledgements (two round trips of the slowest link,
/// 2G's 1.3 s, and some).
const PRIMING_WAIT: Duration = Duration::from_secs(3);

/// What any node buffers of QUIC datagrams it never reads (only the one-byte datagrams that
/// prime a connection made ahead come; they are there to be acknowledged). QUIC's default, 1.25 MB per
/// connection, would let a stranger's connections fill the hub's memory with datagrams nobody
/// reads; the peer is told this as its largest datagram.
pub const DATAGRAM_BUFFER: usize = 64;

/// The least a dialer waits for its handshake to be confirmed before dialing again (point 8
/// of the module docs). On a fast link QUIC's own probe timeout, a few round trips, resends a
/// lost `Finished` well before this; dialing again is for slow links, where that timeout is
/// seconds.
const REDIAL_FLOOR: Duration = Duration::from_secs(1);

/// How long past one and a half round trips a dialer waits for its handshake to be confirmed
/// (the link's jitter, the peer's processing).
const REDIAL_SLACK: Duration = Duration::from_millis(150);

/// The round trip QUIC measured on `conn`'s path in use, if it has a sample.
///
/// (iroh marks the path in use asynchronously; right after the handshake use
/// [`redial_at`]'s, path 0's own sample.)
pub(crate) fn selected_rtt(conn: &Connection) -> Option<Duration> {
    conn.paths()
        .iter()
        .find(|p| p.is_selected())
        .map(|p| p.rtt())
}

/// When a dialer that has just connected on `conn` gives up on its handshake if the peer has
/// not confirmed it: a round trip and a half from now, and some (point 8 of the module docs).
///
/// `Endpoint::connect` returns once the client has sent its `Finished`; the server confirms
/// the handshake as soon as that arrives, so confirmation normally comes one round trip later.
/// If the `Finished` was lost, QUIC resends it only after a probe timeout, which after the
/// one round-trip sample of the handshake is about three round trips (RFC 9002 §6.2.1; 2.9 s
/// on EDGE); meanwhile the server drops what we send, and that is resent later still. A new
/// handshake costs one round trip.
///
/// The round trip is path 0's, the handshake's: the one QUIC sampled from the acceptor's
/// Initial. `None` without one: then the dialer waits for QUIC.
fn redial_at(conn: &Connection) -> Option<Instant> {
    let rtt = conn.rtt(PathId::ZERO)?;
    Some(Instant::now() + (rtt * 3 / 2 + REDIAL_SLACK).max(REDIAL_FLOOR))
}

/// Waits until the peer confirms `conn`'s handshake, `conn` closes, or `until`. Whether it
/// was confirmed.
async fn confirmed_by(conn: &Connection, until: Instant) -> bool {
    let wait = async {
        while !super::driver::handshake_confirmed(conn) && conn.close_reason().is_none() {
            tokio::time::sleep(super::driver::CONFIRM_POLL).await;
        }
    };
    let _ = tokio::time::timeout_at(until, wait).await;
    super::driver::handshake_confirmed(conn)
}

/// Gives QUIC's loss recovery a few more round-trip samples on a connection made ahead.
///
/// After the handshake the sender has one or two samples, and RFC 9002 (§5.3, §6.2.1) then
/// puts the probe timeout at about three round trips (`rttvar` starts at half the first
/// sample): on EDGE, a datagram of the sync lost at the end of a flight costs 2.6 s. Each
/// further sample near the first shrinks `rttvar` by a quarter; four bring the timeout to about
/// 1.6 round trips. The samples come from acknowledgements of one-byte datagrams (ack-eliciting,
/// never read), a few dozen bytes each way, while the teacher has not tapped 同步 yet; the hub
/// sends each back (`accept::echo_priming`), so that its own recovery gets samples too.
/// Nothing happens if the peer takes no datagrams.
async fn prime_rtt(conn: &Connection) {
    for i in 0..PRIMING_DATAGRAMS {
        if i > 0 {
            tokio::time::sleep(PRIMING_SPACING).await;
        }
        if conn.send_datagram(bytes::Bytes::from_static(&[0])).is_err() {
            return;
        }
    }
    // Their acknowledgements come about a round trip after the last one. QUIC's counters do
    // not tell which packet an acknowledgement was for, so wait that round trip, and some.
    let rtt = selected_rtt(conn).unwrap_or(PRIMING_WAIT);
    tokio::time::sleep((rtt + PRIMING_SLACK).min(PRIMING_WAIT)).await;
}

/// How a [`Node`] is set up. Nothing outside these settings is contacted.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The node's identity; its public half is the endpoint id (the device key).
    pub secret_key: iroh::SecretKey,
    /// Relays to use (from the hub's configuration or an invite). Empty: no relay at all.
    pub relays: Vec<RelayUrl>,
    /// UDP sockets to bind for direct connections. Empty: relay only.
    pub bind: Vec<SocketAddr>,
    /// Find and announce peers on the local network by mDNS (needs the `mdns` feature).
    pub lan_discovery: bool,
}

impl NodeConfig {
    /// Every interface on a random port, no relay, no LAN discovery.
    pub fn new(secret_key: iroh::SecretKey) -> NodeConfig {
        NodeConfig {
            secret_key,
            relays: Vec::new(),
            bind: vec![
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
            ],
            lan_discovery: false,
        }
    }

    /// Loopback only (tests).
    pub fn loopback(secret_key: iroh::SecretKey) -> NodeConfig {
        NodeConfig {
            bind: vec![SocketAddr::from((Ipv4Addr::LOCALHOST, 0))],
            ..NodeConfig::new(secret_key)
        }
    }

    /// Adds a relay.
    pub fn with_relay(mut self, url: RelayUrl) -> NodeConfig {
        if !self.relays.contains(&url) {
            self.relays.push(url);
        }
        self
    }
}

/// One iroh endpoint, and the loop accepting `shouwang/sync/1` if it serves.
///
/// Dropping a node aborts its tasks and frees its sockets; [`Node::shutdown`] closes
/// connections gracefully first.
#[derive(Debug)]
pub struct Node {
    endpoint: Endpoint,
    acceptor: Option<Acceptor>,
    protocol: Option<SyncProtocol>,
    /// Connections this node dialed and keeps for the next conversation, by peer (warm
    /// connections: [`ConversationOptions::warm`]). A connection in use is taken out, so two
    /// conversations at once never share one.
    warm: Mutex<HashMap<EndpointId, Warm>>,
    /// Reading the rest of finished streams (`driver::Ended::unread`), then closing the
    /// connections not kept warm; awaited (briefly) by [`Node::shutdown`], aborted when the
    /// node is dropped.
    drains: Mutex<tokio::task::JoinSet<()>>,
    /// Connections this node left for a new one because their handshake was not confirmed
    /// in time ([`Node::redials`]).
    redials: AtomicU64,
    #[cfg(feature = "mdns")]
    lan: Option<iroh_mdns_address_lookup::MdnsAddressLookup>,
}

/// A dialed connection kept open for the next conversation, until `until`.
#[derive(Debug)]
struct Warm {
    conn: Connection,
    until: Instant,
}

impl Warm {
    /// Still kept, and not closed by either side.
    fn usable(&self) -> bool {
        self.until > Instant::now() && self.conn.close_reason().is_none()
    }
}

/// How long [`Node::shutdown`] waits for the peers' ends of finished conversations (one
/// round trip on the slowest link, with room for a lost datagram), so that they close with
/// [`close::DONE`] rather than the endpoint's close.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// The mDNS service name: only 守望 devices answer each other.
#[cfg(feature = "mdns")]
const MDNS_SERVICE: &str = "shouwang";

/// Receive window of an accepting node's connections until the peer is authenticated: one
/// handshake frame and its header, with room to spare. Whatever a stranger sends is buffered
/// up to this much and no more (QUIC's default, 1.25 MB a stream and no connection limit, let
/// 100 strangers opening with a 16 MiB frame make the hub buffer 113 MiB:
/// `relay/tests/flood.rs`). The driver widens it to [`AUTHENTICATED_WINDOW`] once the
/// conversation stops limiting frames (the hub's `Welcome`, a peer's certificate checked).
pub(crate) const UNAUTHENTICATED_WINDOW: u32 = 80 * 1024;
/// Receive window of an authenticated connection (and of each stream on an accepting node):
/// ≈ 10 MB/s at 100 ms of RTT, more than any phone link.
pub(crate) const AUTHENTICATED_WINDOW: u32 = 1024 * 1024;

/// The accept loop of a serving node; aborted when dropped.
#[derive(Debug)]
struct Acceptor {
    cancel: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Closes, right after the QUIC handshake, every incoming connection whose remote the
/// [`Admission`] does not admit: before the accept loop hands it to the protocol, so a
/// stranger never gets a stream, a conversation, a connection slot or a blocking task. Its
/// draining state counts against the accept loop's budget (`listen.rs`).
#[derive(Debug)]
struct Gatekeeper {
    admission: Arc<dyn Admission>,
    metrics: Arc<TransportMetrics>,
    budget: Arc<HandshakeBudget>,
}

/// The close reason a stranger reads at the hub ([`Admission::refusal`]).
/// (With no invite open, this is also what a second phone scanning a spent invite reads.)
pub(crate) const STRANGER_REASON: &str = "这台设备没有在本校登记，也没有可用的邀请码（可能已被另一台设备用过或已过期），服务器不接受它的连接";

impl EndpointHooks for Gatekeeper {
    async fn after_handshake<'a>(&'a self, conn: &'a Connection) -> AfterHandshakeOutcome {
        if conn.side() == QuicSide::Client || self.admission.admits(&conn.remote_id()) {
            return AfterHandshakeOutcome::Accept;
        }
        TransportMetrics::add(&self.metrics.strangers, 1);
        self.budget.refused(conn.weak_handle());
        AfterHandshakeOutcome::Reject {
            error_code: VarInt::from_u32(close::STRANGER),
            reason: self.admission.refusal().as_bytes().to_vec(),
        }
    }
}

async fn bind_endpoint(
    config: &NodeConfig,
    accepts: bool,
    gate: Option<Gatekeeper>,
) -> Result<Endpoint, TransportError> {
    let bind_err = |e: &dyn std::fmt::Display| TransportError::Bind(e.to_string());
    // `Minimal` sets only the TLS crypto provider: no address lookup (no DNS, no pkarr), and
    // relays stay disabled unless configured below.
    // The captive-portal check would fetch `http://<relay host>/generate_204` on port 80,
    // which our relays (on their own port) do not serve.
    let mut net_report = NetReportConfig::default();
    net_report.captive_portal_check = false;
    // No path-MTU discovery: on the links this app lives on (EDGE, cell-edge 4G) a sync moves
    // a few kilobytes, and the probes (≈1.4 KB each, several per connection) cost more bytes
    // than larger packets would ever save. Datagrams stay at QUIC's safe 1200 bytes.
    let mut transport = QuicTransportConfig::builder()
        .mtu_discovery_config(None)
        .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER));
    if accepts {
        // A conversation is one bidirectional stream the dialer opens; nobody opens more.
        // Streams the acceptor never reads would be buffered for nothing.
        transport = transport
            .max_concurrent_bidi_streams(VarInt::from_u32(1))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(AUTHENTICATED_WINDOW))
            .receive_window(VarInt::from_u32(UNAUTHENTICATED_WINDOW));
    }
    let transport = transport.build();
    let mut builder = Endpoint::builder(presets::Minimal)
        .secret_key(config.secret_key.clone())
        .transport_config(transport)
        .portmapper_config(PortmapperConfig::Disabled)
        .net_report_config(net_report)
        .clear_ip_transports();
    if let Some(gate) = gate {
        builder = builder.hooks(gate);
    }
    for (i, addr) in config.bind.iter().enumerate() {
        // The first socket must bind; more (IPv6 on a host without it) may fail.
        let opts = BindOpts::default().set_is_required(i == 0);
        builder = builder
            .bind_addr_with_opts(*addr, opts)
            .map_err(|e| bind_err(&e))?;
    }
    if !config.relays.is_empty() {
        // QUIC address discovery needs the relay's TLS certificate; a plain-HTTP relay (ours,
        // by default) has none, so it is not asked.
        let map: RelayMap = config
            .relays
            .iter()
            .map(|url| RelayConfig::new(url.clone(), None))
            .collect();
        builder = builder.relay_mode(RelayMode::Custom(map));
    }
    builder.bind().await.map_err(|e| bind_err(&e))
}

impl Node {
    /// A node that connects to peers and accepts nothing.
    pub async fn bind(config: NodeConfig) -> Result<Node, TransportError> {
        let endpoint = bind_endpoint(&config, false, None).await?;
        Node::finish(endpoint, None, None, &config)
    }

    /// A node that accepts `shouwang/sync/1` connections, one conversation from `factory` each.
    pub async fn serve(
        config: NodeConfig,
        factory: Arc<dyn ConversationFactory>,
        opts: ConversationOptions,
        metrics: Arc<TransportMetrics>,
    ) -> Result<Node, TransportError> {
        let lanes = Arc::new(Lanes::default());
        let opts_admission = opts.admission.clone();
        let gate = opts.admission.clone().map(|admission| Gatekeeper {
            admission,
            metrics: metrics.clone(),
            budget: lanes.strangers.clone(),
        });
        let endpoint = bind_endpoint(&config, true, gate).await?;
        endpoint.set_alpns(vec![ALPN.to_vec()]);
        let protocol = SyncProtocol::new(factory, opts, metrics.clone());
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(accept_loop(
            endpoint.clone(),
            protocol.clone(),
            lanes,
            opts_admission,
            metrics,
            cancel.clone(),
        ));
        let acceptor = Acceptor {
            cancel,
            task: Some(task),
        };
        Node::finish(endpoint, Some(acceptor), Some(protocol), &config)
    }

    fn finish(
        endpoint: Endpoint,
        acceptor: Option<Acceptor>,
        protocol: Option<SyncProtocol>,
        config: &NodeConfig,
    ) -> Result<Node, TransportError> {
        #[cfg(feature = "mdns")]
        let lan = if config.lan_discovery {
            let mdns = iroh_mdns_address_lookup::MdnsAddressLookup::builder()
                .service_name(MDNS_SERVICE)
                .build(endpoint.id())
                .map_err(|e| TransportError::Bind(format!("局域网发现无法启动：{e}")))?;
            endpoint
                .address_lookup()
                .map_err(TransportError::io)?
                .add(mdns.clone());
            Some(mdns)
        } else {
            None
        };
        #[cfg(not(feature = "mdns"))]
        if config.lan_discovery {
            return Err(TransportError::Bind(
                "这个版本没有编入局域网发现（mdns）".into(),
            ));
        }
        Ok(Node {
            endpoint,
            acceptor,
            protocol,
            warm: Mutex::new(HashMap::new()),
            drains: Mutex::new(tokio::task::JoinSet::new()),
            redials: AtomicU64::new(0),
            #[cfg(feature = "mdns")]
            lan,
        })
    }

    /// The endpoint id (the device key).
    pub fn id(&self) -> EndpointId {
        self.endpoint.id()
    }

    /// The iroh endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// How peers can reach this node now: its relay and its direct addresses.
    pub fn addr(&self) -> EndpointAddr {
        self.endpoint.addr()
    }

    /// The UDP sockets the node is bound to.
    pub fn bound_sockets(&self) -> Vec<SocketAddr> {
        self.endpoint.bound_sockets()
    }

    /// Waits (at most `limit`) until the node is connected to one of its relays. Returns
    /// whether it is.
    pub async fn wait_for_relay(&self, limit: Duration) -> bool {
        timeout(limit, self.endpoint.online()).await.is_ok()
    }

    /// The counters of accepted connections, if the node serves.
    pub fn metrics(&self) -> Option<&Arc<TransportMetrics>> {
        self.protocol.as_ref().map(SyncProtocol::metrics)
    }

    /// Devices of this app announcing themselves on the local network (mDNS), collected for
    /// `within`. Empty when LAN discovery is off. Whether a device belongs to the same school
    /// is learnt only when its certificate is checked on connecting.
    #[cfg(feature = "mdns")]
    pub async fn nearby(&self, within: Duration) -> Vec<EndpointAddr> {
        use futures_util::StreamExt;
        use iroh_mdns_address_lookup::DiscoveryEvent;
        let Some(lan) = &self.lan else {
            return Vec::new();
        };
        let mut events = lan.subscribe().await;
        let mut found = std::collections::BTreeMap::new();
        let _ = timeout(within, async {
            while let Some(event) = events.next().await {
                match event {
                    DiscoveryEvent::Discovered { endpoint_info, .. } => {
                        found.insert(
                            endpoint_info.endpoint_id,
                            endpoint_info.into_endpoint_addr(),
                        );
                    }
                    DiscoveryEvent::Expired { endpoint_id } => {
                        found.remove(&endpoint_id);
                    }
                    _ => {}
                }
            }
        })
        .await;
        found.into_values().collect()
    }

    /// Local-network discovery, if enabled: subscribe to it to list peers nearby.
    #[cfg(feature = "mdns")]
    pub fn lan(&self) -> Option<&iroh_mdns_address_lookup::MdnsAddressLookup> {
        self.lan.as_ref()
    }

    /// Connects to `peer` and runs `conversation` to its end. On success the conversation is
    /// handed back with what was moved.
    ///
    /// With [`ConversationOptions::warm`], a connection to `peer` kept from an earlier
    /// conversation (or [`Node::warm_up`]) is used if it is still open, and the connection is
    /// kept again afterwards; one that turns out closed is replaced by a new one.
    pub async fn converse<C: Conversation>(
        &self,
        peer: EndpointAddr,
        mut conversation: C,
        opts: &ConversationOptions,
    ) -> Result<(C, Stats), TransportError> {
        let remote = peer.id;
        // QUIC shows the stream to the peer only once data flows: the opening must not be empty.
        let mut opening = conversation.opening()?;
        if opening.frames.is_empty() {
            return Err(TransportError::Protocol(
                "发起连接的一方必须先发送消息".into(),
            ));
        }
        let warm = !opts.warm.is_zero();
        let kept = if warm { self.take_warm(remote) } else { None };
        let mut streams = None;
        if let Some(conn) = kept {
            // Open only if the hub has not closed it meanwhile (its warm wait ran out, it
            // restarted): then a new connection, as if there had been none.
            if let Ok(Ok(s)) = timeout(opts.connect_timeout, conn.open_bi()).await {
                streams = Some((conn, s));
            }
        }
        // A new connection's handshake may not be confirmed yet: if it is not in time, the
        // conversation runs again on another one (point 8 of the module docs), once.
        let (mut conn, s, redial_by) = match streams {
            Some((conn, s)) => (conn, s, None),
            None => {
                let (conn, s) = self.open(peer.clone(), opts).await?;
                let by = redial_at(&conn);
                (conn, s, by)
            }
        };
        let first = match redial_by {
            Some(_) => opening.clone(),
            None => std::mem::take(&mut opening),
        };
        let mut ended = dial(&conn, s, conversation, first, redial_by, opts).await?;
        if ended.redial {
            tracing::debug!("handshake with {remote} not confirmed in time; dialing again");
            self.redials.fetch_add(1, Ordering::Relaxed);
            conn.close(VarInt::from_u32(close::REDIAL), b"");
            let (again, s) = self.open(peer, opts).await?;
            conn = again;
            ended = dial(&conn, s, ended.conversation.inner, opening, None, opts).await?;
        }
        // Done: the user hears so now. What is left of the acceptor's half is read in the
        // background; a connection not kept warm is closed once that has come.
        let keep = warm && conn.close_reason().is_none();
        match (ended.unread, keep) {
            (Some(recv), true) => self.drain(recv, None, opts.idle_timeout),
            (Some(recv), false) => self.drain(recv, Some(conn.clone()), opts.idle_timeout),
            (None, false) => conn.close(VarInt::from_u32(close::DONE), b"done"),
            (None, true) => {}
        }
        if keep {
            self.keep_warm(conn, opts.warm);
        }
        Ok((ended.conversation.inner, ended.stats))
    }

    /// Reads the rest of the acceptor's half of a finished stream (`driver::Ended::unread`)
    /// in a task of the node, then closes `close` (a connection not kept warm) with
    /// [`close::DONE`]: by then the acceptor has read all this side sent.
    fn drain(&self, recv: RecvStream, close: Option<Connection>, limit: Duration) {
        let mut drains = self.drains.lock().unwrap_or_else(PoisonError::into_inner);
        while drains.try_join_next().is_some() {}
        drains.spawn(async move {
            super::driver::drain(recv, limit).await;
            if let Some(conn) = close {
                conn.close(VarInt::from_u32(close::DONE), b"done");
            }
        });
    }

    /// Connects to `peer` now and keeps the connection for the next conversation with it
    /// (for [`ConversationOptions::warm`]): the app calls it when it opens or the network
    /// comes back, so that the QUIC handshake, and any handshake datagram lost on the way,
    /// is over before the user taps 同步. Nothing if a warm connection to `peer` is open.
    pub async fn warm_up(
        &self,
        peer: EndpointAddr,
        opts: &ConversationOptions,
    ) -> Result<(), TransportError> {
        if opts.warm.is_zero() {
            return Ok(());
        }
        if let Some(conn) = self.take_warm(peer.id) {
            self.keep_warm(conn, opts.warm);
            return Ok(());
        }
        let mut conn = self.connect(peer.clone(), opts).await?;
        // The handshake is complete on our side once the hub's flight arrived, but confirmed
        // only when the hub says so (HANDSHAKE_DONE): until then a lost datagram of ours
        // (our Finished) would hold up the sync's first frames for a probe timeout. Waiting
        // here keeps that in the connecting ahead; if it does not come in time, a new
        // handshake is quicker than QUIC's probe timeout (point 8 of the module docs).
        if let Some(by) = redial_at(&conn)
            && !confirmed_by(&conn, by).await
            && conn.close_reason().is_none()
        {
            self.redials.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                "handshake with {} not confirmed in time; dialing again",
                peer.id
            );
            conn.close(VarInt::from_u32(close::REDIAL), b"");
            conn = self.connect(peer, opts).await?;
        }
        confirmed_by(&conn, Instant::now() + opts.connect_timeout).await;
        if let Some(e) = super::driver::peer_close(&conn) {
            return Err(e);
        }
        prime_rtt(&conn).await;
        self.keep_warm(conn, opts.warm);
        Ok(())
    }

    /// How many connections this node, dialing, left for a new one because the peer had not
    /// confirmed their handshake in time (point 8 of the module docs): for diagnostics.
    pub fn redials(&self) -> u64 {
        self.redials.load(Ordering::Relaxed)
    }

    /// Whether a warm connection to `peer` is open now.
    pub fn is_warm(&self, peer: EndpointId) -> bool {
        let warm = self.warm.lock().unwrap_or_else(PoisonError::into_inner);
        warm.get(&peer).is_some_and(Warm::usable)
    }

    /// QUIC's counters of the warm connection to `peer`, if one is open (its round trip and
    /// what it has carried, for a diagnostics screen or the logs).
    pub fn warm_stats(&self, peer: EndpointId) -> Option<ConnectionStats> {
        let warm = self.warm.lock().unwrap_or_else(PoisonError::into_inner);
        warm.get(&peer)
            .filter(|w| w.usable())
            .map(|w| w.conn.stats())
    }

    /// Connects to `peer` and opens the conversation's stream.
    async fn open(
        &self,
        peer: EndpointAddr,
        opts: &ConversationOptions,
    ) -> Result<(Connection, (SendStream, RecvStream)), TransportError> {
        let conn = self.connect(peer, opts).await?;
        // A hub that turns this device away right after the handshake (a stranger, a spent
        // invite) may close before the stream opens: its reason is the error, not "cut".
        let s = conn.open_bi().await.map_err(|e| {
            super::driver::peer_close(&conn).unwrap_or_else(|| TransportError::io(e))
        })?;
        Ok((conn, s))
    }

    async fn connect(
        &self,
        peer: EndpointAddr,
        opts: &ConversationOptions,
    ) -> Result<Connection, TransportError> {
        timeout(opts.connect_timeout, self.endpoint.connect(peer, ALPN))
            .await
            .map_err(|_| TransportError::Connect("超时".into()))?
            .map_err(|e| TransportError::Connect(e.to_string()))
    }

    /// The warm connection to `remote`, taken out for one conversation, if still usable.
    fn take_warm(&self, remote: EndpointId) -> Option<Connection> {
        let kept = self
            .warm
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&remote)?;
        if kept.usable() {
            return Some(kept.conn);
        }
        kept.conn.close(VarInt::from_u32(close::DONE), b"done");
        None
    }

    /// Keeps `conn` for `warm`, closing any other connection kept for the same peer.
    fn keep_warm(&self, conn: Connection, warm: Duration) {
        let remote = conn.remote_id();
        let until = Instant::now() + warm;
        let old = self
            .warm
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(remote, Warm { conn, until });
        if let Some(old) = old {
            old.conn.close(VarInt::from_u32(close::DONE), b"done");
        }
    }

    /// Closes every connection (conversations in progress end with [`close::SHUTDOWN`] after
    /// their current frame), the accept loop and the endpoint; first waits, at most
    /// [`SHUTDOWN_DRAIN`], for the peers' ends of the conversations just finished.
    pub async fn shutdown(mut self) {
        // The hub reads the end of the last conversations (and closes them well) first.
        let mut drains =
            std::mem::take(&mut *self.drains.lock().unwrap_or_else(PoisonError::into_inner));
        let _ = timeout(SHUTDOWN_DRAIN, async {
            while drains.join_next().await.is_some() {}
        })
        .await;
        let warm = std::mem::take(&mut *self.warm.lock().unwrap_or_else(PoisonError::into_inner));
        for (_, w) in warm {
            w.conn.close(VarInt::from_u32(close::DONE), b"done");
        }
        match self.acceptor.as_mut() {
            Some(acceptor) => {
                acceptor.cancel.cancel();
                if let Some(task) = acceptor.task.take()
                    && let Err(e) = task.await
                {
                    tracing::warn!("accept loop: {e}");
                }
            }
            None => self.endpoint.close().await,
        }
    }
}

/// Runs a dialer's `conversation`, whose `opening` was already produced, on `conn` and its
/// `streams`; closes `conn` if it fails.
async fn dial<C: Conversation>(
    conn: &Connection,
    (send, recv): (SendStream, RecvStream),
    conversation: C,
    opening: Reply,
    redial_by: Option<Instant>,
    opts: &ConversationOptions,
) -> Result<super::driver::Ended<Opened<C>>, TransportError> {
    let driver = Driver {
        conn,
        send,
        recv,
        opts,
        metrics: None,
        shutdown: None,
        conversation: Some(Opened {
            inner: conversation,
            opening: Some(opening),
        }),
        stats: Stats {
            remote: conn.remote_id(),
            frames_in: 0,
            frames_out: 0,
            bytes_in: 0,
            bytes_out: 0,
        },
        side: Side::Dialer,
        local_done: false,
        remote_done: false,
        finished: false,
        unread_out: 0,
        keep_open: true,
        redial_by,
        tail_probe: None,
    };
    driver.run().await.inspect_err(|_| {
        if conn.close_reason().is_none() {
            conn.close(VarInt::from_u32(close::PROTOCOL), b"");
        }
    })
}

/// A conversation whose opening frames were already produced (to check them before the
/// stream opened).
struct Opened<C> {
    inner: C,
    opening: Option<Reply>,
}

impl<C: Conversation> Conversation for Opened<C> {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(self.opening.take().unwrap_or_default())
    }

    fn on_frame(&mut self, frame: &[u8]) -> shouwang_core::Result<Reply> {
        self.inner.on_frame(frame)
    }

    fn on_wake(&mut self) -> shouwang_core::Result<Reply> {
        self.inner.on_wake()
    }

    fn error_frame(&mut self, error: &shouwang_core::Error) -> Option<Vec<u8>> {
        self.inner.error_frame(error)
    }
}
