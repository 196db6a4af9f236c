//! The domain of the decision pipeline: what a request carries on its way
//! through the engine's schedule, the bounded stores the rules read and
//! write, and the offer catalog.
//!
//! - [`pipeline`]: the ECS components of a request entity and the
//!   structure-of-arrays rows beside them.
//! - [`store`]: the decision cache, frequency caps and budgets, each bounded
//!   and sized at start.
//! - [`notice`]: an exchange's win, billing and loss notices.
//! - [`feedback`]: feedback events (win, loss, impression, click,
//!   conversion), checked before they touch any state.
//! - [`catalog`]: the offer catalog (structure of arrays), read from TOML
//!   (`docs/CATALOG.md`).
//!
//! This is the only crate of `components/` that needs bevy_ecs. Every
//! fallible call returns [`Error`].

pub mod catalog;
pub mod error;
pub mod feedback;
pub mod notice;
pub mod pipeline;
pub mod store;

pub use error::{Error, Result};
