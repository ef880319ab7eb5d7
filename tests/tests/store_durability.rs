//! The store on disk: migrations from an older schema, compaction that keeps everything, and
//! reopening after every write.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failure

mod common;

use common::*;
use rusqlite::Connection;
use shouwang_core::Archive;
use shouwang_core::store::{COMPACT_AFTER, migrations};

#[test]
fn every_write_is_on_disk_when_the_call_returns() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    let path = teacher.path();
    let id = teacher.record(
        "家访",
        "王小雨",
        "2026-11-20",
        &[("notes", "雨天，山路泥泞")],
    );
    // A second process (a fresh connection) sees the record and its projection immediately.
    let conn = Connection::open(&path).unwrap();
    let kind: String = conn
        .query_row(
            "SELECT kind FROM p_records WHERE record_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kind, "home_visit");
    let mut again = Archive::open(&path).unwrap();
    let f = again.child_file("王小雨").unwrap();
    assert_eq!(f.records.len(), 1);
    assert_eq!(f.records[0].fields[0].value, "雨天，山路泥泞");
}

#[test]
fn compaction_keeps_every_change_and_reopens_identically() {
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    for i in 0..80 {
        teacher.record(
            "谈心",
            "王小雨",
            "2026-11-20",
            &[("notes", &format!("第{i}次"))],
        );
    }
    let before_heads = heads(&mut teacher);
    let before_file = teacher.file("王小雨");
    let loose: i64 = teacher
        .archive
        .store()
        .conn()
        .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    // Writes fold a document before it reaches `COMPACT_AFTER` loose changes, so the app's
    // `compact()` finds nothing left; folding every document with any loose change is still
    // safe at any time.
    let most: i64 = teacher
        .archive
        .store()
        .conn()
        .query_row(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM changes GROUP BY doc_id)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(most < COMPACT_AFTER, "{most}");
    assert_eq!(teacher.archive.compact().unwrap(), 0);
    let n = teacher.archive.store().compact(1).unwrap();
    assert!(n >= 1);
    let after_loose: i64 = teacher
        .archive
        .store()
        .conn()
        .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
        .unwrap();
    assert!(after_loose < loose, "{after_loose} < {loose}");
    let path = teacher.path();
    let Device { archive, dir, .. } = teacher;
    drop(archive);
    let mut reopened = Device {
        name: "reopened",
        archive: Archive::open(&path).unwrap(),
        dir,
    };
    assert_eq!(heads(&mut reopened), before_heads);
    assert_eq!(reopened.archive.child_file("王小雨").unwrap(), before_file);
    // Writing after compaction appends as usual.
    reopened.record("谈心", "王小雨", "2026-11-21", &[("notes", "压缩之后")]);
    assert_eq!(
        reopened.archive.child_file("王小雨").unwrap().records.len(),
        81
    );
}

#[test]
fn a_store_written_by_schema_version_1_opens_and_is_upgraded() {
    // Build a real store with today's code, then lay its documents into a file that has only
    // schema version 1, as an older app would have left it.
    let mut admin = school();
    let mut teacher = join(&mut admin, HEAD_TEACHER);
    teacher.record(
        "家访",
        "王小雨",
        "2026-11-20",
        &[("notes", "旧版本写的记录")],
    );
    let src = Connection::open(teacher.path()).unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let old_path = dir.path().join("old.db");
    let mut old = Connection::open(&old_path).unwrap();
    migrations::apply(&mut old, 1).unwrap();
    let v: i64 = old
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 1);
    let has_role: i64 = old
        .query_row(
            "SELECT count(*) FROM pragma_table_info('p_records') WHERE name = 'author_role'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(has_role, 0, "version 1 has no author_role column");
    let mut stmt = src.prepare("SELECT key, value FROM meta").unwrap();
    for row in stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (k, v) = row.unwrap();
        old.execute("INSERT INTO meta VALUES (?1, ?2)", [k, v])
            .unwrap();
    }
    let mut stmt = src
        .prepare("SELECT doc_id, heads, updated FROM docs")
        .unwrap();
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .unwrap()
    {
        let (d, h, u) = row.unwrap();
        old.execute(
            "INSERT INTO docs (doc_id, heads, updated) VALUES (?1, ?2, ?3)",
            rusqlite::params![d, h, u],
        )
        .unwrap();
    }
    let mut stmt = src
        .prepare("SELECT doc_id, hash, bytes FROM changes ORDER BY seq")
        .unwrap();
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .unwrap()
    {
        let (d, h, b) = row.unwrap();
        old.execute(
            "INSERT INTO changes (doc_id, hash, bytes) VALUES (?1, ?2, ?3)",
            rusqlite::params![d, h, b],
        )
        .unwrap();
    }
    drop(old);
    // Today's code opens it: migrates, rebuilds projections, and everything is findable.
    let mut upgraded = Archive::open(&old_path).unwrap();
    let v: i64 = upgraded
        .store()
        .conn()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, migrations::latest());
    let child = upgraded.find_child("G340321201501").unwrap();
    let f = upgraded.child_file(child.as_str()).unwrap();
    assert_eq!(f.name, "王小雨");
    assert_eq!(f.records.len(), 1);
    let role: String = upgraded
        .store()
        .conn()
        .query_row("SELECT author_role FROM p_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(role, "head_teacher");
}

