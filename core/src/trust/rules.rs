//! [`validate`]: the rules table of the module docs, as code.

use std::cell::Cell;

use automerge::{Automerge, ObjType, ScalarValue};

use super::MAX_CHANGE_BYTES;
use super::paths::{self, Action, Write};
use crate::doc::access::Version;
use crate::doc::{DocId, layout::*};
use crate::ids::{ClassId, DeviceId, MemberId};
use crate::kinds::{DocPart, RecordKind};
use crate::roles::Role;
use crate::school::{Member, SchoolView};

/// The decision on one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Never merged, and never passed on; the reason is a Chinese sentence.
    Refuse(String),
    /// Cannot be judged yet: the auth state it declares is not here. Neither merged nor refused.
    Defer(String),
}

/// The state a change is judged against (see the module docs for which one).
#[derive(Debug, Clone)]
pub struct AuthState<'a> {
    pub school: &'a SchoolView,
    /// The class the file's child is in, for a child's shared file or private part.
    pub child_class: Option<ClassId>,
    /// The guardian consent the child's shared file records (for a change to the shared file:
    /// at the change's dependencies; to the private part: at the child heads it declares).
    pub consent: Option<crate::consent::Consent>,
}

fn refuse(reason: impl Into<String>) -> Verdict {
    Verdict::Refuse(reason.into())
}

/// The device an actor belongs to: the device id itself, maybe followed by a restore epoch
/// (a copy of the device's restored from a backup, [`crate::ids::Epoch`]) and then, in a
/// re-based document's generation, by a generation tag the school recorded.
///
/// An epoch only for a device whose copy is restored from a backup: an administrator's (the
/// hub's member administers) or a console device (the hub writes for it). A member's phone is
/// never restored, and one that could write under any epoch would make a document's writers
/// countless (a re-basing names each, `doc::covered`).
pub fn device_of_actor(school: &SchoolView, actor: &automerge::ActorId) -> Option<DeviceId> {
    let hex = actor.to_hex_string();
    let device = school
        .devices
        .iter()
        .find(|d| hex.starts_with(d.id.as_str()))?;
    let after = &hex[device.id.as_str().len()..];
    let tag = crate::ids::Epoch::strip(after);
    let restorable = || {
        device.console
            || school
                .member(&device.member)
                .is_some_and(|m| m.roles.iter().any(|r| r.administers()))
    };
    if tag.len() != after.len() && !restorable() {
        return None;
    }
    (tag.is_empty() || school.rebases.iter().any(|r| r.generation == tag))
        .then(|| device.id.clone())
}

/// The member who made `obj` (a record, a 进步档案 entry) of `doc`, read at `at`: the member
/// of the device whose operation created it, or for an object the base change of a re-based
/// document copied, the `author` it copied (an administrator vouched for it by recording the
/// generation).
pub fn object_author(
    school: &SchoolView,
    doc: &Automerge,
    doc_id: &DocId,
    at: &[automerge::ChangeHash],
    obj: &automerge::ObjId,
) -> Option<MemberId> {
    if let (automerge::ObjId::Id(counter, actor, _), Some(r)) = (obj, school.rebase_of(doc_id))
        && actor.to_hex_string() == r.actor
        && *counter <= r.max_op
    {
        let author = Version::at(doc, at).str(obj, R_AUTHOR)?;
        return school.member(&MemberId(author)).map(|m| m.id.clone());
    }
    let actor = paths::creator(obj)?;
    author_of(school, actor).map(|(m, _)| m.id.clone())
}

/// The member a change's actor is registered to, and its device.
pub fn author_of<'a>(
    school: &'a SchoolView,
    actor: &automerge::ActorId,
) -> Option<(&'a Member, DeviceId)> {
    let id = device_of_actor(school, actor)?;
    let device = school.devices.iter().find(|d| d.id == id)?;
    Some((school.member(&device.member)?, id))
}

fn administers(m: &Member) -> bool {
    m.roles.iter().any(|r| r.administers())
}

