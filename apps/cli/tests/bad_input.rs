//! Bad input: one Chinese line on stderr, a non-zero exit, and nothing written.

mod common;

use common::arg;

use common::{CLASS, School, assert_one_chinese_error, id_card, run_in, stderr};

/// Runs `args` against the fixture and checks the failure and that the store and the directory
/// are exactly as before. Returns the error line.
fn refused(s: &School, args: &[&str]) -> String {
    // Opening the file is itself recorded in the access log: read it before taking the bytes.
    let dump = s.json(&["child", "show", "王小雨"]);
    let before = s.bytes();
    let files = s.files();
    let o = s.run(args);
    let line = assert_one_chinese_error(&o, args);
    assert!(s.bytes() == before, "{args:?} changed the store");
    assert_eq!(s.files(), files, "{args:?} left files behind");
    assert_eq!(s.json(&["child", "show", "王小雨"]), dump, "{args:?}");
    line
}

#[test]
fn invalid_id_card_number() {
    let s = School::new();
    let bad = "110105194912310021"; // wrong check character
    let line = refused(
        &s,
        &[
            "child",
            "edit",
            "李明",
            "identity",
            &format!("id_card={bad}"),
        ],
    );
    assert!(line.contains("身份证号"), "{line}");
    assert!(line.contains("校验位"), "{line}");
    assert!(!line.contains(bad), "the number must not be echoed: {line}");

    // A roster with one bad row is refused whole.
    let csv = format!(
        "学籍号,姓名,班级,身份证号\nG101,赵一,{CLASS},{}\nG102,钱二,{CLASS},{bad}\n",
        id_card("20170101", 1)
    );
    std::fs::write(s.path("bad.csv"), csv).unwrap();
    let path = s.path("bad.csv");
    let line = refused(&s, &["roster", "import", arg(&path)]);
    assert!(line.starts_with("错误：第3行"), "{line}");
    let names: Vec<String> = s
        .json(&["children"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.contains(&"赵一".to_owned()), "{names:?}");
}

#[test]
fn unknown_child() {
    let s = School::new();
    let args = [
        "record",
        "家访",
        "--child",
        "张不在",
        "--date",
        "2025-11-18",
        "--field",
        "notes=到家了",
    ];
    let line = refused(&s, &args);
    assert_eq!(line, "错误：找不到学生：张不在");
    refused(&s, &["child", "show", "张不在"]);
    refused(&s, &["pair", "--carer", "刘桂兰", "--child", "张不在"]);
    refused(
        &s,
        &["child", "edit", "张不在", "guardian", "phone=13900002222"],
    );
}

#[test]
fn impossible_date() {
    let s = School::new();
    let line = refused(
        &s,
        &[
            "record",
            "谈心",
            "--child",
            "王小雨",
            "--date",
            "2025-02-30",
            "--field",
            "notes=聊了聊",
        ],
    );
    assert!(
        line.contains("2025-02-30") && line.contains("不是有效日期"),
        "{line}"
    );
    refused(&s, &["due", "--date", "2025-13-01"]);
    refused(
        &s,
        &["child", "edit", "李明", "profile", "birth_date=2016-02-30"],
    );
    std::fs::write(
        s.path("d.csv"),
        format!("姓名,班级,出生日期\n孙三,{CLASS},2017-02-30\n"),
    )
    .unwrap();
    let path = s.path("d.csv");
    let line = refused(&s, &["roster", "import", arg(&path)]);
    assert!(line.contains("出生日期"), "{line}");
}

#[test]
fn unknown_class() {
    let s = School::new();
    let line = refused(
        &s,
        &[
            "member",
            "add",
            "周老师",
            "--role",
            "班主任",
            "--class",
            "七年级(9)班",
        ],
    );
    assert_eq!(line, "错误：找不到班级：七年级(9)班");
    refused(&s, &["children", "--class", "七年级(9)班"]);
    refused(
        &s,
        &["child", "edit", "李明", "profile", "class_id=七年级(9)班"],
    );
    std::fs::write(s.path("c.csv"), "姓名,班级\n孙三,七年级(9)班\n").unwrap();
    let path = s.path("c.csv");
    let line = refused(&s, &["roster", "import", arg(&path)]);
    assert!(line.contains("七年级(9)班"), "{line}");
}

#[test]
fn unknown_field_and_section() {
    let s = School::new();
    let line = refused(
        &s,
        &[
            "record",
            "家访",
            "--child",
            "王小雨",
            "--date",
            "2025-11-18",
            "--field",
            "notes=好",
            "shoe=42",
        ],
    );
    assert!(
        line.contains("shoe") && line.contains("没有这一项"),
        "{line}"
    );
    refused(&s, &["child", "edit", "王小雨", "guardian", "shoe=42"]);
    refused(&s, &["child", "edit", "王小雨", "宠物", "name=旺财"]);
    refused(
        &s,
        &[
            "record",
            "遛弯",
            "--child",
            "王小雨",
            "--date",
            "2025-11-18",
        ],
    );
    refused(&s, &["child", "edit", "王小雨", "guardian", "phone"]);
    refused(&s, &["child", "edit", "王小雨", "guardian", "phone=12ab"]);
}

#[test]
fn missing_fields_are_named_when_nobody_can_be_asked() {
    let s = School::new();
    let line = refused(
        &s,
        &[
            "record",
            "家访",
            "--child",
            "王小雨",
            "--date",
            "2025-11-18",
        ],
    );
    assert!(
        line.contains("情况记录") && line.contains("notes"),
        "{line}"
    );
    let line = refused(
        &s,
        &[
            "record",
            "电话记录",
            "--child",
            "王小雨",
            "--date",
            "2025-11-18",
            "-f",
            "notes=好",
        ],
    );
    assert!(
        line.contains("联系对象") && line.contains("with_whom"),
        "{line}"
    );
    let line = refused(
        &s,
        &["record", "谈心", "--child", "王小雨", "-f", "notes=好"],
    );
    assert!(line.contains("日期"), "{line}");
    let line = refused(
        &s,
        &["record", "谈心", "--date", "2025-11-18", "-f", "notes=好"],
    );
    assert!(line.contains("学生"), "{line}");
}

#[test]
fn broken_bundles_and_bundles_from_another_school() {
    let s = School::new();
    let all = s.path("all.swb");
    s.ok(&["bundle", "export", "--out", arg(&all)]);
    let bytes = std::fs::read(&all).unwrap();

    let cut = s.path("cut.swb");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let line = refused(&s, &["bundle", "import", arg(&cut)]);
    assert!(line.contains("损坏") || line.contains("不完整"), "{line}");

    let flipped = s.path("flip.swb");
    let mut b = bytes.clone();
    let mid = b.len() / 2;
    b[mid] ^= 0x40;
    std::fs::write(&flipped, &b).unwrap();
    refused(&s, &["bundle", "import", arg(&flipped)]);

    let junk = s.path("junk.swb");
    std::fs::write(&junk, "这不是数据文件").unwrap();
    refused(&s, &["bundle", "import", arg(&junk)]);

    let missing = s.path("missing.swb");
    let line = refused(&s, &["bundle", "import", arg(&missing)]);
    assert!(line.contains("找不到数据文件"), "{line}");

    // Another school's bundle.
    let other = s.path("other.db");
    s.ok_on(
        &other,
        &[
            "init-school",
            "--plain",
            "--name",
            "马庄小学",
            "--town",
            "某镇",
            "--admin",
            "某人",
        ],
    );
    let other_bundle = s.path("other.swb");
    s.ok_on(&other, &["bundle", "export", "--out", arg(&other_bundle)]);
    // Sealed to that school's office, not this one's: it does not even open here.
    let line = refused(&s, &["bundle", "import", arg(&other_bundle)]);
    assert!(line.contains("不是发给本机的"), "{line}");
}

/// A file larger than any bundle (sparse: it takes no disk) is refused by its size before it
/// is read. Run with its heap held to 256 MiB, as memory is on a cheap phone, the CLI still
/// answers in Chinese and changes nothing, where reading half a gigabyte first killed it.
#[test]
fn an_oversized_bundle_is_refused_before_it_is_read() {
    let s = School::new();
    let huge = s.path("huge.swb");
    let f = std::fs::File::create(&huge).unwrap();
    std::io::Write::write_all(&mut &f, b"age-encryption.org/v1\n").unwrap();
    f.set_len(shouwang_core::bundle::seal::MAX_FILE as u64 + 1)
        .unwrap();
    drop(f);
    let before = s.bytes();
    let args = ["--store", arg(&s.store), "bundle", "import", arg(&huge)];
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"ulimit -d 262144 && exec "$0" "$@""#)
        .arg(common::BIN)
        .args(args)
        .current_dir(s.dir.path())
        .env_remove("SHOUWANG_STORE")
        .output()
        .unwrap();
    let line = assert_one_chinese_error(&o, &args);
    assert!(line.contains("太大"), "{line}");
    assert!(s.bytes() == before, "the store changed");
}

#[test]
fn a_failed_join_leaves_no_store() {
    let s = School::new();
    let all = s.path("all.swb");
    s.ok(&["device", "add", "--member", "王瑞侠", "--out", arg(&all)]);
    let bytes = std::fs::read(&all).unwrap();
    let cut = s.path("cut.swb");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    let files = s.files();
    let dev = s.path("device.db");
    let right = s.passphrase(&all);
    let wrong = "1111-2222-3333-4444";
    for (bundle, member, pass) in [
        (&cut, "王瑞侠", right.as_str()),
        (&all, "不存在的人", right.as_str()),
        (&all, "王瑞侠", wrong),
        (&all, "王瑞侠", "12345"),
    ] {
        let args = [
            "join",
            "--bundle",
            arg(bundle),
            "--member",
            member,
            "--passphrase",
            pass,
        ];
        let o = s.run_on(&dev, &args);
        assert_one_chinese_error(&o, &args);
        assert_eq!(s.files(), files, "join left files behind");
    }
}

#[test]
fn a_missing_store_is_reported_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["children"],
        vec!["child", "show", "王小雨"],
        vec!["due"],
        vec!["bundle", "export", "--out", "x.swb"],
    ] {
        let o = run_in(dir.path(), &args);
        let line = assert_one_chinese_error(&o, &args);
        assert!(line.contains("还没有建立档案库"), "{line}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} wrote files"
        );
    }
    // A bad `init-school` writes nothing either.
    let args = [
        "init-school",
        "--plain",
        "--name",
        "郭庄小学",
        "--town",
        "丁里镇",
        "--admin",
        "陶淑芬",
        "--hotline",
        "电话",
    ];
    let o = run_in(dir.path(), &args);
    assert_one_chinese_error(&o, &args);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn command_line_mistakes_are_one_chinese_line() {
    let s = School::new();
    for args in [
        vec!["recrod"],
        vec!["due", "--bogus"],
        vec!["resolve", "王小雨", "guardian.phone"],
        vec!["resolve", "王小雨", "guardian.phone", "--pick", "abc"],
        vec![
            "resolve",
            "王小雨",
            "guardian.phone",
            "--pick",
            "1",
            "--value",
            "x",
        ],
        vec!["member", "add", "某某"],
    ] {
        let before = s.bytes();
        let o = s.run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_one_chinese_error(&o, &args);
        assert!(s.bytes() == before);
    }
}

