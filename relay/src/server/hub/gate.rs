//! Who may connect to the hub at all ([`Enrolled`]): decided from memory, before any archive
//! is borrowed. The built-in relay asks it too (`super::relay_access`).

use std::sync::{Mutex, PoisonError};

use shouwang_core::Archive;
use shouwang_core::doc::DocId;
use shouwang_core::ids::DeviceId;
use tracing::info;

use super::super::data::DataDir;
use crate::transport::EndpointId;
use crate::unix_now;

/// A registered device's standing, as the school document says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    Active,
    Revoked,
}

/// Who may connect to the hub at all, kept in memory so that turning a stranger away costs no
/// archive, no blocking task and no store read: the devices the school document registers
/// (revoked ones too: a revoked phone that connects must be told, and wipes itself), and,
/// while an invite is open (issued, unspent, unexpired), anyone, since the device enrolling
/// has no registration yet.
///
/// The devices are read from the school document when the hub starts and whenever the school
/// watcher ([`watch_school`], every 500 ms) sees its heads move; a device the hub enrolls is
/// added at once. Whether an invite is open is recomputed only when the `invites/` or `spent/`
/// directory changes (their modification times, one `stat` each) or the invite that kept it
/// open expires, so an invite issued from another process (`shouwang-relay invite`) opens the
/// door at the next connection.
///
/// A hub restored from a backup is *rebuilding* until an administrator's device has synced:
/// anyone gets past the gate meanwhile (as with an invite open), because the devices enrolled
/// since the backup are not in the restored school document; at `Hello` only an
/// administrator's certificate is taken, from any device ([`super::HubState::check_rebuild`]): one the
/// backup knows may have been revoked since; unless `shouwang-relay admit-phones` let the
/// devices the backup registers sync meanwhile ([`Enrolled::phones_admitted`]).
#[derive(Debug, Default)]
pub(crate) struct Enrolled {
    data: Option<DataDir>,
    devices: std::sync::RwLock<Registered>,
    invites: Mutex<InviteCache>,
    rebuilding: std::sync::atomic::AtomicBool,
    /// The relay connections admitted (`super::relay_access`).
    pub(crate) relay: super::relay_access::RelayPlaces,
}

#[derive(Debug, Default)]
struct Registered {
    /// The school document's heads they were read at.
    heads: String,
    devices: std::collections::HashMap<DeviceId, Standing>,
}

#[derive(Debug, Default)]
struct InviteCache {
    /// Modification times of `invites/` and `spent/` when last computed.
    stamp: Option<(Option<std::time::SystemTime>, Option<std::time::SystemTime>)>,
    /// Open until then (the latest expiry of an open invite), or closed.
    open_until: Option<i64>,
    /// How many times the invites were read (each a read of every invite file).
    scans: u64,
}

impl Enrolled {
    pub(crate) fn new(data: DataDir) -> Enrolled {
        let rebuilding = data.rebuilding_marker().exists();
        Enrolled {
            data: Some(data),
            rebuilding: rebuilding.into(),
            ..Enrolled::default()
        }
    }

