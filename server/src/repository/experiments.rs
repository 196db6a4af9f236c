//! Experiment definitions for a repository bundle (`cx serve
//! --experiments FILE`, `docs/EXPERIMENTS.md`, "Serving"): GrowthBook
//! experiment objects whose variations name versions of the served bundle.
//!
//! The file is TOML (`[[experiment]]` tables) or, when it ends in `.json`,
//! GrowthBook's JSON: an array of experiment objects, or an object with an
//! `experiments` array. Each experiment is read by
//! [`Experiment::from_value`], so every GrowthBook field it supports means
//! the same here, and one it refuses (targeting) is refused.
//!
//! [`resolve`] turns the definitions into what the engines serve: per
//! variation, the arm id (from the server's [`ArmRegistry`], stable across
//! reloads) and the version's model and fallback, or the default model for
//! the served version itself. A version serving an arm must bring the
//! served version's catalog and decision settings unchanged: the arms of
//! an experiment differ by model only.

use super::{check_name, LoadedBundle, Repository};
use crate::error::Error;
use cx_engine::experiments::{ArmDef, ArmSource, ExperimentDef};
use cx_engine::systems::resources::experiments::{ArmRegistry, EXPERIMENTS_MAX};
use cx_engine::systems::DecideConfig;
use cx_engine::{FallbackSource, ModelSource};
use cx_experiments::Experiment;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Most bytes an experiments file may hold.
pub const EXPERIMENTS_BYTES_MAX: u64 = 1 << 20;

/// One experiment as defined: its GrowthBook definition and the bundle
/// version of each variation.
#[derive(Clone, Debug)]
pub struct Definition {
    /// The experiment.
    pub experiment: Experiment,
    /// Per variation, the version that serves it.
    pub versions: Vec<String>,
}

/// Reads and checks the definitions in `path`.
pub fn read_definitions(path: &Path) -> Result<Vec<Definition>, Error> {
    let bytes = super::read_file(path, EXPERIMENTS_BYTES_MAX).map_err(|e| bad(path, reason(e)))?;
    let text =
        std::str::from_utf8(&bytes).map_err(|e| bad(path, format!("is not UTF-8 text: {e}")))?;
    parse_definitions(text, is_json(path)).map_err(|reason| bad(path, reason))
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// What went wrong, without the repository's own prefix when it is the
/// repository's error (the caller adds context and the prefix once).
fn reason(e: Error) -> String {
    match e {
        Error::Repository(reason) => reason,
        other => crate::error::render_chain(&other),
    }
}

fn bad(path: &Path, reason: String) -> Error {
    Error::Repository(format!("experiments {}: {reason}", path.display()))
}

/// The definitions in `text`: GrowthBook JSON when `json`, else TOML.
pub fn parse_definitions(text: &str, json: bool) -> Result<Vec<Definition>, String> {
    let items = match json {
        true => json_items(text)?,
        false => toml_items(text)?,
    };
    if items.len() > EXPERIMENTS_MAX {
        return Err(format!(
            "defines {} experiments; at most {EXPERIMENTS_MAX} may be live",
            items.len()
        ));
    }
    let mut out: Vec<Definition> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let experiment =
            Experiment::from_value(item).map_err(|e| format!("experiment {i}: {e}"))?;
        let key = experiment.key().to_owned();
        if out.iter().any(|d| d.experiment.key() == key) {
            return Err(format!("experiment `{key}` is defined twice"));
        }
        let versions = (0..experiment.variation_count())
            .map(|v| version_of(&experiment, v))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Definition {
            experiment,
            versions,
        });
    }
    Ok(out)
}

fn json_items(text: &str) -> Result<Vec<Value>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(mut map) => match map.remove("experiments") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(
                "expected an array of experiments, or an object with an `experiments` array".into(),
            ),
        },
        _ => {
            Err("expected an array of experiments, or an object with an `experiments` array".into())
        }
    }
}

fn toml_items(text: &str) -> Result<Vec<Value>, String> {
    let value: Value = toml::from_str(text).map_err(|e| format!("invalid TOML: {e}"))?;
    let Value::Object(mut map) = value else {
        return Err("expected [[experiment]] tables".into());
    };
    let items = match map.remove("experiment") {
        None => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => return Err("`experiment` must be an array of tables ([[experiment]])".into()),
    };
    if let Some(other) = map.keys().next() {
        return Err(format!(
            "unknown key `{other}`: only [[experiment]] tables belong here"
        ));
    }
    Ok(items)
}

