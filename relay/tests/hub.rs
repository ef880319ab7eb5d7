//! The server started in-process on 127.0.0.1: the relay, the hub and `/health` + `/metrics`,
//! with real iroh endpoints as devices.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::now;

use std::net::SocketAddr;
use std::time::Duration;

use iroh::endpoint::ConnectionError;
use shouwang_core::Archive;
use shouwang_core::membership::{CertificateBody, DeviceKey, SchoolKey};
use shouwang_core::roles::Role;
use shouwang_relay::handshake::{self, Enrolled};
use shouwang_relay::server::{DataDir, STATUS_EVERY, Server, ServerConfig};
use shouwang_relay::transport::{
    ALPN, ConnectionLimits, ConversationOptions, EndpointAddr, HANDSHAKE_MAX_FRAME, MAX_FRAME,
    Node, NodeConfig, SecretKey, TransportError, TransportMetrics, close,
};
use shouwang_tests::hub_process::{free_tcp, free_udp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WEEK: i64 = 7 * 86_400;

fn init(dir: &std::path::Path) -> DataDir {
    common::init_school(dir)
}

/// A hub with an invite open that no test spends: devices that are not registered (the
/// strangers of these tests) get past the gate, as they do while a device enrolls, so the
/// conversation's own checks are what is tested. With no invite open, strangers are closed
/// right after the QUIC handshake: `with_no_invite_open_a_stranger_is_closed_after_its_handshake`.
async fn start(dir: &std::path::Path) -> Server {
    init(dir);
    let server = Server::start(ServerConfig::loopback(dir.join("hub")))
        .await
        .unwrap();
    open_door(&server);
    server
}

/// Leaves an invite open, so that unregistered devices get past the gate (see [`start`]).
fn open_door(server: &Server) {
    server
        .invite("武秀梅", Role::SubjectTeacher, now(), now() + WEEK)
        .unwrap();
}

/// The sample school's hub (`common::sample_school`) serving on loopback, an invite open.
async fn sample_hub(dir: &std::path::Path) -> Server {
    common::sample_school(dir);
    let server = Server::start(ServerConfig::loopback(dir.join("hub")))
        .await
        .unwrap();
    open_door(&server);
    server
}

async fn device(server: &Server) -> Node {
    let config =
        NodeConfig::loopback(SecretKey::generate()).with_relay(server.relay_url().unwrap().clone());
    Node::bind(config).await.unwrap()
}

fn opts() -> ConversationOptions {
    ConversationOptions::default()
}

async fn enroll(server: &Server, node: &Node, member: &str, role: Role) -> Enrolled {
    let invite = server
        .invite(member, role, now(), now() + WEEK)
        .unwrap()
        .invite;
    handshake::enroll(node, &invite, now(), &opts())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_enroll_and_a_stranger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let school = server.hub_state().school_public();

    // 王瑞侠 (班主任) and 刘桂兰 (爱心妈妈) enroll their phones.
    let phone_a = device(&server).await;
    let phone_b = device(&server).await;
    let a = enroll(&server, &phone_a, "王瑞侠", Role::HeadTeacher).await;
    let b = enroll(&server, &phone_b, "刘桂兰", Role::LoveMother).await;
    for (enrolled, node, role) in [
        (&a, &phone_a, Role::HeadTeacher),
        (&b, &phone_b, Role::LoveMother),
    ] {
        let body = enrolled.certificate.body();
        assert_eq!(body.roles, vec![role]);
        let device = DeviceKey(*node.id().as_bytes());
        enrolled
            .certificate
            .verify(&body.school_id, &school, &device, now())
            .unwrap();
        // The bundle sets up the phone's archive.
        let path = dir.path().join(format!("{}.db", body.member));
        let archive = Archive::join_enrolled(
            &path,
            &enrolled.bundle,
            body.member.as_str(),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(archive.me_id(), &body.member);
    }

    // With their certificates they are welcomed.
    let school_id = handshake::greet(&phone_a, server.hub_addr(), &a.certificate, &opts())
        .await
        .unwrap();
    assert_eq!(school_id, a.certificate.body().school_id);

    // A stranger: no invite, and a certificate that is not its own.
    let stranger = device(&server).await;
    let err = handshake::greet(&stranger, server.hub_addr(), &a.certificate, &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("不属于这台设备"), "{err}");

    // A certificate signed by another school's key.
    let forged = SchoolKey::generate()
        .issue(CertificateBody {
            device: DeviceKey(*stranger.id().as_bytes()),
            ..a.certificate.body().clone()
        })
        .unwrap();
    let err = handshake::greet(&stranger, server.hub_addr(), &forged, &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("签名无效"), "{err}");

    // An invite already spent by another device, and an expired one.
    let spent = server
        .invite("李老师", Role::SubjectTeacher, now(), now() + WEEK)
        .unwrap()
        .invite;
    // (A third phone: a device, once enrolled for 刘桂兰, stays hers.)
    let phone_c = device(&server).await;
    handshake::enroll(&phone_c, &spent, now(), &opts())
        .await
        .unwrap();
    let err = handshake::enroll(&phone_b, &spent, now(), &opts())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("用过") || err.to_string().contains("另一位成员"),
        "{err}"
    );
    let err = handshake::enroll(&stranger, &spent, now(), &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("用过"), "{err}");
    let expired = server
        .invite("李老师", Role::SubjectTeacher, now() - WEEK, now() - 60)
        .unwrap()
        .invite;
    // The device checks the expiry itself; a device with a wrong clock is refused by the hub.
    let err = handshake::enroll(&stranger, &expired, now(), &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("过期"), "{err}");
    let err = handshake::enroll(&stranger, &expired, now() - WEEK, &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("拒绝"), "{err}");

    let m = server.transport_metrics().unwrap();
    eventually(|| TransportMetrics::get(&m.refused) == 5).await;
    let hub = server.hub_state().metrics();
    assert_eq!(TransportMetrics::get(&hub.enrollments), 3);
    assert_eq!(TransportMetrics::get(&hub.refusals), 5);
    server.shutdown().await;
}

/// Waits until `check` holds (a minute at most: new endpoints find their relay, iroh's
/// network report, before they connect, which takes a while on a machine busy with CI).
async fn eventually(check: impl Fn() -> bool) {
    assert!(
        shouwang_tests::wait::eventually(Duration::from_secs(60), check).await,
        "condition never held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_only_the_relay_reaches_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let relay = server.relay_url().unwrap().clone();
    // No UDP socket at all: every packet goes through the relay over TCP.
    let config = NodeConfig {
        bind: vec![],
        ..NodeConfig::new(SecretKey::generate()).with_relay(relay.clone())
    };
    // (The relay serves a device that is not enrolled yet only while an invite is open.)
    let mut invite = server
        .invite("王瑞侠", Role::HeadTeacher, now(), now() + WEEK)
        .unwrap()
        .invite;
    let phone = Node::bind(config).await.unwrap();
    assert!(phone.bound_sockets().is_empty());
    assert!(phone.wait_for_relay(Duration::from_secs(10)).await);
    invite.hub_addrs.clear();
    assert_eq!(invite.relay_url.as_deref(), Some(relay.as_str()));
    let enrolled = handshake::enroll(&phone, &invite, now(), &opts())
        .await
        .unwrap();
    let hub_by_relay = EndpointAddr::new(server.hub_id()).with_relay_url(relay);
    handshake::greet(&phone, hub_by_relay, &enrolled.certificate, &opts())
        .await
        .unwrap();
    phone.shutdown().await;
    server.shutdown().await;
}

/// One HTTP/1.1 GET over a plain TCP connection: (status, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    get_from([127, 0, 0, 1], addr, path).await
}

/// [`get`] from the loopback address `from` (127.0.0.x), as from another computer: the console
/// counts connections per source address (`server/connections.rs`).
async fn get_from(from: [u8; 4], addr: SocketAddr, path: &str) -> (u16, String) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// `/health` and `/metrics` answer anyone, so a flood of them must not open `hub.db` once per
/// request on the blocking pool the phones' syncs share: the archive's figures are read at
/// most once every [`STATUS_EVERY`] (one read at a time), and the requests meanwhile get the
/// figures last read. Three hundred requests at once (from ten addresses) read the archive a
/// handful of times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_health_and_metrics_requests_reads_the_archive_a_few_times() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let http = server.http_addr().unwrap();
    let metrics = server.hub_state().metrics().clone();
    let reads = || TransportMetrics::get(&metrics.status_reads);
    let before = reads();
    let began = std::time::Instant::now();
    // From ten addresses (one holds at most 64 connections at once).
    let flood: Vec<_> = (0..300)
        .map(|i| {
            let from = [127, 0, 0, 10 + (i % 10) as u8];
            tokio::spawn(get_from(from, http, ["/health", "/metrics"][i % 2]))
        })
        .collect();
    for request in flood {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains("\"documents\":") || body.contains("shouwang_documents "),
            "{body}"
        );
    }
    let read = reads() - before;
    // One read per interval the flood lasted, and the one it began in: a bound that follows
    // from the mechanism however slow the machine, not a timing.
    let bound = 2 + began.elapsed().as_secs() / STATUS_EVERY.as_secs();
    assert!(
        read <= bound,
        "300 requests read the archive {read} times (at most {bound})"
    );
    server.shutdown().await;
}

