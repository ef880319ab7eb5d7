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
