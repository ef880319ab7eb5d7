//! No English reaches the user (issue 12): every error path of the real binary, held to the one
//! rule of `shouwang_core::error::untranslated`.
//!
//! The commands are found from the binary's own help, so a new subcommand is walked without
//! being listed here: each command (parents too: `class` without its subcommand) is run against
//! every kind of bad store, with a flag it does not know, with a key file that is not there, and
//! against a real school with no arguments. The roster files and bundles a person might hand it
//! follow in a table. `bad_input.rs`, `media.rs` (a full disk, a read-only store) and every other
//! test that calls `assert_one_chinese_error` hold their cases to the same rule, so they are not
//! repeated here.

mod common;

use std::process::Output;

use common::{
    School, arg, assert_no_english, assert_one_chinese_error, every_command, run_in, stderr, stdout,
};

/// Holds a run's output to the rule: a failure says why in Chinese, with no English. `args`
/// are the test's own words (paths), left out with the commands' names (`assert_no_english`).
fn check(o: &Output, args: &[&str]) {
    if o.status.success() {
        return;
    }
    let err = stderr(o);
    // An error line, or (a parent command without its subcommand) the command's help.
    assert!(
        err.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{args:?}: nothing in Chinese: {err}"
    );
    for line in err.lines().chain(stdout(o).lines()) {
        assert_no_english(line, args);
    }
}

#[test]
fn every_command_fails_in_chinese_on_every_kind_of_bad_store() {
    let dir = tempfile::tempdir().unwrap();
    let commands = every_command(dir.path());
    // The walk found the commands (a change to the help's layout must not make it walk none).
    for expected in [
        &["init-school"][..],
        &["class", "add"],
        &["roster", "import"],
    ] {
        assert!(
            commands.iter().any(|c| c == expected),
            "{expected:?} not found in {commands:?}"
        );
    }
    let missing = dir.path().join("none.db");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "家访名单\n王小雨\n").unwrap();
    let folder = dir.path().join("folder.db");
    std::fs::create_dir(&folder).unwrap();
    let no_key = dir.path().join("none.key");
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, "not a key").unwrap();
    let mut runs = 0;
    for command in &commands {
        // `demo` writes a school of its own wherever it is told; it has no store to be bad.
        if command[0] == "demo" {
            continue;
        }
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        for store in [&missing, &empty, &text, &folder] {
            let mut args = vec!["--store", arg(store)];
            args.extend(&command);
            check(&run_in(dir.path(), &args), &args);
            runs += 1;
        }
        for key in [&no_key, &bad_key] {
            let mut args = vec!["--store", arg(&empty), "--key-file", arg(key)];
            args.extend(&command);
            check(&run_in(dir.path(), &args), &args);
        }
        let mut args = command.clone();
        args.push("--no-such-flag");
        let o = run_in(dir.path(), &args);
        assert!(!o.status.success(), "{args:?}");
        check(&o, &args);
    }
    assert!(runs > 100, "{runs} runs");
}

#[test]
fn every_command_without_its_arguments_fails_in_chinese_on_a_real_school() {
    let s = School::new();
    let commands = every_command(s.dir.path());
    for command in &commands {
        // Without arguments these act (a demo school, a sync that waits for a peer, a hub
        // connection): what they say on failure is walked above and in their own tests.
        if matches!(command[0].as_str(), "demo" | "sync" | "nearby") {
            continue;
        }
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        check(&s.run(&args), &args);
    }
}

/// Files a person might hand `roster import` and `bundle import`: each is refused in one
/// Chinese line (what `bad_input.rs` does not already try).
#[test]
fn files_that_are_not_what_they_claim_are_named_in_chinese() {
    let s = School::new();
    let write = |name: &str, bytes: &[u8]| {
        let p = s.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let folder = s.path("名单目录.xlsx");
    std::fs::create_dir(&folder).unwrap();
    let cases = [
        write("gbk.csv", b"\xd0\xd5\xc3\xfb,\xb0\xe0\xbc\xb6\n"),
        write("empty.csv", b""),
        write("empty.xlsx", b""),
        write(
            "garbage.xls",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 not a compound file",
        ),
        write("text.xls", "姓名,班级\n".as_bytes()),
        write("garbage.ods", b"PK\x03\x04 not a zip"),
        write("名单.docx", b"PK\x03\x04"),
        write("名单", "姓名,班级\n".as_bytes()),
        s.path("不存在.xlsx"),
        folder,
    ];
    for path in &cases {
        let args = ["roster", "import", arg(path)];
        assert_one_chinese_error(&s.run(&args), &args);
    }
    for path in &cases {
        let args = ["bundle", "import", arg(path)];
        assert_one_chinese_error(&s.run(&args), &args);
    }
}

/// The school's hub is down: `sync` and `join` with a ticket to it fail in Chinese (the
/// network stack's `timed out`, `connection refused` do not reach the user), after the
/// `--connect-timeout` asked for (3 s here; 30 s by default); a timeout that is not a number of
/// seconds from 1 to 600 is refused in Chinese.
#[test]
fn a_hub_that_is_down_is_named_in_chinese() {
    use common::hub;
    use shouwang_core::roles::Role;

    let dir = tempfile::tempdir().unwrap();
    hub::init_school(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = hub::start(&rt, dir.path());
    let phone = dir.path().join("phone.db");
    hub::join(&server, &phone, "王瑞侠", Role::HeadTeacher);
    let ticket = server
        .invite("刘桂兰", Role::LoveMother, hub::now(), hub::now() + 86_400)
        .unwrap()
        .ticket;
    drop(server);
    drop(rt);
    let late = dir.path().join("late.db");
    for bad in ["0", "601", "半分钟"] {
        let all = ["--store", arg(&phone), "--connect-timeout", bad, "sync"];
        let o = run_in(dir.path(), &all);
        assert!(!o.status.success(), "{all:?}");
        check(&o, &all);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("1 到 600"),
            "{all:?}"
        );
    }
    for (store, args) in [(&phone, vec!["sync"]), (&late, vec!["join", &ticket])] {
        let mut all = vec!["--store", arg(store), "--connect-timeout", "3"];
        all.extend(args);
        let o = run_in(dir.path(), &all);
        assert!(!o.status.success(), "{all:?}");
        // `sync` says on stderr that it is connecting, then the error line.
        check(&o, &all);
    }
}
