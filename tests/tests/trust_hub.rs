//! Trust over the real hub: `shouwang-relay`'s server started in-process on 127.0.0.1, real
//! iroh endpoints, real SQLite stores. A 爱心妈妈's modified app (`shouwang_tests::attack`)
//! syncs forged changes; the hub refuses and quarantines them, tells her device, which lists
//! them and does not offer them again, and the 班主任's phone keeps syncing as before.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use automerge::ChangeHash;
use shouwang_core::doc::DocId;
use shouwang_core::membership::Certificate;
use shouwang_core::roles::Role;
use shouwang_core::{Archive, RecordInput};
use shouwang_relay::server::{DataDir, Server, ServerConfig};
use shouwang_relay::syncing::sync_once;
use shouwang_relay::transport::{ConversationOptions, Node, NodeConfig, SecretKey};
use shouwang_tests::attack::{self, holds};
use shouwang_tests::fixtures::{HEAD_TEACHER, LOVE_MOTHER, holds_text, raw_store};
use shouwang_tests::phone::{
    EnrolledPhone as Phone, JoinedPhone, now, small_hub_served, small_hub_served_with,
};
use shouwang_tests::wait::eventually;

/// What the hub's own store holds.
fn hub_holds(data: &DataDir, doc: &DocId, hash: &ChangeHash) -> bool {
    let mut hub = data.open_archive().unwrap();
    holds(&mut hub, doc, hash)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modified_app_is_refused_by_the_hub_and_told_so() {
    let (_dir, data, server) = small_hub_served().await;
    let hub_peer = server.hub_addr().id.to_string();
    let mut teacher = Phone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    let mut mother = Phone::enroll(&server, LOVE_MOTHER, Role::LoveMother).await;
    let visit = teacher
        .a()
        .add_record(&RecordInput {
            kind: "家访".into(),
            child: Some("王小雨".into()),
            class: None,
            date: "2026-11-20".into(),
            fields: vec![("notes".into(), "奶奶在家".into())],
        })
        .unwrap()
        .0;
    teacher.sync(&server).await;
    mother.sync(&server).await;
    let child = mother.a().find_child("王小雨").unwrap();
    let him = teacher.a().me_id().to_string();
    let teacher_actor = attack::actor_of(teacher.a());

    // Each forged change, synced: refused (or, under another device's actor, not taken from
    // her device at all), never in hub.db, and the session still ends normally.
    type Forge<'a> = Box<dyn FnOnce(&mut Archive) -> (DocId, ChangeHash) + 'a>;
    let forged: Vec<(&str, bool, Forge<'_>)> = vec![
        (
            "self-granted 领导组",
            true,
            Box::new(|a| (DocId::School, attack::self_grant(a, "leadership"))),
        ),
        (
            "class move",
            true,
            Box::new(|a| {
                let c = child.clone();
                (
                    DocId::Child(c.clone()),
                    attack::move_class(a, &c, "k-other"),
                )
            }),
        ),
        (
            "a self-made pairing",
            true,
            Box::new(|a| {
                let c = child.clone();
                (DocId::School, attack::self_pair(a, &c))
            }),
        ),
        (
            "editing the 班主任's record",
            true,
            Box::new(|a| {
                let c = child.clone();
                (DocId::Child(c.clone()), attack::edit_record(a, &c, &visit))
            }),
        ),
        (
            "voiding the 班主任's record under his name",
            true,
            Box::new(|a| {
                let c = child.clone();
                (
                    DocId::Child(c.clone()),
                    attack::void_as(a, &c, &visit, &him),
                )
            }),
        ),
        (
            "an unregistered actor",
            true,
            Box::new(|a| {
                let c = child.clone();
                let her = a.me_id().to_string();
                (
                    DocId::Child(c.clone()),
                    attack::as_actor(a, &c, automerge::ActorId::random(), &her, "love_mother"),
                )
            }),
        ),
        (
            "10 MB into school",
            true,
            Box::new(|a| (DocId::School, attack::flood_school(a, 10 << 20))),
        ),
        (
            "a stolen actor",
            false,
            Box::new(|a| {
                let c = child.clone();
                (
                    DocId::Child(c.clone()),
                    attack::as_actor(a, &c, teacher_actor.clone(), &him, "head_teacher"),
                )
            }),
        ),
        // Last: her phone hands this file in whole at every sync while the hub defers it (a
        // hand-in of a file outside her scope, `Session::hand_in`), so a sync after it is
        // never one with nothing to offer.
        (
            "a write into the private part",
            false,
            Box::new(|a| {
                let c = child.clone();
                (
                    DocId::Private(c.clone()),
                    attack::write_private(a, &c, "34052120170305002X"),
                )
            }),
        ),
    ];
    for (name, refused, forge) in forged {
        let (doc, hash) = forge(mother.a());
        mother.sync(&server).await;
        assert!(!hub_holds(&data, &doc, &hash), "{name}: the hub merged it");
        let status = mother.a().sync_status(&hub_peer).unwrap();
        if refused {
            assert!(
                status.refused.iter().any(|(_, _, why)| !why.is_empty()),
                "{name}: her device was not told: {status:?}"
            );
            // The next sync does not offer it again.
            let again = mother.sync(&server).await;
            assert!(again.frames_sent <= 2, "{name}: offered again: {again:?}");
        }
        assert!(!hub_holds(&data, &doc, &hash), "{name}");
    }
    // The hub's administrator can list what was refused.
    let mut hub = data.open_archive().unwrap();
    let q = hub.quarantined().unwrap();
    assert!(q.len() >= 3, "{q:?}");
    // Every one came from her device (one of them claims the 班主任's actor).
    let hers = mother.node.id().to_string();
    assert!(q.iter().all(|c| c.source == hers), "{q:?}");
    drop(hub);

    // The teacher's phone keeps syncing; his next record reaches the hub and never clashes
    // with the change made under his actor.
    teacher
        .a()
        .add_record(&RecordInput {
            kind: "家访".into(),
            child: Some("王小雨".into()),
            class: None,
            date: "2026-11-21".into(),
            fields: vec![("notes".into(), "第二次家访".into())],
        })
        .unwrap();
    teacher.sync(&server).await;
    let mut hub = data.open_archive().unwrap();
    assert_eq!(hub.child_file("王小雨").unwrap().records.len(), 2);
    server.shutdown().await;
}

/// A child moved to another class: the move is in the child's file, which the hub no longer
/// sends to the old 班主任. The hub tells her device the file is outside what it may hold; the
/// device drops it (no byte of the name left in the store or its WAL) and its syncs go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_moved_out_of_the_class_leaves_the_old_head_teachers_phone() {
    let (_dir, data, server) = small_hub_served().await;
    let mut teacher = Phone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    teacher.sync(&server).await;
    assert!(teacher.a().find_child("赵子涵").is_ok());
    shouwang_tests::phone::move_to_a_new_class(&data, "赵子涵");
    teacher.sync(&server).await;
    // (`device::sync_hub`, which the CLI and the apps use, purges after every sync.)
    assert_eq!(teacher.a().purge_out_of_scope().unwrap(), 2);
    let path = teacher.dir.path().join("phone.db");
    assert!(teacher.a().find_child("赵子涵").is_err());
    assert!(!holds_text(&raw_store(&path), "赵子涵"));
    assert!(teacher.a().find_child("王小雨").is_ok());
    // The next sync is a plain one: nothing refused, nothing pending.
    teacher.sync(&server).await;
    let hub = server.hub_addr().id.to_string();
    let status = teacher.a().sync_status(&hub).unwrap();
    assert!(
        status.pending.is_empty() && status.last_error.is_none(),
        "{status:?}"
    );
    server.shutdown().await;
}

