//! What decoding one frame holds in memory: this test process's peak RSS (`VmHWM`, reset just
//! before), read from `/proc`.
//!
//! A frame's body may decompress to `wire::MAX_BODY` (64 MiB): zeros compress about
//! thirty-thousandfold, so a frame of a few KB from any enrolled device can ask for that much.
//! The decoder must hold it once, not copy it again into the message it returns.
#![allow(clippy::unwrap_used)]

use shouwang_core::doc::DocId;
use shouwang_core::ids::ChildId;
use shouwang_core::sync::Message;
use shouwang_core::sync::wire::MAX_BODY;
use shouwang_tests::hub_process::{reset_peak, status_kb};

#[test]
fn a_small_frame_that_unpacks_to_the_largest_body_is_held_once() {
    let doc = DocId::Child(ChildId("0123456789abcdef".into()));
    // The largest body a frame may carry: a document key and zeros.
    let key_len = 2 + doc.key().len();
    let frame = Message::Doc {
        doc: doc.clone(),
        payload: vec![0; MAX_BODY - key_len],
    }
    .encode();
    assert!(frame.len() < 8 << 10, "{} bytes", frame.len());
    let body_kb = (MAX_BODY >> 10) as u64;
    if !reset_peak("self") {
        eprintln!("this kernel does not let a process reset its peak RSS: not measured");
        return;
    }
    let before = status_kb("self", "VmRSS");
    let message = Message::decode(&frame).unwrap();
    let peak = status_kb("self", "VmHWM").saturating_sub(before);
    let Message::Doc { doc: got, payload } = message else {
        panic!("not a Doc frame");
    };
    assert_eq!(got, doc);
    assert_eq!(payload.len(), MAX_BODY - key_len);
    // The body once (its pages written by zstd), and not a second copy.
    assert!(peak > body_kb / 2, "the measure saw the body: {peak} kB");
    assert!(
        peak < body_kb + body_kb / 4,
        "decoding held {} MiB at once for a {} MiB body",
        peak >> 10,
        body_kb >> 10
    );
}
