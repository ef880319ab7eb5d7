//! Test support for cross-crate scenarios: fixtures (a small school drawn from DOMAIN.md and
//! devices exchanging real files), a deterministic multi-peer sync simulation, a teacher's
//! offline week on a school with a year of history, a userspace link emulator (an EDGE-like
//! or flapping UDP path) and private network namespaces for tests over real links.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is a test failure

pub mod attack;
pub mod fixtures;
pub mod link;
pub mod netns;
pub mod sim;
pub mod workload;
