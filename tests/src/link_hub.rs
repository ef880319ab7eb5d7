//! The real hub reachable only through a link emulator ([`crate::link`]), for the benchmarks
//! that measure a sync on the wire (`tests/benches/edge.rs`, `tests/benches/peers.rs`).
//!
//! The hub is started in-process and binds only `127.0.0.1` (no relay, no HTTP); the device
//! binds only `[::1]`. iroh's hole punching (the hub tells the device its own addresses) then
//! cannot find a path around the emulator: the only way between them is the link. Every run
//! starts from copies of the same starting stores ([`Start`]), so runs differ only by the link.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shouwang_core::roles::Role;
use shouwang_core::sync::Progress;
use shouwang_core::{Archive, RecordInput};
use shouwang_relay::device::{self, Identity, JoinSettings};
use shouwang_relay::server::{self, DataDir, HubContact, Server, ServerConfig};
use shouwang_relay::syncing::sync_with_progress;
use shouwang_relay::transport::{
    ConversationOptions, EndpointAddr, Node, NodeConfig, TransportError,
};

use crate::fixtures::HEAD_TEACHER;
use crate::link::{Link, LinkConfig, LinkStats};
use crate::phone::now;
use crate::workload::{self, NewChanges};

/// The hub serving `data` on an ephemeral port of 127.0.0.1 only: no relay, no HTTP.
pub fn hub_only(data: &Path) -> ServerConfig {
    ServerConfig {
        relay_bind: None,
        relay_url: None,
        http_bind: None,
        hub_bind: vec![(Ipv4Addr::LOCALHOST, 0).into()],
        ..ServerConfig::loopback(data)
    }
}

/// The UDP socket the hub listens on.
pub fn hub_socket(server: &Server) -> SocketAddr {
    server.hub().bound_sockets()[0]
}

/// A hub's data directory and a 班主任's device store in sync with it, plus, when asked, the
/// week of BENCHMARKS §5 written offline on the device since.
#[derive(Debug)]
pub struct Start {
    pub hub: PathBuf,
    pub device: PathBuf,
    /// Documents on the device.
    pub docs: usize,
    pub week: Option<NewChanges>,
}

/// Builds the starting state in `dir`: the hub made by `make_hub` at `dir/hub`, a 班主任's
/// device that joins it with a real invite and syncs once directly (no emulator), then, with
/// `week`, writes the week of BENCHMARKS §5 offline.
pub async fn prepare(dir: &Path, make_hub: impl FnOnce(&Path) -> DataDir, week: bool) -> Start {
    let hub_dir = dir.join("hub");
    let data = tokio::task::block_in_place(|| make_hub(&hub_dir));
    let server = Server::start(hub_only(&hub_dir)).await.unwrap();
    let ticket = head_teacher_invite(&data, hub_socket(&server));
    let device = dir.join("device.db");
    let opts = device::default_options();
    let archive = device::join(&device, None, &ticket, "手机", now(), &opts)
        .await
        .unwrap();
    let mut archive = sync_direct(&server, archive, &opts).await;
    let docs = archive.store().doc_ids().unwrap().len();
    let week = week.then(|| {
        tokio::task::block_in_place(|| {
            let base = workload::snapshot(&mut archive);
            workload::teachers_week(&mut archive);
            workload::new_changes(&mut archive, &base)
        })
    });
    drop(archive);
    server.shutdown().await;
    Start {
        hub: hub_dir,
        device,
        docs,
        week,
    }
}

/// One sync of `archive` with `server`, straight to the hub's address.
async fn sync_direct(server: &Server, archive: Archive, opts: &ConversationOptions) -> Archive {
    let mut archive = archive;
    let id = Identity::load(&mut archive).unwrap();
    let node = Node::bind(NodeConfig::loopback(id.secret.clone()))
        .await
        .unwrap();
    let (archive, _) = sync_with_progress(
        &node,
        server.hub_addr(),
        archive,
        &id.certificate,
        opts,
        None,
    )
    .await
    .unwrap();
    node.shutdown().await;
    archive
}

