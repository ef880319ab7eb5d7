//! Joining the school from the app: the real hub in-process on 127.0.0.1, a real invite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Hub;
use shouwang_core::roles::Role;
use shouwang_ffi::{JoinListener, ShouwangClient};

/// An app whose progress listener fails: a Kotlin exception thrown in `onReceived` (a view
/// touched from the wrong thread) reaches Rust as a panic of the callback.
struct Careless;

impl JoinListener for Careless {
    fn on_received(&self, _bytes: u64) {
        panic!("CalledFromWrongThreadException");
    }
}

/// The hub takes the invite before the first progress report: a listener that fails must not
/// turn the join into a refusal that throws the device key away, leaving her an invite the
/// school has already spent and no device.
#[test]
fn a_progress_listener_that_fails_does_not_cost_her_the_invite() {
    let hub = Hub::start();
    let db = hub
        .dir
        .path()
        .join("mother.db")
        .to_string_lossy()
        .into_owned();
    let joined = hub.block_on(ShouwangClient::join_with_progress(
        db.clone(),
        shouwang_ffi::generate_store_key(),
        hub.ticket("刘桂兰", Role::LoveMother),
        "刘妈妈的手机".into(),
        Box::new(Careless),
    ));
    let mother = joined.unwrap();
    assert_eq!(mother.me().unwrap().name, "刘桂兰");
    assert!(!mother.children(true).unwrap().is_empty());
}

/// A careless app cannot drain the battery with background sync: an interval under a minute
/// (0 would sync every second) is refused, and starting it again replaces the sync that was
/// running instead of stacking a second loop beside it.
#[test]
fn background_sync_is_one_loop_of_at_least_a_minute() {
    struct Quiet;
    impl shouwang_ffi::SyncListener for Quiet {
        fn on_update(&self, _update: shouwang_ffi::types::SyncUpdate) {}
    }
    let hub = Hub::start();
    let teacher = hub.join("teacher.db", "王瑞侠", Role::HeadTeacher, "王老师的手机");
    for too_often in [0, 1, 59] {
        let e = teacher
            .start_background_sync(too_often, Box::new(Quiet))
            .err()
            .unwrap();
        assert!(
            matches!(e, shouwang_ffi::ShouwangError::InvalidInput { .. }),
            "{too_often}: {e}"
        );
    }
    let first = teacher.start_background_sync(300, Box::new(Quiet)).unwrap();
    assert!(!first.is_finished());
    let second = teacher.start_background_sync(300, Box::new(Quiet)).unwrap();
    let stopped = hub.block_on(shouwang_tests::wait::eventually(
        std::time::Duration::from_secs(5),
        || first.is_finished(),
    ));
    assert!(stopped, "two background syncs run side by side");
    assert!(!second.is_finished());
    second.cancel();
}

/// The phone dies while the join writes its store (5 % battery): the hub has taken the
/// invite, and the store was begun but holds no school yet. The app, seeing a store that does
/// not open as enrolled, asks her to join again with the same invite: that works, over what
/// the first attempt left, instead of calling it someone's archive for good.
#[test]
fn a_join_cut_off_while_writing_the_store_can_be_done_again() {
    let hub = Hub::start();
    let db = hub.dir.path().join("mother.db");
    let key = shouwang_ffi::generate_store_key();
    let ticket = hub.ticket("刘桂兰", Role::LoveMother);
    // The first attempt: enrolled (the invite is spent, the device key kept beside the
    // store), the store created under the app's key, then nothing more.
    hub.block_on(shouwang_relay::device::enroll(
        &db,
        &ticket,
        common::now(),
        &shouwang_relay::device::default_options(),
    ))
    .unwrap();
    let store_key = shouwang_core::store::StoreKey::from_bytes(&key).unwrap();
    drop(shouwang_core::store::Store::open_with_key(&db, Some(&store_key)).unwrap());
    let path = db.to_string_lossy().into_owned();
    assert!(
        ShouwangClient::open(path.clone(), key.clone()).is_err(),
        "a store with no school opened as one"
    );
    let mother = hub
        .block_on(ShouwangClient::join(
            path,
            key,
            ticket,
            "刘妈妈的手机".into(),
        ))
        .unwrap();
    assert_eq!(mother.me().unwrap().name, "刘桂兰");
    drop(mother);
    // Joined, it is hers: another join over it is refused, in words that do not show the
    // app's private path (`/data/user/0/…` on a phone).
    let again = hub.block_on(ShouwangClient::join(
        db.to_string_lossy().into_owned(),
        shouwang_ffi::generate_store_key(),
        hub.ticket("刘桂兰", Role::LoveMother),
        "刘妈妈的手机".into(),
    ));
    match again {
        Err(shouwang_ffi::ShouwangError::NotPermitted { msg }) => {
            assert!(msg.contains("档案库"), "{msg}");
            assert!(!msg.contains(&*hub.dir.path().to_string_lossy()), "{msg}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
}

/// Asking whether a store exists changes nothing: an empty file stays empty (it was made a
/// plain database, which a join under the app's key could then not open).
#[test]
fn asking_whether_a_store_exists_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let path = empty.to_string_lossy().into_owned();
    assert!(!shouwang_ffi::store_exists(path).unwrap());
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
}

/// The 联系卡 is saved in one step: the father's, the mother's and the guardian's sections
/// together. A phone number the mother's section refuses leaves the father's as it was, not
/// half a card saved; all three valid, all three are saved.
#[test]
fn the_contact_card_is_saved_whole_or_not_at_all() {
    use shouwang_ffi::types::{FieldInput, SectionInput};
    let field = |key: &str, value: &str| FieldInput {
        key: key.into(),
        value: value.into(),
    };
    let card = |mother_phone: &str| {
        vec![
            SectionInput {
                section: "father".into(),
                fields: vec![field("name", "王大山"), field("phone", "13905640011")],
            },
            SectionInput {
                section: "mother".into(),
                fields: vec![field("name", "李秀兰"), field("phone", mother_phone)],
            },
            SectionInput {
                section: "guardian".into(),
                fields: vec![field("name", "王秀英"), field("relation", "奶奶")],
            },
        ]
    };
    let hub = Hub::start();
    let teacher = hub.join("teacher.db", "王瑞侠", Role::HeadTeacher, "王老师的手机");
    let child = teacher.children(true).unwrap()[0].id.clone();
    let shown =
        |what: &str| format!("{:?}", teacher.child_file(child.clone()).unwrap()).contains(what);
    let e = teacher
        .edit_child_sections(child.clone(), card("12ab"))
        .unwrap_err();
    assert!(
        matches!(e, shouwang_ffi::ShouwangError::InvalidInput { .. }),
        "{e}"
    );
    assert!(
        !shown("王大山") && !shown("13905640011"),
        "half the card was saved"
    );
    teacher
        .edit_child_sections(child.clone(), card("13905640022"))
        .unwrap();
    for saved in ["王大山", "13905640011", "李秀兰", "13905640022", "王秀英"] {
        assert!(shown(saved), "{saved}");
    }
}
