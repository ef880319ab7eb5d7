//! The school secret and the ids it keys.
//!
//! The secret that keys child ids ([`crate::ids::SchoolSecret`]) lives in the document
//! `school/keys` ([`DocId::Keys`]). [`super::scope::may_see`] gives it to administrators only
//! (领导组, 档案管理员; the hub's member is the founding administrator), so sync scopes, bundle
//! export and import, enrollment, joining and the purge keep it off every other device, and
//! the trust rules let only administrators write it.
//!
//! - A new school gets its secret in the same transaction that creates it
//!   ([`Archive::create_school`], which `shouwang init-school` and the hub's `init-school` both
//!   call; a hub adopting an office archive copies it with everything else).
//! - A school created before ids were keyed has no secret. The first administrator's device
//!   that derives a child id (a roster import) creates one, in its own write just before the
//!   import, and it reaches the hub and the other administrators' devices like any
//!   administrator-only document. If two administrators' devices create one while apart, the
//!   document holds both and every replica reads the same one (automerge's deterministic
//!   winner); children already created under the other keep their ids, found by 学籍号.
//! - Deriving a child's id from a 学籍号 first looks for a child whose file already holds that
//!   学籍号 ([`Archive::child_for_student_no`]): the children of an old school keep their
//!   unkeyed ids, and a re-import never duplicates them. Only then is the keyed id derived.
//! - A device whose member does not administer has no secret: a child it creates gets a
//!   random id (today only administrators create children, by roster import).

use automerge::{Automerge, ROOT, ReadDoc, ScalarValue, Value};
use rusqlite::OptionalExtension;

use super::Archive;
use crate::doc::access::map_at;
use crate::doc::{DocId, K_CHILD_ID, KEYS};
use crate::error::{Error, Result};
use crate::ids::{ChildId, SchoolSecret};

/// The secret a `school/keys` document holds, if it holds a valid one.
pub(crate) fn read_secret(doc: &Automerge) -> Option<SchoolSecret> {
    let keys = map_at(doc, &ROOT, KEYS)?;
    match doc.get(&keys, K_CHILD_ID).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Bytes(b) => SchoolSecret::from_bytes(b),
            _ => None,
        },
        _ => None,
    }
}

/// Writes `secret` into a `school/keys` document.
pub(crate) fn write_secret(
    tx: &mut automerge::transaction::Transaction<'_>,
    secret: &SchoolSecret,
) -> Result<()> {
    use automerge::transaction::Transactable;
    let keys = map_at(tx, &ROOT, KEYS).ok_or_else(|| Error::Corrupt("学校密钥缺少结构".into()))?;
    tx.put(
        &keys,
        K_CHILD_ID,
        ScalarValue::Bytes(secret.as_bytes().to_vec()),
    )?;
    Ok(())
}

/// The message of the change that creates a school's secret.
pub(crate) const CREATE_MESSAGE: &str = "创建学校密钥";

impl Archive {
    /// The school secret that keys child ids, if this device holds it: only administrators'
    /// devices and the hub ever do.
    pub fn school_secret(&mut self) -> Result<Option<SchoolSecret>> {
        Ok(self.store.doc(&DocId::Keys)?.and_then(read_secret))
    }

    /// The school secret, created first if the school has none yet (a school created before
    /// ids were keyed). Administrators only. The check and the write are one transaction, so
    /// two connections to this store never both create one.
    fn school_secret_or_create(&mut self) -> Result<SchoolSecret> {
        self.require_admin()?;
        if let Some(s) = self.school_secret()? {
            return Ok(s);
        }
        self.store.write(|b| {
            if let Some(s) = b.doc(&DocId::Keys)?.and_then(read_secret) {
                return Ok(s);
            }
            let secret = SchoolSecret::generate();
            b.change(&DocId::Keys, true, CREATE_MESSAGE, |tx| {
                write_secret(tx, &secret)
            })?;
            Ok(secret)
        })
    }

    /// The child whose file holds `student_no` (trimmed), if this device has one. With several
    /// (files made apart before they met), the one whose id `preferred` is, else the smallest
    /// id, so every device picks the same.
    pub(crate) fn child_for_student_no(
        &self,
        student_no: &str,
        preferred: Option<&ChildId>,
    ) -> Result<Option<ChildId>> {
        let conn = self.store.conn();
        if let Some(p) = preferred {
            let hit: Option<String> = conn
                .query_row(
                    "SELECT child_id FROM p_children WHERE child_id = ?1 AND student_no = ?2",
                    [p.as_str(), student_no.trim()],
                    |r| r.get(0),
                )
                .optional()?;
            if hit.is_some() {
                return Ok(Some(p.clone()));
            }
        }
        Ok(conn
            .query_row(
                "SELECT child_id FROM p_children WHERE student_no = ?1
                 ORDER BY child_id LIMIT 1",
                [student_no.trim()],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(ChildId))
    }

    /// What keys the ids of new children made on this device: the school secret (created if
    /// the school has none yet) when its member administers, `None` otherwise.
    pub(crate) fn secret_for_new_children(&mut self) -> Result<Option<SchoolSecret>> {
        let me = self.me()?;
        if me.active && me.roles.iter().any(|r| r.administers()) {
            self.school_secret_or_create().map(Some)
        } else {
            Ok(None)
        }
    }

    /// The id for a child with this 学籍号: an existing child whose file holds it; otherwise
    /// the id keyed with `secret` (the same on every administrator's device), or a random one
    /// without a secret (see [`Archive::secret_for_new_children`]).
    pub(crate) fn child_id_for(
        &self,
        student_no: &str,
        secret: Option<&SchoolSecret>,
    ) -> Result<ChildId> {
        let keyed = secret.map(|s| ChildId::for_student(s, &self.school_id, student_no));
        if let Some(existing) = self.child_for_student_no(student_no, keyed.as_ref())? {
            return Ok(existing);
        }
        Ok(keyed.unwrap_or_else(ChildId::random))
    }
}
