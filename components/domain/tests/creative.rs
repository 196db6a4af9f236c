//! Creatives in the catalog: the `[offer.creative]` table, `attr`, their
//! validation (errors naming the offer and the field), the built-in
//! templates and rendering with escaping.

use cx_domain::catalog::template::Slot;
use cx_domain::catalog::{limits, Catalog, CreativeSpec, OfferSpec};
use cx_domain::Error;

fn catalog_err(result: Result<Catalog, Error>) -> (String, String) {
    match result {
        Err(Error::Catalog { where_, reason }) => (where_, reason),
        other => panic!("expected a catalog error, got {other:?}"),
    }
}

/// An offer with id 7 and `extra` TOML after its keys (a creative table goes there).
fn toml_offer(extra: &str) -> String {
    format!(
        "[[offer]]\nid = 7\nname = \"Seven\"\nconversion_rate = 0.1\nrevenue = 5\n\
         max_bid_cpm = 2.5\ncreative_id = \"c7\"\n{extra}\n"
    )
}

const CREATIVE: &str = r#"attr = [12, 3]

[offer.creative]
click_url = "https://shop.example/landing?a=1&b=2"
image_url = "https://cdn.example/seven.png"
title = "Seven's <best> \"deal\""
impression_url = "https://t.example/imp?p=${AUCTION_PRICE}"
media_url = "https://cdn.example/seven.mp4"
media_width = 640
media_height = 360
duration_s = 75
"#;

#[test]
fn a_creative_table_parses_and_writes_back() {
    let text = format!(
        "{}{}",
        toml_offer(CREATIVE),
        toml_offer("").replace("id = 7", "id = 8")
    );
    let c = Catalog::from_toml_str(&text).unwrap();
    assert_eq!(c.attr(0), [12, 3]);
    assert!(c.attr(1).is_empty());
    assert!(c.creative(1).is_none());
    let creative = c.creative(0).expect("offer 7 has a creative");
    assert_eq!(creative.spec().media_width, Some(640));
    assert_eq!(creative.spec().media_type(), "video/mp4");
    assert!(creative.banner().is_some() && creative.video().is_some());
    assert!(creative.serves_native());
    assert_eq!(c.categories(0).len(), 0);
    let back = Catalog::from_toml_str(&c.to_toml()).unwrap();
    assert_eq!(back, c);
    assert!(c.to_toml().contains("[offer.creative]"), "{}", c.to_toml());
}

/// Renders a creative's template with fixed bid values.
fn render(template: &cx_domain::catalog::template::Template, spec: &CreativeSpec) -> String {
    let mut out = String::new();
    template.render(&mut out, |slot, v| match slot {
        Slot::W => v.push_str("300"),
        Slot::H => v.push_str("250"),
        Slot::OfferId => v.push('7'),
        Slot::CreativeId => v.push_str("c7"),
        Slot::BidId => v.push_str("0-0-x-1"),
        Slot::ImpId => v.push_str("imp<1>"),
        Slot::Price => v.push_str("${AUCTION_PRICE}"),
        other => spec.slot_value(other, v),
    });
    out
}

#[test]
fn built_in_templates_escape_every_value() {
    let c = Catalog::from_toml_str(&toml_offer(CREATIVE)).unwrap();
    let creative = c.creative(0).unwrap();
    let banner = render(creative.banner().unwrap(), creative.spec());
    assert_eq!(
        banner,
        "<a href=\"https://shop.example/landing?a=1&amp;b=2\" target=\"_blank\" rel=\"noopener\">\
         <img src=\"https://cdn.example/seven.png\" width=\"300\" height=\"250\" \
         alt=\"Seven&#39;s &lt;best&gt; &quot;deal&quot;\" style=\"border:0;display:block\"/></a>\
         <img src=\"https://t.example/imp?p=${AUCTION_PRICE}\" width=\"1\" height=\"1\" alt=\"\" \
         style=\"position:absolute;border:0\"/>"
    );
    let vast = render(creative.video().unwrap(), creative.spec());
    for part in [
        "<VAST version=\"4.2\"><Ad id=\"c7\"><InLine><AdSystem>CampaignExpress</AdSystem>",
        "<Impression id=\"cx\">https://t.example/imp?p=${AUCTION_PRICE}</Impression>",
        "<AdServingId>0-0-x-1</AdServingId>",
        "<AdTitle>Seven&#39;s &lt;best&gt; &quot;deal&quot;</AdTitle>",
        "<Duration>00:01:15</Duration>",
        "type=\"video/mp4\" width=\"640\" height=\"360\">https://cdn.example/seven.mp4</MediaFile>",
        "<ClickThrough id=\"cx\">https://shop.example/landing?a=1&amp;b=2</ClickThrough>",
    ] {
        assert!(vast.contains(part), "{part}\nin\n{vast}");
    }
    let wrapper = CREATIVE
        .replace("media_url", "vast_tag_url")
        .replace("media_width = 640\n", "")
        .replace("media_height = 360\n", "")
        .replace("duration_s = 75\n", "");
    let c = Catalog::from_toml_str(&toml_offer(&wrapper)).unwrap();
    let creative = c.creative(0).unwrap();
    let vast = render(creative.video().unwrap(), creative.spec());
    assert!(
        vast.contains("<Wrapper>")
            && vast
                .contains("<VASTAdTagURI>https://cdn.example/seven.mp4</VASTAdTagURI></Wrapper>"),
        "{vast}"
    );
}

