//! Data shared by every layer of the CampaignExpress engine.
//!
//! This crate sits at the bottom of the dependency graph
//! (`components <- backends <- systems <- engine <- server`). It owns plain
//! data and the pure functions that define it, with no I/O besides reading
//! and writing model files:
//!
//! - [`model`]: the spiking-network model (`Linear -> Leaky` layers), its
//!   safetensors file format, validation, metadata and calibration.
//! - [`readout`]: the caller-owned output buffers a forward pass fills.
//!
//! Every fallible call returns [`Error`], one enum for the whole crate.

pub mod error;
pub mod model;
pub mod readout;

pub use error::Error;
pub use model::{Calibration, LifLayer, ModelId, ModelMeta, ResetMechanism, SnnModel};
pub use readout::Readout;
