//! Merge semantics, told as numbered stories. Devices are real stores in their own directories
//! and exchange real bundle files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failure

mod common;

use automerge::transaction::Transactable;
use automerge::{ObjType, ROOT, ReadDoc};
use common::*;
use shouwang_core::archive::MayResolve;
use shouwang_core::doc::DocId;
use shouwang_core::ids::ChildId;

const CHILD: &str = "王小雨";

/// 1. The 班主任 updates the guardian's health while the 爱心妈妈 records where the father works:
///    different fields, both kept, no conflict.
#[test]
fn story_1_different_fields_are_both_kept() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    news(&mut admin, &mut teacher);
    teacher
        .archive
        .edit_child(CHILD, "guardian", &kv(&[("address", "丁里镇郭庄村六组")]))
        .unwrap();
    // (The parents' employers and the guardian's health are in the staff part, which she
    // does not hold: she edits what a carer needs.)
    mother
        .archive
        .edit_child(
            CHILD,
            "father",
            &kv(&[("name", "王建国"), ("phone", "13905640123")]),
        )
        .unwrap();
    sync(&mut teacher, &mut mother);
    for d in [&mut teacher, &mut mother] {
        let f = d.file(CHILD);
        assert_eq!(field(&f, "guardian", "address"), Some("丁里镇郭庄村六组"));
        assert_eq!(field(&f, "father", "name"), Some("王建国"));
        assert_eq!(field(&f, "father", "phone"), Some("13905640123"));
        assert!(f.conflicts.is_empty(), "{:?}", f.conflicts);
    }
    let (t, m) = heads_in_common(&mut teacher, &mut mother);
    assert!(m.len() >= 2, "{m:?}"); // the school and the child's care file
    assert_eq!(t, m);
}

/// 2. Both change the grandmother's phone while apart: both numbers are kept and listed as a
///    conflict; the 班主任 picks one; the resolution itself merges to the other device. Two
///    different resolutions made apart are themselves a conflict again, never a silent loss.
#[test]
fn story_2_same_field_conflict_is_listed_and_resolved() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    news(&mut admin, &mut teacher);
    teacher
        .archive
        .edit_child(CHILD, "guardian", &kv(&[("phone", "13800001111")]))
        .unwrap();
    mother
        .archive
        .edit_child(CHILD, "监护人", &kv(&[("电话", "13900002222")]))
        .unwrap();
    // Her own edit marks no document as holding a conflict; the merge does, on both sides.
    assert_eq!(conflicted(&mut mother), Vec::<DocId>::new());
    sync(&mut teacher, &mut mother);
    let child = DocId::Child(teacher.archive.find_child(CHILD).unwrap());
    for d in [&mut teacher, &mut mother] {
        assert_eq!(conflicted(d), vec![child.clone()]);
        let f = d.file(CHILD);
        assert_eq!(f.conflicts.len(), 1, "{:?}", f.conflicts);
        let (doc, c) = &f.conflicts[0];
        assert!(doc.starts_with("child/") && !doc.ends_with("private"));
        assert_eq!(c.dotted(), "guardian.phone");
        assert_eq!(c.label, "监护人·电话");
        let mut values = c.values.clone();
        values.sort();
        assert_eq!(values, ["13800001111", "13900002222"]);
    }
    // The teacher picks the 爱心妈妈's number.
    let f = teacher.file(CHILD);
    let pick = f.conflicts[0]
        .1
        .values
        .iter()
        .position(|v| v == "13900002222")
        .unwrap()
        + 1;
    teacher
        .archive
        .resolve(CHILD, "guardian.phone", Some(pick), None)
        .unwrap();
    assert!(teacher.file(CHILD).conflicts.is_empty());
    assert_eq!(conflicted(&mut teacher), Vec::<DocId>::new(), "resolved");
    sync(&mut teacher, &mut mother);
    for d in [&mut teacher, &mut mother] {
        assert_eq!(conflicted(d), Vec::<DocId>::new());
        let f = d.file(CHILD);
        assert!(f.conflicts.is_empty());
        assert_eq!(field(&f, "guardian", "phone"), Some("13900002222"));
    }
    // Apart again, each sets a different number: a new conflict between the two resolutions.
    teacher
        .archive
        .edit_child(CHILD, "guardian", &kv(&[("phone", "13700003333")]))
        .unwrap();
    mother
        .archive
        .edit_child(CHILD, "guardian", &kv(&[("phone", "13600004444")]))
        .unwrap();
    sync(&mut teacher, &mut mother);
    let f = mother.file(CHILD);
    assert_eq!(f.conflicts.len(), 1);
    assert_eq!(f.conflicts[0].1.values.len(), 2);
    // The projection is rebuilt from the documents (as after a migration).
    mother
        .archive
        .store()
        .conn()
        .execute("DELETE FROM p_conflicted", [])
        .unwrap();
    mother.archive.store().rebuild_projections().unwrap();
    assert_eq!(conflicted(&mut mother), vec![child]);
    // A resolution with a new value is validated like any input: a bad number changes nothing.
    let before = fingerprint(&mut mother);
    let e = mother
        .archive
        .resolve(CHILD, "guardian.phone", None, Some("12ab"))
        .unwrap_err();
    assert!(e.to_string().contains("电话"), "{e}");
    assert_eq!(before, fingerprint(&mut mother));
}

