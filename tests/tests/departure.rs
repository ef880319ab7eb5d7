//! A child leaving the school, retention, and the hub's delivery log (issue 11 points 2 and 4,
//! issue 9 point 4), over the real hub (`shouwang-relay`'s server in-process on 127.0.0.1),
//! phones enrolled with invite tickets, real iroh endpoints and SQLite stores.
//!
//! The office records that 王小雨 left (转学). At their next sync the 班主任's and the
//! 爱心妈妈's phones drop her file (no byte of her name, 身份证号 or the 谈心 about her left in
//! the store or WAL); the office and the hub keep it; her duties leave the due lists. Once the
//! school's retention has passed since her leave date, the office's review lists her file.
//! A 爱心妈妈's modified app that writes the same leave into the school document is refused at
//! the hub. She comes back: `return_child`, and the 班主任's phone gets her file again. The
//! hub's delivery log says which of her documents went to which phone.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use chrono::NaiveDate;
use shouwang_core::Archive;
use shouwang_core::archive::{DeliveryFilter, LeaveInput};
use shouwang_core::doc::DocId;
use shouwang_core::school::LeaveReason;
use shouwang_relay::server::ServerConfig;
use shouwang_tests::fixtures::{HEAD_TEACHER, LOVE_MOTHER};
use shouwang_tests::phone::{CHILD, TALK_NOTE, child_on_hub, docs_of, history_leaks, opts};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Where she went, which only administrators keep.
const NEW_SCHOOL: &str = "丁里镇中心小学";

