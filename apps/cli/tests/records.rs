//! Writing, editing, voiding records and the `--json` output of every listing and show command.

mod common;

use common::arg;

use common::{CLASS, School, TEACHER};
use serde_json::Value;

fn records_of(s: &School, child: &str) -> Vec<Value> {
    common::array(&s.json(&["child", "show", child])["records"])
}

#[test]
fn every_kind_is_accepted_by_key_and_by_chinese_name() {
    let s = School::new();
    let cases: &[(&str, &[&str])] = &[
        (
            "家访",
            &["notes=奶奶在家", "met_with=奶奶", "child_present=是"],
        ),
        ("谈心", &["notes=聊了学习", "emotion=开心"]),
        (
            "电话记录",
            &["with_whom=父亲", "channel=电话", "notes=通话十分钟"],
        ),
        ("走访记录", &["notes=走访一次"]),
        (
            "亲情电话",
            &["notes=和妈妈视频", "minutes=15", "parent=母亲"],
        ),
        ("activity", &["name=六一文艺汇演", "notes=表演合唱"]),
        ("highlight", &["title=拾金不昧", "notes=捡到钱包交给老师"]),
        (
            "健康体检",
            &["height_cm=132.5", "vision_left=5.0", "notes=健康"],
        ),
        (
            "学习帮扶计划",
            &["subject=数学", "schedule=每周三", "notes=应用题"],
        ),
        (
            "亲情书信",
            &["occasion=中秋", "to_whom=父母", "notes=写了一封信"],
        ),
        ("心理辅导记录", &["notes=情绪疏导"]),
        (
            "个别教育管理方案",
            &["reason=学习严重滑坡", "notes=每天辅导"],
        ),
    ];
    for (kind, fields) in cases {
        let mut args = vec![
            "record",
            kind,
            "--child",
            "李明",
            "--date",
            "2025-11-18",
            "--field",
        ];
        args.extend_from_slice(fields);
        let out = s.ok(&args);
        assert!(out.starts_with("已保存"), "{kind}: {out}");
    }
    let out = s.ok(&[
        "record",
        "班级关爱活动记录",
        "--class",
        CLASS,
        "--date",
        "2025-11-20",
        "-f",
        "title=中秋话想念",
        "notes=全班写信",
    ]);
    assert!(out.contains("班级关爱活动记录"), "{out}");

    let records = records_of(&s, "李明");
    assert_eq!(records.len(), cases.len());
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind_key"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"family_call") && kinds.contains(&"education_plan"),
        "{kinds:?}"
    );
    let text = s.ok(&["child", "show", "李明"]);
    assert!(text.contains("时长(分钟)：15"), "{text}");
    assert!(text.contains("原因：学习严重滑坡"), "{text}");
}

#[test]
fn edit_void_and_progress_show_in_the_file() {
    let s = School::new();
    let out = s.json(&[
        "record",
        "学习帮扶计划",
        "--child",
        "陈思涵",
        "--date",
        "2025-11-03",
        "-f",
        "subject=数学",
        "schedule=每周三放学后",
        "notes=应用题",
    ]);
    let plan = out["id"].as_str().unwrap().to_owned();
    s.ok(&[
        "record",
        "edit",
        &plan,
        "-f",
        "notes=应用题和口算",
        "helper=同桌",
    ]);
    s.ok(&[
        "record",
        "progress",
        &plan,
        "--date",
        "2025-11-24",
        "-f",
        "result=86分",
        "notes=应用题能独立完成",
    ]);
    let talk = s.json(&[
        "record",
        "谈心",
        "--child",
        "陈思涵",
        "--date",
        "2025-11-05",
        "-f",
        "notes=写错了学生",
    ]);
    let talk = talk["id"].as_str().unwrap().to_owned();
    s.ok(&["record", "void", &talk, "--reason", "填错了学生"]);

    let text = s.ok(&["child", "show", "陈思涵"]);
    assert!(text.contains("帮扶内容：应用题和口算"), "{text}");
    assert!(text.contains("学习帮手：同桌"), "{text}");
    assert!(
        text.contains("进步档案 2025-11-24 · 陶淑芬：阶段成绩：86分；进步情况：应用题能独立完成"),
        "{text}"
    );
    assert!(text.contains("【已作废】2025-11-05 谈心记录"), "{text}");
    assert!(text.contains("作废：陶淑芬，原因：填错了学生"), "{text}");
    // Records are listed in the order they happened.
    let plan_at = text.find("2025-11-03 学习帮扶计划").unwrap();
    let talk_at = text.find("2025-11-05 谈心记录").unwrap();
    assert!(plan_at < talk_at);

    let records = records_of(&s, "陈思涵");
    let voided = records.iter().find(|r| r["id"] == talk).unwrap();
    assert_eq!(voided["void"]["reason"], "填错了学生");
    assert!(voided["voided"].as_bool().unwrap());
    // A voided record does not count.
    let kids = s.json(&["children"]);
    let row = kids
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "陈思涵")
        .unwrap();
    assert_eq!(row["records"], 1);
}

#[test]
fn records_name_their_authors_on_every_device() {
    let s = School::new();
    let bundle = s.path("a.swb");
    s.ok(&["device", "add", "--member", TEACHER, "--out", arg(&bundle)]);
    let a = s.path("a.db");
    s.ok_on(&a, &["join", "--bundle", arg(&bundle), "--member", TEACHER]);
    s.ok_on(
        &a,
        &[
            "record",
            "家访",
            "--child",
            "王小雨",
            "--date",
            "2025-11-17",
            "-f",
            "notes=走了四十分钟田埂路到家",
        ],
    );
    let text = s.ok_on(&a, &["child", "show", "王小雨"]);
    assert!(
        text.contains("2025-11-17 家访记录 · 王瑞侠（班主任）"),
        "{text}"
    );
    assert!(text.contains("王瑞侠 新增家访记录"), "history: {text}");
    let file: Value =
        serde_json::from_str(&s.ok_on(&a, &["--json", "child", "show", "王小雨"])).unwrap();
    let author = file["records"][0]["author"].as_str().unwrap();
    assert_eq!(file["member_names"][author], TEACHER);
}

