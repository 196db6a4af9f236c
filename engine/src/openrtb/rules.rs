//! What an OpenRTB impression allows, as the engine request carries it
//! ([`ImpRules`], `cx_domain::catalog::showable`): the kinds it offers and
//! what a creative must fit for each, its `battr`, and the request's
//! `bcat`. [`plan_impressions`](super::plan_impressions) puts one on every
//! impression's request, so the decide step never chooses (and never
//! charges) an offer the bid could not be made with.
//!
//! The rules mirror what the bid's markup needs ([`super::markup`]): the
//! kinds banner, video and native (audio is not served), a banner's sizes
//! (its own and its formats', both sides set), a video player's `mimes`
//! and durations, and the assets a native request asks for, read exactly
//! as [`markup::native`](super::markup::native) reads them. Everything is
//! reduced to keys and bitmasks here, once per impression, so that the
//! check per offer compares numbers only.

use cx_domain::catalog::showable::{
    attr_bit, kind, media_type_key, size_key, CATEGORIES_INLINE, SIZES_INLINE,
};
use cx_domain::catalog::{item_hash, limits, ImpRules, KeySet, NativeFit, VideoFit};
use cx_wire::openrtb::{Banner, BidRequest, Imp, Video};

pub use super::native::native_fit;

/// The request's `bcat` as keys ([`item_hash`] of each entry), taken once
/// per request for all its impressions. Empty entries and entries longer
/// than a catalog category can be ([`limits::CATEGORY_BYTES_MAX`]) block
/// nothing and are left out.
pub fn blocked_categories(request: &BidRequest) -> KeySet<CATEGORIES_INLINE> {
    KeySet::from_keys(
        request
            .bcat
            .iter()
            .filter(|c| !c.is_empty() && c.len() <= limits::CATEGORY_BYTES_MAX)
            .map(|c| item_hash(c)),
    )
}

/// What `imp` allows, with the request's `bcat` keys
/// ([`blocked_categories`]).
pub fn imp_rules(imp: &Imp, bcat: &KeySet<CATEGORIES_INLINE>) -> ImpRules {
    let mut kinds = 0;
    let mut rules = ImpRules {
        blocked_categories: bcat.clone(),
        ..ImpRules::default()
    };
    if let Some(banner) = &imp.banner {
        kinds |= kind::BANNER;
        rules.banner_sizes = banner_sizes(banner);
        rules.banner_battr = attr_mask(&banner.battr);
    }
    if let Some(video) = &imp.video {
        kinds |= kind::VIDEO;
        rules.video = video_fit(video);
        rules.video_battr = attr_mask(&video.battr);
    }
    if let Some(native) = &imp.native {
        kinds |= kind::NATIVE;
        rules.native = native
            .request
            .as_deref()
            .map_or(NativeFit::NONE, native_fit);
    }
    rules.kinds = Some(kinds);
    rules
}

/// The sizes a banner gives: its own `w` x `h` and each `format` entry's,
/// where both sides are set (as the markup picks among them).
fn banner_sizes(banner: &Banner) -> KeySet<SIZES_INLINE> {
    let own = banner.w.zip(banner.h);
    let formats = banner.format.iter().map(|f| f.w.zip(f.h));
    KeySet::from_keys(
        std::iter::once(own)
            .chain(formats)
            .flatten()
            .filter(|&(w, h)| w > 0 && h > 0)
            .map(|(w, h)| size_key(w, h)),
    )
}

/// `battr` as a bitmask of [`attr_bit`]s.
fn attr_mask(battr: &[i64]) -> u32 {
    battr.iter().fold(0, |mask, &code| mask | attr_bit(code))
}

/// What an inline video file must fit: a type among `mimes` (any when
/// none are listed; compared ignoring ASCII case) and a length within
/// `minduration`..`maxduration` (a `maxduration` of 0 is no limit).
fn video_fit(video: &Video) -> VideoFit {
    VideoFit {
        mimes: (!video.mimes.is_empty())
            .then(|| KeySet::from_keys(video.mimes.iter().filter_map(|m| media_type_key(m)))),
        min_duration_s: video.minduration.unwrap_or(0),
        max_duration_s: video.maxduration.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_domain::catalog::showable::native_asset::*;

    #[test]
    fn native_requests_are_read_as_the_markup_reads_them() {
        let fit = native_fit(
            r#"{"native":{"assets":[{"id":1,"required":1,"title":{"len":25}},
                {"id":2,"img":{"type":1}},{"id":3,"img":{"type":3}},
                {"id":4,"required":1,"data":{"type":12}},{"id":5,"video":{}}]}}"#,
        );
        assert_eq!(fit.required, TITLE | CTA);
        assert_eq!(fit.optional, ICON | IMAGE | UNFILLABLE);
        for unreadable in [
            "not json",
            "[]",
            r#"{"assets":{}}"#,
            r#"{"assets":[{"title":{}}]}"#,
            r#"{"assets":[{"id":"1","title":{}}]}"#,
        ] {
            assert_eq!(native_fit(unreadable), NativeFit::NONE, "{unreadable}");
        }
        assert_eq!(native_fit(r#"{"assets":[]}"#), NativeFit::default());
    }

    #[test]
    fn sizes_attributes_and_categories_become_keys() {
        let imp: Imp = serde_json::from_str(
            r#"{"id":"1","banner":{"w":300,"h":250,"battr":[1,12,99],
                "format":[{"w":728,"h":90},{"w":0,"h":50},{"wratio":16,"hratio":9,"wmin":320}]},
                "video":{"mimes":["Video/MP4"],"maxduration":30,"battr":[3]}}"#,
        )
        .unwrap();
        let bcat = KeySet::from_keys([item_hash("IAB1")]);
        let rules = imp_rules(&imp, &bcat);
        assert_eq!(rules.kinds, Some(kind::BANNER | kind::VIDEO));
        let sizes = rules.banner_sizes.as_slice();
        assert_eq!(sizes.len(), 2);
        assert!(rules.banner_sizes.contains(size_key(300, 250)));
        assert!(rules.banner_sizes.contains(size_key(728, 90)));
        assert_eq!(rules.banner_battr, attr_bit(1) | attr_bit(12));
        assert_eq!(rules.video_battr, attr_bit(3));
        let mp4 = media_type_key("video/mp4").unwrap();
        assert!(rules.video.fits(mp4, 30) && !rules.video.fits(mp4, 31));
        assert_eq!(rules.blocked_categories, bcat);
        let audio: Imp =
            serde_json::from_str(r#"{"id":"1","audio":{"mimes":["audio/mp4"]}}"#).unwrap();
        assert_eq!(imp_rules(&audio, &KeySet::default()).kinds, Some(0));
    }
}
