//! "A modified app": changes crafted below the API, as a device whose app was altered would
//! make them. Every attack writes with the store's own machinery (so the change declares the
//! device's school heads like an honest one) but skips every permission check the API makes.
//! The trust tests send them over each path that merges changes and check they are refused.

use automerge::transaction::{Transactable, Transaction};
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc};
use shouwang_core::Archive;
use shouwang_core::doc::DocId;
use shouwang_core::ids::{ChildId, RecordId};
use shouwang_core::sync::{Event, Session};

/// The actor the archive writes as (its device's).
pub fn actor_of(a: &Archive) -> ActorId {
    a.device().actor()
}

/// Writes `f` into `doc` with no permission check, as `actor` (the device's own if `None`).
/// Returns the hash of the forged change.
pub fn forge(
    a: &mut Archive,
    doc: &DocId,
    actor: Option<ActorId>,
    f: impl FnOnce(&mut Transaction<'_>) -> Result<(), automerge::AutomergeError>,
) -> automerge::ChangeHash {
    let own = actor_of(a);
    if let Some(actor) = actor {
        a.store().set_actor(actor);
    }
    let result = a.store().write(|b| {
        let before = b.doc(doc)?.map(Automerge::get_heads).unwrap_or_default();
        b.change(doc, true, "修改", |tx| f(tx).map_err(Into::into))?;
        // The change made here is the head that was not there before. A write automerge found
        // to change nothing (the same forgery twice) makes no change: the zero hash, which no
        // document holds.
        Ok(b.doc(doc)?.map(|d| {
            d.get_heads()
                .into_iter()
                .find(|h| !before.contains(h))
                .unwrap_or(automerge::ChangeHash([0; 32]))
        }))
    });
    a.store().set_actor(own);
    result.unwrap().unwrap()
}

fn map(tx: &Transaction<'_>, path: &[&str]) -> automerge::ObjId {
    let mut obj = ROOT;
    for k in path {
        obj = tx.get(&obj, *k).unwrap().unwrap().1;
    }
    obj
}

/// 1. Grants the device's member a role in the school document.
pub fn self_grant(a: &mut Archive, role_key: &'static str) -> automerge::ChangeHash {
    let me = a.me_id().to_string();
    forge(a, &DocId::School, None, |tx| {
        let roles = map(tx, &["members", &me, "roles"]);
        tx.put(&roles, role_key, true)?;
        Ok(())
    })
}

/// 2. Pairs the device's member with a child.
pub fn self_pair(a: &mut Archive, child: &ChildId) -> automerge::ChangeHash {
    let me = a.me_id().to_string();
    let child = child.to_string();
    forge(a, &DocId::School, None, |tx| {
        let pairings = map(tx, &["pairings"]);
        let p = tx.put_object(&pairings, "forged-pairing", ObjType::Map)?;
        tx.put(&p, "carer", me.as_str())?;
        tx.put(&p, "child", child.as_str())?;
        tx.put(&p, "role", "love_mother")?;
        tx.put(&p, "active", true)?;
        Ok(())
    })
}

/// 3. Moves a child to another class (only administrators may).
pub fn move_class(a: &mut Archive, child: &ChildId, class: &str) -> automerge::ChangeHash {
    let class = class.to_owned();
    forge(a, &DocId::Child(child.clone()), None, |tx| {
        let profile = map(tx, &["profile"]);
        tx.put(&profile, "class_id", class.as_str())?;
        Ok(())
    })
}

/// 4. Edits a field of someone else's record.
pub fn edit_record(a: &mut Archive, child: &ChildId, record: &str) -> automerge::ChangeHash {
    let record = record.to_owned();
    forge(a, &DocId::Child(child.clone()), None, |tx| {
        let fields = map(tx, &["records", &record, "fields"]);
        tx.put(&fields, "met_with", "无人")?;
        Ok(())
    })
}

/// 5. Voids someone else's record "by" `by` (that member's id).
pub fn void_as(a: &mut Archive, child: &ChildId, record: &str, by: &str) -> automerge::ChangeHash {
    let (record, by) = (record.to_owned(), by.to_owned());
    forge(a, &DocId::Child(child.clone()), None, |tx| {
        let void = map(tx, &["records", &record, "void"]);
        tx.put(&void, "by", by.as_str())?;
        tx.put(&void, "at", 1_i64)?;
        tx.put(&void, "reason", "重复录入")?;
        Ok(())
    })
}

/// 6. A record written under another device's actor, claiming that device's member as author
///    (a stolen actor: its real next change would then clash on the sequence number).
pub fn as_actor(
    a: &mut Archive,
    child: &ChildId,
    actor: ActorId,
    author: &str,
    role: &str,
) -> automerge::ChangeHash {
    let (author, role) = (author.to_owned(), role.to_owned());
    let record = Forged {
        id: RecordId::new(1_700_000_000_000).as_str().to_owned(),
        kind: "home_visit",
        happened_on: "2026-11-20".into(),
        author,
        role,
        device: actor.to_hex_string(),
        child: child.to_string(),
    };
    forge(a, &DocId::Child(child.clone()), Some(actor), |tx| {
        record.put(tx)
    })
}

/// 6b. A 谈心 of the device's own member, as an honest app writes it but under the device's
///     actor followed by a restore epoch (`ids::Epoch`): only a copy restored from a backup
///     (the hub's, and the console devices it writes for) writes under one, and a member's
///     phone that could would make a document's writers countless.
pub fn under_an_epoch(a: &mut Archive, child: &ChildId) -> automerge::ChangeHash {
    let device = a.device().clone();
    let actor =
        shouwang_core::ids::Epoch::actor_of(Some(&shouwang_core::ids::Epoch::random()), &device);
    let record = Forged {
        id: RecordId::new(1_700_000_000_000).as_str().to_owned(),
        kind: "talk",
        happened_on: "2026-11-20".into(),
        author: a.me_id().to_string(),
        role: "love_mother".into(),
        device: device.to_string(),
        child: child.to_string(),
    };
    forge(a, &DocId::Child(child.clone()), Some(actor), |tx| {
        record.put(tx)
    })
}

/// A record's metadata as a modified app writes it, whatever the rules say.
struct Forged {
    id: String,
    kind: &'static str,
    happened_on: String,
    author: String,
    role: String,
    device: String,
    child: String,
}

impl Forged {
    /// Writes the record (metadata, empty fields and void) into `records`.
    fn put(&self, tx: &mut Transaction<'_>) -> Result<(), automerge::AutomergeError> {
        let records = map(tx, &["records"]);
        let r = tx.put_object(&records, self.id.as_str(), ObjType::Map)?;
        tx.put(&r, "kind", self.kind)?;
        tx.put(&r, "happened_on", self.happened_on.as_str())?;
        tx.put(&r, "author", self.author.as_str())?;
        tx.put(&r, "author_role", self.role.as_str())?;
        tx.put(&r, "device", self.device.as_str())?;
        tx.put(&r, "written_at", 0_i64)?;
        tx.put(&r, "child", self.child.as_str())?;
        tx.put_object(&r, "fields", ObjType::Map)?;
        tx.put_object(&r, "void", ObjType::Map)?;
        Ok(())
    }
}

/// 7. Writes into a child's private part (the 身份证号).
pub fn write_private(a: &mut Archive, child: &ChildId, id_card: &str) -> automerge::ChangeHash {
    let id_card = id_card.to_owned();
    forge(a, &DocId::Private(child.clone()), None, |tx| {
        let identity = map(tx, &["identity"]);
        tx.put(&identity, "id_card", id_card.as_str())?;
        Ok(())
    })
}

/// 8. Pushes `bytes` of junk into the school profile (different junk each time).
pub fn flood_school(a: &mut Archive, bytes: usize) -> automerge::ChangeHash {
    // Incompressible: automerge would otherwise deflate a repetitive string to nothing.
    let mut x: u64 = rand::random::<u64>() | 1;
    let junk: String = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'!' + (x % 90) as u8)
        })
        .collect();
    forge(a, &DocId::School, None, |tx| {
        let profile = map(tx, &["school"]);
        tx.put(&profile, "motto", junk.as_str())?;
        Ok(())
    })
}

