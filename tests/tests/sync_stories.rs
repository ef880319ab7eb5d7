//! The sync protocol, told as numbered stories on the deterministic simulation: real stores,
//! real frames, scheduled faults.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use shouwang_core::doc::DocId;
use shouwang_core::store::stored_heads;
use shouwang_core::sync::{Scope, Why, wire::Message};
use shouwang_tests::sim::{Faults, Net};

const CHILD: &str = "王小雨";
const STEPS: usize = 20_000;

fn net(members: &[&'static str], seed: u64) -> Net {
    let mut admin = school();
    let mut peers = Vec::new();
    for m in members {
        peers.push(join(&mut admin, m));
    }
    peers.insert(0, admin);
    Net::new(peers, seed)
}

/// `n` home visits for the child on one peer.
fn visits(net: &mut Net, peer: usize, n: usize) {
    for i in 0..n {
        net.peers[peer].record(
            "家访",
            CHILD,
            "2026-11-17",
            &[("notes", &format!("家访{i}"))],
        );
    }
}

/// Whether the child's file on `peer` holds the record `id`.
fn holds_record(net: &mut Net, peer: usize, id: &str) -> bool {
    holds_record_of(net, peer, CHILD, id)
}

fn same(net: &mut Net, a: usize, b: usize) {
    let ha = heads(&mut net.peers[a]);
    let hb = heads(&mut net.peers[b]);
    assert_eq!(ha, hb, "peers {a} and {b} differ");
}

/// 1. A teacher's week offline reaches the office in one session, and the office's new pairing
///    reaches her; nothing is duplicated.
#[test]
fn story_1_offline_week_syncs_both_ways() {
    let mut n = net(&[HEAD_TEACHER], 1);
    for day in 16..21 {
        n.peers[1].record(
            "家访",
            CHILD,
            &format!("2026-11-{day}"),
            &[("notes", "例行家访")],
        );
    }
    n.peers[0].archive.pair(COUNSELLOR, "赵子涵", None).unwrap();
    let hub = n.peers[0].archive.device().to_string();
    let before = n.peers[1].archive.sync_status(&hub).unwrap();
    assert!(
        before
            .pending
            .iter()
            .any(|(_, label)| label == "王小雨的档案")
    );
    assert_eq!(before.records_since, 5);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1));
    same(&mut n, 0, 1);
    assert_eq!(n.peers[0].file(CHILD).records.len(), 5);
    // `shouwang status`: nothing is left that the hub has not confirmed.
    n.peers[1].archive.record_sync_result(&hub, None).unwrap();
    let after = n.peers[1].archive.sync_status(&hub).unwrap();
    assert!(after.pending.is_empty(), "{:?}", after.pending);
    assert!(after.last_success.is_some());
    assert_eq!(after.records_since, 0);
}

/// 2. Reconnecting with nothing new costs one frame each way, a few dozen bytes, whether the
///    school has 10 or 100 documents.
#[test]
fn story_2_a_no_op_reconnect_is_one_round_trip_and_tiny() {
    for extra in [0usize, 45] {
        let mut n = net(&[HEAD_TEACHER], 2);
        if extra > 0 {
            let mut table = vec![vec!["学籍号".to_owned(), "姓名".into(), "班级".into()]];
            for i in 0..extra {
                table.push(vec![format!("G99{i:04}"), format!("学生{i}"), CLASS.into()]);
            }
            let rows = shouwang_core::roster::parse_table(&table).unwrap();
            n.peers[0].archive.import_roster(&rows).unwrap();
        }
        n.connect(0, 1);
        n.run_until_quiescent(STEPS).unwrap();
        same(&mut n, 0, 1);
        let docs = n.peers[0].archive.store().doc_ids().unwrap().len();
        assert!(docs >= 9 + 2 * extra, "{docs}");
        n.disconnect(0, 1);
        n.connect(0, 1);
        n.run_until_quiescent(STEPS).unwrap();
        let (frames, bytes) = n.link_traffic(0, 1).unwrap();
        assert_eq!(frames, 2, "one Hello each way with {docs} documents");
        assert!(bytes <= 512, "{bytes} bytes with {docs} documents");
        assert!(n.caught_up(0, 1));
    }
}

