//! "A correction purges the old value" (issue 11, point 3): after a wrong 身份证号 and a
//! misspelt name are corrected, the office re-bases the child's file on its current state. Every
//! device replaces its copy (by bundle, and over a device-to-device session on real stores), no
//! store file or WAL holds the old values afterwards, the records keep their authors (who can
//! still edit them), and a modified app re-sending the old history is refused without a trace.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::doc::DocId;
use shouwang_core::ids::ChildId;
use shouwang_core::store::Sender;
use shouwang_tests::attack::{self, holds};
use shouwang_tests::fixtures::*;

const OLD_NAME: &str = CHILDREN[0].1; // 王小雨, registered with a typo
const NEW_NAME: &str = "王晓雨";
const NOTE: &str = "奶奶在家，作业按时完成";
const ARCHIVIST: &str = "晁月静";

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

/// [`corrected`], re-based by the office, and a 谈心 the 爱心妈妈 writes on her old copy
/// before she hears of it (its record id last).
fn rebased_while_she_writes() -> (Device, Device, Device, ChildId, String, String) {
    let (mut admin, teacher, mut mother, child, wrong, _right, _visit) = corrected();
    rebase(&mut admin);
    let talk = mother.record("谈心", NEW_NAME, "2026-11-25", &[("notes", "说想妈妈了")]);
    (admin, teacher, mother, child, wrong, talk)
}

/// A direct session between the office's device and `phone` (taken from the phone as from a
/// member's device); the documents the office delivered.
fn session(office: &mut Device, phone: &mut Device) -> Vec<DocId> {
    let them = office
        .archive
        .find_member(phone.archive.me_id().as_str())
        .unwrap();
    let admin = phone
        .archive
        .find_member(office.archive.me_id().as_str())
        .unwrap();
    let so = office
        .archive
        .peer_session(phone.archive.device().as_str(), &them)
        .unwrap()
        .with_sender(Sender::Device {
            device: phone.archive.device().clone(),
            roles: Some(them.roles.clone()),
        });
    let sp = phone
        .archive
        .peer_session(office.archive.device().as_str(), &admin)
        .unwrap();
    attack::pump_delivering(&mut office.archive, so, &mut phone.archive, sp).2
}

/// The office's file for `phone`'s member, imported there.
fn office_news(office: &mut Device, phone: &mut Device) {
    let news = office
        .archive
        .export_bundle(Some(phone.name), None)
        .unwrap();
    phone.archive.import_bundle(&news).unwrap();
}

/// The office re-bases the child's file after correcting her name and ID number.
fn rebase(office: &mut Device) -> shouwang_core::archive::RebaseReport {
    office
        .archive
        .rebase_child(NEW_NAME, "更正身份证号和姓名")
        .unwrap()
}

/// The reason stays in the school document, which every member's device holds, for good; a
/// re-basing follows a correction, and a reason naming what was corrected would publish the
/// very value the re-basing removes: the old name, the old 身份证号 (whole or as a long run of
/// its digits), a guardian's phone. Each is refused in Chinese, and nothing is written.
#[test]
fn a_reason_naming_what_was_corrected_is_refused() {
    let (mut admin, _teacher, _mother, _child, wrong, _right, _visit) = corrected();
    // The roster put a kinship word where the guardian's name goes: it names nobody.
    admin
        .archive
        .edit_child(NEW_NAME, "guardian", &kv(&[("name", "奶奶")]))
        .unwrap();
    let before = admin.archive.store().all_heads().unwrap();
    for (reason, says) in [
        (format!("姓名原写为{OLD_NAME}"), "学生的姓名"),
        ("晓雨父母离异，随母亲迁居".to_owned(), "学生的名字"),
        ("原名小雨".to_owned(), "学生的名字"),
        (format!("原身份证号{wrong}录错"), "身份证号"),
        (format!("原号码{}有误", &wrong[..12]), "身份证号"),
        ("监护人电话13905640001登记错".to_owned(), "电话"),
        ("监护人电话139 0564 0001登记错".to_owned(), "电话"),
        ("监护人电话１３９０５６４０００１登记错".to_owned(), "电话"),
    ] {
        let err = admin.archive.rebase_child(NEW_NAME, &reason).unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("原因里") && err.contains(says),
            "{reason}: {err}"
        );
        assert_eq!(
            admin.archive.store().all_heads().unwrap(),
            before,
            "{reason}"
        );
    }
    assert!(
        admin
            .archive
            .rebase_child(NEW_NAME, "随奶奶迁居，更正身份证号和姓名，2026年12月7日")
            .is_ok()
    );
}

