//! A phone keeping its connection to the hub warm between syncs (`transport` module docs,
//! point 6), through the userspace link emulator on loopback: the real hub, a real device
//! endpoint and store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use shouwang_relay::device;
use shouwang_relay::server::ServerConfig;
use shouwang_relay::transport::{ConversationOptions, TransportMetrics};
use shouwang_tests::link_hub::{PhoneOverLink, phone_over_link, school_has, write_home_visit};
use shouwang_tests::wait::eventually;

/// The hub's idle timeout here, and so how long it keeps a connection warm.
const HUB_IDLE: Duration = Duration::from_secs(2);

/// 1. The hub lets a warm connection go while the phone's link is down, so the phone never
///    hears of it, and the phone's next sync starts on the dead connection. The sync is tried
///    once more on a new connection, and the 家访 written in between reaches the school.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_1_a_warm_connection_the_hub_closed_unheard_costs_the_phone_nothing() {
    let opts = ConversationOptions {
        idle_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(10),
        ..device::warm_options()
    };
    let PhoneOverLink {
        data,
        server,
        link,
        archive,
        identity,
        node,
        dir: _dir,
    } = phone_over_link(
        |hub| ServerConfig {
            idle_timeout: HUB_IDLE,
            ..hub
        },
        &opts,
    )
    .await;
    let hub = identity.hub().unwrap();

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

    let notes = "奶奶说孩子最近作业按时完成。";
    let child = write_home_visit(&mut archive, notes);
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

    assert!(
        school_has(&data, &child, notes),
        "the 家访 is at the school"
    );
    server.shutdown().await;
}
