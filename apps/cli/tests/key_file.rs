//! `--key-file`: the office opens the hub's encrypted `hub.db` with the hub's data key; without
//! it, or with another key, the store is refused in one Chinese line and nothing changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{arg, assert_one_chinese_error, run_in, stdout};

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