/// A lost phone: the office revokes the device; the hub refuses it at its next sync with one
/// Chinese line, and every device that has synced since knows (its certificate is refused by
/// peers too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_phone_is_refused_by_the_hub_and_known_to_the_others() {
    let (_dir, data, server) = small_hub_served().await;
    let mut teacher = Phone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    let mut mother = Phone::enroll(&server, LOVE_MOTHER, Role::LoveMother).await;
    mother.sync(&server).await;
    let key = *mother.node.id().as_bytes();
    let hers = || {
        data.open_archive()
            .unwrap()
            .devices()
            .unwrap()
            .into_iter()
            .find(|d| d.member == LOVE_MOTHER)
            .unwrap()
    };
    // The phone is done as soon as the hub holds everything (`transport`, point 3); the hub
    // records the sync when it reads the phone's last frame, which may come a moment later.
    assert!(
        eventually(Duration::from_secs(10), || hers().last_sync.is_some()).await,
        "{:?}",
        hers()
    );
    let row = {
        let mut office = data.open_archive().unwrap();
        let hers = hers();
        // A 班主任 cannot revoke anything.
        assert!(teacher.a().revoke_device(&hers.id[..8]).is_err());
        office.revoke_device(&hers.id[..8]).unwrap()
    };
    assert!(row.revoked);
    let archive = mother.archive.take().unwrap();
    let err = sync_once(
        &mother.node,
        server.hub_addr(),
        archive,
        &mother.cert,
        &ConversationOptions::default(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("停用"), "{err}");
    teacher.sync(&server).await;
    assert!(teacher.a().is_revoked(&key).unwrap());
    let own = *teacher.node.id().as_bytes();
    assert!(!teacher.a().is_revoked(&own).unwrap());
    server.shutdown().await;
}

