//! The school PC at rest: `hub.db` and its WAL hold no child's name in clear after phones
//! synced, the data key is not in the data directory, the directory and its files are the
//! owner's only, and a wrong or missing key refuses in one Chinese line and touches nothing.
//! The real hub in-process and the real `shouwang-relay` binary, real iroh endpoints on
//! loopback, real SQLCipher files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::now;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use shouwang_core::roles::Role;
use shouwang_core::{Archive, RecordInput};
use shouwang_relay::handshake;
use shouwang_relay::keyfile;
use shouwang_relay::server::{DataDir, KeySource, Server, ServerConfig, commands};
use shouwang_relay::syncing::sync_once;
use shouwang_relay::transport::{ConversationOptions, Node, NodeConfig, SecretKey};
use shouwang_tests::hub_process::{free_tcp, free_udp};

const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");

/// Names written on the hub and on a phone; none may appear in the hub's files.
const NAMES: [&str; 5] = ["王小雨", "赵子涵", "王瑞侠", "刘秀芬", "郭庄小学"];

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every file and directory under `root`.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_owned()];
    if root.is_dir() {
        for e in std::fs::read_dir(root).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

/// Everything about every file under `root` that a write would change.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u64, Option<std::time::SystemTime>, Vec<u8>)> {
    walk(root)
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).unwrap();
            let digest = if meta.is_file() {
                Sha256::digest(std::fs::read(&p).unwrap()).to_vec()
            } else {
                Vec::new()
            };
            let m = mode(&p);
            (p, (m, meta.len(), meta.modified().ok(), digest))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_phone_synced_no_name_is_in_clear_on_the_school_pc() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    // A QR code image an older release left among the invites (its default place): the
    // ticket in clear, removed when the hub starts.
    let left = data.root().join("invites").join("邀请-王瑞侠-m1.png");
    {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new()
            .mode(0o700)
            .create(left.parent().unwrap());
    }
    std::fs::write(&left, b"\x89PNG").unwrap();
    // Beside ones the hub cannot wipe (here folders so named: as root, nothing else is out of
    // reach), which do not keep it from wiping the others, nor from starting.
    for i in 0..20 {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(left.with_file_name(format!("邀请-{i}.png")))
            .unwrap();
    }
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    assert!(!left.exists(), "an old invite's QR code image is left");
    for i in 0..20 {
        std::fs::remove_dir(left.with_file_name(format!("邀请-{i}.png"))).unwrap();
    }

    // The 班主任's phone enrolls and writes a 家访 naming the grandmother, then syncs.
    let node = Node::bind(
        NodeConfig::loopback(SecretKey::generate()).with_relay(server.relay_url().unwrap().clone()),
    )
    .await
    .unwrap();
    let invite = server
        .invite("王瑞侠", Role::HeadTeacher, now(), now() + 86_400)
        .unwrap()
        .invite;
    let opts = ConversationOptions::default();
    let enrolled = handshake::enroll(&node, &invite, now(), &opts)
        .await
        .unwrap();
    let phone_db = dir.path().join("phone.db");
    let mut phone = Archive::join_enrolled(
        &phone_db,
        &enrolled.bundle,
        invite.member.as_str(),
        &Default::default(),
    )
    .unwrap();
    let record = phone
        .add_record(&RecordInput {
            kind: "家访".into(),
            child: Some("王小雨".into()),
            class: None,
            date: "2026-11-18".into(),
            fields: vec![("notes".into(), "外婆刘秀芬腿脚不便，孩子会自己做饭".into())],
        })
        .unwrap()
        .0;
    let (phone, _) = sync_once(
        &node,
        server.hub_addr(),
        phone,
        &enrolled.certificate,
        &opts,
    )
    .await
    .unwrap();
    drop(phone);

    // The record is on the hub (so the check below is about data that is really there).
    let mut office = data.open_archive().unwrap();
    let file = office.child_file("王小雨").unwrap();
    assert!(file.records.iter().any(|r| r.meta.id.0 == record));
    drop(office);

    // While the hub runs: hub.db and its WAL (which holds the newest pages) hold no name.
    let wal = dir.path().join("hub/hub.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "no WAL to check"
    );
    let check = |when: &str| {
        for path in walk(data.root()).into_iter().filter(|p| p.is_file()) {
            let bytes = std::fs::read(&path).unwrap();
            for name in NAMES {
                assert!(
                    !contains(&bytes, name),
                    "{when}: {name} is in clear in {}",
                    path.display()
                );
            }
        }
    };
    check("running");
    // The same search finds the names in the phone's unencrypted store: it would find them.
    let plain = std::fs::read(&phone_db).unwrap();
    let plain_wal = std::fs::read(dir.path().join("phone.db-wal")).unwrap_or_default();
    assert!(contains(&plain, "刘秀芬") || contains(&plain_wal, "刘秀芬"));

    // The data directory and everything in it belong to the owner alone; the key is not in it.
    for path in walk(data.root()) {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    let KeySource::File(key) = data.key_source().clone() else {
        panic!()
    };
    assert!(!key.starts_with(data.root()));
    assert_eq!(mode(&key), 0o600);
    for sub in ["invites", "spent"] {
        assert!(data.root().join(sub).is_dir(), "{sub}");
    }
    // The signing keys are sealed: what is in school.key is not the key.
    let sealed = std::fs::read_to_string(data.root().join("school.key")).unwrap();
    let school = data.school_key().unwrap();
    assert!(!sealed.contains(&hex::encode(school.secret_bytes())));

    node.shutdown().await;
    server.shutdown().await;
    check("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_key_refuses_in_one_chinese_line_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    let keys = tempfile::tempdir().unwrap();
    let wrong = keys.path().join("wrong.key");
    keyfile::create(&wrong, &[7; 32]).unwrap();
    let missing = keys.path().join("missing.key");
    let before = snapshot(dir.path());

    let with = |key: KeySource| ServerConfig {
        data_key: Some(key),
        ..ServerConfig::loopback(dir.path().join("hub"))
    };
    let one_line = |e: &dyn std::fmt::Display, want: &str| {
        let text = e.to_string();
        assert!(text.contains(want), "{text}");
        assert!(!text.contains('\n'), "{text}");
    };
    // The server, the invite command, and opening the archive, each with the wrong key.
    let e = Server::start(with(KeySource::File(wrong.clone())))
        .await
        .unwrap_err();
    one_line(&e, "数据密钥不对");
    let e = commands::invite_command(
        &with(KeySource::File(wrong.clone())),
        "刘桂兰",
        Some("爱心妈妈"),
        None,
        Some(keys.path().join("qr.png")),
    )
    .unwrap_err();
    one_line(&e, "数据密钥不对");
    let e = DataDir::with_key(data.root(), KeySource::File(wrong.clone()))
        .open_archive()
        .unwrap_err();
    one_line(&e, "数据密钥不对");
    // hub.db itself refuses a key that is not its own, even past the key files.
    let e = Archive::open_with_key(
        &data.archive(),
        Some(&shouwang_core::store::StoreKey::from_bytes(&[7; 32]).unwrap()),
    )
    .unwrap_err();
    assert!(matches!(e, shouwang_core::Error::Locked), "{e}");
    assert!(Archive::open(&data.archive()).is_err());

    // A missing key file, an unset variable, no systemd credential.
    for source in [
        KeySource::File(missing.clone()),
        KeySource::Env("SHOUWANG_TEST_KEY_NOBODY_SETS".into()),
        KeySource::Credential("shouwang-test-nothing".into()),
    ] {
        let e = Server::start(with(source.clone())).await.unwrap_err();
        one_line(&e, "找不到数据密钥");
    }
    assert!(!missing.exists());

    // The binary: one line on stderr, a failing exit, for serve and for invite.
    for args in [
        vec!["serve", "--no-relay", "--hub-bind", "127.0.0.1:0"],
        vec!["invite", "--role", "爱心妈妈", "--member", "刘桂兰"],
    ] {
        for key in [&wrong, &missing] {
            let out = Command::new(BIN)
                .arg("--data-dir")
                .arg(data.root())
                .arg("--key-file")
                .arg(key)
                .args(&args)
                .output()
                .unwrap();
            assert!(!out.status.success());
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.starts_with("错误："), "{err}");
        }
    }
    assert!(!missing.exists());

    // Nothing in the data directory (or beside it) was created, changed or touched.
    assert_eq!(snapshot(dir.path()), before);
}