/// `phone`'s file imported at the office, refusing nothing.
fn hand_in(office: &mut Device, phone: &mut Device) {
    let r = office.import_file(&phone.export_file("after"));
    assert_eq!(r.refused, 0, "{r:?}");
}

/// Whether the device shows the record in the child's file (private part included).
fn shows(d: &mut Device, record: &str) -> bool {
    d.archive
        .child_file_for(NEW_NAME, Some("核对"))
        .unwrap()
        .records
        .iter()
        .any(|r| r.meta.id.as_str() == record)
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

    let report = rebase(&mut admin);
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
    office_news(&mut admin, &mut mother);
    assert!(
        leaks(&mut mother, &old).is_empty(),
        "{:?}",
        leaks(&mut mother, &old)
    );
    assert_eq!(mother.file(NEW_NAME).name, NEW_NAME);

    // The 班主任 over a direct session with the office's device.
    let delivered = session(&mut admin, &mut teacher);
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
    hand_in(&mut admin, &mut mother);

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

/// 2. The 爱心妈妈 writes a 谈心 offline while the office re-bases the file. The office takes
///    nothing of the old generation from her (her change is refused as old). When her copy is
///    replaced by the new generation, her 谈心 is carried over into it as her own new change,
///    and reaches the office with her next file: nothing she typed is lost.
#[test]
fn story_2_a_record_written_offline_on_the_old_generation_is_carried_over() {
    let (mut admin, _teacher, mut mother, _child, _wrong, talk) = rebased_while_she_writes();
    let r = admin.import_file(&mother.export_file("before"));
    assert!(
        r.refused_reason
            .unwrap_or_default()
            .contains("已由学校重建")
    );
    assert!(!shows(&mut admin, &talk));

    office_news(&mut admin, &mut mother);
    assert!(shows(&mut mother, &talk), "her 谈心 is still on her phone");
    hand_in(&mut admin, &mut mother);
    assert!(shows(&mut admin, &talk), "and reaches the office");
    let file = admin.archive.child_file(NEW_NAME).unwrap();
    let carried = file
        .records
        .iter()
        .find(|r| r.meta.id.as_str() == talk)
        .unwrap();
    assert_eq!(
        carried.meta.author.as_str(),
        mother.archive.me_id().as_str()
    );
    assert_eq!(carried.meta.happened_on, "2026-11-25");
    assert!(format!("{carried:?}").contains("说想妈妈了"));
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
}

/// 2b. The same, the new generation reaching her phone over a direct session with the office's
///     device: her 谈心 is carried over there too, and their next session brings it to the
///     office.
#[test]
fn story_2b_carried_over_when_the_new_generation_comes_over_a_session() {
    let (mut admin, _teacher, mut mother, _child, _wrong, talk) = rebased_while_she_writes();
    session(&mut admin, &mut mother);
    assert!(shows(&mut mother, &talk), "her 谈心 is still on her phone");
    // What her phone records as held by the office, the office holds (a carried record is
    // hers, written after what the office sent: taken as the office's, it would never be
    // offered to it).
    let doc = DocId::Child(admin.archive.find_child(NEW_NAME).unwrap());
    for (_, heads) in mother.archive.store().shared_heads_of(&doc).unwrap() {
        for h in heads {
            assert!(holds(&mut admin.archive, &doc, &h), "{h}");
        }
    }
    // Their next session (if not this one) brings it to the office.
    session(&mut admin, &mut mother);
    assert!(shows(&mut admin, &talk), "reaches the office");
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
    // Both hold the same file.
    let doc = DocId::Child(admin.archive.find_child(NEW_NAME).unwrap());
    assert_eq!(
        admin.archive.store().heads(&doc).unwrap(),
        mother.archive.store().heads(&doc).unwrap()
    );
}

/// 3. Her phone hears of the re-basing (the school document) before the new generation comes
///    (a sync cut short, a colleague's phone that has only the school): her stale copy holds a
///    谈心 nobody else has, so it is not purged yet. The new generation replaces it at her next
///    sync, with the 谈心 carried over; only then does the old history leave her phone.
#[test]
fn story_3_a_stale_copy_holding_unsent_work_waits_for_the_new_generation() {
    let (mut admin, _teacher, mut mother, child, wrong, talk) = rebased_while_she_writes();
    let school = admin
        .archive
        .store()
        .doc(&DocId::School)
        .unwrap()
        .unwrap()
        .save();
    mother
        .archive
        .store()
        .write(|b| b.merge_bytes(&DocId::School, &school))
        .unwrap();
    mother.archive.purge_out_of_scope().unwrap();
    assert!(
        mother
            .archive
            .store()
            .doc_ids()
            .unwrap()
            .contains(&DocId::Child(child.clone())),
        "kept while it holds her unsent 谈心"
    );
    office_news(&mut admin, &mut mother);
    mother.archive.purge_out_of_scope().unwrap();
    assert!(shows(&mut mother, &talk));
    assert!(leaks(&mut mother, &[OLD_NAME, wrong.as_str()]).is_empty());
    hand_in(&mut admin, &mut mother);
    assert!(shows(&mut admin, &talk));
}

/// 3b. The same 谈心 on the old generation, but the office also ended her pairing: the file is
///     no longer hers when her phone meets the hub, which refuses it out of scope; her phone
///     hands its copy in, and the hub cannot take work on an older generation (it carries work
///     over only into a file it sends back). It answers `Deferred`, so her phone keeps the
///     谈心 rather than drop what the school lacks. Before, the hub answered `OutOfScope` and
///     her phone dropped it.
#[test]
fn story_3b_a_hand_in_on_an_older_generation_stays_on_her_phone() {
    let (mut admin, _teacher, mut mother, child, _wrong, talk) = rebased_while_she_writes();
    admin.archive.end_pairing(LOVE_MOTHER, NEW_NAME).unwrap();
    let (hub, phone) = attack::hub_and_phone(&mut admin.archive, &mother.archive);
    attack::pump(&mut mother.archive, phone, &mut admin.archive, hub);
    mother.archive.purge_out_of_scope().unwrap();
    let file = DocId::Child(child);
    let at_school = admin.archive.child_file(NEW_NAME).unwrap();
    let taken = at_school.records.iter().any(|r| r.meta.id.as_str() == talk);
    assert!(
        taken || mother.archive.store().doc_ids().unwrap().contains(&file),
        "her 谈心 is neither at the school nor on her phone"
    );
}

/// 2c. The guardian withdraws consent to the file right after the re-basing, before the
///     爱心妈妈's phone hears of either. Her 谈心, written meanwhile, cannot be carried into the
///     new generation (a carried record declares the school as it is now, and nothing new may
///     be written into the file): it is not kept on her phone to be refused everywhere, with
///     all her later work on the file waiting behind it.
#[test]
fn story_2c_a_record_the_rules_refuse_now_is_not_carried_over() {
    let (mut admin, mut mother, talk) = withdrawn_while_she_writes();
    office_news(&mut admin, &mut mother);
    // Her copy went with the 谈心 in it: she is told, once.
    let told = mother.archive.take_not_carried().unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("已由学校重建") && told[0].contains("还没有同步"),
        "{told:?}"
    );
    assert!(mother.archive.take_not_carried().unwrap().is_empty());
    hand_in(&mut admin, &mut mother);
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
    assert!(!shows(&mut admin, &talk), "not carried into the file");
    assert!(
        admin.archive.outdated_standing().unwrap().is_empty(),
        "nor taken and listed for review"
    );
}

