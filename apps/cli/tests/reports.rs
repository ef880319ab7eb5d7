//! `shouwang report`: each report written as .xlsx, read back with calamine and checked cell
//! by cell against the archive; ID numbers masked; a report recorded in the access log; bad
//! names, months and existing files refused in one Chinese line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calamine::{Data, Reader, Xlsx};
use common::*;
use shouwang_core::Archive;

/// Every sheet of a workbook as rows of text (numbers as integers).
fn read(path: &std::path::Path) -> Vec<(String, Vec<Vec<String>>)> {
    let mut book: Xlsx<_> = calamine::open_workbook(path).unwrap();
    let names = book.sheet_names().to_vec();
    names
        .into_iter()
        .map(|name| {
            let range = book.worksheet_range(&name).unwrap();
            let rows = range
                .rows()
                .map(|r| {
                    r.iter()
                        .map(|c| match c {
                            Data::Float(f) => format!("{f}"),
                            Data::Empty => String::new(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .collect();
            (name, rows)
        })
        .collect()
}

fn field(file: &shouwang_core::archive::ChildFile, section: &str, key: &str) -> String {
    file.sections
        .iter()
        .find(|s| s.key == section)
        .and_then(|s| s.fields.iter().find(|f| f.key == key))
        .map(|f| f.value.clone())
        .unwrap_or_default()
}

#[test]
fn every_report_reads_back_cell_by_cell_as_the_archive_says() {
    let s = School::new();
    s.ok(&["child", "edit", "李明", "flags", "hardship=是", "talent=是"]);
    s.ok(&["child", "edit", "王小雨", "profile", "address=郭庄村三组"]);
    for (kind, child, date, fields) in [
        (
            "家访",
            "王小雨",
            "2026-11-05",
            vec!["notes=奶奶在家", "met_with=奶奶"],
        ),
        (
            "家访",
            "李明",
            "2026-11-12",
            vec!["notes=爷爷在家", "met_with=爷爷"],
        ),
        (
            "家访",
            "李明",
            "2026-10-30",
            vec!["notes=上月的", "met_with=爷爷"],
        ),
        ("谈心", "王小雨", "2026-11-20", vec!["notes=聊了学习"]),
        (
            "activity",
            "王小雨",
            "2026-11-01",
            vec!["name=六一文艺汇演", "notes=表演合唱"],
        ),
        (
            "highlight",
            "王小雨",
            "2026-11-02",
            vec!["title=拾金不昧", "notes=交给老师"],
        ),
    ] {
        let mut args = vec!["record", kind, "--child", child, "--date", date, "--field"];
        args.extend(fields);
        s.ok(&args);
    }
    s.ok(&[
        "record",
        "班级关爱活动记录",
        "--class",
        CLASS,
        "--date",
        "2026-11-21",
        "-f",
        "title=中秋话想念",
        "notes=全班写信",
    ]);
    let mut a = Archive::open(&s.store).unwrap();
    let children = a.children(None, false).unwrap();
    let before = a.audit_log().unwrap().entries.len();
    drop(a);

    // 基本情况登记表: one row per child, columns as the registry form, ID numbers masked.
    let out = s.path("登记表.xlsx");
    let text = s.ok(&["report", "registry", "--out", out.to_str().unwrap()]);
    assert!(text.contains("已导出留守儿童基本情况登记表"), "{text}");
    let sheets = read(&out);
    let rows = &sheets[0].1;
    assert_eq!(rows[0][0], "郭庄小学 留守儿童基本情况登记表");
    assert_eq!(
        rows[1][..9],
        [
            "序号",
            "学籍号",
            "姓名",
            "性别",
            "出生日期",
            "班级",
            "身份证号",
            "家庭住址",
            "外出务工"
        ]
    );
    assert_eq!(rows.len(), 2 + children.len());
    let mut a = Archive::open(&s.store).unwrap();
    for (i, (row, c)) in rows[2..].iter().zip(&children).enumerate() {
        let f = a.child_file(c.id.as_str()).unwrap();
        let expected = [
            (i + 1).to_string(),
            field(&f, "identity", "student_no"),
            c.name.clone(),
            field(&f, "profile", "sex"),
            field(&f, "profile", "birth_date"),
            c.class_name.clone().unwrap(),
            field(&f, "identity", "id_card"),
            field(&f, "profile", "address"),
            field(&f, "profile", "parents_away"),
        ];
        assert_eq!(row[..9], expected, "{}", c.name);
        assert_eq!(row[15], field(&f, "guardian", "name"));
        assert_eq!(row[17], field(&f, "guardian", "phone"));
        assert!(row[6].contains('*'), "masked: {}", row[6]);
    }
    let all = rows.concat().join(" ");
    for full in [id_card("20170305", 2), id_card("20161102", 11)] {
        assert!(!all.contains(&full), "a full ID number in the report");
    }
    // Recorded as a report, with how many children it names.
    let log = a.audit_log().unwrap();
    assert_eq!(log.entries.len(), before + 1);
    let entry = log.entries.last().unwrap();
    assert_eq!(entry.what, "report");
    assert!(
        entry.target.contains("report registry") && entry.target.contains("（3 名学生）"),
        "{}",
        entry.target
    );

    // 汇总表: the per-class counts and the total.
    let out = s.path("汇总表.xlsx");
    s.ok(&[
        "report",
        "留守儿童信息汇总表",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = &read(&out)[0].1;
    assert_eq!(rows[1][..4], ["学校", "班级", "班主任", "留守儿童人数"]);
    assert_eq!(
        rows[2][..7],
        ["郭庄小学", CLASS, TEACHER, "3", "2", "0", "1"]
    );
    assert_eq!(rows[2][7..], ["1", "1", "0"]);
    assert_eq!(rows[3][1], "合计");

    // 三特: only 李明.
    let out = s.path("三特.xlsx");
    s.ok(&["report", "sante", "--out", out.to_str().unwrap()]);
    let rows = &read(&out)[0].1;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2][..7], ["1", "李明", CLASS, "男", "是", "是", ""]);

    // 结对帮扶: 刘桂兰 and 王小雨.
    let out = s.path("结对.xlsx");
    s.ok(&["report", "pairings", "--out", out.to_str().unwrap()]);
    let rows = &read(&out)[0].1;
    assert_eq!(rows[2], ["1", MOTHER, "爱心妈妈", "王小雨", CLASS]);

    // The month's statistics per member: November only, by the date it happened.
    let out = s.path("月统计.xlsx");
    s.ok(&[
        "report",
        "contacts",
        "--month",
        "2026-11",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = &read(&out)[0].1;
    assert!(rows[0][0].contains("2026年11月"), "{}", rows[0][0]);
    assert_eq!(
        rows[1][3..],
        ["家访记录", "谈心记录", "电话记录", "走访记录", "合计"]
    );
    let admin = rows.iter().find(|r| r[1] == "陶淑芬").unwrap();
    assert_eq!(admin[3..], ["2", "1", "0", "0", "3"]);

    // One child's 六项基本档案.
    let out = s.path("王小雨.xlsx");
    s.ok(&[
        "report",
        "child",
        "--child",
        "王小雨",
        "--out",
        out.to_str().unwrap(),
    ]);
    let sheets = read(&out);
    let names: Vec<&str> = sheets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "基本情况登记表",
            "三特儿童登记表",
            "活动登记表",
            "班级关爱活动记录表",
            "成长特殊事迹记录",
            "关爱记录"
        ]
    );
    let basic = &sheets[0].1;
    assert!(
        basic
            .iter()
            .any(|r| r[0] == "基本情况·姓名" && r[1] == "王小雨")
    );
    assert!(
        basic
            .iter()
            .any(|r| r[0] == "基本情况·家庭住址" && r[1] == "郭庄村三组")
    );
    assert!(!basic.concat().join(" ").contains(&id_card("20170305", 2)));
    assert_eq!(
        sheets[2].1[2][..3],
        ["2026-11-01", "陶淑芬", "六一文艺汇演"]
    );
    assert_eq!(sheets[3].1.len(), 3, "the class's care activity");
    assert_eq!(sheets[4].1[2][2], "拾金不昧");
    let care = &sheets[5].1;
    assert_eq!(care.len(), 4, "two 家访 of hers and one 谈心: {care:?}");
    assert_eq!(care[2][..2], ["2026-11-05", "家访记录"]);

    // Refusals: one Chinese line, no file.
    let out = s.path("x.xlsx");
    let o = s.run(&["report", "成绩单", "--out", out.to_str().unwrap()]);
    let e = assert_one_chinese_error(&o, &["report", "成绩单"]);
    assert!(e.contains("没有“成绩单”这个报表"), "{e}");
    let o = s.run(&[
        "report",
        "contacts",
        "--month",
        "2026-13",
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = assert_one_chinese_error(&o, &["report", "contacts"]);
    assert!(e.contains("不是有效的月份"), "{e}");
    let o = s.run(&["report", "child", "--out", out.to_str().unwrap()]);
    assert_one_chinese_error(&o, &["report", "child"]);
    assert!(!out.exists());
    let existing = s.path("登记表.xlsx");
    let o = s.run(&["report", "registry", "--out", existing.to_str().unwrap()]);
    let e = assert_one_chinese_error(&o, &["report", "registry"]);
    assert!(e.contains("不会覆盖"), "{e}");
}

/// A registry reported upward needs the ID numbers in full: `--reveal-id --why 理由` shows
/// them, after recording the request (an ID reveal naming the report, with the reason) in the
/// device's access log; without a reason it is refused and no file is written.
#[test]
fn a_registry_with_full_id_numbers_needs_a_reason_and_is_recorded() {
    let s = School::new();
    let out = s.path("上报.xlsx");
    let path = out.to_str().unwrap();
    let o = s.run(&["report", "registry", "--out", path, "--reveal-id"]);
    assert_one_chinese_error(&o, &["report", "registry", "--out", path, "--reveal-id"]);
    assert!(!out.exists());
    let before = Archive::open(&s.store)
        .unwrap()
        .audit_log()
        .unwrap()
        .entries
        .len();

    let why = "县教育局年度留守儿童信息上报";
    s.ok(&[
        "report",
        "registry",
        "--out",
        path,
        "--reveal-id",
        "--why",
        why,
    ]);
    // Full ID numbers on a shared office computer: the file is its owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let all = read(&out)[0].1.concat().join(" ");
    for full in [id_card("20170305", 2), id_card("20161102", 11)] {
        assert!(all.contains(&full), "{full} not in full: {all}");
    }
    let log = Archive::open(&s.store).unwrap().audit_log().unwrap();
    assert_eq!(log.entries.len(), before + 2, "the reveal and the report");
    let reveal = log
        .entries
        .iter()
        .find(|e| e.what == "id_reveal")
        .expect("the reveal is recorded");
    assert!(
        reveal.target.contains("留守儿童基本情况登记表"),
        "{}",
        reveal.target
    );
    assert_eq!(reveal.why.as_deref(), Some(why));
}
