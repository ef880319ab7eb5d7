//! A damaged store (issue 12, point 6). A document whose bytes no longer load (a bad flash
//! page under it, a torn write the file system did not protect) is reported as
//! [`Error::Damaged`] naming that document, while every other document stays readable: each
//! is loaded on its own, and lists read projections. Before a sync with the hub the device
//! drops the damaged documents, so the hub sends them again whole; what this device had
//! written into one of them and not yet sent is lost with it (the bytes cannot be read), and
//! until the hub sends one back a write into it is refused (it is not started afresh).

use super::Archive;
use crate::doc::DocId;
use crate::error::{Error, Result};

/// The documents dropped as damaged and not yet reported fetched again (their keys, one per
/// line): what she wrote in one since her last sync cannot be read back, so she is told
/// which to check ([`Archive::take_refetched_damaged`]).
const DROPPED_DAMAGED: &str = "damaged.dropped";

impl Archive {
    /// Drops every document of this store whose bytes no longer load (its rows, sync state
    /// and holds), so the next sync fetches it again. Returns what was dropped, in Chinese.
    pub fn drop_damaged(&mut self) -> Result<Vec<String>> {
        let damaged = self.store.damaged_docs()?;
        if damaged.is_empty() {
            return Ok(Vec::new());
        }
        let what = damaged
            .iter()
            .map(|id| match self.store.doc(id) {
                Err(Error::Damaged { what, .. }) => what,
                _ => id.key(),
            })
            .collect();
        // Noted before they go (a drop cut off is done again, and noted once).
        let mut noted = self.dropped_damaged()?;
        for id in &damaged {
            if !noted.contains(id) {
                noted.push(id.clone());
            }
        }
        let text: Vec<String> = noted.iter().map(DocId::key).collect();
        self.store.write(|b| {
            b.set_meta(DROPPED_DAMAGED, &text.join("\n"));
            Ok(())
        })?;
        // Remembered as dropped, each a peer holds (or that was remembered before): whether
        // this device wrote in one cannot be read from its bytes, and a local write starting
        // it afresh would number its changes from 1 again, which a peer holding the first
        // ones refuses for good; a write into one waits for the sync that brings it back
        // (`Store::purge_remembering`). One no peer ever received (this phone's access log
        // before its first sync) would never come back: it starts afresh, numbering nothing
        // twice.
        let marks = self.store.purged_marks()?;
        let mut remembered = Vec::new();
        for id in &damaged {
            if marks.contains(id) || !self.store.shared_heads_of(id)?.is_empty() {
                remembered.push(id.clone());
            }
        }
        self.store.purge_remembering(&damaged, &remembered)?;
        Ok(what)
    }

    /// After a sync that succeeded: the documents dropped as damaged since the last such call
    /// (now fetched again from the school), named as a person reads them, and forgets them.
    /// What she wrote in one after her last sync before the damage is lost: the app says which
    /// to check ("请核对后重新录入").
    pub fn take_refetched_damaged(&mut self) -> Result<Vec<String>> {
        let names = self.refetched_damaged()?;
        if !names.is_empty() {
            self.forget_refetched_damaged()?;
        }
        Ok(names)
    }

    /// [`Archive::take_refetched_damaged`] without forgetting them: an app shows them until
    /// the member has seen them ([`Archive::forget_refetched_damaged`]). Only after a sync
    /// that succeeded.
    pub fn refetched_damaged(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for id in &self.dropped_damaged()? {
            let name = self.doc_label(id)?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Forgets the documents [`Archive::refetched_damaged`] names: she has been told.
    pub fn forget_refetched_damaged(&mut self) -> Result<()> {
        self.store.write(|b| {
            b.set_meta(DROPPED_DAMAGED, "");
            Ok(())
        })
    }

    fn dropped_damaged(&self) -> Result<Vec<DocId>> {
        Ok(self
            .store
            .meta(DROPPED_DAMAGED)?
            .unwrap_or_default()
            .lines()
            .filter_map(DocId::parse)
            .collect())
    }
}
