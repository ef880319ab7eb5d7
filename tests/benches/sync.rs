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

use shouwang_tests::fixtures::heads;
use shouwang_tests::sim::Net;
use shouwang_tests::workload::{self, school_with};

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
    let mut peers = school_with(workload::CHILDREN - shouwang_tests::fixtures::CHILDREN.len());
    // A year of history, exchanged before the week starts.
    workload::year_of_history(&mut peers[1].archive);
    let mut net = Net::new(peers, 2);
    net.connect(0, 1);
    net.run_until_quiescent(10_000_000).unwrap();
    net.disconnect(0, 1);
    let before: Vec<(String, String)> = heads(&mut net.peers[1]);
    let t = &mut net.peers[1];
    let base = workload::snapshot(&mut t.archive);
    workload::teachers_week(&mut t.archive);
    // The new changes alone, compressed: the floor for any protocol.
    let week = workload::new_changes(&mut t.archive, &base);
    let floor = week.compressed;
    assert_ne!(before, heads(&mut net.peers[1]));
    let start = Instant::now();
    net.connect(0, 1);
    net.run_until_quiescent(10_000_000).unwrap();
    let elapsed = start.elapsed();
    let (frames, bytes) = net.link_traffic(0, 1).unwrap();
    println!();
    println!("| a teacher's week | value |");
    println!("|---|---|");
    println!("| documents changed | {} |", week.docs);
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
