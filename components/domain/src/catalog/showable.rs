//! Which offers can be shown on an impression: what the impression allows
//! ([`ImpRules`], carried by every engine request), the per-offer facts the
//! check needs, precomputed when a catalog is built (`ShowColumns`), and
//! the check itself ([`Catalog::check_showable`]).
//!
//! The decide step runs this check on every offer before ranking, so an
//! offer the impression cannot show is never chosen, and never charged to
//! its budget or frequency cap. It must therefore agree with what the
//! OpenRTB bidder can render (`cx_engine::openrtb::markup`): an offer is
//! showable on an impression exactly when the bidder can make a bid's
//! markup for it there, and `bcat` does not block it:
//!
//! - **categories**: no `bcat` entry covers one of the offer's categories
//!   (a blocked `IAB1` covers `IAB1-6`; [`super::category_covers`]);
//! - **a creative for a kind the impression offers**: a banner template
//!   (its own or the built-in one) and, when the offer lists `sizes` and
//!   the banner gives any, one of the banner's sizes; a video template,
//!   and for an inline file a type among the player's `mimes` (when
//!   listed) and a length within its durations; for native, every
//!   required asset filled and at least one asset answered;
//! - **attributes**: for at least one such kind, `battr` (the banner's or
//!   the video's; native has none) blocks none of the offer's `attr`.
//!
//! The request side is small keys, not strings: `bcat` entries, MIME types
//! and banner sizes are hashed or packed once per impression into
//! [`KeySet`]s, `battr` into a bitmask, and the native request into two
//! asset masks. The catalog side is one column per fact: the kinds each
//! offer's creative has a template for, its video file's type key and
//! length, the native assets it can fill, its attributes as a bitmask, and
//! the keys of its categories (every prefix at a `-`) in one flat vector
//! with a span per offer. The check is then a few ANDs and binary
//! searches, and allocates nothing.
//!
//! A request that is not an OpenRTB impression (a binary `score_context`,
//! `Engine::submit`) carries [`ImpRules::default`]: any kind, nothing
//! blocked, no creative needed, so every offer passes.

use std::fmt;

use super::creative::{limits as creative_limits, Creative};
use super::key_set::KeySet;
use super::{item_hash, limits, Catalog, OfferSpec, Span};

/// The ad kinds of an impression, as bits of [`ImpRules::kinds`] and
/// [`Catalog::kinds_with_template`].
pub mod kind {
    /// `imp.banner`.
    pub const BANNER: u8 = 1;
    /// `imp.video`.
    pub const VIDEO: u8 = 2;
    /// `imp.native`.
    pub const NATIVE: u8 = 4;
    /// Every kind the bidder serves (audio is not served).
    pub const ALL: u8 = BANNER | VIDEO | NATIVE;
}

/// What a native asset needs from a creative, as bits of [`NativeFit`] and
/// of the assets an offer's creative can fill.
pub mod native_asset {
    /// A title asset: `title`.
    pub const TITLE: u8 = 1;
    /// An image asset of type 1 (icon): `icon_url`.
    pub const ICON: u8 = 2;
    /// Any other image asset: `image_url`.
    pub const IMAGE: u8 = 4;
    /// A data asset of type 1 (sponsored by): `sponsor`.
    pub const SPONSOR: u8 = 8;
    /// A data asset of type 2 (description): `description`.
    pub const DESCRIPTION: u8 = 16;
    /// A data asset of type 12 (call to action): `cta`.
    pub const CTA: u8 = 32;
    /// An asset no creative can fill (video, other data types, unknown).
    pub const UNFILLABLE: u8 = 128;
}

/// Banner sizes an [`ImpRules`] holds inline.
pub const SIZES_INLINE: usize = 4;
/// Video MIME types an [`ImpRules`] holds inline.
pub const MIMES_INLINE: usize = 4;
/// `bcat` keys an [`ImpRules`] holds inline.
pub const CATEGORIES_INLINE: usize = 8;

/// What a video creative's inline file must fit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VideoFit {
    /// [`media_type_key`] of each of the player's `mimes`; `None` when it
    /// lists none (any type).
    pub mimes: Option<KeySet<MIMES_INLINE>>,
    /// `minduration`, seconds (0: none).
    pub min_duration_s: u32,
    /// `maxduration`, seconds (0: none).
    pub max_duration_s: u32,
}

impl VideoFit {
    /// Whether a file of type key `media_type` and `duration_s` seconds fits.
    pub fn fits(&self, media_type: u64, duration_s: u32) -> bool {
        let type_ok = self.mimes.as_ref().is_none_or(|m| m.contains(media_type));
        let max_ok = self.max_duration_s == 0 || duration_s <= self.max_duration_s;
        type_ok && duration_s >= self.min_duration_s && max_ok
    }
}

