//! Due work and compliance over fixtures spanning weeks, with records that arrive late from
//! other devices and devices whose clocks are wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failure

mod common;

use chrono::NaiveDate;
use common::*;
use shouwang_core::due::{DueItem, Rule, Status};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Monday 2026-11-23; the previous week is 11-16..11-22.
const TODAY: &str = "2026-11-23";

fn find<'a>(items: &'a [DueItem], rule: Rule, child: Option<&str>) -> Vec<&'a DueItem> {
    items
        .iter()
        .filter(|i| i.rule == rule && child.is_none_or(|c| i.child_name.as_deref() == Some(c)))
        .collect()
}

#[test]
fn a_teachers_week_of_home_visits_goes_from_overdue_to_done() {
    let mut admin = school();
    let mut teacher = join(&mut admin, PAIRING_TEACHER);
    // Last week: one visit of the two required.
    teacher.record(
        "家访",
        "王小雨",
        "2026-11-18",
        &[("notes", "奶奶在家，孩子在写作业")],
    );
    let due = teacher.archive.due(None, d(TODAY), false).unwrap();
    let visits = find(&due, Rule::HomeVisits, None);
    assert_eq!(visits.len(), 2, "{visits:?}");
    assert_eq!(visits[0].status, Status::Overdue);
    assert_eq!((visits[0].done, visits[0].required), (1, 2));
    assert_eq!(visits[0].period.start, d("2026-11-16"));
    assert_eq!(visits[1].status, Status::Due);
    assert_eq!(visits[1].period.start, d("2026-11-23"));
    // A second visit last week, entered today (late): nothing overdue any more.
    teacher.record(
        "家访",
        "赵子涵",
        "2026-11-21",
        &[("notes", "补记：周六去了赵家")],
    );
    let due = teacher.archive.due(None, d(TODAY), false).unwrap();
    let visits = find(&due, Rule::HomeVisits, None);
    assert_eq!(visits.len(), 1);
    assert_eq!(visits[0].status, Status::Due);
    // Voiding one of them makes last week overdue again.
    let f = teacher.file("赵子涵");
    teacher
        .archive
        .void_record(&f.records[0].meta.id.0, "录错了学生")
        .unwrap();
    let due = teacher.archive.due(None, d(TODAY), false).unwrap();
    assert_eq!(
        find(&due, Rule::HomeVisits, None)[0].status,
        Status::Overdue
    );
}

#[test]
fn a_love_mothers_talks_arrive_late_and_count_for_the_week_they_happened() {
    let mut admin = school();
    let mut mother = join(&mut admin, LOVE_MOTHER);
    // She talked with her child last Wednesday, in a village with no signal.
    mother.record(
        "谈心",
        "王小雨",
        "2026-11-18",
        &[("notes", "说起爸爸过年回来")],
    );
    // The school office has not seen it yet: her weekly talk is overdue there.
    let due = admin
        .archive
        .due(Some(LOVE_MOTHER), d(TODAY), false)
        .unwrap();
    let talks = find(&due, Rule::LoveMotherTalks, Some("王小雨"));
    assert_eq!(talks[0].status, Status::Overdue);
    // Her bundle arrives days later.
    let f = mother.export_file("week");
    admin.import_file(&f);
    let due = admin
        .archive
        .due(Some(LOVE_MOTHER), d(TODAY), false)
        .unwrap();
    let talks = find(&due, Rule::LoveMotherTalks, Some("王小雨"));
    assert_eq!(talks.len(), 1);
    assert_eq!(talks[0].status, Status::Due);
    assert_eq!(talks[0].period.start, d("2026-11-23"));
}

#[test]
fn a_phone_with_a_wrong_clock_cannot_make_work_due_or_done() {
    let mut admin = school();
    let mut counsellor = join(&mut admin, COUNSELLOR);
    // The counsellor's phone thinks it is 2015.
    counsellor
        .archive
        .store()
        .set_clock_skew(-11 * 365 * 24 * 3600 * 1000);
    counsellor.record(
        "走访",
        "孙浩然",
        "2026-11-05",
        &[("notes", "第一次走访"), ("help", "送去冬衣")],
    );
    counsellor.record("走访", "孙浩然", "2026-11-19", &[("notes", "第二次走访")]);
    let f = counsellor.export_file("visits");
    admin.import_file(&f);
    let due = admin
        .archive
        .due(Some(COUNSELLOR), d("2026-11-25"), true)
        .unwrap();
    let visits = find(&due, Rule::CounsellorVisits, Some("孙浩然"));
    let november = visits
        .iter()
        .find(|v| v.period.start == d("2026-11-01"))
        .unwrap();
    assert_eq!(november.status, Status::Done);
    assert_eq!(november.done, 2);
    // October had none: overdue.
    let october = visits
        .iter()
        .find(|v| v.period.start == d("2026-10-01"))
        .unwrap();
    assert_eq!(october.status, Status::Overdue);
    // In the file the records are ordered by the date they happened, not the wrong clock.
    let file = admin.file("孙浩然");
    let dates: Vec<&str> = file
        .records
        .iter()
        .map(|r| r.meta.happened_on.as_str())
        .collect();
    assert_eq!(dates, ["2026-11-05", "2026-11-19"]);
    assert!(
        file.records[0].meta.written_at < 1_500_000_000_000,
        "the clock really was wrong"
    );
}

