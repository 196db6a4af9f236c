//! The crate's single error type.

/// Everything reading, writing or evaluating a log can report. A log error
/// names the line (1-based) and the field at fault; an estimator error names
/// the event (0-based, in the order events were added) or the parameter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A line is longer than the reader takes; it was skipped unread.
    #[error("line {line}: {bytes} bytes, more than the limit of {limit} bytes per line")]
    LineTooLong {
        /// The line's number, from 1.
        line: usize,
        /// Its length, bytes (without the line break).
        bytes: u64,
        /// The limit, [`crate::dsjson::LINE_BYTES_MAX`].
        limit: usize,
    },
    /// A line is not JSON, or not the shape of a DSJSON event.
    #[error("line {line}: field `{field}`: {reason}")]
    Json {
        /// The line's number, from 1.
        line: usize,
        /// Where in the line's JSON the parser stopped (`.` for the top level).
        field: String,
        /// The parser's message.
        reason: String,
    },
    /// A line parses but breaks a rule of the format (a probability outside
    /// `(0, 1]`, a chosen action that is not first in `a`, ...).
    #[error("line {line}: field `{field}`: {reason}")]
    Field {
        /// The line's number, from 1.
        line: usize,
        /// The field at fault, as DSJSON spells it (`p[2]`, `_label_Action`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The log could not be read.
    #[error("cannot read line {line}")]
    Read {
        /// The line being read, from 1.
        line: usize,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An event could not be written.
    #[error("cannot write event {event}")]
    Write {
        /// The event's EventId.
        event: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An event to write breaks a rule of the format.
    #[error("event {event}: `{field}`: {reason}")]
    Unwritable {
        /// The event's EventId.
        event: String,
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An observation given to the estimators is unusable.
    #[error("event {event}: `{field}`: {reason}")]
    Observation {
        /// The observation's index, from 0, in the order they were added.
        event: u64,
        /// The field at fault.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No events were given to the estimators.
    #[error("the log holds no events to evaluate")]
    EmptyLog,
    /// Too few events for a variance, hence an interval.
    #[error("{events} event(s) to evaluate; a confidence interval needs at least 2")]
    TooFewEvents {
        /// How many there were.
        events: u64,
    },
    /// The target policy gives probability 0 to the logged action of every
    /// event: the log says nothing about it, and SNIPS divides by zero.
    #[error(
        "no overlap: the target policy gives probability 0 to the logged action in all {events} events"
    )]
    NoOverlap {
        /// How many events there were.
        events: u64,
    },
    /// A parameter is out of its range.
    #[error("{name} is {value}, expected {expected}")]
    Parameter {
        /// The parameter's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
    /// A target policy's name does not parse.
    #[error("unknown policy `{0}`: expected `greedy` or `epsilon:E` with E in [0, 1]")]
    PolicyName(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