/// 2d. The same, for the school's 档案管理员, who as an administrator still holds a file whose
///     consent was withdrawn: she writes a 谈心 on her tablet offline while the office re-bases
///     the file, and the guardian withdraws consent right after. Her tablet replaces its copy
///     and cannot carry her 谈心 over (nothing new may be written into the file). It is not
///     kept, and not lost silently either: after the import that did it, she is told which
///     record was not kept (the child, the kind, its date) and why, in the rules' words; once.
#[test]
fn story_2d_she_is_told_which_record_was_not_kept_and_why() {
    let (mut admin, mut tablet, talk) = withdrawn_while_the_archivist_writes();
    assert!(tablet.archive.take_not_carried().unwrap().is_empty());
    office_news(&mut admin, &mut tablet);
    assert!(!shows(&mut tablet, &talk), "not kept on her tablet");
    let told = tablet.archive.take_not_carried().unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    let line = &told[0];
    for what in [NEW_NAME, "谈心记录", "2026-11-25", "未能保留", "撤回"] {
        assert!(line.contains(what), "{what} missing: {line}");
    }
    assert!(
        !line.contains("说想妈妈了"),
        "what she typed is not kept: {line}"
    );
    assert!(
        tablet.archive.take_not_carried().unwrap().is_empty(),
        "told once"
    );
    hand_in(&mut admin, &mut tablet);
    assert!(!shows(&mut admin, &talk));
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
}

