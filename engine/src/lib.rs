//! The embeddable engine (`Engine::builder()`, `submit`, `tick`, `poll`). It
//! arrives with the engine issue; today this crate re-exports the backend
//! layer so that the server depends on the engine only, as the graph
//! `components <- backends <- systems <- engine <- server` requires.

pub use cx_backends as backends;
pub use cx_components as components;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
