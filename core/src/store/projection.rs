//! Query projections: indexed rows derived from documents, rewritten in the same transaction as
//! the changes that produced them. Documents are the truth; every row here can be rebuilt.

use std::collections::BTreeSet;

use automerge::{Automerge, ROOT};
use rusqlite::{Transaction, params};

use crate::doc::DocId;
use crate::doc::access::{get_bool, get_str, map_at};
use crate::error::Result;
use crate::records;
use crate::school;

/// Empties every projection table.
pub fn clear(tx: &Transaction<'_>) -> Result<()> {
    tx.execute_batch(
        "DELETE FROM p_classes; DELETE FROM p_members; DELETE FROM p_children;
         DELETE FROM p_pairings; DELETE FROM p_records; DELETE FROM p_conflicted;",
    )?;
    Ok(())
}

/// Removes every row that derives from one document (the document is being purged).
pub fn forget(tx: &Transaction<'_>, id: &DocId) -> Result<()> {
    tx.prepare_cached("DELETE FROM p_records WHERE doc_id = ?1")?
        .execute([id.key()])?;
    tx.prepare_cached("DELETE FROM p_conflicted WHERE doc_id = ?1")?
        .execute([id.key()])?;
    match id {
        DocId::School => {
            tx.execute_batch(
                "DELETE FROM p_classes; DELETE FROM p_members; DELETE FROM p_pairings;",
            )?;
        }
        DocId::Child(child) => {
            tx.prepare_cached("DELETE FROM p_children WHERE child_id = ?1")?
                .execute([child.as_str()])?;
        }
        DocId::Private(child) => {
            tx.prepare_cached("UPDATE p_children SET student_no = NULL WHERE child_id = ?1")?
                .execute([child.as_str()])?;
        }
        DocId::Staff(child) => {
            tx.prepare_cached(
                "UPDATE p_children SET hardship = NULL, talent = NULL, special = NULL
                 WHERE child_id = ?1",
            )?
            .execute([child.as_str()])?;
        }
        DocId::Class(_) | DocId::Keys | DocId::Audit(_) | DocId::Contact(_) => {}
    }
    Ok(())
}

/// What a write is known to have touched in a document, so only those rows are rewritten.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Something outside `records` (the profile, contact card, flags).
    pub subject: bool,
    /// Record ids.
    pub records: BTreeSet<String>,
}

/// Rewrites only the rows `touched` names.
pub fn project_touched(
    tx: &Transaction<'_>,
    id: &DocId,
    doc: &Automerge,
    touched: &Touched,
) -> Result<()> {
    if touched.subject || *id == DocId::School {
        project_subject(tx, id, doc)?;
    }
    let key = id.key();
    for rid in &touched.records {
        tx.prepare_cached("DELETE FROM p_records WHERE doc_id = ?1 AND record_id = ?2")?
            .execute([key.as_str(), rid.as_str()])?;
        if let Some(m) = records::meta(doc, rid) {
            insert_record(tx, &key, id, &m)?;
        }
    }
    Ok(())
}

/// Rewrites every row that derives from one document.
pub fn project(tx: &Transaction<'_>, id: &DocId, doc: &Automerge) -> Result<()> {
    project_subject(tx, id, doc)?;
    if !matches!(
        id,
        DocId::School | DocId::Keys | DocId::Audit(_) | DocId::Staff(_) | DocId::Contact(_)
    ) {
        project_records(tx, id, doc)?;
    }
    Ok(())
}

