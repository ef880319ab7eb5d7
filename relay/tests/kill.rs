//! The hub killed with SIGKILL in the middle of a sync and restarted: everything converges and
//! nothing the phone wrote is lost. The server is the real `shouwang-relay` binary in its own
//! process, on loopback ports; the phone is an in-process iroh endpoint with a real store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shouwang_core::{Archive, RecordInput};
use shouwang_relay::handshake;
use shouwang_relay::syncing::sync_once;
use shouwang_relay::transport::{ConversationOptions, Node, NodeConfig, SecretKey};

const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");

fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let deadline = Instant::now() + Duration::from_secs(20);
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

#[test]
fn the_hub_killed_mid_sync_restarts_and_everything_converges() {
    let dir = tempfile::tempdir().unwrap();
    let (relay_port, hub_port, http) = (free_tcp(), free_udp(), free_tcp());
    let config = dir.path().join("hub.toml");
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
        let mut office = Archive::open(&dir.path().join("hub/hub.db")).unwrap();
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
        for i in 0..40 {
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
    let mut archive = Archive::join(
        &phone_dir.path().join("phone.db"),
        &enrolled.bundle,
        invite.member.as_str(),
        "phone",
    )
    .unwrap();
    // A month offline: 400 long records across the class.
    let note =
        "家访：走了四十分钟田埂路，奶奶身体尚可，孩子作业按时完成，周末和妈妈视频。".repeat(6);
    let mut written = Vec::new();
    for i in 0..400 {
        let id = archive
            .add_record(&RecordInput {
                kind: "家访".into(),
                child: Some(format!("学生{:02}", i % 40)),
                class: None,
                date: format!("2026-10-{:02}", 1 + i % 28),
                fields: vec![("notes".into(), format!("第{i}次{note}"))],
            })
            .unwrap();
        written.push(id.0);
    }
    let hub = handshake::hub_addr(&invite).unwrap();

    // Sync, and SIGKILL the server while it runs; retry with longer delays until a kill lands
    // mid-sync.
    let mut killed_mid_sync = false;
    for delay_ms in [5u64, 15, 40, 100, 250] {
        let task = rt.spawn({
            let node = node.clone();
            let hub = hub.clone();
            let cert = enrolled.certificate.clone();
            async move { sync_once(&node, hub, archive, &cert, &opts()).await }
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        let result = rt.block_on(task).unwrap();
        archive = Archive::open(&phone_dir.path().join("phone.db")).unwrap();
        server = serve(&config, http);
        if result.is_err() {
            killed_mid_sync = true;
            break;
        }
    }
    assert!(killed_mid_sync, "no kill landed during a sync");
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
    server.kill().unwrap();
    server.wait().unwrap();
    let mut office = Archive::open(&dir.path().join("hub/hub.db")).unwrap();
    let mut at_hub = Vec::new();
    for i in 0..40 {
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
    let status = archive.sync_status(&hub.id.to_string()).unwrap();
    assert!(status.pending.is_empty(), "{:?}", status.pending);
}
