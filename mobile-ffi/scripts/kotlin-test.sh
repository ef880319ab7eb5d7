#!/usr/bin/env bash
# The Kotlin bindings tested on the JVM against the real native library and a real hub.
#
# 1. Installs what it needs when missing: the JNA, kotlinx-coroutines and atomicfu jars from
#    Debian's packages (apt-get, as root or with sudo), and the Kotlin compiler from the npm
#    package `kotlin-compiler` into mobile-ffi/kotlin/node_modules (npm ci, pinned by
#    package-lock.json).
# 2. Builds shouwang-ffi (with uniffi-bindgen), shouwang-relay and shouwang in one cargo call,
#    and generates the bindings twice, checking both runs give the same files (bindings.sh).
# 3. Sets up 郭庄小学 in a scratch hub directory with the real binaries, starts
#    `shouwang-relay serve` on 127.0.0.1 (free ports), issues three invites.
# 4. Compiles the generated Kotlin and mobile-ffi/kotlin/tests with kotlinc, runs them with
#    `java`, and stops the hub whatever happens.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
KT="$ROOT/mobile-ffi/kotlin"
started=$SECONDS
step() { echo "== kotlin-test: $* ($((SECONDS - started)) s)"; }

# --- 1. tools --------------------------------------------------------------------------------
DEBS=(libjna-java libkotlinx-coroutines-java libkotlinx-atomicfu-java)
missing=()
for p in "${DEBS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" ||
        { "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; }
fi
KOTLINC="$KT/node_modules/kotlin-compiler/bin/kotlinc"
if [[ ! -x "$KOTLINC" ]]; then
    step "installing the Kotlin compiler (npm ci)"
    (cd "$KT" && npm ci --no-audit --no-fund)
fi
JARS=/usr/share/java/jna.jar:/usr/share/java/kotlinx-coroutines-core.jar:/usr/share/java/atomicfu.jar
STDLIB="$KT/node_modules/kotlin-compiler/lib/kotlin-stdlib.jar"

# --- 2. build and bindings -------------------------------------------------------------------
step "building shouwang-ffi, shouwang-relay and shouwang"
cargo build -p shouwang-ffi -p shouwang-relay -p shouwang-cli --features shouwang-ffi/bindgen
"$ROOT/mobile-ffi/scripts/bindings.sh" --no-build --check
R="$TARGET_DIR/debug/shouwang-relay"
S="$TARGET_DIR/debug/shouwang"

# --- 3. the hub ------------------------------------------------------------------------------
SCRATCH="$(mktemp -d)"
HUB_PID=""
cleanup() {
    if [[ -n "$HUB_PID" ]]; then
        kill -CONT "$HUB_PID" 2>/dev/null || true
        kill -TERM "$HUB_PID" 2>/dev/null || true
        wait "$HUB_PID" 2>/dev/null || true
    fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

# Three free ports on 127.0.0.1: the relay (TCP), the hub (UDP), /health (TCP).
read -r RELAY_PORT HUB_PORT HTTP_PORT < <(python3 - <<'EOF'
import socket
socks = [socket.socket(socket.AF_INET, t) for t in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_STREAM)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
EOF
)
CONFIG="$SCRATCH/relay.toml"
cat >"$CONFIG" <<EOF
data_dir = "$SCRATCH/hub"
[relay]
bind = "127.0.0.1:$RELAY_PORT"
[hub]
bind = ["127.0.0.1:$HUB_PORT"]
[http]
bind = "127.0.0.1:$HTTP_PORT"
EOF
step "setting up 郭庄小学 (relay :$RELAY_PORT, hub :$HUB_PORT, http :$HTTP_PORT)"
ticket() { "$R" --config "$CONFIG" invite --role "$1" --member "$2" --png "$SCRATCH/$2.png" | grep '^shouwang1'; }
"$R" --config "$CONFIG" init-school --name 郭庄小学 --town 丁里镇 --admin 张长友 >/dev/null
TEACHER_TICKET="$(ticket 班主任 王瑞侠)"
MOTHER_TICKET="$(ticket 爱心妈妈 刘桂兰)"
# A second phone of 王瑞侠's, which the revocation test reports lost.
LOST_TICKET="$(ticket 班主任 王瑞侠)"
HUB_DB="$SCRATCH/hub/hub.db"
# hub.db is encrypted with the data key init-school put beside the configuration file.
HUB_KEY="$SCRATCH/hub-data.key"
"$S" --store "$HUB_DB" --key-file "$HUB_KEY" class add '三年级(1)班' --head 王瑞侠 >/dev/null
cat >"$SCRATCH/roster.csv" <<'EOF'
学籍号,姓名,性别,出生日期,班级,监护人,联系电话
G340104201701010011,王小雨,女,2017-03-12,三年级(1)班,王桂芝,13805640101
G340104201701010012,李明轩,男,2016-11-02,三年级(1)班,李德福,13805640102
G340104201701010013,张思彤,女,2017-06-25,三年级(1)班,张秀英,13805640103
EOF
"$S" --store "$HUB_DB" --key-file "$HUB_KEY" roster import "$SCRATCH/roster.csv" >/dev/null
"$S" --store "$HUB_DB" --key-file "$HUB_KEY" pair --carer 刘桂兰 --child 王小雨 >/dev/null

"$R" --config "$CONFIG" serve >"$SCRATCH/hub.log" 2>&1 &
HUB_PID=$!
for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null; then break; fi
    kill -0 "$HUB_PID" 2>/dev/null || { cat "$SCRATCH/hub.log" >&2; exit 1; }
    sleep 0.2
done
step "hub running (pid $HUB_PID)"

# --- 4. compile and run ----------------------------------------------------------------------
OUT="$TARGET_DIR/kotlin-tests"
rm -rf "$OUT"
mkdir -p "$OUT" "$SCRATCH/phones"
step "compiling the bindings and the tests"
"$KOTLINC" -nowarn -cp "$JARS" -d "$OUT/classes" \
    "$TARGET_DIR/bindings/kotlin" "$KT/compat" "$KT/tests"
step "running the tests"
# A fixed, pre-touched heap: its pages are resident from the start, so the open/close test
# sees the native library's memory, not the heap growing into its limit.
status=0
SHOUWANG_TEST_DIR="$SCRATCH/phones" \
    SHOUWANG_TICKET_TEACHER="$TEACHER_TICKET" \
    SHOUWANG_TICKET_MOTHER="$MOTHER_TICKET" \
    SHOUWANG_TICKET_LOST="$LOST_TICKET" \
    SHOUWANG_HUB_DB="$HUB_DB" \
    SHOUWANG_HUB_KEY="$HUB_KEY" \
    SHOUWANG_HUB_PID="$HUB_PID" \
    java -Xms160m -Xmx160m -XX:+AlwaysPreTouch -XX:+UseSerialGC -Djna.library.path="$TARGET_DIR/debug" \
    -cp "$OUT/classes:$JARS:$STDLIB" org.shouwang.ffi.tests.ShouwangTestsKt || status=$?
if ((status != 0)); then
    echo "--- hub log (last 40 lines)" >&2
    tail -40 "$SCRATCH/hub.log" >&2
fi
step "done"
exit "$status"
