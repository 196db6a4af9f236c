//! `cx model run FILE --input X.json [--backend B] [--trace]`.

use super::{backend_name, input, load_model, write_json, RunArgs, Streams};
use crate::error::{Error, Result};
use cx_engine::backends::provider::validate_readout;
use cx_engine::backends::trace::LayerTrace;
use cx_engine::backends::{
    Backend, BackendKind, CoLaNetProvider, Dispatcher, FallbackPolicy, Trace, BACKEND_ENV,
    BATCH_MAX_LIMIT,
};
use cx_model::{Readout, SnnModel};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// Most values (rows x steps x neurons over all layers) one `--trace` run
/// records; beyond it the run is refused rather than exhaust memory.
pub const TRACE_VALUES_MAX: u128 = 1 << 24;

/// What `cx model run` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunOutput {
    /// Device name of the backend that served the batch (several, joined
    /// with `", "`, in the rare case a fallback served some chunks).
    pub backend: String,
    /// The model's content hash, hex SHA-256.
    pub model_id: String,
    /// Offer id of each output column.
    pub offer_ids: Vec<u64>,
    /// `[row][column]` spikes of each output neuron over the `T` steps.
    pub spike_count: Vec<Vec<u32>>,
    /// `[row][column]` membrane after the last step, before its reset.
    pub mem_last: Vec<Vec<f32>>,
    /// `[row][column]` calibrated probability.
    pub probability: Vec<Vec<f32>>,
    /// With `--trace`: every layer's state, input layer first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerOutput>>,
}

/// One layer's trace in [`RunOutput::layers`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LayerOutput {
    /// `[row][step][neuron]`, 1 where the neuron fired.
    pub spk: Vec<Vec<Vec<u8>>>,
    /// `[row][step][neuron]` membranes, before reset.
    pub mem: Vec<Vec<Vec<f32>>>,
}

/// Runs the command: loads the model and the input, runs the batch, prints JSON.
pub fn run(args: &RunArgs, streams: &mut Streams<'_>) -> Result<()> {
    let kind = match args.backend {
        Some(kind) => kind,
        None => BackendKind::from_env()
            .map_err(|source| Error::BackendEnv {
                var: BACKEND_ENV,
                source,
            })?
            .unwrap_or_default(),
    };
    let model = Arc::new(load_model(args.model.as_deref())?);
    let origin = input::origin(&args.input);
    let bytes = input::read_source(&args.input, streams.stdin)?;
    let batch = input::parse_batch(&bytes, model.inputs(), &origin)?;
    drop(bytes);
    let (output, warnings) = run_batch(model, &batch, kind, args.trace)?;
    write_json(streams.stdout, &output, args.pretty)?;
    for warning in warnings {
        // Best effort: a closed stderr must not fail a run whose result is out.
        let _ = writeln!(streams.stderr, "cx: warning: {warning}");
    }
    Ok(())
}

