//! Guardian consent, the school's 个人信息保护负责人 and the lost-phone report (issue 11, points 1
//! and 5), on real stores exchanging real bundle files. A story per duty.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use chrono::NaiveDate;
use shouwang_core::archive::{ConsentInput, ERASE_ADVICE, WithdrawalInput};
use shouwang_core::doc::DocId;
use shouwang_core::roster::parse_table;
use shouwang_core::{Error, RecordInput};
use shouwang_tests::attack::{self, holds, quarantined};
use shouwang_tests::fixtures::*;

const ID_CARD: &str = "34052120170305002X";
const NEW_CHILD_ID_CARD: &str = "340521201703060033";

fn consent(covers: &str) -> ConsentInput {
    ConsentInput {
        guardian: "王秀英".into(),
        relation: "奶奶".into(),
        date: "2026-09-01".into(),
        covers: covers.into(),
        form: "TY-2026-017".into(),
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
}

fn consent_due(d: &mut Device) -> Vec<String> {
    consent_due_of(d, None)
}

/// The children `member`'s 待办 lists as 缺监护人同意, as device `d` sees it (the device's own
/// member for `None`).
fn consent_due_of(d: &mut Device, member: Option<&str>) -> Vec<String> {
    d.archive
        .due(member, today(), false)
        .unwrap()
        .into_iter()
        .filter(|i| i.label == "缺监护人同意")
        .map(|i| i.child_name.unwrap_or_default())
        .collect()
}

fn counselling(d: &mut Device, child: &str) -> Result<String, Error> {
    d.archive
        .add_record(&RecordInput {
            kind: "心理辅导记录".into(),
            child: Some(child.into()),
            class: None,
            date: "2026-11-19".into(),
            fields: kv(&[("notes", "情绪低落，约定下周再谈")]),
        })
        .map(|id| id.0)
}

/// 1. Once the school requires consent, the private part waits for it: the 班主任 cannot fill
///    in the 身份证号, `due` lists 缺监护人同意 for each child of her class; she records the
///    grandmother's paper form, and then she can. A 爱心妈妈 may not record consent, and bad
///    input changes nothing. What private parts already held stays readable.
#[test]
fn story_1_the_private_part_waits_for_consent() {
    let mut admin = school();
    admin.archive.require_consent().unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    // Existing private parts (the 学籍号 the roster stored before consent was required) are
    // still accepted on arrival and shown.
    let f = teacher.file(CHILDREN[0].1);
    assert!(f.private_shown);
    assert_eq!(field(&f, "identity", "student_no"), Some(CHILDREN[0].0));
    assert_eq!(quarantined(&mut teacher.archive), 0);

    let err = teacher
        .archive
        .edit_child(CHILDREN[0].1, "identity", &kv(&[("id_card", ID_CARD)]))
        .unwrap_err();
    assert!(matches!(err, Error::NotPermitted(_)), "{err}");
    assert!(err.to_string().contains("监护人同意"), "{err}");
    assert!(counselling(&mut teacher, CHILDREN[0].1).is_err());
    let mut due = consent_due(&mut teacher);
    due.sort();
    let mut all: Vec<String> = CHILDREN.iter().map(|(_, n)| (*n).to_owned()).collect();
    all.sort();
    assert_eq!(due, all);
    assert!(consent_due(&mut mother).is_empty());

    // Who may record it, and bad input.
    let err = mother
        .archive
        .record_consent(CHILDREN[0].1, &consent("basic,private"))
        .unwrap_err();
    assert!(matches!(err, Error::NotPermitted(_)), "{err}");
    let before = heads(&mut teacher);
    for bad in [
        ConsentInput {
            covers: "basic,everything".into(),
            ..consent("")
        },
        ConsentInput {
            date: "2026-13-01".into(),
            ..consent("private")
        },
        ConsentInput {
            guardian: " ".into(),
            ..consent("private")
        },
        ConsentInput {
            form: "".into(),
            ..consent("private")
        },
    ] {
        let err = teacher
            .archive
            .record_consent(CHILDREN[0].1, &bad)
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput { .. } | Error::Missing(_)),
            "{err}"
        );
    }
    assert_eq!(heads(&mut teacher), before, "bad input changed nothing");

    teacher
        .archive
        .record_consent(CHILDREN[0].1, &consent("basic,private"))
        .unwrap();
    teacher
        .archive
        .edit_child(CHILDREN[0].1, "identity", &kv(&[("id_card", ID_CARD)]))
        .unwrap();
    counselling(&mut teacher, CHILDREN[0].1).unwrap();
    assert!(!consent_due(&mut teacher).contains(&CHILDREN[0].1.to_owned()));
    assert_eq!(consent_due(&mut teacher).len(), CHILDREN.len() - 1);
    let f = teacher.file(CHILDREN[0].1);
    let c = f.consent.expect("the file shows the consent");
    assert_eq!(c.guardian, "王秀英");
    assert_eq!(c.form, "TY-2026-017");
    // Everyone else accepts it.
    sync(&mut teacher, &mut admin);
    sync(&mut mother, &mut admin);
    assert_eq!(quarantined(&mut admin.archive), 0);
    assert_eq!(quarantined(&mut mother.archive), 0);
    assert!(admin.file(CHILDREN[0].1).consent.is_some());
    // The office's projection follows the merged consent: its view of her 待办 agrees.
    let hers = consent_due_of(&mut admin, Some(HEAD_TEACHER));
    assert_eq!(hers.len(), CHILDREN.len() - 1, "{hers:?}");
    assert!(!hers.contains(&CHILDREN[0].1.to_owned()));
    assert_eq!(
        field(&admin.file(CHILDREN[0].1), "identity", "id_card").map(str::len),
        Some(18)
    );
}

/// 2. A withdrawal stops new records of what it covers, refused with a Chinese reason that
///    points to erasure; what was recorded before stays.
#[test]
fn story_2_a_withdrawal_stops_new_records_and_points_to_erasure() {
    let mut admin = school();
    admin.archive.require_consent().unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    teacher
        .archive
        .record_consent(CHILDREN[1].1, &consent("basic,private"))
        .unwrap();
    counselling(&mut teacher, CHILDREN[1].1).unwrap();
    let hint = teacher
        .archive
        .withdraw_consent(
            CHILDREN[1].1,
            &WithdrawalInput {
                date: "2026-11-18".into(),
                by: "王秀英".into(),
                covers: "private".into(),
            },
        )
        .unwrap();
    // The app shows these as they are: who does what, no command line (the CLI adds its own).
    assert!(
        hint.contains(ERASE_ADVICE) && !hint.contains("shouwang"),
        "{hint}"
    );
    let err = counselling(&mut teacher, CHILDREN[1].1).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("撤回"), "{msg}");
    assert!(
        msg.contains(ERASE_ADVICE) && !msg.contains("shouwang"),
        "{msg}"
    );
    assert!(
        teacher
            .archive
            .edit_child(
                CHILDREN[1].1,
                "private_flags",
                &kv(&[("psychological", "是")])
            )
            .is_err()
    );
    // The basic file is still covered: a 家访 is fine. Then that is withdrawn too.
    teacher.record(
        "家访",
        CHILDREN[1].1,
        "2026-11-19",
        &[("notes", "奶奶在家")],
    );
    let plan = teacher.record(
        "学习帮扶计划",
        CHILDREN[1].1,
        "2026-11-19",
        &[
            ("subject", "数学"),
            ("schedule", "每周三"),
            ("notes", "口算"),
        ],
    );
    teacher
        .archive
        .withdraw_consent(
            CHILDREN[1].1,
            &WithdrawalInput {
                date: "2026-11-19".into(),
                by: "王秀英".into(),
                covers: "basic".into(),
            },
        )
        .unwrap();
    let err = teacher
        .archive
        .add_record(&RecordInput {
            kind: "家访".into(),
            child: Some(CHILDREN[1].1.into()),
            class: None,
            date: "2026-11-20".into(),
            fields: kv(&[("notes", "再访")]),
        })
        .unwrap_err();
    assert!(err.to_string().contains("撤回"), "{err}");
    let err = teacher
        .archive
        .add_progress(&plan, "2026-11-20", &kv(&[("notes", "进步了")]))
        .unwrap_err();
    assert!(err.to_string().contains("撤回"), "{err}");
    // What was recorded before stays, with the office alone (story 18h): her copy is closed
    // to her at once, and she is told why.
    let err = teacher
        .archive
        .child_file_for(CHILDREN[1].1, None)
        .unwrap_err();
    assert!(err.to_string().contains("撤回"), "{err}");
    // The guardian's no is not the 班主任's to undo: it is not listed as consent to obtain.
    assert!(!consent_due(&mut teacher).contains(&CHILDREN[1].1.to_owned()));
    sync(&mut teacher, &mut admin);
    assert_eq!(quarantined(&mut admin.archive), 0);
    assert_eq!(admin.file(CHILDREN[1].1).records.len(), 3);
}

