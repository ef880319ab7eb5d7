//! Child ids are keyed with a school secret that only administrators and the hub hold, so a
//! member who knows a child's 学籍号 (usually "G" + 身份证号) cannot test it against a child id.
//! Real stores on disk, the real hub for enrollment, and a store made by the release before
//! the change (`tests/fixtures/old-school`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::Path;

use automerge::{ROOT, ReadDoc, ScalarValue, Value};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use shouwang_core::Archive;
use shouwang_core::doc::DocId;
use shouwang_core::roles::Role;
use shouwang_core::roster::{parse_table, read_file};
use shouwang_relay::server::{Server, ServerConfig};
use shouwang_tests::fixtures::*;
use shouwang_tests::phone::EnrolledPhone as Phone;

/// The id a child had before ids were keyed: SHA-256 of "child", school id and 学籍号.
fn unkeyed(school: &str, student_no: &str) -> String {
    let mut h = Sha256::new();
    for p in ["child", school, student_no.trim()] {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..8])
}

/// The keyed id, computed here independently of the code under test: HMAC-SHA256 with the
/// school secret over the school id and the 学籍号, truncated to 8 bytes.
fn keyed(secret: &[u8], school: &str, student_no: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    for p in ["child", school, student_no.trim()] {
        mac.update(p.as_bytes());
        mac.update(&[0u8]);
    }
    hex::encode(&mac.finalize().into_bytes()[..8])
}

