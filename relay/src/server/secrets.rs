//! The hub's data key: where it comes from, and what it locks.
//!
//! One 32-byte key, kept outside the data directory ([`KeySource`]: a key file, an environment
//! variable or a systemd credential), locks everything in the data directory that matters:
//!
//! - `hub.db` is a SQLCipher database under it (a raw key, so `shouwang --store hub.db
//!   --key-file <the key file>` opens it in the office);
//! - `school.key` and `hub.key` are sealed with XChaCha20-Poly1305 under a key derived from
//!   it (HKDF-SHA256), each with a random 24-byte nonce and the file's header line as
//!   associated data (so one file cannot pass for the other).
//!
//! A wrong key fails the AEAD check of `school.key` (and SQLCipher's check of `hub.db`)
//! before anything is written.

use std::fmt;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use shouwang_core::Error;
use shouwang_core::store::StoreKey;

use crate::keyfile;

/// The environment variable the `env` key source reads by default.
pub const KEY_ENV: &str = "SHOUWANG_HUB_KEY";
/// The systemd credential the `credential` key source reads by default.
pub const KEY_CREDENTIAL: &str = "hub.key";
/// The file name of the default key file (in the user's configuration directory, or beside
/// the configuration file).
pub const KEY_FILE_NAME: &str = "hub-data.key";

const NONCE_LEN: usize = 24;

/// Where the hub's data key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file (see [`crate::keyfile`]); `init-school` creates it if missing.
    File(PathBuf),
    /// An environment variable holding 64 hex digits.
    Env(String),
    /// A systemd credential: `$CREDENTIALS_DIRECTORY/<name>` (`LoadCredential=`).
    Credential(String),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "密钥文件 {}", p.display()),
            KeySource::Env(v) => write!(f, "环境变量 {v}"),
            KeySource::Credential(c) => write!(f, "systemd 凭据 {c}"),
        }
    }
}

impl KeySource {
    /// The key file beside a data directory: `<dir>.key` (the library's default, used by
    /// tests; the binary defaults to the user's configuration directory).
    pub fn beside(data_dir: &Path) -> KeySource {
        let mut name = data_dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "shouwang-hub".into());
        name.push(".key");
        KeySource::File(data_dir.with_file_name(name))
    }

    /// Refuses a key file inside the data directory: the key must not travel with the data.
    pub fn check_outside(&self, data_dir: &Path) -> Result<(), Error> {
        if let KeySource::File(p) = self {
            let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
            if abs(p).starts_with(abs(data_dir)) {
                return Err(Error::NotPermitted(format!(
                    "数据密钥不能放在数据目录里（{}），请放到别处",
                    p.display()
                )));
            }
        }
        Ok(())
    }

    /// The key, which must exist.
    pub fn load(&self) -> Result<DataKey, Error> {
        self.read()?.ok_or_else(|| self.missing())
    }

    /// The key; a key file that does not exist yet is created with a new random key
    /// (`init-school`). Returns whether it was created.
    pub fn load_or_create(&self) -> Result<(DataKey, bool), Error> {
        if let Some(key) = self.read()? {
            return Ok((key, false));
        }
        let KeySource::File(path) = self else {
            return Err(self.missing());
        };
        let key: [u8; 32] = rand::random();
        keyfile::create(path, &key)?;
        Ok((DataKey(key), true))
    }

    fn read(&self) -> Result<Option<DataKey>, Error> {
        let bytes = match self {
            KeySource::File(path) => keyfile::read(path)?,
            KeySource::Env(var) => match std::env::var(var) {
                Ok(text) => Some(keyfile::parse(&text).ok_or_else(|| {
                    Error::invalid("数据密钥", format!("环境变量 {var} 应为 64 位十六进制数字"))
                })?),
                Err(_) => None,
            },
            KeySource::Credential(name) => match std::env::var_os("CREDENTIALS_DIRECTORY") {
                Some(dir) => keyfile::read(&Path::new(&dir).join(name))?,
                None => None,
            },
        };
        Ok(bytes.map(DataKey))
    }

    fn missing(&self) -> Error {
        Error::NotPermitted(format!(
            "找不到数据密钥（{self}），无法打开学校服务器的数据；请检查配置里的 [data_key]"
        ))
    }
}

