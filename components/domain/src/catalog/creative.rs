//! An offer's creative: the assets (landing page, image, texts, video) and
//! the markup templates a bid's `adm` is made from, their validation, and
//! the built-in templates used when an offer gives none.
//!
//! What a creative can serve, by the impression's kind:
//!
//! - **banner**: its `banner` template, else the built-in one when it has
//!   an `image_url` (a linked image of the format's size);
//! - **video**: its `video` template, else a built-in VAST 4.2 document:
//!   an inline ad with one `MediaFile` when it has a `media_url`, a wrapper
//!   around `vast_tag_url` when it has that;
//! - **native**: a Native 1.2 response made from the request's assets and
//!   the creative's `title`, `description`, `image_url`, `icon_url`,
//!   `sponsor` and `cta` (the engine builds it; there is no template) when
//!   it has a `title` or an `image_url`.
//!
//! Every template is parsed and checked when the catalog is built: each
//! placeholder must be a [`Slot`] and each creative field it names must be
//! set, so rendering a bid cannot fail.

use serde::{Deserialize, Serialize};

use super::template::{Slot, Template};

/// Limits of a creative, checked when a catalog is built.
pub mod limits {
    /// Longest URL, in bytes.
    pub const URL_BYTES_MAX: usize = 2048;
    /// Longest text (`title`, `description`, `sponsor`, `cta`), in bytes.
    pub const TEXT_BYTES_MAX: usize = 512;
    /// Longest template, in bytes.
    pub const TEMPLATE_BYTES_MAX: usize = 16 << 10;
    /// Longest `media_type`, in bytes.
    pub const MEDIA_TYPE_BYTES_MAX: usize = 64;
    /// Longest video, in seconds.
    pub const DURATION_S_MAX: u32 = 3600;
    /// Largest side of a video file, in pixels.
    pub const MEDIA_PX_MAX: u32 = 8192;
}

/// The media type of a `media_url` when `media_type` is not set.
pub const DEFAULT_MEDIA_TYPE: &str = "video/mp4";

/// The name the built-in VAST templates give as `AdSystem`.
pub const AD_SYSTEM: &str = "CampaignExpress";

/// An offer's creative as written in a catalog (`[offer.creative]`).
/// Only `click_url` is required; see `docs/CATALOG.md` for each field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreativeSpec {
    /// Where a click goes (the landing page).
    pub click_url: String,
    /// The main image: the banner image and the native main image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// A square icon for native ads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    /// The headline: native title, VAST `AdTitle`, the banner image's alt text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The body text of a native ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The advertiser's name as shown ("sponsored by") in a native ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<String>,
    /// The call to action of a native ad ("Learn more").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cta: Option<String>,
    /// The advertiser's impression tracker: VAST `<Impression>`, a native
    /// impression event tracker, a pixel in the built-in banner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impression_url: Option<String>,
    /// A VAST document to wrap (the built-in video template is a wrapper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vast_tag_url: Option<String>,
    /// A video file (the built-in video template is an inline ad).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
    /// The video file's media type; [`DEFAULT_MEDIA_TYPE`] when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The video file's width, pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_width: Option<u32>,
    /// The video file's height, pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_height: Option<u32>,
    /// The video's length, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u32>,
    /// The banner markup template (HTML); see [`super::template`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub banner: Option<String>,
    /// The video markup template (VAST XML); see [`super::template`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
}

