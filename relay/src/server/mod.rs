//! The `shouwang-relay` server: an iroh relay, the school hub, and `/health` + `/metrics`.
//!
//! [`Server::start`] runs all three from a [`ServerConfig`]; tests start it in-process with
//! [`ServerConfig::loopback`]. Dropping a [`Server`] aborts every task it owns;
//! [`Server::shutdown`] stops them gracefully (conversations end after their current frame,
//! whose writes are already durable).

mod backup;
pub mod commands;
mod config;
mod connections;
mod data;
mod http;
mod hub;
mod invite;
mod migrate;
pub mod reach;
pub mod relay_listener;
mod secrets;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shouwang_core::roles::Role;

pub use backup::{BackupReport, backup, restore};
pub use config::{
    DATA_DIR, HTTP_PORT, HUB_PORT, RELAY_PORT, ServerConfig, default_config_file, default_key_file,
};
/// Who may use the school's built-in relay.
pub use connections::{
    IDLE as CONSOLE_IDLE, PER_ADDRESS as CONSOLE_PER_ADDRESS, TOTAL as CONSOLE_TOTAL,
};
pub use data::{DataDir, IssuedInvite, Spend};
pub use http::{STATUS_EVERY, render_metrics};
pub use hub::relay_access as hub_relay;
pub use hub::{HubConversation, HubFactory, HubMetrics, HubState};
pub use invite::{
    HubContact, NewInvite, adopt_archive, init_school, issue_invite, issue_member_invite, qr_png,
    qr_terminal,
};
pub use migrate::{Converted, encrypt_data, is_plain};
pub use secrets::{DataKey, KEY_CREDENTIAL, KEY_ENV, KEY_FILE_NAME, KeySource};

use crate::transport::{
    ConversationOptions, EndpointAddr, EndpointId, Node, NodeConfig, RelayUrl, TransportMetrics,
    Wake,
};

/// Why the server could not start or act. `Display` is a Chinese sentence.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Core(Box<shouwang_core::Error>),
    #[error("{0}")]
    Transport(Box<crate::transport::TransportError>),
    #[error("配置有误：{0}")]
    Config(String),
    /// The detail (English from the system or the network stack) is for the logs: `Debug`.
    #[error("无法监听网络端口（{}）", crate::transport::plain(.0))]
    Bind(String),
    /// The detail is for the logs, as for `Bind`.
    #[error("中继服务无法启动（{}）", crate::transport::plain(.0))]
    Relay(String),
    /// Refused as it stands (the sentence says why and what to do).
    #[error("{0}")]
    Refused(String),
}

impl From<shouwang_core::Error> for ServerError {
    fn from(e: shouwang_core::Error) -> Self {
        ServerError::Core(Box::new(e))
    }
}

impl From<crate::transport::TransportError> for ServerError {
    fn from(e: crate::transport::TransportError) -> Self {
        ServerError::Transport(Box::new(e))
    }
}

/// A spawned task that is aborted when dropped.
#[derive(Debug)]
pub(crate) struct OwnedTask(Option<tokio::task::JoinHandle<()>>);

impl OwnedTask {
    pub fn spawn(fut: impl Future<Output = ()> + Send + 'static) -> OwnedTask {
        OwnedTask(Some(tokio::spawn(fut)))
    }

    /// Stops the task and waits until its future is dropped (a blocking closure it spawned
    /// runs on, holding what it holds: the archive pool waits for those, `ArchivePool::close`).
    pub async fn stop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
            let _ = h.await;
        }
    }

    /// Waits for the task to end by itself.
    pub async fn join(&mut self) {
        if let Some(h) = self.0.take() {
            let _ = h.await;
        }
    }
}

