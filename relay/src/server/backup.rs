//! Backing up a hub while it serves, and restoring it into a fresh data directory.
//!
//! A backup is one file: a SQLCipher database under the hub's data key, made by SQLite's
//! online backup API from `hub.db` in a single step (one read transaction, so it is
//! consistent while `serve` goes on writing: WAL readers do not block the writer), plus a table
//! `backup_files(path, bytes)` holding the rest of the data directory: `school.key` and
//! `hub.key` (already sealed with the data key) and the invite records. The data key itself is
//! never in it: a backup alone reveals nothing, and restoring needs the same key (keep a copy
//! of the key file apart from the backups).
//!
//! A restored hub is *rebuilding* (a `rebuilding` file in the data directory) until an
//! administrator's device has synced with it: the devices hold everything written since the
//! backup, the office's device the whole school document (members, pairings, devices enrolled
//! and revoked since), so the hub takes that first and enrolls no one meanwhile (it would
//! write on a school that lacks the members, devices and revocations made since).
//!
//! A restored hub writes under a new actor (its device id followed by a restore epoch,
//! `shouwang_core::ids::Epoch`): the changes its lost copy made after the backup are on the
//! phones that synced since, under the numbers the hub had reached, and a new change numbered
//! the same way would make each of those phones fail every later sync of that document.
//!
//! `restore` refuses a data directory that holds anything, builds the new one beside it
//! (`<dir>.restoring`) and renames it into place only once every file is written and the
//! archive opens; a wrong key or a file that is not a backup changes nothing.
//!
//! # Erasures outlive old backups
//!
//! A backup taken before a child was erased holds her whole file. So each backup also merges
//! the hub's school document into a *ledger* beside it (`school.ledger`, a SQLCipher file under
//! the same key, never rotated: school documents only grow, and they hold no child's name or
//! number, only ids, staff and the erasure records; after `school split` the ledger's old
//! copy is redacted as a replica's is, `school_history::merge_saved`, so it keeps no member's
//! phone number either). Restoring any backup from that folder
//! merges the ledger first (the hub's own changes, as they were: nothing is written under the
//! hub's actor) and purges every erased child's documents before the hub serves anyone. What
//! stays open: an erasure made after the newest backup comes back with the next administrator's
//! device that syncs, as any later change does.
//!
//! The older backups themselves are swept too: each backup removes, from every other backup
//! in its folder that the same data key opens, the documents of every child the hub knows as
//! erased (the store's own purge on a copy, `secure_delete` and a rebuild, the copy renamed
//! over the old file once checked). So an erased child's file is gone from the folder's backups
//! by the first backup after the erasure, not only kept out of a restored hub; a backup carried
//! elsewhere (a USB stick taken home) is out of reach, and still meets the ledger if restored
//! beside it. A backup holds the folder's lock (`.shouwang-backup.lock`) from start to sweep,
//! so two at once (a timer and a manual run) take turns. A backup made by another version of
//! the store is left as it is and named in the report: sweeping it would migrate it, and the
//! build that made it could no longer restore it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use shouwang_core::Error;
use shouwang_core::doc::DocId;
use shouwang_core::ids::ChildId;
use shouwang_core::store::{StoreKey, cipher};

use super::ServerError;
use super::data::{DataDir, HUB_KEY_HEADER, SCHOOL_KEY_HEADER, open_archive_with, wrong_key};
use super::secrets::DataKey;
use crate::keyfile::{create_private_dir, write_private_new};

const FILES_TABLE: &str = "backup_files";
/// The school ledger's file name, beside the backups.
pub const LEDGER: &str = "school.ledger";
/// The lock file a backup holds in its folder.
const FOLDER_LOCK: &str = ".shouwang-backup.lock";
/// Where a restore into an existing (empty) data directory is built.
const STAGING_INSIDE: &str = ".restoring";