/// 2f. The same, but the office then erases the child before she is told: the note no longer
///     names her (the erasure is final), and nothing of the store keeps her name.
#[test]
fn story_2f_a_note_on_a_child_erased_since_no_longer_names_her() {
    let (mut admin, mut tablet, _talk) = withdrawn_while_the_archivist_writes();
    office_news(&mut admin, &mut tablet);
    admin
        .archive
        .erase_child(NEW_NAME, "监护人书面申请删除")
        .unwrap();
    office_news(&mut admin, &mut tablet);
    let noted = tablet
        .archive
        .store()
        .meta("carry.refused")
        .unwrap()
        .unwrap_or_default();
    assert!(!noted.contains(NEW_NAME), "{noted}");
    assert!(
        leaks(&mut tablet, &[NEW_NAME]).is_empty(),
        "her name is kept"
    );
    let told = tablet.archive.take_not_carried().unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("删除了一名学生的档案") && !told[0].contains(NEW_NAME),
        "{told:?}"
    );
}

/// 2g. The same, but her own tablet erases the child (she administers too) before she is told:
///     the erasure made there rewrites the note as the one that arrives does (2f).
#[test]
fn story_2g_an_erasure_made_on_her_own_tablet_rewrites_the_note_too() {
    let (mut admin, mut tablet, _talk) = withdrawn_while_the_archivist_writes();
    office_news(&mut admin, &mut tablet);
    tablet
        .archive
        .erase_child(NEW_NAME, "监护人书面申请删除")
        .unwrap();
    let noted = tablet
        .archive
        .store()
        .meta("carry.refused")
        .unwrap()
        .unwrap_or_default();
    assert!(!noted.is_empty() && !noted.contains(NEW_NAME), "{noted}");
    assert!(
        leaks(&mut tablet, &[NEW_NAME]).is_empty(),
        "her name is kept"
    );
}

/// 2e. The same over a sync with the hub: the sync that replaced her copy notes the 谈心 not
///     kept, and it is told after it.
#[test]
fn story_2e_a_sync_that_did_not_keep_a_record_tells_her() {
    let (mut admin, mut tablet, talk) = withdrawn_while_the_archivist_writes();
    let (hub, phone) = attack::hub_and_phone(&mut admin.archive, &tablet.archive);
    attack::pump(&mut tablet.archive, phone, &mut admin.archive, hub);
    assert!(!shows(&mut tablet, &talk));
    // An app reads it with every report until she has seen it (a report delivered while the
    // app was in the background loses nothing).
    let shown = tablet.archive.not_carried().unwrap();
    assert_eq!(tablet.archive.not_carried().unwrap(), shown);
    let told = tablet.archive.take_not_carried().unwrap();
    assert_eq!(told, shown);
    assert!(tablet.archive.not_carried().unwrap().is_empty());
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("谈心记录（2026-11-25）未能保留"),
        "{told:?}"
    );
}

/// 2g. The same for a 心理辅导记录, kept in the child's private part: the line names the child,
///     the kind and the part plainly, as it does a record of her shared file.
#[test]
fn story_2g_a_record_of_the_private_part_not_kept_is_named_plainly() {
    let (mut admin, _teacher, _mother, _child, _wrong, _right, _visit) = corrected();
    let mut tablet = join(&mut admin, ARCHIVIST);
    rebase(&mut admin);
    tablet.record(
        "心理辅导记录",
        NEW_NAME,
        "2026-11-25",
        &[("notes", "情绪低落")],
    );
    let both = "basic,private";
    admin
        .archive
        .record_consent(
            NEW_NAME,
            &shouwang_core::archive::ConsentInput {
                covers: both.into(),
                ..consent("2026-11-20")
            },
        )
        .unwrap();
    admin
        .archive
        .withdraw_consent(
            NEW_NAME,
            &shouwang_core::archive::WithdrawalInput {
                covers: both.into(),
                ..withdrawal("2026-11-24")
            },
        )
        .unwrap();
    office_news(&mut admin, &mut tablet);
    let told = tablet.archive.take_not_carried().unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].starts_with(&format!(
            "{NEW_NAME}的心理辅导记录（隐私部分，2026-11-25）未能保留："
        )),
        "{told:?}"
    );
}

