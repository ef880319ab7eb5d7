//! Least collection per role (issue 11, point 6), on real SQLite files: a 爱心妈妈's store
//! holds none of the fields her role does not need (the 三特 flags, the guardian's health, age
//! and occupation, the parents' employer details) nor other members' phone numbers; the
//! 班主任 still sees them; a forged write into the staff part is refused on arrival; an old
//! school's files are split and the moved values purged from the 爱心妈妈's copy; ID numbers
//! are masked unless revealed, and a reveal is recorded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use shouwang_core::Archive;
use shouwang_core::doc::DocId;
use shouwang_core::error::Error;
use shouwang_core::ids::MemberId;
use shouwang_core::roles::Role;
use shouwang_tests::attack::{self, holds};
use shouwang_tests::fixtures::{holds_text, raw_store};

const EMPLOYER: &str = "华伟集团五金厂";
const EMPLOYER_PHONE: &str = "0571-86112233";
const HEALTH: &str = "腿脚不便需常服药";
const OCCUPATION: &str = "务农兼做零工";
const OTHER_PHONE: &str = "13805640077";
const HEAD_PHONE: &str = "13805640001";
const ID_CARD: &str = "34052120150305005X";

/// The staff fields of the first child, written by the office.
fn fill_staff_fields(admin: &mut Device) {
    let child = CHILDREN[0].1;
    let a = &mut admin.archive;
    a.edit_child(child, "flags", &kv(&[("hardship", "是")]))
        .unwrap();
    a.edit_child(
        child,
        "father",
        &kv(&[
            ("name", "王大山"),
            ("employer", EMPLOYER),
            ("employer_phone", EMPLOYER_PHONE),
        ]),
    )
    .unwrap();
    a.edit_child(
        child,
        "guardian",
        &kv(&[
            ("health", HEALTH),
            ("occupation", OCCUPATION),
            ("age", "68"),
        ]),
    )
    .unwrap();
}

/// The office of a school made by an older build (`tests/fixtures/old-school`), not yet split.
fn old_school_office() -> Device {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/old-school/office.db");
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::copy(&fixture, dir.path().join("shouwang.db")).unwrap();
    let archive = Archive::open(&dir.path().join("shouwang.db")).unwrap();
    Device {
        name: "office",
        archive,
        dir,
    }
}

/// Whether any change in the history of `d`'s school document holds `text`.
fn school_history_holds(d: &mut Device, text: &str) -> bool {
    let doc = d.archive.store().doc(&DocId::School).unwrap().unwrap();
    doc.get_changes(&[]).iter().any(|c| {
        holds_text(
            &c.decode()
                .operations
                .iter()
                .map(|o| format!("{:?}", o.action))
                .collect::<String>()
                .into_bytes(),
            text,
        )
    })
}

fn leaks(d: &Device, what: &[&str]) -> Vec<String> {
    let bytes = raw_store(&d.path());
    what.iter()
        .filter(|w| holds_text(&bytes, w))
        .map(|w| (*w).to_owned())
        .collect()
}