/// The documents a device's store marks as holding a conflict.
fn conflicted(d: &mut Device) -> Vec<DocId> {
    d.archive.store().conflicted_docs().unwrap()
}

/// 3. Both devices add records while apart; bundles are exchanged twice and one is imported
///    twice: every record is there exactly once.
#[test]
fn story_3_records_from_both_devices_are_all_kept_once() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    news(&mut admin, &mut teacher);
    let mut ids = Vec::new();
    for (i, date) in ["2026-11-16", "2026-11-18", "2026-11-20"]
        .iter()
        .enumerate()
    {
        ids.push(teacher.record(
            "家访",
            CHILD,
            date,
            &[("notes", &format!("第{}次家访：奶奶身体尚可", i + 1))],
        ));
        ids.push(mother.record(
            "谈心",
            CHILD,
            date,
            &[
                ("notes", "聊了这一周的学习和朋友"),
                ("emotion", "想妈妈，但情绪稳定"),
            ],
        ));
    }
    let file = mother.export_for("mother", HEAD_TEACHER);
    sync(&mut teacher, &mut mother);
    sync(&mut teacher, &mut mother);
    let again = teacher.import_file(&file);
    assert_eq!(again.new_changes, 0);
    for d in [&mut teacher, &mut mother] {
        let f = d.file(CHILD);
        let mut got: Vec<String> = f.records.iter().map(|r| r.meta.id.0.clone()).collect();
        got.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want);
        // Ordered by the date they happened.
        let dates: Vec<&str> = f
            .records
            .iter()
            .map(|r| r.meta.happened_on.as_str())
            .collect();
        let mut sorted = dates.clone();
        sorted.sort();
        assert_eq!(dates, sorted);
    }
    let (t, m) = heads_in_common(&mut teacher, &mut mother);
    assert!(m.len() >= 2, "{m:?}"); // the school and the child's care file
    assert_eq!(t, m);
}

/// 4. The 班主任 adds a sentence at the end of a visit note on her phone while she
///    corrects a word at its start on her tablet (a record is edited only by its author, on
///    any of her devices). A note is one string, not merged character by character (BENCHMARKS
///    §13: a Text object costs an operation per character on every load), so neither edit is
///    lost: both versions are kept and shown as a conflict on the record, on every device, and
///    she resolves it with the text she wants, which then stands everywhere.
#[test]
fn story_4_the_same_note_edited_on_two_devices_keeps_both_until_she_resolves_it() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let id = teacher.record(
        "家访",
        CHILD,
        "2026-11-20",
        &[("notes", "奶奶说孩子最近作业按时完成。")],
    );
    sync(&mut teacher, &mut admin);
    // Her own tablet: a record is edited only by its author, on any of her devices.
    let mut tablet = join(&mut admin, HEAD_TEACHER);
    let phone_text = "奶奶说孩子最近作业按时完成。建议周末多打视频电话。";
    let tablet_text = "外婆说孩子最近作业按时完成。";
    teacher
        .archive
        .edit_record(&id, None, &kv(&[("notes", phone_text)]))
        .unwrap();
    tablet
        .archive
        .edit_record(&id, None, &kv(&[("notes", tablet_text)]))
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut tablet, &mut admin);
    sync(&mut teacher, &mut admin);
    let path = format!("records.{id}.fields.notes");
    for d in [&mut teacher, &mut admin] {
        let f = d.file(CHILD);
        let (_, c) = f
            .conflicts
            .iter()
            .find(|(_, c)| c.dotted() == path)
            .unwrap_or_else(|| panic!("{}: {:?}", d.name, f.conflicts));
        assert!(c.values.iter().any(|v| v == phone_text), "{c:?}");
        assert!(c.values.iter().any(|v| v == tablet_text), "{c:?}");
    }
    let merged = "外婆说孩子最近作业按时完成。建议周末多打视频电话。";
    teacher
        .archive
        .resolve(CHILD, &path, None, Some(merged))
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut tablet, &mut admin);
    for d in [&mut teacher, &mut admin, &mut tablet] {
        let f = d.file(CHILD);
        let r = f.records.iter().find(|r| r.meta.id.0 == id).unwrap();
        let notes = r.fields.iter().find(|f| f.key == "notes").unwrap();
        assert_eq!(notes.value, merged, "{}", d.name);
        assert!(f.conflicts.is_empty(), "{}: {:?}", d.name, f.conflicts);
    }
}

