//! The hub's open archives ([`ArchivePool`]): a few SQLite connections to `hub.db`, lent to
//! conversations one callback at a time.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Condvar, Mutex, PoisonError};

use shouwang_core::store::StoreKey;
use shouwang_core::{Archive, Error};

use super::super::data::open_archive_with;
use super::super::secrets::KeySource;
use crate::transport::TransportMetrics;

/// Archives the hub holds open at most: SQLite connections to `hub.db`, each caching every
/// document it has loaded. Two keep both cores of a small server busy; more only add memory
/// and reloads (a document one archive writes is reloaded by the others).
pub(crate) const HUB_ARCHIVES: usize = 2;

/// The hub's open archives, shared by every conversation. A conversation borrows one for the
/// length of one callback and never holds two, so at most [`HUB_ARCHIVES`] connections contend
/// for SQLite's write lock, and a document (the school document above all) is loaded once per
/// archive, not once per connection. (With an archive per connection, opened twice per
/// greeting, 200 phones syncing at once loaded the school document 400 times and waited on
/// the write lock until SQLite gave up: `relay/benches/storm.rs`.)
#[derive(Debug)]
pub(crate) struct ArchivePool {
    path: PathBuf,
    /// `None`: a bench-only plain store (`super::data`).
    key: Option<StoreKey>,
    source: KeySource,
    max: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
    /// Archives lent, ever.
    pub(super) borrows: AtomicU64,
}

#[derive(Debug, Default)]
struct PoolState {
    idle: Vec<Archive>,
    /// Archives open, idle or borrowed.
    open: usize,
    /// Set by [`ArchivePool::close`]: nothing more is lent, and what comes back is closed.
    closed: bool,
}

impl ArchivePool {
    /// A pool over the archive at `path`, encrypted with `key` (from `source`), opening at
    /// most `max` (at least 1) archives.
    pub(crate) fn new(
        path: PathBuf,
        key: Option<StoreKey>,
        source: KeySource,
        max: usize,
    ) -> ArchivePool {
        ArchivePool {
            path,
            key,
            source,
            max: max.max(1),
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
            borrows: AtomicU64::new(0),
        }
    }

    /// Borrows an archive, opening one if fewer than `max` are open, else waiting for one.
    /// Blocking: call it from a conversation callback (tokio's blocking pool). Counted in
    /// [`super::HubState::archive_borrows`].
    pub(crate) fn get(&self) -> Result<PooledArchive<'_>, Error> {
        TransportMetrics::add(&self.borrows, 1);
        self.get_quietly()
    }

    /// [`ArchivePool::get`] for the hub's own housekeeping (the school watcher, the relay's
    /// access check), not counted as a conversation's borrow.
    pub(crate) fn get_quietly(&self) -> Result<PooledArchive<'_>, Error> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.closed {
                return Err(Error::NotPermitted(
                    "学校服务器正在关闭，请稍后再试".to_owned(),
                ));
            }
            if let Some(archive) = state.idle.pop() {
                return Ok(PooledArchive {
                    pool: self,
                    archive: Some(archive),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match open_archive_with(&self.path, self.key.as_ref(), &self.source) {
                    Ok(archive) => Ok(PooledArchive {
                        pool: self,
                        archive: Some(archive),
                    }),
                    Err(e) => {
                        self.state
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .open -= 1;
                        // A borrower may open in its place, or the closing pool stop waiting.
                        self.freed.notify_all();
                        Err(e)
                    }
                };
            }
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl ArchivePool {
    /// Closes the pool: lends nothing more, closes the idle archives, and waits, at most
    /// `within`, for the borrowed ones to come back and be closed too. Returns whether every
    /// archive is closed. Blocking.
    ///
    /// A server shutting down calls it last, so that it returns with `hub.db` closed: SQLite's
    /// last connection, closing late, checkpoints and then deletes `hub.db-wal` by name, which
    /// would take a restored or restarted hub's WAL with it.
    pub(crate) fn close(&self, within: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.closed = true;
        let idle = std::mem::take(&mut state.idle);
        state.open -= idle.len();
        // Closed outside the lock (a close may checkpoint the WAL); borrowers waiting for an
        // archive learn that none is coming.
        drop(state);
        self.freed.notify_all();
        drop(idle);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.open > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// An archive borrowed from an [`ArchivePool`]; it goes back when dropped. (A failed store
/// write leaves it usable: the store drops what the write touched.)
#[derive(Debug)]
pub(crate) struct PooledArchive<'a> {
    pool: &'a ArchivePool,
    archive: Option<Archive>,
}

impl Deref for PooledArchive<'_> {
    type Target = Archive;

    fn deref(&self) -> &Archive {
        self.archive.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for PooledArchive<'_> {
    fn deref_mut(&mut self) -> &mut Archive {
        self.archive.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for PooledArchive<'_> {
    fn drop(&mut self) {
        if let Some(archive) = self.archive.take() {
            let mut state = self
                .pool
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if state.closed {
                drop(state);
                drop(archive);
                self.pool
                    .state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .open -= 1;
                // The closing server waits for every archive.
                self.pool.freed.notify_all();
            } else {
                state.idle.push(archive);
                drop(state);
                self.pool.freed.notify_one();
            }
        }
    }
}
