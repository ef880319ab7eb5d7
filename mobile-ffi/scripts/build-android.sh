#!/usr/bin/env bash
# Builds libshouwang_ffi.so for Android (arm64-v8a, armeabi-v7a, x86_64) and the Kotlin
# bindings, ready to drop into an app module:
#
#   mobile-ffi/scripts/build-android.sh [OUT_DIR]      (default: target/android)
#
#   OUT_DIR/jniLibs/{arm64-v8a,armeabi-v7a,x86_64}/libshouwang_ffi.so   → src/main/jniLibs
#   OUT_DIR/kotlin/org/shouwang/ffi/shouwang_ffi.kt                    → src/main/java (or kotlin)
#
# Needs (not on the CI machine): the Android NDK (r25 or newer; found by cargo-ndk from
# ANDROID_NDK_HOME or Android Studio's default location), `cargo install cargo-ndk` (v3 or v4),
# and perl + make for OpenSSL. SQLCipher is built with OpenSSL compiled from source for each
# target (feature `vendored-openssl`): the NDK has no libcrypto.
#
# The app depends on `net.java.dev.jna:jna:5.x@aar` and `org.jetbrains.kotlinx:
# kotlinx-coroutines-android`; see mobile-ffi/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${1:-$TARGET_DIR/android}"
# minSdk: Android 7.0.
API_LEVEL="${ANDROID_API_LEVEL:-24}"

command -v cargo-ndk >/dev/null || {
    echo "cargo-ndk is missing: cargo install cargo-ndk" >&2
    exit 1
}
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android

# OpenSSL's Configure for android-* targets reads ANDROID_NDK_ROOT.
if [[ -z "${ANDROID_NDK_ROOT:-}" && -n "${ANDROID_NDK_HOME:-}" ]]; then
    export ANDROID_NDK_ROOT="$ANDROID_NDK_HOME"
fi
# 16 KB pages (required from Android 15 on 64-bit devices; NDK r28 does this by default).
page16k="-C link-arg=-Wl,-z,max-page-size=16384"
export CARGO_TARGET_AARCH64_LINUX_ANDROID_RUSTFLAGS="${CARGO_TARGET_AARCH64_LINUX_ANDROID_RUSTFLAGS:-$page16k}"
export CARGO_TARGET_X86_64_LINUX_ANDROID_RUSTFLAGS="${CARGO_TARGET_X86_64_LINUX_ANDROID_RUSTFLAGS:-$page16k}"

rm -rf "$OUT"
mkdir -p "$OUT/jniLibs"
cargo ndk \
    -t arm64-v8a -t armeabi-v7a -t x86_64 \
    -P "$API_LEVEL" \
    -o "$OUT/jniLibs" \
    build --release -p shouwang-ffi --lib --features vendored-openssl

# The bindings depend on the exported interface only: generate them from the host build.
"$ROOT/mobile-ffi/scripts/bindings.sh"
cp -R "$TARGET_DIR/bindings/kotlin" "$OUT/kotlin"
echo "Android: $(cd "$OUT" && find . -type f | sort | tr '\n' ' ')"