/// 4b. The date of her 家访 corrected on her phone and on her tablet apart: a conflict she
///     resolves. A date typed there after today is refused as it is when a record is entered
///     (every other device would refuse a record dated after the change that wrote it), and
///     nothing is written; the date she keeps is taken everywhere.
#[test]
fn story_4b_a_date_resolved_after_today_is_refused_like_a_date_entered() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let id = teacher.record("家访", CHILD, "2026-11-20", &[("notes", "奶奶在家")]);
    sync(&mut teacher, &mut admin);
    let mut tablet = join(&mut admin, HEAD_TEACHER);
    teacher
        .archive
        .edit_record(&id, Some("2026-11-18"), &[])
        .unwrap();
    tablet
        .archive
        .edit_record(&id, Some("2026-11-19"), &[])
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut tablet, &mut admin);
    sync(&mut teacher, &mut admin);
    let path = format!("records.{id}.happened_on");
    let later = (chrono::Local::now().date_naive() + chrono::Days::new(10))
        .format("%Y-%m-%d")
        .to_string();
    let before = teacher.file(CHILD);
    assert!(
        before.conflicts.iter().any(|(_, c)| c.dotted() == path),
        "{:?}",
        before.conflicts
    );
    let err = teacher
        .archive
        .resolve(CHILD, &path, None, Some(&later))
        .unwrap_err();
    assert!(err.to_string().contains("晚于今天"), "{err}");
    assert_eq!(format!("{:?}", teacher.file(CHILD)), format!("{before:?}"));
    // She keeps the date shown (the value automerge picked): automerge writes that as a
    // deletion of the other value, which every device takes from her.
    let shown = before
        .records
        .iter()
        .find(|r| r.meta.id.0 == id)
        .unwrap()
        .meta
        .happened_on
        .to_string();
    teacher
        .archive
        .resolve(CHILD, &path, None, Some(&shown))
        .unwrap();
    sync(&mut teacher, &mut admin);
    let q = admin.archive.quarantined().unwrap();
    assert!(q.is_empty(), "{q:#?}");
    let f = admin.file(CHILD);
    let r = f.records.iter().find(|r| r.meta.id.0 == id).unwrap();
    assert_eq!(r.meta.happened_on.to_string(), shown);
    assert!(f.conflicts.is_empty(), "{:?}", f.conflicts);
}

