//! The document written piece by piece against the one serde_json wrote
//! from a `Value` tree (the code this module replaced, kept here as the
//! reference), on generated native requests and creatives; likewise what
//! a request asks of a creative ([`native_fit`]).

use super::{native_fit, native_into};
use crate::openrtb::markup::NATIVE_ASSETS_MAX;
use crate::openrtb::response_json::JsonMarkup;
use cx_domain::catalog::showable::native_asset;
use cx_domain::catalog::{CreativeSpec, NativeFit};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The Native 1.2 response answering the native request `request` (a JSON
/// string), or `None` when it cannot be read or a required asset cannot
/// be filled.
fn reference(request: &str, spec: &CreativeSpec) -> Option<String> {
    let parsed: Value = serde_json::from_str(request).ok()?;
    let root = parsed.get("native").unwrap_or(&parsed);
    let assets = root.get("assets")?.as_array()?;
    let mut answered = Vec::new();
    for asset in assets.iter().take(NATIVE_ASSETS_MAX) {
        let id = asset.get("id").and_then(Value::as_u64)?;
        let required = asset.get("required").and_then(Value::as_u64) == Some(1);
        match native_asset(asset, spec) {
            Some(mut filled) => {
                filled.insert("id".into(), json!(id));
                answered.push(Value::Object(filled));
            }
            None if required => return None,
            None => {}
        }
    }
    if answered.is_empty() {
        return None;
    }
    let mut response = Map::new();
    response.insert("ver".into(), json!("1.2"));
    response.insert("assets".into(), Value::Array(answered));
    response.insert("link".into(), json!({ "url": spec.click_url }));
    if let Some(url) = &spec.impression_url {
        if root.get("eventtrackers").is_some() {
            // A 1.2 request that lists the trackers it supports.
            response.insert(
                "eventtrackers".into(),
                json!([{ "event": 1, "method": 1, "url": url }]),
            );
        } else {
            response.insert("imptrackers".into(), json!([url]));
        }
    }
    serde_json::to_string(&Value::Object(response)).ok()
}

/// The response object of one request asset (without its `id`), or `None`
/// when the creative has nothing for it.
fn native_asset(asset: &Value, spec: &CreativeSpec) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(title) = asset.get("title") {
        let text = cut(spec.title.as_deref()?, title.get("len"));
        out.insert("title".into(), json!({ "text": text }));
    } else if let Some(img) = asset.get("img") {
        let icon = img.get("type").and_then(Value::as_u64) == Some(1);
        let url = if icon {
            &spec.icon_url
        } else {
            &spec.image_url
        };
        let mut image = Map::new();
        image.insert("url".into(), json!(url.as_deref()?));
        let side = |exact: &str, min: &str| {
            img.get(exact)
                .or_else(|| img.get(min))
                .and_then(Value::as_u64)
                .filter(|&n| n > 0)
        };
        if let (Some(w), Some(h)) = (side("w", "wmin"), side("h", "hmin")) {
            image.insert("w".into(), json!(w));
            image.insert("h".into(), json!(h));
        }
        out.insert("img".into(), Value::Object(image));
    } else if let Some(data) = asset.get("data") {
        let text = match data.get("type").and_then(Value::as_u64)? {
            1 => spec.sponsor.as_deref()?,
            2 => spec.description.as_deref()?,
            12 => spec.cta.as_deref()?,
            _ => return None,
        };
        out.insert(
            "data".into(),
            json!({ "value": cut(text, data.get("len")) }),
        );
    } else {
        return None;
    }
    Some(out)
}

/// `text` cut to at most `len` characters (when `len` is a positive number).
fn cut(text: &str, len: Option<&Value>) -> String {
    match len.and_then(Value::as_u64).filter(|&n| n > 0) {
        Some(n) => text
            .chars()
            .take(usize::try_from(n).unwrap_or(usize::MAX))
            .collect(),
        None => text.to_owned(),
    }
}

/// The new document, as the reference gives it; and checks that the
/// JSON string text written for the same request is its escape.
fn written(request: &str, spec: &CreativeSpec) -> Option<String> {
    let mut out = String::new();
    let answered = native_into(request, spec, &mut out);
    // The JSON form is written after text already in its buffer, as an
    // answer's markup follows the bid's members before it.
    let (mut json, mut value) = (b"{\"adm\":\"".to_vec(), String::new());
    let answered_json = native_into(request, spec, &mut JsonMarkup::new(&mut json, &mut value));
    assert_eq!(answered_json, answered);
    let escaped = serde_json::to_string(&out).expect("a string");
    assert_eq!(
        std::str::from_utf8(&json[8..]).expect("UTF-8"),
        &escaped[1..escaped.len() - 1],
        "JSON string text of {out:?}"
    );
    answered.then_some(out)
}

