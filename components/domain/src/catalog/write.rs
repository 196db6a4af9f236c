//! Reading offers back out of a [`Catalog`] and writing its TOML form.

use std::fmt::Write as _;

use super::build::OFFER_KEY;
use super::spec::{device_type_from_label, size_label};
use super::{Catalog, Channels, CreativeSpec, OfferSpec};
use cx_features::DeviceType;

/// A TOML float that parses back (as `f64`, then narrowed) to exactly `x`:
/// the shortest form when that round-trips, else the exact `f64` value.
fn toml_f32(x: f32) -> String {
    let short = format!("{x:?}");
    match short.parse::<f64>() {
        Ok(v) if (v as f32).to_bits() == x.to_bits() => short,
        _ => format!("{:?}", f64::from(x)),
    }
}

/// A TOML string literal.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML inline array of string literals.
fn toml_str_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(toml_str).collect();
    format!("[{}]", items.join(", "))
}

impl Catalog {
    /// Offer `i` as an [`OfferSpec`], gathered from every column. Device
    /// types come back in [`DeviceType::SLOTS`] order; every other list in
    /// the order it was given.
    pub fn offer_spec(&self, i: usize) -> OfferSpec {
        let device_types = if self.device_mask[i] == u8::MAX {
            Vec::new()
        } else {
            (1..DeviceType::SLOTS.len())
                .filter(|&slot| self.device_mask[i] & (1u8 << slot) != 0)
                .filter_map(|slot| device_type_from_label(DeviceType::SLOTS[slot]))
                .collect()
        };
        let o = &self.objectives;
        OfferSpec {
            id: self.ids[i],
            name: self.names[i].clone(),
            conversion_rate: o.conversion_rate[i],
            revenue: o.revenue[i],
            lifetime_value: o.lifetime_value[i],
            engagement: o.engagement[i],
            retention: o.retention[i],
            max_bid_cpm: self.max_bid_cpm[i],
            boost: self.boost[i],
            device_types,
            countries: self.countries[self.country_span[i].range()]
                .iter()
                .map(|code| String::from_utf8_lossy(code).into_owned())
                .collect(),
            sizes: self.sizes[self.size_span[i].range()].to_vec(),
            channels: Channels::from_mask(self.channel_mask[i]).unwrap_or_default(),
            segments: self.segments[self.segment_span[i].range()]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            categories: self.categories[self.category_span[i].range()]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            frequency_cap: self.frequency_cap[i],
            daily_budget: self.daily_budget[i],
            adomain: self.adomain(i).to_vec(),
            creative_id: self.creative_ids[i].clone(),
            attr: self.attr(i).to_vec(),
            creative: self.creative(i).map(|c| c.spec().clone()),
            variants: self
                .listed_variants(i)
                .iter()
                .map(|v| v.spec.clone())
                .collect(),
        }
    }

    /// Every offer as an [`OfferSpec`], in catalog order;
    /// `Catalog::from_offers(c.to_offers())` equals `c`.
    pub fn to_offers(&self) -> Vec<OfferSpec> {
        (0..self.len()).map(|i| self.offer_spec(i)).collect()
    }

    /// The catalog's TOML form, one `[[offer]]` table per offer in catalog
    /// order. Objective values are always written; targeting lists, caps,
    /// budgets and domains only when set. Numbers are written so that
    /// [`Self::from_toml_str`] gives back an equal catalog.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("# CampaignExpress offer catalog; see docs/CATALOG.md.\n");
        for spec in self.to_offers() {
            write_offer(&mut out, &spec);
        }
        out
    }
}