/// The guardian's consent to the basic file, recorded at the office and withdrawn.
fn withdraw(office: &mut Device) {
    office
        .archive
        .record_consent(NEW_NAME, &consent("2026-11-20"))
        .unwrap();
    office
        .archive
        .withdraw_consent(NEW_NAME, &withdrawal("2026-11-24"))
        .unwrap();
}

/// [`rebased_while_she_writes`], the guardian withdrawing consent to the file at the office
/// right after the re-basing, before the 爱心妈妈's phone hears of either (2c).
fn withdrawn_while_she_writes() -> (Device, Device, String) {
    let (mut admin, _teacher, mother, _child, _wrong, talk) = rebased_while_she_writes();
    withdraw(&mut admin);
    (admin, mother, talk)
}

/// [`corrected`], the 档案管理员's tablet holding the file, re-based by the office; she writes
/// a 谈心 on her old copy, and the guardian withdraws consent at the office (2d).
fn withdrawn_while_the_archivist_writes() -> (Device, Device, String) {
    let (mut admin, _teacher, _mother, _child, _wrong, _right, _visit) = corrected();
    let mut tablet = join(&mut admin, ARCHIVIST);
    rebase(&mut admin);
    let talk = tablet.record("谈心", NEW_NAME, "2026-11-25", &[("notes", "说想妈妈了")]);
    withdraw(&mut admin);
    (admin, tablet, talk)
}

/// 4. The 班主任 writes a 心理辅导记录 (the private part) offline while the office re-bases the
///    file, and the private part's new generation reaches her before the care file's (each
///    comes in its own frame). Carried then, her record would declare the care file's old
///    heads, which no other device can ever hold, and wait everywhere for good. The private
///    part waits for the care file instead; once both came, the record is carried over and
///    reaches the office.
#[test]
fn story_4_the_private_part_waits_for_the_care_file_s_new_generation() {
    let (mut admin, mut teacher, _mother, child, _wrong, _right, _visit) = corrected();
    rebase(&mut admin);
    let record = teacher
        .archive
        .add_record(&shouwang_core::RecordInput {
            kind: "心理辅导记录".into(),
            child: Some(NEW_NAME.into()),
            class: None,
            date: "2026-11-25".into(),
            fields: kv(&[("notes", "情绪低落，约定下周再谈")]),
        })
        .unwrap()
        .0;
    let private = DocId::Private(child.clone());
    let saved = |d: &mut Device, id: &DocId| d.archive.store().doc(id).unwrap().unwrap().save();
    let (school, part) = (
        saved(&mut admin, &DocId::School),
        saved(&mut admin, &private),
    );
    let waits = teacher
        .archive
        .store()
        .write(|b| {
            b.merge_bytes(&DocId::School, &school)?;
            b.merge_bytes(&private, &part)
        })
        .unwrap();
    assert!(waits.deferred > 0 && waits.replaced == 0, "{waits:?}");
    assert!(shows(&mut teacher, &record), "still on her phone");
    office_news(&mut admin, &mut teacher);
    assert!(shows(&mut teacher, &record), "carried over");
    hand_in(&mut admin, &mut teacher);
    assert!(shows(&mut admin, &record), "at the office");
}

