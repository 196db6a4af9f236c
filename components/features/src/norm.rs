//! Normalisation statistics: the mean and standard deviation of each numeric
//! column, fitted on training rows and applied to every row after
//! extraction, in training and in serving alike.
//!
//! Kept apart from the schema because they come from data, not from the
//! definition: one schema serves many models, each with its own statistics,
//! stored as JSON in its model file. Only the schema's numeric columns are
//! listed (`columns`, with `mean` and `std` parallel to it), so applying
//! them touches a handful of values instead of the whole row.

use super::limits;
use super::schema::FeatureSchema;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A standard deviation below this is treated as 1: a column that was
/// constant in training is only centred, never blown up.
pub const STD_MIN: f32 = 1e-6;

/// Per-column `(x - mean) / std` for selected columns of a feature row.
///
/// Valid statistics (what [`FeatureNorm::fit`] and [`FeatureNorm::from_json`]
/// give) have `columns`, `mean` and `std` of one length, `columns` strictly
/// ascending, every mean finite and every std finite and at least
/// [`STD_MIN`]. The identity ([`Default`]) lists no columns.
///
/// JSON form: `{"schema_id":"…","columns":[45,46],"mean":[5.2,4.9],"std":[0.8,1.1]}`
/// (`schema_id` may be absent).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureNorm {
    /// Id of the schema the statistics were fitted for, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_id: Option<String>,
    /// The row columns normalised, strictly ascending.
    pub columns: Vec<usize>,
    /// Mean of each listed column.
    pub mean: Vec<f32>,
    /// Standard deviation of each listed column.
    pub std: Vec<f32>,
}

impl FeatureNorm {
    /// The identity: normalises nothing, fits any row.
    pub fn identity() -> Self {
        Self::default()
    }