impl CreativeSpec {
    /// Every field name of the TOML form, in the order it is written.
    pub const FIELDS: &'static [&'static str] = &[
        "click_url",
        "image_url",
        "icon_url",
        "title",
        "description",
        "sponsor",
        "cta",
        "impression_url",
        "vast_tag_url",
        "media_url",
        "media_type",
        "media_width",
        "media_height",
        "duration_s",
        "banner",
        "video",
    ];

    /// The creative field a slot reads, with whether it is set; `None` for
    /// the slots of the bid (size, ids, price), which are always there.
    fn slot_field(&self, slot: Slot) -> Option<(&'static str, bool)> {
        let set = |o: &Option<String>| o.is_some();
        Some(match slot {
            Slot::ClickUrl => ("click_url", true),
            Slot::ImageUrl => ("image_url", set(&self.image_url)),
            Slot::IconUrl => ("icon_url", set(&self.icon_url)),
            Slot::Title => ("title", set(&self.title)),
            Slot::Description => ("description", set(&self.description)),
            Slot::Sponsor => ("sponsor", set(&self.sponsor)),
            Slot::Cta => ("cta", set(&self.cta)),
            Slot::ImpressionUrl => ("impression_url", set(&self.impression_url)),
            Slot::VastTagUrl => ("vast_tag_url", set(&self.vast_tag_url)),
            Slot::MediaUrl => ("media_url", set(&self.media_url)),
            Slot::MediaType => ("media_url", set(&self.media_url)),
            Slot::MediaWidth => ("media_width", self.media_width.is_some()),
            Slot::MediaHeight => ("media_height", self.media_height.is_some()),
            Slot::Duration => ("duration_s", self.duration_s.is_some()),
            Slot::W
            | Slot::H
            | Slot::OfferId
            | Slot::CreativeId
            | Slot::BidId
            | Slot::ImpId
            | Slot::Price => return None,
        })
    }

    /// Appends the value of a creative slot to `out` (nothing for a bid
    /// slot or an unset field).
    pub fn slot_value(&self, slot: Slot, out: &mut String) {
        fn text(o: &Option<String>) -> &str {
            o.as_deref().unwrap_or("")
        }
        let number = |n: Option<u32>, out: &mut String| {
            if let Some(n) = n {
                out.push_str(&n.to_string());
            }
        };
        match slot {
            Slot::ClickUrl => out.push_str(&self.click_url),
            Slot::ImageUrl => out.push_str(text(&self.image_url)),
            Slot::IconUrl => out.push_str(text(&self.icon_url)),
            Slot::Title => out.push_str(text(&self.title)),
            Slot::Description => out.push_str(text(&self.description)),
            Slot::Sponsor => out.push_str(text(&self.sponsor)),
            Slot::Cta => out.push_str(text(&self.cta)),
            Slot::ImpressionUrl => out.push_str(text(&self.impression_url)),
            Slot::VastTagUrl => out.push_str(text(&self.vast_tag_url)),
            Slot::MediaUrl => out.push_str(text(&self.media_url)),
            Slot::MediaType => out.push_str(self.media_type()),
            Slot::MediaWidth => number(self.media_width, out),
            Slot::MediaHeight => number(self.media_height, out),
            Slot::Duration => {
                if let Some(s) = self.duration_s {
                    super::template::vast_duration(s, out);
                }
            }
            _ => {}
        }
    }

    /// The video file's media type: `media_type`, or [`DEFAULT_MEDIA_TYPE`].
    pub fn media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(DEFAULT_MEDIA_TYPE)
    }
}

/// A validated creative with its templates parsed: the offer's own, or the
/// built-in ones its assets allow.
#[derive(Clone, Debug, PartialEq)]
pub struct Creative {
    spec: CreativeSpec,
    banner: Option<Template>,
    video: Option<Template>,
}

impl Creative {
    /// Validates `spec` and parses its templates. The error names the field
    /// (`banner`, `media_width`, ...) and says what is wrong.
    pub fn build(spec: CreativeSpec) -> Result<Self, (&'static str, String)> {
        check_fields(&spec)?;
        let banner = match &spec.banner {
            Some(text) => Some(own_template(&spec, "banner", text)?),
            None => default_banner(&spec),
        };
        let video = match &spec.video {
            Some(text) => Some(own_template(&spec, "video", text)?),
            None => default_video(&spec)?,
        };
        // The creative's own fields are bound now; a bid fills in its own.
        let bind = |template: Template| {
            template.bind(|slot, value| {
                let own = spec.slot_field(slot).is_some();
                if own {
                    spec.slot_value(slot, value);
                }
                own
            })
        };
        let (banner, video) = (banner.map(bind), video.map(bind));
        if banner.is_none() && video.is_none() && !native_possible(&spec) {
            return Err((
                "click_url",
                "the creative can serve nothing: give it an image_url or a banner template \
                 (banner), a media_url, vast_tag_url or video template (video), or a title \
                 (native)"
                    .into(),
            ));
        }
        Ok(Self {
            spec,
            banner,
            video,
        })
    }

    /// The creative's fields.
    pub fn spec(&self) -> &CreativeSpec {
        &self.spec
    }

