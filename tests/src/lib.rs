//! Test support for cross-crate scenarios: fixtures (a small school drawn from DOMAIN.md and
//! devices exchanging real files), a deterministic multi-peer sync simulation, a teacher's
//! offline week on a school with a year of history, a userspace link emulator (an EDGE-like
//! or flapping UDP path), private network namespaces for tests over real links, the real hub in
//! its own process with what `/proc` says about it, a flood of unauthenticated connections, for
//! the office console a small HTTP client and headless Chromium, and for the reconnect storm a
//! seeded school of 200 members (`big_school`, drawn with `seeded`), its fleet of enrolled phones
//! (`fleet`) and the benches' figures; the
//! roster table every one of them imports is built in `roster`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is a test failure

pub mod attack;
pub mod big_school;
pub mod chromium;
pub mod figures;
pub mod fixtures;
pub mod fleet;
pub mod flood;
pub mod http;
pub mod hub_process;
pub mod link;
pub mod link_hub;
pub mod netns;
pub mod phone;
pub mod ports;
pub mod roster;
pub mod seeded;
pub mod sim;
pub mod wait;
pub mod workload;
