//! The backend trait, [`CoLaNetProvider`], its two CPU implementations, and
//! the input and output checks every backend shares.

use crate::error::{BackendError, Result};
use crate::scalar::{self, ScalarWorkspace};
use crate::simd::{self, PackedModel, SimdTier, SimdWorkspace};
use crate::sparse::{check_sparse, SparseRows};
use crate::trace::TraceSink;
use cx_model::{Readout, SnnModel};
use std::sync::Arc;

/// Largest batch any backend may be initialised for.
pub const BATCH_MAX_LIMIT: usize = 4096;

/// A device that runs a CoLaNet spiking network (the seed design's provider).
///
/// Each backend's constructor sizes every buffer for a model and a maximum
/// batch; `infer` then never allocates.
pub trait CoLaNetProvider {
    /// Runs `batch` samples of `x` (`[batch][inputs]` row-major, finite) and
    /// fills `out`'s first `batch` rows: spike counts, final membranes and
    /// calibrated probabilities.
    fn infer(&mut self, x: &[f32], batch: usize, out: &mut Readout) -> Result<()>;

    /// [`infer`](Self::infer) for a batch given as each row's non-zero
    /// features: the same result as the scattered dense rows, at a cost that
    /// follows the non-zeros.
    fn infer_sparse(&mut self, rows: &SparseRows<'_>, out: &mut Readout) -> Result<()>;

    /// A human-readable device name, e.g. `cpu-simd(avx512f)`: the tier
    /// found on this CPU, not the build's flags.
    fn device_name(&self) -> &str;

    /// The model it runs.
    fn model(&self) -> &Arc<SnnModel>;
}

/// Checks `batch_max` against [`BATCH_MAX_LIMIT`].
pub(crate) fn check_batch_max(batch_max: usize) -> Result<()> {
    if batch_max == 0 || batch_max > BATCH_MAX_LIMIT {
        return Err(BackendError::BatchTooLarge {
            batch: batch_max,
            batch_max: BATCH_MAX_LIMIT,
        });
    }
    Ok(())
}

/// Checks a batch's shapes and that every feature is finite.
pub fn check_input(
    model: &SnnModel,
    x: &[f32],
    batch: usize,
    batch_max: usize,
    out: &Readout,
) -> Result<()> {
    if batch > batch_max {
        return Err(BackendError::BatchTooLarge { batch, batch_max });
    }
    let inputs = model.inputs();
    if x.len() != batch * inputs {
        return Err(BackendError::InputShape {
            len: x.len(),
            batch,
            inputs,
        });
    }
    if out.outputs() != model.outputs() || out.batch_max() < batch {
        return Err(BackendError::ReadoutShape {
            batch_max: out.batch_max(),
            outputs: out.outputs(),
            batch,
            model_outputs: model.outputs(),
        });
    }
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(BackendError::NonFiniteInput {
            sample: i / inputs,
            feature: i % inputs,
            value: x[i],
        }),
    }
}

/// Checks a sparse batch's shapes ([`check_sparse`]) against `model`,
/// `batch_max` and `out`.
pub fn check_sparse_input(
    model: &SnnModel,
    rows: &SparseRows<'_>,
    batch_max: usize,
    out: &Readout,
) -> Result<()> {
    let batch = rows.batch();
    if batch > batch_max {
        return Err(BackendError::BatchTooLarge { batch, batch_max });
    }
    if out.outputs() != model.outputs() || out.batch_max() < batch {
        return Err(BackendError::ReadoutShape {
            batch_max: out.batch_max(),
            outputs: out.outputs(),
            batch,
            model_outputs: model.outputs(),
        });
    }
    check_sparse(rows, model.inputs())
}

/// Checks a filled readout: finite membranes, counts at most `T`,
/// probabilities finite and in `[0, 1]`. The error names the first bad cell.
pub fn validate_readout(backend: &str, steps: u32, out: &Readout) -> Result<()> {
    let n = out.batch() * out.outputs();
    let cols = out.outputs().max(1);
    let bad = |what: &str, i: usize, v: String| BackendError::InvalidOutput {
        backend: backend.into(),
        reason: format!("{what} of sample {}, column {} is {v}", i / cols, i % cols),
    };
    if let Some(i) = out.mem_last[..n].iter().position(|m| !m.is_finite()) {
        return Err(bad("mem_last", i, out.mem_last[i].to_string()));
    }
    if let Some(i) = out.spike_count[..n].iter().position(|&c| c > steps) {
        return Err(bad(
            "spike_count",
            i,
            format!("{} > T = {steps}", out.spike_count[i]),
        ));
    }
    if let Some(i) = out.probability[..n]
        .iter()
        .position(|p| !(0.0..=1.0).contains(p))
    {
        return Err(bad("probability", i, out.probability[i].to_string()));
    }
    Ok(())
}

