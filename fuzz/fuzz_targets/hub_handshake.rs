//! The school hub's side of a connection (`relay::server::HubConversation`, over a real hub
//! data directory: SQLCipher `hub.db` and sealed keys, copied fresh for each input): the
//! first frames a stranger's device sends (`Enroll` with an invite, `Hello` with a
//! certificate, `Undelivered`), then, once welcomed, its sync frames (each with its own check
//! and those of the automerge chunks inside made right, `with_sync_check`,
//! `with_automerge_checksums`) and `Live`. The input is the device's frames
//! (`shouwang_fuzz::split_frames`). A refused frame ends the conversation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shouwang_fuzz::{Hub, split_frames, with_automerge_checksums, with_sync_check};
use shouwang_relay::handshake::MAGIC;

fuzz_target!(|data: &[u8]| {
    let hub = Hub::get();
    let opened = hub.open();
    let mut conv = Hub::conversation(&opened);
    if conv.opening().is_err() {
        return;
    }
    for frame in split_frames(data) {
        let frame = if frame.first() == Some(&MAGIC) {
            frame.to_vec()
        } else {
            with_sync_check(&with_automerge_checksums(frame))
        };
        if conv.on_frame(&frame).is_err() {
            return;
        }
    }
});
