#!/usr/bin/env bash
# The whole test suite: every crate's unit tests, the cross-crate scenarios in tests/, the CLI's
# end-to-end tests, the relay/hub tests on real iroh endpoints over loopback or in network
# namespaces, and a short run of every fuzz target. Installs the system packages it needs first
# (scripts/setup.sh). (Benchmarks are type-checked by clippy in .ci/run; run them with
# `cargo bench`.)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

cargo test --workspace

# Every fuzz target for a short while (20 s each: about 3 minutes, plus one build of the
# instrumented targets), from the seeds the real code writes; a crash fails the run and leaves
# its input in fuzz/artifacts/. RELIABILITY.md, "Fuzzing". Long runs: scripts/fuzz.sh TARGET SECONDS.
./scripts/fuzz.sh --all "${SHOUWANG_FUZZ_SECONDS:-20}"

# The Kotlin bindings on the JVM against the native library and a real hub (installs its own
# Debian jars and the npm Kotlin compiler when missing).
./mobile-ffi/scripts/kotlin-test.sh
