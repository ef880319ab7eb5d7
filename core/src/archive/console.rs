//! Writing a hub's archive as one of its members: what the office console (`apps/office`)
//! changes.
//!
//! Every other device judges a change by the member its actor is registered to
//! ([`crate::trust::author_of`]), and shows that member in the file's history. So what a member
//! does in the console is written under a device of *theirs*: their **console device**,
//! registered in the school document like any device (`school.devices/<id>` = {member, label
//! [`CONSOLE_DEVICE_LABEL`], key, registered_at, `console: true`}) by the hub's own device (an
//! administrator's) the first time the member writes there, and reused afterwards (found by
//! member and the `console` marker; a member has at most one that is not revoked). Its key is a
//! fresh ed25519 key ([`DeviceSecret`]) whose secret is dropped at once: a console device never
//! syncs, signs or opens a sealed file, so nothing needs the secret, and nobody can present
//! the key (the hub and its relay see a registered key nobody holds; bundles are not sealed to
//! it).
//!
//! [`Archive::write_as_member`] lends the archive to the member for one closure: the store's
//! actor is the console device's (in a re-based document its actor for that generation, as for
//! any device: [`crate::store::Batch::change`]), and the archive's device and member are the
//! console device and the member, so the core's own checks (`require_admin`, `may_see`, a
//! 班主任's classes, the field rules of `resolve`) run against the member who clicked. The
//! hub's actor, device and member are back when the closure returns, fails or panics (a guard
//! restores them on drop).
//!
//! Deactivating a member revokes every device of theirs, the console device with them
//! ([`Archive::deactivate_member`]). A deactivated member is refused here, and a revoked console
//! device is never written with again (a member made active again would get a new one). A
//! console device is not revoked on its own (`device revoke`, `device lost` refuse it): her
//! next write would register another, so the refusal names what does stop her.
//!
//! Registering is a write of its own, before the closure runs: a member's first write that the
//! core then refuses (bad input, no right to it) leaves the registration behind.

use automerge::ActorId;

use super::Archive;
use crate::device_key::DeviceSecret;
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, MemberId};
use crate::school::{self, Device};

/// The label of a member's console device (shown in 成员与设备 and `device list`).
pub const CONSOLE_DEVICE_LABEL: &str = "办公室网页";

/// The archive lent to a member for writing; dropping it gives the archive back its own
/// actor, device and member, on every path (an error or a panic included).
struct WritingAs<'a> {
    archive: &'a mut Archive,
    own_actor: ActorId,
    own_device: DeviceId,
    own_member: MemberId,
}

impl<'a> WritingAs<'a> {
    fn lend(archive: &'a mut Archive, member: MemberId, device: DeviceId) -> WritingAs<'a> {
        let own_actor = archive.store.actor().clone();
        archive.store.set_device(&device);
        let own_device = std::mem::replace(&mut archive.device, device);
        let own_member = std::mem::replace(&mut archive.me, member);
        WritingAs {
            archive,
            own_actor,
            own_device,
            own_member,
        }
    }
}

impl Drop for WritingAs<'_> {
    fn drop(&mut self) {
        self.archive.store.set_actor(self.own_actor.clone());
        self.archive.device = self.own_device.clone();
        self.archive.me = self.own_member.clone();
    }
}

impl Archive {
    /// The console device of `member` that is not revoked, if they have one.
    pub fn console_device(&mut self, member: &MemberId) -> Result<Option<DeviceId>> {
        Ok(self
            .school()?
            .devices
            .iter()
            .find(|d| d.console && d.member == *member && !d.revoked)
            .map(|d| d.id.clone()))
    }