/// 3. A modified app writes the private part of a child without consent, and records consent
///    as a 爱心妈妈: both are refused where they arrive (the office), never merged. After the
///    班主任 records consent, her honest write is accepted.
#[test]
fn story_3_a_modified_app_writing_without_consent_is_refused_on_arrival() {
    let mut admin = school();
    admin.archive.require_consent().unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let c = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let forged = attack::write_private(&mut teacher.archive, &c, ID_CARD);
    let fake_consent = attack::forge(&mut mother.archive, &DocId::Child(c.clone()), None, |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let profile = tx.get(&automerge::ROOT, "profile").unwrap().unwrap().1;
        tx.put(&profile, "consent_covers", "basic,private")?;
        tx.put(&profile, "consent_guardian", "某人")?;
        Ok(())
    });
    admin.import_file(&teacher.export_file("forged"));
    admin.import_file(&mother.export_file("forged"));
    assert!(!holds(
        &mut admin.archive,
        &DocId::Private(c.clone()),
        &forged
    ));
    assert!(!holds(
        &mut admin.archive,
        &DocId::Child(c.clone()),
        &fake_consent
    ));
    let reasons: Vec<String> = admin
        .archive
        .quarantined()
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("监护人")), "{reasons:?}");

    // The same write by an honest device after consent is accepted.
    let mut teacher2 = join(&mut admin, HEAD_TEACHER);
    teacher2
        .archive
        .record_consent(CHILDREN[0].1, &consent("private"))
        .unwrap();
    teacher2
        .archive
        .edit_child(CHILDREN[0].1, "identity", &kv(&[("id_card", ID_CARD)]))
        .unwrap();
    let before = quarantined(&mut admin.archive);
    sync(&mut teacher2, &mut admin);
    assert_eq!(quarantined(&mut admin.archive), before);
    assert!(field(&admin.file(CHILDREN[0].1), "identity", "id_card").is_some());
}

/// `me`'s side of a direct session with `other`, as `relay::peer` makes it (the same helper
/// as in `trust.rs`).
fn peer(me: &mut Device, other: &mut Device) -> shouwang_core::sync::Session {
    let them = me
        .archive
        .find_member(other.archive.me_id().as_str())
        .unwrap();
    let device = other.archive.device().clone();
    me.archive
        .peer_session(device.as_str(), &them)
        .unwrap()
        .with_sender(shouwang_core::store::Sender::Device {
            device,
            roles: Some(them.roles.clone()),
        })
}

/// 3b. The same forged private write handed over directly, device to device (a 班主任's phone
///     meeting the office computer on the school Wi-Fi): refused where it arrives, and the
///     phone is told why.
#[test]
fn story_3b_between_devices_the_forged_private_write_is_refused_and_the_sender_told() {
    let mut admin = school();
    admin.archive.require_consent().unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let c = teacher.archive.find_child(CHILDREN[2].1).unwrap();
    let forged = attack::write_private(&mut teacher.archive, &c, ID_CARD);
    let admin_id = admin.archive.device().clone();
    let admin_side = peer(&mut admin, &mut teacher);
    let teacher_side = peer(&mut teacher, &mut admin);
    attack::pump(
        &mut admin.archive,
        admin_side,
        &mut teacher.archive,
        teacher_side,
    );
    assert!(!holds(
        &mut admin.archive,
        &DocId::Private(c.clone()),
        &forged
    ));
    let status = teacher.archive.sync_status(admin_id.as_str()).unwrap();
    assert_eq!(status.refused.len(), 1, "{status:?}");
    assert!(status.refused[0].2.contains("监护人"), "{status:?}");
}

fn roster_with_new_child() -> Vec<shouwang_core::roster::RosterRow> {
    parse_table(&[
        ["学籍号", "姓名", "班级", "身份证号"]
            .map(String::from)
            .to_vec(),
        ["G340521201703060033", "陈思远", CLASS, NEW_CHILD_ID_CARD]
            .map(String::from)
            .to_vec(),
    ])
    .unwrap()
}

/// 4. A roster with the 身份证号 of a child without consent: the child's file is created, the
///    number (and the 学籍号, which holds it) is not stored anywhere and the report says so;
///    once consent is recorded, importing the same roster again stores it.
#[test]
fn story_4_roster_id_numbers_wait_for_consent() {
    let mut admin = school();
    admin.archive.require_consent().unwrap();
    let report = admin
        .archive
        .import_roster(&roster_with_new_child())
        .unwrap();
    assert_eq!(report.new_children, 1);
    assert_eq!(report.withheld.len(), 1);
    assert_eq!(report.withheld[0].child, "陈思远");
    let f = admin.file("陈思远");
    assert_eq!(field(&f, "identity", "id_card"), None);
    assert_eq!(field(&f, "identity", "student_no"), None);
    let raw = raw_store(&admin.path());
    assert!(
        !holds_text(&raw, NEW_CHILD_ID_CARD),
        "not stored before consent"
    );
    assert_eq!(
        consent_due(&mut admin).len(),
        0,
        "the 班主任's duty, not the principal's"
    );
    // A child whose 学籍号 was stored before consent was required: the same 学籍号 again is not
    // news, a 身份证号 is.
    let known = |card: &str| {
        let mut header = vec!["学籍号", "姓名", "班级"];
        let mut row = vec![CHILDREN[0].0, CHILDREN[0].1, CLASS];
        if !card.is_empty() {
            header.push("身份证号");
            row.push(card);
        }
        parse_table(&[
            header.into_iter().map(String::from).collect(),
            row.into_iter().map(String::from).collect(),
        ])
        .unwrap()
    };
    assert!(
        admin
            .archive
            .import_roster(&known(""))
            .unwrap()
            .withheld
            .is_empty()
    );
    let report = admin.archive.import_roster(&known(ID_CARD)).unwrap();
    assert_eq!(report.withheld.len(), 1);
    assert_eq!(
        field(&admin.file(CHILDREN[0].1), "identity", "id_card"),
        None
    );

    admin
        .archive
        .record_consent("陈思远", &consent("basic,private"))
        .unwrap();
    let report = admin
        .archive
        .import_roster(&roster_with_new_child())
        .unwrap();
    assert_eq!(report.new_children, 0);
    assert!(report.withheld.is_empty());
    let f = admin.file("陈思远");
    assert_eq!(field(&f, "identity", "id_card").map(str::len), Some(18));
    // Shown masked (a 学籍号 that embeds the ID number, issue 11 point 6); in full on a
    // recorded reveal.
    assert_eq!(
        field(&f, "identity", "student_no"),
        Some("G340521********0033")
    );
    let f = admin.archive.reveal_id("陈思远", "核对学籍").unwrap();
    assert_eq!(
        field(&f, "identity", "student_no"),
        Some("G340521201703060033")
    );
}

/// 5. The responsible person: administrators name the school's 个人信息保护负责人, everyone
///    sees it (school view, child file), and a 班主任 cannot change it.
#[test]
fn story_5_the_privacy_officer_is_named_by_administrators() {
    let mut admin = school();
    admin
        .archive
        .set_privacy_officer("王玉波", "13805640099")
        .unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let officer = teacher
        .archive
        .school()
        .unwrap()
        .privacy_officer
        .clone()
        .unwrap();
    assert_eq!(officer.name, "王玉波");
    assert_eq!(officer.phone.as_deref(), Some("13805640099"));
    assert_eq!(
        teacher.file(CHILDREN[0].1).privacy_officer.unwrap().name,
        "王玉波"
    );
    let err = teacher
        .archive
        .set_privacy_officer("王瑞侠", "13805640001")
        .unwrap_err();
    assert!(matches!(err, Error::NotPermitted(_)), "{err}");
    let before = heads(&mut admin);
    assert!(admin.archive.set_privacy_officer("王玉波", "12").is_err());
    assert!(
        admin
            .archive
            .set_privacy_officer(" ", "13805640099")
            .is_err()
    );
    assert_eq!(heads(&mut admin), before);
}

