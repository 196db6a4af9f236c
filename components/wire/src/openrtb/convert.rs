//! From a parsed request to one [`Impression`] (with its
//! [`RequestContext`]) per `imp`. The mapping is tabled in `docs/OPENRTB.md`.

use std::fmt;

use super::context::Geo;
use super::request::{BidRequest, Imp};
use cx_features::limits::{LIST_ITEMS_MAX, VALUE_BYTES_MAX};
use cx_features::{AdPosition, ConnectionType, DeviceType, Os, RequestContext};

/// The kind of ad an impression asks for. An impression that allows several
/// (a banner and a video, say) takes the first of banner, video, native,
/// audio that it has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ImpKind {
    /// `imp.banner` is present.
    Banner,
    /// `imp.video` is present (and no banner).
    Video,
    /// `imp.native` is present (and no banner or video).
    Native,
    /// `imp.audio` is present (and nothing above).
    Audio,
    /// None of the above (e.g. an impression with only `ext`).
    #[default]
    Other,
}

impl ImpKind {
    /// A lowercase label for logs and metrics (`banner`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Banner => "banner",
            Self::Video => "video",
            Self::Native => "native",
            Self::Audio => "audio",
            Self::Other => "other",
        }
    }

    /// The OpenRTB 2.6 `bid.mtype` code of a bid answering this kind of
    /// impression: 1 banner, 2 video, 3 audio, 4 native; `None` for
    /// [`Self::Other`].
    pub fn mtype(self) -> Option<i64> {
        match self {
            Self::Banner => Some(1),
            Self::Video => Some(2),
            Self::Audio => Some(3),
            Self::Native => Some(4),
            Self::Other => None,
        }
    }

    /// The kind a `bid.mtype` code answers, or `None` outside 1 to 4.
    pub fn from_mtype(code: i64) -> Option<Self> {
        [Self::Banner, Self::Video, Self::Audio, Self::Native]
            .into_iter()
            .find(|kind| kind.mtype() == Some(code))
    }

    /// Whether `imp` carries the object of this kind (`imp.banner` for
    /// [`Self::Banner`], ...); never for [`Self::Other`]. An impression may
    /// offer several kinds; [`Self::of`] names the first.
    pub fn offered_by(self, imp: &Imp) -> bool {
        match self {
            Self::Banner => imp.banner.is_some(),
            Self::Video => imp.video.is_some(),
            Self::Native => imp.native.is_some(),
            Self::Audio => imp.audio.is_some(),
            Self::Other => false,
        }
    }

    /// The kind of an impression, by the objects it carries.
    pub fn of(imp: &Imp) -> Self {
        if imp.banner.is_some() {
            Self::Banner
        } else if imp.video.is_some() {
            Self::Video
        } else if imp.native.is_some() {
            Self::Native
        } else if imp.audio.is_some() {
            Self::Audio
        } else {
            Self::Other
        }
    }
}

impl fmt::Display for ImpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One impression of a request, ready for decision: its id, its floor, and
/// the context the feature schema reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Impression {
    /// `imp.id`.
    pub imp_id: String,
    /// The request as the feature schema sees it, for this impression.
    /// `timestamp` is 0 (the engine stamps the arrival time), `extra` and
    /// `extra_numeric` are empty; `bid_floor` is the same value as
    /// [`Impression::bid_floor`], in [`Impression::bid_floor_currency`].
    pub ctx: RequestContext,
    /// `imp.bidfloor`, CPM; 0 when absent.
    pub bid_floor: f64,
    /// `imp.bidfloorcur`; `USD` when absent or empty.
    pub bid_floor_currency: String,
    /// What kind of ad the impression asks for.
    pub kind: ImpKind,
}

impl BidRequest {
    /// One [`Impression`] per entry of `imp`, in `imp` order. Never fails:
    /// data that is absent, empty or over a limit becomes the context's
    /// "missing" value (see `docs/OPENRTB.md` for each field).
    pub fn impressions(&self) -> Vec<Impression> {
        let base = self.base_context();
        self.imp
            .iter()
            .map(|imp| {
                let mut ctx = base.clone();
                let (w, h) = placement_size(imp);
                ctx.placement_width = w;
                ctx.placement_height = h;
                ctx.ad_position = ad_position(imp);
                let bid_floor = imp.bidfloor.unwrap_or(0.0);
                ctx.bid_floor = bid_floor;
                Impression {
                    imp_id: imp.id.clone(),
                    ctx,
                    bid_floor,
                    bid_floor_currency: match imp.bidfloorcur.as_deref() {
                        Some(cur) if !cur.is_empty() => cur.to_owned(),
                        _ => "USD".to_owned(),
                    },
                    kind: ImpKind::of(imp),
                }
            })
            .collect()
    }

