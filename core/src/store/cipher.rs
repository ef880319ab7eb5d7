//! The store's encryption at rest: its key, and how a connection is unlocked with it.
//!
//! Stores are SQLCipher files keyed with a raw 256-bit key ([`StoreKey`]). SQLCipher sets
//! itself up once per process (`sqlcipher_extra_init`: the crypto provider and its random
//! state) *after* SQLite has marked itself initialised, outside SQLite's init mutex; a
//! connection another thread opens in that window is a working SQLite on which `PRAGMA key`
//! fails. So every connection first waits for that set-up ([`ready`]) until it has been seen:
//! an app that opens two stores as it starts (the phone's client and a background sync), or
//! the hub's tests opening archives side by side, would otherwise be told a sound store cannot
//! be opened (`core/tests/first_open.rs`).

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{Error, Result};

/// How long [`ready`] waits for SQLCipher's set-up in another thread: far more than it takes
/// (well under a millisecond here), so that only a set-up that failed ends the wait.
const SET_UP_WAIT: Duration = Duration::from_secs(10);

/// Waits until SQLCipher's one-time set-up is complete (see the module docs); every connection
/// that is keyed or uses `sqlcipher_export` calls this first. SQLCipher registers
/// `sqlcipher_export` for new connections as the last step of that set-up, after it marks
/// itself ready, so a connection that has the function was opened after it. Once seen, it is
/// not checked again in this process; a failure is not kept (the next call waits again).
pub fn ready() -> Result<()> {
    static READY: OnceLock<()> = OnceLock::new();
    if READY.get().is_some() {
        return Ok(());
    }
    let deadline = Instant::now() + SET_UP_WAIT;
    loop {
        let conn = Connection::open_in_memory()?;
        if conn.prepare("SELECT sqlcipher_export('main')").is_ok() {
            let _ = READY.set(());
            return Ok(());
        }
        // A build without SQLCipher answers no `cipher_version`: nothing to wait for.
        let cipher: Option<String> = conn
            .query_row("PRAGMA cipher_version", [], |r| r.get(0))
            .optional()?;
        if cipher.is_none() {
            return Err(Error::NotPermitted(
                "这个版本没有编入加密存储，无法建立或打开加密档案库".into(),
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error::NotPermitted(
                "加密存储没能完成初始化，无法打开加密档案库；请关闭应用后重新打开".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The key that encrypts a store at rest (SQLCipher, a raw 256-bit key). On a phone the
/// platform keystore holds it; it never leaves the device and is never written to the store.
/// Its bytes are overwritten with zeros when it is dropped (each clone its own).
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoreKey> {
        <[u8; 32]>::try_from(bytes)
            .map(StoreKey)
            .map_err(|_| Error::invalid("存储密钥", "必须是 32 字节"))
    }

    /// A new random key.
    pub fn generate() -> StoreKey {
        StoreKey(rand::random())
    }

    /// The key's bytes, for the platform keystore.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(…)")
    }
}

/// Opens the SQLite file at `path` with `flags` and unlocks it with `key` (a plain file when
/// `None`), checking that the key opens it: a wrong or missing key is [`Error::Locked`], a
/// file that is no database [`Error::NotAStore`].
///
/// Waits for SQLCipher's set-up ([`ready`]) first, keyed or not: a connection opened before it
/// completes lacks `sqlcipher_export` for good (the hub copies an office's plain store into its
/// encrypted archive with it). Only a keyed connection needs SQLCipher itself.
pub fn open(path: &Path, flags: OpenFlags, key: Option<&StoreKey>) -> Result<Connection> {
    let cipher = ready();
    let conn = Connection::open_with_flags(path, flags)?;
    if let Some(key) = key {
        cipher?;
        // A wrong key is reported as `Error::Locked`, not logged to stderr by SQLCipher.
        conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        // The key's text is cleared once SQLCipher has it.
        let hex = zeroize::Zeroizing::new(hex::encode(key.0));
        let pragma = zeroize::Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex.as_str()));
        conn.execute_batch(&pragma)?;
    }
    // The first read decrypts page 1: a wrong or missing key fails here.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())) {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Err(if looks_encrypted(&conn) {
                Error::Locked
            } else {
                Error::NotAStore
            })
        }
        other => {
            other?;
            Ok(conn)
        }
    }
}

/// Whether a file SQLite cannot read could be an encrypted store: SQLCipher writes whole
/// pages (at least 1 KiB each), so a text file, a spreadsheet or a truncated copy is not one.
fn looks_encrypted(conn: &Connection) -> bool {
    let Some(path) = conn.path().filter(|p| !p.is_empty()) else {
        return false;
    };
    std::fs::metadata(path).is_ok_and(|m| m.len() >= 1024 && m.len() % 1024 == 0)
}

#[cfg(test)]
mod tests {
    /// The secrets the core holds are overwritten with zeros when dropped (a copy in memory
    /// outlives its use otherwise, and ends in a crash dump or a swapped page).
    #[test]
    fn keys_are_cleared_when_dropped() {
        fn cleared_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        cleared_on_drop::<super::StoreKey>();
        cleared_on_drop::<crate::ids::SchoolSecret>();
    }
}