impl Drop for OwnedTask {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

impl HubState {
    fn new(
        data: &DataDir,
        school_id: shouwang_core::ids::SchoolId,
        school_key: shouwang_core::membership::SchoolKey,
        store_key: Option<&shouwang_core::store::StoreKey>,
        config: &ServerConfig,
    ) -> HubState {
        HubState {
            data: data.clone(),
            school_id,
            school_key,
            certificate_days: config.certificate_days,
            daily_change_bytes: config.daily_change_bytes,
            metrics: Arc::new(HubMetrics::default()),
            archives: hub::ArchivePool::new(
                data.archive(),
                store_key.cloned(),
                data.key_source().clone(),
                hub::HUB_ARCHIVES,
            ),
            changed: Wake::new(),
            enrolled: Arc::new(hub::Enrolled::new(data.clone())),
            frame_rate: crate::pace::FrameRate::new(config.pace),
        }
    }

    /// The hub's state over the initialised data directory `config` names, opened with its
    /// data key, without the network: what [`Server::start`] serves, for driving
    /// [`HubFactory`]'s conversations directly (the fuzz targets, `fuzz/`).
    pub fn open(config: &ServerConfig) -> Result<Arc<HubState>, ServerError> {
        let data = config.data();
        data.check_initialised()?;
        let key = data.data_key()?;
        let school_key = data.school_key_with(&key)?;
        let store_key = data.archive_key(&key);
        let school_id =
            data::open_archive_with(&data.archive(), store_key.as_ref(), data.key_source())?
                .school_id()
                .clone();
        let state = Arc::new(HubState::new(
            &data,
            school_id,
            school_key,
            store_key.as_ref(),
            config,
        ));
        // The registered devices, as `Server::start` reads them before accepting anyone.
        let mut archive = state.archives.get_quietly()?;
        state.enrolled.refresh(&mut archive);
        drop(archive);
        Ok(state)
    }
}

/// How long a shutdown waits for the archives still lent (a conversation's callback, the
/// watcher's tick, which may be scrubbing the store after an erasure; the console's request)
/// to come back. Within systemd's 90 s between SIGTERM and SIGKILL.
pub(crate) const ARCHIVE_CLOSE: Duration = Duration::from_secs(60);

/// The running server.
#[derive(Debug)]
pub struct Server {
    relay: Option<relay_listener::RelayListener>,
    relay_url: Option<RelayUrl>,
    hub: Node,
    http: Option<http::HttpServer>,
    state: Arc<HubState>,
    config: ServerConfig,
    /// Wakes live conversations when the school document changes (a revocation).
    school_watch: OwnedTask,
}

impl Server {
    /// Starts the relay (if configured), the hub and the HTTP server.
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        config.check()?;
        // The data key first: a wrong or missing one stops here, before any file is opened
        // for writing.
        let data = config.data();
        data.check_initialised()?;
        config.check_reachable()?;
        let key = data.data_key()?;
        let school_key = data.school_key_with(&key)?;
        let hub_key = data.hub_key_with(&key)?;
        let store_key = data.archive_key(&key);
        let school_id = {
            let (archive, store_key, source) =
                (data.archive(), store_key.clone(), data.key_source().clone());
            let rebuilding = data.rebuilding_marker().exists();
            tokio::task::spawn_blocking(move || {
                let mut a = data::open_archive_with(&archive, store_key.as_ref(), &source)?;
                // Restored by a release before restore epochs, and still rebuilding: it has
                // written nothing since, so a new actor now is in time (`Store::begin_epoch`).
                if rebuilding && a.store().epoch().is_none() {
                    a.store().begin_epoch()?;
                }
                Ok::<_, shouwang_core::Error>(a.school_id().clone())
            })
            .await
            .map_err(|e| ServerError::Bind(e.to_string()))??
        };
        // With the key checked (a wrong one touches nothing).
        let (wiped, left) = data.wipe_qr_images();
        if wiped > 0 {
            tracing::info!(
                wiped,
                "wiped the invites' QR code images an older release left in the data directory"
            );
        }
        // One the service's user cannot wipe (left by an `invite` run as root) must not keep
        // the school's hub from starting: said, with what to do.
        for (path, e) in left {
            tracing::warn!(
                "邀请码的二维码图片 {} 无法清除（{e}）：它就是邀请码，请用 sudo shred -u 删除",
                path.display()
            );
        }