/// `shouwang-relay` with `args`, `$HOME` and `$XDG_CONFIG_HOME` under `home`.
fn relay(home: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env_remove("SHOUWANG_HUB_KEY")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn init_school_then_serve_on_the_default_key_location_as_run_sh_does() {
    let home = tempfile::tempdir().unwrap();
    let hub = home.path().join("shouwang-hub");
    let hub_arg = hub.to_str().unwrap();
    let init = [
        "--data-dir",
        hub_arg,
        "init-school",
        "--name",
        "郭庄小学",
        "--town",
        "丁里镇",
        "--admin",
        "张长友",
        "--local-only",
    ];
    // Before init-school, serve says what to do, and creates neither the directory nor a key.
    let out = relay(home.path(), &[], &["--data-dir", hub_arg, "serve"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("init-school"), "{err}");
    assert!(!hub.exists() && !home.path().join("config").exists());

    let out = relay(home.path(), &[], &init);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The key is in the user's configuration directory, private, and init-school says where.
    let key = home.path().join("config/shouwang/hub-data.key");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    assert!(stdout.contains(&key.display().to_string()), "{stdout}");
    assert_eq!(mode(&hub), 0o700);
    for f in ["hub.db", "school.key", "hub.key"] {
        assert_eq!(mode(&hub.join(f)), 0o600, "{f}");
    }

    // serve finds the key where init-school put it.
    let (relay_port, hub_port, http) = (free_tcp(), free_udp(), free_tcp());
    let mut child = Command::new(BIN)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args(["--data-dir", hub_arg, "serve"])
        .args(["--relay-bind", &format!("127.0.0.1:{relay_port}")])
        .args(["--hub-bind", &format!("127.0.0.1:{hub_port}")])
        .args(["--http-bind", &format!("127.0.0.1:{http}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        assert!(Instant::now() < deadline, "serve never answered /health");
        assert!(child.try_wait().unwrap().is_none(), "serve exited");
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", http)) {
            use std::io::Write;
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    // A data key from an environment variable, chosen in the configuration: init-school
    // refuses without it (creating nothing), and works with it.
    let config = home.path().join("env.toml");
    let env_hub = home.path().join("env-hub");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[data_key]\nenv = \"SHOUWANG_HUB_KEY\"\n",
            env_hub.display()
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let mut args = vec!["--config", config_arg];
    args.extend_from_slice(&init[2..]);
    let out = relay(home.path(), &[], &args);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("SHOUWANG_HUB_KEY"), "{err}");
    assert!(!env_hub.exists());
    let hex_key = "ab".repeat(32);
    let env = [("SHOUWANG_HUB_KEY", hex_key.as_str())];
    let out = relay(home.path(), &env, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let invite = [
        "--config",
        config_arg,
        "invite",
        "--role",
        "班主任",
        "--member",
        "王瑞侠",
    ];
    let out = relay(home.path(), &env, &invite);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The ticket enrolls a phone as 王瑞侠 until it is used or expires: nothing of it stays in
    // the data directory in clear (a PC stolen without its data key must not give it away), so
    // no QR code image unless asked for, and never one in the data directory.
    let text = String::from_utf8(out.stdout).unwrap();
    let ticket = text.lines().find(|l| l.starts_with("shouwang1")).unwrap();
    for f in walk(&env_hub) {
        assert_ne!(
            f.extension().and_then(|e| e.to_str()),
            Some("png"),
            "{}",
            f.display()
        );
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(!contains(&bytes, ticket), "{}", f.display());
    }
    let inside = env_hub.join("invites").join("王瑞侠.png");
    let mut asked = invite.to_vec();
    asked.extend(["--png", inside.to_str().unwrap()]);
    let out = relay(home.path(), &env, &asked);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("数据目录"), "{err}");
    assert!(!inside.exists());
    let outside = home.path().join("王瑞侠.png");
    let mut asked = invite.to_vec();
    asked.extend(["--png", outside.to_str().unwrap()]);
    let out = relay(home.path(), &env, &asked);
    assert!(out.status.success());
    assert_eq!(&std::fs::read(&outside).unwrap()[1..4], b"PNG");
    let other = "cd".repeat(32);
    let out = relay(
        home.path(),
        &[("SHOUWANG_HUB_KEY", other.as_str())],
        &invite,
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("数据密钥不对"), "{err}");
}
