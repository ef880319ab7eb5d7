//! No English reaches the school's operator (issue 12): `shouwang-relay`'s help and its
//! command-line mistakes, for every command found from its own help, held to the rule of
//! `shouwang_core::error::untranslated` (clap's own English is rendered in Chinese by
//! `shouwang_relay::usage`, which the phone's CLI shares).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::cli::{BIN, operator_words, refused, relay_commands, run};

fn assert_chinese(text: &str, what: &[&str]) {
    let words = operator_words();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let english = shouwang_core::error::untranslated_except(text, &words);
    assert!(
        english.is_empty(),
        "{what:?}: English ({english:?}) in {text}"
    );
}

#[test]
fn every_commands_help_and_mistakes_are_chinese() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, "").unwrap();
    let base = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        dir.path().join("hub").to_str().unwrap(),
        "--key-file",
        dir.path().join("none.key").to_str().unwrap(),
    ]
    .map(str::to_owned);
    let commands: Vec<String> = relay_commands().into_iter().skip(1).collect();
    assert!(commands.iter().any(|c| c == "invite"), "{commands:?}");
    let bin = Path::new(BIN);
    let help = run(bin, &["--help"]);
    assert!(help.status.success());
    assert_chinese(&String::from_utf8(help.stdout).unwrap(), &["--help"]);
    for command in commands.iter().filter(|c| *c != "help") {
        let args = [command.as_str(), "--help"];
        let o = run(bin, &args);
        assert!(o.status.success(), "{args:?}");
        assert_chinese(&String::from_utf8(o.stdout).unwrap(), &args);

        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend([command.as_str(), "--no-such-flag"]);
        refused(run(bin, &args));
        // Without its arguments (`serve` would serve: it is not run bare).
        if command != "serve" {
            let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
            args.push(command);
            let o = run(bin, &args);
            if !o.status.success() {
                refused(o);
            }
        }
    }
    refused(run(bin, &["不存在的命令"]));
}