/// The scalar reference as a backend: slow, obviously correct, always available.
#[derive(Clone, Debug)]
pub struct ScalarBackend {
    model: Arc<SnnModel>,
    batch_max: usize,
    ws: ScalarWorkspace,
}

impl ScalarBackend {
    /// The scalar reference for `model`, for batches of up to `batch_max`.
    pub fn new(model: Arc<SnnModel>, batch_max: usize) -> Result<Self> {
        check_batch_max(batch_max)?;
        Ok(Self {
            ws: ScalarWorkspace::new(&model),
            model,
            batch_max,
        })
    }

    /// Like `infer`, recording every layer's state into `trace`.
    pub fn infer_traced<S: TraceSink>(
        &mut self,
        x: &[f32],
        batch: usize,
        out: &mut Readout,
        trace: &mut S,
    ) -> Result<()> {
        check_input(&self.model, x, batch, self.batch_max, out)?;
        scalar::forward(&self.model, x, batch, &mut self.ws, out, trace);
        out.calibrate(&self.model.meta().calibration, self.model.steps());
        Ok(())
    }
}

impl CoLaNetProvider for ScalarBackend {
    fn infer(&mut self, x: &[f32], batch: usize, out: &mut Readout) -> Result<()> {
        self.infer_traced(x, batch, out, &mut crate::trace::NoTrace)
    }

    fn infer_sparse(&mut self, rows: &SparseRows<'_>, out: &mut Readout) -> Result<()> {
        check_sparse_input(&self.model, rows, self.batch_max, out)?;
        scalar::forward_sparse(
            &self.model,
            rows,
            &mut self.ws,
            out,
            &mut crate::trace::NoTrace,
        );
        out.calibrate(&self.model.meta().calibration, self.model.steps());
        Ok(())
    }

    fn device_name(&self) -> &str {
        "cpu-scalar"
    }

    fn model(&self) -> &Arc<SnnModel> {
        &self.model
    }
}

/// The SIMD kernel as a backend, on the instruction-set tier chosen when
/// it is created.
#[derive(Clone, Debug)]
pub struct SimdBackend {
    model: Arc<SnnModel>,
    packed: PackedModel,
    ws: SimdWorkspace,
    tier: SimdTier,
    device: String,
}

impl SimdBackend {
    /// The SIMD kernel for `model`, for batches of up to `batch_max`, on the
    /// widest tier this CPU has ([`SimdTier::from_env_or_detect`]: capped
    /// by `CX_SIMD_TIER` when it is set).
    pub fn new(model: Arc<SnnModel>, batch_max: usize) -> Result<Self> {
        Self::with_tier(model, batch_max, SimdTier::from_env_or_detect()?)
    }

    /// The SIMD kernel on `tier`; [`BackendError::Unavailable`] when this
    /// CPU lacks it.
    pub fn with_tier(model: Arc<SnnModel>, batch_max: usize, tier: SimdTier) -> Result<Self> {
        check_batch_max(batch_max)?;
        tier.check_supported()?;
        let packed = PackedModel::pack(&model);
        Ok(Self {
            ws: SimdWorkspace::new(&packed, batch_max),
            packed,
            model,
            tier,
            device: format!("cpu-simd({tier})"),
        })
    }

    /// The tier it runs on.
    pub fn tier(&self) -> SimdTier {
        self.tier
    }

    /// Like `infer`, recording every layer's state into `trace`.
    pub fn infer_traced<S: TraceSink>(
        &mut self,
        x: &[f32],
        batch: usize,
        out: &mut Readout,
        trace: &mut S,
    ) -> Result<()> {
        check_input(&self.model, x, batch, self.ws.batch_max(), out)?;
        simd::forward(self.tier, &self.packed, x, batch, &mut self.ws, out, trace);
        out.calibrate(&self.model.meta().calibration, self.model.steps());
        Ok(())
    }
}

impl CoLaNetProvider for SimdBackend {
    fn infer(&mut self, x: &[f32], batch: usize, out: &mut Readout) -> Result<()> {
        self.infer_traced(x, batch, out, &mut crate::trace::NoTrace)
    }

    fn infer_sparse(&mut self, rows: &SparseRows<'_>, out: &mut Readout) -> Result<()> {
        check_sparse_input(&self.model, rows, self.ws.batch_max(), out)?;
        simd::forward_sparse(
            self.tier,
            &self.packed,
            rows,
            &mut self.ws,
            out,
            &mut crate::trace::NoTrace,
        );
        out.calibrate(&self.model.meta().calibration, self.model.steps());
        Ok(())
    }

    fn device_name(&self) -> &str {
        &self.device
    }

    fn model(&self) -> &Arc<SnnModel> {
        &self.model
    }
}
