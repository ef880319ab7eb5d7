//! Exchanging changes by file: export and import bundles, and setting up a second device from
//! one.
//!
//! Every file is sealed ([`crate::bundle::seal`]): signed with this device's key and encrypted
//! to the devices that may read it. A file for a member (`bundle export`, with or without
//! `--for`) opens on that member's registered devices, the administrators' devices (the
//! office) and the exporting device; a school-wide file only on the administrators' devices
//! and the exporting one. A file that sets up a new device opens with a passphrase the office
//! gives in person.
//!
//! On import, the signer must be a registered, unrevoked device of an active member in the
//! school document this device already holds (a device it has not heard of yet is refused
//! until it syncs or imports the office's file), and the file is judged like a connection from
//! that device (see [`crate::store::Sender`]): an administrator's file relays others' changes,
//! anyone else's carries only the changes made on the signing device.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use automerge::ReadDoc;
use serde::Serialize;

use super::{
    Archive, META_DEVICE, META_DEVICE_KEY, META_MEMBER, META_NETWORK_KEY, META_SCHOOL,
    is_initialised, scope,
};
use crate::bundle::seal::{self, Lock, Passphrase, Unlock};
use crate::bundle::{Bundle, Entry, Held};
use crate::device_key::DeviceSecret;
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, MemberId};
use crate::membership::DeviceKey;
use crate::school::{self, Device, Member, SchoolView};
use crate::store::{Batch, Sender, Store, StoreKey};

/// What importing a bundle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Documents in the bundle.
    pub documents: usize,
    /// Documents that gained changes.
    pub changed: usize,
    /// Changes that were new to this device.
    pub new_changes: usize,
    /// Changes not merged: refused by the trust rules, or depending on one that was, and the
    /// deferred ones below.
    pub refused: usize,
    /// Of those, changes not judged now, which a later import of the same file may take: past
    /// the sender's daily allowance, or resting on something this device does not hold yet.
    /// Not kept in the quarantine.
    pub deferred: usize,
    /// Of those, changes on an older generation of a re-based file: not kept either; the
    /// sender's work comes back, carried over, once it has the new generation.
    pub stale: usize,
    /// Why the first of them was not merged.
    pub refused_reason: Option<String>,
    /// Documents of the bundle left out because this device's member may not see them.
    pub dropped: usize,
    /// Documents this device held that its member may no longer see, once the bundle was
    /// merged (a pairing ended at the office): purged.
    pub purged: usize,
}

/// A new device registered at the office (`shouwang device add`), and the file it joins with.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub device: DeviceId,
    /// The sealed file, opened with [`NewDevice::passphrase`].
    pub bundle: Vec<u8>,
    /// Given in person, never sent with the file.
    pub passphrase: Passphrase,
}

/// How [`Archive::join_enrolled`] sets a new device up.
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinOptions<'a> {
    /// Encrypt the store at rest with this key (a phone's keystore holds it).
    pub key: Option<&'a StoreKey>,
    /// `meta` entries to write in the same transaction (the device's network identity).
    pub meta: &'a [(&'a str, &'a str)],
    /// The sync peer the bundle came from (the hub, at enrollment): it is recorded as having
    /// every document of the bundle, so the first sync sends only what is new.
    pub shared_with: Option<&'a str>,
}

/// A member's devices and the documents holding records she wrote, for the held documents of
/// a file to her ([`crate::bundle::Held`]).
struct WorkOf {
    devices: Vec<String>,
    docs: BTreeSet<DocId>,
}

/// A sync state recording that the peer has everything up to `heads`.
pub(crate) fn shared_state(heads: Vec<automerge::ChangeHash>) -> automerge::sync::State {
    let mut state = automerge::sync::State::new();
    state.shared_heads = heads;
    state
}

/// Records what a file's signer (an administrator's device) holds of this device's work in
/// documents it no longer sends: as the heads this store shares with that device (peer
/// `<device>:file`), which is what [`Archive::purge_out_of_scope`] asks before it drops a
/// document holding work of this device's. Only documents this device holds, and only
/// changes it has (what it has not cannot be its own work).
fn record_held(b: &mut Batch<'_>, signer: &DeviceId, held: &[Held]) -> Result<()> {
    let peer = format!("{}:file", signer.as_str());
    for h in held {
        let Some(doc) = b.doc(&h.doc)? else {
            continue;
        };
        let known: Vec<automerge::ChangeHash> = h
            .changes
            .iter()
            .filter(|c| crate::doc::has_change(doc, c))
            .copied()
            .collect();
        if !known.is_empty() {
            b.save_sync_state(&peer, &h.doc, &shared_state(known));
        }
    }
    Ok(())
}

