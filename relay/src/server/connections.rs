//! The office console's connections: how many at once, and how long an idle one stays.
//!
//! The console listens on the school's LAN (`README.Debian` suggests `[http] bind = 0.0.0.0`),
//! where anyone on the Wi-Fi may connect. hyper, as `axum::serve` runs it, sets no timer: a
//! connection that sent half a request's headers and then nothing held a task, a file
//! descriptor and its buffers for ever, and nothing capped how many one address could open.
//! So:
//!
//! 1. Each TCP connection takes a place counted against its source address (an IPv6 one as
//!    its /64, which one host holds whole and picks any address of; at most
//!    [`PER_ADDRESS`] at once) and against all of them ([`TOTAL`]), before its TLS handshake
//!    if any; one over either is closed at once, and the place is given back when the
//!    connection closes. One stranger can no longer keep the office's browsers out: theirs
//!    come from other addresses.
//! 2. A connection that moves no byte either way for [`IDLE`] is closed ([`Guarded`]): a
//!    browser opens a new one for its next request. Every byte read or written resets the
//!    wait, so a long page on a slow link is not cut.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// Connections one source address may hold at once (a browser opens about six to a host; the
/// office's computers may share an address behind a router).
pub const PER_ADDRESS: usize = 64;

/// Connections the console holds at once, every address together.
pub const TOTAL: usize = 512;

/// How long a connection may move no byte either way before it is closed.
pub const IDLE: Duration = Duration::from_secs(90);

/// The places taken, by source address. Cloned, it counts the same places.
#[derive(Debug, Clone)]
pub(crate) struct Connections {
    taken: Arc<Mutex<Taken>>,
    per_address: usize,
    total: usize,
    idle: Duration,
}

#[derive(Debug, Default)]
struct Taken {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

impl Default for Connections {
    fn default() -> Connections {
        Connections::new(PER_ADDRESS, TOTAL, IDLE)
    }
}

impl Connections {
    pub(crate) fn new(per_address: usize, total: usize, idle: Duration) -> Connections {
        Connections {
            taken: Arc::new(Mutex::new(Taken::default())),
            per_address,
            total,
            idle,
        }
    }

    /// A place for a connection from `from`, or `None` if its address or the console is full.
    /// An IPv6 address counts as its /64 (one host holds a whole /64 and picks any address in
    /// it), an IPv4-mapped one as its IPv4 address.
    pub(crate) fn admit(&self, from: IpAddr) -> Option<Place> {
        let from = counted_as(from);
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let mine = taken.by_address.get(&from).copied().unwrap_or(0);
        if mine >= self.per_address || taken.total >= self.total {
            return None;
        }
        taken.by_address.insert(from, mine + 1);
        taken.total += 1;
        Some(Place {
            taken: self.taken.clone(),
            from,
        })
    }

    /// `io`, from `from`, with a place: closed when idle, its place given back when dropped.
    /// `None` (and `io` dropped: closed) if there is no place for it.
    pub(crate) fn guard<Io>(&self, io: Io, from: IpAddr) -> Option<Guarded<Io>> {
        let place = self.admit(from)?;
        Some(Guarded {
            io,
            _place: place,
            idle: self.idle,
            deadline: Box::pin(tokio::time::sleep(self.idle)),
        })
    }
}

/// The address a connection from `ip` is counted under (see [`Connections::admit`]).
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// A connection's place; given back when dropped.
#[derive(Debug)]
pub(crate) struct Place {
    taken: Arc<Mutex<Taken>>,
    from: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.total = taken.total.saturating_sub(1);
        if let Some(n) = taken.by_address.get_mut(&self.from) {
            *n -= 1;
            if *n == 0 {
                taken.by_address.remove(&self.from);
            }
        }
    }
}

