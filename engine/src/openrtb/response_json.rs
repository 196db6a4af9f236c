//! The BidResponse written as JSON straight into an answer's buffer: what
//! the HTTP bidder sends.
//!
//! [`write_response`] decides every bid through the same
//! [`plan_bid`](super::response::plan_bid) as
//! [`build_response`](super::response::build_response), and writes the
//! JSON that serde_json would write for that function's [`BidResponse`]
//! (the tests hold the two to the same document for every request of the
//! spec examples and the prebid samples). What it saves is the
//! response's owned strings, its `serde_json::Value` extensions, and a
//! second pass over the markup: a bid's id, markup and notice URLs are
//! written into [`ResponseBuffers`] reused from answer to answer, and
//! escaped once, eight bytes at a time ([`super::json_out`]).
//!
//! [`BidResponse`]: cx_wire::openrtb::BidResponse

use super::json_out::{write_f64, write_i64, write_key, write_str, write_str_contents, write_u64};
use super::notice::NoticeUrls;
use super::response::{plan_bid, BidBuffers, BidPlan, Bidder, NO_IMPRESSIONS};
use super::{ImpOutcome, CURRENCY, SEAT};
use cx_domain::catalog::template::{escape_markup, MarkupOut};
use cx_domain::notice::NoticeKind;
use cx_wire::openrtb::{BidRequest, NoBidReason};

/// What [`write_response`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// A response with at least one bid.
    Bid,
    /// A no-bid (`{"id", "nbr", "ext": {"reason"}}`, our label in
    /// `reason`) with its OpenRTB reason; an HTTP bidder answers `204`
    /// instead.
    NoBid(NoBidReason),
}

/// The buffers [`write_response`] writes a bid's parts into before they
/// are escaped into the answer; keep one per connection (or worker) so
/// that they are allocated once.
#[derive(Debug, Default)]
pub struct ResponseBuffers {
    bid: BidBuffers<JsonMarkup>,
}

/// A bid's markup as the inside of a JSON string: a template's text is
/// copied in its escaped form, made when the catalog was built; what is
/// rendered per bid (values, native documents) is escaped here.
#[derive(Debug, Default)]
pub(super) struct JsonMarkup {
    /// The markup, as JSON string text.
    json: Vec<u8>,
    /// Scratch: a value escaped for HTML and XML, before JSON.
    value: String,
}

#[cfg(test)]
impl JsonMarkup {
    /// The markup written, as JSON string text.
    pub(super) fn json(&self) -> &[u8] {
        &self.json
    }
}

impl MarkupOut for JsonMarkup {
    fn clear_markup(&mut self) {
        self.json.clear();
    }

    fn push_text(&mut self, _plain: &str, json: &str) {
        self.json.extend_from_slice(json.as_bytes());
    }

    fn push_value(&mut self, value: &str) {
        self.value.clear();
        escape_markup(value, &mut self.value);
        write_str_contents(&mut self.json, &self.value);
    }

    fn push_markup(&mut self, markup: &str) {
        write_str_contents(&mut self.json, markup);
    }
}

