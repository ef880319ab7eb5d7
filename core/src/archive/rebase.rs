//! Re-basing a child's documents on their current state (issue 11: "a correction purges the
//! old value"). Automerge keeps every value ever written in a document's history, so a
//! corrected 身份证号 or name stays in every copy. An administrator re-bases the child's file:
//! each document is rebuilt as a new *generation*, the genesis change plus one base change
//! holding the current state, with no history.
//!
//! Every copy must then replace its own, or automerge's sync would merge the old history back.
//! The school document records the generation (`rebases/<doc key> = {actor, max_op, …}`: the
//! base change's actor and last op, both known before the base change is made, so the record
//! needs no hash of a change that declares it). Admission (`store::admit`) then accepts a
//! change to the document only if it is the base change or descends from it; a replica that
//! receives the base change while it holds an older generation replaces its copy whole
//! (`Batch::replace`, the file scrubbed after), and changes of an older generation are refused
//! from anyone without being kept. Records the base change carries keep their authors: the
//! trust rules take a base-created record's author from its `author` field, which an
//! administrator vouched for by recording the generation.
//!
//! What another device wrote on its copy of the older generation and never sent is not lost
//! with it: when the new generation replaces that copy, the device's work is carried over as
//! its new changes, concurrent with what others wrote in the new generation meanwhile, each
//! judged by the rules first (`crate::carry`, from `store::admit`): its records, the parts it
//! wrote on others' records, and its edits since the state the base change was built from
//! (which the base change names: `doc::covered`); on a hub, the same for the office console's
//! devices it registered. A stale copy holding such work is not purged before the new
//! generation comes (`Archive::purge_out_of_scope`). What is still lost is listed in
//! `crate::carry`.

use automerge::transaction::CommitOptions;
use automerge::{Automerge, ObjType, ROOT, ReadDoc, Value};
use serde::Serialize;

use super::Archive;
use crate::doc::access::copy_map;
use crate::doc::{self, DocId, KIND, SCHEMA};
use crate::error::{Error, Result};
use crate::ids::ChildId;
use crate::school::{self, Rebase};

/// What re-basing a child's file did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebaseReport {
    pub child: ChildId,
    /// Documents rebuilt (the care file and, where this device holds it, the private part).
    pub documents: usize,
    /// Changes of history dropped.
    pub dropped_changes: usize,
}

/// A new generation of `old`: its genesis change, then one change by `actor` holding the
/// current state, with `message` and `time`.
pub(crate) fn rebuild(
    id: &DocId,
    old: &Automerge,
    actor: automerge::ActorId,
    message: &str,
    time: i64,
) -> Result<Automerge> {
    let mut new = doc::genesis(id, actor)?;
    let mut tx = new.transaction();
    for key in old.keys(&ROOT).collect::<Vec<_>>() {
        if key == SCHEMA || key == KIND {
            continue;
        }
        let (Some((Value::Object(ObjType::Map), from)), Some((_, to))) =
            (old.get(&ROOT, key.as_str())?, tx.get(&ROOT, key.as_str())?)
        else {
            continue; // not a genesis map: nothing a reader of this version shows
        };
        if key == doc::RECORDS {
            // Every record shown, each under its id (`crate::records`: several made apart
            // under one id are each shown).
            crate::records::copy_records(old, &from, &mut tx, &to)?;
        } else {
            copy_map(old, &from, &mut tx, &to)?;
        }
    }
    tx.commit_with(
        CommitOptions::default()
            .with_message(message)
            .with_time(time),
    );
    Ok(new)
}

/// Whether `doc` is a copy of an older generation than the one `r` records (it lacks the
/// base change): it must be replaced, never merged.
pub(crate) fn is_stale(id: &DocId, doc: &Automerge, r: &Rebase) -> bool {
    let g = school::Generation {
        tag: r.generation.clone(),
        actor: r.actor.clone(),
        max_op: r.max_op,
    };
    let genesis = doc::genesis_hash(id);
    !doc.get_changes(&[]).iter().any(|c| g.is_base(c, genesis))
}

impl Archive {
    /// Re-bases a child's care file, private part and staff part on their current state, so that values
    /// corrected since (a 身份证号, a name) leave every device's history. Administrators only;
    /// the reason is required and may not contain the child's name or ID numbers. Changes
    /// other devices have not synced yet are carried over when their copy is replaced (module
    /// docs): the base change names what this copy holds, so that each device can tell its
    /// corrections the office has not seen.
    pub fn rebase_child(&mut self, child: &str, reason: &str) -> Result<RebaseReport> {
        let me = self.require_admin()?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::Missing("重建原因".into()));
        }
        crate::forms::check_line("重建原因", reason, 200)?;
        let child = self.find_child(child)?;
        self.check_reason(&child, "重建原因", reason)?;
        let on = chrono::Local::now().date_naive().to_string();
        let device_actor = self.device.actor();
        let mut documents = 0;
        let mut dropped = 0;
        // The care file first: the private part's base change declares its new heads.
        for id in [
            DocId::Child(child.clone()),
            DocId::Private(child.clone()),
            DocId::Staff(child.clone()),
        ] {
            let Some(old) = self.store.doc(&id)?.cloned() else {
                continue;
            };
            let time = chrono::Utc::now().timestamp();
            let mut tag = [0u8; 8];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut tag);
            let mut generation = school::Generation {
                tag: hex::encode(tag),
                actor: String::new(),
                max_op: 0,
            };
            let actor = generation.actor_of(&device_actor);
            generation.actor = actor.to_hex_string();
            // The record names the base change by its actor and last op, which the message
            // (the declared heads) does not change.
            let trial = rebuild(&id, &old, actor.clone(), "", time)?;
            let max_op = trial
                .get_changes(&[])
                .last()
                .map(automerge::Change::max_op)
                .unwrap_or(0);
            let record = Rebase {
                doc: id.key(),
                generation: generation.tag.clone(),
                actor: generation.actor.clone(),
                max_op,
                on: on.clone(),
                reason: reason.to_owned(),
                by: me.id.clone(),
            };
            dropped += old.get_changes(&[]).len().saturating_sub(2);
            self.store.write(|b| {
                b.upgrade_layout(&DocId::School)?;
                b.change(&DocId::School, false, "重建档案", |tx| {
                    school::put_rebase(tx, &record)
                })?;
                let school_heads = b.doc(&DocId::School)?.map(Automerge::get_heads);
                let child_heads = match &id {
                    DocId::Private(c) | DocId::Staff(c) => {
                        b.doc(&DocId::Child(c.clone()))?.map(Automerge::get_heads)
                    }
                    _ => None,
                };
                let message = doc::covered::declare(
                    &crate::trust::declare(
                        "重建档案（去掉修改历史）",
                        &school_heads.unwrap_or_default(),
                        child_heads.as_deref(),
                    ),
                    &old,
                );
                let new = rebuild(&id, &old, actor.clone(), &message, time)?;
                b.replace(&id, new);
                Ok(())
            })?;
            documents += 1;
        }
        Ok(RebaseReport {
            child,
            documents,
            dropped_changes: dropped,
        })
    }
}