/// 6. A lost phone: the 爱心妈妈's device is reported lost. It is revoked, and the report lists
///    exactly the child she cares for now, the child of her ended pairing apart (held until its
///    next sync), and the device's registration as the earliest it could have held them; the
///    班主任's phone lists her whole class with its private parts.
#[test]
fn story_6_a_lost_phone_report_lists_the_children_it_held() {
    let mut admin = school();
    let mother = join(&mut admin, LOVE_MOTHER);
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let device = mother.archive.device().to_string();
    let err = teacher.archive.report_lost_device(&device).unwrap_err();
    assert!(matches!(err, Error::NotPermitted(_)), "{err}");

    // She now cares for another child; her pairing with the first ended (her phone dropped
    // that file at its next sync, if it synced since).
    admin
        .archive
        .pair(LOVE_MOTHER, CHILDREN[3].1, None)
        .unwrap();
    admin
        .archive
        .end_pairing(LOVE_MOTHER, CHILDREN[0].1)
        .unwrap();
    let report = admin.archive.report_lost_device(&device).unwrap();
    assert_eq!(report.member, LOVE_MOTHER);
    assert!(report.newly_revoked);
    assert!(report.registered_at.is_some());
    let names: Vec<&str> = report.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec![CHILDREN[3].1]);
    assert!(!report.children[0].synced, "bundles leave no sync record");
    let ended: Vec<&str> = report
        .ended_pairings
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(ended, vec![CHILDREN[0].1]);
    assert!(
        !report.children[0].private,
        "a 爱心妈妈 never holds the private part"
    );
    assert!(
        admin
            .archive
            .devices()
            .unwrap()
            .iter()
            .any(|d| d.id == device && d.revoked)
    );

    let teachers = teacher.archive.device().to_string();
    let report = admin.archive.report_lost_device(&teachers).unwrap();
    assert_eq!(report.children.len(), CHILDREN.len());
    assert!(report.children.iter().all(|c| c.private));
    // Reporting again says it was already revoked and still lists the files.
    let again = admin.archive.report_lost_device(&teachers).unwrap();
    assert!(!again.newly_revoked);
    assert_eq!(again.children.len(), CHILDREN.len());
    let _ = mother;
}

/// 7. Resolving a conflict is a write like any other: after the guardian withdrew consent to
///    the private part, a conflict in it cannot be resolved (every device would refuse it), and
///    only the 班主任 or an administrator may settle a conflict in the consent itself.
#[test]
fn story_7_resolving_a_conflict_obeys_consent() {
    let mut admin = school();
    admin.archive.require_consent().unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    teacher
        .archive
        .record_consent(CHILDREN[0].1, &consent("basic,private"))
        .unwrap();
    sync(&mut teacher, &mut admin);
    // Apart: both set the flag differently, and both record the form with another number.
    teacher
        .archive
        .edit_child(
            CHILDREN[0].1,
            "private_flags",
            &kv(&[("psychological", "是")]),
        )
        .unwrap();
    admin
        .archive
        .edit_child(
            CHILDREN[0].1,
            "private_flags",
            &kv(&[("psychological", "否")]),
        )
        .unwrap();
    teacher
        .archive
        .record_consent(
            CHILDREN[0].1,
            &ConsentInput {
                form: "TY-2026-018".into(),
                ..consent("basic,private")
            },
        )
        .unwrap();
    admin
        .archive
        .record_consent(
            CHILDREN[0].1,
            &ConsentInput {
                form: "TY-2026-019".into(),
                ..consent("basic,private")
            },
        )
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut mother, &mut admin);
    let err = mother
        .archive
        .resolve(CHILDREN[0].1, "profile.consent_form", Some(1), None)
        .unwrap_err();
    assert!(matches!(err, Error::NotPermitted(_)), "{err}");
    teacher
        .archive
        .withdraw_consent(
            CHILDREN[0].1,
            &WithdrawalInput {
                date: "2026-11-18".into(),
                by: "王秀英".into(),
                covers: "private".into(),
            },
        )
        .unwrap();
    let err = teacher
        .archive
        .resolve(CHILDREN[0].1, "private_flags.psychological", Some(1), None)
        .unwrap_err();
    assert!(err.to_string().contains("撤回"), "{err}");
    teacher
        .archive
        .resolve(CHILDREN[0].1, "profile.consent_form", Some(1), None)
        .unwrap();
    sync(&mut teacher, &mut admin);
    assert_eq!(quarantined(&mut admin.archive), 0);
}

/// 8. A guardian who never signed a consent objects to the school recording her grandchild's
///    file (a school that does not require consent). The 班主任 records the objection: from
///    then on no device writes what it covers, the file says 拒绝, what was recorded before
///    stays, and a modified app's 谈心 on top of it is refused where it arrives. A consent
///    signed later clears it.
#[test]
fn story_8_an_objection_without_a_grant_binds_like_a_withdrawal() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let child = CHILDREN[0].1;
    teacher.record("家访", child, "2026-11-17", &[("notes", "奶奶在家")]);
    let hint = teacher
        .archive
        .withdraw_consent(
            child,
            &WithdrawalInput {
                date: "2026-11-18".into(),
                by: "王秀英".into(),
                covers: "basic,private".into(),
            },
        )
        .unwrap();
    assert!(hint.contains("拒绝"), "{hint}");
    let visit = RecordInput {
        kind: "家访".into(),
        child: Some(child.into()),
        class: None,
        date: "2026-11-19".into(),
        fields: kv(&[("notes", "再访")]),
    };
    let err = teacher.archive.add_record(&visit).unwrap_err();
    assert!(err.to_string().contains("拒绝"), "{err}");
    assert!(counselling(&mut teacher, child).is_err());
    // The file is closed to her at once (only the office keeps it: story 18h), saying why.
    let err = teacher.archive.child_file_for(child, None).unwrap_err();
    assert!(err.to_string().contains("拒绝"), "{err}");
    // Her app writes anyway, over the objection it holds: refused where it arrives.
    let c_id = admin.archive.find_child(child).unwrap();
    let forged = attack::home_visit_dated(&mut teacher.archive, &c_id, "2026-11-19");
    sync(&mut teacher, &mut admin);
    assert!(!holds(
        &mut admin.archive,
        &DocId::Child(c_id.clone()),
        &forged
    ));
    assert_eq!(quarantined(&mut admin.archive), 1);
    let c = admin.file(child).consent.unwrap();
    assert!(c.is_objection());
    assert!(
        c.line().contains("王秀英 于 2026-11-18 拒绝"),
        "{}",
        c.line()
    );
    assert_eq!(
        admin.file(child).records.len(),
        1,
        "what was recorded before stays"
    );
    // The 爱心妈妈's phone drops the file at its next exchange, and writes nothing into it.
    sync(&mut mother, &mut admin);
    assert!(
        mother
            .archive
            .add_record(&RecordInput {
                kind: "谈心".into(),
                ..visit.clone()
            })
            .is_err()
    );
    assert!(mother.archive.find_child(child).is_err());

    // She signs after all, at the office: the objection is cleared and the 班主任 writes
    // again once her phone has the file back.
    admin
        .archive
        .record_consent(child, &consent("basic"))
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut teacher, &mut admin);
    teacher.archive.add_record(&visit).unwrap();
}

/// 9. What the 班主任 is asked to obtain is consent nobody has decided on. A guardian who
///    objected, or withdrew the private part, has decided: that child is not listed as
///    缺监护人同意 (on her phone or in the office's view of her 待办), while a child whose
///    guardian signed for the basic file only, and one with nothing recorded, still are.
#[test]
fn story_9_a_guardian_s_no_is_not_listed_as_consent_to_obtain() {
    let mut admin = school();
    admin.archive.require_consent().unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let [objected, basic_only, withdrawn, undecided] = [0, 1, 2, 3].map(|i| CHILDREN[i].1);
    let no = |covers: &str| WithdrawalInput {
        date: "2026-11-18".into(),
        by: "王秀英".into(),
        covers: covers.into(),
    };
    let a = &mut teacher.archive;
    a.withdraw_consent(objected, &no("basic,private")).unwrap();
    a.record_consent(basic_only, &consent("basic")).unwrap();
    a.record_consent(withdrawn, &consent("basic,private"))
        .unwrap();
    a.withdraw_consent(withdrawn, &no("private")).unwrap();
    let mut listed = consent_due(&mut teacher);
    listed.sort();
    let mut owed = vec![basic_only.to_owned(), undecided.to_owned()];
    owed.sort();
    assert_eq!(listed, owed);
    sync(&mut teacher, &mut admin);
    let mut hers = consent_due_of(&mut admin, Some(HEAD_TEACHER));
    hers.sort();
    assert_eq!(hers, owed, "the office's projection agrees");
}

