//! Invite and certificate decoding (`core::membership`): the text forms a person pastes or
//! scans (`shouwang1…`, `shouwangc1…`) and the binary forms inside them and inside handshake
//! frames. The first byte picks the decoder. A decoded invite or certificate encodes to the
//! same text and decodes back equal; a certificate is then checked against the school key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shouwang_core::membership::{Certificate, Invite};
use shouwang_fuzz::{NOW, World};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 4 {
        0 => {
            if let Ok(invite) = Invite::decode(&text) {
                let _ = invite.check_valid(NOW);
                let _ = shouwang_relay::handshake::hub_addr(&invite);
                let again = invite.encode().and_then(|t| Invite::decode(&t));
                assert_eq!(again.ok().as_ref(), Some(&invite), "an invite round-trips");
            }
        }
        1 => {
            if let Ok(invite) = Invite::from_bytes(rest) {
                let again = invite.to_bytes().and_then(|b| Invite::from_bytes(&b));
                assert_eq!(again.ok().as_ref(), Some(&invite), "an invite round-trips");
            }
        }
        2 => {
            if let Ok(cert) = Certificate::decode(&text) {
                check(&cert);
                let again = Certificate::decode(&cert.encode());
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&cert),
                    "a certificate round-trips"
                );
            }
        }
        _ => {
            if let Ok(cert) = Certificate::from_bytes(rest) {
                check(&cert);
                let again = Certificate::from_bytes(&cert.to_bytes());
                assert_eq!(
                    again.ok().as_ref(),
                    Some(&cert),
                    "a certificate round-trips"
                );
            }
        }
    }
});

fn check(cert: &Certificate) {
    let world = World::get();
    let _ = cert.verify(
        &world.school,
        &world.school_key.public(),
        &cert.body().device,
        NOW,
    );
}
