#!/usr/bin/env bash
# The whole test suite: every crate's unit tests, the cross-crate scenarios in tests/, the CLI's
# end-to-end tests, and a compile of the benchmarks. Installs nothing beyond what cargo fetches.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace
cargo bench --workspace --no-run
