//! `shouwang-relay backup` while `serve` runs, and `restore` into a fresh data directory that a
//! phone then syncs against once the office's device has, keeping every record it wrote
//! (issue 13). The real
//! `shouwang-relay` and `shouwang` binaries (the latter from the same target directory:
//! `cargo test --workspace` builds both), real iroh on loopback, real SQLCipher files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use shouwang_relay::keyfile;
use shouwang_relay::server::{DataDir, KeySource};
use shouwang_tests::hub_process::{HubPorts, HubProcess};

use common::cli::{BIN, contains, files, invite, ok, phone, refused, relay};

const BEFORE: &str = "备份前的家访：奶奶腿脚不便";
const AFTER: &str = "备份后的家访：爷爷外出务工";

fn home_visit(store: &Path, notes: &str) {
    let args = shouwang_tests::fixtures::record_args("家访", "王小雨", "2026-11-20", notes);
    phone(store, &args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The school's copy of 王小雨's file, as text.
fn at_hub(data: &DataDir) -> String {
    let mut archive = data.open_archive().unwrap();
    format!("{:?}", archive.child_file("王小雨").unwrap())
}

#[test]
fn a_backup_taken_while_serving_restores_into_a_fresh_directory_a_phone_syncs_with() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    let ports = HubPorts::write(dir.path(), &data, "");
    let log = dir.path().join("hub.log");
    let server = HubProcess::start(Path::new(BIN), &ports, &log);

    // A 班主任's phone joins, writes a 家访 and syncs it.
    let ticket = invite(&ports.config, "班主任", "王瑞侠");
    let store = dir.path().join("phone.db");
    phone(&store, &["join", &ticket]);
    home_visit(&store, BEFORE);
    phone(&store, &["sync"]);
    // The office's device too: after a restore the hub waits for an administrator's first.
    let office = dir.path().join("office.db");
    phone(
        &office,
        &["join", &invite(&ports.config, "领导组", "张长友")],
    );

    // The backup, while serve runs: one file, encrypted, never over an existing one.
    let backup = dir.path().join("郭庄小学.backup");
    let out = ok(relay(
        &ports.config,
        &["backup", "--out", backup.to_str().unwrap()],
    ));
    assert!(out.contains(backup.to_str().unwrap()), "{out}");
    let bytes = std::fs::read(&backup).unwrap();
    for clear in ["王小雨", "郭庄小学", "王瑞侠", BEFORE, "SQLite format 3"] {
        assert!(!contains(&bytes, clear), "{clear} in clear in the backup");
    }
    let err = refused(relay(
        &ports.config,
        &["backup", "--out", backup.to_str().unwrap()],
    ));
    assert!(err.contains("已存在"), "{err}");
    assert_eq!(std::fs::read(&backup).unwrap(), bytes);
    let nowhere = dir.path().join("U盘").join("x.backup");
    let err = refused(relay(
        &ports.config,
        &["backup", "--out", nowhere.to_str().unwrap()],
    ));
    assert!(err.contains("没有目录"), "{err}");

    // The phone goes on: a record the backup does not hold reaches the old hub.
    home_visit(&store, AFTER);
    phone(&store, &["sync"]);
    server.stop();

    // Restoring over the running school's directory is refused and changes nothing.
    let before = files(data.root());
    let err = refused(relay(
        &ports.config,
        &["restore", "--from", backup.to_str().unwrap()],
    ));
    assert!(err.contains("不会覆盖"), "{err}");
    assert_eq!(files(data.root()), before);

    // A fresh directory, same data key (the key is never in the backup): a wrong key is
    // refused before anything is created.
    let fresh = dir.path().join("hub2");
    let text = std::fs::read_to_string(&ports.config).unwrap().replace(
        &format!("data_dir = \"{}\"", data.root().display()),
        &format!("data_dir = \"{}\"", fresh.display()),
    );
    let config2 = dir.path().join("hub2.toml");
    std::fs::write(&config2, text).unwrap();
    let other = dir.path().join("other.key");
    keyfile::create(&other, &[7; 32]).unwrap();
    let err = refused(relay(
        &config2,
        &[
            "--key-file",
            other.to_str().unwrap(),
            "restore",
            "--from",
            backup.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("数据密钥不对"), "{err}");
    assert!(!fresh.exists());
    let not_a_backup = dir.path().join("hub.log");
    let err = refused(relay(
        &config2,
        &["restore", "--from", not_a_backup.to_str().unwrap()],
    ));
    assert!(err.contains("备份"), "{err}");
    assert!(!fresh.exists());
    // A USB stick not mounted (a path not there), or a folder, is said as it is.
    for (from, says) in [
        (dir.path().join("u盘").join("郭庄小学.backup"), "不存在"),
        (dir.path().to_owned(), "文件夹"),
    ] {
        let err = refused(relay(
            &config2,
            &["restore", "--from", from.to_str().unwrap()],
        ));
        assert!(err.contains(says) && !err.contains("不是守望"), "{err}");
    }
    assert!(!fresh.exists());

    let out = ok(relay(
        &config2,
        &["restore", "--from", backup.to_str().unwrap()],
    ));
    assert!(out.contains("郭庄小学"), "{out}");
    assert!(!out.contains("school.ledger"), "{out}");
    // A copy carried away alone, without the ledger of its folder: the restore says what
    // that leaves out, and how to bring it.
    let carried = dir.path().join("拷走的");
    std::fs::create_dir(&carried).unwrap();
    let lone = carried.join("郭庄小学.backup");
    std::fs::copy(&backup, &lone).unwrap();
    let third = dir.path().join("hub-carried");
    let text = std::fs::read_to_string(&config2).unwrap().replace(
        &format!("data_dir = \"{}\"", fresh.display()),
        &format!("data_dir = \"{}\"", third.display()),
    );
    let carried_config = dir.path().join("hub-carried.toml");
    std::fs::write(&carried_config, text).unwrap();
    let out = ok(relay(
        &carried_config,
        &["restore", "--from", lone.to_str().unwrap()],
    ));
    assert!(
        out.contains("school.ledger") && out.contains("再恢复一次"),
        "{out}"
    );
    let key = match data.key_source() {
        KeySource::File(k) => k.clone(),
        other => panic!("{other}"),
    };
    let restored = DataDir::with_key(&fresh, KeySource::File(key));
    let school = at_hub(&restored);
    assert!(school.contains(BEFORE), "the backup holds the first record");
    assert!(
        !school.contains(AFTER),
        "the backup was taken before the second"
    );
    let err = refused(relay(
        &config2,
        &["restore", "--from", backup.to_str().unwrap()],
    ));
    assert!(err.contains("不会覆盖"), "{err}");

    // Into an existing empty directory (as a package makes /var/lib/shouwang) too.
    let empty = dir.path().join("hub3");
    std::fs::create_dir(&empty).unwrap();
    let config3 = dir.path().join("hub3.toml");
    let text = std::fs::read_to_string(&ports.config).unwrap().replace(
        &format!("data_dir = \"{}\"", data.root().display()),
        &format!("data_dir = \"{}\"", empty.display()),
    );
    std::fs::write(&config3, text).unwrap();
    ok(relay(
        &config3,
        &["restore", "--from", backup.to_str().unwrap()],
    ));
    let mut names: Vec<_> = std::fs::read_dir(&empty)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "hub.db",
            "hub.key",
            "invites",
            "rebuilding",
            "school.key",
            "spent"
        ]
    );

    // serve on the restored directory, on the same addresses: the phone syncs and gives the
    // hub back what the backup missed; it keeps both of its records.
    let ports2 = HubPorts {
        config: config2,
        ..ports.clone()
    };
    let server = HubProcess::start(Path::new(BIN), &ports2, &log);
    let early = common::cli::run(
        &common::cli::phone_bin(),
        &["--store", store.to_str().unwrap(), "sync"],
    );
    assert!(!early.status.success(), "the 班主任's phone synced first");
    phone(&office, &["sync"]);
    phone(&store, &["sync"]);
    let mine = phone(&store, &["child", "show", "王小雨"]);
    assert!(mine.contains(BEFORE) && mine.contains(AFTER), "{mine}");
    server.stop();
    let school = at_hub(&restored);
    assert!(
        school.contains(BEFORE) && school.contains(AFTER),
        "{school}"
    );
}

/// The sample school (`prepare`d), a folder for its backups, and its first backup there,
/// `2026-12-01.backup`.
struct Folder {
    dir: tempfile::TempDir,
    data: DataDir,
    backups: std::path::PathBuf,
    old: std::path::PathBuf,
}

fn folder_with_a_backup(prepare: impl FnOnce(&DataDir)) -> Folder {
    let dir = tempfile::tempdir().unwrap();
    let data = common::sample_school(dir.path());
    prepare(&data);
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let old = backups.join("2026-12-01.backup");
    shouwang_relay::server::backup(&data, &old).unwrap();
    Folder {
        dir,
        data,
        backups,
        old,
    }
}

/// A connection to the backup at `path`, under the school's data key.
fn open_backup(data: &DataDir, path: &Path, flags: rusqlite::OpenFlags) -> rusqlite::Connection {
    let key = data.data_key().unwrap().store_key();
    shouwang_core::store::cipher::open(path, flags, Some(&key)).unwrap()
}

/// Runs `make` (a backup into the folder of `old`) with `old` out of that folder, and puts it
/// back: a backup sweeps the older backups beside it (the next test), and the ledger tests are
/// about a backup the sweep never reached (on a USB stick that night).
fn backup_while_away<T>(old: &Path, make: impl FnOnce() -> T) -> T {
    let away = old.with_extension("away");
    let outside = away
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join(away.file_name().unwrap());
    std::fs::rename(old, &outside).unwrap();
    let made = make();
    std::fs::rename(&outside, old).unwrap();
    made
}

/// An erasure made after a backup is not undone by restoring that backup. Each backup leaves
/// the school document beside it (`school.ledger`, sealed like the backups, never rotated:
/// school documents only grow), and a restore from an older backup in the same folder merges
/// it, so every erasure made before the newest backup is there again and the child's file is
/// purged before the hub serves anyone.
#[test]
fn restoring_an_older_backup_does_not_bring_an_erased_child_back() {
    use shouwang_relay::server::{backup, restore};

    let Folder {
        dir,
        data,
        backups,
        old,
    } = folder_with_a_backup(|_| {});
    data.open_archive()
        .unwrap()
        .erase_child("王小雨", "监护人书面申请删除")
        .unwrap();
    // The next night's backup, later rotated away (or the disk it was on lost).
    let newer = backups.join("2026-12-02.backup");
    backup_while_away(&old, || backup(&data, &newer).unwrap());
    std::fs::remove_file(&newer).unwrap();
    let ledger = std::fs::read(backups.join("school.ledger")).unwrap();
    for clear in ["郭庄小学", "SQLite format 3"] {
        assert!(!contains(&ledger, clear), "{clear} in clear in the ledger");
    }

    let restored = DataDir::with_key(dir.path().join("restored"), data.key_source().clone());
    let report = restore(&restored, &old).unwrap();
    assert_eq!(report.erasures, 1, "{report:?}");
    let mut hub = restored.open_archive().unwrap();
    assert_eq!(hub.erasures().unwrap().len(), 1);
    assert!(hub.find_child("王小雨").is_err(), "her file is back");
    assert!(hub.find_child("赵子涵").is_ok(), "the others stay");
    drop(hub);
    let leaks = shouwang_tests::fixtures::hub_leaks(&restored, &["王小雨"]);
    assert!(leaks.is_empty(), "{leaks:?}");

    // A ledger that does not open stops the restore before anything is created: restoring
    // without it could bring her back.
    std::fs::write(backups.join("school.ledger"), b"not a ledger").unwrap();
    let elsewhere = DataDir::with_key(dir.path().join("again"), data.key_source().clone());
    let err = restore(&elsewhere, &old).unwrap_err().to_string();
    assert!(err.contains("school.ledger"), "{err}");
    assert!(!elsewhere.root().exists());
}

/// An erased child's file leaves the older backups too, not only a hub restored from them: the
/// next backup sweeps every other backup in its folder that the data key opens. The old backup,
/// restored even without the ledger, holds no trace of her and no free page; what is not a
/// backup of this school (a note, another school's backup under its own key) is left byte for
/// byte, and a backup with nothing to remove is not rewritten.
#[test]
fn the_next_backup_removes_an_erased_child_from_the_older_backups_in_its_folder() {
    use shouwang_relay::server::{backup, restore};

    let Folder {
        dir,
        data,
        backups,
        old,
    } = folder_with_a_backup(|_| {});
    let note = backups.join("说明.txt");
    std::fs::write(&note, "每晚 2 点自动备份").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let other_school = common::sample_school(elsewhere.path());
    let theirs = backups.join("另一所学校.backup");
    backup(&other_school, &theirs).unwrap();
    let untouched = [&note, &theirs].map(|p| std::fs::read(p).unwrap());
    // What a backup and a sweep killed half-way (a power cut at 2 a.m.) leave behind: whole
    // copies holding her file, under names the sweep does not read as backups.
    for stale in [".2026-11-30.backup.partial", ".2026-12-01.backup.sweeping"] {
        std::fs::copy(&old, backups.join(stale)).unwrap();
    }

    // Someone who could read the disk's free blocks afterwards: the old backup's bytes, read
    // through a handle opened before the sweep, are what stays on the disk once its name goes.
    let mut before_sweep = std::fs::File::open(&old).unwrap();
    data.open_archive()
        .unwrap()
        .erase_child("王小雨", "监护人书面申请删除")
        .unwrap();
    // Two backups at once (the nightly timer and someone at the keyboard): one sweeps, the
    // other waits for the folder and finds nothing left to remove.
    let reports = std::thread::scope(|s| {
        let runs = ["2026-12-02.backup", "2026-12-02-手动.backup"].map(|name| {
            let (data, out) = (&data, backups.join(name));
            s.spawn(move || backup(data, &out).unwrap())
        });
        runs.map(|r| r.join().unwrap())
    });
    let swept: Vec<_> = reports.iter().flat_map(|r| r.swept.clone()).collect();
    assert_eq!(swept, vec![old.clone()], "{reports:?}");
    let mut left = Vec::new();
    std::io::Read::read_to_end(&mut before_sweep, &mut left).unwrap();
    assert!(
        !left.is_empty() && left.iter().all(|b| *b == 0),
        "the old backup's bytes stay on the disk"
    );
    assert!(
        reports.iter().all(|r| r.sweep_problems.is_empty()),
        "{reports:?}"
    );
    assert_eq!(
        [&note, &theirs].map(|p| std::fs::read(p).unwrap()),
        untouched
    );
    let stray: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".shouwang-backup.lock")
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    // Nothing left to remove: the next night's backup rewrites nothing.
    let before = std::fs::read(&old).unwrap();
    let again = backup(&data, &backups.join("2026-12-03.backup")).unwrap();
    assert!(again.swept.is_empty(), "{again:?}");
    assert_eq!(std::fs::read(&old).unwrap(), before);

    // The old backup alone, without the ledger that would purge her at a restore.
    let conn = open_backup(&data, &old, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY);
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    assert_eq!(free, 0, "free pages may hold her bytes");
    drop(conn);
    std::fs::remove_file(backups.join("school.ledger")).unwrap();
    let restored = DataDir::with_key(dir.path().join("restored"), data.key_source().clone());
    restore(&restored, &old).unwrap();
    let mut hub = restored.open_archive().unwrap();
    assert!(
        hub.find_child("王小雨").is_err(),
        "her file is in the old backup"
    );
    assert!(hub.find_child("赵子涵").is_ok(), "the others stay");
    drop(hub);
    let leaks = shouwang_tests::fixtures::hub_leaks(&restored, &["王小雨"]);
    assert!(leaks.is_empty(), "{leaks:?}");
}

