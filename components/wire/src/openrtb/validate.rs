//! Strict OpenRTB 2.6 validation: the rules of the specification that the
//! types alone cannot express, checked once a request has parsed.
//!
//! This module owns every rule [`super::parse_request`] applies after
//! deserialising, one small function per object, each citing the section of
//! OpenRTB 2.6 it enforces. A request that breaks one is refused with an
//! [`Error::OpenRtb`] whose path names the field (`imp[0].banner.format[1].w`)
//! and whose reason says what is wrong. Rules that types already enforce
//! (a negative size does not fit a `u32`, `gpp_sid` must hold integers, a
//! flag must fit a `u8`) are not repeated here.
//!
//! What the specification leaves to the bidder stays accepted: unknown
//! fields, absent recommended fields, enumeration codes outside their lists,
//! an impression that offers no ad kind. Where prebid-server adds its own
//! rules (bidder parameters in `imp.ext`, `ext.prebid`), the specification
//! wins and they are not checked. `docs/OPENRTB.md` ("Validation") lists
//! every rule.
//!
//! Rules are checked in document order (`id`, `imp`, then `site`/`app`/`dooh`,
//! `tmax`, `device`, `user`, `regs`), and the first broken one is reported.
//! Paths are built only when a rule fails, so a valid request costs no
//! allocation here.

use std::fmt::Write as _;

use serde_json::Value;

use super::context::{Device, Geo, Regs, User};
use super::openrtb_error;
use super::request::{Audio, Banner, BidRequest, Format, Imp, Native, Pmp, Video};
use crate::error::{Error, Result};

/// Checks every rule on a parsed request (OpenRTB 2.6 section 3.2.1 and the
/// objects below it).
pub(super) fn request(r: &BidRequest) -> Result<()> {
    let root = At::ROOT;
    if r.id.is_empty() {
        return Err(root.field("id").error("missing required field"));
    }
    imps(&root.field("imp"), &r.imp)?;
    inventory(r)?;
    // 3.2.1: `tmax` is the time allowed for a bid; none at all allows no bid.
    positive(&root.field("tmax"), r.tmax)?;
    if let Some(d) = &r.device {
        device(&root.field("device"), d)?;
    }
    if let Some(u) = &r.user {
        user(&root.field("user"), u)?;
    }
    if let Some(g) = &r.regs {
        regs(&root.field("regs"), g)?;
    }
    Ok(())
}

/// 3.2.1: at least one `Imp`; 3.2.4: each has an `id`, unique within the
/// request, so that a bid can name the impression it is for.
fn imps(at: &At<'_>, imps: &[Imp]) -> Result<()> {
    if imps.is_empty() {
        return Err(at.error("must hold at least one impression"));
    }
    for (i, one) in imps.iter().enumerate() {
        let at = at.index(i);
        if one.id.is_empty() {
            return Err(at.field("id").error("missing required field"));
        }
        // At most IMPS_MAX impressions: a quadratic scan beats hashing.
        if let Some(first) = imps[..i].iter().position(|other| other.id == one.id) {
            return Err(at
                .field("id")
                .error(format!("`{}` is also the id of imp[{first}]", one.id)));
        }
        imp(&at, one)?;
    }
    Ok(())
}

/// 3.2.4: a floor is a CPM (finite, not negative); the objects offered are
/// checked by their own rules.
fn imp(at: &At<'_>, imp: &Imp) -> Result<()> {
    floor(&at.field("bidfloor"), imp.bidfloor)?;
    if let Some(b) = &imp.banner {
        banner(&at.field("banner"), b, imp.instl == 1)?;
    }
    if let Some(v) = &imp.video {
        video(&at.field("video"), v)?;
    }
    if let Some(a) = &imp.audio {
        audio(&at.field("audio"), a)?;
    }
    if let Some(n) = &imp.native {
        native(&at.field("native"), n)?;
    }
    if let Some(p) = &imp.pmp {
        pmp(&at.field("pmp"), p)?;
    }
    Ok(())
}