/// 3. Both edit the same child while apart; one session merges everything and the conflict is
///    listed on both sides.
#[test]
fn story_3_concurrent_edits_merge_over_sync() {
    let mut n = net(&[HEAD_TEACHER, LOVE_MOTHER], 3);
    n.peers[1]
        .archive
        .edit_child(CHILD, "guardian", &kv(&[("phone", "13800001111")]))
        .unwrap();
    n.peers[2]
        .archive
        .edit_child(CHILD, "guardian", &kv(&[("phone", "13900002222")]))
        .unwrap();
    n.peers[2].record("谈心", CHILD, "2026-11-18", &[("notes", "每周谈心")]);
    n.connect(1, 2);
    n.run_until_quiescent(STEPS).unwrap();
    same(&mut n, 1, 2);
    for p in [1, 2] {
        let f = n.peers[p].file(CHILD);
        assert_eq!(f.conflicts.len(), 1);
        assert_eq!(f.records.len(), 1);
    }
}

/// 4. The link is cut after every few frames; each reconnect continues where the last stopped,
///    and the transfer completes with nothing lost or doubled.
#[test]
fn story_4_a_cut_transfer_resumes() {
    let mut n = net(&[HEAD_TEACHER], 4);
    let mut written = Vec::new();
    for i in 0..30 {
        written.push(n.peers[1].record(
            "谈心",
            CHILD,
            "2026-11-19",
            &[("notes", &format!("第{i}次谈心，{}", "内容较长".repeat(20)))],
        ));
    }
    let mut rounds = 0;
    loop {
        n.connect(0, 1);
        for _ in 0..3 {
            n.step();
        }
        n.disconnect(0, 1);
        rounds += 1;
        let have = n.peers[0].file(CHILD).records.len();
        if have == written.len() || rounds > 100 {
            break;
        }
    }
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    same(&mut n, 0, 1);
    let mut got: Vec<String> = n.peers[0]
        .file(CHILD)
        .records
        .iter()
        .map(|r| r.meta.id.0.clone())
        .collect();
    got.sort();
    written.sort();
    assert_eq!(got, written);
    assert!(rounds > 1, "the transfer really was cut");
}

/// 4b. The link drops right after the teacher's changes leave her phone, before they reach the
///     office. The next session costs no more than a clean one would have: her phone never
///     recorded as shared what it had only sent, so it offers those changes again from the
///     last agreed heads instead of both sides falling back to a full comparison.
#[test]
fn story_4b_changes_lost_in_a_cut_cost_only_themselves_next_time() {
    let week = |n: &mut Net| {
        n.connect(0, 1);
        n.run_until_quiescent(STEPS).unwrap();
        n.disconnect(0, 1);
        for i in 0..10 {
            n.peers[1].record(
                "家访",
                CHILD,
                "2026-11-18",
                &[("notes", &format!("第{i}次家访：奶奶说孩子晚上按时睡觉"))],
            );
        }
    };
    // The reference: the same week synced over a clean link.
    let mut clean = net(&[HEAD_TEACHER], 41);
    week(&mut clean);
    clean.connect(0, 1);
    clean.run_until_quiescent(STEPS).unwrap();
    let (_, clean_bytes) = clean.link_traffic(0, 1).unwrap();

    let mut n = net(&[HEAD_TEACHER], 41);
    week(&mut n);
    n.connect(0, 1);
    // Both Hellos arrive; the teacher answers with her changes, which the cut swallows.
    assert!(n.step() && n.step());
    n.faults = Faults {
        drop: 1.0,
        ..Faults::default()
    };
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.stats.dropped >= 1, "the changes were in flight");
    assert_eq!(n.peers[0].file(CHILD).records.len(), 0, "none arrived");
    n.disconnect(0, 1);

    n.faults = Faults::default();
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    same(&mut n, 0, 1);
    assert_eq!(n.peers[0].file(CHILD).records.len(), 10);
    let (_, resumed_bytes) = n.link_traffic(0, 1).unwrap();
    assert!(
        resumed_bytes <= clean_bytes + clean_bytes / 10,
        "resuming took {resumed_bytes} bytes, a clean sync {clean_bytes}"
    );
}

