//! A school hub (relay + hub, in-process on 127.0.0.1) for the CLI's network tests: 郭庄小学
//! with a 班主任 (王瑞侠) of 三年级(1)班 and a 爱心妈妈 (刘桂兰) paired with 王小雨; 赵子涵 is
//! in the class but not hers.

use std::path::{Path, PathBuf};
use std::process::Command;

use shouwang_core::roles::Role;
use shouwang_relay::server::{DataDir, Server, ServerConfig};

/// Runs the real binary on `store`: (success, stdout, stderr).
pub fn shouwang(store: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(super::BIN)
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("SHOUWANG_STORE")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the real binary on `store` and returns its output; fails the test if it fails.
pub fn ok(store: &Path, args: &[&str]) -> String {
    let (ok, out, err) = shouwang(store, args);
    assert!(ok, "{args:?}: {out}{err}");
    out
}

/// [`ok`] on the hub's encrypted archive (`DataDir::archive`), opened with the hub's data key.
pub fn ok_office(office: &Path, args: &[&str]) -> String {
    let key = office.parent().unwrap().with_extension("key");
    let mut all = vec!["--key-file", key.to_str().unwrap()];
    all.extend_from_slice(args);
    ok(office, &all)
}

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The school's data directory under `dir/hub`, set up as the module docs say.
pub fn init_school(dir: &Path) -> DataDir {
    shouwang_tests::fixtures::small_hub(dir)
}

/// The hub serving `dir/hub`, on a runtime the caller keeps.
pub fn start(rt: &tokio::runtime::Runtime, dir: &Path) -> Server {
    rt.block_on(Server::start(ServerConfig::loopback(dir.join("hub"))))
        .unwrap()
}

/// Joins `store` as `member` with a fresh ticket from `server`; panics on failure.
pub fn join(server: &Server, store: &Path, member: &str, role: Role) {
    let ticket = server
        .invite(member, role, now(), now() + 86_400)
        .unwrap()
        .ticket;
    let (ok, _, err) = shouwang(store, &["join", &ticket]);
    assert!(ok, "{err}");
}

/// The stories' usual start: the school of the module docs on a hub running in this process,
/// the 班主任's phone (`teacher`) and then the 爱心妈妈's (`mother`) joined with real invites,
/// each a store of its own in the test's directory.
pub struct TwoPhones {
    server: Option<Server>,
    pub rt: tokio::runtime::Runtime,
    pub teacher: PathBuf,
    pub mother: PathBuf,
    pub data: DataDir,
    pub dir: tempfile::TempDir,
}

impl TwoPhones {
    pub fn join() -> TwoPhones {
        let dir = tempfile::tempdir().unwrap();
        let data = init_school(dir.path());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = start(&rt, dir.path());
        let teacher = dir.path().join("teacher.db");
        let mother = dir.path().join("mother.db");
        join(&server, &teacher, "王瑞侠", Role::HeadTeacher);
        join(&server, &mother, "刘桂兰", Role::LoveMother);
        TwoPhones {
            server: Some(server),
            rt,
            teacher,
            mother,
            data,
            dir,
        }
    }

    /// The running hub.
    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the hub was stopped")
    }

    /// Shuts the hub down (the phones go on without it).
    pub fn stop_hub(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }

    /// The school office, on the hub's archive.
    pub fn office(&self) -> Office {
        Office {
            store: self.dir.path().join("hub").join("hub.db"),
            key: self.dir.path().join("hub.key"),
        }
    }
}

/// The office: the real binary on the hub's encrypted archive, opened with the hub's data key.
pub struct Office {
    pub store: PathBuf,
    pub key: PathBuf,
}

impl Office {
    /// Runs the binary: (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = vec!["--key-file", self.key.to_str().unwrap()];
        all.extend_from_slice(args);
        shouwang(&self.store, &all)
    }

    /// Runs the binary and returns its output; fails the test if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "{args:?}: {out}{err}");
        out
    }

    /// The id of `member`'s device whose id is not in `except`.
    pub fn device_of(&self, member: &str, except: &[String]) -> String {
        let list: serde_json::Value =
            serde_json::from_str(&self.ok(&["--json", "device", "list"])).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .filter(|d| d["member"] == member)
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .find(|id| !except.contains(id))
            .unwrap()
    }
}

/// Records a `kind` (家访, 谈心) of 2026-11-20 for `child` on `store`, with `notes`; fails the
/// test if it is refused.
pub fn record(store: &Path, kind: &str, child: &str, notes: &str) {
    let args = shouwang_tests::fixtures::record_args(kind, child, "2026-11-20", notes);
    ok(store, &args.iter().map(String::as_str).collect::<Vec<_>>());
}
