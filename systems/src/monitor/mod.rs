//! Model monitoring: what a model saw at training time (the reference,
//! `cx.reference` in its file), what it sees while serving (bounded rolling
//! windows), and the alarms that compare the two (`docs/MONITORING.md`).
//!
//! - [`reference`]: [`Reference`], built by `cx train` from the training
//!   rows and the held-out predictions, written as JSON under
//!   [`REFERENCE_KEY`], parsed and checked against the schema at load.
//! - [`window`]: [`Monitor`], the serving side: per-feature bin counts in a
//!   ring of windows, PSI per feature and on predictions, calibration and
//!   CTR from feedback, and the alarms with their transitions.
//! - [`config`]: [`MonitorConfig`], the `[monitor]` table of the engine.
//! - [`system`]: the bevy system that feeds the [`Monitor`] resource with
//!   each decided request's sparse row and top prediction.
//!
//! Data layout: every feature has a fixed stride of [`BINS_MAX`] counters,
//! so a window is one flat `[features + 1][BINS_MAX]` block of `u32` (the
//! last row is the predictions), and a column of the schema maps to its
//! feature and bin through one `u32` table entry. The stride wastes the
//! unused bins of small features (a few KiB in all) and buys an update
//! that is one table load and one increment per non-zero column, with no
//! branch on the feature's kind except for numeric columns (a search over
//! at most [`BINS_MAX`] - 1 edges).

pub mod config;
pub mod reference;
pub mod system;
pub mod window;

pub use config::{MonitorConfig, PsiLevel};
pub use reference::{FeatureKind, FeatureRef, PredictionRef, Reference};
pub use window::{AlarmKind, Monitor, MonitorReport, Transition};

/// The model file's metadata key holding the reference (JSON).
pub const REFERENCE_KEY: &str = "cx.reference";

/// Most bins of one feature (slots of a one-hot block, top buckets plus
/// `other` and `absent`, or numeric bins).
pub const BINS_MAX: usize = 16;

/// Most features one reference monitors (the serving side tracks which
/// were seen in a request with one `u64` mask).
pub const FEATURES_MAX: usize = 64;

/// Top buckets kept per hashed or multi-hot block.
pub const TOP_BUCKETS: usize = 8;

/// Longest `cx.reference` value read, bytes.
pub const REFERENCE_BYTES_MAX: usize = 1 << 20;

/// Fixed upper edges of the prediction bins: click probabilities are small,
/// so the bins are narrow at the bottom.
pub const PREDICTION_EDGES: [f32; 11] = [
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5,
];

/// The z value a calibration or CTR difference must exceed (besides the
/// configured tolerance) before it raises an alarm: three standard errors,
/// so sampling noise alone almost never does.
pub const SIGNIFICANCE_Z: f64 = 3.0;

/// The bin of `value` among ascending interior `edges`: the number of edges
/// at or below it (`edges.len() + 1` bins).
pub fn bin_of(edges: &[f32], value: f32) -> usize {
    edges.partition_point(|&e| e <= value)
}

/// The population stability index of `counts` against the expected
/// `share`s: `sum (a - e) ln(a / e)`, each share floored at `1e-4` so an
/// empty bin on either side stays finite. 0 when `counts` sum to 0.
pub fn psi(share: &[f64], counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    share
        .iter()
        .zip(counts)
        .map(|(&e, &c)| {
            let a = (c as f64 / n as f64).max(1e-4);
            let e = e.max(1e-4);
            (a - e) * (a / e).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_on_the_reference_and_grows_with_the_shift() {
        let share = [0.5, 0.3, 0.2];
        assert!(psi(&share, &[500, 300, 200]) < 1e-12);
        let small = psi(&share, &[450, 330, 220]);
        let large = psi(&share, &[200, 300, 500]);
        assert!(small > 0.0 && small < 0.1, "{small}");
        assert!(large > 0.2, "{large}");
        assert_eq!(psi(&share, &[0, 0, 0]), 0.0);
    }

    #[test]
    fn bins_count_the_edges_at_or_below() {
        let edges = [0.0, 1.0, 2.0];
        assert_eq!(bin_of(&edges, -1.0), 0);
        assert_eq!(bin_of(&edges, 0.0), 1);
        assert_eq!(bin_of(&edges, 1.5), 2);
        assert_eq!(bin_of(&edges, 9.0), 3);
        assert_eq!(bin_of(&PREDICTION_EDGES, f32::NAN), 0);
    }
}
