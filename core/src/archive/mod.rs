//! [`Archive`]: one device's care archive, the API the CLI and the phone apps use.
//!
//! An archive is a [`Store`] plus who is holding the device: the school, the device id (the
//! automerge actor of everything written here, followed by a restore epoch on a copy restored
//! from a backup: [`crate::ids::Epoch`]) and the member using it. Every method validates
//! its input completely, checks that the member may do it, and then writes in one durable
//! transaction, so a refused call leaves nothing behind.

mod admin;
mod audit;
mod behalf;
mod care;
mod clock;
mod consent;
mod console;
mod deliveries;
mod departure;
mod devices;
mod erasure;
mod exchange;
mod filter;
mod keys;
mod least;
mod long_numbers;
mod lookup;
mod lost;
mod not_carried;
mod rebase;
mod renewal;
mod repair;
mod reports;
mod resolution;
pub(crate) mod scope;
mod syncing;

use std::path::Path;
use std::sync::Arc;

use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, MemberId, SchoolId};
use crate::roles::Role;
use crate::school::{self, Device, Member, SchoolView};
use crate::store::{Store, StoreKey};

pub use admin::{ClassHeadChange, RosterDifference, RosterReport, Withheld};
pub use audit::{AuditEntry, AuditLog, what as audit_kind};
pub use behalf::OnBehalf;
pub use care::{
    CONSENT_ADVICE, ChildFile, ChildRow, ERASE_ADVICE, HistoryEntry, RecordInput, SectionView,
    mask_conflict,
};
pub use consent::{ConsentInput, WithdrawalInput};
pub use console::CONSOLE_DEVICE_LABEL;
pub use deliveries::{Delivery, DeliveryFilter};
pub use departure::{LeaveInput, LeaveReport, LeftChild, RETURN_ADVICE};
pub use devices::DeviceRow;
pub use erasure::ErasureReport;
pub use exchange::{ImportReport, JoinOptions, NewDevice, REVOKED_DEVICE};
pub use filter::ChildFilter;
pub use least::{ContactRow, SplitReport};
pub use lost::{HeldChild, LostDeviceReport};
pub use rebase::RebaseReport;
pub use resolution::MayResolve;
pub use scope::Reopen;
pub use syncing::{QuarantinedChange, RelayedChange, SyncStatus};

/// What it takes to start a school's archive on its first device.
#[derive(Debug, Clone)]
pub struct SchoolSetup {
    pub name: String,
    pub town: String,
    pub hotline: Option<String>,
    pub admin_name: String,
    pub admin_role: Role,
    pub device_label: String,
}

impl SchoolSetup {
    /// 郭庄小学 of 丁里镇 (the school of the source documents), its administrator 张长友
    /// (校长/领导组), on the device `device_label`: the sample school that tests, benchmarks and
    /// the demo start from.
    pub fn sample(device_label: &str) -> SchoolSetup {
        SchoolSetup {
            name: "郭庄小学".into(),
            town: "丁里镇".into(),
            hotline: None,
            admin_name: "张长友".into(),
            admin_role: Role::Leadership,
            device_label: device_label.into(),
        }
    }
}

/// A device's archive.
#[derive(Debug)]
pub struct Archive {
    store: Store,
    school_id: SchoolId,
    device: DeviceId,
    me: MemberId,
}

/// The longest range [`Archive::compliance`] counts, in days: two school years.
pub const MAX_COMPLIANCE_DAYS: i64 = 731;

const META_SCHOOL: &str = "school_id";
const META_DEVICE: &str = "device_id";
const META_MEMBER: &str = "member_id";
/// This device's secret key (see [`crate::device_key`]), on a device that has no network key.
pub const META_DEVICE_KEY: &str = "device.key";
/// This device's network (iroh endpoint) secret key, on a device that enrolled over the
/// network: it is also its device key.
pub const META_NETWORK_KEY: &str = "net.secret";

