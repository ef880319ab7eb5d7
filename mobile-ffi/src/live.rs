//! Live sync: the phone stays connected to the school server while the app is on screen.
//!
//! The connection says `Live` to the hub (see `shouwang_relay::handshake`). Each write through
//! the client wakes it, so the record goes out at once; the hub passes on what other devices
//! bring as it arrives, and change listeners hear `HUB`. The hub closes a connection idle for
//! a minute; live sync then reconnects at once (one small frame each way), so the app sees no
//! gap. A failed connection is tried again after [`RETRY`], doubling after each failure in a
//! row up to [`MAX_RETRY`] (no signal for an hour costs a dozen attempts, not 700), and from
//! [`RETRY`] again once a connection gets through. Refusals no attempt can change (the device
//! revoked, its certificate expired, not enrolled, the wrong key) end it. Background sync
//! ([`ShouwangClient::start_background_sync`]) is the battery-friendly choice when the app is
//! not on screen: it connects only now and then.
//!
//! One live sync runs per client, and it holds the client's sync lock while connected: a
//! `sync_now` or a sync with a colleague's device makes it give way (the connection is closed
//! and made again after that sync), and background sync makes no attempts while it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use shouwang_core::Archive;
use shouwang_core::sync::Progress;
use shouwang_relay::device::{self, WhenRevoked};
use shouwang_relay::syncing::ProgressHook;
use shouwang_relay::transport::{ConversationOptions, Wake};

use crate::client::{Inner, ShouwangClient, failure_update, is_final};
use crate::error::ShouwangError;
use crate::runtime::{blocking, runtime};
use crate::tasks::{SyncListener, TaskHandle, sync_pump};
use crate::types::{ChangeEvent, ChangeOrigin, SyncProgress, SyncUpdate};

type Result<T> = std::result::Result<T, ShouwangError>;

/// How long live sync waits before reconnecting after a failure.
pub const RETRY: Duration = Duration::from_secs(5);

/// The longest live sync waits between attempts while they keep failing.
pub const MAX_RETRY: Duration = Duration::from_secs(300);

/// How long a live connection must have stayed up for its end to start the waits after
/// failures again from [`RETRY`].
const STAYED_UP: Duration = Duration::from_secs(60);

/// The waits between failed attempts: [`RETRY`], doubled after each failure in a row up to
/// [`MAX_RETRY`], [`RETRY`] again after a success.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff { next: RETRY }
    }

    /// An attempt failed: how long to wait before the next.
    pub(crate) fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_RETRY);
        wait
    }

    /// An attempt got through.
    pub(crate) fn succeeded(&mut self) {
        self.next = RETRY;
    }
}

/// Counts what arrived over one live connection, for the change listeners: given each progress
/// report, the documents to announce (`None`: nothing arrived since the last report). A
/// connection may run more than one session (`device::sync_hub_live` tries once more after a
/// refusal its own news explained), each counting from zero.
pub(crate) fn arrivals_counter() -> impl FnMut(&Progress) -> Option<u64> + Send + 'static {
    let (mut seen, mut docs) = (0, 0);
    move |p: &Progress| {
        // Counts below the last ones: a new session, counting from zero.
        if p.arrivals < seen || p.docs_changed < docs {
            (seen, docs) = (0, 0);
        }
        // Every frame that brought changes, also a second one for a document already changed
        // in this connection.
        if p.arrivals > seen {
            let documents = p.docs_changed.saturating_sub(docs).max(1) as u64;
            (seen, docs) = (p.arrivals, p.docs_changed);
            Some(documents)
        } else {
            None
        }
    }
}

