//! A school hub (relay + hub, in-process on 127.0.0.1) for the CLI's network tests: 郭庄小学
//! with a 班主任 (王瑞侠) of 三年级(1)班 and a 爱心妈妈 (刘桂兰) paired with 王小雨; 赵子涵 is
//! in the class but not hers.

use std::path::Path;
use std::process::Command;

use shouwang_core::Archive;
use shouwang_core::archive::SchoolSetup;
use shouwang_core::roles::Role;
use shouwang_core::roster::parse_table;
use shouwang_relay::server::{self, DataDir, Server, ServerConfig};

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

/// Unix seconds now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The school's data directory under `dir/hub`, set up as the module docs say.
pub fn init_school(dir: &Path) -> DataDir {
    let data = DataDir::new(dir.join("hub"));
    server::init_school(
        &data,
        &SchoolSetup {
            name: "郭庄小学".into(),
            town: "丁里镇".into(),
            hotline: None,
            admin_name: "张长友".into(),
            admin_role: Role::Leadership,
            device_label: "学校服务器".into(),
        },
    )
    .unwrap();
    let mut office = Archive::open(&data.archive()).unwrap();
    office
        .add_member("王瑞侠", &[Role::HeadTeacher], None, None)
        .unwrap();
    office.add_class("三年级(1)班", Some("王瑞侠")).unwrap();
    office
        .add_member("刘桂兰", &[Role::LoveMother], None, None)
        .unwrap();
    let table: Vec<Vec<String>> = [
        ["学籍号", "姓名", "班级"],
        ["G1", "王小雨", "三年级(1)班"],
        ["G2", "赵子涵", "三年级(1)班"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
    .collect();
    office.import_roster(&parse_table(&table).unwrap()).unwrap();
    office.pair("刘桂兰", "王小雨", None).unwrap();
    data
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
