#!/usr/bin/env bash
# The main job on embedded defaults: the relay and the school hub for a sample school.
# Creates ./shouwang-hub (郭庄小学, 丁里镇) on first run, then serves until Ctrl-C:
# relay on TCP 3340, hub on UDP 3341, /health and /metrics on http://127.0.0.1:3342.
# hub.db and the school's keys are encrypted with a data key kept outside ./shouwang-hub:
# ~/.config/shouwang/hub-data.key ($XDG_CONFIG_HOME), created by init-school if missing.
# Where phones reach the hub is in ~/.config/shouwang/relay.toml, beside the key. Without one,
# this demo writes it for this PC only (everything on 127.0.0.1); with SHOUWANG_LAN_ADDR set
# to this PC's LAN address (e.g. SHOUWANG_LAN_ADDR=192.168.1.20 ./scripts/run.sh), phones on
# the school's network can join.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo build --release -p shouwang-relay -p shouwang-cli
relay=target/release/shouwang-relay
config="${SHOUWANG_RELAY_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/shouwang/relay.toml}"
reach=()
if [ -n "${SHOUWANG_LAN_ADDR:-}" ]; then
  reach=(--lan-addr "$SHOUWANG_LAN_ADDR")
elif [ ! -f "$config" ]; then
  reach=(--local-only)
fi
if [ ! -f shouwang-hub/school.key ]; then
  "$relay" --data-dir shouwang-hub init-school --name 郭庄小学 --town 丁里镇 \
    --hotline 0564-4552466 --admin 张长友 "${reach[@]}"
elif [ ${#reach[@]} -gt 0 ]; then
  "$relay" --data-dir shouwang-hub address "${reach[@]}"
fi
# Two malloc arenas, as the systemd unit sets (relay/deploy/shouwang-relay.service).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec "$relay" --data-dir shouwang-hub serve