/// The school secret as the store holds it (the admin-only document `school/keys`), read below
/// the API.
fn secret_in_store(a: &mut Archive) -> Option<Vec<u8>> {
    let id = DocId::parse("school/keys")?;
    let doc = a.store().doc(&id).unwrap()?;
    let (_, keys) = doc.get(ROOT, "keys").unwrap()?;
    match doc.get(&keys, "child_id").unwrap()? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Bytes(b) => Some(b.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Whether any 32 bytes of `raw` (a store file and its WAL) key `student_no` to `child`: what
/// a member who copies her phone's store could try.
fn derivable_from(raw: &[u8], school: &str, student_no: &str, child: &str) -> bool {
    raw.windows(32)
        .any(|w| keyed(w, school, student_no) == child)
}

fn doc_keys(a: &mut Archive) -> Vec<String> {
    a.store()
        .doc_ids()
        .unwrap()
        .iter()
        .map(DocId::key)
        .collect()
}

fn child_docs(a: &mut Archive) -> usize {
    doc_keys(a)
        .iter()
        .filter(|k| k.starts_with("child/") && !k.ends_with("/private"))
        .count()
}

/// 1. A school set up on the hub has a secret from the start, and its child ids are keyed with
///    it. A 爱心妈妈's phone, enrolled and synced at the real hub, holds her child's id and
///    file but not the secret: no document `school/keys`, no 32 bytes anywhere in her store
///    file or its WAL that key the child's 学籍号 to its id, and the unkeyed hash is not its
///    id. The archivist's phone, enrolled the same way, does hold the secret (the same
///    search over her store finds it), so the search is not blind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_1_a_volunteers_phone_holds_nothing_to_derive_a_child_id_from() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_hub(dir.path());
    let (school, child, secret) = {
        let mut hub = data.open_archive().unwrap();
        let secret = secret_in_store(&mut hub).expect("the hub holds the school secret");
        assert_eq!(secret.len(), 32);
        let child = hub.find_child("G1").unwrap().to_string();
        let school = hub.school_id().to_string();
        assert_eq!(child, keyed(&secret, &school, "G1"));
        assert_ne!(child, unkeyed(&school, "G1"));
        (school, child, secret)
    };
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();

    let mut mother = Phone::enroll(&server, LOVE_MOTHER, Role::LoveMother).await;
    mother.sync(&server).await;
    assert_eq!(mother.a().find_child("王小雨").unwrap().as_str(), child);
    assert!(!doc_keys(mother.a()).contains(&"school/keys".to_owned()));
    assert_eq!(secret_in_store(mother.a()), None);
    assert_eq!(mother.a().school_secret().unwrap(), None);
    let raw = raw_store(&mother.path());
    assert!(!derivable_from(&raw, &school, "G1", &child));
    assert!(!raw.windows(32).any(|w| w == secret.as_slice()));
    assert!(!holds_text(&raw, &hex::encode(&secret)));

    let mut archivist = Phone::enroll(&server, "晁月静", Role::Archivist).await;
    archivist.sync(&server).await;
    assert_eq!(secret_in_store(archivist.a()), Some(secret.clone()));
    assert_eq!(
        archivist.a().school_secret().unwrap().unwrap().as_bytes(),
        secret.as_slice()
    );
    assert!(derivable_from(
        &raw_store(&archivist.path()),
        &school,
        "G1",
        &child
    ));
}

/// 2. The office and the archivist's laptop, apart, import the same new roster: each derives
///    the same keyed ids, so once they exchange files there is one care file per child, and
///    the ids are not the unkeyed hash.
#[test]
fn story_2_two_admin_devices_importing_the_same_roster_apart_land_on_one_file_per_child() {
    let mut office = school();
    let mut laptop = join(&mut office, "晁月静");
    let secret = secret_in_store(&mut office.archive).expect("the office holds the secret");
    assert_eq!(secret_in_store(&mut laptop.archive), Some(secret.clone()));
    let roster: Vec<Vec<String>> = [
        ["学籍号", "姓名", "班级", "监护人"],
        ["G340321201505", "陈思远", CLASS, "陈建国"],
        ["G340321201506", "李雨桐", CLASS, "李秀兰"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    let rows = parse_table(&roster).unwrap();
    let school_id = office.archive.school_id().to_string();
    for d in [&mut office, &mut laptop] {
        let report = d.archive.import_roster(&rows).unwrap();
        assert_eq!(report.new_children, 2, "{}", d.name);
    }
    for no in ["G340321201505", "G340321201506"] {
        let a = office.archive.find_child(no).unwrap();
        let b = laptop.archive.find_child(no).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), keyed(&secret, &school_id, no));
        assert_ne!(a.as_str(), unkeyed(&school_id, no));
    }
    sync(&mut office, &mut laptop);
    sync(&mut office, &mut laptop);
    assert_eq!(child_docs(&mut office.archive), CHILDREN.len() + 2);
    assert_eq!(child_docs(&mut laptop.archive), CHILDREN.len() + 2);
    assert_eq!(heads(&mut office), heads(&mut laptop));
    assert_eq!(
        office.archive.children(None, false).unwrap().len(),
        CHILDREN.len() + 2
    );
}

/// A copy of the office archive made by the release before keyed ids.
fn old_office(dir: &Path) -> Archive {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/old-school");
    let path = dir.join("shouwang.db");
    std::fs::copy(fixture.join("office.db"), &path).unwrap();
    Archive::open(&path).unwrap()
}

fn old_roster() -> Vec<shouwang_core::roster::RosterRow> {
    read_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/old-school/roster.csv"))
        .unwrap()
}

/// 3. A school created before the change: its children keep their (unkeyed) ids, their
///    records and pairings. Re-importing the roster, plain or with `--update`, finds each
///    child by the 学籍号 its file holds and creates nothing. The first import creates the
///    school secret (this is an administrator's device), and a child new to the school gets
///    a keyed id. A second administrator's device set up afterwards receives the secret,
///    re-imports the old roster apart without duplicating anyone, and converges; a
///    volunteer's device does not receive the secret.
#[test]
fn story_3_an_old_school_keeps_its_children_and_a_reimport_does_not_duplicate_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = Device {
        name: "office",
        archive: old_office(dir.path()),
        dir,
    };
    let school_id = office.archive.school_id().to_string();
    let rows = old_roster();
    let before: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let no = r.student_no.clone().unwrap();
            let id = office.archive.find_child(&no).unwrap().to_string();
            assert_eq!(id, unkeyed(&school_id, &no), "the fixture is old-format");
            (no, id)
        })
        .collect();
    assert_eq!(secret_in_store(&mut office.archive), None);

    // A roster refused for a bad row changes nothing, not even the secret.
    let bad: Vec<Vec<String>> = [
        ["学籍号", "姓名", "班级"],
        ["G340321201509", "郑一鸣", "五年级(9)班"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    let mut with_bad = rows.clone();
    with_bad.extend(parse_table(&bad).unwrap());
    assert!(office.archive.import_roster(&with_bad).is_err());
    assert_eq!(secret_in_store(&mut office.archive), None);

    let report = office.archive.import_roster(&rows).unwrap();
    assert_eq!(report.new_children, 0);
    let report = office.archive.import_roster_with(&rows, true).unwrap();
    assert_eq!(report.new_children, 0);
    assert_eq!(child_docs(&mut office.archive), rows.len());
    for (no, id) in &before {
        assert_eq!(&office.archive.find_child(no).unwrap().to_string(), id);
    }
    assert_eq!(office.file("赵子涵").records.len(), 1);
    let secret = secret_in_store(&mut office.archive).expect("created by the first import");

    let new: Vec<Vec<String>> = [
        ["学籍号", "姓名", "班级"],
        ["G340321201507", "吴嘉怡", "三年级(1)班"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    let report = office
        .archive
        .import_roster(&parse_table(&new).unwrap())
        .unwrap();
    assert_eq!(report.new_children, 1);
    let id = office.archive.find_child("G340321201507").unwrap();
    assert_eq!(id.as_str(), keyed(&secret, &school_id, "G340321201507"));
    assert_ne!(id.as_str(), unkeyed(&school_id, "G340321201507"));

    let mut laptop = join(&mut office, "晁月静");
    assert_eq!(secret_in_store(&mut laptop.archive), Some(secret.clone()));
    let report = laptop.archive.import_roster(&rows).unwrap();
    assert_eq!(report.new_children, 0);
    sync(&mut office, &mut laptop);
    assert_eq!(child_docs(&mut office.archive), rows.len() + 1);
    assert_eq!(child_docs(&mut laptop.archive), rows.len() + 1);
    assert_eq!(heads(&mut office), heads(&mut laptop));

    let mut mother = join(&mut office, LOVE_MOTHER);
    assert_eq!(secret_in_store(&mut mother.archive), None);
    assert_eq!(mother.archive.school_secret().unwrap(), None);
    assert!(!doc_keys(&mut mother.archive).contains(&"school/keys".to_owned()));
    let raw = raw_store(&mother.path());
    assert!(!raw.windows(32).any(|w| w == secret.as_slice()));

    // An administrator who leaves loses the secret with everything else at the next import.
    office.archive.deactivate_member("晁月静").unwrap();
    let file = office.export_for("after-deactivation", "晁月静");
    laptop.import_file(&file);
    assert_eq!(laptop.archive.school_secret().unwrap(), None);
    assert!(!doc_keys(&mut laptop.archive).contains(&"school/keys".to_owned()));
}

/// 3b. In a school made before ids were keyed, the office erases a child, and next term
///     imports the county's roster again, which still lists her. Her file is gone, and with
///     it what linked her 学籍号 to her old id; the import still recognises her (the old id is
///     a hash of the 学籍号) and refuses the row, rather than make her file again.
#[test]
fn story_3b_an_old_schools_erased_child_is_not_made_again_by_a_roster_import() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = old_office(dir.path());
    let rows = old_roster();
    let (no, name) = {
        let r = &rows[0];
        (r.student_no.clone().unwrap(), r.name.clone())
    };
    office.erase_child(&no, "监护人要求删除").unwrap();
    let children = office.children(None, false).unwrap().len();
    let err = office.import_roster(&rows).unwrap_err().to_string();
    assert!(err.contains("删除"), "{err}");
    assert_eq!(office.children(None, false).unwrap().len(), children);
    assert!(
        office.find_child(&no).is_err(),
        "{name}'s file was made again"
    );
}

/// 4. The secret is written only by administrators, and only in its form: a 班主任's device
///    that writes one (a modified app) and an administrator's device that writes a malformed
///    one are both refused where their files arrive; the office's secret stays as it was.
#[test]
fn story_4_only_administrators_write_the_secret_and_only_as_32_bytes() {
    let mut office = school();
    let mut teacher = join(&mut office, HEAD_TEACHER);
    let mut laptop = join(&mut office, "晁月静");
    let secret = secret_in_store(&mut office.archive).unwrap();

    let forged = shouwang_tests::attack::forge_secret(&mut teacher.archive);
    let report = office.import_file(&teacher.export_file("forged"));
    assert!(report.refused >= 1, "{report:?}");
    assert!(!shouwang_tests::attack::holds(
        &mut office.archive,
        &DocId::Keys,
        &forged
    ));

    let short = shouwang_tests::attack::forge(&mut laptop.archive, &DocId::Keys, None, |tx| {
        use automerge::transaction::Transactable;
        let keys = tx.get(ROOT, "keys").unwrap().unwrap().1;
        tx.put(&keys, "child_id", ScalarValue::Bytes(vec![1; 5]))?;
        Ok(())
    });
    let report = office.import_file(&laptop.export_file("short"));
    assert!(report.refused >= 1, "{report:?}");
    assert!(!shouwang_tests::attack::holds(
        &mut office.archive,
        &DocId::Keys,
        &short
    ));
    assert_eq!(secret_in_store(&mut office.archive), Some(secret));
}

/// 5. Two administrators' devices of an old school, apart, each create a secret with their
///    first import after the upgrade (the limit ARCHITECTURE.md names: a child new to both
///    gets a file on each). Once they meet, both read the same secret, and importing the
///    roster again on either device creates nothing more: every child is found by 学籍号.
#[test]
fn story_5_two_secrets_made_apart_settle_on_one_and_nothing_multiplies() {
    let dir = tempfile::tempdir().unwrap();
    let mut office = Device {
        name: "office",
        archive: old_office(dir.path()),
        dir,
    };
    let mut laptop = join(&mut office, "晁月静");
    assert_eq!(secret_in_store(&mut laptop.archive), None);
    let mut rows = old_roster();
    let new: Vec<Vec<String>> = [
        ["学籍号", "姓名", "班级"],
        ["G340321201508", "马晓东", "三年级(1)班"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    rows.extend(parse_table(&new).unwrap());
    for d in [&mut office, &mut laptop] {
        assert_eq!(d.archive.import_roster(&rows).unwrap().new_children, 1);
    }
    let (a, b) = (
        secret_in_store(&mut office.archive).unwrap(),
        secret_in_store(&mut laptop.archive).unwrap(),
    );
    assert_ne!(a, b);
    sync(&mut office, &mut laptop);
    sync(&mut office, &mut laptop);
    let settled = secret_in_store(&mut office.archive).unwrap();
    assert!(settled == a || settled == b);
    assert_eq!(secret_in_store(&mut laptop.archive), Some(settled));
    let files = child_docs(&mut office.archive);
    assert_eq!(files, old_roster().len() + 2, "the documented duplicate");
    for d in [&mut office, &mut laptop] {
        assert_eq!(d.archive.import_roster(&rows).unwrap().new_children, 0);
    }
    sync(&mut office, &mut laptop);
    assert_eq!(child_docs(&mut office.archive), files);
    assert_eq!(child_docs(&mut laptop.archive), files);
    assert_eq!(heads(&mut office), heads(&mut laptop));
}