/// Whether the store at `path`, opened with `key`, has been set up (it names its school).
/// Read only: nothing is created or migrated. A store `key` does not open (encrypted under
/// another key, or encrypted and no key given) is certainly somebody's archive. One that opens
/// and names no school is what a set-up cut off (a phone that died while joining) left: not
/// an archive, and the next set-up with the same key writes over it.
fn is_initialised(path: &Path, key: Option<&StoreKey>) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let conn =
        match crate::store::cipher::open(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY, key) {
            Ok(conn) => conn,
            Err(Error::Locked) => return Ok(true),
            Err(e) => return Err(e),
        };
    let has_meta: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
        [],
        |r| r.get(0),
    )?;
    if has_meta == 0 {
        return Ok(false);
    }
    Ok(crate::store::meta_get(&conn, META_SCHOOL)?.is_some())
}

impl Archive {
    /// Whether a store at `path` has been set up (by creating a school or joining one). An
    /// encrypted store counts even without its key; nothing is written.
    pub fn exists(path: &Path) -> Result<bool> {
        is_initialised(path, None)
    }

    /// [`Archive::exists`], for a store kept under `key`: one this key opens that names no
    /// school (a set-up cut off) does not count.
    pub fn exists_with_key(path: &Path, key: Option<&StoreKey>) -> Result<bool> {
        is_initialised(path, key)
    }

    /// Creates a school's archive on its first device, with its administrator as the member.
    pub fn create_school(path: &Path, setup: &SchoolSetup) -> Result<Archive> {
        Archive::create_school_with_key(path, setup, None)
    }

    /// [`Archive::create_school`], the store encrypted at rest with `key` if given (SQLCipher,
    /// as the hub's): the office's own archive holds the school secret and every 身份证号.
    pub fn create_school_with_key(
        path: &Path,
        setup: &SchoolSetup,
        key: Option<&StoreKey>,
    ) -> Result<Archive> {
        let name = setup.name.trim();
        if name.is_empty() {
            return Err(Error::Missing("学校名称".into()));
        }
        if setup.admin_name.trim().is_empty() {
            return Err(Error::Missing("管理员姓名".into()));
        }
        crate::forms::check_line("学校名称", name, 100)?;
        crate::forms::check_line("乡镇", setup.town.trim(), 100)?;
        crate::forms::check_line(
            "管理员姓名",
            setup.admin_name.trim(),
            crate::forms::MAX_MEMBER_NAME_CHARS,
        )?;
        crate::forms::check_line("设备名称", setup.device_label.trim(), 100)?;
        if let Some(h) = &setup.hotline {
            crate::forms::parse_phone("亲情电话", h)?;
        }
        if is_initialised(path, key)? {
            return Err(Error::archive_exists());
        }
        let school_id = SchoolId::random();
        let device_secret = crate::device_key::DeviceSecret::generate();
        let device = device_secret.device_id();
        let me = MemberId::random();
        let mut store = Store::open_with_key(path, key)?;
        store.set_device(&device);
        let admin = Member {
            id: me.clone(),
            name: setup.admin_name.trim().to_owned(),
            roles: vec![setup.admin_role],
            class_id: None,
            phone: None,
            active: true,
        };
        store.write(|b| {
            let now = b.now_ms();
            b.change(&DocId::School, true, "创建学校", |tx| {
                school::set_profile(tx, name, setup.town.trim(), setup.hotline.as_deref())?;
                school::split_for_roles(tx)?;
                school::add_member(tx, &admin)?;
                school::add_device(
                    tx,
                    &Device {
                        id: device.clone(),
                        member: me.clone(),
                        label: setup.device_label.clone(),
                        revoked: false,
                        key: Some(device_secret.public().to_hex()),
                        registered_at: Some(now),
                        console: false,
                    },
                )
            })?;
            b.set_meta(META_DEVICE_KEY, &device_secret.to_hex());
            // The secret that keys child ids, for administrators only (`keys.rs`).
            let secret = crate::ids::SchoolSecret::generate();
            b.change(&DocId::Keys, true, keys::CREATE_MESSAGE, |tx| {
                keys::write_secret(tx, &secret)
            })?;
            b.set_meta(META_SCHOOL, school_id.as_str());
            b.set_meta(META_DEVICE, device.as_str());
            b.set_meta(META_MEMBER, me.as_str());
            Ok(())
        })?;
        Ok(Archive {
            store,
            school_id,
            device,
            me,
        })
    }

    /// Opens an existing unencrypted archive.
    pub fn open(path: &Path) -> Result<Archive> {
        Archive::open_with_key(path, None)
    }

