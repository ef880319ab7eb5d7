//! Trust: every change is judged where it arrives. "A modified app" (`shouwang_tests::attack`)
//! crafts changes below the API; each story sends them over a path that merges changes
//! (bundle import, device-to-device sessions over real stores) and checks they are refused,
//! never merged, never passed on, that the sender is told, and that honest devices still
//! converge. The real hub is in `relay/tests/trust.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::Error;
use shouwang_core::doc::DocId;
use shouwang_core::ids::ChildId;
use shouwang_core::roles::Role;
use shouwang_core::store::Sender;
use shouwang_tests::attack::{self, holds, quarantined};
use shouwang_tests::fixtures::*;

/// The 班主任 and the 爱心妈妈 of CHILDREN[0], each on a device, with one 家访 by the 班主任
/// that everyone has.
struct School {
    admin: Device,
    teacher: Device,
    mother: Device,
    child: ChildId,
    visit: String,
}

fn school_with_a_visit() -> School {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let mut mother = join(&mut admin, LOVE_MOTHER);
    let child = teacher.archive.find_child(CHILDREN[0].1).unwrap();
    let visit = teacher.record(
        "家访",
        CHILDREN[0].1,
        "2026-11-20",
        &[("notes", "奶奶在家")],
    );
    sync(&mut teacher, &mut admin);
    sync(&mut mother, &mut admin);
    School {
        admin,
        teacher,
        mother,
        child,
        visit,
    }
}

/// `me`'s side of a direct session with `other`, as `relay::peer` makes it: what both may see,
/// and only what `other`'s own device made.
fn peer(me: &mut Device, other: &mut Device) -> shouwang_core::sync::Session {
    // The peer as this device knows it (its certificate names the member; the roles are the
    // ones this device's school document gives).
    let them = me
        .archive
        .find_member(other.archive.me_id().as_str())
        .unwrap();
    let device = other.archive.device().clone();
    me.archive
        .peer_session(device.as_str(), &them)
        .unwrap()
        .with_sender(Sender::Device {
            device,
            roles: Some(them.roles.clone()),
        })
}

/// `a` and `b` meet and sync directly until neither has anything to send; `a`'s session and
/// `b`'s after it.
fn meet(
    a: &mut Device,
    b: &mut Device,
) -> (shouwang_core::sync::Session, shouwang_core::sync::Session) {
    let a_side = peer(a, b);
    let b_side = peer(b, a);
    attack::pump(&mut a.archive, a_side, &mut b.archive, b_side)
}

/// The attacks a 爱心妈妈's modified app makes, each with the document it lands in.
type Attack = fn(&mut School) -> (DocId, automerge::ChangeHash);

fn attacks() -> Vec<(&'static str, Attack)> {
    vec![
        ("self-granted 领导组", |s| {
            (
                DocId::School,
                attack::self_grant(&mut s.mother.archive, "leadership"),
            )
        }),
        ("self-made pairing", |s| {
            let other = s.admin.archive.find_child(CHILDREN[3].1).unwrap();
            (
                DocId::School,
                attack::self_pair(&mut s.mother.archive, &other),
            )
        }),
        ("class move by a carer", |s| {
            let c = s.child.clone();
            (
                DocId::Child(c.clone()),
                attack::move_class(&mut s.mother.archive, &c, "k-other"),
            )
        }),
        ("editing the 班主任's record", |s| {
            let (c, v) = (s.child.clone(), s.visit.clone());
            (
                DocId::Child(c.clone()),
                attack::edit_record(&mut s.mother.archive, &c, &v),
            )
        }),
        ("voiding the 班主任's record under his name", |s| {
            let (c, v) = (s.child.clone(), s.visit.clone());
            let him = s.teacher.archive.me_id().to_string();
            (
                DocId::Child(c.clone()),
                attack::void_as(&mut s.mother.archive, &c, &v, &him),
            )
        }),
        ("voiding the 班主任's record as herself", |s| {
            let (c, v) = (s.child.clone(), s.visit.clone());
            let her = s.mother.archive.me_id().to_string();
            (
                DocId::Child(c.clone()),
                attack::void_as(&mut s.mother.archive, &c, &v, &her),
            )
        }),
        ("her own 谈心 under a restored copy's actor", |s| {
            let c = s.child.clone();
            (
                DocId::Child(c.clone()),
                attack::under_an_epoch(&mut s.mother.archive, &c),
            )
        }),
        ("an unregistered actor", |s| {
            let c = s.child.clone();
            let her = s.mother.archive.me_id().to_string();
            (
                DocId::Child(c.clone()),
                attack::as_actor(
                    &mut s.mother.archive,
                    &c,
                    automerge::ActorId::random(),
                    &her,
                    "love_mother",
                ),
            )
        }),
        ("a write into the private part", |s| {
            let c = s.child.clone();
            (
                DocId::Private(c.clone()),
                attack::write_private(&mut s.mother.archive, &c, "34052120170305002X"),
            )
        }),
        ("a forged school secret", |s| {
            (DocId::Keys, attack::forge_secret(&mut s.mother.archive))
        }),
        ("a 10 MB push into school", |s| {
            (
                DocId::School,
                attack::flood_school(&mut s.mother.archive, 10 << 20),
            )
        }),
    ]
}

/// 1b. By bundle: a file whose documents hold dense changes (each a hundred bytes that
///     automerge must expand into ninety thousand operations). Its documents share one
///     allowance, so the file is refused whole before any is read, and nothing changes.
#[test]
fn story_1b_a_file_of_dense_documents_is_refused_before_it_is_read() {
    use automerge::transaction::Transactable;

    let mut s = school_with_a_visit();
    let docs: Vec<DocId> = s.mother.archive.store().doc_ids().unwrap();
    for doc in docs.iter().take(3) {
        attack::forge(&mut s.mother.archive, doc, None, |tx| {
            let list = tx.put_object(automerge::ROOT, "x", automerge::ObjType::List)?;
            tx.splice(
                &list,
                0,
                0,
                std::iter::repeat_n(automerge::ScalarValue::Null, 90_000),
            )
        });
    }
    for doc in docs.iter().take(3) {
        let saved = s
            .mother
            .archive
            .store()
            .doc(doc)
            .unwrap()
            .unwrap()
            .save_nocompress();
        assert!(
            shouwang_core::doc::bounds::check(&saved).is_ok(),
            "each alone passes"
        );
    }
    let file = s.mother.export_file("dense");
    let before = s.admin.archive.store().all_heads().unwrap();
    let err = s
        .admin
        .archive
        .import_bundle(&std::fs::read(&file).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("远超其大小"), "{err}");
    assert_eq!(s.admin.archive.store().all_heads().unwrap(), before);
    assert_eq!(quarantined(&mut s.admin.archive), 0, "nothing was read");
}

/// 1c. By bundle: a file listing one document many times. An honest file lists each document
///     once; every copy would be merged again, each with its own share of the allowance the
///     file's documents get beyond their bytes, so a small file of repeated dense copies could
///     make the importer build hundreds of millions of operations (the network's `Changes`
///     frame refuses a repeat already, story 7c). The file is refused whole before any copy is
///     read, in Chinese, and nothing changes.
#[test]
fn story_1c_a_file_listing_a_document_twice_is_refused() {
    use shouwang_core::bundle::seal::{self, Lock};

    let mut s = school_with_a_visit();
    let file = s.mother.archive.export_bundle(None, None).unwrap();
    let mut bundle = s.mother.archive.open_bundle(&file).unwrap();
    let first = bundle.entries[0].clone();
    bundle.entries.extend(std::iter::repeat_n(first, 50));
    let office = s.admin.archive.device().clone();
    let office_key = s
        .admin
        .archive
        .school()
        .unwrap()
        .devices
        .iter()
        .find(|d| d.id == office)
        .and_then(|d| d.public_key())
        .unwrap();
    let secret = s.mother.archive.device_secret().unwrap();
    let repeated = seal::seal(&bundle, &secret, None, Lock::Devices(&[office_key])).unwrap();
    let before = s.admin.archive.store().all_heads().unwrap();
    let err = s.admin.archive.import_bundle(&repeated).unwrap_err();
    assert!(err.to_string().contains("重复"), "{err}");
    assert_eq!(s.admin.archive.store().all_heads().unwrap(), before);
}

/// 1. By bundle: the office imports the 爱心妈妈's file. Each forged change is refused and
///    quarantined, nothing of it is merged, the import says so, and the office and the 班主任
///    still converge.
#[test]
fn story_1_every_attack_by_bundle_is_refused_at_the_office() {
    for (name, attack) in attacks() {
        let mut s = school_with_a_visit();
        let roles_before = s.admin.archive.find_member(LOVE_MOTHER).unwrap().roles;
        let (doc, hash) = attack(&mut s);
        let file = s.mother.export_file("forged");
        let report = s.admin.import_file(&file);
        assert!(report.refused >= 1, "{name}: {report:?}");
        assert!(report.refused_reason.is_some(), "{name}");
        assert!(!holds(&mut s.admin.archive, &doc, &hash), "{name}: merged");
        assert_eq!(quarantined(&mut s.admin.archive), 1, "{name}");
        assert_eq!(
            s.admin.archive.find_member(LOVE_MOTHER).unwrap().roles,
            roles_before,
            "{name}"
        );
        // Honest devices converge, and the forged change is never passed on.
        s.teacher.record(
            "谈心",
            CHILDREN[0].1,
            "2026-11-21",
            &[("notes", "按时完成作业")],
        );
        sync(&mut s.teacher, &mut s.admin);
        sync(&mut s.teacher, &mut s.admin);
        assert!(
            !holds(&mut s.teacher.archive, &doc, &hash),
            "{name}: passed on"
        );
        let shared = |d: &mut Device| {
            heads(d)
                .into_iter()
                .filter(|(k, _)| k.starts_with("child/") && !k.ends_with("/private"))
                .collect::<Vec<_>>()
        };
        assert_eq!(shared(&mut s.teacher), shared(&mut s.admin), "{name}");
        // Importing it again refuses it again without a second quarantine row for it. (Her
        // access log, which recorded the export under the forged school state, may now be
        // held too: it depends on the refused change.)
        let again = s.admin.import_file(&file);
        assert!(again.refused >= 1, "{name}");
        let rows = s.admin.archive.quarantined().unwrap();
        let mut docs: Vec<_> = rows.iter().map(|q| q.doc.clone()).collect();
        docs.sort();
        docs.dedup();
        assert_eq!(docs.len(), rows.len(), "{name}: {rows:?}");
        assert_eq!(
            rows.iter().filter(|q| !q.doc.contains("查阅记录")).count(),
            1,
            "{name}: {rows:?}"
        );
    }
}

/// 2. Device to device (the sessions `relay::peer` drives, over real stores): the 班主任's
///    device refuses each forged change, tells the 爱心妈妈's device, and the exchange still
///    ends; her device lists the refusal and does not offer it again.
#[test]
fn story_2_every_attack_between_devices_is_refused_and_the_sender_is_told() {
    for (name, attack) in attacks() {
        let mut s = school_with_a_visit();
        let (doc, hash) = attack(&mut s);
        let teacher_id = s.teacher.archive.device().clone();
        let (ts, ms) = meet(&mut s.teacher, &mut s.mother);
        assert!(
            !holds(&mut s.teacher.archive, &doc, &hash),
            "{name}: merged"
        );
        // A change of her own device that the teacher judged is refused and listed on hers;
        // one under another actor is not even judged from her (deferred: it must come from
        // its own device); either way both sides leave the document out. (A class move or a
        // private part takes the file out of what she shares with the 班主任 in her own eyes,
        // so her device never offers it at all.)
        let status = s.mother.archive.sync_status(teacher_id.as_str()).unwrap();
        let judged = ts.refused_here() > 0;
        let offered = judged || name == "an unregistered actor";
        assert_eq!(!status.refused.is_empty(), judged, "{name}: {status:?}");
        if offered {
            assert!(ts.held().contains(&doc), "{name}");
            assert!(ms.held().contains(&doc), "{name}: the sender is not told");
        }
        assert!(
            offered
                || [
                    "class move by a carer",
                    "a write into the private part",
                    "a forged school secret"
                ]
                .contains(&name),
            "{name}"
        );
        // The next exchange does not offer a refused change again: both sides leave the
        // document out at once. (A deferred one is offered again: it may be judged later.)
        let (ts, ms) = meet(&mut s.teacher, &mut s.mother);
        assert!(ts.is_caught_up() && ms.is_caught_up(), "{name}");
        if judged {
            assert_eq!(ts.progress().frames_received, 1, "{name}: offered again");
        }
        assert!(!holds(&mut s.teacher.archive, &doc, &hash), "{name}");
    }
}

