//! What decoding one frame holds in memory: this test process's peak RSS (`VmHWM`, reset just
//! before), read from `/proc`.
//!
//! zstd packs zeros about thirty-thousandfold, so a frame of a few KB from any enrolled device
//! can claim a body of `wire::MAX_BODY` (64 MiB). A small frame may unpack only to
//! `wire::BODY_FLOOR` (8 MiB), refused beyond it before anything is allocated; and the decoder
//! holds a body once, not copied again into the message it returns.
#![allow(clippy::unwrap_used)]

use shouwang_core::doc::DocId;
use shouwang_core::ids::ChildId;
use shouwang_core::sync::Message;
use shouwang_core::sync::wire::{BODY_FLOOR, MAX_BODY};
use shouwang_tests::hub_process::{reset_peak, status_kb};

/// A `Doc` frame whose body is `body` bytes (its key and zeros).
fn frame(doc: &DocId, body: usize) -> Vec<u8> {
    Message::Doc {
        doc: doc.clone(),
        payload: vec![0; body - (2 + doc.key().len())],
    }
    .encode()
}

/// What decoding `frame` held at once beyond what the process held before, in kB, and the
/// decoded message. (Linux lets a process reset its peak since 4.0; a kernel that does not
/// fails the test rather than pass it unmeasured.)
fn held(frame: &[u8]) -> (u64, shouwang_core::Result<Message>) {
    assert!(
        reset_peak("self"),
        "this kernel does not let a process reset its peak RSS"
    );
    let before = status_kb("self", "VmRSS");
    let message = Message::decode(frame);
    (status_kb("self", "VmHWM").saturating_sub(before), message)
}

#[test]
fn a_small_frame_unpacks_to_the_floor_at_most_and_the_body_is_held_once() {
    let doc = DocId::Child(ChildId("0123456789abcdef".into()));
    let largest = frame(&doc, MAX_BODY);
    let floor = frame(&doc, BODY_FLOOR);
    assert!(largest.len() < 8 << 10 && floor.len() < 8 << 10);

    // The largest body from a few KB: refused before anything is allocated for it.
    let (peak, refused) = held(&largest);
    assert!(refused.is_err(), "a few KB claiming 64 MiB");
    assert!(peak < 2 << 10, "refusing it held {peak} kB");

    // The floor: held once (its pages written by zstd), and not a second copy.
    let floor_kb = (BODY_FLOOR >> 10) as u64;
    let (peak, decoded) = held(&floor);
    let Ok(Message::Doc { doc: got, payload }) = decoded else {
        panic!("not a Doc frame: {decoded:?}");
    };
    assert_eq!(got, doc);
    assert_eq!(payload.len(), BODY_FLOOR - (2 + doc.key().len()));
    assert!(peak > floor_kb / 2, "the measure saw the body: {peak} kB");
    assert!(
        peak < floor_kb + floor_kb / 4,
        "decoding held {peak} kB at once for a {floor_kb} kB body"
    );
}
