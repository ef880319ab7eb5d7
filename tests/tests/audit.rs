//! The access log (issue 11, point 2): opening a private part and exporting a file are
//! recorded on the device, reach the office with the device's next file, and cannot be edited
//! or dropped: a modified app's deletion is refused where it arrives, and an entry altered in
//! the device's own store breaks the chain, which the log reports.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use automerge::ReadDoc;
use automerge::transaction::Transactable;
use common::*;
use shouwang_core::archive::audit_kind;
use shouwang_core::doc::DocId;
use shouwang_tests::attack;

/// 1. The 班主任 opens a child's file (private part included) with a reason and exports her
///    week; the office imports it and lists both, with the reason, the chain intact.
#[test]
fn story_1_private_views_and_exports_are_recorded_and_reach_the_office() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let file = teacher
        .archive
        .child_file_for(CHILDREN[0].1, Some("准备家访"))
        .unwrap();
    assert!(file.private_shown);
    let week = teacher.export_file("week");
    let own = teacher.archive.audit_log().unwrap();
    let count = |log: &shouwang_core::archive::AuditLog, what: &str| {
        log.entries.iter().filter(|e| e.what == what).count()
    };
    assert_eq!(count(&own, audit_kind::PRIVATE_VIEW), 1, "{own:?}");
    let exports = count(&own, audit_kind::BUNDLE_EXPORT);
    admin.import_file(&week);
    let log = admin.archive.audit_log().unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    let view = log
        .entries
        .iter()
        .find(|e| e.what == audit_kind::PRIVATE_VIEW)
        .expect("the view reached the office");
    assert_eq!(view.target, child.as_str());
    assert_eq!(view.why.as_deref(), Some("准备家访"));
    assert_eq!(view.member, teacher.archive.me_id().as_str());
    // The export is recorded before the file is sealed: it travels in the file itself.
    assert_eq!(count(&log, audit_kind::BUNDLE_EXPORT), exports);
    // A 爱心妈妈 opening her child's shared file sees no private part, and nothing is logged.
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let f = mother.archive.child_file(CHILDREN[0].1).unwrap();
    assert!(!f.private_shown);
    let hers = mother.archive.audit_log().unwrap();
    assert_eq!(count(&hers, audit_kind::PRIVATE_VIEW), 0, "{hers:?}");
}

/// 2. A modified app deletes its own log entry and the deletion travels in its next file: the
///    office refuses it and keeps the entry. An entry altered in place in the device's own
///    store (below the API) breaks the chain, and the log says so.
#[test]
fn story_2_the_log_cannot_be_edited_or_dropped() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    teacher.archive.child_file(CHILDREN[0].1).unwrap();
    let first = teacher.export_file("first");
    admin.import_file(&first);
    let audit = DocId::Audit(teacher.archive.device().clone());
    attack::forge(&mut teacher.archive, &audit, None, |tx| {
        let entries = tx.get(automerge::ROOT, "entries")?.unwrap().1;
        tx.delete(&entries, "00000001")?;
        Ok(())
    });
    let forged = teacher.export_file("forged");
    let report = admin.import_file(&forged);
    assert!(report.refused >= 1, "{report:?}");
    let log = admin.archive.audit_log().unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    assert!(
        log.entries
            .iter()
            .any(|e| e.seq == 1 && e.device == teacher.archive.device().as_str())
    );

    // Altered in place on the device itself (a modified app writing its own store): the
    // chain no longer holds, and the log says so.
    attack::forge(&mut teacher.archive, &audit, None, |tx| {
        let entries = tx.get(automerge::ROOT, "entries")?.unwrap().1;
        let first = tx.get(&entries, "00000002")?.unwrap().1;
        tx.put(&first, "target", "别的学生")?;
        Ok(())
    });
    let log = teacher.archive.audit_log().unwrap();
    assert!(
        log.problems.iter().any(|p| p.contains("被改动")),
        "{:?}",
        log.problems
    );
}

/// 3. A report is logged with the command that made it, and the log is append-only and
///    outlives an erasure: the child's name, 学籍号 and any 身份证号 typed in the command are
///    taken out before it is written (the office still sees who ran which report, for how
///    many children).
#[test]
fn story_3_a_report_command_is_logged_without_what_names_a_child() {
    let mut admin = school();
    let (no, name) = CHILDREN[0];
    let id_card = "34052120170305002X";
    let command = format!(
        "report child --child {name} --student-no {no} --id {id_card} --out {name}的档案.xlsx"
    );
    admin.archive.log_report(&command, 1).unwrap();
    let log = admin.archive.audit_log().unwrap();
    let entry = log
        .entries
        .iter()
        .find(|e| e.what == audit_kind::REPORT)
        .expect("the report is logged");
    for secret in [name, no, id_card, "340521"] {
        assert!(
            !entry.target.contains(secret),
            "{secret} in {}",
            entry.target
        );
    }
    assert!(
        entry.target.starts_with("report child --child ＊"),
        "{}",
        entry.target
    );
    assert!(entry.target.contains("1 名学生"), "{}", entry.target);
}