    /// The request-level part of every impression's context: user, device,
    /// geography and inventory.
    fn base_context(&self) -> RequestContext {
        let device = self.device.as_ref();
        let user = self.user.as_ref();
        let mut ctx = RequestContext::default();

        let ifa = device
            .and_then(|d| d.ifa.as_deref())
            .filter(|ifa| !is_zero_ifa(ifa));
        ctx.user_id = value(
            [
                user.and_then(|u| u.id.as_deref()),
                user.and_then(|u| u.buyeruid.as_deref()),
                ifa,
            ]
            .into_iter()
            .flatten()
            .find(|id| !id.is_empty()),
        );
        if let Some(user) = user {
            let segments = user
                .data
                .iter()
                .flat_map(|data| &data.segment)
                .filter_map(|segment| segment.id.as_deref());
            ctx.user_segments = bounded_list(segments);
        }

        if let Some(device) = device {
            ctx.device_type = device
                .devicetype
                .map_or(DeviceType::Unknown, DeviceType::from_openrtb);
            ctx.os = device.os.as_deref().map_or(Os::Other, Os::parse);
            ctx.connection_type = device
                .connectiontype
                .map_or(ConnectionType::Unknown, ConnectionType::from_openrtb);
        }

        // Country and region come from one location, so a region is never
        // paired with another location's country.
        let geos = [
            device.and_then(|d| d.geo.as_ref()),
            user.and_then(|u| u.geo.as_ref()),
        ];
        let geo = geos
            .iter()
            .flatten()
            .find(|g| non_empty(&g.country).is_some())
            .or_else(|| {
                geos.iter()
                    .flatten()
                    .find(|g| non_empty(&g.region).is_some())
            });
        if let Some(geo) = geo {
            let Geo {
                country, region, ..
            } = geo;
            ctx.country = value(non_empty(country));
            ctx.region = value(non_empty(region));
        }

        if let Some(app) = &self.app {
            ctx.is_app = true;
            ctx.site_id = value(non_empty(&app.id));
            ctx.domain = value(non_empty(&app.domain).or_else(|| non_empty(&app.bundle)));
            let content = app.content.iter().flat_map(|c| &c.cat);
            ctx.categories = bounded_unique(app.cat.iter().chain(content));
        } else if let Some(site) = &self.site {
            ctx.site_id = value(non_empty(&site.id));
            ctx.domain = value(non_empty(&site.domain).or_else(|| {
                site.page
                    .as_deref()
                    .and_then(host)
                    .filter(|h| !h.is_empty())
            }));
            let content = site.content.iter().flat_map(|c| &c.cat);
            ctx.categories = bounded_unique(site.cat.iter().chain(content));
        }
        ctx
    }
}

/// The placement size: `banner.w` x `banner.h` when both are non-zero, else
/// the first `banner.format` entry with both non-zero, else `video.w` x
/// `video.h` when both are non-zero, else 0 x 0.
fn placement_size(imp: &Imp) -> (u32, u32) {
    let sized = |w: Option<u32>, h: Option<u32>| match (w, h) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
        _ => None,
    };
    let banner = imp
        .banner
        .as_ref()
        .and_then(|b| sized(b.w, b.h).or_else(|| b.format.iter().find_map(|f| sized(f.w, f.h))));
    banner
        .or_else(|| imp.video.as_ref().and_then(|v| sized(v.w, v.h)))
        .unwrap_or((0, 0))
}

/// `banner.pos`, else `video.pos`.
fn ad_position(imp: &Imp) -> AdPosition {
    imp.banner
        .as_ref()
        .and_then(|b| b.pos)
        .or_else(|| imp.video.as_ref().and_then(|v| v.pos))
        .map_or(AdPosition::Unknown, AdPosition::from_openrtb)
}

