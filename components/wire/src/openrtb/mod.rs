//! OpenRTB 2.5/2.6 bid requests in, bid responses out: the data layer.
//!
//! This module owns the wire types of the OpenRTB 2.x protocol that the
//! engine reads and writes, and the one conversion between the protocol and
//! the feature schema:
//!
//! - [`parse_request`] reads one `BidRequest` JSON document into a
//!   [`BidRequest`], enforcing [`limits`] and then the rules of OpenRTB 2.6
//!   that types cannot express (`validate`: a request id, 1 to
//!   [`limits::IMPS_MAX`] impressions with unique ids, exactly one of
//!   `site`/`app`/`dooh`, sized banners and formats, `mimes` on video and
//!   audio, valid `regs` and consent values, ...). Every failure is an
//!   [`Error::OpenRtb`] whose `path` names the offending field
//!   (`imp[0].banner.format[1].w`), or `$` for the document itself.
//! - [`BidRequest::impressions`] turns a parsed request into one
//!   [`Impression`] per `imp`: the impression's id, floor, currency, kind and
//!   the [`RequestContext`](cx_features::RequestContext) the feature
//!   schema reads. It never fails: absent data becomes the context's
//!   "missing" values.
//! - [`BidResponse`], [`SeatBid`], [`Bid`] and [`NoBidReason`] are what the
//!   engine answers with; [`BidResponse::check`] verifies that a response is
//!   well formed for its request (tests and debug assertions use it).
//!
//! Only the fields the engine uses, or is likely to, are modelled; every
//! other field, including the many `ext` objects of sub-objects and whole
//! OpenRTB 2.6 additions (`device.sua`, `source.schain`, ...), is skipped
//! while parsing, so a sender's unusual types there can never fail a
//! request. `ext` is kept, as raw JSON, on the request, `imp`, `site`, `app`,
//! `device`, `user` and `regs`, where exchanges put what matters; so is
//! `dooh`, whose presence matters.
//!
//! Data layout: requests are parsed once into owned plain structs (owned
//! `String`s and `Vec`s, `Option` for every optional field), not borrowed
//! from the input buffer. Borrowing (`&str` slices) would save a copy of
//! every string, but JSON strings with escapes cannot be borrowed, the
//! request would pin the network buffer for as long as it lives, and the
//! lifetimes would spread into every engine type; a request is at most
//! [`limits::REQUEST_BYTES_MAX`] bytes and is parsed exactly once, so the
//! copy is cheap next to the model. The structs are then converted once
//! into per-impression contexts; request-level fields (user, device, site)
//! are derived once and cloned per impression. Conversion copies only
//! bounded data: lists are cut to
//! [`features::limits::LIST_ITEMS_MAX`](cx_features::limits::LIST_ITEMS_MAX)
//! items and strings over
//! [`features::limits::VALUE_BYTES_MAX`](cx_features::limits::VALUE_BYTES_MAX)
//! bytes are left out, so a hostile request cannot multiply its own size by
//! its impression count.
//!
//! `docs/OPENRTB.md` documents the field mapping, the limits and the errors.
//!
//! ```
//! use cx_wire::openrtb::{parse_request, Bid, BidResponse, ImpKind, NoBidReason, SeatBid};
//!
//! let request = parse_request(br#"{
//!     "id": "req-1",
//!     "imp": [{"id": "1", "bidfloor": 0.5, "banner": {"w": 320, "h": 50}}],
//!     "app": {"id": "app-9", "bundle": "com.example.game"},
//!     "device": {"devicetype": 4, "os": "Android", "geo": {"country": "USA"}}
//! }"#)?;
//! let imps = request.impressions();
//! assert_eq!(imps.len(), 1);
//! assert_eq!(imps[0].kind, ImpKind::Banner);
//! assert!(imps[0].ctx.is_app);
//! assert_eq!(imps[0].ctx.domain, "com.example.game");
//! assert_eq!((imps[0].ctx.placement_width, imps[0].ctx.placement_height), (320, 50));
//!
//! let response = BidResponse {
//!     id: request.id.clone(),
//!     seatbid: vec![SeatBid {
//!         bid: vec![Bid { id: "b1".into(), impid: "1".into(), price: 0.8, ..Bid::default() }],
//!         seat: None,
//!     }],
//!     ..BidResponse::default()
//! };
//! response.check(&request)?;
//! let no_bid = BidResponse::no_bid(&request.id, NoBidReason::UnsupportedDevice);
//! assert_eq!(serde_json::to_string(&no_bid).unwrap(), r#"{"id":"req-1","nbr":6}"#);
//! # Ok::<(), cx_wire::Error>(())
//! ```

mod context;
mod convert;
mod de;
mod request;
mod response;
mod validate;

pub use context::{App, Content, Data, Device, Geo, Publisher, Regs, Segment, Site, User};
pub use convert::{ImpKind, Impression};
pub use request::{Audio, Banner, BidRequest, Deal, Format, Imp, Native, Pmp, Video};
pub use response::{Bid, BidResponse, NoBidReason, SeatBid};

use crate::error::{Error, Result};

