//! The request context: everything the feature schema reads about one
//! request, as owned plain data, plus the small enumerations it uses.
//!
//! The enumerations follow OpenRTB 2.6 (AdCOM 1.0 lists) where OpenRTB has a
//! list, and every one has an explicit `Unknown` (or `Other`) variant, so
//! that any integer or string a request carries maps to some value and the
//! schema never has to refuse a context.

use std::fmt;
use std::str::FromStr;

/// One request as the feature schema sees it. Every field has a "missing"
/// value (empty string, empty list, `Unknown`, zero), which is what
/// [`Default`] gives. `clone_from` reuses the target's strings and lists
/// (a host or a journal that copies contexts into pooled ones allocates
/// nothing once their buffers have grown).
#[derive(Debug, Default, PartialEq)]
pub struct RequestContext {
    /// The user's id (OpenRTB `user.id` or `user.buyeruid`); empty if unknown.
    pub user_id: String,
    /// The user's segments (e.g. OpenRTB `user.data[].segment[].id`). Only
    /// the first [`limits::LIST_ITEMS_MAX`](super::limits::LIST_ITEMS_MAX) are read.
    pub user_segments: Vec<String>,
    /// OpenRTB `device.devicetype`.
    pub device_type: DeviceType,
    /// OpenRTB `device.os`, parsed with [`Os::from_str`].
    pub os: Os,
    /// OpenRTB `device.connectiontype`.
    pub connection_type: ConnectionType,
    /// OpenRTB `device.geo.country`: ISO-3166-1 alpha-3 (e.g. `"USA"`); empty if unknown.
    pub country: String,
    /// OpenRTB `device.geo.region`: ISO-3166-2 subdivision without the country
    /// (e.g. `"CA"`); empty if unknown. Hashed together with the country.
    pub region: String,
    /// OpenRTB `site.id`, or `app.id` when [`is_app`](Self::is_app); empty if unknown.
    pub site_id: String,
    /// Whether the inventory is an app (`app` object) rather than a site.
    pub is_app: bool,
    /// OpenRTB `site.domain` or `app.domain`; empty if unknown.
    pub domain: String,
    /// IAB content categories (`site.cat` / `app.cat`), e.g. `"IAB1-2"`. Only
    /// the first [`limits::LIST_ITEMS_MAX`](super::limits::LIST_ITEMS_MAX) are read.
    pub categories: Vec<String>,
    /// Placement width in pixels (`imp.banner.w`); 0 if unknown.
    pub placement_width: u32,
    /// Placement height in pixels (`imp.banner.h`); 0 if unknown.
    pub placement_height: u32,
    /// OpenRTB `imp.banner.pos`.
    pub ad_position: AdPosition,
    /// OpenRTB `imp.bidfloor`: CPM in currency units. Non-finite or negative
    /// means no floor; see `docs/FEATURES.md` for the clamp.
    pub bid_floor: f64,
    /// When the request arrived: unix seconds, UTC.
    pub timestamp: i64,
    /// Generic hashed features, each a `name=value` item, for attributes the
    /// schema has no field for (a dataset spec's `hashed` columns, e.g.
    /// Avazu's `C14`). Multi-hot; only the first
    /// [`limits::LIST_ITEMS_MAX`](super::limits::LIST_ITEMS_MAX) are read.
    pub extra: Vec<String>,
    /// Generic numeric features (a dataset spec's `numeric` columns), each
    /// read as `ln(1 + v)` with `v` clamped to
    /// `[0, `[`limits::EXTRA_NUMERIC_MAX`](super::limits::EXTRA_NUMERIC_MAX)`]`;
    /// unused slots stay 0.
    pub extra_numeric: [f64; EXTRA_NUMERIC_SLOTS],
}

impl Clone for RequestContext {
    fn clone(&self) -> Self {
        let mut copy = Self::default();
        copy.clone_from(self);
        copy
    }

