//! Roster import from a real .xlsx file, and the demo.

mod common;

use common::arg;

use common::{School, id_card, run_in, stderr, stdout};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

#[test]
fn roster_import_from_xlsx() {
    let s = School::empty();
    s.ok(&[
        "init-school",
        "--plain",
        "--name",
        "郭庄小学",
        "--town",
        "丁里镇",
        "--admin",
        "张长友",
        "--admin-role",
        "校长",
    ]);
    s.ok(&["class", "add", "一年级(1)班"]);
    s.ok(&["class", "add", "一年级(2)班"]);

    let path = s.path("名单.xlsx");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    // Columns in a different order from the CSV fixture, plus one the importer ignores.
    let header = [
        "班级",
        "姓名",
        "学籍号",
        "性别",
        "出生日期",
        "身份证号",
        "监护人",
        "与监护人关系",
        "联系电话",
        "外出务工",
        "备注",
    ];
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    let date = Format::new().set_num_format("yyyy-mm-dd");
    let rows = [
        (
            "一年级(1)班",
            "郭子轩",
            "G2001",
            "男",
            (2018, 10, 3),
            "20181003",
            13,
            "郭建国",
            "爷爷",
            13955641001.0,
            "父母",
        ),
        (
            "一年级(1)班",
            "丁梦瑶",
            "G2002",
            "女",
            (2019, 2, 14),
            "20190214",
            22,
            "丁丽",
            "母亲",
            13955641002.0,
            "父亲",
        ),
        (
            "一年级(2)班",
            "晁一诺",
            "G2003",
            "女",
            (2018, 12, 25),
            "20181225",
            8,
            "王桂英",
            "外婆",
            13955641003.0,
            "父母",
        ),
    ];
    for (i, (class, name, no, sex, (y, m, d), birth, seq, guardian, rel, phone, away)) in
        rows.iter().enumerate()
    {
        let r = i as u32 + 1;
        ws.write_string(r, 0, *class).unwrap();
        ws.write_string(r, 1, *name).unwrap();
        ws.write_string(r, 2, *no).unwrap();
        ws.write_string(r, 3, *sex).unwrap();
        let dt = ExcelDateTime::from_ymd(*y, *m, *d).unwrap();
        ws.write_datetime_with_format(r, 4, &dt, &date).unwrap();
        ws.write_string(r, 5, id_card(birth, *seq)).unwrap();
        ws.write_string(r, 6, *guardian).unwrap();
        ws.write_string(r, 7, *rel).unwrap();
        ws.write_number(r, 8, *phone).unwrap();
        ws.write_string(r, 9, *away).unwrap();
        ws.write_string(r, 10, "随便写的备注").unwrap();
    }
    wb.save(&path).unwrap();

    let out = s.ok(&["roster", "import", arg(&path)]);
    assert!(
        out.contains("3 行") && out.contains("新建学生档案 3 份"),
        "{out}"
    );
    // Importing the same file again creates nobody new.
    let again = s.json(&["roster", "import", arg(&path)]);
    assert_eq!(again["rows"], 3);
    assert_eq!(again["new_children"], 0);

    let kids = s.json(&["children", "--class", "一年级(1)班"]);
    let kids = kids.as_array().unwrap();
    assert_eq!(kids.len(), 2);
    let guo = kids.iter().find(|k| k["name"] == "郭子轩").unwrap();
    assert_eq!(guo["sex"], "male");
    assert_eq!(guo["parents_away"], "both");

    let file = s.ok(&["child", "show", "G2003"]);
    assert!(file.contains("晁一诺（一年级(2)班）"), "{file}");
    assert!(file.contains("出生日期：2018-12-25"), "{file}");
    assert!(file.contains("电话：13955641003"), "{file}");
    assert!(file.contains("关系：外婆"), "{file}");
    assert!(file.contains("学籍号：G2003"), "{file}");
}

