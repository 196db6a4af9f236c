//! Sparse input batches: each row given as its non-zero features, in
//! compressed-sparse-row form.
//!
//! Feature rows are almost all zeros (a few dozen non-zero values out of
//! thousands), so a backend that reads only the non-zeros skips the scan of
//! the dense block that dominates the dense path's input projection. The
//! result is identical to the dense path on the scattered row: both
//! accumulate `fma(value, weight, acc)` over the non-zero columns in
//! ascending order, from zero, then add the bias.

use crate::error::{BackendError, Result};

/// A batch in CSR form: row `r` holds the features
/// `columns[starts[r]..starts[r + 1]]` with values
/// `values[starts[r]..starts[r + 1]]`. Within a row the columns are strictly
/// ascending and every value is finite; zeros may be left out (they change
/// nothing). `starts` has one entry more than the batch has rows.
#[derive(Clone, Copy, Debug)]
pub struct SparseRows<'a> {
    /// Row boundaries: `starts[0] == 0`, non-decreasing, last equals `columns.len()`.
    pub starts: &'a [u32],
    /// Column of each non-zero feature.
    pub columns: &'a [u32],
    /// Its value.
    pub values: &'a [f32],
}

impl<'a> SparseRows<'a> {
    /// Rows in the batch.
    pub fn batch(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// Row `r`'s columns and values; empty when `r` is out of range or the
    /// bounds are inconsistent (which [`check_sparse`] reports).
    pub fn row(&self, r: usize) -> (&'a [u32], &'a [f32]) {
        let (Some(&a), Some(&b)) = (self.starts.get(r), self.starts.get(r + 1)) else {
            return (&[], &[]);
        };
        let range = a as usize..b as usize;
        match (self.columns.get(range.clone()), self.values.get(range)) {
            (Some(c), Some(v)) => (c, v),
            _ => (&[], &[]),
        }
    }
}

/// Checks a sparse batch for a model of `inputs` features: consistent
/// bounds, columns in range and strictly ascending within each row, values
/// finite. Costs one pass over the non-zeros.
pub fn check_sparse(rows: &SparseRows<'_>, inputs: usize) -> Result<()> {
    let bad = |reason: String| BackendError::SparseInput { reason };
    let nnz = rows.columns.len();
    if rows.values.len() != nnz {
        return Err(bad(format!(
            "{nnz} columns but {} values",
            rows.values.len()
        )));
    }
    if rows.starts.first().is_some_and(|&s| s != 0)
        || rows.starts.last().is_some_and(|&s| s as usize != nnz)
        || rows.starts.windows(2).any(|w| w[0] > w[1])
    {
        return Err(bad(format!(
            "row starts must rise from 0 to {nnz} (the number of non-zeros)"
        )));
    }
    for r in 0..rows.batch() {
        let (columns, values) = rows.row(r);
        if let Some(i) = columns.iter().position(|&c| c as usize >= inputs) {
            return Err(bad(format!(
                "row {r}: column {} is past the model's {inputs} inputs",
                columns[i]
            )));
        }
        if let Some(w) = columns.windows(2).position(|w| w[0] >= w[1]) {
            return Err(bad(format!(
                "row {r}: columns must strictly ascend, found {} then {}",
                columns[w],
                columns[w + 1]
            )));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(BackendError::NonFiniteInput {
                sample: r,
                feature: columns[i] as usize,
                value: values[i],
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows<'a>(starts: &'a [u32], columns: &'a [u32], values: &'a [f32]) -> SparseRows<'a> {
        SparseRows {
            starts,
            columns,
            values,
        }
    }

    #[test]
    fn a_well_formed_batch_passes_and_reads_back_by_row() {
        let r = rows(&[0, 2, 2, 3], &[1, 5, 0], &[0.5, -1.0, 2.0]);
        check_sparse(&r, 6).unwrap();
        assert_eq!(r.batch(), 3);
        assert_eq!(r.row(0), (&[1u32, 5][..], &[0.5f32, -1.0][..]));
        assert_eq!(r.row(1).0.len(), 0, "an empty row");
        assert_eq!(r.row(9).0.len(), 0, "out of range reads empty");
        check_sparse(&rows(&[0], &[], &[]), 6).expect("an empty batch");
    }

    #[test]
    fn every_malformation_is_named() {
        let cases: [(SparseRows<'_>, &str); 7] = [
            (rows(&[0, 2], &[1, 2], &[1.0]), "values"),
            (rows(&[1, 2], &[1, 2], &[1.0, 1.0]), "rise from 0"),
            (rows(&[0, 1], &[1, 2], &[1.0, 1.0]), "rise from 0"),
            (rows(&[0, 2, 1, 2], &[1, 2], &[1.0, 1.0]), "rise from 0"),
            (rows(&[0, 2], &[1, 6], &[1.0, 1.0]), "past the model"),
            (rows(&[0, 2], &[3, 3], &[1.0, 1.0]), "strictly ascend"),
            (rows(&[0, 2], &[1, 2], &[1.0, f32::NAN]), "not finite"),
        ];
        for (r, needle) in cases {
            let err = check_sparse(&r, 6).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}
