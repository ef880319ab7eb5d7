//! Test support for cross-crate scenarios: fixtures (a small school drawn from DOMAIN.md and
//! devices exchanging real files) and a deterministic multi-peer sync simulation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is a test failure

pub mod fixtures;
pub mod sim;
