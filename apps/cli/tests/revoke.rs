//! A lost phone, on the real binaries: the office lists the devices and revokes the 爱心妈妈's
//! phone; at its next sync the hub refuses it with one Chinese line and the phone wipes its
//! store (no file left, no byte of a child's name anywhere); the 班主任's phone syncs on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::hub::{TwoPhones, shouwang};

#[test]
fn a_revoked_phone_is_refused_at_its_next_sync_and_wipes_its_store() {
    let mut school = TwoPhones::join();
    let (teacher, mother) = (school.teacher.clone(), school.mother.clone());
    let (ok, _, err) = shouwang(&mother, &["sync"]);
    assert!(ok, "{err}");

    let office = school.office();
    let hers = office.device_of("刘桂兰", &[]);
    // Only an administrator revokes.
    let (ok, _, err) = shouwang(&teacher, &["device", "revoke", &hers[..8]]);
    assert!(!ok && err.contains("不能管理学校设置"), "{err}");
    let (ok, out, err) = office.run(&["device", "revoke", &hers[..8]]);
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
    let (ok, out, _) = office.run(&["device", "list"]);
    assert!(ok && out.contains("已停用"), "{out}");
    school.stop_hub();
}
