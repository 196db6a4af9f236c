//! Click logs and synthetic data: what the trainer and the evaluator read,
//! and what the load generator replays.
//!
//! - [`clicklog`]: CSV click logs read through TOML dataset specs into request
//!   contexts, labels and offers, with bad rows counted per reason
//!   (`docs/DATASETS.md`).
//! - [`leakage`]: the check that refuses a dataset spec giving the label
//!   or the oracle column an input role (label leakage).
//! - [`inputs`]: what a model's training rows filled (the
//!   `cx.training_inputs` metadata record) and the comparison with what a
//!   serving path fills (train/serve skew).
//! - [`synth`]: a deterministic synthetic click-log generator with a
//!   documented ground-truth click model, and its CSV form
//!   (`docs/SYNTHETIC_DATA.md`).
//!
//! Every fallible call returns [`Error`].

pub mod clicklog;
pub mod error;
pub mod inputs;
pub mod leakage;
pub mod synth;

pub use error::{Error, Result};
pub use synth::{Generator, SynthConfig, SynthRow};