/// Certificates are short-lived and renewed by the hub at a sync once half their validity has
/// passed, with the member's roles as the school document gives them then; the user sees
/// nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_past_half_its_life_is_renewed_at_the_next_sync() {
    let (dir, _data, server) = small_hub_served().await;
    let mut teacher = Phone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    let first = teacher.cert.body().expires_at;
    assert!(first - now() <= 30 * 86_400 + 60, "the default is 30 days");
    // Nothing to renew yet: the same certificate stays.
    teacher.sync(&server).await;
    assert_eq!(teacher.a().store().meta("net.certificate").unwrap(), None);
    server.shutdown().await;

    // The school lengthens validity to 90 days: the 30-day certificate is now past half.
    let mut config = ServerConfig::loopback(dir.path().join("hub"));
    config.certificate_days = 90;
    let server = Server::start(config).await.unwrap();
    teacher.sync(&server).await;
    let text = teacher
        .a()
        .store()
        .meta("net.certificate")
        .unwrap()
        .expect("a renewed certificate is kept");
    let renewed = Certificate::decode(&text).unwrap();
    assert_eq!(renewed.body().member, teacher.cert.body().member);
    assert_eq!(renewed.body().device, teacher.cert.body().device);
    assert!(
        renewed.body().expires_at > first + 50 * 86_400,
        "{renewed:?}"
    );
    renewed
        .verify(
            &renewed.body().school_id,
            &server.hub_state().school_public(),
            &renewed.body().device,
            now(),
        )
        .unwrap();
    server.shutdown().await;
}

/// A certificate the hub's connection hands over after the welcome that the school key did
/// not sign (a hub's bug, a frame damaged past its checks) is not kept: the phone goes on with
/// the one it has, and its sync goes on. Kept, it would have every peer and the hub refuse the
/// phone until it joined again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_the_school_did_not_sign_is_not_kept() {
    use shouwang_core::membership::{CertificateBody, SchoolKey};
    use shouwang_relay::device::Identity;
    use shouwang_relay::handshake::Message;
    use shouwang_relay::syncing::DeviceSync;
    use shouwang_relay::transport::Conversation;

    let (_dir, _data, server) = small_hub_served().await;
    let phone = shouwang_tests::phone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    let mut archive = phone.archive();
    let identity = Identity::load(&mut archive).unwrap();
    let kept_before = archive.store().meta("net.certificate").unwrap();
    let school = archive.school_id().clone();
    let mut conv = DeviceSync::new(archive, &identity.certificate, "hub", false);
    conv.opening().unwrap();
    conv.on_frame(&Message::Welcome(school).encode()).unwrap();
    let forged = SchoolKey::generate()
        .issue(CertificateBody {
            issued_at: now() + 60,
            expires_at: now() + 90 * 86_400,
            ..identity.certificate.body().clone()
        })
        .unwrap();
    conv.on_frame(&Message::Certificate(forged.to_bytes()).encode())
        .unwrap();
    let mut archive = conv.into_archive();
    assert_eq!(
        archive.store().meta("net.certificate").unwrap(),
        kept_before,
        "a certificate the school did not sign replaced the phone's"
    );
    server.shutdown().await;
}

