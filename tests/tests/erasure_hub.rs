//! Erasing a child's file over the real hub and device to device (issue 11, point 3): the
//! hub (`shouwang-relay`'s server in-process on 127.0.0.1), phones enrolled with invite
//! tickets (`device::join`), real iroh endpoints and SQLite stores.
//!
//! The office's phone erases 王小雨 and syncs. The hub drops her documents and keeps only the
//! erasure record; the 班主任's phone drops them at its next sync; the 爱心妈妈's phone, offline
//! all along, drops them when the office's phone meets it directly. Afterwards no store file
//! or WAL holds a byte of her name, her 身份证号 or the 谈心 written about her (the hub's
//! SQLCipher file is searched through its key, table by table), and a modified app that kept
//! her file and sends it again, with a new change, is refused: the hub keeps nothing of it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use shouwang_core::Archive;
use shouwang_core::doc::DocId;
use shouwang_core::ids::ChildId;
use shouwang_relay::server::DataDir;
use shouwang_tests::fixtures::hub_leaks;
use shouwang_tests::phone::{
    CHILD, TALK_NOTE, child_on_hub, docs_of, history_leaks, id_number, opts, school_on_hub,
};

/// Waits (up to 10 s) for the hub to hold no document of the child.
async fn hub_drops(data: &DataDir, child: &ChildId) -> bool {
    for _ in 0..100 {
        if docs_of(&mut data.open_archive().unwrap(), child).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_reaches_the_hub_a_phone_at_its_next_sync_and_an_offline_phone_through_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (school, id_no) = child_on_hub(dir.path()).await;
    let (data, server, office, teacher, mother) = school.parts();
    let secrets = [CHILD, id_no.as_str(), TALK_NOTE];
    assert_eq!(office.leaks(&secrets).len(), 3, "the office holds it all");
    let on_hub = hub_leaks(&data, &secrets);
    for w in secrets {
        assert!(on_hub.iter().any(|l| l.ends_with(w)), "{w}: {on_hub:?}");
    }
    let child = office.archive().find_child(CHILD).unwrap();
    // A modified 班主任's app keeps a copy of the store it will never purge.
    let stale_dir = tempfile::tempdir().unwrap();
    let stale_path = stale_dir.path().join("phone.db");
    {
        let mut a = teacher.archive();
        a.compact().unwrap();
        a.store()
            .conn()
            .execute("VACUUM INTO ?1", [stale_path.to_str().unwrap()])
            .unwrap();
    }

    // The office erases her and syncs; the 爱心妈妈's phone stays offline.
    let report = office
        .archive()
        .erase_child(CHILD, "监护人书面申请删除")
        .unwrap();
    assert_eq!(report.purged, 2, "{report:?}");
    office.sync_hub().await;
    assert!(
        hub_drops(&data, &child).await,
        "the hub still holds her file"
    );
    let erasures = data.open_archive().unwrap().erasures().unwrap();
    assert_eq!(erasures.len(), 1, "the hub keeps the erasure record");
    assert_eq!(erasures[0].child, child);

    teacher.sync_hub().await;
    assert!(teacher.docs_of(&child).is_empty());
    assert!(
        teacher.archive().find_child("赵子涵").is_ok(),
        "the others stay"
    );

    // The office's phone meets the 爱心妈妈's directly, with the hub out of reach.
    assert!(!mother.docs_of(&child).is_empty());
    let (node, addr) = mother.wait().await;
    office.dial(addr).await;
    node.shutdown().await;
    assert!(
        mother.docs_of(&child).is_empty(),
        "the offline phone kept her"
    );
    assert_eq!(mother.archive().erasures().unwrap().len(), 1);

    let mut leaks = hub_leaks(&data, &secrets);
    for p in [&office, &teacher, &mother] {
        leaks.extend(p.leaks(&secrets));
    }
    assert!(leaks.is_empty(), "{leaks:?}");

    // The modified app sends her file again, with a new 家访, as the 班主任's device.
    let (stale, hash) = {
        let mut a = Archive::open(&stale_path).unwrap();
        assert!(!docs_of(&mut a, &child).is_empty());
        let doc = DocId::Child(child.clone());
        let hash = shouwang_tests::attack::forge(&mut a, &doc, None, |tx| {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let guardian = tx.get(automerge::ROOT, "guardian")?.unwrap().1;
            tx.put(&guardian, "health", "奶奶在家，作业认真")?;
            Ok(())
        });
        (a, hash)
    };
    let node = teacher.id.bind(false).await.unwrap();
    let _ = shouwang_relay::syncing::sync_once(
        &node,
        server.hub_addr(),
        stale,
        &teacher.id.certificate,
        &opts(),
    )
    .await;
    node.shutdown().await;
    let mut hub = data.open_archive().unwrap();
    assert!(
        docs_of(&mut hub, &child).is_empty(),
        "the hub took her file back"
    );
    assert!(!shouwang_tests::attack::holds(
        &mut hub,
        &DocId::Child(child.clone()),
        &hash
    ));
    drop(hub);
    let leaks = hub_leaks(&data, &[CHILD, id_no.as_str(), TALK_NOTE, "作业认真"]);
    assert!(leaks.is_empty(), "{leaks:?}");
    // And the phones that sync afterwards get nothing of it.
    teacher.sync_hub().await;
    assert!(teacher.docs_of(&child).is_empty());
    assert!(teacher.leaks(&secrets).is_empty());
    server.shutdown().await;
}

/// A correction purged from history through the hub: the office corrects a wrong 身份证号 and
/// re-bases the file; every phone replaces its copy at its next sync with the hub, keeps the
/// 家访 written before, and goes on recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebased_file_replaces_every_phones_copy_through_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let (data, server, office, teacher, mother) = school_on_hub(dir.path()).await.parts();
    let wrong = id_number("123");
    let right = id_number("124");
    let edit = |field: &str, section: &str, value: &str| {
        office
            .archive()
            .edit_child(CHILD, section, &[(field.to_owned(), value.to_owned())])
            .unwrap();
    };
    edit("id_card", "identity", &wrong);
    teacher.record("家访", CHILD, "2026-11-18", TALK_NOTE);
    for p in [&office, &teacher, &mother, &office] {
        p.sync_hub().await;
    }
    edit("id_card", "identity", &right);
    for p in [&office, &teacher, &mother] {
        p.sync_hub().await;
    }
    assert!(
        !history_leaks(&teacher, &[&wrong]).is_empty(),
        "the 班主任's history holds it"
    );

    let report = office
        .archive()
        .rebase_child(CHILD, "更正身份证号")
        .unwrap();
    assert_eq!(report.documents, 2, "{report:?}");
    let synced = async {
        for p in [&office, &teacher, &mother] {
            p.sync_hub().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), synced)
        .await
        .expect("the syncs after the re-basing never ended");

    let mut leaks = hub_leaks(&data, &[&wrong]);
    for p in [&office, &teacher, &mother] {
        leaks.extend(history_leaks(p, &[&wrong]));
    }
    assert!(leaks.is_empty(), "{leaks:?}");
    let file = teacher.archive().child_file(CHILD).unwrap();
    assert_eq!(file.records.len(), 1, "the 家访 stays");
    let privately = teacher
        .archive()
        .child_file_for(CHILD, Some("核对更正"))
        .unwrap();
    // Shown masked: the corrected number's last digits.
    assert!(
        format!("{privately:?}").contains(&right[14..]),
        "{privately:?}"
    );

    // Work goes on: a 谈心 after the re-basing reaches the office.
    mother.record("谈心", CHILD, "2026-11-25", "说这周考试进步了");
    tokio::time::timeout(Duration::from_secs(60), async {
        mother.sync_hub().await;
        office.sync_hub().await;
    })
    .await
    .expect("a sync after the re-basing never ended");
    let file = office.archive().child_file(CHILD).unwrap();
    assert_eq!(file.records.len(), 2, "{:?}", file.records);
    server.shutdown().await;
}

