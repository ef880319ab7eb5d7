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

/// The sample hub served on 127.0.0.1, and the 班主任's phone enrolled with it.
async fn head_teacher_on_hub() -> (
    tempfile::TempDir,
    shouwang_relay::server::DataDir,
    shouwang_relay::server::Server,
    shouwang_tests::phone::Phone,
) {
    let (dir, data, server) = small_hub_served().await;
    let teacher = enroll(
        &server,
        HEAD_TEACHER,
        shouwang_core::roles::Role::HeadTeacher,
    )
    .await;
    (dir, data, server, teacher)
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
    // The app says which file came back, so she can check what she wrote in it: once.
    assert_eq!(
        a.take_refetched_damaged().unwrap(),
        [format!("{CHILD}的档案")]
    );
    assert!(a.take_refetched_damaged().unwrap().is_empty());
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

/// The school document itself damaged (the one every check reads: who she is, what she may
/// see): the next sync with the hub still runs and fetches it again whole, and her files read
/// again, with nothing of hers lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_school_document_is_fetched_again_at_the_next_sync() {
    let (_dir, data, server, teacher) = head_teacher_on_hub().await;
    teacher.sync_hub().await;
    let visit = "孩子说想妈妈了，奶奶的腿还疼";
    teacher.record("家访", CHILD, "2026-11-21", visit);
    damage(&teacher.path, &DocId::School);
    // The sync that finds no signal dropped it first: the app says what happened, not that
    // the phone never joined.
    let mut a = teacher.archive();
    a.drop_damaged().unwrap();
    let e = a.children(None, false).unwrap_err().to_string();
    assert!(e.contains("学校信息已损坏") && e.contains("同步"), "{e}");
    drop(a);
    teacher.sync_hub().await;
    let mut a = teacher.archive();
    let file = a.child_file(CHILD).unwrap();
    assert!(
        format!("{:?}", file.records).contains(visit),
        "{:?}",
        file.records
    );
    let mut hub = data.open_archive().unwrap();
    let on_hub = format!("{:?}", hub.child_file(CHILD).unwrap().records);
    assert!(on_hub.contains(visit), "her 家访 never reached the school");
    server.shutdown().await;
}

/// A damaged class log is dropped before a sync that then finds no signal: until the school
/// sends it back, a new 班级关爱活动记录 is refused with what to do (started afresh, her
/// changes there would be numbered from 1 again, and the hub, holding the first ones, would
/// refuse every later sync for good). The next sync brings the log back, and she records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_class_log_is_not_started_afresh_before_the_school_sends_it_back() {
    use shouwang_core::RecordInput;
    use shouwang_tests::fixtures::{CLASS, kv};
    let (_dir, data, server, teacher) = head_teacher_on_hub().await;
    let activity = |title: &str| RecordInput {
        kind: "class_activity".into(),
        child: None,
        class: Some(CLASS.into()),
        date: "2026-11-12".into(),
        fields: kv(&[("title", title), ("notes", "做灯笼")]),
    };
    teacher
        .archive()
        .add_record(&activity("中秋手工课"))
        .unwrap();
    teacher.sync_hub().await;
    let class = teacher.archive().find_class(CLASS).unwrap().id;
    damage(&teacher.path, &DocId::Class(class));
    // The sync that finds no signal dropped it first.
    let dropped = teacher.archive().drop_damaged().unwrap();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let e = teacher
        .archive()
        .add_record(&activity("重阳节敬老"))
        .unwrap_err();
    assert!(e.to_string().contains("请先与学校同步"), "{e}");
    teacher.sync_hub().await;
    teacher
        .archive()
        .add_record(&activity("重阳节敬老"))
        .unwrap();
    teacher.sync_hub().await;
    let mut hub = data.open_archive().unwrap();
    let on_hub: i64 = hub
        .store()
        .conn()
        .query_row(
            "SELECT count(*) FROM p_records WHERE kind = 'class_activity' AND voided = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(on_hub, 2);
    server.shutdown().await;
}

/// A document no peer ever received (her phone's access log, written offline before its first
/// sync since she opened a private file) damaged and dropped: nothing would ever bring it back,
/// so it is started afresh (numbering nothing twice), and she can still open a private file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_document_no_peer_holds_is_started_afresh() {
    let (_dir, _data, server, teacher) = head_teacher_on_hub().await;
    server.shutdown().await;
    let mut a = teacher.archive();
    a.child_file_for(CHILD, Some("家访前查看")).unwrap();
    let log = DocId::Audit(a.device().clone());
    assert!(
        a.store().doc(&log).unwrap().is_some(),
        "no access log written"
    );
    drop(a);
    damage(&teacher.path, &log);
    let mut a = teacher.archive();
    assert_eq!(a.drop_damaged().unwrap().len(), 1);
    let file = a.child_file_for(CHILD, Some("家访前查看"));
    assert!(file.is_ok(), "{:?}", file.err());
    assert!(!a.audit_log().unwrap().entries.is_empty());
}