/// The hub's data key (see the module docs).
/// Its bytes are overwritten with zeros when it is dropped (each clone its own).
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(bytes)
    }

    fn derive(&self, info: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
        let _ = Hkdf::<Sha256>::new(None, &self.0).expand(info, &mut out);
        out
    }

    /// The SQLCipher key of `hub.db`: the data key itself (what the CLI's `--key-file`
    /// reads).
    pub fn store_key(&self) -> StoreKey {
        // 32 bytes: cannot fail.
        StoreKey::from_bytes(&self.0).unwrap_or_else(|_| unreachable!())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.derive(b"shouwang hub key files v1").into())
    }

    /// `secret` sealed under this key, bound to `header`, as the text of a key file.
    pub(crate) fn seal(&self, header: &str, secret: &[u8; 32]) -> Result<String, Error> {
        self.seal_bytes(header, secret)
    }

    /// Opens a key file [`DataKey::seal`] wrote: `Some(None)` if the data key is wrong (or the
    /// file was altered), `None` if it is not such a file.
    pub(crate) fn open(&self, header: &str, text: &str) -> Option<Option<[u8; 32]>> {
        self.open_bytes(header, text)
            .map(|opened| opened.and_then(|b| b.try_into().ok()))
    }

    /// `secret` of any length sealed under this key, bound to `header`: the header line, then
    /// the random nonce and the sealed bytes in hex.
    pub(crate) fn seal_bytes(&self, header: &str, secret: &[u8]) -> Result<String, Error> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: header.as_bytes(),
                },
            )
            .map_err(|_| Error::Corrupt("无法加密密钥".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{header}\n{}\n", hex::encode(bytes)))
    }

    /// Opens what [`DataKey::seal_bytes`] wrote: `Some(None)` if the data key is wrong (or the
    /// file was altered), `None` if it is not such a file.
    pub(crate) fn open_bytes(&self, header: &str, text: &str) -> Option<Option<Vec<u8>>> {
        let mut lines = text.lines();
        if lines.next() != Some(header) {
            return None;
        }
        let bytes = hex::decode(lines.next().unwrap_or("").trim()).ok()?;
        if bytes.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let opened = self.cipher().decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: header.as_bytes(),
            },
        );
        Some(opened.ok())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_header() {
        let key = DataKey([1; 32]);
        let text = key.seal("h1", &[9; 32]).unwrap();
        assert!(!text.contains(&hex::encode([9u8; 32])));
        assert_eq!(key.open("h1", &text), Some(Some([9; 32])));
        assert_eq!(DataKey([2; 32]).open("h1", &text), Some(None));
        assert_eq!(key.open("h2", &text.replacen("h1", "h2", 1)), Some(None));
        assert_eq!(key.open("h1", "h1\nzz\n"), None);
        // A random nonce: sealing twice gives different files.
        assert_ne!(key.seal("h1", &[9; 32]).unwrap(), text);
        assert_eq!(key.store_key().as_bytes(), &[1; 32]);
    }

    #[test]
    fn a_key_file_inside_the_data_directory_is_refused() {
        let inside = KeySource::File("/srv/hub/keys/k".into());
        assert!(inside.check_outside(Path::new("/srv/hub")).is_err());
        assert!(
            KeySource::beside(Path::new("/srv/hub"))
                .check_outside(Path::new("/srv/hub"))
                .is_ok()
        );
        assert_eq!(
            KeySource::beside(Path::new("/srv/hub")),
            KeySource::File("/srv/hub.key".into())
        );
    }

    #[test]
    fn a_missing_key_is_one_chinese_sentence_and_creates_nothing() {
        let var = "SHOUWANG_TEST_KEY_THAT_IS_NOT_SET";
        let e = KeySource::Env(var.into()).load_or_create().unwrap_err();
        assert!(e.to_string().contains("找不到数据密钥"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = KeySource::File(dir.path().join("k.key"));
        assert!(file.load().is_err());
        assert!(!dir.path().join("k.key").exists());
        let (created, fresh) = file.load_or_create().unwrap();
        assert!(fresh);
        assert_eq!(file.load().unwrap(), created);
    }
}