/// 9. Writes a school secret of its own into the admin-only document `school/keys` (with it,
///    ids derived from 学籍号 would be hers to compute).
pub fn forge_secret(a: &mut Archive) -> automerge::ChangeHash {
    forge(a, &DocId::Keys, None, |tx| {
        let map = map(tx, &["keys"]);
        tx.put(&map, "child_id", automerge::ScalarValue::Bytes(vec![7; 32]))?;
        Ok(())
    })
}

/// 10. A school change under an administrator's device's actor (changes are not signed: any
///     app can name any actor): grants the device's member 领导组, and marks that
///     administrator's device revoked in the same change, so that a side deciding from the
///     merged document would take it as a revoked device's change handed on.
pub fn as_revoking_admin(
    a: &mut Archive,
    admin_actor: ActorId,
    admin_device: &str,
) -> automerge::ChangeHash {
    let me = a.me_id().to_string();
    let admin_device = admin_device.to_owned();
    forge(a, &DocId::School, Some(admin_actor), |tx| {
        let roles = map(tx, &["members", &me, "roles"]);
        tx.put(&roles, "leadership", true)?;
        let device = map(tx, &["devices", &admin_device]);
        tx.put(&device, "revoked", true)?;
        Ok(())
    })
}

/// 11. A record written as `author` in a role the device's member lacks, then "corrected" by
///     a second change to the member's own name, role and a kind she may write: the second
///     change is refused, and the first must not pass by reading the second's values.
///     Returns the first change.
pub fn record_then_reauthor(
    a: &mut Archive,
    child: &ChildId,
    author: &str,
    role: &str,
) -> automerge::ChangeHash {
    let me = a.me_id().to_string();
    let record = Forged {
        id: RecordId::new(1_700_000_000_001).as_str().to_owned(),
        kind: "counselling",
        happened_on: "2026-11-20".into(),
        author: author.to_owned(),
        role: role.to_owned(),
        device: actor_of(a).to_hex_string(),
        child: child.to_string(),
    };
    let doc = DocId::Child(child.clone());
    let first = forge(a, &doc, None, |tx| record.put(tx));
    forge(a, &doc, None, |tx| {
        let r = map(tx, &["records", &record.id]);
        tx.put(&r, "author", me.as_str())?;
        tx.put(&r, "author_role", "love_mother")?;
        tx.put(&r, "kind", "talk")?;
        Ok(())
    });
    first
}