        let access = hub::EnrolledOnly {
            state: Arc::new(std::sync::OnceLock::new()),
        };
        let (relay, relay_url) = match config.relay_bind {
            Some(bind) => {
                let relay = relay_listener::RelayListener::bind(
                    bind,
                    hub::relay_access::service(Arc::new(access.clone())),
                )
                .await
                .map_err(|e| ServerError::Relay(e.to_string()))?;
                let port = relay.addr().port();
                let url = match &config.relay_url {
                    Some(u) => u.clone(),
                    None => config::default_relay_url(bind, port),
                };
                (Some(relay), Some(config::parse_relay_url(&url)?))
            }
            None => (
                None,
                config
                    .relay_url
                    .as_deref()
                    .map(config::parse_relay_url)
                    .transpose()?,
            ),
        };

        let state = Arc::new(HubState::new(
            &data,
            school_id.clone(),
            school_key,
            store_key.as_ref(),
            &config,
        ));
        let hub_metrics = state.metrics().clone();
        // The registered devices, before the hub accepts anyone.
        {
            let s = state.clone();
            tokio::task::spawn_blocking(move || {
                let mut archive = s.archives.get_quietly()?;
                s.enrolled.refresh(&mut archive);
                Ok::<_, shouwang_core::Error>(())
            })
            .await
            .map_err(|e| ServerError::Bind(e.to_string()))??;
        }
        if let Some(relay) = &relay {
            state
                .enrolled
                .relay
                .set_clients(relay.service().clients().clone());
        }
        state.enrolled.relay.set_grace(config.relay_grace);
        let _ = access.state.set((state.clone(), hub_key.public()));
        let node_config = NodeConfig {
            secret_key: hub_key,
            relays: relay_url.iter().cloned().collect(),
            bind: config.hub_bind.clone(),
            lan_discovery: false,
        };
        let opts = ConversationOptions {
            idle_timeout: config.idle_timeout,
            max_frame: config.max_frame,
            wake: Some(state.changed().clone()),
            limits: config.limits,
            admission: Some(state.enrolled.clone()),
            // A device's connection stays open this long after a sync for its next one.
            warm: config.idle_timeout,
            ..ConversationOptions::default()
        };
        let transport_metrics = Arc::new(TransportMetrics::default());
        let hub = Node::serve(
            node_config,
            Arc::new(HubFactory::new(state.clone())),
            opts,
            transport_metrics.clone(),
        )
        .await?;
        if relay_url.is_some() && !hub.wait_for_relay(Duration::from_secs(10)).await {
            tracing::warn!("hub is not connected to its relay yet; devices behind NAT must wait");
        }

        let office = http::OfficeHub {
            data: data.clone(),
            key: store_key.clone(),
            contact: HubContact {
                relay_url: relay_url.as_ref().map(|u| u.to_string()),
                addrs: direct_addrs(&config, &hub),
            },
        };
        let console_cert = if config.console_tls() {
            Some(tls::ConsoleCert::load(
                config.http_cert.as_ref(),
                &config.data_dir,
                &config.console_names(),
                &key,
            )?)
        } else {
            None
        };
        let http = match config.http_bind {
            Some(bind) => Some(
                http::HttpServer::start(
                    bind,
                    http::HttpState {
                        transport: transport_metrics,
                        hub: hub_metrics,
                        archive: data.archive(),
                        key: store_key,
                        school_id: school_id.to_string(),
                        hub_id: hub.id().to_string(),
                        status: Arc::default(),
                    },
                    office,
                    console_cert.as_ref(),
                )
                .await?,
            ),
            None => None,
        };
        tracing::info!(
            hub = %hub.id(),
            relay = ?relay_url.as_ref().map(|u| u.to_string()),
            sockets = ?hub.bound_sockets(),
            http = ?http.as_ref().map(|h| h.addr),
            "shouwang-relay serving"
        );
        let school_watch =
            OwnedTask::spawn(hub::watch_school(state.clone(), Duration::from_millis(500)));
        Ok(Server {
            relay,
            relay_url,
            hub,
            http,
            state,
            config,
            school_watch,
        })
    }

