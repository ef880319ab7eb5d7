//! A phone enrolled with the school hub (the real server in-process, real iroh endpoints and
//! SQLite stores): join with an invite ticket, sync with the hub, wait for or dial a peer, and
//! look into its store file. Shared by the stories that run over the real hub.

use std::path::PathBuf;
use std::time::Duration;

use shouwang_core::Archive;
use shouwang_core::archive::{JoinOptions, META_NETWORK_KEY};
use shouwang_core::device_key::DeviceSecret;
use shouwang_core::doc::DocId;
use shouwang_core::ids::ChildId;
use shouwang_core::membership::Certificate;
use shouwang_core::roles::Role;
use shouwang_core::sync::Progress;
use shouwang_relay::device::{self, Identity};
use shouwang_relay::handshake;
use shouwang_relay::peer::PeerFactory;
use shouwang_relay::server::Server;
use shouwang_relay::syncing::sync_once;
use shouwang_relay::transport::{
    ConversationOptions, EndpointAddr, Node, NodeConfig, SecretKey, TransportMetrics,
};

use crate::fixtures::{holds_text, raw_store};

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Conversation options for loopback tests (a generous connect timeout on a loaded machine).
pub fn opts() -> ConversationOptions {
    ConversationOptions {
        connect_timeout: Duration::from_secs(10),
        ..ConversationOptions::default()
    }
}

/// A valid 18-digit 身份证号 of a child born 2017-03-05, told apart by `seq` (three digits).
pub fn id_number(seq: &str) -> String {
    let first = format!("34032120170305{seq}");
    format!(
        "{first}{}",
        shouwang_core::id_card::check_char(&first).unwrap()
    )
}

pub struct Phone {
    pub name: &'static str,
    pub path: PathBuf,
    pub id: Identity,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A record of `kind` about `child` on `date` with these notes, as a phone's form makes it.
pub fn notes_record(
    kind: &str,
    child: &str,
    date: &str,
    notes: &str,
) -> shouwang_core::RecordInput {
    shouwang_core::RecordInput {
        kind: kind.into(),
        child: Some(child.into()),
        class: None,
        date: date.into(),
        fields: vec![("notes".into(), notes.into())],
    }
}

/// A phone enrolled through `handshake::enroll` that keeps its archive open between syncs, as
/// the app does, with its own node on 127.0.0.1 (its network key is its device key).
pub struct EnrolledPhone {
    pub node: Node,
    /// The open archive; `None` while a sync holds it.
    pub archive: Option<Archive>,
    pub cert: Certificate,
    pub dir: tempfile::TempDir,
}

impl std::fmt::Debug for EnrolledPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolledPhone")
            .field("node", &self.node.id())
            .finish_non_exhaustive()
    }
}

impl EnrolledPhone {
    /// Enrolls a new phone for `member` with a fresh invite from `server`.
    pub async fn enroll(server: &Server, member: &str, role: Role) -> EnrolledPhone {
        let secret = SecretKey::generate();
        let node = Node::bind(
            NodeConfig::loopback(secret.clone()).with_relay(server.relay_url().unwrap().clone()),
        )
        .await
        .unwrap();
        let invite = server
            .invite(member, role, now(), now() + 86_400)
            .unwrap()
            .invite;
        let enrolled = handshake::enroll(&node, &invite, now(), &opts())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let network_key = DeviceSecret::from_bytes(&secret.to_bytes()).to_hex();
        // The invite, as a phone keeps it: what a renewed certificate is checked against.
        let ticket = invite.encode().unwrap();
        let archive = Archive::join_enrolled(
            &dir.path().join("phone.db"),
            &enrolled.bundle,
            member,
            &JoinOptions {
                meta: &[
                    (META_NETWORK_KEY, &network_key),
                    (shouwang_core::membership::INVITE_META, &ticket),
                ],
                ..Default::default()
            },
        )
        .unwrap();
        EnrolledPhone {
            node,
            archive: Some(archive),
            cert: enrolled.certificate,
            dir,
        }
    }

    /// The open archive.
    pub fn a(&mut self) -> &mut Archive {
        self.archive.as_mut().unwrap()
    }

    /// The store file.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("phone.db")
    }

    /// Writes a record of `kind` about `child` with these notes, offline; panics on failure.
    pub fn record(&mut self, kind: &str, child: &str, date: &str, notes: &str) -> String {
        self.a()
            .add_record(&notes_record(kind, child, date, notes))
            .unwrap()
            .0
    }

    /// One sync with `server`'s hub; panics on failure.
    /// A certificate the hub renewed is used from then on, as the app does
    /// (`device::sync_hub` reads it from the store).
    pub async fn sync(&mut self, server: &Server) -> Progress {
        let archive = self.archive.take().unwrap();
        let (mut archive, progress) =
            sync_once(&self.node, server.hub_addr(), archive, &self.cert, &opts())
                .await
                .unwrap();
        if let Some(text) = archive.store().meta("net.certificate").unwrap() {
            self.cert = Certificate::decode(&text).unwrap();
        }
        self.archive = Some(archive);
        progress
    }
}

