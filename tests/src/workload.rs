//! The workload of issue 3's benchmark 7a, shared by the sync and EDGE benchmarks and the
//! network tests: a 班主任's offline week (10 家访, 10 谈心, 5 电话记录, 3 profile edits) on a
//! school of 40 children whose files hold a year of history.
//!
//! The children are invented (never the names of DOMAIN.md §8.3): the four of
//! [`crate::fixtures::CHILDREN`] and 36 more from [`child_name`].

use std::collections::BTreeMap;
use std::path::Path;

use automerge::ChangeHash;
use shouwang_core::doc::DocId;
use shouwang_core::roster::parse_table;
use shouwang_core::{Archive, RecordInput};

use crate::fixtures::{CLASS, Device, HEAD_TEACHER, join, kv, school};
use crate::roster::{self, ChildRow, Column};

/// Children of the benchmark school.
pub const CHILDREN: usize = 40;
/// History records per child (谈心 spread over ten months).
pub const HISTORY_PER_CHILD: usize = 25;

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "吴", "徐", "胡", "朱", "高",
];
const GIVEN: [&str; 12] = [
    "梓轩", "一诺", "思远", "佳怡", "俊杰", "语桐", "明轩", "诗琪", "宇航", "可馨", "博文", "若曦",
];

/// The name of the `i`-th extra child (`i` < 144): distinct for every `i`, and distinct from
/// the fixture's children.
pub fn child_name(i: usize) -> String {
    let surname = SURNAMES[i % 12];
    let given = GIVEN[(i + (i / 12) * 5) % 12];
    format!("{surname}{given}")
}

/// The admin's device with the fixture school plus `extra` children in the class, and the
/// 班主任's device joined from it.
pub fn school_with(extra: usize) -> Vec<Device> {
    let mut admin = school();
    if extra > 0 {
        let table = roster::table(
            &Column::MINIMAL,
            (0..extra).map(|i| ChildRow::new(format!("G88{i:05}"), child_name(i), CLASS)),
        );
        admin
            .archive
            .import_roster(&parse_table(&table).unwrap())
            .unwrap();
    }
    let teacher = join(&mut admin, HEAD_TEACHER);
    vec![admin, teacher]
}

/// The names of every child the archive's member may see, in the archive's order.
pub fn names(archive: &mut Archive) -> Vec<String> {
    archive
        .children(None, false)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect()
}

/// A year of history written by the 班主任: [`HISTORY_PER_CHILD`] 谈心 for each child.
pub fn year_of_history(teacher: &mut Archive) {
    let names = names(teacher);
    for (i, name) in names.iter().enumerate() {
        for k in 0..HISTORY_PER_CHILD {
            teacher
                .add_record(&RecordInput {
                    kind: "谈心".into(),
                    child: Some(name.clone()),
                    class: None,
                    date: format!("2026-{:02}-{:02}", 1 + (k % 10), 1 + (i % 27)),
                    fields: kv(&[("notes", "每月谈心：学习有进步，想念在外打工的妈妈。")]),
                })
                .unwrap();
        }
    }
}

/// One entry of the week, as typed on the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `shouwang record <kind> --child <child> --date <date> --field k=v …`
    Record {
        kind: &'static str,
        child: String,
        date: &'static str,
        fields: Vec<(&'static str, &'static str)>,
    },
    /// `shouwang child edit <child> <section> k=v …`
    Edit {
        child: String,
        section: &'static str,
        fields: Vec<(&'static str, &'static str)>,
    },
}

impl Entry {
    /// Writes the entry into `archive`.
    pub fn apply(&self, archive: &mut Archive) {
        match self {
            Entry::Record {
                kind,
                child,
                date,
                fields,
            } => {
                archive
                    .add_record(&RecordInput {
                        kind: (*kind).into(),
                        child: Some(child.clone()),
                        class: None,
                        date: (*date).into(),
                        fields: kv(fields),
                    })
                    .unwrap();
            }
            Entry::Edit {
                child,
                section,
                fields,
            } => archive.edit_child(child, section, &kv(fields)).unwrap(),
        }
    }

