//! Admission: every change another device sent is judged ([`crate::trust::validate`]) before
//! it stays in a document.
//!
//! The peer's bytes are applied to the cached document first (automerge needs the change in
//! the document to locate what it writes). Each new change is then judged in causal order; a
//! change that depends on a refused or deferred one shares its fate. If anything was not
//! accepted, the document is rebuilt from its state before the merge plus only the accepted
//! changes, so nothing refused is ever persisted, projected or passed on. Refused changes are
//! kept in the `quarantine` table (bytes, reason, where they came from) for the administrator;
//! deferred ones are dropped and come again with a later exchange.

use std::collections::HashSet;
use std::sync::Arc;

use automerge::{Automerge, Change, ChangeHash, ReadDoc};
use rusqlite::{OptionalExtension, params};

use super::{Batch, load_doc};
use crate::doc::{self, DocId};
use crate::error::Result;
use crate::school::{self, SchoolView};
use crate::trust::{self, AuthState, Declared, Verdict};

/// What merging a peer's changes into one document did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// Changes merged.
    pub accepted: usize,
    /// Changes refused (quarantined), with the first reason.
    pub refused: usize,
    /// Changes that could not be judged yet (their auth state is not here).
    pub deferred: usize,
    /// Of the refused changes, those of an older generation of a re-based document (the
    /// sender's copy is out of date and is replaced once it receives the current one).
    pub stale: usize,
    /// Documents whose copy here was replaced whole by a newer generation.
    pub replaced: usize,
    /// Changes this device wrote into a replacing generation, carrying over its own records
    /// of the copy it replaced (`Batch::carry_over`): the sender does not hold them.
    pub carried: usize,
    /// The reason for the first change not accepted, in Chinese.
    pub reason: Option<String>,
}

impl Admission {
    /// Whether every change was merged.
    pub fn is_clean(&self) -> bool {
        self.refused == 0 && self.deferred == 0
    }

    /// Whether the only changes not merged are of an older generation of a re-based
    /// document: the sender replaces its copy once it receives the current one, so the
    /// exchange must go on (holding the document back would keep that from it).
    pub fn only_stale(&self) -> bool {
        self.refused > 0 && self.refused == self.stale && self.deferred == 0
    }

    /// Adds another document's admission to this one.
    pub fn add(&mut self, other: &Admission) {
        self.accepted += other.accepted;
        self.refused += other.refused;
        self.deferred += other.deferred;
        self.stale += other.stale;
        self.replaced += other.replaced;
        self.carried += other.carried;
        if self.reason.is_none() {
            self.reason.clone_from(&other.reason);
        }
    }
}

/// Why a change to an erased child's document is refused.
pub const ERASED: &str = "这名学生的档案已由学校删除，不再接收";

/// Why a change that declares no school state is refused.
const NO_DECLARED: &str = "修改没有注明依据的学校信息";

/// Why a change of an older generation of a re-based document is refused.
pub const OLD_GENERATION: &str = "这份档案已由学校重建（去掉了修改历史），旧版本的修改不再接收";

/// A row for the `quarantine` table.
#[derive(Debug)]
pub(super) struct Quarantined {
    doc: DocId,
    hash: ChangeHash,
    actor: String,
    reason: String,
    bytes: Vec<u8>,
}

/// Rows a peer's input may claim per byte of it at no cost to the sender's daily quota
/// (honest changes claim fewer: a record of a 1,000-character note, about 3 KB, claims about
/// 12,000 rows), within [`FREE_ROWS`] a write.
pub(crate) const FREE_ROWS_PER_BYTE: u64 = 8;

/// Rows one write may take from the quota's member at no cost, all her inputs in it together
/// (a frame, a file): five such records. Per byte alone, the free rows grew with the bytes an
/// input unpacks to, not the bytes it took to send: a sync frame of a few KB may unpack to
/// 8 MB (`sync::wire::body_limit`), padding that claims nothing, and its change then claim 64
/// million rows for free (about 2 GB of automerge's work); every document of a `Changes`
/// frame had its own share too.
pub(crate) const FREE_ROWS: u64 = 1 << 16;

/// Rows each byte of what the sender sent over the wire adds to a write's free share
/// ([`Batch::grant_free_rows_for`]): a sync frame's bytes, a file's. A byte sent is one the
/// sender paid for, so a large honest transfer (a 班主任's first file of her class at the
/// office, a colleague's phone sending files the other never held; zstd packs automerge's
/// columns about four to one, and an honest change claims up to 4 rows a byte unpacked) is
/// free, where padding that unpacks from a few KB is not.
pub(crate) const FREE_ROWS_PER_WIRE_BYTE: u64 = 32;

/// The most a write's free share may reach, whatever was sent: 4 million rows (about 120 MB of
/// automerge's work); an old build's class file of 40 children with notes as Text, about 3
/// million rows, fits.
pub(crate) const FREE_ROWS_MAX: u64 = 1 << 22;

/// What a peer's input that claims `rows` ([`crate::doc::bounds`]) in `bytes` costs of the
/// sender's daily quota, in bytes, charged before automerge reads it, when `free` rows of the
/// write's share are left: a byte for each row beyond [`FREE_ROWS_PER_BYTE`] per byte, and
/// beyond what is left of the share. Every row is an operation or a value automerge builds,
/// and a run-length encoded change of a hundred bytes can claim a hundred thousand, so the
/// bytes kept alone did not bound what a member can make the hub build (trust story 7f);
/// honest inputs, within the write's share (what was sent for it), cost nothing here.
/// Returns the cost and the free rows used.
pub(crate) fn claimed_weight(rows: u64, bytes: usize, free: u64) -> (u64, u64) {
    let free = FREE_ROWS_PER_BYTE
        .saturating_mul(bytes as u64)
        .min(free)
        .min(rows);
    (rows - free, free)
}

/// The Chinese reason given for changes over the daily quota.
fn over_quota_reason(limit: u64) -> String {
    format!(
        "今天从这位成员收到的修改已超过每日上限（{} MB），明天再同步或导入",
        limit / 1024 / 1024
    )
}

