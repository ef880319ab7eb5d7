//! Long notes (issue 14; BENCHMARKS §13): one child with 500 records whose notes are 1,000
//! Chinese characters each. Targets, for the real archive: a new record p50 ≤ 5 ms, opening the
//! child's file ≤ 50 ms, peak RSS of the process ≤ 64 MiB.
//!
//! Two parts, in the same run:
//!
//! 1. **The layout, automerge alone.** The same 500 record maps built twice, the note once as a
//!    Text object (one operation per character) and once as a plain string: the saved
//!    document's bytes, the time to load it (median of 5), the bytes and time of the change
//!    that adds one more record, and the peak RSS of a process that only loads it.
//! 2. **Ours.** A store whose child has the 500 records, written through `Archive::add_record`;
//!    a fresh process opens the store, shows the child's file, then adds 21 records through
//!    the same API (each a durable write): the open and show time, the p50 of a new record,
//!    and the process's peak RSS (`VmHWM`).
//!
//! Run with `cargo bench -p shouwang-core --bench notes` (`NOTES_RECORDS` changes the 500).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is a failure

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use shouwang_core::archive::Archive;
use shouwang_core::roles::Role;
use shouwang_core::roster::parse_table;
use shouwang_core::{RecordInput, SchoolSetup};

const TEACHER: &str = "王瑞侠";
const CLASS: &str = "五年级(1)班";
const CHILD: &str = "学生001";
const SENTENCE: &str = "奶奶说孩子最近作业按时完成，晚上会主动给妈妈打电话。家里的麦子已经种上，爷爷腿脚不便，需要多关心。";

/// A note of exactly `chars` Chinese characters, different for each `seed`: a real sentence,
/// then characters drawn (by a fixed LCG) mostly from a few hundred common ones and sometimes
/// from the whole CJK block, so that it compresses about as well as real writing does, not as
/// well as one sentence repeated.
fn note(seed: usize, chars: usize) -> String {
    let common: Vec<char> = SENTENCE
        .chars()
        .chain('一'..='龥')
        .step_by(97)
        .take(400)
        .collect();
    let mut x = seed as u64 * 2_862_933_555_777_941_757 + 3_037_000_493;
    let mut s = format!("第{seed}次：{SENTENCE}");
    while s.chars().count() < chars {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let r = (x >> 33) as usize;
        s.push(if r.is_multiple_of(8) {
            char::from_u32(0x4E00 + (r / 8 % 20_000) as u32).unwrap_or('字')
        } else {
            common[r / 8 % common.len()]
        });
    }
    s.chars().take(chars).collect()
}

fn records() -> usize {
    std::env::var("NOTES_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

/// Peak resident memory of this process (`VmHWM`), in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

// ---- 1. the layout, automerge alone ----

/// One record map with its note, as the archive writes one (a few meta fields beside it).
fn add_record(doc: &mut AutoCommit, records: &automerge::ObjId, i: usize, text: bool) {
    let r = doc
        .put_object(records, format!("r{i:05}"), ObjType::Map)
        .unwrap();
    doc.put(&r, "kind", "home_visit").unwrap();
    doc.put(&r, "happened_on", "2026-11-20").unwrap();
    doc.put(&r, "author", "m-wang").unwrap();
    let fields = doc.put_object(&r, "fields", ObjType::Map).unwrap();
    let body = note(i, 1000);
    if text {
        let t = doc.put_object(&fields, "notes", ObjType::Text).unwrap();
        doc.splice_text(&t, 0, 0, &body).unwrap();
    } else {
        doc.put(&fields, "notes", body.as_str()).unwrap();
    }
}

fn layout_doc(n: usize, text: bool) -> Vec<u8> {
    let mut doc = AutoCommit::new();
    let records = doc.put_object(ROOT, "records", ObjType::Map).unwrap();
    for i in 0..n {
        add_record(&mut doc, &records, i, text);
        doc.commit();
    }
    doc.save()
}

struct Layout {
    saved: usize,
    load: Duration,
    change_bytes: usize,
    change: Duration,
    peak_kib: u64,
}

fn measure_layout(bin: &Path, dir: &Path, n: usize, text: bool) -> Layout {
    let saved = layout_doc(n, text);
    let loads = (0..5)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(automerge::Automerge::load(&saved).unwrap());
            t.elapsed()
        })
        .collect();
    let mut doc = AutoCommit::load(&saved).unwrap();
    doc.save();
    let records = match automerge::ReadDoc::get(&doc, ROOT, "records").unwrap() {
        Some((_, id)) => id,
        None => unreachable!(),
    };
    let t = Instant::now();
    add_record(&mut doc, &records, n, text);
    doc.commit();
    let change = t.elapsed();
    let change_bytes = doc.save_incremental().len();
    // Peak memory of a process that only loads the document.
    let file = dir.join(if text {
        "text.automerge"
    } else {
        "string.automerge"
    });
    std::fs::write(&file, &saved).unwrap();
    let out = Command::new(bin)
        .env("NOTES_MODE", "load")
        .env("NOTES_FILE", &file)
        .output()
        .unwrap();
    let peak_kib = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Layout {
        saved: saved.len(),
        load: median(loads),
        change_bytes,
        change,
        peak_kib,
    }
}