fn leave(date: &str) -> LeaveInput {
    LeaveInput {
        date: date.into(),
        reason: "辍学".into(),
        to: Some(NEW_SCHOOL.into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_leaves_the_carers_phones_drop_her_file_the_office_keeps_it_until_retention_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (school, id_no) = child_on_hub(dir.path()).await;
    let (data, server, office, teacher, mother) = school.parts();
    let secrets = [CHILD, id_no.as_str(), TALK_NOTE];
    let child = office.archive().find_child(CHILD).unwrap();

    // The hub logged what it sent to the 班主任's phone: her file among it, by id only.
    let teacher_device = teacher.archive().device().to_string();
    let sent = data
        .open_archive()
        .unwrap()
        .deliveries(&DeliveryFilter {
            device: Some(teacher_device.clone()),
            child: Some(child.to_string()),
            limit: None,
        })
        .unwrap();
    assert!(
        sent.iter().any(|d| d.doc == format!("child/{child}")),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .any(|d| d.doc == format!("child/{child}/private"))
    );
    assert!(sent.iter().all(|d| d.device == teacher_device && d.at > 0));
    let all = data
        .open_archive()
        .unwrap()
        .deliveries(&DeliveryFilter::default())
        .unwrap();
    let mother_device = mother.archive().device().to_string();
    assert!(
        all.iter()
            .any(|d| d.device == mother_device && d.doc == format!("child/{child}")),
        "the 爱心妈妈's phone received her file: {all:?}"
    );
    assert!(
        !all.iter()
            .any(|d| d.device == mother_device && d.doc == format!("child/{child}/private")),
        "never her private part"
    );
    // `shouwang-relay deliveries --device <prefix> --child 王小雨`, as the server's admin runs it.
    let config = ServerConfig::loopback(dir.path().join("hub"));
    let printed = shouwang_relay::server::commands::deliveries_command(
        &config,
        Some(&teacher_device[..8]),
        Some(CHILD),
        None,
    )
    .unwrap();
    assert!(
        printed.contains(HEAD_TEACHER) && printed.contains(&format!("child/{child}/private")),
        "{printed}"
    );
    assert!(
        !printed.contains(LOVE_MOTHER) && !printed.contains(CHILD),
        "{printed}"
    );
    assert!(
        shouwang_relay::server::commands::deliveries_command(&config, Some("xyz"), None, None)
            .is_err()
    );
    // A carer cannot read the hub's delivery log.
    assert!(
        teacher
            .archive()
            .deliveries(&DeliveryFilter::default())
            .is_err()
    );

    // A 爱心妈妈's modified app writes the leave itself: refused at the hub.
    let stale_dir = tempfile::tempdir().unwrap();
    let stale_path = stale_dir.path().join("phone.db");
    mother
        .archive()
        .store()
        .conn()
        .execute("VACUUM INTO ?1", [stale_path.to_str().unwrap()])
        .unwrap();
    let forged = {
        let mut a = Archive::open(&stale_path).unwrap();
        let key = format!("left:{child}");
        let hash = shouwang_tests::attack::forge(&mut a, &DocId::School, None, |tx| {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let profile = tx.get(automerge::ROOT, "school")?.unwrap().1;
            tx.put(
                &profile,
                key.as_str(),
                r#"{"on":"2026-11-01","reason":"转学","by":"x"}"#,
            )?;
            Ok(())
        });
        assert_eq!(a.departures().unwrap().len(), 1, "her own copy believes it");
        let node = mother.id.bind(false).await.unwrap();
        let _ = shouwang_relay::syncing::sync_once(
            &node,
            server.hub_addr(),
            a,
            &mother.id.certificate,
            &opts(),
        )
        .await;
        node.shutdown().await;
        hash
    };
    let mut hub = data.open_archive().unwrap();
    assert!(!shouwang_tests::attack::holds(
        &mut hub,
        &DocId::School,
        &forged
    ));
    assert!(hub.departures().unwrap().is_empty());
    assert!(
        hub.quarantined()
            .unwrap()
            .iter()
            .any(|q| q.reason.contains("不能修改学校设置")),
        "{:?}",
        hub.quarantined().unwrap()
    );
    drop(hub);
    teacher.sync_hub().await;
    assert_eq!(teacher.docs_of(&child).len(), 2, "nothing changed for her");

    // Only an administrator records a leave, with a known reason and a real date.
    assert!(
        teacher
            .archive()
            .leave_child(CHILD, &leave("2026-11-20"))
            .is_err()
    );
    let mut bad = leave("2026-11-20");
    bad.reason = "搬家".into();
    assert!(office.archive().leave_child(CHILD, &bad).is_err());
    assert!(
        office
            .archive()
            .leave_child(CHILD, &leave("2026-13-01"))
            .is_err()
    );

    // The office records that she left, and syncs.
    let report = office
        .archive()
        .leave_child(CHILD, &leave("2026-11-20"))
        .unwrap();
    assert_eq!(report.pairings_ended, 1, "{report:?}");
    assert!(
        office
            .archive()
            .leave_child(CHILD, &leave("2026-11-21"))
            .is_err(),
        "she has already left"
    );
    office.sync_hub().await;
    teacher.sync_hub().await;
    mother.sync_hub().await;
    assert!(
        teacher.docs_of(&child).is_empty(),
        "the 班主任 kept her file"
    );
    assert!(
        mother.docs_of(&child).is_empty(),
        "the 爱心妈妈 kept her file"
    );
    let mut leaks = teacher.leaks(&secrets);
    leaks.extend(mother.leaks(&secrets));
    assert!(leaks.is_empty(), "{leaks:?}");
    // The school document they keep says that she left and when, not why or where to: not
    // in what it holds now, nor anywhere in its history.
    let mut leaks = history_leaks(&teacher, &[NEW_SCHOOL, "辍学"]);
    leaks.extend(history_leaks(&mother, &[NEW_SCHOOL, "辍学"]));
    assert!(leaks.is_empty(), "{leaks:?}");
    let theirs = teacher.archive().departures().unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!((theirs[0].reason, theirs[0].to.as_deref()), (None, None));
    assert!(
        teacher.archive().find_child("赵子涵").is_ok(),
        "the others stay"
    );
    // The office and the hub keep it, private part included.
    assert_eq!(office.docs_of(&child).len(), 2);
    assert_eq!(docs_of(&mut data.open_archive().unwrap(), &child).len(), 2);
    assert!(office.leaks(&[CHILD, id_no.as_str()]).len() == 2);
    // Lists and due work leave her out; `left_children` shows her, with where she went.
    let mut a = office.archive();
    assert!(
        !a.children(None, false)
            .unwrap()
            .iter()
            .any(|c| c.id == child)
    );
    let left = a.left_children(day("2026-12-01")).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, CHILD);
    assert_eq!(left[0].departure.to.as_deref(), Some(NEW_SCHOOL));
    assert_eq!(left[0].departure.reason, Some(LeaveReason::Dropout));
    let teacher_id = a.find_member(HEAD_TEACHER).unwrap().id;
    let due = a
        .due(Some(teacher_id.as_str()), day("2026-12-01"), true)
        .unwrap();
    assert!(
        !due.iter().any(|i| i.child.as_ref() == Some(&child)),
        "{due:?}"
    );
    assert!(
        due.iter()
            .any(|i| i.child_name.as_deref() == Some("赵子涵"))
    );

    // Retention: 3 years by default, counted from the leave date.
    assert_eq!(a.school().unwrap().rules.retention_years, 3);
    assert!(a.due_for_erasure(day("2029-11-19")).unwrap().is_empty());
    let due = a.due_for_erasure(day("2029-11-20")).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].keep_until, "2029-11-20");
    a.set_rule("retention_years", "1").unwrap();
    assert_eq!(a.due_for_erasure(day("2027-11-20")).unwrap().len(), 1);
    assert!(
        teacher
            .archive()
            .due_for_erasure(day("2030-01-01"))
            .is_err()
    );
    drop(a);

    // She comes back: the 班主任's phone gets her file again at its next sync.
    office.archive().return_child(CHILD).unwrap();
    assert!(office.archive().return_child(CHILD).is_err(), "not away");
    office.sync_hub().await;
    teacher.sync_hub().await;
    assert_eq!(teacher.docs_of(&child).len(), 2, "back in her class");
    assert!(
        office
            .archive()
            .left_children(day("2026-12-01"))
            .unwrap()
            .is_empty()
    );
    server.shutdown().await;
}

