//! The `decision` response: per impression, the chosen offers with their
//! explanation, or why there are none.

use super::codes::{
    no_bid_code, no_bid_from_code, score_source_code, score_source_from_code, MessageType,
    SkipReason,
};
use super::control::reserved_zero;
use super::error::ProtocolError;
use super::frame::{finite, FrameStart, Reader};
use super::limits::{DECISION_ID_BYTES_MAX, IMPS_MAX, IMP_ID_BYTES_MAX, TOP_K_MAX};
use super::wire::{DecisionWire, F32Le, F64Le, ImpWire, OfferWire, U16Le, U64Le};
use super::{IMP_FLAG_DECISION_ID, IMP_FLAG_SIMULATED};
use cx_decision::{ChosenOffer, Decision, NoBidCause, ScoreSource};

const DECISION_FIXED: usize = std::mem::size_of::<DecisionWire>();
const IMP_FIXED: usize = std::mem::size_of::<ImpWire>();
const OFFER_BYTES: usize = std::mem::size_of::<OfferWire>();

/// What the server answers for one impression, as given to
/// [`DecisionWriter::push`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ImpOutcome<'a> {
    /// The engine decided it: its offers, or its no-offer cause.
    Decided(&'a Decision),
    /// It was not decided at all.
    Skipped(SkipReason),
}

/// One offer of a decoded decision: a [`ChosenOffer`] less the fields that
/// stay in the server (`catalog_index`, `objectives`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DecidedOffer {
    /// The catalog's offer id.
    pub offer_id: u64,
    /// The blended score, the sum of `factors`.
    pub score: f32,
    /// The calibrated click probability.
    pub p_click: f32,
    /// The bid price, CPM in currency units.
    pub bid_cpm: f64,
    /// The six explanation factors, in
    /// [`FACTOR_KINDS`](cx_decision::FACTOR_KINDS) order.
    pub factors: [f32; 6],
}

impl From<&ChosenOffer> for DecidedOffer {
    fn from(o: &ChosenOffer) -> Self {
        Self {
            offer_id: o.offer_id,
            score: o.score,
            p_click: o.p_click,
            bid_cpm: o.bid_cpm,
            factors: o.factors,
        }
    }
}

/// One impression of a decoded decision.
///
/// Invariants (checked by [`decode_decision`]): a skipped impression has no
/// offers, no cause, source [`ScoreSource::None`] and is not simulated; a
/// decided one has either offers and no cause, or a cause and no offers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImpDecision {
    /// The OpenRTB `imp.id`; empty for a `score_context` request.
    pub imp_id: String,
    /// Why the impression was not decided, when it was not.
    pub skipped: Option<SkipReason>,
    /// The chosen offers, best first (at most [`TOP_K_MAX`]).
    pub offers: Vec<DecidedOffer>,
    /// Why no offer was chosen, when none was.
    pub no_offer: Option<NoBidCause>,
    /// Where the click probabilities came from.
    pub source: ScoreSource,
    /// Decided in simulation mode.
    pub simulated: bool,
    /// The decision's id (what its feedback events name), when the request
    /// asked for it (`decision_ids`) and offers were chosen.
    pub decision_id: Option<String>,
}

impl ImpDecision {
    /// What decoding the impression `imp_id` with `outcome` gives.
    pub fn new(imp_id: &str, outcome: ImpOutcome<'_>) -> Self {
        match outcome {
            ImpOutcome::Skipped(reason) => Self {
                imp_id: imp_id.to_owned(),
                skipped: Some(reason),
                ..Self::default()
            },
            ImpOutcome::Decided(d) => Self {
                imp_id: imp_id.to_owned(),
                skipped: None,
                offers: d.offers().iter().map(DecidedOffer::from).collect(),
                no_offer: d.no_bid,
                source: d.source,
                simulated: d.simulated,
                decision_id: None,
            },
        }
    }
}

/// A decoded `decision` frame: one entry per impression, in request order
/// (one, with an empty id, for a `score_context` request).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecisionResponse {
    /// The impressions (1 to [`IMPS_MAX`]).
    pub imps: Vec<ImpDecision>,
}

/// Builds a `decision` frame in a caller's buffer, one impression at a
/// time: [`Self::new`], [`Self::push`] per impression, [`Self::finish`].
/// Dropping it unfinished removes the partial frame from the buffer.
/// Allocates only if the buffer must grow.
#[derive(Debug)]
pub struct DecisionWriter<'o> {
    out: &'o mut Vec<u8>,
    frame: Option<FrameStart>,
    count: usize,
}

impl<'o> DecisionWriter<'o> {
    /// Starts a decision frame answering `request_id` at the end of `out`.
    pub fn new(out: &'o mut Vec<u8>, request_id: u64) -> Self {
        let frame = FrameStart::begin(out, MessageType::Decision, request_id);
        out.extend_from_slice(bytemuck::bytes_of(&DecisionWire::default()));
        Self {
            out,
            frame: Some(frame),
            count: 0,
        }
    }

