#!/usr/bin/env bash
# Fuzzing on stable Rust: libFuzzer (the libfuzzer-sys crate compiles it from its bundled C++
# source) linked into targets whose code rustc instruments with LLVM's SanitizerCoverage, using
# only stable -C flags (no -Z, no nightly, no cargo-fuzz).
#
#   scripts/fuzz.sh TARGET [SECONDS] [-- LIBFUZZER FLAGS]   fuzz one target (default 60 s)
#   scripts/fuzz.sh --all SECONDS                           every target, two at a time (CI: short;
#                                                           SHOUWANG_FUZZ_JOBS=N for N at a time)
#   scripts/fuzz.sh --list                                  the targets
#   scripts/fuzz.sh --build                                 build them only
#
# The working corpus is fuzz/corpus/TARGET (not committed); it starts from the seeds that
# `shouwang-fuzz-seeds` makes by running the real code (fuzz/src/bin/seeds.rs). Crashes are
# written to fuzz/artifacts/TARGET/; reproduce one with `scripts/fuzz.sh TARGET 0 -- FILE`
# (libFuzzer runs the given files only) and turn it into a regression test in the crate whose
# code crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
# Stable flags only: SanitizerCoverage as a module pass (8-bit counters, the PC table libFuzzer
# needs for its coverage counts, compare tracing for magic numbers and checksums), plus
# --cfg fuzzing. With --target given, cargo applies RUSTFLAGS to the targets' code only, not to
# build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing"
export CARGO_INCREMENTAL=0
BIN_DIR="target/$TRIPLE/fuzz"
SEEDS_DIR="target/fuzz-seeds"

targets() {
  sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^shouwang-fuzz$'
}

build() {
  cargo build --profile fuzz --target "$TRIPLE" -p shouwang-fuzz --bins
  # Made again whenever the generator was rebuilt (it runs the real code).
  if [ ! -d "$SEEDS_DIR" ] || [ "$BIN_DIR/shouwang-fuzz-seeds" -nt "$SEEDS_DIR" ]; then
    rm -rf "$SEEDS_DIR" "$SEEDS_DIR.new"
    "$BIN_DIR/shouwang-fuzz-seeds" "$SEEDS_DIR.new"
    mv "$SEEDS_DIR.new" "$SEEDS_DIR"
  fi
}

# run TARGET SECONDS [libFuzzer flags or files...]
run() {
  local target="$1" secs="$2"
  shift 2
  local corpus="fuzz/corpus/$target" artifacts="fuzz/artifacts/$target"
  mkdir -p "$corpus" "$artifacts"
  local seeds=()
  [ -d "$SEEDS_DIR/$target" ] && seeds=("$SEEDS_DIR/$target")
  local args=(-artifact_prefix="$artifacts/" -print_final_stats=1 -rss_limit_mb=4096 -timeout=30)
  # In CI a fixed seed, so that a failure names an input a second run can find again.
  [ -n "${CI:-}" ] && args+=(-seed=1)
  if [ "$#" -gt 0 ] && [ -f "$1" ]; then
    # Reproduce: run the given inputs only.
    "$BIN_DIR/$target" "${args[@]}" "$@"
    return
  fi
  echo "== fuzz $target for ${secs}s" >&2
  "$BIN_DIR/$target" "${args[@]}" -max_total_time="$secs" "$@" "$corpus" "${seeds[@]}"
}

case "${1:-}" in
  --list) targets ;;
  --build) build ;;
  --all)
    secs="${2:?用法：scripts/fuzz.sh --all 秒数}"
    build
    # libFuzzer runs on one core: two targets at a time keep CI's two cores busy. Each
    # target's output goes to target/fuzz-logs/TARGET.log; its final statistics are printed,
    # and the whole log when it fails.
    mkdir -p target/fuzz-logs
    export -f run
    export BIN_DIR SEEDS_DIR
    one() {
      local t="$1" secs="$2" log="target/fuzz-logs/$1.log"
      if run "$t" "$secs" >"$log" 2>&1; then
        echo "ok    fuzz $t: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs in ${secs} s, corpus $(ls "fuzz/corpus/$t" | wc -l)"
      else
        echo "FAIL  fuzz $t (its input is in fuzz/artifacts/$t/):"
        cat "$log"
        return 1
      fi
    }
    export -f one
    targets | xargs -P "${SHOUWANG_FUZZ_JOBS:-2}" -I{} bash -c 'one "$1" "$2"' _ {} "$secs"
    ;;
  ""|-h|--help) sed -n '2,16p' "$0" ;;
  *)
    target="$1"
    secs="${2:-60}"
    shift $(( $# >= 2 ? 2 : 1 ))
    [ "${1:-}" = "--" ] && shift
    targets | grep -qx "$target" || { echo "没有这个模糊测试目标：$target（scripts/fuzz.sh --list）" >&2; exit 2; }
    build
    run "$target" "$secs" "$@"
    ;;
esac
