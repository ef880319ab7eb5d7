//! `--key-file`: the office opens the hub's encrypted `hub.db` with the hub's data key; without
//! it, or with another key, the store is refused in one Chinese line and nothing changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{arg, assert_one_chinese_error, run_in, stdout};

/// `init-school` with a `--key-file` that does not exist yet: the office's own archive (the
/// school secret, every 身份证号) is encrypted at rest from its first byte, under a new key
/// written to that file, readable by its owner only. Later commands open it with the same
/// `--key-file` and refuse without it. An `init-school` that fails leaves neither file, and one
/// with neither `--key-file` nor `--plain` is refused.
#[test]
fn a_school_made_with_a_new_key_file_is_encrypted_from_the_start() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("office.db");
    let key = dir.path().join("office.key");
    let init = |admin: &str| {
        [
            "--store",
            arg(&db),
            "--key-file",
            arg(&key),
            "init-school",
            "--name",
            "郭庄小学",
            "--town",
            "丁里镇",
            "--admin",
            admin,
        ]
        .map(str::to_owned)
    };
    // Without a key file the office's archive is not made, unless asked for plain in so many
    // words (`--plain`): it would hold every 身份证号 in the clear.
    let unkeyed = [
        "--store",
        arg(&db),
        "init-school",
        "--name",
        "郭庄小学",
        "--town",
        "丁里镇",
        "--admin",
        "张长友",
    ];
    let line = assert_one_chinese_error(&run_in(dir.path(), &unkeyed), &unkeyed);
    assert!(
        line.contains("--key-file") && line.contains("加密"),
        "{line}"
    );
    assert!(!db.exists(), "nothing written");
    // A bad one first: nothing is left.
    let bad = init("   ");
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    assert_one_chinese_error(&run_in(dir.path(), &bad), &bad);
    assert!(!key.exists() && !db.exists());

    let good = init("张长友");
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let out = run_in(dir.path(), &good);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(stdout(&out).contains("--key-file"), "{}", stdout(&out));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o077,
        0,
        "the key file is its owner's only"
    );
    let header = std::fs::read(&db).unwrap();
    assert!(!header.starts_with(b"SQLite format 3"), "a plain store");

    let add = [
        "--store",
        arg(&db),
        "--key-file",
        arg(&key),
        "class",
        "add",
        "一年级(1)班",
    ];
    let out = run_in(dir.path(), &add);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let no_key = ["--store", arg(&db), "class", "list"];
    let line = assert_one_chinese_error(&run_in(dir.path(), &no_key), &no_key);
    assert!(line.contains("--key-file"), "{line}");
}

#[test]
fn the_office_opens_the_hubs_encrypted_archive_with_its_key_file_and_only_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = shouwang_tests::fixtures::small_hub(dir.path());
    let db = data.archive();
    let key = dir.path().join("hub.key");
    assert!(
        key.exists(),
        "the hub's data key lives beside its data directory"
    );

    let list = [
        "--store",
        arg(&db),
        "--key-file",
        arg(&key),
        "class",
        "list",
    ];
    let out = run_in(dir.path(), &list);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(stdout(&out).contains("三年级(1)班"), "{}", stdout(&out));

    // A write goes into the encrypted archive, and the hub reads it back.
    let add = [
        "--store",
        arg(&db),
        "--key-file",
        arg(&key),
        "class",
        "add",
        "四年级(2)班",
    ];
    let out = run_in(dir.path(), &add);
    assert!(out.status.success(), "{}", common::stderr(&out));
    data.open_archive()
        .unwrap()
        .find_class("四年级(2)班")
        .unwrap();

    let before = std::fs::read(&db).unwrap();
    let no_key = ["--store", arg(&db), "class", "list"];
    let line = assert_one_chinese_error(&run_in(dir.path(), &no_key), &no_key);
    assert!(line.contains("--key-file"), "{line}");
    let wrong = dir.path().join("wrong.key");
    shouwang_relay::keyfile::create(&wrong, &[9; 32]).unwrap();
    let wrong_key = [
        "--store",
        arg(&db),
        "--key-file",
        arg(&wrong),
        "class",
        "list",
    ];
    let line = assert_one_chinese_error(&run_in(dir.path(), &wrong_key), &wrong_key);
    assert!(line.contains("密钥不对"), "{line}");
    let missing = dir.path().join("missing.key");
    let no_file = [
        "--store",
        arg(&db),
        "--key-file",
        arg(&missing),
        "class",
        "list",
    ];
    let line = assert_one_chinese_error(&run_in(dir.path(), &no_file), &no_file);
    assert!(line.contains("找不到密钥文件"), "{line}");
    assert!(!missing.exists());
    assert_eq!(std::fs::read(&db).unwrap(), before);
}