/// 5. Frames duplicated and reordered: still converges, nothing duplicated.
#[test]
fn story_5_duplicates_and_reordering_change_nothing() {
    let mut n = net(&[HEAD_TEACHER, LOVE_MOTHER], 5);
    for i in 0..5 {
        n.peers[1].record(
            "家访",
            CHILD,
            "2026-11-17",
            &[("notes", &format!("家访{i}"))],
        );
        n.peers[2].record(
            "谈心",
            CHILD,
            "2026-11-18",
            &[("notes", &format!("谈心{i}"))],
        );
    }
    n.faults = Faults {
        duplicate: 0.3,
        reorder: 0.3,
        ..Faults::default()
    };
    n.connect(1, 2);
    n.run_until_quiescent(STEPS).unwrap();
    n.faults = Faults::default();
    n.reconnect_all(&[(1, 2)], STEPS).unwrap();
    same(&mut n, 1, 2);
    assert_eq!(n.peers[1].file(CHILD).records.len(), 10);
}

/// 6. A corrupted frame ends the session with an error (never a panic, never a half-applied
///    message); the next session completes.
#[test]
fn story_6_corruption_ends_the_session_and_the_next_one_completes() {
    let mut n = net(&[HEAD_TEACHER], 6);
    visits(&mut n, 1, 10);
    n.faults = Faults {
        corrupt: 0.5,
        ..Faults::default()
    };
    for _ in 0..5 {
        n.reconnect_all(&[(0, 1)], STEPS).unwrap();
    }
    assert!(n.stats.session_errors > 0);
    n.faults = Faults::default();
    n.reconnect_all(&[(0, 1)], STEPS).unwrap();
    same(&mut n, 0, 1);
}

/// 7. Lost frames stall a session but never make it loop: it goes quiet, and a reconnect
///    finishes the job.
#[test]
fn story_7_lost_frames_stall_then_a_reconnect_finishes() {
    let mut n = net(&[HEAD_TEACHER], 7);
    visits(&mut n, 1, 10);
    n.faults = Faults {
        drop: 0.3,
        ..Faults::default()
    };
    n.connect(0, 1);
    n.run_until_quiescent(STEPS)
        .expect("a lossy session goes quiet instead of looping");
    n.faults = Faults::default();
    n.reconnect_all(&[(0, 1)], STEPS).unwrap();
    same(&mut n, 0, 1);
}

/// 8. Live mode: while connected and caught up, a new record flows to the other side in the
///    same session, without a reconnect.
#[test]
fn story_8_live_changes_flow_while_connected() {
    let mut n = net(&[HEAD_TEACHER], 8);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1));
    let id = n.peers[1].record("家访", CHILD, "2026-11-20", &[("notes", "连着网时写的")]);
    let child = n.peers[1].archive.find_child(CHILD).unwrap();
    n.local_change(1, &DocId::Child(child));
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.connected(0, 1));
    assert!(n.caught_up(0, 1));
    assert!(holds_record(&mut n, 0, &id));
}

/// 8a. A record written while connected crosses as one `Changes` frame, answered by an `Idle`
///     each way: three frames in all, not automerge's rounds of heads and requests (the
///     session knows what the peer holds). A second record then sends only itself.
#[test]
fn story_8a_a_live_change_is_one_delta() {
    let mut n = net(&[HEAD_TEACHER], 82);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    for (i, note) in ["连着网时写的", "又写了一条"].into_iter().enumerate() {
        let (frames, bytes) = n.link_traffic(0, 1).unwrap();
        let id = n.peers[1].record("家访", CHILD, "2026-11-20", &[("notes", note)]);
        n.poll(1);
        n.run_until_quiescent(STEPS).unwrap();
        assert!(n.caught_up(0, 1));
        assert!(holds_record(&mut n, 0, &id));
        let (after, after_bytes) = n.link_traffic(0, 1).unwrap();
        assert_eq!(
            after - frames,
            3,
            "record {i}: a Changes frame and an Idle each way"
        );
        assert!(
            after_bytes - bytes < 2_000,
            "record {i}: only the new record is sent ({} bytes)",
            after_bytes - bytes
        );
    }
    same(&mut n, 0, 1);
}

