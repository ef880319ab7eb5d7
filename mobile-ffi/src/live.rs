//! Live sync: the phone stays connected to the school server while the app is on screen.
//!
//! The connection says `Live` to the hub (see `shouwang_relay::handshake`). Each write through
//! the client wakes it, so the record goes out at once; the hub passes on what other devices
//! bring as it arrives, and change listeners hear `HUB`. The hub closes a connection idle for
//! a minute; live sync then reconnects at once (one small frame each way), so the app sees no
//! gap. A broken connection is retried after [`RETRY`]. Background sync
//! ([`ShouwangClient::start_background_sync`]) is the battery-friendly choice when the app is
//! not on screen: it connects only now and then.

use std::sync::Arc;
use std::time::Duration;

use shouwang_core::Archive;
use shouwang_relay::device;
use shouwang_relay::syncing::ProgressHook;
use shouwang_relay::transport::{ConversationOptions, Wake};

use crate::client::{ShouwangClient, is_final};
use crate::error::ShouwangError;
use crate::runtime::{blocking, runtime};
use crate::tasks::{SyncListener, TaskHandle, sync_pump};
use crate::types::{ChangeEvent, ChangeOrigin, SyncProgress, SyncUpdate};

type Result<T> = std::result::Result<T, ShouwangError>;

/// How long live sync waits before reconnecting after a failure.
pub const RETRY: Duration = Duration::from_secs(5);

#[uniffi::export]
impl ShouwangClient {
    /// Stays connected to the school server until the returned handle is closed (or the client
    /// is): records written through this client go out at once, and records other devices
    /// bring to the server arrive as they come. `listener` hears `Connecting` at each
    /// (re)connection, `Progress` after every message, and `Failed` (retried after 5 s; for
    /// good on `NotEnrolled` or `Locked`). Meant for while the app is on screen; it keeps the
    /// radio awake.
    pub fn start_live_sync(&self, listener: Box<dyn SyncListener>) -> Result<Arc<TaskHandle>> {
        let rt = runtime()?;
        let identity = self.inner.identity()?;
        let (updates, _delivery) = sync_pump(listener).ok_or_else(ShouwangError::internal)?;
        let (path, key) = (self.inner.path.clone(), self.inner.key.clone());
        let changes = self.inner.changes.clone();
        // Ends with an error once the client is gone.
        let mut writes = self.inner.writes.subscribe();
        let task = rt.spawn(async move {
            let wake = Wake::new();
            let opts = ConversationOptions {
                wake: Some(wake.clone()),
                ..device::default_options()
            };
            loop {
                let _ = updates.send(SyncUpdate::Connecting);
                let progress = updates.clone();
                let arrivals = changes.clone();
                let (mut seen, mut docs) = (0, 0);
                let hook: ProgressHook = Box::new(move |p| {
                    let _ = progress.send(SyncUpdate::Progress {
                        progress: SyncProgress::from(p),
                    });
                    // Every frame that brought changes, also a second one for a document
                    // already changed in this connection.
                    if p.arrivals > seen {
                        // No subscriber is not an error.
                        let _ = arrivals.send(ChangeEvent {
                            origin: ChangeOrigin::Hub,
                            documents: (p.docs_changed - docs).max(1) as u64,
                        });
                        (seen, docs) = (p.arrivals, p.docs_changed);
                    }
                });
                let (path, key, identity, opts) = (path.clone(), key.clone(), &identity, &opts);
                let connection = async move {
                    let archive =
                        blocking(move || Ok(Archive::open_with_key(&path, Some(&key))?)).await?;
                    let node = identity.bind(false).await?;
                    let ended =
                        device::sync_hub_live(&node, identity, archive, opts, Some(hook)).await;
                    node.shutdown().await;
                    Ok::<_, ShouwangError>(ended?)
                };
                tokio::pin!(connection);
                let ended = loop {
                    tokio::select! {
                        ended = &mut connection => break ended,
                        written = writes.changed() => match written {
                            Ok(()) => wake.wake(),
                            Err(_) => return, // the client was closed
                        },
                    }
                };
                if let Err(e) = ended {
                    let last = is_final(&e);
                    let _ = updates.send(SyncUpdate::Failed {
                        message: e.message().to_owned(),
                        retry_in_secs: (!last).then_some(RETRY.as_secs() as u32),
                    });
                    if last {
                        return;
                    }
                    tokio::time::sleep(RETRY).await;
                }
                // Ended idle: the server closed a quiet connection. Reconnect at once.
            }
        });
        Ok(TaskHandle::new(&task))
    }
}
