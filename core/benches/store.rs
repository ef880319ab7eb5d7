//! Store benchmarks, each beside its physical reference measured in the same run:
//!
//! 1. a durable 家访 write vs. one fsync'd bare SQLite insert (target ≤ 2×), with p50/p99;
//! 2. opening a store of 40 children with 4,000 records and listing the 班主任's due work vs.
//!    a bare SQLite read of the same 4,000 rows (target ≤ 3×);
//! 3. importing a bundle of a teacher's week (10 家访, 10 谈心, 5 电话记录) into the hub's
//!    store;
//! 4. judging one incoming 谈心 change (`trust::validate`: locating its operations, the rules)
//!    vs. automerge applying the same change to the same document.
//!
//! Run with `cargo bench -p shouwang-core --bench store`; the percentile table is printed first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failure

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use criterion::{BatchSize, Criterion, criterion_group};
use rusqlite::{Connection, OpenFlags};
use shouwang_core::archive::Archive;
use shouwang_core::doc::DocId;
use shouwang_core::forms::FieldValue;
use shouwang_core::ids::{ChildId, RecordId};
use shouwang_core::kinds::RecordKind;
use shouwang_core::records::{self, NewRecord};
use shouwang_core::roles::Role;
use shouwang_core::roster::parse_table;
use shouwang_core::store::StoreKey;
use shouwang_core::{RecordInput, SchoolSetup};
use tempfile::TempDir;

const CLASS: &str = "五年级(1)班";
const TEACHER: &str = "王瑞侠";
const NOTE: &str = "奶奶说孩子最近作业按时完成，晚上会主动给妈妈打电话。家里的麦子已经种上，爷爷腿脚不便，需要多关心。";

fn setup_school(path: &Path, children: usize) -> Archive {
    let mut a = Archive::create_school(path, &SchoolSetup::sample("bench")).unwrap();
    a.add_member(TEACHER, &[Role::HeadTeacher], None, None)
        .unwrap();
    a.add_class(CLASS, Some(TEACHER)).unwrap();
    let mut table = vec![vec!["学籍号".to_owned(), "姓名".into(), "班级".into()]];
    for i in 0..children {
        table.push(vec![
            format!("G34032120150{i:03}"),
            format!("学生{i:03}"),
            CLASS.into(),
        ]);
    }
    a.import_roster(&parse_table(&table).unwrap()).unwrap();
    a
}

/// Adds `per_child` records to every child, in one batch per child (fixture building only).
fn fill(a: &mut Archive, per_child: usize, start: NaiveDate) {
    let author = a.find_member(TEACHER).unwrap().id;
    let device = a.device().clone();
    let ids: Vec<ChildId> = a
        .children(None, false)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let notes = RecordKind::HomeVisit
        .fields()
        .iter()
        .find(|f| f.key == "notes")
        .unwrap();
    for child in ids {
        a.store()
            .write(|b| {
                let now = b.now_ms();
                b.change(&DocId::Child(child.clone()), false, "fixture", |tx| {
                    for i in 0..per_child {
                        let kind = [
                            RecordKind::HomeVisit,
                            RecordKind::Talk,
                            RecordKind::ParentCall,
                        ][i % 3];
                        let mut fields = vec![(notes, FieldValue::Text(NOTE.into()))];
                        if kind == RecordKind::ParentCall {
                            let w = kind.fields().iter().find(|f| f.key == "with_whom").unwrap();
                            fields.push((w, FieldValue::Str("mother".into())));
                        }
                        let rec = NewRecord {
                            kind,
                            child: Some(child.clone()),
                            happened_on: start + chrono::Days::new((i * 3) as u64 % 365),
                            author: author.clone(),
                            author_role: Role::HeadTeacher,
                            device: device.clone(),
                            fields,
                        };
                        records::insert(tx, &RecordId::new(now + i as i64), &rec, now)?;
                    }
                    Ok(())
                })
            })
            .unwrap();
    }
    a.compact().unwrap();
}

fn visit(child: &str) -> RecordInput {
    RecordInput {
        kind: "家访".into(),
        child: Some(child.into()),
        class: None,
        date: "2026-11-20".into(),
        fields: vec![
            ("notes".into(), NOTE.into()),
            ("met_with".into(), "奶奶".into()),
        ],
    }
}

fn bare_table(path: &Path) -> Connection {
    bare_table_with_key(path, None)
}

