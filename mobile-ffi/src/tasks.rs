//! Listeners and the handles that keep them subscribed.
//!
//! A listener is a foreign object (a Kotlin or Swift class implementing the interface). It is
//! called on a thread of the runtime's blocking pool, one call at a time per subscription and
//! in order, never on the caller's thread and never while the client holds its store lock: a
//! listener may call back into the client. A slow listener delays only its own later calls.
//!
//! Registering returns a [`TaskHandle`]; the subscription lasts as long as the handle. Closing
//! it (`close()` in Kotlin, or the garbage collector freeing it) or calling
//! [`TaskHandle::cancel`] ends it.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};

use crate::runtime::runtime;
use crate::types::{ChangeEvent, PeerSyncReport, SyncUpdate};

/// Receives the status of a sync: progress, success (with the time of the last success),
/// failures.
#[uniffi::export(callback_interface)]
pub trait SyncListener: Send + Sync {
    fn on_update(&self, update: SyncUpdate);
}

/// Told how much of the member's documents a joining device has received, after every piece
/// (on 2G, about every two seconds): show it, a year of a class takes a minute there.
#[uniffi::export(callback_interface)]
pub trait JoinListener: Send + Sync {
    /// `bytes` of the school's documents for this member have arrived so far; 0 first, as soon
    /// as the school has accepted the invite.
    fn on_received(&self, bytes: u64);
}

/// Told when the store changed (a write through this client, or a sync that brought
/// changes): reload what is shown.
#[uniffi::export(callback_interface)]
pub trait ChangeListener: Send + Sync {
    fn on_change(&self, event: ChangeEvent);
}

/// Told about direct syncs other members' devices make with this one (see
/// [`crate::ShouwangClient::accept_peers`]).
#[uniffi::export(callback_interface)]
pub trait PeerListener: Send + Sync {
    /// Other devices can reach this one now: its device code, and the UDP port it listens on
    /// (on every network the phone is on).
    fn on_ready(&self, device_code: String, port: u16);
    /// An exchange with another member's device completed.
    fn on_synced(&self, report: PeerSyncReport);
}

/// A running subscription or background task. Dropping it ends it.
#[derive(Debug, uniffi::Object)]
pub struct TaskHandle {
    task: Mutex<Option<AbortHandle>>,
}

impl TaskHandle {
    pub(crate) fn new(task: &JoinHandle<()>) -> Arc<TaskHandle> {
        Arc::new(TaskHandle {
            task: Mutex::new(Some(task.abort_handle())),
        })
    }
}

#[uniffi::export]
impl TaskHandle {
    /// Ends the task now (also done when the handle is closed or freed).
    pub fn cancel(&self) {
        if let Ok(mut task) = self.task.lock()
            && let Some(task) = task.take()
        {
            task.abort();
        }
    }

    /// Whether the task has ended (cancelled, or its client was closed).
    pub fn is_finished(&self) -> bool {
        self.task
            .lock()
            .map(|t| t.as_ref().is_none_or(AbortHandle::is_finished))
            .unwrap_or(true)
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Delivers events to a foreign listener in order, one call at a time, on the blocking pool.
/// The pump ends once every sender is dropped and the queue is delivered.
pub(crate) fn pump<E, F>(deliver: F) -> Option<(mpsc::UnboundedSender<E>, JoinHandle<()>)>
where
    E: Send + 'static,
    F: Fn(E) + Send + Sync + 'static,
{
    let rt = runtime().ok()?;
    let (tx, mut rx) = mpsc::unbounded_channel::<E>();
    let deliver = Arc::new(deliver);
    let task = rt.spawn(async move {
        while let Some(event) = rx.recv().await {
            let deliver = deliver.clone();
            // A listener that throws is the app's bug; it must not end the subscription.
            let _ = tokio::task::spawn_blocking(move || deliver(event)).await;
        }
    });
    Some((tx, task))
}

/// A sync listener's queue.
pub(crate) type SyncUpdates = mpsc::UnboundedSender<SyncUpdate>;

/// Starts delivering sync updates to `listener`.
pub(crate) fn sync_pump(listener: Box<dyn SyncListener>) -> Option<(SyncUpdates, JoinHandle<()>)> {
    pump(move |u| listener.on_update(u))
}
