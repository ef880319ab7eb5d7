//! A child leaves the school, through the app's API on the real hub: the office (the hub's own
//! archive, opened with its data key as the console would) records that 王小雨 moved to
//! another school; the 班主任's phone may not record a leave itself, and after one sync no
//! longer holds her file; the office lists her with the date her file is kept until; a return
//! gives the file back to the 班主任 at the next sync.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use shouwang_core::roles::Role;
use shouwang_ffi::ShouwangError;
use shouwang_ffi::departure::LeaveDraft;

#[test]
fn a_child_leaves_and_returns_through_the_app_api() {
    let hub = common::Hub::start();
    let office = hub.office();
    let teacher = hub.join("t.db", "王瑞侠", Role::HeadTeacher, "王老师的手机");
    let holds = |name: &str| {
        teacher
            .children(true)
            .unwrap()
            .iter()
            .any(|c| c.name == name)
    };
    assert!(holds("王小雨"));
    let child = teacher
        .children(true)
        .unwrap()
        .into_iter()
        .find(|c| c.name == "王小雨")
        .unwrap()
        .id;
    let transfer = LeaveDraft {
        date: "2026-11-20".into(),
        reason: "转学".into(),
        to: Some("丁里镇中心小学".into()),
    };

    // Only administrators record a leave, and a date after today or an unknown reason is
    // refused in Chinese without writing anything.
    match teacher.leave_child(child.clone(), transfer.clone()) {
        Err(ShouwangError::NotPermitted { msg }) => assert!(msg.contains("管理"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match office.leave_child(
        child.clone(),
        LeaveDraft {
            reason: "搬家".into(),
            ..transfer.clone()
        },
    ) {
        Err(ShouwangError::InvalidInput { msg, .. }) => assert!(msg.contains("转学"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match office.leave_child(
        child.clone(),
        LeaveDraft {
            date: "2099-01-01".into(),
            ..transfer.clone()
        },
    ) {
        Err(ShouwangError::InvalidInput { msg, .. }) => assert!(msg.contains("今天"), "{msg}"),
        other => panic!("{other:?}"),
    }
    assert!(office.left_children(None).unwrap().is_empty());

    let left = office.leave_child(child.clone(), transfer).unwrap();
    assert_eq!(left.child_id, child);
    assert_eq!(left.keep_until, "2029-11-20"); // the default retention, 3 years
    let listed = office.left_children(Some("2026-12-01".into())).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "王小雨");
    assert_eq!(listed[0].departure.reason, "转学");
    assert_eq!(listed[0].departure.to.as_deref(), Some("丁里镇中心小学"));
    assert!(!listed[0].past_retention);
    assert!(
        office.left_children(Some("2030-01-01".into())).unwrap()[0].past_retention,
        "past the retention on 2030-01-01"
    );
    assert!(matches!(
        teacher.left_children(None),
        Err(ShouwangError::NotPermitted { .. })
    ));

    hub.block_on(teacher.sync_now(None)).unwrap();
    assert!(
        !holds("王小雨"),
        "the 班主任 still holds a left child's file"
    );

    let undone = office.return_child(child.clone()).unwrap();
    assert_eq!(undone.on, "2026-11-20");
    assert!(matches!(
        office.return_child(child.clone()),
        Err(ShouwangError::NotPermitted { .. })
    ));
    hub.block_on(teacher.sync_now(None)).unwrap();
    assert!(holds("王小雨"), "the returned child's file is not back");
    drop((teacher, office));
}
