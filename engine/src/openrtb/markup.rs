//! A bid's markup (`adm`), its markup type (`mtype`) and its size (`w`,
//! `h`), from the offer's creative and the impression.
//!
//! The kind is chosen from what the impression offers, in the order
//! banner, video, native ([`ImpKind::of`]'s order): the first that the
//! creative can serve and whose `battr` does not block the offer's
//! attributes. Audio is not served.
//!
//! - **Banner**: the creative's banner template, rendered at the chosen
//!   format: `imp.banner.w` x `h` when both are set, else the first
//!   `imp.banner.format` entry with both sides set, taking the first that
//!   the offer's `sizes` allow (any when it lists none). A banner with no
//!   size at all gets a bid without `w`/`h`.
//! - **Video**: the creative's video template (VAST). An inline file must
//!   be of a type in `imp.video.mimes` (when listed) and within
//!   `minduration`..`maxduration`. `w`/`h` are the player's
//!   (`imp.video.w`/`h`), else the file's.
//! - **Native**: a Native 1.2 response document (the root object, no
//!   `native` wrapper) that answers the assets of `imp.native.request`
//!   (a request wrapped in `{"native": ...}`, as Native 1.0 wrote it, is
//!   read too): a title asset gets the title (cut to its `len`), an image
//!   asset of type 1 the icon and any other the main image, a data asset
//!   of type 1 the sponsor, 2 the description, 12 the call to action.
//!   Assets the creative cannot fill are left out, and if one of them is
//!   `required` there is no native ad.
//!
//! Every value put into HTML or VAST is escaped ([`Template::render`]);
//! the native document is written with JSON's escapes
//! ([`super::native`]).
//!
//! What an offer needs to get markup here is what the decide step checks
//! before choosing it ([`super::rules`], `Catalog::check_showable`); the
//! two must agree, and the tests check that they do.

use super::native::native_into;
use cx_domain::catalog::template::{MarkupOut, Slot, Template};
use cx_domain::catalog::{Catalog, Creative, CreativeSpec};
use cx_domain::pipeline::NoBidCause;
use cx_wire::openrtb::{Banner, Imp, ImpKind, Video};

/// Most native request assets read; later ones are ignored.
pub const NATIVE_ASSETS_MAX: usize = 64;

/// The markup of one bid.
#[derive(Clone, Debug, PartialEq)]
pub struct Markup {
    /// The kind served.
    pub kind: ImpKind,
    /// `bid.adm`.
    pub adm: String,
    /// `bid.w`, `bid.h`.
    pub size: Option<(u32, u32)>,
}

/// Why an impression gets no markup from an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoMarkup {
    /// The offer has no creative for any kind the impression offers (or
    /// the impression's formats, types or durations rule its creative out).
    NoCreative,
    /// The impression's `battr` blocks one of the offer's attributes on
    /// every kind the creative could serve.
    BlockedAttribute,
}

impl NoMarkup {
    /// The label that goes into the response's `ext.reason`: that of the
    /// decide step's cause for the same exclusion (`no_creative`,
    /// `blocked_attribute`).
    pub fn label(self) -> &'static str {
        match self {
            Self::NoCreative => NoBidCause::NoCreative.label(),
            Self::BlockedAttribute => NoBidCause::BlockedAttribute.label(),
        }
    }
}

/// What a template needs to know of the bid.
pub struct BidValues<'a> {
    /// The bid's id.
    pub bid_id: &'a str,
    /// `imp.id`.
    pub imp_id: &'a str,
    /// The offer id.
    pub offer_id: u64,
    /// The offer's `creative_id`.
    pub creative_id: &'a str,
}

/// The markup of offer `i` (catalog index) for `imp`, from its creative
/// variant `variant` (0: the offer's own creative). See the module docs.
pub fn markup(
    imp: &Imp,
    catalog: &Catalog,
    i: usize,
    variant: usize,
    bid: &BidValues<'_>,
) -> Result<Markup, NoMarkup> {
    let mut adm = String::new();
    let (kind, size) = markup_into(imp, catalog, i, variant, bid, &mut adm)?;
    Ok(Markup { kind, adm, size })
}

