//! Bundle files: decoding and importing. The first byte picks the path:
//! - 0: the bytes are a file handed to the office (`Archive::import_bundle`: age, the
//!   signature, the bundle inside, admission);
//! - 1: the bytes are a bundle's entries (the checksums of the automerge chunks in them made
//!   right, `with_automerge_checksums`): wrapped as `Bundle::encode` would
//!   (`shouwang_fuzz::bundle_around`: compressed, checksummed), decoded, then sealed by
//!   刘桂兰's device to the office's and imported, so whatever decodes reaches the import's
//!   scope checks and the trust rules as it would from a real file;
//! - 2: the entries of the plain bundle a hub sends at enrollment (`Archive::join_enrolled`
//!   into a new store);
//! - 3: the bytes are a plain bundle as they come (`Bundle::decode`: header, checksum);
//! - 4: a file from the office to 刘桂兰's phone listing *held documents* taken from the input
//!   (a count, then per document a pick of the world's documents and up to three change
//!   hashes), the rest being entries as in 1: sealed by the office's device to hers and
//!   imported there, so what the claims do (`record_held`, the purge after) is reached.
//!
//! A refused file changes nothing; a refused join leaves no store.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shouwang_core::Archive;
use shouwang_core::archive::JoinOptions;
use shouwang_core::bundle::seal::{self, Lock};
use shouwang_core::bundle::{Bundle, Held};
use shouwang_fuzz::{
    World, bundle_around, enrolled_device_id, fingerprint, with_automerge_checksums,
};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let world = World::get();
    let school = world.school.as_str();
    // Entries carry automerge chunks: their checksums made right, changes reach the merge.
    let entries = with_automerge_checksums(rest);
    match mode % 5 {
        0 => import(world, rest),
        1 => {
            let Ok(bundle) = Bundle::decode(&bundle_around(school, None, &entries)) else {
                return;
            };
            round_trip(&bundle);
            let keys = [world.admin_device];
            let signer = world.mother_secret();
            if let Ok(file) = seal::seal(&bundle, &signer, None, Lock::Devices(&keys)) {
                import(world, &file);
            }
        }
        2 => {
            let device = enrolled_device_id();
            let plain = bundle_around(school, Some(device.as_str()), &entries);
            let Ok(dir) = tempfile::TempDir::new() else {
                return;
            };
            let path = dir.path().join("shouwang.db");
            let options = JoinOptions {
                key: None,
                meta: &[],
                shared_with: Some("hub"),
            };
            if Archive::join_enrolled(&path, &plain, world.mother.id.as_str(), &options).is_err() {
                assert!(!path.exists(), "a refused join left a store behind");
            }
        }
        3 => {
            if let Ok(bundle) = Bundle::decode(rest) {
                round_trip(&bundle);
            }
        }
        _ => held_from_the_office(world, rest),
    }
});

fn round_trip(bundle: &Bundle) {
    if let Ok(again) = bundle.encode() {
        let twice = Bundle::decode(&again).map(|b| b.encode().ok());
        assert_eq!(
            twice.ok().flatten(),
            Some(again),
            "a bundle re-encodes the same"
        );
    }
}

/// Mode 4: held documents read from the front of `rest`, entries from the rest.
fn held_from_the_office(world: &World, rest: &[u8]) {
    let docs = world.doc_ids();
    let (count, mut rest) = rest.split_first().map_or((0, rest), |(n, r)| (*n, r));
    let mut held = Vec::new();
    for _ in 0..(count % 4) + 1 {
        let [pick, hashes, tail @ ..] = rest else {
            return;
        };
        let mut changes = Vec::new();
        let mut tail = tail;
        for _ in 0..hashes % 4 {
            let Some((hash, more)) = tail.split_first_chunk::<32>() else {
                return;
            };
            changes.push(automerge::ChangeHash(*hash));
            tail = more;
        }
        held.push(Held {
            doc: docs[usize::from(*pick) % docs.len()].clone(),
            changes,
        });
        rest = tail;
    }
    let entries = with_automerge_checksums(rest);
    let Ok(mut bundle) = Bundle::decode(&bundle_around(world.school.as_str(), None, &entries))
    else {
        return;
    };
    bundle.held = held;
    round_trip(&bundle);
    let keys = [world.mother_device];
    if let Ok(file) = seal::seal(&bundle, &world.admin_secret(), None, Lock::Devices(&keys)) {
        import_into(world.open_mother(), &file);
    }
}

fn import(world: &World, file: &[u8]) {
    import_into(world.open_admin(), file);
}

fn import_into(mut opened: shouwang_fuzz::Opened, file: &[u8]) {
    let before = fingerprint(&mut opened.archive);
    if opened.archive.import_bundle(file).is_err() {
        assert_eq!(
            before,
            fingerprint(&mut opened.archive),
            "a refused file changed the store"
        );
    }
}
