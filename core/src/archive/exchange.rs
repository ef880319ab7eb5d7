//! Exchanging changes by file: export and import bundles, and setting up a second device from
//! one.

use std::path::Path;

use automerge::ReadDoc;
use serde::Serialize;

use super::{Archive, META_DEVICE, META_MEMBER, META_SCHOOL, is_initialised, scope};
use crate::bundle::{Bundle, Entry};
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::ids::DeviceId;
use crate::school::{self, Device, Member};
use crate::store::{Batch, Store, StoreKey};

/// What importing a bundle did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Documents in the bundle.
    pub documents: usize,
    /// Documents that gained changes.
    pub changed: usize,
    /// Changes that were new to this device.
    pub new_changes: usize,
    /// Changes not merged: refused by the trust rules, or depending on one that was.
    pub refused: usize,
    /// Why the first of them was not merged.
    pub refused_reason: Option<String>,
    /// Documents of the bundle left out because this device's member may not see them.
    pub dropped: usize,
    /// Documents this device held that its member may no longer see, once the bundle was
    /// merged (a pairing ended at the office): purged.
    pub purged: usize,
}

/// Merges every entry; refuses the lot if any document would be left missing changes it
/// depends on (a bundle cut short, or one made "since" a state this device does not have).
/// How [`Archive::join_with`] sets a new device up.
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

/// A sync state recording that the peer has everything up to `heads`.
pub(crate) fn shared_state(heads: Vec<automerge::ChangeHash>) -> automerge::sync::State {
    let mut state = automerge::sync::State::new();
    state.shared_heads = heads;
    state
}

