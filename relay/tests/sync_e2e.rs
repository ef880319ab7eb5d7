//! Sync over real components: the relay and the hub started in-process on 127.0.0.1, real iroh
//! endpoints for three phones, real SQLite stores. A 班主任, a 爱心妈妈 and a 任课教师 record
//! offline, sync at different times, are never online together, and converge through the hub.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::now;

use std::time::Duration;

use shouwang_core::doc::DocId;
use shouwang_core::roles::Role;
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_relay::transport::{Node, NodeConfig};
use shouwang_tests::phone::EnrolledPhone as Phone;

/// A phone enrolled with a fresh invite that keeps its archive open between syncs.
async fn phone(server: &Server, member: &str, role: Role) -> Phone {
    Phone::enroll(server, member, role).await
}

/// What these stories read on a phone beyond enrolling, writing and syncing.
trait Records {
    fn records(&mut self, child: &str) -> Vec<String>;
}

impl Records for Phone {
    fn records(&mut self, child: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .a()
            .child_file(child)
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.meta.id.0)
            .collect();
        ids.sort();
        ids
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_never_online_together_converge_through_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let mut teacher = phone(&server, "王瑞侠", Role::HeadTeacher).await;
    let mut mother = phone(&server, "刘桂兰", Role::LoveMother).await;
    let mut subject = phone(&server, "武秀梅", Role::SubjectTeacher).await;

    // Offline, each records.
    let t = teacher.record("家访", "王小雨", "2026-11-18", "班主任家访：奶奶身体尚可");
    let m = mother.record("谈心", "王小雨", "2026-11-18", "爱心妈妈每周谈心");
    let s = subject.record("家访", "赵子涵", "2026-11-18", "任课教师家访：数学作业");

    // One at a time, never two online together; twice around.
    for _ in 0..2 {
        teacher.sync(&server).await;
        mother.sync(&server).await;
        subject.sync(&server).await;
    }

    let mut hub = data.open_archive().unwrap();
    let mut want = vec![t.clone(), m.clone()];
    want.sort();
    let mut hub_ids: Vec<String> = hub
        .child_file("王小雨")
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.meta.id.0)
        .collect();
    hub_ids.sort();
    assert_eq!(hub_ids, want);
    assert_eq!(teacher.records("王小雨"), want);
    assert_eq!(mother.records("王小雨"), want);
    assert_eq!(teacher.records("赵子涵"), vec![s.clone()]);
    assert_eq!(subject.records("赵子涵"), vec![s]);

    // Scope: the 爱心妈妈 has her child's file only, and no private document at all.
    let docs = mother.a().store().doc_ids().unwrap();
    assert!(
        docs.iter().all(|d| !matches!(d, DocId::Private(_))),
        "{docs:?}"
    );
    let other = mother.a().find_child("赵子涵");
    assert!(other.is_err(), "she must not have 赵子涵's file");

    // Nothing new: a reconnect costs one Hello each way.
    let p = teacher.sync(&server).await;
    assert_eq!(p.frames_sent, 1, "{p:?}");
    assert!(p.bytes_sent < 256, "{p:?}");
    let status = teacher
        .a()
        .sync_status(&server.hub_addr().id.to_string())
        .unwrap();
    assert!(status.pending.is_empty(), "{:?}", status.pending);
    assert!(status.last_success.is_some());

    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .unwrap();
}

/// A phone just enrolled holds exactly what the hub sent it, and knows the hub has it: the hub
/// registered the device before sending the bundle, so the first sync has nothing to send, and
/// is one `Hello` each way, not an offer of every document of the bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_sync_after_joining_sends_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    common::sample_school(dir.path());
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
    let opts = shouwang_relay::device::default_options();
    let mut archive = shouwang_relay::device::join(&phone, None, &ticket, "手机", now(), &opts)
        .await
        .unwrap();
    let documents = archive.store().doc_ids().unwrap().len();
    let id = shouwang_relay::device::Identity::load(&mut archive).unwrap();
    let node = Node::bind(NodeConfig::loopback(id.secret.clone()))
        .await
        .unwrap();
    let (_, progress) = shouwang_relay::device::sync_hub(&node, &id, archive, &opts, None)
        .await
        .unwrap();
    eprintln!(
        "first sync after joining: {} bytes up, {} down, {documents} documents on the phone",
        progress.bytes_sent, progress.bytes_received
    );
    assert!(documents >= 5, "{documents}");
    // One Hello each way; an offer of every document would be an automerge sync message
    // (heads, bloom filter) for each of them.
    assert_eq!(
        (progress.frames_sent, progress.docs_syncing),
        (1, 0),
        "{progress:?}"
    );
    assert!(progress.bytes_sent < 100, "{progress:?}");
    node.shutdown().await;
    server.shutdown().await;
}

/// The phone dies right after the hub spent the invite, before the store was written. The
/// teacher scans the same QR code again: the phone presents the same device key, kept beside
/// the store, and the hub lets it enroll again. Another phone with the same ticket is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_cut_after_the_invite_was_spent_can_be_retried() {
    use shouwang_relay::device;
    let dir = tempfile::tempdir().unwrap();
    common::sample_school(dir.path());
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let ticket = server
        .invite("王瑞侠", Role::HeadTeacher, now(), now() + 86_400)
        .unwrap()
        .invite
        .encode()
        .unwrap();
    let opts = device::default_options();
    let phone = dir.path().join("phone.db");

    // The cut: enrolled (the invite is spent), the store never written.
    let (_, key, _) = device::enroll(&phone, &ticket, now(), &opts).await.unwrap();
    assert!(!phone.exists());
    assert!(device::pending_key_path(&phone).exists());

    let mut archive = device::join(&phone, None, &ticket, "手机", now(), &opts)
        .await
        .expect("the same phone may enroll again with its ticket");
    let id = device::Identity::load(&mut archive).unwrap();
    assert_eq!(id.device_code(), key.public().to_string());
    assert!(
        !device::pending_key_path(&phone).exists(),
        "the key is in the store now"
    );

    // Another phone with the same ticket is refused, and keeps nothing. (With no other
    // invite open, the hub turns it away right after the QUIC handshake, as a stranger.)
    let other = dir.path().join("other.db");
    let err = device::join(&other, None, &ticket, "手机", now(), &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("另一台设备用过"), "{err}");
    assert!(!other.exists());
    assert!(!device::pending_key_path(&other).exists());
    server.shutdown().await;
}