/// 5. The 班主任 corrects her 家访 offline (the office already has it) while the office re-bases
///    the file, and changes its date. Her copy is replaced by the new generation, which holds
///    the 家访 as the office had it; her correction is carried over as her new change and
///    reaches the office: a new value of a field both generations hold is not lost either.
#[test]
fn story_5_a_correction_typed_on_the_old_generation_is_carried_over() {
    let (mut admin, mut teacher, _mother, _child, _wrong, _right, visit) = corrected();
    rebase(&mut admin);
    const CORRECTED: &str = "奶奶在家，作业按时完成，已约好下次家访";
    teacher
        .archive
        .edit_record(&visit, Some("2026-11-19"), &kv(&[("notes", CORRECTED)]))
        .unwrap();
    let the_visit = |d: &mut Device| {
        d.archive
            .child_file_for(NEW_NAME, Some("核对"))
            .unwrap()
            .records
            .into_iter()
            .find(|r| r.meta.id.as_str() == visit)
            .unwrap()
    };
    office_news(&mut admin, &mut teacher);
    let mine = the_visit(&mut teacher);
    assert!(format!("{mine:?}").contains(CORRECTED), "{mine:?}");
    assert_eq!(mine.meta.happened_on, "2026-11-19");
    hand_in(&mut admin, &mut teacher);
    let theirs = the_visit(&mut admin);
    assert!(format!("{theirs:?}").contains(CORRECTED), "{theirs:?}");
    assert_eq!(theirs.meta.happened_on, "2026-11-19");
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
}

/// 6. The pairing teacher adds a 进步档案 entry to the 班主任's 学习帮扶计划 offline while the
///    office re-bases the file (the plan is the 班主任's record, the entry hers). Her copy is
///    replaced; the entry she wrote is carried over as her change, and nothing else of the
///    plan is (it is not hers to write): the office takes it and shows it.
#[test]
fn story_6_an_entry_written_on_someone_else_s_record_is_carried_over() {
    let (mut admin, mut teacher, _mother, _child, _wrong, _right, _visit) = corrected();
    let plan = teacher.record(
        "学习帮扶计划",
        NEW_NAME,
        "2026-11-20",
        &[
            ("subject", "数学"),
            ("schedule", "每周三"),
            ("notes", "乘法口诀"),
        ],
    );
    sync(&mut teacher, &mut admin);
    let mut helper = join(&mut admin, PAIRING_TEACHER);
    rebase(&mut admin);
    helper
        .archive
        .add_progress(&plan, "2026-11-25", &kv(&[("notes", "乘法口诀背熟了")]))
        .unwrap();
    let entries = |d: &mut Device| {
        let file = d.archive.child_file_for(NEW_NAME, Some("核对")).unwrap();
        let plan = file
            .records
            .into_iter()
            .find(|r| r.meta.id.as_str() == plan)
            .unwrap();
        format!("{:?}", plan.progress)
    };
    office_news(&mut admin, &mut helper);
    assert!(
        entries(&mut helper).contains("乘法口诀背熟了"),
        "on her phone"
    );
    hand_in(&mut admin, &mut helper);
    assert!(
        entries(&mut admin).contains("乘法口诀背熟了"),
        "at the office"
    );
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
}

/// 7. At the office console on the hub, the 班主任 writes a 家访 (under her console device, which
///    the hub registered). Before the hub syncs it anywhere, the archivist re-bases the file
///    from her own computer. When the new generation replaces the hub's copy, the console's
///    家访 is carried over under the console device, as the 班主任's, and reaches the
///    archivist.
#[test]
fn story_7_a_record_typed_at_the_office_console_is_carried_over() {
    let (mut hub, teacher, _mother, _child, _wrong, _right, _visit) = corrected();
    let mut archivist = join(&mut hub, "晁月静");
    // They synced (the hub's own changes are known to be at the archivist's).
    session(&mut archivist, &mut hub);
    let her = teacher.archive.me_id().clone();
    let visit = hub
        .archive
        .write_as_member(&her, |a| {
            a.add_record(&shouwang_core::RecordInput {
                kind: "家访".into(),
                child: Some(NEW_NAME.into()),
                class: None,
                date: "2026-11-24".into(),
                fields: kv(&[("notes", "在办公室补记的家访")]),
            })
        })
        .unwrap()
        .0;
    archivist
        .archive
        .rebase_child(NEW_NAME, "更正身份证号和姓名")
        .unwrap();
    // The hub hears of the re-basing first (the school document alone): its stale copy holds
    // the console's unsent 家访, so it is not purged.
    let school = archivist
        .archive
        .store()
        .doc(&DocId::School)
        .unwrap()
        .unwrap()
        .save();
    hub.archive
        .store()
        .write(|b| b.merge_bytes(&DocId::School, &school))
        .unwrap();
    hub.archive.purge_out_of_scope().unwrap();
    assert!(
        shows(&mut hub, &visit),
        "kept while it holds the console's 家访"
    );
    let news = archivist.archive.export_bundle(None, None).unwrap();
    let r = hub.archive.import_bundle(&news).unwrap();
    assert_eq!(r.refused, 0, "{r:?}");
    assert!(shows(&mut hub, &visit), "still at the hub");
    let back = hub.archive.export_bundle(None, None).unwrap();
    let r = archivist.archive.import_bundle(&back).unwrap();
    assert_eq!(r.refused, 0, "{r:?}");
    assert!(shows(&mut archivist, &visit), "at the archivist's");
    let file = archivist.archive.child_file(NEW_NAME).unwrap();
    let carried = file
        .records
        .iter()
        .find(|r| r.meta.id.as_str() == visit)
        .unwrap();
    assert_eq!(carried.meta.author, her.as_str());
    assert_eq!(attack::quarantined(&mut archivist.archive), 0);
}

