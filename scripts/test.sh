#!/usr/bin/env bash
# The whole test suite: every crate's unit tests, the cross-crate scenarios in tests/, the CLI's
# end-to-end tests, the relay/hub tests on real iroh endpoints over loopback or in network
# namespaces, the Debian package installed, and a short run of every fuzz target. Installs the
# system packages it needs first (scripts/setup.sh). (Benchmarks are type-checked by clippy in
# .ci/run; run them with `cargo bench`.)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

cargo test --workspace

# The Debian package as a school installs it (issue 13): made with cargo-deb from the debug
# build above (not a release build of several minutes), installed with apt-get, set up, served,
# backed up and purged (relay/deploy/test-deb.sh). It needs root and apt-get.
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  SHOUWANG_DEB_PROFILE=dev relay/deploy/test-deb.sh
else
  echo "跳过 Debian 软件包测试：需要 root 和 apt-get（relay/deploy/test-deb.sh）" >&2
fi

# Every fuzz target for a short while (20 s each: about 3 minutes, plus one build of the
# instrumented targets), from the seeds the real code writes; a crash fails the run and leaves
# its input in fuzz/artifacts/. RELIABILITY.md, "Fuzzing". Long runs: scripts/fuzz.sh TARGET SECONDS.
./scripts/fuzz.sh --all "${SHOUWANG_FUZZ_SECONDS:-20}"

# The Kotlin bindings on the JVM against the native library and a real hub (installs its own
# Debian jars and the npm Kotlin compiler when missing).
./mobile-ffi/scripts/kotlin-test.sh
