//! `shouwang child leave` / `child return` / `children --left` / `child retention` (issue 11
//! points 3 and 4, issue 9 point 4) and the access log's report entries (issue 11 point 2),
//! with the real binary on real stores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{School, TEACHER, array, assert_one_chinese_error};

fn reports(s: &School, store: &std::path::Path) -> Vec<String> {
    let log = s.ok_on(store, &["--json", "audit"]);
    let log: serde_json::Value = serde_json::from_str(&log).unwrap();
    array(&log["entries"])
        .iter()
        .filter(|e| e["what"] == "report")
        .map(|e| e["target"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_child_leaves_is_listed_only_on_request_and_comes_back() {
    let s = School::new();
    let out = s.ok(&[
        "child",
        "leave",
        "王小雨",
        "--date",
        "2026-09-01",
        "--reason",
        "转学",
        "--to",
        "丁里镇中心小学",
    ]);
    assert!(out.contains("王小雨") && out.contains("离校"), "{out}");
    assert!(
        out.contains("2029-09-01"),
        "says how long it is kept: {out}"
    );
    let list = s.ok(&["children"]);
    assert!(!list.contains("王小雨") && list.contains("李明"), "{list}");
    let left = s.ok(&["children", "--left"]);
    for what in [
        "王小雨",
        "转学",
        "丁里镇中心小学",
        "2026-09-01",
        "2029-09-01",
    ] {
        assert!(left.contains(what), "{what}: {left}");
    }
    assert!(!left.contains("李明"), "{left}");
    // Her file stays readable at the office.
    assert!(s.ok(&["child", "show", "王小雨"]).contains("王小雨"));

    // Retention: nothing to review before the date, her file after it; `due` says so.
    let none = s.ok(&["child", "retention", "--date", "2029-08-31"]);
    assert!(!none.contains("王小雨"), "{none}");
    let due = s.ok(&["due", "--date", "2029-08-31"]);
    assert!(!due.contains("保存期限"), "{due}");
    s.ok(&["rules", "set", "retention_years", "1"]);
    let review = s.ok(&["child", "retention", "--date", "2027-09-01"]);
    assert!(
        review.contains("王小雨") && review.contains("child erase"),
        "{review}"
    );
    let due = s.ok(&["due", "--date", "2027-09-01"]);
    assert!(due.contains("1 份离校学生档案已超过保存期限"), "{due}");

    // She comes back before that.
    let out = s.ok(&["child", "return", "王小雨"]);
    assert!(out.contains("王小雨"), "{out}");
    assert!(s.ok(&["children"]).contains("王小雨"));
    assert!(!s.ok(&["children", "--left"]).contains("王小雨"));
    assert!(
        !s.ok(&["child", "retention", "--date", "2040-01-01"])
            .contains("王小雨")
    );

    // Left again, past retention: the admin erases her with the retention reason.
    s.ok(&[
        "child",
        "leave",
        "王小雨",
        "--date",
        "2020-07-01",
        "--reason",
        "毕业",
    ]);
    let review = s.ok(&["child", "retention"]);
    assert!(review.contains("王小雨"), "{review}");
    s.ok(&[
        "child",
        "erase",
        "王小雨",
        "--reason",
        "离校满一年，保存期满",
    ]);
    assert!(!s.ok(&["child", "retention"]).contains("王小雨"));
}

#[test]
fn leave_refuses_bad_input_and_carers_with_one_line_and_changes_nothing() {
    let s = School::new();
    // A 班主任's device, set up from the office's file.
    let file = s.path("teacher.swb");
    s.ok(&[
        "device",
        "add",
        "--member",
        TEACHER,
        "--out",
        file.to_str().unwrap(),
    ]);
    let phone = s.path("teacher.db");
    s.ok_on(&phone, &["join", "--bundle", file.to_str().unwrap()]);
    let o = s.run_on(
        &phone,
        &[
            "child",
            "leave",
            "王小雨",
            "--date",
            "2026-09-01",
            "--reason",
            "转学",
        ],
    );
    let line = assert_one_chinese_error(&o, &["child", "leave"]);
    assert!(line.contains("校长或档案管理员"), "{line}");

    let before = s.bytes();
    for args in [
        &[
            "child",
            "leave",
            "王小雨",
            "--date",
            "2026-09-01",
            "--reason",
            "搬家",
        ][..],
        &[
            "child",
            "leave",
            "王小雨",
            "--date",
            "2026-02-30",
            "--reason",
            "转学",
        ],
        &[
            "child",
            "leave",
            "王小雨",
            "--date",
            "2999-01-01",
            "--reason",
            "转学",
        ],
        &[
            "child",
            "leave",
            "没有这个人",
            "--date",
            "2026-09-01",
            "--reason",
            "转学",
        ],
        &["child", "return", "王小雨"],
        &["child", "retention", "--date", "明天"],
        &["rules", "set", "retention_years", "0"],
    ] {
        let o = s.run(args);
        assert_one_chinese_error(&o, args);
    }
    assert_eq!(s.bytes(), before, "a refused command writes nothing");
}

#[test]
fn bulk_reports_of_childrens_data_are_in_the_access_log_single_screens_are_not() {
    let s = School::new();
    assert!(reports(&s, &s.store).is_empty());
    // The office's whole-school list on screen, and any JSON export of a list, are logged.
    s.ok(&["children"]);
    s.ok(&["--json", "children", "--class", common::CLASS]);
    s.ok(&["--json", "due", "--member", TEACHER]);
    s.ok(&[
        "child",
        "leave",
        "李明",
        "--date",
        "2026-09-01",
        "--reason",
        "辍学",
    ]);
    s.ok(&["children", "--left"]);
    s.ok(&["child", "retention", "--date", "2030-01-01"]);
    let logged = reports(&s, &s.store);
    assert_eq!(logged.len(), 5, "{logged:?}");
    assert!(
        logged[0].starts_with("children") && logged[0].contains("3 名学生"),
        "{logged:?}"
    );
    assert!(logged[1].contains("--json"), "{logged:?}");
    assert!(logged[2].contains("due --member"), "{logged:?}");
    assert!(logged[3].contains("--left"), "{logged:?}");
    assert!(logged[4].starts_with("child retention"), "{logged:?}");
    let shown = s.ok(&["audit"]);
    assert!(shown.contains("导出或打印名单"), "{shown}");
    // A class list narrowed on screen, one child's file, the rules: not reports.
    s.ok(&["children", "--class", common::CLASS]);
    s.ok(&["child", "show", "陈思涵"]);
    s.ok(&["rules", "show"]);
    s.ok(&["compliance", "--from", "2026-11-01", "--to", "2026-11-30"]);
    assert_eq!(reports(&s, &s.store).len(), 5);

    // A 班主任's own list on her phone is ordinary use; her JSON export is logged.
    let file = s.path("teacher.swb");
    s.ok(&[
        "device",
        "add",
        "--member",
        TEACHER,
        "--out",
        file.to_str().unwrap(),
    ]);
    let phone = s.path("teacher.db");
    s.ok_on(&phone, &["join", "--bundle", file.to_str().unwrap()]);
    s.ok_on(&phone, &["children"]);
    s.ok_on(&phone, &["due"]);
    assert!(reports(&s, &phone).is_empty());
    s.ok_on(&phone, &["--json", "children"]);
    assert_eq!(reports(&s, &phone).len(), 1);
}