    fn clone_from(&mut self, source: &Self) {
        // Destructured whole: a field added to the struct must be added here.
        let Self {
            user_id,
            user_segments,
            device_type,
            os,
            connection_type,
            country,
            region,
            site_id,
            is_app,
            domain,
            categories,
            placement_width,
            placement_height,
            ad_position,
            bid_floor,
            timestamp,
            extra,
            extra_numeric,
        } = source;
        self.user_id.clone_from(user_id);
        self.user_segments.clone_from(user_segments);
        self.device_type = *device_type;
        self.os = *os;
        self.connection_type = *connection_type;
        self.country.clone_from(country);
        self.region.clone_from(region);
        self.site_id.clone_from(site_id);
        self.is_app = *is_app;
        self.domain.clone_from(domain);
        self.categories.clone_from(categories);
        self.placement_width = *placement_width;
        self.placement_height = *placement_height;
        self.ad_position = *ad_position;
        self.bid_floor = *bid_floor;
        self.timestamp = *timestamp;
        self.extra.clone_from(extra);
        self.extra_numeric = *extra_numeric;
    }
}

/// Slots of [`RequestContext::extra_numeric`].
pub const EXTRA_NUMERIC_SLOTS: usize = 4;

/// Declares an enumeration over an OpenRTB integer list whose slot in the
/// one-hot block is its OpenRTB value, with `Unknown` in slot 0.
macro_rules! openrtb_list {
    (
        $(#[$meta:meta])*
        $name:ident, $unknown_doc:literal,
        $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $label:literal ),+ $(,)?
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub enum $name {
            #[doc = $unknown_doc]
            #[default]
            Unknown,
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The labels of the one-hot slots, slot 0 (`unknown`) first.
            pub const SLOTS: &'static [&'static str] = &["unknown", $($label),+];

            /// The value for an OpenRTB integer; anything outside the list is `Unknown`.
            pub fn from_openrtb(value: i64) -> Self {
                match value {
                    $( $value => Self::$variant, )+
                    _ => Self::Unknown,
                }
            }

            /// The OpenRTB integer, or `None` for `Unknown`.
            pub fn openrtb(self) -> Option<u8> {
                match self {
                    Self::Unknown => None,
                    $( Self::$variant => Some($value), )+
                }
            }

            /// The value's slot in its one-hot block: 0 for `Unknown`, else the OpenRTB value.
            pub fn slot(self) -> usize {
                self.openrtb().map_or(0, usize::from)
            }

            /// The slot's label, as in [`Self::SLOTS`].
            pub fn label(self) -> &'static str {
                Self::SLOTS[self.slot()]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }
    };
}

openrtb_list! {
    /// The kind of device (OpenRTB 2.6 `device.devicetype`, AdCOM list "Device Types").
    DeviceType, "Missing, or a value outside 1-7.",
    /// 1: mobile or tablet (OpenRTB 2.0's generic value).
    MobileTablet = 1 => "mobile_tablet",
    /// 2: personal computer.
    PersonalComputer = 2 => "personal_computer",
    /// 3: connected TV.
    ConnectedTv = 3 => "connected_tv",
    /// 4: phone.
    Phone = 4 => "phone",
    /// 5: tablet.
    Tablet = 5 => "tablet",
    /// 6: connected device.
    ConnectedDevice = 6 => "connected_device",
    /// 7: set-top box.
    SetTopBox = 7 => "set_top_box",
}

openrtb_list! {
    /// The network connection (OpenRTB 2.6 `device.connectiontype`, AdCOM
    /// list "Connection Types"). OpenRTB's own 0 ("unknown") is `Unknown` too.
    ConnectionType, "0, missing, or a value outside 1-7.",
    /// 1: Ethernet, wired.
    Ethernet = 1 => "ethernet",
    /// 2: Wi-Fi.
    Wifi = 2 => "wifi",
    /// 3: cellular network, unknown generation.
    CellularUnknown = 3 => "cellular_unknown",
    /// 4: cellular 2G.
    Cellular2g = 4 => "cellular_2g",
    /// 5: cellular 3G.
    Cellular3g = 5 => "cellular_3g",
    /// 6: cellular 4G.
    Cellular4g = 6 => "cellular_4g",
    /// 7: cellular 5G.
    Cellular5g = 7 => "cellular_5g",
}