/// `Some` for a present, non-empty string.
fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A context string: the value when it is at most
/// [`VALUE_BYTES_MAX`] bytes (the schema ignores longer ones anyway),
/// else empty.
fn value(s: Option<&str>) -> String {
    match s {
        Some(s) if s.len() <= VALUE_BYTES_MAX => s.to_owned(),
        _ => String::new(),
    }
}

/// The first [`LIST_ITEMS_MAX`] non-empty items of at most
/// [`VALUE_BYTES_MAX`] bytes.
fn bounded_list<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    items
        .filter(|s| !s.is_empty() && s.len() <= VALUE_BYTES_MAX)
        .take(LIST_ITEMS_MAX)
        .map(str::to_owned)
        .collect()
}

/// As [`bounded_list`], without repeats (first occurrence kept).
fn bounded_unique<'a>(items: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if out.len() == LIST_ITEMS_MAX {
            break;
        }
        if !item.is_empty() && item.len() <= VALUE_BYTES_MAX && !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

/// The host of a page URL as written: without scheme, user info, port, path,
/// query or fragment (`http://www.foo.com:80/a?b` gives `www.foo.com`).
fn host(page: &str) -> Option<&str> {
    let page = page.trim();
    let rest = page.split_once("://").map_or(page, |(_, rest)| rest);
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // Strip a port, but not from a bracketed IPv6 literal.
    let host = match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(']') || h.ends_with(']') => {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }
        _ => host,
    };
    Some(host)
}

/// An advertising id of only zeros (and dashes): what a device with "limit
/// ad tracking" sends; it identifies nobody.
fn is_zero_ifa(ifa: &str) -> bool {
    ifa.bytes().all(|b| b == b'0' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtype_codes_match_the_kinds() {
        let kinds = [
            ImpKind::Banner,
            ImpKind::Video,
            ImpKind::Audio,
            ImpKind::Native,
        ];
        for (k, kind) in kinds.into_iter().enumerate() {
            assert_eq!(kind.mtype(), Some(k as i64 + 1));
            assert_eq!(ImpKind::from_mtype(k as i64 + 1), Some(kind));
        }
        assert_eq!(ImpKind::Other.mtype(), None);
        assert_eq!(ImpKind::from_mtype(0), None);
        assert_eq!(ImpKind::from_mtype(5), None);
        let imp = Imp {
            video: Some(Default::default()),
            native: Some(Default::default()),
            ..Imp::default()
        };
        assert_eq!(ImpKind::of(&imp), ImpKind::Video);
        assert!(ImpKind::Native.offered_by(&imp) && ImpKind::Video.offered_by(&imp));
        assert!(!ImpKind::Banner.offered_by(&imp) && !ImpKind::Other.offered_by(&imp));
    }

    #[test]
    fn hosts_are_cut_from_page_urls() {
        let cases = [
            ("http://www.foobar.com/1234.html ", "www.foobar.com"),
            ("https://a.b.com:8443/x?y#z", "a.b.com"),
            ("prebid.org", "prebid.org"),
            ("test.somepage.com/path", "test.somepage.com"),
            ("https://user:pw@host.com/", "host.com"),
            ("//cdn.example.com/a", "cdn.example.com"),
            ("http://[::1]:80/", "[::1]"),
            ("", ""),
        ];
        for (page, expected) in cases {
            assert_eq!(host(page), Some(expected), "{page:?}");
        }
    }

    #[test]
    fn zero_ifas_identify_nobody() {
        assert!(is_zero_ifa("00000000-0000-0000-0000-000000000000"));
        assert!(!is_zero_ifa("AA000DFE74168477C70D291f574D344790E0BB11"));
    }

    #[test]
    fn lists_are_capped_and_deduplicated() {
        let many: Vec<String> = (0..100).map(|i| format!("IAB{}", i % 50)).collect();
        let cats = bounded_unique(many.iter());
        assert_eq!(cats.len(), LIST_ITEMS_MAX);
        assert_eq!(cats[0], "IAB0");
        let long = "x".repeat(VALUE_BYTES_MAX + 1);
        let segs = bounded_list(["a", "", long.as_str(), "b"].into_iter());
        assert_eq!(segs, ["a", "b"]);
        assert_eq!(value(Some(&long)), "");
    }
}
