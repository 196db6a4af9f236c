//! The golden check: for a fixed seed and clock, `cx score` answers every
//! OpenRTB file byte for byte as recorded in `tests/golden/score/` (see the
//! README there), with the scalar backend and the SIMD kernel on every tier
//! this CPU has. Refactors of the pipeline, the
//! crates or the kernels must not change a single decision.

use cx_engine::backends::{SimdTier, SIMD_TIER_ENV};
use std::path::{Path, PathBuf};
use std::process::Command;

const NOW_MS: &str = "1767225600000";
const SEED: &str = "7";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/score")
}

/// `(input file, golden file)` for the committed fixtures, and for the
/// shared data when it is present (a message says when it is not).
fn cases() -> Vec<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let golden = golden_dir();
    let mut cases = Vec::new();
    let fixtures = root.join("components/wire/tests/fixtures/openrtb");
    for name in [
        "2.5_mobile.json",
        "2.6_video.json",
        "bsm_breq.video.json",
        "prebid_sample.jsonl",
    ] {
        cases.push((
            fixtures.join(name),
            golden.join(format!("repo_{name}.golden")),
        ));
    }
    let shared = root.join("../shared/data/openrtb");
    if !shared.exists() {
        println!(
            "skipping the shared files: {} is absent (../shared is not laid out here)",
            shared.display()
        );
        return cases;
    }
    let mut examples: Vec<PathBuf> = std::fs::read_dir(shared.join("spec_examples"))
        .expect("read spec examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    examples.push(shared.join("prebid_exemplary_sample.jsonl"));
    examples.sort();
    for path in examples {
        let name = path.file_name().expect("file name").to_string_lossy();
        let golden_file = golden.join(format!("{name}.golden"));
        cases.push((path, golden_file));
    }
    cases
}

/// `cx score` with `--backend backend`, the SIMD kernel capped at `tier`
/// (`CX_SIMD_TIER`) when one is given.
fn score(input: &Path, backend: &str, tier: Option<SimdTier>) -> Vec<u8> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cx"));
    cmd.args(["score", input.to_str().expect("utf-8 path")])
        .args(["--now-ms", NOW_MS, "--seed", SEED, "--backend", backend])
        .env_remove("CX_BACKEND")
        .env_remove(SIMD_TIER_ENV);
    if let Some(tier) = tier {
        cmd.env(SIMD_TIER_ENV, tier.name());
    }
    let out = cmd.output().expect("run cx score");
    assert!(
        out.status.success(),
        "cx score {} failed: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The first line where `got` and `want` differ, for the failure message.
fn first_difference(got: &[u8], want: &[u8]) -> String {
    let got = String::from_utf8_lossy(got);
    let want = String::from_utf8_lossy(want);
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        if g != w {
            return format!("line {}:\n  got  {g}\n  want {w}", i + 1);
        }
    }
    format!(
        "{} lines against {} golden lines",
        got.lines().count(),
        want.lines().count()
    )
}

#[test]
fn cx_score_answers_every_openrtb_file_as_recorded() {
    let cases = cases();
    assert!(cases.len() >= 4);
    for (input, golden) in &cases {
        let want = std::fs::read(golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (a new input file needs a golden file)",
                golden.display()
            )
        });
        let runs = [("auto", None), ("scalar", None)]
            .into_iter()
            .chain(SimdTier::supported().map(|t| ("simd", Some(t))));
        for (backend, tier) in runs {
            let got = score(input, backend, tier);
            let tier = tier.map_or(String::new(), |t| format!("{SIMD_TIER_ENV}={} ", t.name()));
            assert!(
                got == want,
                "{tier}cx score {} --now-ms {NOW_MS} --seed {SEED} --backend {backend} differs from {}: {}",
                input.display(),
                golden.display(),
                first_difference(&got, &want)
            );
        }
    }
}

#[test]
fn every_golden_file_has_its_input() {
    // A golden file whose input is gone would never be checked again.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/openrtb");
    if !shared.exists() {
        println!("skipping: {} is absent", shared.display());
        return;
    }
    let inputs: Vec<PathBuf> = cases().into_iter().map(|(_, g)| g).collect();
    for entry in std::fs::read_dir(golden_dir()).expect("read golden dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "golden") {
            assert!(
                inputs.contains(&path),
                "{} has no input file",
                path.display()
            );
        }
    }
}
