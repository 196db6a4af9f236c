//! `cx catalog init --model M [--out FILE]`: a catalog skeleton with one
//! offer per output column of a model, for a person to fill in.

use super::{load_model, model_path_name, CatalogInitArgs};
use crate::error::{Error, Result};
use cx_domain::catalog::{Catalog, OfferSpec};
use std::io::Write;

/// Writes the skeleton to `--out` (never over an existing file) or stdout.
pub fn init(args: &CatalogInitArgs, stdout: &mut dyn Write) -> Result<()> {
    let model = load_model(args.model.as_deref())?;
    let meta = model.meta();
    let offers: Vec<OfferSpec> = meta
        .offer_ids
        .iter()
        .map(|&id| OfferSpec::new(id))
        .collect();
    let catalog = Catalog::from_offers(offers).map_err(|e| {
        Error::Mismatch(format!(
            "model {}: its offer ids cannot make a catalog: {e}",
            model_path_name(args.model.as_deref())
        ))
    })?;
    let text = skeleton(
        &catalog,
        &model_path_name(args.model.as_deref()),
        &meta.name,
        &meta.version,
    );
    match &args.out {
        None => stdout.write_all(text.as_bytes()).map_err(Error::Output),
        Some(path) => {
            let file_error = |source| Error::File {
                path: path.display().to_string(),
                source,
            };
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(file_error)?;
            file.write_all(text.as_bytes()).map_err(file_error)
        }
    }
}

/// The catalog's TOML under a header that says where it came from and
/// that every value is a placeholder.
fn skeleton(catalog: &Catalog, path: &str, name: &str, version: &str) -> String {
    let body = catalog.to_toml();
    let offers = body
        .split_once('\n')
        .map_or(body.as_str(), |(_, rest)| rest);
    format!(
        "# Offer catalog skeleton for model `{name}` version `{version}` ({path}), written by\n\
         # `cx catalog init`: one offer per output column, in column order.\n\
         #\n\
         # Every value below is a PLACEHOLDER (the catalog loads, but every offer bids\n\
         # 1.0 CPM with no objective value): fill in each offer's name, conversion rate,\n\
         # revenue, bid cap, targeting, caps and budgets before serving (docs/CATALOG.md).\n\
         {offers}"
    )
}
