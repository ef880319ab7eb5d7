//! The hub's data directory (mode 0700, every file in it 0600).
//!
//! ```text
//! hub.db              the school's archive (shouwang-core Archive), SQLCipher-encrypted
//! school.key          the school's signing key, sealed with the data key
//! hub.key             the hub endpoint's secret key, sealed (its id is in invites)
//! invites/<digest>.json   issued invites: member, role, expiry (digest = hash of the secret)
//! spent/<digest>.json     spent invites: which device used it, when
//! console-tls.pem     the office console's own certificate (when it serves TLS)
//! console-tls.key     its private key, sealed with the data key (`super::tls`)
//! ```
//!
//! The data key that locks `hub.db`, `school.key` and `hub.key` is never in this directory
//! (see [`super::secrets`]): a copy of the directory alone reveals no child's file.
//!
//! **Bench only: a plain store.** A build with the cargo feature `bench-plain-store` (off by
//! default; never for deployment) can mark a `DataDir` as holding `hub.db` as plain SQLite
//! (`DataDir::with_plain_store_for_bench`, which `[bench] plain_store = true` in the
//! configuration file sets): every opener of the archive then passes no SQLCipher key
//! ([`DataDir::archive_key`] is `None`), `init_school` exports the school into a plain
//! `hub.db`, and [`DataDir::check_initialised`] takes such a directory. `school.key` and
//! `hub.key` stay sealed with the data key. It exists to measure SQLCipher's cost in the
//! reconnect storm (`relay/benches/storm.rs`, BENCHMARKS §7) with everything else equal.
//! `backup`, `restore` and `encrypt-data` do not know such a directory. Without the feature
//! the method and the setting do not exist (the configuration key is refused as unknown),
//! and a plain `hub.db` is refused by every command, as from the release before encryption at
//! rest.
//!
//! Spending an invite creates its `spent/` file in one step (linked into place, failing if it
//! exists), so two devices racing with one invite cannot both win, even across processes. The
//! device that spent an invite may use it again for [`AGAIN_SECONDS`] (an enrollment cut off
//! by a bad link can be retried), unless it has synced since (the hub checks); any other
//! device is refused.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shouwang_core::Error;
use shouwang_core::ids::MemberId;
use shouwang_core::membership::{DeviceKey, InviteSecret, SchoolKey};
use shouwang_core::roles::Role;

use shouwang_core::Archive;
use shouwang_core::store::StoreKey;

use super::secrets::{DataKey, KeySource};
use crate::keyfile::{create_private_dir, write_private_new};
use crate::transport::SecretKey;

/// What the `rebuilding` mark holds once `admit-phones` let the registered devices sync.
pub(crate) const ADMIT_PHONES: &[u8] = b"admit-phones";
pub(crate) const SCHOOL_KEY_HEADER: &str = "shouwang school signing key v2 (sealed)";
pub(crate) const HUB_KEY_HEADER: &str = "shouwang hub endpoint key v2 (sealed)";

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
    /// How many times the device presented it again.
    #[serde(default)]
    again: u32,
}

/// How long after spending an invite its device may present it again (an enrollment cut off
/// before its bundle arrived): each enrollment exports the member's whole file, outside any
/// quota, so not until the invite expires.
pub const AGAIN_SECONDS: i64 = 3600;

/// How many times, within [`AGAIN_SECONDS`], that device may present it again: enough for a
/// bad link, not for a modified app asking for the member's whole file (an administrator's:
/// the whole school) again and again.
pub const AGAIN_TIMES: u32 = 5;

/// Why an invite another device spent is refused.
const USED: &str = "这个邀请码已经被另一台设备用过了，请让管理员重新生成";

/// Why an invite a restore or a member's deactivation closed is refused (no device used it:
/// "another device used it" would read as theft).
const CLOSED: &str =
    "这个邀请码已失效（学校服务器从备份恢复过，或这位成员曾被停用），请让管理员重新生成";

impl SpentInvite {
    /// Why another device presenting this invite is refused.
    fn refusal(&self) -> Error {
        Error::NotPermitted(if self.device.is_empty() { CLOSED } else { USED }.into())
    }
}

/// The `spent/` record of an invite a restore, or a member's deactivation, closes (no device
/// may use it).
pub(crate) fn spent_at_restore(at: i64) -> Vec<u8> {
    serde_json::to_vec(&SpentInvite {
        device: String::new(),
        at,
        again: 0,
    })
    .unwrap_or_default()
}