/// Whether `m` may record or withdraw a child's guardian consent: administrators and the
/// 班主任 of the child's class (heading it, or with it as their class, as for reading).
pub fn may_record_consent(auth: &AuthState<'_>, m: &Member) -> bool {
    administers(m) || crate::archive::scope::heads_class(auth.school, m, auth.child_class.as_ref())
}

/// Why the guardian consent does not allow new content in `doc` (see [`crate::consent::gate`]).
pub fn consent_refusal(auth: &AuthState<'_>, doc: &DocId) -> Option<String> {
    let cover = match doc {
        DocId::Child(_) | DocId::Staff(_) => crate::consent::Cover::Basic,
        DocId::Private(_) => crate::consent::Cover::Private,
        _ => return None,
    };
    crate::consent::gate(auth.school.consent_required, auth.consent.as_ref(), cover)
}

/// Whether `m` cares for the file's child: the same rule as for reading
/// ([`crate::archive::Archive::may_see`]), with the child's class as the auth state says.
fn cares(auth: &AuthState<'_>, m: &Member, doc: &DocId) -> bool {
    let Some(child) = doc.child() else {
        return administers(m);
    };
    let mut facts_of = |_: &crate::ids::ChildId| {
        // Withdrawals bound writes through the consent gate, judged on their own.
        Ok(crate::archive::scope::ChildFacts {
            class: auth.child_class.clone(),
            ..Default::default()
        })
    };
    crate::archive::scope::may_see(auth.school, m, &DocId::Child(child.clone()), &mut facts_of)
        .unwrap_or(false)
}

/// Whether `member` may write `field` of the section `section` in `doc` (the same rule the
/// local API applies before writing, so an honest device never writes what others refuse).
pub fn may_edit_field(
    auth: &AuthState<'_>,
    member: &Member,
    doc: &DocId,
    section: &str,
    field: &str,
) -> bool {
    match doc {
        DocId::School | DocId::Keys => administers(member),
        // Written only by `Archive::audit`, never edited through fields.
        DocId::Audit(_) => false,
        DocId::Child(_) => match (section, field) {
            ("profile", "class_id" | crate::school::DEPARTURE_DETAILS) => administers(member),
            ("profile", f) if f.starts_with(crate::consent::PREFIX) => {
                may_record_consent(auth, member)
            }
            _ if consent_refusal(auth, doc).is_some() => false,
            // Once the school is split by role, the staff fields live in the staff part only.
            (s, f) if auth.school.split_for_roles && is_staff_field(s, f) => false,
            ("flags", _) => {
                (member.roles.iter().any(|r| r.is_teacher()) || administers(member))
                    && cares(auth, member, doc)
            }
            ("profile" | "father" | "mother" | "guardian", _) => cares(auth, member, doc),
            _ => false,
        },
        DocId::Staff(_) => {
            is_staff_field(section, field)
                && consent_refusal(auth, doc).is_none()
                && member.roles.iter().any(|r| r.sees_staff())
                && cares(auth, member, doc)
        }
        // Administrators only (the office keeps the members' phone numbers).
        DocId::Contact(_) => section == CONTACT && administers(member),
        DocId::Private(_) => {
            matches!(section, "identity" | "private_flags")
                && consent_refusal(auth, doc).is_none()
                && member.roles.iter().any(|r| r.sees_private())
                && cares(auth, member, doc)
        }
        DocId::Class(k) => {
            section == "profile"
                && (administers(member)
                    || auth
                        .school
                        .class(k)
                        .is_some_and(|c| c.head_teacher.as_ref() == Some(&member.id)))
        }
    }
}

/// Whether `field` of `section` belongs in the staff part of a split school's file.
pub fn is_staff_field(section: &str, field: &str) -> bool {
    crate::kinds::section(section)
        .is_some_and(|s| s.key == section && s.part_of(field, true) == DocPart::Staff)
}

