//! What crosses the network: the binary wire protocol, OpenRTB, and a
//! client. Nothing here needs the engine, so a client, a fuzz target or a
//! load generator links this crate (and the plain data it encodes:
//! `cx-features`' request context, `cx-decision`'s answers) alone.
//!
//! - [`protocol`]: the binary protocol's constants, limits and codec
//!   (framing, every message's encoder and decoder), specified in
//!   `docs/PROTOCOL.md`; its errors are a plain `Copy`
//!   [`protocol::ProtocolError`] that converts into [`Error`].
//! - [`openrtb`]: OpenRTB 2.5/2.6 bid requests in (parsed, checked, mapped
//!   to request contexts) and bid responses out (`docs/OPENRTB.md`).
//! - [`client`]: a blocking, pipelined client of the binary protocol over
//!   one TCP connection.

pub mod client;
pub mod error;
pub mod openrtb;
pub mod protocol;

pub use error::{Error, Result};
