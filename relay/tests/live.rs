//! Live mode over the real hub: a phone stays connected after catching up; a record the app
//! writes through its own connection to the store reaches the hub as soon as the app wakes the
//! sync, with no reconnect; an idle live connection ends by itself so the phone can sleep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::now;

use std::sync::Arc;
use std::time::{Duration, Instant};

use shouwang_core::roles::Role;
use shouwang_core::{Archive, RecordInput};
use shouwang_relay::device::{self, Identity};
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_relay::transport::{ConversationOptions, Node, NodeConfig};

fn hub_has(path: &std::path::Path, record: &str) -> bool {
    let mut hub = Archive::open(path).unwrap();
    hub.child_file("王小雨")
        .unwrap()
        .records
        .iter()
        .any(|r| r.meta.id.0 == record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_written_while_connected_reaches_the_hub_without_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let ticket = server
        .invite("王瑞侠", Role::HeadTeacher, now(), now() + 86_400)
        .unwrap()
        .invite
        .encode()
        .unwrap();
    let phone = dir.path().join("phone.db");
    let mut archive = device::join(
        &phone,
        None,
        &ticket,
        "手机",
        now(),
        &device::default_options(),
    )
    .await
    .unwrap();
    let id = Identity::load(&mut archive).unwrap();
    let node = Arc::new(
        Node::bind(NodeConfig::loopback(id.secret.clone()))
            .await
            .unwrap(),
    );

    let wake = Arc::new(tokio::sync::Notify::new());
    let opts = ConversationOptions {
        wake: Some(wake.clone()),
        ..ConversationOptions::default()
    };
    let live = {
        let (node, id) = (node.clone(), id.clone());
        tokio::spawn(async move { device::sync_hub_live(&node, &id, archive, &opts, None).await })
    };
    // Let the first exchange finish, then the app writes through its own connection.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let record = Archive::open(&phone)
        .unwrap()
        .add_record(&RecordInput {
            kind: "家访".into(),
            child: Some("王小雨".into()),
            class: None,
            date: "2026-11-20".into(),
            fields: vec![("notes".into(), "连着网时写的家访".into())],
        })
        .unwrap()
        .0;
    let written = Instant::now();
    wake.notify_one();
    let hub_db = data.archive();
    while !hub_has(&hub_db, &record) {
        assert!(
            written.elapsed() < Duration::from_secs(20),
            "the record never reached the hub"
        );
        assert!(!live.is_finished(), "the live sync ended: {:?}", live.await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("live record reached the hub after {:?}", written.elapsed());
    assert!(
        !live.is_finished(),
        "still connected: no reconnect was needed"
    );
    live.abort();

    // An idle live connection ends by itself.
    let archive = Archive::open(&phone).unwrap();
    let short = ConversationOptions {
        idle_timeout: Duration::from_secs(2),
        ..ConversationOptions::default()
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        device::sync_hub_live(&node, &id, archive, &short, None),
    )
    .await
    .expect("an idle live sync ends")
    .unwrap();
    server.shutdown().await;
}
