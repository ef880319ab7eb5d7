//! Local-network discovery (mDNS): a device finds a peer by its endpoint id alone.
//!
//! mDNS sends multicast, which must never leave this machine. The test therefore runs only
//! where loopback is the sole network interface: in a private network namespace. Run normally,
//! it re-runs itself inside one (`unshare -n`, which needs root, and `ip` from iproute2, with
//! multicast enabled on loopback); where a namespace cannot be made it is skipped with a
//! message.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(feature = "mdns")]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use shouwang_relay::transport::{
    Conversation, ConversationFactory, ConversationOptions, EndpointAddr, EndpointId, Node,
    NodeConfig, Reply, SecretKey, TransportMetrics,
};

/// Whether every network interface is loopback (so multicast cannot leave the machine).
fn only_loopback() -> bool {
    // /proc/net/dev lists the interfaces of this process's network namespace.
    match std::fs::read_to_string("/proc/net/dev") {
        Ok(text) => text
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .all(|name| name.trim() == "lo"),
        Err(_) => false,
    }
}

#[derive(Debug)]
struct Ping;

impl Conversation for Ping {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(Reply::send(vec![b"ping".to_vec()]))
    }

    fn on_frame(&mut self, _frame: &[u8]) -> shouwang_core::Result<Reply> {
        // Done once the answer came (a dialer returns as soon as it is done).
        Ok(Reply::finish(vec![]))
    }
}

#[derive(Debug)]
struct Pong;

impl Conversation for Pong {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(Reply::nothing())
    }

    fn on_frame(&mut self, _frame: &[u8]) -> shouwang_core::Result<Reply> {
        Ok(Reply::finish(vec![b"pong".to_vec()]))
    }
}

#[derive(Debug)]
struct PongFactory;

impl ConversationFactory for PongFactory {
    fn start(&self, _remote: EndpointId) -> shouwang_core::Result<Box<dyn Conversation>> {
        Ok(Box::new(Pong))
    }
}

const TEST: &str = "a_peer_on_the_local_network_is_found_by_its_id_alone";
const SETUP: &str = "ip link set lo up && ip link set lo multicast on && \
    ip route add 224.0.0.0/4 dev lo";

/// Runs this test again inside a new network namespace. `false` if none can be made here.
fn rerun_in_namespace() -> bool {
    let probe = Command::new("unshare")
        .args(["-n", "sh", "-c", SETUP])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        return false;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!("{SETUP} && exec \"$0\" --exact {TEST} --nocapture");
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .arg(&exe)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the test failed inside its network namespace"
    );
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_on_the_local_network_is_found_by_its_id_alone() {
    if !only_loopback() {
        if !rerun_in_namespace() {
            eprintln!(
                "skipped: mDNS is tested only inside a private network namespace \
                 (needs root, unshare and ip); none could be created here"
            );
        }
        return;
    }
    let lan = |key| NodeConfig {
        lan_discovery: true,
        ..NodeConfig::loopback(key)
    };
    let peer = Node::serve(
        lan(SecretKey::generate()),
        Arc::new(PongFactory),
        ConversationOptions::default(),
        Arc::new(TransportMetrics::default()),
    )
    .await
    .unwrap();
    let phone = Node::bind(lan(SecretKey::generate())).await.unwrap();
    // No address at all: only mDNS can tell the phone where the peer is.
    let opts = ConversationOptions {
        connect_timeout: Duration::from_secs(20),
        ..ConversationOptions::default()
    };
    let (_, stats) = phone
        .converse(EndpointAddr::new(peer.id()), Ping, &opts)
        .await
        .unwrap();
    assert_eq!(stats.frames_in, 1);
    phone.shutdown().await;
    peer.shutdown().await;
}