#[test]
fn an_offers_own_templates_are_used() {
    let own = r#"
[offer.creative]
click_url = "https://shop.example/"
title = "T"
banner = '<div data-bid="{{bid_id}}" data-price="${AUCTION_PRICE}">{{title}} {{w}}x{{h}}</div>'
video = '<VAST version="4.1"><Ad id="{{imp_id}}"/></VAST>'
"#;
    let c = Catalog::from_toml_str(&toml_offer(own)).unwrap();
    let creative = c.creative(0).unwrap();
    assert_eq!(
        render(creative.banner().unwrap(), creative.spec()),
        "<div data-bid=\"0-0-x-1\" data-price=\"${AUCTION_PRICE}\">T 300x250</div>"
    );
    assert_eq!(
        render(creative.video().unwrap(), creative.spec()),
        "<VAST version=\"4.1\"><Ad id=\"imp&lt;1&gt;\"/></VAST>"
    );
}

#[test]
fn creative_errors_name_the_offer_and_field() {
    let table = |body: &str| toml_offer(&format!("[offer.creative]\n{body}"));
    let cases: Vec<(String, &str, &str)> = vec![
        (
            table("title = \"t\""),
            "offer 7 field creative",
            "missing field `click_url`",
        ),
        (
            table("click_url = \"https://a.example/\"\ntitel = \"t\""),
            "offer 7 field creative.titel",
            "unknown field `titel`",
        ),
        (
            table("click_url = \"https://a.example/\""),
            "offer 7 field creative.click_url",
            "can serve nothing",
        ),
        (
            table("click_url = \"https://a.example/\"\ntitle = \"t\"\nbanner = \"{{image_url}}\""),
            "offer 7 field creative.banner",
            "`{{image_url}}` needs creative.image_url, which is not set",
        ),
        (
            table("click_url = \"https://a.example/\"\ntitle = \"t\"\nbanner = \"{{imgae_url}}\""),
            "offer 7 field creative.banner",
            "`{{imgae_url}}` at byte 0 is not a placeholder",
        ),
        (
            table("click_url = \"https://a.example/\"\nvast_tag_url = \"https://v.example/t.xml\""),
            "offer 7 field creative.impression_url",
            "VAST requires an <Impression>",
        ),
        (
            table("click_url = \"https://a.example/\"\ntitle = \"t\"\nmedia_width = -1"),
            "offer 7 field creative.media_width",
            "expected u32",
        ),
        (
            table("click_url = \"ftp://a.example/\"\ntitle = \"t\""),
            "offer 7 field creative.click_url",
            "not an http:// or https:// URL",
        ),
        (
            toml_offer("attr = [0]"),
            "offer 7 field attr[0]",
            "not a creative attribute",
        ),
        (
            toml_offer(&format!("attr = [{}]", limits::ATTR_MAX + 1)),
            "offer 7 field attr[0]",
            "expected 1..=17",
        ),
        (
            toml_offer("attr = [3, 3]"),
            "offer 7 field attr[1]",
            "repeats attr[0]",
        ),
    ];
    for (text, where_expected, needle) in cases {
        let (where_, reason) = catalog_err(Catalog::from_toml_str(&text));
        assert_eq!(where_, where_expected, "{reason}\n{text}");
        assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
    }
}

#[test]
fn creatives_built_in_code_are_validated_alike() {
    let offer = OfferSpec {
        creative: Some(CreativeSpec {
            click_url: "https://a.example/".into(),
            image_url: Some("https://a.example/i.png".into()),
            duration_s: Some(10),
            ..CreativeSpec::default()
        }),
        ..OfferSpec::new(9)
    };
    let (where_, reason) = catalog_err(Catalog::from_offers(vec![offer]));
    assert_eq!(where_, "offer 9 field creative.duration_s");
    assert!(reason.contains("set media_url too"), "{reason}");
}

#[test]
fn the_bundled_catalog_gives_every_offer_a_creative_for_every_kind() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/catalog.toml");
    let c = Catalog::from_path(&path).unwrap();
    for i in 0..c.len() {
        let creative = c
            .creative(i)
            .unwrap_or_else(|| panic!("offer {} has no creative", c.ids()[i]));
        assert!(creative.banner().is_some(), "offer {}: banner", c.ids()[i]);
        assert!(creative.video().is_some(), "offer {}: video", c.ids()[i]);
        assert!(creative.serves_native(), "offer {}: native", c.ids()[i]);
        let spec = creative.spec();
        for (what, set) in [
            ("title", spec.title.is_some()),
            ("description", spec.description.is_some()),
            ("icon_url", spec.icon_url.is_some()),
            ("sponsor", spec.sponsor.is_some()),
            ("cta", spec.cta.is_some()),
        ] {
            assert!(set, "offer {}: native {what}", c.ids()[i]);
        }
    }
}
