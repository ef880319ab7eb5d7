//! A revoked phone's unsent work (issue 10): when the hub tells a revoked phone so, the phone
//! reports how many of its changes (and new records) the hub had not confirmed, then wipes its
//! store; the hub records the counts against the device in the school document, and the
//! office's device list (`shouwang device list`, `shouwang-relay devices`) shows them.
//!
//! Real components: the hub's server started in-process on 127.0.0.1, a phone store joined
//! with a real invite (`device::join`), real iroh endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::ids::DeviceId;
use shouwang_core::roles::Role;
use shouwang_core::school::Undelivered;
use shouwang_core::{Archive, RecordInput};
use shouwang_relay::device::{self, Identity};
use shouwang_relay::server::{Server, ServerConfig, commands};
use shouwang_tests::fixtures::{LOVE_MOTHER, small_hub};
use shouwang_tests::phone::{JoinedPhone, small_hub_served};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn talk(phone: &mut Archive, day: u32, note: &str) -> String {
    phone
        .add_record(&RecordInput {
            kind: "谈心".into(),
            child: Some("王小雨".into()),
            class: None,
            date: format!("2026-11-{day:02}"),
            fields: vec![("notes".into(), note.into())],
        })
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_phone_reports_what_it_had_not_delivered_before_wiping() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_hub(dir.path());
    let config = ServerConfig::loopback(dir.path().join("hub"));
    let server = Server::start(config.clone()).await.unwrap();
    let joined = JoinedPhone::join(&server, dir.path(), LOVE_MOTHER, Role::LoveMother).await;
    let id = joined.device();
    let JoinedPhone {
        path,
        archive: mut phone,
        identity,
        node,
    } = joined;
    let opts = device::default_options();

    // Delivered: two talks the hub confirms.
    let delivered = talk(&mut phone, 2, "聊了学校的运动会");
    talk(&mut phone, 3, "她说想念在外打工的妈妈");
    let (mut phone, _) = device::sync_hub(&node, &identity, phone, &opts, None)
        .await
        .unwrap();
    // Offline: three new talks and an edit of a delivered one, four changes in all.
    for day in 10..13 {
        talk(&mut phone, day, "作业按时完成，情绪稳定");
    }
    phone
        .edit_record(
            &delivered,
            None,
            &[("notes".into(), "聊了学校的运动会，她跑了第二名".into())],
        )
        .unwrap();
    assert_eq!(
        phone
            .undelivered(&identity.hub().unwrap().id.to_string())
            .unwrap(),
        Undelivered {
            changes: 4,
            records: 3
        }
    );

    // The office revokes the phone; the phone connects.
    let row = data
        .open_archive()
        .unwrap()
        .revoke_device(id.as_str())
        .unwrap();
    assert!(row.revoked && row.undelivered.is_none());
    let err = device::sync_hub(&node, &identity, phone, &opts, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("已被学校停用"), "{err}");
    assert!(!path.exists(), "the store was not wiped");

    // The hub recorded what was lost, in the school document the office reads.
    let row = data
        .open_archive()
        .unwrap()
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.id == id.as_str())
        .unwrap();
    assert_eq!(
        row.undelivered,
        Some(Undelivered {
            changes: 4,
            records: 3
        }),
        "{row:?}"
    );
    let listed = commands::devices_command(&config).unwrap();
    let line = listed.lines().find(|l| l.starts_with(id.as_str())).unwrap();
    assert!(
        line.contains("未送达 4 项修改（其中新记录 3 条）"),
        "{listed}"
    );
    // A second report (a modified app reporting in a loop) changes nothing.
    shouwang_relay::handshake::report_undelivered(&node, identity.hub().unwrap(), 1, 1, &opts)
        .await
        .unwrap();
    let again = commands::devices_command(&config).unwrap();
    assert_eq!(again, listed);
    node.shutdown().await;
    server.shutdown().await;
}

