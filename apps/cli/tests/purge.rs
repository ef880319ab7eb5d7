//! A member's scope shrinks on the hub (issue 9, point 4): the carer's next `shouwang sync`
//! purges the child's file from the phone, so that no byte of the child's name or ID number is
//! left in the store file or its WAL, and the phone's syncs keep working. Real hub and relay
//! in-process on 127.0.0.1, the real `shouwang` binary as the phone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::hub::{self, ok, ok_office, shouwang};
use common::id_card;
use shouwang_core::roles::Role;

use shouwang_tests::fixtures::{holds_text as holds, raw_store as raw};

#[test]
fn a_pairing_ended_on_the_hub_leaves_nothing_of_the_child_on_the_carers_phone() {
    let dir = tempfile::tempdir().unwrap();
    let data = hub::init_school(dir.path());
    let office = data.archive();
    // 李娟, 班主任 of another class, is paired with 王小雨: she holds the care file, not the
    // private part (the ID number), which only the 班主任 of the child's own class holds.
    let id = id_card("20170305", 2);
    ok_office(&office, &["class", "add", "四年级(2)班"]);
    ok_office(
        &office,
        &[
            "member",
            "add",
            "李娟",
            "--role",
            "班主任",
            "--class",
            "四年级(2)班",
        ],
    );
    ok_office(&office, &["pair", "--carer", "李娟", "--child", "王小雨"]);
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
    ok_office(
        &office,
        &["child", "edit", "王小雨", "guardian", "phone=13956241178"],
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = hub::start(&rt, dir.path());
    let phone = dir.path().join("lijuan.db");
    hub::join(&server, &phone, "李娟", Role::HeadTeacher);
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
    // The check sees the child where she is.
    let bytes = raw(&phone);
    for what in ["王小雨", "13956241178"] {
        assert!(holds(&bytes, what), "{what} should be on the phone");
    }
    assert!(!holds(&bytes, &id), "the ID number is not hers to hold");

    // The office ends the pairing on the hub.
    ok_office(
        &office,
        &["pair", "--end", "--carer", "李娟", "--child", "王小雨"],
    );

    // Her next sync succeeds and purges the child.
    let out = ok(&phone, &["sync"]);
    assert!(out.contains("同步完成"), "{out}");
    let bytes = raw(&phone);
    for what in ["王小雨", id.as_str(), "13956241178", "说想妈妈了"] {
        assert!(!holds(&bytes, what), "{what} is still on the phone");
    }
    let (_, list, _) = shouwang(&phone, &["--json", "children"]);
    assert_eq!(list.trim(), "[]", "{list}");

    // And the sync after that works: no 无权, nothing pending.
    let out = ok(&phone, &["sync"]);
    assert!(out.contains("同步完成"), "{out}");
    let status = ok(&phone, &["status"]);
    assert!(
        !status.contains("无权") && !status.contains("出错"),
        "{status}"
    );
    assert!(status.contains("学校服务器已有本机的全部内容"), "{status}");
    rt.block_on(server.shutdown());
}
