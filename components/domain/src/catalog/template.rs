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
    /// Copied as it is.
    Text(Box<str>),
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
                pieces.push(Piece::Text(rest[..open].into()));
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
            pieces.push(Piece::Text(rest.into()));
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
            Piece::Text(_) => None,
        })
    }

    /// Appends the template to `out`, each slot replaced by `value(slot)`
    /// escaped with [`escape_markup`] (a slot without a value gives
    /// nothing).
    pub fn render(&self, out: &mut String, value: impl Fn(Slot, &mut String)) {
        let mut scratch = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Slot(slot) => {
                    scratch.clear();
                    value(*slot, &mut scratch);
                    escape_markup(&scratch, out);
                }
            }
        }
    }
}

/// Appends `text` to `out` escaped for HTML text and attribute values and
/// for XML: `&`, `<`, `>`, `"` and `'` become entities; everything else,
/// `$`, `{` and `}` of OpenRTB macros included, is kept.
pub fn escape_markup(text: &str, out: &mut String) {
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