/// Copies the starting stores into `dir` (the hub's data key, which lives beside its data
/// directory, too) and starts the hub on the copy; returns it and the device store's copy.
pub async fn restart(start: &Start, dir: &Path) -> (Server, PathBuf) {
    let hub_dir = dir.join("hub");
    let device = dir.join("device.db");
    workload::copy_dir(&start.hub, &hub_dir);
    let key = (
        start.hub.with_extension("key"),
        hub_dir.with_extension("key"),
    );
    if key.0 != key.1 {
        std::fs::copy(&key.0, &key.1).unwrap();
    }
    workload::copy_store_files(&start.device, &device);
    let server = Server::start(hub_only(&hub_dir)).await.unwrap();
    (server, device)
}

/// One sync of the device store at `device` with `server` through `link`, on a fresh endpoint
/// with the device's key (so no TLS session ticket shortens the handshake): its progress and
/// wall time, connecting included.
pub async fn sync_over(link: &Link, server: &Server, device: &Path) -> (Progress, Duration) {
    let synced = sync_through(link, server, device, false).await;
    (synced.progress, synced.wall)
}

/// A sync on a warm connection ([`sync_over_warm`]).
#[derive(Debug)]
pub struct WarmSync {
    pub progress: Progress,
    /// The tap on 同步 to done.
    pub wall: Duration,
    /// Connecting ahead (`Node::warm_up`), before the tap.
    pub warm_up: Duration,
    /// The link's counts when the sync began (so the sync's own bytes are
    /// `link.stats().since(&that)`).
    pub at_start: LinkStats,
}

/// [`sync_over`] on a warm connection: the device's node connects ahead
/// (`Node::warm_up`, as the app does when it opens), then syncs on that connection.
pub async fn sync_over_warm(link: &Link, server: &Server, device: &Path) -> WarmSync {
    sync_through(link, server, device, true).await
}

/// One sync of `device` with the hub through `link`, connecting ahead if `warm`.
async fn sync_through(link: &Link, server: &Server, device: &Path, warm: bool) -> WarmSync {
    let base = if warm {
        device::warm_options()
    } else {
        device::default_options()
    };
    let opts = ConversationOptions {
        connect_timeout: Duration::from_secs(60),
        ..base
    };
    let mut archive = tokio::task::block_in_place(|| Archive::open(device).unwrap());
    let id = Identity::load(&mut archive).unwrap();
    let node = device_node(&id).await;
    let hub = EndpointAddr::new(server.hub_id()).with_ip_addr(link.addr());
    let connecting = Instant::now();
    if warm {
        node.warm_up(hub.clone(), &opts).await.unwrap();
    }
    let warm_up = connecting.elapsed();
    let at_start = link.stats();
    let began = Instant::now();
    let (_archive, progress) =
        sync_with_progress(&node, hub, archive, &id.certificate, &opts, None)
            .await
            .unwrap();
    let wall = began.elapsed();
    // After the wall: the node reads the hub's end of the stream and closes.
    node.shutdown().await;
    WarmSync {
        progress,
        wall,
        warm_up,
        at_start,
    }
}

/// A device's node with its key, bound on `[::1]` only: the hub (on 127.0.0.1) is then
/// reachable only through a link.
async fn device_node(identity: &Identity) -> Node {
    Node::bind(NodeConfig {
        bind: vec![(Ipv6Addr::LOCALHOST, 0).into()],
        ..NodeConfig::new(identity.secret.clone())
    })
    .await
    .unwrap()
}

/// A day's invite for the 班主任 of the hub of `data`, reaching it at `addr` only.
fn head_teacher_invite(data: &DataDir, addr: SocketAddr) -> String {
    let contact = HubContact {
        relay_url: None,
        addrs: vec![addr],
    };
    server::issue_invite(
        data,
        &contact,
        HEAD_TEACHER,
        Role::HeadTeacher,
        now(),
        now() + 86_400,
    )
    .unwrap()
    .ticket
}

/// How a join through a link went ([`join_over`]).
#[derive(Debug)]
pub struct JoinOver {
    pub joined: Result<Archive, TransportError>,
    /// From the call to its return, connecting included.
    pub wall: Duration,
    /// Each progress report: when (since the call) and the bundle bytes received by then.
    pub reports: Vec<(Duration, u64)>,
}