/// `/health` says when the archive is of a schema this hub does not serve: another process (a
/// newer `shouwang-relay` run by hand during an upgrade) moved it on under the running hub,
/// whose syncs would then fail while a monitor saw "ok".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_an_archive_of_another_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let http = server.http_addr().unwrap();
    assert_eq!(get(http, "/health").await.0, 200);
    let mut archive = DataDir::new(dir.path().join("hub")).open_archive().unwrap();
    let newer = shouwang_core::store::migrations::latest() + 1;
    archive
        .store()
        .conn()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    drop(archive);
    tokio::time::sleep(STATUS_EVERY).await;
    let (status, body) = get(http, "/health").await;
    assert_eq!(status, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        health["status"]
            .as_str()
            .is_some_and(|s| s.contains(&newer.to_string())),
        "{body}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_answer_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let http = server.http_addr().unwrap();
    assert!(http.ip().is_loopback());

    let (status, body) = get(http, "/health").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["hub"], server.hub_id().to_string());

    let phone = device(&server).await;
    enroll(&server, &phone, "王瑞侠", Role::HeadTeacher).await;
    let m = server.transport_metrics().unwrap();
    eventually(|| TransportMetrics::get(&m.conversations_done) == 1).await;
    // The hub counts the conversation done once its half is finished, and the connection
    // closed when the phone closes it (or keeps it warm: not this phone).
    eventually(|| TransportMetrics::get(&m.connections_open) == 0).await;

    let (status, text) = get(http, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE shouwang_connected_devices gauge"),
        "{text}"
    );
    assert_eq!(metric(&text, "shouwang_enrollments_total"), 1);
    assert_eq!(metric(&text, "shouwang_sync_sessions_total"), 1);
    assert_eq!(metric(&text, "shouwang_errors_total"), 0);
    assert_eq!(metric(&text, "shouwang_connected_devices"), 0);
    assert!(metric(&text, "shouwang_documents") >= 1);
    assert!(
        metric(&text, "shouwang_bytes_sent_total") > metric(&text, "shouwang_bytes_received_total")
    );

    let (status, _) = get(http, "/nothing").await;
    assert_eq!(status, 404);
    phone.shutdown().await;
    server.shutdown().await;
}

/// Opens a raw `shouwang/sync/1` stream and writes `bytes`; returns how the hub closed.
async fn raw(server: &Server, bytes: &[u8]) -> ConnectionError {
    let phone = device(server).await;
    let conn = phone
        .endpoint()
        .connect(server.hub_addr(), ALPN)
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(30), conn.closed())
        .await
        .unwrap();
    phone.shutdown().await;
    reason
}

