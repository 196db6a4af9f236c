//! Markup templates: text with `{{name}}` placeholders, parsed once when a
//! catalog is built and rendered per bid with every substituted value
//! escaped for HTML and XML.
//!
//! A placeholder is `{{` + a [`Slot`] name + `}}`, with no spaces. Anything
//! else is copied as it is, OpenRTB macros such as `${AUCTION_PRICE}`
//! included (the exchange substitutes those), so a template may carry the
//! price macro directly or through `{{price}}`. Substituted values are
//! never parsed again: a value holding `{{title}}` stays literal text.

use std::fmt::Write as _;

/// The scratch a render starts with for one slot's value, in bytes (more
/// is allocated as needed).
const SLOT_VALUE_BYTES_TYPICAL: usize = 256;

/// What a placeholder stands for: a field of the offer's creative (which
/// must be set for a template to use it) or a value of the bid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// `creative.click_url`.
    ClickUrl,
    /// `creative.image_url`.
    ImageUrl,
    /// `creative.icon_url`.
    IconUrl,
    /// `creative.title`.
    Title,
    /// `creative.description`.
    Description,
    /// `creative.sponsor`.
    Sponsor,
    /// `creative.cta`.
    Cta,
    /// `creative.impression_url`.
    ImpressionUrl,
    /// `creative.vast_tag_url`.
    VastTagUrl,
    /// `creative.media_url`.
    MediaUrl,
    /// `creative.media_type` (`video/mp4` when not set).
    MediaType,
    /// `creative.media_width`.
    MediaWidth,
    /// `creative.media_height`.
    MediaHeight,
    /// `creative.duration_s` as VAST's `HH:MM:SS`.
    Duration,
    /// The width of the format bid on, in pixels (empty when unknown).
    W,
    /// The height of the format bid on, in pixels (empty when unknown).
    H,
    /// The offer id.
    OfferId,
    /// The offer's `creative_id`.
    CreativeId,
    /// The bid's id.
    BidId,
    /// The impression's id (`imp.id`).
    ImpId,
    /// The OpenRTB clearing-price macro, `${AUCTION_PRICE}`.
    Price,
}

impl Slot {
    /// Every slot, in documentation order.
    pub const ALL: [Slot; 21] = [
        Self::ClickUrl,
        Self::ImageUrl,
        Self::IconUrl,
        Self::Title,
        Self::Description,
        Self::Sponsor,
        Self::Cta,
        Self::ImpressionUrl,
        Self::VastTagUrl,
        Self::MediaUrl,
        Self::MediaType,
        Self::MediaWidth,
        Self::MediaHeight,
        Self::Duration,
        Self::W,
        Self::H,
        Self::OfferId,
        Self::CreativeId,
        Self::BidId,
        Self::ImpId,
        Self::Price,
    ];

    /// The placeholder's name, as written between `{{` and `}}`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClickUrl => "click_url",
            Self::ImageUrl => "image_url",
            Self::IconUrl => "icon_url",
            Self::Title => "title",
            Self::Description => "description",
            Self::Sponsor => "sponsor",
            Self::Cta => "cta",
            Self::ImpressionUrl => "impression_url",
            Self::VastTagUrl => "vast_tag_url",
            Self::MediaUrl => "media_url",
            Self::MediaType => "media_type",
            Self::MediaWidth => "media_width",
            Self::MediaHeight => "media_height",
            Self::Duration => "duration",
            Self::W => "w",
            Self::H => "h",
            Self::OfferId => "offer_id",
            Self::CreativeId => "creative_id",
            Self::BidId => "bid_id",
            Self::ImpId => "imp_id",
            Self::Price => "price",
        }
    }

    /// The slot of a placeholder name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One piece of a parsed template.
#[derive(Clone, Debug, PartialEq)]
enum Piece {
    /// Copied as it is; `json` is the same text escaped as the inside of
    /// a JSON string, made once here so that a response writer copies it
    /// without a scan ([`MarkupOut::push_text`]).
    Text { plain: Box<str>, json: Box<str> },
    /// Replaced by the slot's value, escaped.
    Slot(Slot),
}

