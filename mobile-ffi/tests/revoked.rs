//! A phone the school revokes while it syncs in the background or live: the real hub
//! in-process on 127.0.0.1, the office revoking through the app API on the hub's own archive.
//! The phone is told it was revoked (no retry), stops, every later call says so, and nothing
//! of its store remains on disk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{Heard, Hub, visit, wait_for};

const NOTE: &str = "奶奶说孩子最近作业按时完成。";
use shouwang_core::roles::Role;
use shouwang_ffi::types::SyncUpdate;
use shouwang_ffi::{ShouwangClient, ShouwangError, TaskHandle};

fn store_files(db: &Path) -> Vec<String> {
    ["", "-wal", "-shm", ".joining"]
        .iter()
        .map(|s| format!("{}{s}", db.display()))
        .filter(|p| Path::new(p).exists())
        .collect()
}

fn is_revoked_update(u: &SyncUpdate) -> bool {
    matches!(u, SyncUpdate::Revoked { message } if message.contains("停用"))
}

/// What the app sees after the revocation: one revoked update last, nothing after it, the
/// task ended, every call `Revoked`, no byte of the store left.
fn assert_revoked(
    hub: &Hub,
    client: &ShouwangClient,
    heard: &Heard,
    handle: &TaskHandle,
    db: &Path,
) {
    wait_for("the revoked update", || {
        heard.all().iter().any(is_revoked_update)
    });
    wait_for("the task ends", || handle.is_finished());
    let seen = heard.all();
    let at = seen
        .iter()
        .position(is_revoked_update)
        .unwrap_or_else(|| panic!("no revoked update: {seen:?}"));
    assert_eq!(at, seen.len() - 1, "updates after the revocation: {seen:?}");
    assert!(
        !seen.iter().any(|u| matches!(
            u,
            SyncUpdate::Failed {
                retry_in_secs: Some(_),
                ..
            }
        )),
        "{seen:?}"
    );
    for result in [
        client.children(false).map(|_| ()),
        client.me().map(|_| ()),
        client.add_record(visit("x", NOTE)).map(|_| ()),
        client.sync_state().map(|_| ()),
    ] {
        match result {
            Err(ShouwangError::Revoked { msg }) => assert!(msg.contains("停用"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
    match client.start_live_sync(Box::new(Heard::default())) {
        Err(ShouwangError::Revoked { .. }) => {}
        other => panic!("{other:?}"),
    }
    match client.start_background_sync(60, Box::new(Heard::default())) {
        Err(ShouwangError::Revoked { .. }) => {}
        other => panic!("{other:?}"),
    }
    // sync_now tells its listener the same, and throws it.
    let told = Heard::default();
    match hub.block_on(client.sync_now(Some(Box::new(told.clone())))) {
        Err(ShouwangError::Revoked { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(told.all().iter().all(is_revoked_update), "{:?}", told.all());
    assert_eq!(store_files(db), Vec::<String>::new());
}

#[test]
fn a_phone_revoked_during_background_sync_is_told_once_and_wiped() {
    let hub = Hub::start();
    let office = hub.office();
    let teacher = hub.join("teacher.db", "王瑞侠", Role::HeadTeacher, "王老师的手机");
    let db = hub.dir.path().join("teacher.db");
    let child = teacher.children(true).unwrap()[0].id.clone();
    teacher.add_record(visit(&child, NOTE)).unwrap();
    office
        .report_lost_device(teacher.device_code().unwrap())
        .unwrap();

    let heard = Heard::default();
    let handle = teacher
        .start_background_sync(60, Box::new(heard.clone()))
        .unwrap();
    assert_revoked(&hub, &teacher, &heard, &handle, &db);
    drop(office);
}

#[test]
fn a_phone_revoked_during_live_sync_is_told_once_and_wiped() {
    let hub = Hub::start();
    let office = hub.office();
    let teacher = hub.join("teacher.db", "王瑞侠", Role::HeadTeacher, "王老师的手机");
    let db = hub.dir.path().join("teacher.db");
    let heard = Heard::default();
    let handle = teacher.start_live_sync(Box::new(heard.clone())).unwrap();
    // Connected and caught up: the revocation reaches a live connection.
    wait_for("the first exchange", || {
        teacher.sync_state().unwrap().last_success_ms.is_some()
    });
    office
        .report_lost_device(teacher.device_code().unwrap())
        .unwrap();
    assert_revoked(&hub, &teacher, &heard, &handle, &db);
    drop(office);
}