    /// Whether the hub is rebuilding from a restored backup (ended by an administrator's
    /// device's sync, [`Enrolled::rebuilt`]).
    pub(crate) fn rebuilding(&self) -> bool {
        self.rebuilding.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// While rebuilding, whether the devices the restored school document registers may sync
    /// before an administrator's has: said by hand (`shouwang-relay admit-phones` writes it
    /// into the mark) for a school with no administrator's device that can sync first. Read
    /// from the mark at each connection while rebuilding, so a serving hub takes it at once;
    /// a mark that cannot be read admits nobody.
    pub(crate) fn phones_admitted(&self) -> bool {
        self.rebuilding()
            && self.data.as_ref().is_some_and(|data| {
                std::fs::read(data.rebuilding_marker())
                    .is_ok_and(|said| said == super::super::data::ADMIT_PHONES)
            })
    }

    /// An administrator's device has synced: the school document is whole again.
    pub(super) fn rebuilt(&self) {
        if self
            .rebuilding
            .swap(false, std::sync::atomic::Ordering::Relaxed)
            && let Some(data) = &self.data
        {
            if let Err(e) = std::fs::remove_file(data.rebuilding_marker()) {
                tracing::warn!("rebuilding marker: {e}");
            }
            info!("rebuilt: an administrator's device has synced since the restore");
        }
    }

    /// Reads the registered devices from `archive`'s school document.
    pub(crate) fn refresh(&self, archive: &mut Archive) {
        let Ok(heads) = archive.store().heads(&DocId::School) else {
            return;
        };
        let Ok(school) = archive.school() else {
            return;
        };
        let devices = school
            .devices
            .iter()
            .map(|d| {
                let standing = if d.revoked {
                    Standing::Revoked
                } else {
                    Standing::Active
                };
                (d.id.clone(), standing)
            })
            .collect();
        let mut r = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        // A device enrolled since the document was read stays (its registration is in the
        // document by now, or will be at the next refresh).
        let enrolled_meanwhile: Vec<DeviceId> = r
            .devices
            .iter()
            .filter(|(_, s)| **s == Standing::Active)
            .map(|(id, _)| id.clone())
            .collect();
        r.devices = devices;
        for id in enrolled_meanwhile {
            r.devices.entry(id).or_insert(Standing::Active);
        }
        r.heads = heads;
        drop(r);
        // A member deactivated since (here, at the office, on an administrator's phone that
        // synced): her open invites close, so they no longer hold the gate and the relay open
        // (the hub would refuse them anyway). Only a member the school knows as inactive: one
        // added after this read has her invite written after it.
        if let Some(data) = &self.data
            && school.members.iter().any(|m| !m.active)
        {
            let inactive = |m: &str| {
                school
                    .members
                    .iter()
                    .any(|x| x.id.as_str() == m && !x.active)
            };
            if let Err(e) = data.close_invites_of(unix_now(), inactive) {
                tracing::warn!("closing a deactivated member's invites: {e}");
            }
        }
    }

    /// The heads of the school document last read.
    pub(crate) fn seen_heads(&self) -> String {
        self.devices
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .heads
            .clone()
    }

    /// A device just enrolled by this hub.
    pub(crate) fn register(&self, id: DeviceId) {
        self.devices
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .devices
            .entry(id)
            .or_insert(Standing::Active);
    }

    /// The device's standing, if registered.
    pub(crate) fn standing(&self, id: &DeviceId) -> Option<Standing> {
        self.devices
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .devices
            .get(id)
            .copied()
    }

    /// Whether an invite is open now.
    pub(crate) fn invite_open(&self) -> bool {
        let Some(data) = &self.data else {
            return false;
        };
        let now = unix_now();
        let mtime = |dir: &str| {
            std::fs::metadata(data.root().join(dir))
                .and_then(|m| m.modified())
                .ok()
        };
        let stamp = (mtime("invites"), mtime("spent"));
        // A directory's time has the kernel's coarse clock: two changes a few milliseconds
        // apart may leave it unchanged, so a stamp this recent is not trusted. One in the
        // future (the clock was set back since) is: a change now would move it.
        let settled = |t: Option<std::time::SystemTime>| {
            t.is_none_or(|t| {
                t.elapsed()
                    .map_or(true, |e| e > std::time::Duration::from_secs(1))
            })
        };
        let mut cache = self.invites.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = cache.stamp == Some(stamp)
            && settled(stamp.0)
            && settled(stamp.1)
            && cache.open_until.is_none_or(|until| until > now);
        if !fresh {
            cache.open_until = data.open_invites_until(now);
            cache.stamp = Some(stamp);
            cache.scans += 1;
        }
        cache.open_until.is_some_and(|until| until > now)
    }
}

impl crate::transport::Admission for Enrolled {
    fn admits(&self, remote: &EndpointId) -> bool {
        self.knows(remote) || self.invite_open() || self.rebuilding()
    }

    fn knows(&self, remote: &EndpointId) -> bool {
        self.standing(&DeviceId::from_key(remote.as_bytes()))
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A restored hub whose school has no administrator's device that can sync (its only one
    /// was on the PC whose disk died) is not locked for good: `admit-phones` lets the phones
    /// the backup registers sync, and a hub already serving takes it at its next connection.
    /// The hub itself still writes nothing (its school lacks what was made since the backup):
    /// the mark stays, invites and the console still wait for an administrator's device.
    #[test]
    fn registered_phones_are_admitted_by_hand_and_the_hub_still_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::server::ServerConfig::loopback(dir.path().join("hub"));
        let data = config.data();
        crate::server::invite::init_school(
            &data,
            &shouwang_core::archive::SchoolSetup::sample("学校服务器"),
        )
        .unwrap();
        std::fs::write(data.rebuilding_marker(), b"").unwrap();
        let serving = Enrolled::new(config.data());
        assert!(serving.rebuilding() && !serving.phones_admitted());
        let said = crate::server::commands::admit_phones_command(&config).unwrap();
        assert!(said.contains("同步"), "{said}");
        assert!(
            serving.phones_admitted(),
            "the serving hub still turns them away"
        );
        assert!(serving.rebuilding(), "the hub may write again");
        assert!(
            data.check_not_rebuilding().is_err(),
            "invites and the console are open"
        );
        std::fs::remove_file(data.rebuilding_marker()).unwrap();
        assert!(crate::server::commands::admit_phones_command(&config).is_err());
    }

    /// The invites are read again only when their directories change. A directory whose time
    /// is in the future (the clock set back since) was never taken as settled, so every
    /// stranger's connection read every invite file again.
    #[test]
    fn invites_stamped_in_the_future_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("hub"));
        for sub in ["invites", "spent"] {
            let d = data.root().join(sub);
            std::fs::create_dir_all(&d).unwrap();
            let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
            std::fs::File::open(&d)
                .unwrap()
                .set_modified(later)
                .unwrap();
        }
        let gate = Enrolled::new(data);
        for _ in 0..3 {
            assert!(!gate.invite_open());
        }
        let scans = gate.invites.lock().unwrap().scans;
        assert_eq!(scans, 1);
    }
}