/// Documented limits of the OpenRTB layer. A document over a byte limit, or
/// a list over an item limit, is refused with an [`Error::OpenRtb`] naming
/// the list; nothing is silently cut while parsing (a cut `bcat` would let a
/// blocked category through). The limits are far above what real traffic
/// carries. Strings and `ext` objects have no limit of their own: the
/// document's byte limit bounds them. Nesting in modelled fields and `ext` is
/// bounded by `serde_json`'s recursion limit (128 levels, an error past it);
/// fields that are not modelled are skipped without recursion, so no nesting
/// can overflow the stack.
pub mod limits {
    /// Largest request (or response) document accepted by [`super::parse_request`]
    /// (and [`super::parse_response`]), in bytes.
    pub const REQUEST_BYTES_MAX: usize = 1 << 20;
    /// Most impressions (`imp`) in one request.
    pub const IMPS_MAX: usize = 64;
    /// Most entries in `imp.banner.format`.
    pub const FORMATS_MAX: usize = 64;
    /// Most deals in `imp.pmp.deals`.
    pub const DEALS_MAX: usize = 64;
    /// Most data providers in `user.data`.
    pub const DATA_MAX: usize = 64;
    /// Most segments in one `user.data[].segment`.
    pub const SEGMENTS_MAX: usize = 256;
    /// Most items in any other list of strings or integers (`cur`, `bcat`,
    /// `badv`, `bapp`, `wseat`, `site.cat`, `imp.video.mimes`,
    /// `imp.banner.battr`, `bid.adomain`, ...).
    pub const LIST_MAX: usize = 1024;
    /// Most seat bids in one response read by [`super::parse_response`].
    pub const SEATBIDS_MAX: usize = 64;
    /// Most bids in one seat bid read by [`super::parse_response`].
    pub const BIDS_MAX: usize = 256;
}

/// Parses one OpenRTB 2.5/2.6 `BidRequest` JSON document. Unknown fields are
/// ignored.
///
/// Refused, with an [`Error::OpenRtb`] whose `path` names the field:
/// a document over [`limits::REQUEST_BYTES_MAX`] bytes or not valid JSON
/// (`$`, or where the syntax broke); a wrong type anywhere in a modelled field
/// (`imp[0].bidfloor`: `invalid type: string "x", expected f64`); a list over
/// its limit; and, once parsed, a request that breaks OpenRTB 2.6: a missing
/// or empty required field (`id`, `imp[2].id`, `imp[0].video.mimes`,
/// `imp[0].native.request`, a deal's `id`), an empty `imp`, a duplicate
/// impression id, a negative floor, not exactly one of `site`, `app` and
/// `dooh`, a banner without a size, a `format` mixing absolute and ratio
/// sizes, a zero size, bit rate, `ppi` or `tmax`, a latitude or longitude out
/// of range, and invalid `regs`/consent values (`docs/OPENRTB.md`,
/// "Validation", lists every rule). A `null` for an optional field or a list
/// reads as absent.
pub fn parse_request(json: &[u8]) -> Result<BidRequest> {
    let request: BidRequest = parse_document(json)?;
    validate::request(&request)?;
    Ok(request)
}

/// Parses one OpenRTB 2.x `BidResponse` JSON document (e.g. a recorded
/// response, or one of ours read back in a test), with the same byte limit
/// and error paths as [`parse_request`] and the [`limits::SEATBIDS_MAX`] /
/// [`limits::BIDS_MAX`] list limits. It checks types only; use
/// [`BidResponse::check`] to check the content against a request.
pub fn parse_response(json: &[u8]) -> Result<BidResponse> {
    parse_document(json)
}

/// Deserialises one document of at most [`limits::REQUEST_BYTES_MAX`] bytes,
/// turning serde errors into [`Error::OpenRtb`] with a field path.
///
/// A document is read once without tracking where the reader is, since
/// tracking each value's path costs a third of the whole read, and as
/// text checked to be UTF-8 as a whole. Only a document that fails is read
/// again, from its bytes with the path tracked
/// ([`parse_document_tracked`]), to name where it failed: the same error
/// as ever, for at most twice the work on a refused document.
fn parse_document<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T> {
    use serde::Deserialize as _;
    // Checking the whole document's UTF-8 at once costs less than checking
    // each string as it is read, which reading from bytes does.
    let within_limit = json.len() <= limits::REQUEST_BYTES_MAX;
    if let Some(text) = within_limit
        .then(|| std::str::from_utf8(json).ok())
        .flatten()
    {
        let mut json_de = serde_json::Deserializer::from_str(text);
        if let Ok(de::Obj(value)) = de::Obj::<T>::deserialize(&mut json_de) {
            json_de.end().map_err(|e| json_error(".", &e))?;
            return Ok(value);
        }
    }
    parse_document_tracked(json)
}