/// 8b. Live mode with the app writing through its own connection: a poll finds the record
///     another connection wrote and sends it; a poll with nothing new sends nothing.
#[test]
fn story_8b_a_poll_sends_what_another_connection_wrote() {
    let mut n = net(&[HEAD_TEACHER], 81);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    let quiet = n.link_traffic(0, 1).unwrap();
    n.poll(0);
    n.poll(1);
    n.run_until_quiescent(STEPS).unwrap();
    assert_eq!(
        n.link_traffic(0, 1).unwrap(),
        quiet,
        "nothing new, nothing sent"
    );

    // The app's own connection to peer 1's store.
    let id = written_elsewhere(&n, 1, CHILD, "后台同步时在应用里写的");
    n.poll(1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1));
    assert!(holds_record(&mut n, 0, &id));
}

/// 9. Scope: the hub offers a 爱心妈妈 only her child's file and never private documents; a
///    well-formed document she sends outside her scope is refused (`Refused`, out of scope) and
///    changes nothing; the session goes on.
#[test]
fn story_9_only_documents_in_scope_are_offered_or_accepted() {
    use automerge::sync::{State, SyncDoc};
    use shouwang_core::sync::{Event, Session};

    let mut n = net(&[LOVE_MOTHER], 9);
    let mother = n.peers[0].archive.find_member(LOVE_MOTHER).unwrap();
    let scope = n.peers[0].archive.scope_for(&mother).unwrap();
    let Scope::Only(allowed) = &scope else {
        panic!("a 爱心妈妈 is scoped");
    };
    assert!(allowed.iter().all(|d| !matches!(d, DocId::Private(_))));
    n.set_scope(0, 1, scope.clone());
    n.set_scope(1, 0, scope.clone());
    // A record the office writes for another child must not reach her (she joined from a full
    // bundle here, so she has an old copy of that file; it must stay old).
    n.peers[0].record("家访", "周欣怡", "2026-11-20", &[("notes", "不属于她")]);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1));
    let other = DocId::Child(n.peers[0].archive.find_child("周欣怡").unwrap());
    let heads = |d: &mut Device| {
        d.archive
            .store()
            .doc(&other)
            .unwrap()
            .map(|d| d.get_heads())
    };
    assert_ne!(heads(&mut n.peers[1]), heads(&mut n.peers[0]));

    // A peer sending a well-formed sync message or changes for a private file is refused.
    let private = n.peers[0]
        .archive
        .store()
        .doc_ids()
        .unwrap()
        .into_iter()
        .find(|d| matches!(d, DocId::Private(_)))
        .unwrap();
    let am = n.peers[0]
        .archive
        .store()
        .doc(&private)
        .unwrap()
        .unwrap()
        .clone();
    let payload = am
        .generate_sync_message(&mut State::new())
        .unwrap()
        .encode();
    let before = fingerprint(&mut n.peers[0]);
    for frame in [
        Message::Doc {
            doc: private.clone(),
            payload,
        },
        Message::Changes(vec![(private.clone(), am.save())]),
    ] {
        let mut s = Session::new("x", scope.clone());
        let store = n.peers[0].archive.store();
        s.handle(store, Event::Start).unwrap();
        // Refused and left out, the session goes on: nothing of it is merged.
        let out = s.handle(store, Event::Frame(&frame.encode())).unwrap();
        let refused = out
            .frames
            .iter()
            .map(|f| Message::decode(f).unwrap())
            .any(|m| matches!(m, Message::Refused { ref doc, why: Why::OutOfScope, .. } if *doc == private));
        assert!(refused, "{out:?}");
        assert!(!out.wrote);
    }
    assert_eq!(before, fingerprint(&mut n.peers[0]));
}

