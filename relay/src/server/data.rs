//! The hub's data directory.
//!
//! ```text
//! hub.db              the school's archive (shouwang-core Archive)
//! school.key          the school's signing key            (mode 0600)
//! hub.key             the hub endpoint's secret key       (mode 0600; its id is in invites)
//! invites/<digest>.json   issued invites: member, role, expiry (digest = hash of the secret)
//! spent/<digest>.json     spent invites: which device used it, when
//! ```
//!
//! Spending an invite creates its `spent/` file with `create_new`, so two devices racing with
//! one invite cannot both win, even across processes. The device that spent an invite may use
//! it again (an enrollment cut off by a bad link can be retried); any other device is refused.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shouwang_core::Error;
use shouwang_core::ids::MemberId;
use shouwang_core::membership::{DeviceKey, InviteSecret, SchoolKey};
use shouwang_core::roles::Role;

use crate::transport::SecretKey;

const SCHOOL_KEY_HEADER: &str = "shouwang school signing key v1";
const HUB_KEY_HEADER: &str = "shouwang hub endpoint key v1";

/// An invite the hub has issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedInvite {
    pub member: MemberId,
    pub role: Role,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// How an [`IssuedInvite`] is stored.
#[derive(Debug, Serialize, Deserialize)]
struct StoredInvite {
    member: String,
    role: String,
    issued_at: i64,
    expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct SpentInvite {
    device: String,
    at: i64,
}

/// Whether spending worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Spent now, by this device.
    Fresh,
    /// Spent earlier by this same device (a retried enrollment).
    Again,
}