/// The trust rule behind the scope: once a leave is in the school state a change declares,
/// the child's carers may not write into the file. A 班主任's modified app that received the
/// leave (a direct session with the office, before any purge) and still writes into the file
/// sends it to the office in a file made for the office: the office refuses it on arrival.
#[test]
fn a_carer_who_knows_of_the_leave_cannot_write_into_the_file() {
    use shouwang_tests::fixtures::{CHILDREN, join, school};
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    admin
        .archive
        .leave_child(CHILDREN[0].1, &leave("2026-11-20"))
        .unwrap();
    // The leave reaches her device in a direct session; nothing purges yet.
    let peer = |me: &mut shouwang_tests::fixtures::Device,
                other: &shouwang_tests::fixtures::Device| {
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
    };
    let a = peer(&mut admin, &teacher);
    let t = peer(&mut teacher, &admin);
    shouwang_tests::attack::pump(&mut admin.archive, a, &mut teacher.archive, t);
    assert_eq!(teacher.archive.departures().unwrap().len(), 1);
    assert_eq!(
        docs_of(&mut teacher.archive, &child).len(),
        2,
        "not purged yet"
    );
    // Her app refuses to write; a modified one writes anyway.
    assert!(
        teacher
            .archive
            .edit_child(
                CHILDREN[0].1,
                "guardian",
                &[("health".into(), "良好".into())]
            )
            .is_err()
    );
    let doc = DocId::Child(child.clone());
    let hash = shouwang_tests::attack::forge(&mut teacher.archive, &doc, None, |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let guardian = tx.get(automerge::ROOT, "guardian")?.unwrap().1;
        tx.put(&guardian, "health", "奶奶腿脚不便")?;
        Ok(())
    });
    let office = admin.archive.me_id().to_string();
    let file = teacher.export_for("forged", &office);
    let report = admin.import_file(&file);
    assert!(report.refused >= 1, "{report:?}");
    assert!(!shouwang_tests::attack::holds(
        &mut admin.archive,
        &doc,
        &hash
    ));
    let q = admin.archive.quarantined().unwrap();
    assert!(
        q.iter().any(|q| q.reason.contains("不能修改这份档案")),
        "{q:?}"
    );
    // Her device purges the file at the next import from the office.
    shouwang_tests::fixtures::news(&mut admin, &mut teacher);
    assert!(docs_of(&mut teacher.archive, &child).is_empty());
    // Her phone lost: the report still names the left child's file it may have held.
    let device = teacher.archive.device().to_string();
    let lost = admin.archive.report_lost_device(&device).unwrap();
    let held = lost
        .ended_pairings
        .iter()
        .find(|c| c.id == child)
        .unwrap_or_else(|| panic!("{lost:?}"));
    assert!(held.private, "a 班主任 held the private part too");
}

/// A 家访 the 班主任 typed offline before she heard that the child left is not lost when the
/// news arrives in the office's file: her phone keeps the file while it holds that unsent
/// work, her next file hands it to the office (which keeps a left child's file, and takes a
/// record written before the news), and only the office's file after that drops it from her
/// phone.
#[test]
fn a_record_typed_before_the_news_of_a_leave_reaches_the_office() {
    use shouwang_tests::fixtures::{CHILDREN, join, school, sync};
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let visit = teacher.record(
        "家访",
        CHILDREN[0].1,
        "2026-11-19",
        &[("notes", "奶奶说孩子下周随父母去外地上学")],
    );
    admin
        .archive
        .leave_child(CHILDREN[0].1, &leave("2026-11-20"))
        .unwrap();
    let office = admin.archive.me_id().clone();
    let news = admin.export_for("news", teacher.archive.me_id().as_str());
    teacher.import_file(&news);
    let held = |d: &mut shouwang_tests::fixtures::Device| {
        d.archive
            .store()
            .conn()
            .query_row(
                "SELECT count(*) FROM p_records WHERE record_id = ?1",
                [&visit],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
    };
    assert_eq!(held(&mut teacher), 1, "her 家访 was dropped with the file");
    let hers = teacher.export_for("hers", office.as_str());
    admin.import_file(&hers);
    assert_eq!(held(&mut admin), 1, "the office did not take her 家访");
    sync(&mut admin, &mut teacher);
    sync(&mut admin, &mut teacher);
    assert_eq!(held(&mut teacher), 0, "the file stayed on her phone");
    assert!(docs_of(&mut teacher.archive, &child).is_empty());
}
