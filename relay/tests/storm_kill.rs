//! The hub killed a hundred times during a reconnect storm (issue 12, point 2): the real
//! `shouwang-relay serve` in its own process on loopback, and eight 爱心妈妈's phones (real
//! stores, real iroh endpoints) that each write a 谈心 and sync, over and over, retrying when
//! the hub is gone. The hub is SIGKILLed at random moments (seeded; the seed is printed) and
//! restarted at once, `SHOUWANG_HUB_KILLS` times (100 by default).
//!
//! While the hub is down, every document a phone counts as confirmed (not in its
//! `sync_status` pending list: the hub said it holds those heads) must have all its records
//! in `hub.db`. At the end every phone syncs until nothing is pending, and the hub holds every
//! record each phone wrote exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use shouwang_core::roles::Role;
use shouwang_core::{Archive, RecordInput};
use shouwang_relay::device::{self, Identity};
use shouwang_relay::server::{self, DataDir};
use shouwang_relay::transport::ConversationOptions;
use shouwang_tests::fixtures::small_hub;
use shouwang_tests::hub_process::{HubPorts, HubProcess};

const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");
/// The phones, each a 爱心妈妈 paired with one child.
const CARERS: [&str; 8] = [
    "李秀兰",
    "张桂芝",
    "王凤英",
    "刘淑珍",
    "陈玉梅",
    "杨春花",
    "赵丽娟",
    "孙海燕",
];

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn child_of(i: usize) -> String {
    format!("留守学生{i:02}")
}