    /// The relay URL devices use.
    pub fn relay_url(&self) -> Option<&RelayUrl> {
        self.relay_url.as_ref()
    }

    /// Where the embedded relay listens.
    pub fn relay_addr(&self) -> Option<SocketAddr> {
        self.relay.as_ref().map(|r| r.addr())
    }

    /// The hub's endpoint id.
    pub fn hub_id(&self) -> EndpointId {
        self.hub.id()
    }

    /// The hub's address: its relay and its UDP sockets.
    pub fn hub_addr(&self) -> EndpointAddr {
        let mut addr = EndpointAddr::new(self.hub.id());
        if let Some(url) = &self.relay_url {
            addr = addr.with_relay_url(url.clone());
        }
        for a in self.hub_direct_addrs() {
            addr = addr.with_ip_addr(a);
        }
        addr
    }

    /// The direct addresses put in invites: configured ones, else the bound sockets that are
    /// specific addresses.
    pub fn hub_direct_addrs(&self) -> Vec<SocketAddr> {
        direct_addrs(&self.config, &self.hub)
    }

    /// Where `/health` and `/metrics` listen.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.addr)
    }

    /// The SHA-256 fingerprint of the office console's certificate, when it is served over
    /// TLS (`tls`).
    pub fn console_fingerprint(&self) -> Option<&str> {
        self.http
            .as_ref()
            .and_then(|h| h.fingerprint.as_ref().map(|(f, _)| f.as_str()))
    }

    /// One Chinese line saying where the office console is (and, over TLS, the fingerprint to
    /// compare when the browser first warns about the certificate).
    pub fn console_line(&self) -> Option<String> {
        let http = self.http.as_ref()?;
        Some(match &http.fingerprint {
            Some((f, true)) => format!(
                "办公室网页：https://{}/ （本机自签证书，浏览器第一次打开会提示证书不受信任；请核对证书指纹 SHA-256 {f} 一致后再继续）",
                http.addr
            ),
            Some((f, false)) => format!(
                "办公室网页：https://{}/ （证书指纹 SHA-256 {f}）",
                http.addr
            ),
            None => format!("办公室网页：http://{}/", http.addr),
        })
    }

    /// The hub's state (school, keys, data directory).
    pub fn hub_state(&self) -> &Arc<HubState> {
        &self.state
    }

    /// The hub node.
    pub fn hub(&self) -> &Node {
        &self.hub
    }

    /// The transport counters.
    pub fn transport_metrics(&self) -> Option<&Arc<TransportMetrics>> {
        self.hub.metrics()
    }

    /// Issues an invite naming this running hub's actual addresses.
    pub fn invite(
        &self,
        member: &str,
        role: Role,
        now: i64,
        expires_at: i64,
    ) -> Result<NewInvite, ServerError> {
        let contact = HubContact {
            relay_url: self.relay_url.as_ref().map(|u| u.to_string()),
            addrs: self.hub_direct_addrs(),
        };
        Ok(issue_invite(
            &self.state.data,
            &contact,
            member,
            role,
            now,
            expires_at,
        )?)
    }

    /// Stops everything gracefully: the HTTP server, then the hub (its router and endpoint),
    /// then the relay and the school watcher; returns once the archive is closed (at most
    /// [`ARCHIVE_CLOSE`] after the rest), so that the data directory may be copied, restored
    /// or served again by another server in this process.
    pub async fn shutdown(mut self) {
        if let Some(http) = self.http.take() {
            http.shutdown().await;
        }
        self.hub.shutdown().await;
        if let Some(relay) = self.relay.take() {
            relay.shutdown().await;
        }
        self.school_watch.stop().await;
        let state = self.state.clone();
        let closed = tokio::task::spawn_blocking(move || state.archives.close(ARCHIVE_CLOSE))
            .await
            .unwrap_or(false);
        if !closed {
            tracing::warn!("an archive was still in use {ARCHIVE_CLOSE:?} after shutdown");
        }
    }
}

