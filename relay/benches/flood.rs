#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The phone's sync time with and without a flood (issue 10; `tests/flood.rs` asserts only
//! that the phone finishes and the hub's memory bound, never a time).
//!
//! The real `shouwang-relay serve` (the bench build) in its own process on 127.0.0.1, a
//! 班主任's phone enrolled with a real invite. Each run the phone writes 30 家访 offline and
//! syncs them (`device::sync_hub`, connecting included). First `FLOOD_RUNS` runs with no
//! flood, then the flood starts (`shouwang_tests::flood`: `FLOOD_ENDPOINTS` fresh endpoints,
//! default 250, × 4 connections, half opening with a 16 MiB first frame, half silent,
//! reconnecting half a second after the hub closes them) and the same runs again, same hub,
//! same phone, same process. The hub's RSS is sampled every 20 ms.
//!
//! Run: `cargo bench -p shouwang-relay --bench flood`. Prints a markdown table for
//! BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

use shouwang_core::roles::Role;
use shouwang_core::{Archive, RecordInput};
use shouwang_relay::device::{self, Identity};
use shouwang_relay::handshake;
use shouwang_relay::server;
use shouwang_relay::transport::{EndpointAddr, Node};
use shouwang_tests::figures::{env_usize, ms};
use shouwang_tests::fixtures::{HEAD_TEACHER, small_hub};
use shouwang_tests::flood::{Flood, FloodStats};
use shouwang_tests::hub_process::{HubPorts, HubProcess, Sampler, mib, status_kb};
use shouwang_tests::phone::now;

const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");

fn write_week(phone: &mut Archive, n: usize, run: usize) {
    for i in 0..n {
        phone
            .add_record(&RecordInput {
                kind: "家访".into(),
                child: Some(if i % 2 == 0 { "王小雨" } else { "赵子涵" }.into()),
                class: None,
                date: format!("2026-11-{:02}", 1 + run % 28),
                fields: vec![(
                    "notes".into(),
                    format!("第{run}周第{i}次家访：奶奶身体还好，作业按时完成"),
                )],
            })
            .unwrap();
    }
}

/// One sync of a fresh week; its wall time, or why it failed.
async fn timed_sync(
    node: &Node,
    identity: &Identity,
    archive: &mut Option<Archive>,
    path: &Path,
    run: usize,
) -> Result<Duration, String> {
    let mut a = match archive.take() {
        Some(a) => a,
        None => Archive::open(path).unwrap(),
    };
    write_week(&mut a, 30, run);
    let t = Instant::now();
    let r = device::sync_hub(node, identity, a, &device::default_options(), None).await;
    let took = t.elapsed();
    match r {
        Ok((a, _)) => {
            *archive = Some(a);
            Ok(took)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn summary(times: &[Duration]) -> (Duration, Duration, Duration) {
    let mut t = times.to_vec();
    t.sort();
    (t[0], t[t.len() / 2], t[t.len() - 1])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = env_usize("FLOOD_RUNS", 5).max(1);
    let endpoints = env_usize("FLOOD_ENDPOINTS", 250);
    let dir = tempfile::tempdir().unwrap();
    let data = small_hub(dir.path());
    let ports = HubPorts::write(dir.path(), &data, "");
    // FLOOD_HUB_BIN: another build of the server, or a wrapper (a profiler).
    let bin =
        std::env::var_os("FLOOD_HUB_BIN").map_or_else(|| BIN.into(), std::path::PathBuf::from);
    let hub = HubProcess::start(&bin, &ports, &dir.path().join("hub.log"));
    let pid = hub.pid();
    let ticket = server::issue_invite(
        &data,
        &ports.contact(),
        HEAD_TEACHER,
        Role::HeadTeacher,
        now(),
        now() + 86_400,
    )
    .unwrap()
    .ticket;
    let path = dir.path().join("phone.db");
    let mut joined = device::join(
        &path,
        None,
        &ticket,
        "手机",
        now(),
        &device::default_options(),
    )
    .await
    .unwrap();
    let identity = Identity::load(&mut joined).unwrap();
    let node = identity.bind(false).await.unwrap();
    let mut archive = Some(joined);
    // Warm-up (not counted).
    timed_sync(&node, &identity, &mut archive, &path, 0)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = status_kb(&pid, "VmRSS");

    let mut quiet = Vec::new();
    for run in 1..=runs {
        quiet.push(
            timed_sync(&node, &identity, &mut archive, &path, run)
                .await
                .unwrap(),
        );
    }

    let sampler = Sampler::start(pid.clone());
    let hub_id = handshake::hub_addr(&identity.invite).unwrap().id;
    let direct = EndpointAddr::new(hub_id).with_ip_addr(([127, 0, 0, 1], ports.hub).into());
    let flood = Flood::start(direct, endpoints, 4).await;
    for _ in 0..200 {
        if FloodStats::get(&flood.stats().connected) >= (endpoints * 4 / 2) as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut flooded = Vec::new();
    let mut failures = Vec::new();
    for run in runs + 1..=2 * runs {
        match timed_sync(&node, &identity, &mut archive, &path, run).await {
            Ok(t) => flooded.push(t),
            Err(e) => failures.push(e),
        }
    }
    let stats = flood.stats();
    let (connected, failed, closed) = (
        FloodStats::get(&stats.connected),
        FloodStats::get(&stats.failed),
        FloodStats::get(&stats.closed),
    );
    let metrics = hub.metrics();
    drop(flood);
    // How fast the flood's memory goes back once it stops (held state, or the allocator's).
    let mut after = Vec::new();
    for wait in [0u64, 1, 2, 5, 10] {
        tokio::time::sleep(Duration::from_secs(wait)).await;
        after.push(status_kb(&pid, "VmRSS"));
    }
    // The peak over the flood and the seconds after it (the hub still drains then).
    let (peak, _) = sampler.finish();
    drop(hub);

    let (qmin, qmed, qmax) = summary(&quiet);
    println!("| | runs | min | median | max |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| no flood | {} | {} | {} | {} |",
        quiet.len(),
        ms(qmin),
        ms(qmed),
        ms(qmax)
    );
    if flooded.is_empty() {
        println!("| flood | 0 | — | — | — |");
    } else {
        let (fmin, fmed, fmax) = summary(&flooded);
        println!(
            "| flood of {} connections | {} | {} | {} | {} |",
            endpoints * 4,
            flooded.len(),
            ms(fmin),
            ms(fmed),
            ms(fmax)
        );
        println!(
            "\nmedian with the flood / without: {:.2}×",
            fmed.as_secs_f64() / qmed.as_secs_f64()
        );
    }
    println!(
        "hub RSS idle {}, peak during the flood {} ({:.2}×)",
        mib(idle),
        mib(peak),
        peak as f64 / idle.max(1) as f64
    );
    println!(
        "hub RSS after the flood stopped, +0 / +1 / +3 / +8 / +18 s: {}",
        after
            .iter()
            .map(|&kb| mib(kb))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "flood: {connected} connections made, {failed} dials failed, {closed} closed by the hub; \
         phone syncs failed under the flood: {}",
        failures.len()
    );
    let m = |k: &str| metrics.get(k).copied().unwrap_or(0.0);
    println!(
        "hub: {} strangers closed after their handshake, {} connection attempts ignored before \
         it (budget full), {} frames too large",
        m("shouwang_strangers_refused_total"),
        m("shouwang_handshakes_ignored_total"),
        m("shouwang_oversized_frames_total"),
    );
    for f in failures.iter().take(3) {
        println!("  failed: {f}");
    }
}
