//! Benchmark 7a over an EDGE link (a bench binary; prints markdown tables for BENCHMARKS.md).
//!
//! A 班主任's offline week (10 家访, 10 谈心, 5 电话记录, 3 profile edits, on a school of 40
//! children with a year of history) is synced to the real hub, started in-process, by a real
//! device endpoint, through the userspace link emulator (`shouwang_tests::link`) at EDGE
//! parameters: 420 ms ± 50 ms each way, 1.5 % loss, 200 kbit/s up, 240 kbit/s down. Every run
//! starts from copies of the same hub and device stores. For each run it prints the bytes on
//! the wire each way (UDP payload: QUIC, TLS and our frames), the wall time of the sync
//! (connecting included), and the limit it is held to:
//!
//! ```text
//! limit = 1 RTT (QUIC + TLS 1.3 handshake, no 0-RTT) + 2 RTT + sent up / rate up + sent down / rate down
//! ```
//!
//! with the RTT measured through the same emulated link. Targets: wall ≤ 1.5 × limit, and
//! the sync's frames ≤ 1.3 × the zstd-19 size of the new changes.
//!
//! Bytes on the wire also carry what any QUIC connection costs, whatever it carries: the
//! padded handshake, TLS, ACKs and the close. Each run measures that cost on the same link:
//! after the week, a fresh endpoint (no TLS session to resume) makes a sync with nothing new.
//! The upward wire bytes are then held to the floor plus that empty connection.
//!
//! Everything runs on loopback. The device binds only `[::1]` and the hub only `127.0.0.1`,
//! so iroh's hole punching (the hub tells the device its own addresses) cannot find a path
//! around the emulator: the only way between them is the link.
//!
//! Then the same seeds once more with the device connected ahead (a warm connection, as the
//! app makes when it opens: `transport` module docs, point 6): the sync's own wall and bytes,
//! held to 2 RTT plus its bytes. A lost handshake datagram then delays the connecting ahead,
//! not the teacher's tap on 同步.
//!
//! Run with `cargo bench -p shouwang-tests --bench edge` (`SHOUWANG_EDGE_RUNS` sets the
//! number of runs, 5 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failure

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use shouwang_relay::server::Server;
use shouwang_tests::figures::{bench_runtime, env_usize, secs};
use shouwang_tests::link::{self, Link, LinkConfig};
use shouwang_tests::link_hub::{self, Start, hub_socket, sync_over, sync_over_warm};
use shouwang_tests::workload;

struct Run {
    wall: Duration,
    up_bytes: u64,
    up_datagrams: u64,
    down_bytes: u64,
    down_datagrams: u64,
    lost: u64,
    frames_up: u64,
    frames_down: u64,
    limit: Duration,
    /// Upward wire bytes of a sync with nothing new, on a fresh endpoint over the same link.
    empty_up_bytes: u64,
}

/// The hub and device from copies of the starting stores in `dir`, and a fresh EDGE link
/// between them whose losses come from `seed`.
async fn edge_link(start: &Start, dir: &Path, seed: u64) -> (Server, PathBuf, Link) {
    let (server, device) = link_hub::restart(start, dir).await;
    let mut config = LinkConfig::edge((Ipv6Addr::LOCALHOST, 0).into(), hub_socket(&server));
    config.seed = seed;
    (server, device, Link::start(config).await.unwrap())
}

/// The week synced on a warm connection ([`sync_over_warm`]): what the sync itself moved
/// and took, after the device had connected ahead.
struct WarmRun {
    /// Connecting ahead: the QUIC handshake (and any of its datagrams lost), then the
    /// priming datagrams (`transport` module docs, point 7).
    warm_up: Duration,
    warm_up_up_bytes: u64,
    warm_up_down_bytes: u64,
    wall: Duration,
    up_bytes: u64,
    down_bytes: u64,
    lost_in_warm_up: u64,
    lost: u64,
    limit: Duration,
}

/// The week on a fresh EDGE link with the same seed, from copies of the starting stores, the
/// device having connected ahead. Limit: the protocol's 2 RTT plus the sync's bytes.
async fn warm_run(start: &Start, dir: &Path, seed: u64, rtt: Duration) -> WarmRun {
    let (server, device, link) = edge_link(start, dir, seed).await;
    let synced = sync_over_warm(&link, &server, &device).await;
    let (wall, warm_up, warmed) = (synced.wall, synced.warm_up, synced.at_start);
    let s = link.stats().since(&warmed);
    server.shutdown().await;
    let limit = link.config().limit(2, rtt, &s);
    WarmRun {
        warm_up,
        warm_up_up_bytes: warmed.up.offered_bytes,
        warm_up_down_bytes: warmed.down.offered_bytes,
        wall,
        up_bytes: s.up.offered_bytes,
        down_bytes: s.down.offered_bytes,
        lost_in_warm_up: warmed.up.lost + warmed.down.lost,
        lost: s.up.lost + s.down.lost,
        limit,
    }
}