/// The rows about what the document describes (the school, a child), not its records.
fn project_subject(tx: &Transaction<'_>, id: &DocId, doc: &Automerge) -> Result<()> {
    match id {
        DocId::School => project_school(tx, doc)?,
        DocId::Child(child) => {
            let profile = map_at(doc, &ROOT, "profile");
            let flags = map_at(doc, &ROOT, "flags");
            let s = |k: &str| profile.as_ref().and_then(|o| get_str(doc, o, k));
            let b = |o: &Option<automerge::ObjId>, k: &str| {
                o.as_ref().and_then(|o| get_bool(doc, o, k))
            };
            tx.prepare_cached(
                "INSERT INTO p_children (child_id, name, sex, birth_date, class_id, parents_away,
                                         boarding, hardship, talent, special, consent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (child_id) DO UPDATE SET name = excluded.name, sex = excluded.sex,
                    birth_date = excluded.birth_date, class_id = excluded.class_id,
                    parents_away = excluded.parents_away, boarding = excluded.boarding,
                    hardship = coalesce(excluded.hardship, p_children.hardship),
                    talent = coalesce(excluded.talent, p_children.talent),
                    special = coalesce(excluded.special, p_children.special),
                    consent = excluded.consent",
            )?
            .execute(params![
                child.as_str(),
                s("name").unwrap_or_default(),
                s("sex"),
                s("birth_date"),
                s("class_id"),
                s("parents_away"),
                b(&profile, "boarding"),
                b(&flags, "hardship"),
                b(&flags, "talent"),
                b(&flags, "special_needs"),
                crate::consent::read(doc, None).map(|c| c.projected()),
            ])?;
        }
        DocId::Private(child) => {
            let student_no =
                map_at(doc, &ROOT, "identity").and_then(|o| get_str(doc, &o, "student_no"));
            tx.prepare_cached("UPDATE p_children SET student_no = ?2 WHERE child_id = ?1")?
                .execute(params![child.as_str(), student_no])?;
        }
        DocId::Staff(child) => {
            // The 三特 flags of a split school: a row with no name until the shared file
            // (which every holder of the staff part also holds) is projected.
            let flags = map_at(doc, &ROOT, "flags");
            let b = |k: &str| flags.as_ref().and_then(|o| get_bool(doc, o, k));
            tx.prepare_cached(
                "INSERT INTO p_children (child_id, name, hardship, talent, special)
                 VALUES (?1, '', ?2, ?3, ?4)
                 ON CONFLICT (child_id) DO UPDATE SET hardship = excluded.hardship,
                    talent = excluded.talent, special = excluded.special",
            )?
            .execute(params![
                child.as_str(),
                b("hardship"),
                b("talent"),
                b("special_needs")
            ])?;
        }
        DocId::Class(_) | DocId::Keys | DocId::Audit(_) | DocId::Contact(_) => {}
    }
    Ok(())
}

fn project_school(tx: &Transaction<'_>, doc: &Automerge) -> Result<()> {
    let view = school::read(doc);
    tx.execute_batch("DELETE FROM p_classes; DELETE FROM p_members; DELETE FROM p_pairings;")?;
    let mut ins = tx.prepare_cached(
        "INSERT INTO p_classes (class_id, name, head_teacher) VALUES (?1, ?2, ?3)",
    )?;
    for c in &view.classes {
        ins.execute(params![
            c.id.as_str(),
            c.name,
            c.head_teacher.as_ref().map(|m| m.as_str())
        ])?;
    }
    let mut ins = tx.prepare_cached(
        "INSERT INTO p_members (member_id, name, roles, class_id, active) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for m in &view.members {
        let roles: Vec<&str> = m.roles.iter().map(|r| r.key()).collect();
        ins.execute(params![
            m.id.as_str(),
            m.name,
            roles.join(","),
            m.class_id.as_ref().map(|c| c.as_str()),
            m.active
        ])?;
    }
    let mut ins = tx.prepare_cached(
        "INSERT INTO p_pairings (pairing_id, carer, child_id, role, active) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for p in &view.pairings {
        ins.execute(params![
            p.id.as_str(),
            p.carer.as_str(),
            p.child.as_str(),
            p.role.key(),
            p.active
        ])?;
    }
    Ok(())
}

fn insert_record(
    tx: &Transaction<'_>,
    key: &str,
    id: &DocId,
    m: &records::RecordMeta,
) -> Result<()> {
    let mut ins = tx.prepare_cached(
        "INSERT OR REPLACE INTO p_records
            (record_id, doc_id, child_id, kind, happened_on, author, author_role, written_at, voided)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    ins.execute(params![
        m.id.as_str(),
        key,
        m.child
            .clone()
            .or_else(|| id.child().map(|c| c.as_str().to_owned())),
        m.kind_key,
        m.happened_on,
        m.author,
        m.author_role,
        m.written_at,
        m.voided
    ])?;
    Ok(())
}

fn project_records(tx: &Transaction<'_>, id: &DocId, doc: &Automerge) -> Result<()> {
    let key = id.key();
    tx.prepare_cached("DELETE FROM p_records WHERE doc_id = ?1")?
        .execute([&key])?;
    for m in records::metas(doc) {
        insert_record(tx, &key, id, &m)?;
    }
    Ok(())
}
