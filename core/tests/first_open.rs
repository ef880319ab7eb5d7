//! The first encrypted stores a process opens, opened by several threads at once.
//!
//! SQLCipher finishes its one-time set-up (`sqlcipher_extra_init`: the crypto provider, its
//! random state) after SQLite has already marked itself initialised, outside SQLite's init
//! mutex. A second thread that opens a connection in that window gets a working SQLite whose
//! `PRAGMA key` fails ("An error occurred with PRAGMA key or rekey…"): an app that opens two
//! stores as it starts (the phone's client and a background sync) would report a sound
//! archive as unreadable. A CI run of `relay/tests/kill.rs` (two tests, each opening the hub's
//! archive first thing) failed that way on a freshly booted machine.
//!
//! The window exists once per process, so the test runs its race in fresh processes: it starts
//! its own binary again (`RACE_CHILD`), and each child opens sixteen new encrypted stores from
//! sixteen threads released together. Each child prints `RACED` once its race is over, and the
//! parent requires it: a child whose filter matched no test would otherwise pass untested.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::process::Command;
use std::sync::{Arc, Barrier};

use shouwang_core::store::{Store, StoreKey};

const THREADS: usize = 16;
const PROCESSES: usize = 150;
/// What a child prints once all its threads opened their stores.
const RACED: &str = "raced: every store opened";

#[test]
fn threads_opening_the_first_encrypted_stores_of_a_process_all_succeed() {
    if std::env::var_os("RACE_CHILD").is_some() {
        race_once();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut failed = Vec::new();
    for _ in 0..PROCESSES {
        let out = Command::new(&exe)
            .args([
                "--exact",
                "threads_opening_the_first_encrypted_stores_of_a_process_all_succeed",
                "--test-threads=1",
                "--nocapture",
            ])
            .env("RACE_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains(RACED) {
            failed.push(format!(
                "{}\nstdout:\n{stdout}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {PROCESSES} child processes did not open all their stores (or ran no race); the first:\n{}",
        failed.len(),
        failed[0]
    );
}

/// In this (fresh) process: sixteen threads, released together, each open a new encrypted store.
fn race_once() {
    let dir = tempfile::tempdir().unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let path = dir.path().join(format!("store-{i}.db"));
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let key = StoreKey::generate();
                barrier.wait();
                Store::open_with_key(&path, Some(&key)).map(|_| ())
            })
        })
        .collect();
    let errors: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join().unwrap().err())
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(errors.is_empty(), "stores that did not open: {errors:#?}");
    println!("{RACED}");
}
