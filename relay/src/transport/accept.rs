//! The accepting side: an iroh [`ProtocolHandler`] for `shouwang/sync/1`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use iroh::endpoint::{Connection, VarInt};
use iroh::protocol::{AcceptError, ProtocolHandler};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::driver::{Driver, Side};
use super::{
    ConversationFactory, ConversationOptions, Stats, TransportError, TransportMetrics, close,
};

/// How long shutdown waits for conversations to end before the endpoint closes under them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Accepts `shouwang/sync/1` connections and runs a conversation on each. Register it on an
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
            }),
        }
    }

    /// The counters of this handler's connections.
    pub fn metrics(&self) -> &Arc<TransportMetrics> {
        &self.inner.metrics
    }

    async fn converse(&self, conn: &Connection) -> Result<Stats, TransportError> {
        let inner = &self.inner;
        let remote = conn.remote_id();
        // The stream appears once the peer sends its opening frames.
        let (send, recv) = match timeout(inner.opts.idle_timeout, conn.accept_bi()).await {
            Ok(Ok(streams)) => streams,
            Ok(Err(e)) => return Err(TransportError::io(e)),
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
        };
        driver.run().await.map(|(_, stats)| stats)
    }
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
        let _tracked = self.inner.tracker.token();
        let _open = OpenGuard::new(&self.inner.metrics);
        let remote = conn.remote_id();
        match self.converse(&conn).await {
            Ok(stats) => debug!(
                remote = %remote.fmt_short(),
                frames_in = stats.frames_in,
                frames_out = stats.frames_out,
                "conversation done"
            ),
            Err(TransportError::Conversation(e)) => {
                info!(remote = %remote.fmt_short(), "refused: {e}")
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
