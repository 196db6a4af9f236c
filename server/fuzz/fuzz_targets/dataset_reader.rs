//! Fuzz target: the click-log reader (`read_click_log` through the
//! synthetic dataset spec).
//!
//! Any bytes give a log or an error (a missing header or column), never a
//! panic. A log accounts for every row it read: kept plus rejected per
//! reason equals read, and it holds one label, offer and context per kept
//! row.
//!
//! Seeds: `seeds/dataset_reader/` (a few rows of `cx synth` output and
//! hand-made bad rows).
#![no_main]

use cx_datasets::clicklog::{read_click_log, DatasetSpec};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// `models/specs/synthetic.toml`, the spec `cx synth` logs are read with.
const SPEC: &str = include_str!("../../../models/specs/synthetic.toml");

fuzz_target!(|data: &[u8]| {
    static SPEC_PARSED: OnceLock<DatasetSpec> = OnceLock::new();
    let spec = SPEC_PARSED.get_or_init(|| DatasetSpec::from_toml(SPEC).expect("the bundled spec"));
    let Ok((log, report)) = read_click_log(data, spec, 10_000) else {
        return;
    };
    assert_eq!(
        report.rows_kept + report.rows_rejected(),
        report.rows_read,
        "{report:?}"
    );
    assert_eq!(log.labels.len(), log.contexts.len());
    assert_eq!(log.offers.len(), log.contexts.len());
});
