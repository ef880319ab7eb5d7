//! `/health`, Prometheus-format `/metrics`, and the office console (`shouwang-office`), whose
//! archive is the hub's: [`OfficeHub`] lends it `hub.db` (with the data key) and invites
//! naming this running hub's addresses. Served over TLS when `super::tls` says so.
//!
//! `/health` and `/metrics` answer anyone, so what they read from the archive (how many
//! documents it holds) is read at most once every [`STATUS_EVERY`], one read at a time, on a
//! read-only connection of its own; requests meanwhile answer with the figures last read. A
//! flood of them once opened `hub.db` (writable, schema checked) once per request on the
//! blocking pool the phones' syncs share.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::sync::oneshot;

use super::connections::{Connections, Limited};
use super::hub::HubMetrics;
use super::tls::{ConsoleCert, ServedOverTls, TlsListener};
use super::{OwnedTask, ServerError};
use crate::transport::TransportMetrics;

/// How long `/health` and `/metrics` answer with the archive's figures last read before they
/// read them again.
pub const STATUS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// What the HTTP handlers read.
#[derive(Debug, Clone)]
pub(crate) struct HttpState {
    pub transport: Arc<TransportMetrics>,
    pub hub: Arc<HubMetrics>,
    pub archive: std::path::PathBuf,
    /// `None`: a bench-only plain store (`super::data`).
    pub key: Option<shouwang_core::store::StoreKey>,
    pub school_id: String,
    pub hub_id: String,
    /// The documents the archive held when last read, and when: [`documents`].
    pub status: Arc<tokio::sync::Mutex<Option<LastRead>>>,
}

/// When `/health` and `/metrics` last read the archive, and the documents it held (or why it
/// could not be served: [`count_documents`]).
pub(crate) type LastRead = (Instant, Archived);

/// The documents in the archive, or why it cannot be served (for `/health`'s `status`).
pub(crate) type Archived = Result<usize, String>;

/// What the office console gets from the hub: its archive and its invites.
#[derive(Debug, Clone)]
pub(crate) struct OfficeHub {
    pub data: super::DataDir,
    pub key: Option<shouwang_core::store::StoreKey>,
    pub contact: super::HubContact,
}

impl shouwang_office::Hub for OfficeHub {
    fn open_archive(&self) -> Result<shouwang_core::Archive, shouwang_core::Error> {
        // Even its reads are logged (access records) under the hub's actor.
        self.data.check_not_rebuilding()?;
        super::data::open_archive_with(
            &self.data.archive(),
            self.key.as_ref(),
            self.data.key_source(),
        )
    }

    fn invite(
        &self,
        member: &str,
        role: Option<shouwang_core::roles::Role>,
        days: u32,
    ) -> Result<shouwang_office::Ticket, shouwang_core::Error> {
        let now = chrono::Utc::now().timestamp();
        let expires_at = now + i64::from(days.max(1)) * 86_400;
        let issued =
            super::issue_member_invite(&self.data, &self.contact, member, role, now, expires_at)?;
        Ok(shouwang_office::Ticket {
            ticket: issued.ticket,
            member: issued.invite.member.clone(),
            member_name: issued.member_name,
            role: issued.invite.role,
            member_added: issued.member_added,
            expires_at,
        })
    }
}

/// The running HTTP server; dropping it aborts it.
#[derive(Debug)]
pub(crate) struct HttpServer {
    pub addr: SocketAddr,
    /// The certificate's fingerprint when served over TLS, and whether it is the console's own
    /// self-signed one.
    pub fingerprint: Option<(String, bool)>,
    stop: Option<oneshot::Sender<()>>,
    task: OwnedTask,
    /// The console, whose archive the shutdown closes.
    office: shouwang_office::Office,
}

