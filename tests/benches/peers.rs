//! Our side of the peers comparison (`tests/peers/`, BENCHMARKS §12): the same measurements the
//! Node scripts make of automerge-repo and PouchDB, made of our real stack, printed as one JSON
//! object on stdout for `tests/peers/table.mjs`.
//!
//! - The week of §5 (40 children with a year of history, a 班主任's offline week touching 28
//!   documents): the real hub started in-process on 127.0.0.1, a real device that joined with
//!   an invite and synced once, then wrote the week offline, synced through a counting UDP
//!   forwarder on loopback ([`LinkConfig::ideal`]: no delay, no loss) and, in a second run
//!   from copies of the same stores, through the EDGE emulator of §6 without loss or jitter
//!   (as the peers' TCP proxy emulates it: 420 ms each way, 200 / 240 kbit/s). Bytes are UDP payload:
//!   QUIC, TLS and our frames. Wall time is the whole sync, connecting included.
//! - A no-op reconnect at about 10, 100 and 1,000 documents: a device in sync with the hub
//!   connects again on a fresh endpoint (no TLS session to resume) and syncs nothing, to a hub
//!   that has served a sync since it started, as the peers' servers have.
//!
//! Run with `cargo bench -p shouwang-tests --bench peers` (or through `tests/peers/run.sh`).
//! `PEERS_RUNS` (3) sets the number of loopback runs of the week and of each no-op reconnect,
//! each from copies of the same stores; `PEERS_NOOP` (`10,100,1000` by default) chooses the no-op sizes; `PEERS_EDGE=0` skips
//! the EDGE run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failure

use std::net::{Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use shouwang_relay::server::{self, DataDir};
use shouwang_tests::link::{Link, LinkConfig, LinkStats};
use shouwang_tests::link_hub::{self, Start, hub_socket, sync_over};
use shouwang_tests::workload;

/// Copies the starting stores into `dir` and runs one sync through a link made by `link`.
async fn run(start: &Start, dir: &Path, link: impl FnOnce(SocketAddr) -> LinkConfig) -> Value {
    run_on(start, dir, link, false).await
}

/// [`run`], on a hub that has served one sync already when `warm_hub`: the measured sync then
/// meets the hub as a reconnect does in the field (archives open, documents and statements
/// cached), as the peers' servers are met (`tests/peers/automerge.mjs`, `pouch.mjs`: one
/// server process serves the first sync and every reconnect). The device still connects on a
/// fresh endpoint each time. The first sync's wall is kept as `cold_hub_wall_ms`.
async fn run_on(
    start: &Start,
    dir: &Path,
    link: impl FnOnce(SocketAddr) -> LinkConfig,
    warm_hub: bool,
) -> Value {
    let (server, device) = link_hub::restart(start, dir).await;
    let link = Link::start(link(hub_socket(&server))).await.unwrap();
    let (cold, base) = if warm_hub {
        let (_, wall) = sync_over(&link, &server, &device).await;
        (Some(wall), link.stats())
    } else {
        (None, LinkStats::default())
    };
    let (progress, wall) = sync_over(&link, &server, &device).await;
    let s = link.stats().since(&base);
    assert!(
        s.up.delivered_bytes >= progress.bytes_sent,
        "the sync went around the counting link: {s:?} {progress:?}"
    );
    server.shutdown().await;
    json!({
        "docs_syncing": progress.docs_syncing,
        "up_bytes": s.up.offered_bytes,
        "up_datagrams": s.up.offered_datagrams,
        "down_bytes": s.down.offered_bytes,
        "down_datagrams": s.down.offered_datagrams,
        "lost": s.up.lost + s.down.lost,
        "frames_up": progress.frames_sent,
        "frames_down": progress.frames_received,
        "frame_bytes_up": progress.bytes_sent,
        "frame_bytes_down": progress.bytes_received,
        "wall_ms": wall.as_secs_f64() * 1e3,
        "cold_hub_wall_ms": cold.map(|w| w.as_secs_f64() * 1e3),
    })
}

fn ideal(target: SocketAddr) -> LinkConfig {
    LinkConfig::ideal((Ipv6Addr::LOCALHOST, 0).into(), target)
}

/// The EDGE link of §6 without its loss and jitter: what the peers' TCP proxy emulates
/// (`tests/peers/proxy.mjs`), so that the three are compared on the same link.
fn edge(target: SocketAddr) -> LinkConfig {
    let mut config = LinkConfig::edge((Ipv6Addr::LOCALHOST, 0).into(), target);
    for d in [&mut config.up, &mut config.down] {
        d.loss = 0.0;
        d.jitter = Duration::ZERO;
    }
    config
}

async fn bench() -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut out = serde_json::Map::new();

    let week_dir = dir.path().join("week");
    let start = link_hub::prepare(&week_dir, workload::hub_with_history, true).await;
    let week = start.week.unwrap();
    let runs: usize = std::env::var("PEERS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut loopback = Vec::new();
    for i in 0..runs {
        let d = dir.path().join(format!("week-loopback-{i}"));
        loopback.push(run(&start, &d, ideal).await);
        let _ = std::fs::remove_dir_all(&d);
    }
    out.insert(
        "week".into(),
        json!({
            "docs_on_device": start.docs,
            "docs_changed": week.docs,
            "floor_raw": week.raw,
            "floor": week.compressed,
            "loopback": loopback,
        }),
    );
    if std::env::var("PEERS_EDGE").as_deref() != Ok("0") {
        let e = run(&start, &dir.path().join("week-edge"), edge).await;
        out["week"]["edge"] = e;
    }

    let sizes: Vec<usize> = std::env::var("PEERS_NOOP")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let mut noop = Vec::new();
    for target in sizes {
        // 4 fixture children = 9 documents; each roster child adds 2.
        let extra = target.saturating_sub(9).div_ceil(2);
        let d = dir.path().join(format!("noop{target}"));
        let start = link_hub::prepare(
            &d,
            |hub| {
                let mut peers = workload::school_with(extra);
                let data = DataDir::new(hub);
                server::adopt_archive(&data, &mut peers[0].archive).unwrap();
                data
            },
            false,
        )
        .await;
        let mut results = Vec::new();
        for k in 0..runs {
            let mut r = run_on(&start, &d.join(format!("run{k}")), ideal, true).await;
            r["target"] = json!(target);
            r["docs_on_device"] = json!(start.docs);
            results.push(r);
        }
        noop.push(Value::Array(results));
        let _ = std::fs::remove_dir_all(&d);
    }
    out.insert("noop".into(), Value::Array(noop));
    Value::Object(out)
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let out = rt.block_on(bench());
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
