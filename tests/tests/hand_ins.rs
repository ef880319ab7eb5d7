//! Work a member wrote before hearing that a file is no longer hers is never dropped before
//! the school holds it (the trust issue's "nothing a person typed is ever silently lost"): a
//! 班主任 whose class went to another head records a 家访 offline, then hears of the change
//! from a file the office sends her, not from the hub. Her phone keeps the file until the hub
//! has taken her work as a hand-in, and only then drops it. The other stories here: work
//! written while the hub's word was on its way, a hand-in the hub cannot read, and a class
//! given back to her.
//!
//! The hub (`shouwang-relay`'s server in-process on 127.0.0.1), phones enrolled with invite
//! tickets, real iroh endpoints and SQLite stores.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::roles::Role;
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_tests::attack::hub_sync;
use shouwang_tests::fixtures::{CLASS, HEAD_TEACHER};
use shouwang_tests::phone::{Phone, enroll, small_hub_served_with};

const CHILD: &str = "王小雨";
const NOTE: &str = "奶奶说孩子最近作业按时完成";

fn visits(p: &Phone) -> Vec<String> {
    p.archive()
        .child_file(CHILD)
        .map(|f| {
            f.records
                .iter()
                .filter(|r| r.kind_label.starts_with("家访"))
                .map(|r| r.meta.author.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The hub and two phones; what both stories start from.
struct School {
    _dir: tempfile::TempDir,
    data: shouwang_relay::server::DataDir,
    server: Server,
    office: Phone,
    teacher: Phone,
    child: shouwang_core::ids::ChildId,
}

/// A hub (its settings changed by `configure`) with the office and the 班主任 enrolled and
/// synced; then, offline, her 家访, while the office gives her class to another head and sends
/// her the news as a file, which she imports.
async fn visit_then_news_of_a_new_head(configure: impl FnOnce(&mut ServerConfig)) -> School {
    let (dir, data, server) = small_hub_served_with(configure).await;
    let office = enroll(&server, "张长友", Role::Leadership).await;
    let teacher = enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    for p in [&office, &teacher] {
        p.sync_hub().await;
    }
    let child = office.archive().find_child(CHILD).unwrap();
    teacher.record("家访", CHILD, "2026-12-01", NOTE);
    {
        give_the_class_to_another_head(&mut office.archive());
    }
    office.sync_hub().await;
    let news = office
        .archive()
        .export_bundle(Some(HEAD_TEACHER), None)
        .unwrap();
    teacher.archive().import_bundle(&news).unwrap();
    School {
        _dir: dir,
        data,
        server,
        office,
        teacher,
        child,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_written_before_hearing_of_a_new_head_reaches_the_school_before_the_file_goes() {
    let School {
        _dir,
        data,
        server,
        office,
        teacher,
        child,
    } = visit_then_news_of_a_new_head(|_| {}).await;

    // She may no longer see the file, but her phone keeps it: the school does not have her
    // work yet.
    assert!(teacher.archive().child_file(CHILD).is_err());
    assert!(
        !teacher.docs_of(&child).is_empty(),
        "her phone dropped her unsent 家访"
    );
    let listed = teacher.archive().children(None, false).unwrap();
    assert!(
        !listed.iter().any(|c| c.name == CHILD),
        "her phone still lists the child"
    );

    // Her next sync hands it in; then the file goes.
    teacher.sync_hub().await;
    assert!(
        teacher.docs_of(&child).is_empty(),
        "her phone kept the file"
    );
    office.sync_hub().await;
    let her = teacher.archive().me_id().as_str().to_owned();
    assert_eq!(visits(&office), vec![her]);
    assert!(
        data.open_archive()
            .unwrap()
            .quarantined()
            .unwrap()
            .is_empty(),
        "the hub refused her 家访"
    );
    server.shutdown().await;
}

/// The same, but the hub cannot take her work today (her member's daily quota is spent): it
/// answers `Deferred` instead of `OutOfScope`, and her phone keeps the file for the next try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_in_the_hub_defers_stays_on_the_phone() {
    let School {
        _dir,
        data,
        server,
        office,
        teacher,
        child,
    } = visit_then_news_of_a_new_head(|c| c.daily_change_bytes = 1).await;

    teacher.sync_hub().await;
    assert!(
        !teacher.docs_of(&child).is_empty(),
        "her phone dropped a 家访 the hub did not take"
    );
    office.sync_hub().await;
    assert!(visits(&office).is_empty(), "the quota let it through");
    drop(data);
    server.shutdown().await;
}

/// The same 家访, on a file her phone never exchanged as a delta with the hub (nothing of it
/// shared yet: it goes through automerge's sync, where the hub takes no hand-in). The hub
/// refuses it as out of scope; her phone hands its copy in whole as `Changes`, which the
/// hub takes, and only the answer to that lets it drop the file. Before, the first refusal
/// dropped it, and the 家访 with it. (In-process sessions over real stores, the hub's
/// session as the hub makes it.)
#[test]
fn a_file_the_hub_refuses_before_any_delta_is_handed_in_before_the_phone_drops_it() {
    use shouwang_tests::fixtures::CHILDREN;

    let (mut office, mut teacher, visit) = visit_then_a_new_head_in_process();
    let child = CHILDREN[0].1;
    hub_sync(&mut office.archive, &mut teacher.archive);
    let id = office.archive.find_child(child).unwrap();
    let file = shouwang_core::doc::DocId::Child(id);
    assert!(
        !holds_doc(&mut teacher, &file),
        "her phone keeps a file no longer hers"
    );
    let at_school = office.archive.child_file(child).unwrap();
    assert!(
        at_school.records.iter().any(|r| r.meta.id.0 == visit),
        "her 家访 is lost"
    );
}

/// A 家访 typed while her sync is still open, into a file the hub has just refused her: the
/// office moved the child to another class, and her phone cannot know (the move is in the
/// child's file, which the hub no longer sends her), so she still sees the child and writes.
/// The hub takes a hand-in of a file once a session, and took her first 家访 already: her
/// phone keeps the file at the end of the session, hands it in at the next sync, and only
/// then drops it.
/// Before, the first refusal marked the file and the end of the session dropped it with the
/// new 家访 in it. (In-process sessions over real stores, as the hub and her phone make them.)
#[test]
fn a_visit_typed_after_the_hub_refused_the_file_waits_for_the_next_sync() {
    use shouwang_core::doc::DocId;
    use shouwang_core::sync::Event;
    use shouwang_tests::attack::{hub_and_phone, pump, pump_after};
    use shouwang_tests::fixtures::{CHILDREN, join, kv, school};

    let mut office = school();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let child = CHILDREN[0].1;
    hub_sync(&mut office.archive, &mut teacher.archive);
    office
        .archive
        .add_member("陈桂芝", &[Role::HeadTeacher], None, None)
        .unwrap();
    office
        .archive
        .add_class("三年级(2)班", Some("陈桂芝"))
        .unwrap();
    office
        .archive
        .edit_child(child, "profile", &kv(&[("class_id", "三年级(2)班")]))
        .unwrap();
    let file = DocId::Child(office.archive.find_child(child).unwrap());
    // Offline meanwhile, a first 家访: the hub takes it as her hand-in at the next sync.
    teacher.record("家访", child, "2026-12-01", &[("notes", NOTE)]);

    let (hub, phone) = hub_and_phone(&mut office.archive, &teacher.archive);
    let (phone, hub) = pump(&mut teacher.archive, phone, &mut office.archive, hub);
    let visit = teacher.record("家访", child, "2026-12-02", &[("notes", NOTE)]);
    pump_after(
        &mut teacher.archive,
        phone,
        Event::LocalChange(&file),
        &mut office.archive,
        hub,
    );
    teacher.archive.purge_out_of_scope().unwrap();
    let holds = |d: &mut shouwang_tests::fixtures::Device| holds_record(d, child, &visit);
    assert!(
        holds(&mut office) || holds(&mut teacher),
        "the end of the session dropped a 家访 the school does not hold"
    );

    hub_sync(&mut office.archive, &mut teacher.archive);
    assert!(holds(&mut office), "her 家访 never reached the school");
    assert!(
        !holds_doc(&mut teacher, &file),
        "her phone keeps a file no longer hers"
    );
}

/// Her phone holds heads shared with the hub that the hub no longer has (the school restored
/// the hub from an older backup): her hand-in goes as a delta from those heads, which the
/// hub cannot apply. Before, the hub answered `OutOfScope` all the same and her phone dropped
/// the file with her 家访 in it, which then existed nowhere. Now the hub says it could not
/// take it (`Deferred`, nothing read), her phone hands the whole file in, and the hub takes
/// that. (The hub here: another administrator's device, a copy of the office from before her
/// first 家访 reached it, answering as the hub her phone knows.)
#[test]
fn a_hand_in_the_hub_cannot_apply_is_handed_in_whole() {
    use shouwang_core::doc::DocId;
    use shouwang_tests::fixtures::{CHILDREN, join, school};

    let mut office = school();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let mut restored = join(&mut office, "张长友");
    let child = CHILDREN[0].1;
    hub_sync(&mut office.archive, &mut teacher.archive);
    let first = teacher.record("家访", child, "2026-11-28", &[("notes", NOTE)]);
    hub_sync(&mut office.archive, &mut teacher.archive);

    // The restored hub: her class went to another head since, and she writes offline.
    give_the_class_to_another_head(&mut restored.archive);
    let second = teacher.record("家访", child, "2026-12-01", &[("notes", NOTE)]);
    let file = DocId::Child(restored.archive.find_child(child).unwrap());
    hub_sync(&mut restored.archive, &mut teacher.archive);
    let holds =
        |d: &mut shouwang_tests::fixtures::Device, visit: &str| holds_record(d, child, visit);
    for visit in [&first, &second] {
        assert!(
            holds(&mut restored, visit) || holds(&mut teacher, visit),
            "a 家访 the school does not hold was dropped"
        );
    }
    assert!(
        holds(&mut restored, &second),
        "the hub did not take her work"
    );
    assert!(
        !holds_doc(&mut teacher, &file),
        "her phone keeps a file no longer hers"
    );
}

/// An administrator's phone met directly (a modified app, or one behind on a pairing) says
/// a file of hers is out of scope: only her hub may, so her phone keeps the file and the
/// 家访 in it.
#[test]
fn an_administrator_s_phone_cannot_make_her_drop_a_file() {
    use shouwang_core::doc::DocId;
    use shouwang_core::store::Sender;
    use shouwang_core::sync::{Event, Message, Why};
    use shouwang_tests::fixtures::{CHILDREN, join, school};

    let mut office = school();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let child = CHILDREN[0].1;
    teacher.record("家访", child, "2026-12-01", &[("notes", NOTE)]);
    let file = DocId::Child(teacher.archive.find_child(child).unwrap());
    let principal = office.archive.me().unwrap();
    let office_device = office.archive.device().clone();
    let mut session = teacher
        .archive
        .peer_session(office_device.as_str(), &principal)
        .unwrap()
        .with_sender(Sender::Administrator {
            device: office_device,
        });
    session
        .handle(teacher.archive.store(), Event::Start)
        .unwrap();
    let refusal = Message::Refused {
        doc: file.clone(),
        why: Why::OutOfScope,
        count: 0,
        reason: "对方无权在这里同步这份档案".into(),
    }
    .encode();
    session
        .handle(teacher.archive.store(), Event::Frame(&refusal))
        .unwrap();
    teacher.archive.purge_out_of_scope().unwrap();
    assert!(
        holds_doc(&mut teacher, &file),
        "a phone met directly made her drop her file"
    );
}

/// The same file handed in whole, but the hub cannot take it today (her member's daily quota
/// is spent): it answers `Deferred`, and her phone keeps the file. (The two rules that keep a
/// deferred hand-in through the rest of its session are shown by
/// `core::sync::session::held`'s tests.)
#[test]
fn a_whole_hand_in_the_hub_defers_stays_on_the_phone() {
    use shouwang_core::doc::DocId;
    use shouwang_tests::attack::pump;
    use shouwang_tests::fixtures::CHILDREN;

    let (mut office, mut teacher, _visit) = visit_then_a_new_head_in_process();
    let child = CHILDREN[0].1;
    let (hub, phone) = shouwang_tests::attack::hub_and_phone(&mut office.archive, &teacher.archive);
    let quota_of = teacher.archive.me_id().clone();
    let hub = hub.with_daily_quota(quota_of, 1);
    pump(&mut teacher.archive, phone, &mut office.archive, hub);
    teacher.archive.purge_out_of_scope().unwrap();
    let file = DocId::Child(office.archive.find_child(child).unwrap());
    let at_school = office.archive.child_file(child).unwrap();
    assert!(
        !at_school
            .records
            .iter()
            .any(|r| r.kind_label.starts_with("家访")),
        "the hub took the hand-in despite the quota"
    );
    assert!(
        holds_doc(&mut teacher, &file),
        "her phone dropped a 家访 the school does not hold"
    );
}

/// A child's file on her phone that the hub never held, outside what it gives her (here made
/// below the API; the honest way there is a school copy the hub lost). It is not the school's
/// to take as a hand-in: the hub makes nothing of it (taken, a hand-in of any id made a
/// document there, `sync_stories.rs` 9c), and her phone keeps it with what she wrote, told
/// why (answered `OutOfScope`, her phone would take that as the school holding her work, and
/// drop it).
#[test]
fn a_file_the_hub_never_held_stays_on_her_phone() {
    use shouwang_core::doc::DocId;
    use shouwang_core::ids::ChildId;
    use shouwang_tests::fixtures::{join, school};

    let mut office = school();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let unknown = DocId::Child(ChildId("c0ffee0ffee0ffee".into()));
    shouwang_tests::attack::forge(&mut teacher.archive, &unknown, None, |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let records = tx.get(automerge::ROOT, "records")?.unwrap().1;
        tx.put_object(&records, "r-offline", automerge::ObjType::Map)?;
        Ok(())
    });
    for _ in 0..2 {
        hub_sync(&mut office.archive, &mut teacher.archive);
    }
    assert!(!holds_doc(&mut office, &unknown), "the hub made it");
    assert!(
        holds_doc(&mut teacher, &unknown),
        "her phone dropped a file the school does not hold"
    );
    // Her status says why no sync settles it, and to whom to turn.
    let hub = office.archive.device().as_str().to_owned();
    let status = teacher.archive.sync_status(&hub).unwrap();
    assert!(
        status
            .refused
            .iter()
            .any(|(_, _, why)| why.contains("学校服务器上没有这份档案")),
        "{status:?}"
    );
}

/// Not a hand-in: a phone's access log (`audit/<device>`), made on the phone and never at the
/// hub before its first sync, is the member's own to send. The hub takes it as any document in
/// her scope, and her phone keeps it. Before, the hub's scope held only documents it already
/// had: it refused the log out of scope, and her phone dropped it (later, writing a new log
/// under the same device, it broke every sync with the hub).
#[test]
fn a_phone_s_access_log_reaches_the_hub_and_stays_on_the_phone() {
    use shouwang_core::doc::DocId;
    use shouwang_tests::fixtures::school;

    let mut office = school();
    // A phone set up by the office and never back there since (as one enrolled by the hub).
    let new = office
        .archive
        .export_new_device(HEAD_TEACHER, "手机")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut phone_archive = shouwang_core::Archive::join(
        &dir.path().join("phone.db"),
        &new.bundle,
        &new.passphrase,
        HEAD_TEACHER,
    )
    .unwrap();
    // An export is written in the device's access log.
    let admin = office.archive.me_id().as_str().to_owned();
    phone_archive.export_bundle(Some(&admin), None).unwrap();
    let log = DocId::Audit(phone_archive.device().clone());
    assert!(phone_archive.store().doc_ids().unwrap().contains(&log));
    assert!(!holds_doc(&mut office, &log));
    let mut teacher = shouwang_tests::fixtures::Device {
        name: HEAD_TEACHER,
        archive: phone_archive,
        dir,
    };
    hub_sync(&mut office.archive, &mut teacher.archive);
    assert!(
        holds_doc(&mut office, &log),
        "the hub does not have her access log"
    );
    assert!(
        holds_doc(&mut teacher, &log),
        "her phone dropped its access log"
    );
}

/// In process, over real stores: the office (as the hub's archive) and the 班主任's phone set
/// up from its file; she records a 家访 offline, and the office gives her class to another
/// head. Returns (office, phone, the 家访's id).
fn visit_then_a_new_head_in_process() -> (
    shouwang_tests::fixtures::Device,
    shouwang_tests::fixtures::Device,
    String,
) {
    use shouwang_tests::fixtures::{CHILDREN, join, school};
    let mut office = school();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let visit = teacher.record("家访", CHILDREN[0].1, "2026-12-01", &[("notes", NOTE)]);
    give_the_class_to_another_head(&mut office.archive);
    (office, teacher, visit)
}

/// A 班主任 loses her class and gets it back (the office gave it to a colleague for a term):
/// her phone dropped the class's files when it lost them, and the hub sends them to her again
/// once they are hers, with the 家访 she had written there. Her next 家访 and class activity
/// reach the school, and every sync after goes on. (The hub keeps what it shared with her
/// phone before the drop: it must not take that as what her phone holds now.)
#[test]
fn a_class_given_back_comes_back_whole_and_her_new_work_reaches_the_school() {
    use shouwang_core::doc::DocId;
    use shouwang_tests::fixtures::{CHILDREN, join, school};

    let mut office = school();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let child = CHILDREN[0].1;
    let first = teacher.record("家访", child, "2026-09-10", &[("notes", NOTE)]);
    teacher
        .archive
        .add_record(&shouwang_core::archive::RecordInput {
            kind: "class_activity".into(),
            child: None,
            class: Some(CLASS.into()),
            date: "2026-09-12".into(),
            fields: shouwang_tests::fixtures::kv(&[("title", "中秋手工课"), ("notes", "做灯笼")]),
        })
        .unwrap();
    hub_sync(&mut office.archive, &mut teacher.archive);
    let file = DocId::Child(office.archive.find_child(child).unwrap());

    give_the_class_to_another_head(&mut office.archive);
    hub_sync(&mut office.archive, &mut teacher.archive);
    assert!(
        !holds_doc(&mut teacher, &file),
        "her phone keeps a file no longer hers"
    );

    office.archive.set_class_head(CLASS, HEAD_TEACHER).unwrap();
    hub_sync(&mut office.archive, &mut teacher.archive);
    let visits = |d: &mut shouwang_tests::fixtures::Device| -> Vec<String> {
        d.archive
            .child_file(child)
            .map(|f| f.records.iter().map(|r| r.meta.id.0.clone()).collect())
            .unwrap_or_default()
    };
    assert!(
        visits(&mut teacher).contains(&first),
        "the file did not come back to her"
    );
    let second = teacher.record("家访", child, "2026-12-02", &[("notes", NOTE)]);
    teacher
        .archive
        .add_record(&shouwang_core::archive::RecordInput {
            kind: "class_activity".into(),
            child: None,
            class: Some(CLASS.into()),
            date: "2026-12-03".into(),
            fields: shouwang_tests::fixtures::kv(&[
                ("title", "冬至包饺子"),
                ("notes", "和留守孩子一起包饺子"),
            ]),
        })
        .unwrap();
    hub_sync(&mut office.archive, &mut teacher.archive);
    assert!(
        visits(&mut office).contains(&second),
        "her 家访 did not reach the school"
    );
    let class = DocId::Class(office.archive.find_class(CLASS).unwrap().id);
    assert_eq!(
        office.archive.store().heads(&class).unwrap(),
        teacher.archive.store().heads(&class).unwrap(),
        "the class's log differs between her phone and the school"
    );
}

/// Her phone remembers the files it dropped that she wrote in (a class given to a colleague),
/// so as never to start one afresh; if the school later erases one of those children, the
/// mark goes too, although her phone holds nothing else of the child by then.
#[test]
fn an_erased_child_leaves_no_mark_on_a_phone_that_had_dropped_her_file() {
    use shouwang_core::doc::DocId;
    use shouwang_tests::fixtures::{CHILDREN, join, school};

    let mut office = school();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let child = CHILDREN[0].1;
    teacher.record("家访", child, "2026-11-28", &[("notes", NOTE)]);
    hub_sync(&mut office.archive, &mut teacher.archive);
    let file = DocId::Child(office.archive.find_child(child).unwrap());
    give_the_class_to_another_head(&mut office.archive);
    hub_sync(&mut office.archive, &mut teacher.archive);
    assert!(
        teacher
            .archive
            .store()
            .purged_marks()
            .unwrap()
            .contains(&file)
    );

    office
        .archive
        .erase_child(child, "监护人书面申请删除（申请表 2026-031 号）")
        .unwrap();
    hub_sync(&mut office.archive, &mut teacher.archive);
    let left: Vec<DocId> = teacher
        .archive
        .store()
        .purged_marks()
        .unwrap()
        .into_iter()
        .filter(|d| d.child() == file.child())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The office gives the 班主任's class to a new head, 陈桂芝 (added as a member).
fn give_the_class_to_another_head(office: &mut shouwang_core::Archive) {
    office
        .add_member("陈桂芝", &[Role::HeadTeacher], None, None)
        .unwrap();
    office.set_class_head(CLASS, "陈桂芝").unwrap();
}

/// Whether `d` holds record `id` in `child`'s file.
fn holds_record(d: &mut shouwang_tests::fixtures::Device, child: &str, id: &str) -> bool {
    d.archive
        .child_file(child)
        .is_ok_and(|f| f.records.iter().any(|r| r.meta.id.0 == id))
}

/// Whether `d`'s store holds document `doc`.
fn holds_doc(d: &mut shouwang_tests::fixtures::Device, doc: &shouwang_core::doc::DocId) -> bool {
    d.archive.store().doc_ids().unwrap().contains(doc)
}
