//! Device-to-device sync while the hub is down: real iroh endpoints on 127.0.0.1, real stores,
//! devices enrolled through the real hub with invite tickets (`device::join`).
//!
//! 1. A 班主任 and a 爱心妈妈 meet with the hub down: each gets the other's records of the
//!    child they share, and the 爱心妈妈 gets nothing else (no other child's file, no private
//!    document).
//! 2. A device of another school is refused before any record flows; neither store changes.
//! 3. A certificate presented from a device it was not issued to is refused.
//! 4. Devices that show no certificate of the school cost the waiting phone no store opened
//!    and leave nothing written in it.
//! 5. A colleague's modified app sends change after change the rules refuse: the waiting phone
//!    keeps (for review) no more than a day's allowance of them, and the sync still ends.
//! 6. Outsiders on the same Wi-Fi open every connection the waiting phone would hold and say
//!    nothing: they are given only a few of its places, and a colleague's device still syncs.
//! 7. A lost phone the school revoked is turned away by a colleague's phone that has heard,
//!    right after the QUIC handshake, in the colleague's words; nothing of it is written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::now;

use std::sync::Arc;
use std::time::Duration;

use shouwang_core::doc::DocId;
use shouwang_core::roles::Role;
use shouwang_core::{Archive, RecordInput};
use shouwang_relay::device::{self, Identity};
use shouwang_relay::handshake::Message;
use shouwang_relay::peer::{PeerFactory, PeerSynced};
use shouwang_relay::server::{DataDir, Server, ServerConfig};
use shouwang_relay::transport::{
    ALPN, Conversation, ConversationOptions, EndpointAddr, Node, NodeConfig, Reply, SecretKey,
    TransportError, TransportMetrics,
};

struct Phone {
    path: std::path::PathBuf,
    id: Identity,
    _dir: tempfile::TempDir,
}

async fn enroll(server: &Server, member: &str, role: Role) -> Phone {
    let ticket = server
        .invite(member, role, now(), now() + 86_400)
        .unwrap()
        .invite
        .encode()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let opts = device::default_options();
    let mut archive = device::join(&path, None, &ticket, member, now(), &opts)
        .await
        .unwrap();
    let id = Identity::load(&mut archive).unwrap();
    Phone {
        path,
        id,
        _dir: dir,
    }
}

impl Phone {
    fn archive(&self) -> Archive {
        Archive::open(&self.path).unwrap()
    }

    /// One sync with the hub (how a device learns of devices registered after it joined).
    async fn sync_hub(&self) {
        let node = self.id.bind(false).await.unwrap();
        device::sync_hub(&node, &self.id, self.archive(), &opts(), None)
            .await
            .unwrap();
        node.shutdown().await;
    }

    fn record(&self, kind: &str, child: &str, notes: &str) -> String {
        self.archive()
            .add_record(&RecordInput {
                kind: kind.into(),
                child: Some(child.into()),
                class: None,
                date: "2026-11-20".into(),
                fields: vec![("notes".into(), notes.into())],
            })
            .unwrap()
            .0
    }

    fn records(&self, child: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .archive()
            .child_file(child)
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.meta.id.0)
            .collect();
        ids.sort();
        ids
    }

    /// Every document's heads, printed (a fingerprint of the whole store).
    fn heads(&self) -> String {
        let mut a = self.archive();
        let mut heads: Vec<_> = a.store().all_heads().unwrap().into_iter().collect();
        heads.sort();
        format!("{heads:?}")
    }

    /// Waits for peers: a node serving this phone's store on 127.0.0.1.
    async fn wait(&self) -> (Node, EndpointAddr) {
        self.wait_counted(Arc::default()).await
    }

    /// [`Phone::wait`], counting into `metrics`, with the limits a phone serves peers with.
    async fn wait_counted(&self, metrics: Arc<TransportMetrics>) -> (Node, EndpointAddr) {
        self.wait_with(metrics, self.id.trust()).await
    }

    /// [`Phone::wait`] with `trust` (its certificate, school and allowances).
    async fn wait_with(
        &self,
        metrics: Arc<TransportMetrics>,
        trust: shouwang_relay::peer::PeerTrust,
    ) -> (Node, EndpointAddr) {
        let node = device::serve_peers_on(
            NodeConfig::loopback(self.id.secret.clone()),
            PeerFactory::new(self.path.clone(), None, trust, None).unwrap(),
            metrics,
        )
        .await
        .unwrap();
        let addr = EndpointAddr::new(node.id()).with_ip_addr(node.bound_sockets()[0]);
        (node, addr)
    }

    /// What a modified app does: presents this phone's certificate to whatever device it
    /// dials, registered or not (the honest app dials only its school's devices).
    async fn dial_anyway(&self, peer: EndpointAddr) -> Result<(), TransportError> {
        let node = Node::bind(NodeConfig::loopback(self.id.secret.clone()))
            .await
            .unwrap();
        let conv =
            shouwang_relay::peer::PeerSync::dialer(self.archive(), self.id.trust(), peer.id, now());
        let r = node.converse(peer, conv, &opts()).await.map(|_| ());
        node.shutdown().await;
        r
    }

    async fn dial(&self, peer: EndpointAddr) -> Result<PeerSynced, TransportError> {
        let node = Node::bind(NodeConfig::loopback(self.id.secret.clone()))
            .await
            .unwrap();
        let r = device::sync_peer(&node, &self.id, peer, self.archive(), &opts()).await;
        node.shutdown().await;
        r.map(|(_, synced)| synced)
    }
}

