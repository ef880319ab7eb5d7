//! Shared fixtures: a small school drawn from DOMAIN.md (郭庄小学, 丁里镇) and devices that
//! exchange bundle files through a real directory.

use std::path::{Path, PathBuf};

use shouwang_core::archive::ChildFile;
use shouwang_core::roles::Role;
use shouwang_core::roster::parse_table;
use shouwang_core::{Archive, RecordInput, SchoolSetup};
use tempfile::TempDir;

use crate::roster::{self, ChildRow, Column};

/// One device: an archive in its own directory.
#[derive(Debug)]
pub struct Device {
    pub name: &'static str,
    pub archive: Archive,
    pub dir: TempDir,
}

impl Device {
    /// The archive, read-only.
    pub fn archive_ref(&self) -> &Archive {
        &self.archive
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("shouwang.db")
    }

    /// Writes a file of everything this device has, sealed to the school's administrators
    /// (the office) and this device, and returns its path.
    pub fn export_file(&mut self, label: &str) -> PathBuf {
        let bytes = self.archive.export_bundle(None, None).unwrap();
        self.write_file(label, &bytes)
    }

    /// Writes a file for `member` (what that member may see, sealed to that member's devices
    /// and the office) and returns its path.
    pub fn export_for(&mut self, label: &str, member: &str) -> PathBuf {
        let bytes = self.archive.export_bundle(Some(member), None).unwrap();
        self.write_file(label, &bytes)
    }