/// [`crate::fixtures::small_hub`] served on 127.0.0.1 with the default configuration.
pub async fn small_hub_served() -> (tempfile::TempDir, shouwang_relay::server::DataDir, Server) {
    small_hub_served_with(|_| {}).await
}

/// [`crate::fixtures::small_hub`] served on 127.0.0.1 with the loopback configuration as
/// `configure` changes it.
pub async fn small_hub_served_with(
    configure: impl FnOnce(&mut shouwang_relay::server::ServerConfig),
) -> (tempfile::TempDir, shouwang_relay::server::DataDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let data = crate::fixtures::small_hub(dir.path());
    let mut config = shouwang_relay::server::ServerConfig::loopback(dir.path().join("hub"));
    configure(&mut config);
    let server = Server::start(config).await.unwrap();
    (dir, data, server)
}

/// Enrolls a new phone for `name` with a fresh invite from `server`.
pub async fn enroll(server: &Server, name: &'static str, role: Role) -> Phone {
    let ticket = server
        .invite(name, role, now(), now() + 86_400)
        .unwrap()
        .ticket;
    join_with(&ticket, name).await
}

/// Enrolls a new phone for `name` with the invite `ticket` (from a hub in another process).
pub async fn join_with(ticket: &str, name: &'static str) -> Phone {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.db");
    let mut archive = device::join(&path, None, ticket, name, now(), &opts())
        .await
        .unwrap();
    let id = Identity::load(&mut archive).unwrap();
    Phone {
        name,
        path,
        id,
        _dir: dir,
    }
}

impl Phone {
    pub fn archive(&self) -> Archive {
        Archive::open(&self.path).unwrap()
    }

    /// Writes a record of `kind` about `child` with these notes; panics on failure.
    pub fn record(&self, kind: &str, child: &str, date: &str, notes: &str) {
        self.archive()
            .add_record(&notes_record(kind, child, date, notes))
            .unwrap();
    }

    /// One sync with the hub; panics on failure.
    pub async fn sync_hub(&self) {
        let node = self.id.bind(false).await.unwrap();
        device::sync_hub(&node, &self.id, self.archive(), &opts(), None)
            .await
            .unwrap();
        node.shutdown().await;
    }

    /// Waits for a peer: a node serving this phone's store on 127.0.0.1.
    pub async fn wait(&self) -> (Node, EndpointAddr) {
        let node = device::serve_peers_on(
            NodeConfig::loopback(self.id.secret.clone()),
            PeerFactory::new(self.path.clone(), None, self.id.trust(), None).unwrap(),
            std::sync::Arc::new(TransportMetrics::default()),
        )
        .await
        .unwrap();
        let addr = EndpointAddr::new(node.id()).with_ip_addr(node.bound_sockets()[0]);
        (node, addr)
    }

    /// Dials `peer` and syncs with it; panics on failure.
    pub async fn dial(&self, peer: EndpointAddr) {
        let node = Node::bind(NodeConfig::loopback(self.id.secret.clone()))
            .await
            .unwrap();
        device::sync_peer(&node, &self.id, peer, self.archive(), &opts())
            .await
            .unwrap();
        node.shutdown().await;
    }

    /// The documents of `child` this phone holds.
    pub fn docs_of(&self, child: &ChildId) -> Vec<DocId> {
        docs_of(&mut self.archive(), child)
    }

    /// Which of `what` the store file or its WAL still holds.
    pub fn leaks(&self, what: &[&str]) -> Vec<String> {
        let bytes = raw_store(&self.path);
        what.iter()
            .filter(|w| holds_text(&bytes, w))
            .map(|w| format!("{}: {w}", self.name))
            .collect()
    }
}

/// The documents of `child` in `a`.
pub fn docs_of(a: &mut Archive, child: &ChildId) -> Vec<DocId> {
    a.store()
        .doc_ids()
        .unwrap()
        .into_iter()
        .filter(|id| id.child() == Some(child))
        .collect()
}

/// Everything `p`'s store holds of `what`: in the raw file and WAL, or in the decoded
/// operations of any change it keeps (automerge deflates large changes).
pub fn history_leaks(p: &Phone, what: &[&str]) -> Vec<String> {
    crate::fixtures::store_leaks(p.name, &p.path, &mut p.archive(), what)
}

/// The child the leaving and erasure stories follow, and the 谈心 her 爱心妈妈 wrote about her.
pub const CHILD: &str = "王小雨";
pub const TALK_NOTE: &str = "说想妈妈了，约好周末视频";

/// The sample school on the real hub (`fixtures::small_hub`, in-process on 127.0.0.1) with
/// three phones enrolled: the office's (张长友), the 班主任's and the 爱心妈妈's.
#[allow(missing_debug_implementations)] // the server and its data directory are not `Debug`
pub struct SchoolOnHub {
    pub data: shouwang_relay::server::DataDir,
    pub server: Server,
    pub office: Phone,
    pub teacher: Phone,
    pub mother: Phone,
}

