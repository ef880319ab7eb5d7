//! The hub stopped in the middle of a sync, by SIGKILL or by a graceful SIGTERM, and restarted:
//! no write the hub confirmed is missing from its disk, everything converges, and nothing the
//! phone wrote is lost or duplicated. The server is the real `shouwang-relay` binary in its own
//! process, on loopback ports; the phone is an in-process iroh endpoint with a real store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shouwang_core::{Archive, RecordInput};
use shouwang_relay::handshake;
use shouwang_relay::server::{DataDir, KeySource};
use shouwang_relay::syncing::sync_once;
use shouwang_relay::transport::{ConversationOptions, Node, NodeConfig, SecretKey};
use shouwang_tests::hub_process::{free_tcp, free_udp};

const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");

fn relay(config: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn serve(config: &Path, http: u16) -> Child {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Ready when /health answers.
    // A liveness bound for a loaded machine, not a timing target.
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", http)).is_ok() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

fn opts() -> ConversationOptions {
    ConversationOptions {
        idle_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        ..ConversationOptions::default()
    }
}

/// How the hub is stopped in the middle of a sync.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// SIGKILL: the process dies between two instructions.
    Kill,
    /// SIGTERM: the server shuts down gracefully and exits with status 0.
    Term,
}

impl Stop {
    fn apply(self, server: &mut Child) {
        match self {
            Stop::Kill => {
                server.kill().unwrap();
                server.wait().unwrap();
            }
            Stop::Term => {
                let sent = Command::new("kill")
                    .args(["-TERM", &server.id().to_string()])
                    .status()
                    .unwrap();
                assert!(sent.success(), "kill -TERM failed");
                // A liveness bound, not a timing target: a hung shutdown fails here.
                let deadline = Instant::now() + Duration::from_secs(60);
                let status = loop {
                    if let Some(status) = server.try_wait().unwrap() {
                        break status;
                    }
                    if Instant::now() >= deadline {
                        let _ = server.kill();
                        panic!("the hub did not shut down within 60 s of SIGTERM");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                };
                assert!(status.success(), "graceful shutdown exited with {status}");
            }
        }
    }
}

/// Every record the phone counts as delivered (its document is not in `sync_status`'s
/// pending list: the hub confirmed holding its heads) is in `hub.db`, read while the hub is
/// down. Returns how many documents were confirmed.
fn assert_confirmed_records_are_on_the_hub(
    phone: &mut Archive,
    hub_db: &DataDir,
    hub: &str,
) -> usize {
    let pending: BTreeSet<String> = phone
        .sync_status(hub)
        .unwrap()
        .pending
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let mut office = hub_db.open_archive().unwrap();
    let mut confirmed = 0;
    for i in 0..CHILDREN {
        let name = format!("学生{i:02}");
        let mine = phone.child_file(&name).unwrap();
        if pending.contains(&format!("child/{}", mine.id)) {
            continue;
        }
        confirmed += 1;
        let at_hub: BTreeSet<String> = office
            .child_file(&name)
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.meta.id.0)
            .collect();
        for r in mine.records {
            assert!(
                at_hub.contains(&r.meta.id.0),
                "{name}'s file is confirmed by the hub but its record {} is not in hub.db",
                r.meta.id.0
            );
        }
    }
    confirmed
}

const CHILDREN: usize = 40;

/// The story both tests tell: 郭庄小学's hub in its own process; a 班主任's phone enrolls, writes
/// a month of 家访 offline (400 long records), and syncs; the hub is stopped (`stop`) while the
/// sync runs, and restarted; the phone writes 40 more and syncs again, and the hub is stopped a
/// little later each time. While the hub is down, every document the phone believes delivered
/// must be in `hub.db`. At the end the phone syncs once more, and the hub holds every record
/// exactly once.
fn the_hub_stopped_mid_sync(stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let (relay_port, hub_port, http) = (free_tcp(), free_udp(), free_tcp());
    let config = dir.path().join("hub.toml");
    // The data key sits beside the configuration file (shouwang-relay's default).
    let hub_db = DataDir::with_key(
        dir.path().join("hub"),
        KeySource::File(dir.path().join("hub-data.key")),
    );
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[relay]\nbind = \"127.0.0.1:{relay_port}\"\n[hub]\nbind = [\"127.0.0.1:{hub_port}\"]\n[http]\nbind = \"127.0.0.1:{http}\"\n",
            dir.path().join("hub").display()
        ),
    )
    .unwrap();
    relay(
        &config,
        &[
            "init-school",
            "--name",
            "郭庄小学",
            "--town",
            "丁里镇",
            "--admin",
            "张长友",
        ],
    );
    {
        let mut office = hub_db.open_archive().unwrap();
        office
            .add_member(
                "王瑞侠",
                &[shouwang_core::roles::Role::HeadTeacher],
                None,
                None,
            )
            .unwrap();
        office.add_class("三年级(1)班", Some("王瑞侠")).unwrap();
        let mut table = vec![vec!["学籍号".to_owned(), "姓名".into(), "班级".into()]];
        for i in 0..CHILDREN {
            table.push(vec![
                format!("G{i:03}"),
                format!("学生{i:02}"),
                "三年级(1)班".into(),
            ]);
        }
        office
            .import_roster(&shouwang_core::roster::parse_table(&table).unwrap())
            .unwrap();
    }
    let ticket_out = relay(
        &config,
        &["invite", "--role", "班主任", "--member", "王瑞侠"],
    );
    let ticket = ticket_out
        .split_whitespace()
        .find(|w| w.starts_with("shouwang1"))
        .unwrap()
        .to_owned();
    let invite = shouwang_core::membership::Invite::decode(&ticket).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut server = serve(&config, http);
    let node = std::sync::Arc::new(
        rt.block_on(Node::bind(
            NodeConfig::loopback(SecretKey::generate())
                .with_relay(handshake::invite_relay(&invite).unwrap().unwrap()),
        ))
        .unwrap(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let enrolled = rt
        .block_on(handshake::enroll(&node, &invite, now, &opts()))
        .unwrap();
    let phone_dir = tempfile::tempdir().unwrap();
    let phone_db = phone_dir.path().join("phone.db");
    let mut archive = Archive::join_enrolled(
        &phone_db,
        &enrolled.bundle,
        invite.member.as_str(),
        &Default::default(),
    )
    .unwrap();
    // A month offline: 400 long records across the class; then 40 more before every later
    // attempt, so each one has something to deliver.
    let note =
        "家访：走了四十分钟田埂路，奶奶身体尚可，孩子作业按时完成，周末和妈妈视频。".repeat(6);
    let mut written = Vec::new();
    let mut write = |archive: &mut Archive, count: usize| {
        for _ in 0..count {
            let i = written.len();
            let id = archive
                .add_record(&RecordInput {
                    kind: "家访".into(),
                    child: Some(format!("学生{:02}", i % CHILDREN)),
                    class: None,
                    date: format!("2026-10-{:02}", 1 + i % 28),
                    fields: vec![("notes".into(), format!("第{i}次{note}"))],
                })
                .unwrap();
            written.push(id.0);
        }
    };
    write(&mut archive, 400);
    let hub = handshake::hub_addr(&invite).unwrap();
    let hub_key = hub.id.to_string();

    // Sync, and stop the server while it runs, after longer and longer delays: the early stops
    // land mid-sync, the late ones after the hub confirmed what it received. Each time, while
    // the hub is down, what it confirmed must be on its disk.
    // On a loaded machine the sync is slower: the delays go on doubling (up to 25 s) until a
    // stop has landed both mid-sync and after a confirmation.
    let (mut cuts, mut confirmed_at_most) = (0, 0);
    let mut delays = vec![5u64, 15, 40, 100, 250, 600, 1500];
    let mut round = 0;
    while round < delays.len() {
        let delay_ms = delays[round];
        if round + 1 == delays.len() && (cuts == 0 || confirmed_at_most == 0) && delay_ms < 25_000 {
            delays.push(delay_ms * 2);
        }
        if round > 0 {
            write(&mut archive, CHILDREN);
        }
        let task = rt.spawn({
            let node = node.clone();
            let hub = hub.clone();
            let cert = enrolled.certificate.clone();
            async move { sync_once(&node, hub, archive, &cert, &opts()).await }
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        stop.apply(&mut server);
        let result = rt.block_on(task).unwrap();
        archive = Archive::open(&phone_db).unwrap();
        let confirmed = assert_confirmed_records_are_on_the_hub(&mut archive, &hub_db, &hub_key);
        eprintln!(
            "{stop:?} after {delay_ms} ms: sync {}, {confirmed} of {CHILDREN} files confirmed",
            if result.is_ok() { "finished" } else { "cut" }
        );
        confirmed_at_most = confirmed_at_most.max(confirmed);
        cuts += usize::from(result.is_err());
        server = serve(&config, http);
        round += 1;
    }
    assert!(cuts > 0, "no {stop:?} landed during a sync");
    assert!(
        confirmed_at_most > 0,
        "the hub never confirmed a file before it was stopped, so nothing was checked"
    );
    // After the restart: sync until done.
    let (mut archive, _) = rt
        .block_on(sync_once(
            &node,
            hub.clone(),
            archive,
            &enrolled.certificate,
            &opts(),
        ))
        .unwrap();
    stop.apply(&mut server);
    let mut office = hub_db.open_archive().unwrap();
    let mut at_hub = Vec::new();
    for i in 0..CHILDREN {
        at_hub.extend(
            office
                .child_file(&format!("学生{i:02}"))
                .unwrap()
                .records
                .into_iter()
                .map(|r| r.meta.id.0),
        );
    }
    at_hub.sort();
    written.sort();
    assert_eq!(at_hub, written, "every record reached the hub exactly once");
    let status = archive.sync_status(&hub_key).unwrap();
    assert!(status.pending.is_empty(), "{:?}", status.pending);
    assert_eq!(
        assert_confirmed_records_are_on_the_hub(&mut archive, &hub_db, &hub_key),
        CHILDREN
    );
}

#[test]
fn the_hub_killed_mid_sync_restarts_and_everything_converges() {
    the_hub_stopped_mid_sync(Stop::Kill);
}

#[test]
fn the_hub_shut_down_gracefully_mid_sync_loses_no_confirmed_write() {
    the_hub_stopped_mid_sync(Stop::Term);
}
