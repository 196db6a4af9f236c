//! Off-policy evaluation: what a candidate policy would have earned,
//! estimated from decisions another policy logged, before it serves a
//! single request. `docs/OPE.md` describes the format, the estimators and
//! `cx ope`.
//!
//! - [`dsjson`]: the logged-data format, Vowpal Wabbit's decision-service
//!   JSON (types, a bounded reader that names the line and field of every
//!   bad line, a writer).
//! - [`context`]: the JSON form of the engine's request context, which a
//!   DSJSON event's context holds.
//! - [`estimate`]: IPS, SNIPS and doubly robust with confidence intervals,
//!   the effective sample size and the logging policy's own value.
//! - [`policy`]: target policies (greedy, epsilon-greedy) from per-action
//!   scores.

pub mod context;
pub mod dsjson;
pub mod error;
pub mod estimate;
pub mod policy;

pub use context::ContextJson;
pub use dsjson::{ArmJson, DsjsonLine, DsjsonReader, DsjsonWriter, LoggedEvent};
pub use error::{Error, Result};
pub use estimate::{Estimate, Evaluator, Observation, Report, LEVEL_DEFAULT};
pub use policy::TargetPolicy;
