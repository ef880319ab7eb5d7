//! The accepting side: an iroh [`ProtocolHandler`] for `shouwang/sync/1`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use iroh::EndpointId;
use iroh::endpoint::{Connection, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::driver::{Driver, Side};
use super::{
    ConnectionLimits, ConversationFactory, ConversationOptions, PRIMING_DATAGRAMS, Stats,
    TransportError, TransportMetrics, close,
};

/// How long shutdown waits for conversations to end before the endpoint closes under them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Accepts `shouwang/sync/1` connections and runs a conversation on each stream (one per
/// connection, or several one after another on a warm one: module docs, point 6). Register it on an
/// iroh router under [`super::ALPN`] (see [`super::Node::serve`]).
#[derive(Debug, Clone)]
pub struct SyncProtocol {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    factory: Arc<dyn ConversationFactory>,
    opts: ConversationOptions,
    metrics: Arc<TransportMetrics>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    open: Mutex<Open>,
}

/// Connections open now, in total and per remote endpoint.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Of those, from remotes the admission does not know.
    strangers: usize,
    by_remote: HashMap<EndpointId, usize>,
}

/// A connection's place under the [`ConnectionLimits`]; given back when dropped.
struct Slot<'a> {
    open: &'a Mutex<Open>,
    remote: EndpointId,
    stranger: bool,
}

