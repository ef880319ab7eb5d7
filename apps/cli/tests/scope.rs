//! Scope on every path (issue 9, point 4): a device joined or fed from a bundle holds only the
//! documents its member may see, and a school-wide export needs an administrator. Checked on
//! the raw bytes of the real SQLite files (and their WAL) the real binary writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{MOTHER, School, TEACHER, arg, array, assert_one_chinese_error, id_card};
use shouwang_core::Archive;
use shouwang_core::doc::DocId;

use shouwang_tests::fixtures::{holds_text as holds, raw_store as raw};

/// The 18-digit ID numbers of the fixture's three children.
fn id_numbers() -> [String; 3] {
    [
        id_card("20170305", 2),
        id_card("20161102", 11),
        id_card("20170618", 4),
    ]
}

/// Children the 爱心妈妈 刘桂兰 is not paired with.
const NOT_HERS: [&str; 2] = ["李明", "陈思涵"];

fn assert_holds_only_hers(store: &Path) {
    let bytes = raw(store);
    for id in id_numbers() {
        assert!(
            !holds(&bytes, &id),
            "an ID number is in {}",
            store.display()
        );
    }
    for name in NOT_HERS {
        assert!(!holds(&bytes, name), "{name} is in {}", store.display());
    }
    assert!(
        !holds(&bytes, "/private"),
        "a private part is in {}",
        store.display()
    );
}

#[test]
fn a_love_mother_joined_from_a_school_wide_bundle_holds_no_private_part() {
    let s = School::new();
    let all = s.path("学校.swb");
    s.ok(&["bundle", "export", "--out", arg(&all), "--all"]);

    // The check sees ID numbers where they are: a 班主任 of the class, set up from her file.
    let teacher = s.path("teacher.db");
    let to_teacher = s.path("teacher.swb");
    s.ok(&[
        "device",
        "add",
        "--member",
        TEACHER,
        "--out",
        arg(&to_teacher),
    ]);
    s.ok_on(&teacher, &["join", "--bundle", arg(&to_teacher)]);
    let bytes = raw(&teacher);
    for id in id_numbers() {
        assert!(holds(&bytes, &id), "the 班主任's store should hold {id}");
    }

    // A school-wide file cannot set up a device at all: one Chinese line, nothing left.
    let mother = s.path("mother.db");
    let args = ["join", "--bundle", arg(&all), "--member", MOTHER];
    let o = s.run_on(&mother, &args);
    assert_one_chinese_error(&o, &args);
    assert!(!mother.exists());
    // Her own file holds only what she may see.
    let to_mother = s.path("mother.swb");
    s.ok(&[
        "device",
        "add",
        "--member",
        MOTHER,
        "--out",
        arg(&to_mother),
    ]);
    s.ok_on(&mother, &["join", "--bundle", arg(&to_mother)]);
    assert_holds_only_hers(&mother);
    let mine = array(&serde_json::from_str(&s.ok_on(&mother, &["--json", "children"])).unwrap());
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["name"], "王小雨");

    // Her own export passes nothing private on.
    let hers = s.path("hers.swb");
    s.ok_on(&mother, &["bundle", "export", "--out", arg(&hers)]);
    let bundle = Archive::open(&mother)
        .unwrap()
        .open_bundle(&std::fs::read(&hers).unwrap())
        .unwrap();
    assert!(
        bundle
            .entries
            .iter()
            .all(|e| !matches!(e.doc, DocId::Private(_))),
        "{:?}",
        bundle
            .entries
            .iter()
            .map(|e| e.doc.key())
            .collect::<Vec<_>>()
    );
    // The school, 王小雨's care file, her own access log (the export itself is logged) and the
    // contact document of 王小雨's 班主任 (the one phone number she holds).
    let docs: Vec<_> = bundle.entries.iter().map(|e| e.doc.key()).collect();
    assert_eq!(docs.len(), 4, "{docs:?}");
    assert_eq!(
        docs.iter().filter(|d| d.starts_with("contact/")).count(),
        1,
        "{docs:?}"
    );
    assert_eq!(
        docs.iter().filter(|d| d.starts_with("audit/")).count(),
        1,
        "{docs:?}"
    );
}