/// The bundle version variation `v` names: a string or a non-negative
/// integer, a valid version name.
fn version_of(experiment: &Experiment, v: usize) -> Result<String, String> {
    let key = experiment.key();
    let value = experiment
        .variation_value(v)
        .ok_or_else(|| format!("experiment `{key}`: variation {v} is missing"))?;
    let version = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_u64() => n.to_string(),
        other => {
            return Err(format!(
                "experiment `{key}` variations[{v}]: {other} is not a bundle version (a string \
                 or a non-negative integer)"
            ))
        }
    };
    check_name("version", &version)
        .map_err(|e| format!("experiment `{key}` variations[{v}]: {e}"))?;
    Ok(version)
}

/// What the engines serve for `definitions` while `served` (a version of
/// bundle `served.name`) is the default: per variation its arm id from
/// `registry`, and the version's model unless it is the served version.
/// A version is loaded once however many variations name it.
pub fn resolve(
    repository: &Repository,
    served: &LoadedBundle,
    base: &DecideConfig,
    definitions: &[Definition],
    registry: &mut ArmRegistry,
) -> Result<Vec<ExperimentDef>, Error> {
    let mut loaded: BTreeMap<&str, ArmSource> = BTreeMap::new();
    let mut out = Vec::with_capacity(definitions.len());
    for def in definitions {
        let key = def.experiment.key();
        let mut arms = Vec::with_capacity(def.versions.len());
        for (v, version) in def.versions.iter().enumerate() {
            let id = registry
                .id(key, &def.experiment.variation_key(v))
                .map_err(|e| Error::Repository(e.to_string()))?;
            let model = match version == &served.version {
                true => None,
                false => {
                    if !loaded.contains_key(version.as_str()) {
                        let source = load_arm(repository, served, base, key, version)?;
                        loaded.insert(version, source);
                    }
                    loaded.get(version.as_str()).cloned()
                }
            };
            arms.push(ArmDef { id, model });
        }
        out.push(ExperimentDef {
            experiment: def.experiment.clone(),
            arms,
        });
    }
    Ok(out)
}

/// Loads `version` of the served bundle as an arm's model: it must bring
/// the served version's catalog and decision settings.
fn load_arm(
    repository: &Repository,
    served: &LoadedBundle,
    base: &DecideConfig,
    key: &str,
    version: &str,
) -> Result<ArmSource, Error> {
    let arm = repository.load(&served.name, version, base).map_err(|e| {
        Error::Repository(format!(
            "experiment `{key}`: version {version}: {}",
            reason(e)
        ))
    })?;
    let differs = |what: &str| {
        Error::Repository(format!(
            "experiment `{key}`: version {version} of bundle {} has another {what} than the \
             served version {}; the arms of an experiment may differ by model and fallback only",
            served.name, served.version
        ))
    };
    if arm.catalog != served.catalog {
        return Err(differs("catalog"));
    }
    if arm.decide != served.decide {
        return Err(differs("decide.toml"));
    }
    Ok(ArmSource {
        model: ModelSource::Bytes(arm.model),
        fallback: arm
            .fallback
            .map_or(FallbackSource::None, FallbackSource::Bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_growthbook_json_define_the_same_experiments() {
        let toml = r#"
[[experiment]]
key = "ranker"
variations = ["1", "2"]
weights = [0.8, 0.2]
hashVersion = 2
"#;
        let json = r#"{"experiments": [{"key": "ranker", "variations": ["1", 2],
            "weights": [0.8, 0.2], "hashVersion": 2}]}"#;
        let (a, b) = (
            parse_definitions(toml, false).unwrap(),
            parse_definitions(json, true).unwrap(),
        );
        assert_eq!(a[0].versions, vec!["1", "2"]);
        assert_eq!(b[0].versions, vec!["1", "2"]);
        for u in 0..200 {
            let id = format!("u{u}");
            assert_eq!(a[0].experiment.assign(&id), b[0].experiment.assign(&id));
        }
        assert!(parse_definitions("", false).unwrap().is_empty());
    }

    #[test]
    fn bad_definitions_are_refused_by_name() {
        let cases = [
            ("[[experiment]]\nkey = \"e\"\nvariations = [\"1\", \"../x\"]", "variations[1]"),
            ("[[experiment]]\nkey = \"e\"\nvariations = [\"1\", 1.5]", "variations[1]"),
            ("[[experiment]]\nkey = \"e\"\nvariations = [\"1\", \"2\"]\ncondition = {a = 1}", "condition"),
            ("[[experiment]]\nkey = \"e\"\nvariations = [\"1\", \"2\"]\n[[experiment]]\nkey = \"e\"\nvariations = [\"1\", \"2\"]", "defined twice"),
            ("other = 1", "unknown key `other`"),
            ("[[experiment]]\nvariations = [\"1\", \"2\"]", "key"),
            ("experiment = 3", "array of tables"),
        ];
        for (text, expected) in cases {
            let err = parse_definitions(text, false).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
        let err = parse_definitions("{\"key\": 1}", true).unwrap_err();
        assert!(err.contains("array of experiments"), "{err}");
    }
}
