#!/usr/bin/env bash
# The main job on embedded defaults: the relay and the school hub for a sample school.
# Creates ./shouwang-hub (郭庄小学, 丁里镇) on first run, then serves until Ctrl-C:
# relay on TCP 3340, hub on UDP 3341, /health and /metrics on http://127.0.0.1:3342.
# hub.db and the school's keys are encrypted with a data key kept outside ./shouwang-hub:
# ~/.config/shouwang/hub-data.key ($XDG_CONFIG_HOME), created by init-school if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo build --release -p shouwang-relay -p shouwang-cli
relay=target/release/shouwang-relay
if [ ! -f shouwang-hub/school.key ]; then
  "$relay" init-school --name 郭庄小学 --town 丁里镇 --hotline 0564-4552466 --admin 张长友
fi
exec "$relay" serve
