//! The zstd level of sync frames (a bench binary; prints a markdown table for BENCHMARKS.md
//! §5).
//!
//! Every frame body over 200 bytes is compressed (`core::sync::wire`). The level trades CPU on
//! both ends against bytes on a slow link. Three `Changes` frames, built from the workload of
//! §5 the way a session builds them (each document's changes the peer lacks):
//!
//! - **one phone's storm push**: 20 records for 4 children, as each phone of §7 sends;
//! - **the week**: a 班主任's offline week, 28 documents (§5, §6);
//! - **the year**: every change of the 40 children's files, what a new 班主任's phone receives
//!   (§14).
//!
//! For each: the body's size, then for each zstd level the compressed size and the median time
//! of one compression; beside them, in the same run, `Message::encode` as shipped.
//!
//! Run with `cargo bench -p shouwang-tests --bench compression` (`COMPRESSION_RUNS`, 20 by
//! default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failure

use std::time::Duration;

use automerge::ChangeHash;
use shouwang_core::doc::DocId;
use shouwang_core::sync::wire::Message;
use shouwang_core::{Archive, RecordInput};
use shouwang_tests::figures::{env_usize, percentile, thousands, timed};
use shouwang_tests::fixtures::{CHILDREN, kv};
use shouwang_tests::workload::{self, Snapshot, school_with};

const LEVELS: [i32; 9] = [1, 3, 6, 9, 12, 13, 14, 15, 19];

/// The changes of every document of `archive` that `base` lacks, as a `Changes` frame carries
/// them.
fn changes_since(archive: &mut Archive, base: &Snapshot) -> Vec<(DocId, Vec<u8>)> {
    let store = archive.store();
    let mut out = Vec::new();
    for id in store.doc_ids().unwrap() {
        let Some(doc) = store.doc(&id).unwrap() else {
            continue;
        };
        let have: Vec<ChangeHash> = base.get(&id).cloned().unwrap_or_default();
        if have == doc.get_heads() {
            continue;
        }
        let mut bytes = Vec::new();
        for change in doc.get_changes(&have) {
            bytes.extend_from_slice(change.raw_bytes());
        }
        out.push((id, bytes));
    }
    out
}

/// The body a `Changes` frame compresses: count | (key | len | changes)*.
fn body(changes: &[(DocId, Vec<u8>)]) -> Vec<u8> {
    let mut out = (changes.len() as u32).to_le_bytes().to_vec();
    for (id, bytes) in changes {
        let key = id.key();
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let runs = env_usize("COMPRESSION_RUNS", 20).max(1);
    let mut peers = school_with(workload::CHILDREN - CHILDREN.len());
    let teacher = &mut peers[1].archive;
    workload::year_of_history(teacher);
    let year_base = workload::snapshot(teacher);

    // One phone's storm push: 20 谈心 for 4 children.
    let names = workload::names(teacher);
    for k in 0..20 {
        let child = &names[k % 4];
        let input = RecordInput {
            kind: "谈心".into(),
            child: Some(child.clone()),
            class: None,
            date: "2026-11-16".into(),
            fields: kv(&[
                (
                    "notes",
                    "聊了这周在学校的情况，说数学作业有两道题不会，已经约好周四放学后一起看。",
                ),
                ("emotion", "稳定"),
            ]),
        };
        teacher.add_record(&input).unwrap();
    }
    let push = changes_since(teacher, &year_base);
    let week_base = workload::snapshot(teacher);
    workload::teachers_week(teacher);
    let week = changes_since(teacher, &week_base);
    let year = changes_since(teacher, &Snapshot::new());

    println!("| frame | body | level | compressed | median time | 90th percentile |");
    println!("|---|---|---|---|---|---|");
    for (name, changes) in [
        ("one phone's storm push", &push),
        ("the week", &week),
        ("the year", &year),
    ] {
        let body = body(changes);
        let raw = thousands(body.len() as f64);
        for level in LEVELS {
            let mut size = 0;
            let times = timed(runs, || {
                size = zstd::bulk::compress(&body, level).unwrap().len();
            });
            println!(
                "| {name} ({} documents) | {raw} | {level} | {} | {} | {} |",
                changes.len(),
                thousands(size as f64),
                us(percentile(&times, 0.5)),
                us(percentile(&times, 0.9)),
            );
        }
        let message = Message::Changes(changes.clone());
        let mut size = 0;
        let times = timed(runs, || size = message.encode().len());
        println!(
            "| {name} | {raw} | **`Message::encode`** | {} (frame) | {} | {} |",
            thousands(size as f64),
            us(percentile(&times, 0.5)),
            us(percentile(&times, 0.9)),
        );
    }
}
