#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Benchmark 7c of issue 3: a reconnect storm.
//!
//! 郭庄小学 has 200 members (班主任, 任课教师, 帮扶教师, 爱心妈妈, 代理家长, 爱心辅导员), each
//! with a phone enrolled through a real invite and `handshake::enroll`. Every phone has synced
//! before; then, offline, each writes 20 new records (家访 and 谈心) for the children it cares
//! for. All 200 phones are released at once against the real `shouwang-relay serve` binary,
//! each with its own iroh endpoint, each running `sync_once`. A phone whose sync fails waits and
//! retries, as the app does. Afterwards the hub is stopped and its store is checked to hold
//! every record exactly once.
//!
//! The figures sit beside references measured in the same run on the same disk:
//! - bare durable SQLite inserts of the same change bytes: one transaction per record, and one
//!   transaction per phone (the hub commits one phone's push in one transaction);
//! - the same work one phone at a time: the state before the storm is copied aside and
//!   replayed with one sync in flight;
//! - a no-op reconnect storm (200 phones, nothing new): the cost of 200 connections, TLS and
//!   certificate checks and one `Hello` each way;
//! - the encrypted hub against a plain one (issue 10): built with the feature
//!   `bench-plain-store` (benchmarks only, never deployed), the bench also decrypts the state
//!   before the storm into a plain `hub.db` (same documents, same keys) and runs the storm
//!   against the encrypted hub and the plain one alternately, `STORM_PAIRS` (default 2) times
//!   each (E P, then P E, …), every storm from the same state with the same records; each is
//!   verified like the first. Without the feature only the encrypted hub runs.
//!
//! Run: `cargo bench -p shouwang-relay --bench storm --features bench-plain-store` (or without
//! the feature). Cargo builds the `shouwang-relay` binary with the bench
//! (`CARGO_BIN_EXE_shouwang-relay`, with the same features). Everything listens on 127.0.0.1.
//! `STORM_DEVICES` and `STORM_RECORDS` shrink the run for a quick look; `STORM_HUB_BIN` runs
//! another build of the server (before/after a change; a plain store needs that build to have
//! the feature); `STORM_PERF=<file>` records a `perf` profile of the hub during each storm.
//! Needs Linux (`/proc`) and about 3,000 file descriptors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shouwang_core::membership::Invite;
use shouwang_relay::handshake;
use shouwang_relay::server::{self, DataDir};
use shouwang_relay::syncing::sync_once;
use shouwang_relay::transport::{EndpointAddr, RelayUrl};
use shouwang_tests::big_school::{plan_school, set_up_school, verify_records};
use shouwang_tests::figures::{env_usize, ms, percentile, secs, thousands};
use shouwang_tests::fleet::{self, Phone, each, opts, settle};
use shouwang_tests::hub_process::{
    HubPorts, HubProcess, Sampler, clock_ticks, cpu_seconds, mib, reset_peak, status_kb,
};
use shouwang_tests::phone::now;
use shouwang_tests::seeded::Xorshift;
use shouwang_tests::workload::copy_dir;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");

/// The server binary: the one Cargo built with the bench, or `STORM_HUB_BIN` (to compare
/// another build of the hub under the same storm).
fn hub_bin() -> PathBuf {
    std::env::var_os("STORM_HUB_BIN").map_or_else(|| PathBuf::from(BIN), PathBuf::from)
}

/// A phone gives up after this many attempts.
const MAX_ATTEMPTS: u32 = 8;

// ---------------------------------------------------------------------------------------------
// The school (`shouwang_tests::big_school`), its members' phones (`shouwang_tests::fleet`), the
// hub process and /proc (`shouwang_tests::hub_process`).
// ---------------------------------------------------------------------------------------------

type Hub = HubProcess;

// ---------------------------------------------------------------------------------------------
// The storm.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone)]
struct Outcome {
    ok: bool,
    attempts: u32,
    errors: Vec<String>,
    /// From the release to success.
    latency: Duration,
    /// The successful attempt alone.
    sync_time: Duration,
    frames_sent: u64,
    frames_received: u64,
    /// Frames from the hub whose changes moved a document on the phone.
    arrivals: u64,
    bytes_sent: u64,
    bytes_received: u64,
}