/// 4c. The same conflict in her 家访's notes, seen by the principal on the office's archive:
///     he may not resolve it (a record's fields are its author's, and every other device would
///     refuse his change, and every later change of the file with it). He is told why, nothing
///     is written, and she resolves it herself.
#[test]
fn story_4c_only_the_author_resolves_a_conflict_in_her_record() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let path = record_notes_conflict(&mut admin, &mut teacher, HEAD_TEACHER, CHILD);
    let before = admin.file(CHILD);
    assert!(
        before.conflicts.iter().any(|(_, c)| c.dotted() == path),
        "{:?}",
        before.conflicts
    );
    // Asked beforehand, the rules say so, and name her.
    let doc = DocId::Child(admin.archive.find_child(CHILD).unwrap());
    let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
    let her = teacher.archive.me_id().clone();
    let his = admin.archive.me_id().clone();
    assert_eq!(
        admin.archive.may_resolve(&his, &doc, &parts).unwrap(),
        MayResolve::OnlyAuthor(her.clone())
    );
    assert_eq!(
        admin.archive.may_resolve(&her, &doc, &parts).unwrap(),
        MayResolve::Yes
    );
    let rid = &parts[1];
    for fixed in [
        format!("records.{rid}.void.by"),
        format!("records.{rid}.author"),
        format!("records.{rid}.kind"),
    ] {
        let fixed: Vec<String> = fixed.split('.').map(str::to_owned).collect();
        assert_eq!(
            admin.archive.may_resolve(&her, &doc, &fixed).unwrap(),
            MayResolve::No,
            "{fixed:?}"
        );
    }
    let class = ["profile".to_owned(), "class_id".to_owned()];
    assert_eq!(
        admin.archive.may_resolve(&her, &doc, &class).unwrap(),
        MayResolve::No
    );
    assert_eq!(
        admin.archive.may_resolve(&his, &doc, &class).unwrap(),
        MayResolve::Yes
    );
    for (pick, value) in [(Some(1), None), (None, Some("外婆在家，孩子在写作业"))] {
        let err = admin
            .archive
            .resolve(CHILD, &path, pick, value)
            .unwrap_err();
        assert!(err.to_string().contains("只能修改自己填写的记录"), "{err}");
        assert_eq!(format!("{:?}", admin.file(CHILD)), format!("{before:?}"));
    }
    sync(&mut teacher, &mut admin);
    teacher
        .archive
        .resolve(CHILD, &path, Some(1), None)
        .unwrap();
    sync(&mut teacher, &mut admin);
    assert!(admin.archive.quarantined().unwrap().is_empty());
    assert!(admin.file(CHILD).conflicts.is_empty());
}

/// 5. Void vs. edit: the principal voids a duplicate record while its author, apart, adds to its
///    notes. After the merge the record is voided (who, when, why kept) *and* shows the edit;
///    it no longer counts anywhere.
#[test]
fn story_5_void_and_concurrent_edit_both_survive_and_the_record_stays_voided() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let id = teacher.record("家访", CHILD, "2026-11-20", &[("notes", "重复录入")]);
    sync(&mut teacher, &mut admin);
    // A reason is a line like any other: a pasted page is refused and changes nothing.
    let before = fingerprint(&mut admin);
    let e = admin
        .archive
        .void_record(&id, &"重复".repeat(101))
        .unwrap_err();
    assert!(e.to_string().contains("作废原因"), "{e}");
    assert_eq!(before, fingerprint(&mut admin));
    admin
        .archive
        .void_record(&id, "与11月20日的记录重复")
        .unwrap();
    teacher
        .archive
        .edit_record(&id, None, &kv(&[("notes", "重复录入，已补充接待人")]))
        .unwrap();
    sync(&mut teacher, &mut admin);
    for d in [&mut teacher, &mut admin] {
        let f = d.file(CHILD);
        let r = f.records.iter().find(|r| r.meta.id.0 == id).unwrap();
        let void = r.void.as_ref().expect("voided");
        assert_eq!(void.reason, "与11月20日的记录重复");
        assert!(r.meta.voided);
        assert_eq!(
            r.fields.iter().find(|f| f.key == "notes").unwrap().value,
            "重复录入，已补充接待人"
        );
        let row = d
            .archive
            .children(None, false)
            .unwrap()
            .into_iter()
            .find(|c| c.name == CHILD)
            .unwrap();
        assert_eq!(row.records, 0, "a voided record is not counted");
    }
}

/// 6. Two administrators import the same roster while apart: one child file per 学籍号, no
///    duplicates and no conflicts, because a child's id and its document's first change are the
///    same everywhere.
#[test]
fn story_6_the_same_roster_imported_twice_apart_is_one_child_each() {
    let mut admin = school();
    let mut archivist = join(&mut admin, "晁月静");
    admin.archive.add_class("四年级(2)班", None).unwrap();
    sync(&mut admin, &mut archivist);
    let table: Vec<Vec<String>> = vec![
        vec![
            "学籍号".into(),
            "姓名".into(),
            "班级".into(),
            "联系电话".into(),
        ],
        vec![
            "G340321201401".into(),
            "陈思远".into(),
            "四年级(2)班".into(),
            "13805641234".into(),
        ],
        vec![
            "G340321201402".into(),
            "黄雨桐".into(),
            "四年级(2)班".into(),
            "13805645678".into(),
        ],
    ];
    let rows = shouwang_core::roster::parse_table(&table).unwrap();
    admin.archive.import_roster(&rows).unwrap();
    archivist.archive.import_roster(&rows).unwrap();
    sync(&mut admin, &mut archivist);
    let kids = admin.archive.children(Some("四年级(2)班"), false).unwrap();
    assert_eq!(kids.len(), 2);
    let f = admin.file("陈思远");
    assert!(f.conflicts.is_empty(), "{:?}", f.conflicts);
    assert_eq!(heads(&mut admin), heads(&mut archivist));
    // Importing again changes nothing at all.
    let before = fingerprint(&mut admin);
    admin.archive.import_roster(&rows).unwrap();
    assert_eq!(before, fingerprint(&mut admin));
}

