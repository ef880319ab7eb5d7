//! Erasing a child's file (issue 11, point 3) on real stores exchanging bundle files: the
//! office erases, every device drops the child's documents at its next import, nothing of the
//! child's name, ID number or records stays in any store file, WAL or later bundle, and a
//! modified app re-sending the old file is refused. Also the trust rows: only administrators
//! record an erasure, and nobody takes one back. The real hub and device-to-device sync are in
//! `erasure_hub.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use automerge::ROOT;
use automerge::transaction::Transactable;
use shouwang_core::doc::DocId;
use shouwang_core::doc::access::map_at;
use shouwang_core::doc::layout::ERASURES;
use shouwang_core::ids::ChildId;
use shouwang_tests::attack;
use shouwang_tests::fixtures::*;

const NOTE: &str = "说想妈妈了，约好周末视频";
const REASON: &str = "监护人书面申请删除（申请表 2026-031 号）";

/// A valid 身份证号 (GB 11643 check character) of an invented child.
fn id_number() -> String {
    let first = "34032120170305123";
    format!(
        "{first}{}",
        shouwang_core::id_card::check_char(first).unwrap()
    )
}

/// Whether the store file or its WAL holds any of `what`.
fn leaks(d: &Device, what: &[&str]) -> Vec<String> {
    let bytes = raw_store(&d.path());
    what.iter()
        .filter(|w| holds_text(&bytes, w))
        .map(|w| format!("{}: {w}", d.name))
        .collect()
}

/// The child's documents a device still holds.
fn docs_of(d: &mut Device, child: &ChildId) -> Vec<DocId> {
    d.archive
        .store()
        .doc_ids()
        .unwrap()
        .into_iter()
        .filter(|id| id.child() == Some(child))
        .collect()
}

/// Whether a bundle (sealed: opened by a device it is sealed to) carries any document of the
/// child, or any of `what` in its documents.
fn bundle_leaks(opener: &mut Device, bytes: &[u8], child: &ChildId, what: &[&str]) -> bool {
    let b = opener.archive.open_bundle(bytes).unwrap();
    b.entries
        .iter()
        .any(|e| e.doc.child() == Some(child) || what.iter().any(|w| holds_text(&e.data, w)))
}

/// The office, the 班主任 (who holds the private part) and the 爱心妈妈, all holding the child's
/// file with its 身份证号 and a 谈心 of the 爱心妈妈's.
fn three_devices() -> (Device, Device, Device, ChildId, String) {
    let mut admin = school();
    let name = CHILDREN[0].1;
    let id_no = id_number();
    admin
        .archive
        .edit_child(name, "identity", &kv(&[("id_card", &id_no)]))
        .unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    mother.record("谈心", name, "2026-11-18", &[("notes", NOTE)]);
    sync(&mut mother, &mut admin);
    sync(&mut teacher, &mut admin);
    let child = admin.archive.find_child(name).unwrap();
    (admin, teacher, mother, child, id_no)
}

#[test]
fn an_erased_child_leaves_every_device_at_its_next_import_and_no_byte_of_her_stays() {
    let (mut admin, mut teacher, mut mother, child, id_no) = three_devices();
    let (student_no, name) = CHILDREN[0];
    let secrets = [name, id_no.as_str(), student_no, NOTE];
    assert_eq!(
        leaks(&teacher, &secrets).len(),
        4,
        "the 班主任 holds it all"
    );
    assert!(!leaks(&mother, &[name, NOTE]).is_empty());

    let report = admin.archive.erase_child(name, REASON).unwrap();
    assert_eq!(report.child, child);
    assert_eq!(report.purged, 2, "{report:?}");
    assert_eq!(
        report.pairings_ended, 2,
        "爱心妈妈 and 帮扶教师: {report:?}"
    );
    assert!(
        leaks(&admin, &secrets).is_empty(),
        "{:?}",
        leaks(&admin, &secrets)
    );
    // The minimal record is all that is left: the child id, the date, the reason, who.
    let erasures = admin.archive.erasures().unwrap();
    assert_eq!(erasures.len(), 1);
    assert_eq!(erasures[0].child, child);
    assert_eq!(erasures[0].reason, REASON);
    assert_eq!(&erasures[0].by, admin.archive.me_id());
    // Nobody's due work asks for her any more.
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
    let due = admin.archive.due(Some(LOVE_MOTHER), today, true).unwrap();
    assert!(due.is_empty(), "{due:?}");

    for d in [&mut teacher, &mut mother] {
        let news = admin.archive.export_bundle(Some(d.name), None).unwrap();
        assert!(!bundle_leaks(d, &news, &child, &secrets));
        let r = d.archive.import_bundle(&news).unwrap();
        assert!(r.purged >= 1, "{}: {r:?}", d.name);
        assert!(docs_of(d, &child).is_empty(), "{}", d.name);
        assert!(d.archive.find_child(name).is_err());
        assert_eq!(d.archive.erasures().unwrap().len(), 1);
    }
    for d in [&mut admin, &mut teacher, &mut mother] {
        assert!(leaks(d, &secrets).is_empty(), "{:?}", leaks(d, &secrets));
        // Whatever the device exports from now on carries nothing of her.
        let out = d.archive.export_bundle(None, None).unwrap();
        assert!(!bundle_leaks(d, &out, &child, &secrets), "{}", d.name);
    }
    // The others' files are untouched.
    assert!(teacher.archive.find_child(CHILDREN[1].1).is_ok());
}

