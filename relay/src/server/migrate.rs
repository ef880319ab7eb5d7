//! Converting a hub data directory made before SQLCipher (a plain `hub.db`, `school.key` and
//! `hub.key` in hex under their `v1` headers) into an encrypted one, in place
//! (`shouwang-relay encrypt-data`).
//!
//! The new directory is built beside the old one (`<data_dir>.encrypting`, 0700): `hub.db`
//! copied with `sqlcipher_export` under the data key, both keys sealed, every other file
//! (invites, spent invites, QR codes) copied, everything synced to disk, and the new archive
//! checked to hold every document at the same heads as the old. Then the two directories
//! are swapped by one `renameat2(RENAME_EXCHANGE)`, which the kernel does atomically: a crash
//! at any moment leaves the data directory either wholly old or wholly new, never neither
//! and never a mix. The old directory, now at `<data_dir>.encrypting`, is overwritten with
//! zeros and deleted; a crash before that leaves it there, and the next `encrypt-data` wipes
//! it. A crash before the swap leaves a half-built `<data_dir>.encrypting`, which the next run
//! discards and builds again.
//!
//! The data key comes from where the configuration says (`[data_key]`): a key file is created
//! if missing; an environment variable or a systemd credential must be set.

use std::fs;
use std::path::{Path, PathBuf};

use shouwang_core::Error;
use shouwang_core::store::{Store, cipher};

use super::data::{DataDir, HUB_KEY_HEADER, SCHOOL_KEY_HEADER};
use super::invite::export_encrypted;
use super::secrets::DataKey;
use crate::keyfile::{create_private_dir, wipe_file, write_private_new};

/// Headers of the key files the hub wrote before they were sealed.
const PLAIN_SCHOOL_KEY: &str = "shouwang school signing key v1";
const PLAIN_HUB_KEY: &str = "shouwang hub endpoint key v1";
/// The first bytes of a plain SQLite file (an encrypted one starts with random salt).
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// What [`encrypt_data`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converted {
    /// The directory was plain and is now encrypted; the count of documents carried over.
    Encrypted { documents: usize },
    /// It was encrypted already; nothing changed (except a leftover of a crashed run wiped).
    AlreadyEncrypted,
}

/// Whether the data directory is in the format from before encryption at rest.
pub fn is_plain(data: &DataDir) -> bool {
    let first_line = |p: PathBuf| {
        fs::read_to_string(p)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
    };
    let plain_db = fs::File::open(data.archive()).is_ok_and(|mut f| {
        let mut head = [0u8; 16];
        std::io::Read::read_exact(&mut f, &mut head).is_ok() && head == SQLITE_MAGIC
    });
    plain_db
        || first_line(data.root().join("school.key")).as_deref() == Some(PLAIN_SCHOOL_KEY)
        || first_line(data.root().join("hub.key")).as_deref() == Some(PLAIN_HUB_KEY)
}

/// The refusal of every command but `encrypt-data` on a plain data directory.
pub fn plain_refusal(data: &DataDir) -> Error {
    Error::NotPermitted(format!(
        "{} 是旧版未加密的数据目录，请先运行 shouwang-relay encrypt-data 把它转换为加密格式",
        data.root().display()
    ))
}

/// Where the new directory is built, and where the old one waits to be wiped after the swap.
fn staging(data: &DataDir) -> PathBuf {
    let mut name = data.root().as_os_str().to_owned();
    name.push(".encrypting");
    PathBuf::from(name)
}

/// Converts a plain data directory in place (see the module docs). An encrypted one is left
/// as it is.
pub fn encrypt_data(data: &DataDir) -> Result<Converted, Error> {
    let root = data.root();
    if !root.join("school.key").exists() {
        return Err(Error::NotPermitted(format!(
            "{} 里没有学校，无需转换",
            root.display()
        )));
    }
    let staging = staging(data);
    if !is_plain(data) {
        // A run that crashed after the swap left the old, plain directory here.
        if staging.exists() {
            wipe_dir(&staging)?;
        }
        return Ok(Converted::AlreadyEncrypted);
    }
    data.key_source().check_outside(root)?;
    cipher::ready()?;
    let (key, _) = data.key_source().load_or_create()?;
    // A half-built directory of a run that crashed before the swap: start again.
    if staging.exists() {
        wipe_dir(&staging)?;
    }
    let documents = build(data, &staging, &key)?;
    exchange(root, &staging)?;
    sync_dir(root.parent().unwrap_or(Path::new(".")))?;
    wipe_dir(&staging)?;
    Ok(Converted::Encrypted { documents })
}