impl HttpServer {
    /// Serves on `bind`, over TLS with `tls` (`super::tls`), else plain HTTP.
    pub async fn start(
        bind: SocketAddr,
        state: HttpState,
        office: OfficeHub,
        tls: Option<&ConsoleCert>,
    ) -> Result<HttpServer, ServerError> {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| ServerError::Bind(format!("HTTP {bind}：{e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| ServerError::Bind(e.to_string()))?;
        let app = axum::Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .with_state(state);
        let office = shouwang_office::Office::new(office);
        let app = app.merge(office.router());
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        // The console's lock-out counts failures per source address; its connections are
        // counted per address too, and closed when idle (`super::connections`).
        let connections = Connections::default();
        let task = match tls {
            None => OwnedTask::spawn(async move {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                // `tap_io` only to have axum's connect info, as below.
                let listener = Limited::new(listener, connections).tap_io(|_| {});
                let serve = axum::serve(listener, app).with_graceful_shutdown(stopped);
                if let Err(e) = serve.await {
                    tracing::warn!("http server: {e}");
                }
            }),
            Some(cert) => {
                // `tap_io` only to have axum's connect info (the peer address) for a listener
                // of our own.
                let listener = TlsListener::new(listener, cert, connections)
                    .map_err(|e| ServerError::Bind(e.to_string()))?
                    .tap_io(|_| {});
                let app = app.layer(axum::Extension(ServedOverTls));
                OwnedTask::spawn(async move {
                    let app = app.into_make_service_with_connect_info::<SocketAddr>();
                    let serve = axum::serve(listener, app).with_graceful_shutdown(stopped);
                    if let Err(e) = serve.await {
                        tracing::warn!("https server: {e}");
                    }
                })
            }
        };
        Ok(HttpServer {
            addr,
            fingerprint: tls.map(|c| (c.fingerprint.clone(), c.own)),
            stop: Some(stop),
            task,
            office,
        })
    }

    /// Stops accepting, finishes requests in flight, and waits.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.join().await;
        // Then the console's archive (a request its browser gave up may still be at work).
        if tokio::time::timeout(super::ARCHIVE_CLOSE, self.office.close())
            .await
            .is_err()
        {
            tracing::warn!(
                "the console's archive was still in use {:?} after shutdown",
                super::ARCHIVE_CLOSE
            );
        }
    }
}

/// `/health`'s `status` when the archive cannot be read.
const UNAVAILABLE: &str = "archive unavailable";

/// Counts the documents in the archive on a read-only connection of its own (a fresh read:
/// another process may have written), closed at once; or says why it cannot be served: it
/// cannot be read, or it is of a schema version this build does not serve (another process,
/// a newer build run by hand, migrated it under this one).
fn count_documents(
    path: &std::path::Path,
    key: Option<&shouwang_core::store::StoreKey>,
) -> Archived {
    use rusqlite::OpenFlags;
    let unavailable = |_| UNAVAILABLE.to_owned();
    if !path.exists() {
        return Err(UNAVAILABLE.into());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = shouwang_core::store::cipher::open(path, flags, key).map_err(|_| UNAVAILABLE)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(unavailable)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unavailable)?;
    let serves = shouwang_core::store::migrations::latest();
    if version != serves {
        return Err(format!(
            "archive schema version {version}, this hub serves {serves}"
        ));
    }
    let n: i64 = conn
        .query_row("SELECT count(*) FROM docs", [], |r| r.get(0))
        .map_err(unavailable)?;
    usize::try_from(n).map_err(|_| UNAVAILABLE.to_owned())
}

/// The documents in the archive, as last read if that was less than [`STATUS_EVERY`] ago, else
/// read now ([`count_documents`]). One read at a time: requests that come meanwhile wait for it
/// as tasks, not on the blocking pool, and answer with what it read. The blocking read holds
/// the lock itself, so a request given up meanwhile (its client gone) starts no second read
/// beside it.
async fn documents(s: &HttpState) -> Archived {
    let mut last = s.status.clone().lock_owned().await;
    if let Some((at, docs)) = &*last
        && at.elapsed() < STATUS_EVERY
    {
        return docs.clone();
    }
    let (path, key, hub) = (s.archive.clone(), s.key.clone(), s.hub.clone());
    tokio::task::spawn_blocking(move || {
        hub.status_reads.fetch_add(1, Ordering::Relaxed);
        let docs = count_documents(&path, key.as_ref());
        *last = Some((Instant::now(), docs.clone()));
        docs
    })
    .await
    .unwrap_or_else(|_| Err(UNAVAILABLE.into()))
}

async fn health(State(s): State<HttpState>) -> impl IntoResponse {
    let docs = documents(&s).await;
    let ok = docs.is_ok();
    let body = serde_json::json!({
        "status": docs.as_ref().map_or_else(String::clone, |_| "ok".to_owned()),
        "school": s.school_id,
        "hub": s.hub_id,
        "documents": docs.ok(),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    let docs = documents(&s).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render_metrics(&s.transport, &s.hub, docs.ok()),
    )
}

/// The Prometheus text exposition of the hub's counters.
pub fn render_metrics(t: &TransportMetrics, h: &HubMetrics, documents: Option<usize>) -> String {
    let g = TransportMetrics::get;
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    put(
        "shouwang_connected_devices",
        "gauge",
        "Devices connected to the hub now.",
        g(&t.connections_open),
    );
    if let Some(d) = documents {
        put(
            "shouwang_documents",
            "gauge",
            "Documents in the hub's archive.",
            d as u64,
        );
    }
    put(
        "shouwang_connections_total",
        "counter",
        "Connections accepted.",
        g(&t.connections_total),
    );
    put(
        "shouwang_sync_sessions_total",
        "counter",
        "Sessions that ended, successful or not.",
        g(&t.conversations_done) + g(&t.conversations_failed),
    );
    put(
        "shouwang_sync_sessions_completed_total",
        "counter",
        "Sessions that ended with both sides done.",
        g(&t.conversations_done),
    );
    put(
        "shouwang_errors_total",
        "counter",
        "Sessions that ended in an error (refused, idle, broken, bad frames).",
        g(&t.conversations_failed),
    );
    put(
        "shouwang_sync_frames_total",
        "counter",
        "Sync frames welcomed devices sent.",
        TransportMetrics::get(&h.frames),
    );
    put(
        "shouwang_frames_held_off_total",
        "counter",
        "Frames after which a device was slowed: it sent faster than the hub's pace per device.",
        TransportMetrics::get(&h.held_off),
    );
    put(
        "shouwang_relay_connections",
        "gauge",
        "Connections the built-in relay holds for devices now.",
        TransportMetrics::get(&h.relay_connections),
    );
    put(
        "shouwang_relay_refused_total",
        "counter",
        "Relay connections refused: not the school's devices, or over a limit.",
        TransportMetrics::get(&h.relay_refused),
    );
    put(
        "shouwang_relay_evicted_total",
        "counter",
        "Relay connections ended: the device was revoked, or the invite that let a stranger in closed.",
        TransportMetrics::get(&h.relay_evicted),
    );
    put(
        "shouwang_refused_total",
        "counter",
        "Devices refused before any record.",
        g(&t.refused),
    );
    put(
        "shouwang_idle_closed_total",
        "counter",
        "Connections closed for being idle.",
        g(&t.idle_closed),
    );
    put(
        "shouwang_redialed_total",
        "counter",
        "Connections a device left for a new one: its handshake was not confirmed in time.",
        g(&t.redialed),
    );
    put(
        "shouwang_oversized_frames_total",
        "counter",
        "Connections closed for a frame over the size limit.",
        g(&t.oversized),
    );
    put(
        "shouwang_busy_refused_total",
        "counter",
        "Connections closed at once: too many open from that device or in total.",
        g(&t.busy),
    );
    put(
        "shouwang_strangers_refused_total",
        "counter",
        "Connections closed right after the QUIC handshake: the device is not registered in this school and no invite is open.",
        g(&t.strangers),
    );
    put(
        "shouwang_handshakes_ignored_total",
        "counter",
        "Connection attempts ignored before their handshake: the hub already held its budget of handshakes and refused connections (the device's QUIC stack tries again).",
        g(&t.handshakes_ignored),
    );
    put(
        "shouwang_handshakes_known_total",
        "counter",
        "Connection attempts recognised before their handshake as coming from a registered device (through the relay, or from an address it connected from), which do not wait behind strangers.",
        g(&t.handshakes_known),
    );
    put(
        "shouwang_status_reads_total",
        "counter",
        "Reads of the archive for /health and /metrics (at most one every few seconds).",
        g(&h.status_reads),
    );
    put(
        "shouwang_enrollments_total",
        "counter",
        "Devices enrolled with an invite.",
        g(&h.enrollments),
    );
    put(
        "shouwang_bytes_received_total",
        "counter",
        "Frame bytes received.",
        g(&t.bytes_in),
    );
    put(
        "shouwang_bytes_sent_total",
        "counter",
        "Frame bytes sent.",
        g(&t.bytes_out),
    );
    put(
        "shouwang_frames_received_total",
        "counter",
        "Frames received.",
        g(&t.frames_in),
    );
    put(
        "shouwang_frames_sent_total",
        "counter",
        "Frames sent.",
        g(&t.frames_out),
    );
    out
}