/// Merges every entry; refuses the lot if any document would be left missing changes it
/// depends on (a bundle cut short, or one made "since" a state this device does not have).
pub(super) fn merge_entries(b: &mut Batch<'_>, entries: &[Entry]) -> Result<ImportReport> {
    let mut report = ImportReport {
        documents: entries.len(),
        changed: 0,
        new_changes: 0,
        ..ImportReport::default()
    };
    // The school document first: every other document is judged against it.
    let ordered = entries
        .iter()
        .filter(|e| e.doc == DocId::School)
        .chain(entries.iter().filter(|e| e.doc != DocId::School));
    for e in ordered {
        let before = b.doc(&e.doc)?.map(|d| d.get_heads()).unwrap_or_default();
        let admission = b.merge_bytes(&e.doc, &e.data)?;
        report.refused += admission.refused + admission.deferred;
        report.deferred += admission.deferred;
        report.stale += admission.stale;
        if report.refused_reason.is_none() {
            report.refused_reason = admission.reason;
        }
        let doc = b
            .doc(&e.doc)?
            .ok_or_else(|| Error::not_found("档案", &e.doc))?;
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(Error::Corrupt(format!(
                "{} 缺少之前的修改，请先导入更早的文件或导出完整文件",
                e.doc
            )));
        }
        let new = doc.get_changes(&before).len();
        if new > 0 {
            report.changed += 1;
            report.new_changes += new;
        }
    }
    Ok(report)
}

/// Takes the bundle that sets a device up or renews its membership (`entries`, sent for
/// `device`) into `b`, with the checks both make before anything is written: the school as it
/// will be once they are merged is read, and `admit`, the caller's own checks, is given it and
/// the member it registers `device` to, if it does and the device is not revoked; it answers
/// with the member the bundle is taken for, or why it is refused. The documents she may see
/// are merged then (the others dropped, as counted in the report) and `meta` written. Returns
/// her and the entries merged.
pub(super) fn take_enrollment(
    b: &mut Batch<'_>,
    entries: Vec<Entry>,
    device: &DeviceId,
    admit: impl FnOnce(&SchoolView, Option<&Member>) -> Result<Member>,
    meta: &[(&str, &str)],
) -> Result<(Member, Vec<Entry>, ImportReport)> {
    let view = scope::school_after(b, &entries)?;
    let registered = view
        .devices
        .iter()
        .find(|d| d.id == *device && !d.revoked)
        .and_then(|d| view.member(&d.member));
    let me = admit(&view, registered)?;
    let total = entries.len();
    let (kept, dropped) = scope::entries_in_scope(b, &me.id, entries)?;
    let mut report = merge_entries(b, &kept)?;
    report.documents = total;
    report.dropped = dropped;
    for (key, value) in meta {
        b.set_meta(key, value);
    }
    Ok((me, kept, report))
}

/// The registered device whose key is `key`, and its member, if both are in good standing.
fn signer_in<'v>(view: &'v SchoolView, key: &DeviceKey) -> Result<(&'v Device, &'v Member)> {
    let unknown = || {
        Error::NotPermitted(
            "导出这个文件的设备不在本机所知的学校登记里：请先与学校服务器同步，或导入管理员的最新文件后再试"
                .into(),
        )
    };
    let device = view
        .devices
        .iter()
        .find(|d| d.public_key().as_ref() == Some(key))
        .ok_or_else(unknown)?;
    let member = view.member(&device.member).ok_or_else(unknown)?;
    // Syncing does not help here: the school says so.
    if device.revoked {
        return Err(Error::NotPermitted(format!(
            "导出这个文件的设备（{}的“{}”）已被学校停用，它的文件不能导入",
            member.name, device.label
        )));
    }
    if !member.active {
        return Err(Error::NotPermitted(format!(
            "导出这个文件的成员（{}）已停用，其文件不能导入",
            member.name
        )));
    }
    Ok((device, member))
}

/// What a new device takes from the file it joins with.
struct Joining {
    bundle: Bundle,
    device: DeviceId,
    /// The device's key, from a file sealed at the office.
    secret: Option<DeviceSecret>,
    /// Who signed the file: it must be an administrator's device in the file's school document.
    signer: Option<DeviceKey>,
}

