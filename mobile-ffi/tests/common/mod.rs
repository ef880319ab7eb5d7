//! Set-up shared by the app API's tests: a real hub serving 郭庄小学 in this process (on
//! loopback), the office's client on the hub's own archive (opened with its data key, as the
//! console would), and phones joined with real invites.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shouwang_core::roles::Role;
use shouwang_ffi::types::{FieldInput, RecordDraft, SyncUpdate};
use shouwang_ffi::{ShouwangClient, SyncListener};
use shouwang_relay::server::{Server, ServerConfig};

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The hub of `shouwang_tests::fixtures::small_hub`, serving until dropped.
pub struct Hub {
    pub dir: tempfile::TempDir,
    pub rt: tokio::runtime::Runtime,
    pub server: Option<Server>,
}

impl Hub {
    pub fn start() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        shouwang_tests::fixtures::small_hub(dir.path());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt
            .block_on(Server::start(ServerConfig::loopback(
                dir.path().join("hub"),
            )))
            .unwrap();
        Hub {
            dir,
            rt,
            server: Some(server),
        }
    }

    /// An invite ticket for `member` as `role`, valid for a day.
    pub fn ticket(&self, member: &str, role: Role) -> String {
        self.server
            .as_ref()
            .unwrap()
            .invite(member, role, now(), now() + 86_400)
            .unwrap()
            .ticket
    }

    /// The office: the hub's own archive through the app API.
    pub fn office(&self) -> Arc<ShouwangClient> {
        let key = shouwang_relay::keyfile::read(&self.dir.path().join("hub.key"))
            .unwrap()
            .unwrap();
        let db = self.dir.path().join("hub").join("hub.db");
        ShouwangClient::open(db.to_string_lossy().into_owned(), key.to_vec()).unwrap()
    }

    /// A phone that joins as `member` (`role`) with a fresh invite; its store is `file`.
    pub fn join(&self, file: &str, member: &str, role: Role, label: &str) -> Arc<ShouwangClient> {
        self.rt
            .block_on(ShouwangClient::join(
                self.dir.path().join(file).to_string_lossy().into_owned(),
                shouwang_ffi::generate_store_key(),
                self.ticket(member, role),
                label.into(),
            ))
            .unwrap()
    }

    /// Runs `f` on the hub's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}

/// A sync listener keeping every update it hears, in order.
#[derive(Clone, Default)]
pub struct Heard(Arc<Mutex<Vec<SyncUpdate>>>);

impl Heard {
    pub fn all(&self) -> Vec<SyncUpdate> {
        self.0.lock().unwrap().clone()
    }
}

impl SyncListener for Heard {
    fn on_update(&self, update: SyncUpdate) {
        self.0.lock().unwrap().push(update);
    }
}

/// Waits (a bounded while: a failure, not a timing) for `p`.
pub fn wait_for(what: &str, p: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !p() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A 家访 about `child` (its id) with these notes, as the app's form sends it.
pub fn visit(child: &str, notes: &str) -> RecordDraft {
    RecordDraft {
        kind: "家访".into(),
        child_id: Some(child.into()),
        class_id: None,
        date: "2026-11-20".into(),
        fields: vec![FieldInput {
            key: "notes".into(),
            value: notes.into(),
        }],
    }
}