/// 10. A guardian withdraws the private part, and later signs a new form for the basic file
///     only. The new grant lifts nothing it does not cover: the private part stays closed
///     (it was opened again before), and the file still says it was withdrawn. A later form
///     that covers it opens it.
#[test]
fn story_10_a_new_grant_keeps_the_withdrawals_it_does_not_cover() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let child = CHILDREN[0].1;
    let a = &mut teacher.archive;
    a.record_consent(child, &consent("basic,private")).unwrap();
    a.withdraw_consent(
        child,
        &WithdrawalInput {
            date: "2026-11-18".into(),
            by: "王秀英".into(),
            covers: "private".into(),
        },
    )
    .unwrap();
    assert!(counselling(&mut teacher, child).is_err());
    teacher
        .archive
        .record_consent(child, &consent("basic"))
        .unwrap();
    let err = counselling(&mut teacher, child).unwrap_err();
    assert!(err.to_string().contains("撤回"), "{err}");
    let c = teacher.file(child).consent.unwrap();
    assert!(
        c.is_withdrawn(shouwang_core::consent::Cover::Private),
        "{c:?}"
    );
    assert!(c.covers(shouwang_core::consent::Cover::Basic), "{c:?}");
    teacher
        .archive
        .record_consent(child, &consent("basic,private"))
        .unwrap();
    counselling(&mut teacher, child).unwrap();
}

fn withdrawal(covers: &str, date: &str) -> WithdrawalInput {
    WithdrawalInput {
        date: date.into(),
        by: "王秀英".into(),
        covers: covers.into(),
    }
}

/// The office and the 班主任's phone, after she recorded the guardian's consent to `covers`
/// for the first child and then, unless empty, its withdrawal of `withdrawn` (2026-11-10),
/// and synced.
fn consented(covers: &str, withdrawn: &str) -> (Device, Device) {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let child = CHILDREN[0].1;
    teacher
        .archive
        .record_consent(child, &consent(covers))
        .unwrap();
    if !withdrawn.is_empty() {
        teacher
            .archive
            .withdraw_consent(child, &withdrawal(withdrawn, "2026-11-10"))
            .unwrap();
    }
    sync(&mut teacher, &mut admin);
    (admin, teacher)
}

/// 11. The guardian has withdrawn the private part and photos. At the office the
///     grandmother withdraws the basic file too, while the 班主任, offline in the village,
///     records the mother's new form granting photos again. When the two meet, each decision
///     stands as its own: the basic file and the private part withdrawn, photos granted,
///     whichever write the merge takes first. (Kept as one list, the two writes were two
///     values of one key: one of the guardian's decisions was lost, and which depended on
///     the devices' ids.)
#[test]
fn story_11_a_withdrawal_and_a_grant_made_apart_both_stand() {
    use shouwang_core::consent::Cover;

    let (mut admin, mut teacher) = consented("basic,private,photos", "private,photos");
    let child = CHILDREN[0].1;
    // Apart.
    admin
        .archive
        .withdraw_consent(child, &withdrawal("basic", "2026-11-18"))
        .unwrap();
    teacher
        .archive
        .record_consent(child, &consent("photos"))
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut teacher, &mut admin);
    let c = admin.file(child).consent.unwrap();
    assert!(c.is_withdrawn(Cover::Basic), "{c:?}");
    assert!(c.is_withdrawn(Cover::Private), "{c:?}");
    assert!(c.covers(Cover::Photos), "{c:?}");
    assert_eq!(quarantined(&mut admin.archive), 0);
    // The basic file withdrawn, her phone drops it (story 18h) once the office holds her
    // grant: the second exchange says so.
    assert!(teacher.archive.find_child(child).is_err());
    assert!(counselling(&mut teacher, child).is_err());
}

/// 12. A modified (or old) app records a grant of the basic file and clears every
///     withdrawal with it, the private part's included: refused where it arrives. A grant
///     lifts only what it covers.
#[test]
fn story_12_a_grant_that_lifts_a_withdrawal_it_does_not_cover_is_refused() {
    use shouwang_core::consent::Cover;

    let (mut admin, mut teacher) = consented("basic,private", "private");
    let child = CHILDREN[0].1;
    let c = teacher.archive.find_child(child).unwrap();
    let forged = attack::forge(&mut teacher.archive, &DocId::Child(c.clone()), None, |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let profile = tx.get(&automerge::ROOT, "profile").unwrap().unwrap().1;
        let withdrawals: Vec<String> = tx
            .keys(&profile)
            .filter(|k| k.starts_with("consent_withdrawn"))
            .collect();
        assert!(!withdrawals.is_empty());
        for k in withdrawals {
            tx.delete(&profile, k.as_str())?;
        }
        tx.put(&profile, "consent_covers", "basic")?;
        tx.put(&profile, "consent_date", "2026-11-19")?;
        Ok(())
    });
    sync(&mut teacher, &mut admin);
    assert!(!holds(&mut admin.archive, &DocId::Child(c), &forged));
    let reasons: Vec<String> = admin
        .archive
        .quarantined()
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("撤回"), "{reasons:?}");
    let c = admin.file(child).consent.unwrap();
    assert!(c.is_withdrawn(Cover::Private), "{c:?}");
}

/// 13. A withdrawal an older build kept as one list binds as before; the next grant, of the
///     basic file, moves what it does not cover to a key of its own, and the office takes
///     that move (it lifts nothing).
#[test]
fn story_13_a_withdrawal_kept_by_an_older_build_is_moved_and_still_binds() {
    use automerge::ReadDoc;
    use shouwang_core::consent::{self, Cover};

    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let child = CHILDREN[0].1;
    teacher
        .archive
        .record_consent(child, &consent("basic,private"))
        .unwrap();
    let c = teacher.archive.find_child(child).unwrap();
    let doc = DocId::Child(c.clone());
    // As an older build wrote a withdrawal.
    attack::forge(&mut teacher.archive, &doc, None, |tx| {
        use automerge::transaction::Transactable;
        let profile = tx.get(&automerge::ROOT, "profile").unwrap().unwrap().1;
        tx.put(&profile, consent::WITHDRAWN_ON, "2026-11-10")?;
        tx.put(&profile, consent::WITHDRAWN_BY, "王秀英")?;
        tx.put(&profile, consent::WITHDRAWN_COVERS, "private")?;
        Ok(())
    });
    assert!(counselling(&mut teacher, child).is_err(), "it binds");
    teacher
        .archive
        .record_consent(child, &consent("basic"))
        .unwrap();
    let keys: Vec<String> = {
        let d = teacher.archive.store().doc(&doc).unwrap().unwrap();
        let profile = d.get(&automerge::ROOT, "profile").unwrap().unwrap().1;
        d.keys(&profile)
            .filter(|k| k.starts_with(consent::WITHDRAWN_PREFIX))
            .collect()
    };
    assert_eq!(keys, vec![consent::withdrawn_key(Cover::Private)]);
    sync(&mut teacher, &mut admin);
    assert_eq!(quarantined(&mut admin.archive), 0);
    let c = admin.file(child).consent.unwrap();
    assert!(c.is_withdrawn(Cover::Private), "{c:?}");
    assert!(c.covers(Cover::Basic), "{c:?}");
    assert_eq!(c.withdrawn.unwrap().date, "2026-11-10");
    assert!(counselling(&mut teacher, child).is_err());
}

/// 15. While the office records the guardian's withdrawal of the private part, a modified
///     app of the 班主任, not having seen it, writes a withdrawal list of the older layout
///     naming nothing. Merged, the withdrawal still binds: an older list adds to the keys, it
///     never hides them.
#[test]
fn story_15_an_older_list_naming_nothing_does_not_hide_a_withdrawal() {
    use shouwang_core::consent::{self, Cover};

    let (mut admin, mut teacher) = consented("basic,private", "");
    let child = CHILDREN[0].1;
    admin
        .archive
        .withdraw_consent(child, &withdrawal("private", "2026-11-18"))
        .unwrap();
    let c = teacher.archive.find_child(child).unwrap();
    attack::forge(&mut teacher.archive, &DocId::Child(c), None, |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let profile = tx.get(&automerge::ROOT, "profile").unwrap().unwrap().1;
        tx.put(&profile, consent::WITHDRAWN_ON, "2026-11-18")?;
        tx.put(&profile, consent::WITHDRAWN_COVERS, "none")?;
        Ok(())
    });
    sync(&mut teacher, &mut admin);
    sync(&mut teacher, &mut admin);
    for (who, d) in [("office", &mut admin), ("phone", &mut teacher)] {
        let c = d.file(child).consent.unwrap();
        assert!(c.is_withdrawn(Cover::Private), "{who}: {c:?}");
    }
    assert!(counselling(&mut teacher, child).is_err());
}

