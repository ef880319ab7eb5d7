#!/usr/bin/env bash
# The whole test suite: every crate's unit tests, the cross-crate scenarios in tests/, the CLI's
# end-to-end tests, and the relay/hub tests on real iroh endpoints over loopback or in network
# namespaces. Installs the system packages it needs first (scripts/setup.sh). (Benchmarks are
# type-checked by clippy in .ci/run; run them with `cargo bench`.)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

cargo test --workspace

# The Kotlin bindings on the JVM against the native library and a real hub (installs its own
# Debian jars and the npm Kotlin compiler when missing).
./mobile-ffi/scripts/kotlin-test.sh