fn app_code(e: &ConnectionError) -> u32 {
    match e {
        ConnectionError::ApplicationClosed(ac) => ac.error_code.into_inner() as u32,
        other => panic!("expected an application close, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::loopback(dir.path().join("hub"))
    };
    let server = Server::start(config).await.unwrap();
    open_door(&server);

    // A length prefix one byte over the limit: refused before any allocation.
    let header = ((MAX_FRAME + 1) as u32).to_le_bytes();
    let closed = raw(&server, &header).await;
    assert_eq!(app_code(&closed), close::TOO_LARGE);

    // Half a length prefix, then silence.
    let closed = raw(&server, &[1, 0]).await;
    assert_eq!(app_code(&closed), close::IDLE);

    // Garbage that is a whole frame: refused by the hub's conversation, with a reason.
    let mut frame = 3u32.to_le_bytes().to_vec();
    frame.extend_from_slice(b"hi!");
    let closed = raw(&server, &frame).await;
    assert_eq!(app_code(&closed), close::REFUSED);

    let m = server.transport_metrics().unwrap();
    eventually(|| TransportMetrics::get(&m.conversations_failed) == 3).await;
    assert_eq!(TransportMetrics::get(&m.oversized), 1);
    assert_eq!(TransportMetrics::get(&m.idle_closed), 1);
    assert_eq!(TransportMetrics::get(&m.refused), 1);
    server.shutdown().await;
}

async fn free_again(tcp: &[SocketAddr], udp: &[SocketAddr]) {
    for _ in 0..100 {
        let tcp_free = tcp.iter().all(|a| std::net::TcpListener::bind(a).is_ok());
        let udp_free = udp.iter().all(|a| std::net::UdpSocket::bind(a).is_ok());
        if tcp_free && udp_free {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ports still in use: {tcp:?} {udp:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_or_shutting_down_the_server_frees_every_port() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    // Ports reserved for this process: one the kernel picked could be given to another test
    // binary's socket between the shutdown and the check, which would then fail for nothing.
    let port = |p: u16| SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, p));
    let config = ServerConfig {
        relay_bind: Some(port(free_tcp())),
        hub_bind: vec![port(free_udp())],
        http_bind: Some(port(free_tcp())),
        ..ServerConfig::loopback(dir.path().join("hub"))
    };

    for graceful in [false, true] {
        let server = Server::start(config.clone()).await.unwrap();
        let phone = device(&server).await;
        enroll(&server, &phone, "王瑞侠", Role::HeadTeacher).await;
        let tcp = vec![server.relay_addr().unwrap(), server.http_addr().unwrap()];
        let udp = server.hub().bound_sockets();
        assert!(!udp.is_empty());
        // Nothing of ours is listening on anything but loopback.
        for a in tcp.iter().chain(&udp) {
            assert!(a.ip().is_loopback(), "{a}");
        }
        phone.shutdown().await;
        if graceful {
            server.shutdown().await;
        } else {
            drop(server);
        }
        free_again(&tcp, &udp).await;
    }
}

/// The files under `dir` this process holds open.
fn open_files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(&dir))
        .collect()
}

/// A graceful shutdown returns only once the archive is closed: a hub restarted in the same
/// process, or its data directory copied or restored right after, finds no connection of the
/// old one still open (SQLite's last connection, closing late, checkpoints and then deletes
/// `hub.db-wal` by name, a restored one included). A CI run on 2026-12-05 saw a phone turned
/// away as a stranger by a hub whose restored data directory had lost that WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_returns_with_the_archive_closed() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let config = ServerConfig::loopback(dir.path().join("hub"));
    for round in 0..5 {
        let server = Server::start(config.clone()).await.unwrap();
        let phone = device(&server).await;
        enroll(&server, &phone, "王瑞侠", Role::HeadTeacher).await;
        // The console's own archive, too (a login attempt is counted in it).
        let http = server.http_addr().unwrap();
        assert_eq!(get(http, "/health").await.0, 200);
        let refused = tokio::task::spawn_blocking(move || {
            shouwang_tests::http::Client::new(http.port()).login("王瑞侠", "不是这个密码")
        })
        .await
        .unwrap();
        assert!(refused.text().contains("密码"), "{}", refused.text());
        assert!(
            !open_files_under(dir.path()).is_empty(),
            "the running hub holds its archive open"
        );
        phone.shutdown().await;
        server.shutdown().await;
        let open = open_files_under(dir.path());
        assert!(
            open.is_empty(),
            "round {round}: still open after shutdown: {open:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_is_refused_gets_no_records() {
    // A refusal arrives as the only frame: nothing of the school is sent before it.
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let phone = device(&server).await;
    let mut invite = server
        .invite("王瑞侠", Role::HeadTeacher, now(), now() + WEEK)
        .unwrap()
        .invite;
    invite.secret = shouwang_core::membership::InviteSecret::random();
    let conv = handshake::Enrollment::new(invite.clone(), phone.id(), now());
    let err = phone
        .converse(handshake::hub_addr(&invite).unwrap(), conv, &opts())
        .await
        .unwrap_err();
    match err {
        // As the refusal frame, or (when the close overtakes it) as the close reason.
        TransportError::Conversation(e) => assert!(e.to_string().contains("邀请码无效"), "{e}"),
        TransportError::Refused(why) => assert!(why.contains("邀请码无效"), "{why}"),
        other => panic!("{other:?}"),
    }
    phone.shutdown().await;
    server.shutdown().await;
}

/// The devices the hub's school document lists, as (id, revoked).
fn registered(dir: &std::path::Path) -> Vec<(String, bool)> {
    let mut archive = DataDir::new(dir.join("hub")).open_archive().unwrap();
    archive
        .devices()
        .unwrap()
        .into_iter()
        .map(|d| (d.id, d.revoked))
        .collect()
}

fn id_of(node: &Node) -> String {
    shouwang_core::ids::DeviceId::from_key(node.id().as_bytes())
        .as_str()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_invite_registers_no_device_and_a_revoked_phone_cannot_enroll_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = sample_hub(dir.path()).await;
    // 刘桂兰's phone enrolls with her invite; the invite stays valid for a week.
    let invite = server
        .invite("刘桂兰", Role::LoveMother, now(), now() + WEEK)
        .unwrap()
        .invite;
    let phone = device(&server).await;
    handshake::enroll(&phone, &invite, now(), &opts())
        .await
        .unwrap();
    let before = registered(dir.path());

    // Someone who photographed the QR code presents it from another phone: refused, and the
    // school document gains no device (every phone would download it; it would pass the gate).
    let stranger = device(&server).await;
    let err = handshake::enroll(&stranger, &invite, now(), &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("用过"), "{err}");
    assert_eq!(
        registered(dir.path()),
        before,
        "a refused enrollment registered a device"
    );
    assert!(!before.iter().any(|(id, _)| *id == id_of(&stranger)));

    // The phone is reported lost and revoked; its member stays. The modified app presents
    // its invite again, from the same key: refused, and no certificate, no bundle.
    DataDir::new(dir.path().join("hub"))
        .open_archive()
        .unwrap()
        .revoke_device(&id_of(&phone))
        .unwrap();
    let err = handshake::enroll(&phone, &invite, now(), &opts())
        .await
        .expect_err("a revoked phone enrolled again with its old invite");
    assert!(err.to_string().contains("停用"), "{err}");
    assert!(
        registered(dir.path())
            .iter()
            .any(|(id, revoked)| *id == id_of(&phone) && *revoked),
        "the phone is still revoked"
    );
    phone.shutdown().await;
    stranger.shutdown().await;
    server.shutdown().await;
}

/// A device may present its invite again while its enrollment has not reached it (the link
/// cut before the bundle arrived), not once it has synced: each enrollment exports the
/// member's whole file, outside the daily quota, until the invite expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_has_synced_does_not_enroll_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = sample_hub(dir.path()).await;
    let invite = server
        .invite("刘桂兰", Role::LoveMother, now(), now() + WEEK)
        .unwrap()
        .invite;
    let phone = device(&server).await;
    handshake::enroll(&phone, &invite, now(), &opts())
        .await
        .unwrap();
    // The bundle did not arrive: she tries again.
    handshake::enroll(&phone, &invite, now(), &opts())
        .await
        .unwrap();
    // Her phone has synced since (as the hub records a completed sync).
    let device = DeviceKey(*phone.id().as_bytes());
    DataDir::new(dir.path().join("hub"))
        .open_archive()
        .unwrap()
        .record_sync_result(&device.to_string(), None)
        .unwrap();
    let err = handshake::enroll(&phone, &invite, now(), &opts())
        .await
        .expect_err("a device that has synced enrolled again");
    assert!(err.to_string().contains("直接同步"), "{err}");
    phone.shutdown().await;
    server.shutdown().await;
}