struct StormResult {
    wall: Duration,
    outcomes: Vec<Outcome>,
    hub_rss_before: u64,
    hub_peak: u64,
    hub_peak_sampled: u64,
    hub_threads: u64,
    hub_rss_after: u64,
    hub_peak_is_storm_only: bool,
    hub_cpu: f64,
    bench_rss_before: u64,
    bench_peak: u64,
    bench_cpu: f64,
    hub_metrics: BTreeMap<String, f64>,
}

/// Binds every phone's endpoint, waits until all are online, then releases every sync at
/// once. A failed phone waits (1 s, 2 s, … plus jitter) and tries again.
async fn storm(
    phones: Vec<Phone>,
    hub: &mut Hub,
    relay: &RelayUrl,
    hub_addr: &EndpointAddr,
    one_at_a_time: bool,
) -> (Vec<Phone>, StormResult) {
    let n = phones.len();
    let ticks = clock_ticks();
    let (go_tx, go_rx) = watch::channel::<Option<Instant>>(None);
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(n);
    let mut set = JoinSet::new();
    let bind_limit = Arc::new(Semaphore::new(16));
    // One sync in flight at a time (in the order the phones ask), or all at once.
    let gate = Arc::new(Semaphore::new(if one_at_a_time { 1 } else { n }));
    for mut p in phones {
        let (relay, hub_addr) = (relay.clone(), hub_addr.clone());
        let (mut go, ready, bind_limit) = (go_rx.clone(), ready_tx.clone(), bind_limit.clone());
        let gate = gate.clone();
        set.spawn(async move {
            let node = {
                let _permit = bind_limit.acquire_owned().await.unwrap();
                let node = p.bind(&relay).await;
                node.wait_for_relay(Duration::from_secs(20)).await;
                node
            };
            // The phone's app has its store open.
            let archive = p.take_archive().await;
            p.archive = Some(archive);
            ready.send(()).await.unwrap();
            let t0 = go.wait_for(Option::is_some).await.unwrap().unwrap();
            let mut out = Outcome::default();
            let mut rng = Xorshift(0xBAD5_EED0 + p.idx as u64);
            while out.attempts < MAX_ATTEMPTS {
                out.attempts += 1;
                let archive = p.take_archive().await;
                let permit = gate.acquire().await.unwrap();
                let t = Instant::now();
                let result = sync_once(&node, hub_addr.clone(), archive, p.cert(), &opts()).await;
                drop(permit);
                match result {
                    Ok((a, progress)) => {
                        p.archive = Some(a);
                        out.ok = true;
                        out.sync_time = t.elapsed();
                        out.latency = t0.elapsed();
                        out.frames_sent = progress.frames_sent;
                        out.frames_received = progress.frames_received;
                        out.arrivals = progress.arrivals;
                        out.bytes_sent = progress.bytes_sent;
                        out.bytes_received = progress.bytes_received;
                        break;
                    }
                    Err(e) => {
                        out.errors.push(e.to_string());
                        let wait = 1000 * u64::from(out.attempts) + rng.below(500) as u64;
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                }
            }
            if !out.ok {
                out.latency = t0.elapsed();
            }
            node.shutdown().await;
            (p, out)
        });
    }
    drop(ready_tx);
    for _ in 0..n {
        ready_rx.recv().await.unwrap();
    }
    // Let the relay connections and the hub settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = hub.pid();
    let hub_peak_is_storm_only = reset_peak(&pid);
    reset_peak("self");
    let hub_rss_before = status_kb(&pid, "VmRSS");
    let bench_rss_before = status_kb("self", "VmRSS");
    let hub_cpu0 = cpu_seconds(&pid, ticks);
    let bench_cpu0 = cpu_seconds("self", ticks);
    let sampler = Sampler::start(pid.clone());
    // STORM_PERF=<file>: profile the hub (`<file>`) and the phones (`<file>.phones`) during
    // the storm with `perf record`. DWARF call graphs: release builds keep no frame pointers.
    let profile = |pid: &str, out: std::ffi::OsString| {
        Command::new("perf")
            .args([
                "record",
                "-F",
                "499",
                "--call-graph",
                "dwarf,16384",
                "-p",
                pid,
                "-o",
            ])
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    };
    let perf: Vec<_> = std::env::var_os("STORM_PERF")
        .map(|out| {
            let mut phones = out.clone();
            phones.push(".phones");
            let me = std::process::id().to_string();
            [profile(&pid, out), profile(&me, phones)]
        })
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    let t0 = Instant::now();
    go_tx.send(Some(t0)).unwrap();
    let mut results = Vec::new();
    while let Some(r) = set.join_next().await {
        results.push(r.unwrap());
    }
    let wall = results
        .iter()
        .map(|(_, o)| o.latency)
        .max()
        .unwrap_or_default();
    let (hub_peak_sampled, hub_threads) = sampler.finish();
    for mut perf in perf {
        let _ = Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait();
    }
    let hub_peak = status_kb(&pid, "VmHWM");
    let hub_rss_after = status_kb(&pid, "VmRSS");
    let bench_peak = status_kb("self", "VmHWM");
    let hub_cpu = cpu_seconds(&pid, ticks) - hub_cpu0;
    let bench_cpu = cpu_seconds("self", ticks) - bench_cpu0;
    assert!(hub.alive(), "the hub died: {}", hub.log_tail());
    let hub_metrics = hub.metrics();
    results.sort_by_key(|(p, _)| p.idx);
    let (phones, outcomes): (Vec<Phone>, Vec<Outcome>) = results.into_iter().unzip();
    (
        phones,
        StormResult {
            wall,
            outcomes,
            hub_rss_before,
            hub_peak,
            hub_peak_sampled,
            hub_threads,
            hub_rss_after,
            hub_peak_is_storm_only,
            hub_cpu,
            bench_rss_before,
            bench_peak,
            bench_cpu,
            hub_metrics,
        },
    )
}

fn summarize(label: &str, r: &StormResult) {
    let mut lat: Vec<Duration> = r.outcomes.iter().map(|o| o.latency).collect();
    lat.sort();
    let ok = r.outcomes.iter().filter(|o| o.ok).count();
    let retried = r.outcomes.iter().filter(|o| o.attempts > 1).count();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for o in &r.outcomes {
        for e in &o.errors {
            *reasons.entry(e.clone()).or_default() += 1;
        }
    }
    eprintln!(
        "  {label}: {ok}/{} ok, {retried} retried, wall {}, p50 {}, p99 {}, hub peak {} (sampled {}), hub cpu {:.1} s",
        r.outcomes.len(),
        secs(r.wall),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        mib(r.hub_peak),
        mib(r.hub_peak_sampled),
        r.hub_cpu
    );
    for (e, n) in &reasons {
        eprintln!("    {n} × {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// The bare references.
// ---------------------------------------------------------------------------------------------

/// Durable inserts of the same change bytes into a bare WAL table with `synchronous = FULL`,
/// `per_tx` rows per transaction. Returns the time for all of them.
fn bare_inserts(path: &Path, rows: &[(String, Vec<u8>)], per_tx: usize) -> Duration {
    let _ = std::fs::remove_file(path);
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE changes (seq INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, bytes BLOB NOT NULL)",
    )
    .unwrap();
    let t = Instant::now();
    for chunk in rows.chunks(per_tx) {
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO changes (doc_id, bytes) VALUES (?1, ?2)")
                .unwrap();
            for (doc, bytes) in chunk {
                stmt.execute(rusqlite::params![doc, bytes]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    t.elapsed()
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that is not "storm" skips the run.
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with('-'))
        && !"storm".contains(filter.as_str())
    {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let devices = env_usize("STORM_DEVICES", 200).clamp(1, 200);
    let per_device = env_usize("STORM_RECORDS", 20).max(1);
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("shouwang-storm")
        .tempdir_in(std::env::var_os("STORM_DIR").unwrap_or_else(|| std::env::temp_dir().into()))
        .unwrap();
    eprintln!(
        "storm: {devices} phones × {per_device} records, hub binary {}, data in {}",
        hub_bin().display(),
        dir.path().display()
    );

    // The school, on the hub's disk.
    let plan = plan_school();
    let data = DataDir::new(dir.path().join("hub"));
    let t = Instant::now();
    let member_ids = {
        let (data, plan) = (data.clone(), plan.clone());
        tokio::task::spawn_blocking(move || set_up_school(&data, &plan))
            .await
            .unwrap()
    };
    eprintln!(
        "  school: {} members, {} children, {} pairings, {:.1} s",
        plan.members.len(),
        plan.children.len(),
        plan.members.iter().map(|m| m.children.len()).sum::<usize>(),
        t.elapsed().as_secs_f64()
    );

    // The hub, as deployed: relay + hub + /health, on loopback ports.
    let ports = HubPorts::write(dir.path(), &data, "");
    let log = dir.path().join("hub.log");
    let mut hub = Hub::start(&hub_bin(), &ports, &log);
    let contact = ports.contact();

    // Invites, then enrollment over the network, then each phone's store from its bundle.
    let t = Instant::now();
    let mut invites: Vec<Invite> = Vec::new();
    for (i, id) in member_ids.iter().enumerate().take(devices) {
        let issued = server::issue_invite(
            &data,
            &contact,
            id,
            plan.members[i].role,
            now(),
            now() + 86_400,
        )
        .unwrap();
        invites.push(issued.invite);
    }
    let relay = handshake::invite_relay(&invites[0]).unwrap().unwrap();
    let hub_addr = handshake::hub_addr(&invites[0]).unwrap();
    let phones_dir = dir.path().join("phones");
    std::fs::create_dir_all(&phones_dir).unwrap();
    let phones = fleet::enroll(&plan, &member_ids, invites, &relay, &phones_dir).await;
    eprintln!(
        "  enrolled {} phones with invites: {:.1} s",
        phones.len(),
        t.elapsed().as_secs_f64()
    );

    // Every phone has synced before (its device registration reaches the hub, and it learns
    // the others').
    let t = Instant::now();
    let mut phones = settle(phones, &relay, &hub_addr, 8).await;
    eprintln!("  first syncs done: {:.1} s", t.elapsed().as_secs_f64());

    // Reference: a no-op reconnect storm, with a freshly started hub.
    hub = hub.restart();
    let (back, noop) = storm(phones, &mut hub, &relay, &hub_addr, false).await;
    phones = back;
    summarize("no-op storm", &noop);

    // Offline, every phone writes its records.
    let t = Instant::now();
    let children = Arc::new(plan.children.clone());
    let done = each(phones, 2, move |mut p| {
        let children = children.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let ids = p.write_records(&children, per_device, 0x5707_2026);
                (p, ids)
            })
            .await
            .unwrap()
        }
    })
    .await;
    phones = done
        .into_iter()
        .map(|(mut p, ids)| {
            p.storm_records = ids;
            p
        })
        .collect();
    let written: Vec<String> = phones
        .iter()
        .flat_map(|p| p.storm_records.iter().cloned())
        .collect();
    let changes: Vec<(String, Vec<u8>)> = phones
        .iter()
        .flat_map(|p| p.storm_changes.iter().cloned())
        .collect();
    let payload: usize = changes.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "  {} records written offline ({} bytes of changes): {:.1} s",
        written.len(),
        payload,
        t.elapsed().as_secs_f64()
    );

    // References on the same disk: bare durable inserts of the same bytes.
    let bare_path = dir.path().join("bare.db");
    let (bare_each, bare_phone) = tokio::task::block_in_place(|| {
        (
            bare_inserts(&bare_path, &changes, 1),
            bare_inserts(&bare_path, &changes, per_device),
        )
    });
    eprintln!(
        "  bare inserts: {} one per transaction, {} {per_device} per transaction",
        secs(bare_each),
        secs(bare_phone)
    );

    // Keep the state before the storm (hub and phones, stores closed): every storm below, and
    // the same work one phone at a time, starts from it.
    hub.stop();
    for p in &mut phones {
        p.archive = None;
    }
    let snapshot = dir.path().join("before-storm");
    copy_dir(data.root(), &snapshot.join("hub"));
    copy_dir(&phones_dir, &snapshot.join("phones"));
    let replay = Replay {
        snapshot,
        data: data.clone(),
        phones_dir: phones_dir.clone(),
        ports: ports.clone(),
        log: log.clone(),
        relay: relay.clone(),
        hub_addr: hub_addr.clone(),
        written: written.clone(),
    };

    // The storm: the encrypted hub and, in a `bench-plain-store` build, the same hub with a
    // plain `hub.db`, alternating, each from the same state with the same records.
    let kinds = replay.prepare_kinds();
    let pairs = env_usize("STORM_PAIRS", 2).max(1);
    let mut rounds: Vec<(HubStore, StormResult)> = Vec::new();
    for round in 0..pairs {
        // Encrypted first in odd rounds, plain first in even ones (E P P E E P …), so that
        // neither runs first in every pair.
        let mut order = kinds.clone();
        if round % 2 == 1 {
            order.reverse();
        }
        for kind in order {
            let (back, result) = replay.run(phones, kind, false).await;
            phones = back;
            summarize(
                &format!("storm, {} hub, round {}", kind.label(), round + 1),
                &result,
            );
            rounds.push((kind, result));
        }
    }
    let result = rounds.remove(0).1;

    // Reference: the same state, the same work, one phone at a time (the encrypted hub).
    let (phones, serial) = replay.run(phones, HubStore::Encrypted, true).await;
    summarize("one at a time", &serial);
    drop(phones);

    report(&Report {
        devices,
        per_device,
        payload,
        bare_each,
        bare_phone,
        storm: &result,
        serial: &serial,
        noop: &noop,
    });
    rounds.insert(0, (HubStore::Encrypted, result));
    report_stores(devices * per_device, &rounds);
    eprintln!("total bench time {:.0} s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// The encrypted hub and the plain one.
// ---------------------------------------------------------------------------------------------

/// How the hub keeps `hub.db` in a storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HubStore {
    /// SQLCipher under the data key, as deployed.
    Encrypted,
    /// Plain SQLite: the same archive decrypted, served by a `bench-plain-store` build with
    /// `[bench] plain_store = true` (never deployed; `relay/src/server/data.rs`).
    Plain,
}

impl HubStore {
    fn label(self) -> &'static str {
        match self {
            HubStore::Encrypted => "encrypted",
            HubStore::Plain => "plain",
        }
    }

    /// Where its copy of the hub's data directory is kept in the snapshot.
    fn snapshot_dir(self) -> &'static str {
        match self {
            HubStore::Encrypted => "hub",
            HubStore::Plain => "hub-plain",
        }
    }
}

/// Replays the state before the storm: the hub's data directory and every phone's store are
/// put back from the snapshot, then one storm (or the same work one phone at a time) runs
/// against a freshly started hub, which is stopped and whose store is checked afterwards.
struct Replay {
    snapshot: PathBuf,
    data: DataDir,
    phones_dir: PathBuf,
    ports: HubPorts,
    log: PathBuf,
    relay: RelayUrl,
    hub_addr: EndpointAddr,
    written: Vec<String>,
}

impl Replay {
    /// The hubs this build can compare. With `bench-plain-store`, the snapshot's `hub.db` is
    /// also decrypted (`sqlcipher_export` into a plain file: the same pages' content, the same
    /// documents and heads, the same sealed keys) and a configuration naming the plain store is
    /// written beside the hub's.
    fn prepare_kinds(&self) -> Vec<HubStore> {
        #[cfg(feature = "bench-plain-store")]
        {
            let from = self.snapshot.join(HubStore::Encrypted.snapshot_dir());
            let to = self.snapshot.join(HubStore::Plain.snapshot_dir());
            decrypted_copy(&self.data, &from, &to);
            let mut text = std::fs::read_to_string(&self.ports.config).unwrap();
            text.push_str("[bench]\nplain_store = true\n");
            std::fs::write(self.config(HubStore::Plain), text).unwrap();
            vec![HubStore::Encrypted, HubStore::Plain]
        }
        #[cfg(not(feature = "bench-plain-store"))]
        {
            eprintln!(
                "  the encrypted hub only: build with `--features bench-plain-store` to put a \
                 plain one beside it"
            );
            vec![HubStore::Encrypted]
        }
    }

    fn config(&self, kind: HubStore) -> PathBuf {
        match kind {
            HubStore::Encrypted => self.ports.config.clone(),
            HubStore::Plain => self.ports.config.with_file_name("hub-plain.toml"),
        }
    }

    /// The data directory as the hub of `kind` opens it.
    fn data(&self, kind: HubStore) -> DataDir {
        match kind {
            HubStore::Encrypted => self.data.clone(),
            #[cfg(feature = "bench-plain-store")]
            HubStore::Plain => self.data.clone().with_plain_store_for_bench(),
            #[cfg(not(feature = "bench-plain-store"))]
            HubStore::Plain => unreachable!("a plain store needs the bench-plain-store feature"),
        }
    }

    async fn run(
        &self,
        mut phones: Vec<Phone>,
        kind: HubStore,
        one_at_a_time: bool,
    ) -> (Vec<Phone>, StormResult) {
        for p in &mut phones {
            p.archive = None;
        }
        for dir in [self.data.root(), self.phones_dir.as_path()] {
            if dir.exists() {
                std::fs::remove_dir_all(dir).unwrap();
            }
        }
        copy_dir(&self.snapshot.join(kind.snapshot_dir()), self.data.root());
        copy_dir(&self.snapshot.join("phones"), &self.phones_dir);
        let ports = HubPorts {
            config: self.config(kind),
            ..self.ports.clone()
        };
        let mut hub = Hub::start(&hub_bin(), &ports, &self.log);
        let (phones, result) =
            storm(phones, &mut hub, &self.relay, &self.hub_addr, one_at_a_time).await;
        hub.stop();
        let t = Instant::now();
        let verified = check_hub(&self.data(kind), &self.written).await;
        eprintln!(
            "  verified ({} hub): all {verified} records in the hub's store exactly once: {:.1} s",
            kind.label(),
            t.elapsed().as_secs_f64()
        );
        (phones, result)
    }
}

/// Copies the hub's data directory `from` to `to` with `hub.db` decrypted into plain SQLite
/// (`sqlcipher_export` into a database attached with the empty key), its schema version kept.
#[cfg(feature = "bench-plain-store")]
fn decrypted_copy(data: &DataDir, from: &Path, to: &Path) {
    copy_dir(from, to);
    for name in ["hub.db", "hub.db-wal", "hub.db-shm"] {
        let _ = std::fs::remove_file(to.join(name));
    }
    let key = data.data_key().unwrap().store_key();
    let conn = shouwang_core::store::cipher::open(
        &from.join("hub.db"),
        rusqlite::OpenFlags::default(),
        Some(&key),
    )
    .unwrap();
    let plain = to.join("hub.db");
    conn.execute(
        "ATTACH DATABASE ?1 AS plain KEY ''",
        [plain.to_str().unwrap()],
    )
    .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA main.user_version", [], |r| r.get(0))
        .unwrap();
    conn.query_row("SELECT sqlcipher_export('plain')", [], |_| Ok(()))
        .unwrap();
    conn.execute_batch(&format!(
        "PRAGMA plain.user_version = {version}; DETACH DATABASE plain;"
    ))
    .unwrap();
    drop(conn);
    let mut head = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open(&plain).unwrap(), &mut head).unwrap();
    assert_eq!(&head, b"SQLite format 3\0", "the copy is plain SQLite");
}