/// The direct addresses put in invites: configured ones, else the bound sockets that are
/// specific addresses.
fn direct_addrs(config: &ServerConfig, hub: &Node) -> Vec<SocketAddr> {
    if !config.hub_public_addrs.is_empty() {
        return config.hub_public_addrs.clone();
    }
    hub.bound_sockets()
        .into_iter()
        .filter(|a| !a.ip().is_unspecified())
        .collect()
}

/// Runs the server until ctrl-c or SIGTERM, then shuts it down gracefully.
pub async fn serve_until_signal(config: ServerConfig) -> Result<(), ServerError> {
    let server = Server::start(config).await?;
    if let Some(line) = server.console_line() {
        eprintln!("{line}");
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod untranslated {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::transport::TransportError;

    /// What the network stack and the system say, in English.
    const DETAILS: &[&str] = &[
        "timed out",
        "connection lost",
        "Address already in use (os error 98)",
        "Permission denied (os error 13)",
        "no route to host",
        "connection refused",
        "tls handshake failure",
        "something else entirely",
    ];

    /// One error of every variant the hub's operator (`shouwang-relay`) or a device (through
    /// the CLI and the FFI) is shown, the wrapped ones with real English details. The `match`es
    /// list every variant: adding one without a case here does not compile.
    fn every_error() -> Vec<ServerError> {
        let mut transport = vec![
            TransportError::Conversation(shouwang_core::Error::Revoked),
            TransportError::Refused("邀请码已用过".into()),
            TransportError::FrameTooLarge { len: 9, max: 1 },
            TransportError::Truncated,
            TransportError::Idle,
            TransportError::ShuttingDown,
            TransportError::Redialed,
        ];
        for d in DETAILS {
            transport.push(TransportError::Protocol((*d).into()));
            transport.push(TransportError::Connect((*d).into()));
            transport.push(TransportError::Io((*d).into()));
            transport.push(TransportError::Bind((*d).into()));
        }
        for e in &transport {
            match e {
                TransportError::Conversation(_)
                | TransportError::Refused(_)
                | TransportError::FrameTooLarge { .. }
                | TransportError::Truncated
                | TransportError::Protocol(_)
                | TransportError::Idle
                | TransportError::ShuttingDown
                | TransportError::Redialed
                | TransportError::Connect(_)
                | TransportError::Io(_)
                | TransportError::Bind(_) => {}
            }
        }
        let mut all: Vec<ServerError> = transport.into_iter().map(ServerError::from).collect();
        all.push(ServerError::from(shouwang_core::Error::NotInitialised));
        // A configuration file TOML cannot read, and one with a setting it does not know.
        for text in ["data_dir = [", "no_such_setting = 1\n", "relay_bind = 5\n"] {
            all.push(ServerConfig::from_toml(text).unwrap_err());
        }
        for d in DETAILS {
            all.push(ServerError::Bind((*d).into()));
            all.push(ServerError::Relay((*d).into()));
        }
        all.push(ServerError::Refused("已取消，没有改动任何文件".into()));
        for e in &all {
            match e {
                ServerError::Core(_)
                | ServerError::Transport(_)
                | ServerError::Config(_)
                | ServerError::Bind(_)
                | ServerError::Relay(_)
                | ServerError::Refused(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_error_reads_in_chinese() {
        shouwang_core::error::check_translated(every_error()).unwrap();
    }
}