    fn write_file(&self, label: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(format!("{label}.swb"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub fn import_file(&mut self, path: &Path) -> shouwang_core::archive::ImportReport {
        let bytes = std::fs::read(path).unwrap();
        self.archive.import_bundle(&bytes).unwrap()
    }

    pub fn file(&mut self, child: &str) -> ChildFile {
        self.archive.child_file(child).unwrap()
    }

    pub fn record(
        &mut self,
        kind: &str,
        child: &str,
        date: &str,
        fields: &[(&str, &str)],
    ) -> String {
        self.archive
            .add_record(&RecordInput {
                kind: kind.into(),
                child: Some(child.into()),
                class: None,
                date: date.into(),
                fields: kv(fields),
            })
            .unwrap()
            .0
    }
}

pub fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub const CLASS: &str = "三年级(1)班";
/// Invented children (never the names in DOMAIN.md §8.3).
pub const CHILDREN: [(&str, &str); 4] = [
    ("G340321201501", "王小雨"),
    ("G340321201502", "赵子涵"),
    ("G340321201503", "孙浩然"),
    ("G340321201504", "周欣怡"),
];
pub const HEAD_TEACHER: &str = "王瑞侠";
pub const PAIRING_TEACHER: &str = "武秀梅";
pub const LOVE_MOTHER: &str = "刘桂兰";
pub const COUNSELLOR: &str = "杨彬";

/// The columns of the school's roster table.
pub const ROSTER_COLUMNS: [Column; 9] = [
    Column::StudentNo,
    Column::Name,
    Column::Sex,
    Column::BirthDate,
    Column::Class,
    Column::Guardian,
    Column::GuardianRelation,
    Column::GuardianPhone,
    Column::ParentsAway,
];

/// The `shouwang` CLI's arguments for one dated record with notes: `record <kind> --child
/// <child> --date <date> --field notes=<notes>` (`kind` is a record kind such as `家访`).
pub fn record_args(kind: &str, child: &str, date: &str, notes: &str) -> Vec<String> {
    [
        "record",
        kind,
        "--child",
        child,
        "--date",
        date,
        "--field",
        &format!("notes={notes}"),
    ]
    .map(String::from)
    .to_vec()
}

/// A child's row in the school's roster: in [`CLASS`], a girl born 2017-03-05 whose parents
/// both work away, cared for by her grandmother 王秀英 (13905640000).
pub fn roster_row(student_no: &str, name: &str) -> ChildRow {
    ChildRow {
        sex: "女".into(),
        birth_date: "2017-03-05".into(),
        guardian: "王秀英".into(),
        guardian_relation: "奶奶".into(),
        guardian_phone: "13905640000".into(),
        parents_away: "父母".into(),
        ..ChildRow::new(student_no, name, CLASS)
    }
}

/// The admin's device with the school, one class, four children, the carers and pairings.
pub fn school() -> Device {
    let dir = TempDir::new().unwrap();
    let mut a = Archive::create_school(
        &dir.path().join("shouwang.db"),
        &SchoolSetup {
            hotline: Some("0564-4552466".into()),
            ..SchoolSetup::sample("校长办公室电脑")
        },
    )
    .unwrap();
    a.add_member(
        HEAD_TEACHER,
        &[Role::HeadTeacher],
        None,
        Some("13805640001"),
    )
    .unwrap();
    a.add_class(CLASS, Some(HEAD_TEACHER)).unwrap();
    a.add_member(PAIRING_TEACHER, &[Role::PairingTeacher], None, None)
        .unwrap();
    a.add_member(LOVE_MOTHER, &[Role::LoveMother], None, None)
        .unwrap();
    a.add_member(COUNSELLOR, &[Role::Counsellor], None, None)
        .unwrap();
    a.add_member("晁月静", &[Role::Archivist], None, None)
        .unwrap();
    let table = roster::table(
        &ROSTER_COLUMNS,
        CHILDREN.iter().map(|&(no, name)| roster_row(no, name)),
    );
    a.import_roster(&parse_table(&table).unwrap()).unwrap();
    a.pair(LOVE_MOTHER, CHILDREN[0].1, None).unwrap();
    a.pair(PAIRING_TEACHER, CHILDREN[0].1, None).unwrap();
    a.pair(PAIRING_TEACHER, CHILDREN[1].1, None).unwrap();
    a.pair(COUNSELLOR, CHILDREN[2].1, None).unwrap();
    Device {
        name: "admin",
        archive: a,
        dir,
    }
}

/// A new device for `member`, set up from a full bundle of `from`.
pub fn join(from: &mut Device, member: &'static str) -> Device {
    let new = from.archive.export_new_device(member, member).unwrap();
    let dir = TempDir::new().unwrap();
    let archive = Archive::join(
        &dir.path().join("shouwang.db"),
        &new.bundle,
        &new.passphrase,
        member,
    )
    .unwrap();
    let mut d = Device {
        name: member,
        archive,
        dir,
    };
    // The admin learns of the device too.
    let back = d.export_file("enrol");
    from.import_file(&back);
    d
}

/// The office's file for `to`'s member, imported: how a device learns of the devices
/// registered after it joined (it needs their keys to seal files to them and check theirs).
pub fn news(office: &mut Device, to: &mut Device) {
    let member = to.archive.me_id().clone();
    let file = office.export_for("news", member.as_str());
    to.import_file(&file);
}

/// Both directions, through files sealed to each other's member.
/// A conflict in a record's notes: a 家访 of `member` (on `author`, their device) with
/// `child`, synced to `office`, then edited apart on `author` and on a second device of the same
/// member (a tablet), each synced with `office` afterwards. Returns the conflict's path
/// (`records.<id>.fields.notes`).
pub fn record_notes_conflict(
    office: &mut Device,
    author: &mut Device,
    member: &'static str,
    child: &str,
) -> String {
    let id = author.record("家访", child, "2026-11-20", &[("notes", "奶奶在家")]);
    sync(author, office);
    let mut tablet = join(office, member);
    for (d, text) in [
        (&mut *author, "奶奶在家，孩子在写作业"),
        (&mut tablet, "外婆在家"),
    ] {
        d.archive
            .edit_record(&id, None, &kv(&[("notes", text)]))
            .unwrap();
    }
    sync(author, office);
    sync(&mut tablet, office);
    format!("records.{id}.fields.notes")
}

pub fn sync(a: &mut Device, b: &mut Device) {
    let (ma, mb) = (a.archive.me_id().clone(), b.archive.me_id().clone());
    let fa = a.export_for("to-peer", mb.as_str());
    let fb = b.export_for("to-peer", ma.as_str());
    b.import_file(&fa);
    a.import_file(&fb);
}

/// The heads of every document, for comparing replicas. Access logs (`audit/<device>`) are
/// left out: every export appends to the exporter's log, so they never stop growing while
/// devices exchange files (`audit.rs` tests them on their own).
pub fn heads(d: &mut Device) -> Vec<(String, String)> {
    let store = d.archive.store();
    let ids = store.doc_ids().unwrap();
    ids.iter()
        .filter(|id| !matches!(id, shouwang_core::doc::DocId::Audit(_)))
        .map(|id| (id.key(), store.heads(id).unwrap()))
        .collect()
}

/// Document keys and heads, as [`heads`] lists them.
pub type Heads = Vec<(String, String)>;

/// The heads of the documents both devices hold, each device's own: equal when they agree on
/// everything they share (a 爱心妈妈 holds only her children's care files).
pub fn heads_in_common(a: &mut Device, b: &mut Device) -> (Heads, Heads) {
    let (ha, hb) = (heads(a), heads(b));
    let both = |x: &[(String, String)], y: &[(String, String)]| {
        x.iter()
            .filter(|(k, _)| y.iter().any(|(other, _)| other == k))
            .cloned()
            .collect::<Vec<_>>()
    };
    (both(&ha, &hb), both(&hb, &ha))
}

/// A byte-level fingerprint of the store: every change and projection row.
pub fn fingerprint(d: &mut Device) -> String {
    let conn = d.archive.store().conn();
    let mut out = String::new();
    for q in [
        "SELECT doc_id || ':' || hex(hash) FROM changes ORDER BY seq",
        "SELECT doc_id || ':' || heads FROM docs ORDER BY doc_id",
        "SELECT record_id || ':' || kind || ':' || voided FROM p_records ORDER BY record_id",
        "SELECT child_id || ':' || name FROM p_children ORDER BY child_id",
        "SELECT key || ':' || value FROM meta ORDER BY key",
    ] {
        let mut stmt = conn.prepare(q).unwrap();
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.push_str(&rows.join("\n"));
        out.push('\n');
    }
    out
}

pub fn field<'a>(file: &'a ChildFile, section: &str, key: &str) -> Option<&'a str> {
    file.sections
        .iter()
        .find(|s| s.key == section)?
        .fields
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.value.as_str())
}

