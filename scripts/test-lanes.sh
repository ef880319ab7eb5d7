#!/usr/bin/env bash
# Every test binary of the workspace, run on parallel lanes instead of cargo's one at a time.
#
#   scripts/test-lanes.sh            build the tests (cargo test --workspace --no-run), run them
#   SHOUWANG_TEST_LANES=N ...        N binaries at once (default 2: CI's two cores)
#
# Why: `cargo test --workspace` runs its 88 binaries one after another, and the slowest of them
# wait more than they compute (an EDGE link's 420 ms each way, a hub killed and restarted, a
# QUIC idle timeout running out): 600 s of wall time held 490 s of CPU on two cores. Two lanes
# let a waiting binary share the machine with a busy one. Each binary still runs its own tests
# on its own threads, as under cargo.
#
# A binary runs as cargo would run it: from its package's directory, with CARGO_MANIFEST_DIR
# and CARGO_PKG_NAME set. Its output goes to target/test-logs/ and, once it has finished, is
# printed whole as cargo would print it, with a line saying how it went; the output of every
# binary that failed is printed again at the end. The slowest
# binaries start first (longest job first packs the lanes best): the order is the durations of
# the last run on this machine (target/test-logs/durations.tsv), else the list below.
# Doc-tests run last, through cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

lanes="${SHOUWANG_TEST_LANES:-2}"
logs="target/test-logs"
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs/failed" "$logs/durations.new"

# The slowest binaries of a run on 2 cores (2026-12-06), slowest first: the order when no
# earlier run on this machine left its durations.
SLOWEST_FIRST="relay:storm_kill apps/cli:edge_link relay:kill tests:trust tests:convergence
tests:sync_convergence tests:slow_link core:first_open tests:lost_handshake relay:office
relay:flood apps/cli:untranslated tests:shouwang_tests relay:live tests:trust_hub relay:hub
apps/cli:crash tests:rebase"

# package-dir:target-name <TAB> manifest dir <TAB> package <TAB> executable, for every test
# binary (unit tests of each library and binary, every integration test).
cargo test --workspace --no-run --message-format=json-render-diagnostics |
  jq -r --arg root "$PWD/" '
    select(.reason == "compiler-artifact" and .profile.test and .executable != null)
    | (.manifest_path | rtrimstr("/Cargo.toml")) as $dir
    | [(($dir | ltrimstr($root)) + ":" + .target.name), $dir,
       (.package_id | capture("#(?<n>[^@]+)@").n), .executable] | @tsv' >"$logs/binaries.tsv"

# Weight: the last duration in seconds, else a rank from the list above, else 0; heaviest first.
touch "$logs/durations.tsv"
SLOWEST_FIRST="$SLOWEST_FIRST" awk -F'\t' '
  BEGIN { n = split(ENVIRON["SLOWEST_FIRST"], names, /[ \n]+/); for (i = 1; i <= n; i++) rank[names[i]] = 1000 - i }
  FILENAME == ARGV[1] { last[$1] = $2; next }
  { print (($1 in last) ? last[$1] : (($1 in rank) ? rank[$1] : 0)) "\t" $0 }
' "$logs/durations.tsv" "$logs/binaries.tsv" | LC_ALL=C sort -t$'\t' -k1,1 -rg | cut -f2- >"$logs/order.tsv"

run_one() { # key dir package executable
  local key="$1" dir="$2" pkg="$3" exe="$4" log start status
  log="$PWD/target/test-logs/${key//[:\/]/_}.log"
  start=${EPOCHREALTIME/[.,]/}
  status=0
  (cd "$dir" && CARGO_MANIFEST_DIR="$dir" CARGO_PKG_NAME="$pkg" "$exe") >"$log" 2>&1 || status=$?
  local secs summary
  local tenths=$(((${EPOCHREALTIME/[.,]/} - start) / 100000))
  secs="$((tenths / 10)).$((tenths % 10))"
  printf '%s\t%s\n' "$key" "$secs" >>target/test-logs/durations.new
  summary="$(grep -E '^test result:' "$log" | tail -n 1 | sed 's/^test result: //; s/; finished in.*//')"
  # The binary's own output whole, as cargo prints it (every test's line and libtest's
  # "test result:"), then one line saying how it went; under a lock, so that the two lanes'
  # blocks never interleave.
  {
    flock 9
    printf '     Running %s (%s)\n' "$key" "${exe#"$PWD/"}"
    cat "$log"
    if [ "$status" -eq 0 ]; then
      printf 'ok    %-32s %6s s  %s\n\n' "$key" "$secs" "$summary"
    else
      printf 'FAIL  %-32s %6s s  exit %s  %s\n\n' "$key" "$secs" "$status" "$summary"
      echo "$key" >>target/test-logs/failed
    fi
  } 9>>target/test-logs/print.lock
}
export -f run_one

started=$(date +%s)
echo "== $(wc -l <"$logs/order.tsv") test binaries on $lanes lanes"
status=0
tr '\t' '\n' <"$logs/order.tsv" | xargs -d '\n' -n 4 -P "$lanes" bash -c 'run_one "$@"' _ || status=$?
mv "$logs/durations.new" "$logs/durations.tsv"
echo "== test binaries: $(($(date +%s) - started)) s"

if [ -f "$logs/failed" ]; then
  while read -r key; do
    echo
    echo "======== $key (target/test-logs/${key//[:\/]/_}.log)"
    cat "$logs/${key//[:\/]/_}.log"
  done <"$logs/failed"
  echo
  echo "failed: $(tr '\n' ' ' <"$logs/failed")" >&2
  exit 1
fi
[ "$status" -eq 0 ] || { echo "the test runner failed (xargs exit $status)" >&2; exit 1; }

cargo test --workspace --doc
