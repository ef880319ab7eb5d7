//! The office console's test school on the real `shouwang-relay serve` (`office.rs`,
//! `office_authors.rs`).
//!
//! The school: 郭庄小学 from `shouwang_tests::fixtures` (三年级(1)班, its 班主任 王瑞侠, four
//! children, the archivist 晁月静) plus 四年级(2)班 with its 班主任 姬广奎 and one child, and an
//! open conflict on 王小雨's guardian phone (王瑞侠's phone and the office wrote different
//! numbers apart). The office archive becomes the hub's (`adopt_archive`), as a school that
//! started in the office does.

use std::path::Path;

use shouwang_core::Archive;
use shouwang_core::roles::Role;
use shouwang_core::roster::parse_table;
use shouwang_relay::server::{DataDir, adopt_archive};
use shouwang_tests::fixtures::{
    CHILDREN, CLASS, HEAD_TEACHER, join, kv, record_notes_conflict, school, sync,
};
use shouwang_tests::http::Client;
use shouwang_tests::hub_process::{HubPorts, HubProcess};
use shouwang_tests::phone::id_number;
use shouwang_tests::roster::{self, ChildRow, Column};

pub const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");
pub const OTHER_CLASS: &str = "四年级(2)班";
pub const OTHER_HEAD: &str = "姬广奎";
pub const OTHER_CHILD: &str = "李思远";
pub const PASSWORD: &str = "郭庄小学2026办公室";

/// A hub serving the sample school, and where its data is.
pub struct Hub {
    _process: HubProcess,
    pub data: DataDir,
    pub ports: HubPorts,
    _dir: tempfile::TempDir,
}

impl Hub {
    pub fn start() -> Hub {
        Hub::start_with(0)
    }

    /// The sample school with `extra` more children in six more classes (the browser test
    /// runs on a school of 340).
    pub fn start_with(extra: usize) -> Hub {
        Hub::start_school(extra, false)
    }

    /// The sample school with a second conflict, in a record: the notes of 王瑞侠's 家访 with
    /// 赵子涵 (`CHILDREN[1]`), written apart on his phone and his tablet. Returns the hub and
    /// the conflict's path.
    pub fn start_with_record_conflict() -> (Hub, String) {
        let hub = Hub::start_school(0, true);
        let mut a = hub.archive();
        let file = a.child_file(CHILDREN[1].1).unwrap();
        let path = file
            .conflicts
            .iter()
            .map(|(_, c)| c.dotted())
            .find(|p| p.starts_with("records."))
            .expect("the record's conflict");
        (hub, path)
    }

    fn start_school(extra: usize, record_conflict: bool) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let mut admin = school();
        let mut teacher = join(&mut admin, HEAD_TEACHER);
        let a = &mut admin.archive;
        a.add_member(OTHER_HEAD, &[Role::HeadTeacher], None, None)
            .unwrap();
        a.add_class(OTHER_CLASS, Some(OTHER_HEAD)).unwrap();
        let table = roster::table(
            &[
                Column::StudentNo,
                Column::Name,
                Column::Sex,
                Column::BirthDate,
                Column::Class,
                Column::IdNumber,
                Column::ParentsAway,
            ],
            [
                ChildRow {
                    sex: "女".into(),
                    birth_date: "2017-03-05".into(),
                    id_number: id_number("001"),
                    parents_away: "父母".into(),
                    ..ChildRow::new(CHILDREN[0].0, CHILDREN[0].1, CLASS)
                },
                ChildRow {
                    sex: "男".into(),
                    birth_date: "2017-03-05".into(),
                    id_number: id_number("101"),
                    parents_away: "父亲".into(),
                    ..ChildRow::new("G340321201601", OTHER_CHILD, OTHER_CLASS)
                },
            ],
        );
        a.import_roster(&parse_table(&table).unwrap()).unwrap();
        if extra > 0 {
            let (surnames, given, last) = (
                [
                    "王", "李", "张", "刘", "陈", "杨", "黄", "吴", "徐", "胡", "朱", "高",
                ],
                [
                    "梓", "一", "思", "佳", "俊", "语", "明", "诗", "宇", "可", "博", "若",
                ],
                ["轩", "诺", "远", "怡", "杰", "桐", "涵", "琪", "航", "馨"],
            );
            let classes: Vec<String> = (1..=6)
                .map(|k| format!("{}年级({})班", 4 + k / 4, 1 + k % 4))
                .collect();
            for c in &classes {
                a.add_class(c, None).unwrap();
            }
            let table = roster::table(
                &[
                    Column::StudentNo,
                    Column::Name,
                    Column::Sex,
                    Column::BirthDate,
                    Column::Class,
                    Column::ParentsAway,
                ],
                (0..extra).map(|i| ChildRow {
                    sex: ["女", "男"][i % 2].into(),
                    birth_date: "2015-09-01".into(),
                    parents_away: ["父母", "父亲", "母亲"][i % 3].into(),
                    ..ChildRow::new(
                        format!("G3403212015{i:05}"),
                        format!(
                            "{}{}{}",
                            surnames[i % 12],
                            given[(i / 12) % 12],
                            last[(i / 144) % 10]
                        ),
                        classes[i % classes.len()].clone(),
                    )
                }),
            );
            a.import_roster(&parse_table(&table).unwrap()).unwrap();
        }
        a.edit_child(CHILDREN[1].1, "flags", &kv(&[("hardship", "是")]))
            .unwrap();
        // A conflict: the 班主任 and the office change the guardian's phone apart.
        teacher
            .archive
            .edit_child(CHILDREN[0].1, "guardian", &kv(&[("phone", "13800001111")]))
            .unwrap();
        admin
            .archive
            .edit_child(CHILDREN[0].1, "guardian", &kv(&[("phone", "13900002222")]))
            .unwrap();
        sync(&mut admin, &mut teacher);
        assert_eq!(admin.file(CHILDREN[0].1).conflicts.len(), 1);
        if record_conflict {
            record_notes_conflict(&mut admin, &mut teacher, HEAD_TEACHER, CHILDREN[1].1);
            assert_eq!(admin.file(CHILDREN[1].1).conflicts.len(), 1);
        }

        let data = DataDir::new(dir.path().join("hub"));
        adopt_archive(&data, &mut admin.archive).unwrap();
        let ports = HubPorts::write(dir.path(), &data, "");
        let process = HubProcess::start(Path::new(BIN), &ports, &dir.path().join("hub.log"));
        Hub {
            _process: process,
            data,
            ports,
            _dir: dir,
        }
    }

    /// Stops the hub and starts it again on the same data and ports (an upgrade, a power cut).
    pub fn restart(self) -> Hub {
        let Hub {
            _process,
            data,
            ports,
            _dir,
        } = self;
        Hub {
            _process: _process.restart(),
            data,
            ports,
            _dir,
        }
    }

    /// `shouwang-relay office-password --member <member>` with the password on stdin.
    pub fn set_password(&self, member: &str, password: &str) -> (bool, String) {
        self.ports.office_password(BIN.as_ref(), member, password)
    }

    pub fn archive(&self) -> Archive {
        self.data.open_archive().unwrap()
    }

    pub fn browser(&self) -> Client {
        Client::new(self.ports.http)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.http)
    }
}

/// Logs `member` in (their password set first) and returns the browser with the session's
/// CSRF token.
pub fn logged_in(hub: &Hub, member: &str) -> (Client, String) {
    assert!(hub.set_password(member, PASSWORD).0);
    let mut web = hub.browser();
    assert_eq!(web.login(member, PASSWORD).status, 303);
    let token = web.csrf();
    (web, token)
}