#[uniffi::export]
impl ShouwangClient {
    /// Stays connected to the school server until the returned handle is closed (or the client
    /// is): records written through this client go out at once, and records other devices
    /// bring to the server arrive as they come. `listener` hears `Connecting` at each
    /// (re)connection, `Progress` after every message, `Failed` (retried after
    /// `retry_in_secs`: 5 s, doubling while attempts keep failing, up to 5 minutes; with no
    /// `retry_in_secs` it stopped for good: not enrolled, the wrong key, the membership
    /// certificate expired) and `Revoked` (the school revoked this device: the store is wiped
    /// and live sync ends). Meant for while the app is on screen; it keeps the radio awake.
    ///
    /// One live sync runs per client: starting it again replaces the one running (its handle
    /// reports it finished). While it runs, background sync makes no attempts, and `sync_now`
    /// or a sync with a colleague's device briefly takes its place (it reconnects after).
    pub fn start_live_sync(&self, listener: Box<dyn SyncListener>) -> Result<Arc<TaskHandle>> {
        let rt = runtime()?;
        let identity = self.inner.identity()?;
        let (updates, _delivery) = sync_pump(listener).ok_or_else(ShouwangError::internal)?;
        let (path, key) = (self.inner.path.clone(), self.inner.key.clone());
        let changes = self.inner.changes.clone();
        let client: Weak<Inner> = Arc::downgrade(&self.inner);
        let lock = self.inner.sync_lock.clone();
        let mut wanted = self.inner.sync_wanted.subscribe();
        // Ends with an error once the client is gone.
        let mut writes = self.inner.writes.subscribe();
        let task = rt.spawn(async move {
            let wake = Wake::new();
            let opts = ConversationOptions {
                wake: Some(wake.clone()),
                ..device::default_options()
            };
            let mut backoff = Backoff::new();
            loop {
                // Syncs that asked before this point are queued on the lock ahead of it.
                wanted.borrow_and_update();
                let held = lock.clone().lock_owned().await;
                let _ = updates.send(SyncUpdate::Connecting);
                let progress = updates.clone();
                let arrivals = changes.clone();
                let mut count = arrivals_counter();
                // Whether this connection got as far as exchanging messages, and when it began:
                // one that stayed up a while was a success, whatever ended it; one refused or
                // failing right after the welcome each time (the hub's disk full) is not.
                let got_through = Arc::new(AtomicBool::new(false));
                let began = std::time::Instant::now();
                let through = got_through.clone();
                let hook: ProgressHook = Box::new(move |p| {
                    through.store(true, Ordering::Relaxed);
                    let _ = progress.send(SyncUpdate::Progress {
                        progress: SyncProgress::from(p),
                    });
                    if let Some(documents) = count(p) {
                        // No subscriber is not an error.
                        let _ = arrivals.send(ChangeEvent {
                            origin: ChangeOrigin::Hub,
                            documents,
                        });
                    }
                });
                let (path, key, identity, opts) = (path.clone(), key.clone(), &identity, &opts);
                let connection = async move {
                    let archive =
                        blocking(move || Ok(Archive::open_with_key(&path, Some(&key))?)).await?;
                    let node = identity.bind(false).await?;
                    let ended = device::sync_hub_live_with(
                        &node,
                        identity,
                        archive,
                        opts,
                        Some(hook),
                        WhenRevoked::Report,
                    )
                    .await;
                    node.shutdown().await;
                    Ok::<_, ShouwangError>(ended?)
                };
                // Boxed, so that giving way drops it (the store and the endpoint closed) before
                // the lock is let go.
                let mut connection = Box::pin(connection);
                let ended = loop {
                    tokio::select! {
                        ended = &mut connection => break Some(ended),
                        written = writes.changed() => match written {
                            Ok(()) => wake.wake(),
                            Err(_) => return, // the client was closed
                        },
                        // Another sync of this client waits: give way, then connect again.
                        asked = wanted.changed() => match asked {
                            Ok(()) => break None,
                            Err(_) => return,
                        },
                    }
                };
                let Some(ended) = ended else {
                    drop(connection);
                    drop(held);
                    continue;
                };
                if ended.is_ok()
                    || (got_through.load(Ordering::Relaxed) && began.elapsed() >= STAYED_UP)
                {
                    backoff.succeeded();
                }
                if let Err(e) = ended {
                    let e = match (e, Weak::upgrade(&client)) {
                        (ShouwangError::Revoked { .. }, Some(inner)) => inner.end_revoked().await,
                        (e, _) => e,
                    };
                    drop(held);
                    let last = is_final(&e);
                    let wait = backoff.failed();
                    let _ = updates.send(failure_update(
                        &e,
                        (!last).then_some(u32::try_from(wait.as_secs()).unwrap_or(u32::MAX)),
                    ));
                    if last {
                        return;
                    }
                    tokio::time::sleep(wait).await;
                }
                // Ended idle: the server closed a quiet connection. Reconnect at once.
            }
        });
        if let Ok(mut running) = self.inner.live.lock()
            && let Some(earlier) = running.replace(task.abort_handle())
        {
            earlier.abort();
        }
        Ok(TaskHandle::new(&task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_wait_longer_up_to_five_minutes_and_a_success_starts_again() {
        let mut b = Backoff::new();
        let secs = |b: &mut Backoff| (0..9).map(|_| b.failed().as_secs()).collect::<Vec<_>>();
        assert_eq!(secs(&mut b), [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        b.succeeded();
        assert_eq!(b.failed().as_secs(), 5);
    }

    fn progress(arrivals: u64, docs_changed: usize) -> Progress {
        Progress {
            arrivals,
            docs_changed,
            ..Progress::default()
        }
    }

    /// `sync_hub_live` runs a second session on the same hook after a refusal its own news
    /// explained: that session counts from zero.
    #[test]
    fn a_second_session_on_one_connection_counts_from_zero() {
        let mut count = arrivals_counter();
        assert_eq!(count(&progress(0, 0)), None);
        assert_eq!(count(&progress(2, 3)), Some(3));
        assert_eq!(count(&progress(3, 3)), Some(1), "a document changed again");
        // The second session.
        assert_eq!(count(&progress(0, 0)), None);
        assert_eq!(count(&progress(1, 1)), Some(1));
        assert_eq!(count(&progress(2, 4)), Some(3));
    }

    /// Fewer documents changed than the last report said: a second session (whose first
    /// reports came before anything arrived). Subtracting underflowed.
    #[test]
    fn fewer_documents_changed_is_a_new_session() {
        let mut count = arrivals_counter();
        assert_eq!(count(&progress(3, 3)), Some(3));
        assert_eq!(count(&progress(4, 1)), Some(1));
    }
}