/// What a backup or a restore did.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The school's name.
    pub school: String,
    /// Files of the data directory besides `hub.db`.
    pub files: usize,
    /// Bytes of the backup file.
    pub bytes: u64,
    /// Erasures the hub holds: after a restore, from the backup and its folder's ledger.
    pub erasures: usize,
    /// A backup: why the ledger beside it could not be updated (the backup itself is good).
    pub ledger_problem: Option<String>,
    /// A backup: the older backups in its folder from which it removed erased children's
    /// documents (see the module docs).
    pub swept: Vec<PathBuf>,
    /// A backup: the older backups it could not sweep, and why (the new backup is good).
    pub sweep_problems: Vec<(PathBuf, String)>,
    /// A restore: no ledger was beside the backup (a copy carried away alone), so erasures
    /// made after this backup was taken are not known until an administrator's device syncs.
    pub no_ledger: bool,
}

/// Copies every page of `from` into `to` in one step (retrying while the source is busy).
fn copy_pages(from: &Connection, to: &mut Connection) -> Result<(), Error> {
    let backup = Backup::new(from, to)?;
    for _ in 0..200 {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            _ => {}
        }
    }
    Err(Error::NotPermitted(
        "服务器一直在写档案库，备份没能完成，请稍后再试".into(),
    ))
}