#[test]
fn json_output_parses_for_every_listing_and_show_command() {
    let s = School::new();
    s.ok(&[
        "record",
        "谈心",
        "--child",
        "王小雨",
        "--date",
        "2025-11-18",
        "-f",
        "notes=好",
    ]);

    let children = s.json(&["children"]);
    assert_eq!(children.as_array().unwrap().len(), 3);
    assert!(children[0]["id"].is_string() && children[0]["name"].is_string());
    let mine = s.json(&["children", "--class", CLASS, "--mine"]);
    assert_eq!(
        mine.as_array().unwrap().len(),
        3,
        "the archivist cares for everyone"
    );

    let file = s.json(&["child", "show", "王小雨"]);
    assert_eq!(file["name"], "王小雨");
    assert_eq!(file["class_name"], CLASS);
    assert_eq!(file["records"].as_array().unwrap().len(), 1);
    assert!(file["private_shown"].as_bool().unwrap());
    let identity = file["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == "identity")
        .unwrap();
    let id = identity["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "id_card")
        .unwrap();
    assert!(
        id["value"].as_str().unwrap().contains("********"),
        "ID numbers are masked"
    );

    assert_eq!(s.json(&["conflicts", "王小雨"]), serde_json::json!([]));

    let members = s.json(&["member", "list"]);
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(names.contains(&TEACHER));

    let classes = s.json(&["class", "list"]);
    assert_eq!(classes[0]["name"], CLASS);

    let rules = s.json(&["rules", "show"]);
    assert_eq!(
        rules.as_array().unwrap().len(),
        7,
        "six due-work rules and the retention"
    );
    s.ok(&["rules", "set", "home_visits_per_week", "3"]);
    let rules = s.json(&["rules", "show"]);
    let hv = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "home_visits_per_week")
        .unwrap();
    assert_eq!(hv["value"], 3);

    let due = s.json(&["due", "--member", TEACHER, "--date", "2025-11-21"]);
    let due = due.as_array().unwrap();
    assert!(!due.is_empty());
    assert!(
        due.iter()
            .any(|d| d["rule"] == "home_visits" && d["required"] == 3)
    );
    let statuses: Vec<&str> = due.iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert!(
        statuses.contains(&"overdue") && statuses.contains(&"due"),
        "{statuses:?}"
    );

    let compliance = s.json(&["compliance", "--from", "2025-11-01", "--to", "2025-11-30"]);
    let rows = compliance.as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["rule"] == "head_teacher_talks" && r["obligations"] == 3)
    );
    assert!(rows.iter().all(|r| r["percent"].is_number()));

    let info = s.json(&["info"]);
    assert_eq!(info["school"], "郭庄小学");
    assert_eq!(info["children"], 3);
}

#[test]
fn due_list_counts_the_teachers_records() {
    let s = School::new();
    let bundle = s.path("a.swb");
    s.ok(&["device", "add", "--member", TEACHER, "--out", arg(&bundle)]);
    let a = s.path("a.db");
    s.ok_on(&a, &["join", "--bundle", arg(&bundle), "--member", TEACHER]);
    let talks_due = |s: &School| -> Vec<String> {
        let v: Value =
            serde_json::from_str(&s.ok_on(&a, &["--json", "due", "--date", "2025-11-21"])).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .filter(|d| d["rule"] == "head_teacher_talks" && d["status"] == "due")
            .map(|d| d["child_name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(talks_due(&s).len(), 3);
    s.ok_on(
        &a,
        &[
            "record",
            "谈心",
            "--child",
            "李明",
            "--date",
            "2025-11-19",
            "-f",
            "notes=谈了学习",
        ],
    );
    let left = talks_due(&s);
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&"李明".to_owned()));
    let text = s.ok_on(&a, &["due", "--date", "2025-11-21"]);
    assert!(
        text.contains("王瑞侠（班主任）截至 2025-11-21 的待办"),
        "{text}"
    );
    assert!(
        text.contains("班主任每月谈心：已逾期 3 项，待完成 2 项"),
        "{text}"
    );
}

#[test]
fn prompts_for_what_is_missing_at_a_terminal() {
    let s = School::new();
    let input = "2025-02-30\n2025-11-23\n叔叔\n父亲\n和父亲通话十五分钟\n";
    let Some(o) = common::at_a_terminal(&s, &["record", "电话记录", "--child", "王小雨"], input)
    else {
        eprintln!("`script` is not installed: the terminal prompt test is skipped");
        return;
    };
    let shown = common::stdout(&o);
    assert!(o.status.success(), "{shown}");
    assert!(shown.contains("填写电话记录"), "{shown}");
    assert!(
        shown.contains("日期填写有误"),
        "a bad date is asked again: {shown}"
    );
    assert!(
        shown.contains("联系对象（可选：父亲、母亲、父母、监护人）"),
        "{shown}"
    );
    assert!(shown.contains("通话内容："), "{shown}");
    assert!(shown.contains("已保存电话记录"), "{shown}");
    let file = s.ok(&["child", "show", "王小雨"]);
    assert!(
        file.contains("2025-11-23 电话记录 · 陶淑芬（档案管理员）"),
        "{file}"
    );
    assert!(file.contains("联系对象：父亲"), "{file}");
    assert!(file.contains("通话内容：和父亲通话十五分钟"), "{file}");
}
