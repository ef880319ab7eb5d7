//! `shouwang join <ticket>`, `sync` and `status` against the real hub and relay, started
//! in-process on 127.0.0.1, with the real `shouwang` binary as two phones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::hub::{self, now, shouwang};
use shouwang_core::roles::Role;

#[test]
fn two_phones_join_with_tickets_and_sync_through_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    hub::init_school(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = hub::start(&rt, dir.path());
    let teacher = dir.path().join("teacher.db");
    let mother = dir.path().join("mother.db");
    for (store, member, role) in [
        (&teacher, "王瑞侠", Role::HeadTeacher),
        (&mother, "刘桂兰", Role::LoveMother),
    ] {
        let ticket = server
            .invite(member, role, now(), now() + 86_400)
            .unwrap()
            .ticket;
        let (ok, out, err) = shouwang(store, &["join", &ticket]);
        assert!(ok, "{err}");
        assert!(out.contains("已加入郭庄小学"), "{out}");
        assert!(out.contains("名学生的档案"), "{out}");
    }
    // A spent ticket, or a damaged one, is refused in Chinese and leaves nothing behind.
    let spent = dir.path().join("third.db");
    let (ok, _, err) = shouwang(&spent, &["join", "shouwang1abc"]);
    assert!(!ok && err.starts_with("错误："), "{err}");
    assert!(!spent.exists());

    // The 爱心妈妈 records offline; she syncs; later the teacher syncs and sees it.
    let (ok, _, err) = shouwang(
        &mother,
        &[
            "record",
            "谈心",
            "--child",
            "王小雨",
            "--date",
            "2026-11-18",
            "--field",
            "notes=每周谈心",
        ],
    );
    assert!(ok, "{err}");
    let (_, out, _) = shouwang(&mother, &["status"]);
    assert!(out.contains("王小雨的档案"), "{out}");
    let (ok, out, err) = shouwang(&mother, &["sync"]);
    assert!(ok, "{err}");
    assert!(out.contains("同步完成"), "{out}");
    let (_, out, _) = shouwang(&mother, &["status"]);
    assert!(out.contains("学校服务器已有本机的全部内容"), "{out}");
    let (ok, _, err) = shouwang(&teacher, &["sync"]);
    assert!(ok, "{err}");
    let (_, out, _) = shouwang(&teacher, &["child", "show", "王小雨"]);
    assert!(out.contains("每周谈心"), "{out}");
    let (ok, out, _) = shouwang(&teacher, &["--json", "status"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["last_success"].is_i64(), "{v}");

    // A device that never joined is told what to do.
    let (ok, _, err) = shouwang(&dir.path().join("none.db"), &["sync"]);
    assert!(!ok && err.starts_with("错误："), "{err}");
    rt.block_on(server.shutdown());
}

/// `shouwang sync --live` on the 班主任's computer: a 谈心 the 爱心妈妈 syncs reaches it with no
/// command run on it, and a 家访 another `shouwang` command writes to its store goes out to the
/// hub on its own.
#[test]
fn a_live_sync_sends_and_receives_while_it_runs() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let mut school = hub::TwoPhones::join();
    let (teacher, mother) = (school.teacher.clone(), school.mother.clone());

    let mut live = Command::new(common::BIN)
        .arg("--store")
        .arg(&teacher)
        .args(["sync", "--live", "--seconds", "60"])
        .env_remove("SHOUWANG_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // What it prints, line by line, as it prints it.
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let printed = printed.clone();
        let stdout = live.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                printed.lock().unwrap().push(line.unwrap());
            }
        })
    };
    let arrivals = || {
        printed
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("收到其他设备的新内容"))
            .count()
    };
    let record = |store: &std::path::Path, kind: &str, notes: &str| {
        let (ok, _, err) = shouwang(
            store,
            &[
                "record",
                kind,
                "--child",
                "王小雨",
                "--date",
                "2026-11-20",
                "--field",
                &format!("notes={notes}"),
            ],
        );
        assert!(ok, "{err}");
    };
    let wait_for = |what: &str, found: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !found() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{what} never arrived"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{what}: {:?}", started.elapsed());
    };

    // The 爱心妈妈's talk, synced by her: the teacher's store receives it by itself.
    record(&mother, "谈心", "爱心妈妈谈心：想妈妈了，约好周末视频");
    let (ok, _, err) = shouwang(&mother, &["sync"]);
    assert!(ok, "{err}");
    wait_for("the talk on the live computer", &|| {
        shouwang(&teacher, &["child", "show", "王小雨"])
            .1
            .contains("约好周末视频")
    });
    wait_for("the talk reported", &|| arrivals() >= 1);
    let reported = arrivals();
    // A second one for the same child, in the same connection: reported too.
    record(&mother, "谈心", "爱心妈妈谈心：视频后情绪好多了");
    let (ok, _, err) = shouwang(&mother, &["sync"]);
    assert!(ok, "{err}");
    wait_for("the second talk on the live computer", &|| {
        shouwang(&teacher, &["child", "show", "王小雨"])
            .1
            .contains("视频后情绪好多了")
    });
    wait_for("the second talk reported", &|| arrivals() > reported);

    // A visit written by another command on the teacher's store: it goes out on its own.
    record(&teacher, "家访", "班主任家访：和奶奶说了周末视频的事");
    wait_for("the visit at the hub", &|| {
        let mut hub = school.data.open_archive().unwrap();
        hub.child_file("王小雨")
            .unwrap()
            .records
            .iter()
            .any(|r| r.fields.iter().any(|f| f.value.contains("周末视频的事")))
    });
    assert!(
        live.try_wait().unwrap().is_none(),
        "the live sync was still running"
    );
    live.kill().unwrap();
    live.wait().unwrap();
    reader.join().unwrap();
    assert!(
        printed.lock().unwrap()[0].contains("已连接学校服务器"),
        "{printed:?}"
    );
    school.stop_hub();
}