/// The UTC day of a device clock reading, as stored in `intake`.
fn day_of(now_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

pub(super) fn persist_intake(
    tx: &rusqlite::Transaction<'_>,
    quota: Option<&(crate::ids::MemberId, u64)>,
    bytes: u64,
    now_ms: i64,
) -> Result<()> {
    let (Some((member, _)), true) = (quota, bytes > 0) else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO intake (member, day, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (member, day) DO UPDATE SET bytes = bytes + excluded.bytes",
    )?
    .execute(params![member.as_str(), day_of(now_ms), bytes as i64])?;
    Ok(())
}

pub(super) fn persist_quarantine(
    tx: &rusqlite::Transaction<'_>,
    rows: &[Quarantined],
    source: &str,
    now: i64,
) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO quarantine (doc_id, hash, actor, reason, source, at, bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for q in rows {
        insert.execute(params![
            q.doc.key(),
            q.hash.as_ref(),
            q.actor,
            q.reason,
            source,
            now,
            q.bytes
        ])?;
    }
    Ok(())
}

/// Records the changes of revoked devices accepted from another device, for review.
pub(super) fn persist_relayed(
    tx: &rusqlite::Transaction<'_>,
    rows: &[Quarantined],
    source: &str,
    now: i64,
) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO relayed (doc_id, hash, actor, source, at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for q in rows {
        insert.execute(params![q.doc.key(), q.hash.as_ref(), q.actor, source, now])?;
    }
    Ok(())
}

/// Records the changes accepted on a standing their member has lost since, for review.
pub(super) fn persist_outdated(
    tx: &rusqlite::Transaction<'_>,
    rows: &[Quarantined],
    source: &str,
    now: i64,
) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO outdated (doc_id, hash, actor, reason, source, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for q in rows {
        insert.execute(params![
            q.doc.key(),
            q.hash.as_ref(),
            q.actor,
            q.reason,
            source,
            now
        ])?;
    }
    Ok(())
}

/// The school as read at given heads, for the changes that declare them: a few views, the
/// most recently used first. Heads fix a document's content, so a view stays true for as long
/// as the store is open, across writes and sessions: on the hub, two hundred phones that
/// synced the same school declare the same heads, and the school (hundreds of members and
/// pairings) is read once for all of them rather than once per document each merges.
#[derive(Debug, Default)]
pub(crate) struct SchoolViews {
    views: Vec<(Vec<ChangeHash>, Arc<SchoolView>)>,
}

/// Views kept: the current school and the few states phones that are behind still declare.
const SCHOOL_VIEWS: usize = 8;

impl SchoolViews {
    /// The school document at `heads` (None: this side lacks one of them).
    pub(crate) fn at(
        &mut self,
        school: &Automerge,
        heads: &[ChangeHash],
    ) -> Option<Arc<SchoolView>> {
        // Checked before the cache too: a view read from a merged document whose changes were
        // then refused is keyed by heads the rebuilt document no longer holds.
        if heads.iter().any(|h| !doc::has_change(school, h)) {
            return None;
        }
        let mut key = heads.to_vec();
        key.sort();
        if let Some(i) = self.views.iter().position(|(k, _)| *k == key) {
            let hit = self.views.remove(i);
            let view = hit.1.clone();
            self.views.insert(0, hit);
            return Some(view);
        }
        let mut current = school.get_heads();
        current.sort();
        let view = Arc::new(if current == key {
            school::read(school)
        } else {
            school::read_at(school, heads)
        });
        self.views.insert(0, (key, view.clone()));
        self.views.truncate(SCHOOL_VIEWS);
        Some(view)
    }
}

/// The class a child file says its child is in, at `heads`.
fn class_at(child_doc: &Automerge, heads: &[ChangeHash]) -> Option<crate::ids::ClassId> {
    let profile = doc::map_at_path(child_doc, &["profile"])?;
    match child_doc.get_at(&profile, "class_id", heads) {
        Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
            automerge::ScalarValue::Str(c) => Some(crate::ids::ClassId(c.to_string())),
            _ => None,
        },
        _ => None,
    }
}

/// Who hands this side the changes it merges, as far as the connection proves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Sender {
    /// A relay this side trusts to have judged what it passes on: the school hub, the
    /// office's bundle at join.
    #[default]
    Relay,
    /// An administrator's device, authenticated by the connection (or a file's signature):
    /// trusted as a relay, except that a revoked device's changes it hands on are listed for
    /// review, since it may not have heard of the revocation (see `Batch::admit`).
    Administrator { device: crate::ids::DeviceId },
    /// Another member's device, authenticated by the connection: only changes made on it
    /// (its own actor) are taken from it; changes of other devices it carries are deferred
    /// until they arrive from their own device or through the hub (unless that device is
    /// revoked: see `Batch::admit`), so a modified app cannot
    /// pass off changes under another device's actor. Its own changes are also bounded by the
    /// roles its certificate carries, whatever the school document it declares says.
    Device {
        device: crate::ids::DeviceId,
        roles: Option<Vec<crate::roles::Role>>,
    },
}

impl Sender {
    /// Whether this sender passes on other devices' changes (the hub, an administrator's
    /// device), rather than only its own.
    pub fn relays(&self) -> bool {
        !matches!(self, Sender::Device { .. })
    }

    /// The sender behind a connection from the device whose network key is `key`, used by
    /// `member` (as this side's school document gives the member now) with the roles its
    /// certificate carries: an administrator's device relays, anyone else's is held to its
    /// own changes, within the roles of its certificate and those `member` holds now.
    ///
    /// The certificate bounds what a member lost since it was issued (a phone declaring a
    /// school state from before); a role the school gave her since is hers at once, before
    /// her phone is re-certified: a 任课教师 made 班主任 mid-term records her first 家访 as
    /// 班主任 before her next sync (`trust_hub`, `a_role_given_after_the_certificate…`).
    pub fn for_device(
        key: &[u8; 32],
        member: &school::Member,
        cert_roles: &[crate::roles::Role],
    ) -> Sender {
        if member.roles.iter().any(|r| r.administers()) {
            Sender::Administrator {
                device: crate::ids::DeviceId::from_key(key),
            }
        } else {
            let mut roles = cert_roles.to_vec();
            roles.extend(member.roles.iter().filter(|r| !cert_roles.contains(r)));
            Sender::Device {
                device: crate::ids::DeviceId::from_key(key),
                roles: Some(roles),
            }
        }
    }
}

impl super::Store {
    /// The children whose files the school erased, as this store's school document says.
    pub fn erased_children(&mut self) -> Result<std::collections::BTreeSet<crate::ids::ChildId>> {
        Ok(self
            .doc(&DocId::School)?
            .map(school::erased_children)
            .unwrap_or_default())
    }
}