/// 3. A change under another device's actor (a stolen actor) handed over by a device that is
///    not that device is not taken from it: it is deferred, so the real owner's next change
///    never clashes with it.
#[test]
fn story_3_a_stolen_actor_is_not_taken_from_another_device() {
    let mut s = school_with_a_visit();
    let teacher_actor = attack::actor_of(&s.teacher.archive);
    let his_id = s.teacher.archive.me_id().to_string();
    let c = s.child.clone();
    let hash = attack::as_actor(
        &mut s.mother.archive,
        &c,
        teacher_actor,
        &his_id,
        "head_teacher",
    );
    meet(&mut s.teacher, &mut s.mother);
    assert!(!holds(
        &mut s.teacher.archive,
        &DocId::Child(c.clone()),
        &hash
    ));
    // The teacher's own next record is unaffected (no duplicate sequence number).
    s.teacher
        .record("家访", CHILDREN[0].1, "2026-11-22", &[("notes", "第二次")]);
    sync(&mut s.teacher, &mut s.admin);
    assert_eq!(
        s.admin.file(CHILDREN[0].1).records.len(),
        s.teacher.file(CHILDREN[0].1).records.len()
    );
}

/// 3b. The same stolen actor in a file the 爱心妈妈's device signs: the office takes from her
///     file only what her own device made, so the forged record is not merged (the import
///     counts it as not taken), and the 班主任's next change still reaches the office.
#[test]
fn story_3b_a_stolen_actor_in_a_signed_file_is_not_taken() {
    let mut s = school_with_a_visit();
    let teacher_actor = attack::actor_of(&s.teacher.archive);
    let his_id = s.teacher.archive.me_id().to_string();
    let c = s.child.clone();
    let hash = attack::as_actor(
        &mut s.mother.archive,
        &c,
        teacher_actor,
        &his_id,
        "head_teacher",
    );
    let file = s.mother.export_file("forged");
    let report = s.admin.import_file(&file);
    assert!(report.refused >= 1, "{report:?}");
    assert!(!holds(
        &mut s.admin.archive,
        &DocId::Child(c.clone()),
        &hash
    ));
    let on_office = s.admin.file(CHILDREN[0].1);
    s.teacher
        .record("家访", CHILDREN[0].1, "2026-11-22", &[("notes", "第二次")]);
    sync(&mut s.teacher, &mut s.admin);
    assert_eq!(
        s.admin.file(CHILDREN[0].1).records.len(),
        on_office.records.len() + 1
    );
    assert_eq!(
        s.admin.file(CHILDREN[0].1).records.len(),
        s.teacher.file(CHILDREN[0].1).records.len()
    );
}

/// 4. What honest members do is accepted on arrival, row by row of the rules table: a 班主任's
///    record, edit and void of his own; an administrator voiding it; the 爱心妈妈's talk; the
///    archivist's class move; the 班主任 filling in the private part.
#[test]
fn story_4_honest_writes_are_accepted_on_every_device() {
    let mut s = school_with_a_visit();
    s.teacher
        .archive
        .edit_record(&s.visit, None, &kv(&[("notes", "奶奶在家，孩子在写作业")]))
        .unwrap();
    s.teacher
        .archive
        .edit_child(
            CHILDREN[0].1,
            "identity",
            &kv(&[("id_card", "34052120170305002X")]),
        )
        .unwrap();
    s.mother
        .record("谈心", CHILDREN[0].1, "2026-11-21", &[("notes", "想妈妈")]);
    sync(&mut s.teacher, &mut s.admin);
    sync(&mut s.mother, &mut s.admin);
    s.admin.archive.void_record(&s.visit, "重复录入").unwrap();
    sync(&mut s.teacher, &mut s.admin);
    sync(&mut s.mother, &mut s.admin);
    for d in [&mut s.admin, &mut s.teacher, &mut s.mother] {
        assert_eq!(quarantined(&mut d.archive), 0, "{}", d.name);
        let f = d.file(CHILDREN[0].1);
        assert_eq!(f.records.len(), 2, "{}", d.name);
        assert!(f.records.iter().any(|r| r.void.is_some()), "{}", d.name);
    }
}

/// 5. A refused document does not stop the others: the office refuses the 爱心妈妈's forged
///    change to a child's file, and the school document (a new member) still reaches her in
///    the same exchange.
#[test]
fn story_5_a_refused_document_does_not_stop_the_others() {
    let mut s = school_with_a_visit();
    let c = s.child.clone();
    attack::move_class(&mut s.mother.archive, &c, "k-other");
    s.admin
        .archive
        .add_member("韩老师", &[Role::SubjectTeacher], None, None)
        .unwrap();
    let (office, phone) = meet(&mut s.admin, &mut s.mother);
    assert!(office.is_caught_up() && phone.is_caught_up());
    assert!(office.held().contains(&DocId::Child(c)));
    assert!(s.mother.archive.find_member("韩老师").is_ok());
}

/// 5c. A revoked phone's own file (the 爱心妈妈 lost it) is refused at the office whole, and
///     the office is told that the school revoked that device: syncing would not help, as
///     the message for a device the office has not heard of says.
#[test]
fn story_5c_a_revoked_phone_s_file_is_refused_as_revoked() {
    let mut s = school_with_a_visit();
    let device = s.mother.archive.device().as_str().to_owned();
    s.mother.record(
        "谈心",
        CHILDREN[0].1,
        "2026-11-23",
        &[("notes", "丢了手机之后写的")],
    );
    let file = s.mother.export_file("lost");
    s.admin.archive.revoke_device(&device).unwrap();
    let before = s.admin.archive.store().all_heads().unwrap();
    let err = s
        .admin
        .archive
        .import_bundle(&std::fs::read(&file).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("已被学校停用"), "{err}");
    assert!(!err.contains("同步"), "{err}");
    assert_eq!(s.admin.archive.store().all_heads().unwrap(), before);
}

/// 5b. A lost phone's work carried by an administrator's phone: the office revokes the
///     爱心妈妈's phone, which meanwhile meets the archivist's phone (that has not heard of the
///     revocation) and hands it a 谈心 written after. The archivist's phone relays everyone's
///     changes, so the office takes the 谈心 from it, and lists it for review with who handed
///     it on, as it does when any other member's phone carries it.
#[test]
fn story_5b_a_revoked_phone_s_work_carried_by_an_administrator_is_listed() {
    let mut s = school_with_a_visit();
    let mut archivist = join(&mut s.admin, "晁月静");
    let mother_device = s.mother.archive.device().as_str().to_owned();
    s.admin.archive.revoke_device(&mother_device).unwrap();
    s.mother.record(
        "谈心",
        CHILDREN[0].1,
        "2026-11-23",
        &[("notes", "丢了手机之后写的")],
    );
    meet(&mut s.mother, &mut archivist);
    assert!(
        archivist
            .file(CHILDREN[0].1)
            .records
            .iter()
            .any(|r| r.fields.iter().any(|f| f.value == "丢了手机之后写的")),
        "the archivist's phone took it"
    );
    assert!(s.admin.archive.relayed_from_revoked().unwrap().is_empty());
    sync(&mut archivist, &mut s.admin);
    let relayed = s.admin.archive.relayed_from_revoked().unwrap();
    assert!(!relayed.is_empty(), "taken unlisted");
    assert!(
        relayed.iter().all(|r| r.member == LOVE_MOTHER),
        "{relayed:?}"
    );
    assert!(
        relayed.iter().any(|r| r.via_member == "晁月静"),
        "{relayed:?}"
    );
}

/// 6. A member whose standing shrank while she was offline: the office gives the class to a new
///    班主任 and ends the 爱心妈妈's pairing while both phones are away. Offline, the old
///    班主任 corrects a child's 身份证号 and records a 家访, and the 爱心妈妈 records a 谈心:
///    each declares the school state they knew, where it was theirs to write. Every replica
///    takes them (the verdict depends only on the change, so honest replicas cannot diverge),
///    and a replica that knows of the change of standing lists them for an administrator to
///    review, with what the member may no longer write. Work the member may still do (a 谈心
///    for a child she is still paired with) is not listed.
#[test]
fn story_6_writes_made_after_losing_standing_are_listed_for_review() {
    let mut s = school_with_a_visit();
    s.admin
        .archive
        .add_member("韩老师", &[Role::HeadTeacher], None, None)
        .unwrap();
    s.admin.archive.set_class_head(CLASS, "韩老师").unwrap();
    s.admin
        .archive
        .end_pairing(LOVE_MOTHER, CHILDREN[0].1)
        .unwrap();
    s.admin
        .archive
        .pair(LOVE_MOTHER, CHILDREN[3].1, None)
        .unwrap();
    // Offline, each phone still holds the school as it was.
    s.teacher
        .archive
        .edit_child(
            CHILDREN[1].1,
            "identity",
            &kv(&[("id_card", "34052120170305002X")]),
        )
        .unwrap();
    s.teacher.record(
        "家访",
        CHILDREN[1].1,
        "2026-11-22",
        &[("notes", "爷爷在家")],
    );
    s.mother
        .record("谈心", CHILDREN[0].1, "2026-11-22", &[("notes", "想爸爸")]);
    sync(&mut s.teacher, &mut s.admin);
    sync(&mut s.mother, &mut s.admin);
    // Taken everywhere: nothing refused, the office holds all three.
    for d in [&mut s.admin, &mut s.teacher, &mut s.mother] {
        assert_eq!(quarantined(&mut d.archive), 0, "{}", d.name);
    }
    let file = s.admin.file(CHILDREN[1].1);
    assert!(
        file.records
            .iter()
            .any(|r| r.meta.happened_on == "2026-11-22")
    );
    assert_eq!(s.admin.file(CHILDREN[0].1).records.len(), 2);
    // Listed at the office, by member, with what she may no longer write.
    let review = s.admin.archive.outdated_standing().unwrap();
    let by = |who: &str| review.iter().filter(|r| r.member == who).count();
    assert!(by(HEAD_TEACHER) >= 2, "{review:#?}");
    assert_eq!(by(LOVE_MOTHER), 1, "{review:#?}");
    assert!(review.iter().all(|r| !r.reason.is_empty()), "{review:#?}");
    // The 爱心妈妈's new pairing is hers: her 谈心 there is not listed.
    s.mother.record(
        "谈心",
        CHILDREN[3].1,
        "2026-11-23",
        &[("notes", "作业写完了")],
    );
    sync(&mut s.mother, &mut s.admin);
    assert_eq!(
        s.admin.archive.outdated_standing().unwrap().len(),
        review.len()
    );
}

