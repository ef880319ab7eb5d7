//! Property: 3–5 replicas apply random operations of every kind and exchange bundles in random
//! orders and topologies; after a final exchange each holds exactly the documents its member
//! may see, identical to the office's copies of them, with identical projections and due
//! lists, every record anyone wrote is there once, and a refused operation or import changed
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test and benchmark code: a panic is a failure

mod common;

use std::collections::BTreeSet;

use chrono::NaiveDate;
use common::*;
use proptest::prelude::*;

const MEMBERS: [&str; 4] = [HEAD_TEACHER, LOVE_MOTHER, PAIRING_TEACHER, "晁月静"];
const FIELDS: [(&str, &str); 4] = [
    ("guardian", "phone"),
    ("guardian", "health"),
    ("father", "work_place"),
    ("profile", "address"),
];
const VALUES: [&str; 4] = ["13800001111", "13900002222", "13700003333", "13600004444"];
const TEXTS: [&str; 4] = ["身体不错", "浙江宁波", "郭庄村三组", "腿脚不便"];
const KINDS: [&str; 4] = ["家访", "谈心", "电话记录", "亲情电话"];

#[derive(Debug, Clone)]
enum Op {
    Record {
        r: usize,
        kind: usize,
        child: usize,
        day: u32,
    },
    Edit {
        r: usize,
        field: usize,
        value: usize,
    },
    Note {
        r: usize,
        record: usize,
        suffix: usize,
    },
    Void {
        r: usize,
        record: usize,
    },
    Resolve {
        r: usize,
        pick: usize,
    },
    Sync {
        from: usize,
        to: usize,
        delta: bool,
    },
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..n, 0..4usize, 0..4usize, 1..28u32).prop_map(|(r, kind, child, day)| Op::Record { r, kind, child, day }),
        2 => (0..n, 0..4usize, 0..4usize).prop_map(|(r, field, value)| Op::Edit { r, field, value }),
        2 => (0..n, 0..8usize, 0..4usize).prop_map(|(r, record, suffix)| Op::Note { r, record, suffix }),
        1 => (0..n, 0..8usize).prop_map(|(r, record)| Op::Void { r, record }),
        1 => (0..n, 1..3usize).prop_map(|(r, pick)| Op::Resolve { r, pick }),
        3 => (0..n, 0..n, any::<bool>()).prop_map(|(from, to, delta)| Op::Sync { from, to, delta }),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (3..=5usize).prop_flat_map(|n| (Just(n), prop::collection::vec(op(n), 5..40)))
}

