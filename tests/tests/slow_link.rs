//! Stories of a phone on a link so slow that one message takes longer to arrive than the
//! connection may stay quiet: the real hub, a real device endpoint, and the userspace link
//! emulator between them (`shouwang_tests::link`), on loopback only.
//!
//! The idle timeout (60 s by default on both sides) is there so that a phone can sleep and a
//! hub can drop a vanished phone. It must count a message that is still arriving as activity:
//! on 2G (about 4 KB/s) a class's year of records takes a minute or more to come down.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv6Addr;
use std::time::Duration;

use shouwang_relay::device;
use shouwang_relay::handshake::CHUNK;
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_relay::transport::ConversationOptions;
use shouwang_tests::link::{Direction, Link, LinkConfig};
use shouwang_tests::link_hub::{JoinOver, hub_only, hub_socket, join_over};
use shouwang_tests::workload;

/// The idle timeout of both sides in these stories.
const IDLE: Duration = Duration::from_secs(4);
/// The link's rate each way: 2 KB/s, 2G at its worst, so that a class's year of records
/// (about 25 KB since bundles compress their documents together) outlasts [`IDLE`] several
/// times over, while QUIC's handshake still takes well under it.
const RATE_BPS: u64 = 16_000;

/// 1. A new 班主任's phone joins over a link where her class's year of records (40 children)
///    takes more than twice the idle timeout to come down. The join completes, the phone
///    holds the class, and it was told when the school took the invite, then, chunk by chunk,
///    how much had arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_1_a_phone_joins_over_a_link_slower_than_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let hub_dir = dir.path().join("hub");
    let data = tokio::task::block_in_place(|| workload::hub_with_history(&hub_dir));
    let server = Server::start(ServerConfig {
        idle_timeout: IDLE,
        ..hub_only(&hub_dir)
    })
    .await
    .unwrap();
    let slow = Direction {
        rate_bps: Some(RATE_BPS),
        queue_bytes: 64 * 1024,
        ..Direction::ideal()
    };
    let link = Link::start(LinkConfig {
        up: slow.clone(),
        down: slow,
        ..LinkConfig::ideal((Ipv6Addr::LOCALHOST, 0).into(), hub_socket(&server))
    })
    .await
    .unwrap();
    let opts = ConversationOptions {
        idle_timeout: IDLE,
        connect_timeout: Duration::from_secs(60),
        ..device::default_options()
    };
    let JoinOver {
        joined,
        wall: took,
        reports,
    } = join_over(&link, &data, &dir.path().join("phone.db"), &opts).await;
    let mut archive = joined.unwrap_or_else(|e| {
        panic!("the join over a slow link failed after {took:?}: {e}");
    });
    let down = link.stats().down;
    // The story holds only if the link really was slower than the idle timeout.
    let on_the_link = Duration::from_secs_f64(down.delivered_bytes as f64 * 8.0 / RATE_BPS as f64);
    assert!(
        on_the_link > IDLE * 2,
        "the documents ({} bytes down) crossed the link in {on_the_link:?}: not slower than the idle timeout",
        down.delivered_bytes
    );
    assert_eq!(
        archive.children(None, true).unwrap().len(),
        workload::CHILDREN,
        "the phone holds its class"
    );
    let received = reports.last().map_or(0, |r| r.1);
    assert!(
        reports.first().map(|r| r.1) == Some(0)
            && reports.len() as u64 > received.div_ceil(CHUNK as u64)
            && reports.len() >= 3,
        "progress was reported {} times for {received} bytes: {reports:?}",
        reports.len()
    );
    assert!(
        reports.windows(2).all(|w| w[0].1 < w[1].1),
        "progress went backwards: {reports:?}"
    );
    server.shutdown().await;
}