/// A modified app on 刘桂兰's enrolled phone presents an invite made for 王瑞侠 (the phone's
/// own check skipped, as `device::renew` makes it): the hub refuses a device registered to
/// another member, and gives the invite back for 王瑞侠's own phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_of_another_member_does_not_enroll_with_her_invite() {
    let dir = tempfile::tempdir().unwrap();
    let server = sample_hub(dir.path()).await;
    let hers = server
        .invite("刘桂兰", Role::LoveMother, now(), now() + WEEK)
        .unwrap()
        .invite;
    let phone = device(&server).await;
    handshake::enroll(&phone, &hers, now(), &opts())
        .await
        .unwrap();
    let his = server
        .invite("王瑞侠", Role::HeadTeacher, now(), now() + WEEK)
        .unwrap()
        .invite;
    let err = handshake::enroll(&phone, &his, now(), &opts())
        .await
        .expect_err("a device of another member enrolled");
    assert!(err.to_string().contains("另一位成员"), "{err}");
    let his_phone = device(&server).await;
    let enrolled = handshake::enroll(&his_phone, &his, now(), &opts())
        .await
        .unwrap();
    assert!(
        enrolled
            .certificate
            .body()
            .roles
            .contains(&Role::HeadTeacher)
    );
    phone.shutdown().await;
    his_phone.shutdown().await;
    server.shutdown().await;
}

/// A member deactivated while her invite is open: the hub would refuse the invite, but while
/// it is open the gate and the relay let strangers in. Her invites close as soon as the hub
/// sees the deactivation (another member's stay open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_member_s_open_invite_no_longer_holds_the_gate_open() {
    let dir = tempfile::tempdir().unwrap();
    common::sample_school(dir.path());
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let data = DataDir::new(dir.path().join("hub"));
    server
        .invite("刘桂兰", Role::LoveMother, now(), now() + WEEK)
        .unwrap();
    assert!(data.has_open_invite(now()));
    data.open_archive()
        .unwrap()
        .deactivate_member("刘桂兰")
        .unwrap();
    eventually(|| !data.has_open_invite(now())).await;

    server
        .invite("武秀梅", Role::SubjectTeacher, now(), now() + WEEK)
        .unwrap();
    data.open_archive()
        .unwrap()
        .add_class("四年级(1)班", None)
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        data.has_open_invite(now()),
        "an active member's invite stays open"
    );
    server.shutdown().await;
}

