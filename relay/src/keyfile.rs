//! Files holding one 32-byte key: the hub's data key, a CLI store's key.
//!
//! ```text
//! shouwang store key v1          (optional header line)
//! 64 hex digits
//! ```
//!
//! A key file is created with mode 0600 in a directory created 0700, never replaced, and is
//! durable when [`create`] returns. Reading accepts the bare hex line too (a systemd
//! credential or a key typed in by hand).

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use shouwang_core::Error;

/// The header line of a key file.
pub const HEADER: &str = "shouwang store key v1";

/// Parses a key file's text (with or without its header) into the key's bytes.
pub fn parse(text: &str) -> Option<[u8; 32]> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut line = lines.next()?;
    if line == HEADER {
        line = lines.next()?;
    }
    if lines.next().is_some() {
        return None;
    }
    hex::decode(line).ok()?.try_into().ok()
}

/// Reads the key in `path`. A missing file is `Ok(None)`; a file that holds no key is refused
/// in Chinese.
pub fn read(path: &Path) -> Result<Option<[u8; 32]>, Error> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::NotPermitted(format!(
                "读不了密钥文件 {}：{}（服务以 shouwang 用户运行时，文件应归它所有）",
                path.display(),
                shouwang_core::error::io_text(&e)
            )));
        }
    };
    parse(&text).map(Some).ok_or_else(|| {
        Error::Corrupt(format!(
            "{} 不是有效的密钥文件（应为 64 位十六进制）",
            path.display()
        ))
    })
}

/// Writes `key` to a new file at `path` (mode 0600; missing directories are created 0700).
/// Fails with [`ErrorKind::AlreadyExists`] if the file exists.
pub fn create(path: &Path, key: &[u8; 32]) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let text = format!("{HEADER}\n{}\n", hex::encode(key));
    write_private_new(path, text.as_bytes())
}

/// Creates `dir` and its missing parents with mode 0700 (owner only).
pub fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    Ok(())
}

/// Creates `path` with `bytes`, readable and writable by its owner only (0600), failing if it
/// exists; durable on return.
pub fn write_private_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Overwrites a file with zeros, durably, and deletes it ([`shouwang_core::store::wipe_file`]).
pub use shouwang_core::store::wipe_file;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_key_file_round_trips_is_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf/shouwang/store.key");
        assert!(read(&path).unwrap().is_none());
        create(&path, &[7; 32]).unwrap();
        assert_eq!(read(&path).unwrap(), Some([7; 32]));
        assert!(create(&path, &[8; 32]).is_err());
        assert_eq!(read(&path).unwrap(), Some([7; 32]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        assert_eq!(parse(&format!("{}\n", "ab".repeat(32))), Some([0xab; 32]));
        assert_eq!(parse("ab"), None);
        fs::write(&path, "garbage").unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("密钥文件"));
    }
}
