//! What a member may hold, on every path: the rule itself (judged against a school document
//! and the class of each child), keeping a bundle's documents to it before they are merged,
//! and purging what a device's member may no longer see.
//!
//! The rule is one function, [`may_see`], used by sync scopes, bundle export, bundle import,
//! joining from a bundle and the purge, so they can never disagree.

use std::collections::HashMap;

use automerge::{Automerge, ROOT};

use super::Archive;
use crate::bundle::Entry;
use crate::carry::{NotCarried, NotKept};
use crate::doc::DocId;
use crate::doc::access::{get_str, map_at};
use crate::error::{Error, Result};
use crate::ids::{ChildId, ClassId, MemberId};
use crate::roles::Role;
use crate::school::{self, Member, SchoolView};
use crate::store::{Batch, StoreKey};

/// What the rule needs to know of a child, as the caller knows it (the projection, or a
/// bundle's document).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ChildFacts {
    /// The child's class.
    pub class: Option<ClassId>,
    /// The guardian withdrew consent to the private part, or objected to it
    /// (`crate::consent`): from then on only administrators hold it.
    pub private_withdrawn: bool,
    /// The guardian withdrew consent to the basic file, or objected to it: from then on only
    /// administrators hold any of the child's file (《儿童个人信息网络保护规定》第20条: the
    /// school deletes it; its carers' devices do at once, the office when it erases it).
    pub basic_withdrawn: bool,
}

impl ChildFacts {
    /// The facts a child's shared file gives.
    pub(crate) fn of(child_doc: &Automerge) -> ChildFacts {
        let consent = crate::consent::read(child_doc, None);
        let withdrawn = |cover| consent.as_ref().is_some_and(|c| c.is_withdrawn(cover));
        ChildFacts {
            class: map_at(child_doc, &ROOT, "profile")
                .and_then(|p| get_str(child_doc, &p, "class_id"))
                .map(ClassId),
            private_withdrawn: withdrawn(crate::consent::Cover::Private),
            basic_withdrawn: withdrawn(crate::consent::Cover::Basic),
        }
    }

    /// The facts as the projection keeps them (`p_children.class_id`, `.consent`).
    pub(crate) fn projected(class: Option<String>, consent: Option<&str>) -> ChildFacts {
        let withdrawn = |cover: crate::consent::Cover| {
            let key = format!("-{}", cover.key());
            consent.is_some_and(|c| c.split(',').any(|k| k == key))
        };
        ChildFacts {
            class: class.map(ClassId),
            private_withdrawn: withdrawn(crate::consent::Cover::Private),
            basic_withdrawn: withdrawn(crate::consent::Cover::Basic),
        }
    }

    /// The facts as a device judges what it takes in and hands in for its own member: not
    /// the basic file's withdrawal. Recorded in the very file it closes, the withdrawal may
    /// be this device's own unsent work, which must still reach the school (a new generation
    /// of a re-based file has to come in for it to be carried over); the school's word (the
    /// hub's `OutOfScope`, an administrator's file) and the purge, which keeps unsent work,
    /// take the file off the device.
    pub(crate) fn for_own_member(self) -> ChildFacts {
        ChildFacts {
            basic_withdrawn: false,
            ..self
        }
    }

    /// The facts as they were before any withdrawal (what a member could hold then).
    pub(crate) fn before_withdrawals(self) -> ChildFacts {
        ChildFacts {
            private_withdrawn: false,
            basic_withdrawn: false,
            ..self
        }
    }
}

/// [`ChildFacts`] of a child, as the caller knows them.
pub(crate) type FactsOf<'a> = dyn FnMut(&ChildId) -> Result<ChildFacts> + 'a;

/// Whether `member` cares for `child` in `school`: leadership and the archivist care for every
/// child, a 班主任 for the children of their class, anyone for the children they are paired
/// with (an active pairing).
pub(crate) fn cares_for(
    school: &SchoolView,
    member: &Member,
    child: &ChildId,
    facts_of: &mut FactsOf<'_>,
) -> Result<bool> {
    if member.roles.iter().any(|r| r.administers()) {
        return Ok(true);
    }
    if heads_class(school, member, facts_of(child)?.class.as_ref()) {
        return Ok(true);
    }
    Ok(school
        .pairings
        .iter()
        .any(|p| p.active && p.carer == member.id && p.child == *child))
}

