//! A member's scope shrinks and the device purges what it may no longer hold (issue 9, point
//! 4), on real SQLite files: nothing of the purged child stays in the store file or its WAL,
//! even while other connections (the phone app's) keep the store open, and those connections
//! stop showing the child at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use automerge::ROOT;
use automerge::transaction::Transactable;
use common::*;
use shouwang_core::Archive;
use shouwang_core::doc::DocId;
use shouwang_core::doc::access::map_at;
use shouwang_core::doc::layout::MEMBERS;

/// The store file and its WAL, as they are on disk now.
use shouwang_tests::fixtures::{holds_text as holds, raw_store as raw};

const ADDRESS: &str = "丁里镇郭庄村三组东头第二家";

/// The 爱心妈妈's device, set up from a bundle made for her.
fn mother(admin: &mut Device) -> Device {
    let new = admin
        .archive
        .export_new_device(LOVE_MOTHER, "手机")
        .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let archive = Archive::join(
        &dir.path().join("shouwang.db"),
        &new.bundle,
        &new.passphrase,
        LOVE_MOTHER,
    )
    .unwrap();
    Device {
        name: LOVE_MOTHER,
        archive,
        dir,
    }
}

#[test]
fn a_pairing_ended_at_the_office_is_purged_by_the_next_import_even_with_the_store_open() {
    let mut admin = school();
    let child = CHILDREN[0].1;
    // What the office wrote in her file, which the 爱心妈妈's phone holds while she cares for
    // her. (Work of her own the school does not hold yet would keep the file on her phone until
    // it does: `tests/tests/hand_ins.rs`.)
    admin
        .archive
        .edit_child(child, "profile", &kv(&[("address", ADDRESS)]))
        .unwrap();
    let mut phone = mother(&mut admin);
    // The app's own connection, open the whole time, has read the child's file.
    let mut app = Archive::open(&phone.path()).unwrap();
    assert_eq!(app.child_file(child).unwrap().name, child);
    let bytes = raw(&phone.path());
    assert!(holds(&bytes, child) && holds(&bytes, ADDRESS));

    assert_eq!(admin.archive.end_pairing(LOVE_MOTHER, child).unwrap(), 1);
    let news = admin
        .archive
        .export_bundle(Some(LOVE_MOTHER), None)
        .unwrap();
    let report = phone.archive.import_bundle(&news).unwrap();
    // Her file of the child, and the phone of the child's 班主任 (she no longer needs it).
    assert_eq!(report.purged, 2, "{report:?}");
    assert_eq!(report.dropped, 0, "{report:?}");

    // Both connections are still open: the WAL is still there, and holds nothing of her.
    let bytes = raw(&phone.path());
    for what in [child, ADDRESS] {
        assert!(
            !holds(&bytes, what),
            "{what} is still in the store or its WAL"
        );
    }
    assert!(phone.archive.children(None, false).unwrap().is_empty());
    assert!(app.child_file(child).is_err(), "the app still shows her");
    assert!(app.children(None, false).unwrap().is_empty());
    let ids = phone.archive.store().doc_ids().unwrap();
    assert_eq!(ids, vec![DocId::School]);
    let synced: i64 = phone
        .archive
        .store()
        .conn()
        .query_row("SELECT count(*) FROM sync_state", [], |r| r.get(0))
        .unwrap();
    assert_eq!(synced, 0);

    // The store keeps working: a new pairing brings her back.
    admin.archive.pair(LOVE_MOTHER, child, None).unwrap();
    let news = admin
        .archive
        .export_bundle(Some(LOVE_MOTHER), None)
        .unwrap();
    let report = phone.archive.import_bundle(&news).unwrap();
    assert_eq!(report.purged, 0);
    assert_eq!(phone.file(child).name, child);
}