    /// Runs `f` with this archive written as `member` through their console device, registered
    /// first if they have none (see the module docs). An unknown or deactivated member is
    /// refused before anything is written.
    pub fn write_as_member<R, E: From<Error>>(
        &mut self,
        member: &MemberId,
        f: impl FnOnce(&mut Archive) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E> {
        let device = self.console_device_for_writing(member)?;
        let lent = WritingAs::lend(self, member.clone(), device);
        f(&mut *lent.archive)
    }

    /// The member's console device, registered by this archive's own device (an
    /// administrator's) if they have none.
    fn console_device_for_writing(&mut self, member: &MemberId) -> Result<DeviceId> {
        let m = match self.school()?.member(member) {
            Some(m) if m.active => m.clone(),
            Some(m) => return Err(Error::NotPermitted(format!("{} 已被停用", m.name))),
            None => return Err(Error::not_found("成员", member)),
        };
        if let Some(device) = self.console_device(member)? {
            return Ok(device);
        }
        self.require_admin()?;
        let key = DeviceSecret::generate().public();
        let device = DeviceId::from_key(&key.0);
        let message = format!("登记{CONSOLE_DEVICE_LABEL}设备：{}", m.name);
        self.store.write(|b| {
            let record = Device {
                id: device.clone(),
                member: m.id.clone(),
                label: CONSOLE_DEVICE_LABEL.to_owned(),
                revoked: false,
                key: Some(key.to_hex()),
                registered_at: Some(b.now_ms()),
                console: true,
            };
            b.change(&DocId::School, false, &message, |tx| {
                school::add_device(tx, &record)
            })
        })?;
        Ok(device)
    }
}

#[cfg(test)]
mod tests {
    use automerge::ReadDoc;

    use super::*;
    use crate::archive::SchoolSetup;
    use crate::roles::Role;

    struct School {
        archive: Archive,
        _dir: tempfile::TempDir,
    }

    /// A school with an archivist, a class and its 班主任, and one child in it.
    fn school() -> School {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Archive::create_school(
            &dir.path().join("hub.db"),
            &SchoolSetup::sample("学校服务器"),
        )
        .unwrap();
        a.add_member("晁月静", &[Role::Archivist], None, None)
            .unwrap();
        a.add_member("王瑞侠", &[Role::HeadTeacher], None, None)
            .unwrap();
        a.add_class("三年级(1)班", Some("王瑞侠")).unwrap();
        let table: Vec<Vec<String>> = [
            ["学籍号", "姓名", "性别", "出生日期", "班级"],
            ["G340321201501", "王小雨", "女", "2017-03-05", "三年级(1)班"],
        ]
        .iter()
        .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
        .collect();
        a.import_roster(&crate::roster::parse_table(&table).unwrap())
            .unwrap();
        School {
            archive: a,
            _dir: dir,
        }
    }

    fn member(a: &mut Archive, name: &str) -> MemberId {
        a.find_member(name).unwrap().id
    }

    fn console_devices(a: &mut Archive, m: &MemberId) -> Vec<Device> {
        a.school()
            .unwrap()
            .devices
            .iter()
            .filter(|d| d.console && d.member == *m)
            .cloned()
            .collect()
    }

    /// The member the last change to `doc` is attributed to, by its actor.
    fn author_of_last(a: &mut Archive, doc: &DocId) -> (String, DeviceId) {
        let school = a.school().unwrap();
        let store = a.store();
        let d = store.doc(doc).unwrap().unwrap();
        let heads = d.get_heads();
        let change = d.get_change_by_hash(&heads[0]).unwrap();
        let (m, device) = crate::trust::author_of(&school, change.actor_id()).unwrap();
        (m.name.clone(), device)
    }

    fn own_identity(a: &mut Archive) -> (ActorId, DeviceId, MemberId) {
        (
            a.store().actor().clone(),
            a.device().clone(),
            a.me_id().clone(),
        )
    }

