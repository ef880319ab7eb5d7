//! Least collection per role over the real hub (issue 11, point 6): the phone numbers an old
//! school wrote into its school document leave the history of every copy, the hub's and each
//! phone's, once the office splits the school; work written offline before the split still
//! arrives, and a phone enrolled afterwards takes every older change of a file. A guardian's
//! withdrawal of the basic file takes the whole file off every carer's phone.
//!
//! The hub (`shouwang-relay`'s server in-process on 127.0.0.1), phones enrolled with invite
//! tickets, real iroh endpoints and SQLite stores.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::doc::DocId;
use shouwang_core::roles::Role;
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_tests::fixtures::{HEAD_TEACHER, LOVE_MOTHER, make_old_school, small_hub};
use shouwang_tests::phone::{Phone, enroll, history_leaks};

const CHILD: &str = "王小雨";
const PHONE: &str = "13805640077";
const NOTE: &str = "说想妈妈了，约好周末视频";

/// Whether any change of `archive`'s school document holds `what`.
fn school_history_holds(mut archive: shouwang_core::Archive, what: &str) -> bool {
    let store = archive.store();
    let doc = store.doc(&DocId::School).unwrap().unwrap();
    doc.get_changes(&[])
        .iter()
        .any(|c| format!("{:?}", c.decode()).contains(what))
}

fn talks(p: &Phone) -> usize {
    p.archive()
        .child_file(CHILD)
        .unwrap()
        .records
        .iter()
        .filter(|r| r.kind_label == "谈心记录")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_schools_phone_numbers_leave_every_copy_of_the_school_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_hub(dir.path());
    make_old_school(&data, PHONE);
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    let office = enroll(&server, "张长友", Role::Leadership).await;
    let teacher = enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    let mother = enroll(&server, LOVE_MOTHER, Role::LoveMother).await;
    for p in [&office, &teacher, &mother] {
        p.sync_hub().await;
        assert_eq!(history_leaks(p, &[PHONE]).len(), 2, "{}", p.name);
    }

    // Offline, before she hears of the split.
    mother.record("谈心", CHILD, "2026-12-01", NOTE);

    let report = office.archive().split_for_roles().unwrap();
    assert!(report.history > 0, "{report:?}");
    assert!(!school_history_holds(office.archive(), PHONE));
    office.sync_hub().await;
    assert!(
        !school_history_holds(data.open_archive().unwrap(), PHONE),
        "the hub kept the old history"
    );
    teacher.sync_hub().await;
    assert_eq!(history_leaks(&teacher, &[PHONE]), Vec::<String>::new());

    // Her 谈心 declares the school as it was; the hub resolves it, and she switches.
    mother.sync_hub().await;
    assert_eq!(history_leaks(&mother, &[PHONE]), Vec::<String>::new());
    office.sync_hub().await;
    assert_eq!(talks(&office), 1);
    assert_eq!(
        data.open_archive().unwrap().quarantined().unwrap().len(),
        0,
        "the hub refused something"
    );

    // Enrolled afterwards: only the rewritten history, and the file's older changes taken.
    let archivist = enroll(&server, "晁月静", Role::Archivist).await;
    archivist.sync_hub().await;
    assert_eq!(talks(&archivist), 1);
    assert!(!school_history_holds(archivist.archive(), PHONE));
    teacher.record("家访", CHILD, "2026-12-02", "奶奶身体还好");
    teacher.sync_hub().await;
    archivist.sync_hub().await;
    assert_eq!(
        archivist.archive().child_file(CHILD).unwrap().records.len(),
        2
    );
    server.shutdown().await;
}

/// The grandmother withdraws consent to the basic file at the office. The withdrawal is in the
/// very file it closes, so the carers' phones cannot learn of it by receiving it: at their
/// next sync the hub answers that they may no longer hold it, and they drop it, the
/// 爱心妈妈's 谈心 written offline meanwhile reaching the hub first. Nothing of the child stays
/// on either phone; the hub keeps the file for the office, until it is erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_of_the_basic_file_takes_it_off_the_carers_phones() {
    use shouwang_tests::phone::{TALK_NOTE, child_on_hub, docs_of};

    let dir = tempfile::tempdir().unwrap();
    let (school, id_no) = child_on_hub(dir.path()).await;
    let (data, server, office, teacher, mother) = school.parts();
    let child = office.archive().find_child(CHILD).unwrap();
    let offline = "周末视频后情绪好多了";
    mother.record("谈心", CHILD, "2026-11-25", offline);
    office
        .archive()
        .withdraw_consent(
            CHILD,
            &shouwang_core::archive::WithdrawalInput {
                date: "2026-11-26".into(),
                by: "王秀英".into(),
                covers: "basic".into(),
            },
        )
        .unwrap();
    office.sync_hub().await;
    for p in [&teacher, &mother, &mother] {
        p.sync_hub().await;
    }
    for p in [&teacher, &mother] {
        assert_eq!(
            p.docs_of(&child),
            Vec::<DocId>::new(),
            "{} kept her file",
            p.name
        );
        let leaks = history_leaks(p, &[CHILD, id_no.as_str(), TALK_NOTE, offline]);
        assert!(leaks.is_empty(), "{leaks:?}");
    }
    let mut hub = data.open_archive().unwrap();
    assert!(!docs_of(&mut hub, &child).is_empty(), "the hub keeps it");
    let file = format!("{:?}", hub.child_file(CHILD).unwrap());
    assert!(
        file.contains(offline),
        "her offline 谈心 did not reach the hub"
    );
    drop(hub);
    server.shutdown().await;
}