impl<'a> Slot<'a> {
    /// A place for one more connection from `remote`, if the limits allow it.
    fn take(
        open: &'a Mutex<Open>,
        limits: ConnectionLimits,
        remote: EndpointId,
        stranger: bool,
    ) -> Option<Self> {
        let mut o = open.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = o.by_remote.get(&remote).copied().unwrap_or(0);
        if o.total >= limits.total
            || mine >= limits.per_endpoint
            || (stranger && o.strangers >= limits.strangers)
        {
            return None;
        }
        o.total += 1;
        o.strangers += usize::from(stranger);
        o.by_remote.insert(remote, mine + 1);
        Some(Slot {
            open,
            remote,
            stranger,
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        o.total = o.total.saturating_sub(1);
        o.strangers = o.strangers.saturating_sub(usize::from(self.stranger));
        if let Some(n) = o.by_remote.get_mut(&self.remote) {
            *n -= 1;
            if *n == 0 {
                o.by_remote.remove(&self.remote);
            }
        }
    }
}

impl SyncProtocol {
    /// A handler making one conversation per connection with `factory`.
    pub fn new(
        factory: Arc<dyn ConversationFactory>,
        opts: ConversationOptions,
        metrics: Arc<TransportMetrics>,
    ) -> SyncProtocol {
        SyncProtocol {
            inner: Arc::new(Inner {
                factory,
                opts,
                metrics,
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                open: Mutex::new(Open::default()),
            }),
        }
    }

    /// The counters of this handler's connections.
    pub fn metrics(&self) -> &Arc<TransportMetrics> {
        &self.inner.metrics
    }

    /// Runs the conversations of one connection: the first, then (if warm) the next ones,
    /// until the dialer closes, the warm wait runs out, or a conversation fails.
    async fn serve(&self, conn: &Connection, stranger: bool) -> Result<u64, TransportError> {
        let opts = &self.inner.opts;
        let strict = opts.idle_timeout.min(super::frame::HANDSHAKE_TIMEOUT);
        let warm = !opts.warm.is_zero();
        // A known device may connect ahead of its first conversation (point 6); a stranger
        // must open its stream at once.
        let mut wait = if warm && !stranger { opts.warm } else { strict };
        let mut conversations = 0;
        loop {
            let stats = match self.converse(conn, wait).await {
                Ok(Some(stats)) => stats,
                Ok(None) => return Ok(conversations),
                // Between conversations a warm connection may just go (the app was closed,
                // the phone lost its network): nothing was in progress.
                Err(TransportError::Io(e)) if conversations > 0 => {
                    debug!(remote = %conn.remote_id().fmt_short(), "warm connection lost: {e}");
                    return Ok(conversations);
                }
                Err(e) => return Err(e),
            };
            conversations += 1;
            debug!(
                remote = %stats.remote.fmt_short(),
                frames_in = stats.frames_in,
                frames_out = stats.frames_out,
                "conversation done"
            );
            if !warm {
                return Ok(conversations);
            }
            wait = opts.warm;
        }
    }

    /// One conversation on the next stream the dialer opens within `wait`. `None`: the
    /// dialer closed the connection after its last conversation, or opened no stream in time
    /// after one (the connection is closed as idle).
    async fn converse(
        &self,
        conn: &Connection,
        wait: Duration,
    ) -> Result<Option<Stats>, TransportError> {
        let inner = &self.inner;
        let remote = conn.remote_id();
        // The stream appears once the peer sends its opening frames.
        let accepted = tokio::select! {
            accepted = timeout(wait, conn.accept_bi()) => accepted,
            _ = inner.shutdown.cancelled() => {
                conn.close(VarInt::from_u32(close::SHUTDOWN), "服务器正在关闭".as_bytes());
                return Err(TransportError::ShuttingDown);
            }
        };
        let (send, recv) = match accepted {
            Ok(Ok(streams)) => streams,
            Ok(Err(e)) => {
                return match conn.close_reason() {
                    Some(closed) if super::driver::is_done(&closed) => Ok(None),
                    // The dialer gave up on this connection's handshake before its stream
                    // showed (module docs, point 8): not a failure.
                    Some(closed) if super::driver::is_closed_with(&closed, close::REDIAL) => {
                        TransportMetrics::add(&inner.metrics.redialed, 1);
                        Ok(None)
                    }
                    _ => Err(TransportError::io(e)),
                };
            }
            Err(_) => {
                conn.close(VarInt::from_u32(close::IDLE), "空闲超时".as_bytes());
                return Err(TransportError::Idle);
            }
        };
        let factory = inner.factory.clone();
        let started = tokio::task::spawn_blocking(move || factory.start(remote))
            .await
            .map_err(TransportError::io)?;
        let conversation = match started {
            Ok(c) => c,
            Err(e) => {
                let reason = e.to_string();
                conn.close(VarInt::from_u32(close::REFUSED), reason.as_bytes());
                TransportMetrics::add(&inner.metrics.conversations_failed, 1);
                TransportMetrics::add(&inner.metrics.refused, 1);
                return Err(TransportError::Conversation(e));
            }
        };
        let driver = Driver {
            conn,
            send,
            recv,
            opts: &inner.opts,
            metrics: Some(&inner.metrics),
            shutdown: Some(inner.shutdown.clone()),
            conversation: Some(conversation),
            stats: Stats {
                remote,
                frames_in: 0,
                frames_out: 0,
                bytes_in: 0,
                bytes_out: 0,
            },
            side: Side::Acceptor,
            local_done: false,
            remote_done: false,
            finished: false,
            unread_out: 0,
            keep_open: !inner.opts.warm.is_zero(),
            redial_by: None,
            tail_probe: None,
        };
        driver.run().await.map(|ended| Some(ended.stats))
    }
}

/// Sends back each of the first [`PRIMING_DATAGRAMS`] datagrams a known device sends, then
/// waits for ever (the connection's end drops it).
///
/// A device primes a connection it makes ahead with a few one-byte datagrams
/// (`node::prime_rtt`): their acknowledgements give its QUIC loss recovery round-trip samples.
/// The hub's own recovery needs samples too, for the frames it sends during the sync: an echo
/// is ack-eliciting, and the device's acknowledgements give them. Strangers get none.
async fn echo_priming(conn: &Connection) -> std::convert::Infallible {
    for _ in 0..PRIMING_DATAGRAMS {
        let Ok(datagram) = conn.read_datagram().await else {
            break;
        };
        if conn.send_datagram(datagram).is_err() {
            break;
        }
    }
    std::future::pending().await
}

/// Keeps the open-connections gauge right however a connection ends.
struct OpenGuard<'a>(&'a TransportMetrics);

impl<'a> OpenGuard<'a> {
    fn new(m: &'a TransportMetrics) -> Self {
        TransportMetrics::add(&m.connections_total, 1);
        TransportMetrics::add(&m.connections_open, 1);
        OpenGuard(m)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ProtocolHandler for SyncProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        if self.inner.shutdown.is_cancelled() {
            conn.close(
                VarInt::from_u32(close::SHUTDOWN),
                "服务器正在关闭".as_bytes(),
            );
            return Ok(());
        }
        let remote = conn.remote_id();
        // Before anything else, and cheaply: no stream, no conversation, no blocking task.
        let stranger = self
            .inner
            .opts
            .admission
            .as_ref()
            .is_some_and(|a| !a.knows(&remote));
        let Some(_slot) = Slot::take(&self.inner.open, self.inner.opts.limits, remote, stranger)
        else {
            TransportMetrics::add(&self.inner.metrics.busy, 1);
            debug!(remote = %remote.fmt_short(), "refused: too many connections");
            conn.close(
                VarInt::from_u32(close::BUSY),
                "连接太多，请稍后再试".as_bytes(),
            );
            return Ok(());
        };
        let _tracked = self.inner.tracker.token();
        let _open = OpenGuard::new(&self.inner.metrics);
        let served = if stranger {
            self.serve(&conn, stranger).await
        } else {
            tokio::select! {
                served = self.serve(&conn, stranger) => served,
                never = echo_priming(&conn) => match never {},
            }
        };
        match served {
            Ok(_) => {}
            Err(TransportError::Conversation(e)) => {
                // Escaped and cut short: the reason may hold the peer's own words, which must
                // not write lines of their own into the hub's log.
                let reason: String = e.to_string().chars().take(200).collect();
                info!(remote = %remote.fmt_short(), reason = ?reason, "refused")
            }
            Err(TransportError::Idle) => debug!(remote = %remote.fmt_short(), "closed as idle"),
            Err(TransportError::Redialed) => {
                debug!(remote = %remote.fmt_short(), "the dialer dials again")
            }
            Err(e) => warn!(remote = %remote.fmt_short(), "conversation failed: {e}"),
        }
        // Every path above closes with a code; a connection merely dropped would close with
        // code 0, which reads as "done".
        if conn.close_reason().is_none() {
            conn.close(VarInt::from_u32(close::PROTOCOL), b"");
        }
        Ok(())
    }

    async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let _ = timeout(SHUTDOWN_GRACE, self.inner.tracker.wait()).await;
    }
}
