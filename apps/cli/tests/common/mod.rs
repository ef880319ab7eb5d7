//! Helpers for running the real `shouwang` binary against real SQLite files in a tempdir.

// Test helpers: a failure here is a failed test, so panicking is the point.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shouwang_core::id_card::check_char;

pub const BIN: &str = env!("CARGO_BIN_EXE_shouwang");

pub mod hub;

/// Runs the binary with `args`, stdin closed, without the store environment variable.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SHOUWANG_STORE")
        .output()
        .expect("run shouwang")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

/// A path as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The elements of a JSON array.
pub fn array(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v.as_array().expect("a JSON array").clone()
}

/// A valid 18-character ID number for a birth date and sequence.
pub fn id_card(birth: &str, seq: u32) -> String {
    let body = format!("341302{birth}{seq:03}");
    format!("{body}{}", check_char(&body).expect("17 digits"))
}

/// Asserts a failure reported as exactly one Chinese line on stderr, nothing on stdout.
/// Returns the line.
pub fn assert_one_chinese_error(o: &Output, args: &[&str]) -> String {
    assert!(!o.status.success(), "{args:?} should fail");
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: one line on stderr, got {err:?}");
    let line = lines[0];
    assert!(line.starts_with("错误："), "{args:?}: {line}");
    let rest = line.trim_start_matches("错误：");
    assert!(
        rest.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "{args:?}: message should be Chinese: {line}"
    );
    assert!(stdout(o).is_empty(), "{args:?}: stdout {:?}", stdout(o));
    assert_no_english(line, args);
    line.to_owned()
}

/// Fails on English that reached a user, by the rule of `shouwang_core::error::untranslated`
/// (the one rule every crate's tests apply). The arguments the test gave (paths, names, the key
/// of a `key=value`), the commands' names and the keys a person types are the user's own words,
/// left out first.
pub fn assert_no_english(line: &str, args: &[&str]) {
    let mut given: Vec<&str> = args.to_vec();
    given.extend(
        args.iter()
            .filter_map(|a| a.split_once('=').map(|(k, _)| k)),
    );
    given.extend(cli_words());
    given.extend(shouwang_core::error::input_keys());
    // The rule also wants Chinese: `line` is checked for that by the callers that need it
    // (what is left once the arguments are out may be only punctuation).
    let english: Vec<String> = shouwang_core::error::untranslated_except(line, &given)
        .into_iter()
        .filter(|w| !w.starts_with("(no Chinese)"))
        .collect();
    assert!(
        english.is_empty(),
        "English reached the user ({english:?}): {line}\n(the test's words: {args:?})"
    );
}

/// Every command's name, found once from the binary's help.
fn cli_words() -> &'static [&'static str] {
    static WORDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let commands: &'static [Vec<String>] = Vec::leak(every_command(dir.path()));
        command_names(commands)
    })
}