/// [`parse_document`] with every value's path tracked, for the error.
fn parse_document_tracked<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T> {
    if json.len() > limits::REQUEST_BYTES_MAX {
        return Err(openrtb_error(
            "$",
            format!(
                "document is {} bytes, more than the limit of {} bytes",
                json.len(),
                limits::REQUEST_BYTES_MAX
            ),
        ));
    }
    let mut json_de = serde_json::Deserializer::from_slice(json);
    let de::Obj(value) = serde_path_to_error::deserialize(&mut json_de)
        .map_err(|e| json_error(&known_path(e.path()), e.inner()))?;
    json_de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

/// The path as `serde_path_to_error` prints it (`imp[0].banner`, `.` for the
/// root), cut before its first unknown segment: a syntax error in the middle
/// of an object is reported at the object, with its line and column.
fn known_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => break,
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The [`Error::OpenRtb`] for a serde_json error at `path` (as
/// `serde_path_to_error` prints it, `.` for the root).
fn json_error(path: &str, error: &serde_json::Error) -> Error {
    let mut reason = error.to_string();
    if error.classify() == serde_json::error::Category::Data {
        // The path already says where; the position adds nothing for a type error.
        let position = format!(" at line {} column {}", error.line(), error.column());
        if let Some(stripped) = reason.strip_suffix(&position) {
            reason.truncate(stripped.len());
        }
    }
    let root = path == ".";
    // serde reports a missing field at the object that lacks it; name the field.
    if let Some(field) = reason
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        let path = if root {
            field.to_owned()
        } else {
            format!("{path}.{field}")
        };
        return openrtb_error(path, "missing required field");
    }
    openrtb_error(if root { "$" } else { path }, reason)
}

/// Shorthand for an [`Error::OpenRtb`].
fn openrtb_error(path: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::OpenRtb {
        path: path.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> (String, String) {
        match parse_request(json.as_bytes()) {
            Err(Error::OpenRtb { path, reason }) => (path, reason),
            other => panic!("expected an OpenRtb error for {json}, got {other:?}"),
        }
    }

    #[test]
    fn type_errors_name_the_field_without_a_position() {
        let (path, reason) = err(r#"{"id":"r","imp":[{"id":"1","bidfloor":"x"}]}"#);
        assert_eq!(path, "imp[0].bidfloor");
        assert_eq!(reason, "invalid type: string \"x\", expected f64");
    }

    #[test]
    fn missing_fields_are_named_at_any_depth() {
        assert_eq!(err(r#"{"imp":[{"id":"1"}]}"#).0, "id");
        let (path, reason) = err(r#"{"id":"r","imp":[{"id":"1"},{}]}"#);
        assert_eq!(
            (path.as_str(), reason.as_str()),
            ("imp[1].id", "missing required field")
        );
        assert_eq!(err(r#"{"id":"r"}"#).0, "imp");
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let (path, reason) = err("{");
        assert_eq!(path, "$");
        assert!(reason.contains("line 1"), "{reason}");
        let (path, reason) = err(r#"{"id":"r","imp":[{"id":"1"}]} trailing"#);
        assert_eq!(path, "$");
        assert!(reason.contains("trailing"), "{reason}");
    }

    #[test]
    fn list_limits_name_the_list() {
        let formats = vec![r#"{"w":1,"h":1}"#; limits::FORMATS_MAX + 1].join(",");
        let json =
            format!(r#"{{"id":"r","imp":[{{"id":"1","banner":{{"format":[{formats}]}}}}]}}"#);
        let (path, reason) = err(&json);
        assert_eq!(path, "imp[0].banner.format");
        assert!(
            reason.contains(&limits::FORMATS_MAX.to_string()),
            "{reason}"
        );
    }

    mod read_once {
        use super::*;
        use proptest::prelude::*;

        /// Committed requests: the spec's examples and a prebid sample.
        const DOCUMENTS: [&str; 3] = [
            include_str!("../../tests/fixtures/openrtb/2.5_mobile.json"),
            include_str!("../../tests/fixtures/openrtb/2.6_video.json"),
            include_str!("../../tests/fixtures/openrtb/bsm_breq.video.json"),
        ];

        /// What the read gave, as text: the request or the error.
        fn outcome(result: Result<BidRequest>) -> String {
            format!("{result:?}")
        }

        #[test]
        fn the_documents_are_valid_requests() {
            for json in DOCUMENTS {
                parse_document::<BidRequest>(json.as_bytes()).expect("a valid request");
            }
        }

        proptest! {
            /// A document cut short, with a byte replaced, or with a byte
            /// put in (invalid UTF-8 among them), reads the same once as
            /// tracked: the same request, or the same error and path.
            #[test]
            fn reading_once_gives_what_the_tracked_read_gives(
                doc in 0..DOCUMENTS.len(),
                at in any::<prop::sample::Index>(),
                byte in prop::sample::select(b"{}[],:\"0-9.ae \\x\xc3\xa9\x80\xff".to_vec()),
                edit in 0..3u8,
            ) {
                let mut json = DOCUMENTS[doc].as_bytes().to_vec();
                let at = at.index(json.len());
                match edit {
                    0 => json.truncate(at),
                    1 => json[at] = byte,
                    _ => json.insert(at, byte),
                }
                prop_assert_eq!(
                    outcome(parse_document(&json)),
                    outcome(parse_document_tracked(&json))
                );
            }
        }
    }
}
