//! Creative variants (dynamic creative optimisation): an offer with a
//! creative may list other versions of it (`[[offer.variants]]`), each with
//! its own creative id and its own headline, text, image, call to action
//! or landing page. The engine chooses among them per bid by Thompson
//! sampling on each variant's own click posterior; the chosen variant's id
//! is the bid's `crid` and its fields fill the markup.
//!
//! A variant changes only what is presented, never what the creative can
//! be shown on: it keeps the base creative's kinds, sizes, video file and
//! templates, so whether an impression can show the offer
//! ([`super::showable`]) is the same for every variant.
//!
//! Variant 0 is the offer's own creative (`creative_id`, `[offer.creative]`);
//! the listed ones are 1, 2, ... in order. Each is built into a whole
//! [`Creative`] at load, so choosing one costs an index.

use super::creative::{Creative, CreativeSpec};
use serde::{Deserialize, Serialize};

/// Most variants an offer may have, its own creative included.
pub const VARIANTS_MAX: usize = 8;

/// One listed variant: a creative id and the fields it changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// The variant's creative id (the bid's `crid` when it is chosen);
    /// unique among the offer's variants and its own creative id.
    pub creative_id: String,
    /// Replaces the creative's `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Replaces `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Replaces `image_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    /// Replaces `cta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cta: Option<String>,
    /// Replaces `click_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_url: Option<String>,
}

impl VariantSpec {
    /// The base creative with this variant's fields in place.
    pub fn applied_to(&self, base: &CreativeSpec) -> CreativeSpec {
        let mut spec = base.clone();
        if let Some(title) = &self.title {
            spec.title = Some(title.clone());
        }
        if let Some(description) = &self.description {
            spec.description = Some(description.clone());
        }
        if let Some(image_url) = &self.image_url {
            spec.image_url = Some(image_url.clone());
        }
        if let Some(cta) = &self.cta {
            spec.cta = Some(cta.clone());
        }
        if let Some(click_url) = &self.click_url {
            spec.click_url = click_url.clone();
        }
        spec
    }
}

/// A listed variant, built: its spec (for writing the catalog back) and
/// its whole creative.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// As given.
    pub spec: VariantSpec,
    /// The base creative with the variant's fields, checked and built.
    pub creative: Creative,
}

/// Builds an offer's listed variants over its built `base` creative, or
/// names the field at fault (`variants[1].image_url`, ...): variants need
/// a creative, at most [`VARIANTS_MAX`] in all, distinct creative ids, and
/// fields the creative's rules accept.
pub fn build_variants(
    own_creative_id: &str,
    base: Option<&Creative>,
    specs: &[VariantSpec],
    check_id: impl Fn(&str) -> Result<(), String>,
) -> Result<Vec<Variant>, (String, String)> {
    if specs.is_empty() {
        return Ok(Vec::new());
    }
    let Some(base) = base else {
        return Err((
            "variants".into(),
            "variants need the offer's creative ([offer.creative]) to vary".into(),
        ));
    };
    if specs.len() + 1 > VARIANTS_MAX {
        return Err((
            "variants".into(),
            format!(
                "{} variants and the offer's own creative are more than {VARIANTS_MAX}",
                specs.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(specs.len());
    for (k, spec) in specs.iter().enumerate() {
        let field = |name: &str| format!("variants[{k}].{name}");
        check_id(&spec.creative_id).map_err(|r| (field("creative_id"), r))?;
        let repeated = spec.creative_id == own_creative_id
            || specs[..k].iter().any(|s| s.creative_id == spec.creative_id);
        if repeated {
            return Err((
                field("creative_id"),
                format!(
                    "{:?} is already the creative id of the offer or of an earlier variant",
                    spec.creative_id
                ),
            ));
        }
        let creative = Creative::build(spec.applied_to(base.spec()))
            .map_err(|(name, reason)| (field(name), reason))?;
        out.push(Variant {
            spec: spec.clone(),
            creative,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Creative {
        Creative::build(CreativeSpec {
            click_url: "https://a.example/go".into(),
            image_url: Some("https://cdn.a.example/1.jpg".into()),
            title: Some("One".into()),
            ..CreativeSpec::default()
        })
        .expect("a valid creative")
    }

    fn variant(id: &str) -> VariantSpec {
        VariantSpec {
            creative_id: id.into(),
            title: Some(format!("Title {id}")),
            ..VariantSpec::default()
        }
    }

    fn ok(_: &str) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn a_variant_changes_only_its_own_fields() {
        let built = build_variants("cr-0", Some(&base()), &[variant("cr-1")], ok).expect("valid");
        let spec = built[0].creative.spec();
        assert_eq!(spec.title.as_deref(), Some("Title cr-1"));
        assert_eq!(
            spec.image_url.as_deref(),
            Some("https://cdn.a.example/1.jpg")
        );
        assert_eq!(spec.click_url, "https://a.example/go");
    }

    #[test]
    fn bad_variants_are_refused_naming_the_field() {
        let base = base();
        let cases: Vec<(Option<&Creative>, Vec<VariantSpec>, &str)> = vec![
            (None, vec![variant("cr-1")], "variants"),
            (
                Some(&base),
                vec![variant("cr-0")],
                "variants[0].creative_id",
            ),
            (
                Some(&base),
                vec![variant("cr-1"), variant("cr-1")],
                "variants[1].creative_id",
            ),
            (
                Some(&base),
                (1..=VARIANTS_MAX)
                    .map(|k| variant(&format!("cr-{k}")))
                    .collect(),
                "variants",
            ),
            (
                Some(&base),
                vec![VariantSpec {
                    image_url: Some("not a url".into()),
                    ..variant("cr-1")
                }],
                "variants[0].image_url",
            ),
        ];
        for (base, specs, field) in cases {
            let (at, reason) = build_variants("cr-0", base, &specs, ok).expect_err(field);
            assert_eq!(at, field, "{reason}");
        }
        let (at, _) = build_variants("cr-0", Some(&base), &[variant("")], |id| {
            if id.is_empty() {
                Err("empty".into())
            } else {
                Ok(())
            }
        })
        .expect_err("an empty id");
        assert_eq!(at, "variants[0].creative_id");
    }
}
