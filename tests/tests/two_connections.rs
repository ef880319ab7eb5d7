//! Two connections to one store (the phone app's and its sync's; the hub's two archives):
//! each sees what the other wrote, whether its cached copy of a document is brought up to
//! date change by change, or (after the other compacted the document) loaded again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shouwang_core::Archive;
use shouwang_core::doc::DocId;
use shouwang_tests::fixtures::{CHILDREN, school};

fn notes(archive: &mut Archive, child: &str) -> Vec<String> {
    let mut notes: Vec<String> = archive
        .child_file(child)
        .unwrap()
        .records
        .iter()
        .flat_map(|r| r.fields.iter().filter(|f| f.key == "notes"))
        .map(|f| f.value.clone())
        .collect();
    notes.sort();
    notes
}

#[test]
fn each_connection_sees_what_the_other_wrote() {
    let mut office = school();
    let (_, child) = CHILDREN[0];
    let mut other = Archive::open(&office.path()).unwrap();
    let id = DocId::Child(office.archive.child_file(child).unwrap().id);
    // Both have the child's document cached.
    assert!(notes(&mut other, child).is_empty());

    let visit = |d: &mut shouwang_tests::fixtures::Device, note: &str| {
        d.record("家访", child, "2026-11-20", &[("notes", note)]);
    };
    visit(&mut office, "第一次家访：奶奶说孩子作业按时完成。");
    assert_eq!(
        notes(&mut other, child),
        ["第一次家访：奶奶说孩子作业按时完成。"]
    );

    // The other connection writes on its cached copy, brought up to date first.
    other
        .add_record(&shouwang_core::RecordInput {
            kind: "谈心".into(),
            child: Some(child.into()),
            class: None,
            date: "2026-11-21".into(),
            fields: shouwang_tests::fixtures::kv(&[("notes", "谈心：想念在外打工的妈妈。")]),
        })
        .unwrap();
    assert_eq!(notes(&mut office.archive, child).len(), 2);

    // Compacted by one connection (its changes folded into a snapshot), then written again:
    // the other's copy cannot catch up change by change and is loaded again.
    visit(&mut office, "第二次家访：爷爷腿脚不便。");
    assert!(office.archive.store().compact(1).unwrap() > 0);
    visit(&mut office, "第三次家访：孩子周末帮奶奶喂鸡。");
    let seen = notes(&mut other, child);
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen, notes(&mut office.archive, child));
    let heads = |a: &mut Archive| a.store().doc(&id).unwrap().unwrap().get_heads();
    assert_eq!(heads(&mut other), heads(&mut office.archive));
}

/// The office erases a child through one connection; the other (the hub's other archive, the
/// console's) held her file decoded in memory and never opens it again. It forgets those
/// copies as soon as it next reads the school (every sync and every list of children does):
/// nothing of an erased child stays in any connection's memory.
#[test]
fn an_erasure_through_one_connection_leaves_nothing_of_the_child_in_the_others_memory() {
    let mut office = school();
    let (_, child) = CHILDREN[0];
    let mut other = Archive::open(&office.path()).unwrap();
    let id = other.child_file(child).unwrap().id;
    let hers = |a: &mut Archive| -> Vec<DocId> {
        a.store()
            .cached()
            .into_iter()
            .filter(|d| d.child() == Some(&id))
            .collect()
    };
    assert!(!hers(&mut other).is_empty());
    office
        .archive
        .erase_child(child, "监护人书面申请删除（申请表 2026-031 号）")
        .unwrap();
    // The list of children (which reads the school, as every sync does).
    let listed = other.children(None, false).unwrap();
    assert!(listed.iter().all(|c| c.name != child), "{listed:?}");
    assert_eq!(hers(&mut other), Vec::<DocId>::new());
}

/// Set when the sync connection's purge found the store locked (it has decided what to drop);
/// it waits until [`GO`].
static DECIDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static GO: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn wait_for_go(_: i32) -> bool {
    use std::sync::atomic::Ordering::SeqCst;
    DECIDED.store(true, SeqCst);
    while !GO.load(SeqCst) {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    true
}

/// The hub said a child's file is no longer the 班主任's (the child moved to another class:
/// the move is in the file, which the hub no longer sends her, so her app still shows the
/// child). Her phone's sync connection decides to drop the file, which holds nothing unsent;
/// before it drops it, she saves a 家访 on the app's connection, which returns it as saved.
/// The purge leaves a file written since it decided: her 家访 is not lost (the next sync
/// hands it in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_saved_while_the_sync_drops_its_file_is_not_lost() {
    use shouwang_core::roles::Role;
    use shouwang_tests::fixtures::HEAD_TEACHER;
    use shouwang_tests::phone::{EnrolledPhone, small_hub_served};
    use std::sync::atomic::Ordering::SeqCst;

    let (_dir, data, server) = small_hub_served().await;
    let mut teacher = EnrolledPhone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    teacher.sync(&server).await;
    shouwang_tests::phone::move_to_a_new_class(&data, "赵子涵");
    teacher.sync(&server).await;
    server.shutdown().await;

    let path = teacher.path();
    let mut app = Archive::open(&path).unwrap();
    assert!(
        app.find_child("赵子涵").is_ok(),
        "her app no longer shows the child"
    );
    // Another writer holds the store while the sync connection decides; it then waits in its
    // busy handler, and the app's write goes first.
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let sync = teacher.a();
    sync.store()
        .conn_mut()
        .busy_handler(Some(wait_for_go))
        .unwrap();
    std::thread::scope(|s| {
        let purge = s.spawn(|| sync.purge_out_of_scope().unwrap());
        while !DECIDED.load(SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        blocker.execute_batch("ROLLBACK").unwrap();
        let saved = app
            .add_record(&shouwang_core::RecordInput {
                kind: "家访".into(),
                child: Some("赵子涵".into()),
                class: None,
                date: "2026-11-20".into(),
                fields: shouwang_tests::fixtures::kv(&[("notes", "爷爷说孩子想转回来")]),
            })
            .unwrap()
            .0;
        GO.store(true, SeqCst);
        purge.join().unwrap();
        let kept: i64 = Archive::open(&path)
            .unwrap()
            .store()
            .conn()
            .query_row(
                "SELECT count(*) FROM p_records WHERE record_id = ?1",
                [&saved],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(kept, 1, "a 家访 the app said was saved was dropped");
    });
}