/// Turns the hub's school back into the layout of an older build (members' phone numbers in
/// the school document) and adds a 结对帮扶教师 with the phone number `phone`, as such a school
/// did; `school split` (`Archive::split_for_roles`) then rewrites that history.
pub fn make_old_school(data: &shouwang_relay::server::DataDir, phone: &str) {
    let mut hub = data.open_archive().unwrap();
    hub.store()
        .write(|b| {
            b.change(
                &shouwang_core::doc::DocId::School,
                false,
                "旧版学校",
                |tx| {
                    use automerge::ReadDoc;
                    use automerge::transaction::Transactable;
                    let profile = tx.get(automerge::ROOT, "school")?.unwrap().1;
                    tx.put(&profile, "split_for_roles", false)?;
                    Ok(())
                },
            )
        })
        .unwrap();
    hub.add_member("陈桂芝", &[Role::PairingTeacher], None, Some(phone))
        .unwrap();
    assert!(!hub.school().unwrap().split_for_roles);
}

/// A hub data directory under `dir/hub` (`shouwang-relay init-school`) holding 郭庄小学, run by
/// 张长友, with 三年级(1)班: its 班主任 王瑞侠, the children 王小雨 and 赵子涵, and the 爱心妈妈
/// 刘桂兰 paired with 王小雨 only. For tests that start the real hub on it.
pub fn small_hub(dir: &Path) -> shouwang_relay::server::DataDir {
    let data = shouwang_relay::server::DataDir::new(dir.join("hub"));
    shouwang_relay::server::init_school(&data, &SchoolSetup::sample("学校服务器")).unwrap();
    let mut office = data.open_archive().unwrap();
    office
        .add_member(HEAD_TEACHER, &[Role::HeadTeacher], None, None)
        .unwrap();
    office.add_class(CLASS, Some(HEAD_TEACHER)).unwrap();
    office
        .add_member(LOVE_MOTHER, &[Role::LoveMother], None, None)
        .unwrap();
    let table = roster::table(
        &Column::MINIMAL,
        [
            ChildRow::new("G1", "王小雨", CLASS),
            ChildRow::new("G2", "赵子涵", CLASS),
        ],
    );
    office.import_roster(&parse_table(&table).unwrap()).unwrap();
    office.pair(LOVE_MOTHER, "王小雨", None).unwrap();
    data
}

/// Which of `what` any row of any table of the hub's store holds, read through its key (the
/// file itself is SQLCipher: a raw search of it would find nothing whatever it held).
pub fn hub_leaks(data: &shouwang_relay::server::DataDir, what: &[&str]) -> Vec<String> {
    let mut hub = data.open_archive().unwrap();
    let conn = hub.store().conn();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                let bytes: Vec<u8> = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                        b.to_vec()
                    }
                    _ => continue,
                };
                for w in what {
                    if holds_text(&bytes, w) {
                        out.push(format!("hub {t}: {w}"));
                    }
                }
            }
        }
    }
    out
}

/// A store file and its WAL (if any) as they are on disk: what a `strings` of the phone would
/// see.
pub fn raw_store(store: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(store).expect("read store");
    let mut wal = store.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(more) = std::fs::read(wal) {
        bytes.extend(more);
    }
    bytes
}

/// Everything of `what` the store at `path` (open as `a`) holds: in the raw file and WAL, or
/// in the decoded operations of any change it keeps (automerge deflates large changes).
/// `name` says whose store it is in the answer.
pub fn store_leaks(name: &str, path: &Path, a: &mut Archive, what: &[&str]) -> Vec<String> {
    let bytes = raw_store(path);
    let mut out: Vec<String> = what
        .iter()
        .filter(|w| holds_text(&bytes, w))
        .map(|w| format!("{name}: {w}"))
        .collect();
    let store = a.store();
    let mut history = String::new();
    for id in store.doc_ids().unwrap() {
        for c in store.doc(&id).unwrap().unwrap().get_changes(&[]) {
            history.push_str(&format!("{:?}", c.decode()));
        }
    }
    out.extend(
        what.iter()
            .filter(|w| history.contains(*w))
            .map(|w| format!("{name} history: {w}")),
    );
    out
}

/// Whether `text` occurs in `bytes` (a name, an ID number in a raw store file).
pub fn holds_text(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// How many cases a property test runs: `PROPTEST_CASES` when set (a long run, e.g.
/// `PROPTEST_CASES=2000 cargo test -p shouwang-tests --test trust property`), else
/// `default` (sized for CI: each case builds real SQLite stores; RELIABILITY.md gives the
/// counts and the time per case).
pub fn property_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