/// One sync of the week over a fresh EDGE link, from copies of the starting stores.
async fn run(start: &Start, dir: &Path, seed: u64, rtt: Duration) -> Run {
    let (server, device, link) = edge_link(start, dir, seed).await;
    let (progress, wall) = sync_over(&link, &server, &device).await;
    let s = link.stats();
    assert!(
        s.up.delivered_bytes >= progress.bytes_sent,
        "the sync went around the emulated link: {s:?} {progress:?}"
    );
    // What a connection costs on this link when it carries nothing new (a fresh endpoint
    // again, so no TLS session ticket shortens the handshake).
    let (empty, _) = sync_over(&link, &server, &device).await;
    assert_eq!(empty.docs_syncing, 0, "the second sync had work: {empty:?}");
    let empty_up_bytes = link.stats().since(&s).up.offered_bytes;
    server.shutdown().await;
    let limit = link.config().limit(3, rtt, &s);
    Run {
        wall,
        up_bytes: s.up.offered_bytes,
        up_datagrams: s.up.offered_datagrams,
        down_bytes: s.down.offered_bytes,
        down_datagrams: s.down.offered_datagrams,
        lost: s.up.lost + s.down.lost,
        frames_up: progress.bytes_sent,
        frames_down: progress.bytes_received,
        limit,
        empty_up_bytes,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let runs = env_usize("SHOUWANG_EDGE_RUNS", 5) as u64;
    let rt = bench_runtime();
    let dir = tempfile::tempdir().unwrap();
    let start = rt.block_on(link_hub::prepare(
        dir.path(),
        workload::hub_with_history,
        true,
    ));
    let rtt = rt.block_on(link::round_trip(&LinkConfig::edge(
        (Ipv4Addr::LOCALHOST, 0).into(),
        (Ipv4Addr::LOCALHOST, 0).into(),
    )));
    let week = start.week.unwrap();
    println!("| a teacher's week over EDGE | value |");
    println!("|---|---|");
    println!("| documents changed | {} |", week.docs);
    println!(
        "| new changes, zstd -19 (floor) | {} bytes |",
        week.compressed
    );
    println!(
        "| measured RTT through the link | {:.0} ms |",
        rtt.as_secs_f64() * 1e3
    );
    println!();
    println!(
        "| run | up: datagrams / bytes | down: datagrams / bytes | lost | sync frames up / down | frames up ÷ floor | empty connection up | wire up ÷ (floor + empty) | wall | limit | wall ÷ limit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for i in 0..runs {
        let run_dir = dir.path().join(format!("run{i}"));
        let r = rt.block_on(run(&start, &run_dir, 1 + i, rtt));
        let ratio = r.wall.as_secs_f64() / r.limit.as_secs_f64();
        ratios.push(ratio);
        println!(
            "| {} | {} / {} | {} / {} | {} | {} / {} | {:.2}× | {} | {:.2}× | {} | {} | {:.2}× |",
            i + 1,
            r.up_datagrams,
            r.up_bytes,
            r.down_datagrams,
            r.down_bytes,
            r.lost,
            r.frames_up,
            r.frames_down,
            r.frames_up as f64 / week.compressed as f64,
            r.empty_up_bytes,
            r.up_bytes as f64 / (week.compressed as u64 + r.empty_up_bytes) as f64,
            secs(r.wall),
            secs(r.limit),
            ratio
        );
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    summary(&mut ratios);

    // The same seeds, the device having connected ahead (a warm connection).
    println!();
    println!(
        "| run, warm | connecting ahead: wall (lost), up / down bytes | sync: up / down bytes | lost | wall | limit (2 RTT + bytes) | wall ÷ limit |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for i in 0..runs {
        let run_dir = dir.path().join(format!("warm{i}"));
        let r = rt.block_on(warm_run(&start, &run_dir, 1 + i, rtt));
        let ratio = r.wall.as_secs_f64() / r.limit.as_secs_f64();
        ratios.push(ratio);
        println!(
            "| {} | {} ({}), {} / {} | {} / {} | {} | {} | {} | {:.2}× |",
            i + 1,
            secs(r.warm_up),
            r.lost_in_warm_up,
            r.warm_up_up_bytes,
            r.warm_up_down_bytes,
            r.up_bytes,
            r.down_bytes,
            r.lost,
            secs(r.wall),
            secs(r.limit),
            ratio
        );
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    summary(&mut ratios);
}

/// Median, 90th percentile and worst of `ratios`.
fn summary(ratios: &mut [f64]) {
    ratios.sort_by(f64::total_cmp);
    let p90 = ratios[(ratios.len() * 9).div_ceil(10).saturating_sub(1)];
    println!();
    println!(
        "wall ÷ limit: median {:.2}×, 90th percentile {p90:.2}× (target ≤ 1.5×), worst {:.2}× (target ≤ 2×)",
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1]
    );
}