#[test]
fn refused_edits_by_members_without_the_right() {
    let s = School::new();
    let all = s.path("m.swb");
    s.ok(&["device", "add", "--member", "刘桂兰", "--out", arg(&all)]);
    let dev = s.path("mother.db");
    s.ok_on(&dev, &["join", "--bundle", arg(&all), "--member", "刘桂兰"]);
    let before = std::fs::read(&dev).unwrap();
    for args in [
        vec!["class", "add", "四年级(1)班"],
        vec![
            "record",
            "电话记录",
            "--child",
            "王小雨",
            "--date",
            "2025-11-18",
            "-f",
            "with_whom=父亲",
            "notes=好",
        ],
        vec!["child", "show", "李明"],
    ] {
        let o = s.run_on(&dev, &args);
        assert_one_chinese_error(&o, &args);
        assert!(std::fs::read(&dev).unwrap() == before, "{args:?}");
    }
}

#[test]
fn the_store_comparison_sees_a_successful_write() {
    // Guards the checks above: a write that succeeds does change the bytes compared.
    let s = School::new();
    let before = s.bytes();
    s.ok(&["child", "edit", "李明", "guardian", "phone=13900002222"]);
    assert!(s.bytes() != before);
}

#[test]
fn control_characters_in_names_and_notes_are_refused() {
    let s = School::new();
    let before = s.bytes();
    for args in [
        vec!["member", "add", "王\u{1b}[31m老师", "--role", "班主任"],
        vec!["member", "add", "王\n老师", "--role", "班主任"],
        vec!["class", "add", "四年级\u{1b}[2J(1)班"],
        vec![
            "record",
            "家访",
            "--child",
            "王小雨",
            "--date",
            "2026-11-20",
            "--field",
            "notes=红字\u{1b}[31m",
        ],
    ] {
        let line = refused(&s, &args);
        assert!(line.contains("控制字符"), "{args:?}: {line}");
        assert!(!line.contains('\u{1b}'), "{line}");
    }
    // `refused` checked the store bytes around each command (its `child show` is logged).
    let _ = before;
}

