//! `Catalog::check_showable`: which offers an impression can show, from
//! the per-offer columns precomputed at build time and an impression's
//! `ImpRules` (kinds and what a creative must fit, `battr`, `bcat`).

use cx_domain::catalog::showable::{
    attr_bit, kind, media_type_key, native_asset, size_key, CATEGORIES_INLINE,
};
use cx_domain::catalog::{
    item_hash, Catalog, CreativeSpec, ImpRules, KeySet, NativeFit, OfferSpec, Unshowable, VideoFit,
};

/// 1: a banner (image) for 300x250 only, attribute 6, category IAB19-6.
/// 2: an inline mp4 of 15 s and a title (video, native title).
/// 3: no creative.
/// 4: a VAST wrapper, a title and a call to action.
fn catalog() -> Catalog {
    let creative = |f: &dyn Fn(&mut CreativeSpec)| {
        let mut spec = CreativeSpec {
            click_url: "https://x.example/go".into(),
            impression_url: Some("https://t.x.example/i".into()),
            ..CreativeSpec::default()
        };
        f(&mut spec);
        Some(spec)
    };
    let mut banner = OfferSpec::new(1);
    banner.sizes = vec![(300, 250)];
    banner.attr = vec![6];
    banner.categories = vec!["IAB19-6".into()];
    banner.creative = creative(&|s| s.image_url = Some("https://x.example/a.jpg".into()));
    let mut video = OfferSpec::new(2);
    video.creative = creative(&|s| {
        s.media_url = Some("https://x.example/a.mp4".into());
        (s.media_width, s.media_height, s.duration_s) = (Some(640), Some(360), Some(15));
        s.title = Some("Two".into());
    });
    let bare = OfferSpec::new(3);
    let mut wrapper = OfferSpec::new(4);
    wrapper.creative = creative(&|s| {
        s.vast_tag_url = Some("https://x.example/vast.xml".into());
        s.title = Some("Four".into());
        s.cta = Some("Go".into());
    });
    Catalog::from_offers(vec![banner, video, bare, wrapper]).expect("a valid catalog")
}

/// `check_showable` for offers 1-4 (catalog order).
fn verdicts(c: &Catalog, rules: &ImpRules) -> Vec<Result<(), Unshowable>> {
    (0..c.len()).map(|i| c.check_showable(i, rules)).collect()
}

fn offering(kinds: u8) -> ImpRules {
    ImpRules {
        kinds: Some(kinds),
        ..ImpRules::default()
    }
}

fn bcat(codes: &[&str]) -> KeySet<CATEGORIES_INLINE> {
    KeySet::from_keys(codes.iter().map(|c| item_hash(c)))
}

use Unshowable::*;

#[test]
fn the_default_rules_show_every_offer() {
    let c = catalog();
    assert!(verdicts(&c, &ImpRules::default()).iter().all(Result::is_ok));
    assert!(!ImpRules::default().restricts());
}

#[test]
fn a_creative_is_needed_for_a_kind_the_impression_offers() {
    let c = catalog();
    let banner = offering(kind::BANNER);
    assert_eq!(
        verdicts(&c, &banner),
        [Ok(()), Err(NoCreative), Err(NoCreative), Err(NoCreative)]
    );
    let video = offering(kind::VIDEO);
    assert_eq!(
        verdicts(&c, &video),
        [Err(NoCreative), Ok(()), Err(NoCreative), Ok(())]
    );
    // Audio, or an impression offering nothing: nothing is shown.
    assert!(verdicts(&c, &offering(0))
        .iter()
        .all(|v| *v == Err(NoCreative)));
    assert_eq!(c.kinds_with_template(0), kind::BANNER);
    assert_eq!(c.kinds_with_template(2), 0);
}

#[test]
fn a_banner_needs_one_of_its_sizes() {
    let c = catalog();
    let sized = |sizes: &[(u32, u32)]| ImpRules {
        banner_sizes: KeySet::from_keys(sizes.iter().map(|&(w, h)| size_key(w, h))),
        ..offering(kind::BANNER)
    };
    assert_eq!(c.check_showable(0, &sized(&[(728, 90)])), Err(NoCreative));
    assert_eq!(
        c.check_showable(0, &sized(&[(728, 90), (300, 250)])),
        Ok(())
    );
    assert_eq!(c.check_showable(0, &sized(&[])), Ok(()), "no size given");
}