impl Batch<'_> {
    /// [`Batch::change`], then the new change judged as every other device will judge it when
    /// it arrives (the rules of [`crate::trust`], as [`Batch::admit`] applies them): one the
    /// rules would refuse is an error here and nothing is written, instead of a change this
    /// device keeps while the hub and every peer quarantine it, with every later change of
    /// the document waiting behind it. The writers check the same rules before they write
    /// (to say in the user's terms what is not allowed); this gives the rules, not the
    /// writers' copies of them, the last word.
    ///
    /// For the writes that are rare and touch what the rules guard hardest: consent, a file's
    /// sections, a record's edit or void, a progress note. A new record
    /// (`Archive::add_record`) is not judged again: it is the hot path whose cost BENCHMARKS
    /// §1 holds against a bare insert, and its checks (the writer's role for the kind, care
    /// of the child, consent) are the rules' own tables.
    pub fn change_judged<R>(
        &mut self,
        id: &DocId,
        create: bool,
        message: &str,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<R>,
    ) -> Result<R> {
        self.ensure_context(id)?;
        let before = self.doc(id)?.map(Automerge::get_heads);
        let out = self.change(id, create, message, f)?;
        let Some(change) = self
            .docs
            .get(id)
            .filter(|d| Some(d.get_heads()) != before)
            .and_then(Automerge::get_last_local_change)
        else {
            return Ok(out);
        };
        match self.judge(id, &change, &mut None).0 {
            Verdict::Accept => Ok(out),
            Verdict::Refuse(why) | Verdict::Defer(why) => Err(crate::error::Error::NotPermitted(
                format!("这项修改不符合学校的规则，其他设备不会接受，没有保存：{why}"),
            )),
        }
    }

    /// Carries what this device wrote on `old`, a copy of an older generation of `id` that the
    /// batch just replaced, into the new one as this device's new changes (`crate::carry`):
    /// every other device refuses the older generation's changes, so a 谈心 written offline
    /// while the office re-based the file would otherwise vanish from the phone it was typed
    /// on (rebase story 2). Each change is made on the new generation as its base change made
    /// it, plus the ones carried before it (concurrent with what others wrote there since),
    /// and judged by the rules first, as the others will judge it: it declares the school as
    /// it is now (a consent withdrawn since, a role lost), and one the rules refuse is taken
    /// back out rather than kept to be refused everywhere: logged, and noted in this batch
    /// (`crate::carry::NOT_CARRIED`) so that the member who typed it is told what was not kept
    /// and why (`Archive::take_not_carried`). Returns how many were carried.
    ///
    /// On a hub, the same for each console device it registered (`archive::console`): what a
    /// member typed at the office console is carried under her console device, as hers.
    fn carry_over(&mut self, id: &DocId, old: &Automerge, covered: Option<&[ChangeHash]>) -> usize {
        let mut carried = 0;
        for writer in self.writers_here() {
            let own = writer == *self.actor;
            self.writing_as = (!own).then_some(writer.clone());
            carried += self.carry_over_as(id, old, covered, &crate::ids::device_hex(&writer));
        }
        self.writing_as = None;
        carried
    }

    /// [`Batch::carry_over`] for one writer (`device`, its device id in hex), in the order
    /// `crate::carry` gives.
    fn carry_over_as(
        &mut self,
        id: &DocId,
        old: &Automerge,
        covered: Option<&[ChangeHash]>,
        device: &str,
    ) -> usize {
        let this = crate::carry::ThisDevice(device);
        let written = crate::carry::Written::since(old, covered, this);
        let Some(new) = self.docs.get(id) else {
            return 0;
        };
        let lacking = crate::carry::lacking_here(old, &written, new, this);
        // The new generation as the office made it: its base change (and the genesis change
        // it rests on). Without it (not expected), on what the copy holds.
        let genesis = doc::genesis_hash(id);
        let base = self
            .docs
            .get(&DocId::School)
            .and_then(|s| school::generation(s, id))
            .and_then(|g| {
                new.get_changes(&[])
                    .into_iter()
                    .find(|c| g.is_base(c, genesis))
                    .map(|c| vec![c.hash()])
            });
        let mut line = base.clone().unwrap_or_else(|| new.get_heads());
        // Records the base lacks though the copy holds them now (a colleague's, carried by
        // her device): on top, last.
        let records_obj = doc::access::map_at(new, &automerge::ROOT, doc::RECORDS);
        let only_after_base = |r: &String| {
            records_obj.as_ref().is_some_and(|o| {
                matches!(new.get(o, r.as_str()), Ok(Some(_)))
                    && matches!(new.get_at(o, r.as_str(), &line), Ok(None))
            })
        };
        let (later, at_base): (Vec<String>, Vec<String>) = lacking
            .records
            .into_iter()
            .partition(|r| base.is_some() && only_after_base(r));
        let mut carried = 0;
        let mut refused = Vec::new();
        for record in at_base {
            match self.carry_one(id, &mut line, old, &written, Some(&record), this) {
                Ok(true) => carried += 1,
                Ok(false) => {}
                Err(why) => refused.push((record, why)),
            }
        }
        if lacking.sections {
            match self.carry_one(id, &mut line, old, &written, None, this) {
                Ok(true) => carried += 1,
                Ok(false) => {}
                Err(why) => {
                    tracing::warn!(doc = %id, "sections written on an older generation were not carried over: {why}");
                    self.note_not_carried(id, old, None, &why);
                }
            }
        }
        for (record, first) in refused {
            match self.carry_one(id, &mut line, old, &written, Some(&record), this) {
                Ok(true) => carried += 1,
                Ok(false) => {}
                Err(_) => {
                    tracing::warn!(doc = %id, record, "a record written on an older generation was not carried over: {first}");
                    self.note_not_carried(id, old, Some(&record), &first);
                }
            }
        }
        for record in later {
            let Some(mut top) = self.docs.get(id).map(Automerge::get_heads) else {
                break;
            };
            match self.carry_one(id, &mut top, old, &written, Some(&record), this) {
                Ok(true) => carried += 1,
                Ok(false) => {}
                Err(why) => {
                    tracing::warn!(doc = %id, record, "a part written on an older generation was not carried over: {why}");
                    self.note_not_carried(id, old, Some(&record), &why);
                }
            }
        }
        carried
    }

    /// Notes what [`Batch::carry_over_as`] did not carry over into `id` (`record` of `old`, or
    /// the sections when `None`) for the member who typed it, appended to what is noted
    /// already (`crate::carry::NOT_CARRIED`, written with this batch). Only this device's own
    /// work: a hub's console devices have no one to tell it to after a sync (logged only).
    fn note_not_carried(&mut self, id: &DocId, old: &Automerge, record: Option<&str>, why: &str) {
        use crate::carry::{NotCarried, NotKept};
        if self.writing_as.is_some() {
            return;
        }
        let what = match record {
            None => NotKept::Sections,
            Some(r) => {
                let (kind, date) = crate::records::meta(old, r)
                    .map(|m| (m.kind_key, m.happened_on))
                    .unwrap_or_default();
                let held = self
                    .docs
                    .get(id)
                    .is_some_and(|new| crate::records::record_at(new, r).is_some());
                if held {
                    NotKept::Part { kind, date }
                } else {
                    NotKept::Record { kind, date }
                }
            }
        };
        // The child's name as the new generation has it: by the time she is told, the file
        // may have left this device (a consent withdrawn puts it out of her scope).
        let child = match id.child() {
            Some(c) => self
                .doc(&DocId::Child(c.clone()))
                .ok()
                .flatten()
                .and_then(|d| {
                    doc::access::map_at(d, &automerge::ROOT, "profile")
                        .and_then(|p| doc::access::get_str(d, &p, "name"))
                })
                .unwrap_or_default(),
            None => String::new(),
        };
        self.append_not_carried(&NotCarried {
            doc: id.clone(),
            child,
            what,
            why: why.to_owned(),
        });
    }

    /// Appends `note` to what is noted already for the member (`crate::carry::NOT_CARRIED`,
    /// written with this batch), keeping the last [`crate::carry::NOT_CARRIED_KEPT`].
    pub(crate) fn append_not_carried(&mut self, note: &crate::carry::NotCarried) {
        use crate::carry::NOT_CARRIED;
        let noted = match self.meta.iter().rev().find(|(k, _)| k == NOT_CARRIED) {
            Some((_, v)) => v.clone(),
            None => super::meta_get(self.conn, NOT_CARRIED)
                .ok()
                .flatten()
                .unwrap_or_default(),
        };
        let line = note.line();
        let noted = noted.lines().filter(|l| !l.is_empty());
        let text = crate::carry::noted_with(noted, [line.as_str()]);
        self.set_meta(NOT_CARRIED, &text);
    }

    /// One carried change (the sections when `record` is `None`), made on `line` and judged:
    /// whether it wrote anything, or why it was taken back out. `line` moves to an accepted
    /// change.
    fn carry_one(
        &mut self,
        id: &DocId,
        line: &mut Vec<ChangeHash>,
        old: &Automerge,
        written: &crate::carry::Written,
        record: Option<&str>,
        this: crate::carry::ThisDevice<'_>,
    ) -> std::result::Result<bool, String> {
        let Some(heads) = self.docs.get(id).map(Automerge::get_heads) else {
            return Ok(false);
        };
        let change = match self.change_at(id, line, CARRIED_OVER, |tx| match record {
            None => crate::carry::carry_sections(old, written, tx),
            Some(r) => crate::carry::carry_record(old, written, tx, r, this),
        }) {
            Err(e) => return Err(e.to_string()),
            Ok(None) => return Ok(false),
            Ok(Some(c)) => c,
        };
        let why = match self.judge(id, &change, &mut None).0 {
            Verdict::Accept => match self.refused_at(id, &change, &heads) {
                None => {
                    *line = vec![change.hash()];
                    return Ok(true);
                }
                Some(why) => why,
            },
            Verdict::Refuse(why) | Verdict::Defer(why) => why,
        };
        // Taken back out: the document as it was before it (or, if that cannot be built,
        // kept: it is this side's, not the sender's).
        match self.docs.get(id).and_then(|d| d.fork_at(&heads).ok()) {
            Some(back) => self.replace(id, back),
            None => {
                *line = vec![change.hash()];
                return Ok(true);
            }
        }
        Err(why)
    }

    /// Why the rules refuse `change`, a carried change to a child's care file, judged against
    /// the file as it is at `heads` (before the change) rather than at what the change rests
    /// on (the base change): a consent withdrawn in the new generation since must stop it.
    fn refused_at(&mut self, id: &DocId, change: &Change, heads: &[ChangeHash]) -> Option<String> {
        if !matches!(id, DocId::Child(_)) {
            return None;
        }
        let doc = self.docs.get(id)?;
        let school_doc = self.docs.get(&DocId::School)?;
        let view = self.school_views.at(school_doc, &school_doc.get_heads())?;
        let auth = AuthState {
            school: &view,
            child_class: class_at(doc, heads),
            consent: crate::consent::read(doc, Some(heads)),
        };
        match trust::validate(id, doc, change, &auth) {
            Verdict::Refuse(why) => Some(why),
            _ => None,
        }
    }

    /// The actors this store writes under: its own, and on a hub the console devices it
    /// registered ([`school::consoles_registered_by`]).
    fn writers_here(&self) -> Vec<automerge::ActorId> {
        let mut out = vec![self.actor.clone()];
        if let Some(school) = self.docs.get(&DocId::School) {
            let epoch = crate::ids::Epoch::of_actor(self.actor);
            out.extend(
                school::consoles_registered_by(school, &crate::ids::device_hex(self.actor))
                    .iter()
                    .map(|d| crate::ids::Epoch::actor_of(epoch.as_ref(), d)),
            );
        }
        out
    }

    /// Whether `id` is a private or staff part whose child file here is a copy of an older
    /// generation than the school records (its base change has not come here yet).
    fn child_file_is_stale(&mut self, id: &DocId) -> bool {
        let (DocId::Private(c) | DocId::Staff(c)) = id else {
            return false;
        };
        let child = DocId::Child(c.clone());
        let Some(g) = self
            .docs
            .get(&DocId::School)
            .and_then(|s| school::generation(s, &child))
        else {
            return false;
        };
        let genesis = doc::genesis_hash(&child);
        self.docs
            .get(&child)
            .is_some_and(|d| !d.get_changes(&[]).iter().any(|c| g.is_base(c, genesis)))
    }

    /// Names where the changes merged by this batch come from (a peer's device id,
    /// `bundle`), for the quarantine.
    pub fn set_source(&mut self, source: &str) {
        source.clone_into(&mut self.source);
    }

    /// Says who sends the changes this batch merges (see [`Sender`]).
    pub fn set_sender(&mut self, sender: Sender) {
        self.sender = sender;
    }

    /// Takes at most `bytes` of changes a day (UTC, by this store's clock) from `member`; what
    /// is over is deferred until the next day (the hub's per-member quota).
    pub fn set_daily_quota(&mut self, member: crate::ids::MemberId, bytes: u64) {
        self.quota = Some((member, bytes));
    }

    /// Adds to this write's free share ([`FREE_ROWS`]) for `wire_bytes` the sender sent for it
    /// (the frame or the file, as received), up to [`FREE_ROWS_MAX`].
    pub fn grant_free_rows_for(&mut self, wire_bytes: u64) {
        self.free_rows = self
            .free_rows
            .saturating_add(FREE_ROWS_PER_WIRE_BYTE.saturating_mul(wire_bytes))
            .min(FREE_ROWS_MAX.max(FREE_ROWS));
    }

    /// Counts the `rows` a peer's input claims ([`crate::doc::bounds`]) against the quota's
    /// member's day, before automerge reads it: whether they fit. An input that claims rows
    /// does not fit once what is left of her day, after its cost, could not keep the smallest
    /// change ([`crate::doc::bounds::MIN_CHANGE_CHUNK`]): nothing of it would be kept, so it
    /// is not read, even within the write's free share. (Without a quota, always.)
    pub(super) fn charge_claimed(&mut self, rows: u64, bytes: usize) -> Result<bool> {
        let Some((_, limit)) = &self.quota else {
            return Ok(true);
        };
        let limit = *limit;
        if rows == 0 {
            return Ok(true);
        }
        let (weight, free) = claimed_weight(rows, bytes, self.free_rows);
        let after = self
            .taken_today()?
            .saturating_add(weight)
            .saturating_add(doc::bounds::MIN_CHANGE_CHUNK);
        if after > limit {
            return Ok(false);
        }
        self.free_rows -= free;
        self.intake += weight;
        self.claimed += weight;
        Ok(true)
    }

    /// What is answered for an input the quota's member sent past her day's allowance:
    /// `changes` deferred, unread.
    pub(super) fn over_quota(&self, changes: usize) -> Admission {
        Admission {
            deferred: changes.max(1),
            reason: Some(over_quota_reason(self.quota.as_ref().map_or(0, |q| q.1))),
            ..Admission::default()
        }
    }

    /// Bytes of changes already taken from the quota's member today, this batch included.
    fn taken_today(&self) -> Result<u64> {
        let Some((member, _)) = &self.quota else {
            return Ok(0);
        };
        let stored: Option<i64> = self
            .conn
            .prepare_cached("SELECT bytes FROM intake WHERE member = ?1 AND day = ?2")?
            .query_row(params![member.as_str(), day_of(self.now_ms)], |r| r.get(0))
            .optional()?;
        Ok(stored.unwrap_or(0).max(0) as u64 + self.intake)
    }

    /// Judges the changes `id` gained since `before` and keeps only the accepted ones.
    ///
    /// This is the first place the merged document is read back, and a peer's bytes can make
    /// that panic in automerge even after they loaded without error (a document whose change
    /// metadata names operations it does not hold: `get_changes` unwraps `MissingOps`, found
    /// by fuzzing). Judging runs under the same guard as the load ([`super::from_peer`]): such
    /// a panic is the peer's damaged bytes, an error, and the batch fails, dropping the
    /// half-merged document from memory; errors of the store itself pass through unchanged.
    pub(super) fn admit(&mut self, id: &DocId, before: &[ChangeHash]) -> Result<Admission> {
        super::peer_guarded(id, || self.judge_merged(id, before))
    }

    fn judge_merged(&mut self, id: &DocId, before: &[ChangeHash]) -> Result<Admission> {
        let Some(doc) = self.docs.get(id) else {
            return Ok(Admission::default());
        };
        let new: Vec<Change> = doc.get_changes(before);
        if new.is_empty() {
            return Ok(Admission::default());
        }
        // The trust root: a school document arriving in a store that has none (creating or
        // joining a school) is taken as it is, like the school key in an invite.
        let has_school = if *id == DocId::School {
            !before.is_empty()
        } else {
            self.docs.contains_key(&DocId::School) || self.has(&DocId::School)?
        };
        if !has_school {
            return Ok(Admission {
                accepted: new.len(),
                ..Admission::default()
            });
        }
        // An erased child's documents are refused from anyone, whatever school state their
        // changes declare (the erasure is final). Nothing of them is kept, not even in the
        // quarantine: that would keep the very bytes the erasure removes.
        let erased = id.child().is_some_and(|c| {
            self.docs
                .get(&DocId::School)
                .is_some_and(|s| school::is_erased(s, c))
        });
        let known_bad = self.known_refused(id, &new)?;
        let genesis = doc::genesis_hash(id);
        // A layout upgrade of a document made by an older build is, like genesis, the same
        // change everywhere (`doc::layout_upgrade`): accepted by its hash.
        let upgrade = if new.iter().any(|c| *c.actor_id() == doc::genesis_actor()) {
            self.docs
                .get(id)
                .and_then(|d| {
                    doc::layout_upgrade(id, &d.fork_at(before).ok()?)
                        .ok()
                        .flatten()
                })
                .map(|c| c.hash())
        } else {
            None
        };
        // A re-based document: only its current generation's base change and what descends
        // from it are taken (see `archive::rebase`). `current` holds the changes of that
        // generation known so far; the copy held before this merge is of it only if it holds
        // the base change.
        let generation = match id {
            DocId::School => None,
            _ => self
                .docs
                .get(&DocId::School)
                .and_then(|s| school::generation(s, id)),
        };
        let (mut current, held_current) = match (&generation, self.docs.get(id)) {
            (Some(g), Some(doc)) => {
                let arriving: HashSet<ChangeHash> = new.iter().map(Change::hash).collect();
                let held: Vec<Change> = doc
                    .get_changes(&[])
                    .into_iter()
                    .filter(|c| !arriving.contains(&c.hash()))
                    .collect();
                if held.iter().any(|c| g.is_base(c, genesis)) {
                    let set = held.iter().map(Change::hash);
                    (set.filter(|h| Some(*h) != genesis).collect(), true)
                } else {
                    (HashSet::new(), false)
                }
            }
            _ => (HashSet::new(), true),
        };
        let mut old_generation: HashSet<ChangeHash> = HashSet::new();
        let mut not_ok: HashSet<ChangeHash> = HashSet::new();
        let mut refused: HashSet<ChangeHash> = HashSet::new();
        let mut accepted = Vec::new();
        let mut admission = Admission::default();
        let mut quarantined = Vec::new();
        let mut relayed = Vec::new();
        let mut outdated = Vec::new();
        for change in &new {
            let hash = change.hash();
            let verdict = if erased {
                Verdict::Refuse(ERASED.into())
            } else if Some(hash) == genesis || Some(hash) == upgrade {
                Verdict::Accept
            } else if let Some(g) = &generation
                && !g.is_base(change, genesis)
                && !change.deps().iter().all(|d| current.contains(d))
            {
                old_generation.insert(hash);
                admission.stale += 1;
                Verdict::Refuse(OLD_GENERATION.into())
            } else if known_bad.contains(&hash) {
                Verdict::Refuse("这项修改此前已被拒绝".into())
            } else if change.deps().iter().any(|d| refused.contains(d)) {
                Verdict::Refuse("依赖一项被拒绝的修改".into())
            } else if change.deps().iter().any(|d| not_ok.contains(d)) {
                Verdict::Defer("依赖一项暂未接受的修改".into())
            } else {
                // A base change is what an administrator recorded as the generation: taken as
                // it is (it copies records of many authors).
                let judged = if generation
                    .as_ref()
                    .is_some_and(|g| g.is_base(change, genesis))
                {
                    Verdict::Accept
                } else {
                    let mut dated = None;
                    let (verdict, lost) = self.judge(id, change, &mut dated);
                    let reason = match (lost, self.dated_ahead(change, dated)) {
                        (Some(a), Some(b)) => Some(format!("{a}；{b}")),
                        (a, b) => a.or(b),
                    };
                    if let Some(reason) = reason {
                        outdated.push(Quarantined {
                            doc: id.clone(),
                            hash,
                            actor: change.actor_id().to_hex_string(),
                            reason,
                            bytes: Vec::new(),
                        });
                    }
                    verdict
                };
                let foreign = matches!(&self.sender, Sender::Device { device, .. }
                    if !change.actor_id().to_hex_string().starts_with(device.as_str()));
                match judged {
                    // Documents only administrators write (the school's members, devices,
                    // pairings; its secret; contacts) never come from a member's device in
                    // another device's name, revoked or not: changes are not signed, so a
                    // modified app can name any actor, and under an administrator's the rules
                    // allow everything (an administrator's own device is a relay).
                    Verdict::Accept if foreign && admin_only(id) => {
                        Verdict::Defer(ADMIN_ONLY_FOREIGN.into())
                    }
                    // The rules would take it, but not from this sender: it must come from its
                    // own device or through a relay (a stolen actor never gets in this way)...
                    Verdict::Accept if foreign && !self.revoked_now(change) => Verdict::Defer(
                        "对方转交了其他设备的修改：需由那台设备本身或学校服务器同步过来".into(),
                    ),
                    // ...nor, from a member's device, a revoked device's change beyond what the
                    // carrier could write herself, unless it is that device's member's own
                    // records: changes are not signed, and under a revoked administrator's
                    // actor, declaring the state before the revocation, a modified app could
                    // write anything (trust story 16). Her own work resting on an honest one is
                    // then not held back for ever (story 16b).
                    Verdict::Accept
                        if foreign
                            && !self.own_records_only(id, change)
                            && !self.carrier_may_write(id, change) =>
                    {
                        Verdict::Defer(REVOKED_BEYOND_OWN.into())
                    }
                    // ...unless that device is revoked: it will never send it itself, and the
                    // sender's own work may rest on it. Taken, and listed for review with who
                    // handed it on (the rules above judged it as the revoked device's).
                    //
                    // An administrator's device hands on every device's changes, a revoked
                    // one's among them when it had not heard of the revocation: taken, and
                    // listed the same way. (Not from the hub, which listed them when it took
                    // them: a phone's first sync would list a departed member's history.)
                    Verdict::Accept
                        if foreign
                            || (matches!(self.sender, Sender::Administrator { .. })
                                && self.revoked_now(change)) =>
                    {
                        relayed.push(Quarantined {
                            doc: id.clone(),
                            hash,
                            actor: change.actor_id().to_hex_string(),
                            reason: String::new(),
                            bytes: Vec::new(),
                        });
                        Verdict::Accept
                    }
                    v => v,
                }
            };
            // The daily quota counts what this side keeps of the member's changes: the ones it
            // takes, and the refused ones whose bytes the quarantine keeps for review (else
            // a modified app could fill the disk with changes it knows will be refused).
            let verdict = match (verdict, &self.quota) {
                (v @ (Verdict::Accept | Verdict::Refuse(_)), Some((_, limit))) => {
                    let size = change.raw_bytes().len() as u64;
                    if self.taken_today()? + size > *limit {
                        Verdict::Defer(over_quota_reason(*limit))
                    } else {
                        self.intake += size;
                        v
                    }
                }
                (v, _) => v,
            };
            match verdict {
                Verdict::Accept => {
                    accepted.push(change.clone());
                    admission.accepted += 1;
                    if generation.is_some() {
                        current.insert(hash);
                    }
                }
                Verdict::Refuse(reason) => {
                    not_ok.insert(hash);
                    refused.insert(hash);
                    admission.refused += 1;
                    if !erased && !old_generation.contains(&hash) {
                        quarantined.push(Quarantined {
                            doc: id.clone(),
                            hash,
                            actor: change.actor_id().to_hex_string(),
                            reason: reason.clone(),
                            bytes: change.raw_bytes().to_vec(),
                        });
                    }
                    admission.reason.get_or_insert(reason);
                }
                Verdict::Defer(reason) => {
                    not_ok.insert(hash);
                    admission.deferred += 1;
                    admission.reason.get_or_insert(reason);
                }
            }
        }
        // The current generation's base change reached a copy of an older one: the copy is
        // replaced whole (its history is what the re-basing removes), never merged.
        if let Some(g) = &generation
            && !held_current
            && accepted.iter().any(|c| g.is_base(c, genesis))
        {
            let first = genesis
                .and_then(|h| self.docs.get(id).and_then(|d| d.get_change_by_hash(&h)))
                .filter(|c| !accepted.iter().any(|a| a.hash() == c.hash()));
            let mut fresh = Automerge::new();
            fresh.apply_changes(first.into_iter().chain(accepted))?;
            // The copy as it was: what this device wrote on it that the new generation lacks
            // is carried over (below).
            // Only a copy holding changes of this device can hold its records.
            let writers: Vec<String> = self
                .writers_here()
                .iter()
                .map(crate::ids::device_hex)
                .collect();
            let old = match self.docs.get(id) {
                Some(d)
                    if !before.is_empty()
                        && d.get_changes(&[]).iter().any(|c| {
                            let a = c.actor_id().to_hex_string();
                            writers.iter().any(|w| a.starts_with(w))
                        }) =>
                {
                    d.fork_at(before).ok()
                }
                _ => None,
            };
            // A private or staff part's carried records declare the child file's heads: while
            // that file here is of an older generation (its new one comes in its own frame),
            // they would declare heads no other device can ever hold. The new part waits for
            // the child file (offered again at the next sync), the copy kept as it was.
            // The state of the copy the new generation was built from, as its base change names
            // it (`doc::covered`): what this device changed since, the new generation lacks.
            let covered = old
                .as_ref()
                .and_then(|o| covered_state(g, genesis, &fresh, o));
            let to_carry = old.as_ref().is_some_and(|o| {
                writers.iter().any(|w| {
                    let this = crate::carry::ThisDevice(w);
                    let written = crate::carry::Written::since(o, covered.as_deref(), this);
                    !crate::carry::lacking_here(o, &written, &fresh, this).is_empty()
                })
            });
            if to_carry && self.child_file_is_stale(id) {
                let mut back = match self.docs.get(id) {
                    Some(d) => d.fork_at(before)?,
                    None => Automerge::new(),
                };
                back.set_actor(self.actor.clone());
                self.docs.insert(id.clone(), back);
                return Ok(Admission {
                    deferred: new.len(),
                    reason: Some(WAITS_FOR_CHILD_FILE.into()),
                    ..Admission::default()
                });
            }
            self.replace(id, fresh);
            if let Some(old) = old {
                admission.carried = self.carry_over(id, &old, covered.as_deref());
            }
            self.quarantine.extend(quarantined);
            self.relayed.extend(relayed);
            self.keep_outdated(outdated, &not_ok);
            admission.replaced = 1;
            return Ok(admission);
        }
        self.relayed.extend(relayed);
        self.keep_outdated(outdated, &not_ok);
        if not_ok.is_empty() {
            return Ok(admission);
        }
        // Rebuild the document from what it was plus only the accepted changes.
        let mut rebuilt = if before.is_empty() {
            Automerge::new()
        } else {
            match self.docs.get(id) {
                Some(d) => d.fork_at(before)?,
                None => load_doc(self.conn, id, self.actor)?.unwrap_or_default(),
            }
        };
        rebuilt.set_actor(self.actor.clone());
        rebuilt.apply_changes(accepted)?;
        self.docs.insert(id.clone(), rebuilt);
        self.quarantine.extend(quarantined);
        Ok(admission)
    }

    /// Why a change is listed for review by the clocks (the rules take any stored date, see
    /// `trust::rules`): its own clock reads more than a day past this side's (the writing
    /// device's clock was far ahead, or a modified app made up the time); or a record date it
    /// writes, `dated`, is after the day after its own clock reading (no honest app of this
    /// version takes one; an older release did, or the app was modified), or, when that
    /// reading bounds nothing (before the app existed, or past any date), after this side's
    /// tomorrow. Nothing is said by this side's clock when it is plainly wrong itself.
    fn dated_ahead(&self, change: &Change, dated: Option<chrono::NaiveDate>) -> Option<String> {
        use chrono::Datelike;
        let now = chrono::DateTime::from_timestamp_millis(self.now_ms())
            .filter(|t| t.year() >= crate::dates::EARLIEST_YEAR);
        let made = chrono::DateTime::from_timestamp(change.timestamp(), 0);
        if let (Some(now), Some(made)) = (now, made)
            && now
                .checked_add_days(chrono::Days::new(1))
                .is_some_and(|limit| made > limit)
        {
            return Some(format!(
                "修改上的时间（{}）比本机时间晚了一天以上：写入它的设备时钟不对，或应用被改动过",
                made.date_naive()
            ));
        }
        let date = dated?;
        match crate::dates::latest_date_by_clock(change.timestamp()) {
            Some(bound) => (date > bound)
                .then(|| format!("记录的日期（{date}）晚于写入它的时间，不是已经发生的事：请核对")),
            None => {
                let tomorrow = now?.date_naive().checked_add_days(chrono::Days::new(1))?;
                (date > tomorrow).then(|| {
                    format!(
                        "记录的日期（{date}）晚于本机今天，而写入它的设备时钟不对（早于 {} 年或无法识别），或应用被改动过",
                        crate::dates::EARLIEST_YEAR
                    )
                })
            }
        }
    }

    /// Lists for review the changes taken on a standing their member has lost (those that
    /// were deferred or refused for another reason are not taken, so not listed).
    fn keep_outdated(&mut self, outdated: Vec<Quarantined>, not_ok: &HashSet<ChangeHash>) {
        self.outdated
            .extend(outdated.into_iter().filter(|q| !not_ok.contains(&q.hash)));
    }

    /// Changes already in the quarantine (refused before, from anyone).
    fn known_refused(&self, id: &DocId, new: &[Change]) -> Result<HashSet<ChangeHash>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM quarantine WHERE doc_id = ?1 AND hash = ?2")?;
        let mut out = HashSet::new();
        let key = id.key();
        for c in new {
            if stmt.exists(params![key, c.hash().as_ref()])? {
                out.insert(c.hash());
            }
        }
        Ok(out)
    }

    /// Whether any of `hashes` of `doc` is in the quarantine.
    fn is_quarantined(&self, doc: &DocId, hashes: &[ChangeHash]) -> bool {
        let Ok(mut stmt) = self
            .conn
            .prepare_cached("SELECT 1 FROM quarantine WHERE doc_id = ?1 AND hash = ?2")
        else {
            return false;
        };
        let key = doc.key();
        hashes
            .iter()
            .any(|h| stmt.exists(params![key, h.as_ref()]).unwrap_or(false))
    }

    /// Whether `change` (in `id`, merged into the batch's copy) writes nothing but records its
    /// own device's member made: records created by one of her devices (new or edited, a void
    /// of her own), and 进步档案 entries she created on others' plans. Who made an object is
    /// its creating operation's device, never a field a change could write. What a member's
    /// phone may hand on of a revoked device whatever it writes (see `Batch::admit`).
    fn own_records_only(&mut self, id: &DocId, change: &Change) -> bool {
        let Some(view) = self.school_before_batch() else {
            return false;
        };
        let Some(doc) = self.docs.get(id) else {
            return false;
        };
        let Some((member, _)) = trust::author_of(&view, change.actor_id()) else {
            return false;
        };
        let Some(writes) = trust::paths::writes(doc, change) else {
            return false;
        };
        let at = [change.hash()];
        let hers = |obj: Option<&automerge::ObjId>| {
            obj.and_then(|o| trust::object_author(&view, doc, id, &at, o))
                .is_some_and(|m| m == member.id)
        };
        // A record or entry this change makes is hers, as the change is (never one made over
        // another's).
        let made = |w: &trust::paths::Write| {
            matches!(w.action, trust::paths::Action::Make(_)) && !w.replaces
        };
        writes.iter().all(|w| match w.path.as_slice() {
            [first, _rid] if first == doc::RECORDS => made(w),
            [first, _rid, rest @ ..] if first == doc::RECORDS => {
                hers(w.objects.get(1))
                    || match rest {
                        [p, _entry] if p == doc::layout::R_PROGRESS => made(w),
                        [p, _entry, ..] if p == doc::layout::R_PROGRESS => hers(w.objects.get(3)),
                        _ => false,
                    }
            }
            _ => false,
        })
    }

    /// Whether the rules would take `change`, a revoked device's handed on by a member's
    /// device, had the carrier's member made it herself (at the school state it declares,
    /// within her certificate): then handing it on lends her nothing she did not have.
    fn carrier_may_write(&mut self, id: &DocId, change: &Change) -> bool {
        let Sender::Device { device, .. } = self.sender.clone() else {
            return false;
        };
        let Some(carrier) = self.school_before_batch().and_then(|view| {
            view.devices
                .iter()
                .find(|d| d.id == device)
                .map(|d| d.member.clone())
        }) else {
            return false;
        };
        self.judging_as = Some(carrier);
        let verdict = self.judge(id, change, &mut None).0;
        self.judging_as = None;
        verdict == Verdict::Accept
    }

    /// The school as this side knew it before this batch merged anything into it.
    fn school_before_batch(&mut self) -> Option<Arc<SchoolView>> {
        let school_doc = self.docs.get(&DocId::School)?;
        let heads = self
            .touched
            .iter()
            .find(|(t, h)| *t == DocId::School && !h.is_empty())
            .map_or_else(|| school_doc.get_heads(), |(_, h)| h.clone());
        self.school_views.at(school_doc, &heads)
    }

    /// Whether the device whose actor made `change` is revoked in this side's school state as
    /// it was before this batch (not the merged copy, which holds the changes being judged).
    /// (Deciding *from whom* a change is taken may depend on what this side knows now;
    /// whether it is allowed at all never does: that is `judge`, against declared state.)
    fn revoked_now(&mut self, change: &Change) -> bool {
        let Some(view) = self.school_before_batch() else {
            return false;
        };
        trust::device_of_actor(&view, change.actor_id())
            .and_then(|d| view.devices.iter().find(|x| x.id == d))
            .is_some_and(|d| d.revoked)
    }

    /// The verdict on one change, against the auth state the trust module docs define; for an
    /// accepted change whose member has lost part of that standing in this side's school
    /// state now, also why it is listed for review (`trust::standing`).
    /// `dated`: set to the latest record date the change writes, once the rules took it.
    fn judge(
        &mut self,
        id: &DocId,
        change: &Change,
        dated: &mut Option<chrono::NaiveDate>,
    ) -> (Verdict, Option<String>) {
        let Some(doc) = self.docs.get(id) else {
            return (Verdict::Defer("档案不在本机".into()), None);
        };
        if !self.docs.contains_key(&DocId::School) {
            return (Verdict::Defer("还没有学校信息".into()), None);
        }
        let declared = Declared::parse(change.message());
        let mut consent = None;
        let (school_heads, child_class) = match id {
            DocId::School => (change.deps().to_vec(), None),
            DocId::Child(_) => {
                consent = crate::consent::read(doc, Some(change.deps()));
                (
                    match declared.school {
                        Some(h) => h,
                        None => return (Verdict::Refuse(NO_DECLARED.into()), None),
                    },
                    class_at(doc, change.deps()),
                )
            }
            DocId::Private(c) | DocId::Staff(c) => {
                let (Some(s), Some(ch)) = (declared.school, declared.child) else {
                    return (Verdict::Refuse(NO_DECLARED.into()), None);
                };
                let Some(child_doc) = self.docs.get(&DocId::Child(c.clone())) else {
                    return (Verdict::Defer("还没有这名学生的档案".into()), None);
                };
                if ch.iter().any(|h| !doc::has_change(child_doc, h)) {
                    return (Verdict::Defer("还没有这名学生档案的相应版本".into()), None);
                }
                consent = crate::consent::read(child_doc, Some(&ch));
                (s, class_at(child_doc, &ch))
            }
            DocId::Class(_) | DocId::Keys | DocId::Audit(_) | DocId::Contact(_) => {
                match declared.school {
                    Some(h) => (h, None),
                    None => return (Verdict::Refuse(NO_DECLARED.into()), None),
                }
            }
        };
        let school_heads = self.resolve_school_heads(school_heads);
        let Some(school_doc) = self.docs.get(&DocId::School) else {
            return (Verdict::Defer("还没有学校信息".into()), None);
        };
        let Some(mut view) = self.school_views.at(school_doc, &school_heads) else {
            // A school state this side refused can never be reached: refuse what rests on it.
            if self.is_quarantined(&DocId::School, &school_heads) {
                return (
                    Verdict::Refuse("修改所依据的学校信息含有被拒绝的修改".into()),
                    None,
                );
            }
            return (Verdict::Defer("还没有修改所依据的学校信息".into()), None);
        };
        // Judged as if the carrier's member had made it (`Batch::carrier_may_write`): the
        // change's device taken as hers.
        if let Some(carrier) = &self.judging_as
            && let Some(d) = trust::device_of_actor(&view, change.actor_id())
        {
            for entry in Arc::make_mut(&mut view)
                .devices
                .iter_mut()
                .filter(|x| x.id == d)
            {
                entry.member = carrier.clone();
                entry.revoked = false;
            }
        }
        // The sender's certificate bounds its own changes: roles it does not carry there are
        // not its to use, whatever the school document it declares says.
        // (The shared view is copied only when the certificate does take a role away.)
        if let Sender::Device {
            device,
            roles: Some(roles),
        } = &self.sender
            && let Some(d) = view.devices.iter().find(|d| &d.id == device)
        {
            let who = d.member.clone();
            let beyond =
                |m: &school::Member| m.id == who && m.roles.iter().any(|r| !roles.contains(r));
            if view.members.iter().any(beyond) {
                for m in Arc::make_mut(&mut view)
                    .members
                    .iter_mut()
                    .filter(|m| m.id == who)
                {
                    m.roles.retain(|r| roles.contains(r));
                }
            }
        }
        let (verdict, latest) = trust::validate_dated(
            id,
            doc,
            change,
            &AuthState {
                school: &view,
                child_class: child_class.clone(),
                consent: consent.clone(),
            },
        );
        if verdict != Verdict::Accept {
            return (verdict, None);
        }
        *dated = latest;
        // Taken, whatever this side knows now (replicas must not diverge); listed for review
        // when the member's standing here and now would not have allowed it. (Not for the
        // school document itself: its current state already holds the changes this merge is
        // judging, and only administrators write it, whose standing shrinks by deactivation,
        // which revokes their devices.)
        if *id == DocId::School {
            return (verdict, None);
        }
        let Some(now) = self.school_views.at(school_doc, &school_doc.get_heads()) else {
            return (verdict, None);
        };
        if !Arc::ptr_eq(&now, &view)
            && let Some((member, _)) = trust::author_of(&now, change.actor_id())
            && let Some((cut, lost)) = trust::standing::as_of(&view, &now, &member.id)
        {
            let auth = AuthState {
                school: &cut,
                child_class: child_class.clone(),
                consent: consent.clone(),
            };
            if let Verdict::Refuse(why) = trust::validate(id, doc, change, &auth) {
                let reason = format!(
                    "修改时{}还有这项权限，现在{}：{why}",
                    member.name,
                    lost.join("，")
                );
                return (verdict, Some(reason));
            }
        }
        // The child's file as this side knew it before this batch: the change declared an
        // older version of it (a phone that had not heard of a consent withdrawn, a class
        // moved or the child's departure, or a modified app declaring old heads on purpose).
        // Listed for review when that would refuse it. (Not the merged file: what arrives
        // with the change, a withdrawal recorded after it on the same phone, is not what it
        // ignored.)
        let Some(child) = id.child().map(|c| DocId::Child(c.clone())) else {
            return (verdict, None);
        };
        let Some(child_now) = self.docs.get(&child) else {
            return (verdict, None);
        };
        let known = self
            .touched
            .iter()
            .find(|(t, _)| *t == child)
            .map_or_else(|| child_now.get_heads(), |(_, h)| h.clone());
        if known.is_empty() {
            return (verdict, None);
        }
        let consent_now = crate::consent::read(child_now, Some(&known));
        let class_now = class_at(child_now, &known);
        // A departure is the school's: declared away with the school state it rests on.
        let left = |school: &SchoolView| id.child().is_some_and(|c| school.has_left(c));
        if consent_now == consent && class_now == child_class && left(&now) == left(&view) {
            return (verdict, None);
        }
        let auth = AuthState {
            school: &now,
            child_class: class_now,
            consent: consent_now,
        };
        match trust::validate(id, doc, change, &auth) {
            Verdict::Refuse(why) => (
                verdict,
                Some(format!(
                    "修改所依据的学生档案已有更新（同意书、班级或离校），现在：{why}"
                )),
            ),
            _ => (verdict, None),
        }
    }
}