fn kills() -> usize {
    std::env::var("SHOUWANG_HUB_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// Short timeouts: a phone whose hub died gives up quickly and tries again.
fn opts() -> ConversationOptions {
    ConversationOptions {
        idle_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(3),
        ..device::default_options()
    }
}

/// The school: the small hub, plus one child and one 爱心妈妈 paired with it per phone.
fn school(dir: &Path) -> DataDir {
    let data = small_hub(dir);
    let mut office = data.open_archive().unwrap();
    let mut table = vec![vec!["学籍号".to_owned(), "姓名".into(), "班级".into()]];
    for i in 0..CARERS.len() {
        table.push(vec![
            format!("G1{i:02}"),
            child_of(i),
            shouwang_tests::fixtures::CLASS.into(),
        ]);
    }
    office
        .import_roster(&shouwang_core::roster::parse_table(&table).unwrap())
        .unwrap();
    for (i, carer) in CARERS.iter().enumerate() {
        office
            .add_member(carer, &[Role::LoveMother], None, None)
            .unwrap();
        office.pair(carer, &child_of(i), None).unwrap();
    }
    data
}

/// Every document `store` counts as confirmed has all its records in `hub.db`. Returns how
/// many records were checked.
fn confirmed_are_on_the_hub(store: &Path, hub: &mut Archive, child: &str) -> usize {
    let mut phone = Archive::open(store).unwrap();
    let id = Identity::load(&mut phone).unwrap();
    let hub_key = id.hub().unwrap().id.to_string();
    let pending: BTreeSet<String> = phone
        .sync_status(&hub_key)
        .unwrap()
        .pending
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let mine = phone.child_file(child).unwrap();
    if pending.contains(&format!("child/{}", mine.id)) {
        return 0;
    }
    let at_hub: BTreeSet<String> = hub
        .child_file(child)
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.meta.id.0)
        .collect();
    for r in &mine.records {
        assert!(
            at_hub.contains(&r.meta.id.0),
            "{child}'s file is confirmed by the hub but its record {} is not in hub.db",
            r.meta.id.0
        );
    }
    mine.records.len()
}

#[test]
fn the_hub_killed_a_hundred_times_in_a_storm_loses_no_confirmed_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = school(dir.path());
    let ports = HubPorts::write(dir.path(), &data, "");
    let log = dir.path().join("hub.log");
    let mut hub = Some(HubProcess::start(Path::new(BIN), &ports, &log));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Enroll every phone while the hub is up.
    let mut stores: Vec<PathBuf> = Vec::new();
    for (i, carer) in CARERS.iter().enumerate() {
        let ticket = server::issue_invite(
            &data,
            &ports.contact(),
            carer,
            Role::LoveMother,
            now(),
            now() + 86_400,
        )
        .unwrap()
        .ticket;
        let store = dir.path().join(format!("phone{i}.db"));
        rt.block_on(device::join(
            &store,
            None,
            &ticket,
            "手机",
            now(),
            &device::default_options(),
        ))
        .unwrap();
        stores.push(store);
    }

    // The storm: every phone writes and syncs in a loop until told to stop. Writes hold the
    // read side of `quiet`; the checks while the hub is down take the write side, so no record
    // is written between reading a phone's pending list and its file.
    let quiet = Arc::new(RwLock::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let written: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut phones = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let (store, quiet, stop, written) =
            (store.clone(), quiet.clone(), stop.clone(), written.clone());
        phones.push(rt.spawn(async move {
            let mut archive = Archive::open(&store).unwrap();
            let identity = Identity::load(&mut archive).unwrap();
            let node = identity.bind(false).await.unwrap();
            let (mut synced, mut failed) = (0u32, 0u32);
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                {
                    let _writing = quiet.read().unwrap();
                    let id = archive
                        .add_record(&RecordInput {
                            kind: "谈心".into(),
                            child: Some(child_of(i)),
                            class: None,
                            date: format!("2026-11-{:02}", 1 + n % 28),
                            fields: vec![(
                                "notes".into(),
                                format!("第{n}次谈心：问了学习和吃饭，孩子说想妈妈"),
                            )],
                        })
                        .unwrap();
                    written.lock().unwrap().push(id.0);
                }
                n += 1;
                match device::sync_hub(&node, &identity, archive, &opts(), None).await {
                    Ok((a, _)) => {
                        archive = a;
                        synced += 1;
                        // A phone is not written the instant its sync ends: the kills find
                        // some phones confirmed, with nothing new since, to check.
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                    Err(_) => {
                        archive = Archive::open(&store).unwrap();
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            (synced, failed)
        }));
    }

    let seed: u64 = std::env::var("SHOUWANG_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("seed {seed} (SHOUWANG_KILL_SEED), {} kills", kills());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut checked = 0;
    for k in 0..kills() {
        std::thread::sleep(Duration::from_millis(rng.random_range(50..1200)));
        let server = hub.take().unwrap();
        server.kill();
        {
            let _quiet = quiet.write().unwrap();
            let mut office = data.open_archive().unwrap();
            for (i, store) in stores.iter().enumerate() {
                checked += confirmed_are_on_the_hub(store, &mut office, &child_of(i));
            }
        }
        if k % 20 == 19 {
            eprintln!("{} kills, {checked} confirmed records checked", k + 1);
        }
        hub = Some(HubProcess::start(Path::new(BIN), &ports, &log));
    }
    stop.store(true, Ordering::Relaxed);
    let mut totals = (0, 0);
    for p in phones {
        let (s, f) = rt.block_on(p).unwrap();
        totals = (totals.0 + s, totals.1 + f);
    }
    eprintln!(
        "syncs during the storm: {} finished, {} cut or refused; {checked} confirmed records \
         checked while the hub was down",
        totals.0, totals.1
    );
    assert!(checked > 0, "no phone ever had a confirmed file to check");
    assert!(totals.1 > 0, "no kill ever cut a sync");

    // Converge: every phone syncs until nothing is pending; the hub holds everything once.
    for store in &stores {
        let mut archive = Archive::open(store).unwrap();
        let identity = Identity::load(&mut archive).unwrap();
        let hub_key = identity.hub().unwrap().id.to_string();
        let node = rt.block_on(identity.bind(false)).unwrap();
        for attempt in 0.. {
            match rt.block_on(device::sync_hub(&node, &identity, archive, &opts(), None)) {
                Ok((a, _)) => archive = a,
                Err(e) => {
                    assert!(attempt < 10, "the phone cannot sync after the storm: {e}");
                    archive = Archive::open(store).unwrap();
                    continue;
                }
            }
            if archive.sync_status(&hub_key).unwrap().pending.is_empty() {
                break;
            }
            assert!(attempt < 10, "still pending after 10 syncs");
        }
    }
    hub.take().unwrap().kill();
    let mut office = data.open_archive().unwrap();
    let mut at_hub: Vec<String> = (0..CARERS.len())
        .flat_map(|i| {
            office
                .child_file(&child_of(i))
                .unwrap()
                .records
                .into_iter()
                .map(|r| r.meta.id.0)
        })
        .collect();
    at_hub.sort();
    let mut written = written.lock().unwrap().clone();
    written.sort();
    assert_eq!(at_hub, written, "every record on the hub exactly once");
}