/// A 任课教师 is made the 班主任 of a new class mid-term. His phone hears it at its next sync
/// and he records a 家访 as 班主任; his certificate, issued when he joined, still names only
/// 任课教师. The hub takes the 家访 all the same: the roles a certificate bounds a session
/// with are re-read when the school has given the member more since (a role gained is no
/// standing lost), and his phone is re-certified with them.
///
/// Weeks later the class goes back to its old head while his phone is away, and he records
/// another 家访 before he hears. The hub takes it and lists it for review, and does not
/// re-certify him without the role before his certificate's half-life: a certificate without
/// it would have his own phone's unsent 家访 refused wherever it went next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_given_after_the_certificate_is_used_at_once() {
    const NEW_HEAD: &str = "陈建国";
    const NEW_CLASS: &str = "三年级(2)班";
    let (_dir, data, server) = small_hub_served().await;
    data.open_archive()
        .unwrap()
        .add_member(NEW_HEAD, &[Role::SubjectTeacher], None, None)
        .unwrap();
    let mut teacher = Phone::enroll(&server, NEW_HEAD, Role::SubjectTeacher).await;
    let joined = teacher.cert.body().clone();
    teacher.sync(&server).await;
    assert!(teacher.a().find_child("赵子涵").is_err());
    {
        let mut office = data.open_archive().unwrap();
        office.add_class(NEW_CLASS, None).unwrap();
        office
            .edit_child(
                "赵子涵",
                "profile",
                &[("class_id".to_owned(), NEW_CLASS.to_owned())],
            )
            .unwrap();
        office.set_class_head(NEW_CLASS, NEW_HEAD).unwrap();
    }
    teacher.sync(&server).await;
    assert!(teacher.a().me().unwrap().roles.contains(&Role::HeadTeacher));
    let record = teacher.record("家访", "赵子涵", "2026-11-20", "奶奶说孩子最近按时睡觉");
    teacher.sync(&server).await;
    let mut hub = data.open_archive().unwrap();
    let file = hub.child_file("赵子涵").unwrap();
    assert!(
        file.records.iter().any(|r| r.meta.id.as_str() == record),
        "{:?}",
        hub.quarantined().unwrap()
    );
    assert_eq!(hub.quarantined().unwrap().len(), 0);
    // Her phone holds a certificate naming the role now.
    let text = teacher
        .a()
        .store()
        .meta("net.certificate")
        .unwrap()
        .expect("re-certified");
    let renewed = Certificate::decode(&text).unwrap();
    assert!(
        renewed.body().roles.contains(&Role::HeadTeacher),
        "{renewed:?}"
    );
    // Re-certified for the role, not for longer, and as issued then (a peer whose clock is
    // behind the hub's would refuse a certificate issued "in the future").
    assert_eq!(renewed.body().expires_at, joined.expires_at);
    assert_eq!(renewed.body().issued_at, joined.issued_at);

    data.open_archive()
        .unwrap()
        .set_class_head(NEW_CLASS, HEAD_TEACHER)
        .unwrap();
    let later = teacher.record("家访", "赵子涵", "2026-11-27", "还不知道班级已交回原班主任");
    teacher.sync(&server).await;
    let mut hub = data.open_archive().unwrap();
    assert!(hub.quarantined().unwrap().is_empty());
    let file = hub.child_file("赵子涵").unwrap();
    assert!(file.records.iter().any(|r| r.meta.id.as_str() == later));
    let review = hub.outdated_standing().unwrap();
    assert!(review.iter().any(|r| r.member == NEW_HEAD), "{review:#?}");
    assert!(!teacher.a().me().unwrap().roles.contains(&Role::HeadTeacher));
    let kept = Certificate::decode(
        &teacher
            .a()
            .store()
            .meta("net.certificate")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(kept, renewed, "not re-certified without the role yet");
    server.shutdown().await;
}