/// The paths of a hub's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The archive.
    pub fn archive(&self) -> PathBuf {
        self.root.join("hub.db")
    }

    fn school_key_path(&self) -> PathBuf {
        self.root.join("school.key")
    }

    fn hub_key_path(&self) -> PathBuf {
        self.root.join("hub.key")
    }

    fn invite_path(&self, secret: &InviteSecret) -> PathBuf {
        self.root
            .join("invites")
            .join(format!("{}.json", secret.digest()))
    }

    fn spent_path(&self, secret: &InviteSecret) -> PathBuf {
        self.root
            .join("spent")
            .join(format!("{}.json", secret.digest()))
    }

    /// Whether a school has been set up here.
    pub fn is_initialised(&self) -> bool {
        self.school_key_path().exists()
    }

    /// Creates the directory and the two keys. Refuses if either key exists.
    pub fn create_keys(&self) -> Result<(SchoolKey, SecretKey), Error> {
        fs::create_dir_all(&self.root)?;
        if self.school_key_path().exists() || self.hub_key_path().exists() {
            return Err(Error::NotPermitted(format!(
                "{} 里已经有学校密钥，不会覆盖",
                self.root.display()
            )));
        }
        let school = SchoolKey::generate();
        let hub = SecretKey::generate();
        write_secret(
            &self.school_key_path(),
            SCHOOL_KEY_HEADER,
            &school.secret_bytes(),
        )?;
        write_secret(&self.hub_key_path(), HUB_KEY_HEADER, &hub.to_bytes())?;
        Ok((school, hub))
    }

    /// The school's signing key.
    pub fn school_key(&self) -> Result<SchoolKey, Error> {
        let bytes = read_secret(&self.school_key_path(), SCHOOL_KEY_HEADER)?;
        Ok(SchoolKey::from_secret_bytes(&bytes))
    }

    /// The hub endpoint's secret key.
    pub fn hub_key(&self) -> Result<SecretKey, Error> {
        let bytes = read_secret(&self.hub_key_path(), HUB_KEY_HEADER)?;
        Ok(SecretKey::from_bytes(&bytes))
    }

    /// Records an issued invite.
    pub fn record_invite(&self, secret: &InviteSecret, invite: &IssuedInvite) -> Result<(), Error> {
        let path = self.invite_path(secret);
        let stored = StoredInvite {
            member: invite.member.as_str().to_owned(),
            role: invite.role.key().to_owned(),
            issued_at: invite.issued_at,
            expires_at: invite.expires_at,
        };
        let json = serde_json::to_vec_pretty(&stored)
            .map_err(|e| Error::Corrupt(format!("邀请记录：{e}")))?;
        write_new(&path, &json, false)
    }

    /// The issued invite with this secret, if any.
    pub fn find_invite(&self, secret: &InviteSecret) -> Result<Option<IssuedInvite>, Error> {
        match fs::read(self.invite_path(secret)) {
            Ok(bytes) => {
                let s: StoredInvite = serde_json::from_slice(&bytes)
                    .map_err(|_| Error::Corrupt("邀请记录已损坏".into()))?;
                Ok(Some(IssuedInvite {
                    member: MemberId(s.member),
                    role: Role::parse(&s.role)?,
                    issued_at: s.issued_at,
                    expires_at: s.expires_at,
                }))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Spends an invite for `device` (see the module docs).
    pub fn spend(
        &self,
        secret: &InviteSecret,
        device: &DeviceKey,
        now: i64,
    ) -> Result<Spend, Error> {
        let path = self.spent_path(secret);
        let record = serde_json::to_vec(&SpentInvite {
            device: device.to_hex(),
            at: now,
        })
        .map_err(|e| Error::Corrupt(format!("邀请记录：{e}")))?;
        match write_new(&path, &record, false) {
            Ok(()) => Ok(Spend::Fresh),
            Err(Error::Io(e)) if e.kind() == ErrorKind::AlreadyExists => {
                let bytes = fs::read(&path)?;
                let spent: SpentInvite = serde_json::from_slice(&bytes)
                    .map_err(|_| Error::Corrupt("邀请记录已损坏".into()))?;
                if spent.device == device.to_hex() {
                    Ok(Spend::Again)
                } else {
                    Err(Error::NotPermitted(
                        "这个邀请码已经被另一台设备用过了，请让管理员重新生成".into(),
                    ))
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Writes a key file readable only by its owner, never replacing one.
fn write_secret(path: &Path, header: &str, bytes: &[u8; 32]) -> Result<(), Error> {
    let text = format!("{header}\n{}\n", hex::encode(bytes));
    write_new(path, text.as_bytes(), true)
}

fn read_secret(path: &Path, header: &str) -> Result<[u8; 32], Error> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Error::NotPermitted(format!(
                "找不到 {}，请先运行 shouwang-relay init-school",
                path.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut lines = text.lines();
    let bad = || Error::Corrupt(format!("{} 不是有效的密钥文件", path.display()));
    if lines.next() != Some(header) {
        return Err(bad());
    }
    let bytes = hex::decode(lines.next().unwrap_or("").trim()).map_err(|_| bad())?;
    bytes.try_into().map_err(|_| bad())
}

/// Creates `path` (and its directory) with `bytes`, failing if it exists; durable on return.
fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_are_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("hub"));
        let (school, hub) = data.create_keys().unwrap();
        assert_eq!(data.school_key().unwrap().public(), school.public());
        assert_eq!(data.hub_key().unwrap().public(), hub.public());
        assert!(data.create_keys().is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(data.school_key_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = fs::metadata(data.hub_key_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::write(data.school_key_path(), "garbage").unwrap();
        assert!(data.school_key().is_err());
    }

    #[test]
    fn an_invite_is_spent_once_but_its_device_may_retry() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path());
        let secret = InviteSecret::random();
        assert!(data.find_invite(&secret).unwrap().is_none());
        let issued = IssuedInvite {
            member: MemberId("m1".into()),
            role: Role::LoveMother,
            issued_at: 1,
            expires_at: 2,
        };
        data.record_invite(&secret, &issued).unwrap();
        assert_eq!(data.find_invite(&secret).unwrap().unwrap(), issued);
        let phone = DeviceKey([1; 32]);
        assert_eq!(data.spend(&secret, &phone, 5).unwrap(), Spend::Fresh);
        assert_eq!(data.spend(&secret, &phone, 6).unwrap(), Spend::Again);
        let other = data.spend(&secret, &DeviceKey([2; 32]), 7).unwrap_err();
        assert!(other.to_string().contains("用过"), "{other}");
    }
}
