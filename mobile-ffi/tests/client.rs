//! The client as the apps use it, from Rust: two phones join the real hub (started in-process
//! on 127.0.0.1), record offline, sync, and see each other's records. The same story runs
//! from Kotlin in `mobile-ffi/kotlin/tests` (scripts/kotlin-test.sh).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use shouwang_core::roles::Role;
use shouwang_ffi::types::{ChangeEvent, ChangeOrigin, FieldInput, RecordDraft, SyncUpdate};
use shouwang_ffi::{ChangeListener, ShouwangClient, ShouwangError, SyncListener};
use shouwang_relay::server::{Server, ServerConfig};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Keeps what a listener was told.
#[derive(Clone)]
struct Heard<T>(Arc<Mutex<Vec<T>>>);

impl<T: Clone> Heard<T> {
    fn new() -> Self {
        Heard(Arc::new(Mutex::new(Vec::new())))
    }

    fn all(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }
}

impl SyncListener for Heard<SyncUpdate> {
    fn on_update(&self, update: SyncUpdate) {
        self.0.lock().unwrap().push(update);
    }
}

impl ChangeListener for Heard<ChangeEvent> {
    fn on_change(&self, event: ChangeEvent) {
        self.0.lock().unwrap().push(event);
    }
}

fn field(key: &str, value: &str) -> FieldInput {
    FieldInput {
        key: key.into(),
        value: value.into(),
    }
}

fn school(dir: &std::path::Path) {
    shouwang_tests::fixtures::small_hub(dir);
}

#[test]
fn two_phones_join_record_offline_sync_and_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    school(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(Server::start(ServerConfig::loopback(
            dir.path().join("hub"),
        )))
        .unwrap();
    let ticket = |member: &str, role: Role| {
        server
            .invite(member, role, now(), now() + 86_400)
            .unwrap()
            .ticket
    };
    let key = shouwang_ffi::generate_store_key();
    let teacher_db = dir.path().join("teacher.db").to_string_lossy().into_owned();
    let mother_db = dir.path().join("mother.db").to_string_lossy().into_owned();

    let teacher = rt
        .block_on(ShouwangClient::join(
            teacher_db.clone(),
            key.clone(),
            ticket("王瑞侠", Role::HeadTeacher),
            "王老师的手机".into(),
        ))
        .unwrap();
    assert!(shouwang_ffi::store_exists(teacher_db.clone()).unwrap());
    let me = teacher.me().unwrap();
    assert_eq!(
        (me.name.as_str(), me.school_name.as_str()),
        ("王瑞侠", "郭庄小学")
    );
    let children = teacher.children(true).unwrap();
    assert_eq!(children.len(), 2, "王瑞侠's class");
    let child = children
        .iter()
        .find(|c| c.name == "王小雨")
        .unwrap()
        .id
        .clone();

    // Offline: a 家访 is written and the change listener hears of it.
    let changes = Heard::<ChangeEvent>::new();
    let subscription = teacher
        .subscribe_changes(Box::new(changes.clone()))
        .unwrap();
    let record = teacher
        .add_record(RecordDraft {
            kind: "家访".into(),
            child_id: Some(child.clone()),
            class_id: None,
            date: "2026-11-20".into(),
            fields: vec![
                field("met_with", "奶奶"),
                field("notes", "奶奶说孩子最近作业按时完成，晚上能自己洗漱。"),
            ],
        })
        .unwrap();
    let file = teacher.child_file(child.clone()).unwrap();
    assert!(
        file.records
            .iter()
            .any(|r| r.id == record && r.kind_label == "家访记录")
    );
    for _ in 0..100 {
        if !changes.all().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(changes.all()[0].origin, ChangeOrigin::Local);

    // A bad date is refused with the field named, and nothing is written.
    let bad = teacher.add_record(RecordDraft {
        kind: "home_visit".into(),
        child_id: Some(child.clone()),
        class_id: None,
        date: "2026-02-30".into(),
        fields: vec![field("notes", "x")],
    });
    match bad {
        Err(ShouwangError::InvalidInput { field, msg }) => {
            assert_eq!(field, "日期");
            assert!(msg.starts_with("日期填写有误"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(teacher.child_file(child.clone()).unwrap().records.len(), 1);

    // Sync: the listener sees progress and the success.
    assert!(!teacher.sync_state().unwrap().pending.is_empty());
    let updates = Heard::<SyncUpdate>::new();
    let report = rt
        .block_on(teacher.sync_now(Some(Box::new(updates.clone()))))
        .unwrap();
    assert!(report.last_success_ms > 0);
    let seen = updates.all();
    assert_eq!(seen.first(), Some(&SyncUpdate::Connecting), "{seen:?}");
    assert!(
        seen.iter()
            .any(|u| matches!(u, SyncUpdate::Progress { .. })),
        "{seen:?}"
    );
    assert!(
        matches!(seen.last(), Some(SyncUpdate::Succeeded { .. })),
        "{seen:?}"
    );
    assert!(teacher.sync_state().unwrap().pending.is_empty());
    drop(subscription);

    // The volunteer's phone receives it through the hub.
    let mother = rt
        .block_on(ShouwangClient::join(
            mother_db,
            shouwang_ffi::generate_store_key(),
            ticket("刘桂兰", Role::LoveMother),
            "刘妈妈的手机".into(),
        ))
        .unwrap();
    rt.block_on(mother.sync_now(None)).unwrap();
    let file = mother.child_file(child).unwrap();
    assert!(
        file.records
            .iter()
            .any(|r| r.id == record && r.author_name == "王瑞侠")
    );

    // The wrong key opens nothing.
    drop(teacher);
    match ShouwangClient::open(teacher_db, shouwang_ffi::generate_store_key()) {
        Err(ShouwangError::Locked { .. }) => {}
        other => panic!("{other:?}"),
    }
    rt.block_on(server.shutdown());
}