#[test]
fn head_teacher_talks_and_parent_calls_per_child() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    teacher.record("谈心", "王小雨", "2026-11-03", &[("notes", "月初谈心")]);
    teacher.record(
        "电话记录",
        "王小雨",
        "2026-11-20",
        &[("with_whom", "母亲"), ("notes", "汇报期中考试进步")],
    );
    let due = teacher.archive.due(None, d(TODAY), false).unwrap();
    // Talks: 王小雨 is done for November; the other three children are due this month.
    let talks = find(&due, Rule::HeadTeacherTalks, None);
    assert!(
        talks
            .iter()
            .all(|t| t.child_name.as_deref() != Some("王小雨") || t.status == Status::Overdue)
    );
    let this_month: Vec<_> = talks.iter().filter(|t| t.status == Status::Due).collect();
    assert_eq!(this_month.len(), 3);
    // Parent calls: one fortnight window; 王小雨 is covered in the current one.
    let calls = find(&due, Rule::ParentContact, Some("王小雨"));
    assert!(
        calls.iter().all(|c| c.status == Status::Overdue),
        "{calls:?}"
    );
    // Rule settings are the school's: turning the call rule off removes the duty.
    admin.archive.set_rule("parent_contact_days", "0").unwrap();
    sync(&mut admin, &mut teacher);
    let due = teacher.archive.due(None, d(TODAY), false).unwrap();
    assert!(find(&due, Rule::ParentContact, None).is_empty());
}

#[test]
fn compliance_over_six_weeks_counts_complete_weeks_only() {
    let mut admin = school();
    let mut teacher = join(&mut admin, PAIRING_TEACHER);
    let mut head = join(&mut admin, HEAD_TEACHER);
    // Weeks starting Mondays 10-12 .. 11-16. Pairing teacher: 2,2,1,2,0,2 visits → 4 of 6 met.
    let plan = [
        ("2026-10-12", 2),
        ("2026-10-19", 2),
        ("2026-10-26", 1),
        ("2026-11-02", 2),
        ("2026-11-09", 0),
        ("2026-11-16", 2),
    ];
    for (monday, n) in plan {
        for i in 0..n {
            let day = d(monday) + chrono::Days::new(i);
            teacher.record("家访", "赵子涵", &day.to_string(), &[("notes", "例行家访")]);
        }
    }
    // Head teacher: 2 visits every week → 6 of 6.
    for (monday, _) in plan {
        for i in 0..2 {
            let day = d(monday) + chrono::Days::new(2 + i);
            head.record("家访", "周欣怡", &day.to_string(), &[("notes", "例行家访")]);
        }
    }
    for dev in [&mut teacher, &mut head] {
        let f = dev.export_file("weeks");
        admin.import_file(&f);
    }
    // Range 10-12 .. 11-22 holds six complete weeks; a range ending mid-week drops that week.
    let rows = admin
        .archive
        .compliance(d("2026-10-12"), d("2026-11-22"))
        .unwrap();
    let visits = rows.iter().find(|r| r.rule == Rule::HomeVisits).unwrap();
    assert_eq!((visits.met, visits.obligations), (10, 12));
    assert!((visits.percent() - 83.333).abs() < 0.01);
    let rows = admin
        .archive
        .compliance(d("2026-10-12"), d("2026-11-20"))
        .unwrap();
    let visits = rows.iter().find(|r| r.rule == Rule::HomeVisits).unwrap();
    assert_eq!((visits.met, visits.obligations), (8, 10));
    assert!(
        admin
            .archive
            .compliance(d("2026-11-20"), d("2026-11-01"))
            .is_err()
    );
    // A range no report needs (an app passing its widest dates) is refused, not counted week
    // by week for a century while the archive waits.
    let e = admin
        .archive
        .compliance(d("1990-01-01"), d("2099-12-31"))
        .unwrap_err();
    assert!(e.to_string().contains("日期范围"), "{e}");
    assert!(
        admin
            .archive
            .compliance(d("2025-09-01"), d("2026-08-31"))
            .is_ok(),
        "a school year"
    );
}
