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