/// A connection holding its place, failing with [`io::ErrorKind::TimedOut`] once it has
/// moved no byte for its idle time (hyper then closes it).
#[derive(Debug)]
pub(crate) struct Guarded<Io> {
    io: Io,
    _place: Place,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl<Io> Guarded<Io> {
    /// A byte moved: the wait starts again.
    fn moved(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// Nothing moved: whether the wait is over.
    fn poll_idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Guarded<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx),
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Guarded<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.poll_idle(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_idle(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Plain HTTP's listener: TCP connections, each [`Guarded`] by [`Connections`].
#[derive(Debug)]
pub(crate) struct Limited {
    tcp: TcpListener,
    connections: Connections,
}

impl Limited {
    pub(crate) fn new(tcp: TcpListener, connections: Connections) -> Limited {
        Limited { tcp, connections }
    }
}

impl axum::serve::Listener for Limited {
    type Io = Guarded<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.tcp.accept().await {
                Ok((stream, peer)) => match self.connections.guard(stream, peer.ip()) {
                    Some(guarded) => return (guarded, peer),
                    None => tracing::debug!(%peer, "console: no place for another connection"),
                },
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!("console: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::serve::ListenerExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpSocket;

    /// A console of one page on 127.0.0.1, counting with `connections`.
    async fn console(connections: Connections) -> (SocketAddr, super::super::OwnedTask) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "郭庄小学" }));
        let listener = Limited::new(tcp, connections).tap_io(|_| {});
        let task = super::super::OwnedTask::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        (addr, task)
    }

    /// A connection to `to` from the loopback address `from` (127.0.0.x).
    async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        socket.connect(to).await.unwrap()
    }

    /// Whether the console closes `stream` (an end of file or a reset) within `within`.
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(within, stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    /// The page, or what came before the console closed the connection (nothing, when it
    /// had no place for it).
    async fn get(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        if stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .is_ok()
        {
            let _ = stream.read_to_end(&mut answer).await;
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Half a request's headers, then nothing: closed once idle (it was held for ever).
    #[tokio::test]
    async fn a_connection_that_stops_halfway_is_closed_once_idle() {
        let (addr, _task) = console(Connections::new(
            PER_ADDRESS,
            TOTAL,
            Duration::from_millis(300),
        ))
        .await;
        let mut slow = connect_from([127, 0, 0, 1], addr).await;
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        assert!(
            closed_within(&mut slow, Duration::from_secs(20)).await,
            "still open"
        );
    }

    /// One address over its share is closed at once; another address is served; a place
    /// given back is taken again.
    #[tokio::test]
    async fn an_address_over_its_share_is_closed_and_others_are_served() {
        let (addr, _task) = console(Connections::new(2, TOTAL, IDLE)).await;
        let first = connect_from([127, 0, 0, 1], addr).await;
        let _second = connect_from([127, 0, 0, 1], addr).await;
        let mut third = connect_from([127, 0, 0, 1], addr).await;
        assert!(closed_within(&mut third, Duration::from_secs(20)).await);
        let mut office = connect_from([127, 0, 0, 2], addr).await;
        let page = get(&mut office).await;
        assert!(
            page.starts_with("HTTP/1.1 200") && page.contains("郭庄小学"),
            "{page}"
        );
        drop(first);
        let mut again = connect_from([127, 0, 0, 1], addr).await;
        let mut page = String::new();
        // The first's place comes back once the console has seen it close.
        for _ in 0..100 {
            page = get(&mut again).await;
            if page.contains("郭庄小学") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            again = connect_from([127, 0, 0, 1], addr).await;
        }
        assert!(page.contains("郭庄小学"), "{page}");
    }

    /// The console as a whole holds at most its total, whatever the addresses.
    #[test]
    fn places_are_counted_by_address_and_in_all() {
        let connections = Connections::new(2, 3, IDLE);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let a1 = connections.admit(a).unwrap();
        let _a2 = connections.admit(a).unwrap();
        assert!(connections.admit(a).is_none());
        let _b1 = connections.admit(b).unwrap();
        assert!(connections.admit(b).is_none(), "the console is full");
        drop(a1);
        assert!(connections.admit(b).is_some());
    }

    /// An IPv6 host picks any address of its /64: all of them are one address here, and an
    /// IPv4-mapped address is its IPv4 one.
    #[test]
    fn an_ipv6_host_is_counted_by_its_64() {
        let connections = Connections::new(2, 10, IDLE);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_in_it: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let next_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _a = connections.admit(one).unwrap();
        let _b = connections.admit(other_in_it).unwrap();
        assert!(connections.admit(one).is_none(), "one /64, one share");
        assert!(connections.admit(next_64).is_some());
        let v4: IpAddr = [192, 168, 1, 20].into();
        let mapped: IpAddr = "::ffff:192.168.1.20".parse().unwrap();
        let _c = connections.admit(v4).unwrap();
        let _d = connections.admit(mapped).unwrap();
        assert!(
            connections.admit(v4).is_none(),
            "the mapped address is the same host"
        );
    }
}