/// 9b. A modified peer names documents by the thousand that the session does not exchange. A
///     refusal of one is noise (this side never offered it): nothing is recorded of it. Each
///     one it offers is answered `OutOfScope` and remembered for the session, up to
///     `MAX_OUT_OF_SCOPE`; past that, the session ends, rather than remember without end.
#[test]
fn story_9b_documents_invented_outside_the_scope_are_bounded() {
    use shouwang_core::ids::ChildId;
    use shouwang_core::sync::{Event, MAX_OUT_OF_SCOPE, Session};

    let mut n = net(&[LOVE_MOTHER], 9);
    let mother = n.peers[0].archive.find_member(LOVE_MOTHER).unwrap();
    let scope = n.peers[0].archive.scope_for(&mother).unwrap();
    let invented = |i: usize| DocId::Child(ChildId(format!("c-invented-{i:05}")));
    let store = n.peers[0].archive.store();
    let mut s = Session::new("x", scope);
    s.handle(store, Event::Start).unwrap();
    for i in 0..2 * MAX_OUT_OF_SCOPE {
        let frame = Message::Refused {
            doc: invented(i),
            why: Why::Refused,
            count: 1,
            reason: "x".repeat(200),
        };
        s.handle(store, Event::Frame(&frame.encode())).unwrap();
    }
    assert!(store.refusals("x").unwrap().is_empty());
    let offer = |i: usize| Message::Changes(vec![(invented(i), Vec::new())]).encode();
    for i in 0..MAX_OUT_OF_SCOPE {
        s.handle(store, Event::Frame(&offer(i))).unwrap();
    }
    let err = s
        .handle(store, Event::Frame(&offer(MAX_OUT_OF_SCOPE)))
        .unwrap_err();
    assert!(err.to_string().contains("太多"), "{err}");
}

/// 9c. The same, handed in: the hub takes a member's own work on a file she no longer sees
///     (a hand-in), and a modified app lists ids nobody has, each with a document's genesis
///     change (the same for every document of a kind: anyone can make it). A hand-in is work
///     on a file she once had: one the hub never held is not read and creates nothing (it
///     made an empty document, a blank child in every administrator's list, for each id, up
///     to the frame's 200,000). It is answered `Deferred`, not `OutOfScope`, which would tell
///     an honest device that the school holds its work there and it may drop its copy.
#[test]
fn story_9c_hand_ins_of_documents_nobody_has_create_nothing() {
    use shouwang_core::ids::ChildId;
    use shouwang_core::store::Sender;
    use shouwang_core::sync::{Event, Session};

    let mut n = net(&[LOVE_MOTHER], 9);
    let mother = n.peers[0].archive.find_member(LOVE_MOTHER).unwrap();
    let device = n.peers[1].archive.device().clone();
    let invented = |i: usize| DocId::Child(ChildId(format!("c-invented-{i:05}")));
    let genesis = |d: &DocId| {
        shouwang_core::doc::genesis(d, automerge::ActorId::random())
            .unwrap()
            .save()
    };
    let hub = &mut n.peers[0].archive;
    let key = hub
        .school()
        .unwrap()
        .devices
        .iter()
        .find(|d| d.id == device)
        .and_then(|d| d.public_key())
        .unwrap();
    let before = hub.store().doc_ids().unwrap();
    let children = hub.children(None, false).unwrap().len();
    let mut s: Session = hub
        .session(device.as_str(), Some(&mother))
        .unwrap()
        .taking_hand_ins()
        .with_sender(Sender::for_device(&key.0, &mother, &mother.roles));
    let store = hub.store();
    s.handle(store, Event::Start).unwrap();
    let frame = Message::Changes(
        (0..200)
            .map(|i| (invented(i), genesis(&invented(i))))
            .collect(),
    );
    let out = s.handle(store, Event::Frame(&frame.encode())).unwrap();
    let answered = out
        .frames
        .iter()
        .filter(|f| {
            matches!(
                Message::decode(f),
                Ok(Message::Refused {
                    why: Why::Deferred,
                    ..
                })
            )
        })
        .count();
    assert_eq!(answered, 200);
    assert_eq!(store.doc_ids().unwrap(), before, "documents were made");
    assert_eq!(hub.children(None, false).unwrap().len(), children);
}