/// A certificate near its end is shown (status, the FFI's sync state) with what to do; none
/// is shown while it has time left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_expiry_is_shown_with_what_to_do() {
    let (dir, _data, server) = small_hub_served().await;
    let ticket = server
        .invite(HEAD_TEACHER, Role::HeadTeacher, now(), now() + 86_400)
        .unwrap()
        .ticket;
    let path = dir.path().join("phone.db");
    let opts = shouwang_relay::device::default_options();
    let mut archive = shouwang_relay::device::join(&path, None, &ticket, "手机", now(), &opts)
        .await
        .unwrap();
    let id = shouwang_relay::device::Identity::load(&mut archive).unwrap();
    let (expires, none) = id.certificate_warning(now());
    assert!(none.is_none());
    let (_, soon) = id.certificate_warning(expires - 3 * 86_400);
    assert!(soon.unwrap().contains("将于"));
    let (_, past) = id.certificate_warning(expires + 1);
    assert!(past.unwrap().contains("已于"));
    server.shutdown().await;
}

/// A phone connected live when the office revokes it: the hub's school watcher wakes its
/// conversation, which ends with `Revoked`; the phone wipes its store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_connection_of_a_revoked_phone_is_closed_and_the_phone_wiped() {
    use shouwang_relay::device;
    let (dir, data, server) = small_hub_served().await;
    let joined = JoinedPhone::join(&server, dir.path(), LOVE_MOTHER, Role::LoveMother).await;
    let device_id = joined.device();
    let JoinedPhone {
        path,
        archive,
        identity: id,
        node,
    } = joined;
    let live = tokio::spawn(async move {
        let r = device::sync_hub_live(&node, &id, archive, &device::default_options(), None).await;
        node.shutdown().await;
        r
    });
    // Connected and caught up (the hub's record of the sync says so).
    for _ in 0..100 {
        let synced = data
            .open_archive()
            .unwrap()
            .devices()
            .unwrap()
            .into_iter()
            .any(|d| d.id == device_id.as_str() && d.last_sync.is_some());
        if synced {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let revoked_at = std::time::Instant::now();
    data.open_archive()
        .unwrap()
        .revoke_device(device_id.as_str())
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), live)
        .await
        .expect("the live connection ends")
        .unwrap();
    eprintln!(
        "live connection ended {:.0} ms after the revocation",
        revoked_at.elapsed().as_secs_f64() * 1000.0
    );
    let err = ended.unwrap_err().to_string();
    assert!(err.contains("已被学校停用"), "{err}");
    assert!(!path.exists(), "the store was not wiped");
    server.shutdown().await;
}

/// The hub takes at most a day's quota of change bytes from one member: the rest waits (it is
/// deferred, not refused), and arrives once the quota allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_changes_over_the_daily_quota_wait() {
    let (dir, data, server) =
        small_hub_served_with(|config| config.daily_change_bytes = 1024 * 1024).await;
    let mut teacher = Phone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    teacher.sync(&server).await;
    server.shutdown().await;
    // Incompressible notes (automerge would deflate a repeated one to nothing).
    let mut x: u32 = 7;
    let mut note = || -> String {
        (0..3000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from_u32(0x4e00 + (x >> 16) % 0x5000).unwrap()
            })
            .collect()
    };
    for day in 1..=12 {
        // Most in the care file, some in the private part: both wait on the quota, and
        // neither's waiting may restart the other's for as long as the sync runs.
        let kind = if day % 4 == 0 {
            "心理辅导记录"
        } else {
            "家访"
        };
        teacher
            .a()
            .add_record(&RecordInput {
                kind: kind.into(),
                child: Some("王小雨".into()),
                class: None,
                date: format!("2026-11-{day:02}"),
                fields: vec![("notes".into(), note())],
            })
            .unwrap();
    }
    // A quota of 40 KB today: part of the week waits.
    let mut config = ServerConfig::loopback(dir.path().join("hub"));
    config.daily_change_bytes = 40 * 1024;
    let server = Server::start(config).await.unwrap();
    let progress = tokio::time::timeout(Duration::from_secs(60), teacher.sync(&server))
        .await
        .expect("a sync over the quota never ended");
    let on_hub = || {
        data.open_archive()
            .unwrap()
            .child_file_for("王小雨", Some("核对"))
            .unwrap()
            .records
            .len()
    };
    let taken = on_hub();
    assert!(taken > 0 && taken < 12, "{taken} of 12 records taken");
    let frames = progress.frames_received + progress.frames_sent;
    assert!(
        frames < 60,
        "{frames} frames for a sync that waits: {progress:?}"
    );
    let hub_peer = server.hub_addr().id.to_string();
    let status = teacher.a().sync_status(&hub_peer).unwrap();
    assert!(
        !status.pending.is_empty() && status.refused.is_empty(),
        "{status:?}"
    );
    server.shutdown().await;
    // The quota allows it (a new day, here a larger quota): the rest arrives.
    let server = Server::start(ServerConfig::loopback(dir.path().join("hub")))
        .await
        .unwrap();
    teacher.sync(&server).await;
    assert_eq!(on_hub(), 12);
    server.shutdown().await;
}

