//! The win, billing and loss notice URLs a bid carries (`nurl`, `burl`,
//! `lurl`), with the OpenRTB substitution macros the exchange fills in.
//!
//! The shape is fixed, because the server's notice endpoints parse it:
//!
//! ```text
//! nurl = {base}/notice/win?bid=${AUCTION_BID_ID}&imp=${AUCTION_IMP_ID}&auction=${AUCTION_ID}&price=${AUCTION_PRICE}&cur=${AUCTION_CURRENCY}&offer={offer_id}
//! burl = {base}/notice/bill?{the same query}
//! lurl = {base}/notice/loss?{the same query}&loss=${AUCTION_LOSS}
//! ```
//!
//! `{base}` is the notice base URL (`http://127.0.0.1:8080`, no trailing
//! slash) and `{offer_id}` the decimal offer id. The macros stay literal
//! in the response.

use crate::error::{Error, Result};
use cx_domain::notice::NoticeKind;
use std::fmt::Write as _;

/// Path of the win notice, after the base URL.
pub const WIN_PATH: &str = "/notice/win";
/// Path of the billing notice, after the base URL.
pub const BILL_PATH: &str = "/notice/bill";
/// Path of the loss notice, after the base URL.
pub const LOSS_PATH: &str = "/notice/loss";

/// The query every notice URL carries, before `&offer=`: the OpenRTB
/// macros for the bid id, impression id, auction id, clearing price and
/// currency.
pub const NOTICE_QUERY: &str = "bid=${AUCTION_BID_ID}&imp=${AUCTION_IMP_ID}&auction=${AUCTION_ID}\
                                &price=${AUCTION_PRICE}&cur=${AUCTION_CURRENCY}";

/// What a loss notice adds after the offer id: the exchange's loss reason.
pub const LOSS_QUERY: &str = "&loss=${AUCTION_LOSS}";

/// Longest notice base URL, bytes.
pub const BASE_URL_BYTES_MAX: usize = 1024;

/// Where a bid's notices go: a base URL, or none (no notice URLs in bids).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoticeUrls {
    base: Option<String>,
    /// Per [`NoticeKind`] (at its `index`), what comes before the
    /// offer id and after it, already escaped as JSON string text, so
    /// that a bid's URLs are written into its JSON without a scan
    /// ([`Self::write_json`]). Empty when notices are off.
    json_parts: Vec<(String, String)>,
}

/// Room a notice URL is given up front, bytes.
const NOTICE_URL_BYTES_TYPICAL: usize = 192;

/// The path after the base URL of a notice of `kind`, and what its URL
/// adds after the offer id.
fn path_and_tail(kind: NoticeKind) -> (&'static str, &'static str) {
    match kind {
        NoticeKind::Win => (WIN_PATH, ""),
        NoticeKind::Bill => (BILL_PATH, ""),
        NoticeKind::Loss => (LOSS_PATH, LOSS_QUERY),
    }
}

/// The three notice URLs of one bid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BidNotices {
    /// The win notice (`nurl`).
    pub win: String,
    /// The billing notice (`burl`).
    pub bill: String,
    /// The loss notice (`lurl`).
    pub loss: String,
}