/// 3.2.6: a banner's `w`/`h` are its exact size, and without `format` they
/// are what says the size; so a banner has `format`, or both `w` and `h`.
/// A size of 0 is no size and is refused, except `w` = `h` = 0 on an
/// interstitial (`imp.instl` = 1), which means the full screen (as in the
/// OpenRTB 2.5 specification's own mobile example, section 6.2.3). Each
/// `format` entry follows [`format`].
fn banner(at: &At<'_>, b: &Banner, interstitial: bool) -> Result<()> {
    let full_screen = interstitial && b.w == Some(0) && b.h == Some(0);
    if !full_screen {
        positive(&at.field("w"), b.w)?;
        positive(&at.field("h"), b.h)?;
    }
    let formats = at.field("format");
    for (j, f) in b.format.iter().enumerate() {
        format(&formats.index(j), f)?;
    }
    if b.format.is_empty() {
        let missing = match (b.w, b.h) {
            (Some(_), Some(_)) => return Ok(()),
            (Some(_), None) => at.field("h"),
            (None, Some(_)) => at.field("w"),
            (None, None) => {
                return Err(at.error("has no size: give `w` and `h`, or `format`"));
            }
        };
        return Err(missing.error("missing: a banner without `format` needs both `w` and `h`"));
    }
    Ok(())
}

/// 3.2.10: a format is an absolute size (`w` and `h`) or a flex-ad ratio
/// size (`wratio`, `hratio` and `wmin`): one complete set, not both, and
/// every value above 0.
fn format(at: &At<'_>, f: &Format) -> Result<()> {
    let absolute = [("w", f.w), ("h", f.h)];
    let ratio = [("wratio", f.wratio), ("hratio", f.hratio), ("wmin", f.wmin)];
    for (name, value) in absolute.iter().chain(&ratio) {
        positive(&at.field(name), *value)?;
    }
    let first_ratio = ratio.iter().find(|(_, v)| v.is_some());
    let has_absolute = absolute.iter().any(|(_, v)| v.is_some());
    match (has_absolute, first_ratio) {
        (true, Some((name, _))) => Err(at.field(name).error(
            "mixes a ratio size (`wratio`, `hratio`, `wmin`) with an absolute size (`w`, `h`) in one format",
        )),
        (false, None) => Err(at.error(
            "holds no size: give `w` and `h`, or `wratio`, `hratio` and `wmin`",
        )),
        (true, None) => complete(at, &absolute, "an absolute size needs both `w` and `h`"),
        (false, Some(_)) => complete(
            at,
            &ratio,
            "a ratio size needs all of `wratio`, `hratio` and `wmin`",
        ),
    }
}

/// The first absent field of a set that must be complete, as an error.
fn complete(at: &At<'_>, set: &[(&str, Option<u32>)], why: &str) -> Result<()> {
    match set.iter().find(|(_, v)| v.is_none()) {
        Some((name, _)) => Err(at.field(name).error(format!("missing: {why}"))),
        None => Ok(()),
    }
}

/// 3.2.7: `mimes` is required; the player size and bit rates, when given,
/// are above 0. (Durations are unsigned by type: a negative one is refused.)
fn video(at: &At<'_>, v: &Video) -> Result<()> {
    mimes(at, &v.mimes)?;
    positive(&at.field("w"), v.w)?;
    positive(&at.field("h"), v.h)?;
    positive(&at.field("minbitrate"), v.minbitrate)?;
    positive(&at.field("maxbitrate"), v.maxbitrate)
}

/// 3.2.8: `mimes` is required; bit rates, when given, are above 0.
fn audio(at: &At<'_>, a: &Audio) -> Result<()> {
    mimes(at, &a.mimes)?;
    positive(&at.field("minbitrate"), a.minbitrate)?;
    positive(&at.field("maxbitrate"), a.maxbitrate)
}

/// 3.2.7 / 3.2.8: the required `mimes` of a video or audio object, with at
/// least one MIME type.
fn mimes(at: &At<'_>, mimes: &[String]) -> Result<()> {
    if mimes.is_empty() {
        return Err(at
            .field("mimes")
            .error("missing required field: at least one MIME type"));
    }
    Ok(())
}