fn opts() -> ConversationOptions {
    ConversationOptions {
        connect_timeout: Duration::from_secs(10),
        ..ConversationOptions::default()
    }
}

async fn school(dir: &std::path::Path) -> Server {
    common::sample_school(dir);
    Server::start(ServerConfig::loopback(dir.join("hub")))
        .await
        .unwrap()
}

/// A school's hub in `dir` with the 班主任 and then the 爱心妈妈 of 王小雨 enrolled, the
/// 班主任's device told by one more sync of the device registered after hers (a peer takes
/// only a device's own changes from it, so registrations come from the hub).
async fn teacher_and_mother(dir: &std::path::Path) -> (Server, Phone, Phone) {
    let server = school(dir).await;
    let teacher = enroll(&server, "王瑞侠", Role::HeadTeacher).await;
    let mother = enroll(&server, "刘桂兰", Role::LoveMother).await;
    teacher.sync_hub().await;
    (server, teacher, mother)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_1_two_devices_sync_directly_while_the_hub_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (server, teacher, mother) = teacher_and_mother(dir.path()).await;
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .unwrap();

    let visit = teacher.record("家访", "王小雨", "班主任家访：奶奶腿脚不便，孩子会自己做饭");
    let other = teacher.record("家访", "赵子涵", "班主任家访：父母在外务工，爷爷照看");
    let talk = mother.record("谈心", "王小雨", "爱心妈妈谈心：想妈妈了，约好周末视频");

    let (waiting, addr) = mother.wait().await;
    let synced = teacher.dial(addr).await.unwrap();
    assert_eq!(synced.member.name, "刘桂兰");
    waiting.shutdown().await;

    let mut both = vec![visit, talk];
    both.sort();
    assert_eq!(teacher.records("王小雨"), both);
    assert_eq!(mother.records("王小雨"), both);
    assert_eq!(teacher.records("赵子涵"), vec![other]);
    // Only what both may see: no other child's file, no private document.
    let mut m = mother.archive();
    assert!(m.find_child("赵子涵").is_err());
    let docs = m.store().doc_ids().unwrap();
    assert!(
        docs.iter().all(|d| !matches!(d, DocId::Private(_))),
        "{docs:?}"
    );

    // Meeting again with nothing new moves no documents.
    let (waiting, addr) = mother.wait().await;
    let again = teacher.dial(addr).await.unwrap();
    assert_eq!(again.progress.docs_changed, 0, "{:?}", again.progress);
    waiting.shutdown().await;
}

