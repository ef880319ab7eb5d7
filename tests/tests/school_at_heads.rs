//! The school as it was at some heads, read in place.
//!
//! Every incoming change is judged against the school state it declares
//! (`core/src/trust`). That state is read from the current school document with a clock
//! (`school::read_at`), not from a copy rebuilt from its history (`Automerge::fork_at`). These
//! stories check that the two reads agree at every state a school passes through.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ReadDoc};
use shouwang_core::archive::LeaveInput;
use shouwang_core::doc::DocId;
use shouwang_core::school;
use shouwang_tests::fixtures::*;

fn school_doc(d: &mut Device) -> Automerge {
    d.archive
        .store()
        .doc(&DocId::School)
        .unwrap()
        .unwrap()
        .clone()
}

/// The view at `heads`, read in place and read from a fork, must be the same.
fn assert_same_at(doc: &Automerge, heads: &[ChangeHash]) {
    let forked = school::read(&doc.fork_at(heads).unwrap());
    assert_eq!(school::read_at(doc, heads), forked, "at {heads:?}");
}

/// 1. A school's whole life: members, a class, the roster, pairings, devices joining and one
///    revoked, a member leaving, a child leaving school, a child's file erased, rules and the
///    privacy officer set. At the heads after each change, both reads agree.
#[test]
fn story_1_every_state_of_a_school_reads_the_same_in_place_as_from_a_fork() {
    let mut admin = school();
    let teacher = join(&mut admin, HEAD_TEACHER);
    let _mother = join(&mut admin, LOVE_MOTHER);
    let device = teacher.archive_ref().device().as_str().to_owned();
    admin.archive.revoke_device(&device).unwrap();
    admin.archive.deactivate_member(COUNSELLOR).unwrap();
    admin
        .archive
        .leave_child(
            CHILDREN[3].1,
            &LeaveInput {
                date: "2026-11-20".into(),
                reason: "转学".into(),
                to: Some("丁里镇中心小学".into()),
            },
        )
        .unwrap();
    admin
        .archive
        .erase_child(CHILDREN[2].1, "监护人撤回同意")
        .unwrap();
    admin.archive.set_rule("parent_contact_days", "14").unwrap();
    admin
        .archive
        .set_privacy_officer("晁月静", "0564-4552466")
        .unwrap();

    let doc = school_doc(&mut admin);
    let changes = doc.get_changes(&[]);
    assert!(changes.len() >= 15, "{} changes", changes.len());
    for c in &changes {
        assert_same_at(&doc, &[c.hash()]);
    }
    // The states differ from each other: the check compares something.
    let first = school::read_at(&doc, &[changes[0].hash()]);
    let last = school::read_at(&doc, &doc.get_heads());
    assert!(first.members.len() < last.members.len());
    assert!(last.devices.iter().any(|d| d.revoked));
    assert!(!last.erasures.is_empty() && !last.departures.is_empty());
    assert_eq!(last, school::read(&doc));
}

/// 2. Two administrators edit the same member offline and both add a device: at either side's
///    heads, and at the merge with its conflicting values, both reads agree.
#[test]
fn story_2_concurrent_edits_read_the_same_in_place_as_from_a_fork() {
    let mut admin = school();
    let base = school_doc(&mut admin);
    let member = {
        let members = school::read(&base).members;
        members
            .iter()
            .find(|m| m.name == LOVE_MOTHER)
            .unwrap()
            .id
            .clone()
    };
    let members = match base.get(ROOT, "members").unwrap() {
        Some((_, id)) => id,
        None => panic!("no members"),
    };
    let mut sides = Vec::new();
    for (name, active) in [("刘桂兰（一组）", false), ("刘桂兰（二组）", true)] {
        let mut d = base.fork();
        let mut tx = d.transaction();
        let (_, m) = tx.get(&members, member.as_str()).unwrap().unwrap();
        tx.put(&m, "name", name).unwrap();
        tx.put(&m, "active", active).unwrap();
        tx.commit();
        sides.push(d);
    }
    let mut merged = sides[0].clone();
    merged.merge(&mut sides[1].clone()).unwrap();
    let heads: Vec<Vec<ChangeHash>> = sides.iter().map(|d| d.get_heads()).collect();
    for h in &heads {
        assert_same_at(&merged, h);
    }
    let both = merged.get_heads();
    assert_eq!(both.len(), 2);
    assert_same_at(&merged, &both);
    assert_same_at(&merged, &base.get_heads());
    // The sides really differ at their own heads.
    let at = |h: &[ChangeHash]| {
        school::read_at(&merged, h)
            .members
            .into_iter()
            .find(|m| m.id == member)
            .unwrap()
    };
    assert_ne!(at(&heads[0]).name, at(&heads[1]).name);
}
