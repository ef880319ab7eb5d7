//! Who may resolve a conflict, as the trust rules have it (`crate::trust`, the table in its
//! module docs), so that a screen offers the choice only to someone whose resolution every
//! other device will take. `Archive::resolve` itself still judges the change it makes.
//!
//! | where the conflict is | who may resolve it |
//! |---|---|
//! | a field of a file's section (`section.field`) | whoever may edit that field (`trust::may_edit_field`) |
//! | a record's fields or date (`records.<id>.fields.*`, `happened_on`) | the record's author |
//! | a void's reason or time (`records.<id>.void.*`) | the record's author or an administrator |
//! | who voided it (`records.<id>.void.by`) | nobody: the writer of a void names themself |
//! | a progress entry's fields (`records.<id>.progress.<id>.*`) | the entry's author |
//! | a record's or an entry's `author`, kind, device, child, role, time | nobody: fixed at creation |

use super::Archive;
use crate::doc::access::get_str;
use crate::doc::{self, DocId};
use crate::error::{Error, Result};
use crate::ids::MemberId;

/// Who may resolve a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MayResolve {
    /// The member asked about.
    Yes,
    /// Only this member: the author of the record or progress entry the conflict is in.
    OnlyAuthor(MemberId),
    /// Not the member asked about (the field is not theirs to edit), or nobody at all (a value
    /// fixed when it was created).
    No,
}

impl Archive {
    /// Who may resolve the conflict at `path` (as [`crate::doc::conflicts::Conflict::path`]
    /// gives it) of `doc`, asked for `member` (see the module docs).
    pub fn may_resolve(
        &mut self,
        member: &MemberId,
        doc_id: &DocId,
        path: &[String],
    ) -> Result<MayResolve> {
        let school = self.school()?;
        let me = school
            .member(member)
            .cloned()
            .ok_or_else(|| Error::not_found("成员", member))?;
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        let author_at = |a: &mut Archive, at: &[&str]| -> Result<Option<MemberId>> {
            Ok(a.store
                .doc(doc_id)?
                .and_then(|d| doc::map_at_path(d, at).and_then(|o| get_str(d, &o, doc::R_AUTHOR)))
                .map(MemberId))
        };
        let only = |author: Option<MemberId>| match author {
            Some(a) if a == me.id => MayResolve::Yes,
            Some(a) => MayResolve::OnlyAuthor(a),
            None => MayResolve::No,
        };
        Ok(match keys.as_slice() {
            [doc::RECORDS, _, doc::R_VOID, "by"] => MayResolve::No,
            [doc::RECORDS, rid, doc::R_VOID, ..] => {
                if me.roles.iter().any(|r| r.administers()) {
                    MayResolve::Yes
                } else {
                    only(author_at(self, &[doc::RECORDS, rid])?)
                }
            }
            [doc::RECORDS, _, doc::R_PROGRESS, _, doc::R_AUTHOR] => MayResolve::No,
            [doc::RECORDS, rid, doc::R_PROGRESS, entry, _, ..] => only(author_at(
                self,
                &[doc::RECORDS, rid, doc::R_PROGRESS, entry],
            )?),
            [doc::RECORDS, rid, doc::R_FIELDS, ..] | [doc::RECORDS, rid, doc::R_HAPPENED] => {
                only(author_at(self, &[doc::RECORDS, rid])?)
            }
            [doc::RECORDS, ..] => MayResolve::No,
            [section, field] => {
                let child = doc_id.child().cloned();
                let auth = crate::trust::AuthState {
                    school: &school,
                    child_class: match &child {
                        Some(c) => self.class_of(c)?,
                        None => None,
                    },
                    consent: match &child {
                        Some(c) => self.consent_of(c)?,
                        None => None,
                    },
                };
                if crate::trust::may_edit_field(&auth, &me, doc_id, section, field) {
                    MayResolve::Yes
                } else {
                    MayResolve::No
                }
            }
            _ => MayResolve::No,
        })
    }
}
