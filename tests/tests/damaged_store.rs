//! A damaged store (issue 12, point 6), over the real hub: a byte of one child's file is
//! flipped on the 班主任's phone, inside the stored bytes of that document, as a bad flash page
//! would. Opening that file names it in one Chinese sentence; every other file and the lists
//! still read; the next sync with the hub drops the damaged copy and fetches it again whole,
//! with the 家访 written on another device, and SQLite's integrity check is ok.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::Error;
use shouwang_core::doc::DocId;
use shouwang_tests::fixtures::HEAD_TEACHER;
use shouwang_tests::phone::{enroll, small_hub_served};

const CHILD: &str = "王小雨";
const OTHER: &str = "赵子涵";
const NOTE: &str = "奶奶说孩子最近爱笑了";

/// Flips one byte in the middle of the stored bytes of `doc` in the store file at `path`
/// (the store closed and checkpointed). Panics if those bytes are not found in the file.
fn damage(path: &std::path::Path, doc: &DocId) {
    let blobs: Vec<Vec<u8>> = {
        let mut a = shouwang_core::Archive::open(path).unwrap();
        let conn = a.store().conn();
        let mut stmt = conn
            .prepare(
                "SELECT snapshot FROM docs WHERE doc_id = ?1 AND snapshot IS NOT NULL
                 UNION ALL SELECT bytes FROM changes WHERE doc_id = ?1",
            )
            .unwrap();
        stmt.query_map([doc.key()], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let blob = blobs
        .into_iter()
        .max_by_key(Vec::len)
        .expect("no stored bytes");
    assert!(blob.len() >= 64, "{} bytes", blob.len());
    let mut file = std::fs::read(path).unwrap();
    let probe = &blob[blob.len() / 2 - 16..blob.len() / 2 + 16];
    let at = file
        .windows(probe.len())
        .position(|w| w == probe)
        .expect("the document's bytes are not in the file");
    file[at + 16] ^= 0x5a;
    std::fs::write(path, file).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_file_is_named_the_rest_reads_and_the_hub_sends_it_again() {
    let (_dir, data, server) = small_hub_served().await;
    let office = enroll(&server, "张长友", shouwang_core::roles::Role::Leadership).await;
    let teacher = enroll(
        &server,
        HEAD_TEACHER,
        shouwang_core::roles::Role::HeadTeacher,
    )
    .await;
    office.record("家访", CHILD, "2026-11-20", NOTE);
    office.sync_hub().await;
    teacher.sync_hub().await;
    let child = teacher.archive().find_child(CHILD).unwrap();
    assert!(teacher.archive().child_file(CHILD).is_ok());

    damage(&teacher.path, &DocId::Child(child.clone()));
    let mut a = teacher.archive();
    match a.child_file(CHILD) {
        Err(e @ Error::Damaged { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("已损坏") && text.contains(child.as_str()),
                "{text}"
            );
            println!("{text}");
        }
        other => panic!("the damage was not reported: {other:?}"),
    }
    assert!(
        a.child_file(OTHER).is_ok(),
        "another child's file no longer reads"
    );
    assert!(
        a.children(None, false).unwrap().len() >= 2,
        "the list no longer reads"
    );
    drop(a);

    teacher.sync_hub().await;
    let mut a = teacher.archive();
    let file = a.child_file(CHILD).unwrap();
    assert!(
        format!("{:?}", file.records).contains(NOTE),
        "{:?}",
        file.records
    );
    let check: String = a
        .store()
        .conn()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(data);
    server.shutdown().await;
}
