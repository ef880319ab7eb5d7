//! A refusal that can never succeed is not retried: a phone whose membership certificate
//! expired (it did not sync for longer than the certificate lasts) is told what to do, and
//! background and live sync stop for good instead of reconnecting every few seconds. The real
//! hub in-process on 127.0.0.1; the expired certificate is issued with the school's own key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{Heard, Hub, now, wait_for};
use shouwang_core::Archive;
use shouwang_core::membership::CertificateBody;
use shouwang_core::roles::Role;
use shouwang_core::store::StoreKey;
use shouwang_ffi::types::SyncUpdate;
use shouwang_ffi::{ShouwangClient, TaskHandle};
use shouwang_relay::device::Identity;
use shouwang_relay::server::DataDir;

/// 王瑞侠's phone, joined, whose certificate then expired yesterday.
fn phone_with_an_expired_certificate(hub: &Hub) -> Arc<ShouwangClient> {
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
    drop(joined);
    let store_key = StoreKey::from_bytes(&key).unwrap();
    let mut archive = Archive::open_with_key(&path, Some(&store_key)).unwrap();
    let identity = Identity::load(&mut archive).unwrap();
    let school = DataDir::new(hub.dir.path().join("hub"))
        .school_key()
        .unwrap();
    let expired = school
        .issue(CertificateBody {
            issued_at: now() - 31 * 86_400,
            expires_at: now() - 86_400,
            ..identity.certificate.body().clone()
        })
        .unwrap()
        .encode();
    archive
        .store()
        .write(|b| {
            b.set_meta("net.certificate", &expired);
            Ok(())
        })
        .unwrap();
    drop(archive);
    ShouwangClient::open(path.to_string_lossy().into_owned(), key).unwrap()
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