/// Why a revoked device cannot be registered again (by an invite or a set-up file).
pub const REVOKED_DEVICE: &str =
    "这台设备已被停用，不能再次登记；请换一台设备，或重新安装应用后用新的邀请码加入";

impl Archive {
    /// This device's secret key: its network key if it enrolled over the network, else the
    /// key it was given or made when it was set up.
    ///
    /// A device set up by an earlier version from a file has no key. An administrator's such
    /// device (the office computer) gets one here, under a new device id registered for the
    /// same member: its old id stays registered, so what it wrote before still checks.
    /// Anyone else's is re-registered at the office (`device add`).
    pub fn device_secret(&mut self) -> Result<DeviceSecret> {
        let store = self.store();
        let text = match store.meta(META_DEVICE_KEY)? {
            Some(t) => t,
            None => match store.meta(META_NETWORK_KEY)? {
                Some(t) => t,
                None => return self.upgrade_to_a_device_key(),
            },
        };
        let secret = DeviceSecret::from_hex(&text)?;
        if secret.device_id() != self.device {
            return Err(Error::Corrupt("本机的设备密钥与设备编号不符".into()));
        }
        Ok(secret)
    }

    /// See [`Archive::device_secret`].
    fn upgrade_to_a_device_key(&mut self) -> Result<DeviceSecret> {
        let me = self.me()?;
        if !(me.active && me.roles.iter().any(|r| r.administers())) {
            return Err(Error::NotPermitted(
                "本机没有设备密钥（旧版建立的档案库），不能收发加密的数据文件：请管理员用“shouwang device add”为你重新登记"
                    .into(),
            ));
        }
        let label = self
            .school()?
            .devices
            .iter()
            .find(|d| d.id == self.device)
            .map_or_else(|| "办公室电脑".to_owned(), |d| d.label.clone());
        let secret = DeviceSecret::generate();
        let device = secret.device_id();
        let record = Device {
            id: device.clone(),
            member: me.id.clone(),
            label,
            revoked: false,
            key: Some(secret.public().to_hex()),
            registered_at: None,
            console: false,
        };
        let message = format!("登记设备密钥：{}", me.name);
        self.store.write(|b| {
            let record = Device {
                registered_at: Some(b.now_ms()),
                ..record
            };
            b.change(&DocId::School, false, &message, |tx| {
                school::add_device(tx, &record)
            })?;
            b.set_meta(META_DEVICE_KEY, &secret.to_hex());
            b.set_meta(META_DEVICE, device.as_str());
            Ok(())
        })?;
        self.store.set_device(&device);
        self.device = device;
        Ok(secret)
    }

