//! Two phones sync directly over the local network while the hub is down, with the real
//! `shouwang` binary: the 爱心妈妈 waits (`sync --wait`), the 班主任 finds her with
//! `nearby` and syncs by her device code alone (`sync --peer <设备码>`), found by mDNS.
//!
//! mDNS sends multicast, which must never leave this machine, so the test runs only where
//! loopback is the sole interface: it re-runs itself inside a private network namespace
//! (`unshare -n`, which needs root, and `ip`); where none can be made it is skipped with a
//! message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::hub::{TwoPhones, record, shouwang};

const TEST: &str = "two_phones_sync_directly_on_the_lan_while_the_hub_is_down";
const SETUP: &str = "ip link set lo up && ip link set lo multicast on && \
    ip route add 224.0.0.0/4 dev lo";

fn only_loopback() -> bool {
    std::fs::read_to_string("/proc/net/dev").is_ok_and(|text| {
        text.lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .all(|name| name.trim() == "lo")
    })
}

/// Runs this test again inside a new network namespace. `false` if none can be made here.
fn rerun_in_namespace() -> bool {
    let probe = Command::new("unshare")
        .args(["-n", "sh", "-c", SETUP])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        return false;
    }
    let script = format!("{SETUP} && exec \"$0\" --exact {TEST} --nocapture");
    let status = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .arg(std::env::current_exe().unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the test failed inside its network namespace"
    );
    true
}

#[test]
fn two_phones_sync_directly_on_the_lan_while_the_hub_is_down() {
    if !only_loopback() {
        if !rerun_in_namespace() {
            eprintln!(
                "skipped: LAN sync is tested only inside a private network namespace \
                 (needs root, unshare and ip); none could be created here"
            );
        }
        return;
    }
    let mut school = TwoPhones::join();
    let (teacher, mother) = (school.teacher.clone(), school.mother.clone());
    // The 班主任 syncs once more while the hub is up: that is how her device learns that the
    // 爱心妈妈's device was registered after hers (a peer takes only its own changes from a
    // device, so registrations come from the hub).
    let (ok, _, err) = shouwang(&teacher, &["sync"]);
    assert!(ok, "{err}");
    school.stop_hub();

    record(&teacher, "家访", "王小雨", "班主任家访：奶奶腿脚不便");
    record(&teacher, "家访", "赵子涵", "班主任家访：爷爷照看");
    record(&mother, "谈心", "王小雨", "爱心妈妈谈心：约好周末视频");

    // The 爱心妈妈 waits; her device code is the first JSON object she prints.
    let mut waiting = Command::new(common::BIN)
        .arg("--store")
        .arg(&mother)
        .args(["--json", "sync", "--wait", "--once", "--seconds", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(waiting.stdout.take().unwrap()).lines();
    let mut text = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        text.push_str(&line);
        if line == "}" {
            break;
        }
    }
    let first: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        let mut err = String::new();
        std::io::Read::read_to_string(&mut waiting.stderr.take().unwrap(), &mut err).unwrap();
        panic!("{e}: {text} {err}")
    });
    let code = first["device"].as_str().unwrap().to_owned();

    // The 班主任 sees her nearby and syncs by the code alone.
    let (ok, out, err) = shouwang(&teacher, &["--json", "nearby", "--seconds", "5"]);
    assert!(ok, "{err}");
    assert!(out.contains(&code), "{out}");
    let (ok, out, err) = shouwang(&teacher, &["sync", "--peer", &code]);
    assert!(ok, "{err}");
    assert!(out.contains("已与刘桂兰的设备同步"), "{out}");
    let status = waiting.wait().unwrap();
    assert!(status.success());

    let (_, out, _) = shouwang(&teacher, &["child", "show", "王小雨"]);
    assert!(out.contains("约好周末视频"), "{out}");
    let (_, out, _) = shouwang(&mother, &["child", "show", "王小雨"]);
    assert!(out.contains("奶奶腿脚不便"), "{out}");
    // Only what both may see.
    let (ok, _, err) = shouwang(&mother, &["child", "show", "赵子涵"]);
    assert!(!ok && err.contains("找不到"), "{err}");

    // A bad device code is a clear Chinese error.
    let (ok, _, err) = shouwang(&teacher, &["sync", "--peer", "不是设备码"]);
    assert!(!ok && err.contains("设备码填写有误"), "{err}");
}
