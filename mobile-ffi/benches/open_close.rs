#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Native memory of a phone opening and closing its client again and again (an Android app
//! does on every activity restart). The Kotlin test measures the same cycle through JNA, but
//! its VmRSS includes the JVM's heap, JIT and metaspace; this measures the library alone.
//!
//! A teacher's phone enrolls against a real hub on loopback; then 4,000 times: open the
//! encrypted store with its key, read `me` and `children`, drop the client. VmRSS is printed at
//! cycles 100, 1,000, 2,000 and 4,000, with the growth from cycle 100 (the first cycles warm
//! SQLCipher's and the allocator's caches).

use std::time::Instant;

use shouwang_core::roles::Role;
use shouwang_ffi::ShouwangClient;
use shouwang_relay::server::{Server, ServerConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    shouwang_tests::fixtures::small_hub(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(Server::start(ServerConfig::loopback(
            dir.path().join("hub"),
        )))
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let ticket = server
        .invite("王瑞侠", Role::HeadTeacher, now, now + 86_400)
        .unwrap()
        .ticket;
    let key = shouwang_ffi::generate_store_key();
    let db = dir.path().join("teacher.db").to_string_lossy().into_owned();
    drop(
        rt.block_on(ShouwangClient::join(
            db.clone(),
            key.clone(),
            ticket,
            "王老师的手机".into(),
        ))
        .unwrap(),
    );
    rt.block_on(server.shutdown());

    let started = Instant::now();
    let mut at_100 = 0;
    println!("| open/close cycles | VmRSS | growth since cycle 100 |");
    println!("|---|---|---|");
    for i in 1..=4000 {
        let client = ShouwangClient::open(db.clone(), key.clone()).unwrap();
        assert_eq!(client.me().unwrap().name, "王瑞侠");
        assert_eq!(client.children(true).unwrap().len(), 2);
        drop(client);
        if i == 100 {
            at_100 = rss_kib();
        }
        if [100, 1000, 2000, 4000].contains(&i) {
            let now = rss_kib();
            println!(
                "| {i} | {now} KiB | {} KiB |",
                i64::try_from(now).unwrap() - i64::try_from(at_100).unwrap()
            );
        }
    }
    println!(
        "{:.2} ms per cycle",
        started.elapsed().as_secs_f64() * 1000.0 / 4000.0
    );
}