/// 10. A teacher, a 爱心妈妈 and a subject teacher are never online together; each meets only
///     the hub, at different times; all converge through it.
#[test]
fn story_10_never_online_together_converge_through_the_hub() {
    let mut n = net(&[HEAD_TEACHER, LOVE_MOTHER, PAIRING_TEACHER], 10);
    n.peers[1].record("家访", CHILD, "2026-11-17", &[("notes", "班主任家访")]);
    n.peers[2].record("谈心", CHILD, "2026-11-18", &[("notes", "爱心妈妈谈心")]);
    n.peers[3].record("家访", "赵子涵", "2026-11-19", &[("notes", "帮扶教师家访")]);
    for round in 0..2 {
        for p in 1..=3 {
            n.connect(0, p);
            n.run_until_quiescent(STEPS).unwrap();
            n.disconnect(0, p);
            let _ = round;
        }
    }
    for p in 1..=3 {
        same(&mut n, 0, p);
    }
    assert_eq!(n.peers[3].file(CHILD).records.len(), 2);
}

/// 11. A 爱心妈妈's phone set up from her scoped enrollment bundle syncs with a hub that scopes
///     her session; she offers everything she has, the hub only what she may see.
#[test]
fn story_11_a_scoped_phone_from_an_enrollment_bundle() {
    let mut admin = school();
    let mother = admin.archive.find_member(LOVE_MOTHER).unwrap();
    let new = admin
        .archive
        .export_new_device(LOVE_MOTHER, "phone")
        .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let archive = shouwang_core::Archive::join(
        &dir.path().join("m.db"),
        &new.bundle,
        &new.passphrase,
        LOVE_MOTHER,
    )
    .unwrap();
    let phone = Device {
        name: "phone",
        archive,
        dir,
    };
    let mut n = Net::new(vec![admin, phone], 11);
    n.peers[1].record("谈心", CHILD, "2026-11-18", &[("notes", "每周谈心")]);
    let scope = n.peers[0].archive.scope_for(&mother).unwrap();
    n.set_scope(0, 1, scope);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1), "{:?}", n.link_traffic(0, 1));
    assert_eq!(n.peers[0].file(CHILD).records.len(), 1);
}

/// 12. While a teacher's phone is connected, the office pairs a counsellor and writes a home
///     visit; the app announces the child's file before the school document. The phone cannot
///     judge the visit yet (it rests on a school state not here) and defers it; once the school
///     document arrives in the same session, the visit is taken up again at once: the session
///     does not end caught up with the file still apart.
#[test]
fn story_12_a_deferred_change_is_taken_up_when_its_school_state_arrives() {
    let mut n = net(&[HEAD_TEACHER], 12);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1));

    n.peers[0].archive.pair(COUNSELLOR, "赵子涵", None).unwrap();
    let id = n.peers[0].record("家访", CHILD, "2026-11-20", &[("notes", "结对之后的家访")]);
    let child = n.peers[0].archive.find_child(CHILD).unwrap();
    n.local_change(0, &DocId::Child(child));
    n.run_until_quiescent(STEPS).unwrap();
    n.local_change(0, &DocId::School);
    n.run_until_quiescent(STEPS).unwrap();

    assert!(n.connected(0, 1));
    assert!(n.caught_up(0, 1), "{:?}", n.link_traffic(0, 1));
    assert!(
        n.peers[1]
            .file(CHILD)
            .records
            .iter()
            .any(|r| r.meta.id.0 == id),
        "the deferred visit reached the phone in the same session"
    );
    same(&mut n, 0, 1);
}

