//! What a new 班主任's phone receives at enrollment, in bytes (BENCHMARKS §14): the bundle
//! compresses its documents as a whole, from their plain columns, so it is well below what
//! the same documents take when each is saved with automerge's own deflate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use shouwang_core::bundle::Bundle;
use shouwang_core::membership::DeviceKey;
use shouwang_tests::fixtures::{HEAD_TEACHER, sync};
use shouwang_tests::workload;

#[test]
fn an_enrollment_bundle_is_smaller_than_its_documents_deflated() {
    let mut devices = workload::school_with(12);
    let mut teacher = devices.pop().unwrap();
    let mut office = devices.pop().unwrap();
    workload::year_of_history(&mut teacher.archive);
    sync(&mut office, &mut teacher);

    let bytes = office
        .archive
        .export_enrollment(HEAD_TEACHER, "hub", &DeviceKey([7; 32]), "王瑞侠的新手机")
        .unwrap();
    let bundle = Bundle::decode(&bytes).unwrap();
    assert!(
        bundle.entries.len() > 12,
        "{} documents",
        bundle.entries.len()
    );

    // The same documents, each saved as the store keeps it, then compressed together.
    let store = office.archive.store();
    let mut deflated = Vec::new();
    for e in &bundle.entries {
        let doc = store.doc(&e.doc).unwrap().unwrap();
        // What arrives is the whole document.
        let loaded = automerge::Automerge::load(&e.data).unwrap();
        assert_eq!(loaded.get_heads(), doc.get_heads(), "{}", e.doc);
        assert_eq!(e.heads, doc.get_heads(), "{}", e.doc);
        deflated.extend(doc.save());
    }
    let floor = zstd::bulk::compress(&deflated, 19).unwrap().len();
    assert!(
        bytes.len() * 10 < floor * 8,
        "the bundle is {} bytes, the deflated documents compressed {floor} bytes",
        bytes.len()
    );
}