#[test]
fn a_modified_app_resending_the_erased_file_is_refused_and_nothing_of_it_is_kept() {
    let (mut admin, mut teacher, _mother, child, id_no) = three_devices();
    let name = CHILDREN[0].1;
    let secrets = [name, id_no.as_str(), NOTE];
    // The 班主任's app keeps the file and never imports the news.
    let stale = teacher.archive.export_bundle(None, None).unwrap();
    admin.archive.erase_child(name, REASON).unwrap();

    // By bundle: left out before anything is merged.
    let r = admin.archive.import_bundle(&stale).unwrap();
    assert_eq!(r.dropped, 2, "{r:?}");
    assert!(docs_of(&mut admin, &child).is_empty());

    // Straight into the store's merge, below every scope check: refused from anyone, the
    // reason in Chinese, nothing stored, not even in the quarantine.
    let entries = admin.archive.open_bundle(&stale).unwrap().entries;
    for e in entries.iter().filter(|e| e.doc.child() == Some(&child)) {
        let admission = admin
            .archive
            .store()
            .write(|b| b.merge_bytes(&e.doc, &e.data))
            .unwrap();
        assert!(
            admission.accepted == 0 && admission.refused > 0,
            "{admission:?}"
        );
        let reason = admission.reason.unwrap();
        assert!(reason.contains("已由学校删除"), "{reason}");
    }
    assert!(docs_of(&mut admin, &child).is_empty());
    let quarantined: i64 = admin
        .archive
        .store()
        .conn()
        .query_row(
            "SELECT count(*) FROM quarantine WHERE doc_id LIKE ?1",
            [format!("child/{child}%")],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(quarantined, 0);
    assert!(
        leaks(&admin, &secrets).is_empty(),
        "{:?}",
        leaks(&admin, &secrets)
    );

    // A new change the stale app makes to her file, after the erasure, the same.
    teacher.record("家访", name, "2026-12-01", &[("notes", "奶奶在家")]);
    let again = teacher.archive.export_bundle(None, None).unwrap();
    let r = admin.archive.import_bundle(&again).unwrap();
    assert_eq!(r.dropped, 2, "{r:?}");
    assert!(docs_of(&mut admin, &child).is_empty());
    assert!(
        leaks(&admin, &secrets).is_empty(),
        "{:?}",
        leaks(&admin, &secrets)
    );
}

#[test]
fn erasing_needs_an_administrator_and_a_reason_that_does_not_name_the_child() {
    let (mut admin, mut teacher, _mother, _child, id_no) = three_devices();
    let name = CHILDREN[0].1;
    // Her address, and a grandmother not on the contact card who signed the consent form.
    admin
        .archive
        .edit_child(name, "profile", &kv(&[("address", "红星村三组")]))
        .unwrap();
    admin
        .archive
        .record_consent(
            name,
            &shouwang_core::archive::ConsentInput {
                guardian: "李桂兰".into(),
                relation: "外婆".into(),
                date: "2026-09-01".into(),
                covers: "basic,private".into(),
                form: "TY-2026-017".into(),
            },
        )
        .unwrap();
    // And a withdrawal of part of it, by someone else again.
    admin
        .archive
        .withdraw_consent(
            name,
            &shouwang_core::archive::WithdrawalInput {
                date: "2026-10-08".into(),
                by: "赵桂香".into(),
                covers: "private".into(),
            },
        )
        .unwrap();
    let before = heads(&mut admin);
    let e = teacher
        .archive
        .erase_child(name, REASON)
        .unwrap_err()
        .to_string();
    assert!(e.contains("校长或档案管理员"), "{e}");
    for (reason, expect) in [
        ("  ", "删除原因"),
        (&format!("{name}转学") as &str, "学生的姓名"),
        (&format!("身份证 {id_no} 已注销"), "身份证号"),
        ("转学\u{1b}[31m", "删除原因"),
        ("家住红星村三组，已迁走", "住址"),
        ("外婆李桂兰申请删除", "同意书"),
        ("赵桂香来电要求删除", "撤回同意"),
    ] {
        let e = admin
            .archive
            .erase_child(name, reason)
            .unwrap_err()
            .to_string();
        assert!(e.contains(expect), "{reason}: {e}");
    }
    assert_eq!(
        heads(&mut admin),
        before,
        "a refused erasure writes nothing"
    );
    assert!(admin.archive.find_child(name).is_ok());

    // Once erased, the registry line that would create her file again is refused, whole.
    admin.archive.erase_child(name, REASON).unwrap();
    let before = heads(&mut admin);
    let table: Vec<Vec<String>> = [
        ["学籍号", "姓名", "班级"],
        ["G340321201509", "吴思远", CLASS],
        [CHILDREN[0].0, name, CLASS],
    ]
    .iter()
    .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    let rows = shouwang_core::roster::parse_table(&table).unwrap();
    let e = admin.archive.import_roster(&rows).unwrap_err().to_string();
    assert!(e.contains("第3行") && e.contains("已于"), "{e}");
    assert_eq!(
        heads(&mut admin),
        before,
        "nothing of the roster was written"
    );
}

/// Her 学籍号 is what a roster line brings her back by, whichever number her id was made from:
/// one corrected after her file was made (a typo in the first roster), or one written into a
/// file made from a line that had none. Either, once she is erased, is refused in a later
/// roster, as the number her id was made from is.
#[test]
fn an_erased_child_is_not_brought_back_by_a_number_her_file_got_later() {
    let mut admin = school();
    let (name, other) = (CHILDREN[0].1, CHILDREN[1].1);
    admin
        .archive
        .edit_child(name, "identity", &kv(&[("student_no", "G340321201509")]))
        .unwrap();
    admin
        .archive
        .edit_child(other, "identity", &kv(&[("student_no", "G340321201577")]))
        .unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    for child in [name, other] {
        admin.archive.erase_child(child, REASON).unwrap();
    }
    // The record, with the ids of her other numbers, is taken everywhere; keyed ids only (an
    // unkeyed one gives the 学籍号 back, and every member's device holds the record).
    sync(&mut teacher, &mut admin);
    let school_id = teacher.archive.school_id().clone();
    let erasures = teacher.archive.erasures().unwrap();
    assert_eq!(erasures.len(), 2);
    for no in [
        "G340321201509",
        CHILDREN[0].0,
        "G340321201577",
        CHILDREN[1].0,
    ] {
        let unkeyed = ChildId::before_keyed(&school_id, no);
        assert!(
            erasures
                .iter()
                .all(|e| e.child != unkeyed && !e.also.contains(&unkeyed)),
            "{no} readable from the erasure record"
        );
    }
    for (line, no, child) in [
        (2, "G340321201509", name),
        (2, CHILDREN[0].0, name),
        (2, "G340321201577", other),
    ] {
        let table: Vec<Vec<String>> = [["学籍号", "姓名", "班级"], [no, child, CLASS]]
            .iter()
            .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
            .collect();
        let rows = shouwang_core::roster::parse_table(&table).unwrap();
        let before = heads(&mut admin);
        let e = admin
            .archive
            .import_roster(&rows)
            .expect_err(&format!("{child} came back with {no}"))
            .to_string();
        assert!(
            e.contains(&format!("第{line}行")) && e.contains("已于"),
            "{e}"
        );
        assert_eq!(heads(&mut admin), before);
    }
}

/// The trust rows: a member who does not administer cannot record an erasure (her forged one
/// is refused by the office), and an administrator's change deleting an erasure is refused.
#[test]
fn only_administrators_record_an_erasure_and_nobody_takes_one_back() {
    let (mut admin, _teacher, mut mother, child, _) = three_devices();
    let other = admin.archive.find_child(CHILDREN[1].1).unwrap();
    let forged = attack::forge(&mut mother.archive, &DocId::School, None, |tx| {
        let all = map_at(tx, &ROOT, ERASURES).unwrap();
        let e = tx.put_object(&all, other.as_str(), automerge::ObjType::Map)?;
        tx.put(&e, "reason", "恶意删除")?;
        Ok(())
    });
    let r = mother.export_file("forged");
    let report = admin.import_file(&r);
    assert!(report.refused >= 1, "{report:?}");
    assert!(!attack::holds(&mut admin.archive, &DocId::School, &forged));
    assert!(admin.archive.erasures().unwrap().is_empty());
    assert!(
        !docs_of(&mut admin, &other).is_empty(),
        "nothing was purged"
    );

    // The archivist's device, an administrator's, deletes an erasure below the API.
    let mut archivist = join(&mut admin, "晁月静");
    admin.archive.erase_child(CHILDREN[0].1, REASON).unwrap();
    let news = admin.export_file("news");
    archivist.import_file(&news);
    assert!(docs_of(&mut archivist, &child).is_empty());
    let undo = attack::forge(&mut archivist.archive, &DocId::School, None, |tx| {
        let all = map_at(tx, &ROOT, ERASURES).unwrap();
        tx.delete(&all, child.as_str())?;
        Ok(())
    });
    let back = archivist.export_file("undo");
    let report = admin.import_file(&back);
    assert!(report.refused >= 1, "{report:?}");
    let reason = report.refused_reason.unwrap();
    assert!(reason.contains("不能撤销"), "{reason}");
    assert!(!attack::holds(&mut admin.archive, &DocId::School, &undo));
    assert_eq!(admin.archive.erasures().unwrap().len(), 1);
}

/// A school made by an older build has no `erasures` map in its genesis: the first erasure
/// adds it with the layout upgrade (the same change on every device), which the other devices
/// accept; the erasure then works as in a new school.
#[test]
fn an_old_school_erases_after_its_layout_upgrade() {
    let mut office = old_school_office();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let name = "王小雨";
    let child = office.archive.find_child(name).unwrap();
    assert!(!leaks(&teacher, &[name]).is_empty());
    let report = office.archive.erase_child(name, REASON).unwrap();
    assert_eq!(report.purged, 2, "{report:?}");
    assert!(leaks(&office, &[name]).is_empty());
    let news = office
        .archive
        .export_bundle(Some(HEAD_TEACHER), None)
        .unwrap();
    let r = teacher.archive.import_bundle(&news).unwrap();
    assert_eq!(r.refused, 0, "{r:?}");
    assert!(r.purged >= 1, "{r:?}");
    assert!(docs_of(&mut teacher, &child).is_empty());
    assert!(leaks(&teacher, &[name]).is_empty());
    let school = |d: &mut Device| d.archive.store().heads(&DocId::School).unwrap();
    assert_eq!(school(&mut teacher), school(&mut office));
}

/// An erasure record is made whole, once, and never changed: an administrator's modified app
/// that writes over it (a scalar where the record was) or edits its reason is refused where
/// its file arrives, and the child stays erased on every reading of it. (Deleting it is
/// refused too, above.)
#[test]
fn an_erasure_record_cannot_be_written_over_or_edited() {
    type Edit = fn(&mut automerge::transaction::Transaction<'_>, &str);
    let edits: [(&str, Edit); 2] = [
        ("a scalar over the record", |tx, key| {
            let all = map_at(tx, &ROOT, ERASURES).unwrap();
            tx.put(&all, key, "撤销").unwrap();
        }),
        ("its reason edited", |tx, key| {
            let all = map_at(tx, &ROOT, ERASURES).unwrap();
            let record = map_at(tx, &all, key).unwrap();
            tx.put(&record, "reason", "误删").unwrap();
        }),
    ];
    for (what, edit) in edits {
        let (mut admin, mut teacher, _mother, child, _) = three_devices();
        admin.archive.erase_child(CHILDREN[0].1, REASON).unwrap();
        sync(&mut admin, &mut teacher);
        let key = child.to_string();
        let hash = attack::forge(&mut admin.archive, &DocId::School, None, |tx| {
            edit(tx, &key);
            Ok(())
        });
        let file = admin.export_for("erasure-edit", teacher.archive.me_id().as_str());
        teacher.import_file(&file);
        assert!(
            !attack::holds(&mut teacher.archive, &DocId::School, &hash),
            "{what} was taken"
        );
        let school = teacher.archive.school().unwrap();
        let e = school.erasures.iter().find(|e| e.child == child);
        assert_eq!(e.map(|e| e.reason.as_str()), Some(REASON), "{what}");
    }
}

/// A modified app sends the office a change for the child's staff part that rests on nothing
/// (no such document is stored there: the office keeps none empty), carrying the child's ID
/// number. It is refused, and its bytes are kept in the quarantine for review, for a document
/// the store does not hold. Erasing the child removes them too, and no byte of them stays in
/// the store file or its WAL.
#[test]
fn refused_changes_of_a_document_never_stored_go_with_the_erasure() {
    let (mut admin, _teacher, mother, child, id_no) = three_devices();
    let staff = DocId::Staff(child.clone());
    let mut forged = automerge::Automerge::new().with_actor(mother.archive.device().actor());
    let mut tx = forged.transaction();
    tx.put(ROOT, "planted", id_no.as_str()).unwrap();
    tx.commit();
    let bytes = forged.save();
    let admission = admin
        .archive
        .store()
        .write(|b| b.merge_bytes(&staff, &bytes))
        .unwrap();
    assert_eq!(admission.refused, 1, "{admission:?}");
    assert!(!docs_of(&mut admin, &child).contains(&staff));
    let kept = |d: &mut Device| -> i64 {
        d.archive
            .store()
            .conn()
            .query_row(
                "SELECT count(*) FROM quarantine WHERE doc_id = ?1",
                [staff.key()],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(kept(&mut admin), 1, "kept for review");

    admin.archive.erase_child(CHILDREN[0].1, REASON).unwrap();
    assert_eq!(
        kept(&mut admin),
        0,
        "the refused change outlived the erasure"
    );
    assert!(
        leaks(&admin, &[id_no.as_str()]).is_empty(),
        "{:?}",
        leaks(&admin, &[id_no.as_str()])
    );
}

/// In a school made by an older build, the first erasure adds the layout upgrade, a change
/// that is the same on every device. A 班主任's modified app writes a change under the office's
/// actor resting on that upgrade and hands the office that change alone: automerge sets it
/// aside (the upgrade is not there yet). When the office then erases a child, its own upgrade
/// must not bring the forgery in with it, unjudged, as the office's own write.
#[test]
fn a_change_resting_on_the_layout_upgrade_does_not_come_in_with_the_office_s_own() {
    use shouwang_core::store::Sender;
    use shouwang_core::sync::{Event, Message};

    let mut office = old_school_office();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let file = DocId::School;
    // The modified app: the upgrade on its own copy, then a school name under the office's
    // actor on top of it.
    let upgrade = {
        let doc = teacher.archive.store().doc(&file).unwrap().unwrap();
        shouwang_core::doc::layout_upgrade(&file, doc)
            .unwrap()
            .unwrap()
    };
    let mut forged_doc = teacher.archive.store().doc(&file).unwrap().unwrap().fork();
    forged_doc.apply_changes([upgrade]).unwrap();
    forged_doc.set_actor(attack::actor_of(&office.archive));
    let mut tx = forged_doc.transaction();
    tx.put(ROOT, "name", "伪造的学校").unwrap();
    tx.commit();
    let forged = forged_doc.get_last_local_change().unwrap().clone();

    let device = teacher.archive.device().clone();
    let them = office
        .archive
        .find_member(teacher.archive.me_id().as_str())
        .unwrap();
    let mut session = office
        .archive
        .peer_session(device.as_str(), &them)
        .unwrap()
        .with_sender(Sender::Device {
            device,
            roles: Some(them.roles.clone()),
        });
    let store = office.archive.store();
    session.handle(store, Event::Start).unwrap();
    let frame = Message::Changes(vec![(file.clone(), forged.raw_bytes().to_vec())]).encode();
    let _ = session.handle(store, Event::Frame(&frame));
    drop(session);

    office.archive.erase_child("王小雨", REASON).unwrap();
    assert!(
        !attack::holds(&mut office.archive, &file, &forged.hash()),
        "the forgery came in with the office's upgrade"
    );
}

/// The office of a school made by an older build (`fixtures/old-school`), on a copy.
fn old_school_office() -> Device {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/old-school/office.db");
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::copy(&fixture, dir.path().join("shouwang.db")).unwrap();
    let archive = shouwang_core::Archive::open(&dir.path().join("shouwang.db")).unwrap();
    Device {
        name: "office",
        archive,
        dir,
    }
}
