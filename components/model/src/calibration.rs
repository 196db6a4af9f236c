//! Calibration: the documented mapping from a column's readout (spike count
//! over `T` steps and final membrane) to a click probability in `[0, 1]`.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the readout of each output column becomes a probability.
///
/// Stored as JSON under the `cx.calibration` metadata key, e.g.
/// `{"method":"platt","w_rate":[4.1],"w_mem":[0.3],"bias":[-3.2]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibration {
    /// `p = spike_count / T`: the raw firing rate, uncalibrated. The default
    /// for a file without `cx.calibration`.
    SpikeRate,
    /// Platt scaling per column `i`:
    /// `p = sigmoid(w_rate[i] * spike_count / T + w_mem[i] * mem_last + bias[i])`.
    Platt {
        /// Weight of the firing rate, one per column.
        w_rate: Vec<f32>,
        /// Weight of the final membrane, one per column.
        w_mem: Vec<f32>,
        /// Offset, one per column.
        bias: Vec<f32>,
    },
}

impl Calibration {
    /// Checks that a Platt calibration has one finite value per column.
    pub fn validate(&self, outputs: usize) -> Result<()> {
        let Self::Platt {
            w_rate,
            w_mem,
            bias,
        } = self
        else {
            return Ok(());
        };
        for (name, values) in [("w_rate", w_rate), ("w_mem", w_mem), ("bias", bias)] {
            if values.len() != outputs {
                return Err(Error::BadMetadata {
                    key: "cx.calibration".into(),
                    reason: format!(
                        "`{name}` has {} values, expected one per output column ({outputs})",
                        values.len()
                    ),
                });
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::BadMetadata {
                    key: "cx.calibration".into(),
                    reason: format!("`{name}[{i}]` is not finite"),
                });
            }
        }
        Ok(())
    }

    /// Maps one row of readouts to probabilities. All slices have one entry
    /// per output column.
    pub fn apply(
        &self,
        steps: u32,
        spike_count: &[u32],
        mem_last: &[f32],
        probability: &mut [f32],
    ) {
        debug_assert_eq!(spike_count.len(), probability.len());
        debug_assert_eq!(mem_last.len(), probability.len());
        let steps_inv = 1.0 / steps as f32;
        match self {
            Self::SpikeRate => {
                for (p, &count) in probability.iter_mut().zip(spike_count) {
                    *p = count as f32 * steps_inv;
                }
            }
            Self::Platt {
                w_rate,
                w_mem,
                bias,
            } => {
                for i in 0..probability.len() {
                    let rate = spike_count[i] as f32 * steps_inv;
                    let logit = w_rate[i] * rate + w_mem[i] * mem_last[i] + bias[i];
                    probability[i] = sigmoid(logit);
                }
            }
        }
    }
}

/// The logistic function; saturates to exactly 0 or 1 instead of overflowing.
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spike_rate_is_count_over_steps() {
        let mut p = [0.0; 3];
        Calibration::SpikeRate.apply(8, &[0, 4, 8], &[0.0; 3], &mut p);
        assert_eq!(p, [0.0, 0.5, 1.0]);
    }

    #[test]
    fn platt_applies_each_columns_parameters() {
        let cal = Calibration::Platt {
            w_rate: vec![2.0, 0.0],
            w_mem: vec![0.0, 1.0],
            bias: vec![-1.0, 0.0],
        };
        let mut p = [0.0; 2];
        cal.apply(4, &[2, 3], &[5.0, 0.0], &mut p);
        assert!(
            (p[0] - 0.5).abs() < 1e-6,
            "sigmoid(2*0.5-1) = 0.5, got {}",
            p[0]
        );
        assert!((p[1] - 0.5).abs() < 1e-6, "sigmoid(0) = 0.5, got {}", p[1]);
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }

    #[test]
    fn platt_with_wrong_length_is_refused() {
        let cal = Calibration::Platt {
            w_rate: vec![1.0],
            w_mem: vec![1.0, 2.0],
            bias: vec![0.0, 0.0],
        };
        let err = cal.validate(2).unwrap_err().to_string();
        assert!(err.contains("w_rate"), "{err}");
    }
}