    /// The keys a file for `member` is sealed to: that member's devices (none for a
    /// school-wide file), every active administrator's, and this device's own. Console devices
    /// (nobody holds their secret), revoked devices (but those of a deactivated member, for
    /// whom the file holds only the school document) and devices registered without a key are
    /// left out.
    fn recipients(&mut self, member: Option<&MemberId>, me: &DeviceKey) -> Result<Vec<DeviceKey>> {
        let view = self.school()?;
        let mut keys = vec![*me];
        for d in &view.devices {
            // A console device has no secret to open a file with.
            if d.console {
                continue;
            }
            let Some(m) = view.member(&d.member) else {
                continue;
            };
            // A deactivated member's devices (revoked with them) still get a file for that
            // member: it holds only the school document, which tells them to purge what they
            // held. A revoked device of an active member (a lost phone) never gets one.
            let for_member = Some(&m.id) == member && (!d.revoked || !m.active);
            let office = m.active && !d.revoked && m.roles.iter().any(|r| r.administers());
            if let Some(k) = d.public_key()
                && (for_member || office)
                && !keys.contains(&k)
            {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    /// The plain bundle of the documents `member` may see (everything this device has, if
    /// `None`). With `since`, a document the receiver already had at those heads carries only
    /// what came after.
    fn bundle_for(&mut self, member: Option<&Member>, since: Option<&Bundle>) -> Result<Bundle> {
        self.bundle_vouching(member, since, false)
    }

    /// [`Archive::bundle_for`], listing the held documents of `member`'s work
    /// ([`crate::bundle::Held`]) if `vouch`: only in a file for a device already set up (a
    /// new device's file or enrollment has no work of hers to drop, and stays readable by the
    /// builds before held documents).
    fn bundle_vouching(
        &mut self,
        member: Option<&Member>,
        since: Option<&Bundle>,
        vouch: bool,
    ) -> Result<Bundle> {
        let since_heads = since.map(Bundle::heads).unwrap_or_default();
        if let Some(s) = since
            && s.school != self.school_id
        {
            return Err(Error::WrongSchool);
        }
        let mut entries = Vec::new();
        let mut held = Vec::new();
        let work = match member {
            Some(m) if vouch => self.work_to_vouch_for(m)?,
            _ => None,
        };
        for id in self.store.doc_ids()? {
            if let Some(m) = member
                && !self.may_carry(m, &id)?
            {
                // Her phone may hold work of hers in a document with records she wrote. A
                // file withheld from her by the guardian's withdrawal is listed whatever it
                // holds of hers: her phone learns of the withdrawal only here (the document
                // that records it is the one withheld), and drops its copy once the school
                // holds her work in it (`purge_out_of_scope`).
                if let Some(work) = &work {
                    let withheld = self.withheld_by_withdrawal(m, &id)?;
                    if withheld || work.docs.contains(&id) {
                        let mine = self.held_work(work, &id)?;
                        if let Some(h) = mine.or_else(|| {
                            withheld.then(|| Held {
                                doc: id.clone(),
                                changes: Vec::new(),
                            })
                        }) {
                            held.push(h);
                        }
                    }
                }
                continue;
            }
            let Some(doc) = self.store.doc(&id)? else {
                continue;
            };
            let heads = doc.get_heads();
            let data = match since_heads.get(&id) {
                Some(h) if *h == heads => continue,
                Some(h) if h.iter().all(|x| crate::doc::has_change(doc, x)) => doc.save_after(h),
                // Uncompressed columns: the bundle's payload is compressed as a whole, and
                // zstd over plain columns of every document is 0.6× the documents deflated
                // one by one (BENCHMARKS §14).
                _ => crate::doc::saved(doc, false),
            };
            entries.push(Entry {
                doc: id,
                heads,
                data,
            });
        }
        Ok(Bundle {
            school: self.school_id.clone(),
            device: None,
            entries,
            held,
        })
    }

    /// For a file from an administrator's device to `member`: her devices, and the documents
    /// holding records she wrote (`p_records`), the ones whose copies on her phone may hold
    /// work of hers. `None` from anyone else: a receiver takes such a claim from an
    /// administrator's device only (`holds_unsent_work`).
    fn work_to_vouch_for(&mut self, member: &Member) -> Result<Option<WorkOf>> {
        if !self.me()?.roles.iter().any(|r| r.administers()) {
            return Ok(None);
        }
        let school = self.school()?;
        let devices = school
            .devices
            .iter()
            .filter(|d| d.member == member.id)
            .map(|d| d.id.as_str().to_owned())
            .collect();
        let docs = self.store.docs_with_records_by(&member.id)?;
        Ok(Some(WorkOf { devices, docs }))
    }

    /// What a file tells the member's phone of a document it no longer sends her: the last
    /// change each of her devices made in it that this device holds (each covers that
    /// device's earlier ones). `None` if it holds none of her work.
    fn held_work(&mut self, work: &WorkOf, id: &DocId) -> Result<Option<Held>> {
        let Some(doc) = self.store.doc(id)? else {
            return Ok(None);
        };
        let mut last: BTreeMap<String, (u64, automerge::ChangeHash)> = BTreeMap::new();
        for c in doc.get_changes(&[]) {
            let actor = c.actor_id().to_hex_string();
            if work.devices.iter().any(|d| actor.starts_with(d.as_str()))
                && last.get(&actor).is_none_or(|(seq, _)| c.seq() > *seq)
            {
                last.insert(actor, (c.seq(), c.hash()));
            }
        }
        Ok((!last.is_empty()).then(|| Held {
            doc: id.clone(),
            changes: last.into_values().map(|(_, h)| h).collect(),
        }))
    }

    /// A sealed file of the documents `for_member` may see (everything this device has, if
    /// `None`: see [`Archive::export_school`]), for that member's devices and the office. With
    /// `since` (a file opened with [`Archive::open_bundle`]), a document the receiver already
    /// had at those heads carries only what came after.
    pub fn export_bundle(
        &mut self,
        for_member: Option<&str>,
        since: Option<&Bundle>,
    ) -> Result<Vec<u8>> {
        let secret = self.device_secret()?;
        let member = for_member.map(|m| self.find_member(m)).transpose()?;
        // Recorded first, so the file carries its own export in the device's log.
        let target = member.as_ref().map_or("school", |m| m.id.as_str());
        self.audit(super::audit_kind::BUNDLE_EXPORT, target, None)?;
        let bundle = self.bundle_vouching(member.as_ref(), since, true)?;
        let keys = self.recipients(member.as_ref().map(|m| &m.id), &secret.public())?;
        seal::seal(&bundle, &secret, None, Lock::Devices(&keys))
    }

    /// Everything this device holds, for the whole school, sealed to the administrators'
    /// devices: only leadership (领导组) and the archivist may export it.
    pub fn export_school(&mut self, since: Option<&Bundle>) -> Result<Vec<u8>> {
        let me = self.me()?;
        if !(me.active && me.roles.iter().any(|r| r.administers())) {
            return Err(Error::NotPermitted(format!(
                "{}（{}）不能导出全校的档案：全校导出只限领导组或档案管理员，可以只导出自己负责的档案",
                me.name,
                me.role_labels()
            )));
        }
        self.export_bundle(None, since)
    }

    /// Opens a file sealed to this device and checks its signer against the school document
    /// this device holds; merges nothing. For `bundle export --since` and for looking inside.
    pub fn open_bundle(&mut self, bytes: &[u8]) -> Result<Bundle> {
        let view = self.school()?;
        Ok(self.open_sealed(bytes, &view)?.bundle)
    }

    /// Opens a file sealed to this device: its school and its signer (a device registered in
    /// `view` and in good standing) checked before the bundle inside is unpacked
    /// (`seal::open_signed_by`), and its school again once it is.
    fn open_sealed(&mut self, bytes: &[u8], view: &SchoolView) -> Result<seal::Sealed> {
        let secret = self.device_secret()?;
        let school = self.school_id.as_str();
        let sealed = seal::open_signed_by(bytes, Unlock::Device(&secret), |k, from| {
            if from.is_some_and(|s| s != school) {
                return Err(Error::WrongSchool);
            }
            signer_in(view, k).map(|_| ())
        })?;
        if sealed.bundle.school != self.school_id {
            return Err(Error::WrongSchool);
        }
        Ok(sealed)
    }

    /// Registers a new device for `member` in the school document (its id is its automerge
    /// actor, so its changes are attributed to `member` everywhere). Administrators only. A
    /// device already registered to `member` is left as it is; a revoked one is refused
    /// ([`REVOKED_DEVICE`]).
    fn register_device(&mut self, member: &str, key: &DeviceKey, label: &str) -> Result<Member> {
        self.require_admin()?;
        crate::forms::check_line("设备名称", label.trim(), 100)?;
        let m = self.find_member(member)?;
        if !m.active {
            return Err(Error::NotPermitted(format!(
                "{}已停用，不能登记新设备",
                m.name
            )));
        }
        let device = DeviceId::from_key(&key.0);
        let existing = self
            .school()?
            .devices
            .iter()
            .find(|d| d.id == device)
            .cloned();
        match existing {
            Some(d) if d.member != m.id => {
                return Err(Error::NotPermitted("这台设备已登记给另一位成员".into()));
            }
            // A revoked device stays revoked: re-registering it would hand a lost or stolen
            // phone the member's files again.
            Some(d) if d.revoked => {
                return Err(Error::NotPermitted(REVOKED_DEVICE.into()));
            }
            Some(d) if d.key.is_some() => {}
            _ => {
                let record = Device {
                    id: device,
                    member: m.id.clone(),
                    label: label.trim().to_owned(),
                    revoked: false,
                    key: Some(key.to_hex()),
                    registered_at: None,
                    console: false,
                };
                let message = format!("登记设备：{}", m.name);
                self.store.write(|b| {
                    let record = Device {
                        registered_at: Some(b.now_ms()),
                        ..record
                    };
                    b.change(&DocId::School, false, &message, |tx| {
                        school::add_device(tx, &record)
                    })
                })?;
            }
        }
        Ok(m)
    }

    /// A file that sets up a new device for `member` (`shouwang join --bundle`): makes the
    /// device's key, registers the device, then exports what the member may see with the key
    /// inside, sealed to a new passphrase. Administrators only.
    pub fn export_new_device(&mut self, member: &str, label: &str) -> Result<NewDevice> {
        let signer = self.device_secret()?;
        let secret = DeviceSecret::generate();
        let m = self.register_device(member, &secret.public(), label)?;
        let mut bundle = self.bundle_for(Some(&m), None)?;
        bundle.device = Some(secret.device_id());
        let passphrase = Passphrase::generate();
        let file = seal::seal(
            &bundle,
            &signer,
            Some(&secret),
            Lock::Passphrase(&passphrase),
        )?;
        self.audit(super::audit_kind::DEVICE_FILE, m.id.as_str(), None)?;
        Ok(NewDevice {
            device: secret.device_id(),
            bundle: file,
            passphrase,
        })
    }

    /// The plain bundle for `member`'s new device whose network key is `key`, sent by the hub
    /// over the enrollment connection (`peer` is the hub's sync peer name for the device):
    /// registers the device, then records that it will have every exported document as it was
    /// before the export, so its first sync sends only what is new.
    pub fn export_enrollment(
        &mut self,
        member: &str,
        peer: &str,
        key: &DeviceKey,
        label: &str,
    ) -> Result<Vec<u8>> {
        let m = self.register_device(member, key, label)?;
        let before = self.store.all_heads()?;
        let mut bundle = self.bundle_for(Some(&m), None)?;
        bundle.device = Some(DeviceId::from_key(&key.0));
        let bytes = bundle.encode()?;
        let sent: BTreeSet<DocId> = bundle.entries.into_iter().map(|e| e.doc).collect();
        self.store.write(|b| {
            for (doc, heads) in &before {
                if sent.contains(doc) {
                    let heads = crate::store::stored_heads(heads);
                    b.save_sync_state(peer, doc, &shared_state(heads));
                }
            }
            Ok(())
        })?;
        // The hub's delivery log: what the new device receives with its enrollment.
        let sent: Vec<DocId> = sent.into_iter().collect();
        self.store.log_deliveries(
            DeviceId::from_key(&key.0).as_str(),
            m.id.as_str(),
            &sent,
            chrono::Utc::now().timestamp(),
        )?;
        Ok(bytes)
    }

    /// Opens, verifies and merges a sealed file in one transaction. A file not sealed to this
    /// device, from another school, signed by a device this device does not know as registered
    /// and in good standing, or damaged in any byte, is refused whole; importing the same file
    /// again writes nothing. The signer's changes are judged as a connection from that device
    /// would be (see the module docs). Only the documents this device's member may see are
    /// merged; the rest are dropped before merging. Documents the member may no longer see
    /// afterwards are purged.
    pub fn import_bundle(&mut self, bytes: &[u8]) -> Result<ImportReport> {
        self.import_bundle_within(bytes, crate::trust::PEER_DAILY_CHANGE_BYTES)
    }

    /// [`Archive::import_bundle`], keeping at most `daily_bytes` a day (UTC) of changes from a
    /// member who does not administer (the file's signer, all her devices together, with
    /// what sessions with her devices kept): the rest is not merged, and the report says why.
    pub fn import_bundle_within(&mut self, bytes: &[u8], daily_bytes: u64) -> Result<ImportReport> {
        let view = self.school()?;
        let sealed = self.open_sealed(bytes, &view)?;
        let bundle = sealed.bundle;
        let (_, signer) = signer_in(&view, &sealed.signer)?;
        // A file carries no certificate to bound the signer's roles with. Bounding them by the
        // roles this device's school gives the signer *now* would make the verdict depend on
        // what the receiver has heard (a 班主任 who lost her class while offline: her files
        // refused at the office, her changes taken through the hub), so a file's changes are
        // judged against the school state they declare, like every change, and listed for
        // review where the signer's standing has shrunk since (`trust::standing`).
        let mut sender = Sender::for_device(&sealed.signer.0, signer, &signer.roles);
        if let Sender::Device { roles, .. } = &mut sender {
            *roles = None;
        }
        // What an administrator's device says it holds of this member's work in documents it
        // no longer sends (anyone else's word proves nothing: `holds_unsent_work`).
        // An honest file never both sends a document and says it holds it unsent: such a
        // claim is no word on what the school holds.
        let sent: BTreeSet<&DocId> = bundle.entries.iter().map(|e| &e.doc).collect();
        let held: Vec<Held> = if signer.roles.iter().any(|r| r.administers()) {
            bundle
                .held
                .iter()
                .filter(|h| !sent.contains(&h.doc))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        // The school as this device knew it before the file, and as the file was made on: a
        // file's word on what she may no longer hold is taken only from one that knew at
        // least as much (below).
        let ours_before = self
            .store
            .doc(&DocId::School)?
            .map(automerge::Automerge::get_heads)
            .unwrap_or_default();
        let file_school = bundle
            .entries
            .iter()
            .find(|e| e.doc == DocId::School)
            .map(|e| e.heads.clone());
        let total = bundle.entries.len();
        let me = self.me.clone();
        // The signing device is where the file's changes came from: what is listed for review
        // names it (and its member), as a session names its peer, and says it was a file.
        let signing = DeviceId::from_key(&sealed.signer.0);
        let source = crate::store::bundle_source(&signing);
        // Her files share the daily allowance her devices' sessions have (`intake`): changes
        // past it are not kept, not even in the quarantine. An administrator's file relays
        // the whole school's work, as an administrator's device does in a session.
        let quota = (!signer.roles.iter().any(|r| r.administers())).then(|| signer.id.clone());
        let mut report = self.store.write(|b| {
            b.set_source(&source);
            b.set_sender(sender);
            if let Some(member) = quota {
                b.set_daily_quota(member, daily_bytes);
            }
            b.grant_free_rows_for(bytes.len() as u64);
            let (kept, dropped) = scope::entries_in_scope(b, &me, bundle.entries)?;
            let mut report = merge_entries(b, &kept)?;
            report.documents = total;
            report.dropped = dropped;
            record_held(b, &signing, &held)?;
            Ok(report)
        })?;
        // What an administrator's file no longer sends her, she may no longer hold (its
        // school document may not say why: a guardian's withdrawal is in the document
        // withheld); dropped, as the hub's `OutOfScope` is, once it holds no work of hers
        // beyond what the file says the school holds. Only from a file that judged the school
        // as this device knew it or later: not an older one (imported late or again: a
        // pairing made since), nor one made `since` another that left the school out.
        let current = match (&file_school, self.store.doc(&DocId::School)?) {
            (Some(heads), Some(school)) => !school
                .get_changes(heads)
                .iter()
                .any(|c| ours_before.contains(&c.hash())),
            (None, _) => false,
            (Some(_), None) => true,
        };
        // A file is for one member, and sealed to every administrator's device besides (the
        // archivist's phone, the office importing its own file again): what it no longer
        // sends is said of her copies. An administrator may see every part; dropped on her
        // device, the office's copy of the member's work could be the only one (story 18k).
        let for_me = view
            .member(&self.me)
            .is_some_and(|m| !m.roles.iter().any(|r| r.administers()));
        if current && for_me {
            for h in &held {
                if self.store.doc(&h.doc)?.is_some() {
                    self.store.mark_out_of_scope(&h.doc, &h.changes)?;
                }
            }
        }
        report.purged = self.purge_out_of_scope()?;
        Ok(report)
    }

    /// Sets up a new device at `path` from the file the office made for it with
    /// [`Archive::export_new_device`], opened with the passphrase given with it. `member`, if
    /// not empty, must name the member the file is for. Nothing is left at `path` if it fails.
    pub fn join(
        path: &Path,
        file: &[u8],
        passphrase: &Passphrase,
        member: &str,
    ) -> Result<Archive> {
        Archive::join_file(path, file, passphrase, member, None).map(|(a, _)| a)
    }

    /// [`Archive::join`], with the store encrypted at rest with `key` if given, also saying
    /// what was merged: only the documents the member may see are; the others are dropped
    /// before merging and counted in [`ImportReport::dropped`].
    pub fn join_file(
        path: &Path,
        file: &[u8],
        passphrase: &Passphrase,
        member: &str,
        key: Option<&StoreKey>,
    ) -> Result<(Archive, ImportReport)> {
        if is_initialised(path, key)? {
            return Err(Error::archive_exists());
        }
        let sealed = seal::open(file, Unlock::Passphrase(passphrase))?;
        let Some(secret) = sealed.new_device else {
            return Err(Error::invalid(
                "学校文件",
                "这个文件不能用来登记新设备，请让管理员用“shouwang device add”为你导出",
            ));
        };
        if sealed.bundle.device.as_ref() != Some(&secret.device_id()) {
            return Err(Error::Corrupt("文件里的设备编号与设备密钥不符".into()));
        }
        let joining = Joining {
            device: secret.device_id(),
            bundle: sealed.bundle,
            secret: Some(secret),
            signer: Some(sealed.signer),
        };
        let options = JoinOptions {
            key,
            ..JoinOptions::default()
        };
        Archive::join_from(path, joining, member, &options)
    }

    /// Sets up a new device at `path` from the plain bundle the hub sent at enrollment, over a
    /// connection that authenticated the hub (never from a file: a file is sealed, see
    /// [`Archive::join`]). `options` carry the device's network identity.
    pub fn join_enrolled(
        path: &Path,
        bundle_bytes: &[u8],
        member: &str,
        options: &JoinOptions<'_>,
    ) -> Result<Archive> {
        if is_initialised(path, options.key)? {
            return Err(Error::archive_exists());
        }
        let bundle = Bundle::decode(bundle_bytes)?;
        let Some(device) = bundle.device.clone() else {
            return Err(Error::invalid(
                "学校文件",
                "学校服务器发来的文件没有登记这台设备",
            ));
        };
        let joining = Joining {
            bundle,
            device,
            secret: None,
            signer: None,
        };
        Archive::join_from(path, joining, member, options).map(|(a, _)| a)
    }

    fn join_from(
        path: &Path,
        joining: Joining,
        member: &str,
        options: &JoinOptions<'_>,
    ) -> Result<(Archive, ImportReport)> {
        let JoinOptions {
            key,
            meta,
            shared_with,
        } = *options;
        let Joining {
            bundle,
            device,
            secret,
            signer,
        } = joining;
        if !bundle.entries.iter().any(|e| e.doc == DocId::School) {
            return Err(Error::invalid(
                "学校文件",
                "文件里没有学校信息，请让管理员导出完整文件",
            ));
        }
        let existed = path.exists();
        let result = (|| {
            let mut store = Store::open_with_key(path, key)?;
            store.set_device(&device);
            let (me, report) = store.write(|b| {
                // From the hub at enrollment, its documents are the hub's, as at a sync.
                b.set_source(match (&signer, shared_with) {
                    (None, Some(hub)) => hub,
                    _ => "bundle",
                });
                let admit = |view: &SchoolView, registered: Option<&Member>| {
                    if let Some(signer) = &signer {
                        // The school document this file carries is the new device's trust
                        // root: only an administrator sets a device up from a file.
                        let (_, by) = signer_in(view, signer)?;
                        if !by.roles.iter().any(|r| r.administers()) {
                            return Err(Error::NotPermitted(
                                "这个文件不是学校管理员导出的，不能用来登记新设备".into(),
                            ));
                        }
                    }
                    let registered = registered.cloned().ok_or_else(|| {
                        Error::NotPermitted(
                            "学校信息里没有登记这台设备，请让管理员重新为你导出".into(),
                        )
                    })?;
                    let named = member.trim();
                    if !named.is_empty()
                        && registered.id.as_str() != named
                        && registered.name != named
                    {
                        return Err(Error::NotPermitted(format!(
                            "这个文件是为{}准备的，不是“{named}”",
                            registered.name
                        )));
                    }
                    Ok(registered)
                };
                let (me, kept, report) = take_enrollment(b, bundle.entries, &device, admit, meta)?;
                // Only a join: the sync state with the sender, and who this device is.
                if let Some(peer) = shared_with {
                    // The sender has everything it sent: the first sync starts from there
                    // instead of from nothing.
                    for e in &kept {
                        let heads = b.doc(&e.doc)?.map(|d| d.get_heads()).unwrap_or_default();
                        b.save_sync_state(peer, &e.doc, &shared_state(heads));
                    }
                }
                b.set_meta(META_SCHOOL, bundle.school.as_str());
                b.set_meta(META_DEVICE, device.as_str());
                b.set_meta(META_MEMBER, me.id.as_str());
                if let Some(secret) = &secret {
                    b.set_meta(META_DEVICE_KEY, &secret.to_hex());
                }
                Ok((me, report))
            })?;
            Ok((
                Archive {
                    store,
                    school_id: bundle.school.clone(),
                    device,
                    me: me.id,
                },
                report,
            ))
        })();
        if result.is_err() && !existed {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
        result
    }
}
