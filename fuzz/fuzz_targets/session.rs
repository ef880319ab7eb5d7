//! A sync `Session` receiving a peer's frames against a real store (a SQLite file in a
//! temporary directory): the office's session with 刘桂兰's device as the hub makes it (her
//! scope, her device held to its own changes; by the input's second bit, her device syncing
//! once, as the hub treats a device that has not said `Live`), or, by the input's first bit,
//! her phone's session with the office met directly. The input is the peer's frames
//! (`shouwang_fuzz::split_frames`), each with the checksums of the automerge chunks inside and
//! its own check made right (`with_automerge_checksums`, `with_sync_check`: a damaged check is
//! the `wire_frame` target's). A frame that is refused ends the session with
//! an error and leaves the store as it was before that frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shouwang_core::sync::Event;
use shouwang_fuzz::{World, fingerprint, split_frames, with_automerge_checksums, with_sync_check};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let world = World::get();
    let (mut opened, mut session) = if mode & 1 == 0 {
        let mut o = world.open_admin();
        let s = world.office_session(&mut o.archive);
        let s = if mode & 2 == 0 { s } else { s.one_shot_peer() };
        (o, s)
    } else {
        let mut o = world.open_mother();
        let s = world.mother_session(&mut o.archive);
        (o, s)
    };
    let store = opened.archive.store();
    if session.handle(store, Event::Start).is_err() {
        return;
    }
    for frame in split_frames(rest) {
        let before = fingerprint(&mut opened.archive);
        let frame = with_sync_check(&with_automerge_checksums(frame));
        let result = session.handle(opened.archive.store(), Event::Frame(&frame));
        if result.is_err() {
            assert_eq!(
                before,
                fingerprint(&mut opened.archive),
                "a refused frame changed the store"
            );
            return;
        }
    }
    let _ = session.handle(opened.archive.store(), Event::Poll);
});