/// [`markup`] written into `adm` (cleared first, and left empty on an
/// error), for a caller that reuses the buffer from bid to bid, or wants
/// the markup as JSON string text: the kind served and the size.
pub fn markup_into<O: MarkupOut>(
    imp: &Imp,
    catalog: &Catalog,
    i: usize,
    variant: usize,
    bid: &BidValues<'_>,
    adm: &mut O,
) -> Result<(ImpKind, Option<(u32, u32)>), NoMarkup> {
    adm.clear_markup();
    let creative = catalog
        .variant(i, variant)
        .and_then(|(_, creative)| creative)
        .ok_or(NoMarkup::NoCreative)?;
    let attr = catalog.attr(i);
    let mut why = NoMarkup::NoCreative;
    for kind in [ImpKind::Banner, ImpKind::Video, ImpKind::Native] {
        if !kind.offered_by(imp) {
            continue;
        }
        adm.clear_markup();
        let made = match kind {
            ImpKind::Banner => imp
                .banner
                .as_ref()
                .and_then(|b| banner(b, creative, catalog.sizes(i), bid, adm)),
            ImpKind::Video => imp
                .video
                .as_ref()
                .and_then(|v| video(v, creative, bid, adm)),
            _ => imp
                .native
                .as_ref()
                .and_then(|n| n.request.as_deref())
                .and_then(|r| native_into(r, creative.spec(), adm).then_some(None)),
        };
        let Some(size) = made else { continue };
        if blocks(imp, kind, attr) {
            why = NoMarkup::BlockedAttribute;
            continue;
        }
        return Ok((kind, size));
    }
    adm.clear_markup();
    Err(why)
}

/// Whether the impression's `battr` for `kind` holds one of `attr`.
fn blocks(imp: &Imp, kind: ImpKind, attr: &[u32]) -> bool {
    let battr = match kind {
        ImpKind::Banner => imp.banner.as_ref().map(|b| b.battr.as_slice()),
        ImpKind::Video => imp.video.as_ref().map(|v| v.battr.as_slice()),
        _ => None,
    };
    battr.is_some_and(|battr| attr.iter().any(|&a| battr.contains(&i64::from(a))))
}

/// Renders `template` for the bid, with the format's size, into `out`.
fn render(
    template: &Template,
    spec: &CreativeSpec,
    bid: &BidValues<'_>,
    size: Option<(u32, u32)>,
    out: &mut impl MarkupOut,
) {
    template.render(out, |slot, v| match slot {
        Slot::W => {
            if let Some((w, _)) = size {
                v.push_str(itoa::Buffer::new().format(w));
            }
        }
        Slot::H => {
            if let Some((_, h)) = size {
                v.push_str(itoa::Buffer::new().format(h));
            }
        }
        Slot::OfferId => v.push_str(itoa::Buffer::new().format(bid.offer_id)),
        Slot::CreativeId => v.push_str(bid.creative_id),
        Slot::BidId => v.push_str(bid.bid_id),
        Slot::ImpId => v.push_str(bid.imp_id),
        Slot::Price => v.push_str("${AUCTION_PRICE}"),
        other => spec.slot_value(other, v),
    });
}

/// A bid's size, when it has one (the markup goes into a caller's buffer).
type Made = Option<(u32, u32)>;

fn banner(
    b: &Banner,
    creative: &Creative,
    sizes: &[(u32, u32)],
    bid: &BidValues<'_>,
    out: &mut impl MarkupOut,
) -> Option<Made> {
    let template = creative.banner()?;
    let size = banner_size(b, sizes).ok()?;
    render(template, creative.spec(), bid, size, out);
    Some(size)
}

/// The format a banner bid is for: the first of the banner's own size and
/// its `format` entries (those with both sides set) that the offer allows;
/// `Ok(None)` when the banner gives no size at all, `Err` when the offer
/// allows none of the sizes it gives.
fn banner_size(b: &Banner, sizes: &[(u32, u32)]) -> Result<Option<(u32, u32)>, ()> {
    let own = match (b.w, b.h) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
        _ => None,
    };
    let formats = b.format.iter().filter_map(|f| match (f.w, f.h) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
        _ => None,
    });
    let mut candidates = own.into_iter().chain(formats).peekable();
    if candidates.peek().is_none() {
        return Ok(None);
    }
    candidates
        .find(|size| sizes.is_empty() || sizes.contains(size))
        .map(Some)
        .ok_or(())
}

fn video(
    v: &Video,
    creative: &Creative,
    bid: &BidValues<'_>,
    out: &mut impl MarkupOut,
) -> Option<Made> {
    let template = creative.video()?;
    let spec = creative.spec();
    if spec.media_url.is_some() && !file_fits(v, spec) {
        return None;
    }
    let player = match (v.w, v.h) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
        _ => None,
    };
    let file = spec.media_width.zip(spec.media_height);
    let size = player.or(file);
    render(template, spec, bid, size, out);
    Some(size)
}

/// Whether an inline video file suits the player: its type among the
/// `mimes` (when listed) and its length within the durations (when set).
fn file_fits(v: &Video, spec: &CreativeSpec) -> bool {
    let media_type = spec.media_type();
    let type_ok = v.mimes.is_empty() || v.mimes.iter().any(|m| m.eq_ignore_ascii_case(media_type));
    let duration = spec.duration_s.unwrap_or(0);
    let min_ok = v.minduration.is_none_or(|min| duration >= min);
    let max_ok = v.maxduration.is_none_or(|max| max == 0 || duration <= max);
    type_ok && min_ok && max_ok
}