/// Appends the BidResponse for `impressions` (one per impression of
/// `request`, as decided) to `out` as JSON, and says whether it bids. The
/// same response as [`build_response`](super::response::build_response),
/// bid ids issued alike.
pub fn write_response(
    request: &BidRequest,
    impressions: &[ImpOutcome],
    bidder: &mut Bidder<'_>,
    buffers: &mut ResponseBuffers,
    out: &mut Vec<u8>,
) -> Written {
    let start = out.len();
    out.push(b'{');
    write_key(out, "id", true);
    write_str(out, &request.id);
    let mut bids = 0usize;
    let mut reason: Option<(NoBidReason, &'static str)> = None;
    for imp in impressions {
        match plan_bid(request, imp, bidder, &mut buffers.bid) {
            Ok(plan) => {
                out.extend_from_slice(if bids == 0 {
                    b",\"seatbid\":[{\"bid\":["
                } else {
                    b","
                });
                write_bid(&plan, buffers, bidder.notices, out);
                bids += 1;
            }
            Err(why) => {
                reason.get_or_insert(why);
            }
        }
    }
    if bids == 0 {
        out.truncate(start);
        let (nbr, label) = reason.unwrap_or((NoBidReason::UnknownError, NO_IMPRESSIONS));
        write_no_bid(&request.id, nbr, label, out);
        return Written::NoBid(nbr);
    }
    out.extend_from_slice(b"]");
    write_key(out, "seat", false);
    write_str(out, SEAT);
    out.extend_from_slice(b"}]");
    write_key(out, "cur", false);
    write_str(out, CURRENCY);
    out.push(b'}');
    Written::Bid
}

/// `{"id": id, "nbr": code, "ext": {"reason": label}}`.
fn write_no_bid(id: &str, nbr: NoBidReason, label: &str, out: &mut Vec<u8>) {
    out.push(b'{');
    write_key(out, "id", true);
    write_str(out, id);
    write_key(out, "nbr", false);
    write_u64(out, u64::from(nbr.code()));
    write_key(out, "ext", false);
    out.push(b'{');
    write_key(out, "reason", true);
    write_str(out, label);
    out.extend_from_slice(b"}}");
}

/// One bid object, its members in the order of [`cx_wire::openrtb::Bid`]'s
/// fields, those that serde leaves out when empty left out alike.
fn write_bid(
    plan: &BidPlan<'_, '_>,
    buffers: &mut ResponseBuffers,
    notices: &NoticeUrls,
    out: &mut Vec<u8>,
) {
    let (offer, catalog, i) = (plan.offer, plan.catalog, plan.i);
    out.push(b'{');
    write_key(out, "id", true);
    write_str(out, &buffers.bid.bid_id);
    write_key(out, "impid", false);
    write_str(out, plan.imp_id);
    write_key(out, "price", false);
    write_f64(out, offer.bid_cpm);
    for (name, notice) in ["nurl", "burl", "lurl"].into_iter().zip(NoticeKind::ALL) {
        let key_at = out.len();
        write_key(out, name, false);
        if !notices.write_json(notice, offer.offer_id, out) {
            out.truncate(key_at);
        }
    }
    write_key(out, "adm", false);
    out.push(b'"');
    out.extend_from_slice(&buffers.bid.adm.json);
    out.push(b'"');
    write_key(out, "adid", false);
    write_decimal_str(out, offer.offer_id);
    write_str_list(out, "adomain", catalog.adomain(i));
    write_key(out, "cid", false);
    write_decimal_str(out, offer.offer_id);
    if !plan.creative_id.is_empty() {
        write_key(out, "crid", false);
        write_str(out, plan.creative_id);
    }
    write_str_list(out, "cat", catalog.categories(i));
    let attr = catalog.attr(i);
    if !attr.is_empty() {
        write_key(out, "attr", false);
        for (k, &a) in attr.iter().enumerate() {
            out.push(if k == 0 { b'[' } else { b',' });
            write_u64(out, u64::from(a));
        }
        out.push(b']');
    }
    if let Some((w, h)) = plan.size {
        write_key(out, "w", false);
        write_u64(out, u64::from(w));
        write_key(out, "h", false);
        write_u64(out, u64::from(h));
    }
    if let Some(mtype) = plan.kind.mtype() {
        write_key(out, "mtype", false);
        write_i64(out, mtype);
    }
    // serde_json's map keeps its keys sorted.
    write_key(out, "ext", false);
    out.push(b'{');
    write_key(out, "offer_id", true);
    write_u64(out, offer.offer_id);
    write_key(out, "p_click", false);
    write_f64(out, f64::from(offer.p_click));
    write_key(out, "score", false);
    write_f64(out, f64::from(offer.score));
    out.extend_from_slice(b"}}");
}

/// `"n"`: a number as a JSON string.
fn write_decimal_str(out: &mut Vec<u8>, n: u64) {
    out.push(b'"');
    write_u64(out, n);
    out.push(b'"');
}

/// `,"name":["a","b"]`, or nothing for an empty list.
fn write_str_list<S: AsRef<str>>(out: &mut Vec<u8>, name: &str, items: &[S]) {
    if items.is_empty() {
        return;
    }
    write_key(out, name, false);
    for (k, item) in items.iter().enumerate() {
        out.push(if k == 0 { b'[' } else { b',' });
        out.push(b'"');
        write_str_contents(out, item.as_ref());
        out.push(b'"');
    }
    out.push(b']');
}