/// A backup made by another version of the store (here: one schema version behind) is not
/// swept: the sweep would migrate it, and the build that made it could no longer restore it.
/// It is named in the report, byte for byte as it was.
#[test]
fn a_backup_of_another_store_version_is_reported_not_rewritten() {
    use shouwang_relay::server::backup;

    let Folder {
        dir: _dir,
        data,
        backups,
        old,
    } = folder_with_a_backup(|_| {});
    let conn = open_backup(&data, &old, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE);
    let behind = shouwang_core::store::migrations::latest() - 1;
    conn.pragma_update(None, "user_version", behind).unwrap();
    drop(conn);
    let before = std::fs::read(&old).unwrap();
    data.open_archive()
        .unwrap()
        .erase_child("王小雨", "监护人书面申请删除")
        .unwrap();
    let report = backup(&data, &backups.join("2026-12-02.backup")).unwrap();
    assert!(report.swept.is_empty(), "{report:?}");
    assert_eq!(report.sweep_problems.len(), 1, "{report:?}");
    assert_eq!(report.sweep_problems[0].0, old);
    assert!(
        report.sweep_problems[0].1.contains("另一个版本"),
        "{report:?}"
    );
    assert_eq!(std::fs::read(&old).unwrap(), before);
}

/// The ledger follows a school split: the backup before the split left the school's old
/// history (members' phone numbers in it) in the ledger; after `school split` rewrote that
/// history on the hub, the next backup still merges into the ledger (redacting its old copy,
/// as a replica switches), so an erasure made after the split is kept, and restoring the
/// first backup gives a hub with neither the erased child nor the phone number. A ledger a
/// backup left empty when it stopped is no ledger, not a reason to refuse.
#[test]
fn the_ledger_follows_a_school_split_and_a_half_made_one_does_not_stop_a_restore() {
    use shouwang_relay::server::{backup, restore};
    use shouwang_tests::fixtures::{hub_leaks, make_old_school};
    const PHONE: &str = "13805640077";

    let Folder {
        dir,
        data,
        backups,
        old,
    } = folder_with_a_backup(|data| make_old_school(data, PHONE));
    {
        let mut hub = data.open_archive().unwrap();
        hub.split_for_roles().unwrap();
        hub.erase_child("王小雨", "监护人书面申请删除").unwrap();
    }
    let newer = backups.join("2026-12-02.backup");
    let report = backup_while_away(&old, || backup(&data, &newer).unwrap());
    assert_eq!(report.ledger_problem, None);
    std::fs::remove_file(&newer).unwrap();

    let restored = DataDir::with_key(dir.path().join("restored"), data.key_source().clone());
    let report = restore(&restored, &old).unwrap();
    assert_eq!(report.erasures, 1, "{report:?}");
    assert!(
        restored
            .open_archive()
            .unwrap()
            .find_child("王小雨")
            .is_err()
    );
    let leaks = hub_leaks(&restored, &["王小雨", PHONE]);
    assert!(leaks.is_empty(), "{leaks:?}");

    // A backup stopped while making the ledger leaves it empty.
    std::fs::write(backups.join("school.ledger"), b"").unwrap();
    let again = DataDir::with_key(dir.path().join("again"), data.key_source().clone());
    let report = restore(&again, &old).unwrap();
    assert_eq!(report.erasures, 0);
}