mod property {
    //! Random honest and malicious writers exchanging bundles in random orders: the honest
    //! replicas always converge and never hold a refused change.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        /// An honest record by the teacher (0) or the 爱心妈妈 (1).
        Honest { who: usize, day: u32 },
        /// One of the attacks, by the 爱心妈妈's modified app.
        Forge { attack: usize },
        /// A bundle from one device to another (0 office, 1 teacher, 2 爱心妈妈).
        Swap { from: usize, to: usize },
        /// The office revokes the 爱心妈妈's phone (lost); she goes on writing on it.
        Revoke,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..2usize, 1..28u32).prop_map(|(who, day)| Step::Honest { who, day }),
            1 => (0..7usize).prop_map(|attack| Step::Forge { attack }),
            3 => (0..3usize, 0..3usize).prop_map(|(from, to)| Step::Swap { from, to }),
            1 => Just(Step::Revoke),
        ]
    }

    fn device(s: &mut School, i: usize) -> &mut Device {
        match i {
            0 => &mut s.admin,
            1 => &mut s.teacher,
            _ => &mut s.mother,
        }
    }

    /// A bundle from `from` to `to`. Once the phone is revoked, a device that knows it refuses
    /// the phone's bundle whole, and no longer seals bundles for it; neither changes anything.
    fn swap(s: &mut School, from: usize, to: usize, revoked: bool) {
        if from == to {
            return;
        }
        let receiver = device(s, to).archive.me_id().clone();
        let file = device(s, from).export_for("swap", receiver.as_str());
        let bytes = std::fs::read(&file).unwrap();
        let before = heads(device(s, to));
        // A 爱心妈妈's device is not handed what she may not hold (scope, not under test).
        match device(s, to).archive.import_bundle(&bytes) {
            Ok(_) => {}
            // Refused from the revoked phone, and not sealed for it any more (a sender that
            // knows of the revocation seals only to the member's devices in good standing).
            Err(Error::NotPermitted(m))
                if revoked
                    && (from == 2 && m.contains("停用")
                        || to == 2 && m.contains("不是发给本机")) =>
            {
                assert_eq!(
                    heads(device(s, to)),
                    before,
                    "a refused bundle changed the store"
                );
            }
            Err(e) => panic!("bundle {from} → {to}: {e}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: property_cases(12), ..ProptestConfig::default() })]
        #[test]
        fn honest_replicas_converge_and_never_hold_a_refused_change(
            steps in prop::collection::vec(step(), 4..24)
        ) {
            let mut s = school_with_a_visit();
            let mut forged = Vec::new();
            let mut honest = Vec::new();
            let attacks = attacks();
            let mut revoked = false;
            // Her records written on the phone after the office revoked it.
            let mut after_revocation = Vec::new();
            for st in &steps {
                match st {
                    Step::Honest { who, day } => {
                        let d = if *who == 0 { &mut s.teacher } else { &mut s.mother };
                        let kind = if *who == 0 { "家访" } else { "谈心" };
                        let date = format!("2026-11-{day:02}");
                        let id = d.record(kind, CHILDREN[0].1, &date, &[("notes", "按时")]);
                        if *who == 1 && revoked {
                            after_revocation.push(id.clone());
                        }
                        honest.push((*who, id));
                    }
                    Step::Revoke if !revoked => {
                        let device = s.mother.archive.device().as_str().to_owned();
                        s.admin.archive.revoke_device(&device).unwrap();
                        revoked = true;
                    }
                    Step::Revoke => {}
                    Step::Forge { attack } => {
                        // The 10 MB push is left to the stories: it would slow every case.
                        let (name, f) = attacks[*attack % (attacks.len() - 1)];
                        let (doc, hash) = f(&mut s);
                        forged.push((name, doc, hash));
                    }
                    Step::Swap { from, to } => swap(&mut s, *from, *to, revoked),
                }
            }
            for (from, to) in [(1, 0), (2, 0), (0, 1), (0, 2), (1, 0), (0, 1)] {
                swap(&mut s, from, to, revoked);
            }
            // Never held by an honest replica.
            for (name, doc, hash) in &forged {
                prop_assert!(!holds(&mut s.admin.archive, doc, hash), "the office holds {name} in {doc:?}");
                prop_assert!(!holds(&mut s.teacher.archive, doc, hash), "the teacher holds {name} in {doc:?}");
            }
            // The office and the teacher agree on everything they both hold.
            let (a, t) = heads_in_common(&mut s.admin, &mut s.teacher);
            prop_assert_eq!(a, t);
            // Every honest record of the teacher, and every one of hers made before her first
            // forgery in that file, reached the office.
            let office: Vec<String> = s
                .admin
                .file(CHILDREN[0].1)
                .records
                .into_iter()
                .map(|r| r.meta.id.0)
                .collect();
            for (who, id) in &honest {
                if *who == 0 {
                    prop_assert!(office.contains(id), "the teacher's {id} is missing");
                }
            }
            // What the revoked phone wrote afterwards reaches the office only handed on by the
            // teacher's phone before it learned of the revocation, and is then listed for the
            // office to review; never from the phone itself.
            if after_revocation.iter().any(|id| office.contains(id)) {
                let relayed = s.admin.archive.relayed_from_revoked().unwrap();
                prop_assert!(!relayed.is_empty(), "the revoked phone's records reached the office unlisted");
            }
        }
    }
}

/// 7. A sync message whose bloom filter a modified app broke. automerge checks the peer's
///    bloom filter (the changes it says it has) against every change it might send, with the
///    filter's own parameters: a filter of one entry and no bits made it divide by zero and
///    the session's thread panic (found by fuzzing, target `session`), and one that claims
///    4 billion probes made it reserve 16 GiB. Either is refused as damaged when it arrives,
///    in Chinese, before automerge uses it, and the store is as it was.
#[test]
fn story_7_a_sync_message_with_a_broken_bloom_filter_is_refused() {
    use automerge::sync::{BloomFilter, Have, Message as SyncMessage, MessageVersion};
    use shouwang_core::sync::{Event, Message};

    let mut s = school_with_a_visit();
    let doc = DocId::Child(s.child.clone());
    let broken: [&[u8]; 2] = [
        // one entry, 0 bits per entry, 7 probes: no bits at all
        &[1, 0, 7],
        // one entry, 10 bits per entry, u32::MAX probes, then its 2 bytes of bits
        &[1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0],
    ];
    for bloom in broken {
        let before = s.teacher.archive.store().all_heads().unwrap();
        let mut session = peer(&mut s.teacher, &mut s.mother);
        let store = s.teacher.archive.store();
        session.handle(store, Event::Start).unwrap();
        let message = SyncMessage {
            heads: Vec::new(),
            need: Vec::new(),
            have: vec![Have {
                last_sync: Vec::new(),
                bloom: BloomFilter::try_from(bloom).unwrap(),
            }],
            changes: Vec::<Vec<u8>>::new().into(),
            flags: None,
            version: MessageVersion::V1,
        };
        let frame = Message::Doc {
            doc: doc.clone(),
            payload: message.encode(),
        }
        .encode();
        let err = session.handle(store, Event::Frame(&frame)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("格式不对"), "{bloom:?}: {text}");
        assert!(
            shouwang_core::error::untranslated(&text).is_empty(),
            "{text}"
        );
        assert_eq!(store.all_heads().unwrap(), before, "{bloom:?}");
    }
}

/// 7b. A sync message whose lists claim more entries than its bytes could honestly hold.
///     automerge's decoder keeps an entry for every item a count claims: a 64 MiB body (what
///     a 2 KB compressed frame unpacks to) of empty `have` entries or empty changes made it
///     hold 1.6–2.2 GiB, enough to end the hub or a phone. A message claiming 100,000 haves
///     (automerge sends one), or 100,000 empty changes, is refused as damaged before automerge
///     decodes it, and the store is as it was.
#[test]
fn story_7b_a_sync_message_claiming_more_than_its_bytes_hold_is_refused() {
    use shouwang_core::sync::{Event, Message};

    let mut s = school_with_a_visit();
    let doc = DocId::Child(s.child.clone());
    let count = |n: u64| {
        let mut v = Vec::new();
        let mut n = n;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                v.push(b);
                return v;
            }
            v.push(b | 0x80);
        }
    };
    // type, no heads, no needs, 100,000 haves of no hashes and no filter, no changes
    let mut haves = vec![0x42, 0, 0];
    haves.extend(count(100_000));
    haves.extend(std::iter::repeat_n(0u8, 200_000));
    haves.push(0);
    // type, no heads, no needs, no haves, 100,000 empty changes
    let mut changes = vec![0x42, 0, 0, 0];
    changes.extend(count(100_000));
    changes.extend(std::iter::repeat_n(0u8, 100_000));
    for (what, payload) in [("haves", haves), ("changes", changes)] {
        let before = s.teacher.archive.store().all_heads().unwrap();
        let mut session = peer(&mut s.teacher, &mut s.mother);
        let store = s.teacher.archive.store();
        session.handle(store, Event::Start).unwrap();
        let frame = Message::Doc {
            doc: doc.clone(),
            payload,
        }
        .encode();
        let err = session
            .handle(store, Event::Frame(&frame))
            .map(|_| ())
            .expect_err(what);
        let text = err.to_string();
        assert!(text.contains("格式不对"), "{what}: {text}");
        assert_eq!(store.all_heads().unwrap(), before, "{what}");
    }
}

/// 7c. A `Changes` frame that lists one document many times (an honest side lists each once):
///     every copy would be loaded, judged and merged again, so a few KB of repeats compressed
///     to nothing cost the receiver minutes. The frame is refused before anything is merged.
#[test]
fn story_7c_a_changes_frame_listing_a_document_twice_is_refused() {
    use shouwang_core::sync::{Event, Message};

    let mut s = school_with_a_visit();
    let doc = DocId::Child(s.child.clone());
    let bytes = s.mother.archive.store().doc(&doc).unwrap().unwrap().save();
    let before = s.teacher.archive.store().all_heads().unwrap();
    let mut session = peer(&mut s.teacher, &mut s.mother);
    let store = s.teacher.archive.store();
    session.handle(store, Event::Start).unwrap();
    let frame = Message::Changes(vec![(doc.clone(), bytes.clone()), (doc, bytes)]).encode();
    let err = session
        .handle(store, Event::Frame(&frame))
        .map(|_| ())
        .expect_err("a document listed twice");
    assert!(err.to_string().contains("重复"), "{err}");
    assert_eq!(store.all_heads().unwrap(), before);
}

/// The 爱心妈妈's modified app sends `hash` (in `doc`) to the 班主任's phone over a direct
/// session; returns whether the 班主任's phone took it.
fn taken_by_teacher(s: &mut School, doc: &DocId, hash: &automerge::ChangeHash) -> bool {
    meet(&mut s.teacher, &mut s.mother);
    holds(&mut s.teacher.archive, doc, hash)
}

/// The 班主任's 学习帮扶计划 for CHILDREN[0] (its record id).
fn study_plan(teacher: &mut Device) -> String {
    teacher.record(
        "学习帮扶计划",
        CHILDREN[0].1,
        "2026-11-20",
        &[
            ("subject", "数学"),
            ("schedule", "每周三"),
            ("notes", "乘法口诀"),
        ],
    )
}

/// 8. A school change under the office's actor (changes are not signed), making the 爱心妈妈
///    领导组 and marking the office's own device revoked in the same change. Judged at what it
///    depends on, the office's device is an administrator's; it must not then be taken as a
///    revoked device's change handed on, by reading the revocation it writes itself. No
///    member's device hands on another device's changes to the school document.
#[test]
fn story_8_a_forged_administrator_change_that_revokes_its_own_device_is_not_taken() {
    let mut s = school_with_a_visit();
    let office_actor = attack::actor_of(&s.admin.archive);
    let office_device = s.admin.archive.device().as_str().to_owned();
    let hash = attack::as_revoking_admin(&mut s.mother.archive, office_actor, &office_device);
    assert!(!taken_by_teacher(&mut s, &DocId::School, &hash));
    let her = s.mother.archive.me_id().to_string();
    let seen = s.teacher.archive.find_member(&her).unwrap();
    assert_eq!(seen.roles, vec![Role::LoveMother]);
    let office = s.teacher.archive.devices().unwrap();
    assert!(
        office.iter().any(|d| d.id == office_device && !d.revoked),
        "the office's device is not revoked on the 班主任's phone"
    );
}

/// 9. A 心理辅导记录 in the 班主任's name, then a second change rewriting its author, role and
///    kind to the 爱心妈妈's own. The second is refused (a record's metadata is fixed); the
///    first must be judged by what it wrote, not by the second's values merged beside it.
#[test]
fn story_9_a_record_is_judged_by_what_its_own_change_wrote() {
    let mut s = school_with_a_visit();
    let his = s.teacher.archive.me_id().to_string();
    let c = s.child.clone();
    let first = attack::record_then_reauthor(&mut s.mother.archive, &c, &his, "head_teacher");
    assert!(!taken_by_teacher(&mut s, &DocId::Child(c), &first));
    assert_eq!(
        s.teacher.file(CHILDREN[0].1).records.len(),
        1,
        "only the 班主任's own 家访"
    );
}

/// A record `who`'s modified app makes in `child`'s shared file as `kind`, its own in every
/// other respect (author, role, device), naming `named` as its child; `void` and `fields`
/// say whether it makes those maps, as every record is written with them.
fn record_shaped(
    who: &mut Device,
    child: &ChildId,
    kind: &str,
    role: &str,
    named: &ChildId,
    void: bool,
) -> automerge::ChangeHash {
    let id = shouwang_core::ids::RecordId::new(1_764_000_000_000);
    record_at_id(who, child, id.as_str(), kind, role, named, void)
}

/// [`record_shaped`] under the record id `id`.
fn record_at_id(
    who: &mut Device,
    child: &ChildId,
    id: &str,
    kind: &str,
    role: &str,
    named: &ChildId,
    void: bool,
) -> automerge::ChangeHash {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};
    let (me, device) = (
        who.archive.me_id().to_string(),
        who.archive.device().to_string(),
    );
    let (kind, role, named) = (kind.to_owned(), role.to_owned(), named.to_string());
    attack::forge(&mut who.archive, &DocId::Child(child.clone()), None, |tx| {
        let records = tx.get(ROOT, "records")?.unwrap().1;
        let r = tx.put_object(&records, id, ObjType::Map)?;
        for (k, v) in [
            ("kind", kind.as_str()),
            ("happened_on", "2026-11-21"),
            ("author", me.as_str()),
            ("author_role", role.as_str()),
            ("device", device.as_str()),
            ("child", named.as_str()),
        ] {
            tx.put(&r, k, v)?;
        }
        tx.put(&r, "written_at", 1_764_000_000_000_i64)?;
        tx.put_object(&r, "fields", ObjType::Map)?;
        if void {
            tx.put_object(&r, "void", ObjType::Map)?;
        }
        Ok(())
    })
}

