//! `shouwang child erase` (issue 11, point 3) with the real binaries: the office erases a
//! child on the hub's archive, the 班主任's phone drops the file at its next `shouwang sync`
//! with nothing of the child's name or ID number left in its store or WAL, and only
//! administrators, with a reason that does not name the child, may erase.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::hub::{self, ok, ok_office, shouwang};
use common::{School, assert_one_chinese_error, id_card};
use shouwang_core::roles::Role;

use shouwang_tests::fixtures::{holds_text as holds, raw_store as raw};

#[test]
fn the_office_erases_a_child_and_the_phone_keeps_nothing_of_her_after_its_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let data = hub::init_school(dir.path());
    let office = data.archive();
    let id = id_card("20170305", 2);
    ok_office(
        &office,
        &[
            "child",
            "edit",
            "王小雨",
            "identity",
            &format!("id_card={id}"),
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = hub::start(&rt, dir.path());
    let phone = dir.path().join("teacher.db");
    hub::join(&server, &phone, "王瑞侠", Role::HeadTeacher);
    ok(
        &phone,
        &[
            "record",
            "谈心",
            "--child",
            "王小雨",
            "--date",
            "2026-11-18",
            "--field",
            "notes=说想妈妈了",
        ],
    );
    ok(&phone, &["sync"]);
    let bytes = raw(&phone);
    for what in ["王小雨", id.as_str(), "说想妈妈了"] {
        assert!(holds(&bytes, what), "{what} should be on the phone");
    }
    // A 班主任 cannot erase.
    let (done, _, err) = shouwang(&phone, &["child", "erase", "王小雨", "--reason", "转学"]);
    assert!(!done && err.contains("校长或档案管理员"), "{err}");

    let out = ok_office(
        &office,
        &[
            "child",
            "erase",
            "王小雨",
            "--reason",
            "转学，档案已移交转入学校",
        ],
    );
    assert!(out.contains("已删除王小雨的档案"), "{out}");
    let listed = ok_office(&office, &["child", "erased"]);
    assert!(listed.contains("转学，档案已移交转入学校"), "{listed}");
    assert!(!listed.contains("王小雨"), "{listed}");

    let out = ok(&phone, &["sync"]);
    assert!(out.contains("同步完成"), "{out}");
    let bytes = raw(&phone);
    for what in ["王小雨", id.as_str(), "说想妈妈了"] {
        assert!(!holds(&bytes, what), "{what} is still on the phone");
    }
    assert!(!ok(&phone, &["children"]).contains("王小雨"));
    // The next sync works as before.
    let out = ok(&phone, &["sync"]);
    assert!(out.contains("同步完成"), "{out}");
    rt.block_on(server.shutdown());
}

#[test]
fn erase_refuses_bad_input_and_changes_nothing() {
    let s = School::new();
    let before = s.bytes();
    for args in [
        &["child", "erase", "王小雨"][..],
        &["child", "erase", "王小雨", "--reason", " "],
        &["child", "erase", "王小雨", "--reason", "王小雨的监护人申请"],
        &["child", "erase", "没有这个人", "--reason", "转学"],
    ] {
        let o = s.run(args);
        assert!(!o.status.success(), "{args:?}");
        if args.len() > 3 {
            assert_one_chinese_error(&o, args);
        }
    }
    assert_eq!(s.bytes(), before, "a refused erase writes nothing");
    let out = s.ok(&["child", "erase", "王小雨", "--reason", "监护人书面申请"]);
    assert!(out.contains("已删除王小雨的档案"), "{out}");
    assert!(!holds(&raw(&s.store), "王小雨"));
    assert!(s.ok(&["children"]).contains("李明"));
}

#[test]
fn a_corrected_id_number_leaves_the_store_after_child_rebase() {
    let s = School::new();
    let wrong = id_card("20170305", 7);
    let right = id_card("20170305", 2);
    s.ok(&[
        "child",
        "edit",
        "王小雨",
        "identity",
        &format!("id_card={wrong}"),
    ]);
    s.ok(&[
        "child",
        "edit",
        "王小雨",
        "identity",
        &format!("id_card={right}"),
    ]);
    assert!(
        holds(&raw(&s.store), &wrong),
        "the history holds the old number"
    );
    let o = s.run(&["child", "rebase", "王小雨", "--reason", " "]);
    assert_one_chinese_error(&o, &["child", "rebase"]);
    let out = s.ok(&["child", "rebase", "王小雨", "--reason", "更正身份证号"]);
    assert!(out.contains("已重建王小雨的档案"), "{out}");
    assert!(
        !holds(&raw(&s.store), &wrong),
        "the old number is still in the store"
    );
    let file = s.ok(&["child", "show", "王小雨"]);
    assert!(file.contains(&right[14..]), "{file}");
}