    /// Impressions pushed so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no impression was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends one impression. Refused, leaving the frame as it was: a
    /// [`IMPS_MAX`]-th + 1 impression or an id over [`IMP_ID_BYTES_MAX`]
    /// bytes ([`ProtocolError::TooLong`]); a decision with offers and a
    /// cause, or with neither (an unsettled decision,
    /// [`ProtocolError::InvalidValue`]); a non-finite score, click
    /// probability, price or factor ([`ProtocolError::NonFinite`]).
    pub fn push(&mut self, imp_id: &str, outcome: ImpOutcome<'_>) -> Result<(), ProtocolError> {
        self.push_with_id(imp_id, outcome, None)
    }

    /// [`Self::push`], with the impression's decision id after its
    /// `imp_id` (flag [`IMP_FLAG_DECISION_ID`]). Refused as [`Self::push`]
    /// refuses, and also: an id on an impression without offers
    /// ([`ProtocolError::InvalidValue`]), an empty id, or one over
    /// [`DECISION_ID_BYTES_MAX`] bytes ([`ProtocolError::TooLong`]).
    pub fn push_with_id(
        &mut self,
        imp_id: &str,
        outcome: ImpOutcome<'_>,
        decision_id: Option<&str>,
    ) -> Result<(), ProtocolError> {
        let Some(frame) = &self.frame else {
            return Ok(());
        };
        let at = frame.payload_pos(self.out);
        if self.count >= IMPS_MAX {
            return Err(ProtocolError::TooLong {
                field: "imps",
                offset: 0,
                len: self.count + 1,
                limit: IMPS_MAX,
            });
        }
        if imp_id.len() > IMP_ID_BYTES_MAX {
            return Err(ProtocolError::TooLong {
                field: "imp_id",
                offset: at + 6,
                len: imp_id.len(),
                limit: IMP_ID_BYTES_MAX,
            });
        }
        if let Some(id) = decision_id {
            check_decision_id(id, at + IMP_FIXED + imp_id.len())?;
            let has_offers = matches!(outcome, ImpOutcome::Decided(d) if !d.offers().is_empty());
            if !has_offers {
                return Err(ProtocolError::InvalidValue {
                    field: "decision_id",
                    offset: at + 3,
                    value: u64::from(IMP_FLAG_DECISION_ID),
                    rule: "only an impression with offers has a decision id",
                });
            }
        }
        let mut imp = ImpWire {
            // At most IMP_ID_BYTES_MAX (256).
            imp_id_len: U16Le::new(imp_id.len() as u16),
            ..ImpWire::default()
        };
        let offers: &[ChosenOffer] = match outcome {
            ImpOutcome::Skipped(reason) => {
                imp.skipped = reason.code();
                &[]
            }
            ImpOutcome::Decided(d) => {
                let offers = d.offers();
                match (offers.is_empty(), d.no_bid) {
                    (false, Some(cause)) => {
                        return Err(ProtocolError::InvalidValue {
                            field: "no_offer",
                            offset: at + 1,
                            value: u64::from(no_bid_code(cause)),
                            rule: "a decision with offers has no cause",
                        })
                    }
                    (true, None) => {
                        return Err(ProtocolError::InvalidValue {
                            field: "no_offer",
                            offset: at + 1,
                            value: 0,
                            rule: "a decision without offers needs a cause (settle it)",
                        })
                    }
                    _ => {}
                }
                let id_bytes = decision_id.map_or(0, |id| 2 + id.len());
                let first_offer = at + IMP_FIXED + imp_id.len() + id_bytes;
                for (i, o) in offers.iter().enumerate() {
                    check_offer(o, first_offer + i * OFFER_BYTES)?;
                }
                imp.no_offer = d.no_bid.map_or(0, no_bid_code);
                imp.source = score_source_code(d.source);
                imp.flags = if d.simulated { IMP_FLAG_SIMULATED } else { 0 };
                if decision_id.is_some() {
                    imp.flags |= IMP_FLAG_DECISION_ID;
                }
                // `Decision` holds at most TOP_K_MAX (8) offers.
                imp.offer_count = offers.len() as u8;
                offers
            }
        };
        self.out.extend_from_slice(bytemuck::bytes_of(&imp));
        self.out.extend_from_slice(imp_id.as_bytes());
        if let Some(id) = decision_id {
            // At most DECISION_ID_BYTES_MAX (64), checked above.
            self.out.extend_from_slice(&(id.len() as u16).to_le_bytes());
            self.out.extend_from_slice(id.as_bytes());
        }
        for o in offers {
            let wire = OfferWire {
                offer_id: U64Le::new(o.offer_id),
                bid_cpm: F64Le::new(o.bid_cpm),
                score: F32Le::new(o.score),
                p_click: F32Le::new(o.p_click),
                factors: o.factors.map(F32Le::new),
            };
            self.out.extend_from_slice(bytemuck::bytes_of(&wire));
        }
        self.count += 1;
        Ok(())
    }