/// 9b. A record of a kind this version does not know (a newer app's) is taken on what every
///     record needs, and that includes naming the child whose file it is in: the 爱心妈妈's
///     modified app files one in her child's file under another child's name. Refused; the
///     same record naming her own child is taken.
#[test]
fn story_9b_a_record_of_an_unknown_kind_names_the_child_of_its_file() {
    let mut s = school_with_a_visit();
    let (c, other) = (
        s.child.clone(),
        s.teacher.archive.find_child(CHILDREN[1].1).unwrap(),
    );
    // The honest one first: a change resting on a refused one is not taken either.
    let honest = record_shaped(&mut s.mother, &c, "bus_register", "love_mother", &c, true);
    assert!(taken_by_teacher(&mut s, &DocId::Child(c.clone()), &honest));
    let misfiled = record_shaped(
        &mut s.mother,
        &c,
        "bus_register",
        "love_mother",
        &other,
        true,
    );
    assert!(!taken_by_teacher(&mut s, &DocId::Child(c), &misfiled));
}

/// 9c. A record made without its `void` map could never be voided (nobody may add the map
///     afterwards, and voiding writes into it): a 班主任's modified app files 家访 that way, to
///     count in the registers for good. Refused where it arrives; the same record with its
///     `void` is taken.
#[test]
fn story_9c_a_record_made_without_its_void_is_refused() {
    let mut s = school_with_a_visit();
    let c = s.child.clone();
    let whole = record_shaped(&mut s.teacher, &c, "home_visit", "head_teacher", &c, true);
    sync(&mut s.teacher, &mut s.admin);
    assert!(holds(
        &mut s.admin.archive,
        &DocId::Child(c.clone()),
        &whole
    ));
    let unvoidable = record_shaped(&mut s.teacher, &c, "home_visit", "head_teacher", &c, false);
    sync(&mut s.teacher, &mut s.admin);
    assert!(!holds(&mut s.admin.archive, &DocId::Child(c), &unvoidable));
}

/// 10. Maps nested 20 deep under the guardian section, which the 爱心妈妈 may write: no layout
///     is that deep (`trust::paths::MAX_DEPTH`), and a chain thousands deep would make every
///     side that locates or walks it quadratic or recursive without bound. Refused.
#[test]
fn story_10_objects_nested_deeper_than_any_layout_are_refused() {
    let mut s = school_with_a_visit();
    let c = s.child.clone();
    // Within the bound the same write is the section's business (taken): the bound is what
    // refuses the deep one.
    let shallow = attack::nest(&mut s.mother.archive, &c, 3);
    assert!(taken_by_teacher(&mut s, &DocId::Child(c.clone()), &shallow));
    let deep = attack::nest(&mut s.mother.archive, &c, 20);
    assert!(!taken_by_teacher(&mut s, &DocId::Child(c), &deep));
}

/// 11. Refused changes count against the daily quota too. The receiving side keeps a refused
///     change's bytes for review (its quarantine), so a modified app sending changes it knows
///     will be refused would otherwise fill the hub's disk: ten 30 KB pushes into the school
///     profile, taken as the hub takes a member's changes (her device, a 64 KB daily quota).
///     What is kept stays within the quota; the rest waits on her phone (deferred).
#[test]
fn story_11_refused_changes_count_against_the_daily_quota() {
    const QUOTA: u64 = 64 * 1024;
    let mut s = school_with_a_visit();
    let mut bytes = Vec::new();
    for _ in 0..10 {
        let hash = attack::flood_school(&mut s.mother.archive, 30 * 1024);
        let doc = s
            .mother
            .archive
            .store()
            .doc(&DocId::School)
            .unwrap()
            .unwrap();
        bytes.extend(
            automerge::ReadDoc::get_change_by_hash(doc, &hash)
                .unwrap()
                .raw_bytes(),
        );
    }
    let her = s.mother.archive.me_id().clone();
    let device = s.mother.archive.device().clone();
    let admission = s
        .teacher
        .archive
        .store()
        .write(|b| {
            b.set_sender(Sender::Device {
                device,
                roles: Some(vec![Role::LoveMother]),
            });
            b.set_daily_quota(her, QUOTA);
            b.merge_bytes(&DocId::School, &bytes)
        })
        .unwrap();
    let kept: f64 = s
        .teacher
        .archive
        .store()
        .conn()
        .query_row("SELECT total(length(bytes)) FROM quarantine", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        kept > 0.0 && kept as u64 <= QUOTA,
        "kept {kept} bytes of refused changes, quota {QUOTA}: {admission:?}"
    );
    assert!(admission.deferred > 0, "{admission:?}");
}

/// 12. The office records the guardian's withdrawal of consent to the private part while the
///     班主任's phone is away; the phone, not knowing, writes the child's 身份证号. Taken (it
///     declares the consent it knew, and every replica must decide the same), and listed at
///     the office for review, with why: as a lost standing is (story 6).
#[test]
fn story_12_a_write_on_a_consent_withdrawn_meanwhile_is_listed_for_review() {
    use shouwang_core::archive::{ConsentInput, WithdrawalInput};

    let mut admin = school();
    admin.archive.require_consent().unwrap();
    admin
        .archive
        .record_consent(
            CHILDREN[0].1,
            &ConsentInput {
                guardian: "王秀英".into(),
                relation: "奶奶".into(),
                date: "2026-09-01".into(),
                covers: "basic,private".into(),
                form: "TY-2026-017".into(),
            },
        )
        .unwrap();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    admin
        .archive
        .withdraw_consent(
            CHILDREN[0].1,
            &WithdrawalInput {
                date: "2026-11-18".into(),
                by: "王秀英".into(),
                covers: "private".into(),
            },
        )
        .unwrap();
    teacher
        .archive
        .edit_child(
            CHILDREN[0].1,
            "identity",
            &kv(&[("id_card", "34052120170305002X")]),
        )
        .unwrap();
    assert!(admin.archive.outdated_standing().unwrap().is_empty());
    sync(&mut teacher, &mut admin);
    assert_eq!(quarantined(&mut admin.archive), 0);
    let review = admin.archive.outdated_standing().unwrap();
    assert!(
        review
            .iter()
            .any(|r| r.member == HEAD_TEACHER && r.reason.contains("撤回")),
        "{review:#?}"
    );
}

/// 13. The 班主任 adds a 进步档案 entry to his 学习帮扶计划; the pairing teacher, who may add
///     entries there too, writes a new map over his entry's id (with her own name in it).
///     Entries are added under new ids only: that would hide his. Refused at the office.
#[test]
fn story_13_another_carers_progress_entry_cannot_be_written_over() {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};
    use shouwang_core::doc::access::map_at;

    let mut s = school_with_a_visit();
    let plan = study_plan(&mut s.teacher);
    s.teacher
        .archive
        .add_progress(&plan, "2026-11-21", &kv(&[("notes", "乘法口诀背熟了")]))
        .unwrap();
    sync(&mut s.teacher, &mut s.admin);
    let mut helper = join(&mut s.admin, PAIRING_TEACHER);
    let her = helper.archive.me_id().to_string();
    let c = s.child.clone();
    let hash = attack::forge(&mut helper.archive, &DocId::Child(c.clone()), None, |tx| {
        let records = map_at(tx, &ROOT, "records").unwrap();
        let progress = map_at(tx, &records, plan.as_str())
            .and_then(|r| map_at(tx, &r, "progress"))
            .unwrap();
        let entry = tx.keys(&progress).next().unwrap();
        let over = tx.put_object(&progress, entry.as_str(), ObjType::Map)?;
        tx.put(&over, "author", her.as_str())?;
        tx.put(&over, "notes", "没有进步")?;
        Ok(())
    });
    let file = helper.export_for("over", s.admin.archive.me_id().as_str());
    s.admin.import_file(&file);
    assert!(!holds(&mut s.admin.archive, &DocId::Child(c), &hash));
    assert!(quarantined(&mut s.admin.archive) > 0);
}

/// 14. The office records that the child left the school (转学) while the 班主任's phone is
///     away; the phone, not knowing, records a 家访 for her. Taken, on the school state it
///     declares, and listed at the office for review.
#[test]
fn story_14_a_record_for_a_child_who_left_meanwhile_is_listed_for_review() {
    use shouwang_core::archive::LeaveInput;

    let mut s = school_with_a_visit();
    s.admin
        .archive
        .leave_child(
            CHILDREN[0].1,
            &LeaveInput {
                date: "2026-11-18".into(),
                reason: "转学".into(),
                to: Some("丁里镇中心小学".into()),
            },
        )
        .unwrap();
    s.teacher.record(
        "家访",
        CHILDREN[0].1,
        "2026-11-22",
        &[("notes", "还不知道她已经转学")],
    );
    assert!(s.admin.archive.outdated_standing().unwrap().is_empty());
    sync(&mut s.teacher, &mut s.admin);
    assert_eq!(quarantined(&mut s.admin.archive), 0);
    let review = s.admin.archive.outdated_standing().unwrap();
    assert!(
        review.iter().any(|r| r.member == HEAD_TEACHER),
        "{review:#?}"
    );
}

/// 14b. Not a modified app: a mistake in one of our own writers (here, one that deletes a
///      record, which the rules never allow). The writes that go through
///      `Batch::change_judged` are judged by the rules every other device applies before they
///      commit: the mistake is an error on the device that made it, and nothing is written.
///      Written unjudged, the same change is kept on the phone and quarantined by the office,
///      with the phone's later work on the file waiting behind it.
#[test]
fn story_14b_a_writer_s_mistake_is_refused_where_it_is_made() {
    let mut s = school_with_a_visit();
    let doc = DocId::Child(s.child.clone());
    let delete_the_visit =
        |tx: &mut automerge::transaction::Transaction<'_>| -> shouwang_core::Result<()> {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let records = tx.get(&automerge::ROOT, "records")?.unwrap().1;
            tx.delete(&records, s.visit.as_str())?;
            Ok(())
        };
    let before = s.teacher.archive.store().heads(&doc).unwrap();
    let e = s
        .teacher
        .archive
        .store()
        .write(|b| b.change_judged(&doc, false, "修改家访", delete_the_visit))
        .unwrap_err();
    assert!(e.to_string().contains("不符合学校的规则"), "{e}");
    assert_eq!(s.teacher.archive.store().heads(&doc).unwrap(), before);
    assert_eq!(
        s.teacher
            .archive
            .child_file(CHILDREN[0].1)
            .unwrap()
            .records
            .len(),
        1
    );

    s.teacher
        .archive
        .store()
        .write(|b| b.change(&doc, false, "修改家访", delete_the_visit))
        .unwrap();
    sync(&mut s.teacher, &mut s.admin);
    assert_eq!(quarantined(&mut s.admin.archive), 1);
}