#[test]
fn a_store_from_a_newer_app_is_refused_untouched() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("future.db");
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let e = Archive::open(&path).unwrap_err().to_string();
    assert!(e.contains("请升级"), "{e}");
    let conn = Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0);
}

#[test]
fn two_connections_writing_the_same_child_lose_nothing() {
    // The hub serves several phones at once, each session on its own connection.
    let mut admin = school();
    let path = admin.path();
    let mut a = Archive::open(&path).unwrap();
    let mut b = Archive::open(&path).unwrap();
    for i in 0..5 {
        for (n, arch) in [(0, &mut a), (1, &mut b)] {
            arch.add_record(&shouwang_core::RecordInput {
                kind: "家访".into(),
                child: Some("王小雨".into()),
                class: None,
                date: "2026-11-20".into(),
                fields: kv(&[("notes", &format!("连接{n}第{i}次"))]),
            })
            .unwrap();
        }
    }
    let mut fresh = Archive::open(&path).unwrap();
    assert_eq!(fresh.child_file("王小雨").unwrap().records.len(), 10);
    assert_eq!(a.child_file("王小雨").unwrap().records.len(), 10);
    // The stored heads are the document's real heads.
    let child = fresh.find_child("王小雨").unwrap();
    let id = shouwang_core::doc::DocId::Child(child);
    let stored = fresh.store().heads(&id).unwrap();
    let real =
        shouwang_core::store::heads_text(&fresh.store().doc(&id).unwrap().unwrap().get_heads());
    assert_eq!(stored, real);
    let _ = admin.file("王小雨");
}

#[test]
fn an_encrypted_store_opens_only_with_its_key_and_shows_nothing_on_disk() {
    use shouwang_core::store::StoreKey;
    use shouwang_core::{Error, RecordInput};
    let mut admin = school();
    let new = admin
        .archive
        .export_new_device(HEAD_TEACHER, "手机")
        .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("phone.db");
    let key = StoreKey::generate();
    let (mut phone, _) = Archive::join_file(
        &path,
        &new.bundle,
        &new.passphrase,
        HEAD_TEACHER,
        Some(&key),
    )
    .unwrap();
    let notes = "雨天山路泥泞，奶奶说孩子最近睡得晚";
    phone
        .add_record(&RecordInput {
            kind: "家访".into(),
            child: Some("王小雨".into()),
            class: None,
            date: "2026-11-20".into(),
            fields: vec![("notes".into(), notes.into())],
        })
        .unwrap();
    drop(phone);

    // Nothing readable on disk: not the notes, not the school's name, not SQLite's header.
    let mut bytes = std::fs::read(&path).unwrap();
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    bytes.extend(std::fs::read(wal).unwrap_or_default());
    for plain in [notes.as_bytes(), "郭庄小学".as_bytes(), b"SQLite format 3"] {
        assert!(
            !bytes.windows(plain.len()).any(|w| w == plain),
            "{} found in the file",
            String::from_utf8_lossy(plain)
        );
    }
    let before = std::fs::read(&path).unwrap();

    // No key, or the wrong one: refused, and the file is untouched.
    assert!(matches!(Archive::open(&path), Err(Error::Locked)));
    let wrong = StoreKey::generate();
    let err = Archive::open_with_key(&path, Some(&wrong)).unwrap_err();
    assert!(matches!(err, Error::Locked), "{err}");
    assert!(err.to_string().contains("密钥"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(Archive::exists(&path).unwrap());

    // The right key: everything is there.
    let mut again = Archive::open_with_key(&path, Some(&key)).unwrap();
    let file = again.child_file("王小雨").unwrap();
    assert_eq!(file.records.len(), 1);
    assert_eq!(file.records[0].fields[0].value, notes);
    assert!(StoreKey::from_bytes(&[1; 31]).is_err());
}