fn may_write_kind(auth: &AuthState<'_>, m: &Member, doc: &DocId, kind: RecordKind) -> bool {
    let part_ok = matches!(
        (kind.part(), doc),
        (DocPart::Child, DocId::Child(_))
            | (DocPart::Private, DocId::Private(_))
            | (DocPart::Class, DocId::Class(_))
    );
    if !part_ok {
        return false;
    }
    let role_ok = m
        .roles
        .iter()
        .any(|r| kind.writers().contains(r) || r.administers());
    let where_ok = match doc {
        DocId::Class(k) => {
            administers(m)
                || m.class_id.as_ref() == Some(k)
                || m.roles.iter().any(|r| r.is_teacher())
        }
        // Any carer holding a role that sees private data, as releases before judged it: a
        // 班主任 paired with a child of another class no longer receives the part
        // (`scope::may_see`), but what her app sends is taken, as they took it, so that the
        // school's copies never split over history they accepted.
        DocId::Private(_) => m.roles.iter().any(|r| r.sees_private()) && cares(auth, m, doc),
        _ => cares(auth, m, doc),
    };
    role_ok && where_ok
}

fn str_of(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Str(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Judges one change to `doc_id`. `doc` already holds the change (and everything it depends
/// on); `auth` is the state the module docs say it is judged against.
pub fn validate(
    doc_id: &DocId,
    doc: &Automerge,
    change: &automerge::Change,
    auth: &AuthState<'_>,
) -> Verdict {
    validate_dated(doc_id, doc, change, auth).0
}

/// [`validate`], with the latest date the change writes for a record (a record's
/// `happened_on`, a progress entry's `date`), which the receiver compares with the change's
/// clock reading and its own (`store::admit`, listed for review: see [`Ctx::check_date`]).
pub fn validate_dated(
    doc_id: &DocId,
    doc: &Automerge,
    change: &automerge::Change,
    auth: &AuthState<'_>,
) -> (Verdict, Option<chrono::NaiveDate>) {
    let dated = Cell::new(None);
    let verdict = judge(doc_id, doc, change, auth, &dated);
    (verdict, dated.get())
}

fn judge(
    doc_id: &DocId,
    doc: &Automerge,
    change: &automerge::Change,
    auth: &AuthState<'_>,
    dated: &Cell<Option<chrono::NaiveDate>>,
) -> Verdict {
    if change.raw_bytes().len() > MAX_CHANGE_BYTES {
        return refuse(format!(
            "单次修改超过 {} MB 的上限",
            MAX_CHANGE_BYTES / 1024 / 1024
        ));
    }
    // An honest app's change numbers its operations right after the ones it depends on
    // (automerge's transaction starts at its document's largest operation number plus one).
    // A modified app choosing a larger start would win every conflict it makes by number
    // alone: a device entry made again beside the one that records its revocation, a record
    // made again over another member's.
    let follows = change
        .deps()
        .iter()
        .filter_map(|h| doc.get_change_meta_by_hash(h))
        .map(|c| c.max_op)
        .max()
        .unwrap_or(0)
        + 1;
    if change.start_op().get() != follows {
        return refuse("修改的操作编号与它所依据的历史不符");
    }
    let Some((member, device)) = author_of(auth.school, change.actor_id()) else {
        return refuse("修改来自未登记的设备");
    };
    if auth
        .school
        .devices
        .iter()
        .any(|d| d.id == device && d.revoked)
    {
        return refuse("修改来自已停用的设备");
    }
    if !member.active {
        return refuse(format!("{}已停用，不能再修改档案", member.name));
    }
    let Some(writes) = paths::writes(doc, change) else {
        return refuse("修改的结构无法识别");
    };
    // Values are read as this change left them, with what it depends on: the document also
    // holds the changes merged with it, judged after it and perhaps refused, and one of them
    // must not make this change look allowed (a record's author overwritten by a later change).
    let at = [change.hash()];
    let ctx = Ctx {
        doc,
        at: &at,
        actor: change.actor_id(),
        start_op: change.start_op().get(),
        max_op: change.max_op(),
        dated,
        doc_id,
        auth,
        member,
        device: &device,
    };
    for w in &writes {
        if let Err(reason) = ctx.check(w) {
            return refuse(reason);
        }
    }
    if let Err(reason) = ctx.check_new_records(&writes) {
        return refuse(reason);
    }
    if let Err(reason) = ctx.check_superseded(change.deps(), &writes) {
        return refuse(reason);
    }
    if let Err(reason) = ctx.check_consent_lifts(change.deps(), &writes) {
        return refuse(reason);
    }
    Verdict::Accept
}

struct Ctx<'a> {
    doc: &'a Automerge,
    /// The change's own heads: what it and its dependencies wrote, nothing merged after it.
    at: &'a [automerge::ChangeHash],
    actor: &'a automerge::ActorId,
    start_op: u64,
    /// The change's last operation number: its operations are `start_op..=max_op`.
    max_op: u64,
    /// The latest record date the change writes, so far.
    dated: &'a Cell<Option<chrono::NaiveDate>>,
    doc_id: &'a DocId,
    auth: &'a AuthState<'a>,
    member: &'a Member,
    device: &'a DeviceId,
}

type Check = Result<(), String>;

impl Ctx<'_> {
    fn who(&self) -> String {
        format!("{}（{}）", self.member.name, self.member.role_labels())
    }

    fn author_of_object(&self, obj: Option<&automerge::ObjId>) -> Option<MemberId> {
        object_author(self.auth.school, self.doc, self.doc_id, self.at, obj?)
    }

    fn check(&self, w: &Write) -> Check {
        let path: Vec<&str> = w.path.iter().map(String::as_str).collect();
        let Some((&top, rest)) = path.split_first() else {
            return Err("不允许修改档案结构".into());
        };
        if rest.is_empty() {
            // A top-level key: only the genesis change writes these.
            return Err("不允许修改档案结构".into());
        }
        if *self.doc_id == DocId::School {
            if top == ERASURES {
                // Made whole, once, never changed: a record written over or edited would make
                // the readers of "is she erased" disagree (a map, or any value at all).
                let ok = match (rest, &w.action) {
                    (_, Action::Delete) => return Err("学生档案删除后不能撤销".into()),
                    ([_child], Action::Make(ObjType::Map)) => !w.replaces,
                    ([_child, _field], Action::Put(_)) => {
                        w.objects.get(1).is_some_and(|o| self.created_here(o)) && !w.replaces
                    }
                    _ => false,
                };
                if !ok {
                    return Err("学生档案的删除记录写入后不能修改".into());
                }
            }
            // A revocation is final, whoever writes and whatever state they declare: a
            // revoked administrator's device cannot write itself back (trust story 17), nor
            // a deactivated member herself.
            if top == DEVICES {
                match (rest, &w.action) {
                    ([_id, "revoked"], Action::Put(ScalarValue::Boolean(true))) => {}
                    ([_id, "revoked"], _) | ([_id], Action::Delete) => {
                        return Err("设备一经停用不能恢复".into());
                    }
                    ([_id], Action::Make(_)) if w.replaces => {
                        return Err("设备一经登记不能重新登记".into());
                    }
                    // An entry is a map: a value put in its place would stand beside it.
                    ([_id], Action::Put(_)) => return Err("设备登记信息无效".into()),
                    _ => {}
                }
            }
            if top == MEMBERS && matches!((rest, &w.action), ([_id], Action::Make(_))) && w.replaces
            {
                return Err("成员一经登记不能重新登记".into());
            }
            if top == MEMBERS && matches!((rest, &w.action), ([_id], Action::Put(_))) {
                return Err("成员登记信息无效".into());
            }
            if top == MEMBERS
                && let [id, "active"] = rest
                && *id == self.member.id.as_str()
                && w.replaces
                && !matches!(w.action, Action::Put(ScalarValue::Boolean(false)))
            {
                return Err("不能恢复自己已停用的成员身份".into());
            }
            return if administers(self.member) {
                Ok(())
            } else {
                Err(format!("{}不能修改学校设置、成员、结对或设备", self.who()))
            };
        }
        if *self.doc_id == DocId::Keys {
            return self.check_keys(w, &path);
        }
        if let DocId::Audit(device) = self.doc_id {
            return self.check_audit(w, &path, device);
        }
        if top == RECORDS {
            return self.check_record(w, rest);
        }
        let field = rest[0];
        if matches!(self.doc_id, DocId::Child(_))
            && matches!(w.action, Action::Delete)
            && rest.len() == 1
            && is_staff_field(top, field)
            && administers(self.member)
        {
            // The split moving a field into the staff part (`archive/least.rs`).
            return Ok(());
        }
        if may_edit_field(self.auth, self.member, self.doc_id, top, field) {
            Ok(())
        } else if !(top == "profile" && field.starts_with(crate::consent::PREFIX))
            && let Some(reason) = consent_refusal(self.auth, self.doc_id)
        {
            Err(reason)
        } else {
            Err(format!("{}不能修改这份档案的“{top}.{field}”", self.who()))
        }
    }

    /// `school/keys`: administrators only, and only the child-id secret, 32 bytes.
    fn check_keys(&self, w: &Write, path: &[&str]) -> Check {
        if !administers(self.member) {
            return Err(format!("{}不能修改学校密钥", self.who()));
        }
        match (path, &w.action) {
            ([KEYS, K_CHILD_ID], Action::Put(ScalarValue::Bytes(b))) if b.len() == 32 => Ok(()),
            _ => Err("学校密钥的格式无效".into()),
        }
    }

    /// `audit/<device>`: appended to by that device only, one new entry at a time; nothing in
    /// it is ever overwritten or deleted.
    fn check_audit(&self, w: &Write, path: &[&str], device: &DeviceId) -> Check {
        if self.device != device {
            return Err("只有设备本身能写它的查阅记录".into());
        }
        let fresh = !w.replaces;
        match (path, &w.action) {
            ([AUDIT_ENTRIES, _seq], Action::Make(ObjType::Map)) if fresh => Ok(()),
            ([AUDIT_ENTRIES, _seq, _field], Action::Put(_))
                if fresh && w.objects.get(1).is_some_and(|o| self.created_here(o)) =>
            {
                Ok(())
            }
            _ => Err("查阅记录只能追加，不能修改或删除".into()),
        }
    }

    fn check_record(&self, w: &Write, rest: &[&str]) -> Check {
        let record_obj = w.objects.get(1);
        match rest {
            [_rid, R_HAPPENED, more @ ..] => self.check_date(w, more.is_empty())?,
            [_rid, R_PROGRESS, _entry, R_PROGRESS_DATE, more @ ..] => {
                self.check_date(w, more.is_empty())?;
            }
            _ => {}
        }
        match rest {
            [_rid] => match &w.action {
                // A record id already taken is never written over (that would hide the record).
                Action::Make(_) if w.replaces => Err("不能覆盖已有的记录".into()),
                Action::Make(ObjType::Map) => match consent_refusal(self.auth, self.doc_id) {
                    Some(reason) => Err(reason),
                    None => Ok(()), // checked with its contents below
                },
                Action::Delete => Err("记录不能删除，只能作废".into()),
                _ => Err("记录结构无效".into()),
            },
            [_rid, ..] if record_obj.is_some_and(|o| self.created_here(o)) => {
                Ok(()) // inside a record this change creates: checked below
            }
            [_rid, key, more @ ..] => {
                let author = self.author_of_object(record_obj);
                let own = author.as_ref() == Some(&self.member.id);
                match (*key, more) {
                    (R_VOID, [field]) => {
                        if !own && !administers(self.member) {
                            return Err(format!("{}不能作废别人的记录", self.who()));
                        }
                        match (*field, &w.action) {
                            ("by", Action::Put(v))
                                if str_of(v) == Some(self.member.id.as_str()) =>
                            {
                                Ok(())
                            }
                            ("by", _) => Err("作废人必须是修改者本人".into()),
                            ("reason", Action::Put(v))
                                if str_of(v).is_some_and(|s| !s.trim().is_empty()) =>
                            {
                                Ok(())
                            }
                            ("reason", _) => Err("作废必须写明原因".into()),
                            ("at", Action::Put(_)) => Ok(()),
                            _ => Err("记录的作废信息无效".into()),
                        }
                    }
                    // An entry id already taken is never written over (that would hide
                    // another carer's entry): `progress/<new id>` only.
                    (R_PROGRESS, [_entry]) if w.replaces => Err("不能覆盖已有的进步档案".into()),
                    (R_PROGRESS, [_entry]) => {
                        let kind_ok = RecordKind::StudyPlan
                            .writers()
                            .iter()
                            .any(|r| self.member.has(*r))
                            || administers(self.member);
                        if let Some(reason) = consent_refusal(self.auth, self.doc_id) {
                            Err(reason)
                        } else if matches!(w.action, Action::Make(ObjType::Map))
                            && kind_ok
                            && cares(self.auth, self.member, self.doc_id)
                        {
                            Ok(())
                        } else {
                            Err(format!("{}不能在这份计划里添加进步档案", self.who()))
                        }
                    }
                    (R_PROGRESS, [_entry, field, ..]) => {
                        let entry_obj = w.objects.get(3);
                        if entry_obj.is_some_and(|o| self.created_here(o)) {
                            if *field == R_AUTHOR
                                && let Action::Put(v) = &w.action
                                && str_of(v) != Some(self.member.id.as_str())
                            {
                                return Err("进步档案的作者必须是填写者本人".into());
                            }
                            return Ok(());
                        }
                        if self.author_of_object(entry_obj).as_ref() == Some(&self.member.id)
                            && *field != R_AUTHOR
                        {
                            Ok(())
                        } else {
                            Err("只能修改自己填写的进步档案".into())
                        }
                    }
                    (R_FIELDS | R_HAPPENED, _) => {
                        if own {
                            Ok(())
                        } else {
                            Err(format!("{}只能修改自己填写的记录", self.who()))
                        }
                    }
                    _ => Err("记录的作者、类型、设备和时间在填写后不能修改".into()),
                }
            }
            [] => Err("记录结构无效".into()),
        }
    }

    /// The date a record happened on or a progress entry's date, made or edited (`at_key`:
    /// the write is the key itself, not something nested under it): a date as the app stores
    /// it. Refused otherwise. Its bound, the day after the change's own clock reading (no
    /// honest app takes a date after its today, `dates::parse_past_date`), is not a refusal:
    /// releases before that check took any date, and a change refused for it would take every
    /// later change of the file with it. The date is noted ([`validate_dated`]) and the
    /// receiver lists a change past that bound, or past its own clock, for review.
    fn check_date(&self, w: &Write, at_key: bool) -> Check {
        let date = match (&w.action, at_key) {
            (Action::Put(v), true) => str_of(v).and_then(crate::dates::stored_date),
            // automerge resolves a conflict in favour of the value that already wins by
            // deleting the others: whose it is to do is checked with the key's writers.
            (Action::Delete, true) => return Ok(()),
            _ => None,
        };
        let Some(date) = date else {
            return Err("记录的日期无效".into());
        };
        if self.dated.get().is_none_or(|d| date > d) {
            self.dated.set(Some(date));
        }
        Ok(())
    }

    /// Whether `obj` was created by the change being judged (its id carries the change's actor
    /// and a counter from the change's own range).
    fn created_here(&self, obj: &automerge::ObjId) -> bool {
        matches!(obj, automerge::ObjId::Id(counter, actor, _) if self.is_own(*counter, actor))
    }

    /// Whether the operation `(counter, actor)` is one of this change's.
    fn is_own(&self, counter: u64, actor: &automerge::ActorId) -> bool {
        actor == self.actor && (self.start_op..=self.max_op).contains(&counter)
    }

    /// What an operation on a map key supersedes (its `pred`) must be what the key held in the
    /// change's own history (at its dependencies), besides earlier operations of the change:
    /// a value written supersedes all the key still holds, a delete all of it or all but one
    /// (a conflict's resolution keeping the value shown). That is what an honest app's
    /// transaction writes. Each operation is read as the change left the key, not as the
    /// merge does (a companion change in the same merge, refused later, could hide a value). automerge
    /// takes any `pred`: a modified app could take away a value written meanwhile on another
    /// device, which it never saw, without the conflict an honest overwrite leaves (a guardian's
    /// withdrawal of consent, a carer's edit of a phone number); or, superseding nothing, write
    /// a key that held a value as if concurrently, and win the conflict with a higher operation
    /// number (a revoked device's entry made again without its `revoked`, a record made again
    /// over another member's). Lists and text are not checked: what is written in them is the
    /// sequence's own business. Keys of objects the change itself made held nothing before.
    fn check_superseded(&self, deps: &[automerge::ChangeHash], writes: &[Write]) -> Check {
        use automerge::ReadDoc;
        use std::collections::hash_map::Entry;
        type OpRef = (u64, automerge::ActorId);
        let own = |(counter, actor): &OpRef| self.is_own(*counter, actor);
        // What each key the change has written still holds of what it held before the change,
        // after the change's operations on it so far.
        let mut left: std::collections::HashMap<(automerge::ObjId, &str), Vec<OpRef>> =
            Default::default();
        for w in writes {
            if matches!(w.action, Action::Edit) {
                continue;
            }
            let Some(key) = w.path.last() else {
                continue;
            };
            let obj = match w.path.len() {
                0 | 1 => automerge::ROOT,
                n => match w.objects.get(n - 2) {
                    Some(o) => o.clone(),
                    None => return Err("修改的结构无法识别".into()),
                },
            };
            let unseen = || {
                format!(
                    "修改覆盖了它没有见过的内容（“{}”），没有接受",
                    w.path.join(".")
                )
            };
            let beside = || {
                format!(
                    "修改没有覆盖它所依据的内容（“{}”），像是同时写下的，没有接受",
                    w.path.join(".")
                )
            };
            // A key of an object the change itself made held nothing before it.
            if self.created_here(&obj) {
                if w.pred.iter().all(own) {
                    continue;
                }
                return Err(unseen());
            }
            let held = match left.entry((obj.clone(), key.as_str())) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    // Superseding nothing, and the key as this change left it holds only its
                    // own values: it held nothing (the common case, a record added; saves
                    // reading the key at the dependencies).
                    let fresh = w.pred.is_empty()
                        && self
                            .doc
                            .get_all_at(&obj, key.as_str(), self.at)
                            .is_ok_and(|now| {
                                now.iter().all(|(_, id)| {
                                    matches!(id, automerge::ObjId::Id(c, a, _) if self.is_own(*c, a))
                                })
                            });
                    let held: Vec<OpRef> = if fresh {
                        Vec::new()
                    } else {
                        self.doc
                            .get_all_at(&obj, key.as_str(), deps)
                            .unwrap_or_default()
                            .into_iter()
                            .filter_map(|(_, id)| match id {
                                automerge::ObjId::Id(counter, actor, _) => Some((counter, actor)),
                                automerge::ObjId::Root => None,
                            })
                            .collect()
                    };
                    e.insert(held)
                }
            };
            if !w.pred.iter().all(|p| own(p) || held.contains(p)) {
                return Err(unseen());
            }
            if matches!(w.action, Action::Delete) {
                // A delete takes away what it names: all of it, or for a conflict's resolution
                // that keeps the value shown, all but that one.
                held.retain(|h| !w.pred.contains(h));
                if held.len() > 1 {
                    return Err(beside());
                }
            } else {
                // A value written supersedes all the key still holds.
                if !held.iter().all(|h| w.pred.contains(h)) {
                    return Err(beside());
                }
                held.clear();
            }
        }
        Ok(())
    }

    /// A change to a child's file that takes away a withdrawal of consent must grant, itself,
    /// what it takes away ([`crate::consent`]): a grant lifts only what it covers. Judged on
    /// the file at the change's dependencies and as the change left it.
    fn check_consent_lifts(&self, deps: &[automerge::ChangeHash], writes: &[Write]) -> Check {
        use crate::consent::{self, Cover};
        if !matches!(self.doc_id, DocId::Child(_)) {
            return Ok(());
        }
        let at_profile = |w: &Write, key: &dyn Fn(&str) -> bool| matches!(w.path.as_slice(), [top, k] if top == "profile" && key(k));
        if !writes
            .iter()
            .any(|w| at_profile(w, &|k| k.starts_with(consent::WITHDRAWN_PREFIX)))
        {
            return Ok(());
        }
        // A grant writes `consent_recorded`, a new value every time; older builds wrote only
        // the keys whose value changed: a new form's date or number at least.
        let grant_keys = [
            consent::RECORDED,
            consent::COVERS,
            consent::DATE,
            consent::FORM,
            consent::GUARDIAN,
            consent::RELATION,
        ];
        let granted = writes.iter().any(|w| {
            matches!(w.action, Action::Put(_)) && at_profile(w, &|k| grant_keys.contains(&k))
        });
        let before = consent::read(self.doc, Some(deps));
        let after = consent::read(self.doc, Some(self.at));
        let lifted = consent::lifted_without_grant(before.as_ref(), after.as_ref(), granted);
        if lifted.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "监护人撤回的{}同意，只能由新登记的同意书解除",
                Cover::labels(&lifted)
            ))
        }
    }

    /// Every record this change creates: its author, device, role, kind and child.
    fn check_new_records(&self, writes: &[Write]) -> Check {
        use automerge::ReadDoc;
        let version = Version::at(self.doc, self.at);
        for w in writes {
            let [top, rid] = w.path.as_slice() else {
                continue;
            };
            if top != RECORDS || !matches!(w.action, Action::Make(ObjType::Map)) {
                continue;
            }
            let get = |key: &str| -> Option<String> {
                let records = version.map(&automerge::ROOT, RECORDS)?;
                // The record object this change made (not a concurrent one with the same id).
                let obj = self
                    .doc
                    .get_all_at(&records, rid.as_str(), self.at)
                    .ok()?
                    .into_iter()
                    .map(|(_, id)| id)
                    .find(|id| {
                        paths::creator(id).is_some_and(|a| {
                            author_of(self.auth.school, a).map(|(_, d)| d)
                                == Some(self.device.clone())
                        })
                    })?;
                version.str(&obj, key)
            };
            if get(R_AUTHOR).as_deref() != Some(self.member.id.as_str()) {
                return Err("记录的作者必须是填写者本人".into());
            }
            if get(R_DEVICE).as_deref() != Some(self.device.as_str()) {
                return Err("记录的设备必须是写入它的设备".into());
            }
            if let Some(child) = self.doc_id.child()
                && get(R_CHILD).as_deref() != Some(child.as_str())
            {
                return Err("记录所属的学生与档案不符".into());
            }
            // The maps every record is written with, made by the change that makes it: a
            // record without its `void` could never be voided (nobody may add it later), and
            // fields or progress entries need the maps to be written into.
            let made_here = version.map(&automerge::ROOT, RECORDS).and_then(|r| {
                self.doc
                    .get_all_at(&r, rid.as_str(), self.at)
                    .ok()?
                    .into_iter()
                    .map(|(_, id)| id)
                    .find(|id| self.created_here(id))
            });
            let made_map = |key: &str| {
                made_here
                    .as_ref()
                    .and_then(|r| version.map(r, key))
                    .is_some_and(|m| self.created_here(&m))
            };
            if !made_map(R_VOID) || !made_map(R_FIELDS) {
                return Err("记录结构无效".into());
            }
            let role = get(R_ROLE).and_then(|r| Role::parse(&r).ok());
            let Some(kind) = get(R_KIND).and_then(|k| RecordKind::parse(&k)) else {
                // A kind from a newer version: this version cannot know who may write it, so
                // it asks what every record needs (a carer writing in a role of theirs), in a
                // part any record may be in: the shared file, the private part only for a role
                // that sees it, the class log (never the staff part, which holds no records).
                let part_ok = match self.doc_id {
                    DocId::Child(_) | DocId::Class(_) => true,
                    DocId::Private(_) => self.member.roles.iter().any(|r| r.sees_private()),
                    _ => false,
                };
                if get(R_KIND).is_none()
                    || !part_ok
                    || !role.is_some_and(|r| self.member.has(r))
                    || !cares(self.auth, self.member, self.doc_id)
                {
                    return Err("记录类型无效".into());
                }
                continue;
            };
            if made_map(R_PROGRESS) != (kind == RecordKind::StudyPlan) {
                return Err("记录结构无效".into());
            }
            let role_ok = role.is_some_and(|r| {
                self.member.has(r) && (kind.writers().contains(&r) || r.administers())
            });
            if !role_ok || !may_write_kind(self.auth, self.member, self.doc_id, kind) {
                return Err(format!(
                    "{}不能在这份档案里填写{}",
                    self.who(),
                    kind.label()
                ));
            }
        }
        Ok(())
    }
}
