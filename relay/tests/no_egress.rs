//! Nothing leaves the test network: while the relay, the hub and two devices run (one direct,
//! one through the relay only), every packet this process sends goes to a loopback address.
//!
//! The test watches itself with `strace` (attached to its own process, all threads) and reads
//! every `connect` of a TCP socket and every send: no DNS query, no default relay, no pkarr
//! publishing, no port-mapping probe of the gateway. Where `strace` is missing or may not attach,
//! it is skipped with a message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::now;

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use shouwang_core::roles::Role;
use shouwang_relay::handshake;
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_relay::transport::{ConversationOptions, EndpointAddr, Node, NodeConfig, SecretKey};

/// The scenario under watch.
async fn scenario(dir: &std::path::Path) {
    common::init_school(dir);
    let server = Server::start(ServerConfig::loopback(dir.join("hub")))
        .await
        .unwrap();
    let relay = server.relay_url().unwrap().clone();
    let opts = ConversationOptions::default();

    let direct = Node::bind(NodeConfig::loopback(SecretKey::generate()).with_relay(relay.clone()))
        .await
        .unwrap();
    let invite = server
        .invite("王瑞侠", Role::HeadTeacher, now(), now() + 86_400)
        .unwrap()
        .invite;
    let enrolled = handshake::enroll(&direct, &invite, now(), &opts)
        .await
        .unwrap();
    handshake::greet(&direct, server.hub_addr(), &enrolled.certificate, &opts)
        .await
        .unwrap();

    let relayed = Node::bind(NodeConfig {
        bind: vec![],
        ..NodeConfig::new(SecretKey::generate()).with_relay(relay.clone())
    })
    .await
    .unwrap();
    let invite = server
        .invite("刘桂兰", Role::LoveMother, now(), now() + 86_400)
        .unwrap()
        .invite;
    let enrolled = handshake::enroll(&relayed, &invite, now(), &opts)
        .await
        .unwrap();
    let hub = EndpointAddr::new(server.hub_id()).with_relay_url(relay);
    handshake::greet(&relayed, hub, &enrolled.certificate, &opts)
        .await
        .unwrap();
    // Let background work (relay probes, path discovery) run for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    direct.shutdown().await;
    relayed.shutdown().await;
    server.shutdown().await;
}

/// Every inet address in `text` (`inet_addr("…")` and `inet_pton(AF_INET6, "…", …)`).
fn addresses(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for marker in ["inet_addr(\"", "inet_pton(AF_INET6, \""] {
        let mut rest = text;
        while let Some(i) = rest.find(marker) {
            rest = &rest[i + marker.len()..];
            if let Some(end) = rest.find('"') {
                if let Ok(ip) = rest[..end].parse() {
                    out.push(ip);
                }
                rest = &rest[end..];
            }
        }
    }
    out
}

/// The endpoints in strace's `-yy` socket annotations (`<TCP:[a:p->b:q]>`), remote side only.
fn remote_ends(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("->") {
        rest = &rest[i + 2..];
        let end = rest.find(']').unwrap_or(rest.len());
        let host = rest[..end].rsplit_once(':').map_or("", |(h, _)| h);
        if let Ok(ip) = host.trim_matches(['[', ']']).parse() {
            out.push(ip);
        }
    }
    out
}

/// Lines of the trace that send to, or open a TCP connection to, a non-loopback address.
fn escapes(trace: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for line in trace.lines() {
        if line.contains("NETLINK") {
            continue;
        }
        let is_send = ["sendto(", "sendmsg(", "sendmmsg(", "write(", "writev("]
            .iter()
            .any(|s| line.contains(s));
        let is_tcp_connect = line.contains("connect(") && line.contains("<TCP");
        if !(is_send || is_tcp_connect) {
            continue;
        }
        // In a send, `ipi_addr`/`ipi_spec_dst` of IP_PKTINFO name the source, not the target.
        let targets = line.split("msg_control").next().unwrap_or(line);
        let mut ips = addresses(targets);
        ips.extend(remote_ends(line));
        if ips
            .iter()
            .any(|ip| !ip.is_loopback() && !ip.is_unspecified())
        {
            bad.push(line.to_owned());
        }
    }
    bad
}

#[test]
fn nothing_leaves_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let strace = Command::new("strace")
        .args(["-f", "-qq", "-yy", "-s", "0", "-e"])
        .arg("trace=connect,sendto,sendmsg,sendmmsg,write,writev")
        .arg("-o")
        .arg(&trace)
        .arg("-p")
        .arg(std::process::id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut strace) = strace else {
        eprintln!("skipped: strace is not installed");
        return;
    };
    // Wait until strace is attached (it creates its output file then).
    for _ in 0..100 {
        if trace.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(status)) = strace.try_wait() {
        eprintln!("skipped: strace could not attach ({status})");
        return;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(scenario(dir.path()));
    drop(runtime);

    // Stop only the strace this test started.
    strace.kill().unwrap();
    strace.wait().unwrap();
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        text.contains("127.0.0.1"),
        "the trace saw no loopback traffic: strace did not follow the threads"
    );
    let bad = escapes(&text);
    assert!(bad.is_empty(), "traffic left loopback:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_itself_catches_escapes() {
    let sample = r#"12 connect(13<TCP:[5]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("203.0.113.9")}, 16) = -1 EINPROGRESS
12 connect(12<UDP:[0.0.0.0:1]>, {sa_family=AF_INET, sin_port=htons(1), sin_addr=inet_addr("10.254.254.254")}, 16) = 0
12 sendto(9<UDP:[0.0.0.0:5]>, ""..., 30, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("192.0.2.53")}, 16) = 30
12 sendto(14<TCP:[127.0.0.1:1->127.0.0.1:2]>, ""..., 2, MSG_NOSIGNAL, NULL, 0) = 2
12 write(15<TCP:[10.0.0.2:1->198.51.100.7:80]>, ""..., 9) = 9
12 sendmsg(16<UDP:[127.0.0.1:3]>, {msg_name={sa_family=AF_INET, sin_port=htons(4), sin_addr=inet_addr("127.0.0.1")}, msg_control=[{cmsg_data={ipi_spec_dst=inet_addr("10.1.1.1")}}]}, 0) = 9
"#;
    let bad = escapes(sample);
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(bad[0].contains("203.0.113.9"));
    assert!(bad[1].contains("192.0.2.53"));
    assert!(bad[2].contains("198.51.100.7"));
}