/// The office withdraws consent to the private part, which the 班主任's phone has not heard
/// of; her modified app writes a harmless change (the consent's date again) and turns its one
/// operation into `action` on the withdrawal's key, superseding the office's operation.
/// Returns the office, her device, the document and the crafted change.
fn over_a_withdrawal_never_seen(action: automerge::legacy::OpType) -> (Device, Crafted) {
    use automerge::ReadDoc;
    use shouwang_core::consent::{self, Cover};

    let (mut admin, mut teacher) = consented("basic,private", "");
    let child = CHILDREN[0].1;
    admin
        .archive
        .withdraw_consent(child, &withdrawal("private", "2026-11-18"))
        .unwrap();
    let doc = DocId::Child(teacher.archive.find_child(child).unwrap());
    let key = consent::withdrawn_key(Cover::Private);
    // The office's withdrawal op, as an operation superseding it names it.
    let withdrawal_op = {
        let d = admin.archive.store().doc(&doc).unwrap().unwrap();
        let profile = d.get(&automerge::ROOT, "profile").unwrap().unwrap().1;
        d.get(&profile, key.as_str()).unwrap().unwrap().1
    };
    let honest = attack::forge(&mut teacher.archive, &doc, None, |tx| {
        use automerge::transaction::Transactable;
        let profile = tx.get(&automerge::ROOT, "profile").unwrap().unwrap().1;
        tx.put(&profile, consent::DATE, "2026-09-02")?;
        Ok(())
    });
    let d = teacher.archive.store().doc(&doc).unwrap().unwrap();
    let mut expanded = d.get_change_by_hash(&honest).unwrap().decode();
    let (counter, actor) = withdrawal_op
        .to_string()
        .split_once('@')
        .map(|(c, a)| {
            (
                c.parse::<u64>().unwrap(),
                automerge::ActorId::from(hex::decode(a).unwrap()),
            )
        })
        .unwrap();
    let op = &mut expanded.operations[0];
    op.key = automerge::legacy::Key::Map(key.as_str().into());
    op.action = action;
    op.pred =
        automerge::legacy::SortedVec::from(vec![automerge::legacy::OpId::new(counter, &actor)]);
    let crafted = Crafted {
        device: teacher.archive.device().clone(),
        doc,
        change: automerge::Change::from(expanded),
    };
    (admin, crafted)
}

/// A change her modified app made, and where it goes.
struct Crafted {
    device: shouwang_core::ids::DeviceId,
    doc: DocId,
    change: automerge::Change,
}

impl Crafted {
    /// Merges it into `office`'s store as her phone sending it.
    fn sent_to(
        &self,
        office: &mut Device,
    ) -> shouwang_core::Result<shouwang_core::store::Admission> {
        office.archive.store().write(|b| {
            b.set_sender(shouwang_core::store::Sender::Device {
                device: self.device.clone(),
                roles: Some(vec![shouwang_core::roles::Role::HeadTeacher]),
            });
            b.merge_bytes(&self.doc, self.change.raw_bytes())
        })
    }
}

/// 16. A modified app deletes the withdrawal key from a state that never held it, naming the
///     office's withdrawal as what the delete supersedes (automerge takes a delete of an
///     operation its change does not depend on). Refused where it arrives: a change may take
///     away only a withdrawal it has seen.
#[test]
fn story_16_a_delete_of_a_withdrawal_it_never_saw_is_refused() {
    use shouwang_core::consent::Cover;

    let (mut admin, crafted) = over_a_withdrawal_never_seen(automerge::legacy::OpType::Delete);
    let before = admin.archive.store().all_heads().unwrap();
    crafted.sent_to(&mut admin).unwrap();
    let c = admin.file(CHILDREN[0].1).consent.unwrap();
    assert!(c.is_withdrawn(Cover::Private), "{c:?}");
    assert_eq!(admin.archive.store().all_heads().unwrap(), before);
    assert_eq!(quarantined(&mut admin.archive), 1);
}

/// 14. The 班主任 recorded a withdrawal for the wrong child, and undoes it by entering the
///     same consent form again: the same date, number and scope, so no value of the grant
///     changes. The office takes it all the same (the grant is in the change).
#[test]
fn story_14_entering_the_same_form_again_lifts_a_mistaken_withdrawal_everywhere() {
    use shouwang_core::consent::Cover;

    let (mut admin, mut teacher) = consented("basic,private", "private");
    let child = CHILDREN[0].1;
    teacher
        .archive
        .record_consent(child, &consent("basic,private"))
        .unwrap();
    counselling(&mut teacher, child).unwrap();
    sync(&mut teacher, &mut admin);
    assert_eq!(quarantined(&mut admin.archive), 0);
    let c = admin.file(child).consent.unwrap();
    assert!(c.covers(Cover::Private), "{c:?}");
    assert_eq!(c.withdrawn, None, "{c:?}");
}

/// 16b. The same as 16 with an increment: automerge lets an increment naming a value that is
///      not a counter take its place (and may panic listing it back out). Nothing in a
///      school's files is a counter: the input is refused before automerge reads it, the same
///      way whatever the actors' order (it quarantined or failed as "damaged" by turns before).
#[test]
fn story_16b_an_increment_over_a_withdrawal_is_refused() {
    use shouwang_core::consent::Cover;

    for _ in 0..4 {
        let (mut admin, crafted) =
            over_a_withdrawal_never_seen(automerge::legacy::OpType::Increment(1));
        let before = admin.archive.store().all_heads().unwrap();
        let e = crafted.sent_to(&mut admin).unwrap_err();
        assert!(e.to_string().contains("不使用的计数操作"), "{e}");
        assert!(!holds(
            &mut admin.archive,
            &crafted.doc,
            &crafted.change.hash()
        ));
        assert_eq!(admin.archive.store().all_heads().unwrap(), before);
        let c = admin.file(CHILDREN[0].1).consent.unwrap();
        assert!(c.is_withdrawn(Cover::Private), "{c:?}");
    }
}

/// 17. The office and the 班主任 both enter the guardian's new form while apart, the same
///     form: the two grants agree, and no conflict is listed for anyone to resolve (each
///     grant's `consent_recorded` differs, by design: it is not a value a person chose).
#[test]
fn story_17_the_same_form_entered_on_two_devices_apart_is_no_conflict() {
    let (mut admin, mut teacher) = consented("basic", "");
    let child = CHILDREN[0].1;
    let form = ConsentInput {
        date: "2026-11-19".into(),
        form: "TY-2026-031".into(),
        ..consent("basic,private")
    };
    admin.archive.record_consent(child, &form).unwrap();
    teacher.archive.record_consent(child, &form).unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut teacher, &mut admin);
    for (who, d) in [("office", &mut admin), ("phone", &mut teacher)] {
        let f = d.file(child);
        assert!(f.conflicts.is_empty(), "{who}: {:?}", f.conflicts);
        assert!(
            f.consent
                .unwrap()
                .covers(shouwang_core::consent::Cover::Private)
        );
    }
    assert_eq!(quarantined(&mut admin.archive), 0);
}

/// 18. The guardian withdraws consent to the private part. From then on only the
///     administrators hold it (the school answers the guardian and erases it from there): the
///     班主任's phone drops it at its next exchange with the office, what the office sends her
///     no longer carries it, and she can no longer reveal the 身份证号; the basic file she keeps.
///     A new grant of the private part brings it back to her.
#[test]
fn story_18_after_a_withdrawal_of_the_private_part_only_administrators_hold_it() {
    let (mut admin, mut teacher) = consented("basic,private", "");
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let private = DocId::Private(child.clone());
    let holds_private = |d: &mut Device| d.archive.store().doc_ids().unwrap().contains(&private);
    assert!(holds_private(&mut teacher), "she held it before");
    teacher
        .archive
        .withdraw_consent(CHILDREN[0].1, &withdrawal("private", "2026-11-20"))
        .unwrap();
    sync(&mut teacher, &mut admin);
    assert!(!holds_private(&mut teacher), "her phone still holds it");
    assert!(holds_private(&mut admin));
    let err = teacher
        .archive
        .reveal_id(CHILDREN[0].1, "核对学籍信息")
        .unwrap_err();
    assert!(err.to_string().contains("撤回"), "{err}");
    let basic = teacher.file(CHILDREN[0].1);
    assert!(basic.consent.is_some_and(|c| c.withdrawn.is_some()));
    // The 爱心妈妈, who never held it, is refused as before: the refusal is not where she
    // learns of the guardian's decision about a part she never sees.
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let err = mother
        .archive
        .reveal_id(CHILDREN[0].1, "核对学籍信息")
        .unwrap_err();
    assert!(!err.to_string().contains("撤回"), "{err}");
    // The office's next files for her leave it out, and nothing of it comes back.
    let file = admin.export_for("after-withdrawal", teacher.archive.me_id().as_str());
    let entries = teacher
        .archive
        .open_bundle(&std::fs::read(&file).unwrap())
        .unwrap()
        .entries;
    assert!(entries.iter().any(|e| e.doc == DocId::Child(child.clone())));
    assert!(
        !entries.iter().any(|e| e.doc == private),
        "the file carries it"
    );
    sync(&mut teacher, &mut admin);
    assert!(!holds_private(&mut teacher));
    // The guardian signs again: the private part is hers to hold once more.
    teacher
        .archive
        .record_consent(CHILDREN[0].1, &consent("basic,private"))
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut teacher, &mut admin);
    assert!(holds_private(&mut teacher), "a new grant brings it back");
}