/// Only a revoked device may report: a device in good standing that sends the report is
/// refused and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_in_good_standing_cannot_report_undelivered_changes() {
    let (dir, data, server) = small_hub_served().await;
    let phone = JoinedPhone::join(&server, dir.path(), LOVE_MOTHER, Role::LoveMother).await;
    let (identity, node) = (&phone.identity, &phone.node);
    let opts = device::default_options();
    let err =
        shouwang_relay::handshake::report_undelivered(node, identity.hub().unwrap(), 99, 9, &opts)
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("没有被停用"), "{err}");
    let id = phone.device();
    let row = data
        .open_archive()
        .unwrap()
        .devices()
        .unwrap()
        .into_iter()
        .find(|d| d.id == id.as_str())
        .unwrap();
    assert_eq!(row.undelivered, None);
    phone.node.shutdown().await;
    server.shutdown().await;
}

/// A phone joined and synced once: the hub's data, its server, the phone's store path, its
/// identity and network node.
struct Served {
    _dir: tempfile::TempDir,
    data: shouwang_relay::server::DataDir,
    server: Server,
    path: std::path::PathBuf,
    identity: Identity,
    node: shouwang_relay::transport::Node,
    phone: Archive,
}

impl Served {
    /// Syncs the phone with the hub: told it is revoked, it wipes its store.
    async fn sync_and_expect_the_wipe(self) {
        let opts = device::default_options();
        let err = device::sync_hub(&self.node, &self.identity, self.phone, &opts, None)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("已被学校停用"), "{err}");
        assert!(!self.path.exists(), "the store was not wiped");
        self.node.shutdown().await;
        self.server.shutdown().await;
    }
}

async fn served_mother() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let data = small_hub(dir.path());
    let config = ServerConfig::loopback(dir.path().join("hub"));
    let server = Server::start(config).await.unwrap();
    let JoinedPhone {
        path,
        archive: mut phone,
        identity,
        node,
    } = JoinedPhone::join(&server, dir.path(), LOVE_MOTHER, Role::LoveMother).await;
    let opts = device::default_options();
    talk(&mut phone, 2, "聊了学校的运动会");
    let (mut phone, _) = device::sync_hub(&node, &identity, phone, &opts, None)
        .await
        .unwrap();
    assert!(
        !phone.children(None, false).unwrap().is_empty(),
        "the phone holds the child's file"
    );
    Served {
        _dir: dir,
        data,
        server,
        path,
        identity,
        node,
        phone,
    }
}

/// A member who leaves the school is deactivated at the office: her phone, at its next
/// sync, is told it may no longer hold the school's files and wipes itself, as a revoked
/// phone does (it was told only "停用" before, and kept every file it held).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivated_member_s_phone_wipes_itself_at_its_next_sync() {
    let s = served_mother().await;
    s.data
        .open_archive()
        .unwrap()
        .deactivate_member(LOVE_MOTHER)
        .unwrap();
    s.sync_and_expect_the_wipe().await;
}

/// A lost phone is revoked and comes back on after its certificate has expired (it was
/// refused for the certificate, before the hub looked at the revocation, and kept every
/// file). The hub tells it it is revoked, and it wipes itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_phone_whose_certificate_expired_still_wipes_itself() {
    let mut s = served_mother().await;
    let id = DeviceId::from_key(s.identity.secret.public().as_bytes());
    s.data
        .open_archive()
        .unwrap()
        .revoke_device(id.as_str())
        .unwrap();
    // Its certificate as it will be a month after it lapsed (signed by the school, as every
    // certificate is).
    let school = s.data.school_key_with(&s.data.data_key().unwrap()).unwrap();
    let mut body = s.identity.certificate.body().clone();
    body.issued_at = now() - 90 * 86_400;
    body.expires_at = now() - 30 * 86_400;
    s.identity.certificate = school.issue(body).unwrap();
    s.sync_and_expect_the_wipe().await;
}