    /// Completes the frame; returns its length in bytes. Refused, removing
    /// the frame: no impression ([`ProtocolError::InvalidValue`]).
    pub fn finish(mut self) -> Result<usize, ProtocolError> {
        let Some(frame) = self.frame.take() else {
            return Ok(0);
        };
        if self.count == 0 {
            frame.rollback(self.out);
            return Err(ProtocolError::InvalidValue {
                field: "imp_count",
                offset: 0,
                value: 0,
                rule: "a decision answers at least one impression",
            });
        }
        let count_at = self.out.len() - frame.payload_pos(self.out);
        // At most IMPS_MAX (64).
        let count = (self.count as u16).to_le_bytes();
        if let Some(slot) = self.out.get_mut(count_at..count_at + 2) {
            slot.copy_from_slice(&count);
        }
        frame.end(self.out)
    }
}

impl Drop for DecisionWriter<'_> {
    fn drop(&mut self) {
        if let Some(frame) = self.frame.take() {
            frame.rollback(self.out);
        }
    }
}

/// A decision id has 1 to [`DECISION_ID_BYTES_MAX`] bytes; `at` is where
/// its length is.
fn check_decision_id(id: &str, at: usize) -> Result<(), ProtocolError> {
    if id.is_empty() || id.len() > DECISION_ID_BYTES_MAX {
        return Err(ProtocolError::TooLong {
            field: "decision_id",
            offset: at,
            len: id.len(),
            limit: DECISION_ID_BYTES_MAX,
        });
    }
    Ok(())
}

fn check_offer(o: &ChosenOffer, at: usize) -> Result<(), ProtocolError> {
    finite(o.bid_cpm, "offer.bid_cpm", at + 8)?;
    finite(f64::from(o.score), "offer.score", at + 16)?;
    finite(f64::from(o.p_click), "offer.p_click", at + 20)?;
    for (i, &f) in o.factors.iter().enumerate() {
        finite(f64::from(f), "offer.factors", at + 24 + 4 * i)?;
    }
    Ok(())
}

