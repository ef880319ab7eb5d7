//! An automerge document (or changes) another device sent, merged through the store's admission
//! path (`Batch::merge_bytes`, as a bundle or a `Changes` frame would), so the trust rules
//! judge every change: the first byte picks the document (`World::doc_ids`) and, by its high
//! bit, whether the automerge chunks' checksums are made right first
//! (`with_automerge_checksums`, so changes reach automerge's decoder and the rules); the rest
//! is what 刘桂兰's device sent. Bytes automerge cannot load are an error and change nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shouwang_fuzz::{World, fingerprint, with_automerge_checksums};

fuzz_target!(|data: &[u8]| {
    let Some((pick, bytes)) = data.split_first() else {
        return;
    };
    let world = World::get();
    let docs = world.doc_ids();
    let doc = &docs[usize::from(*pick & 0x7f) % docs.len()];
    let fixed;
    let bytes = if pick & 0x80 == 0 {
        fixed = with_automerge_checksums(bytes);
        &fixed[..]
    } else {
        bytes
    };
    let mut opened = world.open_admin();
    let before = fingerprint(&mut opened.archive);
    let result = opened.archive.store().write(|b| {
        b.set_source("fuzz");
        b.set_sender(world.mother_sender());
        b.merge_bytes(doc, bytes)
    });
    if result.is_err() {
        assert_eq!(
            before,
            fingerprint(&mut opened.archive),
            "a refused merge changed the store"
        );
    }
});
