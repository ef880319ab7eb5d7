//! Least collection per role (issue 11, point 6) on the real binary: the 爱心妈妈's store
//! holds neither the staff fields of her child's file nor other members' phones; `child show`
//! masks ID numbers unless `--reveal-id --why` asks, which is recorded; bad input changes
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{MOTHER, School, TEACHER, arg, array, assert_one_chinese_error, id_card};
use shouwang_tests::fixtures::{holds_text as holds, raw_store as raw};

const HEALTH: &str = "高血压需常服药";
const EMPLOYER: &str = "宁波华伟服装厂";
const OTHER_PHONE: &str = "13900007777";

fn join(s: &School, member: &str, name: &str) -> std::path::PathBuf {
    let store = s.path(&format!("{name}.db"));
    let file = s.path(&format!("{name}.swb"));
    s.ok(&["device", "add", "--member", member, "--out", arg(&file)]);
    s.ok_on(&store, &["join", "--bundle", arg(&file)]);
    store
}

#[test]
fn a_love_mother_receives_what_she_needs_and_nothing_more() {
    let s = School::new();
    s.ok(&[
        "member",
        "add",
        "吴腊芝",
        "--role",
        "任课教师",
        "--phone",
        OTHER_PHONE,
    ]);
    s.ok(&[
        "child",
        "edit",
        "王小雨",
        "guardian",
        "health=高血压需常服药",
    ]);
    s.ok(&[
        "child",
        "edit",
        "王小雨",
        "father",
        &format!("employer={EMPLOYER}"),
    ]);
    s.ok(&["child", "edit", "王小雨", "flags", "hardship=是"]);
    let mother = join(&s, MOTHER, "mother");
    let bytes = raw(&mother);
    for what in [HEALTH, EMPLOYER, OTHER_PHONE, "/staff"] {
        assert!(!holds(&bytes, what), "{what} is in her store");
    }
    let shown = s.ok_on(&mother, &["child", "show", "王小雨"]);
    assert!(shown.contains("13800001111"), "{shown}"); // the guardian's phone she calls
    assert!(!shown.contains("特困生"), "{shown}");
    // The 班主任's phone is hers to call; the subject teacher's is not on her device.
    let members = s.ok_on(&mother, &["member", "list"]);
    assert!(members.contains("13900001111"), "{members}");
    assert!(!members.contains(OTHER_PHONE), "{members}");

    let teacher = join(&s, TEACHER, "teacher");
    let shown = s.ok_on(&teacher, &["child", "show", "王小雨"]);
    for what in [HEALTH, EMPLOYER, "特困生"] {
        assert!(shown.contains(what), "{what} missing: {shown}");
    }
    // A 爱心妈妈 editing a staff field is told no, in one Chinese line, and nothing changes.
    let before = raw(&mother);
    let args = ["child", "edit", "王小雨", "guardian", "health=良好"];
    assert_one_chinese_error(&s.run_on(&mother, &args), &args);
    assert_eq!(raw(&mother), before);
}

#[test]
fn child_show_masks_the_id_number_unless_revealed_with_a_reason() {
    let s = School::new();
    let id = id_card("20170305", 2);
    let masked = format!("{}********{}", &id[..6], &id[14..]);
    let shown = s.ok(&["child", "show", "王小雨"]);
    assert!(shown.contains(&masked) && !shown.contains(&id), "{shown}");
    let json = s.json(&["child", "show", "王小雨"]);
    assert!(!json.to_string().contains(&id), "{json}");

    // Without a reason: refused by the flag parser, nothing shown.
    let o = s.run(&["child", "show", "王小雨", "--reveal-id"]);
    assert!(!o.status.success());
    assert!(!common::stdout(&o).contains(&id));

    let shown = s.ok(&[
        "child",
        "show",
        "王小雨",
        "--reveal-id",
        "--why",
        "学籍系统核对",
    ]);
    assert!(shown.contains(&id), "{shown}");
    let log = array(&s.json(&["audit"])["entries"]);
    assert!(
        log.iter()
            .any(|e| e["what"] == "id_reveal" && e["why"] == "学籍系统核对"),
        "{log:?}"
    );
    // As a person reads it: in Chinese, naming the child.
    let text = s.ok(&["audit"]);
    assert!(
        text.lines()
            .any(|l| l.contains("查看完整身份证号：王小雨") && l.contains("学籍系统核对")),
        "{text}"
    );
    common::assert_no_english(&text, &["audit"]);

    // A 爱心妈妈 has none to reveal: one Chinese line.
    let mother = join(&s, MOTHER, "mother");
    let args = ["child", "show", "王小雨", "--reveal-id", "--why", "核对"];
    assert_one_chinese_error(&s.run_on(&mother, &args), &args);
}