/// 6b. Two administrators offline make what is named by what it is: the same class (its id is
///     its name's), one naming its 班主任 and one not, and the same pairing, one ending it
///     again meanwhile. The school document then holds two maps under each key, which it reads
///     strictly (a modified app makes such maps to win a key: trust story 17f). Honest work
///     still reads as meant: the class has its 班主任; the pairing reads ended, and pairing
///     them again shows on both devices.
#[test]
fn story_6b_the_same_class_and_pairing_made_apart_read_as_meant() {
    let mut admin = school();
    let mut archivist = join(&mut admin, "晁月静");
    admin
        .archive
        .add_class("五年级(1)班", Some(PAIRING_TEACHER))
        .unwrap();
    archivist.archive.add_class("五年级(1)班", None).unwrap();
    let child = CHILDREN[3].1;
    admin.archive.pair(LOVE_MOTHER, child, None).unwrap();
    admin.archive.end_pairing(LOVE_MOTHER, child).unwrap();
    archivist.archive.pair(LOVE_MOTHER, child, None).unwrap();
    sync(&mut admin, &mut archivist);
    let paired = |d: &mut Device| {
        let school = d.archive.school().unwrap();
        let mother = d.archive.find_member(LOVE_MOTHER).unwrap().id;
        let kid = d.archive.find_child(child).unwrap();
        school
            .pairings
            .iter()
            .any(|p| p.carer == mother && p.child == kid && p.active)
    };
    for d in [&mut admin, &mut archivist] {
        let school = d.archive.school().unwrap();
        let class = school
            .classes
            .iter()
            .find(|c| c.name == "五年级(1)班")
            .unwrap();
        let head = d.archive.find_member(PAIRING_TEACHER).unwrap().id;
        assert_eq!(class.head_teacher.as_ref(), Some(&head), "{}", d.name);
        assert!(!paired(d), "{}: one of them ended it", d.name);
    }
    archivist.archive.pair(LOVE_MOTHER, child, None).unwrap();
    sync(&mut admin, &mut archivist);
    assert!(paired(&mut admin) && paired(&mut archivist), "paired again");
    assert_eq!(heads(&mut admin), heads(&mut archivist));
}