/// The 爱心妈妈 writes a 谈心, and the 班主任 a 心理辅导记录 (the private part), offline while the
/// office re-bases the file. At their next syncs with the hub their copies are replaced by the
/// new generation (the hub refuses their changes to the old one), their records carried over
/// into it as their own new changes (the 班主任's private part waits for its care file if it
/// comes first: `sync_stories` story 12b, so one sync brings both), and both reach the office.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_offline_while_the_file_is_rebased_reach_the_office() {
    const TALK: &str = "还不知道档案已重建：说这周考试进步了";
    const COUNSELLING: &str = "情绪低落，约定下周再谈";
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, office, teacher, mother) = school_on_hub(dir.path()).await.parts();
    for p in [&office, &mother, &teacher] {
        p.sync_hub().await;
    }
    office
        .archive()
        .rebase_child(CHILD, "更正身份证号")
        .unwrap();
    office.sync_hub().await;
    mother.record("谈心", CHILD, "2026-11-25", TALK);
    teacher.record("心理辅导记录", CHILD, "2026-11-25", COUNSELLING);
    tokio::time::timeout(Duration::from_secs(120), async {
        mother.sync_hub().await;
        mother.sync_hub().await;
        teacher.sync_hub().await;
        office.sync_hub().await;
    })
    .await
    .expect("the syncs after the re-basing never ended");
    let holds = |a: &mut Archive, note: &str| {
        a.child_file_for(CHILD, Some("核对"))
            .unwrap()
            .records
            .iter()
            .any(|r| format!("{r:?}").contains(note))
    };
    assert!(holds(&mut mother.archive(), TALK), "still on her phone");
    assert!(
        holds(&mut teacher.archive(), COUNSELLING),
        "still on his phone"
    );
    for note in [TALK, COUNSELLING] {
        assert!(holds(&mut office.archive(), note), "{note} at the office");
    }
    server.shutdown().await;
}

