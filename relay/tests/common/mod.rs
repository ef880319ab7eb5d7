//! Set-up shared by the relay's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cli;
pub mod office;

use shouwang_core::archive::SchoolSetup;
use shouwang_core::roles::Role;
use shouwang_core::roster::parse_table;
use shouwang_relay::server::{self, DataDir};
use shouwang_tests::roster::{self, ChildRow, Column};

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
    server::init_school(&data, &SchoolSetup::sample("学校服务器")).unwrap();
    data
}

/// [`init_school`] with 三年级(1)班: its 班主任 王瑞侠, a 爱心妈妈 刘桂兰 paired with 王小雨, a
/// 任课教师 武秀梅 paired with 赵子涵.
pub fn sample_school(dir: &std::path::Path) -> DataDir {
    let data = init_school(dir);
    let mut office = data.open_archive().unwrap();
    office
        .add_member("王瑞侠", &[Role::HeadTeacher], None, None)
        .unwrap();
    office.add_class("三年级(1)班", Some("王瑞侠")).unwrap();
    office
        .add_member("刘桂兰", &[Role::LoveMother], None, None)
        .unwrap();
    office
        .add_member("武秀梅", &[Role::SubjectTeacher], None, None)
        .unwrap();
    let table = roster::table(
        &Column::MINIMAL,
        [
            ChildRow::new("G1", "王小雨", "三年级(1)班"),
            ChildRow::new("G2", "赵子涵", "三年级(1)班"),
        ],
    );
    office.import_roster(&parse_table(&table).unwrap()).unwrap();
    office.pair("刘桂兰", "王小雨", None).unwrap();
    office.pair("武秀梅", "赵子涵", None).unwrap();
    data
}

/// What the hub logs at `info` and above in this test process (the service's log, as journald
/// keeps it), from the moment this is first called.
pub fn service_log() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOG: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> =
        std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static std::sync::Mutex<Vec<u8>> =
            Box::leak(Box::new(std::sync::Mutex::new(Vec::new())));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || LogWriter(log))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log
    })
}

struct LogWriter(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
