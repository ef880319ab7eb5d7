//! The school's built-in relay's TCP side against a stranger on the network: a connection
//! holds a place only until it becomes a relay client, and only for a while.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use shouwang_relay::server::{Server, ServerConfig};
use shouwang_tests::http::{closed_within, connect_from};

/// A WebSocket upgrade to the relay protocol, as an iroh client sends it.
const UPGRADE: &[u8] = b"GET /relay HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Protocol: iroh-relay-v2\r\n\r\n";

/// Sends the upgrade on `stream` and reads the answer's head.
fn upgrade(stream: &mut TcpStream) -> String {
    stream.write_all(UPGRADE).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed before the head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// 1. A stranger opens relay connections, upgrades each to the relay protocol and then never
///    proves a key: every one is closed within `ESTABLISH` (iroh's own listener times a
///    connection out only until the upgrade, and kept these for ever).
/// 2. Connections that send nothing at all: one address holds at most `PER_ADDRESS` of them;
///    the next is closed at once, and another address still gets in and is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_s_stalled_relay_connections_are_capped_and_closed() {
    use shouwang_relay::server::relay_listener::{ESTABLISH, PER_ADDRESS};

    let dir = tempfile::tempdir().unwrap();
    common::init_school(dir.path());
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let relay = SocketAddr::from((Ipv4Addr::LOCALHOST, server.relay_addr().unwrap().port()));

    tokio::task::spawn_blocking(move || {
        let stalled_from = Ipv4Addr::new(127, 0, 0, 7);
        let began = Instant::now();
        let mut stalled: Vec<TcpStream> = (0..30)
            .map(|_| {
                let mut s = connect_from(stalled_from, relay);
                let head = upgrade(&mut s);
                assert!(head.starts_with("HTTP/1.1 101"), "{head}");
                s
            })
            .collect();
        for s in &mut stalled {
            let left = (ESTABLISH + Duration::from_secs(10)).saturating_sub(began.elapsed());
            // Whatever the relay sent after the `101` (its challenge) is read first.
            s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buf = [0u8; 256];
            let closed = loop {
                match s.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => continue,
                    Err(e) => {
                        break !matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        );
                    }
                }
            };
            assert!(
                closed,
                "an upgraded connection that never proved a key was kept"
            );
        }

        let quiet_from = Ipv4Addr::new(127, 0, 0, 8);
        let mut held: Vec<TcpStream> = (0..PER_ADDRESS)
            .map(|_| connect_from(quiet_from, relay))
            .collect();
        let mut over = connect_from(quiet_from, relay);
        assert!(
            closed_within(&mut over, Duration::from_secs(20)),
            "a connection past the address's share was kept"
        );
        assert!(
            !closed_within(&mut held[0], Duration::from_millis(200)),
            "those within it wait for their time"
        );
        // Another address is served: iroh's probe answers.
        let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 9), relay);
        other
            .write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        other.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // The quiet ones are closed too once their time is up.
        for s in &mut held {
            assert!(closed_within(s, ESTABLISH + Duration::from_secs(10)));
        }
    })
    .await
    .unwrap();
    server.shutdown().await;
}
