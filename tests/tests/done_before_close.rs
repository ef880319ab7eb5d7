//! A phone hears "done" as soon as the hub has confirmed everything, not one round trip later
//! when the connection's close has gone both ways (`transport` module docs, point 3): through
//! the userspace link emulator on loopback, with the real hub, a real device endpoint and
//! store, on a connection not kept warm.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use shouwang_relay::device;
use shouwang_relay::transport::{ConversationOptions, TransportMetrics};
use shouwang_tests::link_hub::{PhoneOverLink, phone_over_link, school_has, write_home_visit};
use shouwang_tests::wait::eventually;

/// 1. The link goes down the moment the phone's sync is caught up (the hub has the 家访 and
///    said so). The phone's sync succeeds all the same: it does not wait for the hub's end of
///    the stream. Once the link is back, the hub reads the phone's end, the phone's node reads
///    the hub's and closes the connection, and the hub counts the conversation done, not failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_1_the_phone_is_done_before_the_close_crosses_the_link() {
    let opts = ConversationOptions {
        // Longer than the test holds the link down: a sync that waited for the hub's end
        // would still be waiting, not failing as idle.
        idle_timeout: Duration::from_secs(60),
        connect_timeout: Duration::from_secs(10),
        ..device::default_options()
    };
    assert!(opts.warm.is_zero(), "a connection not kept warm");
    let PhoneOverLink {
        data,
        server,
        link,
        mut archive,
        identity,
        node,
        dir: _dir,
    } = phone_over_link(|hub| hub, &opts).await;
    let notes = "爷爷说孩子这周每天按时到校。";
    let child = write_home_visit(&mut archive, notes);

    let m = server.transport_metrics().unwrap().clone();
    let (done, failed) = (
        TransportMetrics::get(&m.conversations_done),
        TransportMetrics::get(&m.conversations_failed),
    );
    let cut = link.clone();
    let hook = Box::new(move |p: &shouwang_core::sync::Progress| {
        if p.docs_syncing > 0 && p.docs_settled == p.docs_syncing {
            cut.set_up(false);
        }
    });
    let synced = tokio::time::timeout(
        Duration::from_secs(30),
        device::sync_hub(&node, &identity, archive, &opts, Some(hook)),
    )
    .await
    .expect("the sync waited for the hub's end of the stream");
    let (_archive, progress) = synced.unwrap();
    assert!(!link.is_up(), "the link went down before the sync returned");
    assert!(progress.bytes_sent > 0);

    assert!(
        school_has(&data, &child, notes),
        "the 家访 is at the school already"
    );

    link.set_up(true);
    assert!(
        eventually(Duration::from_secs(20), || TransportMetrics::get(
            &m.connections_open
        ) == 0)
        .await,
        "the phone closed the connection once the hub's end arrived"
    );
    assert_eq!(TransportMetrics::get(&m.conversations_done), done + 1);
    assert_eq!(TransportMetrics::get(&m.conversations_failed), failed);
    node.shutdown().await;
    server.shutdown().await;
}
