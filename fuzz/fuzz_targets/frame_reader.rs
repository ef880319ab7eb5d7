//! The transport's length-prefixed frame reader (`relay::transport::frame`) on a stream that
//! delivers the input in pieces of the sizes the first byte sets, under the limit the second
//! byte sets: every frame read is within the limit and is a piece of the input, an oversized
//! length is refused before anything is allocated, and the frames read write back to the same
//! bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shouwang_relay::transport::frame::{FrameReader, HEADER_LEN, write_frame};

fuzz_target!(|data: &[u8]| {
    let [piece, limit, stream @ ..] = data else {
        return;
    };
    let piece = usize::from(*piece % 16) + 1;
    let max = usize::from(*limit) * 64;
    shouwang_fuzz::block_on(async {
        let mut reader = shouwang_fuzz::Pieces::new(stream, piece);
        let mut frames = FrameReader::new(max);
        let mut read = Vec::new();
        let mut consumed = 0;
        loop {
            match frames.next(&mut reader).await {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max, "a frame over the limit was read");
                    consumed += HEADER_LEN + frame.len();
                    read.push(frame);
                }
                Ok(None) => {
                    assert_eq!(consumed, stream.len(), "a clean end before the input's end");
                    break;
                }
                Err(_) => break,
            }
        }
        let mut written = Vec::new();
        for f in &read {
            write_frame(&mut written, f, max).await.ok();
        }
        assert_eq!(
            &written[..],
            &stream[..written.len()],
            "frames write back the same"
        );
    });
});
