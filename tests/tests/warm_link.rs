//! A phone keeping its connection to the hub warm between syncs (`transport` module docs,
//! point 6), through the userspace link emulator on loopback: the real hub, a real device
//! endpoint and store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv6Addr;
use std::time::Duration;

use shouwang_core::RecordInput;
use shouwang_relay::device::{self, Identity};
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_relay::transport::{ConversationOptions, Node, NodeConfig, TransportMetrics};
use shouwang_tests::fixtures::{kv, small_hub};
use shouwang_tests::link::{Link, LinkConfig};
use shouwang_tests::link_hub::{JoinOver, hub_only, hub_socket, join_over};
use shouwang_tests::wait::eventually;

/// The hub's idle timeout here, and so how long it keeps a connection warm.
const HUB_IDLE: Duration = Duration::from_secs(2);

/// 1. The hub lets a warm connection go while the phone's link is down, so the phone never
///    hears of it, and the phone's next sync starts on the dead connection. The sync is tried
///    once more on a new connection, and the 家访 written in between reaches the school.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_1_a_warm_connection_the_hub_closed_unheard_costs_the_phone_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = tokio::task::block_in_place(|| small_hub(dir.path()));
    let server = Server::start(ServerConfig {
        idle_timeout: HUB_IDLE,
        ..hub_only(data.root())
    })
    .await
    .unwrap();
    let link = Link::start(LinkConfig::ideal(
        (Ipv6Addr::LOCALHOST, 0).into(),
        hub_socket(&server),
    ))
    .await
    .unwrap();
    let opts = ConversationOptions {
        idle_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(10),
        ..device::warm_options()
    };
    let JoinOver { joined, .. } =
        join_over(&link, &data, &dir.path().join("phone.db"), &opts).await;
    let mut archive = joined.unwrap();
    let identity = Identity::load(&mut archive).unwrap();
    let hub = identity.hub().unwrap();
    let node = Node::bind(NodeConfig {
        bind: vec![(Ipv6Addr::LOCALHOST, 0).into()],
        ..NodeConfig::new(identity.secret.clone())
    })
    .await
    .unwrap();

    let m = server.transport_metrics().unwrap().clone();
    let done = TransportMetrics::get(&m.conversations_done);
    let (mut archive, _) = device::sync_hub(&node, &identity, archive, &opts, None)
        .await
        .unwrap();
    assert!(node.is_warm(hub.id), "the phone keeps its connection");
    // The phone reports success before the hub has read its end of the stream.
    assert!(
        eventually(Duration::from_secs(10), || TransportMetrics::get(
            &m.conversations_done
        ) > done)
        .await
    );
    assert_eq!(TransportMetrics::get(&m.connections_open), 1);

    // The link goes down for longer than the hub keeps the connection: its close is lost.
    link.set_up(false);
    assert!(
        eventually(Duration::from_secs(10), || TransportMetrics::get(
            &m.connections_open
        ) == 0)
        .await
    );
    link.set_up(true);
    assert!(node.is_warm(hub.id), "the phone did not hear the close");

    let child = archive.children(None, true).unwrap()[0].name.clone();
    archive
        .add_record(&RecordInput {
            kind: "家访".into(),
            child: Some(child.clone()),
            class: None,
            date: "2026-11-20".into(),
            fields: kv(&[("notes", "奶奶说孩子最近作业按时完成。")]),
        })
        .unwrap();
    let before = TransportMetrics::get(&m.connections_total);
    let synced = device::sync_hub(&node, &identity, archive, &opts, None).await;
    let (_archive, progress) = synced.unwrap_or_else(|e| panic!("the second sync failed: {e}"));
    assert!(progress.bytes_sent > 0);
    assert_eq!(
        TransportMetrics::get(&m.connections_total) - before,
        1,
        "one new connection"
    );
    node.shutdown().await;

    let mut office = data.open_archive().unwrap();
    let file = office.child_file(&child).unwrap();
    assert!(
        file.records.iter().any(|r| r
            .fields
            .iter()
            .any(|f| f.value == "奶奶说孩子最近作业按时完成。")),
        "the 家访 is at the school"
    );
    server.shutdown().await;
}
