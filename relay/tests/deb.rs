//! The Debian package (issue 13): `relay/deploy/test-deb.sh` builds it with cargo-deb,
//! installs it with `apt-get install ./shouwang-relay_*.deb`, checks the files, the unit and
//! `shouwang-relay --help`, sets up a school as the service's user, serves, backs up, and
//! purges it. Ignored in the default run: a release build and a system-wide install take
//! minutes and root. Run it with `cargo test -p shouwang-relay --test deb -- --ignored` or
//! `relay/deploy/test-deb.sh`.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
#[ignore = "a release build and an install on this machine: relay/deploy/test-deb.sh"]
fn the_debian_package_installs_sets_up_a_school_and_serves() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/test-deb.sh");
    let status = Command::new(script).status().unwrap();
    assert!(status.success(), "{script} failed");
}