/// What a native request asks of a creative: the assets it requires and
/// the ones it would take ([`native_asset`] bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NativeFit {
    /// Assets marked `required`.
    pub required: u8,
    /// The other assets.
    pub optional: u8,
}

impl NativeFit {
    /// A native request no creative can answer (unreadable, no assets).
    pub const NONE: NativeFit = NativeFit {
        required: native_asset::UNFILLABLE,
        optional: 0,
    };

    /// Whether a creative that can fill the `assets` bits answers it: every
    /// required asset, and at least one asset in all.
    pub fn filled_by(self, assets: u8) -> bool {
        self.required & !assets == 0 && (self.required | self.optional) & assets != 0
    }
}

/// What one impression allows: the kinds it offers and what a creative must
/// fit for each, the attributes it blocks per kind, and the categories the
/// request blocks (`bcat`). The engine request carries it; see the
/// [module docs](self). The default allows everything and needs no
/// creative.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImpRules {
    /// The kinds offered ([`kind`] bits; audio counts as none); `None`
    /// (the default): not an ad slot, so no creative is needed.
    pub kinds: Option<u8>,
    /// [`size_key`] of the banner's own size and of each `format` entry
    /// with both sides set; empty when it gives none (any size then).
    pub banner_sizes: KeySet<SIZES_INLINE>,
    /// `imp.banner.battr` as [`attr_bit`]s.
    pub banner_battr: u32,
    /// `imp.video.battr` as [`attr_bit`]s.
    pub video_battr: u32,
    /// What an inline video file must fit.
    pub video: VideoFit,
    /// What the native request asks for.
    pub native: NativeFit,
    /// The request's `bcat` entries, hashed with [`item_hash`].
    pub blocked_categories: KeySet<CATEGORIES_INLINE>,
}

impl ImpRules {
    /// Whether these rules can rule any offer out (not the default).
    pub fn restricts(&self) -> bool {
        self.kinds.is_some() || !self.blocked_categories.is_empty()
    }
}

/// Why an offer cannot be shown on an impression, in the order checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unshowable {
    /// `bcat` covers one of the offer's categories.
    BlockedCategory,
    /// The offer has no creative for any kind the impression offers (or
    /// none that fits: sizes, video types and lengths, native assets).
    NoCreative,
    /// `battr` blocks one of the offer's attributes on every kind its
    /// creative could serve there.
    BlockedAttribute,
}

impl Unshowable {
    /// Every reason, in the order checked.
    pub const ALL: [Unshowable; 3] = [
        Self::BlockedCategory,
        Self::NoCreative,
        Self::BlockedAttribute,
    ];

    /// The snake_case label, as in an OpenRTB no-bid's `ext.reason`:
    /// `blocked_category`, `no_creative`, `blocked_attribute`.
    pub fn label(self) -> &'static str {
        match self {
            Self::BlockedCategory => "blocked_category",
            Self::NoCreative => "no_creative",
            Self::BlockedAttribute => "blocked_attribute",
        }
    }
}

impl fmt::Display for Unshowable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl std::error::Error for Unshowable {}

/// The key of a media type, compared ignoring ASCII case: xxh3 of its
/// ASCII-lowercased bytes. `None` for one longer than a catalog allows
/// ([`creative_limits::MEDIA_TYPE_BYTES_MAX`]), which no file can have.
pub fn media_type_key(media_type: &str) -> Option<u64> {
    let bytes = media_type.as_bytes();
    let mut lower = [0u8; creative_limits::MEDIA_TYPE_BYTES_MAX];
    let lower = lower.get_mut(..bytes.len())?;
    for (l, b) in lower.iter_mut().zip(bytes) {
        *l = b.to_ascii_lowercase();
    }
    Some(xxhash_rust::xxh3::xxh3_64(lower))
}

/// The key of a size: width and height packed into one `u64`.
pub fn size_key(w: u32, h: u32) -> u64 {
    (u64::from(w) << 32) | u64::from(h)
}

/// The bit of a creative attribute code in an attribute mask; 0 for a code
/// outside `1..=ATTR_MAX`, which no offer has.
pub fn attr_bit(code: i64) -> u32 {
    match u32::try_from(code) {
        Ok(a @ 1..=limits::ATTR_MAX) => 1 << a,
        _ => 0,
    }
}

