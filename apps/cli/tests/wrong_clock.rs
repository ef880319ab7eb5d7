//! A wrong clock (issue 12, point 4), on the real binary run under libfaketime: a phone whose
//! clock is ten years behind (before the app existed) cannot tell what today is, so it takes
//! the date the person entered and warns that the clock is wrong; one ten years ahead takes
//! records with the right date and warns; with the clock right again there is no warning,
//! every record is there, and a date after today is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::process::{Command, Output};

use common::{School, assert_one_chinese_error, stdout};

/// Runs the binary on the school's store with its clock moved by `offset` (libfaketime's
/// relative form, e.g. `-3650d`).
fn at(s: &School, offset: &str, args: &[&str]) -> Output {
    Command::new("faketime")
        .arg("-f")
        .arg(offset)
        .arg(common::BIN)
        .arg("--store")
        .arg(&s.store)
        .args(args)
        .env_remove("SHOUWANG_STORE")
        .output()
        .expect("faketime is installed by scripts/setup.sh")
}

fn talk(date: &str, notes: &str) -> Vec<String> {
    [
        "record",
        "谈心",
        "--child",
        "王小雨",
        "--date",
        date,
        "--field",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("notes={notes}")])
    .collect()
}

#[test]
fn a_clock_ten_years_off_is_named_and_breaks_nothing() {
    let s = School::new();
    let today = chrono::Local::now().date_naive().to_string();
    let first = talk(&today, "时钟正常时的谈心");
    s.ok(&first.iter().map(String::as_str).collect::<Vec<_>>());

    // Ten years behind: the record is taken (the date entered is what counts) and the clock
    // is named as wrong where the person looks at their work.
    let args = talk(&today, "时钟慢了十年");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = at(&s, "-3650d", &args);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let o = at(&s, "-3650d", &["due"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(stdout(&o).contains("明显不对"), "{}", stdout(&o));

    // Ten years ahead: due work warns; a record with the right date is still taken.
    let o = at(&s, "+3650d", &["due"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(stdout(&o).contains("晚了一年以上"), "{}", stdout(&o));
    let args = talk(&today, "时钟快了十年");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = at(&s, "+3650d", &args);
    assert!(o.status.success(), "{}", common::stderr(&o));

    // The clock set right: no warning, both records there, in the order of their dates.
    let due = s.ok(&["due"]);
    assert!(
        !due.contains("时间可能不对") && !due.contains("明显不对"),
        "{due}"
    );
    let file = s.ok(&["child", "show", "王小雨"]);
    for note in ["时钟正常时的谈心", "时钟慢了十年", "时钟快了十年"] {
        assert!(file.contains(note), "{note}: {file}");
    }
    // With a clock that can be trusted, a date after today is refused and nothing is written.
    let before = s.bytes();
    let tomorrow = (chrono::Local::now().date_naive() + chrono::Days::new(2)).to_string();
    let args = talk(&tomorrow, "明天的谈心");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = at(&s, "+0d", &args);
    let line = assert_one_chinese_error(&o, &args);
    assert!(
        line.contains("晚于今天") && line.contains("手机时间"),
        "{line}"
    );
    assert!(s.bytes() == before, "the refused record changed the store");
}

/// `shouwang --store <store> <args>` with the clock moved by `offset`. The monotonic clock is
/// left alone (libfaketime would move it too): only the wall clock of a phone is ever wrong.
fn phone_at(store: &std::path::Path, offset: &str, args: &[&str]) -> Output {
    Command::new("faketime")
        .arg("-f")
        .arg(offset)
        .arg(common::BIN)
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("SHOUWANG_STORE")
        .env("DONT_FAKE_MONOTONIC", "1")
        .output()
        .expect("faketime is installed by scripts/setup.sh")
}

/// The hub's copy of 王小雨's file, as text.
fn at_hub(dir: &std::path::Path) -> String {
    let data = shouwang_relay::server::DataDir::new(dir.join("hub"));
    let mut archive = data.open_archive().unwrap();
    format!("{:?}", archive.child_file("王小雨").unwrap())
}

#[test]
fn a_phone_whose_clock_is_ten_years_off_still_syncs_and_the_hub_judges_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    common::hub::init_school(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = common::hub::start(&rt, dir.path());
    let phone = dir.path().join("teacher.db");
    common::hub::join(
        &server,
        &phone,
        common::TEACHER,
        shouwang_core::roles::Role::HeadTeacher,
    );
    let today = chrono::Local::now().date_naive().to_string();

    for (offset, note) in [
        ("-3650d", "手机时间慢了十年时的谈心"),
        ("+3650d", "手机时间快了十年时的谈心"),
    ] {
        let args = talk(&today, note);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = phone_at(&phone, offset, &args);
        assert!(o.status.success(), "{offset}: {}", common::stderr(&o));
        // The hub checks the certificate against its own clock: the phone's does not matter.
        let o = phone_at(&phone, offset, &["sync"]);
        assert!(o.status.success(), "{offset}: {}", common::stderr(&o));
        assert!(
            at_hub(dir.path()).contains(note),
            "{offset}: not on the hub"
        );
        // Where the phone shows its own certificate, it says its clock is wrong rather than
        // that the certificate expired (or is not valid yet).
        let o = phone_at(&phone, offset, &["status"]);
        assert!(o.status.success(), "{offset}: {}", common::stderr(&o));
        let status = stdout(&o);
        assert!(
            status.contains("时间") && status.contains("不对"),
            "{offset}: {status}"
        );
        assert!(!status.contains("证书已过期"), "{offset}: {status}");
    }
    // The clock right again: nothing pending, no warning.
    let status = stdout(&phone_at(&phone, "+0d", &["status"]));
    assert!(status.contains("学校服务器已有本机的全部内容"), "{status}");
    assert!(!status.contains("不对"), "{status}");
    drop(server);
}
