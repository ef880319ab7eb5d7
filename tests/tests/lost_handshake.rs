//! A phone whose last handshake datagram is lost dials again instead of waiting out QUIC's
//! probe timeout (`transport` module docs, point 8), through the userspace link emulator on
//! loopback: the real hub, a real device endpoint and store.
//!
//! The link has 400 ms each way and loses nothing at random; a story picks the one datagram
//! it loses. A client sends two datagrams that begin with a QUIC Initial packet in a handshake
//! without loss (its ClientHello, then its acknowledgement of the server's Initial beside its
//! `Finished`); once the `Finished` is lost, QUIC alone resends it in Handshake packets, so a
//! third Initial datagram on the wire means a new handshake began. The phone's node also
//! counts the connections it left ([`Node::redials`](shouwang_relay::transport::Node::redials)).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use shouwang_core::Archive;
use shouwang_core::sync::Progress;
use shouwang_relay::device::{self, Identity};
use shouwang_relay::transport::{ConversationOptions, Node};
use shouwang_tests::link::{Direction, LinkConfig};
use shouwang_tests::link_hub::{PhoneOverLink, phone_over_link_like, school_has, write_home_visit};

/// 400 ms each way, nothing lost at random: QUIC's probe timeout after one round-trip sample
/// is then about 2.4 s, and a phone dials again 1.35 s after connecting (0.55 s after the
/// confirmation is due: room for a busy machine).
fn slow_link(listen: SocketAddr, target: SocketAddr) -> LinkConfig {
    let slow = Direction {
        delay: Duration::from_millis(400),
        ..Direction::ideal()
    };
    LinkConfig {
        up: slow.clone(),
        down: slow,
        ..LinkConfig::ideal(listen, target)
    }
}

/// Options for a sync that connects anew, or for a phone that keeps its connection warm.
fn options(warm: bool) -> ConversationOptions {
    ConversationOptions {
        connect_timeout: Duration::from_secs(20),
        ..if warm {
            device::warm_options()
        } else {
            device::default_options()
        }
    }
}

/// A phone joined over [`slow_link`] that has just written a 家访 with `notes`, and the child.
async fn phone_with_a_visit(opts: &ConversationOptions, notes: &str) -> (PhoneOverLink, String) {
    let mut phone = phone_over_link_like(|hub| hub, slow_link, opts).await;
    let child = write_home_visit(&mut phone.archive, notes);
    (phone, child)
}

/// Syncs `archive` (the phone's) with the hub; fails the test if the sync fails.
async fn sync(
    phone: &Node,
    identity: &Identity,
    archive: Archive,
    opts: &ConversationOptions,
) -> Progress {
    let (_, progress) = device::sync_hub(phone, identity, archive, opts, None)
        .await
        .unwrap_or_else(|e| panic!("the sync failed: {e}"));
    progress
}

/// 1. The phone's `Finished` is lost on a sync that connects anew (the CLI; the app's first
///    sync after a while). The phone does not wait for QUIC to resend it: the hub has not
///    confirmed the handshake a round trip and a half later, so it dials again, and the
///    家访 reaches the school over the new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_1_a_lost_finished_is_dialed_again() {
    let opts = options(false);
    let notes = "妈妈在外打工，孩子跟外婆住，这周按时交了作业。";
    let (phone, child) = phone_with_a_visit(&opts, notes).await;

    let before = phone.link.stats();
    // The phone's second datagram: its acknowledgement of the hub's Initial and its Finished.
    phone.link.lose_up(1);
    let progress = sync(&phone.node, &phone.identity, phone.archive, &opts).await;
    let moved = phone.link.stats().since(&before);
    assert_eq!(
        moved.up.dropped_chosen, 1,
        "the Finished was lost: {moved:?}"
    );
    assert!(progress.bytes_sent > 0);
    assert!(
        moved.up.quic_initials > 2,
        "the phone waited for QUIC to resend its Finished instead of dialing again: {moved:?}"
    );
    assert_eq!(phone.node.redials(), 1);
    assert!(school_has(&phone.data, &child, notes));
}

/// 2. On the same link with nothing lost, the phone makes one handshake: dialing again is for
///    a handshake the hub did not confirm in time, not for a slow link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_2_a_slow_link_alone_is_not_dialed_again() {
    let opts = options(false);
    let notes = "孩子说想念爸爸，老师陪他打了电话。";
    let (phone, child) = phone_with_a_visit(&opts, notes).await;

    let before = phone.link.stats();
    let progress = sync(&phone.node, &phone.identity, phone.archive, &opts).await;
    let moved = phone.link.stats().since(&before);
    assert!(progress.bytes_sent > 0);
    assert_eq!(phone.node.redials(), 0, "one handshake: {moved:?}");
    assert!(school_has(&phone.data, &child, notes));
}

/// 3. Connecting ahead (the app opening) loses its `Finished` the same way: the connection
///    made ahead dials again too, and the sync that follows runs on the new connection without
///    another handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_3_connecting_ahead_dials_again_too() {
    let opts = options(true);
    let notes = "外婆说孩子这周咳嗽好了，按时上学。";
    let (phone, child) = phone_with_a_visit(&opts, notes).await;
    let hub = phone.identity.hub().unwrap();

    let before = phone.link.stats();
    phone.link.lose_up(1);
    phone.node.warm_up(hub.clone(), &opts).await.unwrap();
    assert!(
        phone.node.is_warm(hub.id),
        "the connection made ahead is kept"
    );
    let warmed = phone.link.stats().since(&before);
    assert_eq!(
        warmed.up.dropped_chosen, 1,
        "the Finished was lost: {warmed:?}"
    );
    assert!(
        warmed.up.quic_initials > 2,
        "connecting ahead waited for QUIC to resend its Finished: {warmed:?}"
    );
    assert_eq!(phone.node.redials(), 1);

    let at_sync = phone.link.stats();
    sync(&phone.node, &phone.identity, phone.archive, &opts).await;
    assert_eq!(
        phone.link.stats().since(&at_sync).up.quic_initials,
        0,
        "the sync ran on the connection made ahead"
    );
    assert_eq!(phone.node.redials(), 1);
    assert!(school_has(&phone.data, &child, notes));
}