#[test]
fn device_add_to_a_missing_directory_registers_nothing() {
    let s = School::new();
    let line = refused(
        &s,
        &[
            "device",
            "add",
            "--member",
            "王瑞侠",
            "--out",
            "/不存在的目录/王.swb",
        ],
    );
    assert!(line.contains("无法写入"), "{line}");
}

#[test]
fn a_date_in_the_future_is_refused() {
    let s = School::new();
    let line = refused(
        &s,
        &[
            "record",
            "家访",
            "--child",
            "王小雨",
            "--date",
            "2030-01-01",
            "--field",
            "notes=奶奶在家",
        ],
    );
    assert!(
        line.contains("2030-01-01") && line.contains("晚于今天"),
        "{line}"
    );
}

#[test]
fn a_second_member_of_the_same_name_is_refused_at_creation() {
    let s = School::new();
    let line = refused(
        &s,
        &["member", "add", common::TEACHER, "--role", "爱心妈妈"],
    );
    assert!(
        line.contains("已有同名成员") && line.contains("（二）"),
        "{line}"
    );
}

#[test]
fn files_that_are_not_stores_are_named_and_left_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "家访名单\n王小雨\n").unwrap();
    for (file, says) in [(&empty, "还没有建立档案库"), (&text, "不是守望的档案库")]
    {
        let before = std::fs::read(file).unwrap();
        for args in [vec!["children"], vec!["due"], vec!["member", "list"]] {
            let mut all = vec!["--store", arg(file)];
            all.extend(args);
            let o = run_in(dir.path(), &all);
            let line = assert_one_chinese_error(&o, &all);
            assert!(line.contains(says), "{line}");
            assert_eq!(std::fs::read(file).unwrap(), before, "{all:?} changed it");
        }
    }
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["empty.db", "notes.db"], "files were left behind");
}