/// The files of the data directory a backup carries, relative to it.
fn carried_files(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = vec![PathBuf::from("school.key"), PathBuf::from("hub.key")];
    for sub in ["invites", "spent"] {
        let Ok(entries) = fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in entries {
            let name = e?.file_name();
            if name.to_string_lossy().ends_with(".json") {
                out.push(Path::new(sub).join(name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a path from a backup names a file `restore` may write: `school.key`, `hub.key`, or
/// `invites/` or `spent/` + a digest `.json`.
fn allowed(path: &str) -> bool {
    match path.split_once('/') {
        None => path == "school.key" || path == "hub.key",
        Some((dir, name)) => {
            (dir == "invites" || dir == "spent")
                && name
                    .strip_suffix(".json")
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_hexdigit()))
        }
    }
}

/// Backs the hub's data directory up into `out`, which must not exist.
pub fn backup(data: &DataDir, out: &Path) -> Result<BackupReport, ServerError> {
    data.check_initialised()?;
    if out.exists() {
        return Err(ServerError::Refused(format!(
            "{} 已存在，不会覆盖；请换一个文件名",
            out.display()
        )));
    }
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(ServerError::Refused(format!(
            "没有目录 {}，请先建好它（或插好 U 盘）再备份",
            dir.display()
        )));
    }
    // One backup at a time in a folder (a nightly timer and a manual run): the ledger and the
    // sweep of the older backups below are theirs alone until this one is done.
    let _folder = lock_folder(dir)?;
    remove_leftovers(dir);
    let key = data.data_key()?;
    let store_key = key.store_key();
    let source = cipher::open(
        &data.archive(),
        OpenFlags::SQLITE_OPEN_READ_WRITE,
        Some(&store_key),
    )
    .map_err(|e| locked(e, data))?;
    let mut archive = data.open_archive()?;
    let school = archive.school()?.name.clone();
    let tmp = dir.join(format!(
        ".{}.partial",
        out.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let _ = fs::remove_file(&tmp);
    write_private_new(&tmp, b"")?;
    let result = (|| -> Result<usize, Error> {
        let mut copy = cipher::open(&tmp, OpenFlags::SQLITE_OPEN_READ_WRITE, Some(&store_key))?;
        copy_pages(&source, &mut copy)?;
        drop(source);
        copy.execute_batch(&format!(
            "PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;
             CREATE TABLE {FILES_TABLE} (path TEXT PRIMARY KEY, bytes BLOB NOT NULL);"
        ))?;
        let files = carried_files(data.root())?;
        let tx = copy.transaction()?;
        for f in &files {
            let bytes = fs::read(data.root().join(f))?;
            tx.execute(
                &format!("INSERT INTO {FILES_TABLE} (path, bytes) VALUES (?1, ?2)"),
                rusqlite::params![f.to_string_lossy(), bytes],
            )?;
        }
        tx.commit()?;
        let check: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(Error::Corrupt(format!("备份文件校验失败：{check}")));
        }
        drop(copy);
        fs::File::open(&tmp)?.sync_all()?;
        put_in_place(&tmp, out)?;
        fs::File::open(dir)?.sync_all()?;
        Ok(files.len())
    })();
    let _ = fs::remove_file(&tmp);
    let files = result?;
    let ledger_problem = school_document(&mut archive)
        .and_then(|doc| keep_in_ledger(&dir.join(LEDGER), &store_key, &doc))
        .err()
        .map(|e| e.to_string());
    let erased = archive.store().erased_children()?;
    drop(archive);
    let (swept, sweep_problems) = sweep_erased(dir, out, &store_key, &erased);
    Ok(BackupReport {
        school,
        files,
        bytes: fs::metadata(out).map_err(Error::from)?.len(),
        erasures: erased.len(),
        ledger_problem,
        swept,
        sweep_problems,
        no_ledger: false,
    })
}

/// The lock a backup holds on its folder (`.shouwang-backup.lock`, released when dropped): a
/// second backup into the same folder waits for it.
fn lock_folder(dir: &Path) -> Result<fs::File, Error> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(FOLDER_LOCK))?;
    file.lock()?;
    Ok(file)
}

/// Removes what a backup or a sweep killed half-way left in `dir` (`.<name>.partial`,
/// `.<name>.sweeping`): whole copies of the archive, erased children's files included, under
/// names the sweep does not take for backups. Only under the folder's lock, which every
/// backup holds while it writes them: any there now is a dead run's.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let leftover = name.starts_with('.')
            && (name.ends_with(".partial") || name.ends_with(".sweeping"))
            && entry.file_type().is_ok_and(|t| t.is_file());
        if leftover {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Removes the documents of the children in `erased` from every other backup in `dir` (files
/// this data key opens that carry the backup's file table; anything else there is left as it
/// is): what [`restore`] would purge, removed for good from the file itself. Returns the
/// backups swept and, for each that could not be, why.
fn sweep_erased(
    dir: &Path,
    made: &Path,
    key: &StoreKey,
    erased: &BTreeSet<ChildId>,
) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let (mut swept, mut problems) = (Vec::new(), Vec::new());
    if erased.is_empty() {
        return (swept, problems);
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return (swept, problems);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            !name.starts_with('.') && name != LEDGER && p.file_name() != made.file_name()
        })
        .collect();
    paths.sort();
    for path in paths {
        match sweep_one(&path, key, erased) {
            Ok(true) => swept.push(path),
            Ok(false) => {}
            Err(e) => problems.push((path, e.to_string())),
        }
    }
    (swept, problems)
}

/// Sweeps one file: `false` if it is no backup under this key or holds nothing of an erased
/// child. The new file is built beside it (`.<name>.sweeping`, under the folder's lock) and
/// renamed over it only once complete and checked, so a sweep cut short leaves the backup as
/// it was. A backup made by another version of the store is left as it is (an error): the
/// sweep would migrate it, and a build older than this one could then no longer restore it.
fn sweep_one(path: &Path, key: &StoreKey, erased: &BTreeSet<ChildId>) -> Result<bool, Error> {
    let held = {
        let Ok(conn) = cipher::open(path, OpenFlags::SQLITE_OPEN_READ_ONLY, Some(key)) else {
            return Ok(false);
        };
        if read_files(&conn).is_err() {
            return Ok(false);
        }
        let Ok(ids) = shouwang_core::store::held_doc_ids_in(&conn) else {
            return Ok(false);
        };
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let holds_erased = ids
            .iter()
            .any(|d| d.child().is_some_and(|c| erased.contains(c)));
        if holds_erased && version != shouwang_core::store::migrations::latest() {
            return Err(Error::NotPermitted(format!(
                "这份备份是另一个版本的守望做的（数据格式 {version}），没有改动它；确定不再需要时请手动删除"
            )));
        }
        ids
    };
    let gone: Vec<DocId> = held
        .into_iter()
        .filter(|d| d.child().is_some_and(|c| erased.contains(c)))
        .collect();
    if gone.is_empty() {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.sweeping"));
    let remove_tmp = || {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = tmp.as_os_str().to_owned();
            p.push(suffix);
            let _ = fs::remove_file(PathBuf::from(p));
        }
    };
    remove_tmp();
    let result = (|| -> Result<(), Error> {
        write_private_new(&tmp, b"")?;
        {
            let source = cipher::open(path, OpenFlags::SQLITE_OPEN_READ_ONLY, Some(key))?;
            let mut copy = cipher::open(&tmp, OpenFlags::SQLITE_OPEN_READ_WRITE, Some(key))?;
            copy_pages(&source, &mut copy)?;
        }
        // The store's own purge: every row of those documents, then the file rebuilt with
        // `secure_delete` so none of their bytes stay in a free page.
        let mut store = shouwang_core::store::Store::open_with_key(&tmp, Some(key))?;
        store.purge(&gone)?;
        // The rebuild must have run: a scrub left due means free pages may still hold them.
        if !store.scrub_if_due()? {
            return Err(Error::NotPermitted(
                "清理后的备份没能重写完，旧备份没有改动".into(),
            ));
        }
        drop(store);
        let conn = cipher::open(&tmp, OpenFlags::SQLITE_OPEN_READ_WRITE, Some(key))?;
        conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;")?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(Error::Corrupt(format!("清理后的备份校验失败：{check}")));
        }
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        if free != 0 {
            return Err(Error::NotPermitted(
                "清理后的备份还留有空闲页，旧备份没有改动".into(),
            ));
        }
        read_files(&conn)?;
        drop(conn);
        fs::File::open(&tmp)?.sync_all()?;
        // The old backup's bytes (her file, under the data key that still opens it) are
        // overwritten once the cleaned copy has its name: a rename alone leaves them in blocks
        // the disk only marks free.
        let old = fs::OpenOptions::new().write(true).open(path)?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()?;
        shouwang_core::store::zero_file(old)?;
        Ok(())
    })();
    if result.is_err() {
        remove_tmp();
    }
    result.map(|()| true)
}

/// The archive's school document, saved.
fn school_document(archive: &mut shouwang_core::Archive) -> Result<Vec<u8>, Error> {
    archive
        .store()
        .doc(&DocId::School)?
        .map(|d| shouwang_core::doc::saved(d, true))
        .ok_or_else(|| Error::Corrupt("档案库里没有学校信息".into()))
}

/// Merges `school` (a saved school document) into the ledger at `path`, made if absent.
fn keep_in_ledger(path: &Path, key: &StoreKey, school: &[u8]) -> Result<(), Error> {
    if !path.exists() {
        write_private_new(path, b"")?;
    }
    let mut conn = cipher::open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, Some(key))?;
    // `secure_delete`: the school document replaced is zeroed in the page it leaves (before a
    // split it held members' phone numbers, which the ledger no longer keeps).
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;
         CREATE TABLE IF NOT EXISTS school (id INTEGER PRIMARY KEY CHECK (id = 1), doc BLOB NOT NULL);",
    )?;
    let tx = conn.transaction()?;
    let held: Option<Vec<u8>> = tx
        .query_row("SELECT doc FROM school", [], |r| r.get(0))
        .optional()?;
    let doc = match held {
        Some(held) => shouwang_core::store::school_history::merge_saved(&held, school).map_err(
            |e| match e {
                Error::Corrupt(why) => ledger_damaged(why),
                e => e,
            },
        )?,
        None => school.to_vec(),
    };
    tx.execute(
        "INSERT OR REPLACE INTO school (id, doc) VALUES (1, ?1)",
        [doc],
    )?;
    tx.commit()?;
    Ok(())
}

