//! A lost phone, on the real binaries: the office lists the devices and revokes the 爱心妈妈's
//! phone; at its next sync the hub refuses it with one Chinese line and the phone wipes its
//! store (no file left, no byte of a child's name anywhere); the 班主任's phone syncs on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::hub::{self, shouwang};
use shouwang_core::roles::Role;

#[test]
fn a_revoked_phone_is_refused_at_its_next_sync_and_wipes_its_store() {
    let dir = tempfile::tempdir().unwrap();
    hub::init_school(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = hub::start(&rt, dir.path());
    let teacher = dir.path().join("teacher.db");
    let mother = dir.path().join("mother.db");
    hub::join(&server, &teacher, "王瑞侠", Role::HeadTeacher);
    hub::join(&server, &mother, "刘桂兰", Role::LoveMother);
    let (ok, _, err) = shouwang(&mother, &["sync"]);
    assert!(ok, "{err}");

    let office = dir.path().join("hub").join("hub.db");
    let key = dir.path().join("hub.key");
    let as_office = |args: &[&str]| {
        let mut all = vec!["--key-file", key.to_str().unwrap()];
        all.extend_from_slice(args);
        shouwang(&office, &all)
    };
    let (ok, out, err) = as_office(&["--json", "device", "list"]);
    assert!(ok, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hers = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["member"] == "刘桂兰")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Only an administrator revokes.
    let (ok, _, err) = shouwang(&teacher, &["device", "revoke", &hers[..8]]);
    assert!(!ok && err.contains("不能管理学校设置"), "{err}");
    let (ok, out, err) = as_office(&["device", "revoke", &hers[..8]]);
    assert!(ok, "{err}");
    assert!(out.contains("已停用 刘桂兰"), "{out}");

    let (ok, _, err) = shouwang(&mother, &["sync"]);
    assert!(!ok);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("错误：")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("已被学校停用") && errors[0].contains("已清除"),
        "{err}"
    );
    for suffix in ["", "-wal", "-shm"] {
        let mut p = mother.clone().into_os_string();
        p.push(suffix);
        assert!(!std::path::Path::new(&p).exists(), "{p:?} is still there");
    }
    let (ok, _, err) = shouwang(&teacher, &["sync"]);
    assert!(ok, "{err}");
    let (ok, out, _) = as_office(&["device", "list"]);
    assert!(ok && out.contains("已停用"), "{out}");
    rt.block_on(server.shutdown());
}
