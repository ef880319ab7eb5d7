//! Work a member wrote before hearing that a file is no longer hers is never dropped before
//! the school holds it (the trust issue's "nothing a person typed is ever silently lost"): a
//! 班主任 whose class went to another head records a 家访 offline, then hears of the change
//! from a file the office sends her, not from the hub. Her phone keeps the file until the hub
//! has taken her work as a hand-in, and only then drops it.
//!
//! The hub (`shouwang-relay`'s server in-process on 127.0.0.1), phones enrolled with invite
//! tickets, real iroh endpoints and SQLite stores.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::roles::Role;
use shouwang_relay::server::{Server, ServerConfig};
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
        let mut a = office.archive();
        a.add_member("陈桂芝", &[Role::HeadTeacher], None, None)
            .unwrap();
        a.set_class_head(CLASS, "陈桂芝").unwrap();
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