    /// The banner template (the offer's own or the built-in one), if the
    /// creative can serve banners, with the creative's own fields bound
    /// ([`Template::bind`]): only the bid's slots are left to render.
    pub fn banner(&self) -> Option<&Template> {
        self.banner.as_ref()
    }

    /// The video template (the offer's own or a built-in VAST document), if
    /// the creative can serve video, with the creative's own fields bound.
    pub fn video(&self) -> Option<&Template> {
        self.video.as_ref()
    }

    /// Whether the creative has what a native ad needs (a title or an
    /// image); whether it fills a given native request depends on that
    /// request's required assets.
    pub fn serves_native(&self) -> bool {
        native_possible(&self.spec)
    }
}

fn native_possible(spec: &CreativeSpec) -> bool {
    spec.title.is_some() || spec.image_url.is_some()
}

/// Parses an offer's own template and checks that the fields it names are set.
fn own_template(
    spec: &CreativeSpec,
    field: &'static str,
    text: &str,
) -> Result<Template, (&'static str, String)> {
    if text.trim().is_empty() {
        return Err((field, "the template is empty".into()));
    }
    if text.len() > limits::TEMPLATE_BYTES_MAX {
        return Err((
            field,
            format!(
                "the template is {} bytes, more than the limit of {}",
                text.len(),
                limits::TEMPLATE_BYTES_MAX
            ),
        ));
    }
    let template = Template::parse(text).map_err(|reason| (field, reason))?;
    for slot in template.slots() {
        if let Some((needed, false)) = spec.slot_field(slot) {
            return Err((
                field,
                format!(
                    "`{{{{{}}}}}` needs creative.{needed}, which is not set",
                    slot.name()
                ),
            ));
        }
    }
    Ok(template)
}

/// The built-in banner: the image linked to the landing page, at the
/// format's size, with the impression pixel when there is one.
fn default_banner(spec: &CreativeSpec) -> Option<Template> {
    spec.image_url.as_ref()?;
    let alt = if spec.title.is_some() {
        "{{title}}"
    } else {
        ""
    };
    let mut text = format!(
        "<a href=\"{{{{click_url}}}}\" target=\"_blank\" rel=\"noopener\">\
         <img src=\"{{{{image_url}}}}\" width=\"{{{{w}}}}\" height=\"{{{{h}}}}\" \
         alt=\"{alt}\" style=\"border:0;display:block\"/></a>"
    );
    if spec.impression_url.is_some() {
        text.push_str(
            "<img src=\"{{impression_url}}\" width=\"1\" height=\"1\" alt=\"\" \
             style=\"position:absolute;border:0\"/>",
        );
    }
    Template::parse(&text).ok()
}

/// The built-in VAST 4.2 document: an inline ad for a `media_url`, a
/// wrapper for a `vast_tag_url`; VAST requires an `<Impression>`, so
/// either needs `impression_url`.
fn default_video(spec: &CreativeSpec) -> Result<Option<Template>, (&'static str, String)> {
    if spec.media_url.is_none() && spec.vast_tag_url.is_none() {
        return Ok(None);
    }
    if spec.impression_url.is_none() {
        return Err((
            "impression_url",
            "is missing; the built-in VAST template needs it (VAST requires an \
             <Impression>); set it or give a video template"
                .into(),
        ));
    }
    let head = format!(
        "<VAST version=\"4.2\"><Ad id=\"{{{{creative_id}}}}\">{{}}<AdSystem>{AD_SYSTEM}</AdSystem>\
         <Impression id=\"cx\">{{{{impression_url}}}}</Impression>"
    );
    let text = if spec.media_url.is_some() {
        let title = if spec.title.is_some() {
            "{{title}}"
        } else {
            "{{creative_id}}"
        };
        format!(
            "{}<AdServingId>{{{{bid_id}}}}</AdServingId><AdTitle>{title}</AdTitle>\
             <Creatives><Creative id=\"{{{{creative_id}}}}\" adId=\"{{{{offer_id}}}}\">\
             <UniversalAdId idRegistry=\"unknown\">{{{{creative_id}}}}</UniversalAdId>\
             <Linear><Duration>{{{{duration}}}}</Duration><MediaFiles>\
             <MediaFile delivery=\"progressive\" type=\"{{{{media_type}}}}\" \
             width=\"{{{{media_width}}}}\" height=\"{{{{media_height}}}}\">{{{{media_url}}}}</MediaFile>\
             </MediaFiles><VideoClicks><ClickThrough id=\"cx\">{{{{click_url}}}}</ClickThrough>\
             </VideoClicks></Linear></Creative></Creatives></InLine></Ad></VAST>",
            head.replacen("{}", "<InLine>", 1)
        )
    } else {
        format!(
            "{}<VASTAdTagURI>{{{{vast_tag_url}}}}</VASTAdTagURI></Wrapper></Ad></VAST>",
            head.replacen("{}", "<Wrapper>", 1)
        )
    };
    Ok(Template::parse(&text).ok())
}