/// 7. A newer app version wrote a field and a record kind this version does not know. Editing
///    the record and the profile here keeps them, and they reach the other device intact.
#[test]
fn story_7_fields_from_a_newer_version_survive_read_modify_write() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let id = teacher.record("家访", CHILD, "2026-11-20", &[("notes", "第一次家访")]);
    let child = ChildId(teacher.archive.find_child(CHILD).unwrap().0);
    // "The newer app" on the teacher's tablet writes unknown keys through automerge directly.
    let mut newer = join(&mut admin, HEAD_TEACHER);
    sync(&mut teacher, &mut admin);
    sync(&mut newer, &mut admin);
    let me = newer.archive.me_id().to_string();
    let device = newer.archive.device().to_string();
    newer
        .archive
        .store()
        .write(|b| {
            b.change(
                &DocId::Child(child.clone()),
                false,
                "新版本写入",
                |tx| {
                    let profile = tx.get(ROOT, "profile")?.unwrap().1;
                    tx.put(&profile, "hukou_type", "农业户口")?;
                    let records = tx.get(ROOT, "records")?.unwrap().1;
                    let rec = tx.get(&records, id.as_str())?.unwrap().1;
                    let fields = tx.get(&rec, "fields")?.unwrap().1;
                    tx.put(&fields, "weather", "雨天，山路泥泞")?;
                    let future = tx.put_object(&records, "ffffffffffff00000000", ObjType::Map)?;
                    tx.put(&future, "kind", "bus_register")?;
                    tx.put(&future, "happened_on", "2026-11-21")?;
                    tx.put(&future, "author", me.as_str())?;
                    tx.put(&future, "author_role", "head_teacher")?;
                    tx.put(&future, "device", device.as_str())?;
                    tx.put(&future, "child", child.as_str())?;
                    // Every record is written with these, whatever its kind.
                    tx.put_object(&future, "fields", ObjType::Map)?;
                    tx.put_object(&future, "void", ObjType::Map)?;
                    Ok(())
                },
            )
        })
        .unwrap();
    sync(&mut newer, &mut admin);
    sync(&mut teacher, &mut admin);
    teacher
        .archive
        .edit_record(&id, None, &kv(&[("notes", "第一次家访，孩子不在家")]))
        .unwrap();
    teacher
        .archive
        .edit_child(CHILD, "profile", &kv(&[("address", "郭庄村三组")]))
        .unwrap();
    sync(&mut teacher, &mut admin);
    for d in [&mut teacher, &mut admin] {
        let f = d.file(CHILD);
        let r = f.records.iter().find(|r| r.meta.id.0 == id).unwrap();
        assert_eq!(r.other_fields.len(), 1);
        assert_eq!(r.other_fields[0].value, "雨天，山路泥泞");
        let unknown = f
            .records
            .iter()
            .find(|r| r.meta.kind_key == "bus_register")
            .unwrap();
        assert_eq!(unknown.kind_label, "未知类型");
        let doc = d
            .archive
            .store()
            .doc(&DocId::Child(child.clone()))
            .unwrap()
            .unwrap();
        let profile = doc.get(ROOT, "profile").unwrap().unwrap().1;
        assert_eq!(
            doc.get(&profile, "hukou_type").unwrap().unwrap().0.as_str(),
            Some("农业户口")
        );
    }
}

/// 8. A truncated file, a tampered one, one from another school, one sealed to other
///    devices, an old unsealed one and one signed by a device the office never registered are
///    refused with one Chinese sentence each, and the store is left exactly as it was.
#[test]
fn story_8_bad_bundles_change_nothing() {
    use shouwang_core::bundle::seal::{self, Lock};
    use shouwang_core::device_key::DeviceSecret;
    let mut admin = school();
    let mut laptop = join(&mut admin, "晁月静");
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let mut colleague = join(&mut admin, PAIRING_TEACHER);
    for d in [&mut laptop, &mut teacher] {
        news(&mut admin, d);
    }
    teacher.record("家访", CHILD, "2026-11-20", &[("notes", "正常记录")]);
    let good = teacher.archive.export_bundle(None, None).unwrap();
    let content = teacher.archive.open_bundle(&good).unwrap();
    let mut other = school();
    let foreign = other.archive.export_bundle(None, None).unwrap();
    let to_her = teacher
        .archive
        .export_bundle(Some(LOVE_MOTHER), None)
        .unwrap();
    let unsealed = content.encode().unwrap();
    // The same content, sealed to the office by a key no administrator ever registered.
    let office_key = admin
        .archive
        .school()
        .unwrap()
        .devices
        .iter()
        .find(|d| &d.id == admin.archive.device())
        .and_then(|d| d.public_key())
        .unwrap();
    let stranger = seal::seal(
        &content,
        &DeviceSecret::generate(),
        None,
        Lock::Devices(&[office_key]),
    )
    .unwrap();
    let before = fingerprint(&mut admin);
    let mut tampered = good.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0xff;
    for (bytes, want) in [
        (&good[..good.len() - 10], "已损坏或被改动"),
        (&tampered[..], "已损坏或被改动"),
        (&foreign[..], "不是发给本机的"),
        (&unsealed[..], "未签名"),
        (&stranger[..], "不在本机所知的学校登记里"),
        (&b"hello"[..], "不是守望的数据文件"),
    ] {
        let e = admin.archive.import_bundle(bytes).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
        assert!(!e.contains('\n'));
        assert_eq!(before, fingerprint(&mut admin));
    }
    // Sealed to the 爱心妈妈's devices and the office: another teacher's device cannot open it.
    let e = laptop.archive.import_bundle(&to_her).map(|_| ());
    assert!(e.is_ok(), "the archivist is an administrator: {e:?}");
    mother.archive.import_bundle(&to_her).unwrap();
    let e = colleague.archive.import_bundle(&to_her).unwrap_err();
    assert!(e.to_string().contains("不是发给本机的"), "{e}");
    // A file made "since" a state the receiver does not have is refused whole, not half-applied.
    teacher.record("谈心", CHILD, "2026-11-21", &[("notes", "之后的记录")]);
    let delta = teacher.archive.export_bundle(None, Some(&content)).unwrap();
    let before = fingerprint(&mut admin);
    let e = admin.archive.import_bundle(&delta).unwrap_err().to_string();
    assert!(e.contains("缺少"), "{e}");
    assert_eq!(before, fingerprint(&mut admin));
    // The right receiver takes the delta.
    admin.archive.import_bundle(&good).unwrap();
    let report = admin.archive.import_bundle(&delta).unwrap();
    // The care file, and the teacher's access log (the export itself is in it).
    assert_eq!(report.changed, 2, "{report:?}");
}

