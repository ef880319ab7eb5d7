//! Set-up shared by the relay's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use shouwang_core::archive::SchoolSetup;
use shouwang_core::roles::Role;
use shouwang_relay::server::{self, DataDir};

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A hub data directory under `dir/hub` holding 郭庄小学, administered by 张长友.
pub fn init_school(dir: &std::path::Path) -> DataDir {
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
    data
}
