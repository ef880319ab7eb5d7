#!/usr/bin/env bash
# The whole test suite: every crate's unit tests, the cross-crate scenarios in tests/, the CLI's
# end-to-end tests, and the relay/hub tests on real iroh endpoints over loopback. Installs
# nothing beyond what cargo fetches. (Benchmarks are type-checked by clippy in .ci/run; run
# them with `cargo bench`.)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace
