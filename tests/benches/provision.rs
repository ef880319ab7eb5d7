//! Provisioning a new 班主任's phone over 2G (a bench binary; prints markdown tables for
//! BENCHMARKS.md).
//!
//! The hub holds a school of 40 children whose 班主任 wrote a year of history
//! (`workload::hub_with_history`). A new phone joins as that 班主任 with a real invite, through
//! the userspace link emulator (`shouwang_tests::link`) at 2G settings: 650 ms ± 100 ms each
//! way, 2 % loss, 32 kbit/s up, 35 kbit/s down, a queue of 2.5 s. Every run starts from a copy
//! of the same hub, with its own loss seed.
//!
//! For each run it prints the bytes on the wire each way (UDP payload: QUIC, TLS and our
//! frames), the bytes of the member's documents received (the enrollment bundle), the floor,
//! the wall time and its limit, and how often the phone could tell its user how far it was:
//!
//! ```text
//! floor = zstd -19 of every document the phone holds after the join (automerge's saved form)
//! limit = 1 RTT (QUIC + TLS 1.3 handshake) + 1 RTT (the invite, then the documents)
//!         + sent up / rate up + sent down / rate down
//! ```
//!
//! with the RTT measured through the same emulated link. Targets (issue 14): bytes received
//! ≤ 1.3 × the floor, wall ≤ 1.5 × the limit, and progress shown all along.
//!
//! A last run has the link's loss set to zero, to show what loss costs.
//!
//! After the join the phone syncs once, as the app does; that sync is reported on its own line
//! (it carries only what the phone wrote since: its first access-log entries).
//!
//! Run with `cargo bench -p shouwang-tests --bench provision` (`SHOUWANG_2G_RUNS` sets the
//! number of runs, 3 by default).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failure

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use shouwang_relay::device;
use shouwang_relay::server::{self, Server};
use shouwang_relay::transport::ConversationOptions;
use shouwang_tests::figures::{bench_runtime, env_usize, secs};
use shouwang_tests::link::{self, Link, LinkConfig};
use shouwang_tests::link_hub::{JoinOver, hub_only, hub_socket, join_over, sync_over};
use shouwang_tests::workload::{self, Snapshot};

struct Run {
    wall: Duration,
    limit: Duration,
    up_bytes: u64,
    up_datagrams: u64,
    down_bytes: u64,
    down_datagrams: u64,
    lost: u64,
    /// Dropped at the bottleneck queue (QUIC sent faster than the link drains).
    dropped: u64,
    /// Bytes of the member's documents, as the hub sent them.
    bundle: u64,
    /// zstd -19 of the documents the phone holds after the join.
    floor: usize,
    docs: usize,
    /// When the first progress report came, and the longest wait between two after it
    /// (the last one to the end of the join included).
    first_report: Duration,
    longest_gap: Duration,
    reports: usize,
    /// The sync after the join: wire bytes up / down and wall.
    sync_up: u64,
    sync_down: u64,
    sync_wall: Duration,
}

