//! Label leakage through a dataset spec: the check that no column a model
//! reads as input is the label or the oracle.
//!
//! A spec that names the label column as the offer, the time, a context
//! field, an `[app]` column or a hashed or numeric feature hands the
//! answer to the model (held-out AUC 1.0). The oracle (`p_true`, the
//! generator's true click probability) is never a feature either, nor the
//! label, the offer or the time. [`check`] refuses every such spec with
//! [`Error::LabelLeak`], naming the column and the role it was given;
//! [`DatasetSpec::from_toml`] calls it, so no spec that leaks can be loaded.

use crate::clicklog::DatasetSpec;
use crate::error::{Error, Result};

/// Which of the label and the oracle a leaking column is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaked {
    /// The spec's `label` column.
    Label,
    /// The spec's `oracle` column.
    Oracle,
}

impl Leaked {
    /// `label` or `oracle`, as the spec names the key.
    fn key(self) -> &'static str {
        match self {
            Self::Label => "label",
            Self::Oracle => "oracle",
        }
    }
}

/// Every column the spec reads as something other than the label or the
/// oracle, with the key naming its role (`offer.column`, `fields.site_id`,
/// `hashed[2]`, ...).
fn roles(spec: &DatasetSpec) -> Vec<(String, &str)> {
    let mut roles: Vec<(String, &str)> = Vec::new();
    if let Some(o) = &spec.offer {
        roles.push(("offer.column".into(), &o.column));
    }
    if let Some(t) = &spec.time {
        roles.push(("time.column".into(), &t.column));
    }
    for (key, column) in spec.fields.by_key() {
        if let Some(c) = column {
            roles.push((format!("fields.{key}"), c));
        }
    }
    for (i, c) in spec.hashed.iter().enumerate() {
        roles.push((format!("hashed[{i}]"), c));
    }
    for (i, c) in spec.numeric.iter().enumerate() {
        roles.push((format!("numeric[{i}]"), c));
    }
    if let Some(a) = &spec.app {
        roles.push(("app.column".into(), &a.column));
        for (key, column) in [
            ("site_id", &a.site_id),
            ("domain", &a.domain),
            ("categories", &a.categories),
        ] {
            if let Some(c) = column {
                roles.push((format!("app.{key}"), c));
            }
        }
    }
    roles
}

/// Refuses a spec that gives the label or the oracle column any other role
/// (offer, time, a context field, an `[app]` column, a hashed or numeric
/// feature), or that names one column as both the label and the oracle.
/// Column names are compared as the reader resolves them, trimmed.
pub fn check(spec: &DatasetSpec) -> Result<()> {
    let label = spec.label.trim();
    let oracle = spec.oracle.as_deref().map(str::trim);
    if oracle == Some(label) {
        return Err(Error::LabelLeak {
            column: label.to_string(),
            leaked: Leaked::Label.key(),
            role: "oracle".into(),
        });
    }
    let watched = std::iter::once((Leaked::Label, label))
        .chain(oracle.map(|o| (Leaked::Oracle, o)))
        .collect::<Vec<_>>();
    for (role, column) in roles(spec) {
        let column = column.trim();
        if let Some((leaked, _)) = watched.iter().find(|(_, c)| *c == column) {
            return Err(Error::LabelLeak {
                column: column.to_string(),
                leaked: leaked.key(),
                role,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec `extra` adds to, as read by `from_toml` (with the check).
    fn load(extra: &str) -> Result<DatasetSpec> {
        DatasetSpec::from_toml(&format!("label = \"click\"\noracle = \"p_true\"\n{extra}"))
    }

    /// The spec is refused naming `column`, what it is (`leaked`) and `role`.
    fn refused(extra: &str, column: &str, leaked: &str, role: &str) {
        let err = load(extra).expect_err(extra);
        match &err {
            Error::LabelLeak {
                column: c,
                leaked: l,
                role: r,
            } => assert_eq!(
                (c.as_str(), *l, r.as_str()),
                (column, leaked, role),
                "{extra}"
            ),
            other => panic!("{extra}: not a LabelLeak: {other}"),
        }
        let message = err.to_string();
        assert!(
            message.contains(&format!("`{column}`")) && message.contains(role),
            "{message}"
        );
    }

    #[test]
    fn the_label_in_any_input_role_is_refused() {
        let cases = [
            ("offer = { column = \"click\" }\n", "offer.column"),
            (
                "time = { column = \"click\", format = \"unix\" }\n",
                "time.column",
            ),
            ("hashed = [\"C1\", \"click\"]\n", "hashed[1]"),
            ("numeric = [\"click\"]\n", "numeric[0]"),
            ("[fields]\nuser_id = \"click\"\n", "fields.user_id"),
            ("[fields]\nsite_id = \"click\"\n", "fields.site_id"),
            ("[fields]\nbid_floor = \"click\"\n", "fields.bid_floor"),
            ("[fields]\nis_app = \"click\"\n", "fields.is_app"),
            ("[app]\ncolumn = \"click\"\nabsent = \"0\"\n", "app.column"),
            (
                "[app]\ncolumn = \"app\"\nabsent = \"-\"\ndomain = \"click\"\n",
                "app.domain",
            ),
        ];
        for (extra, role) in cases {
            refused(extra, "click", "label", role);
        }
    }

    #[test]
    fn every_context_field_is_watched() {
        let spec = DatasetSpec::from_toml("label = \"click\"\n").expect("valid");
        for (key, _) in spec.fields.by_key() {
            refused(
                &format!("[fields]\n{key} = \"click\"\n"),
                "click",
                "label",
                &format!("fields.{key}"),
            );
        }
    }

    #[test]
    fn the_oracle_in_any_role_is_refused() {
        let cases = [
            ("hashed = [\"p_true\"]\n", "hashed[0]"),
            ("numeric = [\"C20\", \"p_true\"]\n", "numeric[1]"),
            ("offer = { column = \"p_true\" }\n", "offer.column"),
            (
                "time = { column = \"p_true\", format = \"unix\" }\n",
                "time.column",
            ),
            ("[fields]\nbid_floor = \"p_true\"\n", "fields.bid_floor"),
            (
                "[app]\ncolumn = \"app\"\nabsent = \"-\"\nsite_id = \"p_true\"\n",
                "app.site_id",
            ),
        ];
        for (extra, role) in cases {
            refused(extra, "p_true", "oracle", role);
        }
        let err = DatasetSpec::from_toml("label = \"click\"\noracle = \" click\"\n")
            .expect_err("the oracle is the label");
        assert!(
            matches!(&err, Error::LabelLeak { column, role, .. } if column == "click" && role == "oracle"),
            "{err}"
        );
    }

    #[test]
    fn clean_specs_and_the_bundled_ones_load() {
        load("offer = { column = \"ad\" }\nhashed = [\"C1\"]\nnumeric = [\"C20\"]\n[fields]\nsite_id = \"site\"\n")
            .expect("no column is the label or the oracle");
        for (name, text) in [
            (
                "synthetic",
                include_str!("../../../models/specs/synthetic.toml"),
            ),
            ("avazu", include_str!("../../../models/specs/avazu.toml")),
        ] {
            let spec = DatasetSpec::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            check(&spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