/// The 爱心妈妈's phone, offline since before the erasure, writes one more 谈心 about her and
/// then dials the office's phone, which has erased her: it learns of the erasure in the
/// exchange (the office's phone refuses her file), and holds none of her documents
/// afterwards, her unsent 谈心 included (the erasure is final). She is told that work she had
/// not sent went with an erased file, without the child's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_hears_of_an_erasure_from_a_colleague_it_dials_drops_her() {
    let dir = tempfile::tempdir().unwrap();
    let (school, _) = child_on_hub(dir.path()).await;
    let (_data, server, office, _teacher, mother) = school.parts();
    let child = office.archive().find_child(CHILD).unwrap();
    office
        .archive()
        .erase_child(CHILD, "监护人书面申请删除")
        .unwrap();
    server.shutdown().await;
    mother.record("谈心", CHILD, "2026-12-01", "又说想妈妈了");
    assert!(!mother.docs_of(&child).is_empty());
    let (node, addr) = office.wait().await;
    mother.dial(addr).await;
    node.shutdown().await;
    assert_eq!(mother.archive().erasures().unwrap().len(), 1);
    assert!(mother.docs_of(&child).is_empty(), "the phone kept her");
    let mut a = mother.archive();
    let held = a.store().held_doc_ids().unwrap();
    assert!(!held.iter().any(|d| d.child() == Some(&child)), "{held:?}");
    assert!(mother.leaks(&["又说想妈妈了"]).is_empty());
    let told = a.take_not_carried().unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].contains("删除了一名学生的档案") && told[0].contains("还没有同步"),
        "{told:?}"
    );
    assert!(!told[0].contains(CHILD), "{told:?}");
    assert!(mother.leaks(&[CHILD]).is_empty(), "named nowhere once told");
}

/// A phone connected live (the app open on the sync screen) hears of an erasure while its
/// connection stays open: her file leaves the phone then, not when the connection ends (the
/// app may be closed, or the connection dropped without the purge that follows it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_connected_live_drops_an_erased_child_while_connected() {
    use shouwang_relay::device;
    let dir = tempfile::tempdir().unwrap();
    let (school, _) = child_on_hub(dir.path()).await;
    let (data, server, office, teacher, _mother) = school.parts();
    let child = office.archive().find_child(CHILD).unwrap();
    assert!(!teacher.docs_of(&child).is_empty());
    let node = teacher.id.bind(false).await.unwrap();
    let (id, archive) = (teacher.id.clone(), teacher.archive());
    let live = tokio::spawn(async move {
        let r = device::sync_hub_live(&node, &id, archive, &device::default_options(), None).await;
        node.shutdown().await;
        r
    });

    office
        .archive()
        .erase_child(CHILD, "监护人书面申请删除")
        .unwrap();
    office.sync_hub().await;
    assert!(hub_drops(&data, &child).await);
    let mut dropped = false;
    for _ in 0..600 {
        if teacher.docs_of(&child).is_empty() {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !live.is_finished(),
        "the live connection ended: {:?}",
        live.await
    );
    assert!(dropped, "her file stayed on the live phone");
    live.abort();
    let _ = live.await;
    server.shutdown().await;
}