    #[test]
    fn the_hub_is_itself_again_after_an_error_or_a_panic_inside() {
        let mut s = school();
        let a = &mut s.archive;
        let own = own_identity(a);
        let archivist = member(a, "晁月静");
        let out: Result<()> = a.write_as_member(&archivist, |a| {
            assert_eq!(a.me_id(), &archivist);
            assert_ne!(a.device(), &own.1);
            let device = a.device().actor();
            assert_eq!(a.store().actor(), &device);
            a.add_class("四年级(2)班", None)?;
            Err(Error::invalid("测试", "出错"))
        });
        assert!(matches!(out, Err(Error::InvalidInput { .. })), "{out:?}");
        assert_eq!(own_identity(a), own);
        // The hub's next write is its own again.
        a.add_class("五年级(1)班", None).unwrap();
        assert_eq!(author_of_last(a, &DocId::School).0, "张长友");

        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<()> = a.write_as_member(&archivist, |_| panic!("测试"));
        }));
        assert!(panicked.is_err());
        assert_eq!(own_identity(a), own);
        // The member's own check failing inside leaves the hub itself too.
        let head = member(a, "王瑞侠");
        let refused = a.write_as_member(&head, |a| a.add_class("六年级(1)班", None));
        assert!(
            matches!(refused, Err(Error::NotPermitted(_))),
            "{refused:?}"
        );
        assert_eq!(own_identity(a), own);
    }

    #[test]
    fn a_member_writes_under_one_console_device_of_theirs() {
        let mut s = school();
        let a = &mut s.archive;
        let archivist = member(a, "晁月静");
        assert_eq!(a.console_device(&archivist).unwrap(), None);
        a.write_as_member(&archivist, |a| a.add_class("四年级(2)班", None))
            .unwrap();
        let (name, device) = author_of_last(a, &DocId::School);
        assert_eq!(name, "晁月静");
        let registered = console_devices(a, &archivist);
        assert_eq!(registered.len(), 1, "{registered:?}");
        assert_eq!(registered[0].id, device);
        assert_eq!(registered[0].label, CONSOLE_DEVICE_LABEL);
        assert!(registered[0].key.is_some() && !registered[0].revoked);

        // Again: the same device.
        a.write_as_member(&archivist, |a| a.add_class("四年级(3)班", None))
            .unwrap();
        assert_eq!(author_of_last(a, &DocId::School), (name, device));
        assert_eq!(console_devices(a, &archivist).len(), 1);
    }

    /// A console device cannot be revoked on its own (her next write at the console would
    /// register another): the refusal says what stops her, and changes nothing.
    #[test]
    fn a_console_device_is_not_revoked_on_its_own() {
        let mut s = school();
        let a = &mut s.archive;
        let head = member(a, "王瑞侠");
        a.write_as_member(&head, |a| {
            a.add_record(&crate::archive::RecordInput {
                kind: "家访".into(),
                child: Some("王小雨".into()),
                class: None,
                date: "2026-11-20".into(),
                fields: vec![("notes".into(), "奶奶在家".into())],
            })
        })
        .unwrap();
        let device = console_devices(a, &head)[0].id.clone();
        let e = a.revoke_device(device.as_str()).unwrap_err();
        assert!(
            matches!(&e, Error::NotPermitted(m) if m.contains("停用该成员")),
            "{e}"
        );
        let e = a.report_lost_device(device.as_str()).unwrap_err();
        assert!(matches!(e, Error::NotPermitted(_)), "{e}");
        assert!(!console_devices(a, &head)[0].revoked);
        assert_eq!(console_devices(a, &head).len(), 1);
    }

    #[test]
    fn a_re_based_file_is_written_under_the_console_device_of_its_generation() {
        let mut s = school();
        let a = &mut s.archive;
        a.rebase_child("王小雨", "更正身份证号").unwrap();
        let head = member(a, "王瑞侠");
        a.write_as_member(&head, |a| {
            a.edit_child(
                "王小雨",
                "guardian",
                &[("phone".to_owned(), "13800001111".to_owned())],
            )
        })
        .unwrap();
        let child = a.find_child("王小雨").unwrap();
        let doc = DocId::Child(child.clone());
        let (name, device) = author_of_last(a, &doc);
        assert_eq!(name, "王瑞侠");
        assert_eq!(Some(device.clone()), a.console_device(&head).unwrap());
        // Under the generation's actor, not the bare device id.
        let d = a.store().doc(&doc).unwrap().unwrap().clone();
        let actor = d
            .get_change_by_hash(&d.get_heads()[0])
            .unwrap()
            .actor_id()
            .clone();
        assert_ne!(actor, device.actor());
        let history = a.child_file("王小雨").unwrap().history;
        assert!(history.iter().any(|h| h.member == "王瑞侠"), "{history:?}");
    }

    /// The actor of the last change to `doc`.
    fn actor_of_last(a: &mut Archive, doc: &DocId) -> ActorId {
        let d = a.store().doc(doc).unwrap().unwrap().clone();
        d.get_change_by_hash(&d.get_heads()[0])
            .unwrap()
            .actor_id()
            .clone()
    }

    #[test]
    fn a_restored_hub_writes_for_itself_and_at_the_console_under_new_actors_of_the_same_devices() {
        let mut s = school();
        let path = s.archive.store().path().to_owned();
        let a = &mut s.archive;
        let archivist = member(a, "晁月静");
        a.write_as_member(&archivist, |a| a.add_class("四年级(2)班", None))
            .unwrap();
        let (_, console) = author_of_last(a, &DocId::School);
        let hub = a.device().clone();
        a.rebase_child("王小雨", "更正身份证号").unwrap();
        let child = DocId::Child(a.find_child("王小雨").unwrap());
        let before = [
            a.store().actor().clone(),
            actor_of_last(a, &child),
            console.actor(),
        ];

        let epoch = a.store().begin_epoch().unwrap();
        a.add_class("五年级(1)班", None).unwrap();
        let own = actor_of_last(a, &DocId::School);
        assert_eq!(own, crate::ids::Epoch::actor_of(Some(&epoch), &hub));
        assert_eq!(
            author_of_last(a, &DocId::School),
            ("张长友".into(), hub.clone())
        );
        a.write_as_member(&archivist, |a| a.add_class("五年级(2)班", None))
            .unwrap();
        let at_console = actor_of_last(a, &DocId::School);
        assert_eq!(
            at_console,
            crate::ids::Epoch::actor_of(Some(&epoch), &console)
        );
        assert_eq!(
            author_of_last(a, &DocId::School),
            ("晁月静".into(), console)
        );
        // In the re-based file: the generation's tag after the epoch, still the hub's.
        a.edit_child(
            "王小雨",
            "guardian",
            &[("phone".to_owned(), "13800002222".to_owned())],
        )
        .unwrap();
        let in_file = actor_of_last(a, &child);
        assert!(
            in_file.to_hex_string().starts_with(&own.to_hex_string()),
            "{in_file}"
        );
        assert_eq!(author_of_last(a, &child), ("张长友".into(), hub.clone()));
        for actor in [&own, &at_console, &in_file] {
            assert!(!before.contains(actor), "{actor} was written under before");
        }
        assert_eq!(a.store().actor(), &own);

        // Opened again, it stays in its epoch.
        let School { archive, _dir: dir } = s;
        drop(archive);
        let mut again = Archive::open(&path).unwrap();
        assert_eq!(again.store().actor(), &own);
        drop(dir);
    }

    #[test]
    fn deactivating_a_member_revokes_their_console_device_and_they_write_no_more() {
        let mut s = school();
        let a = &mut s.archive;
        let archivist = member(a, "晁月静");
        a.write_as_member(&archivist, |a| a.add_class("四年级(2)班", None))
            .unwrap();
        let device = a.console_device(&archivist).unwrap().unwrap();
        assert_eq!(a.deactivate_member("晁月静").unwrap(), 1);
        assert_eq!(a.console_device(&archivist).unwrap(), None);
        let school = a.school().unwrap();
        assert!(school.devices.iter().any(|d| d.id == device && d.revoked));
        let heads = a.store().doc(&DocId::School).unwrap().unwrap().get_heads();
        let refused = a.write_as_member(&archivist, |a| a.add_class("四年级(3)班", None));
        assert!(
            matches!(refused, Err(Error::NotPermitted(_))),
            "{refused:?}"
        );
        assert_eq!(
            a.store().doc(&DocId::School).unwrap().unwrap().get_heads(),
            heads,
            "nothing written, no new console device"
        );
    }
}