/// An object's JSON text from its members, which may repeat a key.
fn object(members: Vec<(String, String)>) -> String {
    let members: Vec<String> = members
        .into_iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Any value where a number is read: integers of every size, negative
/// ones, floats, and values of other kinds.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u64..4).prop_map(|n| n.to_string()),
        2 => (0u64..700).prop_map(|n| n.to_string()),
        1 => Just(u64::MAX.to_string()),
        1 => Just("18446744073709551616".to_owned()),
        1 => (-3i64..0).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec!["1.0", "2.5", "1e2", "\"1\"", "null", "true", "[1]", "{\"a\":1}"])
            .prop_map(str::to_owned),
    ]
}

/// An asset's `title`, `img` or `data` value.
fn fields() -> impl Strategy<Value = String> {
    // The sides twice as often: which of `w` and `wmin` counts is the
    // subtle rule.
    let key = prop::sample::select(vec![
        "type",
        "len",
        "w",
        "wmin",
        "h",
        "hmin",
        "w",
        "wmin",
        "h",
        "hmin",
        "x",
        "t\\u0079pe",
    ]);
    prop_oneof![
        6 => prop::collection::vec((key.prop_map(|k| format!("\"{k}\"")), number()), 0..7)
            .prop_map(object),
        1 => number(),
    ]
}

/// One asset: an object of the keys an answer reads (some repeated), or
/// rarely a value of another kind.
fn asset() -> impl Strategy<Value = String> {
    let member = prop_oneof![
        3 => number().prop_map(|v| ("\"id\"".to_owned(), v)),
        1 => number().prop_map(|v| ("\"required\"".to_owned(), v)),
        2 => fields().prop_map(|v| ("\"title\"".to_owned(), v)),
        2 => fields().prop_map(|v| ("\"img\"".to_owned(), v)),
        2 => fields().prop_map(|v| ("\"data\"".to_owned(), v)),
        1 => Just(("\"ext\"".to_owned(), "{\"id\":[1,{}]}".to_owned())),
    ];
    prop_oneof![
        12 => (1u64..9, prop::collection::vec(member, 0..5)).prop_map(|(id, mut members)| {
            members.insert(0, ("\"id\"".to_owned(), id.to_string()));
            object(members)
        }),
        3 => prop::collection::vec(number().prop_map(|v| ("\"id\"".to_owned(), v)), 0..2)
            .prop_map(object),
        1 => prop::sample::select(vec!["null", "3", "[]", "\"a\""]).prop_map(str::to_owned),
    ]
}

/// An `assets` value: arrays (one beyond the limit rarely), or another kind.
fn assets() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::collection::vec(asset(), 0..6).prop_map(|a| format!("[{}]", a.join(","))),
        1 => Just(format!(
            "[{}]",
            (1..=NATIVE_ASSETS_MAX + 6)
                .map(|i| format!("{{\"id\":{i},\"title\":{{\"len\":{i}}},\"required\":{}}}", u8::from(i > NATIVE_ASSETS_MAX)))
                .collect::<Vec<_>>()
                .join(",")
        )),
        1 => prop::sample::select(vec!["{}", "3", "null"]).prop_map(str::to_owned),
    ]
}

/// A root object's members (`native` only where `wrapped`).
fn root(wrapped: Option<BoxedStrategy<String>>) -> BoxedStrategy<String> {
    let mut members = vec![
        (
            4,
            assets().prop_map(|v| ("\"assets\"".to_owned(), v)).boxed(),
        ),
        (
            1,
            assets()
                .prop_map(|v| ("\"ass\\u0065ts\"".to_owned(), v))
                .boxed(),
        ),
        (
            2,
            prop::sample::select(vec!["[{\"event\":1,\"methods\":[1]}]", "null", "[]"])
                .prop_map(|v| ("\"eventtrackers\"".to_owned(), v.to_owned()))
                .boxed(),
        ),
        (
            1,
            Just(("\"ver\"".to_owned(), "\"1.2\"".to_owned())).boxed(),
        ),
        (
            1,
            Just(("\"native\"".to_owned(), "{\"assets\":[]}".to_owned())).boxed(),
        ),
    ];
    if let Some(inner) = wrapped {
        members.push((3, inner.prop_map(|v| ("\"native\"".to_owned(), v)).boxed()));
        members.push((
            1,
            number().prop_map(|v| ("\"native\"".to_owned(), v)).boxed(),
        ));
    }
    prop::collection::vec(prop::strategy::Union::new_weighted(members), 0..5)
        .prop_map(object)
        .boxed()
}

/// A native request's text: wrapped or not, sometimes broken.
fn request() -> impl Strategy<Value = String> {
    let inner = root(None);
    let doc = root(Some(inner));
    prop_oneof![
        12 => doc.clone(),
        1 => doc.clone().prop_map(|d| format!("{d} x")),
        1 => doc.prop_map(|d| d[..d.len() / 2].to_owned()),
        1 => prop::sample::select(vec!["[]", "3", "null", "", "\"{}\""]).prop_map(str::to_owned),
    ]
}