/// 8. The 班主任 corrects the child's address in 基本情况 offline while the office re-bases the
///    file (a section, not a record). When the new generation replaces her copy, her
///    correction is carried over as her change and reaches the office.
#[test]
fn story_8_a_section_corrected_on_the_old_generation_is_carried_over() {
    let (mut admin, mut teacher, _mother, _child, _wrong, _right, _visit) = corrected();
    rebase(&mut admin);
    const ADDRESS: &str = "郭庄村二组12号";
    teacher
        .archive
        .edit_child(NEW_NAME, "profile", &kv(&[("address", ADDRESS)]))
        .unwrap();
    office_news(&mut admin, &mut teacher);
    let shows_address = |d: &mut Device| format!("{:?}", d.file(NEW_NAME)).contains(ADDRESS);
    assert!(shows_address(&mut teacher), "on her phone");
    hand_in(&mut admin, &mut teacher);
    assert!(shows_address(&mut admin), "at the office");
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
}

/// 9. The 班主任 has a phone and a tablet. The office re-bases the file; her tablet gets the
///    new generation and she corrects her 家访 there, which reaches the office. Her phone,
///    still on the old copy, had corrected the same 家访 differently. When the phone's copy is
///    replaced, its correction is carried concurrent with the tablet's, not on top of it:
///    both values stand, as a conflict the office resolves, instead of the phone's silently
///    replacing the tablet's.
#[test]
fn story_9_a_correction_made_meanwhile_on_her_other_device_is_not_overwritten() {
    let (mut admin, mut phone, _mother, _child, _wrong, _right, visit) = corrected();
    let mut tablet = join(&mut admin, HEAD_TEACHER);
    rebase(&mut admin);
    const ON_TABLET: &str = "奶奶在家，作业按时完成（平板上补充）";
    const ON_PHONE: &str = "奶奶在家，作业按时完成（手机上补充）";
    office_news(&mut admin, &mut tablet);
    tablet
        .archive
        .edit_record(&visit, None, &kv(&[("notes", ON_TABLET)]))
        .unwrap();
    let r = admin.import_file(&tablet.export_file("tablet"));
    assert_eq!(r.refused, 0, "{r:?}");
    phone
        .archive
        .edit_record(&visit, None, &kv(&[("notes", ON_PHONE)]))
        .unwrap();
    office_news(&mut admin, &mut phone);
    let r = admin.import_file(&phone.export_file("phone"));
    assert_eq!(r.refused, 0, "{r:?}");
    let file = admin.archive.child_file(NEW_NAME).unwrap();
    let conflict = file
        .conflicts
        .iter()
        .map(|(_, c)| c)
        .find(|c| c.path.iter().any(|p| p == "notes"))
        .unwrap_or_else(|| panic!("no conflict on the notes: {:?}", file.conflicts));
    for v in [ON_TABLET, ON_PHONE] {
        assert!(
            conflict.values.iter().any(|x| x.contains(v)),
            "{conflict:?}"
        );
    }
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
}

fn consent(on: &str) -> shouwang_core::archive::ConsentInput {
    shouwang_core::archive::ConsentInput {
        guardian: "王秀英".into(),
        relation: "祖母".into(),
        date: on.into(),
        covers: "basic".into(),
        form: "TY-2026-030".into(),
    }
}

fn withdrawal(on: &str) -> shouwang_core::archive::WithdrawalInput {
    shouwang_core::archive::WithdrawalInput {
        date: on.into(),
        by: "王秀英".into(),
        covers: "basic".into(),
    }
}

