//! Crashes of a phone (issue 12, point 2): the real `shouwang` binary is killed with SIGKILL at
//! random points while it writes 谈心 records, 1,000 times (`SHOUWANG_CRASHES` sets another
//! count). Afterwards every record it reported saved is there exactly once, no record is there
//! twice, and SQLite's integrity check is ok. The kill times are spread over the length of one
//! write measured first, from a fixed seed, so they land before, during and after the commit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::School;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shouwang_core::Archive;

const KILLS: usize = 1000;

fn write(s: &School, note: &str) -> std::process::Child {
    Command::new(common::BIN)
        .arg("--store")
        .arg(&s.store)
        .args([
            "record",
            "谈心",
            "--child",
            "王小雨",
            "--date",
            "2026-11-20",
        ])
        .arg("--field")
        .arg(format!("notes={note}"))
        .env_remove("SHOUWANG_STORE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn kills_while_writing_lose_nothing_reported_saved_and_write_nothing_twice() {
    let s = School::new();
    let kills = std::env::var("SHOUWANG_CRASHES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(KILLS);
    // How long one write takes on this machine now.
    let started = Instant::now();
    let out = write(&s, "量一次").wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("已保存"));
    let span = started.elapsed();

    let mut rng = StdRng::seed_from_u64(20_261_203);
    let mut saved = BTreeSet::new();
    for i in 0..kills {
        let mut child = write(&s, &format!("第{i}次"));
        std::thread::sleep(span.mul_f64(rng.random_range(0.0..1.3)));
        let _ = child.kill(); // SIGKILL; harmless if it has already exited
        let out = child.wait_with_output().unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("已保存") {
            saved.insert(i);
        }
    }

    let mut archive = Archive::open(&s.store).unwrap();
    let check: String = archive
        .store()
        .conn()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(archive);
    let file = s.ok(&["--json", "child", "show", "王小雨"]);
    let (mut kept, mut unreported) = (0, 0);
    for i in 0..kills {
        let n = file.matches(&format!("\"第{i}次\"")).count();
        assert!(n <= 1, "第{i}次 is there {n} times");
        if saved.contains(&i) {
            assert_eq!(n, 1, "第{i}次 was reported saved and is not there");
        }
        kept += n;
        if n == 1 && !saved.contains(&i) {
            unreported += 1;
        }
    }
    println!(
        "{kills} kills over a write of {} ms: {} reported saved, {unreported} more written \
         before the report was printed, {} not written",
        span.as_millis(),
        saved.len(),
        kills - kept
    );
    // The kills must have landed on both sides of the commit, or this showed nothing.
    assert!(
        !saved.is_empty() && kept < kills,
        "every kill fell on one side"
    );
}
