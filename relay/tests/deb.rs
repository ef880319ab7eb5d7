//! The Debian package (issue 13): `relay/deploy/test-deb.sh` builds it with cargo-deb,
//! installs it with `apt-get install ./shouwang-relay_*.deb`, checks the files, the unit and
//! `shouwang-relay --help`, sets up a school as the service's user, serves, backs up, and
//! purges it. `scripts/test.sh` runs the script itself, as root, with the package made from
//! the tests' debug build. Ignored in a plain `cargo test`: it needs root, and alone it makes a
//! release build (minutes). Run it with `cargo test -p shouwang-relay --test deb -- --ignored`
//! or `relay/deploy/test-deb.sh`.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
#[ignore = "root, a release build and an install on this machine (scripts/test.sh runs relay/deploy/test-deb.sh)"]
fn the_debian_package_installs_sets_up_a_school_and_serves() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/test-deb.sh");
    let status = Command::new(script).status().unwrap();
    assert!(status.success(), "{script} failed");
}
