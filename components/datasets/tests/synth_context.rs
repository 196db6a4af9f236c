//! The engine feeds synthetic rows to the model through
//! `SynthRow::to_context`; the trainer read the same rows through the CSV
//! and the dataset spec. The two paths must give identical contexts, or the
//! served features would drift from the trained ones.

use cx_datasets::clicklog::{read_click_log, DatasetSpec};
use cx_datasets::synth::write_csv;
use cx_datasets::{Generator, SynthConfig};

#[test]
fn to_context_matches_the_csv_path_under_the_synthetic_spec() {
    let spec_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/specs/synthetic.toml"
    ))
    .expect("spec");
    let spec = DatasetSpec::from_toml(&spec_text).expect("spec parses");
    let mut generator = Generator::new(SynthConfig::default(), 11).expect("generator");
    let mut rows = Vec::new();
    generator.fill(&mut rows, 500).expect("rows");
    let mut csv = Vec::new();
    write_csv(&rows, &mut csv).expect("csv");
    let (log, report) = read_click_log(csv.as_slice(), &spec, 10_000).expect("reads");
    assert_eq!(log.contexts.len(), rows.len(), "{report:?}");
    for (i, (row, read)) in rows.iter().zip(&log.contexts).enumerate() {
        assert_eq!(&row.to_context(), read, "row {i}");
    }
    // The rows exercise the list and optional fields, so the check is not vacuous.
    assert!(rows.iter().any(|r| r.segments.len() > 1));
    assert!(rows.iter().any(|r| r.is_app) && rows.iter().any(|r| !r.is_app));
}
