//! The school's built-in relay's TCP listener: iroh's relay service behind our own accept
//! loop, so that a connection holds a place only while it earns it.
//!
//! `iroh_relay::server::Server::spawn` times a connection out only until its WebSocket
//! upgrade: after the `101`, the relay's key proof waits for the client's answer with no
//! timer, in a task nothing tracks, and nothing caps how many connections one address opens.
//! Anyone reaching the relay's port could hold thousands of upgraded connections that never
//! answer, each a task, a socket and its buffers, until the process runs out of files. Here:
//!
//! 1. Each TCP connection takes a place counted against its source address (at most
//!    [`PER_ADDRESS`]) and against all of them ([`TOTAL`]) until it is established (the
//!    relay has checked the client's key and our admission, `super::hub::relay_access`);
//!    one over either is closed at once. Established connections give their place back: a
//!    school's phones may all come from one carrier address, and the admission bounds them.
//! 2. A connection not established within [`ESTABLISH`] is shut down, whatever stage it is
//!    at (request headers, the upgrade, the key proof).
//! 3. An accept that fails (out of files) waits [`ACCEPT_BACKOFF`] before the next, instead
//!    of spinning.
//!
//! A connection the relay's admission refuses after the upgrade keeps its place until
//! [`ESTABLISH`]: this side holds a second handle on the socket to shut it down, and cannot
//! tell when the relay's task has let its own go.
//!
//! What it serves is iroh's relay service (`/relay`) and the probe iroh's network report
//! sends (`/ping`); everything else is `404`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::service::Service;
use hyper_util::rt::TokioIo;
use iroh_relay::server::http_server::{RelayService, RelayServiceWithNotify};
use iroh_relay::server::streams::MaybeTlsStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tracing::{debug, warn};

use super::OwnedTask;
use super::connections::{Connections, Place};

/// Connections one source address may have establishing at once.
pub const PER_ADDRESS: usize = 64;
/// Connections establishing at once, every address together.
pub const TOTAL: usize = 512;
/// How long a connection may take from its accept to being a relay client.
pub const ESTABLISH: Duration = Duration::from_secs(10);
/// The wait after an accept failed.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The relay's listener, serving until dropped.
#[derive(Debug)]
pub(crate) struct RelayListener {
    addr: SocketAddr,
    service: RelayService,
    _task: OwnedTask,
}

impl RelayListener {
    /// Binds `bind` and serves `service` on it.
    pub(crate) async fn bind(bind: SocketAddr, service: RelayService) -> std::io::Result<Self> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let places = Connections::new(PER_ADDRESS, TOTAL, ESTABLISH);
        let task = OwnedTask::spawn(accept_loop(listener, service.clone(), places));
        Ok(RelayListener {
            addr,
            service,
            _task: task,
        })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The relay service (its registry of clients).
    pub(crate) fn service(&self) -> &RelayService {
        &self.service
    }

    /// Stops accepting and disconnects every relay client.
    pub(crate) async fn shutdown(self) {
        let service = self.service.clone();
        drop(self);
        service.shutdown().await;
    }
}

async fn accept_loop(listener: TcpListener, service: RelayService, places: Connections) {
    // Each connection's task ends by itself within `ESTABLISH` or as a relay client (which the
    // service disconnects at shutdown); the set only aborts the establishing ones on drop.
    let mut establishing = tokio::task::JoinSet::new();
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!("relay: accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        while establishing.try_join_next().is_some() {}
        let Some(place) = places.admit(from.ip()) else {
            debug!(%from, "relay: no place for another connection from this address");
            continue;
        };
        establishing.spawn(serve(stream, service.clone(), place));
    }
}

/// Serves one connection: until it is established, or shut down at [`ESTABLISH`].
async fn serve(stream: TcpStream, service: RelayService, _place: Place) {
    let deadline = tokio::time::Instant::now() + ESTABLISH;
    // A second handle on the socket: the relay's task owns the stream once upgraded, and this
    // one shuts it down if the key proof never comes.
    let (stream, handle) = match split_handle(stream) {
        Ok(both) => both,
        Err(e) => {
            debug!("relay: {e}");
            return;
        }
    };
    let mut shutter = Shutter(Some(handle));
    let established = Arc::new(Notify::new());
    let notified = established.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let upgrading = Arc::new(AtomicBool::new(false));
    let svc = Watched {
        inner: RelayServiceWithNotify::new(service, established.clone()),
        upgrading: upgrading.clone(),
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(MaybeTlsStream::Plain(stream)), svc)
        .with_upgrades();
    tokio::select! {
        _ = &mut notified => {
            shutter.established();
            return;
        }
        served = conn => {
            if let Err(e) = served {
                debug!("relay: connection: {e}");
            }
        }
        _ = tokio::time::sleep_until(deadline) => {
            debug!("relay: connection not established in time");
            return;
        }
    }
    // Served: a plain request answered (the connection is closed), or the upgrade handed to
    // the relay's own task, which now proves the client's key. That one has until the
    // deadline.
    if !upgrading.load(Ordering::Relaxed) {
        return;
    }
    tokio::select! {
        _ = &mut notified => shutter.established(),
        _ = tokio::time::sleep_until(deadline) => {
            debug!("relay: key proof not done in time");
        }
    }
}

/// Shuts the socket down when dropped, unless the connection was established: whatever
/// holds the stream (hyper, the relay's upgrade task) then fails its next read or write and
/// lets it go. Dropped on every way out of [`serve`], an abort at shutdown included.
struct Shutter(Option<std::net::TcpStream>);

impl Shutter {
    fn established(&mut self) {
        self.0 = None;
    }
}

impl Drop for Shutter {
    fn drop(&mut self) {
        if let Some(socket) = self.0.take() {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The stream, and a handle on the same socket to shut it down with.
fn split_handle(stream: TcpStream) -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let std = stream.into_std()?;
    let handle = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, handle))
}

/// The relay's service, noting whether a request asked to become a relay connection.
#[derive(Debug, Clone)]
struct Watched {
    inner: RelayServiceWithNotify,
    upgrading: Arc<AtomicBool>,
}

impl Service<hyper::Request<hyper::body::Incoming>> for Watched {
    type Response =
        <RelayServiceWithNotify as Service<hyper::Request<hyper::body::Incoming>>>::Response;
    type Error = <RelayServiceWithNotify as Service<hyper::Request<hyper::body::Incoming>>>::Error;
    type Future =
        <RelayServiceWithNotify as Service<hyper::Request<hyper::body::Incoming>>>::Future;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        if req.uri().path() == iroh_relay::http::RELAY_PATH {
            self.upgrading.store(true, Ordering::Relaxed);
        }
        self.inner.call(req)
    }
}