openrtb_list! {
    /// Where the placement sits on the screen (OpenRTB 2.6 `imp.banner.pos`,
    /// AdCOM list "Placement Positions"). OpenRTB's own 0 ("unknown") is `Unknown` too.
    AdPosition, "0, missing, or a value outside 1-7.",
    /// 1: above the fold.
    AboveTheFold = 1 => "above_the_fold",
    /// 2: may or may not be visible at first (deprecated by OpenRTB, still seen).
    MaybeVisible = 2 => "maybe_visible",
    /// 3: below the fold.
    BelowTheFold = 3 => "below_the_fold",
    /// 4: header.
    Header = 4 => "header",
    /// 5: footer.
    Footer = 5 => "footer",
    /// 6: sidebar.
    Sidebar = 6 => "sidebar",
    /// 7: full screen.
    FullScreen = 7 => "full_screen",
}

/// The device's operating system, parsed from OpenRTB's free-text
/// `device.os`. Parsing ignores ASCII case and surrounding whitespace and
/// never fails: an empty or unrecognised name is [`Os::Other`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Os {
    /// Missing or not one of the others (slot 0).
    #[default]
    Other,
    /// `android`.
    Android,
    /// `ios`, `ipados`, `iphone os`.
    Ios,
    /// `windows`, and any name starting with `windows` (`windows phone`, `windows 10`).
    Windows,
    /// `macos`, `mac os`, `mac os x`, `os x`, `osx`.
    Macos,
    /// `linux`.
    Linux,
}

impl Os {
    /// The labels of the one-hot slots, in slot order.
    pub const SLOTS: &'static [&'static str] =
        &["other", "android", "ios", "windows", "macos", "linux"];

    /// The system named by `name`; never fails (see the type's docs).
    pub fn parse(name: &str) -> Self {
        let name = name.trim();
        let is = |s: &str| name.eq_ignore_ascii_case(s);
        if is("android") {
            Self::Android
        } else if is("ios") || is("ipados") || is("iphone os") {
            Self::Ios
        } else if name.len() >= 7 && name.as_bytes()[..7].eq_ignore_ascii_case(b"windows") {
            Self::Windows
        } else if is("macos") || is("mac os") || is("mac os x") || is("os x") || is("osx") {
            Self::Macos
        } else if is("linux") {
            Self::Linux
        } else {
            Self::Other
        }
    }

    /// The value's slot in its one-hot block.
    pub fn slot(self) -> usize {
        match self {
            Self::Other => 0,
            Self::Android => 1,
            Self::Ios => 2,
            Self::Windows => 3,
            Self::Macos => 4,
            Self::Linux => 5,
        }
    }

    /// The slot's label, as in [`Self::SLOTS`].
    pub fn label(self) -> &'static str {
        Self::SLOTS[self.slot()]
    }
}