/// The subcommands `path --help` lists under `命令：`, without `help`.
pub fn subcommands(dir: &Path, path: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let o = run_in(dir, &args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    let mut names = Vec::new();
    let mut listing = false;
    for line in stdout(&o).lines() {
        if line.starts_with("命令：") {
            listing = true;
        } else if listing {
            let Some(name) = line
                .strip_prefix("  ")
                .and_then(|l| l.split_whitespace().next())
            else {
                break;
            };
            if name != "help" {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// Every command path: `["class"]`, `["class", "add"]`, …
pub fn every_command(dir: &Path) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        for name in subcommands(dir, &path) {
            let mut next = path.clone();
            next.push(name);
            todo.push(next.clone());
            all.push(next);
        }
    }
    all.sort();
    all
}

/// The commands' own names, as words.
pub fn command_names(commands: &[Vec<String>]) -> Vec<&str> {
    let mut names: Vec<&str> = commands.iter().flatten().map(String::as_str).collect();
    names.push("help");
    names.sort_unstable();
    names.dedup();
    names
}

/// A school set up through the CLI: one class, a 班主任, an 爱心妈妈, three children.
pub struct School {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    /// The passphrase `device add` printed for each file it wrote: the harness plays the
    /// person who reads it off the office screen and types it at `join --bundle` (unless the
    /// test gives `--passphrase` itself).
    passphrases: std::cell::RefCell<std::collections::HashMap<String, String>>,
}

pub const CLASS: &str = "三年级(1)班";
pub const TEACHER: &str = "王瑞侠";
pub const MOTHER: &str = "刘桂兰";

impl School {
    /// An empty directory, no store yet.
    pub fn empty() -> School {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("school.db");
        School {
            dir,
            store,
            passphrases: Default::default(),
        }
    }

    /// The standard fixture.
    pub fn new() -> School {
        let s = School::empty();
        s.ok(&[
            "init-school",
            "--plain",
            "--name",
            "郭庄小学",
            "--town",
            "丁里镇",
            "--hotline",
            "0564-4552466",
            "--admin",
            "陶淑芬",
        ]);
        s.ok(&["class", "add", CLASS]);
        s.ok(&[
            "member",
            "add",
            TEACHER,
            "--role",
            "班主任",
            "--class",
            CLASS,
            "--phone",
            "13900001111",
        ]);
        s.ok(&["member", "add", MOTHER, "--role", "爱心妈妈"]);
        let csv = format!(
            "学籍号,姓名,性别,出生日期,身份证号,班级,监护人,与监护人关系,联系电话,外出务工\n\
             G001,王小雨,女,2017-03-05,{},{CLASS},王桂英,奶奶,13800001111,父母\n\
             G002,李明,男,2016-11-02,{},{CLASS},李建国,爷爷,13800002222,父亲\n\
             G003,陈思涵,女,2017-06-18,{},{CLASS},陈丽,母亲,13800003333,父亲\n",
            id_card("20170305", 2),
            id_card("20161102", 11),
            id_card("20170618", 4),
        );
        let roster = s.path("roster.csv");
        std::fs::write(&roster, csv).expect("write roster");
        s.ok(&["roster", "import", roster.to_str().expect("utf-8 path")]);
        s.ok(&["pair", "--carer", MOTHER, "--child", "王小雨"]);
        s
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs against this school's store (or `store` if given).
    pub fn run_on(&self, store: &Path, args: &[&str]) -> Output {
        let mut all = vec!["--store", store.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        let value_of = |flag: &str| {
            args.iter()
                .position(|a| *a == flag)
                .and_then(|i| args.get(i + 1))
                .map(|v| (*v).to_owned())
        };
        let typed = match (args.first(), value_of("--bundle")) {
            (Some(&"join"), Some(file)) if value_of("--passphrase").is_none() => {
                self.passphrases.borrow().get(&file).cloned()
            }
            _ => None,
        };
        if let Some(p) = &typed {
            all.extend_from_slice(&["--passphrase", p]);
        }
        let o = run_in(self.dir.path(), &all);
        if args.starts_with(&["device", "add"])
            && let Some(out) = value_of("--out")
        {
            let text = stdout(&o);
            let pass = text
                .lines()
                .find_map(|l| l.strip_prefix("口令："))
                .map(str::to_owned)
                .or_else(|| {
                    serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["passphrase"].as_str().map(str::to_owned))
                });
            if let Some(p) = pass {
                self.passphrases.borrow_mut().insert(out, p);
            }
        }
        o
    }

    /// The passphrase `device add` printed for the file `out`.
    pub fn passphrase(&self, out: &Path) -> String {
        self.passphrases.borrow()[arg(out)].clone()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_on(&self.store, args)
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok_on(&self, store: &Path, args: &[&str]) -> String {
        let o = self.run_on(store, args);
        assert!(
            o.status.success(),
            "{args:?} failed: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_on(&self.store, args)
    }

    /// Runs with `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// The bytes of the store file.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.store).expect("read store")
    }

    /// The file names in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The id of a child by name.
    pub fn child_id(&self, name: &str) -> String {
        let list = self.json(&["children"]);
        list.as_array()
            .expect("array")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no child {name}"))["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }
}

/// Runs `shouwang args…` under `script`, which gives it a terminal, feeding `input`.
/// `None` where `script` (util-linux) is not installed.
pub fn at_a_terminal(s: &School, args: &[&str], input: &str) -> Option<Output> {
    use std::io::Write;
    use std::process::Stdio;
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let mut line = vec![quote(BIN), "--store".into(), quote(arg(&s.store))];
    line.extend(args.iter().map(|a| quote(a)));
    // The input is written at once; with the terminal's echo on, it would be echoed wherever
    // it arrives, in the middle of a prompt on a busy machine. Off before the command starts,
    // so the output holds what the command printed alone.
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!("stty -echo; {}", line.join(" ")),
            "/dev/null",
        ])
        .env_remove("SHOUWANG_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}
