//! Property: over random topologies and fault schedules (links opening and closing, frames
//! dropped, duplicated, reordered and corrupted), once the faults stop and every device meets
//! the hub, every replica holds identical documents, every durable write is present, and
//! nothing is duplicated. Some of the syncs with the hub are one-shot (`Net::connect_one_shot`:
//! the hub leaves what arrives meanwhile for the phone's next sync, and the phone stops once
//! caught up).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use proptest::prelude::*;
use shouwang_core::RecordInput;
use shouwang_core::doc::DocId;
use shouwang_tests::sim::{Faults, Net};

const MEMBERS: [&str; 3] = [HEAD_TEACHER, LOVE_MOTHER, PAIRING_TEACHER];
const STEPS: usize = 50_000;

#[derive(Debug, Clone)]
enum Op {
    Write {
        peer: usize,
        child: usize,
        live: bool,
    },
    Edit {
        peer: usize,
        value: usize,
    },
    Connect(usize, usize),
    /// A phone's one-shot sync with the hub (peer 0).
    ConnectOnce(usize),
    Disconnect(usize, usize),
    Run(usize),
    Faults(u8, u8, u8, u8),
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..n, 0..2usize, any::<bool>()).prop_map(|(peer, child, live)| Op::Write { peer, child, live }),
        1 => (0..n, 0..3usize).prop_map(|(peer, value)| Op::Edit { peer, value }),
        3 => (0..n, 0..n).prop_map(|(a, b)| Op::Connect(a, b)),
        2 => (1..n).prop_map(Op::ConnectOnce),
        2 => (0..n, 0..n).prop_map(|(a, b)| Op::Disconnect(a, b)),
        3 => (1..60usize).prop_map(Op::Run),
        1 => (0..30u8, 0..30u8, 0..50u8, 0..10u8).prop_map(|(d, u, r, c)| Op::Faults(d, u, r, c)),
    ]
}

fn run(n: usize, seed: u64, ops: &[Op]) {
    let mut admin = school();
    let mut peers: Vec<Device> = MEMBERS
        .iter()
        .take(n - 1)
        .map(|m| join(&mut admin, m))
        .collect();
    peers.insert(0, admin);
    let mut net = Net::new(peers, seed);
    let children = [CHILDREN[0].1, CHILDREN[1].1];
    let mut written = Vec::new();
    for op in ops {
        match *op {
            Op::Write { peer, child, live } => {
                let input = RecordInput {
                    kind: "家访".into(),
                    child: Some(children[child].into()),
                    class: None,
                    date: "2026-11-18".into(),
                    fields: kv(&[("notes", "家访记录")]),
                };
                if let Ok(id) = net.peers[peer].archive.add_record(&input) {
                    written.push(id.0);
                    if live {
                        let c = net.peers[peer].archive.find_child(children[child]).unwrap();
                        net.local_change(peer, &DocId::Child(c));
                    }
                }
            }
            Op::Edit { peer, value } => {
                let phone = ["13800001111", "13900002222", "13700003333"][value];
                let _ = net.peers[peer].archive.edit_child(
                    children[0],
                    "guardian",
                    &kv(&[("phone", phone)]),
                );
            }
            Op::Connect(a, b) => net.connect(a, b),
            Op::ConnectOnce(phone) => net.connect_one_shot(0, phone),
            Op::Disconnect(a, b) => net.disconnect(a, b),
            Op::Run(k) => {
                for _ in 0..k {
                    net.step();
                }
            }
            Op::Faults(d, u, r, c) => {
                net.faults = Faults {
                    drop: f64::from(d) / 100.0,
                    duplicate: f64::from(u) / 100.0,
                    reorder: f64::from(r) / 100.0,
                    corrupt: f64::from(c) / 100.0,
                }
            }
        }
    }
    // Faults stop; every device meets the hub in turn, twice around, then once more.
    net.faults = Faults::default();
    for a in 0..n {
        for b in 0..n {
            net.disconnect(a, b);
        }
    }
    for _ in 0..2 {
        for p in 1..n {
            net.connect(0, p);
            net.run_until_quiescent(STEPS).expect("no endless exchange");
            assert!(net.caught_up(0, p), "session with {p} did not finish");
            net.disconnect(0, p);
        }
    }
    let reference = heads(&mut net.peers[0]);
    for p in 1..n {
        assert_eq!(heads(&mut net.peers[p]), reference, "peer {p} differs");
    }
    let mut ids: Vec<String> = children
        .iter()
        .flat_map(|c| {
            net.peers[0]
                .file(c)
                .records
                .into_iter()
                .map(|r| r.meta.id.0)
        })
        .collect();
    ids.sort();
    written.sort();
    assert_eq!(ids, written, "every write present exactly once");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: property_cases(if std::env::var("CI").is_ok() { 24 } else { 32 }),
        max_shrink_iters: 100,
        ..ProptestConfig::default()
    })]

    #[test]
    fn replicas_converge_under_any_topology_and_faults(
        (n, seed, ops) in (3..=4usize).prop_flat_map(|n| (Just(n), any::<u64>(), prop::collection::vec(op(n), 5..60)))
    ) {
        run(n, seed, &ops);
    }
}
