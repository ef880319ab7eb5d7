//! A phone that connects ahead (`prepare_sync`, when the app opens) syncs over that
//! connection, and keeps it for the next sync: the real hub in-process on 127.0.0.1, counting
//! the connections it accepts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Hub, visit};
use shouwang_core::roles::Role;
use shouwang_relay::transport::TransportMetrics;

#[test]
fn a_phone_connected_ahead_syncs_twice_on_one_connection() {
    let hub = Hub::start();
    let m = hub
        .server
        .as_ref()
        .unwrap()
        .transport_metrics()
        .unwrap()
        .clone();
    let teacher = hub.join("teacher.db", "王瑞侠", Role::HeadTeacher, "王老师的手机");
    let joined = TransportMetrics::get(&m.connections_total);
    let child = teacher.children(true).unwrap()[0].id.clone();

    hub.block_on(teacher.prepare_sync()).unwrap();
    teacher
        .add_record(visit(&child, "奶奶说孩子最近作业按时完成。"))
        .unwrap();
    let first = hub.block_on(teacher.sync_now(None)).unwrap();
    assert!(first.progress.bytes_sent > 0, "{first:?}");
    teacher
        .add_record(visit(&child, "孩子周末帮奶奶喂鸡，精神不错。"))
        .unwrap();
    let second = hub.block_on(teacher.sync_now(None)).unwrap();
    assert!(second.progress.bytes_sent > 0, "{second:?}");
    assert_eq!(
        TransportMetrics::get(&m.connections_total) - joined,
        1,
        "connecting ahead and two syncs: one connection"
    );

    // Both visits reached the school.
    let office = hub.office();
    let notes: Vec<String> = office
        .child_file(child.clone())
        .unwrap()
        .records
        .iter()
        .flat_map(|r| r.fields.iter().map(|f| f.value.clone()))
        .collect();
    for note in [
        "奶奶说孩子最近作业按时完成。",
        "孩子周末帮奶奶喂鸡，精神不错。",
    ] {
        assert!(notes.iter().any(|n| n == note), "{note} not at the hub");
    }

    // Closing the client closes its connection ("done"), without waiting for the hub's
    // timeout.
    drop(teacher);
    let closed = hub.block_on(shouwang_tests::wait::eventually(
        Duration::from_secs(5),
        || TransportMetrics::get(&m.connections_open) == 0,
    ));
    assert!(closed, "the warm connection was closed with the client");
}
