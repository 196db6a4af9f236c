//! [`Error`], the load generator's one error type.
//!
//! Every variant names what the user can fix: the option (`--rate`,
//! `--mix`, `--compare`, ...) with its value, the file with what was being
//! done to it, or the server's address.

use cx_wire::client::ClientError;

/// A failure of the load generator, naming the option, file or server at
/// fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option's value breaks a rule (out of range, not finite, ...).
    #[error("{option} {value}: {rule}")]
    Option {
        /// The command-line option, e.g. `--rate`.
        option: &'static str,
        /// The value given, as text.
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A file named by an option cannot be read or written.
    #[error("{option} {path}: cannot {op}")]
    File {
        /// The option that named the file, e.g. `--mix`.
        option: &'static str,
        /// The file.
        path: String,
        /// What was being done: `read it`, `write it`, `create it`.
        op: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file named by an option was read but its content is unusable.
    #[error("{option} {path}: {what}")]
    Content {
        /// The option that named the file.
        option: &'static str,
        /// The file.
        path: String,
        /// What is wrong, with the line where there is one.
        what: String,
    },
    /// The server could not be connected to, refused the hello, or broke
    /// a connection before the load started.
    #[error("server {addr}: {what}")]
    Server {
        /// The address given with `--addr`.
        addr: String,
        /// What was being done.
        what: String,
        /// The client's error (boxed: it is large, and rare).
        #[source]
        source: Box<ClientError>,
    },
    /// The server could not be connected to over HTTP (`--http`).
    #[error("server {addr}: {what}")]
    Connect {
        /// The address given with `--addr`.
        addr: String,
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The load itself failed: a thread could not be started or stopped.
    #[error("load generator: {0}")]
    Run(String),
}
/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error and every source below it, joined by `: ` (what a report
    /// records, where `Display` gives only the top line).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            text.push_str(": ");
            text.push_str(&e.to_string());
            source = e.source();
        }
        text
    }

    /// An [`Error::Option`] for `option` given `value`, breaking `rule`.
    pub fn option(option: &'static str, value: impl ToString, rule: impl Into<String>) -> Self {
        Self::Option {
            option,
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}