#[test]
fn a_spreadsheet_that_is_not_one_is_named_in_chinese() {
    let s = School::new();
    let path = s.path("名单.xlsx");
    std::fs::write(&path, b"PK\x03\x04 not really a workbook").unwrap();
    let line = refused(&s, &["roster", "import", arg(&path)]);
    assert!(line.contains("不是有效的 Excel 文件"), "{line}");
}

/// `children` narrowed with the console's filter: by text, by parents away, by a 三特 flag;
/// an unknown word for either is one Chinese line and changes nothing.
#[test]
fn children_filters_narrow_the_list_and_refuse_unknown_words() {
    let s = School::new();
    let all = s.ok(&["children"]);
    assert!(all.contains("共 3 名学生"), "{all}");
    assert_eq!(
        s.ok(&["children", "--class", CLASS]),
        all,
        "one class is all"
    );
    let away = s.ok(&["children", "--away", "父亲"]);
    assert!(
        away.contains("李明") && away.contains("陈思涵") && !away.contains("王小雨"),
        "{away}"
    );
    assert!(away.contains("共 2 名学生"), "{away}");
    assert_eq!(s.ok(&["children", "--away", "father"]), away);
    let found = s.ok(&["children", "--search", "小", "--class", CLASS]);
    assert!(
        found.contains("王小雨") && found.contains("共 1 名学生"),
        "{found}"
    );
    let json = s.json(&["children", "--away", "父母"]);
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(
        s.ok(&["children", "--flag", "特困生"]).trim(),
        "没有符合条件的学生。"
    );
    let line = refused(&s, &["children", "--away", "奶奶"]);
    assert!(line.contains("父亲、母亲 或 父母"), "{line}");
    let line = refused(&s, &["children", "--flag", "三好学生"]);
    assert!(line.contains("特困生"), "{line}");
}