/// The school's built-in relay carries traffic only for the hub and enrolled, unrevoked
/// devices; while an invite is open, a device enrolling may use it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_serves_only_enrolled_devices() {
    let (_dir, _data, server) = small_hub_served().await;
    let relay = server.relay_url().unwrap().clone();
    let teacher = Phone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    let wait = Duration::from_secs(3);
    assert!(teacher.node.wait_for_relay(wait).await, "an enrolled phone");
    let stranger =
        Node::bind(NodeConfig::loopback(SecretKey::generate()).with_relay(relay.clone()))
            .await
            .unwrap();
    assert!(
        !stranger.wait_for_relay(wait).await,
        "a stranger was served"
    );
    stranger.shutdown().await;
    // An open invite: whoever holds it may need the relay to enroll.
    server
        .invite(LOVE_MOTHER, Role::LoveMother, now(), now() + 86_400)
        .unwrap();
    let newcomer = Node::bind(NodeConfig::loopback(SecretKey::generate()).with_relay(relay))
        .await
        .unwrap();
    assert!(newcomer.wait_for_relay(wait).await, "an enrolling phone");
    newcomer.shutdown().await;
    server.shutdown().await;
}

/// A phone that has caught up and sends its last frame (an `Idle`) again and again, as a
/// modified app can for as long as its connection lasts, is answered without the hub writing
/// `hub.db` for each frame (its record of the sync was written once, when the exchange ended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_phone_repeating_its_last_frame_costs_the_hub_no_writes() {
    use shouwang_relay::server::{HubFactory, HubState};
    use shouwang_relay::syncing::DeviceSync;
    use shouwang_relay::transport::{Conversation, ConversationFactory};

    let (dir, data, server) = small_hub_served().await;
    let hub_peer = server.hub_addr().id.to_string();
    let mut teacher = Phone::enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    server.shutdown().await;
    // The hub's conversation with her phone, driven frame by frame (no network: every frame
    // is one the hub would have received).
    let state = HubState::open(&ServerConfig::loopback(dir.path().join("hub"))).unwrap();
    let mut hub = HubFactory::new(state).start(teacher.node.id()).unwrap();
    let archive = teacher.archive.take().unwrap();
    let mut phone = DeviceSync::new(archive, &teacher.cert, hub_peer, false);
    let mut to_hub = phone.opening().unwrap().frames;
    let mut last = Vec::new();
    for _ in 0..20 {
        let mut to_phone = Vec::new();
        for f in to_hub.drain(..) {
            to_phone.extend(hub.on_frame(&f).unwrap().frames);
            last = f;
        }
        for f in to_phone {
            to_hub.extend(phone.on_frame(&f).unwrap().frames);
        }
        if to_hub.is_empty() {
            break;
        }
    }
    assert!(phone.caught_up(), "the sync did not end");
    let mut watcher = data.open_archive().unwrap();
    let version = |a: &mut Archive| -> i64 {
        a.store()
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .unwrap()
    };
    let before = version(&mut watcher);
    for _ in 0..50 {
        hub.on_frame(&last).unwrap();
    }
    assert_eq!(
        version(&mut watcher),
        before,
        "the hub wrote its store for frames that changed nothing"
    );
}