#[test]
fn a_love_mother_holds_neither_staff_fields_nor_other_members_phones() {
    let mut admin = school();
    admin
        .archive
        .add_member("吴腊芝", &[Role::SubjectTeacher], None, Some(OTHER_PHONE))
        .unwrap();
    fill_staff_fields(&mut admin);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let child = CHILDREN[0].1;

    assert_eq!(
        leaks(
            &mother,
            &[EMPLOYER, EMPLOYER_PHONE, HEALTH, OCCUPATION, OTHER_PHONE]
        ),
        Vec::<String>::new()
    );
    let c = mother.archive.find_child(child).unwrap();
    let docs = mother.archive.store().doc_ids().unwrap();
    assert!(!docs.contains(&DocId::Staff(c.clone())), "{docs:?}");
    // What she needs stays: the child, the guardian's name and phone, the father's name.
    let file = mother.file(child);
    assert_eq!(field(&file, "guardian", "phone"), Some("13905640000"));
    assert_eq!(field(&file, "father", "name"), Some("王大山"));
    assert_eq!(field(&file, "guardian", "health"), None);
    assert_eq!(field(&file, "father", "employer"), None);
    assert!(file.sections.iter().all(|s| s.key != "flags"), "{file:?}");
    assert!(
        mother.archive.children(None, false).unwrap()[0]
            .flags
            .is_empty()
    );
    // She can reach the 班主任 of the child she cares for, and nobody else's number is here.
    let phones = mother.archive.contacts().unwrap();
    assert!(
        phones
            .iter()
            .any(|c| c.name == HEAD_TEACHER && c.phone.as_deref() == Some(HEAD_PHONE)),
        "{phones:?}"
    );
    assert!(phones.iter().all(|c| c.name != "吴腊芝"), "{phones:?}");

    // The 班主任 still sees everything the file holds for his class.
    let file = teacher.file(child);
    assert_eq!(field(&file, "father", "employer"), Some(EMPLOYER));
    assert_eq!(field(&file, "guardian", "health"), Some(HEALTH));
    assert_eq!(field(&file, "flags", "hardship"), Some("是"));
    let rows = teacher.archive.children(None, false).unwrap();
    let row = rows.iter().find(|r| r.name == child).unwrap();
    assert_eq!(row.flags, vec!["特困生"]);
    assert!(leaks(&teacher, &[OTHER_PHONE]).is_empty());
    // The office holds every phone.
    let all = admin.archive.contacts().unwrap();
    assert!(all.iter().any(|c| c.phone.as_deref() == Some(OTHER_PHONE)));
}

#[test]
fn the_school_document_of_a_new_school_holds_no_phone_number() {
    let mut admin = school();
    let school = admin.archive.store().doc(&DocId::School).unwrap().unwrap();
    let bytes = school.save();
    let mut doc = automerge::Automerge::load(&bytes).unwrap();
    let all: Vec<u8> = doc
        .get_changes(&[])
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    let _ = &mut doc;
    assert!(!holds_text(&all, HEAD_PHONE));
}

#[test]
fn a_forged_staff_write_by_a_love_mother_is_refused_on_arrival() {
    let mut admin = school();
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let c = mother.archive.find_child(CHILDREN[0].1).unwrap();
    let staff = attack::forge(&mut mother.archive, &DocId::Staff(c.clone()), None, |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let flags = tx.get(&automerge::ROOT, "flags").unwrap().unwrap().1;
        tx.put(&flags, "special_needs", true)?;
        Ok(())
    });
    // The moved fields cannot be written into the shared file either.
    let shared = attack::forge(&mut mother.archive, &DocId::Child(c.clone()), None, |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let g = tx.get(&automerge::ROOT, "guardian").unwrap().unwrap().1;
        tx.put(&g, "health", HEALTH)?;
        Ok(())
    });
    let before = attack::quarantined(&mut admin.archive);
    admin.import_file(&mother.export_file("forged"));
    assert!(!holds(&mut admin.archive, &DocId::Staff(c.clone()), &staff));
    assert!(!holds(
        &mut admin.archive,
        &DocId::Child(c.clone()),
        &shared
    ));
    assert!(attack::quarantined(&mut admin.archive) > before);
    assert!(admin.file(CHILDREN[0].1).sections.iter().all(|s| {
        s.fields
            .iter()
            .all(|f| f.value != HEALTH && f.key != "special_needs")
    }));
    // Through the API she is told no, and nothing is written.
    let e = mother
        .archive
        .edit_child(CHILDREN[0].1, "guardian", &kv(&[("health", HEALTH)]))
        .unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
}

