//! A refusal that can never succeed is not retried: a phone whose membership certificate
//! expired (it did not sync for longer than the certificate lasts) is told what to do, and
//! background and live sync stop for good instead of reconnecting every few seconds. What to
//! do is a new invite, taken on the store the phone holds: what she typed and has not sent
//! stays, and the next sync sends it. The real hub in-process on 127.0.0.1; the expired
//! certificate is issued with the school's own key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Heard, Hub, now, visit, wait_for};
use shouwang_core::Archive;
use shouwang_core::membership::Invite;
use shouwang_core::roles::Role;
use shouwang_core::store::StoreKey;
use shouwang_ffi::types::SyncUpdate;
use shouwang_ffi::{ShouwangClient, TaskHandle};
use shouwang_relay::device::{self, Identity};
use shouwang_relay::server::DataDir;

/// 王瑞侠's phone, joined and synced, whose certificate then expired yesterday.
fn phone_with_an_expired_certificate(hub: &Hub) -> Arc<ShouwangClient> {
    let (path, key) = expired_phone_store(hub);
    ShouwangClient::open(path.to_string_lossy().into_owned(), key).unwrap()
}

/// [`phone_with_an_expired_certificate`]'s store and its key.
fn expired_phone_store(hub: &Hub) -> (std::path::PathBuf, Vec<u8>) {
    let path = hub.dir.path().join("teacher.db");
    let key = shouwang_ffi::generate_store_key();
    let joined = hub
        .block_on(ShouwangClient::join(
            path.to_string_lossy().into_owned(),
            key.clone(),
            hub.ticket("王瑞侠", Role::HeadTeacher),
            "王老师的手机".into(),
        ))
        .unwrap();
    // It synced while the certificate was good.
    hub.block_on(joined.sync_now(None)).unwrap();
    drop(joined);
    let store_key = StoreKey::from_bytes(&key).unwrap();
    let mut archive = Archive::open_with_key(&path, Some(&store_key)).unwrap();
    let school = DataDir::new(hub.dir.path().join("hub"))
        .school_key()
        .unwrap();
    shouwang_tests::phone::expire_certificate(&mut archive, &school);
    drop(archive);
    (path, key)
}

/// The task stops after one failure that says what to do and is not retried.
fn assert_stopped_for_good(heard: &Heard, handle: &TaskHandle) {
    wait_for("a failure", || {
        heard
            .all()
            .iter()
            .any(|u| matches!(u, SyncUpdate::Failed { .. }))
    });
    let seen = heard.all();
    let failures: Vec<_> = seen
        .iter()
        .filter_map(|u| match u {
            SyncUpdate::Failed {
                message,
                retry_in_secs,
            } => Some((message.clone(), *retry_in_secs)),
            _ => None,
        })
        .collect();
    let (message, retry) = &failures[0];
    assert!(
        message.contains("证书已过期") && message.contains("重新邀请"),
        "{message}"
    );
    assert!(!message.contains("对方拒绝"), "{message}");
    assert_eq!(*retry, None, "{seen:?}");
    wait_for("the task ends", || handle.is_finished());
    let seen = heard.all();
    assert!(
        matches!(seen.last(), Some(SyncUpdate::Failed { .. })),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter()
            .filter(|u| **u == SyncUpdate::Connecting)
            .count(),
        1,
        "{seen:?}"
    );
}

#[test]
fn an_expired_certificate_stops_background_sync_for_good() {
    let hub = Hub::start();
    let phone = phone_with_an_expired_certificate(&hub);
    let heard = Heard::default();
    let handle = phone
        .start_background_sync(60, Box::new(heard.clone()))
        .unwrap();
    assert_stopped_for_good(&heard, &handle);
}

#[test]
fn an_expired_certificate_stops_live_sync_for_good() {
    let hub = Hub::start();
    let phone = phone_with_an_expired_certificate(&hub);
    let heard = Heard::default();
    let handle = phone.start_live_sync(Box::new(heard.clone())).unwrap();
    assert_stopped_for_good(&heard, &handle);
}