    /// Fits the mean and (population) standard deviation of each of the
    /// schema's numeric columns over `rows`, each one schema-wide row, in one
    /// pass (Welford, in f64). Errors on no rows, a row of the wrong width, or
    /// a non-finite value in a numeric column.
    pub fn fit<'a>(
        schema: &FeatureSchema,
        rows: impl IntoIterator<Item = &'a [f32]>,
    ) -> Result<Self> {
        let columns: Vec<usize> = schema.numeric_columns().collect();
        let mut mean = vec![0f64; columns.len()];
        let mut m2 = vec![0f64; columns.len()];
        let mut n = 0u64;
        for row in rows {
            if row.len() != schema.width() {
                return Err(Error::WrongRowWidth {
                    what: "feature schema",
                    expected: schema.width(),
                    found: row.len(),
                });
            }
            n += 1;
            for (i, &c) in columns.iter().enumerate() {
                let x = f64::from(row[c]);
                if !x.is_finite() {
                    return Err(Error::BadFeatureNorm(format!(
                        "training row {} has non-finite value {x} in column {c}",
                        n - 1
                    )));
                }
                let delta = x - mean[i];
                mean[i] += delta / n as f64;
                m2[i] += delta * (x - mean[i]);
            }
        }
        if n == 0 {
            return Err(Error::BadFeatureNorm("no rows to fit".into()));
        }
        let std = m2
            .iter()
            .map(|&m2| {
                let std = (m2 / n as f64).sqrt() as f32;
                if std >= STD_MIN {
                    std
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Self {
            schema_id: Some(schema.id().to_string()),
            columns,
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        })
    }

    /// The standardised columns, ascending.
    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// Normalises the listed columns of `row` in place; allocates nothing.
    /// [`Error::WrongRowWidth`] if a listed column lies past the row's end
    /// (the row is then left unchanged).
    pub fn apply(&self, row: &mut [f32]) -> Result<()> {
        if let Some(&last) = self.columns.iter().max() {
            if last >= row.len() {
                return Err(Error::WrongRowWidth {
                    what: "feature normalisation",
                    expected: last + 1,
                    found: row.len(),
                });
            }
        }
        for ((&c, &mean), &std) in self.columns.iter().zip(&self.mean).zip(&self.std) {
            row[c] = (row[c] - mean) / std;
        }
        Ok(())
    }

    /// [`apply`](Self::apply) for a sparse row: `columns` strictly ascending
    /// with their `values` (the rest of the row is zero). Writes the
    /// normalised row's non-zeros, ascending, into `out_columns` and
    /// `out_values` (each at least `columns.len() + self.columns.len()`
    /// long, [`Error::WrongRowWidth`] otherwise) and returns how many. A
    /// normalised column appears even where the row held 0 (its value is
    /// `-mean / std`); a result of exactly 0 is left out. Scattering the
    /// output gives exactly the dense [`apply`](Self::apply) of the scattered
    /// input. Never allocates.
    pub fn apply_sparse(
        &self,
        columns: &[u32],
        values: &[f32],
        out_columns: &mut [u32],
        out_values: &mut [f32],
    ) -> Result<usize> {
        let need = columns.len() + self.columns.len();
        let room = out_columns.len().min(out_values.len());
        if room < need {
            return Err(Error::WrongRowWidth {
                what: "sparse normalisation output",
                expected: need,
                found: room,
            });
        }
        let (mut i, mut k, mut n) = (0, 0, 0);
        let mut push = |c: u32, v: f32| {
            if v != 0.0 {
                out_columns[n] = c;
                out_values[n] = v;
                n += 1;
            }
        };
        while i < columns.len() || k < self.columns.len() {
            let row_c = columns.get(i).map(|&c| c as usize);
            let norm_c = self.columns.get(k).copied();
            match (row_c, norm_c) {
                (Some(c), Some(d)) if c == d => {
                    push(c as u32, (values[i] - self.mean[k]) / self.std[k]);
                    i += 1;
                    k += 1;
                }
                (Some(c), Some(d)) if c > d => {
                    push(d as u32, (0.0 - self.mean[k]) / self.std[k]);
                    k += 1;
                }
                (Some(c), _) => {
                    push(c as u32, values[i]);
                    i += 1;
                }
                (None, Some(d)) => {
                    push(d as u32, (0.0 - self.mean[k]) / self.std[k]);
                    k += 1;
                }
                (None, None) => break,
            }
        }
        Ok(n)
    }

    /// Checks the rules in the type's docs, and the limits: at most
    /// [`crate::limits::WIDTH_MAX`] columns, each below that width.
    pub fn validate(&self) -> Result<()> {
        let width_max = crate::limits::WIDTH_MAX;
        let bad = |reason: String| Err(Error::BadFeatureNorm(reason));
        if self.mean.len() != self.columns.len() || self.std.len() != self.columns.len() {
            return bad(format!(
                "{} columns but {} means and {} stds",
                self.columns.len(),
                self.mean.len(),
                self.std.len()
            ));
        }
        if self.columns.len() > width_max {
            return Err(Error::LimitExceeded {
                what: "normalised feature columns".into(),
                value: self.columns.len(),
                limit: width_max,
            });
        }
        if let Some(w) = self.columns.windows(2).find(|w| w[0] >= w[1]) {
            return bad(format!(
                "columns are not strictly ascending ({} then {})",
                w[0], w[1]
            ));
        }
        if let Some(&c) = self.columns.iter().find(|&&c| c >= width_max) {
            return bad(format!("column {c} is past the widest row ({width_max})"));
        }
        if let Some(i) = self.mean.iter().position(|m| !m.is_finite()) {
            return bad(format!("mean of column {} is not finite", self.columns[i]));
        }
        if let Some(i) = self
            .std
            .iter()
            .position(|s| !(s.is_finite() && *s >= STD_MIN))
        {
            return bad(format!(
                "std of column {} is {}, not a finite value of at least {STD_MIN}",
                self.columns[i], self.std[i]
            ));
        }
        Ok(())
    }

    /// [`Self::validate`], then checks the statistics fit `schema`: the
    /// recorded schema id (if any) is the schema's, and every column is one
    /// of its numeric columns.
    pub fn check_schema(&self, schema: &FeatureSchema) -> Result<()> {
        self.validate()?;
        if let Some(id) = &self.schema_id {
            if id != schema.id() {
                return Err(Error::BadFeatureNorm(format!(
                    "fitted for schema {id}, not {}",
                    schema.id()
                )));
            }
        }
        let is_numeric = |c: usize| {
            schema
                .blocks()
                .iter()
                .any(|b| b.is_numeric() && b.columns().contains(&c))
        };
        match self.columns.iter().find(|&&c| !is_numeric(c)) {
            Some(c) => Err(Error::BadFeatureNorm(format!(
                "column {c} is not a numeric column of schema {}",
                schema.id()
            ))),
            None => Ok(()),
        }
    }

    /// The JSON form (see the type's docs), for a model file's metadata.
    pub fn to_json(&self) -> String {
        // Serialising plain numbers and strings into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses and validates the JSON form; at most
    /// [`limits::NORM_JSON_BYTES_MAX`] bytes.
    pub fn from_json(json: &str) -> Result<Self> {
        if json.len() > limits::NORM_JSON_BYTES_MAX {
            return Err(Error::LimitExceeded {
                what: "feature normalisation JSON bytes".into(),
                value: json.len(),
                limit: limits::NORM_JSON_BYTES_MAX,
            });
        }
        let norm: Self =
            serde_json::from_str(json).map_err(|e| Error::BadFeatureNorm(e.to_string()))?;
        norm.validate()?;
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(columns: Vec<usize>, mean: Vec<f32>, std: Vec<f32>) -> FeatureNorm {
        FeatureNorm {
            schema_id: None,
            columns,
            mean,
            std,
        }
    }

    #[test]
    fn identity_changes_nothing() {
        let mut row = [1.0, -2.0, 3.5];
        FeatureNorm::identity().apply(&mut row).unwrap();
        assert_eq!(row, [1.0, -2.0, 3.5]);
        FeatureNorm::identity().validate().unwrap();
    }

    #[test]
    fn apply_standardises_the_listed_columns() {
        let n = norm(vec![1, 3], vec![2.0, -1.0], vec![4.0, 0.5]);
        let mut row = [9.0, 6.0, 9.0, 0.0];
        n.apply(&mut row).unwrap();
        assert_eq!(row, [9.0, 1.0, 9.0, 2.0]);
    }

    #[test]
    fn sparse_apply_equals_dense_apply_on_the_scattered_row() {
        let n = norm(vec![1, 3, 6], vec![2.0, -1.0, 0.5], vec![4.0, 0.5, 2.0]);
        // Column 6 normalises to exactly 0 (x == mean), column 1 is absent.
        for (columns, values) in [
            (vec![0u32, 3, 5, 6], vec![9.0f32, 2.0, -1.0, 0.5]),
            (vec![], vec![]),
            (vec![7], vec![1.5]),
        ] {
            let mut dense = [0.0f32; 8];
            for (&c, &v) in columns.iter().zip(&values) {
                dense[c as usize] = v;
            }
            n.apply(&mut dense).unwrap();
            let (mut oc, mut ov) = ([0u32; 7], [0f32; 7]);
            let len = n.apply_sparse(&columns, &values, &mut oc, &mut ov).unwrap();
            let mut scattered = [0.0f32; 8];
            for (&c, &v) in oc[..len].iter().zip(&ov[..len]) {
                scattered[c as usize] = v;
            }
            assert_eq!(scattered, dense, "{columns:?}");
            assert!(oc[..len].windows(2).all(|w| w[0] < w[1]));
            assert!(ov[..len].iter().all(|&v| v != 0.0));
        }
        let err = n
            .apply_sparse(&[0], &[1.0], &mut [0; 3], &mut [0.0; 3])
            .unwrap_err();
        assert!(matches!(err, Error::WrongRowWidth { .. }), "{err}");
    }

    #[test]
    fn apply_refuses_a_short_row_untouched() {
        let n = norm(vec![1, 3], vec![2.0, -1.0], vec![4.0, 0.5]);
        let mut row = [9.0, 6.0, 9.0];
        let err = n.apply(&mut row).unwrap_err();
        assert!(matches!(err, Error::WrongRowWidth { .. }), "{err}");
        assert_eq!(row, [9.0, 6.0, 9.0]);
    }

    #[test]
    fn validate_names_what_is_wrong() {
        let cases = [
            (norm(vec![1], vec![0.0, 1.0], vec![1.0]), "means"),
            (norm(vec![2, 2], vec![0.0; 2], vec![1.0; 2]), "ascending"),
            (norm(vec![1], vec![f32::NAN], vec![1.0]), "mean of column 1"),
            (norm(vec![1], vec![0.0], vec![0.0]), "std of column 1"),
            (
                norm(vec![1], vec![0.0], vec![f32::INFINITY]),
                "std of column 1",
            ),
            (
                norm(vec![1 << 20], vec![0.0], vec![1.0]),
                "past the widest row",
            ),
        ];
        for (n, expect) in cases {
            let err = n.validate().unwrap_err().to_string();
            assert!(err.contains(expect), "{err} should mention {expect}");
        }
    }

    #[test]
    fn json_round_trips_and_rejects_junk() {
        let n = norm(vec![45, 46], vec![5.25, -0.125], vec![0.75, 1.5]);
        let json = n.to_json();
        assert_eq!(
            json,
            r#"{"columns":[45,46],"mean":[5.25,-0.125],"std":[0.75,1.5]}"#
        );
        assert_eq!(FeatureNorm::from_json(&json).unwrap(), n);
        assert!(FeatureNorm::from_json("{").is_err());
        assert!(FeatureNorm::from_json(r#"{"columns":[],"mean":[],"std":[],"x":1}"#).is_err());
        assert!(FeatureNorm::from_json(r#"{"columns":[1],"mean":[0],"std":[0]}"#).is_err());
    }
}