/// One figure of a storm, as a number.
type Figure<'a> = &'a dyn Fn(&StormResult) -> f64;

/// The encrypted and the plain hub side by side, one column per storm in the order they ran,
/// then the means and their ratio.
fn report_stores(n_records: usize, rounds: &[(HubStore, StormResult)]) {
    let n = n_records as f64;
    let rate = |r: &StormResult| n / r.wall.as_secs_f64();
    println!();
    println!(
        "## The encrypted hub and the plain one, same run ({} records each storm)",
        thousands(n)
    );
    println!();
    let head: Vec<String> = rounds
        .iter()
        .enumerate()
        .map(|(i, (k, _))| format!("{} ({})", k.label(), i + 1))
        .collect();
    println!("| | {} |", head.join(" | "));
    println!("|---|{}", "---|".repeat(rounds.len()));
    let row = |label: &str, f: &dyn Fn(&StormResult) -> String| {
        let cells: Vec<String> = rounds.iter().map(|(_, r)| f(r)).collect();
        println!("| {label} | {} |", cells.join(" | "));
    };
    row("phones done", &|r| {
        r.outcomes.iter().filter(|o| o.ok).count().to_string()
    });
    row("failed attempts", &|r| {
        r.outcomes
            .iter()
            .map(|o| o.errors.len())
            .sum::<usize>()
            .to_string()
    });
    row("wall time", &|r| secs(r.wall));
    row("records/s", &|r| thousands(rate(r)));
    row("hub CPU, user + system", &|r| format!("{:.1} s", r.hub_cpu));
    row("hub peak RSS (VmHWM)", &|r| mib(r.hub_peak));
    row("hub threads, most seen", &|r| r.hub_threads.to_string());
    let mean = |kind: HubStore, f: &dyn Fn(&StormResult) -> f64| {
        let v: Vec<f64> = rounds
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, r)| f(r))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let figures: [(&str, Figure<'_>); 3] = [
        ("records/s", &rate),
        ("hub CPU (s)", &|r| r.hub_cpu),
        ("hub peak RSS (MiB)", &|r| r.hub_peak as f64 / 1024.0),
    ];
    println!();
    println!("| mean | encrypted | plain | encrypted ÷ plain |");
    println!("|---|---|---|---|");
    for (label, f) in figures {
        match (mean(HubStore::Encrypted, f), mean(HubStore::Plain, f)) {
            (Some(e), Some(p)) => println!("| {label} | {e:.1} | {p:.1} | {:.2}× |", e / p),
            (Some(e), None) => println!("| {label} | {e:.1} | — | — |"),
            _ => {}
        }
    }
}

