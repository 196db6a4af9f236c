//! The BidResponse written as JSON straight into an answer's buffer: what
//! the HTTP bidder sends.
//!
//! [`write_response`] decides every bid through the same `choose_bid` and
//! `render_bid` (in `super::response`) as
//! [`build_response`](super::response::build_response), and writes the
//! JSON that serde_json would write for that function's [`BidResponse`]
//! (the tests hold the two to the same document for every request of the
//! spec examples and the prebid samples). What it saves is the
//! response's owned strings, its `serde_json::Value` extensions, and
//! copies of the markup: a bid's markup is rendered straight into the
//! answer between the members before it and those after it, escaped once
//! as it is written, eight bytes at a time ([`super::json_out`]); a
//! template's own text is copied in the JSON form made when the catalog
//! was built. The bid's id goes through a buffer reused from answer to
//! answer ([`ResponseBuffers`]).
//!
//! [`BidResponse`]: cx_wire::openrtb::BidResponse

use super::json_out::{write_f64, write_i64, write_key, write_str, write_str_contents, write_u64};
use super::notice::NoticeUrls;
use super::response::{choose_bid, render_bid, BidChoice, BidPlan, Bidder, NO_IMPRESSIONS};
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

/// What [`write_response`] reuses from answer to answer: the bid's id and
/// a value's markup escape; keep one per connection (or worker) so that
/// they are allocated once.
#[derive(Debug, Default)]
pub struct ResponseBuffers {
    /// The bid's id.
    bid_id: String,
    /// Scratch: a value escaped for HTML and XML, before JSON.
    value: String,
}

/// A bid's markup written as the inside of a JSON string at the end of
/// the answer itself: a template's text is copied in its escaped form,
/// made when the catalog was built; what is rendered per bid (values,
/// native documents) is escaped here.
pub(super) struct JsonMarkup<'o> {
    /// The answer; the markup starts at `start`.
    json: &'o mut Vec<u8>,
    start: usize,
    /// Scratch: a value escaped for HTML and XML, before JSON.
    value: &'o mut String,
}

impl<'o> JsonMarkup<'o> {
    /// Markup appended to `json` from its current end.
    pub(super) fn new(json: &'o mut Vec<u8>, value: &'o mut String) -> Self {
        let start = json.len();
        Self { json, start, value }
    }
}

impl MarkupOut for JsonMarkup<'_> {
    fn clear_markup(&mut self) {
        self.json.truncate(self.start);
    }

    fn push_text(&mut self, _plain: &str, json: &str) {
        self.json.extend_from_slice(json.as_bytes());
    }

    fn push_value(&mut self, value: &str) {
        self.value.clear();
        escape_markup(value, self.value);
        write_str_contents(self.json, self.value);
    }

    fn push_markup(&mut self, markup: &str) {
        write_str_contents(self.json, markup);
    }
}

/// Appends the BidResponse for `impressions` (one per impression of
/// `request`, as decided) to `out` as JSON, and says whether it bids. The
/// same response as [`build_response`](super::response::build_response),
/// bid ids issued alike. Each bid's markup is rendered straight into
/// `out`; a bid that turns out to have none is cut off again.
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
        match write_bid(request, imp, bidder, buffers, bids == 0, out) {
            Ok(()) => bids += 1,
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

/// Appends `imp`'s bid object (after `,"seatbid":[{"bid":[` when it is
/// the `first`, else after a comma), or appends nothing and says why the
/// impression gets no bid.
fn write_bid(
    request: &BidRequest,
    imp: &ImpOutcome,
    bidder: &mut Bidder<'_>,
    buffers: &mut ResponseBuffers,
    first: bool,
    out: &mut Vec<u8>,
) -> Result<(), (NoBidReason, &'static str)> {
    let choice = choose_bid(request, imp, bidder, &mut buffers.bid_id)?;
    let mark = out.len();
    out.extend_from_slice(if first {
        b",\"seatbid\":[{\"bid\":["
    } else {
        b","
    });
    write_bid_head(&choice, &buffers.bid_id, bidder.notices, out);
    out.push(b'"');
    let mut adm = JsonMarkup::new(out, &mut buffers.value);
    match render_bid(request, choice, bidder, &buffers.bid_id, &mut adm) {
        Ok(plan) => {
            out.push(b'"');
            write_bid_tail(&plan, out);
            Ok(())
        }
        Err(why) => {
            out.truncate(mark);
            Err(why)
        }
    }
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

/// A bid object's members before the markup, in the order of
/// [`cx_wire::openrtb::Bid`]'s fields (those that serde leaves out when
/// empty left out alike), up to `"adm":`.
fn write_bid_head(
    choice: &BidChoice<'_, '_>,
    bid_id: &str,
    notices: &NoticeUrls,
    out: &mut Vec<u8>,
) {
    let offer = choice.offer;
    out.push(b'{');
    write_key(out, "id", true);
    write_str(out, bid_id);
    write_key(out, "impid", false);
    write_str(out, choice.imp_id);
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
}

/// The bid object's members after the markup, and its end.
fn write_bid_tail(plan: &BidPlan<'_, '_>, out: &mut Vec<u8>) {
    let choice = &plan.choice;
    let (offer, catalog, i) = (choice.offer, choice.catalog, choice.i);
    write_key(out, "adid", false);
    write_decimal_str(out, offer.offer_id);
    write_str_list(out, "adomain", catalog.adomain(i));
    write_key(out, "cid", false);
    write_decimal_str(out, offer.offer_id);
    if !choice.creative_id.is_empty() {
        write_key(out, "crid", false);
        write_str(out, choice.creative_id);
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