/// Appends one `[[offer]]` table.
fn write_offer(out: &mut String, o: &OfferSpec) {
    // Writing to a String cannot fail.
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key} = {value}");
    };
    line(&format!("\n[[{OFFER_KEY}]]\nid"), o.id.to_string());
    line("name", toml_str(&o.name));
    line("conversion_rate", toml_f32(o.conversion_rate));
    line("revenue", toml_f32(o.revenue));
    line("lifetime_value", toml_f32(o.lifetime_value));
    line("engagement", toml_f32(o.engagement));
    line("retention", toml_f32(o.retention));
    line("max_bid_cpm", toml_f32(o.max_bid_cpm));
    line("boost", toml_f32(o.boost));
    if !o.device_types.is_empty() {
        line(
            "device_types",
            toml_str_array(o.device_types.iter().map(|d| d.label())),
        );
    }
    if !o.countries.is_empty() {
        line(
            "countries",
            toml_str_array(o.countries.iter().map(String::as_str)),
        );
    }
    if !o.sizes.is_empty() {
        let sizes: Vec<String> = o.sizes.iter().map(|&s| size_label(s)).collect();
        line("sizes", toml_str_array(sizes.iter().map(String::as_str)));
    }
    if o.channels != Channels::Any {
        line("channels", toml_str(o.channels.label()));
    }
    if !o.segments.is_empty() {
        line(
            "segments",
            toml_str_array(o.segments.iter().map(String::as_str)),
        );
    }
    if !o.categories.is_empty() {
        line(
            "categories",
            toml_str_array(o.categories.iter().map(String::as_str)),
        );
    }
    if let Some(cap) = o.frequency_cap {
        line(
            "frequency_cap",
            format!(
                "{{ impressions = {}, window_s = {} }}",
                cap.impressions, cap.window_s
            ),
        );
    }
    if let Some(budget) = o.daily_budget {
        line("daily_budget", format!("{budget:?}"));
    }
    if !o.adomain.is_empty() {
        line(
            "adomain",
            toml_str_array(o.adomain.iter().map(String::as_str)),
        );
    }
    line("creative_id", toml_str(&o.creative_id));
    if !o.attr.is_empty() {
        let codes: Vec<String> = o.attr.iter().map(u32::to_string).collect();
        line("attr", format!("[{}]", codes.join(", ")));
    }
    if let Some(creative) = &o.creative {
        write_creative(out, creative);
    }
    for v in &o.variants {
        let _ = writeln!(out, "\n[[{OFFER_KEY}.variants]]");
        let _ = writeln!(out, "creative_id = {}", toml_str(&v.creative_id));
        for (key, text) in [
            ("title", &v.title),
            ("description", &v.description),
            ("image_url", &v.image_url),
            ("cta", &v.cta),
            ("click_url", &v.click_url),
        ] {
            if let Some(text) = text {
                let _ = writeln!(out, "{key} = {}", toml_str(text));
            }
        }
    }
}

/// Appends an offer's creative as its `[offer.creative]` table (after the
/// offer's own keys, so it belongs to the offer above it).
fn write_creative(out: &mut String, c: &CreativeSpec) {
    let _ = writeln!(out, "\n[{OFFER_KEY}.creative]");
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key} = {value}");
    };
    line("click_url", toml_str(&c.click_url));
    for (key, text) in [
        ("image_url", &c.image_url),
        ("icon_url", &c.icon_url),
        ("title", &c.title),
        ("description", &c.description),
        ("sponsor", &c.sponsor),
        ("cta", &c.cta),
        ("impression_url", &c.impression_url),
        ("vast_tag_url", &c.vast_tag_url),
        ("media_url", &c.media_url),
        ("media_type", &c.media_type),
    ] {
        if let Some(text) = text {
            line(key, toml_str(text));
        }
    }
    for (key, n) in [
        ("media_width", c.media_width),
        ("media_height", c.media_height),
        ("duration_s", c.duration_s),
    ] {
        if let Some(n) = n {
            line(key, n.to_string());
        }
    }
    for (key, template) in [("banner", &c.banner), ("video", &c.video)] {
        if let Some(template) = template {
            line(key, toml_str(template));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_valid_toml_and_exact() {
        for x in [
            0.0f32,
            -0.0,
            1.0,
            0.1,
            1e-7,
            3.4e38,
            -1.0,
            0.333_333_34,
            f32::MIN_POSITIVE,
        ] {
            let text = format!("v = {}", toml_f32(x));
            let table: toml::Table = text.parse().unwrap();
            let v = table["v"].as_float().unwrap();
            assert_eq!((v as f32).to_bits(), x.to_bits(), "{text}");
        }
        assert_eq!(toml_f32(1.0), "1.0");
        assert_eq!(toml_f32(0.1), "0.1");
    }

    #[test]
    fn strings_are_escaped() {
        for s in ["plain", "quote \" and \\ backslash", "ünïcode ✓", "it's"] {
            let text = format!("v = {}", toml_str(s));
            let table: toml::Table = text.parse().unwrap();
            assert_eq!(table["v"].as_str(), Some(s));
        }
    }
}
