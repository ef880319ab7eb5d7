#!/usr/bin/env bash
# Builds ShouwangFFI.xcframework (device + simulator static libraries with the C header and
# module map) and the Swift bindings, on macOS with Xcode:
#
#   mobile-ffi/scripts/build-ios.sh [OUT_DIR]      (default: target/ios)
#
#   OUT_DIR/ShouwangFFI.xcframework   the static library for iOS devices (arm64) and the
#                                     simulator (arm64 + x86_64, one lipo'd library)
#   OUT_DIR/Shouwang.swift            the Swift API (module `Shouwang`); add it to the app or
#                                     to a Swift package target that depends on the framework
#
# Needs (not on the CI machine): Xcode with its command-line tools (xcodebuild, lipo), and the
# Rust targets (added below). SQLCipher is built with OpenSSL compiled from source for each
# target (feature `vendored-openssl`), so no OpenSSL install is needed; the host build that
# generates the bindings uses it too.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${1:-$TARGET_DIR/ios}"
export IPHONEOS_DEPLOYMENT_TARGET="${IPHONEOS_DEPLOYMENT_TARGET:-15.0}"

[[ "$(uname -s)" == Darwin ]] || { echo "build-ios.sh runs on macOS with Xcode" >&2; exit 1; }
for tool in xcodebuild lipo; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: install Xcode" >&2; exit 1; }
done

TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "${TARGETS[@]}"
for t in "${TARGETS[@]}"; do
    cargo build --release -p shouwang-ffi --lib --features vendored-openssl --target "$t"
done

rm -rf "$OUT"
mkdir -p "$OUT/simulator" "$OUT/include"
lipo -create \
    "$TARGET_DIR/aarch64-apple-ios-sim/release/libshouwang_ffi.a" \
    "$TARGET_DIR/x86_64-apple-ios/release/libshouwang_ffi.a" \
    -output "$OUT/simulator/libshouwang_ffi.a"

# The bindings depend on the exported interface only: generate them from the host build.
"$ROOT/mobile-ffi/scripts/bindings.sh" --features vendored-openssl
SWIFT="$TARGET_DIR/bindings/swift"
cp "$SWIFT/ShouwangFFI.h" "$OUT/include/"
# Inside an xcframework the module map must be called module.modulemap.
cp "$SWIFT/ShouwangFFI.modulemap" "$OUT/include/module.modulemap"
cp "$SWIFT/Shouwang.swift" "$OUT/"

xcodebuild -create-xcframework \
    -library "$TARGET_DIR/aarch64-apple-ios/release/libshouwang_ffi.a" -headers "$OUT/include" \
    -library "$OUT/simulator/libshouwang_ffi.a" -headers "$OUT/include" \
    -output "$OUT/ShouwangFFI.xcframework"
rm -rf "$OUT/simulator" "$OUT/include"
echo "iOS: $OUT/ShouwangFFI.xcframework and $OUT/Shouwang.swift"