/// The school document the ledger at `path` holds: `None` for one a backup was still making
/// when it stopped (empty, or no row yet). Opened for writing, so that SQLite rolls back a
/// transaction such a backup left half done.
fn read_ledger(path: &Path, key: &StoreKey) -> Result<Option<Vec<u8>>, Error> {
    if fs::metadata(path)?.len() == 0 {
        return Ok(None);
    }
    let conn = cipher::open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, Some(key))?;
    let made: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'school')",
        [],
        |r| r.get(0),
    )?;
    if !made {
        return Ok(None);
    }
    conn.query_row("SELECT doc FROM school", [], |r| r.get(0))
        .optional()
        .map_err(|e| ledger_damaged(e.to_string()))
}

fn ledger_damaged(e: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("学校记录文件 {LEDGER} 已损坏：{e}"))
}

fn locked(e: Error, data: &DataDir) -> Error {
    match e {
        Error::Locked => wrong_key(data.key_source()),
        e => e,
    }
}

/// Restores the backup `from` into the data directory, which must not exist or be empty.
pub fn restore(data: &DataDir, from: &Path) -> Result<BackupReport, ServerError> {
    let root = data.root();
    // An existing directory (a package's /var/lib/shouwang, made for the service's user) must
    // be empty; a `.restoring` left by an interrupted restore does not count.
    let in_place = root.exists();
    // Cut off while its files were being moved in (the school key moves last): what is in
    // place came from that restore, and this one starts again.
    let cut_off =
        in_place && root.join(STAGING_INSIDE).is_dir() && !data.school_key_path().exists();
    let occupied = in_place
        && !cut_off
        && fs::read_dir(root).map_or(true, |d| {
            d.filter_map(|e| e.ok())
                .any(|e| e.file_name() != STAGING_INSIDE)
        });
    if occupied {
        return Err(ServerError::Refused(format!(
            "{} 里已有数据，不会覆盖；请恢复到一个新的（或空的）数据目录",
            root.display()
        )));
    }
    let not_backup = || {
        ServerError::Refused(format!(
            "{} 不是守望学校服务器的备份（shouwang-relay backup 做的文件）",
            from.display()
        ))
    };
    // What keeps it from being read, said as it is: a file not there (a USB stick not
    // mounted, a typo), a folder, or one the service's user may not read are not "not a
    // backup".
    match fs::metadata(from) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(ServerError::Refused(format!(
                "{} 是一个文件夹，不是备份文件",
                from.display()
            )));
        }
        Err(e) => {
            return Err(ServerError::Refused(format!(
                "读不了备份文件 {}：{}",
                from.display(),
                shouwang_core::error::io_text(&e)
            )));
        }
    }
    let key = data.data_key()?;
    let store_key = key.store_key();
    let source = match cipher::open(from, OpenFlags::SQLITE_OPEN_READ_ONLY, Some(&store_key)) {
        Ok(c) => c,
        Err(Error::Locked) => {
            return Err(ServerError::Refused(format!(
                "数据密钥不对（{}），打不开备份 {}；没有改动任何文件",
                data.key_source(),
                from.display()
            )));
        }
        Err(Error::NotAStore) => return Err(not_backup()),
        Err(e) => return Err(e.into()),
    };
    let files = read_files(&source).map_err(|_| not_backup())?;
    check_files(&key, &files)?;

    // Built beside the directory and renamed into place; into an existing (empty) directory,
    // whose parent the service's user may not write, built inside it and moved up, the school
    // key last (until it is there the directory is not a school).
    let staging = if in_place {
        root.join(STAGING_INSIDE)
    } else {
        with_suffix(root, ".restoring")
    };
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(Error::from)?;
    }
    let result = (|| -> Result<(String, usize, bool), Error> {
        if cut_off {
            for e in fs::read_dir(root)? {
                let e = e?;
                if e.file_name() == STAGING_INSIDE {
                    continue;
                }
                if e.file_type()?.is_dir() {
                    fs::remove_dir_all(e.path())?;
                } else {
                    fs::remove_file(e.path())?;
                }
            }
        }
        if in_place {
            data.create_root()?;
        }
        let stage = DataDir::with_key(&staging, data.key_source().clone());
        stage.create_root()?;
        let db = stage.archive();
        write_private_new(&db, b"")?;
        let mut copy = cipher::open(&db, OpenFlags::SQLITE_OPEN_READ_WRITE, Some(&store_key))?;
        copy_pages(&source, &mut copy)?;
        copy.execute_batch(&format!(
            "PRAGMA secure_delete = ON; DROP TABLE {FILES_TABLE}; PRAGMA journal_mode = WAL;"
        ))?;
        drop(copy);
        for (path, bytes) in &files {
            let target = staging.join(path);
            if let Some(parent) = target.parent() {
                create_private_dir(parent)?;
            }
            write_private_new(&target, bytes)?;
        }
        // Every invite comes back spent: one unspent in the backup may have been used since
        // (a ticket still in a chat, a photographed QR code would enroll a second device for
        // its member), and the backup cannot tell. Invites are issued again.
        let now = chrono::Utc::now().timestamp();
        for (path, _) in &files {
            if let Some(name) = path.strip_prefix("invites/")
                && !files.iter().any(|(p, _)| *p == format!("spent/{name}"))
            {
                create_private_dir(&staging.join("spent"))?;
                write_private_new(
                    &staging.join("spent").join(name),
                    &super::data::spent_at_restore(now),
                )?;
            }
        }
        let mut archive = open_archive_with(&db, Some(&store_key), data.key_source())?;
        // The hub's changes after the backup live on in the devices' copies under the numbers
        // the lost copy gave them: from here on the hub (and each member's console device it
        // writes for) writes under a new actor, never numbering a change again
        // (`shouwang_core::ids::Epoch`).
        archive.store().begin_epoch()?;
        // The ledger beside the backup: every erasure made up to the newest backup, whose
        // children's documents go before the hub serves anyone.
        let ledger = from
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join(LEDGER);
        let no_ledger = !ledger.is_file();
        let held = if !no_ledger {
            read_ledger(&ledger, &store_key).map_err(|e| {
                Error::NotPermitted(format!(
                    "备份旁的 {} 打不开（{e}），恢复已停止、没有改动任何文件：它记着学校删除过哪些学生的档案。请用做备份时的数据密钥；确认不需要它时，把它移走后再恢复",
                    ledger.display()
                ))
            })?
        } else {
            None
        };
        if let Some(doc) = held {
            archive
                .store()
                .write(|b| b.merge_bytes(&DocId::School, &doc).map(|_| ()))?;
        }
        archive.purge_erased()?;
        let school = archive.school()?.name.clone();
        let erasures = archive.erasures()?.len();
        drop(archive);
        // The devices hold what happened since the backup: the hub lets an administrator's
        // device in first and writes nothing of its own until it has synced
        // (`hub::Enrolled::rebuilding`). The mark is made here, so it is in place before the
        // school is (`school.key` moves last): a restore killed at any point after leaves a
        // hub that rebuilds, never one that serves as if nothing had been lost.
        write_private_new(&stage.rebuilding_marker(), b"")?;
        if in_place {
            let mut names: Vec<_> = fs::read_dir(&staging)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()?;
            names.sort_by_key(|n| n == "school.key");
            for n in names {
                fs::rename(staging.join(&n), root.join(&n))?;
            }
            fs::remove_dir(&staging)?;
            fs::File::open(root)?.sync_all()?;
        } else {
            fs::rename(&staging, root)?;
        }
        #[cfg(test)]
        if KILLED_ONCE_IN_PLACE.with(std::cell::Cell::get) {
            return Err(Error::Io(std::io::Error::other(
                "the process was killed here",
            )));
        }
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::File::open(parent)?.sync_all()?;
        }
        Ok((school, erasures, no_ledger))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    let (school, erasures, no_ledger) = result?;
    Ok(BackupReport {
        school,
        files: files.len(),
        bytes: fs::metadata(from).map_err(Error::from)?.len(),
        erasures,
        ledger_problem: None,
        swept: Vec::new(),
        sweep_problems: Vec::new(),
        no_ledger,
    })
}