// ---- 2. ours ----

fn school(path: &Path, n: usize) {
    let mut a = Archive::create_school(path, &SchoolSetup::sample("bench")).unwrap();
    a.add_member(TEACHER, &[Role::HeadTeacher], None, None)
        .unwrap();
    a.add_class(CLASS, Some(TEACHER)).unwrap();
    let table = vec![
        vec!["学籍号".to_owned(), "姓名".into(), "班级".into()],
        vec!["G340321201500001".into(), CHILD.into(), CLASS.into()],
    ];
    a.import_roster(&parse_table(&table).unwrap()).unwrap();
    for i in 0..n {
        a.add_record(&visit(i)).unwrap();
    }
    a.compact().unwrap();
}

fn visit(i: usize) -> RecordInput {
    RecordInput {
        kind: "家访".into(),
        child: Some(CHILD.into()),
        class: None,
        date: "2026-11-20".into(),
        fields: vec![
            ("notes".into(), note(i, 1000)),
            ("met_with".into(), "奶奶".into()),
        ],
    }
}

/// In a fresh process: open the store and show the child's file, then add 21 records.
fn ours(store: &Path) {
    let t = Instant::now();
    let mut a = Archive::open(store).unwrap();
    let open = t.elapsed();
    let t = Instant::now();
    let file = a.child_file(CHILD).unwrap();
    let show = t.elapsed();
    assert!(file.records.len() >= records());
    let writes: Vec<Duration> = (0..21)
        .map(|i| {
            let t = Instant::now();
            a.add_record(&visit(100_000 + i)).unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "{} {} {} {}",
        open.as_secs_f64(),
        show.as_secs_f64(),
        median(writes).as_secs_f64(),
        peak_kib()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    match std::env::var("NOTES_MODE").as_deref() {
        Ok("load") => {
            let bytes = std::fs::read(std::env::var_os("NOTES_FILE").unwrap()).unwrap();
            std::hint::black_box(automerge::Automerge::load(&bytes).unwrap());
            println!("{}", peak_kib());
            return;
        }
        Ok("ours") => {
            ours(Path::new(&std::env::var_os("NOTES_FILE").unwrap()));
            return;
        }
        _ => {}
    }
    let bin = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let n = records();

    println!("{n} records, notes of 1,000 Chinese characters each\n");
    println!(
        "| layout (automerge alone) | saved | load (median of 5) | one more record: its change, saved | its time | peak RSS, a process that loads it |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, text) in [("Text object", true), ("plain string", false)] {
        let l = measure_layout(&bin, dir.path(), n, text);
        println!(
            "| {name} | {:.2} MB | {} | {} bytes | {} | {:.1} MiB |",
            l.saved as f64 / 1e6,
            ms(l.load),
            l.change_bytes,
            ms(l.change),
            l.peak_kib as f64 / 1024.0
        );
    }

    // Where a plain-string load goes: the same bytes saved without deflate, and loaded without
    // recomputing every change's hash.
    let saved = layout_doc(n, false);
    let raw = automerge::Automerge::load(&saved)
        .unwrap()
        .save_nocompress();
    let time = |bytes: &[u8], mode: automerge::VerificationMode| {
        median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(
                        automerge::Automerge::load_with_options(
                            bytes,
                            automerge::LoadOptions::new().verification_mode(mode),
                        )
                        .unwrap(),
                    );
                    t.elapsed()
                })
                .collect(),
        )
    };
    println!(
        "| plain string, saved without deflate | {:.2} MB | {} | | | |",
        raw.len() as f64 / 1e6,
        ms(time(&raw, automerge::VerificationMode::Check))
    );
    println!(
        "| plain string, loaded without checking change hashes | | {} | | | |",
        ms(time(&saved, automerge::VerificationMode::DontCheck))
    );
    println!();

    // NOTES_STORE=<path>: build the store there and keep it (to profile the fresh process:
    // `NOTES_MODE=ours NOTES_FILE=<path> perf record <this binary>`).
    let store = std::env::var_os("NOTES_STORE")
        .map_or_else(|| dir.path().join("notes.db"), std::path::PathBuf::from);
    let built = Instant::now();
    school(&store, n);
    let built = built.elapsed();
    let out = Command::new(&bin)
        .env("NOTES_MODE", "ours")
        .env("NOTES_FILE", &store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", store.display())).ok())
        .map(|m| m.len())
        .sum();
    println!();
    println!(
        "| ours (a fresh process; store {:.1} MB, built in {:.1} s) | measured | target |",
        size as f64 / 1e6,
        built.as_secs_f64()
    );
    println!("|---|---|---|");
    println!("| open the store | {:.1} ms | |", v[0] * 1e3);
    println!(
        "| then show the child's file (500 records) | {:.1} ms | ≤ 50 ms |",
        v[1] * 1e3
    );
    println!(
        "| a new record, p50 of 21 durable writes | {:.2} ms | ≤ 5 ms |",
        v[2] * 1e3
    );
    println!(
        "| peak RSS of the process | {:.1} MiB | ≤ 64 MiB |",
        v[3] / 1024.0
    );
}