/// Text with every kind of character the escapes treat apart.
fn text() -> impl Strategy<Value = String> {
    "[\\x00-\\x1f a-z\"\\\\\\x7fé€<>&/]{0,10}"
}

fn spec() -> impl Strategy<Value = CreativeSpec> {
    let opt = || prop::option::of(text());
    ((opt(), opt(), opt(), opt()), (opt(), opt(), opt()), text()).prop_map(
        |((title, description, sponsor, cta), (image_url, icon_url, impression_url), click_url)| {
            CreativeSpec {
                title,
                description,
                sponsor,
                cta,
                image_url,
                icon_url,
                impression_url,
                click_url,
                ..CreativeSpec::default()
            }
        },
    )
}

/// What `request` asks of a creative, read through a `Value` tree (the
/// code [`native_fit`] replaced).
fn reference_fit(request: &str) -> NativeFit {
    let Ok(parsed) = serde_json::from_str::<Value>(request) else {
        return NativeFit::NONE;
    };
    let root = parsed.get("native").unwrap_or(&parsed);
    let Some(assets) = root.get("assets").and_then(Value::as_array) else {
        return NativeFit::NONE;
    };
    let mut fit = NativeFit::default();
    for asset in assets.iter().take(NATIVE_ASSETS_MAX) {
        if asset.get("id").and_then(Value::as_u64).is_none() {
            return NativeFit::NONE;
        }
        let need = reference_need(asset);
        if asset.get("required").and_then(Value::as_u64) == Some(1) {
            fit.required |= need;
        } else {
            fit.optional |= need;
        }
    }
    fit
}

/// The creative field an asset needs, read from its `Value`.
fn reference_need(asset: &Value) -> u8 {
    let kind = |v: &Value| v.get("type").and_then(Value::as_u64);
    if asset.get("title").is_some() {
        native_asset::TITLE
    } else if let Some(img) = asset.get("img") {
        if kind(img) == Some(1) {
            native_asset::ICON
        } else {
            native_asset::IMAGE
        }
    } else if let Some(data) = asset.get("data") {
        match kind(data) {
            Some(1) => native_asset::SPONSOR,
            Some(2) => native_asset::DESCRIPTION,
            Some(12) => native_asset::CTA,
            _ => native_asset::UNFILLABLE,
        }
    } else {
        native_asset::UNFILLABLE
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn the_document_is_the_value_tree_s(request in request(), spec in spec()) {
        prop_assert_eq!(written(&request, &spec), reference(&request, &spec), "{}", request);
    }

    #[test]
    fn the_fit_is_the_value_tree_s(request in request()) {
        prop_assert_eq!(native_fit(&request), reference_fit(&request), "{}", request);
    }
}

#[test]
fn a_full_creative_answers_every_asset_kind() {
    let spec = CreativeSpec {
        title: Some("A \"quoted\" title".into()),
        image_url: Some("https://img.example/a.png".into()),
        icon_url: Some("https://img.example/i.png".into()),
        sponsor: Some("Sponsor".into()),
        description: Some("Line one\nline two".into()),
        cta: Some("Go".into()),
        impression_url: Some("https://t.example/imp?a=1&b=2".into()),
        click_url: "https://learn.example/go".into(),
        ..CreativeSpec::default()
    };
    let request = r#"{"native":{"ver":"1.2","eventtrackers":[{"event":1,"methods":[1]}],"assets":[
        {"id":1,"required":1,"title":{"len":5}},
        {"id":2,"img":{"type":3,"wmin":300,"hmin":250}},
        {"id":3,"img":{"type":1,"w":0,"wmin":50,"h":50}},
        {"id":4,"data":{"type":2}},
        {"id":5,"data":{"type":12,"len":1}},
        {"id":6,"data":{"type":3}}]}}"#;
    let expected = reference(request, &spec).expect("an answer");
    assert_eq!(written(request, &spec).as_deref(), Some(expected.as_str()));
    let doc: Value = serde_json::from_str(&expected).expect("JSON");
    assert_eq!(doc["assets"].as_array().map(Vec::len), Some(5));
    assert_eq!(doc["assets"][0]["title"]["text"], "A \"qu");
    assert_eq!(doc["assets"][1]["img"]["w"], 300);
    assert!(
        doc["assets"][2]["img"].get("w").is_none(),
        "w of 0 is no size"
    );
    assert_eq!(
        doc["eventtrackers"][0]["url"],
        "https://t.example/imp?a=1&b=2"
    );
    // A required asset the creative cannot fill: no document.
    let bare = CreativeSpec {
        title: None,
        ..spec.clone()
    };
    assert_eq!(written(request, &bare), None);
    assert_eq!(reference(request, &bare), None);
}

#[test]
fn every_fixed_piece_s_json_form_is_its_escape() {
    use super::write::PIECES;
    for (plain, json) in PIECES.iter().copied().chain(super::write::control_pieces()) {
        let escaped = serde_json::to_string(plain).expect("a string");
        assert_eq!(json, &escaped[1..escaped.len() - 1], "{plain:?}");
    }
}