/// 12b. The same with the care file: the office corrects the child's file and then writes a
///     心理辅导记录 in the private part (which declares the care file's new heads), and the app
///     announces the private part first. The phone defers the record (the care file it rests
///     on is not here yet); once the care file arrives in the same session, the record is
///     taken up again at once.
#[test]
fn story_12b_a_private_record_is_taken_up_when_its_care_file_arrives() {
    let mut n = net(&[HEAD_TEACHER], 12);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1));

    n.peers[0]
        .archive
        .edit_child(CHILD, "profile", &kv(&[("address", "红旗村三组")]))
        .unwrap();
    let id = n.peers[0].record(
        "心理辅导记录",
        CHILD,
        "2026-11-20",
        &[("notes", "情绪低落，约定下周再谈")],
    );
    let child = n.peers[0].archive.find_child(CHILD).unwrap();
    let shown = |n: &mut Net| {
        n.peers[1]
            .archive
            .child_file_for(CHILD, Some("核对"))
            .unwrap()
            .records
            .iter()
            .any(|r| r.meta.id.0 == id)
    };
    // (Before a care file's move took its part up again, this session ended caught up
    // without the record.)
    n.local_change(0, &DocId::Private(child.clone()));
    n.run_until_quiescent(STEPS).unwrap();
    n.local_change(0, &DocId::Child(child));
    n.run_until_quiescent(STEPS).unwrap();

    assert!(n.connected(0, 1));
    assert!(n.caught_up(0, 1), "{:?}", n.link_traffic(0, 1));
    assert!(
        shown(&mut n),
        "the deferred record reached the phone in the same session"
    );
    same(&mut n, 0, 1);
}

/// 12c. The same for two children at once: each private part waits for its own child's care
///     file, and both records reach the phone in the same session.
#[test]
fn story_12c_two_parts_waiting_for_their_own_care_files_both_arrive() {
    let mut n = net(&[HEAD_TEACHER], 12);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1));

    let children = [CHILD, "赵子涵"];
    let mut ids = Vec::new();
    for c in children {
        n.peers[0]
            .archive
            .edit_child(c, "profile", &kv(&[("address", "红旗村三组")]))
            .unwrap();
        ids.push(n.peers[0].record(
            "心理辅导记录",
            c,
            "2026-11-20",
            &[("notes", "情绪低落，约定下周再谈")],
        ));
    }
    let docs: Vec<_> = children
        .iter()
        .map(|c| n.peers[0].archive.find_child(c).unwrap())
        .collect();
    for c in &docs {
        n.local_change(0, &DocId::Private(c.clone()));
        n.run_until_quiescent(STEPS).unwrap();
    }
    for c in &docs {
        n.local_change(0, &DocId::Child(c.clone()));
    }
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1), "{:?}", n.link_traffic(0, 1));
    for (c, id) in children.iter().zip(&ids) {
        let shown = n.peers[1]
            .archive
            .child_file_for(c, Some("核对"))
            .unwrap()
            .records
            .iter()
            .any(|r| &r.meta.id.0 == id);
        assert!(shown, "{c}'s record reached the phone");
    }
}

/// A record written to `peer`'s store through a connection of its own (another phone's
/// changes being merged at the hub, the app writing while a sync runs): the sessions over the
/// peer's store hear of it only by reading the store.
fn written_elsewhere(n: &Net, peer: usize, child: &str, notes: &str) -> String {
    let mut other = shouwang_core::Archive::open(&n.peers[peer].path()).unwrap();
    other
        .add_record(&shouwang_core::RecordInput {
            kind: "家访".into(),
            child: Some(child.into()),
            class: None,
            date: "2026-11-21".into(),
            fields: vec![("notes".into(), notes.into())],
        })
        .unwrap()
        .0
}

/// Whether `child`'s file on `peer` holds the record `id`.
fn holds_record_of(net: &mut Net, peer: usize, child: &str, id: &str) -> bool {
    net.peers[peer]
        .file(child)
        .records
        .iter()
        .any(|r| r.meta.id.0 == id)
}

