//! Live mode over the real hub.
//!
//! 1. A phone stays connected after catching up; a record the app writes through its own
//!    connection to the store reaches the hub as soon as the app wakes the sync, with no
//!    reconnect; an idle live connection ends by itself so the phone can sleep.
//! 2. Two phones connected live at once: a 谈心 the 爱心妈妈 records reaches the 班主任's phone
//!    through the hub, which passes it on as it arrives, with no reconnect on either side.
//! 3. A pairing ended while syncing live purges the child from the phone.
//! 4. A connection that outlives the pairing it began with carries nothing of that child.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::now;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shouwang_core::roles::Role;
use shouwang_core::{Archive, RecordInput};
use shouwang_relay::device::{self, Identity};
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_relay::transport::{ConversationOptions, Node, NodeConfig, Wake};
use tokio::task::JoinHandle;

fn has_record(path: &Path, child: &str, record: &str) -> bool {
    has_record_in(Archive::open(path).unwrap(), child, record)
}

fn has_record_in(mut archive: Archive, child: &str, record: &str) -> bool {
    archive
        .child_file(child)
        .unwrap()
        .records
        .iter()
        .any(|r| r.meta.id.0 == record)
}

fn write_record(phone: &Path, kind: &str, notes: &str) -> String {
    Archive::open(phone)
        .unwrap()
        .add_record(&RecordInput {
            kind: kind.into(),
            child: Some("王小雨".into()),
            class: None,
            date: "2026-11-20".into(),
            fields: vec![("notes".into(), notes.into())],
        })
        .unwrap()
        .0
}

/// An enrolled phone: its store, identity and endpoint.
struct Phone {
    store: PathBuf,
    id: Identity,
    node: Arc<Node>,
}