/// The same when the deactivation comes from the office's device: its sync writes the school
/// on the hub (the conversation reads the new school before the watcher does), and the
/// invite closes all the same. The real binaries.
#[test]
fn a_member_deactivated_on_the_office_s_device_has_her_invite_closed() {
    use common::cli::{BIN, invite, phone};
    use shouwang_tests::hub_process::{HubPorts, HubProcess};
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    let ports = HubPorts::write(dir.path(), &data, "");
    let server = HubProcess::start(
        std::path::Path::new(BIN),
        &ports,
        &dir.path().join("hub.log"),
    );
    let office = dir.path().join("office.db");
    phone(
        &office,
        &["join", &invite(&ports.config, "领导组", "张长友")],
    );
    invite(&ports.config, "爱心妈妈", "刘桂兰");
    assert!(data.has_open_invite(now()));
    phone(&office, &["member", "deactivate", "刘桂兰"]);
    phone(&office, &["sync"]);
    let closed = std::time::Instant::now();
    while data.has_open_invite(now()) {
        assert!(
            closed.elapsed() < Duration::from_secs(10),
            "her invite still holds the gate open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
}

/// A configuration written before invites were capped at 90 days (`invite_days = 180`) still
/// serves after the upgrade: its invites are open for 90 days.
#[test]
fn a_configuration_with_longer_invites_still_serves_and_invites_for_ninety_days() {
    use common::cli::{BIN, ok, relay};
    use shouwang_tests::hub_process::{HubPorts, HubProcess};
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    let ports = HubPorts::write(dir.path(), &data, "invite_days = 180\n");
    let server = HubProcess::start(
        std::path::Path::new(BIN),
        &ports,
        &dir.path().join("hub.log"),
    );
    let out = ok(relay(
        &ports.config,
        &["invite", "--role", "爱心妈妈", "--member", "刘桂兰"],
    ));
    assert!(out.contains("90 天内有效"), "{out}");
    server.stop();
}

/// A 校长 who is also a 班主任 is invited as an administrator: an invite for her other role
/// is refused when it is issued (the hub would refuse it at enrollment, for no reason she
/// could see), and one issued without a role is for her administrator's role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_is_invited_as_one() {
    use shouwang_relay::server::{HubContact, issue_member_invite};
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    data.open_archive()
        .unwrap()
        .add_member("赵校长", &[Role::HeadTeacher, Role::Leadership], None, None)
        .unwrap();
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    open_door(&server);
    let err = server
        .invite("赵校长", Role::HeadTeacher, now(), now() + WEEK)
        .unwrap_err();
    assert!(err.to_string().contains("按管理员角色"), "{err}");
    let contact = HubContact {
        relay_url: None,
        addrs: server.hub_direct_addrs(),
    };
    let issued = issue_member_invite(&data, &contact, "赵校长", None, now(), now() + WEEK).unwrap();
    let phone = device(&server).await;
    let enrolled = handshake::enroll(&phone, &issued.invite, now(), &opts())
        .await
        .unwrap();
    assert!(
        enrolled
            .certificate
            .body()
            .roles
            .contains(&Role::Leadership)
    );
    phone.shutdown().await;
    server.shutdown().await;
}

/// An enrollment that fails after the invite was spent but before anything was registered
/// gives the invite back: a phone already registered to the 班主任 presents the 爱心妈妈's
/// invite (her ticket scanned on the wrong phone), is refused, and her own phone still joins
/// with it. It was spent for the wrong phone for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrollment_refused_before_registering_gives_the_invite_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = sample_hub(dir.path()).await;
    let teachers = device(&server).await;
    enroll(&server, &teachers, "王瑞侠", Role::HeadTeacher).await;
    let hers = server
        .invite("刘桂兰", Role::LoveMother, now(), now() + WEEK)
        .unwrap()
        .invite;
    let err = handshake::enroll(&teachers, &hers, now(), &opts())
        .await
        .expect_err("one phone registered to two members");
    assert!(err.to_string().contains("另一位成员"), "{err}");
    let phone = device(&server).await;
    handshake::enroll(&phone, &hers, now(), &opts())
        .await
        .unwrap();
    teachers.shutdown().await;
    phone.shutdown().await;
    server.shutdown().await;
}

/// A phone whose clock is an hour slow (a cheap phone whose battery ran flat) joins: the
/// certificate the school's server issued by its own clock is judged at its issue time. It
/// was refused after the server had spent the invite and registered the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_whose_clock_is_an_hour_slow_joins() {
    let dir = tempfile::tempdir().unwrap();
    let server = sample_hub(dir.path()).await;
    let invite = server
        .invite("刘桂兰", Role::LoveMother, now() - 7200, now() + WEEK)
        .unwrap()
        .invite;
    let phone = device(&server).await;
    let enrolled = handshake::enroll(&phone, &invite, now() - 3600, &opts())
        .await
        .unwrap();
    assert!(!enrolled.bundle.is_empty());
    phone.shutdown().await;
    server.shutdown().await;
}

/// An invite kept after its member was made an administrator does not enroll a device as
/// one: 武秀梅's invite as a 任课教师, issued by the office and kept, is refused once she is
/// 领导组 (her device would hold the whole school and its secret; the console issues no invite
/// for another administrator). No device is registered; a new invite for her role works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_kept_while_its_member_was_made_an_administrator_enrolls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = sample_hub(dir.path()).await;
    let invite = server
        .invite("武秀梅", Role::SubjectTeacher, now(), now() + WEEK)
        .unwrap()
        .invite;
    // Made 领导组 (no command changes a member's roles today; an administrator's device
    // writing the school document can).
    let mut office = DataDir::new(dir.path().join("hub")).open_archive().unwrap();
    let her = office.find_member("武秀梅").unwrap().id.to_string();
    shouwang_tests::attack::forge(
        &mut office,
        &shouwang_core::doc::DocId::School,
        None,
        |tx| {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let members = tx.get(automerge::ROOT, "members")?.unwrap().1;
            let m = tx.get(&members, her.as_str())?.unwrap().1;
            let roles = tx.get(&m, "roles")?.unwrap().1;
            tx.put(&roles, "leadership", true)
        },
    );
    assert!(
        office
            .find_member("武秀梅")
            .unwrap()
            .roles
            .contains(&Role::Leadership)
    );
    drop(office);
    let before = registered(dir.path());
    let phone = device(&server).await;
    let err = handshake::enroll(&phone, &invite, now(), &opts())
        .await
        .expect_err("an old invite enrolled an administrator's device");
    assert!(err.to_string().contains("重新生成"), "{err}");
    assert_eq!(registered(dir.path()), before);
    let invite = server
        .invite("武秀梅", Role::Leadership, now(), now() + WEEK)
        .unwrap()
        .invite;
    let other = device(&server).await;
    handshake::enroll(&other, &invite, now(), &opts())
        .await
        .unwrap();
    phone.shutdown().await;
    other.shutdown().await;
    server.shutdown().await;
}