/// A school made by an older build keeps every field in the shared file and every phone in the
/// school document. `split_for_roles` moves them (the staff part, the members' contacts) and
/// re-bases each child's file, so a 爱心妈妈's copy loses the old values at her next import.
#[test]
fn an_old_school_is_split_and_the_love_mother_purges_the_moved_fields() {
    let mut office = old_school_office();
    // Before the split, the old layout: the values go into the shared file.
    fill_staff_fields(&mut office);
    let mut mother = join(&mut office, LOVE_MOTHER);
    assert!(!leaks(&mother, &[HEALTH, EMPLOYER]).is_empty());

    let report = office.archive.split_for_roles().unwrap();
    assert!(report.children >= 1, "{report:?}");
    let news = office
        .archive
        .export_bundle(Some(LOVE_MOTHER), None)
        .unwrap();
    let r = mother.archive.import_bundle(&news).unwrap();
    assert_eq!(r.refused, 0, "{r:?}");
    assert_eq!(
        leaks(&mother, &[HEALTH, EMPLOYER, OCCUPATION]),
        Vec::<String>::new()
    );
    let file = mother.file(CHILDREN[0].1);
    assert_eq!(field(&file, "guardian", "health"), None);
    assert_eq!(field(&file, "profile", "name"), Some(CHILDREN[0].1));

    // The office and a 班主任 joining now read the moved values from the staff part.
    let file = office.file(CHILDREN[0].1);
    assert_eq!(field(&file, "guardian", "health"), Some(HEALTH));
    assert_eq!(field(&file, "flags", "hardship"), Some("是"));
    let mut teacher = join(&mut office, HEAD_TEACHER);
    assert_eq!(
        field(&teacher.file(CHILDREN[0].1), "father", "employer"),
        Some(EMPLOYER)
    );
    // A second run has nothing left to move; new edits go to the staff part.
    assert_eq!(office.archive.split_for_roles().unwrap().children, 0);
    teacher
        .archive
        .edit_child(CHILDREN[1].1, "guardian", &kv(&[("health", "良好")]))
        .unwrap();
    let c = teacher.archive.find_child(CHILDREN[1].1).unwrap();
    assert!(
        teacher
            .archive
            .store()
            .doc_ids()
            .unwrap()
            .contains(&DocId::Staff(c))
    );
}

/// An old school's members' phone numbers were written into the school document, which every
/// member holds; the split moves them out of its state, and then out of its history: the
/// office rewrites the history without them, a 爱心妈妈's copy switches at her next import, her
/// 谈心 written before the split (declaring the school as it was) still reaches the office, and
/// a device enrolled afterwards takes every older change of the file.
#[test]
fn an_old_schools_phone_numbers_leave_the_school_history_in_every_copy() {
    let mut office = old_school_office();
    office
        .archive
        .add_member("陈桂芝", &[Role::PairingTeacher], None, Some(OTHER_PHONE))
        .unwrap();
    let mut mother = join(&mut office, LOVE_MOTHER);
    assert_eq!(leaks(&mother, &[OTHER_PHONE]), vec![OTHER_PHONE]);

    // Before she hears of the split.
    mother.record(
        "谈心",
        CHILDREN[0].1,
        "2026-12-01",
        &[("notes", "说想妈妈了")],
    );

    let report = office.archive.split_for_roles().unwrap();
    assert!(report.history > 0, "{report:?}");
    assert!(!school_history_holds(&mut office, OTHER_PHONE));
    assert_eq!(
        office
            .archive
            .contacts()
            .unwrap()
            .iter()
            .find(|c| c.name == "陈桂芝")
            .and_then(|c| c.phone.as_deref()),
        Some(OTHER_PHONE)
    );

    // Her next import switches her copy.
    let news = office
        .archive
        .export_bundle(Some(LOVE_MOTHER), None)
        .unwrap();
    let r = mother.archive.import_bundle(&news).unwrap();
    assert_eq!(r.refused, 0, "{r:?}");
    assert!(!school_history_holds(&mut mother, OTHER_PHONE));
    assert_eq!(leaks(&mother, &[OTHER_PHONE]), Vec::<String>::new());

    // Her 谈心 declares the school heads from before: the office resolves them.
    let r = office.import_file(&mother.export_file("talk"));
    assert_eq!(r.refused, 0, "{r:?}");
    let talks = |d: &mut Device| {
        d.file(CHILDREN[0].1)
            .records
            .iter()
            .filter(|r| r.kind_label == "谈心记录")
            .count()
    };
    assert_eq!(talks(&mut office), 1);

    // A device enrolled now holds only the rewritten history, and takes the file's older
    // changes, which declare the original one.
    let mut teacher = join(&mut office, HEAD_TEACHER);
    assert_eq!(talks(&mut teacher), 1);
    assert!(!school_history_holds(&mut teacher, OTHER_PHONE));
    teacher.record(
        "家访",
        CHILDREN[0].1,
        "2026-12-02",
        &[("notes", "奶奶身体还好")],
    );
    let r = office.import_file(&teacher.export_file("visit"));
    assert_eq!(r.refused, 0, "{r:?}");
}

