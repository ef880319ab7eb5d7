//! Reading a hub's archive on behalf of a member: the office console (`apps/office`).
//!
//! The hub's archive belongs to the hub's device and its member (the administrator who set
//! up the school). A person logged in to the office console is another member, and must see
//! exactly what the core's scope rules give *them*: a 班主任 his class, an administrator the
//! school. [`Archive::on_behalf`] lends the archive with that member as the one using it, so
//! every read ([`OnBehalf::children`], [`OnBehalf::child_file_for`], [`OnBehalf::reveal_id`],
//! [`OnBehalf::due`]) applies the same checks the CLI applies to its own member, and an access
//! log entry names the member who opened the private part (on the hub device's log, the
//! device that showed it). When the loan ends, the archive's own member is back.
//!
//! Writes are not lent here: a change is judged on every other device by the member its
//! device is registered to, so the console writes as a member through that member's own
//! console device ([`Archive::write_as_member`], `console.rs`).

use super::{Archive, ChildFile, ChildRow};
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::ids::MemberId;
use crate::school::Member;

/// The archive lent with another member using it (see the module docs); the archive's own
/// member is back when this is dropped.
#[derive(Debug)]
pub struct OnBehalf<'a> {
    archive: &'a mut Archive,
    own: MemberId,
}

impl Archive {
    /// Lends this archive with `member` (id) as the member using it. An unknown or
    /// deactivated member is refused.
    pub fn on_behalf(&mut self, member: &MemberId) -> Result<OnBehalf<'_>> {
        let school = self.school()?;
        match school.member(member) {
            Some(m) if m.active => {}
            Some(m) => {
                return Err(Error::NotPermitted(format!("{} 已被停用", m.name)));
            }
            None => return Err(Error::not_found("成员", member)),
        }
        let own = std::mem::replace(&mut self.me, member.clone());
        Ok(OnBehalf { archive: self, own })
    }
}

impl Drop for OnBehalf<'_> {
    fn drop(&mut self) {
        self.archive.me = self.own.clone();
    }
}

impl OnBehalf<'_> {
    /// The member the archive is lent to.
    pub fn me(&mut self) -> Result<Member> {
        self.archive.me()
    }

    /// The children this member may see: an administrator every child (or one class), anyone
    /// else those they care for.
    pub fn children(&mut self, class: Option<&str>) -> Result<Vec<ChildRow>> {
        let me = self.archive.me()?;
        let all = me.roles.iter().any(|r| r.administers());
        self.archive.children(class, !all)
    }

    /// A child's file as this member may see it; opening its private part is recorded in the
    /// access log first, naming this member ([`Archive::child_file_for`]).
    pub fn child_file_for(&mut self, child: &str, why: Option<&str>) -> Result<ChildFile> {
        self.archive.child_file_for(child, why)
    }

    /// The file with the ID numbers in full, for a member who may see them, with a reason
    /// recorded first ([`Archive::reveal_id`]).
    pub fn reveal_id(&mut self, child: &str, why: &str) -> Result<ChildFile> {
        self.archive.reveal_id(child, why)
    }

    /// What this member owes on `today` ([`Archive::due`]).
    pub fn due(
        &mut self,
        today: chrono::NaiveDate,
        include_done: bool,
    ) -> Result<Vec<crate::due::DueItem>> {
        self.archive.due(None, today, include_done)
    }

    /// A report built as this member may build it, ID numbers shown in full only with a reason,
    /// recorded first naming this member ([`Archive::report`]).
    pub fn report(
        &mut self,
        name: &str,
        opts: &crate::reports::ReportOptions,
    ) -> Result<crate::reports::Workbook> {
        self.archive.report(name, opts)
    }

    /// Records a report listing children's personal data in bulk, naming this member
    /// ([`Archive::log_report`]).
    pub fn log_report(&mut self, command: &str, children: usize) -> Result<()> {
        self.archive.log_report(command, children)
    }

    /// Whether this member may see `doc`.
    pub fn may_see(&mut self, doc: &DocId) -> Result<bool> {
        let me = self.archive.me()?;
        self.archive.may_see(&me, doc)
    }

    /// Which of `docs` this member may see (the school document read once, for long lists).
    pub fn may_see_all(&mut self, docs: &[DocId]) -> Result<Vec<bool>> {
        let school = self.archive.school()?;
        let me = self.archive.me()?;
        let archive = &mut *self.archive;
        docs.iter()
            .map(|d| super::scope::may_see(&school, &me, d, &mut |c| archive.child_facts(c)))
            .collect()
    }
}