/// One provisioning over a fresh 2G link (`lossless`: with its loss set to zero), from a copy
/// of the hub.
async fn run(hub_src: &Path, dir: &Path, seed: u64, lossless: bool, rtt: Duration) -> Run {
    let hub_dir = dir.join("hub");
    workload::copy_dir(hub_src, &hub_dir);
    std::fs::copy(hub_src.with_extension("key"), hub_dir.with_extension("key")).unwrap();
    let server = Server::start(hub_only(&hub_dir)).await.unwrap();
    let mut config = LinkConfig::gprs((Ipv6Addr::LOCALHOST, 0).into(), hub_socket(&server));
    config.seed = seed;
    if lossless {
        config.up.loss = 0.0;
        config.down.loss = 0.0;
    }
    let link = Link::start(config).await.unwrap();
    let opts = ConversationOptions {
        connect_timeout: Duration::from_secs(120),
        ..device::default_options()
    };
    let phone = dir.join("phone.db");
    let JoinOver {
        joined,
        wall,
        reports,
    } = join_over(&link, &server::DataDir::new(&hub_dir), &phone, &opts).await;
    let mut archive = joined.unwrap();
    let joined = link.stats();
    assert!(
        joined.down.delivered_bytes > 0,
        "the join went around the emulated link"
    );
    let received =
        tokio::task::block_in_place(|| workload::new_changes(&mut archive, &Snapshot::new()));
    drop(archive);
    let first_report = reports.first().map_or(wall, |r| r.0);
    let mut marks: Vec<Duration> = reports.iter().map(|r| r.0).collect();
    marks.push(wall);
    let longest_gap = marks
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();

    let (_, sync_wall) = sync_over(&link, &server, &phone).await;
    let synced = link.stats().since(&joined);
    server.shutdown().await;

    let limit = link.config().limit(2, rtt, &joined);
    Run {
        wall,
        limit,
        up_bytes: joined.up.offered_bytes,
        up_datagrams: joined.up.offered_datagrams,
        down_bytes: joined.down.offered_bytes,
        down_datagrams: joined.down.offered_datagrams,
        lost: joined.up.lost + joined.down.lost,
        dropped: joined.up.dropped_queue + joined.down.dropped_queue,
        bundle: reports.last().map_or(0, |r| r.1),
        floor: received.compressed,
        docs: received.docs,
        first_report,
        longest_gap,
        reports: reports.len(),
        sync_up: synced.up.offered_bytes,
        sync_down: synced.down.offered_bytes,
        sync_wall,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let runs = env_usize("SHOUWANG_2G_RUNS", 3) as u64;
    let rt = bench_runtime();
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    workload::hub_with_history(&hub);
    let rtt = rt.block_on(link::round_trip(&LinkConfig::gprs(
        (Ipv4Addr::LOCALHOST, 0).into(),
        (Ipv4Addr::LOCALHOST, 0).into(),
    )));
    println!(
        "measured RTT through the 2G link: {:.0} ms",
        rtt.as_secs_f64() * 1e3
    );
    println!();
    println!(
        "| run | documents | floor (zstd -19) | documents as sent | as sent ÷ floor | up: datagrams / bytes | down: datagrams / bytes | lost at random / at the queue | wire down ÷ floor | wall | limit | wall ÷ limit | progress: reports, first at, longest wait | then one sync: up / down, wall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ratios = Vec::new();
    // The seeded runs, then one without loss: what loss costs, and what is left without it.
    for i in 0..=runs {
        let lossless = i == runs;
        let run_dir = dir.path().join(format!("run{i}"));
        let r = rt.block_on(run(&hub, &run_dir, 1 + i, lossless, rtt));
        let ratio = r.wall.as_secs_f64() / r.limit.as_secs_f64();
        if !lossless {
            ratios.push(ratio);
        }
        let name = if lossless {
            "no loss".to_owned()
        } else {
            (i + 1).to_string()
        };
        println!(
            "| {} | {} | {} | {} | {:.2}× | {} / {} | {} / {} | {} / {} | {:.2}× | {} | {} | {:.2}× | {}, {}, {} | {} / {}, {} |",
            name,
            r.docs,
            r.floor,
            r.bundle,
            r.bundle as f64 / r.floor as f64,
            r.up_datagrams,
            r.up_bytes,
            r.down_datagrams,
            r.down_bytes,
            r.lost,
            r.dropped,
            r.down_bytes as f64 / r.floor as f64,
            secs(r.wall),
            secs(r.limit),
            ratio,
            r.reports,
            secs(r.first_report),
            secs(r.longest_gap),
            r.sync_up,
            r.sync_down,
            secs(r.sync_wall),
        );
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    ratios.sort_by(f64::total_cmp);
    println!();
    println!(
        "median wall ÷ limit: {:.2}× (target ≤ 1.5×); worst {:.2}×",
        ratios[ratios.len() / 2],
        ratios[ratios.len() - 1]
    );
}
