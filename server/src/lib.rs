//! The `cx` command-line front end and, later, the TCP server.
//!
//! The binary (`src/main.rs`) only parses arguments and prints errors; the
//! commands live here so that they can be tested without a process:
//!
//! - [`cli`]: the clap argument definitions and the commands: `model inspect`,
//!   `model run`, `synth`, `train`, `eval` and `score`.
//! - [`conn`]: one TCP connection's protocol state machine (frames in,
//!   engine submissions, decisions in, response bytes out), without sockets,
//!   for the event loops to drive.
//! - [`error`]: [`Error`], the crate's single error type.

pub mod cli;
pub mod conn;
pub mod error;

pub use error::Error;
