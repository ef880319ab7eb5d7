//! What a member changes in the office console is written as that member: under their own
//! console device (`core/src/archive/console.rs`), so a phone that syncs with the hub
//! afterwards shows the change as theirs, judges it by their rights, and takes it.
//!
//! The school is `common::office`'s (the real `shouwang-relay serve` over 郭庄小学, with an
//! open conflict on 王小雨's guardian phone); the phone is 武秀梅's (a 结对教师 paired with
//! 王小雨 and 赵子涵), enrolled with an invite and synced with the hub over iroh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::office::{Hub, logged_in};
use shouwang_core::archive::CONSOLE_DEVICE_LABEL;
use shouwang_core::doc::DocId;
use shouwang_core::roles::Role;
use shouwang_core::{Archive, trust};
use shouwang_relay::server::issue_invite;
use shouwang_tests::fixtures::{CHILDREN, HEAD_TEACHER, PAIRING_TEACHER};
use shouwang_tests::http::{Client, hidden};
use shouwang_tests::phone::{Phone, join_with, now};

/// A phone of `member`, enrolled with an invite from the hub.
async fn phone(hub: &Hub, member: &'static str, role: Role) -> Phone {
    let ticket = issue_invite(
        &hub.data,
        &hub.ports.contact(),
        member,
        role,
        now(),
        now() + 86_400,
    )
    .unwrap()
    .ticket;
    join_with(&ticket, member).await
}

