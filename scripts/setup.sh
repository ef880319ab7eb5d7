#!/usr/bin/env bash
# Debian packages the build and the tests need on a fresh machine, installed only when missing
# (as root, or through sudo). Extra package names may be given as arguments.
#   libssl-dev, pkg-config: SQLCipher (at-rest encryption) is built against libcrypto.
#   iproute2, util-linux:  network-namespace tests (ip, unshare).
#   strace:                the no-egress test watches the process's sockets.
#   faketime:              the wrong-clock tests run the CLI with its clock off by years.
#   g++:                   the fuzz targets link libFuzzer, which libfuzzer-sys compiles from
#                          its C++ source (scripts/fuzz.sh).
#   chromium, fonts-noto-cjk: the office console's browser test loads its pages headless
#                          (the font, so Chinese renders in its screenshots).
#   systemd, curl:         the Debian package's test checks its unit (systemd-analyze) and
#                          asks the installed server for /health.
#   jq:                    scripts/test-lanes.sh reads cargo's list of test binaries (JSON).
set -euo pipefail

missing=()
for pkg in libssl-dev pkg-config iproute2 util-linux strace faketime g++ chromium fonts-noto-cjk systemd curl jq "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "安装系统软件包：${missing[*]}" >&2
if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}"; then
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi
