//! Admin mistakes are refused or listed, never silently absorbed (issue 9, point 5): adding a
//! class that exists, changing a class's head, and re-importing a roster over values people
//! edited.

// A failure here is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{CLASS, MOTHER, School, TEACHER, arg, assert_one_chinese_error, id_card};

/// The roles of a member, by name, as the JSON listing gives them.
fn roles(s: &School, name: &str) -> Vec<String> {
    let members = s.json(&["member", "list"]);
    let m = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no member {name}"))
        .clone();
    m["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

/// The head teacher's name of a class, per the class listing.
fn head_of(s: &School, class: &str) -> Option<String> {
    let classes = s.json(&["class", "list"]);
    let members = s.json(&["member", "list"]);
    let c = classes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == class)
        .unwrap()
        .clone();
    let id = c["head_teacher"].as_str()?;
    members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .map(|m| m["name"].as_str().unwrap().to_owned())
}

/// One field's shown value in a child's file (`section` key, field key).
fn field(s: &School, child: &str, section: &str, key: &str) -> Option<String> {
    let file = s.json(&["child", "show", child]);
    file["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["key"] == section)?["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key)
        .map(|f| f["value"].as_str().unwrap().to_owned())
}

#[test]
fn class_add_for_an_existing_class_is_refused_and_changes_nothing() {
    let s = School::new();
    s.ok(&["member", "add", "赵文静", "--role", "任课教师"]);
    let before = s.bytes();
    for args in [
        vec!["class", "add", CLASS, "--head", "赵文静"],
        vec!["class", "add", CLASS],
    ] {
        let o = s.run(&args);
        let line = assert_one_chinese_error(&o, &args);
        assert!(line.contains(CLASS), "{line}");
        assert!(line.contains(TEACHER), "names the current head: {line}");
        assert!(line.contains("class head"), "says how to change it: {line}");
        assert!(s.bytes() == before, "{args:?} wrote to the store");
    }
    assert_eq!(head_of(&s, CLASS).as_deref(), Some(TEACHER));
    assert_eq!(roles(&s, "赵文静"), ["subject_teacher"]);
}

#[test]
fn class_head_changes_the_head_and_says_what_each_gains_and_loses() {
    let s = School::new();
    s.ok(&["member", "add", "赵文静", "--role", "任课教师"]);
    let out = s.ok(&["class", "head", CLASS, "--head", "赵文静"]);
    // What the new head gains: the role, and the class's children's files, private part too.
    assert!(out.contains("赵文静"), "{out}");
    assert!(out.contains("班主任"), "{out}");
    assert!(out.contains("3 名学生"), "{out}");
    assert!(out.contains("私密"), "{out}");
    // What the old head loses.
    assert!(out.contains(TEACHER), "{out}");
    assert!(out.contains("不再"), "{out}");
    assert_eq!(head_of(&s, CLASS).as_deref(), Some("赵文静"));
    let zhao = roles(&s, "赵文静");
    assert!(zhao.contains(&"head_teacher".to_owned()), "{zhao:?}");
    // The old head heads no other class: the 班主任 role goes, and with it the class's files.
    assert!(!roles(&s, TEACHER).contains(&"head_teacher".to_owned()));
    let b = s.path("wang.swb");
    s.ok(&["device", "add", "--member", TEACHER, "--out", arg(&b)]);
    let dev = s.path("wang.db");
    s.ok_on(&dev, &["join", "--bundle", arg(&b), "--member", TEACHER]);
    let kids: serde_json::Value =
        serde_json::from_str(&s.ok_on(&dev, &["--json", "children"])).unwrap();
    assert_eq!(kids.as_array().unwrap().len(), 0, "{kids}");

    // Naming the head the class already has changes nothing.
    let before = s.bytes();
    let out = s.ok(&["class", "head", CLASS, "--head", "赵文静"]);
    assert!(out.contains("没有改动"), "{out}");
    assert!(s.bytes() == before);
    // An unknown member or class is refused, nothing written.
    for args in [
        vec!["class", "head", CLASS, "--head", "不存在"],
        vec!["class", "head", "九年级(9)班", "--head", MOTHER],
    ] {
        let o = s.run(&args);
        assert_one_chinese_error(&o, &args);
        assert!(s.bytes() == before);
    }
}

#[test]
fn roster_reimport_lists_what_people_changed_and_applies_it_only_with_update() {
    let s = School::new();
    // Someone corrected the grandmother's phone and the child's address since the import.
    s.ok(&["child", "edit", "王小雨", "guardian", "phone=13911112222"]);
    s.ok(&["child", "edit", "李明", "profile", "address=郭庄村三组"]);
    // The registry's file, again: the old phone, a father's name that was empty, a new child,
    // a different address for 李明.
    let csv = format!(
        "学籍号,姓名,性别,出生日期,身份证号,班级,监护人,与监护人关系,联系电话,外出务工,父亲姓名,家庭住址\n\
         G001,王小雨,女,2017-03-05,{},{CLASS},王桂英,奶奶,13800001111,父母,王大山,\n\
         G002,李明,男,2016-11-02,{},{CLASS},李建国,爷爷,13800002222,父亲,,郭庄村一组\n\
         G003,陈思涵,女,2017-06-18,{},{CLASS},陈丽,母亲,13800003333,父亲,,\n\
         G004,周子墨,男,2017-01-09,,{CLASS},周红,母亲,13800004444,父亲,,\n",
        id_card("20170305", 2),
        id_card("20161102", 11),
        id_card("20170618", 4),
    );
    let path = s.path("roster2.csv");
    std::fs::write(&path, csv).unwrap();

    let out = s.ok(&["roster", "import", arg(&path)]);
    // The differences are listed: child, field, the file's value, the archive's value.
    assert!(out.contains("王小雨"), "{out}");
    assert!(out.contains("监护人·电话"), "{out}");
    assert!(out.contains("13800001111"), "{out}");
    assert!(out.contains("13911112222"), "{out}");
    assert!(out.contains("李明"), "{out}");
    assert!(out.contains("家庭住址"), "{out}");
    assert!(
        out.contains("郭庄村一组") && out.contains("郭庄村三组"),
        "{out}"
    );
    assert!(out.contains("--update"), "{out}");
    // ... and not changed.
    assert_eq!(
        field(&s, "王小雨", "guardian", "phone").as_deref(),
        Some("13911112222")
    );
    assert_eq!(
        field(&s, "李明", "profile", "address").as_deref(),
        Some("郭庄村三组")
    );
    // New children and empty fields are still written.
    assert_eq!(
        field(&s, "王小雨", "father", "name").as_deref(),
        Some("王大山")
    );
    assert_eq!(
        field(&s, "周子墨", "guardian", "name").as_deref(),
        Some("周红")
    );

    let report = s.json(&["roster", "import", arg(&path)]);
    assert_eq!(report["new_children"], 0);
    assert_eq!(
        report["differences"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert_eq!(report["updated"], 0);

    // With --update the file wins.
    let out = s.ok(&["roster", "import", "--update", arg(&path)]);
    assert!(out.contains("2 处"), "{out}");
    assert_eq!(
        field(&s, "王小雨", "guardian", "phone").as_deref(),
        Some("13800001111")
    );
    assert_eq!(
        field(&s, "李明", "profile", "address").as_deref(),
        Some("郭庄村一组")
    );
    // Now the archive agrees with the file: nothing left to list, nothing written.
    let before = s.bytes();
    let report = s.json(&["roster", "import", arg(&path)]);
    assert_eq!(
        report["differences"].as_array().unwrap().len(),
        0,
        "{report}"
    );
    assert!(s.bytes() == before);
}

#[test]
fn roster_reimport_lists_a_field_in_conflict_and_update_resolves_it() {
    let s = School::new();
    // The 班主任's device and the office change the same phone while apart: a conflict.
    let to_teacher = s.path("teacher.swb");
    s.ok(&[
        "device",
        "add",
        "--member",
        TEACHER,
        "--out",
        arg(&to_teacher),
    ]);
    let teacher = s.path("teacher.db");
    s.ok_on(
        &teacher,
        &["join", "--bundle", arg(&to_teacher), "--member", TEACHER],
    );
    s.ok_on(
        &teacher,
        &["child", "edit", "王小雨", "guardian", "phone=13956241178"],
    );
    s.ok(&["child", "edit", "王小雨", "guardian", "phone=15855643290"]);
    let back = s.path("back.swb");
    s.ok_on(&teacher, &["bundle", "export", "--out", arg(&back)]);
    s.ok(&["bundle", "import", arg(&back)]);
    let conflicts = s.json(&["conflicts", "王小雨"]);
    assert_eq!(conflicts.as_array().unwrap().len(), 1, "{conflicts}");

    // The fixture's roster again: the phone is listed with both values, the conflict stays.
    let roster = s.path("roster.csv");
    let report = s.json(&["roster", "import", arg(&roster)]);
    let diffs = report["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{report}");
    assert_eq!(diffs[0]["child"], "王小雨");
    assert_eq!(diffs[0]["field"], "监护人·电话");
    assert_eq!(diffs[0]["in_file"], "13800001111");
    let in_archive = diffs[0]["in_archive"].as_str().unwrap();
    assert!(
        in_archive.contains("13956241178") && in_archive.contains("15855643290"),
        "{in_archive}"
    );
    assert_eq!(
        s.json(&["conflicts", "王小雨"]).as_array().unwrap().len(),
        1
    );

    // --update writes the file's value, which resolves the conflict.
    s.ok(&["roster", "import", "--update", arg(&roster)]);
    assert_eq!(
        s.json(&["conflicts", "王小雨"]).as_array().unwrap().len(),
        0
    );
    assert_eq!(
        field(&s, "王小雨", "guardian", "phone").as_deref(),
        Some("13800001111")
    );
}
