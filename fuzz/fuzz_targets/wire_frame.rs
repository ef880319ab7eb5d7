//! The sync protocol's frame decoder (`core::sync::wire`): any bytes decode or are refused, and
//! a decoded frame encodes to one that decodes the same. Each input is decoded as it comes (so
//! a damaged check is refused) and with its check made right (so the fuzzer's changes reach the
//! body's decoder).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shouwang_core::sync::wire::Message;

fuzz_target!(|data: &[u8]| {
    for frame in [data.to_vec(), shouwang_fuzz::with_sync_check(data)] {
        if let Ok(m) = Message::decode(&frame) {
            let again = Message::decode(&m.encode());
            assert_eq!(
                again.ok().as_ref(),
                Some(&m),
                "a decoded frame re-encodes the same"
            );
        }
    }
});
