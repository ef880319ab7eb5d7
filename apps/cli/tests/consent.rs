//! Children's personal information on the real binary (issue 11, points 1 and 5): guardian
//! consent recorded, required and withdrawn; the school's 个人信息保护负责人 where a user looks;
//! a lost phone reported at the office of a real hub, listing the children it held.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::hub::{self, shouwang};
use common::*;

/// 1. The office requires consent; a roster's 身份证号 for a new child waits for it (not in the
///    store, and the import says so); the 班主任's 待办 lists 缺监护人同意; consent recorded from
///    the paper form, then the same roster stores the number; bad input is one Chinese line;
///    the file view shows the consent and the responsible person.
#[test]
fn story_1_consent_on_the_command_line() {
    let s = School::new();
    s.ok(&["consent", "require"]);
    let card = id_card("20170101", 21);
    let roster = s.path("new.csv");
    std::fs::write(
        &roster,
        format!("学籍号,姓名,身份证号,班级\nG004,周子轩,{card},{CLASS}\n"),
    )
    .unwrap();
    let out = s.ok(&["roster", "import", roster.to_str().unwrap()]);
    assert!(out.contains("尚无监护人对隐私部分的同意"), "{out}");
    assert!(out.contains("周子轩"), "{out}");
    assert!(!holds(&s.bytes(), &card), "the number is not stored");

    let due = s.ok(&["due", "--member", TEACHER, "--date", "2026-11-20"]);
    assert!(due.contains("缺监护人同意"), "{due}");
    let mut missing = missing_consent(&s);
    missing.sort();
    assert_eq!(missing, ["周子轩", "李明", "王小雨", "陈思涵"]);

    let bad: [&[&str]; 3] = [
        &[
            "consent",
            "record",
            "周子轩",
            "--guardian",
            "周建华",
            "--relation",
            "父亲",
            "--date",
            "2026-02-30",
            "--covers",
            "basic,private",
            "--form",
            "TY-001",
        ],
        &[
            "consent",
            "record",
            "周子轩",
            "--guardian",
            "周建华",
            "--relation",
            "父亲",
            "--date",
            "2026-09-01",
            "--covers",
            "everything",
            "--form",
            "TY-001",
        ],
        &[
            "consent",
            "record",
            "周子轩",
            "--guardian",
            "周建华",
            "--relation",
            "父亲",
            "--date",
            "2026-09-01",
            "--covers",
            "private",
            "--form",
            " ",
        ],
    ];
    let before = s.bytes();
    for args in bad {
        assert_one_chinese_error(&s.run(args), args);
    }
    assert_eq!(s.bytes(), before, "bad input changed nothing");

    let out = s.ok(&[
        "consent",
        "record",
        "周子轩",
        "--guardian",
        "周建华",
        "--relation",
        "父亲",
        "--date",
        "2026-09-01",
        "--covers",
        "basic,private",
        "--form",
        "TY-001",
    ]);
    assert!(
        out.contains("已登记监护人同意") && out.contains("TY-001"),
        "{out}"
    );
    let out = s.ok(&["roster", "import", roster.to_str().unwrap()]);
    assert!(!out.contains("尚无监护人"), "{out}");
    let mut missing = missing_consent(&s);
    missing.sort();
    assert_eq!(missing, ["李明", "王小雨", "陈思涵"]);

    s.ok(&[
        "school",
        "privacy-officer",
        "--name",
        "王玉波",
        "--phone",
        "13805640099",
    ]);
    let file = s.ok(&["child", "show", "周子轩"]);
    assert!(
        file.contains("【监护人同意】周建华（父亲）于 2026-09-01"),
        "{file}"
    );
    assert!(file.contains("个人信息保护负责人：王玉波"), "{file}");
    assert!(file.contains("身份证号"), "{file}");
    let info = s.ok(&["info"]);
    assert!(
        info.contains("个人信息保护负责人：王玉波（电话 13805640099）"),
        "{info}"
    );
}

