//! What a write does inside its batch: reading and changing documents, merging what another
//! device sent (judged by `admit` first), and the sync states, meta values and quarantine rows
//! written with it.

use automerge::transaction::{CommitOptions, Transaction};
use automerge::{Automerge, ChangeHash};

use super::{
    Admission, Batch, bounded, bounded_together, doc_label, from_peer, heads_text,
    malformed_by_peer,
};
use crate::doc::{self, DocId};
use crate::error::{Error, Result};
use crate::ids::RecordId;

impl Batch<'_> {
    /// The device clock at the start of the batch, ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// Tells the store that this batch changed only `record` in `doc` (plus anything else
    /// declared), so only its projection row is rewritten. Documents changed without a
    /// declaration are re-projected whole, which is always correct.
    pub fn touched_record(&mut self, doc: &DocId, record: &RecordId) {
        self.hints
            .entry(doc.clone())
            .or_default()
            .records
            .insert(record.0.clone());
    }

    /// Tells the store that this batch changed what `doc` describes (profile, contact card).
    pub fn touched_subject(&mut self, doc: &DocId) {
        self.hints.entry(doc.clone()).or_default().subject = true;
    }

    /// Records a `meta` value to write with the batch.
    pub fn set_meta(&mut self, key: &str, value: &str) {
        self.meta.push((key.to_owned(), value.to_owned()));
    }

    pub(super) fn ensure(&mut self, id: &DocId, create: bool) -> Result<bool> {
        self.refresh(id)?;
        if !self.docs.load(self.conn, id, self.actor)? {
            if !create {
                return Ok(false);
            }
            // One this store dropped and may see again is never started afresh
            // (`Store::purge_remembering`): a peer brings it back.
            if super::purged_tips(self.conn, id)?.is_some() {
                return Err(not_caught_up(id));
            }
            self.docs
                .insert(id.clone(), doc::genesis(id, self.actor.clone())?);
            self.touched.push((id.clone(), Vec::new()));
            return Ok(true);
        }
        if !self.touched.iter().any(|(t, _)| t == id)
            && let Some(d) = self.docs.get(id)
        {
            self.touched.push((id.clone(), d.get_heads()));
        }
        Ok(true)
    }

    /// Drops a cached document that another connection has written since (not one this batch
    /// has already changed).
    fn refresh(&mut self, id: &DocId) -> Result<()> {
        if self.touched.iter().any(|(t, _)| t == id) {
            return Ok(());
        }
        self.docs.refresh(self.conn, id)
    }

    /// A document, if the store has it.
    pub fn doc(&mut self, id: &DocId) -> Result<Option<&Automerge>> {
        self.refresh(id)?;
        self.docs.load(self.conn, id, self.actor)?;
        Ok(self.docs.get(id))
    }

    /// Replaces a document whole with `doc` (a new generation, see [`crate::school::Rebase`]):
    /// its stored changes, sync state and quarantine are removed in this batch, and the store
    /// file is scrubbed after the commit, so nothing of the old history remains.
    pub fn replace(&mut self, id: &DocId, mut doc: Automerge) {
        doc.set_actor(self.actor.clone());
        self.docs.insert(id.clone(), doc);
        self.touched.retain(|(t, _)| t != id);
        self.touched.push((id.clone(), Vec::new()));
        self.hints.remove(id);
        if !self.replaced.contains(id) {
            self.replaced.push(id.clone());
        }
    }

    /// Adds the layout upgrade ([`doc::layout_upgrade`]) to a document made by an older build,
    /// so the maps this version's genesis creates exist. Nothing if none are missing.
    pub fn upgrade_layout(&mut self, id: &DocId) -> Result<()> {
        if !self.ensure(id, false)? {
            return Ok(());
        }
        // The upgrade is the same change on every device: a peer's change resting on it, set
        // aside here, would come in with it unjudged.
        self.docs.drop_set_aside(id)?;
        let Some(doc) = self.docs.get_mut(id) else {
            return Ok(());
        };
        if let Some(change) = doc::layout_upgrade(id, doc)? {
            doc.apply_changes([change])?;
        }
        Ok(())
    }

    /// Whether the store has the document.
    pub fn has(&mut self, id: &DocId) -> Result<bool> {
        Ok(self.doc(id)?.is_some())
    }

    /// Applies `f` to a document in one automerge change (creating the document from its genesis
    /// if `create` and it does not exist). An error from `f` rolls the change back.
    /// `message` is kept with the change and shown in the file's history.
    pub fn change<R>(
        &mut self,
        id: &DocId,
        create: bool,
        message: &str,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<R>,
    ) -> Result<R> {
        let message = self.declared_message(id, message)?;
        if !self.ensure(id, create)? {
            return Err(Error::not_found("档案", id.key()));
        }
        self.require_own_work(id)?;
        let secs = self.now_ms / 1000;
        // In a re-based document this device writes under its actor for that generation.
        let actor = self.writing_actor(id);
        let doc = self
            .docs
            .get_mut(id)
            .ok_or_else(|| Error::not_found("档案", id.key()))?;
        doc.set_actor(actor);
        doc.transact_with(
            |_| {
                CommitOptions::default()
                    .with_time(secs)
                    .with_message(message.as_str())
            },
            f,
        )
        .map(|s| s.result)
        .map_err(|f| f.error)
    }

    /// [`Batch::change`], made on the state `at` of the document rather than on all it holds,
    /// by forking there (never with automerge's `isolate`/`transaction_at`, which number the
    /// change's operations from the whole document: every other replica refuses a change not
    /// numbered right after what it depends on, `trust::rules`),
    /// and merged into it: a change concurrent with whatever the document gained after `at`
    /// (the carry-over into a re-based generation: `crate::carry`). `at` must hold every
    /// change the writing actor has in the document. The change, if `f` wrote anything.
    pub(crate) fn change_at(
        &mut self,
        id: &DocId,
        at: &[ChangeHash],
        message: &str,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<()>,
    ) -> Result<Option<automerge::Change>> {
        let message = self.declared_message(id, message)?;
        if !self.ensure(id, false)? {
            return Err(Error::not_found("档案", id.key()));
        }
        let actor = self.writing_actor(id);
        let doc = self
            .docs
            .get(id)
            .ok_or_else(|| Error::not_found("档案", id.key()))?;
        let mut fork = doc.fork_at(at)?;
        fork.set_actor(actor);
        let secs = self.now_ms / 1000;
        fork.transact_with(
            |_| {
                CommitOptions::default()
                    .with_time(secs)
                    .with_message(message.as_str())
            },
            f,
        )
        .map_err(|f| f.error)?;
        if fork.get_heads() == at {
            return Ok(None);
        }
        let Some(change) = fork.get_last_local_change() else {
            return Ok(None);
        };
        self.docs.drop_set_aside(id)?;
        if let Some(doc) = self.docs.get_mut(id) {
            doc.apply_changes([change.clone()])?;
        }
        Ok(Some(change))
    }

    /// The actor this device writes `id` under: its own (or the console device's it writes
    /// for), in a re-based document its actor for that generation.
    fn writing_actor(&self, id: &DocId) -> automerge::ActorId {
        let own = self.writing_as.as_ref().unwrap_or(self.actor);
        match self.docs.get(&DocId::School) {
            Some(s) if *id != DocId::School => {
                crate::school::generation(s, id).map_or_else(|| own.clone(), |g| g.actor_of(own))
            }
            _ => own.clone(),
        }
    }

    /// A document this store dropped, having written in it (`Store::purge_remembering`), and
    /// holds again: a file or a peer may have brought back a copy without this device's own
    /// earlier changes (a member's file carries only her device's own). Written on then, the
    /// device's next change would repeat their numbers, which a peer holding them refuses for
    /// good (automerge's "duplicate seq"), so every later sync would fail (consent story 18e).
    /// Refused until the copy holds them; the mark goes once it does. Only the actor this
    /// device writes under there now counts: one of an older generation of a re-based
    /// document never writes again. One indexed look-up in a table that is empty on most
    /// devices.
    fn require_own_work(&mut self, id: &DocId) -> Result<()> {
        let Some(tips) = super::purged_tips(self.conn, id)? else {
            return Ok(());
        };
        let actor = self.writing_actor(id);
        let device = crate::ids::device_hex(self.writing_as.as_ref().unwrap_or(self.actor));
        let (mine, others): (Vec<_>, Vec<_>) = tips.into_iter().partition(|(a, _)| *a == actor);
        let holds = self
            .docs
            .get(id)
            .is_some_and(|d| mine.iter().all(|(_, h)| doc::has_change(d, h)));
        if !holds {
            return Err(not_caught_up(id));
        }
        // This actor's tips are held: they go from the mark, and so do those of this device's
        // other actors there (an older generation's, or the one from before a re-basing:
        // they never write again). Another device's stay (the hub's console writes as the
        // member's console device).
        let others: Vec<_> = others
            .into_iter()
            .filter(|(a, _)| !a.to_hex_string().starts_with(&device))
            .collect();
        if others.is_empty() {
            self.conn
                .prepare_cached("DELETE FROM purged WHERE doc_id = ?1")?
                .execute([id.key()])?;
        } else if !mine.is_empty() {
            self.conn
                .prepare_cached("UPDATE purged SET tips = ?2 WHERE doc_id = ?1")?
                .execute(rusqlite::params![id.key(), super::encode_tips(&others)])?;
        }
        Ok(())
    }

    /// A local change's message with the auth state it declares (see [`crate::trust`]): the
    /// school heads this device holds, and for a private part the child file's heads.
    fn declared_message(&mut self, id: &DocId, message: &str) -> Result<String> {
        if *id == DocId::School {
            return Ok(message.to_owned());
        }
        let Some(school) = self.doc(&DocId::School)?.map(Automerge::get_heads) else {
            return Ok(message.to_owned());
        };
        let child = match id {
            DocId::Private(c) | DocId::Staff(c) => Some(
                self.doc(&DocId::Child(c.clone()))?
                    .map(Automerge::get_heads)
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        Ok(crate::trust::declare(message, &school, child.as_deref()))
    }

    /// Applies one automerge sync message from a peer to a document (creating the document if
    /// absent), judges every change it brought ([`crate::trust`]), and queues the updated sync
    /// state to be saved with the batch. If a change was not accepted, the sync state starts
    /// afresh (automerge's state would otherwise believe this side has it).
    pub fn sync_receive(
        &mut self,
        peer: &str,
        id: &DocId,
        state: &mut automerge::sync::State,
        message: automerge::sync::Message,
    ) -> Result<Admission> {
        use automerge::sync::SyncDoc;
        // The message's changes share one allowance: each having its own, twenty dense
        // changes of a hundred bytes could claim twenty times what the message holds.
        let chunks: Vec<&[u8]> = message.changes.iter().map(AsRef::as_ref).collect();
        let claimed = bounded_together(&doc_label(id), &chunks)?;
        // What they claim counts against the sender's day before automerge reads them.
        let bytes = chunks.iter().map(|c| c.len()).sum();
        if !self.charge_claimed(claimed, bytes)? {
            *state = automerge::sync::State::new();
            self.save_sync_state(peer, id, state);
            return Ok(self.over_quota(chunks.len()));
        }
        if !message
            .have
            .iter()
            .all(|h| doc::bounds::bloom_is_sound(&h.bloom.to_bytes()))
        {
            tracing::debug!(doc = %id, "a peer's sync message carries an unsound bloom filter");
            return Err(malformed_by_peer(id));
        }
        let before = self.heads_before_merge(id)?;
        let target = self.merge_target(id)?;
        let kept = (*id == DocId::School).then(|| message.clone());
        let outcome = from_peer(id, || target.receive_sync_message(state, message));
        if let Some(message) = kept
            && self.school_misfit(&outcome)
            // On the half-merged copy: automerge may panic there too.
            && let Some(admission) = super::peer_guarded(id, || {
                self.school_mismatch(&before, &|d| {
                    d.receive_sync_message(&mut automerge::sync::State::new(), message.clone())
                })
            })?
        {
            *state = automerge::sync::State::new();
            self.save_sync_state(peer, id, state);
            return Ok(admission);
        }
        outcome?;
        let admission = self.admit(id, &before)?;
        self.docs.note_set_aside(id, &self.origin());
        if !admission.is_clean() {
            *state = automerge::sync::State::new();
        }
        self.save_sync_state(peer, id, state);
        Ok(admission)
    }

    fn heads_before_merge(&mut self, id: &DocId) -> Result<Vec<ChangeHash>> {
        self.ensure_context(id)?;
        Ok(self.doc(id)?.map(Automerge::get_heads).unwrap_or_default())
    }

    /// Loads what judging changes to `id` needs: the school document, and for a private part
    /// the child's shared file.
    pub(super) fn ensure_context(&mut self, id: &DocId) -> Result<()> {
        self.doc(&DocId::School)?;
        if let DocId::Private(c) | DocId::Staff(c) = id {
            self.doc(&DocId::Child(c.clone()))?;
        }
        Ok(())
    }

    /// Queues a sync state to be saved with the batch (heads known to be shared with `peer`).
    pub fn save_sync_state(&mut self, peer: &str, id: &DocId, state: &automerge::sync::State) {
        self.sync_states.push((
            peer.to_owned(),
            id.clone(),
            heads_text(&state.shared_heads),
            state.encode(),
        ));
    }

    /// Merges encoded changes or a saved document into a document (creating it if absent),
    /// keeping only the changes [`crate::trust`] accepts. Changes already present have no
    /// effect.
    pub fn merge_bytes(&mut self, id: &DocId, bytes: &[u8]) -> Result<Admission> {
        let claimed = bounded(id, bytes)?;
        // What they claim counts against the sender's day before automerge reads them.
        if !self.charge_claimed(claimed, bytes.len())? {
            return Ok(self.over_quota(1));
        }
        let before = self.heads_before_merge(id)?;
        let target = self.merge_target(id)?;
        let outcome = from_peer(id, || target.load_incremental(bytes));
        if *id == DocId::School
            && self.school_misfit(&outcome)
            && let Some(admission) = super::peer_guarded(id, || {
                self.school_mismatch(&before, &|d| d.load_incremental(bytes).map(|_| ()))
            })?
        {
            return Ok(admission);
        }
        outcome?;
        let admission = self.admit(id, &before)?;
        self.docs.note_set_aside(id, &self.origin());
        Ok(admission)
    }

    /// Who sends what this batch merges.
    fn origin(&self) -> super::cache::Origin {
        (self.source.clone(), self.sender.clone())
    }

    /// Whether a peer's school changes did not fit this copy: automerge refused them, or they
    /// left dependencies missing (see [`school_history`]).
    fn school_misfit<T>(&self, outcome: &Result<T>) -> bool {
        outcome.is_err()
            || self
                .docs
                .get(&DocId::School)
                .is_some_and(|d| !automerge::ReadDoc::get_missing_deps(d, &[]).is_empty())
    }

    /// The document to merge a peer's changes into: the stored one, or a new empty one (the
    /// peer's changes bring its whole history, genesis included).
    fn merge_target(&mut self, id: &DocId) -> Result<&mut Automerge> {
        let from = self.origin();
        self.docs.drop_set_aside_unless_from(id, &from)?;
        if !self.ensure(id, false)? {
            let mut doc = Automerge::new();
            doc.set_actor(self.actor.clone());
            self.docs.insert(id.clone(), doc);
            self.touched.push((id.clone(), Vec::new()));
        }
        self.docs
            .get_mut(id)
            .ok_or_else(|| Error::not_found("档案", id.key()))
    }
}

/// Why a write waits for a sync: this device dropped the document and does not hold all of
/// its own work there again ([`Batch::require_own_work`]).
fn not_caught_up(id: &DocId) -> Error {
    Error::NotPermitted(format!(
        "这台手机上没有{}的最新内容（此前已从本机移除）：请先与学校同步，再记录",
        doc_label(id)
    ))
}