/// The bare table, encrypted by SQLCipher with `key` if given (as a phone's store is).
fn bare_table_with_key(path: &Path, key: Option<&StoreKey>) -> Connection {
    let conn = shouwang_core::store::cipher::open(path, OpenFlags::default(), key).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, child TEXT, body BLOB)",
    )
    .unwrap();
    conn
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// p50/p99 of the durable write and of the bare insert, interleaved so all see the same disk;
/// then the same two on stores encrypted at rest (SQLCipher), as on a phone.
fn write_percentiles() {
    let dir = TempDir::new().unwrap();
    let mut plain = setup_school(&dir.path().join("a.db"), 40);
    let new = plain.export_new_device("张长友", "phone").unwrap();
    let key = StoreKey::generate();
    let (mut encrypted, _) = Archive::join_file(
        &dir.path().join("phone.db"),
        &new.bundle,
        &new.passphrase,
        "张长友",
        Some(&key),
    )
    .unwrap();
    let bare = bare_table(&dir.path().join("bare.db"));
    let bare_encrypted = bare_table_with_key(&dir.path().join("bare-enc.db"), Some(&key));
    let blob = vec![7u8; 600];
    let mut samples = [(); 4].map(|_| Vec::new());
    for i in 0..400 {
        let child = format!("学生{:03}", i % 40);
        for (n, a) in [(0, &mut plain), (2, &mut encrypted)] {
            let t = Instant::now();
            a.add_record(&visit(&child)).unwrap();
            samples[n].push(t.elapsed());
        }
        for (n, conn) in [(1, &bare), (3, &bare_encrypted)] {
            let t = Instant::now();
            conn.execute(
                "INSERT INTO t (child, body) VALUES (?1, ?2)",
                rusqlite::params![i, blob],
            )
            .unwrap();
            samples[n].push(t.elapsed());
        }
    }
    for s in &mut samples {
        s.sort();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| durable 家访 write (400 samples) | ours | bare fsync'd insert | ratio | ours, encrypted | bare, encrypted | ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        let [o, t, oe, te] = [0, 1, 2, 3].map(|n| percentile(&samples[n], p));
        println!(
            "| {label} | {:.3} ms | {:.3} ms | {:.2}× | {:.3} ms | {:.3} ms | {:.2}× |",
            ms(o),
            ms(t),
            ms(o) / ms(t),
            ms(oe),
            ms(te),
            ms(oe) / ms(te)
        );
    }
}