/// Resolves the open conflict on 王小雨's guardian phone from the console with `value`.
fn resolve_guardian_phone(web: &mut Client, value: &str) {
    let page = web.get("/conflicts").text();
    let token = hidden(&page, "csrf");
    let child = hidden(&page, "child");
    let r = web.post(
        "/conflicts/resolve",
        &[
            ("csrf", &token),
            ("child", &child),
            ("path", "guardian.phone"),
            ("value", value),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
}

/// Who `a`'s copy of `child`'s file says resolved its conflict, and the guardian's phone.
fn resolution_in(a: &mut Archive, child: &str) -> (String, String) {
    let file = a.child_file(child).unwrap();
    assert!(file.conflicts.is_empty(), "{:?}", file.conflicts);
    let resolved: Vec<_> = file
        .history
        .iter()
        .filter(|h| h.message.starts_with("解决冲突"))
        .collect();
    assert_eq!(resolved.len(), 1, "{:?}", file.history);
    let guardian = file.sections.iter().find(|s| s.key == "guardian").unwrap();
    let phone = guardian
        .fields
        .iter()
        .find(|f| f.key == "phone")
        .unwrap()
        .value
        .clone();
    (resolved[0].member.clone(), phone)
}

/// The members `a`'s school document says made its changes with `message`.
fn school_authors(a: &mut Archive, message: &str) -> Vec<String> {
    let school = a.school().unwrap();
    let doc = a.store().doc(&DocId::School).unwrap().unwrap().clone();
    doc.get_changes(&[])
        .iter()
        .filter(|c| c.message().is_some_and(|m| m == message))
        .map(|c| {
            trust::author_of(&school, c.actor_id())
                .map_or_else(|| "未知设备".to_owned(), |(m, _)| m.name.clone())
        })
        .collect()
}

/// `member`'s console devices in the hub's school document, as (label, revoked).
fn console_devices(hub: &Hub, member: &str) -> Vec<(String, bool)> {
    let mut a = hub.archive();
    let id = a.find_member(member).unwrap().id;
    a.school()
        .unwrap()
        .devices
        .iter()
        .filter(|d| d.console && d.member == id)
        .map(|d| (d.label.clone(), d.revoked))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archivists_console_writes_reach_a_phone_as_hers() {
    let hub = Hub::start();
    let phone = phone(&hub, PAIRING_TEACHER, Role::PairingTeacher).await;

    let (mut web, token) = logged_in(&hub, "晁月静");
    resolve_guardian_phone(&mut web, "13700003333");
    // A second write: a pairing for the phone's member.
    let r = web.post(
        "/members/pair",
        &[
            ("csrf", &token),
            ("carer", PAIRING_TEACHER),
            ("child", CHILDREN[2].1),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());

    phone.sync_hub().await;
    let mut a = phone.archive();
    assert_eq!(
        resolution_in(&mut a, CHILDREN[0].1),
        ("晁月静".to_owned(), "13700003333".to_owned())
    );
    assert_eq!(school_authors(&mut a, "结对帮扶").last().unwrap(), "晁月静");
    // The new pairing stands on the phone: it now holds that child's file.
    assert_eq!(a.child_file(CHILDREN[2].1).unwrap().name, CHILDREN[2].1);
    let quarantined = a.quarantined().unwrap();
    assert!(quarantined.is_empty(), "{quarantined:?}");
    // One console device for her, used for both.
    assert_eq!(
        console_devices(&hub, "晁月静"),
        [(CONSOLE_DEVICE_LABEL.to_owned(), false)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_teachers_resolution_in_her_class_reaches_a_phone_as_hers() {
    let hub = Hub::start();
    let phone = phone(&hub, PAIRING_TEACHER, Role::PairingTeacher).await;

    let (mut web, _) = logged_in(&hub, HEAD_TEACHER);
    resolve_guardian_phone(&mut web, "13700004444");

    phone.sync_hub().await;
    let mut a = phone.archive();
    assert_eq!(
        resolution_in(&mut a, CHILDREN[0].1),
        (HEAD_TEACHER.to_owned(), "13700004444".to_owned())
    );
    let quarantined = a.quarantined().unwrap();
    assert!(quarantined.is_empty(), "{quarantined:?}");
    assert_eq!(
        console_devices(&hub, HEAD_TEACHER),
        [(CONSOLE_DEVICE_LABEL.to_owned(), false)]
    );
    assert!(console_devices(&hub, "晁月静").is_empty());
}

#[test]
fn deactivating_a_member_revokes_her_console_device_and_her_session_writes_no_more() {
    let hub = Hub::start();
    let (mut teacher, teacher_token) = logged_in(&hub, HEAD_TEACHER);
    resolve_guardian_phone(&mut teacher, "13700004444");
    let (mut web, token) = logged_in(&hub, "晁月静");

    // Her phone (set up from a file) and her console device.
    let r = web.post(
        "/members/deactivate",
        &[("csrf", &token), ("member", HEAD_TEACHER)],
    );
    assert!(r.text().contains("其 2 台设备将被停用"), "{}", r.text());
    let r = web.post(
        "/members/deactivate",
        &[("csrf", &token), ("member", HEAD_TEACHER), ("confirm", "1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("并停用其 2 台设备"), "{}", r.text());
    assert_eq!(
        console_devices(&hub, HEAD_TEACHER),
        [(CONSOLE_DEVICE_LABEL.to_owned(), true)]
    );

    // Her session from before writes nothing: no new console device, no change.
    let child = hub.archive().find_child(CHILDREN[0].1).unwrap();
    let before = hub.archive().child_file(child.as_str()).unwrap();
    let r = teacher.post(
        "/members/pair",
        &[
            ("csrf", &teacher_token),
            ("carer", PAIRING_TEACHER),
            ("child", CHILDREN[2].1),
        ],
    );
    assert_eq!(r.header("location"), Some("/login"), "{}", r.status);
    let r = teacher.post(
        "/conflicts/resolve",
        &[
            ("csrf", &teacher_token),
            ("child", child.as_str()),
            ("path", "guardian.phone"),
            ("value", "13700005555"),
        ],
    );
    assert_eq!(r.header("location"), Some("/login"), "{}", r.status);
    assert_eq!(
        console_devices(&hub, HEAD_TEACHER),
        [(CONSOLE_DEVICE_LABEL.to_owned(), true)]
    );
    assert_eq!(hub.archive().child_file(child.as_str()).unwrap(), before);
}