#[test]
fn a_deactivated_member_keeps_only_the_school_document() {
    let mut admin = school();
    let mut phone = mother(&mut admin);
    assert!(phone.archive.store().doc_ids().unwrap().len() > 1);
    // Work of hers the school does not hold yet: a member's files would stay for it until the
    // hub takes it as a hand-in, which it never takes from a member no longer active.
    phone.record(
        "谈心",
        CHILDREN[0].1,
        "2026-11-20",
        &[("notes", "聊了学校的运动会")],
    );
    let me = admin.archive.find_member(LOVE_MOTHER).unwrap();
    admin
        .archive
        .store()
        .write(|b| {
            b.change(&DocId::School, false, "停用成员", |tx| {
                let members = map_at(tx, &ROOT, MEMBERS).unwrap();
                let m = map_at(tx, &members, me.id.as_str()).unwrap();
                tx.put(&m, "active", false)?;
                Ok(())
            })
        })
        .unwrap();
    // The office's next file for her (sealed to her device still: it is not revoked) carries
    // only the school document, and she keeps only that. A school-wide file is not even
    // sealed to her device.
    let everything = admin.archive.export_bundle(None, None).unwrap();
    let e = phone.archive.import_bundle(&everything).unwrap_err();
    assert!(e.to_string().contains("不是发给本机的"), "{e}");
    let hers = admin
        .archive
        .export_bundle(Some(LOVE_MOTHER), None)
        .unwrap();
    let report = phone.archive.import_bundle(&hers).unwrap();
    assert!(report.purged > 0, "{report:?}");
    assert_eq!(
        phone.archive.store().doc_ids().unwrap(),
        vec![DocId::School]
    );
    assert!(!holds(&raw(&phone.path()), CHILDREN[0].1));
}

#[test]
fn a_school_wide_bundle_joined_by_a_love_mother_holds_only_her_children() {
    let mut admin = school();
    // The whole school, in a file that enrolls her device (what `join --bundle 学校.swb`
    // used to be).
    use shouwang_core::bundle::seal::{self, Lock, Unlock};
    let new = admin
        .archive
        .export_new_device(LOVE_MOTHER, "手机")
        .unwrap();
    let her_key = seal::open(&new.bundle, Unlock::Passphrase(&new.passphrase))
        .unwrap()
        .new_device
        .unwrap();
    let school_wide = admin.archive.export_bundle(None, None).unwrap();
    let mut whole = admin.archive.open_bundle(&school_wide).unwrap();
    whole.device = Some(new.device);
    let office = admin.archive.device_secret().unwrap();
    let everything = seal::seal(
        &whole,
        &office,
        Some(&her_key),
        Lock::Passphrase(&new.passphrase),
    )
    .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("shouwang.db");
    let (mut phone, report) =
        Archive::join_file(&path, &everything, &new.passphrase, LOVE_MOTHER, None).unwrap();
    // Four care files, four private parts, the school secret, the office's access log and the
    // 班主任's contact document; she keeps the school, 王小雨's care file and the phone of
    // 王小雨's 班主任.
    assert_eq!(report.documents, 12, "{report:?}");
    assert_eq!(report.dropped, 9, "{report:?}");
    let ids = phone.store().doc_ids().unwrap();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(!ids.contains(&DocId::Keys), "{ids:?}");
    let bytes = raw(&path);
    for (no, name) in &CHILDREN[1..] {
        assert!(!holds(&bytes, name) && !holds(&bytes, no));
    }
    assert!(!holds(&bytes, CHILDREN[0].0), "her 学籍号 is private");
    // The office's own export refuses nobody; hers can only pass on what she has.
    assert!(phone.export_school(None).is_err());
    assert!(admin.archive.export_school(None).is_ok());
}

#[test]
fn an_encrypted_store_purges_and_reopens_with_its_key() {
    use shouwang_core::store::StoreKey;
    let mut admin = school();
    let child = CHILDREN[0].1;
    let key = StoreKey::generate();
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("shouwang.db");
    let new = admin
        .archive
        .export_new_device(LOVE_MOTHER, "手机")
        .unwrap();
    let (mut phone, _) =
        Archive::join_file(&path, &new.bundle, &new.passphrase, LOVE_MOTHER, Some(&key)).unwrap();
    assert_eq!(phone.children(None, false).unwrap().len(), 1);
    admin.archive.end_pairing(LOVE_MOTHER, child).unwrap();
    let news = admin
        .archive
        .export_bundle(Some(LOVE_MOTHER), None)
        .unwrap();
    // Her file of the child and the phone of its 班主任.
    assert_eq!(phone.import_bundle(&news).unwrap().purged, 2);
    // A second connection opened the same way, with the key, after the purge.
    let mut again = phone.reopen().open().unwrap();
    assert!(again.children(None, false).unwrap().is_empty());
    drop((phone, again));
    assert!(matches!(
        Archive::open(&path),
        Err(shouwang_core::Error::Locked)
    ));
    let mut reopened = Archive::open_with_key(&path, Some(&key)).unwrap();
    assert_eq!(reopened.store().doc_ids().unwrap(), vec![DocId::School]);
}