#[test]
fn demo_builds_the_school_and_shows_the_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let o = run_in(dir.path(), &["demo", "--dir", arg(&demo)]);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));

    assert!(
        out.contains("郭庄小学（丁里镇），亲情电话 0564-4552466"),
        "{out}"
    );
    assert!(out.contains("班级 12 个"), "{out}");
    assert!(out.contains("新建学生档案 341 份"), "{out}");
    // Both devices' records are in the merged file, with their authors.
    assert!(out.contains("家访记录 · 王瑞侠（班主任）"), "{out}");
    assert!(out.contains("电话记录 · 王瑞侠（班主任）"), "{out}");
    assert!(out.contains("谈心记录 · 刘桂兰（爱心妈妈）"), "{out}");
    assert!(out.contains("家访记录 · 刘桂兰（爱心妈妈）"), "{out}");
    // The open conflict, with both numbers.
    assert!(out.contains("【未解决的冲突】1 处"), "{out}");
    assert!(out.contains("监护人·电话（guardian.phone）"), "{out}");
    assert!(
        out.contains("13956241178") && out.contains("15855643290"),
        "{out}"
    );
    // A second import of the same bundle changes nothing.
    assert!(out.contains("没有新内容"), "{out}");
    // The 班主任's due list.
    assert!(out.contains("班主任王瑞侠截至 2025-11-21 的待办"), "{out}");
    assert!(
        out.contains("班主任每月谈心") && out.contains("已逾期"),
        "{out}"
    );

    for name in ["柳宏斌", "张冬月", "梁秋丽", "邱兰", "李素华"] {
        assert!(!out.contains(name), "{name} must never appear");
    }

    // The stores it left behind are real and consistent.
    let s = School::empty();
    let school = demo.join("school.db");
    let a = demo.join("device-a-wangruixia.db");
    let kids: serde_json::Value =
        serde_json::from_str(&s.ok_on(&school, &["--json", "children"])).unwrap();
    let kids = kids.as_array().unwrap();
    assert_eq!(kids.len(), 341);
    let names: std::collections::HashSet<&str> =
        kids.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 341, "names are unique");
    for name in ["柳宏斌", "张冬月", "梁秋丽", "邱兰", "李素华"] {
        assert!(!names.contains(name));
    }
    let classes: serde_json::Value =
        serde_json::from_str(&s.ok_on(&school, &["--json", "class", "list"])).unwrap();
    assert_eq!(classes.as_array().unwrap().len(), 12);
    let members: serde_json::Value =
        serde_json::from_str(&s.ok_on(&school, &["--json", "member", "list"])).unwrap();
    let roles_of = |name: &str| -> Vec<String> {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("member {name}"))["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(roles_of("张长友"), ["leadership"]);
    assert!(roles_of("王瑞侠").contains(&"head_teacher".to_owned()));
    assert!(roles_of("刘桂兰").contains(&"love_mother".to_owned()));
    assert!(roles_of("何春燕").contains(&"counsellor".to_owned()));

    let file = std::fs::read_to_string(demo.join("roster.csv")).unwrap();
    assert!(
        file.starts_with("学籍号,姓名,性别,出生日期,身份证号,班级"),
        "{file}"
    );

    // Device A holds the conflict; resolving it there clears it.
    let conflicts = |dev: &std::path::Path, child: &str| -> serde_json::Value {
        serde_json::from_str(&s.ok_on(dev, &["--json", "conflicts", child])).unwrap()
    };
    let a_kids: serde_json::Value =
        serde_json::from_str(&s.ok_on(&a, &["--json", "children", "--mine"])).unwrap();
    let with_conflict: Vec<String> = a_kids
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .filter(|id| !conflicts(&a, id).as_array().unwrap().is_empty())
        .collect();
    assert_eq!(with_conflict.len(), 1);
    let list = conflicts(&a, &with_conflict[0]);
    assert_eq!(list[0]["values"].as_array().unwrap().len(), 2);
    s.ok_on(
        &a,
        &[
            "resolve",
            &with_conflict[0],
            "guardian.phone",
            "--pick",
            "1",
        ],
    );
    assert_eq!(conflicts(&a, &with_conflict[0]), serde_json::json!([]));
}

#[test]
fn demo_refuses_a_directory_that_already_holds_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("school.db"), b"").unwrap();
    let args = ["demo", "--dir", arg(dir.path())];
    let o = run_in(dir.path(), &args);
    common::assert_one_chinese_error(&o, &args);
    assert_eq!(std::fs::read(dir.path().join("school.db")).unwrap(), b"");
}