    /// Opens an existing archive, encrypted at rest with `key` if given.
    /// Today's date by this device's clock, in its time zone: what "not in the future" means
    /// for a date a person enters.
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::DateTime::from_timestamp_millis(self.store.clock_ms()).map_or_else(
            || chrono::Local::now().date_naive(),
            |t| t.with_timezone(&chrono::Local).date_naive(),
        )
    }

    pub fn open_with_key(path: &Path, key: Option<&StoreKey>) -> Result<Archive> {
        // A missing or empty file holds no archive: say so without making it a database.
        if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
            return Err(Error::NotInitialised);
        }
        let mut store = Store::open_with_key(path, key)?;
        let get = |k: &str| store.meta(k).and_then(|v| v.ok_or(Error::NotInitialised));
        let school_id = SchoolId(get(META_SCHOOL)?);
        let device = DeviceId(get(META_DEVICE)?);
        let me = MemberId(get(META_MEMBER)?);
        store.set_device(&device);
        Ok(Archive {
            store,
            school_id,
            device,
            me,
        })
    }

    /// The school this archive belongs to.
    pub fn school_id(&self) -> &SchoolId {
        &self.school_id
    }

    /// This device.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    /// The member using this device.
    pub fn me_id(&self) -> &MemberId {
        &self.me
    }

    /// The underlying store (benchmarks and tests look inside).
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The school document, read (re-read only when it has changed). One view per school
    /// state, shared with the store's admission ([`Store::school_view`]): a device that has
    /// just judged a peer's changes against today's school reads it no second time.
    pub fn school(&mut self) -> Result<Arc<SchoolView>> {
        // An open archive always had one: without it, it was dropped as damaged
        // (`drop_damaged`) and the next sync fetches it again.
        self.store.school_view()?.ok_or_else(|| Error::Damaged {
            what: "学校信息".into(),
            doc: DocId::School.key(),
        })
    }

    /// The member using this device.
    pub fn me(&mut self) -> Result<Member> {
        let me = self.me.clone();
        self.school()?
            .member(&me)
            .cloned()
            .ok_or_else(|| Error::not_found("成员", me))
    }

    /// What `member`'s standing in `roles` rests on in the school document
    /// ([`school::member_grant`]): it changes whenever one of those roles or their `active`
    /// flag is written again. `None` if the school has no such member.
    pub fn member_grant(&mut self, member: &MemberId, roles: &[Role]) -> Result<Option<String>> {
        Ok(self
            .store
            .doc(&DocId::School)?
            .and_then(|doc| school::member_grant(doc, member, roles)))
    }

    /// Folds documents with many loose changes into snapshots (safe at any time). Writes fold
    /// a document as they go ([`crate::store::COMPACT_AFTER`]); this is for documents stored
    /// before they did.
    pub fn compact(&mut self) -> Result<usize> {
        self.store.compact(crate::store::COMPACT_AFTER)
    }

    fn require_admin(&mut self) -> Result<Member> {
        let me = self.me()?;
        if me.roles.iter().any(|r| r.administers()) {
            Ok(me)
        } else {
            Err(Error::NotPermitted(format!(
                "{}（{}）不能管理学校设置，需要校长或档案管理员",
                me.name,
                me.role_labels()
            )))
        }
    }
}

impl Archive {
    /// What a member (this device's member if `None`) owes on `today`.
    pub fn due(
        &mut self,
        member: Option<&str>,
        today: chrono::NaiveDate,
        include_done: bool,
    ) -> Result<Vec<crate::due::DueItem>> {
        let m = match member {
            Some(k) => self.find_member(k)?,
            None => self.me()?,
        };
        let school = self.school()?;
        crate::due::due_for(self.store.conn(), &school, &m, today, include_done)
    }

    /// The school's compliance per rule over `[from, to]`.
    pub fn compliance(
        &mut self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<Vec<crate::due::ComplianceRow>> {
        if to < from {
            return Err(Error::invalid("日期范围", "结束日期早于开始日期"));
        }
        // Two school years at most: every duty is counted period by period, holding the
        // archive meanwhile (a phone's widest dates would count a century of weeks).
        if (to - from).num_days() > MAX_COMPLIANCE_DAYS {
            return Err(Error::invalid("日期范围", "最长两年，请分段统计"));
        }
        let school = self.school()?;
        crate::due::compliance(self.store.conn(), &school, from, to)
    }
}
