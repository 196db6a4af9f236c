//! The fields of a bid an exchange needs (markup, notice URLs, markup type,
//! size, categories, attributes, deal) and what `BidResponse::check`
//! requires of them.

use cx_wire::openrtb::{parse_request, parse_response, Bid, BidRequest, BidResponse, SeatBid};
use cx_wire::Error;
use serde_json::{json, Value};

fn request() -> BidRequest {
    parse_request(
        br#"{"id":"req-1","site":{"id":"s1"},
            "badv":["blocked.example"],"bcat":["IAB7","IAB9-9"],
            "imp":[
              {"id":"a","bidfloor":0.5,"banner":{"w":300,"h":250,"battr":[9,10]},
               "pmp":{"deals":[{"id":"deal-1"}]}},
              {"id":"v","video":{"mimes":["video/mp4"],"w":640,"h":360,"battr":[16]}},
              {"id":"n","native":{"request":"{\"assets\":[]}","ver":"1.2"}}]}"#,
    )
    .unwrap()
}

/// A bid using every field, valid for impression `a`.
fn full_bid() -> Bid {
    Bid {
        id: "0-0-k2-1".into(),
        impid: "a".into(),
        price: 1.25,
        nurl: Some("http://127.0.0.1:8080/notice/win?bid=${AUCTION_BID_ID}".into()),
        burl: Some("https://bids.example/notice/bill?p=${AUCTION_PRICE}".into()),
        lurl: Some("http://127.0.0.1:8080/notice/loss?loss=${AUCTION_LOSS}".into()),
        adm: Some("<a href=\"https://x.example/?a=1&amp;b=2\">ad</a>".into()),
        adid: Some("1003".into()),
        adomain: vec!["brand.example".into()],
        cid: Some("1003".into()),
        crid: Some("cr-1003".into()),
        cat: vec!["IAB1-6".into(), "IAB71".into(), "IAB9".into()],
        attr: vec![1, 12],
        dealid: Some("deal-1".into()),
        w: Some(300),
        h: Some(250),
        mtype: Some(1),
        ext: None,
    }
}

fn response(bid: Bid) -> BidResponse {
    BidResponse {
        id: "req-1".into(),
        seatbid: vec![SeatBid {
            bid: vec![bid],
            seat: Some("cx".into()),
        }],
        cur: Some("USD".into()),
        ..BidResponse::default()
    }
}

fn refused(bid: Bid, field: &str, reason: &str) {
    match response(bid).check(&request()) {
        Err(Error::OpenRtb { path, reason: r }) => {
            assert_eq!(path, format!("seatbid[0].bid[0].{field}"), "{r}");
            assert!(r.contains(reason), "{r:?} should contain {reason:?}");
        }
        other => panic!("expected a refusal at {field}, got {other:?}"),
    }
}

#[test]
fn every_bid_field_serialises_and_parses_back() {
    let full = response(full_bid());
    let text = serde_json::to_string(&full).unwrap();
    assert_eq!(parse_response(text.as_bytes()).unwrap(), full);
    let value: Value = serde_json::from_str(&text).unwrap();
    let bid = &value["seatbid"][0]["bid"][0];
    assert_eq!(bid["mtype"], json!(1));
    assert_eq!(bid["attr"], json!([1, 12]));
    assert_eq!(bid["cat"], json!(["IAB1-6", "IAB71", "IAB9"]));
    // The macros stay literal: the exchange substitutes them.
    assert_eq!(
        bid["nurl"],
        json!("http://127.0.0.1:8080/notice/win?bid=${AUCTION_BID_ID}")
    );
    full.check(&request()).unwrap();
}