/// Whether the device's copy of the file says consent to the basic file is withdrawn.
fn withdrawn(d: &mut Device) -> bool {
    format!("{:?}", d.file(NEW_NAME).consent).contains("withdrawn: Some")
}

/// 10. Offline while the office re-bases the file, the 班主任 writes a 家访 and then records the
///     grandmother's withdrawal of consent. Both are carried over, the 家访 first, as she
///     typed them: the withdrawal does not make her own earlier 家访 refused.
#[test]
fn story_10_a_record_then_a_withdrawal_typed_offline_are_both_carried() {
    let (mut admin, mut teacher, _mother, _child, _wrong, _right, _visit) = corrected();
    admin
        .archive
        .record_consent(NEW_NAME, &consent("2026-11-20"))
        .unwrap();
    sync(&mut teacher, &mut admin);
    rebase(&mut admin);
    let visit = teacher.record(
        "家访",
        NEW_NAME,
        "2026-11-24",
        &[("notes", "奶奶说要去外地")],
    );
    teacher
        .archive
        .withdraw_consent(NEW_NAME, &withdrawal("2026-11-25"))
        .unwrap();
    office_news(&mut admin, &mut teacher);
    hand_in(&mut admin, &mut teacher);
    assert!(shows(&mut admin, &visit), "the 家访 reached the office");
    assert!(withdrawn(&mut admin), "{:?}", admin.file(NEW_NAME).consent);
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
}

/// 10b. The other way round: offline while the office re-bases the file, the 班主任 records the
///      grandmother's withdrawal, then her change of mind (a new consent, which removes the
///      withdrawal), and then writes a 家访 under it. All are carried: the consent with the
///      withdrawal removed, and the 家访, which the rules refuse until the consent is there.
///      (Had the office known of the withdrawal first, her phone would have dropped the file:
///      a new consent to the basic file is then entered at the office, consent story 18h.)
#[test]
fn story_10b_a_consent_given_again_then_a_record_typed_offline_are_both_carried() {
    let (mut admin, mut teacher, _mother, _child, _wrong, _right, _visit) = corrected();
    admin
        .archive
        .record_consent(NEW_NAME, &consent("2026-11-18"))
        .unwrap();
    sync(&mut teacher, &mut admin);
    rebase(&mut admin);
    teacher
        .archive
        .withdraw_consent(NEW_NAME, &withdrawal("2026-11-19"))
        .unwrap();
    assert!(teacher.archive.child_file_for(NEW_NAME, None).is_err());
    teacher
        .archive
        .record_consent(NEW_NAME, &consent("2026-11-24"))
        .unwrap();
    assert!(!withdrawn(&mut teacher));
    let visit = teacher.record("家访", NEW_NAME, "2026-11-25", &[("notes", "奶奶同意了")]);
    office_news(&mut admin, &mut teacher);
    hand_in(&mut admin, &mut teacher);
    assert!(!withdrawn(&mut admin), "{:?}", admin.file(NEW_NAME).consent);
    assert!(shows(&mut admin, &visit), "the 家访 reached the office");
    assert_eq!(attack::quarantined(&mut admin.archive), 0);
}

/// 11. The 班主任's phone stays away through two re-basings; the office corrects the address
///     between them (she had written the old one, long since at the office). When the newest
///     generation replaces her copy, nothing of hers counts as changed since what the office
///     re-based: her old address is not written back over the office's correction.
#[test]
fn story_11_a_copy_two_generations_behind_writes_nothing_back() {
    let (mut admin, mut teacher, _mother, _child, _wrong, _right, _visit) = corrected();
    teacher
        .archive
        .edit_child(NEW_NAME, "profile", &kv(&[("address", "郭庄村一组")]))
        .unwrap();
    sync(&mut teacher, &mut admin);
    rebase(&mut admin);
    admin
        .archive
        .edit_child(NEW_NAME, "profile", &kv(&[("address", "郭庄村二组12号")]))
        .unwrap();
    admin.archive.rebase_child(NEW_NAME, "更正住址").unwrap();
    office_news(&mut admin, &mut teacher);
    hand_in(&mut admin, &mut teacher);
    let file = format!("{:?}", admin.file(NEW_NAME));
    assert!(
        file.contains("郭庄村二组12号") && !file.contains("郭庄村一组"),
        "{file}"
    );
}