/// A 班主任's phone of this school and one of another school (its hubs stopped), with the
/// directories that hold them.
async fn a_teacher_and_a_stranger() -> ([tempfile::TempDir; 2], Phone, Phone) {
    let dir = tempfile::tempdir().unwrap();
    let server = school(dir.path()).await;
    let teacher = enroll(&server, "王瑞侠", Role::HeadTeacher).await;
    let other_dir = tempfile::tempdir().unwrap();
    let other_server = school(other_dir.path()).await;
    let stranger = enroll(&other_server, "王瑞侠", Role::HeadTeacher).await;
    server.shutdown().await;
    other_server.shutdown().await;
    ([dir, other_dir], teacher, stranger)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_2_a_device_of_another_school_is_refused_and_nothing_changes() {
    let (_dirs, teacher, stranger) = a_teacher_and_a_stranger().await;
    teacher.record("家访", "王小雨", "班主任家访：作业按时完成");
    stranger.record("家访", "王小雨", "另一所学校的记录");
    let (teacher_before, stranger_before) = (teacher.heads(), stranger.heads());

    let (waiting, addr) = teacher.wait().await;
    let err = stranger.dial_anyway(addr).await.unwrap_err().to_string();
    assert!(err.contains("另一所学校"), "{err}");
    waiting.shutdown().await;
    assert_eq!(teacher.heads(), teacher_before);
    assert_eq!(stranger.heads(), stranger_before);
}

/// 2b. The other way round: the 班主任's phone dials a device its school does not register
///     (a phone of another school waiting on the same Wi-Fi). The dialer shows its
///     certificate first (its school, her name and roles), so her phone does not dial it at
///     all: the stranger hears nothing of her, and nothing changes on either side. Before,
///     her phone presented her certificate and the stranger's refused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_2b_a_phone_does_not_show_who_it_is_to_a_device_its_school_does_not_register() {
    let (_dirs, teacher, stranger) = a_teacher_and_a_stranger().await;
    let (teacher_before, stranger_before) = (teacher.heads(), stranger.heads());

    let metrics = Arc::new(TransportMetrics::default());
    let (waiting, addr) = stranger.wait_counted(metrics.clone()).await;
    let err = teacher.dial(addr).await.unwrap_err().to_string();
    assert!(err.contains("不是本校登记的设备"), "{err}");
    assert_eq!(
        TransportMetrics::get(&metrics.connections_total),
        0,
        "her phone connected to the stranger"
    );
    waiting.shutdown().await;
    assert_eq!(teacher.heads(), teacher_before);
    assert_eq!(stranger.heads(), stranger_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_3_a_certificate_from_another_device_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (server, teacher, mother) = teacher_and_mother(dir.path()).await;
    server.shutdown().await;
    let before = teacher.heads();

    // The 爱心妈妈's certificate, presented by a device with a different key.
    let impostor = Phone {
        path: mother.path.clone(),
        id: Identity {
            secret: SecretKey::generate(),
            ..mother.id.clone()
        },
        _dir: tempfile::tempdir().unwrap(),
    };
    let (waiting, addr) = teacher.wait().await;
    let err = impostor.dial(addr).await.unwrap_err().to_string();
    assert!(err.contains("不属于这台设备"), "{err}");
    waiting.shutdown().await;
    assert_eq!(teacher.heads(), before);
}

/// A device that says `frames` and then ends, whatever it hears: a stranger's app.
struct Says(Vec<Vec<u8>>);

impl Conversation for Says {
    fn opening(&mut self) -> shouwang_core::Result<Reply> {
        Ok(Reply::send(std::mem::take(&mut self.0)))
    }

    fn on_frame(&mut self, _frame: &[u8]) -> shouwang_core::Result<Reply> {
        Ok(Reply::finish(Vec::new()))
    }
}

/// Files of this process open at `path` (the store and its journal).
fn open_files(path: &std::path::Path) -> usize {
    let path = path.to_string_lossy().into_owned();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with(&path))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_4_devices_without_a_certificate_open_nothing_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (server, teacher, mother) = teacher_and_mother(dir.path()).await;
    server.shutdown().await;
    let peers_noted = |p: &Phone| -> i64 {
        p.archive()
            .store()
            .conn()
            .query_row("SELECT count(*) FROM sync_peers", [], |r| r.get(0))
            .unwrap()
    };
    let noted = peers_noted(&mother);
    let metrics = Arc::new(TransportMetrics::default());
    let (waiting, addr) = mother.wait_counted(metrics.clone()).await;

    // Strangers holding connections open, each with a frame begun and never ended, in all
    // but one of the places strangers get (the junk below takes that one).
    let strangers = device::PEER_STRANGER_PLACES - 1;
    let mut held = Vec::new();
    for _ in 0..strangers {
        let node = Node::bind(NodeConfig::loopback(SecretKey::generate()))
            .await
            .unwrap();
        let conn = node.endpoint().connect(addr.clone(), ALPN).await.unwrap();
        let (mut send, _recv) = conn.open_bi().await.unwrap();
        send.write_all(&[1, 0]).await.unwrap();
        held.push((node, conn, send));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TransportMetrics::get(&metrics.connections_open) < strangers as u64
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        TransportMetrics::get(&metrics.connections_open),
        strangers as u64
    );
    // What a conversation would open, it has opened by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        open_files(&mother.path),
        0,
        "devices that showed no certificate made the phone open its store"
    );

    // Junk for a certificate, and a refusal of the stranger's own, each from a new device.
    let junk = [
        Message::Hello(vec![1, 2, 3]).encode(),
        Message::Refused("x".repeat(60_000)).encode(),
    ];
    for frame in junk {
        let node = Node::bind(NodeConfig::loopback(SecretKey::generate()))
            .await
            .unwrap();
        let _ = node
            .converse(addr.clone(), Says(vec![frame]), &opts())
            .await;
        node.shutdown().await;
    }
    assert_eq!(
        TransportMetrics::get(&metrics.busy),
        0,
        "the junk never reached the conversation"
    );
    assert_eq!(
        peers_noted(&mother),
        noted,
        "a device that showed no certificate left a row in the phone's store"
    );
    for (node, conn, send) in held {
        drop(send);
        conn.close(0u32.into(), b"");
        node.shutdown().await;
    }

    // A member's device syncs as before, and is noted.
    teacher.record("家访", "王小雨", "班主任家访：奶奶腿脚不便");
    let synced = teacher.dial(addr).await.unwrap();
    assert_eq!(synced.member.name, "刘桂兰");
    waiting.shutdown().await;
    assert_eq!(peers_noted(&mother), noted + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_5_a_peer_flooding_refused_changes_is_held_to_a_day_s_allowance() {
    use shouwang_tests::attack;
    let dir = tempfile::tempdir().unwrap();
    let (server, teacher, mother) = teacher_and_mother(dir.path()).await;
    mother.sync_hub().await;
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .unwrap();

    // Twenty records in the 爱心妈妈's name (not the 班主任's to write), of about 9 KB each.
    let her = mother.archive().me_id().to_string();
    let mut a = teacher.archive();
    let child = DocId::Child(a.find_child("王小雨").unwrap());
    let mut x: u32 = 11;
    for n in 0..20 {
        let notes: String = (0..3000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from_u32(0x4e00 + (x >> 16) % 0x5000).unwrap()
            })
            .collect();
        let her = her.clone();
        attack::forge(&mut a, &child, None, move |tx| {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let records = tx.get(automerge::ROOT, "records")?.unwrap().1;
            let r = tx.put_object(
                &records,
                format!("forged{n:02}").as_str(),
                automerge::ObjType::Map,
            )?;
            tx.put(&r, "author", her.as_str())?;
            tx.put(&r, "notes", notes.as_str())?;
            Ok(())
        });
    }
    drop(a);

    let allowance = 64 * 1024;
    let trust = mother.id.trust().with_daily_change_bytes(allowance);
    let (waiting, addr) = mother.wait_with(Arc::default(), trust).await;
    tokio::time::timeout(Duration::from_secs(60), teacher.dial(addr))
        .await
        .expect("the sync never ended")
        .unwrap();
    waiting.shutdown().await;
    // Each kept change is over 8,000 bytes: no more than eight fit the allowance.
    let kept = mother.archive().quarantined().unwrap().len();
    assert!((1..=8).contains(&kept), "{kept} refused changes kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_6_outsiders_holding_connections_do_not_keep_a_colleague_out() {
    let dir = tempfile::tempdir().unwrap();
    let (server, teacher, mother) = teacher_and_mother(dir.path()).await;
    server.shutdown().await;
    let metrics = Arc::new(TransportMetrics::default());
    let (waiting, addr) = mother.wait_counted(metrics.clone()).await;
    let places = device::peer_options().limits.total;

    // As many outsiders as the phone has places, each holding a connection with a frame
    // begun and never ended (the ones turned away are let go).
    let (mut held, mut nodes) = (Vec::new(), Vec::new());
    for _ in 0..places {
        let node = Node::bind(NodeConfig::loopback(SecretKey::generate()))
            .await
            .unwrap();
        if let Ok(conn) = node.endpoint().connect(addr.clone(), ALPN).await
            && let Ok((mut send, _recv)) = conn.open_bi().await
            && send.write_all(&[1, 0]).await.is_ok()
        {
            held.push((conn, send));
        }
        nodes.push(node);
    }
    // Each outsider is given a place or turned away as the phone gets to it.
    let strangers = device::PEER_STRANGER_PLACES as u64;
    let sorted = || {
        (
            TransportMetrics::get(&metrics.connections_open),
            TransportMetrics::get(&metrics.busy),
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sorted().0 + sorted().1 < places as u64 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        sorted(),
        (strangers, places as u64 - strangers),
        "outsiders given a place, and turned away"
    );

    teacher.record("家访", "王小雨", "班主任家访：奶奶腿脚不便");
    let synced = teacher.dial(addr).await.unwrap();
    assert_eq!(synced.member.name, "刘桂兰");
    waiting.shutdown().await;
    drop(held);
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_7_a_revoked_phone_is_turned_away_at_once_by_a_colleague_who_has_heard() {
    let dir = tempfile::tempdir().unwrap();
    let (server, teacher, mother) = teacher_and_mother(dir.path()).await;
    let lost = teacher.archive().device().as_str().to_owned();
    DataDir::new(dir.path().join("hub"))
        .open_archive()
        .unwrap()
        .revoke_device(&lost)
        .unwrap();
    mother.sync_hub().await;
    server.shutdown().await;

    let before = mother.heads();
    teacher.record("家访", "王小雨", "捡到手机的人写的");
    let metrics = Arc::new(TransportMetrics::default());
    let (waiting, addr) = mother.wait_counted(metrics.clone()).await;
    let err = teacher.dial(addr).await.unwrap_err().to_string();
    assert!(err.contains("同事的设备不再与它同步"), "{err}");
    assert_eq!(TransportMetrics::get(&metrics.strangers), 1);
    waiting.shutdown().await;
    assert_eq!(mother.heads(), before);
}

/// 7b. The 爱心妈妈's phone is lost while a conversation with the 班主任's waiting phone is
///     open (whoever found it keeps it alive with a frame now and then). The hub revokes it;
///     the 班主任's phone hears of it at its own sync, beside the waiting one, and records a
///     家访. The lost phone's next frame (a request for the child's file afresh) ends the
///     conversation: nothing written since reaches it. (Before, the session went on as it had
///     been opened, and answered with every change.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_7b_a_conversation_open_when_a_phone_is_revoked_ends_at_its_next_frame() {
    use shouwang_relay::transport::{Conversation, ConversationFactory};

    let dir = tempfile::tempdir().unwrap();
    let (server, teacher, mother) = teacher_and_mother(dir.path()).await;
    // Both ends in this process, frames handed over by the test: the lost phone's
    // conversation never finishes.
    let factory = PeerFactory::new(teacher.path.clone(), None, teacher.id.trust(), None).unwrap();
    let mut waiting = factory.start(mother.id.secret.public()).unwrap();
    let mut lost = shouwang_relay::peer::PeerSync::dialer(
        mother.archive(),
        mother.id.trust(),
        teacher.id.secret.public(),
        now(),
    );
    let mut to_waiting = lost.opening().unwrap().frames;
    for _ in 0..20 {
        let mut to_lost = Vec::new();
        for f in to_waiting.drain(..) {
            to_lost.extend(waiting.on_frame(&f).unwrap().frames);
        }
        for f in to_lost {
            to_waiting.extend(lost.on_frame(&f).unwrap().frames);
        }
        if to_waiting.is_empty() {
            break;
        }
    }

    let device = mother.archive().device().as_str().to_owned();
    DataDir::new(dir.path().join("hub"))
        .open_archive()
        .unwrap()
        .revoke_device(&device)
        .unwrap();
    teacher.sync_hub().await;
    server.shutdown().await;
    teacher.record("家访", "王小雨", "挂失之后写的家访");

    let child = DocId::Child(mother.archive().find_child("王小雨").unwrap());
    let payload = {
        use automerge::sync::SyncDoc;
        let mut a = mother.archive();
        let doc = a.store().doc(&child).unwrap().unwrap().clone();
        doc.generate_sync_message(&mut automerge::sync::State::new())
            .unwrap()
            .encode()
    };
    let ask = shouwang_core::sync::Message::Doc {
        doc: child,
        payload,
    }
    .encode();
    match waiting.on_frame(&ask) {
        Err(e) => assert!(e.to_string().contains("停用"), "{e}"),
        Ok(reply) => panic!(
            "the conversation went on: {} frames sent to the revoked phone",
            reply.frames.len()
        ),
    }
}

/// Runs an exchange between `dialer` and the waiting phone's `waiting`, both in this process,
/// frame by frame until neither has more to say. Returns the last frame the dialer sent.
fn exchange(
    waiting: &mut Box<dyn Conversation>,
    dialer: &mut shouwang_relay::peer::PeerSync,
) -> Vec<u8> {
    let mut to_waiting = dialer.opening().unwrap().frames;
    let mut last = Vec::new();
    for _ in 0..20 {
        let mut to_dialer = Vec::new();
        for f in to_waiting.drain(..) {
            to_dialer.extend(waiting.on_frame(&f).unwrap().frames);
            last = f;
        }
        for f in to_dialer {
            to_waiting.extend(dialer.on_frame(&f).unwrap().frames);
        }
        if to_waiting.is_empty() {
            break;
        }
    }
    last
}

/// 6b. A peer that has caught up and sends its last frame (`Idle`) again and again costs the
///     waiting phone nothing more: the sync is reported once (the app's "已与…同步"), and
///     the store is not purged and written again for each frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_6b_a_caught_up_peer_repeating_itself_is_reported_once() {
    use shouwang_relay::transport::{Conversation, ConversationFactory};

    let dir = tempfile::tempdir().unwrap();
    let (server, teacher, mother) = teacher_and_mother(dir.path()).await;
    server.shutdown().await;
    let (done, mut synced) = tokio::sync::mpsc::unbounded_channel();
    let factory =
        PeerFactory::new(teacher.path.clone(), None, teacher.id.trust(), Some(done)).unwrap();
    let mut waiting = factory.start(mother.id.secret.public()).unwrap();
    let mut dialer = shouwang_relay::peer::PeerSync::dialer(
        mother.archive(),
        mother.id.trust(),
        teacher.id.secret.public(),
        now(),
    );
    let last = exchange(&mut waiting, &mut dialer);
    assert!(synced.try_recv().is_ok(), "the exchange was not reported");
    for _ in 0..50 {
        let _ = waiting.on_frame(&last);
    }
    let mut again = 0;
    while synced.try_recv().is_ok() {
        again += 1;
    }
    assert_eq!(again, 0, "reported again for each repeated frame");
}

/// 6c. A peer sending frames as fast as it can (a modified app repeating its last frame) is
///     answered, and the waiting phone reads its next frame only at the pace of
///     `shouwang_relay::pace` once its burst is spent: the transport then waits before reading
///     more. The pace is the device's, whichever of its connections the frames come on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_6c_a_peer_sending_faster_than_the_pace_is_slowed() {
    use shouwang_relay::pace::Pace;
    use shouwang_relay::transport::{Conversation, ConversationFactory};

    // A burst of 16, then a frame every 100 s: nothing is paid back while the test runs.
    const PACE: Pace = Pace {
        burst: 16.0,
        per_second: 0.01,
    };

    let dir = tempfile::tempdir().unwrap();
    let (server, teacher, mother) = teacher_and_mother(dir.path()).await;
    server.shutdown().await;
    let factory = PeerFactory::new(teacher.path.clone(), None, teacher.id.trust(), None)
        .unwrap()
        .with_pace(PACE);
    // The mother's phone, connected twice at once, each exchange run to its end.
    let conversation = |waiting: &mut Box<dyn Conversation>| {
        let mut dialer = shouwang_relay::peer::PeerSync::dialer(
            mother.archive(),
            mother.id.trust(),
            teacher.id.secret.public(),
            now(),
        );
        exchange(waiting, &mut dialer)
    };
    let mut first = factory.start(mother.id.secret.public()).unwrap();
    let last = conversation(&mut first);
    let mut second = factory.start(mother.id.secret.public()).unwrap();
    conversation(&mut second);

    // Within its burst the phone is answered at once; past it, each frame waits.
    let mut held = 0;
    for _ in 0..(PACE.burst as usize + 10) {
        first.on_frame(&last).unwrap();
        if first.hold_off().is_some() {
            held += 1;
        }
    }
    // (The two exchanges above took some of the burst too.)
    assert!(held >= 10, "{held} frames past the burst were held back");
    // Its other connection has no fresh burst: the same device, the same pace.
    second.on_frame(&last).unwrap();
    assert!(
        second.hold_off().is_some(),
        "a second connection of the same device started a pace of its own"
    );
}