/// Appends a `decision` frame answering `request_id` with `imps`, each an
/// impression id and its outcome; refused as [`DecisionWriter::push`] and
/// [`DecisionWriter::finish`] refuse, leaving `out` as it was.
pub fn encode_decision(
    out: &mut Vec<u8>,
    request_id: u64,
    imps: &[(&str, ImpOutcome<'_>)],
) -> Result<usize, ProtocolError> {
    let mut w = DecisionWriter::new(out, request_id);
    for &(imp_id, outcome) in imps {
        w.push(imp_id, outcome)?;
    }
    w.finish()
}

/// Appends the `decision` frame answering a `score_context` request: one
/// impression with an empty id.
pub fn encode_context_decision(
    out: &mut Vec<u8>,
    request_id: u64,
    decision: &Decision,
) -> Result<usize, ProtocolError> {
    encode_decision(out, request_id, &[("", ImpOutcome::Decided(decision))])
}

/// Decodes a `decision` payload.
///
/// Refused: an impression count of 0 or over [`IMPS_MAX`], an offer count
/// over [`TOP_K_MAX`], an id over [`IMP_ID_BYTES_MAX`] bytes or not UTF-8,
/// an unknown skip, cause or source code, a flag bit other than bit 0, a
/// non-zero reserved field, fields that contradict each other (see
/// [`ImpDecision`]), a non-finite float, any field past the end of the
/// payload, bytes after the last impression. Counts are checked against
/// the bytes left before anything is allocated.
pub fn decode_decision(payload: &[u8]) -> Result<DecisionResponse, ProtocolError> {
    let mut r = Reader::new(payload);
    let wire: &DecisionWire = r.pod("decision fixed part")?;
    let imp_count = usize::from(wire.imp_count.get());
    if imp_count == 0 {
        return Err(ProtocolError::InvalidValue {
            field: "imp_count",
            offset: 0,
            value: 0,
            rule: "a decision answers at least one impression",
        });
    }
    if imp_count > IMPS_MAX {
        return Err(ProtocolError::TooLong {
            field: "imp_count",
            offset: 0,
            len: imp_count,
            limit: IMPS_MAX,
        });
    }
    reserved_zero(&wire.reserved.0, "reserved", 2)?;
    if imp_count * IMP_FIXED > r.remaining() {
        return Err(ProtocolError::Truncated {
            field: "imps",
            offset: DECISION_FIXED,
            needed: imp_count * IMP_FIXED,
            available: r.remaining(),
        });
    }
    let mut imps = Vec::with_capacity(imp_count);
    for _ in 0..imp_count {
        imps.push(decode_imp(&mut r)?);
    }
    r.finish()?;
    Ok(DecisionResponse { imps })
}

fn decode_imp(r: &mut Reader<'_>) -> Result<ImpDecision, ProtocolError> {
    let at = r.pos();
    let wire: &ImpWire = r.pod("imp")?;
    let invalid = |field, offset, value: u8, rule| ProtocolError::InvalidValue {
        field,
        offset: at + offset,
        value: u64::from(value),
        rule,
    };
    let skipped = match wire.skipped {
        0 => None,
        code => Some(SkipReason::from_code(code).ok_or(invalid(
            "skipped",
            0,
            code,
            "not a skip reason",
        ))?),
    };
    let no_offer = match wire.no_offer {
        0 => None,
        code => Some(no_bid_from_code(code).ok_or(invalid(
            "no_offer",
            1,
            code,
            "not a no-offer cause",
        ))?),
    };
    let source = score_source_from_code(wire.source).ok_or(invalid(
        "source",
        2,
        wire.source,
        "not a score source",
    ))?;
    if wire.flags & !(IMP_FLAG_SIMULATED | IMP_FLAG_DECISION_ID) != 0 {
        return Err(invalid(
            "flags",
            3,
            wire.flags,
            "only bits 0 (simulated) and 1 (has_decision_id) are defined; the others must be 0",
        ));
    }
    let has_decision_id = wire.flags & IMP_FLAG_DECISION_ID != 0;
    if has_decision_id && wire.offer_count == 0 {
        return Err(invalid(
            "flags",
            3,
            wire.flags,
            "only an impression with offers has a decision id",
        ));
    }
    let offer_count = usize::from(wire.offer_count);
    if offer_count > TOP_K_MAX {
        return Err(ProtocolError::TooLong {
            field: "offer_count",
            offset: at + 4,
            len: offer_count,
            limit: TOP_K_MAX,
        });
    }
    if wire.reserved != 0 {
        return Err(invalid("reserved", 5, wire.reserved, "reserved, must be 0"));
    }
    if skipped.is_some() {
        if offer_count > 0 {
            return Err(invalid(
                "offer_count",
                4,
                wire.offer_count,
                "a skipped impression has no offers",
            ));
        }
        if no_offer.is_some() || source != ScoreSource::None || wire.flags != 0 {
            return Err(invalid(
                "skipped",
                0,
                wire.skipped,
                "a skipped impression has no cause, source 0 and no flags",
            ));
        }
    } else if (offer_count > 0) == no_offer.is_some() {
        return Err(invalid(
            "no_offer",
            1,
            wire.no_offer,
            "a decided impression has offers or a cause, not both or neither",
        ));
    }
    let id_len = usize::from(wire.imp_id_len.get());
    if id_len > IMP_ID_BYTES_MAX {
        return Err(ProtocolError::TooLong {
            field: "imp_id",
            offset: at + 6,
            len: id_len,
            limit: IMP_ID_BYTES_MAX,
        });
    }
    let id_at = r.pos();
    let id_bytes = r.take(id_len, "imp_id")?;
    let imp_id = std::str::from_utf8(id_bytes).map_err(|e| ProtocolError::InvalidUtf8 {
        field: "imp_id",
        offset: id_at + e.valid_up_to(),
    })?;
    let decision_id = if has_decision_id {
        let len_at = r.pos();
        let id = r.str("decision_id", DECISION_ID_BYTES_MAX)?;
        check_decision_id(id, len_at)?;
        Some(id.to_owned())
    } else {
        None
    };
    if offer_count * OFFER_BYTES > r.remaining() {
        return Err(ProtocolError::Truncated {
            field: "offers",
            offset: r.pos(),
            needed: offer_count * OFFER_BYTES,
            available: r.remaining(),
        });
    }
    let mut offers = Vec::with_capacity(offer_count);
    for _ in 0..offer_count {
        let o_at = r.pos();
        let o: &OfferWire = r.pod("offer")?;
        let offer = DecidedOffer {
            offer_id: o.offer_id.get(),
            score: o.score.get(),
            p_click: o.p_click.get(),
            bid_cpm: o.bid_cpm.get(),
            factors: o.factors.map(F32Le::get),
        };
        check_offer(
            &ChosenOffer {
                bid_cpm: offer.bid_cpm,
                score: offer.score,
                p_click: offer.p_click,
                factors: offer.factors,
                ..ChosenOffer::default()
            },
            o_at,
        )?;
        offers.push(offer);
    }
    Ok(ImpDecision {
        imp_id: imp_id.to_owned(),
        skipped,
        offers,
        no_offer,
        source,
        simulated: wire.flags & IMP_FLAG_SIMULATED != 0,
        decision_id,
    })
}