/// Checks every field's own rules (URLs, texts, the video file).
fn check_fields(spec: &CreativeSpec) -> Result<(), (&'static str, String)> {
    check_url("click_url", &spec.click_url)?;
    for (field, url) in [
        ("image_url", &spec.image_url),
        ("icon_url", &spec.icon_url),
        ("impression_url", &spec.impression_url),
        ("vast_tag_url", &spec.vast_tag_url),
        ("media_url", &spec.media_url),
    ] {
        if let Some(url) = url {
            check_url(field, url)?;
        }
    }
    for (field, text) in [
        ("title", &spec.title),
        ("description", &spec.description),
        ("sponsor", &spec.sponsor),
        ("cta", &spec.cta),
    ] {
        if let Some(text) = text {
            check_creative_text(field, text)?;
        }
    }
    check_video_file(spec)
}

/// The video file's fields: all of them with `media_url`, none without;
/// `media_url` and `vast_tag_url` exclude each other.
fn check_video_file(spec: &CreativeSpec) -> Result<(), (&'static str, String)> {
    if spec.media_url.is_some() && spec.vast_tag_url.is_some() {
        return Err((
            "vast_tag_url",
            "give either vast_tag_url (a VAST wrapper) or media_url (an inline VAST ad), not both"
                .into(),
        ));
    }
    let Some(_) = spec.media_url else {
        for (field, set) in [
            ("media_type", spec.media_type.is_some()),
            ("media_width", spec.media_width.is_some()),
            ("media_height", spec.media_height.is_some()),
            ("duration_s", spec.duration_s.is_some()),
        ] {
            if set {
                return Err((field, "describes a video file; set media_url too".into()));
            }
        }
        return Ok(());
    };
    for (field, value, max) in [
        ("media_width", spec.media_width, limits::MEDIA_PX_MAX),
        ("media_height", spec.media_height, limits::MEDIA_PX_MAX),
        ("duration_s", spec.duration_s, limits::DURATION_S_MAX),
    ] {
        match value {
            None => return Err((field, "is missing; media_url needs it".into())),
            Some(v) if !(1..=max).contains(&v) => {
                return Err((field, format!("is {v}, expected 1..={max}")))
            }
            Some(_) => {}
        }
    }
    if let Some(t) = &spec.media_type {
        let (kind, sub) = t.split_once('/').unwrap_or(("", ""));
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-+.".contains(&b))
        };
        if t.len() > limits::MEDIA_TYPE_BYTES_MAX || !token(kind) || !token(sub) {
            return Err((
                "media_type",
                format!("{t:?} is not a media type such as \"video/mp4\""),
            ));
        }
    }
    Ok(())
}

/// An `http://` or `https://` URL of at most [`limits::URL_BYTES_MAX`]
/// bytes, without whitespace or control characters.
fn check_url(field: &'static str, url: &str) -> Result<(), (&'static str, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let reason = if url.len() > limits::URL_BYTES_MAX {
        format!(
            "the URL is {} bytes, more than the limit of {}",
            url.len(),
            limits::URL_BYTES_MAX
        )
    } else if rest.is_none_or(str::is_empty) {
        format!("{url:?} is not an http:// or https:// URL")
    } else if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        format!("{url:?} holds whitespace or a control character")
    } else {
        return Ok(());
    };
    Err((field, reason))
}

