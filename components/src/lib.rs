//! Data shared by every layer of the CampaignExpress engine.
//!
//! This crate sits at the bottom of the dependency graph
//! (`components <- backends <- systems <- engine <- server`). It owns plain
//! data and the pure functions that define it; its only I/O is reading and
//! writing model files, click logs and synthetic CSV through caller-supplied
//! paths, readers and writers:
//!
//! - [`model`]: the spiking-network model (`Linear -> Leaky` layers), its
//!   safetensors file format, validation, metadata and calibration.
//! - [`readout`]: the caller-owned output buffers a forward pass fills.
//! - [`dataset`]: click logs read from CSV through a TOML dataset spec.
//! - [`features`]: the versioned feature schema (request context to a
//!   fixed-width feature row) and its normalisation statistics.
//! - [`synth`]: a deterministic synthetic click-log generator with a
//!   documented ground-truth click model, and its CSV form.
//! - [`protocol`]: the binary wire protocol's constants, limits and codec
//!   (framing, every message's encoder and decoder); its errors are a plain
//!   `Copy` [`protocol::ProtocolError`] that converts into [`Error`].
//!
//! Every fallible call returns [`Error`], one enum for the whole crate.

pub mod catalog;
pub mod dataset;
pub mod error;
pub mod features;
pub mod model;
pub mod openrtb;
pub mod pipeline;
pub mod protocol;
pub mod readout;
pub mod store;
pub mod synth;

pub use error::Error;
pub use features::{ExtractStats, FeatureNorm, FeatureSchema, RequestContext};
pub use model::{Calibration, LifLayer, ModelId, ModelMeta, ResetMechanism, SnnModel};
pub use readout::Readout;
pub use synth::{Generator, SynthConfig, SynthRow};
