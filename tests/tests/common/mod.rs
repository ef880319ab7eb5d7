//! The shared fixtures live in the crate's library so the simulation harness can use them too.
#![allow(unused_imports)]

pub use shouwang_tests::fixtures::*;