#[test]
fn importing_a_head_teachers_full_bundle_keeps_only_what_the_love_mother_may_see() {
    let s = School::new();
    let teacher = s.path("teacher.db");
    let mother = s.path("mother.db");
    for (store, member) in [(&teacher, TEACHER), (&mother, MOTHER)] {
        let file = s.path(&format!("{member}.swb"));
        s.ok(&["device", "add", "--member", member, "--out", arg(&file)]);
        s.ok_on(store, &["join", "--bundle", arg(&file), "--member", member]);
    }
    // The teacher learns of the 爱心妈妈's device (registered after hers) from the office.
    let news = s.path("news.swb");
    s.ok(&["bundle", "export", "--for", TEACHER, "--out", arg(&news)]);
    s.ok_on(&teacher, &["bundle", "import", arg(&news)]);
    assert_holds_only_hers(&mother);
    s.ok_on(
        &teacher,
        &[
            "record",
            "家访",
            "--child",
            "李明",
            "--date",
            "2026-11-20",
            "--field",
            "notes=爷爷说孩子周末在家写作业",
        ],
    );
    // Everything the teacher has, her whole class with its private parts, is sealed to her
    // devices and the office only: the 爱心妈妈's device cannot even open it.
    let full = s.path("teacher-full.swb");
    s.ok_on(&teacher, &["bundle", "export", "--out", arg(&full)]);
    // Encrypted: no name or ID number in the bytes of the file on the USB stick.
    let on_disk = std::fs::read(&full).unwrap();
    for id in id_numbers() {
        assert!(
            !holds(&on_disk, &id),
            "an ID number is readable in the file"
        );
    }
    assert!(!holds(&on_disk, "王小雨") && !holds(&on_disk, "G001"));
    assert!(
        Archive::open(&teacher)
            .unwrap()
            .open_bundle(&std::fs::read(&full).unwrap())
            .unwrap()
            .entries
            .iter()
            .any(|e| matches!(e.doc, DocId::Private(_)))
    );
    let args = ["bundle", "import", arg(&full)];
    let line = assert_one_chinese_error(&s.run_on(&mother, &args), &args);
    assert!(line.contains("不是发给本机的"), "{line}");
    assert_holds_only_hers(&mother);
    // A file for her holds only what she may see.
    let for_her = s.path("teacher-for-her.swb");
    s.ok_on(
        &teacher,
        &["bundle", "export", "--for", MOTHER, "--out", arg(&for_her)],
    );
    let out = s.ok_on(&mother, &["bundle", "import", arg(&for_her)]);
    assert!(!out.contains("已略过"), "{out}");
    assert_holds_only_hers(&mother);
    let mine = array(&serde_json::from_str(&s.ok_on(&mother, &["--json", "children"])).unwrap());
    assert_eq!(mine.len(), 1, "{mine:?}");
}

#[test]
fn a_school_wide_export_needs_an_administrator() {
    let s = School::new();
    let file = s.path(&format!("{TEACHER}.swb"));
    s.ok(&["device", "add", "--member", TEACHER, "--out", arg(&file)]);
    let teacher = s.path("teacher.db");
    s.ok_on(
        &teacher,
        &["join", "--bundle", arg(&file), "--member", TEACHER],
    );

    let all = s.path("all.swb");
    let args = [
        "--store",
        arg(&teacher),
        "bundle",
        "export",
        "--out",
        arg(&all),
        "--all",
    ];
    let o = common::run_in(s.dir.path(), &args);
    let line = assert_one_chinese_error(&o, &args);
    assert!(
        line.contains("领导组") && line.contains("档案管理员"),
        "{line}"
    );
    assert!(!all.exists());

    // The office may; without --all it exports for the member using the device.
    s.ok(&["bundle", "export", "--out", arg(&all), "--all"]);
    let mine = s.path("mine.swb");
    let out = s.ok_on(&teacher, &["bundle", "export", "--out", arg(&mine)]);
    assert!(out.contains(TEACHER), "{out}");
}
