#!/usr/bin/env bash
# The whole test suite: every crate's unit tests, the cross-crate scenarios in tests/, the CLI's
# end-to-end tests, the relay/hub tests on real iroh endpoints over loopback or in network
# namespaces, the Debian package installed, and a short run of every fuzz target. Installs the
# system packages it needs first (scripts/setup.sh). (Benchmarks are type-checked by clippy in
# .ci/run; run them with `cargo bench`.)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

# The fuzz targets' instrumented build (several minutes of both cores from nothing) starts now,
# at the lowest CPU priority, beside the tests: it takes the CPU the tests leave idle while they
# wait on emulated links and restarted hubs, and little of what they use. The fuzz runs below
# wait for it.
# In a session of its own, so that stopping this script (a failed test, Ctrl-C) stops cargo and
# every rustc under it, not only the shell that started them.
mkdir -p target
setsid -w nice -n 19 ./scripts/fuzz.sh --build >target/fuzz-build.log 2>&1 &
fuzz_build=$!
trap 'kill -- -"$fuzz_build" 2>/dev/null || true' EXIT

# `cargo test --workspace`, with the test binaries on two parallel lanes (scripts/test-lanes.sh).
./scripts/test-lanes.sh

# The Debian package as a school installs it (issue 13): made with cargo-deb from the debug
# build above (not a release build of several minutes), installed with apt-get, set up, served,
# backed up and purged (relay/deploy/test-deb.sh). It needs root and apt-get.
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  SHOUWANG_DEB_PROFILE=dev relay/deploy/test-deb.sh
else
  echo "跳过 Debian 软件包测试：需要 root 和 apt-get（relay/deploy/test-deb.sh）" >&2
fi

# Every fuzz target for a short while (20 s each, two at a time: under 2 minutes), from the
# seeds the real code writes; a crash fails the run and leaves its input in fuzz/artifacts/.
# RELIABILITY.md, "Fuzzing". Long runs: scripts/fuzz.sh TARGET SECONDS.
if ! wait "$fuzz_build"; then
  cat target/fuzz-build.log
  echo "模糊测试目标构建失败（target/fuzz-build.log）" >&2
  exit 1
fi
trap - EXIT
./scripts/fuzz.sh --all "${SHOUWANG_FUZZ_SECONDS:-20}"

# The Kotlin bindings on the JVM against the native library and a real hub (installs its own
# Debian jars and the npm Kotlin compiler when missing).
./mobile-ffi/scripts/kotlin-test.sh