/// 18h. The guardian withdraws consent to the basic file (or never gave it and objects):
///      《儿童个人信息网络保护规定》第20条 has the school delete what it holds, so from then on
///      only the administrators hold any of her file, until they erase it. The 班主任's and
///      the 爱心妈妈's phones drop it at their next exchange with the office (the 谈心 and the
///      consent form's number with it), files for them leave it out; a new grant, entered at the
///      office, gives it back.
#[test]
fn story_18h_after_a_withdrawal_of_the_basic_file_only_administrators_hold_any_of_it() {
    let (mut admin, mut teacher) = consented("basic,private", "");
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let talk = mother.record(
        "谈心",
        CHILDREN[0].1,
        "2026-11-18",
        &[("notes", "说想妈妈了，约好周末视频")],
    );
    sync(&mut mother, &mut admin);
    let docs_of = |d: &mut Device| -> Vec<DocId> {
        d.archive
            .store()
            .doc_ids()
            .unwrap()
            .into_iter()
            .filter(|id| id.child() == Some(&child))
            .collect()
    };
    let held = docs_of(&mut teacher);
    assert!(held.contains(&DocId::Private(child.clone())), "{held:?}");
    teacher
        .archive
        .withdraw_consent(CHILDREN[0].1, &withdrawal("basic", "2026-11-20"))
        .unwrap();
    // Her phone keeps it until the office holds the withdrawal she typed (the office's file of
    // the first exchange was made before it took hers); the second exchange says it does.
    sync(&mut teacher, &mut admin);
    sync(&mut teacher, &mut admin);
    sync(&mut mother, &mut admin);
    for d in [&mut teacher, &mut mother] {
        assert_eq!(
            docs_of(d),
            Vec::<DocId>::new(),
            "{} still holds her file",
            d.name
        );
        let path = d.path();
        let leaks = store_leaks(
            d.name,
            &path,
            &mut d.archive,
            &["说想妈妈了", "TY-2026-017"],
        );
        assert!(leaks.is_empty(), "{leaks:?}");
    }
    assert_eq!(
        docs_of(&mut admin),
        held,
        "the office keeps it until it erases it"
    );
    // Nobody owes her a 谈心 or a 家访 any more: not on the 爱心妈妈's phone (which no longer
    // knows her name), not in the office's view of anyone's 待办.
    let owed = |d: &mut Device, member: Option<&str>| -> Vec<String> {
        d.archive
            .due(member, today(), true)
            .unwrap()
            .into_iter()
            .filter(|i| i.child.as_ref() == Some(&child))
            .map(|i| format!("{i:?}"))
            .collect()
    };
    assert_eq!(owed(&mut mother, None), Vec::<String>::new());
    for member in [HEAD_TEACHER, LOVE_MOTHER] {
        let id = admin.archive.find_member(member).unwrap().id;
        assert_eq!(
            owed(&mut admin, Some(id.as_str())),
            Vec::<String>::new(),
            "{member}"
        );
    }
    assert!(holds_record(
        &mut admin,
        &DocId::Child(child.clone()),
        &talk
    ));
    // The office's files for them leave it out.
    let file = admin.export_for("after-withdrawal", mother.archive.me_id().as_str());
    let entries = mother
        .archive
        .open_bundle(&std::fs::read(&file).unwrap())
        .unwrap()
        .entries;
    assert!(
        !entries.iter().any(|e| e.doc.child() == Some(&child)),
        "the file carries it"
    );
    // The guardian signs again, at the office: the file is theirs to hold once more.
    admin
        .archive
        .record_consent(CHILDREN[0].1, &consent("basic,private"))
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut teacher, &mut admin);
    assert_eq!(docs_of(&mut teacher), held, "a new grant brings it back");
}

/// 18i. A 班主任 in a school that hands work in by file records the grandmother's
///      objection to the basic file, and her 家访 from before it. Her weekly file, made for
///      herself as `shouwang bundle export` makes it, still carries the file to the office:
///      her own work in it must reach the school before her phone lets the file go.
#[test]
fn story_18i_her_own_weekly_file_carries_the_withdrawal_she_typed() {
    let (mut admin, mut teacher) = consented("basic,private", "");
    let visit = teacher.record(
        "家访",
        CHILDREN[0].1,
        "2026-11-19",
        &[("notes", "奶奶在家")],
    );
    teacher
        .archive
        .withdraw_consent(CHILDREN[0].1, &withdrawal("basic", "2026-11-20"))
        .unwrap();
    let me = teacher.archive.me_id().to_string();
    admin.import_file(&teacher.export_for("weekly", &me));
    let c = admin.file(CHILDREN[0].1).consent.unwrap();
    assert!(
        c.is_withdrawn(shouwang_core::consent::Cover::Basic),
        "{c:?}"
    );
    let child = admin.archive.find_child(CHILDREN[0].1).unwrap();
    assert!(holds_record(&mut admin, &DocId::Child(child), &visit));
}

/// 18j. An office file says which files it no longer sends her, as the school stood when it
///      was made. One made while her pairing had ended, imported after she was paired again
///      (late, or a second time), judged a school that has changed since: her phone keeps
///      the file she may see.
#[test]
fn story_18j_an_older_office_file_does_not_take_a_file_she_may_see_again() {
    let mut admin = school();
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let child = admin.archive.find_child(CHILDREN[0].1).unwrap();
    mother.record(
        "谈心",
        CHILDREN[0].1,
        "2026-11-18",
        &[("notes", "说想妈妈了")],
    );
    sync(&mut mother, &mut admin);
    admin
        .archive
        .end_pairing(LOVE_MOTHER, CHILDREN[0].1)
        .unwrap();
    let me = mother.archive.me_id().to_string();
    let older = admin.export_for("week-1", &me);
    admin
        .archive
        .pair(LOVE_MOTHER, CHILDREN[0].1, None)
        .unwrap();
    sync(&mut mother, &mut admin);
    let holds = |d: &mut Device| {
        d.archive
            .store()
            .doc_ids()
            .unwrap()
            .contains(&DocId::Child(child.clone()))
    };
    assert!(holds(&mut mother), "paired again, she holds the file");
    mother.import_file(&older);
    assert!(holds(&mut mother), "the older file took it");
    // Nor one made `since` an earlier file, which leaves out the school document (unchanged
    // since) and so cannot say which school it judged.
    admin
        .archive
        .end_pairing(LOVE_MOTHER, CHILDREN[0].1)
        .unwrap();
    let base = admin.archive.export_bundle(Some(&me), None).unwrap();
    let base = admin.archive.open_bundle(&base).unwrap();
    let since = admin.archive.export_bundle(Some(&me), Some(&base)).unwrap();
    admin
        .archive
        .pair(LOVE_MOTHER, CHILDREN[0].1, None)
        .unwrap();
    sync(&mut mother, &mut admin);
    assert!(holds(&mut mother));
    mother.archive.import_bundle(&since).unwrap();
    assert!(holds(&mut mother), "a file made since another took it");
}

/// Whether `d` holds record `id` in document `doc`.
fn holds_record(d: &mut Device, doc: &DocId, id: &str) -> bool {
    use automerge::ReadDoc;
    let doc = d.archive.store().doc(doc).unwrap();
    doc.is_some_and(|doc| {
        let records = doc.get(automerge::ROOT, "records").unwrap();
        records.is_some_and(|(_, obj)| doc.get(&obj, id).unwrap().is_some())
    })
}

