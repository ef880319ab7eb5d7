//! Storage that will not take a write, on the real binary, each test re-run in a private mount
//! namespace (`unshare -m`, which needs root; where none can be made it is skipped with a
//! message):
//! - a full disk (issue 12, point 3): the school's store on a 16 MiB tmpfs; with the disk full
//!   a 谈心 and a roster import fail with one Chinese line each and leave the store's bytes as
//!   they were; once space is freed the same commands succeed and the integrity check is ok;
//! - a sync into a full disk (point 3): the hub (on the real disk, in the test's process)
//!   holds a month of 家访 the phone lacks; the sync fails with a Chinese line naming the
//!   storage, the phone's store passes the integrity check, and once space is freed the same
//!   sync brings everything;
//! - a read-only medium (point 7): the store's directory bind-mounted read-only; read
//!   commands work, a write says in Chinese that the store is read-only and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{CLASS, School, arg, assert_one_chinese_error};
use shouwang_core::Archive;

/// Set inside the namespace: the directory the test works on.
const MOUNTED: &str = "SHOUWANG_TEST_MOUNT";

/// Runs `test` again in a new mount namespace, after `mount` (a shell command given the
/// directory as `$D`), with that directory as its temporary directory. `false` if no
/// namespace can be made here.
fn rerun_in_mount_namespace(test: &str, mount: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mount = mount.replace("$D", &dir.path().display().to_string());
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", &mount])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !matches!(probe, Ok(s) if s.success()) {
        return false;
    }
    let script = format!("{mount} && exec \"$0\" --exact {test} --nocapture");
    let status = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .arg(std::env::current_exe().unwrap())
        .env(MOUNTED, dir.path())
        .env("TMPDIR", dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "the test failed in its mount namespace");
    true
}

fn skipped() {
    eprintln!(
        "skipped: this test needs a private mount namespace (root and unshare); none could \
         be made here"
    );
}

/// Fills the file system holding `dir` to the last byte; returns the filler's path.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // The last partial blocks.
    while f.write(&[0u8; 512]).is_ok_and(|n| n > 0) {}
    while f.write(&[0u8]).is_ok_and(|n| n > 0) {}
    path
}

#[test]
fn a_full_disk_refuses_writes_in_chinese_and_work_resumes_once_freed() {
    let Some(disk) = std::env::var_os(MOUNTED).map(std::path::PathBuf::from) else {
        let test = "a_full_disk_refuses_writes_in_chinese_and_work_resumes_once_freed";
        if !rerun_in_mount_namespace(test, "mount -t tmpfs -o size=16m tmpfs $D") {
            skipped();
        }
        return;
    };
    let s = School::new();
    assert!(
        s.store.starts_with(&disk),
        "the store is not on the small disk"
    );
    let talk = [
        "record",
        "谈心",
        "--child",
        "王小雨",
        "--date",
        "2026-11-20",
        "--field",
        "notes=说想妈妈了，约好周末视频",
    ];
    let roster = s.path("new.csv");
    std::fs::write(&roster, format!("学籍号,姓名,班级\nG009,周小军,{CLASS}\n")).unwrap();
    let import = ["roster", "import", arg(&roster)];

    let filler = fill(&disk);
    let before = s.bytes();
    for args in [&talk[..], &import[..]] {
        let o = s.run(args);
        let line = assert_one_chinese_error(&o, args);
        println!("{args:?} on a full disk: {line}");
        assert!(
            s.bytes() == before,
            "{args:?} changed the store on a full disk"
        );
    }

    std::fs::remove_file(filler).unwrap();
    s.ok(&talk);
    s.ok(&import);
    let file = s.ok(&["child", "show", "王小雨"]);
    assert!(file.contains("约好周末视频"), "{file}");
    s.ok(&["child", "show", "周小军"]);
    let mut archive = Archive::open(&s.store).unwrap();
    let check: String = archive
        .store()
        .conn()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn a_read_only_store_serves_reads_and_says_why_it_cannot_write() {
    let Some(dir) = std::env::var_os(MOUNTED).map(std::path::PathBuf::from) else {
        // The school is set up first, writable; the namespace then makes its directory
        // read-only (a bind mount of itself, remounted read-only).
        let test = "a_read_only_store_serves_reads_and_says_why_it_cannot_write";
        if !rerun_in_mount_namespace(test, "true") {
            skipped();
        }
        return;
    };
    let s = School::new();
    assert!(s.store.starts_with(&dir));
    let place = s.dir.path().display().to_string();
    let lock = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mount --bind '{place}' '{place}' && mount -o remount,bind,ro '{place}'"
        ))
        .status()
        .unwrap();
    assert!(
        lock.success(),
        "could not make the store's directory read-only"
    );
    let before = s.bytes();
    for args in [
        &["due"][..],
        &["member", "list"][..],
        &["children", "--class", CLASS][..],
    ] {
        s.ok(args);
    }
    let talk = [
        "record",
        "谈心",
        "--child",
        "王小雨",
        "--date",
        "2026-11-20",
        "--field",
        "notes=聊了聊",
    ];
    let o = s.run(&talk);
    let line = assert_one_chinese_error(&o, &talk);
    assert!(line.contains("只读"), "{line}");
    assert!(s.bytes() == before, "the read-only store changed");
}