/// The keys a `bcat` entry must equal to block `category`: the
/// [`item_hash`] of each of its prefixes that ends where a `-` starts, and
/// of the whole (`IAB1-6` gives `IAB1` and `IAB1-6`), as
/// [`super::category_covers`] matches.
pub fn category_keys(category: &str) -> impl Iterator<Item = u64> + '_ {
    let ends = category
        .bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'-')
        .map(|(j, _)| j)
        .chain(std::iter::once(category.len()));
    ends.filter(|&end| end > 0)
        .map(move |end| item_hash(&category[..end]))
}

/// Per offer, what [`Catalog::check_showable`] reads: one column per fact
/// (see the [module docs](self)), built with the catalog.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct ShowColumns {
    /// [`kind::BANNER`] and [`kind::VIDEO`] when the creative has a template
    /// for them, [`INLINE_FILE`] when its video is an inline file.
    serves: Vec<u8>,
    /// [`media_type_key`] of the inline file (0 without one).
    media_type: Vec<u64>,
    /// The inline file's length, seconds (0 without one).
    duration_s: Vec<u32>,
    /// [`native_asset`] bits the creative can fill.
    native_assets: Vec<u8>,
    /// The offer's `attr` as [`attr_bit`]s.
    attr_mask: Vec<u32>,
    category_key_span: Vec<Span>,
    /// [`category_keys`] of each offer's categories, repeats removed.
    category_keys: Vec<u64>,
}

/// A bit of [`ShowColumns::serves`]: the video is an inline file, which
/// must fit the player.
const INLINE_FILE: u8 = 0x80;

impl ShowColumns {
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            serves: Vec::with_capacity(n),
            media_type: Vec::with_capacity(n),
            duration_s: Vec::with_capacity(n),
            native_assets: Vec::with_capacity(n),
            attr_mask: Vec::with_capacity(n),
            category_key_span: Vec::with_capacity(n),
            category_keys: Vec::new(),
        }
    }

    /// Appends one offer's facts.
    pub(super) fn push(&mut self, offer: &OfferSpec, creative: Option<&Creative>) {
        let mut serves = 0;
        let (mut media_type, mut duration_s, mut assets) = (0, 0, 0);
        if let Some(creative) = creative {
            let spec = creative.spec();
            if creative.banner().is_some() {
                serves |= kind::BANNER;
            }
            if creative.video().is_some() {
                serves |= kind::VIDEO;
            }
            if spec.media_url.is_some() {
                serves |= INLINE_FILE;
                // A catalog's media types are within the limit.
                media_type = media_type_key(spec.media_type()).unwrap_or(0);
                duration_s = spec.duration_s.unwrap_or(0);
            }
            for (set, bit) in [
                (spec.title.is_some(), native_asset::TITLE),
                (spec.icon_url.is_some(), native_asset::ICON),
                (spec.image_url.is_some(), native_asset::IMAGE),
                (spec.sponsor.is_some(), native_asset::SPONSOR),
                (spec.description.is_some(), native_asset::DESCRIPTION),
                (spec.cta.is_some(), native_asset::CTA),
            ] {
                if set {
                    assets |= bit;
                }
            }
        }
        self.serves.push(serves);
        self.media_type.push(media_type);
        self.duration_s.push(duration_s);
        self.native_assets.push(assets);
        let attr = offer.attr.iter().fold(0, |m, &a| m | attr_bit(a.into()));
        self.attr_mask.push(attr);
        let start = self.category_keys.len();
        for key in offer.categories.iter().flat_map(|c| category_keys(c)) {
            if !self.category_keys[start..].contains(&key) {
                self.category_keys.push(key);
            }
        }
        self.category_key_span.push(Span {
            // Bounded by OFFERS_MAX x LIST_ITEMS_MAX x the parts of a
            // category, far below u32::MAX.
            start: start as u32,
            end: self.category_keys.len() as u32,
        });
    }

    /// The kinds offer `i`'s creative can serve among `offered`, given
    /// what `rules` asks each to fit.
    fn servable(&self, i: usize, offered: u8, rules: &ImpRules, sizes: &[(u32, u32)]) -> u8 {
        let mut kinds = offered & self.serves[i] & (kind::BANNER | kind::VIDEO);
        let banner_sizes = &rules.banner_sizes;
        if kinds & kind::BANNER != 0
            && !banner_sizes.is_empty()
            && !sizes.is_empty()
            && !sizes
                .iter()
                .any(|&(w, h)| banner_sizes.contains(size_key(w, h)))
        {
            kinds &= !kind::BANNER;
        }
        if kinds & kind::VIDEO != 0
            && self.serves[i] & INLINE_FILE != 0
            && !rules.video.fits(self.media_type[i], self.duration_s[i])
        {
            kinds &= !kind::VIDEO;
        }
        if offered & kind::NATIVE != 0 && rules.native.filled_by(self.native_assets[i]) {
            kinds |= kind::NATIVE;
        }
        kinds
    }

    /// The kinds whose `battr` blocks one of offer `i`'s attributes.
    fn blocked(&self, i: usize, rules: &ImpRules) -> u8 {
        let attr = self.attr_mask[i];
        let mut blocked = 0;
        if rules.banner_battr & attr != 0 {
            blocked |= kind::BANNER;
        }
        if rules.video_battr & attr != 0 {
            blocked |= kind::VIDEO;
        }
        blocked
    }
}

