//! "A correction purges the old value" (issue 11, point 3): after a wrong 身份证号 and a
//! misspelt name are corrected, the office re-bases the child's file on its current state. Every
//! device replaces its copy (by bundle, and over a device-to-device session on real stores), no
//! store file or WAL holds the old values afterwards, the records keep their authors (who can
//! still edit them), and a modified app re-sending the old history is refused without a trace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::doc::DocId;
use shouwang_core::ids::ChildId;
use shouwang_core::store::Sender;
use shouwang_tests::attack;
use shouwang_tests::fixtures::*;

const OLD_NAME: &str = CHILDREN[0].1; // 王小雨, registered with a typo
const NEW_NAME: &str = "王晓雨";
const NOTE: &str = "奶奶在家，作业按时完成";

fn id_number(seq: &str) -> String {
    let first = format!("340321201703051{seq}");
    format!(
        "{first}{}",
        shouwang_core::id_card::check_char(&first).unwrap()
    )
}

/// Which of `what` the device still holds: in the raw store file or its WAL, or (since
/// automerge deflates large changes, where a raw search sees nothing) in the decoded
/// operations of any change of any document it holds.
fn leaks(d: &mut Device, what: &[&str]) -> Vec<String> {
    let bytes = raw_store(&d.path());
    let mut history = String::new();
    let store = d.archive.store();
    for id in store.doc_ids().unwrap() {
        for c in store.doc(&id).unwrap().unwrap().get_changes(&[]) {
            history.push_str(&format!("{:?}", c.decode()));
        }
    }
    what.iter()
        .filter(|w| holds_text(&bytes, w) || history.contains(*w))
        .map(|w| format!("{}: {w}", d.name))
        .collect()
}

/// The office, the 班主任 (private part included) and the 爱心妈妈, each holding the file with
/// the wrong ID number and name in its history and the right ones in its current state; the
/// 班主任 has written a 家访.
fn corrected() -> (Device, Device, Device, ChildId, String, String, String) {
    let mut admin = school();
    let wrong = id_number("23");
    let right = id_number("24");
    admin
        .archive
        .edit_child(OLD_NAME, "identity", &kv(&[("id_card", &wrong)]))
        .unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let visit = teacher.record("家访", OLD_NAME, "2026-11-20", &[("notes", NOTE)]);
    sync(&mut teacher, &mut admin);
    admin
        .archive
        .edit_child(OLD_NAME, "identity", &kv(&[("id_card", &right)]))
        .unwrap();
    admin
        .archive
        .edit_child(OLD_NAME, "profile", &kv(&[("name", NEW_NAME)]))
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut mother, &mut admin);
    let child = admin.archive.find_child(NEW_NAME).unwrap();
    (admin, teacher, mother, child, wrong, right, visit)
}

#[test]
fn a_rebased_file_replaces_every_copy_and_the_old_values_leave_every_store() {
    let (mut admin, mut teacher, mut mother, child, wrong, right, visit) = corrected();
    let old = [OLD_NAME, wrong.as_str()];
    assert_eq!(
        leaks(&mut teacher, &old).len(),
        2,
        "the history holds the old values"
    );
    assert_eq!(leaks(&mut admin, &old).len(), 2);
    // The 班主任's app that kept the old history, for later.
    let stale = teacher.archive.export_bundle(None, None).unwrap();

    let report = admin
        .archive
        .rebase_child(NEW_NAME, "更正身份证号和姓名")
        .unwrap();
    assert_eq!(report.documents, 2, "{report:?}");
    assert_eq!(
        admin.archive.purge_out_of_scope().unwrap(),
        0,
        "the new generation is kept"
    );
    assert!(
        leaks(&mut admin, &old).is_empty(),
        "{:?}",
        leaks(&mut admin, &old)
    );
    assert_eq!(
        leaks(&mut admin, &[right.as_str(), NEW_NAME, NOTE]).len(),
        3,
        "the current state stays"
    );
    let file = admin.archive.child_file(NEW_NAME).unwrap();
    assert_eq!(file.records.len(), 1);
    assert_eq!(
        file.records[0].meta.author.as_str(),
        teacher.archive.me_id().as_str()
    );

    // The 爱心妈妈 by bundle.
    let news = admin
        .archive
        .export_bundle(Some(LOVE_MOTHER), None)
        .unwrap();
    mother.archive.import_bundle(&news).unwrap();
    assert!(
        leaks(&mut mother, &old).is_empty(),
        "{:?}",
        leaks(&mut mother, &old)
    );
    assert_eq!(mother.file(NEW_NAME).name, NEW_NAME);

    // The 班主任 over a direct session with the office's device.
    let them = admin
        .archive
        .find_member(teacher.archive.me_id().as_str())
        .unwrap();
    let office = teacher
        .archive
        .find_member(admin.archive.me_id().as_str())
        .unwrap();
    let sa = admin
        .archive
        .peer_session(teacher.archive.device().as_str(), &them)
        .unwrap()
        .with_sender(Sender::Device {
            device: teacher.archive.device().clone(),
            roles: Some(them.roles.clone()),
        });
    let st = teacher
        .archive
        .peer_session(admin.archive.device().as_str(), &office)
        .unwrap();
    let (_, _, delivered) =
        attack::pump_delivering(&mut admin.archive, sa, &mut teacher.archive, st);
    // The whole new generation went to her: a delivery the hub checks and logs like any other.
    for doc in [DocId::Child(child.clone()), DocId::Private(child.clone())] {
        assert!(delivered.contains(&doc), "{doc:?} not in {delivered:?}");
    }
    teacher.archive.purge_out_of_scope().unwrap();
    assert!(
        leaks(&mut teacher, &old).is_empty(),
        "{:?}",
        leaks(&mut teacher, &old)
    );
    assert_eq!(
        leaks(&mut teacher, &[right.as_str(), NEW_NAME, NOTE]).len(),
        3
    );

    // The records keep their author: the 班主任 edits her 家访, the office takes it.
    teacher
        .archive
        .edit_record(
            &visit,
            None,
            &kv(&[("notes", "奶奶在家，作业按时完成，字写得工整")]),
        )
        .unwrap();
    let back = teacher.export_file("after");
    let r = admin.import_file(&back);
    assert_eq!(r.refused, 0, "{r:?}");
    let file = admin.archive.child_file(NEW_NAME).unwrap();
    assert!(format!("{:?}", file.records[0]).contains("字写得工整"));
    // And the 爱心妈妈's new 谈心 on the new generation is taken too.
    mother.record("谈心", NEW_NAME, "2026-12-01", &[("notes", "说想妈妈了")]);
    let r = admin.import_file(&mother.export_file("after"));
    assert_eq!(r.refused, 0, "{r:?}");

    // The old history sent again is refused and leaves nothing behind.
    let r = admin.archive.import_bundle(&stale).unwrap();
    assert!(r.refused > 0, "{r:?}");
    assert!(r.refused_reason.unwrap().contains("已由学校重建"));
    assert!(
        leaks(&mut admin, &old).is_empty(),
        "{:?}",
        leaks(&mut admin, &old)
    );
    for d in [&mut admin, &mut teacher] {
        let ids = d.archive.store().doc_ids().unwrap();
        assert!(ids.contains(&DocId::Private(child.clone())), "{}", d.name);
    }
}