fn rows(d: &mut Device, sql: &str) -> Vec<String> {
    let conn = d.archive.store().conn();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Runs `f`; if it fails, the store must be exactly as before.
fn attempt<T>(
    d: &mut Device,
    f: impl FnOnce(&mut Device) -> shouwang_core::Result<T>,
) -> Option<T> {
    let before = fingerprint(d);
    match f(d) {
        Ok(t) => Some(t),
        Err(_) => {
            assert_eq!(
                before,
                fingerprint(d),
                "a refused operation changed the store"
            );
            None
        }
    }
}

/// What must be identical on every replica: document heads, projection rows, due lists.
type ReplicaState = (
    Vec<(String, String)>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
);

/// A replica's state, restricted to the documents `only` (keys) and the due lists of `members`.
fn replica_state(
    d: &mut Device,
    today: NaiveDate,
    only: &BTreeSet<String>,
    members: &[&str],
) -> ReplicaState {
    let within = |rows: Vec<String>| -> Vec<String> {
        rows.into_iter()
            .filter_map(|r| {
                let (doc, rest) = r.split_once('|')?;
                only.contains(doc).then(|| rest.to_owned())
            })
            .collect()
    };
    (
        heads(d)
            .into_iter()
            .filter(|(k, _)| only.contains(k))
            .collect(),
        within(rows(
            d,
            "SELECT doc_id || '|' || record_id || kind || happened_on || author || voided || author_role FROM p_records ORDER BY record_id",
        )),
        within(rows(
            d,
            "SELECT 'child/' || child_id || '|' || child_id || name || ifnull(class_id, '') FROM p_children ORDER BY child_id",
        )),
        rows(
            d,
            "SELECT pairing_id || carer || child_id FROM p_pairings ORDER BY 1",
        ),
        members
            .iter()
            .map(|m| format!("{:?}", d.archive.due(Some(m), today, true).unwrap()))
            .collect(),
    )
}

fn run(n: usize, ops: &[Op]) {
    let mut admin = school();
    let mut devices = Vec::new();
    for m in MEMBERS.iter().take(n - 1) {
        devices.push(join(&mut admin, m));
    }
    // The office tells every device of the devices registered after it joined, so any two
    // can seal files to each other and check each other's signatures.
    for d in &mut devices {
        let news = admin.export_for("news", d.archive.me_id().as_str());
        d.import_file(&news);
    }
    devices.insert(0, admin);
    let children: Vec<&str> = CHILDREN.iter().map(|(_, name)| *name).collect();
    let mut written: Vec<String> = Vec::new();
    // What each replica last received from each other replica, for "since" exports.
    let mut last_from: Vec<Vec<Option<Vec<u8>>>> = vec![vec![None; n]; n];
    for op in ops {
        match *op {
            Op::Record {
                r,
                kind,
                child,
                day,
            } => {
                let date = format!("2026-11-{day:02}");
                let fields = if KINDS[kind] == "电话记录" {
                    kv(&[("with_whom", "母亲"), ("notes", "电话里说了学习情况")])
                } else {
                    kv(&[("notes", "记录内容")])
                };
                let input = shouwang_core::RecordInput {
                    kind: KINDS[kind].into(),
                    child: Some(children[child].into()),
                    class: None,
                    date,
                    fields,
                };
                if let Some(id) = attempt(&mut devices[r], |d| d.archive.add_record(&input)) {
                    written.push(id.0);
                }
            }
            Op::Edit { r, field, value } => {
                let (section, key) = FIELDS[field];
                let v = if key == "phone" {
                    VALUES[value]
                } else {
                    TEXTS[value]
                };
                attempt(&mut devices[r], |d| {
                    d.archive.edit_child(children[0], section, &kv(&[(key, v)]))
                });
            }
            Op::Note { r, record, suffix } => {
                if let Some(id) = written.get(record).cloned() {
                    attempt(&mut devices[r], |d| {
                        d.archive.edit_record(
                            &id,
                            None,
                            &kv(&[("notes", &format!("记录内容{}", TEXTS[suffix]))]),
                        )
                    });
                }
            }
            Op::Void { r, record } => {
                if let Some(id) = written.get(record).cloned() {
                    attempt(&mut devices[r], |d| d.archive.void_record(&id, "重复"));
                }
            }
            Op::Resolve { r, pick } => {
                attempt(&mut devices[r], |d| {
                    let file = d.archive.child_file(children[0])?;
                    match file.conflicts.first() {
                        Some((_, c)) => {
                            d.archive
                                .resolve(children[0], &c.dotted(), Some(pick), None)
                        }
                        None => Err(shouwang_core::Error::Missing("冲突".into())),
                    }
                });
            }
            Op::Sync { from, to, delta } => {
                if from == to {
                    continue;
                }
                let since = if delta {
                    last_from[from][to]
                        .as_deref()
                        .map(|b| devices[from].archive.open_bundle(b).unwrap())
                } else {
                    None
                };
                let receiver = devices[to].archive.me_id().clone();
                let bytes = devices[from]
                    .archive
                    .export_bundle(Some(receiver.as_str()), since.as_ref())
                    .unwrap();
                if attempt(&mut devices[to], |d| d.archive.import_bundle(&bytes)).is_some() {
                    last_from[to][from] = Some(bytes);
                }
            }
        }
    }
    // Final exchange: everyone with the first, round after round until a round changes
    // nothing. A member's file carries only what its own device made (see `Sender`), so a
    // change that builds on another member's waits for that one to reach the office first:
    // a chain of such changes takes a round per link.
    let mut rounds = 0;
    loop {
        let before: Vec<_> = devices.iter_mut().map(heads).collect();
        for i in 1..n {
            let (a, b) = devices.split_at_mut(i);
            sync(&mut a[0], &mut b[0]);
        }
        rounds += 1;
        if devices.iter_mut().map(heads).collect::<Vec<_>>() == before {
            break;
        }
        assert!(rounds <= ops.len() + 2, "no fixpoint after {rounds} rounds");
    }
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let everything: BTreeSet<String> = heads(&mut devices[0]).into_iter().map(|(k, _)| k).collect();
    let reference = replica_state(&mut devices[0], today, &everything, &MEMBERS);
    let mut ids = reference
        .1
        .iter()
        .map(|r| r[..20].to_owned())
        .collect::<Vec<_>>();
    ids.sort();
    let mut want = written.clone();
    want.sort();
    assert_eq!(ids, want, "every record written is present exactly once");
    let (office, others) = devices.split_first_mut().unwrap();
    for d in others {
        // Exactly what its member may see, as the office has it.
        let member = office.archive.find_member(d.name).unwrap();
        let mut scope = BTreeSet::new();
        for id in office.archive.store().doc_ids().unwrap() {
            // Access logs are compared by their own tests (`heads` leaves them out).
            if matches!(id, shouwang_core::doc::DocId::Audit(_)) {
                continue;
            }
            if office.archive.may_see(&member, &id).unwrap() {
                scope.insert(id.key());
            }
        }
        let held: BTreeSet<String> = heads(d).into_iter().map(|(k, _)| k).collect();
        assert_eq!(held, scope, "replica {} holds other documents", d.name);
        let got = replica_state(d, today, &scope, &[d.name]);
        let want = replica_state(office, today, &scope, &[d.name]);
        assert_eq!(got, want, "replica {} differs", d.name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: property_cases(if std::env::var("CI").is_ok() { 24 } else { 32 }),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn replicas_converge_whatever_the_order((n, ops) in scenario()) {
        run(n, &ops);
    }
}