impl SchoolOnHub {
    /// Its parts, to bind by name: `let (data, server, office, teacher, mother) = …`.
    pub fn parts(self) -> (shouwang_relay::server::DataDir, Server, Phone, Phone, Phone) {
        (
            self.data,
            self.server,
            self.office,
            self.teacher,
            self.mother,
        )
    }
}

/// Sets up [`SchoolOnHub`] in `dir`.
pub async fn school_on_hub(dir: &std::path::Path) -> SchoolOnHub {
    use crate::fixtures::{HEAD_TEACHER, LOVE_MOTHER, small_hub};
    use shouwang_relay::server::ServerConfig;

    let data = small_hub(dir);
    let server = Server::start(ServerConfig::loopback(dir.join("hub")))
        .await
        .unwrap();
    let office = enroll(&server, "张长友", Role::Leadership).await;
    let teacher = enroll(&server, HEAD_TEACHER, Role::HeadTeacher).await;
    let mother = enroll(&server, LOVE_MOTHER, Role::LoveMother).await;
    SchoolOnHub {
        data,
        server,
        office,
        teacher,
        mother,
    }
}

/// [`SchoolOnHub`] with [`CHILD`]'s file everywhere: the office gave her a 身份证号 (returned),
/// her 爱心妈妈 wrote a 谈心 ([`TALK_NOTE`]), and the office, the 爱心妈妈 and the 班主任 have
/// synced with the hub (the office twice, so it holds it all). Checks that the 班主任's store
/// holds her name, number and the note, and the 爱心妈妈's her name and the note.
pub async fn child_on_hub(dir: &std::path::Path) -> (SchoolOnHub, String) {
    let school = school_on_hub(dir).await;
    let id_no = id_number("123");
    school
        .office
        .archive()
        .edit_child(CHILD, "identity", &[("id_card".to_owned(), id_no.clone())])
        .unwrap();
    school.mother.record("谈心", CHILD, "2026-11-18", TALK_NOTE);
    for p in [
        &school.office,
        &school.mother,
        &school.teacher,
        &school.office,
    ] {
        p.sync_hub().await;
    }
    let secrets = [CHILD, id_no.as_str(), TALK_NOTE];
    assert_eq!(
        school.teacher.leaks(&secrets).len(),
        3,
        "the 班主任 holds it all"
    );
    assert_eq!(school.mother.leaks(&[CHILD, TALK_NOTE]).len(), 2);
    (school, id_no)
}

/// A phone joined as the app joins (`device::join` with a fresh invite from `server` for
/// `member`), its store at `dir/phone.db`, with its identity and its network node bound on
/// loopback.
pub struct JoinedPhone {
    pub path: PathBuf,
    pub archive: Archive,
    pub identity: Identity,
    pub node: Node,
}

impl std::fmt::Debug for JoinedPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinedPhone")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl JoinedPhone {
    pub async fn join(server: &Server, dir: &std::path::Path, member: &str, role: Role) -> Self {
        let ticket = server
            .invite(member, role, now(), now() + 86_400)
            .unwrap()
            .ticket;
        let path = dir.join("phone.db");
        let opts = device::default_options();
        let mut archive = device::join(&path, None, &ticket, "手机", now(), &opts)
            .await
            .unwrap();
        let identity = Identity::load(&mut archive).unwrap();
        let node = identity.bind(false).await.unwrap();
        JoinedPhone {
            path,
            archive,
            identity,
            node,
        }
    }

    /// The phone's device id.
    pub fn device(&self) -> shouwang_core::ids::DeviceId {
        shouwang_core::ids::DeviceId::from_key(self.identity.secret.public().as_bytes())
    }
}

/// The office (on the hub's archive) opens 三年级(2)班 and moves `child` into it: the move is
/// in the child's file, which the hub then no longer sends her old 班主任.
pub fn move_to_a_new_class(data: &shouwang_relay::server::DataDir, child: &str) {
    let mut office = data.open_archive().unwrap();
    office.add_class("三年级(2)班", None).unwrap();
    office
        .edit_child(
            child,
            "profile",
            &[("class_id".to_owned(), "三年级(2)班".to_owned())],
        )
        .unwrap();
}

/// Gives the enrolled device of `archive` a certificate that expired a day ago, issued with
/// the school's own key `school` (a phone that did not reach the hub for a month).
pub fn expire_certificate(archive: &mut Archive, school: &shouwang_core::membership::SchoolKey) {
    let body = Identity::load(archive)
        .expect("an enrolled device")
        .certificate
        .body()
        .clone();
    let expired = school
        .issue(shouwang_core::membership::CertificateBody {
            issued_at: now() - 31 * 86_400,
            expires_at: now() - 86_400,
            ..body
        })
        .expect("issued")
        .encode();
    archive
        .store()
        .write(|b| {
            b.set_meta("net.certificate", &expired);
            Ok(())
        })
        .expect("written");
}