/// 3.2.9: `request`, the Native Ad Specification payload, is required; an
/// empty string carries none.
fn native(at: &At<'_>, n: &Native) -> Result<()> {
    if n.request.as_deref().is_none_or(str::is_empty) {
        return Err(at.field("request").error("missing required field"));
    }
    Ok(())
}

/// 3.2.12: every deal has an `id`; its floor is a CPM like the impression's.
fn pmp(at: &At<'_>, p: &Pmp) -> Result<()> {
    let deals = at.field("deals");
    for (k, deal) in p.deals.iter().enumerate() {
        let at = deals.index(k);
        if deal.id.is_empty() {
            return Err(at.field("id").error("missing required field"));
        }
        floor(&at.field("bidfloor"), deal.bidfloor)?;
    }
    Ok(())
}

/// 3.2.1, 3.2.13, 3.2.14 and 3.2.32: a request must not carry more than one
/// of `site`, `app` and `dooh`. Requiring one of them is this server's rule
/// (issue 14): OpenRTB calls them recommended, and without one a request
/// does not say what kind of inventory is being sold.
fn inventory(r: &BidRequest) -> Result<()> {
    let present = [
        ("site", r.site.is_some()),
        ("app", r.app.is_some()),
        ("dooh", r.dooh.is_some()),
    ];
    let mut first = None;
    for (name, here) in present {
        match (here, first) {
            (true, None) => first = Some(name),
            (true, Some(other)) => {
                return Err(At::ROOT.field(name).error(format!(
                    "a request carries only one of `site`, `app` and `dooh`; this one has `{other}` too"
                )));
            }
            (false, _) => {}
        }
    }
    Ok(())
}

/// 3.2.18: `ppi`, when given, is above 0; the location follows [`geo`].
/// (Screen sizes are unsigned by type.)
fn device(at: &At<'_>, d: &Device) -> Result<()> {
    positive(&at.field("ppi"), d.ppi)?;
    if let Some(g) = &d.geo {
        geo(&at.field("geo"), g)?;
    }
    Ok(())
}

/// 3.2.19: latitude from -90 to 90, longitude from -180 to 180. (`accuracy`,
/// in metres, is unsigned by type: a negative one is refused.)
fn geo(at: &At<'_>, g: &Geo) -> Result<()> {
    for (name, value, bound) in [("lat", g.lat, 90.0), ("lon", g.lon, 180.0)] {
        if let Some(v) = value {
            if !(-bound..=bound).contains(&v) {
                return Err(at
                    .field(name)
                    .error(format!("must be from -{bound} to {bound}, got {v}")));
            }
        }
    }
    Ok(())
}

/// 3.2.20: the home location follows [`geo`]. The OpenRTB 2.5 GDPR
/// extension (which 2.6 moved to `user.consent`, a string by type) puts the
/// TCF consent string in `user.ext.consent`: when given, it is a string.
fn user(at: &At<'_>, u: &User) -> Result<()> {
    if let Some(g) = &u.geo {
        geo(&at.field("geo"), g)?;
    }
    if let Some(Value::Object(ext)) = &u.ext {
        match ext.get("consent") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(other) => {
                return Err(at.field("ext").field("consent").error(format!(
                    "must be a string (the TCF consent string), got {}",
                    json_kind(other)
                )));
            }
        }
    }
    Ok(())
}

/// 3.2.3 (and 7.5): `coppa` and `gdpr` are 0 or 1; `us_privacy` is a US
/// Privacy string; `gpp_sid` holds integers (by type). The OpenRTB 2.5
/// extensions that 2.6 moved into `regs` follow the same rules where they
/// are given: `regs.ext.gdpr` (0 or 1) and `regs.ext.us_privacy`.
fn regs(at: &At<'_>, r: &Regs) -> Result<()> {
    flag(&at.field("coppa"), r.coppa.map(u64::from))?;
    flag(&at.field("gdpr"), r.gdpr.map(u64::from))?;
    if let Some(s) = &r.us_privacy {
        us_privacy(&at.field("us_privacy"), s)?;
    }
    let Some(Value::Object(ext)) = &r.ext else {
        return Ok(());
    };
    let ext_at = at.field("ext");
    match ext.get("gdpr") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            flag(&ext_at.field("gdpr"), n.as_u64())?;
        }
        Some(other) => {
            return Err(ext_at.field("gdpr").error(format!(
                "must be the integer 0 or 1, got {}",
                json_kind(other)
            )));
        }
    }
    match ext.get("us_privacy") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) => us_privacy(&ext_at.field("us_privacy"), s),
        Some(other) => Err(ext_at.field("us_privacy").error(format!(
            "must be a US Privacy string, got {}",
            json_kind(other)
        ))),
    }
}

