//! Writes the seed corpora, one directory per target under the directory given, by running
//! the real code on the fuzz world (`shouwang_fuzz::World`): a real sync between the office and
//! 刘桂兰's phone (every frame both ways), real sealed and plain bundles, an enrollment as the
//! hub answers it, an invite and a certificate, and rosters written as .csv and .xlsx. Nothing
//! opaque is committed: the seeds follow the code.
//!
//! `scripts/fuzz.sh` runs it before fuzzing; `cargo test -p shouwang-fuzz` checks it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

// Built with the fuzz targets' coverage instrumentation (`scripts/fuzz.sh`), this binary needs
// libFuzzer's coverage callbacks; its own `main` keeps libFuzzer's out.
use libfuzzer_sys as _;

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .expect("usage: shouwang-fuzz-seeds OUT_DIR");
    let n = shouwang_fuzz::seeds::write_all(Path::new(&out)).expect("write the seeds");
    eprintln!("{n} seeds in {}", Path::new(&out).display());
}
