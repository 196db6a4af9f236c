//! What the server answers: [`Response`] and its [`ResponseBody`], decoded
//! from whole frames.

use super::ClientError;
use crate::protocol::{
    self, DecisionResponse, ErrorCode, FeedbackAck, HelloAck, Message, PutFeaturesAck,
};

/// One response frame from the server.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The request it answers (0: an error about no request the server
    /// could identify).
    pub request_id: u64,
    /// What the server answered.
    pub body: ResponseBody,
}

/// The content of a response frame.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseBody {
    /// The decision for a score request: one impression per OpenRTB `imp`,
    /// or one with an empty id for a `score_context`.
    Decision(DecisionResponse),
    /// The request failed.
    Error {
        /// Why (a known protocol code; the codec refuses unknown ones).
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The answer to a ping: its nonce.
    Pong(u64),
    /// The answer to a hello: the chosen version and the server's limits.
    HelloAck(HelloAck),
    /// The answer to a `score_openrtb` that asked for one: a JSON object
    /// with the OpenRTB `response` and the `decisions` behind it
    /// (`docs/PROTOCOL.md`, `bid_response`).
    BidResponse(String),
    /// The answer to a `feedback` message: what became of its events.
    FeedbackAck(FeedbackAck),
    /// The answer to a `put_features` message: what became of its items.
    PutFeaturesAck(PutFeaturesAck),
}

/// Whether `response` is the answer to `request_id`: its own, or an error
/// the server could not tie to any request.
pub(super) fn answers(response: &Response, request_id: u64) -> bool {
    response.request_id == request_id
        || (response.request_id == 0 && matches!(response.body, ResponseBody::Error { .. }))
}

/// The error for an answer of the wrong kind to a hello or ping.
pub(super) fn unexpected_answer(request_id: u64, asked: &str, body: ResponseBody) -> ClientError {
    match body {
        ResponseBody::Error { code, message } => ClientError::Refused {
            request_id,
            code,
            message,
        },
        ResponseBody::Decision(_) => ClientError::Unexpected {
            what: format!("a decision answering the {asked} with request id {request_id}"),
        },
        ResponseBody::Pong(_) => ClientError::Unexpected {
            what: format!("a pong answering the {asked} with request id {request_id}"),
        },
        ResponseBody::HelloAck(_) => ClientError::Unexpected {
            what: format!("a hello_ack answering the {asked} with request id {request_id}"),
        },
        ResponseBody::BidResponse(_) => ClientError::Unexpected {
            what: format!("a bid_response answering the {asked} with request id {request_id}"),
        },
        ResponseBody::FeedbackAck(_) => ClientError::Unexpected {
            what: format!("a feedback_ack answering the {asked} with request id {request_id}"),
        },
        ResponseBody::PutFeaturesAck(_) => ClientError::Unexpected {
            what: format!("a put_features_ack answering the {asked} with request id {request_id}"),
        },
    }
}

/// Decodes a whole frame's payload into a response; client-only message
/// types are [`ClientError::Unexpected`].
pub(super) fn to_response(
    message_type: protocol::MessageType,
    request_id: u64,
    payload: &[u8],
) -> Result<Response, ClientError> {
    let message = protocol::decode_message(message_type, payload).map_err(|source| {
        ClientError::Protocol {
            request_id: Some(request_id),
            source,
        }
    })?;
    let body = match message {
        Message::Decision(decision) => ResponseBody::Decision(decision),
        Message::Error(e) => ResponseBody::Error {
            code: e.code,
            message: e.message.to_owned(),
        },
        Message::Pong(nonce) => ResponseBody::Pong(nonce),
        Message::HelloAck(ack) => ResponseBody::HelloAck(ack),
        Message::BidResponse(json) => ResponseBody::BidResponse(json.to_owned()),
        Message::FeedbackAck(ack) => ResponseBody::FeedbackAck(ack),
        Message::PutFeaturesAck(ack) => ResponseBody::PutFeaturesAck(ack),
        Message::Hello(_)
        | Message::Ping(_)
        | Message::ScoreContext(_)
        | Message::ScoreOpenRtb { .. }
        | Message::Feedback(_)
        | Message::PutFeatures(_) => {
            return Err(ClientError::Unexpected {
                what: format!(
                    "a {message_type} frame (request id {request_id}), which only clients send"
                ),
            })
        }
    };
    Ok(Response { request_id, body })
}
