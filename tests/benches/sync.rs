//! Sync benchmark (a bench binary; prints markdown tables for BENCHMARKS.md):
//!
//! - a no-op reconnect with 10, 100 and 1,000 documents: frames, round trips, bytes;
//! - a teacher's offline week (10 家访, 10 谈心, 5 电话记录, 3 profile edits) on a store of 40
//!   children with a year of history: bytes of protocol frames vs. the zstd-compressed size of
//!   the new changes themselves.
//!
//! Run with `cargo bench -p shouwang-tests --bench sync`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failure

use std::time::Instant;

use shouwang_core::RecordInput;
use shouwang_core::roster::parse_table;
use shouwang_tests::fixtures::*;
use shouwang_tests::sim::Net;

fn school_with(children: usize) -> Vec<Device> {
    let mut admin = school();
    if children > 0 {
        let mut table = vec![vec!["学籍号".to_owned(), "姓名".into(), "班级".into()]];
        for i in 0..children {
            table.push(vec![
                format!("G88{i:05}"),
                format!("学生{i:04}"),
                CLASS.into(),
            ]);
        }
        admin
            .archive
            .import_roster(&parse_table(&table).unwrap())
            .unwrap();
    }
    let teacher = join(&mut admin, HEAD_TEACHER);
    vec![admin, teacher]
}

fn no_op_reconnect() {
    println!("| documents | frames | round trips | protocol bytes (both ways) |");
    println!("|---|---|---|---|");
    for target in [10usize, 100, 1000] {
        // 4 fixture children = 9 documents; each roster child adds 2.
        let extra = (target.saturating_sub(9)).div_ceil(2);
        let mut net = Net::new(school_with(extra), 1);
        net.connect(0, 1);
        net.run_until_quiescent(1_000_000).unwrap();
        let docs = net.peers[0].archive.store().doc_ids().unwrap().len();
        net.disconnect(0, 1);
        net.connect(0, 1);
        net.run_until_quiescent(1_000_000).unwrap();
        let (frames, bytes) = net.link_traffic(0, 1).unwrap();
        // Both Hellos are sent at once; each side is done on receiving the other's.
        let round_trips = if frames <= 2 { 1 } else { frames.div_ceil(2) };
        println!("| {docs} | {frames} | {round_trips} | {bytes} |");
    }
}

fn teachers_week() {
    let mut peers = school_with(36);
    // A year of history: 100 records per child, exchanged before the week starts.
    let names: Vec<String> = peers[0]
        .archive
        .children(None, false)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    for (i, name) in names.iter().enumerate() {
        for k in 0..25 {
            let _ = peers[1].archive.add_record(&RecordInput {
                kind: "谈心".into(),
                child: Some(name.clone()),
                class: None,
                date: format!("2026-{:02}-{:02}", 1 + (k % 10), 1 + (i % 27)),
                fields: kv(&[("notes", "每月谈心：学习有进步，想念在外打工的妈妈。")]),
            });
        }
    }
    let mut net = Net::new(peers, 2);
    net.connect(0, 1);
    net.run_until_quiescent(10_000_000).unwrap();
    net.disconnect(0, 1);
    let before: Vec<(String, String)> = heads(&mut net.peers[1]);
    let base = net.peers[1].archive.export_bundle(None, None).unwrap();
    let base = shouwang_core::bundle::Bundle::decode(&base).unwrap();
    let t = &mut net.peers[1];
    for i in 0..10 {
        t.record(
            "家访",
            &names[i],
            "2026-11-17",
            &[
                (
                    "notes",
                    "家访：奶奶身体尚可，孩子作业按时完成，周末和妈妈视频。",
                ),
                ("met_with", "奶奶"),
            ],
        );
        t.record(
            "谈心",
            &names[i + 10],
            "2026-11-18",
            &[
                ("notes", "谈心：说起过年爸爸妈妈回来就很高兴。"),
                ("emotion", "稳定"),
            ],
        );
    }
    for i in 0..5 {
        t.record(
            "电话记录",
            &names[i + 20],
            "2026-11-19",
            &[
                ("with_whom", "母亲"),
                ("notes", "与母亲通话十分钟，汇报期中考试情况。"),
            ],
        );
    }
    for i in 0..3 {
        t.archive
            .edit_child(&names[i + 30], "guardian", &kv(&[("phone", "13805641234")]))
            .unwrap();
    }
    // The new changes alone, compressed: the floor for any protocol.
    let delta = t.archive.export_bundle(None, Some(&base)).unwrap();
    let decoded = shouwang_core::bundle::Bundle::decode(&delta).unwrap();
    let raw: Vec<u8> = decoded
        .entries
        .iter()
        .flat_map(|e| e.data.clone())
        .collect();
    let floor = zstd::bulk::compress(&raw, 19).unwrap().len();
    assert_ne!(before, heads(&mut net.peers[1]));
    let start = Instant::now();
    net.connect(0, 1);
    net.run_until_quiescent(10_000_000).unwrap();
    let elapsed = start.elapsed();
    let (frames, bytes) = net.link_traffic(0, 1).unwrap();
    println!();
    println!("| a teacher's week | value |");
    println!("|---|---|");
    println!("| documents changed | {} |", decoded.entries.len());
    println!("| new changes, zstd -19 (floor) | {floor} bytes |");
    println!("| protocol frames on the link | {frames} frames, {bytes} bytes |");
    println!(
        "| ratio wire / floor | {:.2}× |",
        bytes as f64 / floor as f64
    );
    println!(
        "| simulated session CPU time (no network) | {:.1} ms |",
        elapsed.as_secs_f64() * 1e3
    );
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    no_op_reconnect();
    teachers_week();
}