/// Runs `batch` through `model` on backend `kind`, in chunks of at most
/// [`BATCH_MAX_LIMIT`] rows, and records every layer if `trace`. Returns
/// the output and warnings (backends that failed and were fallen back from).
pub fn run_batch(
    model: Arc<SnnModel>,
    batch: &input::Batch,
    kind: BackendKind,
    trace: bool,
) -> Result<(RunOutput, Vec<String>)> {
    let rows = batch.rows;
    let outputs = model.outputs();
    let mut output = RunOutput {
        backend: String::new(),
        model_id: model.id().to_string(),
        offer_ids: model.meta().offer_ids.clone(),
        spike_count: Vec::with_capacity(rows),
        mem_last: Vec::with_capacity(rows),
        probability: Vec::with_capacity(rows),
        layers: None,
    };
    let batch_max = rows.clamp(1, BATCH_MAX_LIMIT);
    let mut readout = Readout::with_capacity(batch_max, outputs);
    let chunk_len = batch_max * model.inputs();
    let chunks = batch.x.chunks(chunk_len.max(1)).enumerate();
    let init_err = |source| Error::BackendInit {
        backend: backend_name(kind),
        batch_max,
        source,
    };
    let chunk_err = |c: usize, n: usize| {
        move |source| Error::Backend {
            first_row: c * batch_max,
            end_row: c * batch_max + n,
            source,
        }
    };
    let mut warnings = Vec::new();
    if trace {
        check_trace_size(&model, rows)?;
        let mut backend =
            Backend::init_kind(kind.chain()[0], model.clone(), batch_max).map_err(init_err)?;
        let device = backend.device_name().to_string();
        let mut layers = vec![LayerOutput::default(); model.layers().len()];
        for (c, x) in chunks {
            let n = x.len() / model.inputs();
            let mut chunk_trace = Trace::default();
            backend
                .infer_traced(x, n, &mut readout, &mut chunk_trace)
                .and_then(|()| validate_readout(&device, model.steps(), &readout))
                .map_err(chunk_err(c, n))?;
            append_trace(&model, &device, n, chunk_trace, &mut layers)?;
            append_readout(&readout, &mut output);
        }
        output.backend = device;
        output.layers = Some(layers);
    } else {
        let mut dispatcher =
            Dispatcher::new(model.clone(), kind, batch_max, FallbackPolicy::default())
                .map_err(init_err)?;
        let start = Instant::now();
        let mut served: Vec<usize> = Vec::new();
        for (c, x) in chunks {
            let n = x.len() / model.inputs();
            let now_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let index = dispatcher
                .infer(x, n, &mut readout, now_ns)
                .map_err(chunk_err(c, n))?;
            if !served.contains(&index) {
                served.push(index);
            }
            append_readout(&readout, &mut output);
        }
        let stats = dispatcher.stats();
        if served.is_empty() {
            // No rows: name the backend that would have served them.
            served.push(0);
        }
        output.backend = served
            .iter()
            .map(|&i| stats[i].device.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        for s in stats.iter().filter(|s| s.failures > 0) {
            warnings.push(format!(
                "backend `{}` failed {} of the batches; the next backend in the chain served them",
                s.device, s.failures
            ));
        }
    }
    Ok((output, warnings))
}

/// Refuses a trace larger than [`TRACE_VALUES_MAX`] before any of it is recorded.
fn check_trace_size(model: &SnnModel, rows: usize) -> Result<()> {
    let neurons: usize = model.layers().iter().map(|l| l.outputs).sum();
    let values = rows as u128 * model.steps() as u128 * neurons as u128;
    if values > TRACE_VALUES_MAX {
        return Err(Error::TraceTooLarge {
            values,
            rows,
            steps: model.steps(),
            neurons,
            limit: TRACE_VALUES_MAX,
        });
    }
    Ok(())
}

/// Appends the readout's filled rows to the output.
fn append_readout(readout: &Readout, output: &mut RunOutput) {
    for b in 0..readout.batch() {
        output.spike_count.push(readout.spike_count_row(b).to_vec());
        output.mem_last.push(readout.mem_last_row(b).to_vec());
        output.probability.push(readout.probability_row(b).to_vec());
    }
}

/// Checks that one chunk's trace covers `rows` samples, every step and every
/// neuron of every layer, and appends it to `layers`.
fn append_trace(
    model: &SnnModel,
    device: &str,
    rows: usize,
    chunk: Trace,
    layers: &mut [LayerOutput],
) -> Result<()> {
    let incomplete = |reason: String| Error::IncompleteTrace {
        backend: device.into(),
        reason,
    };
    if rows > 0 && chunk.layers.len() != layers.len() {
        return Err(incomplete(format!(
            "{} layers recorded, the model has {}",
            chunk.layers.len(),
            layers.len()
        )));
    }
    let steps = model.steps() as usize;
    for (l, (got, (dst, layer))) in chunk
        .layers
        .into_iter()
        .zip(layers.iter_mut().zip(model.layers()))
        .enumerate()
    {
        let LayerTrace { spk, mem } = got;
        let shape_ok = |m: &[Vec<Vec<f32>>], s: &[Vec<Vec<u8>>]| {
            m.len() == rows
                && s.len() == rows
                && m.iter().all(|r| r.len() == steps)
                && s.iter().all(|r| r.len() == steps)
                && m.iter().flatten().all(|v| v.len() == layer.outputs)
                && s.iter().flatten().all(|v| v.len() == layer.outputs)
        };
        if !shape_ok(&mem, &spk) {
            return Err(incomplete(format!(
                "layer {l} is not [{rows}][{steps}][{}]",
                layer.outputs
            )));
        }
        dst.spk.extend(spk);
        dst.mem.extend(mem);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_model::{LifLayer, ModelMeta, ResetMechanism};

    /// One input, one neuron with weight 1, bias 0, beta 1, threshold 1:
    /// an input of `v` adds `v` to the membrane each step.
    fn integrator(steps: u32) -> Arc<SnnModel> {
        let layer = LifLayer::new(
            1,
            1,
            vec![1.0],
            vec![0.0],
            1.0,
            1.0,
            ResetMechanism::Subtract,
        );
        Arc::new(SnnModel::new(vec![layer], steps, ModelMeta::defaults(1)).unwrap())
    }

    fn batch(values: &[f32]) -> input::Batch {
        input::Batch {
            rows: values.len(),
            inputs: 1,
            x: values.to_vec(),
        }
    }

    #[test]
    fn empty_batch_gives_empty_rows() {
        for trace in [false, true] {
            let (out, warnings) =
                run_batch(integrator(4), &batch(&[]), BackendKind::Scalar, trace).unwrap();
            assert!(out.spike_count.is_empty() && out.mem_last.is_empty());
            assert!(out.probability.is_empty());
            assert_eq!(out.backend, "cpu-scalar");
            assert!(warnings.is_empty());
            if trace {
                assert_eq!(out.layers, Some(vec![LayerOutput::default()]));
            }
        }
    }

    #[test]
    fn more_rows_than_one_batch_are_chunked_in_order() {
        let rows = BATCH_MAX_LIMIT * 2 + 3;
        // Row r gets input 0.75 or 0 alternately, so chunk seams would show.
        let values: Vec<f32> = (0..rows).map(|r| (r % 2) as f32 * 0.75).collect();
        for kind in [BackendKind::Scalar, BackendKind::Simd] {
            let (out, _) = run_batch(integrator(4), &batch(&values), kind, false).unwrap();
            assert_eq!(out.spike_count.len(), rows);
            for (r, counts) in out.spike_count.iter().enumerate() {
                // Membranes 0.75, 1.5, 1.25, 1.0 with threshold 1: two spikes.
                assert_eq!(counts, &[(r % 2) as u32 * 2], "row {r}");
                assert_eq!(out.probability[r], [(r % 2) as f32 * 0.5], "row {r}");
            }
        }
    }

    #[test]
    fn traced_chunks_are_concatenated() {
        let rows = BATCH_MAX_LIMIT + 2;
        let values: Vec<f32> = (0..rows).map(|r| (r % 2) as f32 * 0.75).collect();
        let (out, _) = run_batch(integrator(4), &batch(&values), BackendKind::Simd, true).unwrap();
        let layers = out.layers.unwrap();
        assert_eq!(layers[0].spk.len(), rows);
        assert_eq!(layers[0].spk[rows - 1], [[0], [1], [1], [0]]);
        assert_eq!(layers[0].mem[rows - 1], [[0.75], [1.5], [1.25], [1.0]]);
        assert_eq!(layers[0].spk[rows - 2], [[0], [0], [0], [0]]);
        assert_eq!(layers[0].spk[rows - 3], [[0], [1], [1], [0]]);
        assert_eq!(out.spike_count[rows - 3], [2]);
        assert_eq!(out.spike_count[rows - 2], [0]);
    }

    #[test]
    fn oversized_traces_are_refused() {
        let values = vec![0.0; (TRACE_VALUES_MAX / 200) as usize];
        let err =
            run_batch(integrator(256), &batch(&values), BackendKind::Scalar, true).unwrap_err();
        assert!(matches!(err, Error::TraceTooLarge { .. }), "{err}");
    }
}