/// Builds the encrypted copy of the plain directory at `staging`; returns its documents.
fn build(data: &DataDir, staging: &Path, key: &DataKey) -> Result<usize, Error> {
    let root = data.root();
    create_private_dir(staging)?;
    // The archive: every page through SQLCipher, the schema version kept. Read with a bare
    // connection, not a `Store`, which would migrate the old file in place. (Opened through
    // the one opener, so SQLCipher's set-up, which `sqlcipher_export` needs, is done first.)
    let old = cipher::open(&data.archive(), rusqlite::OpenFlags::default(), None)?;
    let before = heads(&old)?;
    let new_db = staging.join("hub.db");
    write_private_new(&new_db, b"")?;
    export_encrypted(&old, &new_db, Some(&key.store_key()))?;
    drop(old);
    fs::File::open(&new_db)?.sync_all()?;
    // Both keys, sealed.
    for (name, plain, sealed) in [
        ("school.key", PLAIN_SCHOOL_KEY, SCHOOL_KEY_HEADER),
        ("hub.key", PLAIN_HUB_KEY, HUB_KEY_HEADER),
    ] {
        let secret = read_plain_key(&root.join(name), plain)?;
        write_private_new(&staging.join(name), key.seal(sealed, &secret)?.as_bytes())?;
    }
    // Everything else as it is (invites, spent invites, their QR codes).
    copy_rest(root, staging, true)?;
    sync_dir(staging)?;
    // The copy opens with the key and holds what the original held.
    let after = heads(Store::open_with_key(&new_db, Some(&key.store_key()))?.conn())?;
    if after != before {
        return Err(Error::Corrupt(
            "加密后的档案库与原档案库不一致，没有改动原数据目录".into(),
        ));
    }
    Ok(after.len())
}

/// Every document's heads, as stored.
fn heads(conn: &rusqlite::Connection) -> Result<Vec<(String, String)>, Error> {
    let mut stmt = conn.prepare("SELECT doc_id, heads FROM docs ORDER BY doc_id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// A key file of the old format: its header line, then 64 hex digits.
fn read_plain_key(path: &Path, header: &str) -> Result<[u8; 32], Error> {
    let text = fs::read_to_string(path)?;
    let mut lines = text.lines();
    let bad = || Error::Corrupt(format!("{} 不是有效的密钥文件", path.display()));
    if lines.next() != Some(header) {
        return Err(bad());
    }
    hex::decode(lines.next().unwrap_or("").trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(bad)
}

/// Copies every file under `from` to `to` (private, synced), except, at the top, the archive
/// and its WAL files and the two key files.
fn copy_rest(from: &Path, to: &Path, top: bool) -> Result<(), Error> {
    const REPLACED: [&str; 5] = [
        "hub.db",
        "hub.db-wal",
        "hub.db-shm",
        "school.key",
        "hub.key",
    ];
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if top && REPLACED.iter().any(|r| name == *r) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            create_private_dir(&dst)?;
            copy_rest(&src, &dst, false)?;
            sync_dir(&dst)?;
        } else {
            write_private_new(&dst, &fs::read(&src)?)?;
        }
    }
    Ok(())
}

/// Swaps two directories in one atomic step.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> Result<(), Error> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE)
        .map_err(|e| Error::Io(std::io::Error::from(e)))
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> Result<(), Error> {
    Err(Error::NotPermitted(
        "转换数据目录需要 Linux（原子地交换两个目录）；没有改动原数据目录".into(),
    ))
}

/// Makes a directory's entries durable.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Overwrites every file under `dir` with zeros, then deletes the directory.
fn wipe_dir(dir: &Path) -> Result<(), Error> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            wipe_dir(&path)?;
        } else {
            wipe_file(&path)?;
        }
    }
    fs::remove_dir(dir)?;
    Ok(())
}
