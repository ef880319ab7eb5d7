//! Running the real binaries from a test: `shouwang-relay` (this crate's) and the phone's
//! `shouwang` from the same target directory (`cargo test --workspace` builds both).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The server binary Cargo built for this test.
pub const BIN: &str = env!("CARGO_BIN_EXE_shouwang-relay");

/// The phone's CLI, beside the server binary.
pub fn phone_bin() -> PathBuf {
    let bin = Path::new(BIN).parent().unwrap().join("shouwang");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p shouwang-cli, or cargo test --workspace)",
        bin.display()
    );
    bin
}

/// Runs `bin` with `args`, no store or config from the environment, no input.
pub fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env_remove("SHOUWANG_STORE")
        .env_remove("SHOUWANG_RELAY_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The standard output of a command that must succeed.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one Chinese error line of a command that must fail, held to the rule every crate's
/// tests apply (`shouwang_core::error::untranslated`: no English reaches the user).
pub fn refused(out: Output) -> String {
    assert!(!out.status.success(), "expected a refusal");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("错误："), "{err}");
    let words = operator_words();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let english = shouwang_core::error::untranslated_except(&err, &words);
    assert!(
        english.is_empty(),
        "English reached the user ({english:?}): {err}"
    );
    err
}

/// The operator's own words in a help or a message: the binary's and commands' names, the
/// configuration's settings the text names (`[data_key]`), and the phone's commands it points
/// to (`shouwang device list`).
pub fn operator_words() -> Vec<String> {
    let mut words = relay_commands();
    words.extend(
        [
            "data_key",
            "data_dir",
            "relay_url",
            "sync",
            "device",
            "list",
        ]
        .map(str::to_owned),
    );
    words
}

/// `shouwang-relay` and its commands' names, which its messages tell the operator to type
/// (`shouwang-relay backup 做的文件`), from its own help.
pub fn relay_commands() -> Vec<String> {
    let help = String::from_utf8(run(Path::new(BIN), &["--help"]).stdout).unwrap();
    let mut words = vec!["shouwang-relay".to_owned()];
    let listed = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:") && !l.starts_with("命令："))
        .skip(1)
        .take_while(|l| l.starts_with("  "));
    words.extend(listed.filter_map(|l| l.split_whitespace().next().map(str::to_owned)));
    assert!(words.len() > 5, "no commands in the help: {help}");
    words
}

/// `shouwang-relay --config <config> <args>`.
pub fn relay(config: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    run(Path::new(BIN), &all)
}

/// `shouwang --store <store> <args>`, which must succeed.
pub fn phone(store: &Path, args: &[&str]) -> String {
    let mut all = vec!["--store", store.to_str().unwrap()];
    all.extend_from_slice(args);
    ok(run(&phone_bin(), &all))
}

/// The ticket line of `shouwang-relay invite`'s output.
pub fn invite(config: &Path, role: &str, member: &str) -> String {
    let out = ok(relay(
        config,
        &["invite", "--role", role, "--member", member],
    ));
    out.lines()
        .find(|l| l.starts_with("shouwang1"))
        .unwrap()
        .to_owned()
}

/// Whether `haystack` holds the UTF-8 bytes of `needle`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every file under `root` with its bytes (an absent root: none).
pub fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if root.is_dir() {
        for e in std::fs::read_dir(root).unwrap() {
            out.extend(files(&e.unwrap().path()));
        }
    } else if root.exists() {
        out.push((root.to_owned(), std::fs::read(root).unwrap()));
    }
    out.sort();
    out
}