/// 15. Dates a modified app makes up. A 谈心 on a date that is no date is refused. One "held"
///     on 2099-01-01 in a change made today is what no honest app of this version writes
///     (`dates::parse_past_date`), but an older release took any date, and refusing it would
///     refuse every later change of the file with it: it is taken and listed for review, and
///     her next honest 谈心 is taken too. With the phone's clock set to 2099, or to 1970, the
///     change is taken and listed by the receiver's own clock, and the 班主任's phone does not
///     take one member's dates as proof that its own clock is wrong. A 进步档案 entry dated
///     2099 is listed the same way.
#[test]
fn story_15_a_record_dated_in_the_future_is_refused_or_listed_and_misleads_no_clock() {
    let listed = |d: &mut Device, date: &str| {
        let review = d.archive.outdated_standing().unwrap();
        review.iter().any(|r| r.reason.contains(date))
    };
    let mut s = school_with_a_visit();
    let c = s.child.clone();
    let forged = attack::talk_dated(&mut s.mother.archive, &c, "下周三", None);
    assert!(!taken_by_teacher(&mut s, &DocId::Child(c), &forged));

    let mut s = school_with_a_visit();
    let c = s.child.clone();
    let forged = attack::talk_dated(&mut s.mother.archive, &c, "2099-01-01", None);
    s.mother.record(
        "谈心",
        CHILDREN[0].1,
        "2026-11-21",
        &[("notes", "说想妈妈了")],
    );
    assert!(taken_by_teacher(&mut s, &DocId::Child(c.clone()), &forged));
    assert!(listed(&mut s.teacher, "2099-01-01"));
    assert_eq!(
        s.teacher.file(CHILDREN[0].1).records.len(),
        3,
        "her honest 谈心 after it is taken too"
    );

    let mut s = school_with_a_visit();
    let c = s.child.clone();
    assert_eq!(s.teacher.archive.clock_warning().unwrap(), None);
    let in_2099 = chrono::NaiveDate::from_ymd_opt(2099, 1, 1)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    let forged = attack::talk_dated(&mut s.mother.archive, &c, "2099-01-01", Some(in_2099));
    assert!(taken_by_teacher(&mut s, &DocId::Child(c), &forged));
    let review = s.teacher.archive.outdated_standing().unwrap();
    assert!(
        review
            .iter()
            .any(|r| r.member == LOVE_MOTHER && r.reason.contains("2099-01-01")),
        "{review:#?}"
    );
    assert_eq!(
        s.teacher.archive.clock_warning().unwrap(),
        None,
        "one member's made-up date told the 班主任 his clock is wrong"
    );

    // A change stamped 1970, which bounds nothing (an honest phone whose clock reset takes the
    // date entered): taken, and listed for review by the receiver's own clock.
    let mut s = school_with_a_visit();
    let c = s.child.clone();
    let forged = attack::talk_dated(&mut s.mother.archive, &c, "2099-12-31", Some(0));
    assert!(taken_by_teacher(&mut s, &DocId::Child(c), &forged));
    let review = s.teacher.archive.outdated_standing().unwrap();
    assert!(
        review
            .iter()
            .any(|r| r.member == LOVE_MOTHER && r.reason.contains("2099-12-31")),
        "{review:#?}"
    );

    // A 进步档案 entry dated 2099 in a change made today, by the 班主任 on his own study
    // plan: taken and listed at the office like a record's date.
    let mut s = school_with_a_visit();
    let c = s.child.clone();
    let plan = study_plan(&mut s.teacher);
    sync(&mut s.teacher, &mut s.admin);
    let forged = attack::progress_dated(&mut s.teacher.archive, &c, &plan, "2099-01-01");
    s.admin.import_file(&s.teacher.export_file("forged"));
    assert!(holds(&mut s.admin.archive, &DocId::Child(c), &forged));
    assert!(listed(&mut s.admin, "2099-01-01"));
}