/// 18b. The same in a school that only exchanges files, when the 班主任 wrote in the private
///      part before the guardian withdrew it (a 心理辅导记录). Her phone keeps it until the
///      office holds what she wrote: the file the office made before it had her work leaves
///      it on her phone; the next one says the office holds every change she made there
///      (their hashes, no data), and her phone drops it. Nothing she wrote is lost: the
///      office keeps the record.
#[test]
fn story_18b_files_only_her_private_part_goes_once_the_office_holds_her_work() {
    let (mut admin, mut teacher) = consented("basic,private", "");
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let private = DocId::Private(child.clone());
    let holds_private = |d: &mut Device| d.archive.store().doc_ids().unwrap().contains(&private);
    let record = counselling(&mut teacher, CHILDREN[0].1).unwrap();
    teacher
        .archive
        .withdraw_consent(CHILDREN[0].1, &withdrawal("private", "2026-11-20"))
        .unwrap();
    // Both files are made before either is read: the office's does not hold her record yet.
    sync(&mut teacher, &mut admin);
    assert!(
        holds_record(&mut admin, &private, &record),
        "the office has her record"
    );
    assert!(
        holds_private(&mut teacher),
        "dropped before the office held her record"
    );
    // The office's next file says it holds her work there.
    sync(&mut teacher, &mut admin);
    assert!(!holds_private(&mut teacher), "her phone still holds it");
    assert!(
        holds_record(&mut admin, &private, &record),
        "her record was lost"
    ); // A new phone's file lists nothing held (it holds no work of hers; older builds read it).
    use shouwang_core::bundle::seal::{self, Unlock};
    let second = admin
        .archive
        .export_new_device(HEAD_TEACHER, "第二部手机")
        .unwrap();
    let opened = seal::open(&second.bundle, Unlock::Passphrase(&second.passphrase)).unwrap();
    assert!(opened.bundle.held.is_empty(), "{:?}", opened.bundle.held);
}

/// 18k. An office file for the 班主任 says which parts the office no longer sends her (the
///      private part, after the guardian withdrew it) and that it holds her work there. The
///      file is sealed to every administrator's device too: the archivist's phone, or the
///      office itself importing its own file again, must not take that as said of their own
///      copies. An administrator may see every part; dropped there, the office's copy of her
///      心理辅导记录 could be the only one, and the next file would drop hers.
#[test]
fn story_18k_an_office_file_for_her_drops_nothing_an_administrator_holds() {
    let (mut admin, mut teacher) = consented("basic,private", "");
    let mut archivist = join(&mut admin, "晁月静");
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let private = DocId::Private(child);
    let record = counselling(&mut teacher, CHILDREN[0].1).unwrap();
    teacher
        .archive
        .withdraw_consent(CHILDREN[0].1, &withdrawal("private", "2026-11-20"))
        .unwrap();
    sync(&mut teacher, &mut admin);
    sync(&mut teacher, &mut admin);
    news(&mut admin, &mut archivist);
    for d in [&mut admin, &mut archivist] {
        assert!(holds_record(d, &private, &record), "{}", d.name);
    }
    let for_her = admin.export_for("for-her", HEAD_TEACHER);
    for d in [&mut archivist, &mut admin] {
        let report = d.import_file(&for_her);
        assert_eq!(report.purged, 0, "{}: {report:?}", d.name);
        assert!(
            holds_record(d, &private, &record),
            "{} dropped her 心理辅导记录",
            d.name
        );
    }
}

/// 18c. A modified app on a colleague's phone claims, in a file for the 班主任, to hold her
///      work in the withdrawn private part (the very hashes of her changes): her phone keeps
///      the part, and records nothing of the claim. So it does when an office file both sends
///      the part and says it holds it unsent (no honest file does both). The office's own
///      file, once the office holds her work, drops it. (A colleague's claim is guarded twice:
///      the import records a claim only from an administrator's device, and the purge counts
///      only what is shared with one.)
#[test]
fn story_18c_only_an_administrator_s_file_can_say_the_school_holds_her_work() {
    use shouwang_core::bundle::seal::{self, Lock};
    use shouwang_core::bundle::{Entry, Held};
    let (mut admin, mut teacher) = consented("basic,private", "");
    let mut mother = join(&mut admin, LOVE_MOTHER);
    sync(&mut teacher, &mut admin);
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let private = DocId::Private(child.clone());
    let record = counselling(&mut teacher, CHILDREN[0].1).unwrap();
    teacher
        .archive
        .withdraw_consent(CHILDREN[0].1, &withdrawal("private", "2026-11-20"))
        .unwrap();
    // The office has her work (her file) before anyone claims anything.
    let to_office = teacher.export_for("to-office", admin.archive.me_id().as_str());
    admin.import_file(&to_office);
    assert!(holds_record(&mut admin, &private, &record));
    let (hers, data) = {
        let doc = teacher.archive.store().doc(&private).unwrap().unwrap();
        (doc.get_heads(), doc.save())
    };
    let teacher_key = teacher
        .archive
        .school()
        .unwrap()
        .devices
        .iter()
        .find(|d| &d.id == teacher.archive.device())
        .and_then(|d| d.public_key())
        .unwrap();
    let me = teacher.archive.me_id().as_str().to_owned();
    let claim_from = |d: &mut Device, also_send: bool| {
        let file = d.archive.export_bundle(Some(&me), None).unwrap();
        let mut bundle = d.archive.open_bundle(&file).unwrap();
        bundle.held = vec![Held {
            doc: private.clone(),
            changes: hers.clone(),
        }];
        if also_send {
            bundle.entries.push(Entry {
                doc: private.clone(),
                heads: hers.clone(),
                data: data.clone(),
            });
        }
        let secret = d.archive.device_secret().unwrap();
        seal::seal(&bundle, &secret, None, Lock::Devices(&[teacher_key])).unwrap()
    };
    let holds_private = |d: &mut Device| d.archive.store().doc_ids().unwrap().contains(&private);
    let claims = |d: &mut Device| {
        let peers = d.archive.store().shared_heads_of(&private).unwrap();
        peers
            .into_iter()
            .filter(|(p, _)| p.ends_with(":file"))
            .count()
    };
    let from_mother = claim_from(&mut mother, false);
    teacher.archive.import_bundle(&from_mother).unwrap();
    assert!(
        holds_private(&mut teacher),
        "a colleague's word dropped her work"
    );
    assert_eq!(claims(&mut teacher), 0, "a colleague's claim was recorded");
    let sent_and_held = claim_from(&mut admin, true);
    teacher.archive.import_bundle(&sent_and_held).unwrap();
    assert!(
        holds_private(&mut teacher),
        "a file sending it said it was held"
    );
    assert_eq!(claims(&mut teacher), 0);
    let from_office = admin.export_for("from-office", &me);
    teacher.import_file(&from_office);
    assert!(
        !holds_private(&mut teacher),
        "the office's word was not taken"
    );
    assert!(holds_record(&mut admin, &private, &record));
}

/// 18d. The 班主任 wrote a 心理辅导记录, then recorded the guardian's withdrawal of the private
///      part, and her phone dropped the part at its next sync with the hub (the hub holds her
///      record). Later the guardian signs again and, offline, she enters the new form and
///      goes to write another 心理辅导记录: her phone no longer has the part, and starting it
///      afresh would number her changes there from 1 again, which the hub, holding her
///      earlier ones, could never take (before, every later sync of her phone failed). The
///      write is refused with a Chinese reason and writes nothing; after her next sync the
///      part is back and the record goes in, and reaches the school.
#[test]
fn story_18d_a_private_part_her_phone_dropped_is_not_started_afresh() {
    let (mut admin, mut teacher) = consented("basic,private", "");
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let private = DocId::Private(child.clone());
    let first = counselling(&mut teacher, CHILDREN[0].1).unwrap();
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    teacher
        .archive
        .withdraw_consent(CHILDREN[0].1, &withdrawal("private", "2026-11-20"))
        .unwrap();
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    assert!(
        !teacher
            .archive
            .store()
            .doc_ids()
            .unwrap()
            .contains(&private)
    );
    assert!(holds_record(&mut admin, &private, &first));

    teacher
        .archive
        .record_consent(CHILDREN[0].1, &consent("basic,private"))
        .unwrap();
    let before = teacher.archive.store().all_heads().unwrap();
    let err = counselling(&mut teacher, CHILDREN[0].1).unwrap_err();
    assert!(err.to_string().contains("同步"), "{err}");
    assert_eq!(teacher.archive.store().all_heads().unwrap(), before);

    // The hub learns of the new form at the first sync and gives the part back at the next.
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    assert!(
        holds_record(&mut teacher, &private, &first),
        "the part is back"
    );
    let second = counselling(&mut teacher, CHILDREN[0].1).unwrap();
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    assert!(holds_record(&mut admin, &private, &second));
}

