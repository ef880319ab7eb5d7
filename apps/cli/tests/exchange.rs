//! Devices joining from bundles, exchanging changes, conflicts and their resolution.

mod common;

use common::arg;

use common::{MOTHER, School, TEACHER};

/// The fixture plus the 班主任's device (A) and the 爱心妈妈's device (B).
fn two_devices() -> (School, std::path::PathBuf, std::path::PathBuf) {
    let s = School::new();
    let a = s.path("a.db");
    let b = s.path("b.db");
    for (member, dev, file) in [(TEACHER, &a, "to-a.swb"), (MOTHER, &b, "to-b.swb")] {
        let bundle = s.path(file);
        s.ok(&["device", "add", "--member", member, "--out", arg(&bundle)]);
        let out = s.ok_on(dev, &["join", "--bundle", arg(&bundle), "--member", member]);
        assert!(out.contains("已加入郭庄小学"), "{out}");
    }
    // A joined before B was registered: the office's next file for A tells it of B's device.
    let news = s.path("news-for-a.swb");
    s.ok(&["bundle", "export", "--for", TEACHER, "--out", arg(&news)]);
    s.ok_on(&a, &["bundle", "import", arg(&news)]);
    (s, a, b)
}

#[test]
fn each_device_sees_only_its_children() {
    let (s, a, b) = two_devices();
    let count = |dev: &std::path::Path| {
        let out = s.ok_on(dev, &["--json", "children"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array().unwrap().len()
    };
    assert_eq!(count(&a), 3);
    assert_eq!(count(&b), 1, "the 爱心妈妈 gets only her paired child");
    let info: serde_json::Value = serde_json::from_str(&s.ok_on(&b, &["--json", "info"])).unwrap();
    assert_eq!(info["member"]["name"], MOTHER);
    assert_eq!(info["school"], "郭庄小学");
}

#[test]
fn importing_the_same_bundle_twice_changes_nothing_the_second_time() {
    let (s, a, b) = two_devices();
    s.ok_on(
        &b,
        &[
            "record",
            "谈心",
            "--child",
            "王小雨",
            "--date",
            "2025-11-16",
            "--field",
            "notes=一起读了绘本",
            "emotion=想妈妈",
        ],
    );
    let file = s.path("b-to-a.swb");
    s.ok_on(
        &b,
        &["bundle", "export", "--out", arg(&file), "--for", TEACHER],
    );

    let first = s.ok_on(&a, &["bundle", "import", arg(&file)]);
    assert!(first.contains("导入完成"), "{first}");
    assert!(first.contains("新增记录 1 条"), "{first}");
    assert!(
        first.contains("谈心记录 · 王小雨 · 刘桂兰（爱心妈妈）"),
        "{first}"
    );

    let before = std::fs::read(&a).unwrap();
    let second = s.ok_on(&a, &["bundle", "import", arg(&file)]);
    assert!(second.starts_with("没有新内容"), "{second}");
    assert!(!second.contains("新增记录"), "{second}");
    assert!(
        std::fs::read(&a).unwrap() == before,
        "a repeated import wrote to the store"
    );

    let report: serde_json::Value =
        serde_json::from_str(&s.ok_on(&a, &["--json", "bundle", "import", arg(&file)])).unwrap();
    assert_eq!(report["new_changes"], 0);
    assert_eq!(report["new_records"].as_array().unwrap().len(), 0);
}

#[test]
fn concurrent_edits_of_one_field_keep_both_values_until_resolved() {
    let (s, a, b) = two_devices();
    s.ok_on(
        &a,
        &["child", "edit", "王小雨", "guardian", "phone=13956241178"],
    );
    s.ok_on(
        &b,
        &["child", "edit", "王小雨", "监护人", "电话=15855643290"],
    );
    let a_to_b = s.path("a-to-b.swb");
    let b_to_a = s.path("b-to-a.swb");
    s.ok_on(
        &a,
        &["bundle", "export", "--out", arg(&a_to_b), "--for", MOTHER],
    );
    s.ok_on(
        &b,
        &["bundle", "export", "--out", arg(&b_to_a), "--for", TEACHER],
    );
    let into_b = s.ok_on(&b, &["bundle", "import", arg(&a_to_b)]);
    let into_a = s.ok_on(&a, &["bundle", "import", arg(&b_to_a)]);
    for report in [&into_a, &into_b] {
        assert!(report.contains("出现冲突 1 处"), "{report}");
        assert!(
            report.contains("13956241178") && report.contains("15855643290"),
            "{report}"
        );
    }

    for dev in [&a, &b] {
        let list: serde_json::Value =
            serde_json::from_str(&s.ok_on(dev, &["--json", "conflicts", "王小雨"])).unwrap();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["path"], "guardian.phone");
        let mut values: Vec<&str> = list[0]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        values.sort();
        assert_eq!(values, ["13956241178", "15855643290"]);
    }
    let text = s.ok_on(&a, &["child", "show", "王小雨"]);
    assert!(text.contains("⚠ 有冲突"), "{text}");
    assert!(text.contains("【未解决的冲突】1 处"), "{text}");

    // Resolve on A with a new value; B learns it from A's next bundle.
    let out = s.ok_on(
        &a,
        &[
            "resolve",
            "王小雨",
            "guardian.phone",
            "--value",
            "158 5564 3290",
        ],
    );
    assert!(out.contains("已解决冲突"), "{out}");
    assert!(
        s.ok_on(&a, &["conflicts", "王小雨"])
            .contains("没有未解决的冲突")
    );
    let again = s.path("a-to-b-2.swb");
    s.ok_on(
        &a,
        &[
            "bundle",
            "export",
            "--out",
            arg(&again),
            "--for",
            MOTHER,
            "--since",
            arg(&b_to_a),
        ],
    );
    s.ok_on(&b, &["bundle", "import", arg(&again)]);
    let file: serde_json::Value =
        serde_json::from_str(&s.ok_on(&b, &["--json", "child", "show", "王小雨"])).unwrap();
    assert_eq!(file["conflicts"].as_array().unwrap().len(), 0);
    let guardian = file["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|sec| sec["key"] == "guardian")
        .unwrap();
    let phone = guardian["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "phone")
        .unwrap();
    assert_eq!(phone["value"], "15855643290");
}

#[test]
fn resolve_by_pick_and_refusals() {
    let (s, a, b) = two_devices();
    s.ok_on(
        &a,
        &["child", "edit", "王小雨", "guardian", "relation=姥姥"],
    );
    s.ok_on(
        &b,
        &["child", "edit", "王小雨", "guardian", "relation=外婆"],
    );
    let f = s.path("b.swb");
    s.ok_on(
        &b,
        &["bundle", "export", "--for", TEACHER, "--out", arg(&f)],
    );
    s.ok_on(&a, &["bundle", "import", arg(&f)]);
    let before = std::fs::read(&a).unwrap();
    let o = s.run_on(
        &a,
        &["resolve", "王小雨", "guardian.relation", "--pick", "3"],
    );
    let line = common::assert_one_chinese_error(&o, &["resolve --pick 3"]);
    assert!(line.contains("请填1到2之间的数字"), "{line}");
    assert!(std::fs::read(&a).unwrap() == before);
    let list: serde_json::Value =
        serde_json::from_str(&s.ok_on(&a, &["--json", "conflicts", "王小雨"])).unwrap();
    let second = list[0]["values"][1].as_str().unwrap().to_owned();
    let out = s.ok_on(
        &a,
        &["resolve", "王小雨", "guardian.relation", "--pick", "2"],
    );
    assert!(out.contains(&second), "{out}");
    let file = s.ok_on(&a, &["child", "show", "王小雨"]);
    assert!(file.contains(&format!("关系：{second}")), "{file}");
    assert!(file.contains("【冲突】无"), "{file}");
}

/// A file carrying changes the school's rules refuse (a modified app's: the 爱心妈妈's device
/// writing the school's motto) is imported for the rest, and the import says, in Chinese,
/// how many changes it did not take, why, and where the refused ones wait for review.
#[test]
fn an_import_says_what_it_did_not_take() {
    let (s, _a, b) = two_devices();
    {
        let mut hers = shouwang_core::archive::Archive::open(&b).unwrap();
        shouwang_tests::attack::flood_school(&mut hers, 64);
    }
    let f = s.path("forged.swb");
    s.ok_on(&b, &["bundle", "export", "--out", arg(&f)]);
    let out = s.ok(&["bundle", "import", arg(&f)]);
    assert!(
        out.contains("被拒绝") && out.contains("shouwang quarantine"),
        "{out}"
    );
    assert!(!out.contains("没有新内容"), "{out}");
}

/// A conflict in the private part (the 班主任 and the office both set the 心理问题 flag while
/// apart) is shown with its values by `conflicts` and `resolve`: opening the private part that
/// way is recorded in the access log, as `child show` records it.
#[test]
fn a_private_conflict_shown_is_recorded_as_opening_the_private_part() {
    let (s, a, _b) = two_devices();
    s.ok_on(
        &a,
        &[
            "child",
            "edit",
            "王小雨",
            "private_flags",
            "psychological=是",
        ],
    );
    s.ok(&[
        "child",
        "edit",
        "王小雨",
        "private_flags",
        "psychological=否",
    ]);
    let to_office = s.path("a-to-office.swb");
    s.ok_on(&a, &["bundle", "export", "--out", arg(&to_office)]);
    s.ok(&["bundle", "import", arg(&to_office)]);
    let private_views = || -> usize {
        let log: serde_json::Value = serde_json::from_str(&s.ok(&["--json", "audit"])).unwrap();
        common::array(&log["entries"])
            .iter()
            .filter(|e| e["what"] == "private_view")
            .count()
    };
    let before = private_views();
    let list: serde_json::Value =
        serde_json::from_str(&s.ok(&["--json", "conflicts", "王小雨"])).unwrap();
    assert_eq!(list[0]["path"], "private_flags.psychological", "{list}");
    assert_eq!(
        private_views(),
        before + 1,
        "conflicts showed the part unrecorded"
    );
    s.ok(&["conflicts", "王小雨"]);
    assert_eq!(private_views(), before + 2);
    let out = s.ok(&[
        "resolve",
        "王小雨",
        "private_flags.psychological",
        "--pick",
        "1",
    ]);
    assert!(out.contains("已解决冲突"), "{out}");
    assert_eq!(
        private_views(),
        before + 3,
        "resolve showed the part unrecorded"
    );
}
