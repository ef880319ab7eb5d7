//! Handshake frames (`relay::handshake`): the decoder (a decoded frame re-encodes to the same
//! message), and a device's enrollment and greeting fed the frames a hub (or anyone who
//! answers) sends: the invite's school key must sign the certificate, bound to this device.
//! The first byte picks the conversation; the rest is the hub's frames
//! (`shouwang_fuzz::split_frames`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shouwang_core::membership::DeviceKey;
use shouwang_fuzz::{NOW, World, split_frames};
use shouwang_relay::handshake::{Enrollment, Greeting, Message};
use shouwang_relay::transport::Conversation;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let world = World::get();
    let frames = split_frames(rest);
    for f in &frames {
        if let Ok(m) = Message::decode(f) {
            let again = Message::decode(&m.encode());
            if matches!(m, Message::Refused(_)) {
                // A refusal's reason is cut to 1 KiB and made valid UTF-8 (a cut character
                // becomes U+FFFD, longer): it need not come back the same, only decode.
                assert!(again.is_ok(), "a decoded refusal re-encodes");
            } else {
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&m),
                    "a decoded frame re-encodes the same"
                );
            }
        }
    }
    let device = shouwang_fuzz::device_endpoint();
    let mut conv: Box<dyn Conversation> = match mode % 2 {
        0 => Box::new(Enrollment::new(world.invite(), device, NOW)),
        _ => Box::new(Greeting::new(
            &world.certificate(DeviceKey(*device.as_bytes())),
        )),
    };
    if conv.opening().is_err() {
        return;
    }
    for f in frames {
        if conv.on_frame(f).is_err() {
            return;
        }
    }
});