#[test]
fn id_numbers_are_masked_unless_revealed_and_a_reveal_is_recorded() {
    let mut admin = school();
    let child = CHILDREN[0].1;
    admin
        .archive
        .edit_child(child, "identity", &kv(&[("id_card", ID_CARD)]))
        .unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let file = teacher.archive.child_file_for(child, None).unwrap();
    assert_eq!(
        field(&file, "identity", "id_card"),
        Some("340521********005X")
    );
    // The 学籍号 is not an ID number here ("G" + a short number): shown as it is.
    assert_eq!(field(&file, "identity", "student_no"), Some(CHILDREN[0].0));

    // A reveal needs a reason, is recorded, and shows the number.
    let e = teacher.archive.reveal_id(child, "  ").unwrap_err();
    assert!(
        matches!(e, Error::Missing(_) | Error::InvalidInput { .. }),
        "{e}"
    );
    let file = teacher.archive.reveal_id(child, "学籍系统核对").unwrap();
    assert_eq!(field(&file, "identity", "id_card"), Some(ID_CARD));
    let log = teacher.archive.audit_log().unwrap();
    assert!(
        log.entries
            .iter()
            .any(|e| e.what == "id_reveal" && e.why.as_deref() == Some("学籍系统核对")),
        "{log:?}"
    );

    // A 学籍号 that embeds an ID number is masked like one.
    admin
        .archive
        .edit_child(
            child,
            "identity",
            &kv(&[("student_no", &format!("G{ID_CARD}"))]),
        )
        .unwrap();
    let file = admin.archive.child_file_for(child, None).unwrap();
    assert_eq!(
        field(&file, "identity", "student_no"),
        Some("G340521********005X")
    );

    // A 爱心妈妈 has no ID numbers to reveal.
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let e = mother.archive.reveal_id(child, "核对").unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
}