/// The IAB US Privacy string (CCPA), as `regs.us_privacy` (3.2.3) and
/// `regs.ext.us_privacy` carry it: 4 characters, the version `1`, then
/// notice given, opted out and LSPA covered, each `Y`, `N` or `-`
/// (`1---` when the law does not apply).
fn us_privacy(at: &At<'_>, s: &str) -> Result<()> {
    let b = s.as_bytes();
    let valid =
        b.len() == 4 && b[0] == b'1' && b[1..].iter().all(|c| matches!(c, b'Y' | b'N' | b'-'));
    if valid {
        return Ok(());
    }
    let got = if s.chars().count() <= 32 {
        format!("{s:?}")
    } else {
        format!("a string of {} bytes", s.len())
    };
    Err(at.error(format!(
        "must be a US Privacy string: version `1` then three of `Y`, `N` or `-`, like `1YN-`; got {got}"
    )))
}

/// A 0/1 flag, when given, is 0 or 1.
fn flag(at: &At<'_>, value: Option<u64>) -> Result<()> {
    match value {
        Some(v) if v > 1 => Err(at.error(format!("must be 0 or 1, got {v}"))),
        _ => Ok(()),
    }
}

/// A size, bit rate, density or time limit, when given, is above 0.
fn positive(at: &At<'_>, value: Option<u32>) -> Result<()> {
    match value {
        Some(0) => Err(at.error("must be > 0, got 0")),
        _ => Ok(()),
    }
}

/// A floor (3.2.4, 3.2.12) is a CPM: finite and not negative.
fn floor(at: &At<'_>, floor: Option<f64>) -> Result<()> {
    match floor {
        Some(f) if !f.is_finite() || f < 0.0 => {
            Err(at.error(format!("must be a finite number >= 0, got {f}")))
        }
        _ => Ok(()),
    }
}

/// A JSON value as an error message shows it: the kind, and the value when
/// it is short.
fn json_kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("number `{n}`"),
        Value::String(s) if s.chars().count() <= 32 => format!("string {s:?}"),
        Value::String(s) => format!("a string of {} bytes", s.len()),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// Where a rule looks: a path into the request, kept as a chain of borrowed
/// segments and written out (`imp[0].banner.format[1].w`) only for an error.
#[derive(Clone, Copy)]
struct At<'a> {
    parent: Option<&'a At<'a>>,
    segment: Segment<'a>,
}

/// One step of an [`At`] path.
#[derive(Clone, Copy)]
enum Segment<'a> {
    /// The document itself (`$` when alone).
    Root,
    /// A named field.
    Field(&'a str),
    /// An item of a list.
    Index(usize),
}

impl<'a> At<'a> {
    /// The document itself.
    const ROOT: At<'static> = At {
        parent: None,
        segment: Segment::Root,
    };

    /// The field `name` of this object.
    fn field<'b>(&'b self, name: &'b str) -> At<'b> {
        At {
            parent: Some(self),
            segment: Segment::Field(name),
        }
    }

    /// The item `i` of this list.
    fn index<'b>(&'b self, i: usize) -> At<'b> {
        At {
            parent: Some(self),
            segment: Segment::Index(i),
        }
    }

    /// The path as the errors print it.
    fn render(&self, out: &mut String) {
        if let Some(parent) = self.parent {
            parent.render(out);
        }
        match self.segment {
            Segment::Root => {}
            Segment::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }

    /// The [`Error::OpenRtb`] for a broken rule here.
    fn error(&self, reason: impl Into<String>) -> Error {
        let mut path = String::new();
        self.render(&mut path);
        if path.is_empty() {
            path.push('$');
        }
        openrtb_error(path, reason)
    }
}