fn read_files(conn: &Connection) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT path, bytes FROM {FILES_TABLE} ORDER BY path"
    ))?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Refuses a backup whose files are not what a data directory holds, or whose keys the data
/// key does not open.
fn check_files(key: &DataKey, files: &[(String, Vec<u8>)]) -> Result<(), Error> {
    let bad = |why: String| Error::Corrupt(format!("备份已损坏：{why}"));
    if let Some((p, _)) = files.iter().find(|(p, _)| !allowed(p)) {
        return Err(bad(format!("含有不该有的文件 {p}")));
    }
    for (name, header) in [
        ("school.key", SCHOOL_KEY_HEADER),
        ("hub.key", HUB_KEY_HEADER),
    ] {
        let (_, bytes) = files
            .iter()
            .find(|(p, _)| p == name)
            .ok_or_else(|| bad(format!("缺少 {name}")))?;
        let text = String::from_utf8_lossy(bytes);
        match key.open(header, &text) {
            Some(Some(_)) => {}
            _ => return Err(bad(format!("{name} 打不开"))),
        }
    }
    Ok(())
}

fn with_suffix(root: &Path, suffix: &str) -> PathBuf {
    let mut name = root
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "shouwang-hub".into());
    name.push(suffix);
    root.with_file_name(name)
}