/// 13. A 谈心 by the device's own member, for her own child, "held" on `date` (any string:
///     no honest app takes a date after its own today, `dates::parse_past_date`). With
///     `clock_ms`, the change also carries that time, as a device whose clock was set there.
pub fn talk_dated(
    a: &mut Archive,
    child: &ChildId,
    date: &str,
    clock_ms: Option<i64>,
) -> automerge::ChangeHash {
    record_dated(a, child, ("talk", "love_mother"), date, clock_ms)
}

/// 13b. A 家访 by the device's own member as 班主任, for `child`, "held" on `date` (any string),
///      in a change made now.
pub fn home_visit_dated(a: &mut Archive, child: &ChildId, date: &str) -> automerge::ChangeHash {
    record_dated(a, child, ("home_visit", "head_teacher"), date, None)
}

/// A record of `kind` written by the device's own member in `role`, dated `date`, the change
/// stamped `clock_ms` if given.
fn record_dated(
    a: &mut Archive,
    child: &ChildId,
    (kind, role): (&'static str, &str),
    date: &str,
    clock_ms: Option<i64>,
) -> automerge::ChangeHash {
    // One id per kind, so that both can be forged into one file.
    let id = if kind == "talk" {
        1_700_000_000_002
    } else {
        1_700_000_000_004
    };
    let record = Forged {
        id: RecordId::new(id).as_str().to_owned(),
        kind,
        happened_on: date.to_owned(),
        author: a.me_id().to_string(),
        role: role.to_owned(),
        device: actor_of(a).to_hex_string(),
        child: child.to_string(),
    };
    let skew = clock_ms.map(|t| t - chrono::Utc::now().timestamp_millis());
    if let Some(skew) = skew {
        a.store().set_clock_skew(skew);
    }
    let hash = forge(a, &DocId::Child(child.clone()), None, |tx| record.put(tx));
    a.store().set_clock_skew(0);
    hash
}

/// 14. A 进步档案 entry on the study plan `plan`, by the device's own member, dated `date`
///     (any string) in a change made now.
pub fn progress_dated(
    a: &mut Archive,
    child: &ChildId,
    plan: &str,
    date: &str,
) -> automerge::ChangeHash {
    let (me, plan, date) = (a.me_id().to_string(), plan.to_owned(), date.to_owned());
    forge(a, &DocId::Child(child.clone()), None, |tx| {
        let progress = map(tx, &["records", &plan, "progress"]);
        let entry = RecordId::new(1_700_000_000_003);
        let e = tx.put_object(&progress, entry.as_str(), ObjType::Map)?;
        tx.put(&e, "date", date.as_str())?;
        tx.put(&e, "author", me.as_str())?;
        tx.put(&e, "written_at", 0_i64)?;
        Ok(())
    })
}

/// 12. Maps nested `depth` deep under a field the carer may write (`guardian`): no layout has
///     them, and every side that walks the document (its conflicts) would recurse that deep.
pub fn nest(a: &mut Archive, child: &ChildId, depth: usize) -> automerge::ChangeHash {
    forge(a, &DocId::Child(child.clone()), None, |tx| {
        let mut obj = map(tx, &["guardian"]);
        for _ in 0..depth {
            obj = tx.put_object(&obj, "x", ObjType::Map)?;
        }
        Ok(())
    })
}

/// Whether the archive holds the change.
pub fn holds(a: &mut Archive, doc: &DocId, hash: &automerge::ChangeHash) -> bool {
    a.store()
        .doc(doc)
        .unwrap()
        .is_some_and(|d| d.get_change_by_hash(hash).is_some())
}

/// How many changes the archive keeps in quarantine.
pub fn quarantined(a: &mut Archive) -> usize {
    a.quarantined().unwrap().len()
}

/// The two ends of a phone's sync with its hub, as each side makes them: the hub's (`hub`, an
/// archive holding every document) scoped to the phone's member, taking hand-ins, the phone
/// held to its own changes; and the phone's with its hub, a relay it trusts. Returns
/// (hub's, phone's).
pub fn hub_and_phone(hub: &mut Archive, phone: &Archive) -> (Session, Session) {
    let member = hub.find_member(phone.me_id().as_str()).unwrap();
    let device = phone.device().clone();
    let at_hub = hub
        .session(device.as_str(), Some(&member))
        .unwrap()
        .taking_hand_ins()
        .with_sender(shouwang_core::store::Sender::Device {
            device,
            roles: None,
        });
    // The phone names its hub by the hub's device (an administrator's: what it shares with
    // that device is what the school holds of its work, `Archive::purge_out_of_scope`).
    let at_phone = Session::new(hub.device().as_str(), shouwang_core::sync::Scope::All);
    (at_hub, at_phone)
}

/// A phone's whole sync with its hub, in process: both ends as [`hub_and_phone`] makes them,
/// run until neither has anything to send, then the phone's purge (`device::sync_hub` runs
/// it after every sync).
pub fn hub_sync(hub: &mut Archive, phone: &mut Archive) {
    let (at_hub, at_phone) = hub_and_phone(hub, phone);
    pump(phone, at_phone, hub, at_hub);
    phone.purge_out_of_scope().unwrap();
}

/// Runs two in-process sessions over real stores until neither has anything to send: the
/// device-to-device path without the network (the same `Session`s `relay::peer` drives).
/// Returns how many frames went each way. Fails the test if it does not settle.
pub fn pump(a: &mut Archive, sa: Session, b: &mut Archive, sb: Session) -> (Session, Session) {
    let (sa, sb, _) = pump_delivering(a, sa, b, sb);
    (sa, sb)
}

/// [`pump`], also returning the documents `a`'s session said it delivered (its outputs'
/// `delivered`, what the hub checks and logs before they go).
pub fn pump_delivering(
    a: &mut Archive,
    mut sa: Session,
    b: &mut Archive,
    mut sb: Session,
) -> (Session, Session, Vec<DocId>) {
    let mut start = sa.handle(a.store(), Event::Start).unwrap();
    let mut delivered = std::mem::take(&mut start.delivered);
    let to_a = sb.handle(b.store(), Event::Start).unwrap().frames;
    let (sa, sb, mut more) = settle(a, sa, start.frames, b, sb, to_a);
    delivered.append(&mut more);
    (sa, sb, delivered)
}

/// Two sessions already under way: `a` tells its session `event` (a change made on `a`
/// while connected, live mode), and both run until neither has anything to send.
pub fn pump_after(
    a: &mut Archive,
    mut sa: Session,
    event: Event<'_>,
    b: &mut Archive,
    sb: Session,
) -> (Session, Session) {
    let to_b = sa.handle(a.store(), event).unwrap().frames;
    let (sa, sb, _) = settle(a, sa, to_b, b, sb, Vec::new());
    (sa, sb)
}

/// Runs two sessions from the frames in flight each way until neither has anything to send.
/// Returns the documents `a`'s session said it delivered. Fails the test if it does not
/// settle.
fn settle(
    a: &mut Archive,
    mut sa: Session,
    mut to_b: Vec<Vec<u8>>,
    b: &mut Archive,
    mut sb: Session,
    mut to_a: Vec<Vec<u8>>,
) -> (Session, Session, Vec<DocId>) {
    let mut delivered = Vec::new();
    for _ in 0..200 {
        if to_a.is_empty() && to_b.is_empty() {
            return (sa, sb, delivered);
        }
        let mut next_a = Vec::new();
        for f in to_b.drain(..) {
            next_a.extend(sb.handle(b.store(), Event::Frame(&f)).unwrap().frames);
        }
        let mut next_b = Vec::new();
        for f in to_a.drain(..) {
            let mut out = sa.handle(a.store(), Event::Frame(&f)).unwrap();
            delivered.append(&mut out.delivered);
            next_b.extend(out.frames);
        }
        to_a = next_a;
        to_b = next_b;
    }
    panic!("the sessions never settled");
}

/// 10. `changes` changes on top of `doc`, as `actor`, each inserting `ops` nulls into one list:
///     run-length encoded, each is about a hundred bytes that automerge must expand into
///     `ops` operations. Returns each change's bytes, in order.
pub fn dense_changes(doc: &Automerge, actor: ActorId, changes: usize, ops: usize) -> Vec<Vec<u8>> {
    let base = doc.get_heads();
    let mut d = doc.fork().with_actor(actor);
    let mut list = None;
    for _ in 0..changes {
        let mut tx = d.transaction();
        let obj = match &list {
            Some(l) => automerge::ObjId::clone(l),
            None => tx.put_object(ROOT, "x", ObjType::List).unwrap(),
        };
        let at = tx.length(&obj);
        tx.splice(
            &obj,
            at,
            0,
            std::iter::repeat_n(automerge::ScalarValue::Null, ops),
        )
        .unwrap();
        tx.commit();
        list = Some(obj);
    }
    d.get_changes(&base)
        .into_iter()
        .map(|c| c.raw_bytes().to_vec())
        .collect()
}

/// A change as a modified app can craft it below automerge's transaction: `change` with its
/// expanded form altered by `edit`, encoded again (its hash recomputed).
pub fn recraft(
    change: &automerge::Change,
    edit: impl FnOnce(&mut automerge::ExpandedChange),
) -> automerge::Change {
    let mut expanded = change.decode();
    edit(&mut expanded);
    expanded.hash = None;
    automerge::Change::from(expanded)
}

/// Numbers a change's operations `by` later than automerge did (its references to its own
/// operations moved with them): a change that would win every conflict it makes.
pub fn number_ahead(change: &mut automerge::ExpandedChange, by: u64) {
    use automerge::legacy::{ElementId, Key, ObjectId, OpId};
    let (start, actor) = (change.start_op.get(), change.actor_id.clone());
    let moved = |id: &mut OpId| {
        if id.1 == actor && id.0 >= start {
            id.0 += by;
        }
    };
    change.start_op = std::num::NonZeroU64::new(start + by).unwrap_or(change.start_op);
    for op in &mut change.operations {
        if let ObjectId::Id(id) = &mut op.obj {
            moved(id);
        }
        if let Key::Seq(ElementId::Id(id)) = &mut op.key {
            moved(id);
        }
        let pred: Vec<OpId> = op
            .pred
            .iter()
            .cloned()
            .map(|mut id| {
                moved(&mut id);
                id
            })
            .collect();
        op.pred = pred.into();
    }
}