fn merge_entries(b: &mut Batch<'_>, entries: &[Entry]) -> Result<ImportReport> {
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

impl Archive {
    /// Encodes the documents `for_member` may see (everything this device has, if `None`). With
    /// `since`, a document the receiver already had at those heads carries only what came
    /// after.
    pub fn export_bundle(
        &mut self,
        for_member: Option<&str>,
        since: Option<&Bundle>,
    ) -> Result<Vec<u8>> {
        let member = for_member.map(|m| self.find_member(m)).transpose()?;
        let since_heads = since.map(Bundle::heads).unwrap_or_default();
        if let Some(s) = since
            && s.school != self.school_id
        {
            return Err(Error::WrongSchool);
        }
        let mut entries = Vec::new();
        for id in self.store.doc_ids()? {
            if let Some(m) = &member
                && !self.may_see(m, &id)?
            {
                continue;
            }
            let Some(doc) = self.store.doc(&id)? else {
                continue;
            };
            let heads = doc.get_heads();
            let data = match since_heads.get(&id) {
                Some(h) if *h == heads => continue,
                Some(h) if h.iter().all(|x| doc.get_change_by_hash(x).is_some()) => {
                    doc.save_after(h)
                }
                _ => doc.save(),
            };
            entries.push(Entry {
                doc: id,
                heads,
                data,
            });
        }
        Bundle {
            school: self.school_id.clone(),
            device: None,
            entries,
        }
        .encode()
    }

    /// Everything this device holds, for the whole school: only leadership (领导组) and the
    /// archivist may export it.
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

    /// Registers a new device for `member` in the school document (its id is its automerge
    /// actor, so its changes are attributed to `member` everywhere). Administrators only.
    fn register_device(&mut self, member: &str, device: &DeviceId, label: &str) -> Result<Member> {
        self.require_admin()?;
        crate::forms::check_line("设备名称", label.trim(), 100)?;
        let m = self.find_member(member)?;
        if !m.active {
            return Err(Error::NotPermitted(format!(
                "{}已停用，不能登记新设备",
                m.name
            )));
        }
        let existing = self.school()?.devices.into_iter().find(|d| &d.id == device);
        match existing {
            Some(d) if d.member != m.id => {
                return Err(Error::NotPermitted("这台设备已登记给另一位成员".into()));
            }
            Some(_) => {}
            None => {
                let record = Device {
                    id: device.clone(),
                    member: m.id.clone(),
                    label: label.trim().to_owned(),
                    revoked: false,
                    registered_at: None,
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

    /// A bundle that sets up a new device for `member` (`shouwang join --bundle`): registers
    /// the device first, then exports what the member may see, naming the device.
    /// Administrators only.
    pub fn export_new_device(&mut self, member: &str, label: &str) -> Result<(DeviceId, Vec<u8>)> {
        let device = DeviceId::random();
        let m = self.register_device(member, &device, label)?;
        let bytes = self.export_bundle(Some(m.id.as_str()), None)?;
        let mut bundle = Bundle::decode(&bytes)?;
        bundle.device = Some(device.clone());
        Ok((device, bundle.encode()?))
    }

    /// [`Archive::export_bundle`] for `member`'s new device `device`, the sync peer `peer`, at
    /// enrollment: registers the device, then records that it will have every exported
    /// document as it was before the export, so its first sync sends only what is new.
    pub fn export_enrollment(
        &mut self,
        member: &str,
        peer: &str,
        device: &DeviceId,
        label: &str,
    ) -> Result<Vec<u8>> {
        self.register_device(member, device, label)?;
        let before = self.store.all_heads()?;
        let mut bundle = Bundle::decode(&self.export_bundle(Some(member), None)?)?;
        bundle.device = Some(device.clone());
        let bytes = bundle.encode()?;
        let sent: std::collections::BTreeSet<DocId> =
            bundle.entries.into_iter().map(|e| e.doc).collect();
        self.store.write(|b| {
            for (doc, heads) in &before {
                if sent.contains(doc) {
                    let heads = heads.split(',').filter_map(|h| h.parse().ok()).collect();
                    b.save_sync_state(peer, doc, &shared_state(heads));
                }
            }
            Ok(())
        })?;
        Ok(bytes)
    }

    /// Verifies and merges a bundle in one transaction. A bundle from another school, or a
    /// damaged one, is refused whole; importing the same bundle again writes nothing. Only the
    /// documents this device's member may see (judged against the school document as the
    /// bundle leaves it) are merged; the rest are dropped before merging. Documents the member
    /// may no longer see afterwards are purged.
    pub fn import_bundle(&mut self, bytes: &[u8]) -> Result<ImportReport> {
        let bundle = Bundle::decode(bytes)?;
        if bundle.school != self.school_id {
            return Err(Error::WrongSchool);
        }
        let total = bundle.entries.len();
        let me = self.me.clone();
        let mut report = self.store.write(|b| {
            b.set_source("bundle");
            let (kept, dropped) = scope::entries_in_scope(b, &me, bundle.entries)?;
            let mut report = merge_entries(b, &kept)?;
            report.documents = total;
            report.dropped = dropped;
            Ok(report)
        })?;
        report.purged = self.purge_out_of_scope()?;
        Ok(report)
    }

    /// Sets up a new device at `path` from a bundle that holds the school document, for the
    /// member named `member` (id or name). Nothing is left at `path` if it fails.
    pub fn join(
        path: &Path,
        bundle_bytes: &[u8],
        member: &str,
        device_label: &str,
    ) -> Result<Archive> {
        Archive::join_with(
            path,
            bundle_bytes,
            member,
            device_label,
            &JoinOptions::default(),
        )
    }

    /// [`Archive::join`] with [`JoinOptions`]: encryption, a network identity, and the peer
    /// the bundle came from.
    pub fn join_with(
        path: &Path,
        bundle_bytes: &[u8],
        member: &str,
        device_label: &str,
        options: &JoinOptions<'_>,
    ) -> Result<Archive> {
        Archive::join_with_report(path, bundle_bytes, member, device_label, options).map(|(a, _)| a)
    }

    /// [`Archive::join_with`], also saying what was merged: only the documents the member may
    /// see are; the others (a school-wide bundle given to a volunteer) are dropped before
    /// merging and counted in [`ImportReport::dropped`].
    pub fn join_with_report(
        path: &Path,
        bundle_bytes: &[u8],
        member: &str,
        device_label: &str,
        options: &JoinOptions<'_>,
    ) -> Result<(Archive, ImportReport)> {
        let JoinOptions {
            key,
            meta,
            shared_with,
        } = *options;
        if is_initialised(path)? {
            return Err(Error::NotPermitted(format!(
                "{} 已经是一个档案库",
                path.display()
            )));
        }
        let bundle = Bundle::decode(bundle_bytes)?;
        if !bundle.entries.iter().any(|e| e.doc == DocId::School) {
            return Err(Error::invalid(
                "学校文件",
                "文件里没有学校信息，请让管理员导出完整文件",
            ));
        }
        let Some(device) = bundle.device.clone() else {
            return Err(Error::invalid(
                "学校文件",
                "这个文件不能用来登记新设备，请让管理员用“shouwang device add”为你导出",
            ));
        };
        let _ = device_label; // the label the administrator registered is the one shown
        let existed = path.exists();
        let total = bundle.entries.len();
        let result = (|| {
            let mut store = Store::open_with_key(path, key)?;
            store.set_actor(device.actor());
            let (me, report) = store.write(|b| {
                b.set_source("bundle");
                let view = scope::school_after(b, &bundle.entries)?;
                let registered = view
                    .devices
                    .iter()
                    .find(|d| d.id == device)
                    .and_then(|d| view.member(&d.member))
                    .cloned()
                    .ok_or_else(|| {
                        Error::NotPermitted(
                            "学校信息里没有登记这台设备，请让管理员重新为你导出".into(),
                        )
                    })?;
                let named = member.trim();
                if !named.is_empty() && registered.id.as_str() != named && registered.name != named
                {
                    return Err(Error::NotPermitted(format!(
                        "这个文件是为{}准备的，不是“{named}”",
                        registered.name
                    )));
                }
                let me = registered;
                let (kept, dropped) = scope::entries_in_scope(b, &me.id, bundle.entries)?;
                let mut report = merge_entries(b, &kept)?;
                report.documents = total;
                report.dropped = dropped;
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
                for (key, value) in meta {
                    b.set_meta(key, value);
                }
                Ok((me, report))
            })?;
            Ok((
                Archive {
                    store,
                    school_id: bundle.school.clone(),
                    device,
                    me: me.id,
                    school_cache: None,
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