/// A parsed template. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    source: Box<str>,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `source`. Errors say what is wrong and at which byte: a `{{`
    /// without its `}}`, or a name that is not a [`Slot`].
    pub fn parse(source: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::text(&rest[..open]));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(format!(
                    "the `{{{{` at byte {} is not closed by `}}}}`",
                    offset + open
                ));
            };
            let name = &after[..close];
            let slot = Slot::from_name(name).ok_or_else(|| {
                let shown: String = name.chars().take(40).collect();
                format!(
                    "`{{{{{shown}}}}}` at byte {} is not a placeholder; expected one of {}",
                    offset + open,
                    Slot::ALL.map(Slot::name).join(", ")
                )
            })?;
            pieces.push(Piece::Slot(slot));
            let consumed = open + 2 + close + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::text(rest));
        }
        Ok(Self {
            source: source.into(),
            pieces,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The slots the template uses, in order, repeats included.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Slot(s) => Some(*s),
            Piece::Text { .. } => None,
        })
    }

    /// Appends the template to `out`, each slot replaced by `value(slot)`
    /// escaped with [`escape_markup`] (a slot without a value gives
    /// nothing).
    pub fn render<O: MarkupOut + ?Sized>(&self, out: &mut O, value: impl Fn(Slot, &mut String)) {
        let mut scratch = String::with_capacity(SLOT_VALUE_BYTES_TYPICAL);
        for piece in &self.pieces {
            match piece {
                Piece::Text { plain, json } => out.push_text(plain, json),
                Piece::Slot(slot) => {
                    scratch.clear();
                    value(*slot, &mut scratch);
                    out.push_value(&scratch);
                }
            }
        }
    }
}

impl Template {
    /// This template with every slot that `fill` gives a value for (it
    /// returns `true`) replaced by that value, escaped, as text: a
    /// creative's own fields are bound once when the catalog is built, so
    /// that a bid renders only its own values (size, ids, price) between
    /// pieces of text that are copied, already escaped for JSON too.
    /// [`Self::render`] gives the same markup either way; [`Self::source`]
    /// is kept, and [`Self::slots`] lists the slots still open.
    pub fn bind(&self, fill: impl Fn(Slot, &mut String) -> bool) -> Self {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut value = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text { plain, .. } => text.push_str(plain),
                Piece::Slot(slot) => {
                    value.clear();
                    if fill(*slot, &mut value) {
                        escape_markup(&value, &mut text);
                        continue;
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::text(&text));
                        text.clear();
                    }
                    pieces.push(Piece::Slot(*slot));
                }
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::text(&text));
        }
        Self {
            source: self.source.clone(),
            pieces,
        }
    }
}

impl Piece {
    fn text(plain: &str) -> Self {
        // A str always encodes; serde_json writes it quoted.
        let quoted = serde_json::to_string(plain).unwrap_or_default();
        let json = quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or("");
        Self::Text {
            plain: plain.into(),
            json: json.into(),
        }
    }
}

/// Where markup is written: as it is (a `String`), or already escaped as
/// the inside of a JSON string (the bidder's response writer, which puts
/// the markup in `bid.adm` without a second pass over it).
pub trait MarkupOut {
    /// Empties the markup written so far.
    fn clear_markup(&mut self);
    /// Appends a template's own text, given as it is (`plain`) and as
    /// JSON string text (`json`).
    fn push_text(&mut self, plain: &str, json: &str);
    /// Appends a slot's value, escaped with [`escape_markup`].
    fn push_value(&mut self, value: &str);
    /// Appends markup made at render time as it is (a whole document).
    fn push_markup(&mut self, markup: &str);
}

impl MarkupOut for String {
    fn clear_markup(&mut self) {
        self.clear();
    }

    fn push_text(&mut self, plain: &str, _json: &str) {
        self.push_str(plain);
    }

    fn push_value(&mut self, value: &str) {
        escape_markup(value, self);
    }

    fn push_markup(&mut self, markup: &str) {
        self.push_str(markup);
    }
}

/// Appends `text` to `out` escaped for HTML text and attribute values and
/// for XML: `&`, `<`, `>`, `"` and `'` become entities; everything else,
/// `$`, `{` and `}` of OpenRTB macros included, is kept.
pub fn escape_markup(text: &str, out: &mut String) {
    // Runs between special characters are copied whole; the five special
    // characters are ASCII, so every split falls on a character boundary.
    let mut run_start = 0;
    for (at, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&text[run_start..at]);
        out.push_str(entity);
        run_start = at + 1;
    }
    out.push_str(&text[run_start..]);
}