impl Phone {
    async fn enroll(server: &Server, dir: &Path, member: &str, role: Role) -> Phone {
        let ticket = server
            .invite(member, role, now(), now() + 86_400)
            .unwrap()
            .invite
            .encode()
            .unwrap();
        let store = dir.join(format!("{member}.db"));
        let mut archive = device::join(
            &store,
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
        Phone { store, id, node }
    }

    /// Starts a live sync with the hub, woken by `wake`.
    fn go_live(
        &self,
        wake: &Wake,
    ) -> JoinHandle<Result<(), shouwang_relay::transport::TransportError>> {
        let opts = ConversationOptions {
            wake: Some(wake.clone()),
            ..ConversationOptions::default()
        };
        let archive = Archive::open(&self.store).unwrap();
        let (node, id) = (self.node.clone(), self.id.clone());
        tokio::spawn(async move { device::sync_hub_live(&node, &id, archive, &opts, None).await })
    }

    /// One live sync that ends by itself once the connection is idle for a second (within 30
    /// seconds, or the test fails).
    async fn sync_until_idle(&self) -> Result<(), shouwang_relay::transport::TransportError> {
        let archive = Archive::open(&self.store).unwrap();
        let short = ConversationOptions {
            idle_timeout: Duration::from_secs(1),
            ..ConversationOptions::default()
        };
        tokio::time::timeout(
            Duration::from_secs(30),
            device::sync_hub_live(&self.node, &self.id, archive, &short, None),
        )
        .await
        .expect("an idle live sync ends")
    }

    /// Waits until the phone's first exchange with the hub completed.
    async fn caught_up(
        &self,
        live: &JoinHandle<Result<(), shouwang_relay::transport::TransportError>>,
    ) {
        let hub = self.id.hub().unwrap().id.to_string();
        let started = Instant::now();
        loop {
            let status = Archive::open(&self.store)
                .unwrap()
                .sync_status(&hub)
                .unwrap();
            if status.last_success.is_some() {
                return;
            }
            assert!(
                !live.is_finished(),
                "the live sync ended before catching up"
            );
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the first exchange never completed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A live sync, as [`Phone::go_live`] starts it.
type Live = JoinHandle<Result<(), shouwang_relay::transport::TransportError>>;

/// The 班主任 王瑞侠 and the 爱心妈妈 刘桂兰 enrolled, each syncing live (woken by its own
/// `Wake`) and caught up.
async fn both_live(server: &Server, dir: &Path) -> [(Phone, Wake, Live); 2] {
    let mut out = Vec::new();
    for (member, role) in [("王瑞侠", Role::HeadTeacher), ("刘桂兰", Role::LoveMother)] {
        let phone = Phone::enroll(server, dir, member, role).await;
        let wake = Wake::new();
        let live = phone.go_live(&wake);
        out.push((phone, wake, live));
    }
    for (phone, _, live) in &out {
        phone.caught_up(live).await;
    }
    out.try_into()
        .unwrap_or_else(|_| unreachable!("two phones"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_1_a_record_written_while_connected_reaches_the_hub_without_a_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let phone = Phone::enroll(&server, dir.path(), "王瑞侠", Role::HeadTeacher).await;

    let wake = Wake::new();
    let live = phone.go_live(&wake);
    phone.caught_up(&live).await;
    // The app writes through its own connection to the store, then wakes the sync.
    let record = write_record(&phone.store, "家访", "连着网时写的家访");
    let written = Instant::now();
    wake.wake();
    while !has_record_in(data.open_archive().unwrap(), "王小雨", &record) {
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
    phone.sync_until_idle().await.unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_2_the_hub_passes_a_talk_on_to_another_connected_phone_as_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    common::sample_school(dir.path());
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    // Both connected, both caught up; only the 爱心妈妈's app ever wakes its sync.
    let [
        (teacher, teacher_wake, teacher_live),
        (mother, mother_wake, mother_live),
    ] = both_live(&server, dir.path()).await;

    let talk = write_record(
        &mother.store,
        "谈心",
        "爱心妈妈谈心：想妈妈了，约好周末视频",
    );
    let written = Instant::now();
    mother_wake.wake();
    // The connections stay up for a minute with nothing sent (the idle timeout): the talk
    // can only arrive before then if the hub pushes it.
    while !has_record(&teacher.store, "王小雨", &talk) {
        assert!(
            written.elapsed() < Duration::from_secs(30),
            "the talk never reached the 班主任's phone"
        );
        assert!(!teacher_live.is_finished(), "{:?}", teacher_live.await);
        assert!(!mother_live.is_finished(), "{:?}", mother_live.await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "the talk reached the other phone after {:?}",
        written.elapsed()
    );
    assert!(!teacher_live.is_finished() && !mother_live.is_finished());

    // And back: the 班主任's reply to the same child reaches the 爱心妈妈.
    let visit = write_record(&teacher.store, "家访", "班主任家访：和奶奶说了周末视频的事");
    teacher_wake.wake();
    let written = Instant::now();
    while !has_record(&mother.store, "王小雨", &visit) {
        assert!(
            written.elapsed() < Duration::from_secs(30),
            "the visit never reached the 爱心妈妈's phone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    teacher_live.abort();
    mother_live.abort();
    server.shutdown().await;
}

/// 3. The office ends the 爱心妈妈's pairing while her phone syncs live: the connection that
///    brings the news, or the one after, purges the child from the phone (nothing of her name is
///    left in the store file or its WAL), and live syncs go on working, with no 无权.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_3_a_pairing_ended_while_syncing_live_purges_the_child_and_syncs_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let mother = Phone::enroll(&server, dir.path(), "刘桂兰", Role::LoveMother).await;
    write_record(&mother.store, "谈心", "周末视频后情绪好多了");
    mother.sync_until_idle().await.unwrap();
    let raw = |store: &Path| {
        let mut bytes = std::fs::read(store).unwrap();
        bytes.extend(std::fs::read(format!("{}-wal", store.display())).unwrap_or_default());
        bytes
    };
    let holds = |bytes: &[u8], text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(holds(&raw(&mother.store), "王小雨"));

    data.open_archive()
        .unwrap()
        .end_pairing("刘桂兰", "王小雨")
        .unwrap();
    mother
        .sync_until_idle()
        .await
        .expect("the sync that brings the news");
    let bytes = raw(&mother.store);
    assert!(!holds(&bytes, "王小雨"), "her name is still on the phone");
    assert!(!holds(&bytes, "周末视频后情绪好多了"));
    let mut archive = Archive::open(&mother.store).unwrap();
    assert!(archive.children(None, false).unwrap().is_empty());
    let hub = mother.id.hub().unwrap().id.to_string();
    mother.sync_until_idle().await.expect("the next live sync");
    let status = Archive::open(&mother.store)
        .unwrap()
        .sync_status(&hub)
        .unwrap();
    assert_eq!(status.last_error, None, "{status:?}");
    assert!(status.pending.is_empty(), "{status:?}");
    server.shutdown().await;
}

/// 4. Both phones live; the office ends the 爱心妈妈's pairing with 王小雨, then the 班主任 writes
///    a 家访 for her. The 爱心妈妈's connection began when she could see 王小雨, and stays open:
///    the hub checks each document as it leaves, so the 家访 never reaches her phone. Her next
///    sync works, with no 无权. The service's log says why the connection ended without the
///    child's id (it would outlive the erasure of her file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_4_a_connection_that_outlives_a_pairing_carries_nothing_of_the_child() {
    let log = common::service_log();
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    let child = data.open_archive().unwrap().find_child("王小雨").unwrap();
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let [
        (teacher, teacher_wake, teacher_live),
        (mother, _mother_wake, mother_live),
    ] = both_live(&server, dir.path()).await;

    data.open_archive()
        .unwrap()
        .end_pairing("刘桂兰", "王小雨")
        .unwrap();
    let visit = write_record(&teacher.store, "家访", "结对结束以后写的家访：奶奶住院了");
    teacher_wake.wake();
    let written = Instant::now();
    while !has_record_in(data.open_archive().unwrap(), "王小雨", &visit) {
        assert!(
            written.elapsed() < Duration::from_secs(20),
            "the visit never reached the hub"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The hub passes a record on to a live phone within a second or so (story 2); give it
    // five before concluding it did not.
    let holds = |store: &Path| {
        let mut bytes = std::fs::read(store).unwrap();
        bytes.extend(std::fs::read(format!("{}-wal", store.display())).unwrap_or_default());
        let text = "奶奶住院了".as_bytes();
        bytes.windows(text.len()).any(|w| w == text)
            || Archive::open(store)
                .unwrap()
                .child_file("王小雨")
                .is_ok_and(|f| f.records.iter().any(|r| r.meta.id.0 == visit))
    };
    while written.elapsed() < Duration::from_secs(5) {
        assert!(
            !holds(&mother.store),
            "the visit reached the unpaired 爱心妈妈's phone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    teacher_live.abort();
    mother_live.abort();

    // Her next sync starts from her scope as it is now.
    mother.sync_until_idle().await.unwrap();
    assert!(!holds(&mother.store));
    let hub = mother.id.hub().unwrap().id.to_string();
    let status = Archive::open(&mother.store)
        .unwrap()
        .sync_status(&hub)
        .unwrap();
    assert_eq!(status.last_error, None, "{status:?}");
    server.shutdown().await;
    let logged = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        logged.contains("left the member's scope mid-connection"),
        "{logged}"
    );
    assert!(!logged.contains(child.as_str()), "{logged}");
}