/// Reads one frame (`u32` LE length + payload) from a raw stream.
async fn read_frame(recv: &mut iroh::endpoint::RecvStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await.unwrap();
    let mut frame = vec![0; u32::from_le_bytes(len) as usize];
    recv.read_exact(&mut frame).await.unwrap();
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_welcome_a_frame_over_64_kib_is_refused_without_waiting_for_it() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    // A long idle timeout: the refusal must come from the length alone, not from waiting.
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(60),
        ..ServerConfig::loopback(dir.path().join("hub"))
    };
    let server = Server::start(config).await.unwrap();
    open_door(&server);
    assert_eq!(HANDSHAKE_MAX_FRAME, 64 * 1024);

    // A first frame announcing 64 KiB + 1 (and far under MAX_FRAME), whose body never
    // comes: closed at once, before the hub reserves anything for it.
    let began = std::time::Instant::now();
    let header = ((HANDSHAKE_MAX_FRAME + 1) as u32).to_le_bytes();
    let closed = raw(&server, &header).await;
    assert_eq!(app_code(&closed), close::TOO_LARGE);
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    // The largest MAX_FRAME allows, too.
    let closed = raw(&server, &(MAX_FRAME as u32).to_le_bytes()).await;
    assert_eq!(app_code(&closed), close::TOO_LARGE);
    let m = server.transport_metrics().unwrap();
    eventually(|| TransportMetrics::get(&m.oversized) == 2).await;

    // Once welcomed, a device may send frames up to MAX_FRAME again: a 1 MiB frame reaches
    // the sync session (which refuses the garbage), not the size check.
    let phone = device(&server).await;
    let enrolled = enroll(&server, &phone, "王瑞侠", Role::HeadTeacher).await;
    let conn = phone
        .endpoint()
        .connect(server.hub_addr(), ALPN)
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = handshake::Message::Hello(enrolled.certificate.to_bytes()).encode();
    send.write_all(&(hello.len() as u32).to_le_bytes())
        .await
        .unwrap();
    send.write_all(&hello).await.unwrap();
    let first = read_frame(&mut recv).await;
    assert!(matches!(
        handshake::Message::decode(&first).unwrap(),
        handshake::Message::Welcome(_)
    ));
    let big = vec![0u8; 1024 * 1024];
    send.write_all(&(big.len() as u32).to_le_bytes())
        .await
        .unwrap();
    send.write_all(&big).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(30), conn.closed())
        .await
        .unwrap();
    assert_eq!(app_code(&closed), close::REFUSED);
    assert_eq!(TransportMetrics::get(&m.oversized), 2);
    phone.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_checked_before_an_archive_is_borrowed() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let phone = device(&server).await;
    let enrolled = enroll(&server, &phone, "王瑞侠", Role::HeadTeacher).await;
    let state = server.hub_state().clone();
    let before = state.archive_borrows();

    // Garbage for a certificate, a certificate that is not this device's, one signed by
    // another school's key: each refused without touching the archive.
    let stranger = device(&server).await;
    let closed = raw(&server, &{
        let hello = handshake::Message::Hello(vec![1, 2, 3]).encode();
        let mut f = (hello.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(&hello);
        f
    })
    .await;
    assert_eq!(app_code(&closed), close::REFUSED);
    let err = handshake::greet(&stranger, server.hub_addr(), &enrolled.certificate, &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("不属于这台设备"), "{err}");
    let forged = SchoolKey::generate()
        .issue(CertificateBody {
            device: DeviceKey(*stranger.id().as_bytes()),
            ..enrolled.certificate.body().clone()
        })
        .unwrap();
    let err = handshake::greet(&stranger, server.hub_addr(), &forged, &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("签名无效"), "{err}");
    assert_eq!(state.archive_borrows(), before);
    // A report of undelivered work, which only a revoked device makes, from a device the
    // school never registered (the invite open lets it through the gate).
    handshake::report_undelivered(&stranger, server.hub_addr(), 1, 1, &opts())
        .await
        .unwrap_err();
    assert_eq!(state.archive_borrows(), before);

    // Nor does presenting an invite another device used (a photographed QR code), again and
    // again.
    let used = server
        .invite("刘桂兰", Role::LoveMother, now(), now() + WEEK)
        .unwrap()
        .invite;
    let hers = device(&server).await;
    handshake::enroll(&hers, &used, now(), &opts())
        .await
        .unwrap();
    let before = state.archive_borrows();
    for _ in 0..3 {
        let err = handshake::enroll(&stranger, &used, now(), &opts())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("用过"), "{err}");
    }
    assert_eq!(state.archive_borrows(), before);
    hers.shutdown().await;

    // The real device is welcomed, and that borrows one.
    handshake::greet(&phone, server.hub_addr(), &enrolled.certificate, &opts())
        .await
        .unwrap();
    assert!(state.archive_borrows() > before);
    stranger.shutdown().await;
    phone.shutdown().await;
    server.shutdown().await;
}

