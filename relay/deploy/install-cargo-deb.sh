#!/usr/bin/env bash
# Installs cargo-deb (builds the Debian package of shouwang-relay) from crates.io into
# ~/.cargo/bin, unless it is there already.
set -euo pipefail
if cargo deb --version >/dev/null 2>&1; then
  exit 0
fi
cargo install cargo-deb --locked --version "^3"