#[test]
fn empty_lists_and_absent_fields_are_left_out() {
    let bare = Bid {
        id: "b".into(),
        impid: "a".into(),
        price: 1.0,
        ..Bid::default()
    };
    let text = serde_json::to_string(&bare).unwrap();
    assert_eq!(text, r#"{"id":"b","impid":"a","price":1.0}"#);
}

#[test]
fn markup_types_must_name_an_object_of_the_impression() {
    let video = Bid {
        impid: "v".into(),
        mtype: Some(2),
        attr: vec![],
        dealid: None,
        w: Some(640),
        h: Some(360),
        ..full_bid()
    };
    response(video.clone()).check(&request()).unwrap();
    let native = Bid {
        impid: "n".into(),
        mtype: Some(4),
        w: None,
        h: None,
        ..video.clone()
    };
    response(native).check(&request()).unwrap();
    refused(
        Bid {
            mtype: Some(2),
            ..full_bid()
        },
        "mtype",
        "is 2 (video), but imp[0] has no `video` object",
    );
    refused(
        Bid {
            mtype: Some(3),
            ..video
        },
        "mtype",
        "has no `audio` object",
    );
    for bad in [0, 5, -1] {
        refused(
            Bid {
                mtype: Some(bad),
                ..full_bid()
            },
            "mtype",
            "expected 1 (banner)",
        );
    }
}

#[test]
fn sizes_come_in_positive_pairs() {
    refused(
        Bid {
            h: None,
            ..full_bid()
        },
        "h",
        "missing; `w` is set",
    );
    refused(
        Bid {
            w: None,
            ..full_bid()
        },
        "w",
        "missing; `h` is set",
    );
    refused(
        Bid {
            w: Some(0),
            ..full_bid()
        },
        "w",
        "0x250 is not a size",
    );
    response(Bid {
        w: None,
        h: None,
        ..full_bid()
    })
    .check(&request())
    .unwrap();
}

#[test]
fn markup_and_notice_urls_must_be_usable() {
    refused(
        Bid {
            adm: Some(String::new()),
            ..full_bid()
        },
        "adm",
        "is empty",
    );
    for (field, bid) in [
        (
            "nurl",
            Bid {
                nurl: Some("ftp://x.example/win".into()),
                ..full_bid()
            },
        ),
        (
            "burl",
            Bid {
                burl: Some("/notice/bill".into()),
                ..full_bid()
            },
        ),
        (
            "lurl",
            Bid {
                lurl: Some("https://".into()),
                ..full_bid()
            },
        ),
    ] {
        refused(bid, field, "is not an http:// or https:// URL");
    }
}

#[test]
fn a_deal_must_be_one_of_the_impression() {
    refused(
        Bid {
            dealid: Some("deal-2".into()),
            ..full_bid()
        },
        "dealid",
        "`deal-2` is not the id of a deal of imp[0]",
    );
    refused(
        Bid {
            impid: "v".into(),
            mtype: Some(2),
            w: None,
            h: None,
            attr: vec![],
            ..full_bid()
        },
        "dealid",
        "of imp[1]",
    );
}

#[test]
fn blocked_advertisers_categories_and_attributes_are_refused() {
    refused(
        Bid {
            adomain: vec!["ok.example".into(), "blocked.example".into()],
            ..full_bid()
        },
        "adomain[1]",
        "`blocked.example` is blocked by the request's badv",
    );
    // `IAB7` blocks itself and its subcategories, not `IAB71`.
    refused(
        Bid {
            cat: vec!["IAB71".into(), "IAB7-3".into()],
            ..full_bid()
        },
        "cat[1]",
        "`IAB7-3` is blocked by the request's bcat `IAB7`",
    );
    // A blocked subcategory does not block its parent.
    response(Bid {
        cat: vec!["IAB9".into()],
        ..full_bid()
    })
    .check(&request())
    .unwrap();
    refused(
        Bid {
            cat: vec!["IAB9-9".into()],
            ..full_bid()
        },
        "cat[0]",
        "bcat `IAB9-9`",
    );
    refused(
        Bid {
            attr: vec![1, 10],
            ..full_bid()
        },
        "attr[1]",
        "10 is blocked by imp[0].banner.battr",
    );
    // Attribute 16 is blocked on the video impression only.
    response(Bid {
        attr: vec![16],
        ..full_bid()
    })
    .check(&request())
    .unwrap();
    refused(
        Bid {
            impid: "v".into(),
            mtype: Some(2),
            dealid: None,
            attr: vec![16],
            ..full_bid()
        },
        "attr[0]",
        "16 is blocked by imp[1].video.battr",
    );
}
