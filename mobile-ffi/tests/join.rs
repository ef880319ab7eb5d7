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
