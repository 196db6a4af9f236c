//! The one place where the runner's connections differ by
//! [`Wire`](crate::Wire): how
//! a request is queued and flushed ([`Writer`]) and how an answer is read
//! and counted ([`Reader`], [`Event`]). The schedule, the depth, the
//! tally, the report and the sweep are the same for both wires.

use crate::config::LoadConfig;
use crate::http::{HttpEvent, HttpReader, HttpWriter};
use crate::pool::RequestPool;
use crate::tally::Outcome;
use cx_wire::client::{ClientError, ClientReader, ClientWriter, ResponseBody};
use cx_wire::protocol::OpenRtbFlags;

/// The sending half of one connection.
#[derive(Debug)]
pub(crate) enum Writer<'a> {
    /// Binary protocol frames, numbered by the client.
    Binary(ClientWriter),
    /// HTTP requests, precomputed.
    Http(HttpWriter<'a>),
}

/// The receiving half of one connection.
#[derive(Debug)]
pub(crate) enum Reader {
    /// Binary protocol answers, by request id.
    Binary(ClientReader),
    /// HTTP answers, in request order.
    Http(HttpReader),
}

/// What answers a binary request (HTTP answers are told by status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    /// A decision frame.
    Decision,
    /// The echoed `pong` (the echo mix, against `cx serve --echo`).
    Pong,
    /// A `bid_response` frame (`--bid-response`).
    BidResponse,
}

impl Expected {
    /// What answers the requests of `pool` sent as `config` says.
    pub(crate) fn of(pool: &RequestPool, config: &LoadConfig) -> Self {
        if pool.is_echo() {
            Self::Pong
        } else if config.bid_response {
            Self::BidResponse
        } else {
            Self::Decision
        }
    }
}

/// What a reader found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// The answer to request `id` (the binary protocol's request id; over
    /// HTTP, the request's number on its connection, from 0).
    Answer {
        /// Which request.
        id: u64,
        /// How it was answered.
        outcome: Outcome,
    },
    /// A frame that named no request.
    Unattributed,
    /// Nothing arrived in time.
    Idle,
    /// The connection broke (the reader keeps why).
    Broken,
}

impl Writer<'_> {
    /// Queues request `index` of `pool`; `raw_id` is the binary request
    /// id an echo frame carries (see [`RequestPool::send`]).
    pub(crate) fn queue(
        &mut self,
        pool: &RequestPool,
        index: u64,
        raw_id: u64,
        flags: OpenRtbFlags,
    ) -> Result<(), String> {
        match self {
            Self::Binary(writer) => pool
                .send(index, raw_id, writer, flags)
                .map(drop)
                .map_err(|e| e.to_string()),
            Self::Http(writer) => {
                writer.queue(index);
                Ok(())
            }
        }
    }

    /// Writes what was queued.
    pub(crate) fn flush(&mut self) -> Result<(), String> {
        match self {
            Self::Binary(writer) => writer.flush().map_err(|e| e.to_string()),
            Self::Http(writer) => writer.flush().map_err(|e| format!("writing: {e}")),
        }
    }
}

impl Reader {
    /// Reads the next answer (waiting at most the socket's read timeout);
    /// over the binary protocol, `expected` is the kind that answers a
    /// request. When it returns [`Event::Broken`], `why` holds the reason.
    pub(crate) fn read_answer(&mut self, expected: Expected, why: &mut Option<String>) -> Event {
        match self {
            Self::Binary(reader) => match reader.recv() {
                Ok(response) => {
                    // A decision answers a score request (a bid_response
                    // when asked for); against an echo server, the echoed
                    // `pong` is the answer.
                    let outcome = match (&response.body, expected) {
                        (ResponseBody::Decision(_), Expected::Decision)
                        | (ResponseBody::Pong(_), Expected::Pong)
                        | (ResponseBody::BidResponse(_), Expected::BidResponse) => {
                            Outcome::Decision
                        }
                        (ResponseBody::Error { code, .. }, _) => Outcome::Error(*code),
                        // A pong or hello_ack to a score request, a decision
                        // to an echo frame, or any kind it did not ask for.
                        _ => Outcome::Invalid,
                    };
                    Event::Answer {
                        id: response.request_id,
                        outcome,
                    }
                }
                Err(e) if e.is_timeout() => Event::Idle,
                // A frame the client refused but that left the connection
                // intact: an invalid answer to its request, if it named one.
                Err(e) if !e.is_fatal() => match e {
                    ClientError::Protocol {
                        request_id: Some(id),
                        ..
                    } => Event::Answer {
                        id,
                        outcome: Outcome::Invalid,
                    },
                    _ => Event::Unattributed,
                },
                Err(e) => {
                    *why = Some(e.to_string());
                    Event::Broken
                }
            },
            Self::Http(reader) => match reader.read_answer() {
                HttpEvent::Answer { id, status } => Event::Answer {
                    id,
                    outcome: http_outcome(status),
                },
                HttpEvent::Malformed { id } => Event::Answer {
                    id,
                    outcome: Outcome::Invalid,
                },
                HttpEvent::Idle => Event::Idle,
                HttpEvent::Broken(reason) => {
                    *why = Some(reason);
                    Event::Broken
                }
            },
        }
    }
}

/// How an HTTP status counts: `200` a bid, `204` a no-bid, anything else
/// an error.
pub(crate) fn http_outcome(status: u16) -> Outcome {
    match status {
        200 => Outcome::Decision,
        204 => Outcome::NoBid,
        other => Outcome::Status(other),
    }
}