/// A new phone at `phone` joins the hub of `data` as its 班主任 through `link`, with a fresh
/// invite naming the link's address; the phone binds only `[::1]`, so the link is its only
/// path to the hub. Every progress report is kept.
pub async fn join_over(
    link: &Link,
    data: &DataDir,
    phone: &Path,
    opts: &ConversationOptions,
) -> JoinOver {
    let ticket = head_teacher_invite(data, link.addr());
    let began = Instant::now();
    let reports: Arc<Mutex<Vec<(Duration, u64)>>> = Arc::default();
    let seen = reports.clone();
    let joined = device::join_with(
        phone,
        None,
        &ticket,
        "手机",
        now(),
        opts,
        JoinSettings {
            bind: Some(vec![(Ipv6Addr::LOCALHOST, 0).into()]),
            progress: Some(Box::new(move |received| {
                seen.lock().unwrap().push((began.elapsed(), received));
            })),
        },
    )
    .await;
    let wall = began.elapsed();
    let reports = reports.lock().unwrap().clone();
    JoinOver {
        joined,
        wall,
        reports,
    }
}

/// A 班主任's phone joined to the real hub (started here on `data`, a small school) through
/// a link emulator that starts ideal ([`LinkConfig::ideal`]): its store, identity and a node
/// bound on `[::1]` only, so the link is its only path to the hub.
#[derive(Debug)]
pub struct PhoneOverLink {
    pub data: DataDir,
    pub server: Server,
    pub link: Arc<Link>,
    pub archive: Archive,
    pub identity: Identity,
    pub node: Node,
    /// Holds the hub's and the phone's files; dropped last.
    pub dir: tempfile::TempDir,
}

/// Starts the hub with `hub` applied to its configuration, an ideal link in front of it, and
/// joins a new phone over the link with `opts`.
pub async fn phone_over_link(
    hub: impl FnOnce(ServerConfig) -> ServerConfig,
    opts: &ConversationOptions,
) -> PhoneOverLink {
    phone_over_link_like(hub, LinkConfig::ideal, opts).await
}

/// [`phone_over_link`] through a link made by `link` (from where it listens and the hub's
/// socket), such as [`LinkConfig::edge`].
pub async fn phone_over_link_like(
    hub: impl FnOnce(ServerConfig) -> ServerConfig,
    link: impl FnOnce(SocketAddr, SocketAddr) -> LinkConfig,
    opts: &ConversationOptions,
) -> PhoneOverLink {
    let dir = tempfile::tempdir().unwrap();
    let data = tokio::task::block_in_place(|| crate::fixtures::small_hub(dir.path()));
    let server = Server::start(hub(hub_only(data.root()))).await.unwrap();
    let link = Arc::new(
        Link::start(link((Ipv6Addr::LOCALHOST, 0).into(), hub_socket(&server)))
            .await
            .unwrap(),
    );
    let JoinOver { joined, .. } = join_over(&link, &data, &dir.path().join("phone.db"), opts).await;
    let mut archive = joined.unwrap();
    let identity = Identity::load(&mut archive).unwrap();
    let node = device_node(&identity).await;
    PhoneOverLink {
        data,
        server,
        link,
        archive,
        identity,
        node,
        dir,
    }
}

/// Writes a 家访 with `notes` for the first child of the phone's class. Returns the child.
pub fn write_home_visit(archive: &mut Archive, notes: &str) -> String {
    let child = archive.children(None, true).unwrap()[0].name.clone();
    archive
        .add_record(&RecordInput {
            kind: "家访".into(),
            child: Some(child.clone()),
            class: None,
            date: "2026-11-20".into(),
            fields: crate::fixtures::kv(&[("notes", notes)]),
        })
        .unwrap();
    child
}

/// Whether the school's own archive holds a record of `child` with a field `value`.
pub fn school_has(data: &DataDir, child: &str, value: &str) -> bool {
    let mut office = data.open_archive().unwrap();
    let file = office.child_file(child).unwrap();
    file.records
        .iter()
        .any(|r| r.fields.iter().any(|f| f.value == value))
}
