//! Child ids keyed with the school secret, on the real binary: a school made by the previous
//! release (`tests/fixtures/old-school`) is upgraded in place; its children keep their ids,
//! re-importing its roster creates nobody, and `device add` gives the secret to an
//! administrator's device only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::path::Path;

use common::*;
use shouwang_tests::fixtures::raw_store;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/old-school")
        .join(name)
}

fn ids(s: &School) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = array(&s.json(&["children"]))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

#[test]
fn an_old_school_upgraded_keeps_its_children_and_shares_the_secret_with_admins_only() {
    let s = School::empty();
    std::fs::copy(fixture("office.db"), &s.store).unwrap();
    let roster = fixture("roster.csv");
    let before = ids(&s);
    assert_eq!(before.len(), 3);
    assert!(
        !holds(&s.bytes(), "school/keys"),
        "the fixture has no secret"
    );

    for extra in [&[][..], &["--update"][..]] {
        let mut args = vec!["roster", "import", arg(&roster)];
        args.extend_from_slice(extra);
        let out = s.ok(&args);
        assert!(out.contains("新建学生档案 0 份"), "{out}");
    }
    assert_eq!(ids(&s), before);

    let mother = s.path("mother.swb");
    s.ok(&["device", "add", "--member", MOTHER, "--out", arg(&mother)]);
    let archivist = s.path("archivist.swb");
    s.ok(&[
        "device",
        "add",
        "--member",
        "晁月静",
        "--out",
        arg(&archivist),
    ]);
    let (m, a) = (s.path("mother.db"), s.path("archivist.db"));
    s.ok_on(&m, &["join", "--bundle", arg(&mother), "--member", MOTHER]);
    s.ok_on(
        &a,
        &["join", "--bundle", arg(&archivist), "--member", "晁月静"],
    );
    assert!(!holds(&raw_store(&m), "school/keys"));
    assert!(holds(&raw_store(&a), "school/keys"));

    // The archivist's laptop re-imports the same roster: still the same three children.
    let out = s.ok_on(&a, &["roster", "import", arg(&roster)]);
    assert!(out.contains("新建学生档案 0 份"), "{out}");
}
