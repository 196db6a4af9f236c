//! Reading a notice URL's query (`bid=...&imp=...&price=...`) into a
//! [`Notice`], with the exchange's macros filled in. The parameters are the
//! ones the bidder wrote into its `nurl`/`burl`/`lurl` (see
//! `docs/OPENRTB.md`, "Notices"); unknown parameters are ignored, and a
//! macro the exchange did not substitute (`${AUCTION_PRICE}` left as is) is
//! an error naming the parameter.

use cx_domain::notice::{Notice, NoticeKind, NOTICE_ID_BYTES_MAX};

/// A notice query that cannot be used: the parameter and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadNotice {
    /// The query parameter at fault (`price`).
    pub param: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for BadNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.param, self.message)
    }
}

fn bad(param: &'static str, message: impl Into<String>) -> BadNotice {
    BadNotice {
        param,
        message: message.into(),
    }
}

/// Parses the query of a `kind` notice.
pub fn parse(kind: NoticeKind, query: &[u8]) -> Result<Notice, BadNotice> {
    let mut notice = Notice {
        kind,
        bid_id: String::new(),
        imp_id: String::new(),
        auction_id: String::new(),
        price_cpm: None,
        currency: String::new(),
        offer_id: None,
        loss_code: None,
    };
    for (name, value) in form_urlencoded::parse(query) {
        match name.as_ref() {
            "bid" => notice.bid_id = id("bid", &value)?,
            "imp" => notice.imp_id = id("imp", &value)?,
            "auction" => notice.auction_id = id("auction", &value)?,
            "cur" => notice.currency = currency(&value)?,
            "price" => notice.price_cpm = Some(price(&value)?),
            "offer" => notice.offer_id = Some(number("offer", &value)?),
            "loss" => {
                let code = number("loss", &value)?;
                let code = u32::try_from(code).map_err(|_| bad("loss", "over 32 bits"))?;
                notice.loss_code = Some(code);
            }
            _ => {}
        }
    }
    if notice.bid_id.is_empty() {
        return Err(bad("bid", "missing; the bid id is required"));
    }
    if kind != NoticeKind::Loss && notice.price_cpm.is_none() {
        return Err(bad("price", "missing; a win or billing notice carries it"));
    }
    Ok(notice)
}

/// Whether `value` is a macro the exchange left unsubstituted.
fn unsubstituted(value: &str) -> bool {
    value.starts_with("${") || value.starts_with("%24%7B")
}

fn id(param: &'static str, value: &str) -> Result<String, BadNotice> {
    if unsubstituted(value) {
        return Err(bad(param, format!("`{value}` was not substituted")));
    }
    if value.len() > NOTICE_ID_BYTES_MAX {
        let msg = format!("{} bytes, the limit is {NOTICE_ID_BYTES_MAX}", value.len());
        return Err(bad(param, msg));
    }
    Ok(value.to_owned())
}

fn currency(value: &str) -> Result<String, BadNotice> {
    if unsubstituted(value) {
        return Err(bad("cur", format!("`{value}` was not substituted")));
    }
    if value.len() != 3 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("cur", format!("`{value}` is not an ISO-4217 code")));
    }
    Ok(value.to_owned())
}

fn price(value: &str) -> Result<f64, BadNotice> {
    if unsubstituted(value) {
        return Err(bad("price", format!("`{value}` was not substituted")));
    }
    match value.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(bad(
            "price",
            format!("`{value}` is not a finite price >= 0 (CPM)"),
        )),
    }
}

fn number(param: &'static str, value: &str) -> Result<u64, BadNotice> {
    if unsubstituted(value) {
        return Err(bad(param, format!("`{value}` was not substituted")));
    }
    value
        .parse::<u64>()
        .map_err(|_| bad(param, format!("`{value}` is not a whole number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_win_notice_is_read() {
        let q = b"bid=n0-w1-e2-s3&imp=1&auction=a%201&price=1.25&cur=USD&offer=1003&extra=x";
        let n = parse(NoticeKind::Win, q).expect("valid");
        assert_eq!(n.bid_id, "n0-w1-e2-s3");
        assert_eq!(n.auction_id, "a 1");
        assert_eq!(n.price_cpm, Some(1.25));
        assert_eq!(n.offer_id, Some(1003));
        assert_eq!(n.currency, "USD");
    }

    #[test]
    fn a_loss_needs_no_price() {
        let n = parse(NoticeKind::Loss, b"bid=b&loss=102&price=${AUCTION_PRICE}");
        assert_eq!(n.unwrap_err().param, "price");
        let n = parse(NoticeKind::Loss, b"bid=b&loss=102").expect("valid");
        assert_eq!(n.loss_code, Some(102));
    }

    #[test]
    fn bad_queries_name_their_parameter() {
        let cases: [(&[u8], &str); 8] = [
            (b"price=1", "bid"),
            (b"bid=b", "price"),
            (b"bid=b&price=-1", "price"),
            (b"bid=b&price=NaN", "price"),
            (b"bid=b&price=inf", "price"),
            (b"bid=${AUCTION_BID_ID}&price=1", "bid"),
            (b"bid=b&price=1&cur=usd", "cur"),
            (b"bid=b&price=1&offer=x", "offer"),
        ];
        for (query, param) in cases {
            let e = parse(NoticeKind::Win, query).unwrap_err();
            assert_eq!(e.param, param, "{}", String::from_utf8_lossy(query));
        }
        let long = format!("bid={}&price=1", "b".repeat(NOTICE_ID_BYTES_MAX + 1));
        assert_eq!(
            parse(NoticeKind::Win, long.as_bytes()).unwrap_err().param,
            "bid"
        );
        let invalid_utf8 = b"bid=%ff%fe&price=1";
        // Lossy decoding keeps it a string; it is just an unknown bid.
        assert!(parse(NoticeKind::Win, invalid_utf8).is_ok());
    }
}
