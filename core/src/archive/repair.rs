//! A damaged store (issue 12, point 6). A document whose bytes no longer load (a bad flash
//! page under it, a torn write the file system did not protect) is reported as
//! [`Error::Damaged`] naming that document, while every other document stays readable: each
//! is loaded on its own, and lists read projections. Before a sync with the hub the device
//! drops the damaged documents, so the hub sends them again whole; what this device had
//! written into one of them and not yet sent is lost with it (the bytes cannot be read), and
//! until the hub sends one back a write into it is refused (it is not started afresh).

use super::Archive;
use crate::error::{Error, Result};

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
}