/// After a summer without signal: the 家访 she typed is on the phone, the hub refuses the
/// expired certificate, and the administrator's new invite renews it on the store she holds
/// (joining again would need a new store and lose the visit). Tickets that are not hers
/// change nothing and stay unused.
#[test]
fn a_new_invite_renews_an_expired_certificate_and_keeps_the_unsent_visit() {
    let hub = Hub::start();
    let office = hub.office();
    let phone = phone_with_an_expired_certificate(&hub);
    let child = phone.children(true).unwrap()[0].id.clone();
    let record = phone
        .add_record(visit(
            &child,
            "暑假里去过孩子家，奶奶腿脚不便，孩子帮着做饭。",
        ))
        .unwrap();
    let refused = hub.block_on(phone.sync_now(None)).unwrap_err();
    assert!(refused.to_string().contains("证书已过期"), "{refused}");

    // A colleague's ticket is not hers: refused before the hub sees it, and still good for
    // the colleague's own phone.
    let colleagues = hub.ticket("刘桂兰", Role::LoveMother);
    let wrong = hub
        .block_on(phone.renew_membership(colleagues.clone()))
        .unwrap_err();
    assert!(wrong.to_string().contains("另一位成员"), "{wrong}");
    hub.block_on(ShouwangClient::join(
        hub.dir.path().join("m.db").to_string_lossy().into_owned(),
        shouwang_ffi::generate_store_key(),
        colleagues,
        "刘桂兰的手机".into(),
    ))
    .unwrap();
    let still = hub.block_on(phone.sync_now(None)).unwrap_err();
    assert!(still.to_string().contains("证书已过期"), "{still}");

    let ticket = hub.ticket("王瑞侠", Role::HeadTeacher);
    hub.block_on(phone.renew_membership(ticket.clone()))
        .unwrap();
    assert!(
        phone
            .child_file(child.clone())
            .unwrap()
            .records
            .iter()
            .any(|r| r.id == record)
    );
    hub.block_on(phone.sync_now(None)).unwrap();
    assert!(
        office
            .child_file(child)
            .unwrap()
            .records
            .iter()
            .any(|r| r.id == record),
        "the visit typed while the certificate was expired reached the school"
    );
    // Spent: the same ticket again is for nothing now that the phone syncs.
    let again = hub.block_on(phone.renew_membership(ticket)).unwrap_err();
    assert!(again.to_string().contains("直接同步"), "{again}");
}

/// A renewal cut off after the hub spent the invite (the battery died with the documents on
/// their way) is tried again with the same ticket, though the device synced before: the
/// hub refuses a ticket again only to a device that synced since it spent it.
#[test]
fn a_renewal_cut_off_is_tried_again_with_the_same_ticket() {
    let hub = Hub::start();
    let (path, key) = expired_phone_store(&hub);
    let ticket = hub.ticket("王瑞侠", Role::HeadTeacher);
    let store_key = StoreKey::from_bytes(&key).unwrap();
    let mut archive = Archive::open_with_key(&path, Some(&store_key)).unwrap();
    let identity = Identity::load(&mut archive).unwrap();
    drop(archive);
    // The hub keeps the spend in whole seconds, and a sync in the same second counts as after
    // it: the phone's last sync (weeks ago in life) is in an earlier one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // The hub spends the invite and answers; the phone takes nothing.
    hub.block_on(async {
        let node = identity.bind(false).await.unwrap();
        shouwang_relay::handshake::enroll_with_progress(
            &node,
            &Invite::decode(&ticket).unwrap(),
            now(),
            &device::default_options(),
            None,
        )
        .await
        .unwrap();
        node.shutdown().await;
    });
    let phone = ShouwangClient::open(path.to_string_lossy().into_owned(), key).unwrap();
    hub.block_on(phone.renew_membership(ticket.clone()))
        .unwrap();
    hub.block_on(phone.sync_now(None)).unwrap();
    // Once it synced, the same ticket is not for enrolling again.
    let mut archive = Archive::open_with_key(&path, Some(&store_key)).unwrap();
    let identity = Identity::load(&mut archive).unwrap();
    let refused = hub.block_on(async {
        let node = identity.bind(false).await.unwrap();
        let r = shouwang_relay::handshake::enroll_with_progress(
            &node,
            &Invite::decode(&ticket).unwrap(),
            now(),
            &device::default_options(),
            None,
        )
        .await;
        node.shutdown().await;
        r
    });
    let refused = refused.map(|_| ()).unwrap_err().to_string();
    assert!(refused.contains("已经加入学校"), "{refused}");
}
