//! Reading the school document of 郭庄小学 (a bench binary; prints a markdown table for
//! BENCHMARKS.md §7).
//!
//! The storm's school (`big_school`: 200 members, 240 children, 720 pairings) as the hub's
//! office made it. Every device reads this document into a [`SchoolView`] whenever it changes,
//! and judges every change another device sends against such a view (`store::admit`), so a
//! phone syncing after the school changed reads it at least once.
//!
//! Beside it, in the same run, the floor for any reader over automerge: one walk of every map
//! of the document (`map_range`, each value looked at once, nothing built). Then the school as
//! it was before its phones were registered, read in place (`school::read_at`) and from a copy
//! rebuilt up to those heads (`fork_at`); and opening the document from its changes and from a
//! snapshot.
//!
//! Run with `cargo bench -p shouwang-tests --bench school_read` (`SCHOOL_READ_RUNS`, 50 by
//! default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failure

use std::hint::black_box;
use std::time::Duration;

use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, ValueRef};
use shouwang_core::device_key::DeviceSecret;
use shouwang_core::doc::DocId;
use shouwang_core::school;
use shouwang_relay::server::DataDir;
use shouwang_tests::big_school::{plan_school, set_up_school};
use shouwang_tests::figures::{env_usize, percentile, timed};

/// Visits every value of every map under `obj` once; returns how many.
fn walk(doc: &Automerge, obj: &ObjId) -> usize {
    doc.map_range(obj, ..)
        .map(|item| match item.value {
            ValueRef::Object(ObjType::Map) => 1 + walk(doc, &item.id()),
            other => {
                black_box(other);
                1
            }
        })
        .sum()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let runs = env_usize("SCHOOL_READ_RUNS", 50).max(1);
    let dir = tempfile::tempdir().unwrap();
    let data = DataDir::new(dir.path().join("hub"));
    let plan = plan_school();
    set_up_school(&data, &plan);
    let mut archive = data.open_archive().unwrap();
    let mut doc = archive
        .store()
        .doc(&DocId::School)
        .unwrap()
        .unwrap()
        .clone();
    // Each member's phone, registered as the hub registers an enrolled device.
    let view = school::read(&doc);
    let before_devices = doc.get_heads();
    let mut tx = doc.transaction();
    for (i, m) in view.members.iter().enumerate() {
        let secret = DeviceSecret::generate();
        let device = school::Device {
            id: secret.device_id(),
            member: m.id.clone(),
            label: format!("手机{i}"),
            revoked: false,
            key: Some(secret.public().to_hex()),
            registered_at: Some(1_764_806_400_000 + i as i64),
            console: false,
        };
        school::add_device(&mut tx, &device).unwrap();
    }
    tx.commit();
    let view = school::read(&doc);
    let values = walk(&doc, &ROOT);
    let read = timed(runs, || {
        black_box(school::read(&doc));
    });
    let floor = timed(runs, || {
        black_box(walk(&doc, &ROOT));
    });
    // As it was before the phones were registered: what a change from a phone that has not
    // caught up declares, and what each school change a phone catches up on is judged against.
    // Read in place with a clock (`school::read_at`, as admission does), and from a copy rebuilt
    // from the history up to those heads (`fork_at`, as admission did before).
    assert_eq!(
        school::read_at(&doc, &before_devices),
        school::read(&doc.fork_at(&before_devices).unwrap())
    );
    let past_in_place = timed(runs, || {
        black_box(school::read_at(&doc, &before_devices));
    });
    let past_forked = timed(runs.min(20), || {
        black_box(school::read(&doc.fork_at(&before_devices).unwrap()));
    });
    // Opening it: from its changes one by one (as stores held a document they received before
    // writes folded documents into snapshots), and from one saved snapshot (as a store holds
    // it now, `store::fold`).
    let changes: Vec<automerge::Change> = doc.get_changes(&[]);
    let snapshot = doc.save();
    let from_changes = timed(runs.min(20), || {
        let mut d = Automerge::new();
        d.apply_changes(changes.iter().cloned()).unwrap();
        black_box(d);
    });
    let from_snapshot = timed(runs.min(20), || {
        black_box(Automerge::load(&snapshot).unwrap());
    });
    println!(
        "school document: {} members, {} classes, {} pairings, {} devices; {values} values in its maps",
        view.members.len(),
        view.classes.len(),
        view.pairings.len(),
        view.devices.len()
    );
    println!();
    println!("| {runs} reads | `school::read` | floor: one walk of every map | ratio |");
    println!("|---|---|---|---|");
    for (label, p) in [("median", 0.5), ("90th percentile", 0.9)] {
        let (r, f) = (percentile(&read, p), percentile(&floor, p));
        println!(
            "| {label} | {} | {} | {:.1}× |",
            ms(r),
            ms(f),
            r.as_secs_f64() / f.as_secs_f64()
        );
    }
    println!();
    println!(
        "| as it was before its {} devices (median) | read in place (`read_at`) | from a fork (`fork_at`, then `read`) | ratio |",
        view.devices.len()
    );
    println!("|---|---|---|---|");
    let (i, f) = (
        percentile(&past_in_place, 0.5),
        percentile(&past_forked, 0.5),
    );
    println!(
        "| median | {} | {} | {:.1}× |",
        ms(i),
        ms(f),
        f.as_secs_f64() / i.as_secs_f64()
    );
    println!();
    println!(
        "| opening it ({} changes, snapshot {} bytes) | from its changes | from a snapshot | ratio |",
        changes.len(),
        snapshot.len()
    );
    println!("|---|---|---|---|");
    let (c, l) = (
        percentile(&from_changes, 0.5),
        percentile(&from_snapshot, 0.5),
    );
    println!(
        "| median | {} | {} | {:.1}× |",
        ms(c),
        ms(l),
        c.as_secs_f64() / l.as_secs_f64()
    );
}