/// A `Doc` frame for `doc` carrying one automerge sync message of `changes` (and nothing else),
/// as a modified app would send it.
fn doc_frame(doc: DocId, changes: Vec<Vec<u8>>) -> Vec<u8> {
    use automerge::sync::{Message as SyncMessage, MessageVersion};
    let payload = SyncMessage {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: changes.into(),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode();
    shouwang_core::sync::Message::Doc { doc, payload }.encode()
}

/// 7d. A sync message of many small changes, each run-length encoded to about a hundred bytes
///     that automerge must expand into ten thousand operations. Each alone is within what its
///     size allows, but the message's changes share one allowance: twenty of them claim far
///     more than the message's bytes could honestly hold, and the message is refused before
///     automerge reads any of them, the store as it was.
#[test]
fn story_7d_a_sync_message_of_dense_changes_shares_one_allowance() {
    use shouwang_core::sync::Event;

    let mut s = school_with_a_visit();
    let doc = DocId::Child(s.child.clone());
    let actor = attack::actor_of(&s.mother.archive);
    let hers = s.mother.archive.store().doc(&doc).unwrap().unwrap().clone();
    let changes = attack::dense_changes(&hers, actor, 20, 10_000);
    for c in &changes {
        assert!(c.len() < 200, "{} bytes", c.len());
        assert!(
            shouwang_core::doc::bounds::check(c).is_ok(),
            "each alone passes"
        );
    }
    let before = s.teacher.archive.store().all_heads().unwrap();
    let mut session = peer(&mut s.teacher, &mut s.mother);
    let store = s.teacher.archive.store();
    session.handle(store, Event::Start).unwrap();
    let frame = doc_frame(doc, changes);
    let err = session
        .handle(store, Event::Frame(&frame))
        .map(|_| ())
        .expect_err("twenty dense changes in one message");
    assert!(err.to_string().contains("远超其大小"), "{err}");
    assert_eq!(store.all_heads().unwrap(), before);
    assert_eq!(quarantined(&mut s.teacher.archive), 0, "nothing was read");
}

/// 7f. A modified app sends its dense changes one message at a time, each within the floor
///     every input gets whatever its size: each alone is a fraction of a second of automerge's
///     work, and a session of them could go on all day. What every input claims is counted
///     against the member's daily quota before automerge reads it (a row as a byte, beside the
///     bytes she is kept of), so once her day's allowance is spent, the next message is
///     deferred unread (she is told why), and the store is as it was.
#[test]
fn story_7f_dense_messages_one_at_a_time_spend_the_daily_quota_before_they_are_read() {
    use shouwang_core::sync::{Event, Message, Why};

    const QUOTA: u64 = 1024 * 1024;
    const MESSAGES: usize = 12;
    let mut s = school_with_a_visit();
    let doc = DocId::Child(s.child.clone());
    let actor = attack::actor_of(&s.mother.archive);
    let her = s.mother.archive.me_id().clone();
    let hers = s.mother.archive.store().doc(&doc).unwrap().unwrap().clone();
    let changes = attack::dense_changes(&hers, actor, MESSAGES, 20_000);
    let mut refused = None;
    for (n, change) in changes.into_iter().enumerate() {
        // A session each, and the file moved on meanwhile (the 班主任 records a visit): a
        // document refused in a session is left out of the rest of it, and of later sessions
        // until it changes here.
        let date = format!("2026-11-{:02}", n + 1);
        s.teacher
            .record("家访", CHILDREN[0].1, &date, &[("notes", "奶奶在家")]);
        let mut session = peer(&mut s.teacher, &mut s.mother).with_daily_quota(her.clone(), QUOTA);
        let store = s.teacher.archive.store();
        session.handle(store, Event::Start).unwrap();
        assert!(change.len() < 200, "{} bytes", change.len());
        let frame = doc_frame(doc.clone(), vec![change]);
        let before = store.all_heads().unwrap();
        let out = session.handle(store, Event::Frame(&frame)).unwrap();
        let told = out.frames.iter().find_map(|f| match Message::decode(f) {
            Ok(Message::Refused {
                why: Why::Deferred,
                reason,
                ..
            }) if reason.contains("每日上限") => Some(reason),
            _ => None,
        });
        if told.is_some() {
            assert_eq!(store.all_heads().unwrap(), before, "deferred unread");
            refused = Some(n);
            break;
        }
    }
    let n = refused.expect("a day of dense messages is deferred once the quota is spent");
    let store = s.teacher.archive.store();
    // Twenty thousand nulls claim over a hundred thousand rows: the quota holds a few.
    assert!((2..MESSAGES - 2).contains(&n), "deferred at message {n}");
    let taken: i64 = store
        .conn()
        .query_row("SELECT total(bytes) FROM intake", [], |r| {
            r.get::<_, f64>(0)
        })
        .map(|b| b as i64)
        .unwrap();
    assert!(
        taken > 0 && taken as u64 <= QUOTA,
        "{taken} of {QUOTA} counted"
    );
}

/// 7i. Padding buys nothing: a dense change whose commit message is 256 KB of one letter (a
///     few hundred bytes once the frame is compressed) claims 800,000 rows, within eight a
///     byte of what the frame's body unpacks to. Those bytes made the rows free (a body of
///     8 MB, from a frame of a few KB, made 64 million free: gigabytes of automerge's work).
///     Only a small share of a write is free now, the rest is charged to her day before
///     automerge reads anything: with 512 KB of her day left, the message is deferred unread
///     and she is told why.
#[test]
fn story_7i_padding_does_not_make_a_dense_change_free() {
    use automerge::transaction::{CommitOptions, Transactable as _};
    use shouwang_core::sync::{Event, Message, Why};

    const QUOTA: u64 = 512 * 1024;
    let mut s = school_with_a_visit();
    let doc = DocId::Child(s.child.clone());
    let actor = attack::actor_of(&s.mother.archive);
    let her = s.mother.archive.me_id().clone();
    let hers = s.mother.archive.store().doc(&doc).unwrap().unwrap().clone();
    let mut padded = hers.fork().with_actor(actor);
    let mut tx = padded.transaction();
    let list = tx
        .put_object(automerge::ROOT, "x", automerge::ObjType::List)
        .unwrap();
    tx.splice(
        &list,
        0,
        0,
        std::iter::repeat_n(automerge::ScalarValue::Null, 150_000),
    )
    .unwrap();
    tx.commit_with(CommitOptions::default().with_message("a".repeat(256 << 10)));
    let change = padded.get_changes(&hers.get_heads())[0]
        .raw_bytes()
        .to_vec();
    let rows = shouwang_core::doc::bounds::check(&change).unwrap();
    assert!(
        rows > QUOTA + 65_536 && rows <= 8 * change.len() as u64,
        "{rows} rows in {} bytes",
        change.len()
    );
    let before = s.teacher.archive.store().all_heads().unwrap();
    let mut session = peer(&mut s.teacher, &mut s.mother).with_daily_quota(her, QUOTA);
    let store = s.teacher.archive.store();
    session.handle(store, Event::Start).unwrap();
    let frame = doc_frame(doc, vec![change]);
    assert!(frame.len() < 8192, "{} bytes on the wire", frame.len());
    let out = session.handle(store, Event::Frame(&frame)).unwrap();
    let told = out.frames.iter().any(|f| {
        matches!(Message::decode(f), Ok(Message::Refused { why: Why::Deferred, reason, .. })
            if reason.contains("每日上限"))
    });
    assert!(told, "not deferred for her day");
    assert_eq!(store.all_heads().unwrap(), before, "deferred unread");
    assert_eq!(quarantined(&mut s.teacher.archive), 0, "nothing was read");
}

/// 7g. What a message claims stays spent when its write fails: a dense change, then a second
///     change under the same actor and sequence number, which automerge refuses after building
///     the first. The session ends and nothing is merged, but the rows count against the
///     sender's day, or the next connection could do the same again for nothing.
#[test]
fn story_7g_a_failed_write_does_not_refund_what_its_input_claimed() {
    use shouwang_core::sync::Event;

    let mut s = school_with_a_visit();
    let doc = DocId::Child(s.child.clone());
    let actor = attack::actor_of(&s.mother.archive);
    let her = s.mother.archive.me_id().clone();
    let hers = s.mother.archive.store().doc(&doc).unwrap().unwrap().clone();
    let dense = attack::dense_changes(&hers, actor.clone(), 1, 20_000).remove(0);
    let twin = attack::dense_changes(&hers, actor, 1, 19_999).remove(0);
    let before = s.teacher.archive.store().all_heads().unwrap();
    let mut session = peer(&mut s.teacher, &mut s.mother).with_daily_quota(her, 64 << 20);
    let store = s.teacher.archive.store();
    session.handle(store, Event::Start).unwrap();
    let frame = doc_frame(doc, vec![dense, twin]);
    assert!(session.handle(store, Event::Frame(&frame)).is_err());
    assert_eq!(store.all_heads().unwrap(), before, "nothing merged");
    let spent: f64 = store
        .conn()
        .query_row("SELECT total(bytes) FROM intake", [], |r| r.get(0))
        .unwrap();
    assert!(spent > 100_000.0, "{spent} counted");
}

/// 7h. The same quota for her files: the office imports one file after another from a
///     爱心妈妈's modified app, each flooding the school document with junk only an
///     administrator may write. Every change is refused, and the quarantine keeps each for
///     review; past her day's allowance the rest is not kept at all (the import says why,
///     in Chinese), so files cannot fill the office's disk either.
#[test]
fn story_7h_her_files_spend_the_same_daily_quota() {
    const QUOTA: u64 = 1024 * 1024;
    let mut s = school_with_a_visit();
    let kept = |s: &mut School| -> f64 {
        s.admin
            .archive
            .store()
            .conn()
            .query_row("SELECT total(length(bytes)) FROM quarantine", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let mut told = None;
    for n in 0..5 {
        attack::flood_school(&mut s.mother.archive, 300 * 1024);
        let file = s.mother.export_file(&format!("flood-{n}"));
        let bytes = std::fs::read(&file).unwrap();
        let report = s.admin.archive.import_bundle_within(&bytes, QUOTA).unwrap();
        assert!(report.refused >= 1, "{report:?}");
        if let Some(reason) = report.refused_reason.filter(|r| r.contains("每日上限")) {
            told = Some(reason);
        }
    }
    let kept = kept(&mut s);
    assert!(
        kept > 0.0 && kept <= QUOTA as f64,
        "{kept} bytes quarantined from her files, over a day's {QUOTA}"
    );
    let told = told.expect("no import said the day's allowance was spent");
    assert!(told.contains("导入"), "{told}");
}

/// 7e. The same in a `Changes` frame: every document it lists shares the frame's allowance,
///     so three documents of dense changes (ninety thousand operations each, each within its
///     own size's allowance) are refused together, before any is merged.
#[test]
fn story_7e_a_changes_frame_of_dense_documents_shares_one_allowance() {
    use shouwang_core::sync::{Event, Message};

    let mut s = school_with_a_visit();
    let actor = attack::actor_of(&s.mother.archive);
    // Three documents she holds.
    let docs: Vec<DocId> = s.mother.archive.store().doc_ids().unwrap();
    assert!(docs.len() >= 3, "{docs:?}");
    let mut entries = Vec::new();
    for doc in docs.into_iter().take(3) {
        let hers = s.mother.archive.store().doc(&doc).unwrap().unwrap().clone();
        let bytes = attack::dense_changes(&hers, actor.clone(), 1, 90_000).concat();
        assert!(
            shouwang_core::doc::bounds::check(&bytes).is_ok(),
            "each alone passes"
        );
        entries.push((doc, bytes));
    }
    let before = s.teacher.archive.store().all_heads().unwrap();
    let mut session = peer(&mut s.teacher, &mut s.mother);
    let store = s.teacher.archive.store();
    session.handle(store, Event::Start).unwrap();
    let frame = Message::Changes(entries).encode();
    let err = session
        .handle(store, Event::Frame(&frame))
        .map(|_| ())
        .expect_err("three dense documents in one frame");
    assert!(err.to_string().contains("远超其大小"), "{err}");
    assert_eq!(store.all_heads().unwrap(), before);
    assert_eq!(quarantined(&mut s.teacher.archive), 0, "nothing was read");
}

/// 16. Changes are not signed: a 班主任's modified app writes, under the actor of the
///     archivist's device, a change moving a child into another class (only administrators
///     may), declaring a school state from before that device was revoked. The office then
///     revokes the device, and the 班主任 hands the change in. A revoked device's change is taken
///     from a colleague's phone only when it is that device's member's own records, or what the
///     colleague could have written herself: this one waits, and is never taken from her.
#[test]
fn story_16_a_change_forged_under_a_revoked_device_is_not_taken_from_a_member() {
    let mut s = school_with_a_visit();
    let archivist = join(&mut s.admin, "晁月静");
    let other = s.admin.archive.add_class("三年级(2)班", None).unwrap();
    sync(&mut s.teacher, &mut s.admin);
    let device = archivist.archive.device().as_str().to_owned();
    let c = s.child.clone();
    let forged = attack::forge(
        &mut s.teacher.archive,
        &DocId::Child(c.clone()),
        Some(attack::actor_of(&archivist.archive)),
        |tx| {
            use automerge::ReadDoc;
            use automerge::transaction::Transactable;
            let profile = tx.get(automerge::ROOT, "profile")?.unwrap().1;
            tx.put(&profile, "class_id", other.as_str())?;
            Ok(())
        },
    );
    s.admin.archive.revoke_device(&device).unwrap();
    sync(&mut s.teacher, &mut s.admin);
    assert!(!holds(&mut s.admin.archive, &DocId::Child(c), &forged));
    assert_eq!(
        s.admin.file(CHILDREN[0].1).class_name.as_deref(),
        Some(CLASS)
    );
}

/// 16b. Not a modified app: the 班主任's phone corrects the child's address and, meeting the
///      爱心妈妈's phone, hands it the correction; the 爱心妈妈 writes a 谈心 on top. The 班主任's
///      phone is then lost and revoked. The 爱心妈妈 may correct the address herself, so her
///      phone hands the lost phone's correction in (listed for review), and her own 谈心,
///      which rests on it, is not held back for ever.
#[test]
fn story_16b_a_lost_phone_s_correction_a_colleague_could_write_is_taken_from_her() {
    let mut s = school_with_a_visit();
    s.teacher
        .archive
        .edit_child(
            CHILDREN[0].1,
            "profile",
            &kv(&[("address", "郭庄村二组12号")]),
        )
        .unwrap();
    meet(&mut s.mother, &mut s.teacher);
    let talk = s.mother.record(
        "谈心",
        CHILDREN[0].1,
        "2026-11-23",
        &[("notes", "住址改了以后第一次谈心")],
    );
    let device = s.teacher.archive.device().as_str().to_owned();
    s.admin.archive.revoke_device(&device).unwrap();
    sync(&mut s.mother, &mut s.admin);
    let file = s.admin.file(CHILDREN[0].1);
    assert!(format!("{file:?}").contains("郭庄村二组12号"), "{file:?}");
    assert!(file.records.iter().any(|r| r.meta.id.as_str() == talk));
    let relayed = s.admin.archive.relayed_from_revoked().unwrap();
    assert!(
        relayed.iter().any(|r| r.via_member == LOVE_MOTHER),
        "{relayed:?}"
    );
}

/// 17. A revoked administrator's device undoes its revocation: the archivist's phone is
///     revoked; it meets the principal's phone, which has not heard, and hands it a school
///     change (written on the state before the revocation) marking itself not revoked. A
///     revocation is final in the rules themselves, whatever state a change declares: the
///     principal's phone refuses it as the office does, so the revocation stands, and the
///     principal's own later work reaches the office as before.
#[test]
fn story_17_a_revoked_administrator_cannot_undo_her_revocation_through_a_colleague() {
    let mut s = school_with_a_visit();
    let mut archivist = join(&mut s.admin, "晁月静");
    let mut principal = join(&mut s.admin, "张长友");
    sync(&mut archivist, &mut s.admin);
    sync(&mut principal, &mut s.admin);
    let device = archivist.archive.device().as_str().to_owned();
    s.admin.archive.revoke_device(&device).unwrap();
    let undo = attack::forge(&mut archivist.archive, &DocId::School, None, |tx| {
        use automerge::ReadDoc;
        use automerge::transaction::Transactable;
        let devices = tx.get(automerge::ROOT, "devices")?.unwrap().1;
        let me = tx.get(&devices, device.as_str())?.unwrap().1;
        tx.put(&me, "revoked", false)?;
        Ok(())
    });
    meet(&mut archivist, &mut principal);
    assert!(!holds(&mut principal.archive, &DocId::School, &undo));
    principal
        .archive
        .add_member("周红梅", &[Role::LoveMother], None, None)
        .unwrap();
    sync(&mut principal, &mut s.admin);
    assert!(!holds(&mut s.admin.archive, &DocId::School, &undo));
    still_revoked(&mut s, &device);
    assert!(
        s.admin.archive.find_member("周红梅").is_ok(),
        "her own work arrives"
    );
}

/// A device id nobody holds.
const MADE_UP: &str = "ffffffffffffffffffffffffffffffff";

/// The archivist's phone, in step with the office, registers a device under [`MADE_UP`] on
/// its own copy and then takes it away again: honest changes a modified app recrafts below
/// automerge's transaction (`attack::recraft`). The office then revokes the archivist's phone.
/// Returns the school, that phone's device id, the two changes, and the operation that
/// registered the phone (what its revocation was written into).
fn revoked_archivist_s_changes() -> (
    School,
    String,
    automerge::Change,
    automerge::Change,
    automerge::legacy::OpId,
) {
    use automerge::transaction::Transactable;
    use automerge::{ObjType, ROOT, ReadDoc};
    let mut s = school_with_a_visit();
    let mut archivist = join(&mut s.admin, "晁月静");
    // The school goes on after her device was registered (story 17d rests on that state).
    s.admin
        .archive
        .add_member("周红梅", &[Role::LoveMother], None, None)
        .unwrap();
    sync(&mut archivist, &mut s.admin);
    let device = archivist.archive.device().as_str().to_owned();
    let member = archivist.archive.me_id().to_string();
    let made = attack::forge(&mut archivist.archive, &DocId::School, None, |tx| {
        let devices = tx.get(ROOT, "devices")?.unwrap().1;
        let d = tx.put_object(&devices, MADE_UP, ObjType::Map)?;
        tx.put(&d, "member", member.as_str())?;
        tx.put(&d, "label", "办公室电脑")?;
        Ok(())
    });
    let taken = attack::forge(&mut archivist.archive, &DocId::School, None, |tx| {
        let devices = tx.get(ROOT, "devices")?.unwrap().1;
        tx.delete(&devices, MADE_UP)?;
        Ok(())
    });
    let store = archivist.archive.store();
    let doc = store.doc(&DocId::School).unwrap().unwrap();
    let devices = doc.get(ROOT, "devices").unwrap().unwrap().1;
    let registered = match doc.get(&devices, device.as_str()).unwrap().unwrap().1 {
        automerge::ObjId::Id(c, a, _) => automerge::legacy::OpId(c, a),
        automerge::ObjId::Root => unreachable!(),
    };
    let (made, taken) = (
        doc.get_change_by_hash(&made).unwrap().clone(),
        doc.get_change_by_hash(&taken).unwrap().clone(),
    );
    s.admin.archive.revoke_device(&device).unwrap();
    (s, device, made, taken, registered)
}

/// Makes the recrafted change write the key `to` where it wrote [`MADE_UP`].
fn onto(e: &mut automerge::ExpandedChange, to: &str) {
    for op in &mut e.operations {
        if let automerge::legacy::Key::Map(k) = &mut op.key
            && k.as_str() == MADE_UP
        {
            *k = to.into();
        }
    }
}

/// Checks that the office's school document still holds `device` revoked.
fn still_revoked(s: &mut School, device: &str) {
    let school = s.admin.archive.school().unwrap();
    assert!(
        school
            .devices
            .iter()
            .any(|d| d.id.as_str() == device && d.revoked),
        "the revocation stands"
    );
}

/// Merges `bytes` into the office's school document (refused or not) and checks that none of
/// `forged` is there and the device is still revoked. Returns what the merge said.
fn refused_and_still_revoked(
    s: &mut School,
    bytes: &[u8],
    forged: &[automerge::ChangeHash],
    device: &str,
) -> shouwang_core::Result<shouwang_core::store::Admission> {
    let merged = s
        .admin
        .archive
        .store()
        .write(|b| b.merge_bytes(&DocId::School, bytes));
    for h in forged {
        assert!(!holds(&mut s.admin.archive, &DocId::School, h));
    }
    still_revoked(s, device);
    merged
}

/// 17b. The same undoing, below automerge's transaction: the revoked archivist's app makes its
///      device entry again, as if it had never been written (superseding nothing, so that the
///      new entry, without `revoked`, and the one recording the revocation would stand as a
///      conflict that the new one wins by its larger operation number); or numbers a change far
///      ahead of what it rests on, to win any conflict by number alone. The rules refuse both,
///      wherever they arrive.
#[test]
fn story_17b_a_device_entry_made_again_or_numbered_ahead_is_refused() {
    let (mut s, device, made, _, _) = revoked_archivist_s_changes();
    let again = attack::recraft(&made, |e| onto(e, &device));
    let ahead = attack::recraft(&made, |e| attack::number_ahead(e, 1000));
    for forged in [again, ahead] {
        let merged =
            refused_and_still_revoked(&mut s, forged.raw_bytes(), &[forged.hash()], &device);
        assert!(merged.is_ok_and(|a| a.refused == 1), "refused by the rules");
    }
}

/// 17c. The same entry made again, sent with a companion change that takes the real entry
///      away (refused itself): judged while the companion still hid the real entry, the first
///      would have seemed to stand alone, and once the companion was refused, it would win
///      beside the real one. Each change is read as it left the key, not as the merge does.
#[test]
fn story_17c_a_forgery_sent_with_a_companion_that_hides_what_it_stands_beside_is_refused() {
    let (mut s, device, made, taken, registered) = revoked_archivist_s_changes();
    let again = attack::recraft(&made, |e| onto(e, &device));
    let companion = attack::recraft(&taken, |e| {
        onto(e, &device);
        e.deps = vec![again.hash()];
        for op in &mut e.operations {
            op.pred = vec![registered.clone()].into();
        }
    });
    let both = [again.raw_bytes(), companion.raw_bytes()].concat();
    let merged = refused_and_still_revoked(&mut s, &both, &[again.hash()], &device);
    assert!(
        merged.is_ok_and(|a| a.refused == 2),
        "both refused by the rules"
    );
}

/// 17f. The same undoing, concurrent with the registration itself: the revoked archivist's app
///      writes, under the office's device with a restore epoch of its own (an actor nobody
///      uses), a school change resting on the state before her device was registered, that
///      registers it again without `revoked`. At that state the key holds nothing, so the
///      rules have nothing to refuse, and automerge keeps both entries as a conflict the
///      forgery wins by its larger operation number (padding puts it after the real one).
///      Reading decides instead: a device one of whose concurrent entries says revoked is
///      revoked, on every copy.
#[test]
fn story_17f_a_device_entry_made_concurrently_with_its_registration_does_not_undo_a_revocation() {
    use automerge::ObjType;
    use automerge::transaction::Transactable;
    let (mut s, device, _, _, registered) = revoked_archivist_s_changes();
    let (member, key) = {
        let school = s.admin.archive.school().unwrap();
        let d = school
            .devices
            .iter()
            .find(|d| d.id.as_str() == device)
            .unwrap();
        (d.member.to_string(), d.key.clone().unwrap())
    };
    let forged = beside_the_registration(&mut s, &registered, |tx, devices| {
        let d = tx
            .put_object(devices, device.as_str(), ObjType::Map)
            .unwrap();
        tx.put(&d, "member", member.as_str()).unwrap();
        tx.put(&d, "key", key.as_str()).unwrap();
        tx.put(&d, "label", "华为手机").unwrap();
    });
    // The principal's phone has not heard of the revocation; the archivist's phone hands it the
    // forgery, and the principal's phone then syncs with the office.
    let mut principal = join(&mut s.admin, "张长友");
    principal
        .archive
        .store()
        .write(|b| {
            b.set_sender(Sender::Administrator {
                device: shouwang_core::ids::DeviceId(device.clone()),
            });
            b.merge_bytes(&DocId::School, forged.raw_bytes())
        })
        .unwrap();
    sync(&mut principal, &mut s.admin);
    still_revoked(&mut s, &device);
    assert!(
        s.admin
            .archive
            .is_revoked(&shouwang_core::device_key::parse_public(&key).unwrap().0)
            .unwrap(),
        "the gate refuses her phone"
    );
}

/// 17g. The same, with a value put at the device's key instead of an entry: it would stand
///      beside the real entry and hide it from a reading of maps. Refused by the rules.
#[test]
fn story_17g_a_value_put_beside_a_device_entry_is_refused() {
    use automerge::transaction::Transactable;
    let (mut s, device, _, _, registered) = revoked_archivist_s_changes();
    let forged = beside_the_registration(&mut s, &registered, |tx, devices| {
        tx.put(devices, device.as_str(), "已恢复").unwrap();
    });
    let merged = refused_and_still_revoked(&mut s, forged.raw_bytes(), &[forged.hash()], &device);
    assert!(merged.is_ok_and(|a| a.refused == 1), "refused by the rules");
}

/// A school change the revoked archivist's app writes under the office's device with a restore
/// epoch of its own (an actor nobody uses), resting on the state before her device was
/// registered (the operation `registered`): three padding puts, then `write` into `devices`.
fn beside_the_registration(
    s: &mut School,
    registered: &automerge::legacy::OpId,
    write: impl FnOnce(&mut automerge::transaction::Transaction<'_>, &automerge::ObjId),
) -> automerge::Change {
    use automerge::transaction::Transactable;
    use automerge::{ROOT, ReadDoc};
    let (registration, _) = registration_of(s, registered);
    let office = s.admin.archive.device().clone();
    let store = s.admin.archive.store();
    let doc = store.doc(&DocId::School).unwrap().unwrap();
    let before = doc
        .get_change_by_hash(&registration)
        .unwrap()
        .deps()
        .to_vec();
    let mut fork = doc.fork_at(&before).unwrap();
    fork.set_actor(shouwang_core::ids::Epoch::actor_of(
        Some(&shouwang_core::ids::Epoch("ee01020304".into())),
        &office,
    ));
    let mut tx = fork.transaction();
    let profile = tx.get(ROOT, "school").unwrap().unwrap().1;
    for i in 0..3 {
        tx.put(&profile, format!("note{i}"), "x").unwrap();
    }
    let devices = tx.get(ROOT, "devices").unwrap().unwrap().1;
    write(&mut tx, &devices);
    tx.commit_with(
        automerge::transaction::CommitOptions::default()
            .with_message(shouwang_core::trust::declare("登记设备", &before, None)),
    );
    fork.get_last_local_change().unwrap().clone()
}

/// 17d. The same entry made again, with a companion change that is the archivist's previous
///      one in sequence but does not come before it: it rests on the state when her device
///      was registered, so its operations are numbered below the forgery's, and takes the
///      real entry away (refused itself). automerge reads a document as it was by counting
///      each device's operations up to the last one it had then, so the forgery, read as it
///      left the key, counts the companion's delete as its own past and seems to stand alone:
///      it is judged acceptable. What stops it is automerge again: once the companion is
///      refused, the forgery is a device's second change without its first, which automerge
///      will not apply, and the store takes the whole message as damaged. Guarded here as
///      story 18 is.
#[test]
fn story_17d_a_forgery_sent_after_a_companion_it_does_not_rest_on_is_not_taken() {
    let (mut s, device, made, taken, registered) = revoked_archivist_s_changes();
    let (registration, after_it) = registration_of(&mut s, &registered);
    let again = attack::recraft(&made, |e| {
        onto(e, &device);
        e.seq = 2;
    });
    let companion = attack::recraft(&taken, |e| {
        onto(e, &device);
        e.seq = 1;
        e.deps = vec![registration];
        e.start_op = std::num::NonZeroU64::new(after_it).unwrap();
        for op in &mut e.operations {
            op.pred = vec![registered.clone()].into();
        }
    });
    assert!(companion.seq() < again.seq() && companion.max_op() < again.start_op().get());
    let both = [companion.raw_bytes(), again.raw_bytes()].concat();
    // The threat is real: in a bare automerge document holding both, the key as the forgery
    // left it holds nothing but its own entry.
    assert_eq!(
        forgery_as_it_left_the_key(&mut s, &both, &again, &device),
        1
    );
    let merged = refused_and_still_revoked(&mut s, &both, &[again.hash()], &device);
    assert!(matches!(merged, Err(Error::Corrupt(_))), "{merged:?}");
}

/// 17e. The same entry made again, with a companion that rests on it as an honest next change
///      would, but numbers its operations below the forgery's (back to the state when her
///      device was registered) and takes the real entry away. In a bare automerge document,
///      the forgery read as it left the key counts the companion's delete as its own past.
///      automerge cannot rebuild such a companion's change from the document, so the store
///      takes the message as damaged; guarded as 17d is.
#[test]
fn story_17e_a_companion_resting_on_the_forgery_but_numbered_below_it_is_not_taken() {
    let (mut s, device, made, taken, registered) = revoked_archivist_s_changes();
    let (_, after_it) = registration_of(&mut s, &registered);
    let again = attack::recraft(&made, |e| onto(e, &device));
    let companion = attack::recraft(&taken, |e| {
        onto(e, &device);
        e.deps = vec![again.hash()];
        e.start_op = std::num::NonZeroU64::new(after_it).unwrap();
        for op in &mut e.operations {
            op.pred = vec![registered.clone()].into();
        }
    });
    assert!(companion.max_op() < again.start_op().get());
    let both = [again.raw_bytes(), companion.raw_bytes()].concat();
    assert_eq!(
        forgery_as_it_left_the_key(&mut s, &both, &again, &device),
        1
    );
    let merged = refused_and_still_revoked(&mut s, &both, &[again.hash()], &device);
    assert!(matches!(merged, Err(Error::Corrupt(_))), "{merged:?}");
}

/// The change that registered the archivist's device (its operation `registered`), and the
/// operation number a change resting on it alone starts at.
fn registration_of(
    s: &mut School,
    registered: &automerge::legacy::OpId,
) -> (automerge::ChangeHash, u64) {
    let store = s.admin.archive.store();
    let doc = store.doc(&DocId::School).unwrap().unwrap();
    let op = doc
        .import_obj(&format!(
            "{}@{}",
            registered.0,
            registered.1.to_hex_string()
        ))
        .unwrap();
    let hash = doc.hash_for_opid(&op).unwrap();
    (hash, doc.get_change_meta_by_hash(&hash).unwrap().max_op + 1)
}

/// How many values the school's `devices/<device>` holds as `forgery` left it, in a bare
/// automerge copy of the office's school document that merged `bytes` (no rules, no store).
fn forgery_as_it_left_the_key(
    s: &mut School,
    bytes: &[u8],
    forgery: &automerge::Change,
    device: &str,
) -> usize {
    use automerge::ReadDoc;
    let mut bare = s
        .admin
        .archive
        .store()
        .doc(&DocId::School)
        .unwrap()
        .unwrap()
        .fork();
    bare.load_incremental(bytes).unwrap();
    let devices = bare.get(automerge::ROOT, "devices").unwrap().unwrap().1;
    bare.get_all_at(&devices, device, &[forgery.hash()])
        .unwrap()
        .len()
}

/// The operation that made the record `record` in the child's file, as `a` holds it.
fn record_made_by(
    a: &mut shouwang_core::Archive,
    child: &ChildId,
    record: &str,
) -> automerge::legacy::OpId {
    use automerge::{ROOT, ReadDoc};
    let doc = a
        .store()
        .doc(&DocId::Child(child.clone()))
        .unwrap()
        .unwrap();
    let records = doc.get(ROOT, "records").unwrap().unwrap().1;
    match doc.get(&records, record).unwrap().unwrap().1 {
        automerge::ObjId::Id(c, actor, _) => automerge::legacy::OpId(c, actor),
        automerge::ObjId::Root => unreachable!(),
    }
}

/// 18. A 谈心 whose notes' typing names, as what it supersedes, the operation that made the
///     班主任's 家访 (a text, as older builds wrote notes). automerge applies a `pred` to the
///     operation with that id in any object the same merge writes, and the 谈心 writes the
///     child's records map: in a bare automerge document the 家访 vanishes. The rules do not
///     read a text operation's `pred`; what stops it is automerge itself: such a change cannot
///     be rebuilt from the document it was merged into (or, keyed on another object's
///     operation, is not applied at all), so the store takes the whole message as damaged
///     and keeps nothing of it. This story guards that: an automerge upgrade that changed it
///     would fail here, and the rules would then need to bound a sequence operation's `pred`
///     to its own element.
#[test]
fn story_18_typing_that_names_another_record_as_superseded_is_refused() {
    use automerge::legacy::{ElementId, Key, OpType};
    let mut s = school_with_a_visit();
    let file = DocId::Child(s.child.clone());
    let visit_made = record_made_by(&mut s.admin.archive, &s.child, &s.visit);
    let before = s
        .mother
        .archive
        .store()
        .doc(&file)
        .unwrap()
        .unwrap()
        .get_heads();
    s.mother
        .record("谈心", CHILDREN[0].1, "2026-11-21", &[("notes", "想妈妈")]);
    let talk = {
        let doc = s.mother.archive.store().doc(&file).unwrap().unwrap();
        let new = doc.get_changes(&before);
        assert_eq!(new.len(), 1, "one change makes the 谈心");
        new[0].clone()
    };
    // Notes are plain strings now; a text is what an older build wrote, and still taken.
    // Returns the letter typed.
    let typed = |e: &mut automerge::ExpandedChange| {
        let at = e
            .operations
            .iter()
            .position(|op| op.key == Key::Map("notes".into()))
            .expect("the 谈心 has notes");
        e.operations[at].action = OpType::Make(automerge::ObjType::Text);
        let text = automerge::legacy::OpId(e.start_op.get() + at as u64, e.actor_id.clone());
        e.operations.push(automerge::legacy::Op {
            action: OpType::Put("想".into()),
            obj: automerge::legacy::ObjectId::Id(text),
            key: Key::Seq(ElementId::Head),
            pred: Vec::new().into(),
            insert: true,
        });
        automerge::legacy::OpId(
            e.start_op.get() + e.operations.len() as u64 - 1,
            e.actor_id.clone(),
        )
    };
    let insert_names_it = attack::recraft(&talk, |e| {
        typed(e);
        e.operations.last_mut().unwrap().pred = vec![visit_made.clone()].into();
    });
    let delete_names_it = attack::recraft(&talk, |e| {
        let letter = typed(e);
        let obj = e.operations.last().unwrap().obj.clone();
        e.operations.push(automerge::legacy::Op {
            action: OpType::Delete,
            obj,
            key: Key::Seq(ElementId::Id(letter.clone())),
            pred: vec![letter, visit_made.clone()].into(),
            insert: false,
        });
    });
    let delete_keyed_on_it = attack::recraft(&talk, |e| {
        typed(e);
        let obj = e.operations.last().unwrap().obj.clone();
        e.operations.push(automerge::legacy::Op {
            action: OpType::Delete,
            obj,
            key: Key::Seq(ElementId::Id(visit_made.clone())),
            pred: vec![visit_made.clone()].into(),
            insert: false,
        });
    });
    // The threat is real: merged into a bare automerge document, the first two hide the 家访.
    for forged in [&insert_names_it, &delete_names_it] {
        use automerge::ReadDoc;
        let mut bare = s.admin.archive.store().doc(&file).unwrap().unwrap().fork();
        bare.load_incremental(forged.raw_bytes()).unwrap();
        let records = bare.get(automerge::ROOT, "records").unwrap().unwrap().1;
        assert!(bare.get(&records, s.visit.as_str()).unwrap().is_none());
    }
    for forged in [insert_names_it, delete_names_it, delete_keyed_on_it] {
        let merged = s
            .admin
            .archive
            .store()
            .write(|b| b.merge_bytes(&file, forged.raw_bytes()));
        assert!(
            matches!(merged, Err(Error::Corrupt(_))),
            "the message is taken as damaged: {merged:?}"
        );
        assert!(!holds(&mut s.admin.archive, &file, &forged.hash()));
        assert!(
            s.admin.archive.find_record(&s.visit).is_ok(),
            "the 家访 is still there"
        );
    }
    // Nothing of them stays behind, and the typing alone is not what was refused: the same
    // 谈心 typed as a text, naming nothing, is taken.
    let typed_alone = attack::recraft(&talk, |e| {
        typed(e);
    });
    s.admin
        .archive
        .store()
        .write(|b| b.merge_bytes(&file, typed_alone.raw_bytes()))
        .unwrap();
    assert!(holds(&mut s.admin.archive, &file, &typed_alone.hash()));
}

/// 19. A change whose dependencies the receiver lacks is never judged on another sender's
///     word. The 爱心妈妈's modified app holds a change of the office the 班主任's phone does
///     not have yet (a guardian's phone number the office corrected), writes a change under
///     the office's actor on top of it, and sends the 班主任's phone that change alone.
///     automerge cannot apply it (what it rests on is missing) and keeps it aside in the
///     phone's copy of the file; before, when the office's own change later arrived from the
///     office, automerge applied the kept one with it, and it was judged as the office's work
///     (from the office's device, the office's actor is its own): a member's forgery taken as
///     an administrator's. Nor does what is set aside go out in her whole copy of the file.
#[test]
fn story_19_a_change_set_aside_for_its_dependencies_is_not_judged_as_another_sender_s() {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    use shouwang_core::sync::{Event, Message};

    let mut s = school_with_a_visit();
    let file = DocId::Child(s.child.clone());
    s.admin
        .archive
        .edit_child(CHILDREN[0].1, "guardian", &kv(&[("phone", "13905641234")]))
        .unwrap();
    sync(&mut s.mother, &mut s.admin);
    let office = attack::actor_of(&s.admin.archive);
    let forged = attack::forge(&mut s.mother.archive, &file, Some(office), |tx| {
        let guardian = tx.get(automerge::ROOT, "guardian")?.unwrap().1;
        tx.put(&guardian, "phone", "13800000000")
    });
    let bytes = s
        .mother
        .archive
        .store()
        .doc(&file)
        .unwrap()
        .unwrap()
        .get_change_by_hash(&forged)
        .unwrap()
        .raw_bytes()
        .to_vec();
    let mut session = peer(&mut s.teacher, &mut s.mother);
    let store = s.teacher.archive.store();
    session.handle(store, Event::Start).unwrap();
    let forged_bytes = bytes.clone();
    let frame = Message::Changes(vec![(file.clone(), bytes)]).encode();
    session.handle(store, Event::Frame(&frame)).unwrap();
    drop(session);
    assert!(!holds(&mut s.teacher.archive, &file, &forged));
    // Nothing set aside goes out with her copy: a file she makes for the office carries the
    // child's file whole, without it (from the hub, a whole file is a relay's word).
    let out = s
        .teacher
        .export_for("to-office", s.admin.archive.me_id().as_str());
    let entries = s
        .admin
        .archive
        .open_bundle(&std::fs::read(&out).unwrap())
        .unwrap()
        .entries;
    let carried = entries.iter().filter(|e| e.doc == file).any(|e| {
        e.data
            .windows(forged_bytes.len())
            .any(|w| w == forged_bytes.as_slice())
    });
    assert!(!carried, "her file carries the change set aside");
    s.admin.import_file(&out);
    assert!(!holds(&mut s.admin.archive, &file, &forged));

    // The office's own change reaches her from the office.
    meet(&mut s.teacher, &mut s.admin);
    assert!(
        !holds(&mut s.teacher.archive, &file, &forged),
        "the 爱心妈妈's forgery was taken as the office's change"
    );
    let phone = s.teacher.file(CHILDREN[0].1);
    assert!(
        format!("{phone:?}").contains("13905641234")
            && !format!("{phone:?}").contains("13800000000"),
        "the guardian's phone number is the office's"
    );
}

/// 20b. The same id in another file: the 帮扶教师, a carer of two children, makes a 谈心 in the
///      second child's file under the id of the 班主任's 家访 in the first's. It is hers to
///      write there, and taken. The office's index keeps both (one row per file and id: keyed
///      by the id alone, the second row replaced the first, and the 家访 left the lists and
///      the due work); the id alone names neither.
#[test]
fn story_20b_a_record_made_in_another_file_under_another_s_id_hides_nothing() {
    let mut s = school_with_a_visit();
    let mut teacher2 = join(&mut s.admin, PAIRING_TEACHER);
    let other = s.admin.archive.find_child(CHILDREN[1].1).unwrap();
    let visit = s.visit.clone();
    let hers = record_at_id(
        &mut teacher2,
        &other,
        &visit,
        "talk",
        "pairing_teacher",
        &other,
        true,
    );
    sync(&mut teacher2, &mut s.admin);
    assert!(
        holds(&mut s.admin.archive, &DocId::Child(other), &hers),
        "taken"
    );
    let rows: i64 = s
        .admin
        .archive
        .store()
        .conn()
        .query_row(
            "SELECT count(*) FROM p_records WHERE record_id = ?1",
            [visit.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 2, "one row per file");
    assert!(matches!(
        s.admin.archive.find_record(&visit),
        Err(Error::Ambiguous { .. })
    ));
}

/// 20. A record made at another's id on a copy that had not seen it. The 爱心妈妈's modified
///     app writes on her copy of the child's file as it was before the 班主任's 家访 (on what
///     the 家访 rests on): a 谈心 of her own, then another under the 家访's id. Every part of
///     it is hers to write, and where it rests the id held nothing, so it is taken. Merged,
///     automerge holds both records at that id and reads one (the one made by the later
///     operation: hers, the first 谈心 pushing her numbers past his). A record key holding
///     several concurrent records shows each: the 家访 stays in the office's file with its
///     author, under an id every copy gives it, in the office's index, and the 班主任 still
///     edits it.
#[test]
fn story_20_a_record_made_apart_under_another_s_id_hides_nothing() {
    use automerge::ReadDoc;
    use automerge::transaction::CommitOptions;
    use shouwang_core::ids::RecordId;
    use shouwang_core::kinds::RecordKind;
    use shouwang_core::records::{self, NewRecord};
    use shouwang_core::sync::{Event, Message};

    let mut s = school_with_a_visit();
    let file = DocId::Child(s.child.clone());
    let his = s.teacher.archive.me_id().to_string();
    let her = s.mother.archive.me_id().clone();
    let talk = |notes: &str| NewRecord {
        kind: RecordKind::Talk,
        child: Some(s.child.clone()),
        happened_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
        author: her.clone(),
        author_role: Role::LoveMother,
        device: s.mother.archive.device().clone(),
        fields: vec![(
            RecordKind::Talk
                .fields()
                .iter()
                .find(|f| f.key == "notes")
                .unwrap(),
            shouwang_core::forms::FieldValue::Text(notes.to_owned()),
        )],
    };
    let (padding, over) = (talk("想妈妈"), talk("作业写完了"));
    let actor = attack::actor_of(&s.mother.archive);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let visit = RecordId(s.visit.clone());
    let (forged, bytes) = {
        let store = s.mother.archive.store();
        let school = store.doc(&DocId::School).unwrap().unwrap().get_heads();
        let doc = store.doc(&file).unwrap().unwrap();
        let records = doc.get(automerge::ROOT, "records").unwrap().unwrap().1;
        let made = doc.get(&records, visit.as_str()).unwrap().unwrap().1;
        let made = doc.hash_for_opid(&made).unwrap();
        let deps = doc.get_change_by_hash(&made).unwrap().deps().to_vec();
        let mut apart = doc.fork_at(&deps).unwrap().with_actor(actor);
        let message = shouwang_core::trust::declare("新增谈心记录", &school, None);
        apart
            .transact_with(
                |_| {
                    CommitOptions::default()
                        .with_message(message.clone())
                        .with_time(now_ms / 1000)
                },
                |tx| {
                    records::insert(tx, &RecordId::new(now_ms), &padding, now_ms)?;
                    records::insert(tx, &visit, &over, now_ms)
                },
            )
            .unwrap();
        let change = apart.get_last_local_change().unwrap();
        (change.hash(), change.raw_bytes().to_vec())
    };
    // The threat is real: in a bare copy of the office's file that merged it, the 家访's id
    // reads her 谈心.
    {
        let store = s.admin.archive.store();
        let mut bare = store.doc(&file).unwrap().unwrap().fork();
        bare.load_incremental(&bytes).unwrap();
        let records = bare.get(automerge::ROOT, "records").unwrap().unwrap().1;
        let at = bare.get(&records, visit.as_str()).unwrap().unwrap().1;
        let author = bare
            .get(&at, "author")
            .unwrap()
            .unwrap()
            .0
            .as_str()
            .map(str::to_owned);
        assert_eq!(author.as_deref(), Some(her.as_str()));
    }
    // Her device sends it to the office, which takes it.
    let mut session = peer(&mut s.admin, &mut s.mother);
    let store = s.admin.archive.store();
    session.handle(store, Event::Start).unwrap();
    let frame = Message::Changes(vec![(file.clone(), bytes)]).encode();
    session.handle(store, Event::Frame(&frame)).unwrap();
    drop(session);
    assert!(
        holds(&mut s.admin.archive, &file, &forged),
        "every part of it is hers to write"
    );

    // The office's file shows the three records, the 家访 under his name.
    let office = s.admin.file(CHILDREN[0].1);
    let visits: Vec<_> = office
        .records
        .iter()
        .filter(|r| r.meta.kind_key == "home_visit")
        .collect();
    assert_eq!(visits.len(), 1, "the 家访 is hidden: {:?}", office.records);
    assert_eq!(visits[0].meta.author, his);
    assert_eq!(visits[0].fields[0].value, "奶奶在家");
    let shown_as = visits[0].meta.id.as_str().to_owned();
    let talks = office
        .records
        .iter()
        .filter(|r| r.meta.author == her.as_str())
        .count();
    assert_eq!(talks, 2, "both of her 谈心 are shown too");
    // Each is in the office's index under the id it is shown by (due work counts from it).
    for r in &office.records {
        let (id, doc) = s.admin.archive.find_record(r.meta.id.as_str()).unwrap();
        assert_eq!((id, doc), (r.meta.id.clone(), file.clone()));
    }

    // The 班主任's phone shows the same ids, and he edits his 家访 under its id.
    sync(&mut s.teacher, &mut s.admin);
    let ids = |f: &shouwang_core::archive::ChildFile| {
        let mut ids: Vec<String> = f.records.iter().map(|r| r.meta.id.0.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&s.teacher.file(CHILDREN[0].1)), ids(&office));
    s.teacher
        .archive
        .edit_record(&shown_as, None, &kv(&[("notes", "奶奶在家，孩子在写作业")]))
        .unwrap();
    sync(&mut s.teacher, &mut s.admin);
    let office = s.admin.file(CHILDREN[0].1);
    let edited = office
        .records
        .iter()
        .find(|r| r.meta.id.as_str() == shown_as)
        .unwrap();
    assert_eq!(edited.meta.author, his);
    assert_eq!(edited.fields[0].value, "奶奶在家，孩子在写作业");
    assert_eq!(office.records.len(), 3);

    // He corrects it again on his phone while the office re-bases the file: the new generation
    // shows each record under the same id, and his correction is carried into it.
    s.teacher
        .archive
        .edit_record(&shown_as, None, &kv(&[("notes", "奶奶在家，作业已检查")]))
        .unwrap();
    s.admin
        .archive
        .rebase_child(CHILDREN[0].1, "整理档案")
        .unwrap();
    assert_eq!(ids(&s.admin.file(CHILDREN[0].1)), ids(&office));
    sync(&mut s.teacher, &mut s.admin);
    sync(&mut s.teacher, &mut s.admin);
    let office = s.admin.file(CHILDREN[0].1);
    let carried = office
        .records
        .iter()
        .find(|r| r.meta.id.as_str() == shown_as)
        .unwrap();
    assert_eq!(carried.meta.author, his);
    assert_eq!(carried.fields[0].value, "奶奶在家，作业已检查");
    assert_eq!(office.records.len(), 3);
}