/// A duration in seconds as VAST writes it, `HH:MM:SS`.
pub fn vast_duration(seconds: u32, out: &mut String) {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    // Writing to a String cannot fail.
    let _ = write!(out, "{h:02}:{m:02}:{s:02}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &Template) -> String {
        let mut out = String::new();
        t.render(&mut out, |slot, v| match slot {
            Slot::ClickUrl => v.push_str("https://x.example/?a=1&b=\"2\""),
            Slot::Title => v.push_str("<b>{{title}}</b> it's"),
            Slot::Price => v.push_str("${AUCTION_PRICE}"),
            _ => {}
        });
        out
    }

    #[test]
    fn placeholders_are_replaced_and_escaped() {
        let t =
            Template::parse("<a href=\"{{click_url}}\">{{title}}</a>{{price}}${AUCTION_ID}{{w}}")
                .unwrap();
        assert_eq!(
            render(&t),
            "<a href=\"https://x.example/?a=1&amp;b=&quot;2&quot;\">&lt;b&gt;{{title}}&lt;/b&gt; \
             it&#39;s</a>${AUCTION_PRICE}${AUCTION_ID}"
        );
        assert_eq!(
            t.slots().collect::<Vec<_>>(),
            [Slot::ClickUrl, Slot::Title, Slot::Price, Slot::W]
        );
    }

    #[test]
    fn bad_placeholders_are_refused_with_their_position() {
        let err = Template::parse("ab{{titel}}").unwrap_err();
        assert!(
            err.contains("`{{titel}}` at byte 2 is not a placeholder"),
            "{err}"
        );
        assert!(err.contains("click_url, image_url"), "{err}");
        let err = Template::parse("x {{title").unwrap_err();
        assert!(err.contains("`{{` at byte 2 is not closed"), "{err}");
        assert!(Template::parse("{{ title }}").is_err());
        assert!(Template::parse("{{}}").is_err());
        // Single braces and OpenRTB macros are text.
        let t = Template::parse("{a} ${AUCTION_PRICE} }}").unwrap();
        assert_eq!(render(&t), "{a} ${AUCTION_PRICE} }}");
    }

    /// The obviously correct escape: one character at a time.
    fn escape_by_char(text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn escaping_by_runs_agrees_with_escaping_by_character(
            text in "[a&<>\"'\u{e9}\u{1F600}$ {}]{0,40}",
            prefix in "[x<]{0,3}",
        ) {
            let mut out = prefix.clone();
            escape_markup(&text, &mut out);
            proptest::prop_assert_eq!(out, format!("{prefix}{}", escape_by_char(&text)));
        }
    }

    #[test]
    fn a_bound_template_renders_as_the_template_did() {
        let t = Template::parse("<a href=\"{{click_url}}\">{{title}}</a>{{price}}{{w}}x").unwrap();
        let bound = t.bind(|slot, v| match slot {
            Slot::ClickUrl => {
                v.push_str("https://x.example/?a=1&b=\"2\"");
                true
            }
            Slot::Title => {
                v.push_str("<b>{{title}}</b> it's");
                true
            }
            _ => false,
        });
        assert_eq!(render(&bound), render(&t));
        assert_eq!(bound.slots().collect::<Vec<_>>(), [Slot::Price, Slot::W]);
        assert_eq!(bound.source(), t.source());
        // Text, price, text (nothing), w, text: neighbouring text is merged.
        assert_eq!(bound.pieces.len(), 4);
    }

    #[test]
    fn text_pieces_carry_their_json_form() {
        let t = Template::parse("<a href=\"x\">\\ \n\r\t\u{1}\u{7f}é😀{{title}}</a>").unwrap();
        let mut texts = 0;
        for piece in &t.pieces {
            if let Piece::Text { plain, json } = piece {
                let back: String = serde_json::from_str(&format!("\"{json}\"")).unwrap();
                assert_eq!(&*back, &**plain);
                texts += 1;
            }
        }
        assert_eq!(texts, 2);
    }

    #[test]
    fn every_slot_name_round_trips() {
        for slot in Slot::ALL {
            assert_eq!(Slot::from_name(slot.name()), Some(slot));
        }
        assert_eq!(Slot::from_name("TITLE"), None);
    }

    #[test]
    fn durations_are_vast_clock_times() {
        for (s, text) in [(15, "00:00:15"), (75, "00:01:15"), (3600, "01:00:00")] {
            let mut out = String::new();
            vast_duration(s, &mut out);
            assert_eq!(out, text);
        }
    }
}