/// 2b. The office and the 班主任 each correct the child's 身份证号 while apart: both numbers are
///     kept as a conflict, and shown masked, as the field itself is, wherever the file is
///     shown without revealing it (revealing is what the access log records).
#[test]
fn story_2b_a_conflict_in_an_id_number_is_shown_masked() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let (one, other) = ("34052120170305002X", "340521201607120032");
    admin
        .archive
        .edit_child(CHILD, "identity", &kv(&[("id_card", one)]))
        .unwrap();
    teacher
        .archive
        .edit_child(CHILD, "identity", &kv(&[("id_card", other)]))
        .unwrap();
    sync(&mut teacher, &mut admin);
    let f = teacher.file(CHILD);
    let (_, c) = f
        .conflicts
        .iter()
        .find(|(_, c)| c.dotted() == "identity.id_card")
        .unwrap_or_else(|| panic!("{:?}", f.conflicts));
    assert_eq!(c.values.len(), 2);
    for v in &c.values {
        assert!(
            v != one && v != other && v.contains('*'),
            "{v} shown in full"
        );
    }
}

/// 2c. A conflict resolved with a new value takes the checks the field takes when typed: a
///     身份证号 that is not one (a wrong check digit) is refused and changes nothing (it would
///     be stored, and shown in full since it masks as no ID number does); a valid one is kept
///     as the field keeps it. A class is typed by its name and kept as the class.
#[test]
fn story_2c_a_new_value_resolving_a_conflict_is_checked_as_when_typed() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    admin
        .archive
        .edit_child(CHILD, "identity", &kv(&[("id_card", "34052120170305002X")]))
        .unwrap();
    teacher
        .archive
        .edit_child(CHILD, "identity", &kv(&[("id_card", "340521201607120032")]))
        .unwrap();
    sync(&mut teacher, &mut admin);
    let before = fingerprint(&mut teacher);
    let e = teacher
        .archive
        .resolve(CHILD, "identity.id_card", None, Some("340521201503050021"))
        .unwrap_err();
    assert!(e.to_string().contains("身份证"), "{e}");
    assert_eq!(before, fingerprint(&mut teacher), "nothing changed");
    teacher
        .archive
        .resolve(CHILD, "identity.id_card", None, Some("34052120170305002x"))
        .unwrap();
    let shown = teacher.archive.reveal_id(CHILD, "核对学籍").unwrap();
    assert_eq!(
        field(&shown, "identity", "id_card"),
        Some("34052120170305002X")
    );

    // Two administrators move her to different classes while apart; the resolution puts her
    // back in her class, named by its name as `child edit` takes it, and she is listed there.
    admin.archive.add_class("四年级(2)班", None).unwrap();
    admin.archive.add_class("五年级(1)班", None).unwrap();
    let mut archivist = join(&mut admin, "晁月静");
    admin
        .archive
        .edit_child(CHILD, "profile", &kv(&[("class_id", "四年级(2)班")]))
        .unwrap();
    archivist
        .archive
        .edit_child(CHILD, "profile", &kv(&[("class_id", "五年级(1)班")]))
        .unwrap();
    sync(&mut archivist, &mut admin);
    admin
        .archive
        .resolve(CHILD, "profile.class_id", None, Some(CLASS))
        .unwrap();
    let listed = admin.archive.children(Some(CLASS), false).unwrap();
    assert!(listed.iter().any(|c| c.name == CHILD), "{listed:?}");
}