/// Opens a raw connection from `node` and starts a frame that never ends, so the connection
/// stays open on the hub until it is closed. (A refused one may be closed before the stream
/// opens.)
async fn hold(server: &Server, node: &Node) -> iroh::endpoint::Connection {
    let conn = node
        .endpoint()
        .connect(server.hub_addr(), ALPN)
        .await
        .unwrap();
    if let Ok((mut send, _recv)) = conn.open_bi().await
        && send.write_all(&[1, 0]).await.is_ok()
    {
        // Keep the stream open: dropping the send half would finish it.
        std::mem::forget(send);
    }
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_invite_open_a_stranger_is_closed_after_its_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let data = init(dir.path());
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let m = server.transport_metrics().unwrap().clone();
    let state = server.hub_state().clone();

    // No invite is open: a device the school does not know is closed as soon as QUIC has
    // authenticated it, before any stream, conversation, connection slot or archive.
    let stranger_is_closed = |n: u64| {
        let (server, m) = (&server, m.clone());
        async move {
            let stranger = device(server).await;
            let conn = stranger
                .endpoint()
                .connect(server.hub_addr(), ALPN)
                .await
                .unwrap();
            let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed())
                .await
                .unwrap();
            assert_eq!(app_code(&closed), close::STRANGER);
            assert_eq!(TransportMetrics::get(&m.strangers), n);
            stranger.shutdown().await;
        }
    };
    stranger_is_closed(1).await;
    assert_eq!(TransportMetrics::get(&m.connections_total), 0);
    assert_eq!(state.archive_borrows(), 0);
    let (_, text) = get(server.http_addr().unwrap(), "/metrics").await;
    assert_eq!(metric(&text, "shouwang_strangers_refused_total"), 1);

    // An invite written to the data directory (as `shouwang-relay invite` does from another
    // process) opens the gate at once: the invitee enrolls.
    let invite = shouwang_relay::server::issue_invite(
        &data,
        &shouwang_relay::server::HubContact {
            relay_url: server.relay_url().map(|u| u.to_string()),
            addrs: server.hub_direct_addrs(),
        },
        "王瑞侠",
        Role::HeadTeacher,
        now(),
        now() + WEEK,
    )
    .unwrap()
    .invite;
    let phone = device(&server).await;
    let enrolled = handshake::enroll(&phone, &invite, now(), &opts())
        .await
        .unwrap();

    // The invite spent, the gate is shut again for strangers, and open for the device the
    // hub has just registered.
    stranger_is_closed(2).await;
    handshake::greet(&phone, server.hub_addr(), &enrolled.certificate, &opts())
        .await
        .unwrap();
    assert_eq!(TransportMetrics::get(&m.strangers), 2);
    phone.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limits_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let config = ServerConfig {
        limits: ConnectionLimits {
            total: 3,
            per_endpoint: 2,
            ..ConnectionLimits::default()
        },
        ..ServerConfig::loopback(dir.path().join("hub"))
    };
    let server = Server::start(config).await.unwrap();
    // An invite open: the unregistered endpoints below get past the gate (and count as
    // strangers: at most `strangers` of them at once, 16 here).
    open_door(&server);
    let m = server.transport_metrics().unwrap().clone();
    let open = |n: u64| {
        let m = m.clone();
        move || TransportMetrics::get(&m.connections_open) == n
    };

    // One endpoint holds two connections; its third is closed with BUSY.
    let flooder = device(&server).await;
    let a = hold(&server, &flooder).await;
    eventually(open(1)).await;
    let b = hold(&server, &flooder).await;
    eventually(open(2)).await;
    let c = hold(&server, &flooder).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), c.closed())
        .await
        .unwrap();
    assert_eq!(app_code(&closed), close::BUSY);
    assert_eq!(TransportMetrics::get(&m.busy), 1);
    assert!(a.close_reason().is_none() && b.close_reason().is_none());

    // Another endpoint still gets in, up to the total; the next one is refused too.
    let phone = device(&server).await;
    let p = hold(&server, &phone).await;
    eventually(open(3)).await;
    let other = device(&server).await;
    let o = hold(&server, &other).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), o.closed())
        .await
        .unwrap();
    assert_eq!(app_code(&closed), close::BUSY);
    assert_eq!(TransportMetrics::get(&m.busy), 2);
    let (_, text) = get(server.http_addr().unwrap(), "/metrics").await;
    assert_eq!(metric(&text, "shouwang_busy_refused_total"), 2);

    // A place freed is a place taken: the refused endpoint gets in once one closes.
    a.close(0u32.into(), b"");
    eventually(open(2)).await;
    let again = hold(&server, &other).await;
    eventually(open(3)).await;
    assert!(again.close_reason().is_none());
    assert!(p.close_reason().is_none());
    // Refused connections never reached a conversation: four were taken in, and only the
    // one closed above ended.
    assert_eq!(TransportMetrics::get(&m.connections_total), 4);
    eventually(|| TransportMetrics::get(&m.conversations_failed) == 1).await;
    for n in [flooder, phone, other] {
        n.shutdown().await;
    }
    server.shutdown().await;
}

/// A welcomed device sends frames as fast as it can: `n` copies of a `Refused` for the school
/// document (each a durable write on the hub). Returns the connection and a task reading
/// whatever the hub answers.
async fn flood_refusals(
    server: &Server,
    node: &Node,
    certificate: &shouwang_core::membership::Certificate,
    n: usize,
) -> (iroh::endpoint::Connection, tokio::task::JoinHandle<()>) {
    use shouwang_core::doc::DocId;
    use shouwang_core::sync::{Message as SyncMessage, Why};

    let conn = node
        .endpoint()
        .connect(server.hub_addr(), ALPN)
        .await
        .unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let hello = handshake::Message::Hello(certificate.to_bytes()).encode();
    send.write_all(&(hello.len() as u32).to_le_bytes())
        .await
        .unwrap();
    send.write_all(&hello).await.unwrap();
    let first = read_frame(&mut recv).await;
    assert!(matches!(
        handshake::Message::decode(&first).unwrap(),
        handshake::Message::Welcome(_)
    ));
    // Whatever the hub answers is read and dropped, so its answers never wait on this side.
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(Some(_)) = recv.read(&mut buf).await {}
    });
    let refused = SyncMessage::Refused {
        doc: DocId::School,
        why: Why::Refused,
        count: 1,
        reason: "拒绝".into(),
    }
    .encode();
    let mut frames = Vec::new();
    for _ in 0..n {
        frames.extend_from_slice(&(refused.len() as u32).to_le_bytes());
        frames.extend_from_slice(&refused);
    }
    tokio::spawn(async move {
        let _ = send.write_all(&frames).await;
        // Kept open: finishing would end the conversation.
        std::mem::forget(send);
    });
    (conn, drain)
}