/// A 班主任 holds the private and staff parts of her own class's children only (DOMAIN.md
/// §5.3): paired with a child of another class, she holds what a pairing gives, as a 帮扶教师
/// does. Her phone receives neither part, she can neither reveal nor write the child's
/// 身份证号. (What arrives from such a 班主任's app is still judged by the rule of the
/// releases before, which took it: refusing now what they took would split the school's
/// copies. ARCHITECTURE, "Scope on every path".)
#[test]
fn a_head_teacher_paired_with_a_child_of_another_class_holds_only_the_care_file() {
    let mut admin = school();
    fill_staff_fields(&mut admin);
    let child = CHILDREN[0].1;
    admin
        .archive
        .edit_child(child, "identity", &kv(&[("id_card", ID_CARD)]))
        .unwrap();
    let a = &mut admin.archive;
    a.add_member("李娟", &[Role::HeadTeacher], None, None)
        .unwrap();
    a.add_class("四年级(2)班", Some("李娟")).unwrap();
    a.pair("李娟", child, Some(Role::PairingTeacher)).unwrap();
    let mut other = join(&mut admin, "李娟");

    let c = other.archive.find_child(child).unwrap();
    let docs = other.archive.store().doc_ids().unwrap();
    assert!(docs.contains(&DocId::Child(c.clone())), "{docs:?}");
    assert!(
        !docs.contains(&DocId::Private(c.clone())) && !docs.contains(&DocId::Staff(c.clone())),
        "{docs:?}"
    );
    assert_eq!(
        leaks(&other, &[ID_CARD, EMPLOYER, HEALTH, OCCUPATION]),
        Vec::<String>::new()
    );
    let e = other.archive.reveal_id(child, "核对").unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");
    let e = other
        .archive
        .edit_child(child, "identity", &kv(&[("id_card", ID_CARD)]))
        .unwrap_err();
    assert!(matches!(e, Error::NotPermitted(_)), "{e}");

    // On the school's copy, which holds every part (the office console reads it lent to her,
    // `OnBehalf`), she is shown neither the 三特 flags, kept in the staff part, nor does the
    // child's 学籍号, kept in the private part, find her file (each number tried would tell
    // her whether it is the child's: usually "G" and the 身份证号). Her own 班主任 is shown
    // both. Her name still finds the file.
    let her = admin.archive.find_member("李娟").unwrap().id;
    let own = admin.archive.find_member(HEAD_TEACHER).unwrap().id;
    let flags = |a: &mut Archive, m: &MemberId| {
        let rows = a.on_behalf(m).unwrap().children(None).unwrap();
        rows.into_iter().find(|r| r.name == child).unwrap().flags
    };
    assert_eq!(flags(&mut admin.archive, &own), ["特困生"]);
    assert_eq!(flags(&mut admin.archive, &her), Vec::<&str>::new());
    let number = CHILDREN[0].0;
    let file = |a: &mut Archive, m: &MemberId, key: &str| {
        a.on_behalf(m)
            .unwrap()
            .child_file_for(key, None)
            .map(|f| f.name)
    };
    assert_eq!(file(&mut admin.archive, &own, number).unwrap(), child);
    let e = file(&mut admin.archive, &her, number).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    assert_eq!(file(&mut admin.archive, &her, child).unwrap(), child);

    // The 班主任 of the child's own class still holds both parts.
    let mut head = join(&mut admin, HEAD_TEACHER);
    let docs = head.archive.store().doc_ids().unwrap();
    assert!(docs.contains(&DocId::Private(c.clone())) && docs.contains(&DocId::Staff(c.clone())));
    assert!(head.archive.reveal_id(child, "学籍系统核对").is_ok());
}

/// Several sections saved in one write (the 联系卡): each part of the file records only the
/// sections it holds, so the shared file's history, which every carer holds, does not say
/// that the guardian's health (kept in the staff part) was changed.
#[test]
fn a_card_saved_in_one_write_names_in_each_part_only_what_it_holds() {
    let mut admin = school();
    let child = CHILDREN[0].1;
    admin
        .archive
        .edit_child_sections(
            child,
            &[
                ("guardian".to_owned(), kv(&[("health", HEALTH)])),
                ("father".to_owned(), kv(&[("name", "王大山")])),
            ],
        )
        .unwrap();
    let c = admin.archive.find_child(child).unwrap();
    let last_message = |a: &mut Archive, doc: &DocId| -> String {
        let d = a.store().doc(doc).unwrap().unwrap();
        let heads = d.get_heads();
        let change = automerge::ReadDoc::get_change_by_hash(d, &heads[0]).unwrap();
        change.message().unwrap_or_default().to_owned()
    };
    let shared = last_message(&mut admin.archive, &DocId::Child(c.clone()));
    assert!(
        shared.contains("父亲") && !shared.contains("监护人"),
        "{shared}"
    );
    let staff = last_message(&mut admin.archive, &DocId::Staff(c.clone()));
    assert!(
        staff.contains("监护人") && !staff.contains("父亲"),
        "{staff}"
    );
}