    /// The `shouwang` arguments that write the entry.
    pub fn cli_args(&self) -> Vec<String> {
        let pairs = |f: &[(&str, &str)]| -> Vec<String> {
            f.iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        match self {
            Entry::Record {
                kind,
                child,
                date,
                fields,
            } => {
                let mut args: Vec<String> = vec![
                    "record".into(),
                    (*kind).into(),
                    "--child".into(),
                    child.clone(),
                    "--date".into(),
                    (*date).into(),
                ];
                for f in pairs(fields) {
                    args.push("--field".into());
                    args.push(f);
                }
                args
            }
            Entry::Edit {
                child,
                section,
                fields,
            } => {
                let mut args = vec![
                    "child".into(),
                    "edit".into(),
                    child.clone(),
                    (*section).into(),
                ];
                args.extend(pairs(fields));
                args
            }
        }
    }
}

/// The week: 10 家访, 10 谈心, 5 电话记录 and 3 guardian phone numbers changed, on the first
/// 33 of `names`.
pub fn week(names: &[String]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for i in 0..10 {
        entries.push(Entry::Record {
            kind: "家访",
            child: names[i].clone(),
            date: "2026-11-17",
            fields: vec![
                (
                    "notes",
                    "家访：奶奶身体尚可，孩子作业按时完成，周末和妈妈视频。",
                ),
                ("met_with", "奶奶"),
            ],
        });
        entries.push(Entry::Record {
            kind: "谈心",
            child: names[i + 10].clone(),
            date: "2026-11-18",
            fields: vec![
                ("notes", "谈心：说起过年爸爸妈妈回来就很高兴。"),
                ("emotion", "稳定"),
            ],
        });
    }
    for i in 0..5 {
        entries.push(Entry::Record {
            kind: "电话记录",
            child: names[i + 20].clone(),
            date: "2026-11-19",
            fields: vec![
                ("with_whom", "母亲"),
                ("notes", "与母亲通话十分钟，汇报期中考试情况。"),
            ],
        });
    }
    for i in 0..3 {
        entries.push(Entry::Edit {
            child: names[i + 30].clone(),
            section: "guardian",
            fields: vec![("phone", "13805641234")],
        });
    }
    entries
}

/// Writes the week into `archive`.
pub fn teachers_week(archive: &mut Archive) {
    let names = names(archive);
    for e in week(&names) {
        e.apply(archive);
    }
}

/// The changes `archive` has beyond `base` (a bundle of its earlier state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewChanges {
    /// Documents with new changes.
    pub docs: usize,
    /// The changes' bytes.
    pub raw: usize,
    /// The changes alone, compressed with zstd level 19: the floor for any protocol.
    pub compressed: usize,
}

/// The heads of every document of an archive: the base for [`new_changes`].
pub type Snapshot = BTreeMap<DocId, Vec<ChangeHash>>;

/// The new changes of `archive` since `base`: for each document whose heads moved, what an
/// exported bundle would carry for it (`save_after` the base heads, as `Archive::export_bundle`
/// does), read straight from the store. Exporting a bundle would append to the device's access
/// log, which is the measuring, not the week.
pub fn new_changes(archive: &mut Archive, base: &Snapshot) -> NewChanges {
    let store = archive.store();
    let mut docs = 0;
    let mut raw = Vec::new();
    for id in store.doc_ids().unwrap() {
        let Some(doc) = store.doc(&id).unwrap() else {
            continue;
        };
        let heads = doc.get_heads();
        let data = match base.get(&id) {
            Some(h) if *h == heads => continue,
            Some(h) => doc.save_after(h),
            None => doc.save(),
        };
        docs += 1;
        raw.extend(data);
    }
    NewChanges {
        docs,
        raw: raw.len(),
        compressed: zstd::bulk::compress(&raw, 19).unwrap().len(),
    }
}

/// The heads of every document in `archive`, read from the store (nothing is written).
pub fn snapshot(archive: &mut Archive) -> Snapshot {
    let store = archive.store();
    let mut heads = Snapshot::new();
    for id in store.doc_ids().unwrap() {
        if let Some(doc) = store.doc(&id).unwrap() {
            heads.insert(id, doc.get_heads());
        }
    }
    heads
}

/// Copies `archive`'s store into one consistent file at `to` (which must not exist).
pub fn copy_store(archive: &mut Archive, to: &Path) {
    archive
        .store()
        .conn()
        .execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

/// Copies an SQLite store that nothing has open: the file and its WAL, if any (the shared
/// memory index is rebuilt on open). Replaces whatever is at `to`.
pub fn copy_store_files(from: &Path, to: &Path) {
    let with = |p: &Path, ext: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(ext);
        std::path::PathBuf::from(s)
    };
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with(to, ext));
    }
    std::fs::copy(from, to).unwrap();
    if with(from, "-wal").exists() {
        std::fs::copy(with(from, "-wal"), with(to, "-wal")).unwrap();
    }
}

/// Copies a directory tree of stores and small files that nothing writes any more (a hub's
/// data directory, its server stopped), replacing what is at `to`. Shared-memory index files
/// are left out.
///
/// The hub's last SQLite connection may still be closing as the copy starts: SQLite then
/// checkpoints the `-wal` file into the store and deletes it. A file that vanishes under the
/// copy therefore starts the whole copy over (the store copied before the checkpoint would
/// lack what the `-wal` held), a few times, 100 ms apart.
pub fn copy_dir(from: &Path, to: &Path) {
    for _ in 0..20 {
        match try_copy_dir(from, to) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("copying {} failed: {e}", from.display()),
        }
    }
    panic!("{} kept changing under the copy", from.display());
}

fn try_copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            try_copy_dir(&src, &dst)?;
        } else if !src.to_string_lossy().ends_with("-shm") {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// A hub's data directory at `dir` whose archive is the school of [`school_with`]`(36)` (40
/// children) after the 班主任 wrote a year of history and it reached the school: what a hub
/// holds when a teacher's new phone joins.
pub fn hub_with_history(dir: &Path) -> shouwang_relay::server::DataDir {
    let mut peers = school_with(CHILDREN - crate::fixtures::CHILDREN.len());
    year_of_history(&mut peers[1].archive);
    let (admin, teacher) = peers.split_at_mut(1);
    crate::fixtures::sync(&mut admin[0], &mut teacher[0]);
    let data = shouwang_relay::server::DataDir::new(dir);
    shouwang_relay::server::adopt_archive(&data, &mut admin[0].archive).unwrap();
    data
}
