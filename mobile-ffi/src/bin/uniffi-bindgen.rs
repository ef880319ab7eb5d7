//! uniffi's bindings generator, built from the same uniffi version as the library:
//! `cargo run -p shouwang-ffi --features bindgen --bin uniffi-bindgen -- generate --library …`
//! (see `mobile-ffi/scripts/bindings.sh`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