/// Whether `member` is the 班主任 of `class`: heading it, or with it as her class. Only the
/// 班主任 of a child's own class holds her private and staff parts; paired with a child of
/// another class, a 班主任 is a carer like any other (DOMAIN.md §5.3).
pub(crate) fn heads_class(school: &SchoolView, member: &Member, class: Option<&ClassId>) -> bool {
    member.has(Role::HeadTeacher)
        && class.is_some_and(|k| {
            member.class_id.as_ref() == Some(k)
                || school
                    .class(k)
                    .is_some_and(|c| c.head_teacher.as_ref() == Some(&member.id))
        })
}

/// Whether `member` may see and write `doc` in `school` (DOMAIN.md §5.3). A member who is no
/// longer active sees the school document only; `school/keys` is for administrators only; an
/// erased child's documents nobody may hold; a child who left the school has no carers but
/// the administrators (whatever class or pairing the school document still names); a private
/// part whose consent the guardian withdrew, only the administrators (the school answers the
/// guardian and erases it from there; a new grant gives it back to its carers).
pub(crate) fn may_see(
    school: &SchoolView,
    member: &Member,
    doc: &DocId,
    facts_of: &mut FactsOf<'_>,
) -> Result<bool> {
    if doc.child().is_some_and(|c| school.is_erased(c)) {
        return Ok(false);
    }
    if !member.active {
        return Ok(*doc == DocId::School);
    }
    let admin = member.roles.iter().any(|r| r.administers());
    if admin {
        return Ok(match doc {
            DocId::Audit(_) | DocId::Keys | DocId::School | DocId::Class(_) => true,
            DocId::Contact(m) => may_reach(school, member, m, facts_of)?,
            DocId::Child(_) | DocId::Private(_) | DocId::Staff(_) => true,
        });
    }
    // A child's file: her facts read once (a look-up in the projection, on every write).
    let Some(c) = doc.child() else {
        return Ok(match doc {
            DocId::School => true,
            DocId::Contact(m) => may_reach(school, member, m, facts_of)?,
            DocId::Class(k) => {
                member.class_id.as_ref() == Some(k) || member.roles.iter().any(|r| r.is_teacher())
            }
            // The school secret that keys child ids: administrators (and the hub, whose
            // member is the founding administrator) only.
            DocId::Keys => false,
            // A device's access log: administrators, and the member whose device it is.
            DocId::Audit(d) => school
                .devices
                .iter()
                .any(|x| &x.id == d && x.member == member.id),
            DocId::Child(_) | DocId::Private(_) | DocId::Staff(_) => false,
        });
    };
    // A child who left the school, or whose guardian withdrew consent to the basic file, has
    // no carers but the administrators.
    if school.has_left(c) {
        return Ok(false);
    }
    let facts = facts_of(c)?;
    if facts.basic_withdrawn {
        return Ok(false);
    }
    Ok(match doc {
        DocId::Child(c) => cares_for(school, member, c, &mut |_| Ok(facts.clone()))?,
        // The private and staff parts: the 班主任 of the child's own class (a pairing gives
        // neither, whoever the carer is).
        DocId::Private(_) => {
            member.roles.iter().any(|r| r.sees_private())
                && heads_class(school, member, facts.class.as_ref())
                && !facts.private_withdrawn
        }
        DocId::Staff(_) => {
            member.roles.iter().any(|r| r.sees_staff())
                && heads_class(school, member, facts.class.as_ref())
        }
        _ => false,
    })
}