/// 2. A withdrawal on the command line: the hint points to `child erase`, and the next 心理辅导
///    记录 is refused with one Chinese line that says why.
#[test]
fn story_2_a_withdrawal_then_an_attempted_record() {
    let s = School::new();
    s.ok(&["consent", "require"]);
    s.ok(&[
        "consent",
        "record",
        "李明",
        "--guardian",
        "李建国",
        "--relation",
        "爷爷",
        "--date",
        "2026-09-01",
        "--covers",
        "basic,private",
        "--form",
        "TY-002",
    ]);
    s.ok(&[
        "record",
        "心理辅导记录",
        "--child",
        "李明",
        "--date",
        "2026-11-02",
        "-f",
        "notes=想爸爸",
    ]);
    let out = s.ok(&[
        "consent",
        "withdraw",
        "李明",
        "--date",
        "2026-11-10",
        "--by",
        "李建国",
        "--covers",
        "private",
    ]);
    assert!(out.contains("child erase"), "{out}");
    let args = [
        "record",
        "心理辅导记录",
        "--child",
        "李明",
        "--date",
        "2026-11-12",
        "-f",
        "notes=再谈",
    ];
    let line = assert_one_chinese_error(&s.run(&args), &args);
    assert!(
        line.contains("撤回") && line.contains("child erase"),
        "{line}"
    );
    let file = s.ok(&["child", "show", "李明"]);
    assert!(
        file.contains("李建国 于 2026-11-10 撤回：隐私部分"),
        "{file}"
    );
    let shown = s.json(&["consent", "show", "李明"]);
    assert_eq!(
        shown["consent"]["withdrawn"]["covers"][0], "private",
        "{shown}"
    );
    assert_eq!(shown["required"], true);
    // The responsible person's phone is checked like any phone.
    let args = [
        "school",
        "privacy-officer",
        "--name",
        "王玉波",
        "--phone",
        "12",
    ];
    assert_one_chinese_error(&s.run(&args), &args);
}

fn missing_consent(s: &School) -> Vec<String> {
    array(&s.json(&["due", "--member", TEACHER, "--date", "2026-11-20"]))
        .into_iter()
        .filter(|i| i["label"] == "缺监护人同意")
        .map(|i| i["child_name"].as_str().unwrap().to_owned())
        .collect()
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// 3. A lost phone, reported at the office of a real hub: the 爱心妈妈's phone is revoked and
///    the report lists the one child she cares for, when the phone was enrolled and when it
///    last synced, and the responsible person; the phone wipes itself at its next sync.
#[test]
fn story_3_a_lost_phone_report_at_the_office() {
    let mut school = hub::TwoPhones::join();
    let (teacher, mother) = (school.teacher.clone(), school.mother.clone());
    let (ok, _, err) = shouwang(&mother, &["sync"]);
    assert!(ok, "{err}");

    let office = school.office();
    office.ok(&[
        "school",
        "privacy-officer",
        "--name",
        "王玉波",
        "--phone",
        "13805640099",
    ]);
    let hers = office.device_of("刘桂兰", &[]);
    let (ok, _, err) = shouwang(&teacher, &["device", "lost", &hers[..8]]);
    assert!(!ok && err.contains("不能管理学校设置"), "{err}");

    let out = office.ok(&["--json", "device", "lost", &hers[..8]]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = r["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["王小雨"], "{out}");
    assert_eq!(r["children"][0]["synced"], true, "the hub sent it: {out}");
    assert_eq!(r["children"][0]["private"], false, "{out}");
    assert!(r["registered_at"].as_i64().is_some(), "{out}");
    assert!(r["last_sync"].as_i64().is_some(), "the hub knows: {out}");
    assert_eq!(r["newly_revoked"], true);

    let out = office.ok(&["device", "lost", &hers[..8]]);
    assert!(out.contains("此前已停用 刘桂兰"), "{out}");
    assert!(out.contains("王小雨"), "{out}");
    assert!(!out.contains("赵子涵"), "{out}");
    assert!(out.contains("服务器记录显示已同步到这台设备"), "{out}");
    assert!(
        out.contains("登记时间") && out.contains("最后一次与本机同步"),
        "{out}"
    );
    assert!(out.contains("个人信息保护负责人：王玉波"), "{out}");

    let (ok, _, err) = shouwang(&mother, &["sync"]);
    assert!(!ok && err.contains("已被学校停用"), "{err}");
    let (ok, out, err) = shouwang(&teacher, &["sync"]);
    assert!(ok, "{err}");
    let (_, out2, _) = shouwang(&teacher, &["status"]);
    assert!(out2.contains("个人信息保护负责人：王玉波"), "{out}{out2}");
    school.stop_hub();
}
