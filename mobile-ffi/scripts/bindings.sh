#!/usr/bin/env bash
# Generates the Kotlin and Swift bindings of shouwang-ffi from the built library (uniffi library
# mode), into target/bindings/{kotlin,swift} (generated, never committed).
#
#   mobile-ffi/scripts/bindings.sh            build the library and uniffi-bindgen, generate
#   mobile-ffi/scripts/bindings.sh --check    also generate a second time and fail unless the
#                                             two runs gave identical files
#   --no-build                                use what is already built (scripts/kotlin-test.sh
#                                             builds everything in one cargo call first)
#   --features LIST                           extra features for that build (build-ios.sh:
#                                             vendored-openssl, for hosts without libcrypto)
#   --lib PATH                                generate from this library (default: the debug
#                                             build of this host, libshouwang_ffi.{so,dylib})
#
# The bindings depend only on the exported interface, not on the target: the Android and iOS
# builds use the ones generated from the host library.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

check=0
build=1
lib=""
features="bindgen"
while (($#)); do
    case "$1" in
        --check) check=1 ;;
        --no-build) build=0 ;;
        --features) features="bindgen,$2"; shift ;;
        --lib) lib="$2"; shift ;;
        *) echo "usage: $0 [--check] [--no-build] [--features LIST] [--lib PATH]" >&2; exit 2 ;;
    esac
    shift
done

if ((build)); then
    cargo build -p shouwang-ffi --features "$features" --lib --bin uniffi-bindgen
fi
if [[ -z "$lib" ]]; then
    case "$(uname -s)" in
        Darwin) lib="$TARGET_DIR/debug/libshouwang_ffi.dylib" ;;
        *) lib="$TARGET_DIR/debug/libshouwang_ffi.so" ;;
    esac
fi
bindgen="$TARGET_DIR/debug/uniffi-bindgen"
for f in "$lib" "$bindgen"; do
    [[ -f "$f" ]] || { echo "missing $f: build first (drop --no-build)" >&2; exit 1; }
done

# One run: both languages into $1, laid out as target/bindings is.
generate() {
    local out="$1"
    rm -rf "$out"
    mkdir -p "$out/kotlin" "$out/swift"
    # --no-format: ktlint/swiftformat may or may not be installed; the output must not depend
    # on that. uniffi.toml (package and module names) is found through cargo metadata.
    "$bindgen" generate --library "$lib" --language kotlin --out-dir "$out/kotlin" --no-format
    "$bindgen" generate --library "$lib" --language swift --out-dir "$out/swift" --no-format
}

out="$TARGET_DIR/bindings"
mkdir -p "$TARGET_DIR"
work="$(mktemp -d "$TARGET_DIR/bindings.XXXXXX")"
trap 'rm -rf "$work"' EXIT
generate "$work/a"
if ((check)); then
    generate "$work/b"
    if ! diff -r "$work/a" "$work/b" >/dev/null; then
        echo "bindings differ between two runs:" >&2
        diff -r "$work/a" "$work/b" | head -40 >&2
        exit 1
    fi
    echo "bindings: two runs gave identical files"
fi
rm -rf "$out"
mv "$work/a" "$out"
echo "bindings: $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
