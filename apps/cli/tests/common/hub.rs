//! A school hub (relay + hub, in-process on 127.0.0.1) for the CLI's network tests: 郭庄小学
//! with a 班主任 (王瑞侠) of 三年级(1)班 and a 爱心妈妈 (刘桂兰) paired with 王小雨; 赵子涵 is
//! in the class but not hers.

use std::path::Path;
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
