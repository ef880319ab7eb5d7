//! A flood of unauthenticated connections against a hub: what anyone on the internet can do
//! to a school's server without an invite or a certificate.
//!
//! Each flooder is its own iroh endpoint (a fresh key: endpoint ids cost nothing, so the
//! per-endpoint limit alone cannot stop a flood) and keeps its connections to the hub open,
//! reconnecting half a second after the hub closes one, until the flood is dropped. Connections take
//! turns at two things:
//! - **16 MiB first frames**: the stream opens with a length of 16 MiB (the transport's
//!   `MAX_FRAME`) and then sends as much of it as the hub lets through;
//! - **silent**: the stream opens with half a length header and then says nothing more,
//!   holding a connection slot until the hub gives up on it.
//!
//! Loopback only: the flooders bind 127.0.0.1 and dial the hub's direct address.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shouwang_relay::transport::{ALPN, EndpointAddr, MAX_FRAME, Node, NodeConfig, SecretKey};
use tokio::task::JoinSet;

/// What the flood did so far.
#[derive(Debug, Default)]
pub struct FloodStats {
    /// Connections the hub accepted (QUIC handshake done).
    pub connected: AtomicU64,
    /// Connections that failed before that (the hub busy, or a timeout).
    pub failed: AtomicU64,
    /// Bytes of 16 MiB frames the hub let through before closing.
    pub bytes_sent: AtomicU64,
    /// Connections the hub closed (any reason).
    pub closed: AtomicU64,
}

impl FloodStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A counter's value.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A running flood; dropping it aborts every flooder and frees their endpoints.
#[derive(Debug)]
pub struct Flood {
    tasks: JoinSet<()>,
    stats: Arc<FloodStats>,
}

impl Flood {
    /// Starts `endpoints` flooders against `hub` (its direct address), each keeping
    /// `per_endpoint` connections open at once: `endpoints × per_endpoint` connections in all,
    /// half of them sending 16 MiB first frames, half silent. Returns once every flooder's
    /// endpoint is bound (binding is not part of the flood).
    pub async fn start(hub: EndpointAddr, endpoints: usize, per_endpoint: usize) -> Flood {
        let stats = Arc::new(FloodStats::default());
        let mut nodes = JoinSet::new();
        for _ in 0..endpoints {
            nodes.spawn(async {
                Node::bind(NodeConfig::loopback(SecretKey::generate()))
                    .await
                    .unwrap()
            });
        }
        let mut bound = Vec::new();
        while let Some(node) = nodes.join_next().await {
            bound.push(Arc::new(node.unwrap()));
        }
        let mut tasks = JoinSet::new();
        for (i, node) in bound.into_iter().enumerate() {
            for k in 0..per_endpoint {
                let big = (i * per_endpoint + k).is_multiple_of(2);
                let (node, hub, stats) = (node.clone(), hub.clone(), stats.clone());
                tasks.spawn(async move {
                    loop {
                        flood_once(&node, &hub, big, &stats).await;
                    }
                });
            }
        }
        Flood { tasks, stats }
    }

    /// The counters.
    pub fn stats(&self) -> &FloodStats {
        &self.stats
    }

    /// Connections running now.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }
}

/// One connection: dial, misbehave, wait for the hub to close it.
async fn flood_once(node: &Node, hub: &EndpointAddr, big: bool, stats: &FloodStats) {
    let conn = match tokio::time::timeout(
        Duration::from_secs(10),
        node.endpoint().connect(hub.clone(), ALPN),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        _ => {
            FloodStats::add(&stats.failed, 1);
            // Do not spin: a refused dial is retried a moment later.
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
    };
    FloodStats::add(&stats.connected, 1);
    if let Ok((mut send, _recv)) = conn.open_bi().await {
        if big {
            let header = (MAX_FRAME as u32).to_le_bytes();
            if send.write_all(&header).await.is_ok() {
                let chunk = vec![0x5Au8; 64 * 1024];
                let mut sent = 0usize;
                while sent < MAX_FRAME {
                    if send.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len();
                    FloodStats::add(&stats.bytes_sent, chunk.len() as u64);
                }
            }
        } else {
            // Half a length header: the hub sees a stream and waits for the rest.
            let _ = send.write_all(&[0x10, 0x00]).await;
        }
    }
    conn.closed().await;
    FloodStats::add(&stats.closed, 1);
    // Then again, a moment later: the flood keeps its connections up without spinning on
    // the test's own cores.
    tokio::time::sleep(Duration::from_millis(500)).await;
}
