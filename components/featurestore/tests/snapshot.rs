//! Snapshots: round trips, and every refusal (truncated, flipped byte,
//! foreign file, wrong version, other definitions, too many entities),
//! none of which touches the store being served.

mod common;

use common::*;
use cx_featurestore::{
    Definitions, Error, FeatureBackend, FeatureValues, OnlineFeatures, StoreConfig,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cx-fs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A backend with 300 full users and a few partial ones.
fn filled(shared: bool) -> FeatureBackend {
    let defs = bundled();
    let config = config(4096);
    let mut b = if shared {
        FeatureBackend::shared(defs.clone(), config).unwrap()
    } else {
        FeatureBackend::in_process(defs.clone(), config).unwrap()
    };
    for e in 1..=300u64 {
        b.put(&full_user(&defs, e, T0 + e * S), T0 + e * S).unwrap();
    }
    let partial = put(
        &defs,
        1_000,
        "churn_risk",
        cx_featurestore::Value::F32(0.75),
        T0,
    );
    b.put(&[partial], T0).unwrap();
    b
}

/// Every entity's row at `now`, as (entity, features) for comparison.
fn rows(
    b: &mut FeatureBackend,
    now: u64,
) -> Vec<Vec<(cx_featurestore::Value, cx_featurestore::Freshness)>> {
    let mut row = FeatureValues::new(b.definitions().clone());
    (0..=1_001u64)
        .map(|e| {
            b.read(e, now, &mut row).unwrap();
            row.iter().map(|(_, v, f)| (v, f)).collect()
        })
        .collect()
}

fn refused(b: &FeatureBackend, path: &Path) -> String {
    match b.restore_like(path) {
        Ok(_) => panic!("restored {}", path.display()),
        Err(e @ Error::Snapshot { .. }) => e.to_string(),
        Err(e) => panic!("not a snapshot refusal: {e}"),
    }
}

#[test]
fn a_snapshot_restores_every_value_and_time() {
    for shared in [false, true] {
        let d = dir(&format!("round-{shared}"));
        let path = d.join("features.snap");
        let mut b = filled(shared);
        let info = b.snapshot(&path).unwrap();
        assert_eq!(info.entities, 301);
        assert_eq!(info.bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(info.bytes, 40 + 16 + 301 * (8 + 12 * 10));
        let (mut back, restored) = b.restore_like(&path).unwrap();
        assert_eq!((restored.entities, restored.evicted), (301, 0));
        assert_eq!(back.stats().entities, 301);
        for now in [T0 + 400 * S, T0 + 3 * DAY, T0 + 400 * DAY] {
            assert_eq!(rows(&mut back, now), rows(&mut b, now), "shared {shared}");
        }
        // Snapshot again over the same path: replaced whole, no temp left.
        back.snapshot(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(matches!(back, FeatureBackend::Shared(_)), shared);
    }
}

#[test]
fn an_empty_store_round_trips() {
    let d = dir("empty");
    let path = d.join("empty.snap");
    let b = FeatureBackend::in_process(bundled(), config(8)).unwrap();
    assert_eq!(b.snapshot(&path).unwrap().entities, 0);
    assert_eq!(b.restore_like(&path).unwrap().1.entities, 0);
}

#[test]
fn corrupt_and_foreign_snapshots_are_refused() {
    let d = dir("corrupt");
    let good = d.join("good.snap");
    let b = filled(false);
    b.snapshot(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    // Truncated anywhere: the length, the shape or the checksum says so.
    for cut in [0, 10, 39, 56, 57, 1000, bytes.len() - 9, bytes.len() - 1] {
        let m = refused(&b, &write("cut.snap", &bytes[..cut]));
        assert!(
            m.contains("truncated") || m.contains("whole number") || m.contains("checksum"),
            "cut {cut}: {m}"
        );
    }
    // One flipped byte in the body, the schema id, the count, the checksum.
    for at in [
        45,
        1000,
        bytes.len() / 2,
        20,
        bytes.len() - 12,
        bytes.len() - 1,
    ] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        let m = refused(&b, &write("flip.snap", &flipped));
        assert!(m.contains("checksum mismatch"), "byte {at}: {m}");
    }
    // Not a snapshot at all.
    let m = refused(&b, &write("text.snap", &[b'x'; 4096]));
    assert!(m.contains("not a feature store snapshot"), "{m}");
    // Another format version.
    let mut v2 = bytes.clone();
    v2[8] = 2;
    let m = refused(&b, &write("v2.snap", &v2));
    assert!(
        m.contains("format version 2, this build reads version 1"),
        "{m}"
    );
    // A missing file is an I/O error naming it.
    let e = b
        .restore_like(&d.join("nope.snap"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope.snap"), "{e}");
}

#[test]
fn a_snapshot_of_other_definitions_is_refused() {
    let d = dir("schema");
    let path = d.join("a.snap");
    filled(false).snapshot(&path).unwrap();
    let changed = BUNDLED.replace("default = 0.5", "default = 0.4");
    let other = Arc::new(Definitions::from_toml_str(&changed).unwrap());
    let b = FeatureBackend::in_process(other.clone(), config(4096)).unwrap();
    let m = refused(&b, &path);
    assert!(
        m.contains(&format!(
            "written for feature definitions {}",
            bundled().id()
        )),
        "{m}"
    );
    assert!(m.contains(other.id()), "{m}");
}

#[test]
fn a_snapshot_too_big_for_the_store_is_refused_and_the_old_store_still_serves() {
    let d = dir("capacity");
    let path = d.join("big.snap");
    let mut big = filled(false);
    big.snapshot(&path).unwrap();
    let mut small = FeatureBackend::in_process(
        bundled(),
        StoreConfig {
            entities: 64,
            ..config(64)
        },
    )
    .unwrap();
    let defs = small.definitions().clone();
    small.put(&full_user(&defs, 5, T0), T0).unwrap();
    let m = refused(&small, &path);
    assert!(
        m.contains("it holds 301 entities, the store has room for 64"),
        "{m}"
    );
    let mut row = FeatureValues::new(defs.clone());
    small.read(5, T0, &mut row).unwrap();
    assert_eq!(
        row.get("views_30d").unwrap().0,
        cx_featurestore::Value::I64(200)
    );
    assert_eq!(small.stats().entities, 1);
    // And a failed write leaves no file behind.
    let e = big
        .snapshot(&d.join("no-such-dir").join("x.snap"))
        .unwrap_err();
    assert!(e.to_string().contains("no-such-dir"), "{e}");
    let _ = &mut big;
}
