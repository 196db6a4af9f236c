//! The repository reader: names, versions, ACTIVE and HISTORY, missing
//! and oversize files.

use super::active::{read_history, HISTORY_MAX};
use super::*;
use std::fs;

/// A fresh directory for one test.
fn temp_repo(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cx-repo-unit-{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A version directory with the bundled model and catalog.
fn version(root: &Path, name: &str, version: &str) -> PathBuf {
    let dir = root.join(name).join(version);
    fs::create_dir_all(&dir).expect("version dir");
    fs::write(dir.join(MODEL_FILE), cx_engine::DEFAULT_MODEL_BYTES).expect("model");
    fs::write(dir.join(CATALOG_FILE), cx_engine::DEFAULT_CATALOG_TOML).expect("catalog");
    dir
}

fn message(e: Error) -> String {
    crate::error::render_chain(&e)
}

#[test]
fn names_that_could_leave_the_repository_are_refused() {
    for bad in [
        "", ".", "..", "../x", "a/b", ".hidden", "-x", "a b", "é", "a\0",
    ] {
        let e = check_name("bundle", bad).expect_err(bad);
        assert!(message(e).contains("bundle"), "{bad}");
    }
    let long = "a".repeat(NAME_BYTES_MAX + 1);
    assert!(check_name("version", &long).is_err());
    for good in [
        "ctr",
        "v1",
        "1.2.3",
        "2026-01-01_a",
        &"a".repeat(NAME_BYTES_MAX),
    ] {
        check_name("version", good).expect(good);
    }
    let root = temp_repo("names");
    let repo = Repository::open(&root).expect("repo");
    let e = repo
        .load("..", "1", &DecideConfig::default())
        .expect_err("traversal");
    assert!(message(e).contains("must start with"), "refused by name");
    let e = repo.version_dir("ctr", "../../etc").expect_err("traversal");
    assert!(message(e).contains("version \"../../etc\" must start with"));
}

#[test]
fn versions_sort_numerically_and_the_highest_is_active_without_active() {
    assert_eq!(compare_versions("2", "10"), Ordering::Less);
    assert_eq!(compare_versions("1.9", "1.10"), Ordering::Less);
    assert_eq!(compare_versions("1.10", "1.10.1"), Ordering::Less);
    assert_eq!(compare_versions("10", "a"), Ordering::Less);
    let root = temp_repo("order");
    for v in ["2", "10", "1"] {
        version(&root, "ctr", v);
    }
    fs::create_dir_all(root.join("ctr").join(".partial")).expect("dir");
    let repo = Repository::open(&root).expect("repo");
    assert_eq!(repo.versions("ctr").expect("versions"), ["1", "2", "10"]);
    assert_eq!(repo.active_version("ctr").expect("active"), "10");
    assert_eq!(repo.only_bundle().expect("one"), "ctr");
    let bundle = repo
        .load_active("ctr", &DecideConfig::default())
        .expect("loads");
    assert_eq!(
        (bundle.name.as_str(), bundle.version.as_str()),
        ("ctr", "10")
    );
    assert_eq!(bundle.catalog.len(), 16);
    assert!(bundle.fallback.is_none() && bundle.decide.is_none());
}

#[test]
fn active_pointing_nowhere_is_an_error_naming_it() {
    let root = temp_repo("nowhere");
    version(&root, "ctr", "1");
    let repo = Repository::open(&root).expect("repo");
    fs::write(root.join("ctr").join(ACTIVE_FILE), "7\n").expect("write");
    let e = repo.active_version("ctr").expect_err("no version 7");
    assert!(message(e).contains("no version \"7\""));
    fs::write(root.join("ctr").join(ACTIVE_FILE), "../1\n").expect("write");
    let e = repo.active_version("ctr").expect_err("not a name");
    assert!(message(e).contains("ACTIVE"));
    fs::write(root.join("ctr").join(ACTIVE_FILE), " 1 \n").expect("write");
    assert_eq!(repo.active_version("ctr").expect("trimmed"), "1");
}

#[test]
fn missing_and_bad_files_are_named() {
    let root = temp_repo("missing");
    let dir = version(&root, "ctr", "1");
    let repo = Repository::open(&root).expect("repo");
    let base = DecideConfig::default();

    fs::remove_file(dir.join(CATALOG_FILE)).expect("rm");
    let e = repo.load("ctr", "1", &base).expect_err("no catalog");
    assert!(message(e).contains("catalog.toml is missing"));
    fs::write(dir.join(CATALOG_FILE), "[[offer]]\nid = 1\n").expect("write");
    let e = message(repo.load("ctr", "1", &base).expect_err("bad catalog"));
    assert!(e.contains("catalog"), "{e}");
    fs::write(dir.join(CATALOG_FILE), cx_engine::DEFAULT_CATALOG_TOML).expect("write");

    fs::remove_file(dir.join(MODEL_FILE)).expect("rm");
    let e = repo.load("ctr", "1", &base).expect_err("no model");
    assert!(message(e).contains("model.safetensors is missing"));
    fs::write(dir.join(MODEL_FILE), cx_engine::DEFAULT_MODEL_BYTES).expect("write");

    fs::write(dir.join(DECIDE_FILE), "[decide]\ntop_k = 3\n").expect("write");
    let loaded = repo.load("ctr", "1", &base).expect("overrides");
    let decide = loaded.decide.expect("decide");
    assert_eq!(decide.top_k, 3);
    assert_eq!(decide.weights, base.weights, "the rest is the server's");
    fs::write(dir.join(DECIDE_FILE), "[decide]\ntop_kk = 3\n").expect("write");
    let e = message(repo.load("ctr", "1", &base).expect_err("unknown key"));
    assert!(e.contains("top_kk"), "{e}");
    fs::write(dir.join(DECIDE_FILE), "[decide]\ntop_k = 0\n").expect("write");
    assert!(repo.load("ctr", "1", &base).is_err(), "out of range");
    fs::write(dir.join(DECIDE_FILE), "seed = 1\n").expect("write");
    assert!(repo.load("ctr", "1", &base).is_err(), "only [decide]");
    fs::write(
        dir.join(DECIDE_FILE),
        vec![b'#'; DECIDE_BYTES_MAX as usize + 1],
    )
    .expect("write");
    let e = repo.load("ctr", "1", &base).expect_err("too large");
    assert!(message(e).contains("more than the limit"));

    assert!(Repository::open(&root.join("nope")).is_err());
    let e = repo.versions("other").expect_err("no bundle");
    assert!(message(e).contains("bundle \"other\" is not in repository"));
    fs::create_dir_all(root.join("empty")).expect("dir");
    let e = repo.active_version("empty").expect_err("no version");
    assert!(message(e).contains("has no version"));
    let e = repo.only_bundle().expect_err("two bundles");
    assert!(message(e).contains("--bundle"));
}

#[test]
fn activate_and_rollback_keep_a_bounded_history() {
    let root = temp_repo("history");
    for v in ["1", "2", "3"] {
        version(&root, "ctr", v);
    }
    let repo = Repository::open(&root).expect("repo");
    let bundle = root.join("ctr");
    let e = repo.rollback("ctr").expect_err("nothing before");
    assert!(message(e).contains("no earlier version"));

    let a = repo.activate("ctr", "1").expect("activate");
    assert_eq!((a.from.as_str(), a.to.as_str()), ("3", "1"));
    repo.activate("ctr", "2").expect("activate");
    assert_eq!(read_history(&bundle).expect("history"), ["3", "1"]);
    assert!(repo.activate("ctr", "9").is_err(), "no such version");
    assert_eq!(repo.active_version("ctr").expect("active"), "2");

    let back = repo.rollback("ctr").expect("rollback");
    assert_eq!((back.from.as_str(), back.to.as_str()), ("2", "1"));
    assert_eq!(repo.active_version("ctr").expect("active"), "1");
    assert_eq!(read_history(&bundle).expect("history"), ["3"]);
    let back = repo.rollback("ctr").expect("rollback");
    assert_eq!(back.to, "3");
    assert!(repo.rollback("ctr").is_err(), "history used up");

    for _ in 0..HISTORY_MAX {
        repo.activate("ctr", "1").expect("activate");
        repo.activate("ctr", "2").expect("activate");
    }
    assert_eq!(read_history(&bundle).expect("history").len(), HISTORY_MAX);
    let leftovers: Vec<_> = fs::read_dir(&bundle)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file stays behind");
}