#[test]
fn a_sync_into_a_full_disk_fails_in_chinese_and_resumes_once_freed() {
    let Some(disk) = std::env::var_os(MOUNTED).map(std::path::PathBuf::from) else {
        let test = "a_sync_into_a_full_disk_fails_in_chinese_and_resumes_once_freed";
        if !rerun_in_mount_namespace(test, "mount -t tmpfs -o size=16m tmpfs $D") {
            skipped();
        }
        return;
    };
    // The hub on the real disk, in this process, on loopback; the 班主任's phone on the small
    // one.
    let hub_dir = tempfile::Builder::new()
        .prefix("hub")
        .tempdir_in(std::env::var_os("CARGO_TARGET_TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
        .unwrap();
    let data = common::hub::init_school(hub_dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = common::hub::start(&rt, hub_dir.path());
    let phone = disk.join("teacher.db");
    common::hub::join(
        &server,
        &phone,
        common::TEACHER,
        shouwang_core::roles::Role::HeadTeacher,
    );
    // While the phone is away, the office writes a term of 家访 for her class (as much as
    // the phone will then lack room for).
    {
        let mut office = data.open_archive().unwrap();
        let notes = "奶奶说孩子最近按时完成作业，周末跟着爷爷下地，".repeat(40);
        for day in 1..=28 {
            for child in ["王小雨", "赵子涵"] {
                office
                    .add_record(&shouwang_core::RecordInput {
                        kind: "家访".into(),
                        child: Some(child.into()),
                        class: None,
                        date: format!("2026-11-{day:02}"),
                        fields: vec![("notes".into(), format!("{notes}{day}"))],
                    })
                    .unwrap();
            }
        }
    }
    let sync = |store: &std::path::Path| {
        Command::new(common::BIN)
            .arg("--store")
            .arg(store)
            .arg("sync")
            .env_remove("SHOUWANG_STORE")
            .output()
            .unwrap()
    };
    let filler = fill(&disk);
    let o = sync(&phone);
    assert!(!o.status.success(), "a sync into a full disk succeeded");
    let err = common::stderr(&o);
    let line = err.lines().last().unwrap_or_default();
    println!("sync on a full disk: {line}");
    assert!(line.starts_with("错误："), "{err}");
    assert!(line.contains("空间") || line.contains("存储"), "{line}");
    common::assert_no_english(line, &[]);
    let check = |store: &std::path::Path| -> String {
        let mut archive = Archive::open(store).unwrap();
        archive
            .store()
            .conn()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap()
    };
    // Nothing corrupted (what a failed write began is rolled back); the phone still reads.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(check(&phone), "ok");

    let o = sync(&phone);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let (ok, file, err) = common::hub::shouwang(&phone, &["child", "show", "赵子涵"]);
    assert!(ok, "{err}");
    assert!(
        file.contains("周末跟着爷爷下地") && file.contains("28"),
        "{file}"
    );
    assert_eq!(check(&phone), "ok");
    drop(server);
}