/// Why a re-based private or staff part waits (`Batch::child_file_is_stale`).
const WAITS_FOR_CHILD_FILE: &str = "等这名学生档案的新版本到了再更新这一部分";

/// The message of the change carrying a device's records over into a re-based document.
const CARRIED_OVER: &str = "保留重建前在本机写下的记录";

/// Why another device's change to a document only administrators write is not taken from a
/// member's device.
const ADMIN_ONLY_FOREIGN: &str =
    "学校设置、密钥和联系方式的修改只能由写入它的管理员设备本身或学校服务器同步过来";

/// Whether only administrators write `id` (`trust::rules`): the school document, its secret,
/// a member's contact details.
fn admin_only(id: &DocId) -> bool {
    matches!(id, DocId::School | DocId::Keys | DocId::Contact(_))
}

/// Why a revoked device's change beyond its own records waits, from a member's device.
const REVOKED_BEYOND_OWN: &str = "对方转交了已停用设备的修改，超出了对方自己能写的范围：\
     需由管理员的设备同步过来";

/// The heads, in `old` (a copy of an older generation), of the state the new generation `new`
/// was built from, as its base change names it (`doc::covered`); `None` where the base change
/// names none (a re-basing by an older version) or is not in `new`.
fn covered_state(
    g: &school::Generation,
    genesis: Option<ChangeHash>,
    new: &Automerge,
    old: &Automerge,
) -> Option<Vec<ChangeHash>> {
    let base = new
        .get_changes(&[])
        .into_iter()
        .find(|c| g.is_base(c, genesis))?;
    let clock = doc::covered::read(base.message()?)?;
    let heads = doc::covered::heads_in(old, &clock);
    // Nothing but the genesis change in common: the copy is of another generation than the one
    // the base was built from (two re-basings behind), and every value of it would count as
    // changed since.
    if heads.iter().all(|h| Some(*h) == genesis) {
        return None;
    }
    Some(heads)
}