/// 3b. One child's 六项基本档案, built as a report (the CLI's `report child`, the office
///     console's download), holds her private part and, with a reason, her ID number in full:
///     it is logged against that child, as opening her file or showing her ID number is, so
///     the office's 查阅记录 for her lists it. (Before, the only entries were the report's
///     command with the child's name taken out and an ID reveal naming the report: nothing
///     said whose file it was.)
#[test]
fn story_3b_one_child_s_report_is_logged_against_her() {
    use shouwang_core::reports::ReportOptions;

    let mut admin = school();
    let name = CHILDREN[0].1;
    let child = admin.archive.find_child(name).unwrap();
    let against_her = |admin: &mut Device, what: &str| {
        admin
            .archive
            .audit_log()
            .unwrap()
            .entries
            .iter()
            .filter(|e| e.what == what && e.target == child.as_str())
            .count()
    };
    let opts = ReportOptions {
        child: Some(name.into()),
        ..ReportOptions::default()
    };
    admin.archive.report("child", &opts).unwrap();
    assert_eq!(against_her(&mut admin, audit_kind::PRIVATE_VIEW), 1);
    let revealed = ReportOptions {
        reveal_ids: Some("上报教育局".into()),
        ..opts
    };
    admin.archive.report("child", &revealed).unwrap();
    assert_eq!(against_her(&mut admin, audit_kind::PRIVATE_VIEW), 2);
    assert_eq!(against_her(&mut admin, audit_kind::ID_REVEAL), 1);
}

/// 4. A reason typed for opening a file or showing an ID number goes into the log, which
///    outlives an erasure: a child's name, 学籍号 or an ID number in it is taken out before it
///    is written (not refused: a refusal would tell a member which names are children of the
///    school); the rest is kept as typed.
#[test]
fn story_4_a_reason_is_logged_without_what_names_a_child() {
    let mut admin = school();
    let (no, name) = CHILDREN[0];
    for why in [
        format!("为{name}办营养餐补助"),
        format!("核对{no}"),
        format!("核对{}", CHILDREN[1].1),
        "核对34052120170305002X".to_owned(),
    ] {
        let file = admin.archive.reveal_id(name, &why).unwrap();
        assert_eq!(file.name, name);
        admin.archive.child_file_for(name, Some(&why)).unwrap();
        let log = admin.archive.audit_log().unwrap();
        for entry in log.entries.iter().rev().take(2) {
            let logged = entry.why.as_deref().unwrap_or_default();
            assert!(logged.contains('＊'), "{why}: {logged}");
            for secret in [name, no, CHILDREN[1].1, "34052120170305002X"] {
                assert!(!logged.contains(secret), "{secret} in {logged}");
            }
        }
    }
    admin.archive.reveal_id(name, "办理营养餐补助").unwrap();
    let log = admin.archive.audit_log().unwrap();
    assert_eq!(
        log.entries.last().and_then(|e| e.why.as_deref()),
        Some("办理营养餐补助")
    );
}

/// 4b. A reason about one child (her ID number shown, her file opened) also loses what else
///     names her or her family: her given name, her guardian's name, her address, as her file
///     holds them. The member may see that file, so nothing is told by taking them out.
#[test]
fn story_4b_a_reason_about_one_child_is_logged_without_her_family_or_address() {
    let mut admin = school();
    let name = CHILDREN[0].1;
    admin
        .archive
        .edit_child(name, "profile", &kv(&[("address", "红星村三组")]))
        .unwrap();
    // A place of two characters names nobody: kept.
    admin
        .archive
        .edit_child(name, "father", &kv(&[("work_place", "广东")]))
        .unwrap();
    let given: String = name.chars().skip(1).collect();
    let why = format!("{given}的奶奶王秀英来电，核对红星村三组的住址（父亲在广东）");
    admin.archive.reveal_id(name, &why).unwrap();
    admin.archive.child_file_for(name, Some(&why)).unwrap();
    let log = admin.archive.audit_log().unwrap();
    for entry in log.entries.iter().rev().take(2) {
        let logged = entry.why.as_deref().unwrap_or_default();
        for secret in [given.as_str(), "王秀英", "红星村三组"] {
            assert!(!logged.contains(secret), "{secret} in {logged}");
        }
        assert!(
            logged.contains("来电") && logged.contains("住址") && logged.contains("广东"),
            "{logged}"
        );
    }
}

/// 5. Two connections of one device log at the same moment (the hub's archives serving two
///    office staff on the console, the CLI beside the app): every entry is kept, each with its
///    own number, the chain intact, and the office takes all of them. (Each connection read
///    the last number before its write: both wrote the same next one, the second over the
///    first, and every other device refused the overwrite and each entry after it.)
#[test]
fn story_5_two_connections_logging_at_once_keep_every_entry() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let path = teacher.path();
    const EACH: usize = 40;
    let writers: Vec<_> = (0..2)
        .map(|n| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut a = shouwang_core::Archive::open(&path).unwrap();
                for i in 0..EACH {
                    a.log_report(&format!("shouwang children --json #{n}-{i}"), 40)
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let own = teacher.archive.audit_log().unwrap();
    let reports = |log: &shouwang_core::archive::AuditLog| {
        log.entries
            .iter()
            .filter(|e| e.what == audit_kind::REPORT)
            .count()
    };
    assert!(own.problems.is_empty(), "{:?}", own.problems);
    assert_eq!(reports(&own), 2 * EACH);
    let week = teacher.export_file("week");
    admin.import_file(&week);
    let log = admin.archive.audit_log().unwrap();
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    assert_eq!(reports(&log), 2 * EACH);
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
}