/// A phone whose certificate expired over the summer holds a 家访 it never sent: the hub
/// refuses it, and `join` with the administrator's new ticket renews it on the same store
/// (the store is kept, the visit with it), after which `sync` sends the visit.
#[test]
fn join_on_a_joined_store_renews_an_expired_certificate() {
    use shouwang_core::Archive;

    let mut phones = hub::TwoPhones::join();
    let teacher = phones.teacher.clone();
    hub::ok(&teacher, &["sync"]);
    shouwang_tests::phone::expire_certificate(
        &mut Archive::open(&teacher).unwrap(),
        &phones.data.school_key().unwrap(),
    );
    hub::record(&teacher, "家访", "王小雨", "暑假家访：奶奶腿脚不便");
    let (ok, _, err) = shouwang(&teacher, &["sync"]);
    assert!(!ok && err.contains("证书已过期"), "{err}");
    let (_, out, _) = shouwang(&teacher, &["status"]);
    assert!(out.contains("过期") && out.contains("邀请码"), "{out}");

    // 刘桂兰's ticket is not for this phone: refused, nothing changed.
    let hers = phones
        .server()
        .invite("刘桂兰", Role::LoveMother, now(), now() + 86_400)
        .unwrap()
        .ticket;
    let before = std::fs::read(&teacher).unwrap();
    let (ok, _, err) = shouwang(&teacher, &["join", &hers]);
    assert!(!ok && err.contains("另一位成员"), "{err}");
    assert_eq!(std::fs::read(&teacher).unwrap(), before);

    let ticket = phones
        .server()
        .invite("王瑞侠", Role::HeadTeacher, now(), now() + 86_400)
        .unwrap()
        .ticket;
    let out = hub::ok(&teacher, &["join", &ticket]);
    assert!(out.contains("已续期"), "{out}");
    hub::ok(&teacher, &["sync"]);
    let out = phones.office().ok(&["child", "show", "王小雨"]);
    assert!(out.contains("暑假家访"), "{out}");
    phones.stop_hub();
}