/// Whether `member` may hold the contact details of `other` (ARCHITECTURE.md "Who receives
/// what"): administrators hold everyone's; everyone holds their own and the administrators'
/// (whom they report to); a carer holds the 班主任's of each child they care for; a 班主任
/// holds those of the carers paired with the children of their class. Nobody else's.
fn may_reach(
    school: &SchoolView,
    member: &Member,
    other: &MemberId,
    facts_of: &mut FactsOf<'_>,
) -> Result<bool> {
    if member.roles.iter().any(|r| r.administers()) || member.id == *other {
        return Ok(true);
    }
    let Some(them) = school.member(other) else {
        return Ok(false);
    };
    if !them.active {
        return Ok(false);
    }
    if them.roles.iter().any(|r| r.administers()) {
        return Ok(true);
    }
    // The classes `m` heads as 班主任.
    let heads = |m: &Member| -> Vec<ClassId> {
        if !m.has(Role::HeadTeacher) {
            return Vec::new();
        }
        let mut out: Vec<ClassId> = school
            .classes
            .iter()
            .filter(|c| c.head_teacher.as_ref() == Some(&m.id))
            .map(|c| c.id.clone())
            .collect();
        out.extend(m.class_id.clone());
        out
    };
    let (theirs, mine) = (heads(them), heads(member));
    for p in school.pairings.iter().filter(|p| p.active) {
        let toward_them = p.carer == member.id && !theirs.is_empty();
        let toward_me = p.carer == *other && !mine.is_empty();
        if !toward_them && !toward_me {
            continue;
        }
        let Some(class) = facts_of(&p.child)?.class else {
            continue;
        };
        if (toward_them && theirs.contains(&class)) || (toward_me && mine.contains(&class)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A document as it will be once `entry` (if any) is merged into what the batch holds,
/// without merging it.
fn merged(b: &mut Batch<'_>, id: &DocId, entry: Option<&Entry>) -> Result<Option<Automerge>> {
    if let Some(e) = entry {
        crate::store::bounded(id, &e.data)?;
    }
    if *id == DocId::School
        && let Some(e) = entry
    {
        let current = b.doc(id)?;
        return crate::store::school_history::preview(current, &e.data).map(Some);
    }
    let mut doc = b.doc(id)?.cloned();
    if let Some(e) = entry {
        let target = doc.get_or_insert_with(Automerge::new);
        crate::store::from_peer(id, || target.load_incremental(&e.data))?;
    }
    Ok(doc)
}

/// The school document as it will be once the bundle is merged.
pub(crate) fn school_after(b: &mut Batch<'_>, entries: &[Entry]) -> Result<SchoolView> {
    let entry = entries.iter().find(|e| e.doc == DocId::School);
    let doc = merged(b, &DocId::School, entry)?.ok_or(Error::NotInitialised)?;
    // Reading a document that holds a peer's bytes may panic in automerge: damaged bytes.
    crate::store::peer_guarded(&DocId::School, || Ok(school::read(&doc)))
}

/// Keeps the entries of a bundle that `member` may see, judged against the school document and
/// each child's class as they will be once the kept entries are merged; returns them and how
/// many were dropped. Runs before anything is merged, so a dropped document never touches the
/// store.
pub(crate) fn entries_in_scope(
    b: &mut Batch<'_>,
    member: &MemberId,
    entries: Vec<Entry>,
) -> Result<(Vec<Entry>, usize)> {
    // The file's documents share one allowance for what their bytes may claim
    // (`doc::bounds`), checked before any of them is read.
    let inputs: Vec<&[u8]> = entries.iter().map(|e| e.data.as_slice()).collect();
    crate::store::bounded_documents("导入的文件", &inputs)?;
    let school = school_after(b, &entries)?;
    let Some(me) = school.member(member).cloned() else {
        return Err(Error::not_found("成员", member));
    };
    let by_doc: HashMap<DocId, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.doc.clone(), i))
        .collect();
    let mut facts: HashMap<ChildId, ChildFacts> = HashMap::new();
    let mut keep = Vec::with_capacity(entries.len());
    for e in &entries {
        let mut facts_of = |c: &ChildId| -> Result<ChildFacts> {
            if let Some(f) = facts.get(c) {
                return Ok(f.clone());
            }
            let id = DocId::Child(c.clone());
            let entry = by_doc.get(&id).map(|i| &entries[*i]);
            let known = match merged(b, &id, entry)? {
                Some(d) => crate::store::peer_guarded(&id, || Ok(ChildFacts::of(&d)))?,
                None => ChildFacts::default(),
            }
            .for_own_member();
            facts.insert(c.clone(), known.clone());
            Ok(known)
        };
        keep.push(may_see(&school, &me, &e.doc, &mut facts_of)?);
    }
    let dropped = keep.iter().filter(|k| !**k).count();
    let kept = entries
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect();
    Ok((kept, dropped))
}

/// Where an archive lives, to open it again later (after a sync that consumed it failed).
#[derive(Debug, Clone)]
pub struct Reopen {
    path: std::path::PathBuf,
    key: Option<StoreKey>,
}

impl Reopen {
    /// Opens the archive again (a new connection to the same file).
    pub fn open(&self) -> Result<Archive> {
        Archive::open_with_key(&self.path, self.key.as_ref())
    }

    /// Wipes the store (the school revoked this device): the file, its WAL and shared-memory
    /// file and a pending join key are overwritten with zeros, synced, and deleted. No archive
    /// may be open on it. An encrypted store is also unreadable once the app deletes its key.
    /// Every file is wiped even if one fails (the WAL holds recent pages in the clear of any
    /// store-level mistake); the first failure is returned.
    pub fn wipe(&self) -> Result<()> {
        let mut first = None;
        for suffix in ["", "-wal", "-shm", ".joining"] {
            let mut p = self.path.as_os_str().to_owned();
            p.push(suffix);
            let p = std::path::PathBuf::from(p);
            if p.exists()
                && let Err(e) = crate::store::wipe_file(&p)
            {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Archive {
    /// How to open this archive again, with the same key.
    pub fn reopen(&self) -> Reopen {
        Reopen {
            path: self.store.path().to_owned(),
            key: self.store.key().cloned(),
        }
    }

    /// Removes every document the member using this device may no longer see (a pairing
    /// ended, their class changed, they were deactivated, a child left), judged against the
    /// school document this device holds now: documents, changes, sync state and projection
    /// rows, then the freed pages are overwritten (see [`crate::store::Store::purge`]). Returns
    /// how many documents were removed. Changes made here to a purged document that no peer
    /// has received are lost with it: no peer would accept them from this member any more.
    pub fn purge_out_of_scope(&mut self) -> Result<usize> {
        // No school document (dropped as damaged, `drop_damaged`): nothing can be judged, and
        // nothing is dropped before the next sync fetches it again.
        let Some(school) = self.store.school_view()? else {
            return Ok(0);
        };
        // What each document was when the decision began: one the app's own connection
        // writes meanwhile (a 家访 saved while the sync decides) is not dropped with it.
        let held = self.store.held_doc_ids()?;
        let seen = self.store.heads_of(&held)?;
        // A member no longer active, or this device revoked, holds nothing but the school
        // document: no hub takes a hand-in from either, so unsent work keeps nothing here.
        let revoked = school
            .devices
            .iter()
            .any(|d| d.id == self.device && d.revoked);
        let me = school
            .member(&self.me)
            .filter(|m| m.active && !revoked)
            .cloned();
        // An erased child's file goes whatever it holds: the erasure is final, and nobody
        // takes work on it any more.
        let erased = |id: &DocId| id.child().is_some_and(|c| school.is_erased(c));
        // One who left the school: her file leaves every carer's device, but not before the
        // school holds what this device wrote in it before hearing of the leave (the school
        // keeps her file, and takes such a record, listed for review: trust story 14).
        let gone_for_good = |id: &DocId| {
            id.child()
                .is_some_and(|c| school.is_erased(c) || school.has_left(c))
        };
        let mut gone = Vec::new();
        // Her unsent work that leaves with a file, to be told to her (`take_not_carried`).
        let mut told: Vec<NotCarried> = Vec::new();
        let note = |id: &DocId, child: String, what: NotKept| NotCarried {
            doc: id.clone(),
            child,
            what,
            why: String::new(),
        };
        for id in held {
            let keep = match &me {
                Some(m) => may_see(&school, m, &id, &mut |c| self.child_facts(c))?,
                // No longer a member of this school: nothing but the school document.
                None => id == DocId::School,
            };
            // Work this device did on it before hearing it is no longer its member's (from a
            // peer, or a file from the office) stays until the school holds it: the hub takes
            // it as a hand-in at the next sync and then answers `OutOfScope` (below). Not for
            // an erased child's file (the erasure is final); a file of a child who left is
            // kept so (departure story: a record typed before the news reaches the office).
            if !keep
                && (me.is_none() || erased(&id) || !self.holds_unsent_work(&school, &id, &[])?)
            {
                if me.is_some() && erased(&id) && self.holds_unsent_work(&school, &id, &[])? {
                    told.push(note(&id, String::new(), NotKept::Erased));
                }
                gone.push(id);
            }
        }
        // What the hub said this device may no longer hold (a class it no longer heads: the
        // move is in the child's file, which the hub no longer sends here), unless this
        // device wrote on it beyond what the hub is known to have taken (live mode: the
        // member, who cannot know, went on writing): then it is offered again at the next
        // sync, handed in, and dropped after.
        for (id, covered) in self.store.out_of_scope()? {
            if id == DocId::School || gone.contains(&id) {
                continue;
            }
            // A copy of an older generation of a re-based file holds work that only its
            // replacement by the new generation carries over, and the school no longer sends
            // her the file: nobody takes that work any more (rebase story 2c), and offered
            // again it would be refused at every exchange.
            let stale = match (school.rebase_of(&id), self.store.doc(&id)?) {
                (Some(r), Some(doc)) => super::rebase::is_stale(&id, doc, r),
                _ => false,
            };
            if me.is_some()
                && !erased(&id)
                && !stale
                && self.holds_unsent_work(&school, &id, &covered)?
            {
                self.store.offer_again(&id)?;
            } else {
                if me.is_some()
                    && stale
                    && !erased(&id)
                    && self.holds_unsent_work(&school, &id, &covered)?
                {
                    let name = match id.child() {
                        Some(c) => self.projected_name(c)?.unwrap_or_default(),
                        None => String::new(),
                    };
                    told.push(note(&id, name, NotKept::StaleCopy));
                }
                gone.push(id);
            }
        }
        // Copies of an older generation of a re-based document (the base change has not come
        // here yet): they hold the history the re-basing removed, and the next sync brings the
        // current generation. Not one holding this device's unsent work: the new generation
        // replaces it and carries that work over (`store::admit`, rebase story 3); purged
        // now, a 谈心 typed offline while the office re-based the file would be lost.
        for r in &school.rebases {
            let Some(id) = DocId::parse(&r.doc) else {
                continue;
            };
            if !gone.contains(&id)
                && let Some(doc) = self.store.doc(&id)?
                && super::rebase::is_stale(&id, doc, r)
                && !self.holds_unsent_work(&school, &id, &[])?
            {
                gone.push(id);
            }
        }
        // The marks of documents an erased child, or one who left, had here (`purged`).
        let marks = self.store.purged_marks()?;
        for id in &marks {
            if gone_for_good(id) && !gone.contains(id) {
                gone.push(id.clone());
            }
        }
        // What this device wrote in and may see again (a class, a part given back later) it
        // never starts afresh before the school sends it back (`Store::purge_remembering`);
        // nor one it remembers already (purged again from a row left of it).
        let mut remembered = Vec::new();
        if me.is_some() {
            for id in gone.iter().filter(|d| !gone_for_good(d)) {
                let device = self.device.as_str();
                if marks.contains(id)
                    || self
                        .store
                        .doc(id)?
                        .is_some_and(|d| crate::doc::written_by(d, device))
                {
                    remembered.push(id.clone());
                }
            }
        }
        // In the purge's own transaction: she is told only of what did go (a file written
        // meanwhile stays), and no note names a child now erased.
        let rewrite = |was: &str, purged: &[DocId]| {
            crate::carry::notes_after_purge(was, &told, purged, &|c| school.is_erased(c))
        };
        // Only with something to note or to rewrite: the rewrite takes the write lock even
        // when nothing else goes.
        let noting = !told.is_empty()
            || (!school.erasures.is_empty()
                && self
                    .store
                    .meta(crate::carry::NOT_CARRIED)?
                    .is_some_and(|n| !n.is_empty()));
        let noted = noting.then_some((
            crate::carry::NOT_CARRIED,
            &rewrite as &dyn Fn(&str, &[DocId]) -> String,
        ));
        self.store
            .purge_noting(&gone, &remembered, Some(&seen), noted)
    }

    /// Whether `id` holds changes this device made that no administrator's device (the
    /// office's phone or computer) is known to hold: the heads this store shares with each
    /// such peer are in its sync state (and `taken`, when not empty, is what the hub said in
    /// a session it holds of it), and a change of this device outside all of them is not
    /// there yet. On a hub, changes of the console devices it registered count as its own
    /// (the office console's work: `archive::console`).
    ///
    /// What it shares with the hub does not count, though the hub's archive is an
    /// administrator's device ("学校服务器"): the sync state goes by the hub's network
    /// endpoint, not by that device's id. Rightly so: the hub's copy can go back in time (a
    /// restore from a backup), so only its answer in a session is a word on what it holds
    /// (rebuild story 7).
    fn holds_unsent_work(
        &mut self,
        school: &SchoolView,
        id: &DocId,
        taken: &[automerge::ChangeHash],
    ) -> Result<bool> {
        let mut mine = vec![self.device.as_str().to_owned()];
        if let Some(s) = self.store.doc(&DocId::School)? {
            mine.extend(
                school::consoles_registered_by(s, self.device.as_str())
                    .into_iter()
                    .map(|d| d.0),
            );
        }
        let relays: Vec<String> = school
            .devices
            .iter()
            .filter(|d| {
                school
                    .member(&d.member)
                    .is_some_and(|m| m.roles.iter().any(|r| r.administers()))
            })
            .map(|d| d.id.as_str().to_owned())
            .collect();
        let mut shared: Vec<Vec<automerge::ChangeHash>> = self
            .store
            .shared_heads_of(id)?
            .into_iter()
            .filter(|(peer, _)| relays.iter().any(|r| peer.starts_with(r.as_str())))
            .map(|(_, heads)| heads)
            .collect();
        if !taken.is_empty() {
            shared.push(taken.to_vec());
        }
        let own = |c: &automerge::Change| {
            let actor = c.actor_id().to_hex_string();
            mine.iter().any(|m| actor.starts_with(m.as_str()))
        };
        // Per peer's heads (or, with none, all of it): the school heads each own change after
        // them declares.
        let sets = if shared.is_empty() {
            vec![Vec::new()]
        } else {
            shared
        };
        let mut after: Vec<Vec<Option<Vec<automerge::ChangeHash>>>> = Vec::new();
        {
            let Some(doc) = self.store.doc(id)? else {
                return Ok(false);
            };
            for heads in &sets {
                after.push(
                    doc.get_changes(heads)
                        .iter()
                        .filter(|c| own(c))
                        .map(|c| crate::trust::Declared::parse(c.message()).school)
                        .collect(),
                );
            }
        }
        // A child who left: only what was written before this device held her leave counts
        // (the school takes that, listed for review, and refuses the rest: trust story 14).
        let left = id.child().filter(|c| school.has_left(c));
        let mut counts = |declared: &Option<Vec<automerge::ChangeHash>>| -> Result<bool> {
            let (Some(child), Some(heads)) = (left, declared) else {
                return Ok(left.is_none());
            };
            let Some(s) = self.store.doc(&DocId::School)? else {
                return Ok(true);
            };
            if heads
                .iter()
                .any(|h| automerge::ReadDoc::get_change_by_hash(s, h).is_none())
            {
                return Ok(true);
            }
            Ok(!school::read_at(s, heads).has_left(child))
        };
        for list in &after {
            let mut unsent = false;
            for declared in list {
                if counts(declared)? {
                    unsent = true;
                    break;
                }
            }
            if !unsent {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::ChildFacts;

    /// A wipe goes on past a file it cannot wipe: the WAL and the join key beside a main file
    /// that will not open for writing are still wiped, and the failure is told.
    #[test]
    fn a_wipe_wipes_every_file_even_when_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.db");
        std::fs::create_dir(&path).unwrap(); // not a file: it cannot be overwritten
        let wal = dir.path().join("phone.db-wal");
        let joining = dir.path().join("phone.db.joining");
        std::fs::write(&wal, "王小雨的谈心").unwrap();
        std::fs::write(&joining, "0123").unwrap();
        let reopen = super::Reopen { path, key: None };
        assert!(reopen.wipe().is_err(), "the failure is told");
        assert!(!wal.exists() && !joining.exists(), "the rest is wiped");
    }
    use crate::consent::{Consent, Cover, Withdrawal};

    /// The projection's reading of a withdrawal of the private part (`p_children.consent`)
    /// agrees with the child file's (`Consent::is_withdrawn`), for a grant, a withdrawal of
    /// the private part, of the basic file only, and an objection.
    #[test]
    fn the_projection_and_the_child_file_agree_on_a_withdrawal_of_the_private_part() {
        let consent = |covers: Vec<Cover>, withdrawn: Vec<Cover>| Consent {
            guardian: "王秀英".into(),
            relation: "奶奶".into(),
            date: "2026-09-01".into(),
            covers,
            form: "TY-2026-018".into(),
            withdrawn: (!withdrawn.is_empty()).then(|| Withdrawal {
                date: "2026-11-18".into(),
                by: "王秀英".into(),
                covers: withdrawn,
            }),
            withdrawals: Vec::new(),
        };
        let cases = [
            consent(vec![Cover::Basic, Cover::Private], vec![]),
            consent(vec![Cover::Basic, Cover::Private], vec![Cover::Private]),
            consent(vec![Cover::Basic, Cover::Private], vec![Cover::Basic]),
            consent(vec![], vec![Cover::Basic, Cover::Private]),
            consent(vec![Cover::Basic], vec![Cover::Photos]),
        ];
        for c in cases {
            let facts = ChildFacts::projected(None, Some(&c.projected()));
            assert_eq!(
                facts.private_withdrawn,
                c.is_withdrawn(Cover::Private),
                "{}",
                c.projected()
            );
            assert_eq!(
                facts.basic_withdrawn,
                c.is_withdrawn(Cover::Basic),
                "{}",
                c.projected()
            );
        }
        assert!(!ChildFacts::projected(None, None).private_withdrawn);
        assert!(!ChildFacts::projected(None, None).basic_withdrawn);
    }
}
