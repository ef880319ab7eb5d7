//! What the user sees when automerge (or calamine, reading a roster) panics on hostile bytes:
//! no English panic text from the default hook, only the Chinese error (`crate::panics`). The
//! work runs in a child process (this test binary again, running `peer_panic_child` alone with
//! its output not captured), since libtest captures a panic message printed inside a test.

#![allow(clippy::unwrap_used)]

use super::*;

const CHILD: &str = "SHOUWANG_PEER_PANIC_CHILD";

/// Runs one test of this binary in a child process; returns its stderr.
fn run_child(test: &str, mode: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{test} failed: {stderr}{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The child: merges a document that makes automerge panic (mode `panic`) or bytes automerge
/// refuses with its own English error (mode `refused`), and prints the error as the CLI
/// does. In mode `elsewhere` it then panics outside `from_peer` (caught here), which must
/// still be printed.
#[test]
fn peer_panic_child() {
    let Some(mode) = std::env::var_os(CHILD) else {
        return;
    };
    let dir = tempfile::TempDir::new().unwrap();
    let mut a = tests::school(dir.path());
    let bytes = hex::decode(tests::HEXANE_PANIC.concat()).unwrap();
    let err = if mode == "roster" {
        // calamine panics on this .xlsx in a build with overflow checks (the fuzz build's
        // find; a test build has them too): the roster catches it.
        let path = dir.path().join("名单.xlsx");
        std::fs::write(
            &path,
            include_bytes!("../../testdata/roster-cell-reference-overflow.xlsx"),
        )
        .unwrap();
        crate::roster::read_file(&path).unwrap_err()
    } else if mode == "refused" {
        // A sync message automerge cannot decode, as a session decodes a peer's.
        from_peer(&DocId::School, || automerge::sync::Message::decode(&bytes)).unwrap_err()
    } else {
        a.store()
            .write(|b| b.merge_bytes(&DocId::School, &bytes))
            .unwrap_err()
    };
    eprintln!("错误：{err}");
    if mode == "elsewhere" {
        let caught = std::panic::catch_unwind(|| panic!("a bug elsewhere"));
        assert!(caught.is_err());
    }
}

/// True if `text` holds a run of two or more ASCII words (English prose), e.g.
/// "thread 'x' panicked at", "invalid magic bytes".
fn has_english(text: &str) -> bool {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() > 1)
        .collect();
    !words.is_empty()
}

#[test]
fn a_caught_automerge_panic_prints_only_the_chinese_error() {
    let err = run_child("store::panic_output::peer_panic_child", "panic");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("错误：文件已损坏"), "{err}");
    assert!(lines[0].contains("学校信息"), "{err}");
    assert!(!has_english(lines[0]), "{err}");
}

#[test]
fn automerges_own_error_reaches_the_user_in_chinese() {
    let err = run_child("store::panic_output::peer_panic_child", "refused");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("错误：文件已损坏"), "{err}");
    assert!(!has_english(lines[0]), "{err}");
}

#[test]
fn a_caught_calamine_panic_prints_only_the_chinese_error() {
    let err = run_child("store::panic_output::peer_panic_child", "roster");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("错误：名单文件"), "{err}");
    assert!(!has_english(lines[0]), "{err}");
}

#[test]
fn a_panic_elsewhere_is_still_printed() {
    let err = run_child("store::panic_output::peer_panic_child", "elsewhere");
    assert!(err.contains("a bug elsewhere"), "{err}");
    assert!(err.contains("panicked"), "{err}");
    assert_eq!(err.matches("panicked").count(), 1, "{err}");
}