/// Checks the stopped hub's store: every record written, exactly once, and nothing else.
async fn check_hub(data: &DataDir, written: &[String]) -> usize {
    let (db, written) = (data.clone(), written.to_vec());
    tokio::task::spawn_blocking(move || {
        verify_records(&db, &plan_school(), &written, written.len())
    })
    .await
    .unwrap()
}

struct Report<'a> {
    devices: usize,
    per_device: usize,
    payload: usize,
    bare_each: Duration,
    bare_phone: Duration,
    storm: &'a StormResult,
    serial: &'a StormResult,
    noop: &'a StormResult,
}

struct Column {
    done: usize,
    failed: usize,
    retried: usize,
    latency: Vec<Duration>,
    sync_time: Vec<Duration>,
}

fn column(r: &StormResult) -> Column {
    let mut latency: Vec<Duration> = r.outcomes.iter().map(|o| o.latency).collect();
    latency.sort();
    let mut sync_time: Vec<Duration> = r.outcomes.iter().map(|o| o.sync_time).collect();
    sync_time.sort();
    Column {
        done: r.outcomes.iter().filter(|o| o.ok).count(),
        failed: r.outcomes.iter().map(|o| o.errors.len()).sum(),
        retried: r.outcomes.iter().filter(|o| o.attempts > 1).count(),
        latency,
        sync_time,
    }
}