impl NoticeUrls {
    /// Notices under `base`: an `http://` or `https://` URL with a host,
    /// no query, fragment, whitespace or control character, at most
    /// [`BASE_URL_BYTES_MAX`] bytes. Trailing `/`s are dropped. An empty
    /// `base` means no notice URLs ([`Self::none`]).
    pub fn new(base: &str) -> Result<Self> {
        let trimmed = base.trim_end_matches('/');
        if base.is_empty() {
            return Ok(Self::none());
        }
        let host = trimmed
            .strip_prefix("http://")
            .or_else(|| trimmed.strip_prefix("https://"));
        let reason = if base.len() > BASE_URL_BYTES_MAX {
            format!("is {} bytes, more than {BASE_URL_BYTES_MAX}", base.len())
        } else if host.is_none_or(str::is_empty) || host.is_some_and(|h| h.starts_with('/')) {
            format!("{base:?} is not an http:// or https:// URL with a host")
        } else if trimmed.contains(['?', '#']) {
            format!("{base:?} has a query or fragment; give the base only")
        } else if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            format!("{base:?} holds whitespace or a control character")
        } else {
            return Ok(Self::under(trimmed));
        };
        Err(Error::Config(format!("`openrtb.notice_base_url` {reason}")))
    }

    /// No notice URLs: bids go out without `nurl`, `burl` and `lurl`.
    pub fn none() -> Self {
        Self {
            base: None,
            json_parts: Vec::new(),
        }
    }

    /// Notices under `base`, already checked.
    fn under(base: &str) -> Self {
        let json_text = |text: &str| {
            let quoted = serde_json::to_string(text).unwrap_or_default();
            quoted[1..quoted.len() - 1].to_owned()
        };
        let json_parts = NoticeKind::ALL
            .iter()
            .map(|&notice| {
                let (path, tail) = path_and_tail(notice);
                let head = format!("{base}{path}?{NOTICE_QUERY}&offer=");
                (json_text(&head), json_text(tail))
            })
            .collect();
        Self {
            base: Some(base.to_owned()),
            json_parts,
        }
    }

    /// Appends the URL of `notice` for `offer_id` to `out` as a JSON
    /// string, quotes included (the same text as [`Self::write_url`]);
    /// `false`, appending nothing, when notices are off.
    pub fn write_json(&self, notice: NoticeKind, offer_id: u64, out: &mut Vec<u8>) -> bool {
        let Some((head, tail)) = self.json_parts.get(notice.index()) else {
            return false;
        };
        out.push(b'"');
        out.extend_from_slice(head.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = std::io::Write::write_fmt(out, format_args!("{offer_id}"));
        out.extend_from_slice(tail.as_bytes());
        out.push(b'"');
        true
    }

    /// The base URL, without a trailing slash, if notices are on.
    pub fn base(&self) -> Option<&str> {
        self.base.as_deref()
    }

    /// The notice URLs of a bid with offer `offer_id`, if notices are on.
    pub fn for_offer(&self, offer_id: u64) -> Option<BidNotices> {
        self.base.as_ref()?;
        let url = |notice| {
            let mut url = String::with_capacity(NOTICE_URL_BYTES_TYPICAL);
            self.write_url(notice, offer_id, &mut url);
            url
        };
        Some(BidNotices {
            win: url(NoticeKind::Win),
            bill: url(NoticeKind::Bill),
            loss: url(NoticeKind::Loss),
        })
    }

    /// Appends the URL of `notice` for `offer_id` to `out` (the shape in
    /// the [module docs](self)); `false`, appending nothing, when notices
    /// are off.
    pub fn write_url(&self, notice: NoticeKind, offer_id: u64, out: &mut String) -> bool {
        let Some(base) = self.base.as_deref() else {
            return false;
        };
        let (path, tail) = path_and_tail(notice);
        // Writing into a String cannot fail.
        let _ = write!(out, "{base}{path}?{NOTICE_QUERY}&offer={offer_id}{tail}");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_have_the_agreed_shape() {
        let n = NoticeUrls::new("http://127.0.0.1:8080/").unwrap();
        assert_eq!(n.base(), Some("http://127.0.0.1:8080"));
        let urls = n.for_offer(1004).unwrap();
        let query = "bid=${AUCTION_BID_ID}&imp=${AUCTION_IMP_ID}&auction=${AUCTION_ID}\
                     &price=${AUCTION_PRICE}&cur=${AUCTION_CURRENCY}&offer=1004";
        assert_eq!(
            urls.win,
            format!("http://127.0.0.1:8080/notice/win?{query}")
        );
        assert_eq!(
            urls.bill,
            format!("http://127.0.0.1:8080/notice/bill?{query}")
        );
        assert_eq!(
            urls.loss,
            format!("http://127.0.0.1:8080/notice/loss?{query}&loss=${{AUCTION_LOSS}}")
        );
        let public = NoticeUrls::new("https://bid.example.com/cx").unwrap();
        assert!(public
            .for_offer(1)
            .unwrap()
            .win
            .starts_with("https://bid.example.com/cx/notice/win?bid="));
    }

    #[test]
    fn urls_written_as_json_read_back_as_the_urls() {
        for base in ["http://127.0.0.1:8080", "https://h.example/a\"b\\c/é"] {
            let n = NoticeUrls::new(base).unwrap();
            for notice in NoticeKind::ALL {
                let mut json = Vec::new();
                assert!(n.write_json(notice, 1004, &mut json));
                let mut url = String::new();
                assert!(n.write_url(notice, 1004, &mut url));
                let back: String = serde_json::from_slice(&json).unwrap();
                assert_eq!(back, url, "{base} {notice:?}");
            }
        }
        let (mut json, mut url) = (Vec::new(), String::new());
        assert!(!NoticeUrls::none().write_json(NoticeKind::Win, 1, &mut json));
        assert!(!NoticeUrls::none().write_url(NoticeKind::Win, 1, &mut url));
        assert!(json.is_empty() && url.is_empty());
    }

    #[test]
    fn empty_means_no_notices() {
        let n = NoticeUrls::new("").unwrap();
        assert_eq!(n, NoticeUrls::none());
        assert_eq!(n.for_offer(1), None);
    }

    #[test]
    fn bad_bases_are_refused_naming_the_key() {
        for bad in [
            "127.0.0.1:8080",
            "ftp://x.example",
            "http://",
            "http:///path",
            "http://x.example/?a=1",
            "http://x.example/#f",
            "http://x .example",
            "/",
        ] {
            let err = NoticeUrls::new(bad).unwrap_err().to_string();
            assert!(err.contains("openrtb.notice_base_url"), "{bad}: {err}");
        }
        let long = format!("http://{}.example", "a".repeat(BASE_URL_BYTES_MAX));
        assert!(NoticeUrls::new(&long).is_err());
    }
}