impl FromStr for Os {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The common IAB placement sizes `(width, height)` in pixels, in the order
/// of their one-hot slots; a size not in this list takes the last slot,
/// `other` (so does an unknown `0x0`).
pub const PLACEMENT_SIZES: [(u32, u32); 12] = [
    (300, 250),
    (728, 90),
    (320, 50),
    (160, 600),
    (300, 600),
    (320, 480),
    (970, 250),
    (468, 60),
    (336, 280),
    (120, 600),
    (480, 320),
    (320, 100),
];

/// The labels of the placement-size slots: [`PLACEMENT_SIZES`] then `other`.
pub const PLACEMENT_SIZE_SLOTS: &[&str] = &[
    "300x250", "728x90", "320x50", "160x600", "300x600", "320x480", "970x250", "468x60", "336x280",
    "120x600", "480x320", "320x100", "other",
];

/// The slot of a placement size in its one-hot block: its index in
/// [`PLACEMENT_SIZES`], or `PLACEMENT_SIZES.len()` (`other`).
pub fn placement_size_slot(width: u32, height: u32) -> usize {
    PLACEMENT_SIZES
        .iter()
        .position(|&size| size == (width, height))
        .unwrap_or(PLACEMENT_SIZES.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrtb_values_map_to_their_slot_and_back() {
        for v in 1..=7 {
            let d = DeviceType::from_openrtb(v);
            assert_eq!(d.slot(), v as usize);
            assert_eq!(d.openrtb(), Some(v as u8));
            assert_eq!(ConnectionType::from_openrtb(v).slot(), v as usize);
            assert_eq!(AdPosition::from_openrtb(v).slot(), v as usize);
        }
        assert_eq!(DeviceType::from_openrtb(4), DeviceType::Phone);
        assert_eq!(ConnectionType::from_openrtb(7), ConnectionType::Cellular5g);
        assert_eq!(AdPosition::from_openrtb(3), AdPosition::BelowTheFold);
    }

    #[test]
    fn out_of_list_values_are_unknown() {
        for v in [i64::MIN, -1, 0, 8, 99, i64::MAX] {
            assert_eq!(DeviceType::from_openrtb(v), DeviceType::Unknown);
            assert_eq!(ConnectionType::from_openrtb(v), ConnectionType::Unknown);
            assert_eq!(AdPosition::from_openrtb(v), AdPosition::Unknown);
        }
        assert_eq!(DeviceType::Unknown.slot(), 0);
        assert_eq!(DeviceType::SLOTS.len(), 8);
        assert_eq!(ConnectionType::SLOTS.len(), 8);
        assert_eq!(AdPosition::SLOTS.len(), 8);
        assert_eq!(DeviceType::Phone.to_string(), "phone");
    }

    #[test]
    fn os_names_parse_case_insensitively() {
        let cases = [
            ("Android", Os::Android),
            (" iOS ", Os::Ios),
            ("iPadOS", Os::Ios),
            ("Windows Phone", Os::Windows),
            ("WINDOWS", Os::Windows),
            ("Mac OS X", Os::Macos),
            ("macOS", Os::Macos),
            ("linux", Os::Linux),
            ("", Os::Other),
            ("Tizen", Os::Other),
            ("win", Os::Other),
            ("androidx", Os::Other),
        ];
        for (name, os) in cases {
            assert_eq!(name.parse::<Os>().unwrap(), os, "{name:?}");
            assert_eq!(Os::SLOTS[os.slot()], os.label());
        }
    }

    #[test]
    fn placement_sizes_have_one_slot_each_and_other_last() {
        assert_eq!(PLACEMENT_SIZE_SLOTS.len(), PLACEMENT_SIZES.len() + 1);
        for (i, &(w, h)) in PLACEMENT_SIZES.iter().enumerate() {
            assert_eq!(placement_size_slot(w, h), i);
            assert_eq!(PLACEMENT_SIZE_SLOTS[i], format!("{w}x{h}"));
        }
        assert_eq!(placement_size_slot(0, 0), 12);
        assert_eq!(placement_size_slot(250, 300), 12);
    }

    #[test]
    fn clone_from_copies_every_field_and_keeps_the_target_s_buffers() {
        let full = RequestContext {
            user_id: "user-1".into(),
            user_segments: vec!["a".into(), "b".into(), "c".into()],
            device_type: DeviceType::Phone,
            os: Os::Ios,
            country: "USA".into(),
            region: "CA".into(),
            site_id: "s".into(),
            is_app: true,
            domain: "news.example".into(),
            categories: vec!["IAB1".into()],
            placement_width: 300,
            placement_height: 250,
            bid_floor: 0.5,
            timestamp: 7,
            extra: vec!["C14=1".into()],
            extra_numeric: [1.0, 2.0, 3.0, 4.0],
            ..RequestContext::default()
        };
        let mut target = RequestContext {
            user_id: String::with_capacity(64),
            ..RequestContext::default()
        };
        let buffer = target.user_id.as_ptr();
        target.clone_from(&full);
        assert_eq!(target, full);
        assert_eq!(
            target.user_id.as_ptr(),
            buffer,
            "the string kept its buffer"
        );
        assert_eq!(full.clone(), full);
        // Back to a context with fewer items.
        target.clone_from(&RequestContext::default());
        assert_eq!(target, RequestContext::default());
    }
}