#[test]
fn a_video_file_must_fit_the_player_and_a_wrapper_fits_any() {
    let c = catalog();
    let player = |mimes: &[&str], max: u32| ImpRules {
        video: VideoFit {
            mimes: Some(KeySet::from_keys(
                mimes.iter().filter_map(|m| media_type_key(m)),
            )),
            min_duration_s: 0,
            max_duration_s: max,
        },
        ..offering(kind::VIDEO)
    };
    assert_eq!(c.check_showable(1, &player(&["Video/MP4"], 0)), Ok(()));
    assert_eq!(
        c.check_showable(1, &player(&["video/webm"], 0)),
        Err(NoCreative)
    );
    assert_eq!(
        c.check_showable(1, &player(&["video/mp4"], 10)),
        Err(NoCreative)
    );
    assert_eq!(c.check_showable(3, &player(&["video/webm"], 10)), Ok(()));
}

#[test]
fn a_native_request_needs_its_required_assets() {
    let c = catalog();
    let native = |required: u8, optional: u8| ImpRules {
        native: NativeFit { required, optional },
        ..offering(kind::NATIVE)
    };
    let cta = native(native_asset::CTA, native_asset::TITLE);
    assert_eq!(
        verdicts(&c, &cta),
        [Err(NoCreative), Err(NoCreative), Err(NoCreative), Ok(())]
    );
    let image = native(0, native_asset::IMAGE);
    assert_eq!(verdicts(&c, &image)[0], Ok(()), "offer 1 has an image");
    let unreadable = ImpRules {
        native: NativeFit::NONE,
        ..offering(kind::NATIVE)
    };
    assert!(verdicts(&c, &unreadable)
        .iter()
        .all(|v| *v == Err(NoCreative)));
}

#[test]
fn battr_blocks_an_offer_only_on_every_kind_it_could_serve() {
    let c = catalog();
    let blocked = ImpRules {
        banner_battr: attr_bit(6) | attr_bit(7),
        ..offering(kind::BANNER)
    };
    assert_eq!(c.check_showable(0, &blocked), Err(BlockedAttribute));
    // The same attribute blocked on video does not touch a banner.
    let elsewhere = ImpRules {
        video_battr: attr_bit(6),
        ..offering(kind::BANNER | kind::VIDEO)
    };
    assert_eq!(c.check_showable(0, &elsewhere), Ok(()));
    assert_eq!(c.attr_mask(0), attr_bit(6));
}

#[test]
fn bcat_blocks_an_offer_whose_category_it_covers() {
    let c = catalog();
    let rules = |codes: &[&str]| ImpRules {
        blocked_categories: bcat(codes),
        ..offering(kind::ALL)
    };
    assert_eq!(
        c.check_showable(0, &rules(&["IAB19"])),
        Err(BlockedCategory)
    );
    assert_eq!(
        c.check_showable(0, &rules(&["IAB19-6"])),
        Err(BlockedCategory)
    );
    assert_eq!(
        c.check_showable(0, &rules(&["IAB19-7", "IAB1", "IAB1-6"])),
        Ok(())
    );
    // Checked first, and without kinds too.
    let no_kinds = ImpRules {
        blocked_categories: bcat(&["IAB19"]),
        ..ImpRules::default()
    };
    assert!(no_kinds.restricts());
    assert_eq!(
        verdicts(&c, &no_kinds),
        [Err(BlockedCategory), Ok(()), Ok(()), Ok(())]
    );
    // A long bcat spills onto the heap and still blocks.
    let mut long: Vec<String> = (1..=40).map(|k| format!("IAB{k}-99")).collect();
    long.push("IAB19".into());
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    assert!(bcat(&long).spilled());
    assert_eq!(c.check_showable(0, &rules(&long)), Err(BlockedCategory));
}

#[test]
fn the_check_allocates_nothing() {
    let c = catalog();
    let codes: Vec<String> = (1..=40).map(|k| format!("IAB{k}")).collect();
    let rules = [
        ImpRules::default(),
        offering(kind::ALL),
        ImpRules {
            blocked_categories: KeySet::from_keys(codes.iter().map(|c| item_hash(c))),
            banner_battr: attr_bit(6),
            ..offering(kind::BANNER | kind::VIDEO)
        },
    ];
    let mut shown = 0;
    let info = allocation_counter::measure(|| {
        for rules in &rules {
            for i in 0..c.len() {
                shown += usize::from(c.check_showable(i, rules).is_ok());
            }
        }
    });
    assert_eq!(info.count_total, 0);
    assert!(shown > 0);
}
