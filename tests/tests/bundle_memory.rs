//! What opening a sealed bundle file holds in memory: this test process's peak RSS (`VmHWM`,
//! reset just before), read from `/proc`. One test in this binary, so nothing else runs beside
//! the measure.
//!
//! A file travels over 微信 or a USB stick, so anyone may seal one to this device's public key
//! (it is in the school document): its bytes are decrypted and the signature checked before
//! the signer is asked about, so what that costs is what any stranger's file costs.
#![allow(clippy::unwrap_used)]

use shouwang_core::bundle::seal::{self, Lock, Unlock};
use shouwang_core::bundle::{Bundle, Entry};
use shouwang_core::device_key::DeviceSecret;
use shouwang_core::doc::DocId;
use shouwang_core::ids::{ChildId, SchoolId};
use shouwang_tests::hub_process::{reset_peak, status_kb};

/// A stranger's file of about `size` bytes, sealed to `to`.
fn strangers_file(to: &DeviceSecret, size: usize) -> Vec<u8> {
    // Not compressible, as an honest file's automerge columns mostly are not either.
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in &mut data {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let bundle = Bundle {
        school: SchoolId::from("s1"),
        device: None,
        entries: vec![Entry {
            doc: DocId::Child(ChildId("0123456789abcdef".into())),
            heads: Vec::new(),
            data,
        }],
        held: Vec::new(),
    };
    seal::seal(
        &bundle,
        &DeviceSecret::generate(),
        None,
        Lock::Devices(&[to.public()]),
    )
    .unwrap()
}

/// Runs the test again in a process of its own whose large allocations are mapped and
/// unmapped (glibc otherwise raises its mmap threshold after the first large free and keeps
/// freed memory resident: what sealing the file used would then hide what opening it uses).
fn in_own_process(test: &str) -> bool {
    const KNOB: &str = "MALLOC_MMAP_THRESHOLD_";
    if std::env::var_os(KNOB).is_some() {
        return false;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(KNOB, "131072")
        .status()
        .unwrap();
    assert!(status.success(), "the measuring process failed");
    true
}

#[test]
fn a_stranger_s_file_is_decrypted_once_and_not_copied_to_check_its_signature() {
    if in_own_process("a_stranger_s_file_is_decrypted_once_and_not_copied_to_check_its_signature") {
        return;
    }
    let size = 16 << 20;
    let me = DeviceSecret::generate();
    let file = strangers_file(&me, size);
    assert!(
        reset_peak("self"),
        "this kernel does not let a process reset its peak RSS"
    );
    let before = status_kb("self", "VmRSS");
    let refused = seal::open_signed_by(&file, Unlock::Device(&me), |_, _| {
        Err(shouwang_core::Error::NotPermitted(
            "不是本校登记的设备".into(),
        ))
    });
    let peak = status_kb("self", "VmHWM").saturating_sub(before);
    assert!(refused.is_err(), "a stranger's file was opened");
    let size_kb = (size >> 10) as u64;
    assert!(
        peak > size_kb / 2,
        "the measure saw the decrypted bytes: {peak} kB"
    );
    // The decrypted bytes once (the file itself was held before), and not a second copy to
    // check the signature over.
    assert!(
        peak < size_kb + size_kb / 4,
        "opening a {size_kb} kB file held {peak} kB more"
    );
}
