//! The lost phone, end to end on the real `shouwang` binary against the school hub (issue 10):
//! a 爱心妈妈's phone records offline and is reported lost while it is away; it meets the
//! 班主任's phone, which has not heard yet, and they sync; the 班主任's phone then syncs with
//! the hub and learns of the revocation; when the lost phone meets it again it is refused; when
//! it reaches the hub it is wiped and the office sees what it had not delivered. A second phone
//! revoked while it holds a live connection to the hub is cut off (the time is printed, not
//! asserted). Neither the hub's files nor a bundle hold a child's name in clear.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::hub::{self, Office, TwoPhones, ok, record, shouwang};
use shouwang_core::roles::Role;
use shouwang_tests::fixtures::{holds_text, raw_store};

/// `store` waits for one peer (`sync --wait --once`); returns the process and
/// `设备码@127.0.0.1:端口` for the other side to dial.
fn wait_for_a_peer(store: &Path) -> (Child, String) {
    let mut waiting = Command::new(common::BIN)
        .arg("--store")
        .arg(store)
        .args(["--json", "sync", "--wait", "--once", "--seconds", "60"])
        .env_remove("SHOUWANG_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut text = String::new();
    for line in BufReader::new(waiting.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        text.push_str(&line);
        if line == "}" {
            break;
        }
    }
    let first: serde_json::Value = serde_json::from_str(&text).expect(&text);
    let at = format!(
        "{}@127.0.0.1:{}",
        first["device"].as_str().unwrap(),
        first["port"]
    );
    (waiting, at)
}

fn one_error_line(err: &str) -> String {
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("错误：")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    errors[0].to_owned()
}

#[test]
fn story_a_phone_lost_while_offline_is_refused_by_a_peer_that_learned_and_wiped_by_the_hub() {
    let mut school = TwoPhones::join();
    let (teacher, mother) = (school.teacher.clone(), school.mother.clone());
    let office = school.office();
    // The 班主任 learns of the 爱心妈妈's device, registered after hers.
    ok(&teacher, &["sync"]);

    // 1. Enrolled, she records and syncs; then she records while away from any network.
    record(&mother, "谈心", "王小雨", "谈心：周末和妈妈视频");
    ok(&mother, &["sync"]);
    record(&mother, "谈心", "王小雨", "离线谈心：作业按时完成");

    // 2. The phone is reported lost while it is away: revoked, and the office learns which
    //    children's files it may hold, for the school's notification duty.
    let hers = office.device_of("刘桂兰", &[]);
    let report = office.ok(&["device", "lost", &hers[..8]]);
    assert!(report.contains("已停用 刘桂兰"), "{report}");
    assert!(report.contains("王小雨"), "{report}");
    assert!(!report.contains("赵子涵"), "not hers: {report}");

    // 3. The phone meets the 班主任's phone, which has not heard: they sync, as any two
    //    devices of the school do.
    let (waiting, at) = wait_for_a_peer(&mother);
    let out = ok(&teacher, &["sync", "--peer", &at]);
    assert!(out.contains("已与刘桂兰的设备同步"), "{out}");
    assert!(waiting.wait_with_output().unwrap().status.success());
    let file = ok(&teacher, &["child", "show", "王小雨"]);
    assert!(file.contains("离线谈心"), "{file}");

    // 4. The 班主任's phone syncs with the hub and learns of the revocation. Her own work on
    //    the same child rests on what the lost phone handed her, and the lost phone will never
    //    send it itself: the hub takes it from her (judged by the rules as the 爱心妈妈's) and
    //    lists it for the office to review, with who handed it on.
    ok(&teacher, &["sync"]);
    ok(
        &teacher,
        &[
            "record",
            "家访",
            "--child",
            "王小雨",
            "--date",
            "2026-11-22",
            "--field",
            "notes=家访：奶奶说孩子最近爱笑了",
        ],
    );
    ok(&teacher, &["sync"]);
    let at_school = office.ok(&["child", "show", "王小雨"]);
    assert!(at_school.contains("奶奶说孩子最近爱笑了"), "{at_school}");
    assert!(at_school.contains("周末和妈妈视频"), "{at_school}");
    assert!(at_school.contains("离线谈心"), "{at_school}");
    let review = office.ok(&["quarantine"]);
    assert!(
        review.contains("已停用设备的修改") && review.contains("由 王瑞侠"),
        "{review}"
    );

    // 5. The lost phone meets the 班主任's phone again: refused, and nothing more passes.
    let (waiting, at) = wait_for_a_peer(&mother);
    let (synced, _, err) = shouwang(&teacher, &["sync", "--peer", &at]);
    assert!(!synced);
    let line = one_error_line(&err);
    assert!(line.contains("停用"), "{line}");
    let mut waiting = waiting;
    let _ = waiting.kill();
    let _ = waiting.wait();

    // 6. The lost phone reaches the hub: told, wiped (no file left), and the office sees
    //    what it never delivered.
    let (synced, _, err) = shouwang(&mother, &["sync"]);
    assert!(!synced);
    let line = one_error_line(&err);
    assert!(
        line.contains("已被学校停用") && line.contains("已清除"),
        "{line}"
    );
    for suffix in ["", "-wal", "-shm"] {
        let mut p = mother.clone().into_os_string();
        p.push(suffix);
        assert!(!Path::new(&p).exists(), "{p:?} is still there");
    }
    let list = office.ok(&["device", "list"]);
    assert!(list.contains("已清除本机档案"), "{list}");
    assert!(list.contains("其中新记录 1 条"), "{list}");

    // 7. No child's name in clear in the hub's store and WAL, nor in a bundle a phone makes.
    let bundle = school.dir.path().join("teacher.swb");
    ok(
        &teacher,
        &["bundle", "export", "--out", bundle.to_str().unwrap()],
    );
    let bytes = std::fs::read(&bundle).unwrap();
    let hub_bytes = raw_store(&office.store);
    for name in ["王小雨", "赵子涵", "刘桂兰"] {
        assert!(!holds_text(&hub_bytes, name), "hub.db holds {name}");
        assert!(!holds_text(&bytes, name), "the bundle holds {name}");
    }
    school.stop_hub();
}

#[test]
fn story_a_phone_revoked_while_connected_live_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    hub::init_school(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = hub::start(&rt, dir.path());
    let office = Office {
        store: dir.path().join("hub").join("hub.db"),
        key: dir.path().join("hub.key"),
    };
    let mother = dir.path().join("mother.db");
    hub::join(&server, &mother, "刘桂兰", Role::LoveMother);
    ok(&mother, &["sync"]);
    let hers = office.device_of("刘桂兰", &[]);

    let mut live = Command::new(common::BIN)
        .arg("--store")
        .arg(&mother)
        .args(["sync", "--live", "--seconds", "120"])
        .env_remove("SHOUWANG_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Connected once the hub has seen it sync; give it a moment to settle into the live state.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        live.try_wait().unwrap().is_none(),
        "the live sync ended early"
    );

    office.ok(&["device", "revoke", &hers[..8]]);
    let revoked = Instant::now();
    let deadline = revoked + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = live.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the live connection was not closed"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    println!(
        "the revoked phone's live sync ended {} ms after the revocation was written",
        revoked.elapsed().as_millis()
    );
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut live.stderr.take().unwrap(), &mut err).unwrap();
    let line = one_error_line(&err);
    assert!(line.contains("已被学校停用"), "{line}");
    assert!(!mother.exists(), "the store is still there");
    rt.block_on(server.shutdown());
}