fn report(r: &Report<'_>) {
    let n_records = (r.devices * r.per_device) as f64;
    let (st, se, no) = (column(r.storm), column(r.serial), column(r.noop));
    let rate = |x: &StormResult| n_records / x.wall.as_secs_f64();
    let m = |x: &StormResult, k: &str| x.hub_metrics.get(k).copied().unwrap_or(0.0);
    let p = |v: &[Duration]| {
        format!(
            "{} / {} / {}",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99)),
            ms(v.last().copied().unwrap_or_default())
        )
    };
    let row = |label: &str, f: &dyn Fn(&StormResult, &Column) -> String| {
        println!(
            "| {label} | {} | {} | {} |",
            f(r.storm, &st),
            f(r.serial, &se),
            f(r.noop, &no)
        );
    };
    let (d, k) = (r.devices, r.per_device);
    println!();
    println!("## Reconnect storm: {d} phones × {k} new records, released at once");
    println!();
    println!(
        "Hub: the `shouwang-relay serve` binary in its own process (relay + hub + HTTP), \
         restarted before each run. Phones: {d} iroh endpoints with real stores in the bench \
         process, sharing the machine's 2 cores with the hub. Everything on 127.0.0.1. \
         \"One at a time\" replays the same state and the same {} records with one sync in \
         flight; \"no-op\" is the same storm with nothing new.",
        thousands(n_records)
    );
    println!();
    println!("| | storm | one at a time (same work) | no-op storm |");
    println!("|---|---|---|---|");
    row("phones done", &|_, c| format!("{} of {d}", c.done));
    row("failed attempts, retried (phones)", &|_, c| {
        format!("{} ({})", c.failed, c.retried)
    });
    row("wall time, release → last phone done", &|x, _| {
        secs(x.wall)
    });
    row("records/s", &|x, _| {
        if std::ptr::eq(x, r.noop) {
            "—".into()
        } else {
            format!("**{}**", thousands(rate(x)))
        }
    });
    row(
        "per-phone latency from release, p50 / p99 / max",
        &|_, c| p(&c.latency),
    );
    row("one sync, p50 / p99 / max", &|_, c| p(&c.sync_time));
    row("hub RSS before (phones connected to its relay)", &|x, _| {
        mib(x.hub_rss_before)
    });
    row(
        if r.storm.hub_peak_is_storm_only {
            "hub peak RSS (VmHWM, reset at release)"
        } else {
            "hub peak RSS (VmHWM since start)"
        },
        &|x, _| format!("**{}**", mib(x.hub_peak)),
    );
    row("hub RSS when the last phone is done", &|x, _| {
        mib(x.hub_rss_after)
    });
    row("hub threads, most seen", &|x, _| x.hub_threads.to_string());
    row("hub CPU, user + system", &|x, _| {
        format!("{:.1} s", x.hub_cpu)
    });
    row("phones' process: CPU, RSS before → peak", &|x, _| {
        format!(
            "{:.1} s, {} → {}",
            x.bench_cpu,
            mib(x.bench_rss_before),
            mib(x.bench_peak)
        )
    });
    row("sync bytes up / down, all phones", &|x, _| {
        let up: u64 = x.outcomes.iter().map(|o| o.bytes_sent).sum();
        let down: u64 = x.outcomes.iter().map(|o| o.bytes_received).sum();
        format!("{} / {}", thousands(up as f64), thousands(down as f64))
    });
    row(
        "sync frames up / down (of those, arrivals), all phones",
        &|x, _| {
            let sum = |f: fn(&Outcome) -> u64| x.outcomes.iter().map(f).sum::<u64>();
            format!(
                "{} / {} ({})",
                thousands(sum(|o| o.frames_sent) as f64),
                thousands(sum(|o| o.frames_received) as f64),
                thousands(sum(|o| o.arrivals) as f64)
            )
        },
    );
    row("hub sessions started / completed / errors", &|x, _| {
        format!(
            "{} / {} / {}",
            m(x, "shouwang_sync_sessions_total"),
            m(x, "shouwang_sync_sessions_completed_total"),
            m(x, "shouwang_errors_total")
        )
    });
    println!(
        "| hub store afterwards | all {} records, each exactly once | the same | — |",
        thousands(n_records)
    );
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &r.storm.outcomes {
        for e in &o.errors {
            *reasons.entry(e.as_str()).or_default() += 1;
        }
    }
    if !reasons.is_empty() {
        println!();
        println!("Failed attempts in the storm (each phone retried after 1 s, 2 s, …):");
        println!();
        for (e, n) in reasons {
            println!("- {n} × {e}");
        }
    }
    let limit = |label: String, t: Duration| {
        let lr = n_records / t.as_secs_f64();
        println!(
            "| {label} | {} | {} | {:.3}× |",
            secs(t),
            thousands(lr),
            rate(r.storm) / lr
        );
    };
    println!();
    println!(
        "References, same run, same disk: the same change bytes ({} bytes, {:.0} a record) \
         inserted into a bare WAL table with `synchronous = FULL`.",
        thousands(r.payload as f64),
        r.payload as f64 / n_records
    );
    println!();
    println!(
        "| reference | time for {} records | records/s | storm ÷ reference |",
        thousands(n_records)
    );
    println!("|---|---|---|---|");
    limit(
        "bare durable INSERT, one transaction (fsync) per record".into(),
        r.bare_each,
    );
    limit(
        format!("bare durable INSERT, one transaction per phone ({k} rows)"),
        r.bare_phone,
    );
    limit(
        "the hub, the same work one phone at a time".into(),
        r.serial.wall,
    );
}
