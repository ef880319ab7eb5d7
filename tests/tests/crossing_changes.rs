//! Changes that cross: a phone and the hub both changed the same child's file since they last
//! met. Each side's changes cross the link once. The real hub (`shouwang-relay`'s server,
//! in-process on 127.0.0.1), real iroh endpoints, real SQLite stores.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::doc::DocId;
use shouwang_core::kinds::RecordKind;
use shouwang_core::roles::Role;
use shouwang_core::sync::wire::Message;
use shouwang_tests::fixtures::{HEAD_TEACHER, LOVE_MOTHER};
use shouwang_tests::phone::{EnrolledPhone as Phone, small_hub_served};

const CHILD: &str = "王小雨";

/// 1. The 班主任 writes five 家访 offline while the 爱心妈妈's 谈心 for the same child reaches
///    the hub. At her next sync the hub's 谈心 and her 家访 cross: her phone sends its five
///    records once (before, the hub then started automerge's own exchange for the file and
///    her phone sent all five again), and both sides end with the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_1_changes_that_cross_are_sent_once() {
    let (_dir, data, server) = small_hub_served().await;
    let mut teacher = Phone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    let mut mother = Phone::enroll(&server, LOVE_MOTHER, Role::LoveMother).await;
    teacher.sync(&server).await;
    mother.sync(&server).await;

    let child = DocId::Child(teacher.a().find_child(CHILD).unwrap());
    let before = teacher.a().store().heads(&child).unwrap();
    let before = shouwang_core::store::parse_heads(&before).unwrap();
    for day in 16..21 {
        let notes =
            format!("11月{day}日家访：奶奶身体还好，孩子作业按时完成，周末跟着奶奶去赶集。");
        teacher.record("家访", CHILD, &format!("2026-11-{day}"), &notes);
    }
    // Her records as one compressed frame would carry them once.
    let doc = teacher.a().store().doc(&child).unwrap().unwrap();
    let once = Message::Changes(vec![(child.clone(), doc.save_after(&before))])
        .encode()
        .len() as u64;
    mother.record(
        "谈心",
        CHILD,
        "2026-11-19",
        "聊了学校运动会的事，孩子很开心。",
    );
    mother.sync(&server).await;

    let progress = teacher.sync(&server).await;
    assert!(
        progress.bytes_sent < once + 400,
        "her five records ({once} bytes in one frame) cross once, with a Hello and Idles \
         besides: {progress:?}"
    );
    assert!(
        progress.frames_sent <= 4,
        "Hello, Changes and Idles only: {progress:?}"
    );

    // Both sides hold both sides' records.
    let mut hub = data.open_archive().unwrap();
    let mine = teacher.a().store().heads(&child).unwrap();
    assert_eq!(hub.store().heads(&child).unwrap(), mine);
    let kinds: Vec<Option<RecordKind>> = teacher
        .a()
        .child_file(CHILD)
        .unwrap()
        .records
        .iter()
        .map(|r| r.meta.kind())
        .collect();
    let count = |kind| kinds.iter().filter(|k| **k == Some(kind)).count();
    assert_eq!(count(RecordKind::Talk), 1, "{kinds:?}");
    assert_eq!(count(RecordKind::HomeVisit), 5, "{kinds:?}");
}
