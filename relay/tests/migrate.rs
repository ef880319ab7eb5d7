//! A hub data directory made before encryption at rest (plain `hub.db`, `school.key` and
//! `hub.key` in hex under their v1 headers, as the previous release wrote them) is refused by
//! `serve` with one Chinese line naming `encrypt-data`; `shouwang-relay encrypt-data` converts
//! it in place (a half-built directory left by a crashed run is discarded); then the hub
//! serves it under the same endpoint key and a phone enrolls and syncs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::Path;
use std::process::Command;

use shouwang_core::Archive;
use shouwang_core::archive::SchoolSetup;
use shouwang_core::membership::SchoolKey;
use shouwang_core::roles::Role;
use shouwang_core::roster::parse_table;
use shouwang_relay::device;
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_relay::transport::SecretKey;
use shouwang_tests::fixtures::{CLASS, HEAD_TEACHER, holds_text};

const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A data directory as the release before SQCipher wrote it; returns the hub's endpoint key.
fn plain_hub(root: &Path) -> SecretKey {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().mode(0o700).create(root).unwrap();
    let mut office =
        Archive::create_school(&root.join("hub.db"), &SchoolSetup::sample("学校服务器")).unwrap();
    office
        .add_member(HEAD_TEACHER, &[Role::HeadTeacher], None, None)
        .unwrap();
    office.add_class(CLASS, Some(HEAD_TEACHER)).unwrap();
    let table: Vec<Vec<String>> = [["学籍号", "姓名", "班级"], ["G1", "王小雨", CLASS]]
        .iter()
        .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
        .collect();
    office.import_roster(&parse_table(&table).unwrap()).unwrap();
    drop(office);
    let hub = SecretKey::generate();
    let write = |name: &str, header: &str, secret: &[u8]| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(root.join(name))
            .unwrap();
        std::io::Write::write_all(
            &mut f,
            format!("{header}\n{}\n", hex::encode(secret)).as_bytes(),
        )
        .unwrap();
    };
    write(
        "school.key",
        "shouwang school signing key v1",
        &SchoolKey::generate().secret_bytes(),
    );
    write("hub.key", "shouwang hub endpoint key v1", &hub.to_bytes());
    std::fs::create_dir(root.join("invites")).unwrap();
    std::fs::write(root.join("invites/old.json"), b"{}").unwrap();
    hub
}

fn relay(root: &Path, args: &[&str]) -> std::process::Output {
    let mut key = root.as_os_str().to_owned();
    key.push(".key");
    Command::new(BIN)
        .arg("--data-dir")
        .arg(root)
        .arg("--key-file")
        .arg(&key)
        .args(args)
        .output()
        .expect("shouwang-relay binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_hub_is_refused_then_encrypted_in_place_and_serves_a_phone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("hub");
    let hub_key = plain_hub(&root);
    let plain_db = std::fs::read(root.join("hub.db")).unwrap();
    assert!(holds_text(&plain_db, "王小雨"), "the fixture is not plain");

    // `serve` refuses with one Chinese line naming the command, and touches nothing.
    let out = relay(
        &root,
        &[
            "serve",
            "--relay-bind",
            "127.0.0.1:0",
            "--hub-bind",
            "127.0.0.1:0",
            "--http-bind",
            "127.0.0.1:0",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(!out.status.success());
    assert!(
        last.starts_with("错误：") && last.contains("shouwang-relay encrypt-data"),
        "{err}"
    );
    assert_eq!(std::fs::read(root.join("hub.db")).unwrap(), plain_db);
    assert!(
        !dir.path().join("hub.key").exists(),
        "a data key was created"
    );

    // A run that crashed while building left a half-made directory: it is built again.
    std::fs::create_dir(dir.path().join("hub.encrypting")).unwrap();
    std::fs::write(dir.path().join("hub.encrypting/hub.db"), b"half").unwrap();
    let out = relay(&root, &["encrypt-data"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("已把") && said.contains("加密格式"), "{said}");
    assert!(!dir.path().join("hub.encrypting").exists());
    assert!(
        dir.path().join("hub.key").exists(),
        "the data key was not placed"
    );
    let db = std::fs::read(root.join("hub.db")).unwrap();
    assert!(!db.starts_with(b"SQLite format 3"));
    assert!(!holds_text(&db, "王小雨"));
    let school_key = std::fs::read_to_string(root.join("school.key")).unwrap();
    assert!(school_key.starts_with("shouwang school signing key v2 (sealed)"));
    assert!(root.join("invites/old.json").exists());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("hub.db")), 0o600);
        assert_eq!(mode(&root.join("hub.key")), 0o600);
    }
    // Twice is harmless; and a run that crashed after the swap, leaving the old plain
    // directory beside the new one, has it wiped by the next.
    std::fs::create_dir(dir.path().join("hub.encrypting")).unwrap();
    std::fs::write(dir.path().join("hub.encrypting/hub.db"), &plain_db).unwrap();
    let out = relay(&root, &["encrypt-data"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("已经是加密格式"));
    assert!(!dir.path().join("hub.encrypting").exists());

    // The hub serves it under the same endpoint key; a phone enrolls and syncs.
    let server = Server::start(ServerConfig::loopback(&root)).await.unwrap();
    assert_eq!(server.hub_addr().id, hub_key.public());
    let ticket = server
        .invite(HEAD_TEACHER, Role::HeadTeacher, now(), now() + 86_400)
        .unwrap()
        .ticket;
    let opts = device::default_options();
    let path = dir.path().join("phone.db");
    let mut phone = device::join(&path, None, &ticket, "手机", now(), &opts)
        .await
        .unwrap();
    assert!(phone.find_child("王小雨").is_ok());
    let identity = device::Identity::load(&mut phone).unwrap();
    let node = identity.bind(false).await.unwrap();
    device::sync_hub(&node, &identity, phone, &opts, None)
        .await
        .unwrap();
    node.shutdown().await;
    server.shutdown().await;
}