#[cfg(test)]
thread_local! {
    /// Makes [`restore`] stop just after the restored directory is in place, as a process
    /// killed there (or a disk full at the next write) would.
    static KILLED_ONCE_IN_PLACE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Moves the finished backup `tmp` to `out`, never replacing a file there (another backup
/// made meanwhile under the same name): renamed with `RENAME_NOREPLACE`, which the FAT and
/// exFAT file systems of USB sticks support, as ext4 does; they have no hard links, which
/// the copy was first put in place with, and every backup to a stick failed ("没有权限").
/// A file system without it (exFAT through FUSE, a network share) gets a rename after a
/// check that nothing is there: the folder's lock (`lock_folder`) keeps another backup from
/// writing in between.
fn put_in_place(tmp: &Path, out: &Path) -> Result<(), Error> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, tmp, CWD, out, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(Error::Io(std::io::Error::from(e))),
        }
    }
    if out.exists() {
        return Err(Error::Io(std::io::Error::from(
            std::io::ErrorKind::AlreadyExists,
        )));
    }
    fs::rename(tmp, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A school's data directory (`hub` in a new temporary directory) and a backup of it.
    fn school_backed_up() -> (tempfile::TempDir, DataDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("hub"));
        super::super::invite::init_school(
            &data,
            &shouwang_core::archive::SchoolSetup::sample("学校服务器"),
        )
        .unwrap();
        let out = dir.path().join("2026-12-01.backup");
        backup(&data, &out).unwrap();
        (dir, data, out)
    }

    /// A restored directory is a school as soon as `school.key` is in it, and `serve` treats
    /// it as one: it must be rebuilding from that moment, or a restore killed just after
    /// would leave a hub that serves and enrolls at once, on a school that lacks what was
    /// made since the backup. Both ways of restoring: into a new directory
    /// (renamed into place) and into an existing empty one (moved in file by file).
    #[test]
    fn a_restore_killed_once_in_place_leaves_a_hub_that_rebuilds() {
        let (dir, data, out) = school_backed_up();
        for (name, exists) in [("new", false), ("empty", true)] {
            let root = dir.path().join(name);
            if exists {
                fs::create_dir(&root).unwrap();
            }
            let restored = DataDir::with_key(&root, data.key_source().clone());
            KILLED_ONCE_IN_PLACE.with(|k| k.set(true));
            let killed = restore(&restored, &out);
            KILLED_ONCE_IN_PLACE.with(|k| k.set(false));
            assert!(killed.is_err(), "{name}");
            assert!(root.join("school.key").exists(), "{name}: not in place");
            assert!(
                restored.rebuilding_marker().exists(),
                "{name}: a school in place that is not rebuilding"
            );
        }
    }

    /// Into an existing directory, the restored files are moved in one by one, the school key
    /// last. Power cut halfway (`hub.db` and the rebuilding mark in place, the keys still in
    /// `.restoring`), the directory is no school (`serve` says to run `init-school`,
    /// `init-school` that there is a school already): the same restore run again finishes it,
    /// where it said the directory was not empty and left the administrator stuck.
    #[test]
    fn a_restore_cut_off_while_moving_in_is_run_again() {
        let (dir, data, out) = school_backed_up();
        let root = dir.path().join("var-lib-shouwang");
        fs::create_dir(&root).unwrap();
        let restored = DataDir::with_key(&root, data.key_source().clone());
        restore(&restored, &out).unwrap();
        // As the power cut left it: some files moved in, the rest (the school key among them)
        // still in the staging directory.
        let staging = root.join(STAGING_INSIDE);
        create_private_dir(&staging).unwrap();
        for name in ["school.key", "hub.key"] {
            fs::rename(root.join(name), staging.join(name)).unwrap();
        }
        assert!(!root.join("school.key").exists());
        restore(&restored, &out).unwrap();
        assert!(root.join("school.key").exists() && root.join("hub.key").exists());
        assert!(restored.rebuilding_marker().exists());
        assert!(!staging.exists());
        restored.open_archive().unwrap();
    }

    #[test]
    fn only_the_files_of_a_data_directory_are_restored() {
        for ok in [
            "school.key",
            "hub.key",
            "invites/ab12.json",
            "spent/00ff.json",
        ] {
            assert!(allowed(ok), "{ok}");
        }
        for bad in [
            "hub.db",
            "../x",
            "/etc/passwd",
            "invites/../../x.json",
            "invites/.json",
            "spent/a/b.json",
            "invites/ab.txt",
        ] {
            assert!(!allowed(bad), "{bad}");
        }
    }
}