/// A hub (peer 0) and a 班主任's phone (peer 1) that synced once and are apart again.
fn in_sync_then_apart(seed: u64) -> Net {
    let mut n = net(&[HEAD_TEACHER], seed);
    n.connect(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    n.disconnect(0, 1);
    n
}

/// Runs until quiescent; the first time `when` holds, `then` runs.
fn run_and_once(n: &mut Net, when: impl Fn(&mut Net) -> bool, then: impl FnOnce(&mut Net)) {
    let mut then = Some(then);
    for _ in 0..STEPS {
        if then.is_some() && when(n) {
            (then.take().unwrap())(n);
        }
        if !n.step() {
            assert!(then.is_none(), "the moment never came");
            return;
        }
    }
    panic!("still exchanging after {STEPS} frames");
}

/// 13. A phone's sync ends once it holds what the hub held: while the 班主任's three 家访
///     cross to the hub, another teacher's 家访 for the same child and one for another child
///     reach the hub through other connections. The sync ends caught up on both sides with
///     her visits at the hub and neither of the others on her phone (the hub, too, concludes:
///     her phone ends on an Idle of the hub's that a later one has followed); they wait for
///     her next sync, which brings them.
#[test]
fn story_13_a_one_shot_sync_leaves_later_arrivals_for_the_next() {
    let mut n = in_sync_then_apart(13);
    let mine: Vec<String> = (0..3)
        .map(|i| {
            n.peers[1].record(
                "家访",
                CHILD,
                "2026-11-20",
                &[("notes", &format!("班主任家访{i}"))],
            )
        })
        .collect();

    n.connect_one_shot(0, 1);
    let mut later = Vec::new();
    run_and_once(
        &mut n,
        |n| holds_record(n, 0, &mine[0]),
        |n| {
            later.push(written_elsewhere(n, 0, CHILD, "另一位老师同时送来的家访"));
            later.push(written_elsewhere(n, 0, "赵子涵", "另一个孩子的家访"));
        },
    );
    assert!(n.caught_up(0, 1), "{:?}", n.link_traffic(0, 1));
    for id in &mine {
        assert!(holds_record(&mut n, 0, id), "her visit {id} is at the hub");
    }
    assert!(
        !holds_record(&mut n, 1, &later[0]),
        "left for her next sync"
    );
    assert!(!holds_record_of(&mut n, 1, "赵子涵", &later[1]));

    n.disconnect(0, 1);
    n.connect_one_shot(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1));
    assert!(holds_record(&mut n, 1, &later[0]));
    same(&mut n, 0, 1);
}

/// 13a. The phone writes a record while its one-shot sync runs (the app's own connection, and
///      no poll has told the session), to the very file the hub has left for later (another
///      teacher's visit reached it just after its Hello). Before ending, the phone finds a
///      head of its own there that the hub is not known to hold and sends it: the record is
///      at the hub when the sync ends, and both sides record that the hub holds it, so the
///      next sync (which brings the other visit) does not send it back down.
#[test]
fn story_13a_a_record_written_during_a_one_shot_sync_is_not_left_behind() {
    let mut n = in_sync_then_apart(131);
    let first = n.peers[1].record("家访", "赵子涵", "2026-11-20", &[("notes", "离线时写的")]);

    n.connect_one_shot(0, 1);
    let other = written_elsewhere(&n, 0, CHILD, "另一位老师同时送来的家访");
    let mut during = String::new();
    run_and_once(
        &mut n,
        |n| holds_record_of(n, 0, "赵子涵", &first),
        |n| {
            during = written_elsewhere(n, 1, CHILD, "同步时在应用里写的");
        },
    );
    assert!(n.caught_up(0, 1), "{:?}", n.link_traffic(0, 1));
    assert!(
        holds_record(&mut n, 0, &during),
        "written during the sync, at the hub"
    );
    assert!(!holds_record(&mut n, 1, &other), "left for the next sync");

    // The file was left for later, yet both record that the hub holds her record: the next
    // sync does not send it back down.
    let child = DocId::Child(n.peers[1].archive.find_child(CHILD).unwrap());
    let hers = stored_heads(&n.peers[1].archive.store().heads(&child).unwrap());
    let phone = n.peers[1].archive_ref().device().to_string();
    let hub = n.peers[0].archive_ref().device().to_string();
    for (peer, other_side) in [(0, &phone), (1, &hub)] {
        let shared = n.peers[peer]
            .archive
            .store()
            .shared_with(other_side)
            .unwrap();
        let shared = stored_heads(shared.get(&child).map_or("", String::as_str));
        assert!(
            hers.iter().all(|h| shared.contains(h)),
            "peer {peer} records her heads as shared"
        );
    }
    n.disconnect(0, 1);
    n.connect_one_shot(0, 1);
    n.run_until_quiescent(STEPS).unwrap();
    assert!(n.caught_up(0, 1));
    assert!(holds_record(&mut n, 1, &other));
    same(&mut n, 0, 1);
}
