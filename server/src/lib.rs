//! The `cx` command-line front end and the TCP server (`cx serve`).
//!
//! The binary (`src/main.rs`) only parses arguments and prints errors; the
//! commands live here so that they can be tested without a process:
//!
//! - [`cli`]: the clap argument definitions and the commands: `model inspect`,
//!   `model run`, `synth`, `train`, `eval`, `score`, `serve`, `client` and
//!   `bench`.
//! - [`client`]: `cx_wire::client`, re-exported: the blocking, pipelined
//!   client of the wire protocol behind `cx client`.
//! - [`conn`]: one TCP connection's protocol state machine (frames in,
//!   engine submissions, decisions in, response bytes out), without sockets,
//!   for the event loops to drive.
//! - [`config`]: `cx serve`'s configuration (defaults, TOML, environment,
//!   flags).
//! - [`epoll`]: the epoll event loop (the fallback).
//! - [`error`]: [`Error`], the crate's single error type.
//! - [`http`]: the OpenRTB HTTP bidder's connection state machine
//!   (requests in order, gzip, notices), driven by the same loops.
//! - [`metrics`]: the Prometheus metrics ([`metrics::Metrics`]), and in
//!   [`metrics::admin`] the admin HTTP endpoint serving `/metrics` and
//!   `/healthz`.
//! - [`budget`]: the server-wide budgets for buffered output and large input.
//! - [`repository`]: the model repository: bundles of a model, its catalog,
//!   fallback and decision settings, by name and version, and which is active.
//! - [`serve`]: the server: listeners, worker threads, shutdown and reload.
//! - [`simulate`]: `cx simulate`'s closed loop with the synthetic world.
//! - [`sources`]: open connections per source address, over all workers.
//! - [`uring`]: the io_uring event loop.
//! - [`worker`]: one worker thread's engine and connections, shared by both
//!   event loops.

pub mod cli;
pub use cx_wire::client;
pub mod budget;
pub mod config;
pub mod conn;
pub mod epoll;
pub mod error;
pub mod http;
pub mod metrics;
pub mod repository;
pub mod serve;
pub mod simulate;
pub mod sources;
#[cfg(target_os = "linux")]
pub mod uring;
pub mod worker;

pub use error::Error;