/// A non-empty text of at most [`limits::TEXT_BYTES_MAX`] bytes without
/// control characters.
fn check_creative_text(field: &'static str, text: &str) -> Result<(), (&'static str, String)> {
    let reason = if text.trim().is_empty() {
        "is empty".to_string()
    } else if text.len() > limits::TEXT_BYTES_MAX {
        format!(
            "is {} bytes, more than the limit of {}",
            text.len(),
            limits::TEXT_BYTES_MAX
        )
    } else if text.chars().any(char::is_control) {
        format!("{text:?} holds a control character")
    } else {
        return Ok(());
    };
    Err((field, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CreativeSpec {
        CreativeSpec {
            click_url: "https://brand.example/landing?a=1&b=2".into(),
            ..CreativeSpec::default()
        }
    }

    #[test]
    fn built_in_templates_parse_for_every_asset_combination() {
        for (image, title, impression, media, tag) in
            (0..32).map(|m: u32| (m & 1 != 0, m & 2 != 0, m & 4 != 0, m & 8 != 0, m & 16 != 0))
        {
            let s = CreativeSpec {
                image_url: image.then(|| "https://cdn.example/i.png".into()),
                title: title.then(|| "Title".into()),
                impression_url: impression.then(|| "https://t.example/i".into()),
                media_url: media.then(|| "https://cdn.example/v.mp4".into()),
                media_width: media.then_some(640),
                media_height: media.then_some(360),
                duration_s: media.then_some(15),
                vast_tag_url: tag.then(|| "https://ads.example/vast.xml".into()),
                ..spec()
            };
            match Creative::build(s.clone()) {
                Ok(c) => {
                    assert_eq!(c.banner().is_some(), image);
                    assert_eq!(c.video().is_some(), media || tag);
                    assert!(image || title || media || tag);
                }
                Err((field, reason)) => {
                    let why = (media && tag && field == "vast_tag_url")
                        || ((media || tag) && !impression && field == "impression_url")
                        || (!image && !title && !media && !tag && field == "click_url");
                    assert!(why, "{s:?}: {field}: {reason}");
                }
            }
        }
    }

    #[test]
    fn templates_may_only_name_fields_that_are_set() {
        let s = CreativeSpec {
            banner: Some("<img src=\"{{image_url}}\">".into()),
            ..spec()
        };
        let (field, reason) = Creative::build(s).unwrap_err();
        assert_eq!(field, "banner");
        assert!(reason.contains("needs creative.image_url"), "{reason}");
        let s = CreativeSpec {
            banner: Some("<a href=\"{{click_url}}\">{{w}}x{{h}} ${AUCTION_PRICE}</a>".into()),
            ..spec()
        };
        assert!(Creative::build(s).unwrap().banner().is_some());
    }

    #[test]
    fn field_rules_name_the_field() {
        let cases: Vec<(CreativeSpec, &str, &str)> = vec![
            (
                CreativeSpec {
                    click_url: "javascript:alert(1)".into(),
                    ..spec()
                },
                "click_url",
                "not an http:// or https:// URL",
            ),
            (
                CreativeSpec {
                    image_url: Some("https://cdn.example/a b.png".into()),
                    ..spec()
                },
                "image_url",
                "whitespace",
            ),
            (
                CreativeSpec {
                    title: Some(" ".into()),
                    ..spec()
                },
                "title",
                "is empty",
            ),
            (
                CreativeSpec {
                    media_url: Some("https://cdn.example/v.mp4".into()),
                    media_width: Some(640),
                    duration_s: Some(15),
                    ..spec()
                },
                "media_height",
                "media_url needs it",
            ),
            (
                CreativeSpec {
                    duration_s: Some(15),
                    title: Some("t".into()),
                    ..spec()
                },
                "duration_s",
                "set media_url too",
            ),
            (
                CreativeSpec {
                    media_url: Some("https://cdn.example/v.mp4".into()),
                    media_type: Some("mp4".into()),
                    media_width: Some(640),
                    media_height: Some(360),
                    duration_s: Some(15),
                    impression_url: Some("https://t.example/i".into()),
                    ..spec()
                },
                "media_type",
                "not a media type",
            ),
            (
                CreativeSpec {
                    video: Some(String::new()),
                    title: Some("t".into()),
                    ..spec()
                },
                "video",
                "empty",
            ),
            (
                CreativeSpec {
                    banner: Some("x".repeat(limits::TEMPLATE_BYTES_MAX + 1)),
                    ..spec()
                },
                "banner",
                "more than the limit",
            ),
        ];
        for (s, field, needle) in cases {
            let (f, reason) = Creative::build(s).unwrap_err();
            assert_eq!(f, field, "{reason}");
            assert!(reason.contains(needle), "{field}: {reason}");
        }
    }
}