impl Catalog {
    /// Whether offer `i` can be shown on an impression that allows `rules`:
    /// `bcat`, then a creative for an offered kind that fits, then `battr`,
    /// reporting the first that fails (see the [module docs](self)).
    /// Always `Ok` for [`ImpRules::default`]. Allocates nothing.
    pub fn check_showable(&self, i: usize, rules: &ImpRules) -> Result<(), Unshowable> {
        let show = &self.show;
        if !rules.restricts() {
            return Ok(());
        }
        let keys = &show.category_keys[show.category_key_span[i].range()];
        if rules.blocked_categories.contains_any(keys) {
            return Err(Unshowable::BlockedCategory);
        }
        let Some(offered) = rules.kinds else {
            return Ok(());
        };
        let servable = show.servable(i, offered, rules, self.sizes(i));
        if servable == 0 {
            return Err(Unshowable::NoCreative);
        }
        if servable & !show.blocked(i, rules) == 0 {
            return Err(Unshowable::BlockedAttribute);
        }
        Ok(())
    }

    /// The kinds ([`kind`] bits) offer `i`'s creative has a template for:
    /// banner and video; native depends on the request's assets, and an
    /// offer without a creative serves nothing.
    pub fn kinds_with_template(&self, i: usize) -> u8 {
        self.show.serves[i] & (kind::BANNER | kind::VIDEO)
    }

    /// Offer `i`'s `attr` as a bitmask of [`attr_bit`]s.
    pub fn attr_mask(&self, i: usize) -> u32 {
        self.show.attr_mask[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_keys_are_the_prefixes_a_bcat_entry_may_equal() {
        let keys: Vec<u64> = category_keys("IAB1-6").collect();
        assert_eq!(keys, [item_hash("IAB1"), item_hash("IAB1-6")]);
        assert_eq!(
            category_keys("IAB19").collect::<Vec<_>>(),
            [item_hash("IAB19")]
        );
    }

    #[test]
    fn media_types_compare_ignoring_ascii_case() {
        assert_eq!(media_type_key("Video/MP4"), media_type_key("video/mp4"));
        assert_ne!(media_type_key("video/webm"), media_type_key("video/mp4"));
        let long = "v".repeat(creative_limits::MEDIA_TYPE_BYTES_MAX + 1);
        assert_eq!(media_type_key(&long), None);
    }

    #[test]
    fn attributes_outside_the_list_have_no_bit() {
        assert_eq!(attr_bit(1), 2);
        assert_eq!(attr_bit(17), 1 << 17);
        for code in [0, 18, -1, i64::MAX] {
            assert_eq!(attr_bit(code), 0);
        }
    }

    #[test]
    fn video_files_fit_types_and_durations() {
        let mp4 = media_type_key("video/mp4").unwrap();
        let webm = media_type_key("video/webm").unwrap();
        let any = VideoFit::default();
        assert!(any.fits(mp4, 3600));
        let fit = VideoFit {
            mimes: Some(KeySet::from_keys([webm])),
            min_duration_s: 5,
            max_duration_s: 30,
        };
        assert!(fit.fits(webm, 5) && fit.fits(webm, 30));
        assert!(!fit.fits(mp4, 20) && !fit.fits(webm, 4) && !fit.fits(webm, 31));
    }

    #[test]
    fn native_requests_need_every_required_asset_and_one_in_all() {
        use native_asset::*;
        let fit = NativeFit {
            required: TITLE,
            optional: IMAGE | CTA,
        };
        assert!(fit.filled_by(TITLE));
        assert!(fit.filled_by(TITLE | IMAGE | SPONSOR));
        assert!(!fit.filled_by(IMAGE | CTA));
        let optional = NativeFit {
            required: 0,
            optional: ICON,
        };
        assert!(optional.filled_by(ICON) && !optional.filled_by(TITLE));
        assert!(!NativeFit::NONE.filled_by(!UNFILLABLE));
        assert!(!NativeFit::default().filled_by(TITLE));
    }
}