/// A modified app, welcomed, sends the hub a `Refused` for the school document as fast as it
/// can: each one is a durable write on the hub, and no quota counts frames. The hub answers
/// its burst at once and then reads its frames at the device's pace, without refusing it. An
/// administrator's device has no pace (its sync after a restore is a frame per document of
/// the school).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_sending_frames_faster_than_the_pace_is_slowed_not_served() {
    use shouwang_relay::pace::Pace;

    let dir = tempfile::tempdir().unwrap();
    common::sample_school(dir.path());
    // A small pace, so that a few hundred frames tell it from none on any machine.
    let pace = Pace {
        burst: 64.0,
        per_second: 8.0,
    };
    let server = Server::start(ServerConfig {
        pace,
        ..ServerConfig::loopback(dir.path().join("hub"))
    })
    .await
    .unwrap();
    let metrics = server.hub_state().metrics().clone();
    let frames_now = || TransportMetrics::get(&metrics.frames);
    let held_now = || TransportMetrics::get(&metrics.held_off);

    let flooder = device(&server).await;
    let enrolled = enroll(&server, &flooder, "王瑞侠", Role::HeadTeacher).await;
    let began = std::time::Instant::now();
    let (conn, drain) = flood_refusals(&server, &flooder, &enrolled.certificate, 1000).await;
    // Until the hub has taken 150 of them (or a minute has passed): never more than the burst
    // and the pace allow in the time taken, however fast or slow this machine is.
    while frames_now() < 150 && began.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let taken = frames_now();
    let allowed = pace.burst + pace.per_second * began.elapsed().as_secs_f64() + 1.0;
    assert!(
        (taken as f64) <= allowed,
        "{taken} frames taken, {allowed:.0} allowed"
    );
    assert!(taken >= 150, "slowed, not stopped: {taken} frames taken");
    assert!(held_now() > 0);
    assert!(conn.close_reason().is_none(), "{:?}", conn.close_reason());
    let (_, text) = get(server.http_addr().unwrap(), "/metrics").await;
    assert!(metric(&text, "shouwang_frames_held_off_total") > 0);
    conn.close(0u32.into(), b"");
    drain.abort();

    // The administrator's device sends as many: all taken, none held back.
    let office = device(&server).await;
    let admin = enroll(&server, &office, "张长友", Role::Leadership).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (before, held) = (frames_now(), held_now());
    let (conn, drain) = flood_refusals(&server, &office, &admin.certificate, 300).await;
    while frames_now() < before + 300 && began.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        frames_now() >= before + 300,
        "the administrator's frames were not all taken"
    );
    assert_eq!(held_now(), held, "an administrator's device was held back");
    conn.close(0u32.into(), b"");
    drain.abort();
    office.shutdown().await;
    flooder.shutdown().await;
    server.shutdown().await;
}

/// The school's built-in relay admits strangers only while an invite is open, one connection
/// each and `STRANGERS` in all, and not for ever: once the invite is spent (and its grace
/// over) their connections end. A registered phone holds at most `PER_DEVICE`; revoked, it
/// keeps one, through which it is told (a phone behind a carrier's NAT reaches the hub only
/// through the relay). Before, each was admitted or refused once, when it connected, for as
/// long as it liked, and a revoked phone not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_connections_end_when_the_invite_closes_and_a_revoked_phone_is_told() {
    use shouwang_relay::server::hub_relay::{PER_DEVICE, STRANGERS};

    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let server = Server::start(ServerConfig {
        relay_grace: Duration::from_secs(2),
        ..ServerConfig::loopback(dir.path().join("hub"))
    })
    .await
    .unwrap();
    let state = server.hub_state().clone();
    let invite = server
        .invite("王瑞侠", Role::HeadTeacher, now(), now() + WEEK)
        .unwrap()
        .invite;

    // While the invite is open, anyone's endpoint may use the relay: twenty strangers try,
    // and `STRANGERS` connections are let in.
    let mut strangers = Vec::new();
    for _ in 0..20 {
        strangers.push(device(&server).await);
    }
    eventually(|| state.relay_connections() >= STRANGERS).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(state.relay_connections(), STRANGERS);
    // The office sees it on `/metrics`.
    let http = server.http_addr().unwrap();
    let (_, text) = get(http, "/metrics").await;
    assert_eq!(
        metric(&text, "shouwang_relay_connections"),
        STRANGERS as u64
    );
    assert!(metric(&text, "shouwang_relay_refused_total") > 0);

    // The invite is spent by a phone that enrolls: once the grace is over, the strangers'
    // relay connections end, and their endpoints, trying again, are turned away.
    for s in strangers.drain(..4) {
        s.shutdown().await;
    }
    let key = SecretKey::generate();
    let relay_url = server.relay_url().unwrap().clone();
    let bind = |key: &SecretKey| {
        Node::bind(NodeConfig::loopback(key.clone()).with_relay(relay_url.clone()))
    };
    let phone = bind(&key).await.unwrap();
    let enrolled = handshake::enroll(&phone, &invite, now(), &opts())
        .await
        .unwrap();
    eventually(|| state.relay_connections() == 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(state.relay_connections(), 1, "only the enrolled phone");

    // The phone's key, from five more endpoints (a modified app holding relay connections):
    // at most `PER_DEVICE` connections for one device.
    let mut copies = Vec::new();
    for _ in 0..5 {
        copies.push(bind(&key).await.unwrap());
    }
    eventually(|| state.relay_connections() >= PER_DEVICE).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(state.relay_connections(), PER_DEVICE);

    // The phone is revoked: it keeps one relay connection, and no more.
    DataDir::new(dir.path().join("hub"))
        .open_archive()
        .unwrap()
        .revoke_device(&id_of(&phone))
        .unwrap();
    eventually(|| state.relay_connections() == 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(state.relay_connections(), 1);
    let (_, text) = get(http, "/metrics").await;
    assert_eq!(metric(&text, "shouwang_relay_connections"), 1);
    // The strangers' connections (some of the four refused at first may have taken the
    // places of the four shut down) and the phone's spare ones were ended, each counted once.
    let evicted = metric(&text, "shouwang_relay_evicted_total");
    assert!(
        (STRANGERS - 4 + PER_DEVICE - 1) as u64 <= evicted && evicted <= (20 + PER_DEVICE) as u64,
        "{evicted} relay connections ended"
    );

    // Through the relay alone (no UDP at all, as behind a carrier's NAT), the revoked phone
    // reaches the hub and is told.
    for s in strangers.into_iter().chain(copies) {
        s.shutdown().await;
    }
    phone.shutdown().await;
    eventually(|| state.relay_connections() == 0).await;
    let relay_only = Node::bind(NodeConfig {
        bind: vec![],
        ..NodeConfig::new(key.clone()).with_relay(relay_url.clone())
    })
    .await
    .unwrap();
    assert!(relay_only.wait_for_relay(Duration::from_secs(30)).await);
    let hub_by_relay = EndpointAddr::new(server.hub_id()).with_relay_url(relay_url.clone());
    let err = handshake::greet(&relay_only, hub_by_relay, &enrolled.certificate, &opts())
        .await
        .expect_err("a revoked phone was welcomed");
    assert!(err.to_string().contains("停用"), "{err}");
    relay_only.shutdown().await;
    server.shutdown().await;
}