fn benches(c: &mut Criterion) {
    // 1. Durable write.
    let dir = TempDir::new().unwrap();
    let mut a = setup_school(&dir.path().join("a.db"), 40);
    let mut g = c.benchmark_group("durable_write");
    let mut i = 0usize;
    g.bench_function("home_visit", |b| {
        b.iter(|| {
            i += 1;
            a.add_record(&visit(&format!("学生{:03}", i % 40))).unwrap()
        })
    });
    let bare = bare_table(&dir.path().join("bare.db"));
    let blob = vec![7u8; 600];
    g.bench_function("bare_sqlite_fsync_insert", |b| {
        b.iter(|| {
            bare.execute("INSERT INTO t (child, body) VALUES ('x', ?1)", [&blob])
                .unwrap()
        })
    });
    g.finish();

    // 2. Open + due list on 40 children × 100 records.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("year.db");
    {
        let mut a = setup_school(&path, 40);
        fill(&mut a, 100, NaiveDate::from_ymd_opt(2025, 11, 24).unwrap());
        let teacher = a.find_member(TEACHER).unwrap().id;
        // The teacher's own device: same store, acting as the 班主任.
        a.store()
            .write(|b| {
                b.set_meta("member_id", teacher.as_str());
                Ok(())
            })
            .unwrap();
    }
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let mut g = c.benchmark_group("open_and_due_40x100");
    g.bench_function("open_store_and_list_due", |b| {
        b.iter(|| {
            let mut a = Archive::open(&path).unwrap();
            black_box(a.due(None, today, false).unwrap().len())
        })
    });
    g.bench_function("bare_sqlite_read_same_rows", |b| {
        b.iter(|| {
            let conn = Connection::open(&path).unwrap();
            let mut stmt = conn
                .prepare(
                    "SELECT child_id, kind, happened_on, author FROM p_records WHERE voided = 0",
                )
                .unwrap();
            let n = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .unwrap()
                .count();
            black_box(n)
        })
    });
    g.finish();

    // 3. Import a teacher's week into the hub's store.
    let dir = TempDir::new().unwrap();
    let hub_path = dir.path().join("hub.db");
    let mut hub = setup_school(&hub_path, 40);
    fill(&mut hub, 25, NaiveDate::from_ymd_opt(2026, 6, 1).unwrap());
    let to_teacher = hub.export_new_device(TEACHER, "phone").unwrap();
    let full = hub.export_new_device("张长友", "hub").unwrap();
    // The teacher learns of the office's second device (registered after hers).
    let news = hub.export_bundle(Some(TEACHER), None).unwrap();
    drop(hub);
    let teacher_path = dir.path().join("teacher.db");
    let mut teacher = Archive::join(
        &teacher_path,
        &to_teacher.bundle,
        &to_teacher.passphrase,
        TEACHER,
    )
    .unwrap();
    teacher.import_bundle(&news).unwrap();
    let everything = teacher.export_bundle(None, None).unwrap();
    let base = teacher.open_bundle(&everything).unwrap();
    for i in 0..10 {
        teacher
            .add_record(&visit(&format!("学生{:03}", i)))
            .unwrap();
        teacher
            .add_record(&RecordInput {
                kind: "谈心".into(),
                date: "2026-11-19".into(),
                fields: vec![
                    ("notes".into(), NOTE.into()),
                    ("emotion".into(), "想妈妈".into()),
                ],
                ..visit(&format!("学生{:03}", i + 10))
            })
            .unwrap();
    }
    for i in 0..5 {
        teacher
            .add_record(&RecordInput {
                kind: "电话记录".into(),
                fields: vec![
                    ("notes".into(), NOTE.into()),
                    ("with_whom".into(), "母亲".into()),
                ],
                ..visit(&format!("学生{:03}", i + 20))
            })
            .unwrap();
    }
    let week = teacher.export_bundle(None, Some(&base)).unwrap();
    println!("a week's bundle: {} bytes", week.len());
    let mut g = c.benchmark_group("import_week_bundle");
    g.bench_function("import_teacher_week", |b| {
        b.iter_batched(
            || {
                let fresh = TempDir::new().unwrap();
                let p = fresh.path().join("hub.db");
                let mut h = Archive::join(&p, &full.bundle, &full.passphrase, "张长友").unwrap();
                h.store().clear_cache();
                (fresh, h)
            },
            |(fresh, mut h)| {
                black_box(h.import_bundle(&week).unwrap());
                fresh
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // 4. The trust rules on one change, beside automerge applying it.
    let child = DocId::Child(teacher.find_child("学生010").unwrap());
    let school = shouwang_core::school::read(teacher.store().doc(&DocId::School).unwrap().unwrap());
    let doc = teacher.store().doc(&child).unwrap().unwrap().clone();
    let change = doc.get_last_local_change().unwrap();
    let before = doc.fork_at(change.deps()).unwrap();
    let class = teacher
        .store()
        .conn()
        .query_row(
            "SELECT class_id FROM p_children WHERE child_id = ?1",
            [child.child().unwrap().as_str()],
            |r| r.get::<_, Option<String>>(0),
        )
        .unwrap()
        .map(shouwang_core::ids::ClassId);
    let auth = shouwang_core::trust::AuthState {
        school: &school,
        child_class: class,
        consent: None,
    };
    assert_eq!(
        shouwang_core::trust::validate(&child, &doc, &change, &auth),
        shouwang_core::trust::Verdict::Accept
    );
    let mut g = c.benchmark_group("one_incoming_change");
    g.bench_function("trust_validate", |b| {
        b.iter(|| black_box(shouwang_core::trust::validate(&child, &doc, &change, &auth)))
    });
    g.bench_function("automerge_apply_reference", |b| {
        b.iter_batched(
            || before.clone(),
            |mut d| {
                d.load_incremental(change.raw_bytes()).unwrap();
                d
            },
            BatchSize::SmallInput,
        )
    });

    // The same for an edit: the guardian's phone and name written over (each operation
    // supersedes what the field held, which the rules check the change had seen).
    for phone in ["13907351234", "13907355678"] {
        teacher
            .edit_child(
                "学生010",
                "guardian",
                &[
                    ("phone".to_owned(), phone.to_owned()),
                    ("name".to_owned(), format!("王秀英{}", &phone[9..])),
                ],
            )
            .unwrap();
    }
    let doc = teacher.store().doc(&child).unwrap().unwrap().clone();
    let edit = doc.get_last_local_change().unwrap();
    let before = doc.fork_at(edit.deps()).unwrap();
    assert_eq!(
        shouwang_core::trust::validate(&child, &doc, &edit, &auth),
        shouwang_core::trust::Verdict::Accept
    );
    g.bench_function("trust_validate_edit", |b| {
        b.iter(|| black_box(shouwang_core::trust::validate(&child, &doc, &edit, &auth)))
    });
    g.bench_function("automerge_apply_edit_reference", |b| {
        b.iter_batched(
            || before.clone(),
            |mut d| {
                d.load_incremental(edit.raw_bytes()).unwrap();
                d
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = store;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(8));
    targets = benches
}

fn main() {
    write_percentiles();
    store();
    Criterion::default().configure_from_args().final_summary();
}