/// 18g. As 18e, in a file the office re-based first (`rebase_child`): her changes in the new
///      generation are under her generation's actor, and the older copy the archivist's file
///      brings back replaces nothing on her phone. The copy takes the place of the part as a
///      new generation would; the mark must survive that, or her next record would again be
///      numbered from 1 under that actor.
#[test]
fn story_18g_the_same_in_a_re_based_part() {
    an_older_copy_waits_for_her_own_work(true);
}

/// 18f. The office console's list of children, for the 班主任 after the guardian withdrew the
///      private part: the hub keeps her 心理辅导记录 there for the administrators, and the
///      list's count of records and latest date are of what she may still see, as her file's
///      page shows. (Before, the list counted the private part's records too, and the page's
///      lower count gave them away.)
#[test]
fn story_18f_the_console_s_list_counts_only_what_she_may_see() {
    let (mut admin, mut teacher) = consented("basic,private", "");
    teacher.record(
        "家访",
        CHILDREN[0].1,
        "2026-11-10",
        &[("notes", "奶奶说孩子最近按时睡觉")],
    );
    counselling(&mut teacher, CHILDREN[0].1).unwrap();
    teacher
        .archive
        .withdraw_consent(CHILDREN[0].1, &withdrawal("private", "2026-11-20"))
        .unwrap();
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    let me = teacher.archive.me_id().clone();
    let mut hers = admin.archive.on_behalf(&me).unwrap();
    let row = hers
        .children(None)
        .unwrap()
        .into_iter()
        .find(|c| c.name == CHILDREN[0].1)
        .unwrap();
    let file = hers.child_file_for(CHILDREN[0].1, None).unwrap();
    assert!(!file.private_shown);
    assert_eq!(row.records as usize, file.records.len(), "{row:?}");
    assert_eq!(row.last_record.as_deref(), Some("2026-11-10"));
}

/// 18e. As 18d, but the part comes back in a file from the archivist's phone, not from the
///      hub: her phone synced before the 班主任's record reached the office, so its copy holds
///      the child's 身份证号 she entered and not the 班主任's record. The 班主任's phone holds
///      the part again, but none of her own changes in it: a 心理辅导记录 written on it would
///      be numbered from 1 again, as in 18d, and every later sync of her phone would fail at
///      the hub. So the write is refused the same way until her phone holds her own earlier
///      work there again; after her next syncs it does, and the record goes in and reaches
///      the school.
#[test]
fn story_18e_a_dropped_part_an_older_copy_brings_back_is_not_written_over() {
    an_older_copy_waits_for_her_own_work(false);
}

/// Stories 18e and 18g: the archivist's phone, behind, writes the child's 身份证号 into the
/// private part; the 班主任 writes a 心理辅导记录 there, records the guardian's withdrawal,
/// and her phone drops the part; she records the guardian's new form offline and imports the
/// archivist's file, whose copy lacks her record. Her next record waits, writing nothing,
/// until her syncs bring her work back; then it goes in and reaches the school. `rebased`:
/// the office re-based the child's file first, and both phones hold the new generation.
fn an_older_copy_waits_for_her_own_work(rebased: bool) {
    let (mut admin, mut teacher) = consented("basic,private", "");
    let mut archivist = join(&mut admin, "晁月静");
    if rebased {
        admin
            .archive
            .rebase_child(CHILDREN[0].1, "更正身份证号")
            .unwrap();
        attack::hub_sync(&mut admin.archive, &mut teacher.archive);
        attack::hub_sync(&mut admin.archive, &mut archivist.archive);
    }
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let private = DocId::Private(child.clone());
    archivist
        .archive
        .edit_child(CHILDREN[0].1, "identity", &kv(&[("id_card", ID_CARD)]))
        .unwrap();
    let first = counselling(&mut teacher, CHILDREN[0].1).unwrap();
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    teacher
        .archive
        .withdraw_consent(CHILDREN[0].1, &withdrawal("private", "2026-11-20"))
        .unwrap();
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    let holds_part = |d: &mut Device| d.archive.store().doc_ids().unwrap().contains(&private);
    assert!(!holds_part(&mut teacher));
    teacher
        .archive
        .record_consent(CHILDREN[0].1, &consent("basic,private"))
        .unwrap();
    let file = archivist.export_for("older-copy", HEAD_TEACHER);
    teacher.import_file(&file);
    assert!(holds_part(&mut teacher), "the file brings the part back");
    assert!(!holds_record(&mut teacher, &private, &first));

    let before = teacher.archive.store().all_heads().unwrap();
    let err = counselling(&mut teacher, CHILDREN[0].1).unwrap_err();
    assert!(err.to_string().contains("同步"), "{err}");
    assert_eq!(teacher.archive.store().all_heads().unwrap(), before);

    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    assert!(
        holds_record(&mut teacher, &private, &first),
        "her work is back"
    );
    let second = counselling(&mut teacher, CHILDREN[0].1).unwrap();
    attack::hub_sync(&mut admin.archive, &mut teacher.archive);
    assert!(holds_record(&mut admin, &private, &second));
}

/// 19. A register the office prints or sends upward leaves out what the guardian withdrew:
///     the ID numbers of a child whose guardian withdrew the private part, even asked for in
///     full with a reason, and every personal field but her name and class of a child whose
///     guardian withdrew the basic file; each such cell says why it is empty, so nobody goes
///     back to the family for a number the school may no longer process. The other children's
///     rows are as before.
#[test]
fn story_19_a_register_leaves_out_what_the_guardian_withdrew() {
    use shouwang_core::reports::ReportOptions;
    let mut admin = school();
    let [(_, first), (_, second), (third_no, third)] = [CHILDREN[0], CHILDREN[1], CHILDREN[2]];
    admin
        .archive
        .edit_child(first, "identity", &kv(&[("id_card", ID_CARD)]))
        .unwrap();
    admin
        .archive
        .edit_child(second, "profile", &kv(&[("address", "郭庄村三组12号")]))
        .unwrap();
    for child in [second, third] {
        admin
            .archive
            .edit_child(child, "flags", &kv(&[("hardship", "是")]))
            .unwrap();
    }
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    for (child, covers) in [(first, "private"), (second, "basic")] {
        teacher
            .archive
            .record_consent(child, &consent("basic,private"))
            .unwrap();
        teacher
            .archive
            .withdraw_consent(child, &withdrawal(covers, "2026-11-10"))
            .unwrap();
    }
    sync(&mut teacher, &mut admin);
    let book = admin
        .archive
        .report(
            "registry",
            &ReportOptions {
                reveal_ids: Some("上报县教育局".into()),
                ..ReportOptions::default()
            },
        )
        .unwrap();
    let rows = &book.sheets[0].rows;
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let row = |child: &str| rows.iter().find(|r| r[col("姓名")] == child).unwrap();
    let text = format!("{rows:?}");
    assert!(!text.contains(ID_CARD), "{text}");
    assert!(!text.contains(CHILDREN[0].0), "{text}");
    assert!(!text.contains("郭庄村三组12号"), "{text}");
    const WITHDRAWN: &str = "监护人已撤回同意";
    assert_eq!(row(first)[col("身份证号")], WITHDRAWN);
    assert_eq!(row(first)[col("学籍号")], WITHDRAWN);
    assert_eq!(row(second)[col("家庭住址")], WITHDRAWN);
    assert_eq!(row(second)[col("班级")], row(third)[col("班级")]);
    assert_eq!(row(third)[col("学籍号")], third_no);

    // The 三特 register does not list her as flagged; it says one child is left out, as it
    // would of an unflagged one, and the 汇总表 does not count her flag either.
    let book = admin
        .archive
        .report("sante", &ReportOptions::default())
        .unwrap();
    let rows = &book.sheets[0].rows;
    assert!(
        rows.iter().any(|r| r.contains(&third.to_owned())),
        "{rows:?}"
    );
    assert!(
        !rows.iter().any(|r| r.contains(&second.to_owned())),
        "{rows:?}"
    );
    assert_eq!(
        rows.last().unwrap()[0],
        "另有1名学生的监护人已撤回同意，未列入"
    );
    let summary = admin
        .archive
        .report("summary", &ReportOptions::default())
        .unwrap();
    let rows = &summary.sheets[0].rows;
    let col = rows[0].iter().position(|h| h == "特困生").unwrap();
    assert_eq!(rows.last().unwrap()[col], "1", "{rows:?}");
}
