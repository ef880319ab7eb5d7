//! Live sync beside the client's other syncs, on the real hub in-process on 127.0.0.1: one
//! live sync per client, background sync leaves the syncing to it, and `sync_now` still
//! completes while it is connected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Heard, Hub, visit, wait_for};
use shouwang_core::roles::Role;
use shouwang_ffi::types::SyncUpdate;

#[test]
fn one_live_sync_per_client_and_no_background_sync_beside_it() {
    let hub = Hub::start();
    let office = hub.office();
    let teacher = hub.join("teacher.db", "王瑞侠", Role::HeadTeacher, "王老师的手机");
    let child = teacher.children(true).unwrap()[0].id.clone();

    let first = Heard::default();
    let first_handle = teacher.start_live_sync(Box::new(first.clone())).unwrap();
    let second = Heard::default();
    let second_handle = teacher.start_live_sync(Box::new(second.clone())).unwrap();
    // Starting it again replaces the one running.
    wait_for("the first live sync ends", || first_handle.is_finished());
    wait_for("the second live sync's first exchange", || {
        second
            .all()
            .iter()
            .any(|u| matches!(u, SyncUpdate::Progress { .. }))
    });

    // Background sync started beside it makes no attempt while live sync runs.
    let background = Heard::default();
    let background_handle = teacher
        .start_background_sync(60, Box::new(background.clone()))
        .unwrap();
    let record = teacher
        .add_record(visit(&child, "孩子最近情绪稳定。"))
        .unwrap();
    wait_for("the record reaches the hub by live sync", || {
        office
            .child_file(child.clone())
            .unwrap()
            .records
            .iter()
            .any(|r| r.id == record)
    });

    // A sync now takes the live connection's place, and live sync connects again after.
    let connections = second
        .all()
        .iter()
        .filter(|u| **u == SyncUpdate::Connecting)
        .count();
    hub.block_on(teacher.sync_now(None)).unwrap();
    wait_for("live sync connects again", || {
        second
            .all()
            .iter()
            .filter(|u| **u == SyncUpdate::Connecting)
            .count()
            > connections
    });
    let later = teacher
        .add_record(visit(&child, "复访：作业按时完成。"))
        .unwrap();
    wait_for("the next record reaches the hub by live sync", || {
        office
            .child_file(child.clone())
            .unwrap()
            .records
            .iter()
            .any(|r| r.id == later)
    });
    assert_eq!(background.all(), Vec::new(), "background sync attempted");
    assert!(
        !second
            .all()
            .iter()
            .any(|u| matches!(u, SyncUpdate::Failed { .. })),
        "{:?}",
        second.all()
    );
    drop((first_handle, second_handle, background_handle));
}

/// With the school server unreachable (no signal), live sync waits longer after each failed
/// attempt instead of reconnecting every 5 seconds, and says how long.
#[test]
fn live_sync_backs_off_while_the_hub_cannot_be_reached() {
    let mut hub = Hub::start();
    let teacher = hub.join("teacher.db", "王瑞侠", Role::HeadTeacher, "王老师的手机");
    let server = hub.server.take().unwrap();
    hub.block_on(server.shutdown());
    let heard = Heard::default();
    let _handle = teacher.start_live_sync(Box::new(heard.clone())).unwrap();
    let retries = || -> Vec<Option<u32>> {
        heard
            .all()
            .iter()
            .filter_map(|u| match u {
                SyncUpdate::Failed { retry_in_secs, .. } => Some(*retry_in_secs),
                _ => None,
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(150);
    while retries().len() < 2 {
        assert!(Instant::now() < deadline, "{:?}", heard.all());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(retries()[..2], [Some(5), Some(10)], "{:?}", heard.all());
}