/// Whether spending worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Spent now, by this device.
    Fresh,
    /// Spent earlier by this same device (a retried enrollment), at `at` (seconds since the
    /// epoch, the hub's clock).
    Again { at: i64 },
}

/// The paths of a hub's data directory, and where its data key comes from.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
    key: KeySource,
    /// `hub.db` is plain SQLite (see the module docs: bench only).
    #[cfg(feature = "bench-plain-store")]
    plain_store: bool,
}

impl DataDir {
    /// The data directory at `root`, its data key in the key file beside it (`<root>.key`,
    /// [`KeySource::beside`]). Nothing is created.
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        let root = root.into();
        let key = KeySource::beside(&root);
        DataDir::with_key(root, key)
    }

    /// The data directory at `root` with its data key from `key`. Nothing is created.
    pub fn with_key(root: impl Into<PathBuf>, key: KeySource) -> DataDir {
        DataDir {
            root: root.into(),
            key,
            #[cfg(feature = "bench-plain-store")]
            plain_store: false,
        }
    }

    /// The same directory with `hub.db` as plain SQLite, no SQLCipher key (see the module
    /// docs). **Bench only**: to compare the encrypted hub with a plain one; never deploy it.
    #[cfg(feature = "bench-plain-store")]
    pub fn with_plain_store_for_bench(mut self) -> DataDir {
        self.plain_store = true;
        self
    }

    /// Whether `hub.db` is plain SQLite here (only ever in a `bench-plain-store` build).
    pub fn is_plain_store(&self) -> bool {
        #[cfg(feature = "bench-plain-store")]
        if self.plain_store {
            return true;
        }
        false
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the data key comes from.
    pub fn key_source(&self) -> &KeySource {
        &self.key
    }

    /// The data key (it must exist).
    pub fn data_key(&self) -> Result<DataKey, Error> {
        self.key.check_outside(&self.root)?;
        self.key.load()
    }

    /// The SQLCipher key of `hub.db`, derived from `key` (the data key): always `Some`, but
    /// for a bench-only plain store (module docs).
    pub fn archive_key(&self, key: &DataKey) -> Option<StoreKey> {
        (!self.is_plain_store()).then(|| key.store_key())
    }

    /// The SQLCipher key of `hub.db` ([`DataDir::archive_key`] of the data key).
    pub fn store_key(&self) -> Result<Option<StoreKey>, Error> {
        Ok(self.archive_key(&self.data_key()?))
    }

    /// Opens the archive with the data key. A wrong key is one Chinese sentence naming
    /// where the key came from, and nothing is touched.
    pub fn open_archive(&self) -> Result<Archive, Error> {
        let key = self.store_key()?;
        open_archive_with(&self.archive(), key.as_ref(), &self.key)
    }

    /// The archive.
    pub fn archive(&self) -> PathBuf {
        self.root.join("hub.db")
    }

    /// Present while the hub is rebuilt from a restored backup: written by `restore`, removed
    /// once an administrator's device has synced (see `hub::Enrolled::rebuilding`).
    pub fn rebuilding_marker(&self) -> PathBuf {
        self.root.join("rebuilding")
    }

    /// Refuses what would write to the hub's archive while it rebuilds from a backup (an
    /// invite that adds a member, the office console): the school it would write on lacks the
    /// members, devices and revocations made since, which come back with the administrator's
    /// device.
    pub fn check_not_rebuilding(&self) -> Result<(), Error> {
        if self.rebuilding_marker().exists() {
            return Err(Error::NotPermitted(super::hub::REBUILDING.into()));
        }
        Ok(())
    }

    pub(crate) fn school_key_path(&self) -> PathBuf {
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

    /// Whether an invite is open at `now`: issued, not yet spent, not expired. While one is,
    /// a device that has not enrolled yet may need the relay to reach the hub.
    pub fn has_open_invite(&self, now: i64) -> bool {
        self.open_invites_until(now).is_some()
    }

    /// The latest expiry among the invites open at `now` (issued, unspent, unexpired), if any.
    pub fn open_invites_until(&self, now: i64) -> Option<i64> {
        let entries = fs::read_dir(self.root.join("invites")).ok()?;
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                if !name.to_string_lossy().ends_with(".json") {
                    return None;
                }
                let expires = fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<StoredInvite>(&b).ok())
                    .map(|s| s.expires_at)
                    .filter(|&at| at > now)?;
                (!self.root.join("spent").join(&name).exists()).then_some(expires)
            })
            .max()
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

    /// Refuses, in Chinese, a directory where no school has been set up.
    pub fn check_initialised(&self) -> Result<(), Error> {
        if self.is_initialised() {
            // A directory from before encryption at rest is converted first, by its own command
            // (a bench-only plain store is plain on purpose: module docs).
            if !self.is_plain_store() && super::migrate::is_plain(self) {
                return Err(super::migrate::plain_refusal(self));
            }
            return Ok(());
        }
        Err(Error::NotPermitted(format!(
            "{} 里还没有学校，请先运行 shouwang-relay init-school",
            self.root.display()
        )))
    }

    /// Creates the directory (0700) and the two keys, sealed with `key`. Refuses if either
    /// key exists.
    pub fn create_keys(&self, key: &DataKey) -> Result<(SchoolKey, SecretKey), Error> {
        self.create_root()?;
        if self.school_key_path().exists() || self.hub_key_path().exists() {
            return Err(Error::NotPermitted(format!(
                "{} 里已经有学校密钥，不会覆盖",
                self.root.display()
            )));
        }
        let school = SchoolKey::generate();
        let hub = SecretKey::generate();
        let sealed = key.seal(SCHOOL_KEY_HEADER, &school.secret_bytes())?;
        write_private_new(&self.school_key_path(), sealed.as_bytes())?;
        let sealed = key.seal(HUB_KEY_HEADER, &hub.to_bytes())?;
        write_private_new(&self.hub_key_path(), sealed.as_bytes())?;
        Ok((school, hub))
    }

    /// Creates the data directory, owner only (0700), tightening an existing one.
    pub(crate) fn create_root(&self) -> Result<(), Error> {
        create_private_dir(&self.root)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    /// The school's signing key.
    pub fn school_key(&self) -> Result<SchoolKey, Error> {
        self.school_key_with(&self.data_key()?)
    }

    /// The school's signing key, unsealed with `key`.
    pub fn school_key_with(&self, key: &DataKey) -> Result<SchoolKey, Error> {
        let bytes = self.read_sealed(key, &self.school_key_path(), SCHOOL_KEY_HEADER)?;
        Ok(SchoolKey::from_secret_bytes(&bytes))
    }

    /// The hub endpoint's secret key.
    pub fn hub_key(&self) -> Result<SecretKey, Error> {
        self.hub_key_with(&self.data_key()?)
    }

    /// The hub endpoint's secret key, unsealed with `key`.
    pub fn hub_key_with(&self, key: &DataKey) -> Result<SecretKey, Error> {
        let bytes = self.read_sealed(key, &self.hub_key_path(), HUB_KEY_HEADER)?;
        Ok(SecretKey::from_bytes(&bytes))
    }

    fn read_sealed(&self, key: &DataKey, path: &Path, header: &str) -> Result<[u8; 32], Error> {
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
        match key.open(header, &text) {
            Some(Some(bytes)) => Ok(bytes),
            Some(None) => Err(wrong_key(&self.key)),
            None => Err(Error::Corrupt(format!(
                "{} 不是有效的密钥文件",
                path.display()
            ))),
        }
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
            .map_err(|_| Error::Corrupt("邀请记录无法写入".into()))?;
        write_new(&path, &json)
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

    /// Wipes the QR code images releases before kept among the invites (`invite`'s default
    /// place for them then): each is its ticket in clear, the one way into the school a PC
    /// stolen without its data key would have offered. Returns how many it wiped, and those
    /// it could not (left by an `invite` run as root), with why: they do not stop the others.
    pub fn wipe_qr_images(&self) -> (usize, Vec<(PathBuf, Error)>) {
        let Ok(entries) = fs::read_dir(self.root.join("invites")) else {
            return (0, Vec::new());
        };
        let mut wiped = 0;
        let mut left = Vec::new();
        for e in entries.filter_map(|e| e.ok()) {
            if e.file_name().to_string_lossy().ends_with(".png") {
                match crate::keyfile::wipe_file(&e.path()) {
                    Ok(()) => wiped += 1,
                    Err(err) => left.push((e.path(), err)),
                }
            }
        }
        (wiped, left)
    }

    /// Closes the open invites of the members `inactive` names (by id), as a restore closes
    /// invites: a `spent/` record naming no device. The hub refuses such an invite anyway, but
    /// while it is open the gate and the relay let strangers in. Returns how many it closed.
    pub fn close_invites_of(
        &self,
        now: i64,
        inactive: impl Fn(&str) -> bool,
    ) -> Result<usize, Error> {
        let Ok(entries) = fs::read_dir(self.root.join("invites")) else {
            return Ok(0);
        };
        let mut closed = 0;
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name();
            if !name.to_string_lossy().ends_with(".json") {
                continue;
            }
            let spent = self.root.join("spent").join(&name);
            let Some(invite) = fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<StoredInvite>(&b).ok())
            else {
                continue;
            };
            if invite.expires_at <= now || spent.exists() || !inactive(&invite.member) {
                continue;
            }
            match write_new(&spent, &spent_at_restore(now)) {
                Ok(()) => closed += 1,
                Err(Error::Io(e)) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(closed)
    }

    /// Refuses an invite another device spent (read from its `spent/` record alone): checked
    /// before anything costlier, as whoever photographed a used QR code may present it again
    /// and again. [`DataDir::spend`] decides for good.
    pub fn check_not_spent_by_another(
        &self,
        secret: &InviteSecret,
        device: &DeviceKey,
    ) -> Result<(), Error> {
        match self.spent_record(secret) {
            Some(spent) if spent.device != device.to_hex() => Err(spent.refusal()),
            _ => Ok(()),
        }
    }

    /// The `spent/` record of an invite, if there is a readable one.
    fn spent_record(&self, secret: &InviteSecret) -> Option<SpentInvite> {
        let bytes = fs::read(self.spent_path(secret)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Gives back an invite `device` spent just now (its enrollment failed before anything was
    /// registered): the record goes if it names `device`.
    pub fn unspend(&self, secret: &InviteSecret, device: &DeviceKey) -> Result<(), Error> {
        if self
            .spent_record(secret)
            .is_some_and(|s| s.device == device.to_hex())
        {
            let path = self.spent_path(secret);
            fs::remove_file(&path)?;
            if let Some(dir) = path.parent() {
                fs::File::open(dir)?.sync_all()?;
            }
        }
        Ok(())
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
            again: 0,
        })
        .map_err(|_| Error::Corrupt("邀请记录无法写入".into()))?;
        match write_new(&path, &record) {
            Ok(()) => Ok(Spend::Fresh),
            Err(Error::Io(e)) if e.kind() == ErrorKind::AlreadyExists => {
                let bytes = fs::read(&path)?;
                let spent: SpentInvite = serde_json::from_slice(&bytes)
                    .map_err(|_| Error::Corrupt("邀请记录已损坏".into()))?;
                if spent.device != device.to_hex() {
                    Err(spent.refusal())
                } else if now - spent.at <= AGAIN_SECONDS {
                    if spent.again >= AGAIN_TIMES {
                        return Err(Error::NotPermitted(
                            "这个邀请码已经重试太多次，请让管理员重新生成邀请码".into(),
                        ));
                    }
                    let at = spent.at;
                    let again = serde_json::to_vec(&SpentInvite {
                        again: spent.again + 1,
                        ..spent
                    })
                    .map_err(|_| Error::Corrupt("邀请记录无法写入".into()))?;
                    replace_private(&path, &again)?;
                    Ok(Spend::Again { at })
                } else {
                    Err(Error::NotPermitted(
                        "这台设备已经用过这个邀请码，请直接同步；同步时如果提示证书过期，请让管理员重新生成邀请码"
                            .into(),
                    ))
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// A wrong data key, as one Chinese sentence.
pub(crate) fn wrong_key(source: &KeySource) -> Error {
    Error::NotPermitted(format!(
        "数据密钥不对（{source}），打不开学校服务器的数据；没有改动任何文件"
    ))
}

/// Opens the archive at `path` with `key` (`None`: a bench-only plain store, module docs); a
/// wrong key is [`wrong_key`].
pub(crate) fn open_archive_with(
    path: &Path,
    key: Option<&StoreKey>,
    source: &KeySource,
) -> Result<Archive, Error> {
    Archive::open_with_key(path, key).map_err(|e| match e {
        Error::Locked => wrong_key(source),
        e => e,
    })
}

/// Creates `path` with `bytes` (mode 0600, its directory 0700), failing if it exists; durable
/// on return.
/// Replaces `path` with `bytes` (owner-only, synced) in one step: a rename over it.
fn replace_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("again");
    let _ = fs::remove_file(&tmp);
    write_private_new(&tmp, bytes)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::Io(e)
    })
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_new_with(path, |tmp| write_private_new(tmp, bytes))
}

/// [`write_new`], the file made whole beside `path` by `fill` first and then linked into place
/// in one step (`link` fails if `path` exists, as `create_new` did): a spend cut off by a
/// crash or a full disk leaves no empty record, which would refuse the invite for good
/// ("邀请记录已损坏"), the rightful device's retry included.
fn write_new_with(path: &Path, fill: impl FnOnce(&Path) -> Result<(), Error>) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let mut nonce = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut nonce);
    // Not `.json`: whatever reads the directory for records never takes it for one.
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(nonce)));
    let linked = fill(&tmp).and_then(|()| fs::hard_link(&tmp, path).map_err(Error::from));
    let _ = fs::remove_file(&tmp);
    linked?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A record whose writing fails (a full disk, a crash) leaves nothing in its place: the
    /// next spend of the invite writes it.
    #[test]
    fn a_record_cut_off_while_written_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spent").join("abc.json");
        let err = write_new_with(&path, |tmp| {
            fs::write(tmp, b"{\"dev").unwrap();
            Err(Error::Io(std::io::Error::other("磁盘已满")))
        });
        assert!(err.is_err());
        assert!(!path.exists());
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 0);
        write_new(&path, b"{}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        assert!(matches!(
            write_new(&path, b"{}"),
            Err(Error::Io(e)) if e.kind() == ErrorKind::AlreadyExists
        ));
    }

    #[test]
    fn keys_are_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("hub"));
        let (key, _) = data.key_source().load_or_create().unwrap();
        let (school, hub) = data.create_keys(&key).unwrap();
        assert_eq!(data.school_key().unwrap().public(), school.public());
        assert_eq!(data.hub_key().unwrap().public(), hub.public());
        assert!(data.create_keys(&key).is_err());
        // Sealed: neither secret is in its file.
        let text = fs::read_to_string(data.school_key_path()).unwrap();
        assert!(!text.contains(&hex::encode(school.secret_bytes())));
        let text = fs::read_to_string(data.hub_key_path()).unwrap();
        assert!(!text.contains(&hex::encode(hub.to_bytes())));
        // Another data key opens neither.
        let other = DataDir::with_key(data.root(), KeySource::File(dir.path().join("other.key")));
        other.key_source().load_or_create().unwrap();
        let wrong = other.school_key().unwrap_err();
        assert!(wrong.to_string().contains("数据密钥不对"), "{wrong}");
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

    /// A plain `hub.db` beside sealed keys (what a `bench-plain-store` build makes) is refused
    /// by a directory not marked as plain, which is every directory of a normal build.
    #[test]
    fn a_plain_hub_db_is_refused_unless_marked_for_the_bench() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("hub"));
        let (key, _) = data.key_source().load_or_create().unwrap();
        data.create_keys(&key).unwrap();
        let conn = rusqlite::Connection::open(data.archive()).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        assert!(!data.is_plain_store());
        assert!(data.archive_key(&key).is_some());
        let e = data.check_initialised().unwrap_err();
        assert!(e.to_string().contains("encrypt-data"), "{e}");
        #[cfg(feature = "bench-plain-store")]
        {
            let plain = data.clone().with_plain_store_for_bench();
            assert!(plain.is_plain_store() && plain.archive_key(&key).is_none());
            plain.check_initialised().unwrap();
        }
    }

    #[test]
    fn an_invite_is_spent_once_but_its_device_may_retry() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("hub"));
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
        assert_eq!(
            data.spend(&secret, &phone, 6).unwrap(),
            Spend::Again { at: 5 }
        );
        // A few more times, not again and again.
        for _ in 1..AGAIN_TIMES {
            assert_eq!(
                data.spend(&secret, &phone, 7).unwrap(),
                Spend::Again { at: 5 }
            );
        }
        let many = data.spend(&secret, &phone, 8).unwrap_err();
        assert!(many.to_string().contains("重试太多次"), "{many}");
        // Not long after: the enrollment it retries is over one way or the other.
        let late = data
            .spend(&secret, &phone, 5 + AGAIN_SECONDS + 1)
            .unwrap_err();
        assert!(late.to_string().contains("直接同步"), "{late}");
        let other = data.spend(&secret, &DeviceKey([2; 32]), 7).unwrap_err();
        assert!(other.to_string().contains("用过"), "{other}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            for d in ["invites", "spent"] {
                let d = data.root().join(d);
                assert_eq!(mode(&d), 0o700, "{}", d.display());
                for f in fs::read_dir(&d).unwrap() {
                    assert_eq!(mode(&f.unwrap().path()), 0o600);
                }
            }
        }
    }
}
