//! The kernel benchmark summary behind `cx-bench kernel` and the
//! `kernel_report` example: microseconds per sample (per request row) of
//! the scalar reference and the SIMD kernel, by model shape and batch size,
//! on the workloads of the `kernels` criterion bench, with each cell's
//! achieved rate against the core's measured FMA peak.
//!
//! # Workload
//!
//! Per shape `D x H x O` ([`KERNEL_SHAPES`]), a two-layer `Linear -> Leaky`
//! network at `T = 8` ([`kernel_model`]) and dense inputs uniform in
//! `[-0.5, 1.5)` ([`kernel_inputs`]); one thread; each backend initialised
//! for its batch once and reused ([`KernelRunner`]).
//!
//! # Measurement
//!
//! Every cell (shape, batch, backend) is warmed up and calibrated to a
//! number of calls that takes at least the repeat time. Then each repeat
//! times that many calls for every cell in turn, so host noise falls on all
//! cells alike and the scalar/SIMD ratio is taken within one repeat. A cell
//! reports the median over repeats and the range.
//!
//! # Against the bound
//!
//! The dense work of the SIMD kernel is its input projection, `D x H`
//! multiply-adds per sample, done once per sample (the input is the same
//! at every step); its spiking layers are event-driven adds. A cell's
//! GFLOP/s counts that projection only (2 FLOPs per multiply-add), and its
//! bound is that work at the measured FMA peak ([`crate::fma_peak`]): the
//! time no kernel could beat on dense inputs. The peak is measured once per
//! repeat, before its cells, so host noise falls on it and on the kernels
//! alike; the report gives its median over repeats. "% of FMA peak" is bound over
//! measured time. The scalar kernel does the dense work at every step, so
//! its share understates its FLOP rate; it is there for the ratio.

use crate::fma_peak::{measure_fma_rate, FmaPath, FmaPeak};
use crate::machine::MachineInfo;
use crate::spread::Spread;
use crate::{dense_inputs, snntorch_style_model, Error, Result, Shape, KERNEL_SHAPES};
use cx_backends::{
    BackendError, CoLaNetProvider, ScalarBackend, SimdBackend, Trace, BATCH_MAX_LIMIT,
};
use cx_model::{Readout, SnnModel};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time steps `T` of the benchmark networks.
pub const KERNEL_STEPS: u32 = 8;

/// The batch sizes the kernel benchmarks report.
pub const KERNEL_BATCHES: [usize; 4] = [1, 16, 64, 256];

/// Seed of the benchmark networks' weights.
pub const KERNEL_MODEL_SEED: u64 = 7;

/// Seed of the benchmark inputs.
pub const KERNEL_INPUT_SEED: u64 = 11;

/// Batch the firing rates are measured at.
pub const FIRING_RATE_BATCH: usize = 64;

/// The benchmark network at `shape`: [`snntorch_style_model`] at
/// [`KERNEL_STEPS`] steps, seed [`KERNEL_MODEL_SEED`].
pub fn kernel_model(shape: Shape) -> Arc<SnnModel> {
    Arc::new(snntorch_style_model(shape, KERNEL_STEPS, KERNEL_MODEL_SEED))
}

/// `batch` benchmark input rows for `shape`: [`dense_inputs`], seed
/// [`KERNEL_INPUT_SEED`].
pub fn kernel_inputs(shape: Shape, batch: usize) -> Vec<f32> {
    dense_inputs(shape.inputs, batch, KERNEL_INPUT_SEED)
}

/// Parses a shape written `DxHxO`, e.g. `64x256x16`.
pub fn parse_shape(text: &str) -> Result<Shape> {
    let dims: Vec<usize> = text
        .split('x')
        .map(|d| d.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::option("--shapes", text, "expected DxHxO, e.g. 64x256x16"))?;
    match dims[..] {
        [inputs, hidden, outputs] if inputs > 0 && hidden > 0 && outputs > 0 => Ok(Shape {
            inputs,
            hidden,
            outputs,
        }),
        _ => Err(Error::option(
            "--shapes",
            text,
            "expected three positive sizes DxHxO, e.g. 64x256x16",
        )),
    }
}

/// A kernel under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelBackend {
    /// The scalar reference kernel ([`ScalarBackend`]).
    Scalar,
    /// The SIMD kernel ([`SimdBackend`]).
    Simd,
}

impl KernelBackend {
    /// Both kernels, scalar first.
    pub const ALL: [Self; 2] = [Self::Scalar, Self::Simd];
}

impl std::fmt::Display for KernelBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Scalar => "scalar",
            Self::Simd => "simd",
        })
    }
}

impl FromStr for KernelBackend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "scalar" => Ok(Self::Scalar),
            "simd" => Ok(Self::Simd),
            _ => Err(Error::option("--backends", s, "expected scalar or simd")),
        }
    }
}

/// One backend at one shape and batch with its inputs and readout, ready
/// to run: what the criterion bench and [`run_kernel_bench`] time.
pub struct KernelRunner<P> {
    backend: P,
    x: Vec<f32>,
    out: Readout,
    batch: usize,
}

impl<P: CoLaNetProvider> KernelRunner<P> {
    /// `backend` (set up for `batch` rows of a model at `shape`) with the
    /// benchmark inputs.
    pub fn new(backend: P, shape: Shape, batch: usize) -> Self {
        let outputs = backend.model().outputs();
        Self {
            backend,
            x: kernel_inputs(shape, batch),
            out: Readout::with_capacity(batch, outputs),
            batch,
        }
    }

    /// `backend` (set up for `batch` rows) with the given inputs: `batch`
    /// rows of the model's input width, row-major.
    pub fn with_inputs(backend: P, x: Vec<f32>, batch: usize) -> Self {
        let outputs = backend.model().outputs();
        Self {
            backend,
            x,
            out: Readout::with_capacity(batch, outputs),
            batch,
        }
    }

    /// One call of the kernel on the whole batch.
    pub fn run(&mut self) -> std::result::Result<(), BackendError> {
        self.backend
            .infer(black_box(&self.x), self.batch, &mut self.out)
    }

    /// The backend's device name, e.g. `cpu-simd(avx512f)`.
    pub fn device_name(&self) -> &str {
        self.backend.device_name()
    }
}

/// The hidden and output layers' firing rates at one shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FiringRates {
    /// The shape.
    pub shape: Shape,
    /// Share of neuron-steps that spiked, per layer, input side first.
    pub layer_rates: Vec<f64>,
}

/// The firing rates of the SIMD kernel on [`FIRING_RATE_BATCH`] benchmark
/// rows at `shape`: evidence that the workload fires at a realistic rate
/// (the design expects 10-35%).
pub fn firing_rates(shape: Shape) -> std::result::Result<FiringRates, BackendError> {
    let batch = FIRING_RATE_BATCH;
    firing_rates_of(kernel_model(shape), &kernel_inputs(shape, batch), batch)
}

/// The firing rates of the SIMD kernel on `batch` rows `x` of `model`.
pub fn firing_rates_of(
    model: Arc<SnnModel>,
    x: &[f32],
    batch: usize,
) -> std::result::Result<FiringRates, BackendError> {
    let shape = shape_of(&model);
    let mut backend = SimdBackend::new(model, batch)?;
    let mut out = Readout::with_capacity(batch, shape.outputs);
    let mut trace = Trace::default();
    backend.infer_traced(x, batch, &mut out, &mut trace)?;
    let layer_rates = trace
        .layers
        .iter()
        .map(|layer| {
            let (fired, total) = layer
                .spk
                .iter()
                .flatten()
                .flatten()
                .fold((0_u64, 0_u64), |(f, t), &s| (f + u64::from(s), t + 1));
            fired as f64 / total.max(1) as f64
        })
        .collect();
    Ok(FiringRates { shape, layer_rates })
}

/// What [`run_kernel_bench`] measures; `None` fields take the mode's
/// default (see [`KernelPlan::resolve`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelBenchOptions {
    /// A few seconds in all (CI smoke; about 1 s in a release build):
    /// batches 1 and 16, 3 short repeats, short FMA-peak runs. Otherwise
    /// the fuller default (about 20 s on the 2-core reference machine).
    pub quick: bool,
    /// Shapes (default: [`KERNEL_SHAPES`]).
    pub shapes: Option<Vec<Shape>>,
    /// Batch sizes (default: [`KERNEL_BATCHES`]; quick: 1 and 16).
    pub batches: Option<Vec<usize>>,
    /// Kernels (default: both).
    pub backends: Option<Vec<KernelBackend>>,
    /// Repeats per cell (default 7; quick 3).
    pub repeats: Option<usize>,
    /// Least time of one repeat of one cell, ms (default 150; quick 20).
    pub repeat_ms: Option<u64>,
}

impl KernelBenchOptions {
    /// The quick mode's options, nothing overridden.
    pub fn quick() -> Self {
        Self {
            quick: true,
            ..Self::default()
        }
    }
}

/// [`KernelBenchOptions`] with every default filled in and checked.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelPlan {
    /// Shapes, in report order.
    pub shapes: Vec<Shape>,
    /// Batch sizes, in report order.
    pub batches: Vec<usize>,
    /// Kernels, in report order.
    pub backends: Vec<KernelBackend>,
    /// Repeats per cell.
    pub repeats: usize,
    /// Least time of one repeat of one cell.
    pub repeat_time: Duration,
    /// FMA-peak loop iterations per run (one run per repeat).
    pub fma_iterations: u64,
}

/// One mode's defaults.
struct KernelDefaults {
    batches: &'static [usize],
    repeats: usize,
    repeat_ms: u64,
    fma_iterations: u64,
}

/// The quick mode's defaults: about 1 s in a release build.
const QUICK_DEFAULTS: KernelDefaults = KernelDefaults {
    batches: &[1, 16],
    repeats: 3,
    repeat_ms: 20,
    fma_iterations: 5_000_000,
};

/// The full mode's defaults: about 20 s on the reference machine.
const FULL_DEFAULTS: KernelDefaults = KernelDefaults {
    batches: &KERNEL_BATCHES,
    repeats: 7,
    repeat_ms: 150,
    fma_iterations: 50_000_000,
};

impl KernelPlan {
    /// Fills in `options`' defaults and checks every value.
    pub fn resolve(options: &KernelBenchOptions) -> Result<Self> {
        let d = if options.quick {
            &QUICK_DEFAULTS
        } else {
            &FULL_DEFAULTS
        };
        let plan = Self {
            shapes: options
                .shapes
                .clone()
                .unwrap_or_else(|| KERNEL_SHAPES.to_vec()),
            batches: options
                .batches
                .clone()
                .unwrap_or_else(|| d.batches.to_vec()),
            backends: options
                .backends
                .clone()
                .unwrap_or_else(|| KernelBackend::ALL.to_vec()),
            repeats: options.repeats.unwrap_or(d.repeats),
            repeat_time: Duration::from_millis(options.repeat_ms.unwrap_or(d.repeat_ms)),
            fma_iterations: d.fma_iterations,
        };
        plan.check()?;
        Ok(plan)
    }

    fn check(&self) -> Result<()> {
        let list = |v: &[usize]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        if self.shapes.is_empty() {
            return Err(Error::option("--shapes", "", "name at least one shape"));
        }
        if let Some(s) = self
            .shapes
            .iter()
            .find(|s| s.inputs == 0 || s.hidden == 0 || s.outputs == 0)
        {
            return Err(Error::option("--shapes", s, "every size must be positive"));
        }
        if self.batches.is_empty() || self.batches.iter().any(|&b| b == 0 || b > BATCH_MAX_LIMIT) {
            return Err(Error::option(
                "--batches",
                list(&self.batches),
                format!("give one or more batch sizes from 1 to {BATCH_MAX_LIMIT}"),
            ));
        }
        if self.backends.is_empty() {
            return Err(Error::option("--backends", "", "name scalar, simd or both"));
        }
        if self.repeats == 0 {
            return Err(Error::option("--repeats", 0, "must be at least 1"));
        }
        if self.repeat_time.is_zero() {
            return Err(Error::option("--repeat-ms", 0, "must be at least 1"));
        }
        Ok(())
    }
}

/// One cell of the kernel table: a kernel at one shape and batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelRow {
    /// The network's shape.
    pub shape: Shape,
    /// Rows per call.
    pub batch: usize,
    /// The kernel.
    pub backend: KernelBackend,
    /// Kernel calls timed per repeat.
    pub calls_per_repeat: u64,
    /// Microseconds per sample (per row) over repeats.
    pub us_per_sample: Spread,
    /// Samples per second at the median.
    pub samples_per_s: f64,
    /// Scalar time over SIMD time within each repeat: on SIMD rows whose
    /// scalar cell was measured too.
    pub speedup_vs_scalar: Option<Spread>,
    /// Multiply-adds of the dense input projection per sample, `D x H`.
    pub projection_madds_per_sample: u64,
    /// That projection's FLOPs per second at the median time, in G.
    pub gflop_per_s: f64,
    /// The projection at the measured FMA peak, µs per sample: the bound.
    pub bound_us_per_sample: f64,
    /// Bound over the median time (1.0 = at the bound).
    pub peak_share: f64,
}

/// The kernel benchmark summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelBenchReport {
    /// The machine.
    pub machine: MachineInfo,
    /// Whether the quick mode ran.
    pub quick: bool,
    /// Whether this library was built with debug assertions (an
    /// unoptimised build: the figures then say little).
    pub debug_build: bool,
    /// Time steps `T`.
    pub steps: u32,
    /// Repeats per cell.
    pub repeats: usize,
    /// Least time of one repeat of one cell, ms.
    pub repeat_ms: u64,
    /// The SIMD kernel's device name, if it ran.
    pub simd_device: Option<String>,
    /// One core's FMA peak, measured in this run.
    pub fma_peak: FmaPeak,
    /// The workload's firing rates, per shape.
    pub firing_rates: Vec<FiringRates>,
    /// The model file timed (`cx-bench kernel --model`), if any; `None`:
    /// the benchmark networks.
    #[serde(default)]
    pub model: Option<ModelRunInfo>,
    /// One row per shape, batch and kernel, in that order.
    pub rows: Vec<KernelRow>,
    /// Wall time of the whole benchmark, s.
    pub elapsed_s: f64,
}

impl KernelBenchReport {
    /// The row for `shape`, `batch` and `backend`, if measured.
    pub fn row(&self, shape: Shape, batch: usize, backend: KernelBackend) -> Option<&KernelRow> {
        self.rows
            .iter()
            .find(|r| r.shape == shape && r.batch == batch && r.backend == backend)
    }

    /// The report as markdown: a heading, the set-up, the table and notes.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        self.write_header(&mut md);
        md.push_str(KERNEL_TABLE_HEADER);
        md.push_str("\n| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for row in &self.rows {
            md.push_str(&row_markdown(row));
        }
        self.write_notes(&mut md);
        md
    }

    fn write_header(&self, md: &mut String) {
        let _ = writeln!(md, "## Kernel: µs per sample, scalar against SIMD\n");
        let _ = writeln!(md, "Machine: {}.\n", self.machine.summary());
        if self.debug_build {
            let _ = writeln!(
                md,
                "**Debug build** (debug assertions on): these figures are not representative.\n"
            );
        }
        let device = self.simd_device.as_deref().unwrap_or("not run");
        if let Some(m) = &self.model {
            let _ = writeln!(
                md,
                "Model file `{}` ({}, id {}): layer widths {:?}, T = {}; inputs: {}; one thread; SIMD device {device}.{}\n",
                m.path,
                m.name,
                m.id,
                m.widths,
                self.steps,
                m.input,
                if self.quick { " Quick mode." } else { "" }
            );
        } else {
            self.write_workload(md, device);
        }
        let _ = writeln!(
            md,
            "FMA peak, one core, one run per repeat: {}.\n",
            self.fma_peak.summary()
        );
        let _ = writeln!(
            md,
            "Each cell: median over {} repeats of at least {} ms, [min-max]; speedups are taken within each repeat.\n",
            self.repeats, self.repeat_ms
        );
    }

    fn write_workload(&self, md: &mut String, device: &str) {
        let _ = writeln!(
            md,
            "Workload: two-layer `Linear -> Leaky` network per shape `DxHxO`, T = {}, dense inputs, one thread; SIMD device {device}.{}\n",
            self.steps,
            if self.quick { " Quick mode." } else { "" }
        );
    }

    fn write_notes(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\nGFLOP/s and the bound count the dense input projection only (`D x H` multiply-adds per sample, 2 FLOPs each): the bound is that work at the FMA peak above, and \"% of peak\" is bound / measured time."
        );
        if !self.firing_rates.is_empty() {
            let rates: Vec<String> = self.firing_rates.iter().map(firing_markdown).collect();
            let _ = writeln!(
                md,
                "\nFiring rates on the {} inputs (batch {FIRING_RATE_BATCH}): {}.",
                if self.model.is_some() {
                    "model's"
                } else {
                    "benchmark"
                },
                rates.join("; ")
            );
        }
        let _ = writeln!(md, "\nTotal time {:.1} s.", self.elapsed_s);
    }
}

/// The kernel table's header row.
pub const KERNEL_TABLE_HEADER: &str = "| shape | batch | kernel | µs/sample | samples/s | SIMD speedup | GFLOP/s | % of FMA peak | bound µs/sample |";

fn row_markdown(row: &KernelRow) -> String {
    let speedup = row.speedup_vs_scalar.map_or_else(
        || "-".to_string(),
        |s| format!("{:.0}x [{:.0}-{:.0}]", s.median, s.min, s.max),
    );
    format!(
        "| {} | {} | {} | {} | {:.0} | {speedup} | {:.1} | {:.1}% | {:.2} |\n",
        row.shape,
        row.batch,
        row.backend,
        row.us_per_sample.show(digits_for(row.us_per_sample.median)),
        row.samples_per_s,
        row.gflop_per_s,
        row.peak_share * 100.0,
        row.bound_us_per_sample,
    )
}

/// Decimals that show about three significant digits of `x`.
fn digits_for(x: f64) -> usize {
    match x.abs() {
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    }
}

fn firing_markdown(rates: &FiringRates) -> String {
    let layers: Vec<String> = rates
        .layer_rates
        .iter()
        .enumerate()
        .map(|(l, r)| format!("layer {} {:.1}%", l + 1, r * 100.0))
        .collect();
    format!("{} {}", rates.shape, layers.join(", "))
}

/// A runner of either kernel.
enum AnyRunner {
    Scalar(KernelRunner<ScalarBackend>),
    Simd(KernelRunner<SimdBackend>),
}

impl AnyRunner {
    fn new(backend: KernelBackend, work: &Workload, batch: usize) -> Result<Self> {
        let (model, shape) = (work.model.clone(), work.shape);
        let x = work.inputs(batch);
        let built = match backend {
            KernelBackend::Scalar => ScalarBackend::new(model, batch)
                .map(|b| Self::Scalar(KernelRunner::with_inputs(b, x, batch))),
            KernelBackend::Simd => SimdBackend::new(model, batch)
                .map(|b| Self::Simd(KernelRunner::with_inputs(b, x, batch))),
        };
        built.map_err(|e| kernel_error("initialising", backend, shape, batch, e))
    }

    fn run(&mut self) -> std::result::Result<(), BackendError> {
        match self {
            Self::Scalar(r) => r.run(),
            Self::Simd(r) => r.run(),
        }
    }

    fn device_name(&self) -> &str {
        match self {
            Self::Scalar(r) => r.device_name(),
            Self::Simd(r) => r.device_name(),
        }
    }
}

fn kernel_error(
    doing: &str,
    backend: KernelBackend,
    shape: Shape,
    batch: usize,
    source: BackendError,
) -> Error {
    Error::Kernel {
        what: format!("{doing} {backend} at {shape}, batch {batch}"),
        source: Box::new(source),
    }
}

/// One cell being measured.
struct Cell {
    shape: Shape,
    batch: usize,
    backend: KernelBackend,
    runner: AnyRunner,
    calls: u64,
    us_per_sample: Vec<f64>,
}

impl Cell {
    /// `calls` kernel calls, timed: µs per sample.
    fn time(&mut self, calls: u64) -> Result<f64> {
        let start = Instant::now();
        for _ in 0..calls {
            self.runner
                .run()
                .map_err(|e| kernel_error("running", self.backend, self.shape, self.batch, e))?;
        }
        let us = start.elapsed().as_secs_f64() * 1e6;
        Ok(us / (calls * self.batch as u64) as f64)
    }

    /// Warms the cell up and sets `calls` so one repeat takes at least
    /// `repeat`: a first call, then about half a repeat's worth.
    fn calibrate(&mut self, repeat: Duration) -> Result<()> {
        let batch = self.batch as f64;
        let call_s = |us_per_sample: f64| us_per_sample * batch * 1e-6;
        let first = call_s(self.time(1)?);
        let warm_calls = calls_for(repeat.as_secs_f64() / 2.0, first);
        let warm = call_s(self.time(warm_calls)?);
        self.calls = calls_for(repeat.as_secs_f64(), warm);
        Ok(())
    }

    fn measure(&mut self) -> Result<()> {
        let us = self.time(self.calls)?;
        self.us_per_sample.push(us);
        Ok(())
    }
}

/// Calls of `call_s` seconds each that fill `target_s` (at least one).
fn calls_for(target_s: f64, call_s: f64) -> u64 {
    (target_s / call_s.max(1e-9)).ceil().max(1.0) as u64
}

/// Runs the kernel benchmark (see the module documentation) and returns
/// its summary.
pub fn run_kernel_bench(opts: &KernelBenchOptions) -> Result<KernelBenchReport> {
    let plan = KernelPlan::resolve(opts)?;
    let workloads = plan
        .shapes
        .iter()
        .map(|&shape| Workload {
            shape,
            model: kernel_model(shape),
            pool: None,
        })
        .collect::<Vec<_>>();
    run_workloads(opts, &plan, &workloads, None)
}

/// A real model file for [`run_model_bench`]: its path and, optionally, a
/// JSON file of input rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelSource {
    /// The safetensors model file (as `cx model inspect` reads it).
    pub path: PathBuf,
    /// Input rows, JSON: an array of rows (arrays of the model's input
    /// width) or one row. Default: see [`model_default_inputs`].
    pub input: Option<PathBuf>,
}

/// What a report says of the model file it timed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRunInfo {
    /// The file, as given.
    pub path: String,
    /// The model's name (metadata).
    pub name: String,
    /// The model's identity (hash of the file).
    pub id: String,
    /// Layer widths, input first: `[D, H.., O]`.
    pub widths: Vec<usize>,
    /// Where the input rows came from.
    pub input: String,
    /// Distinct input rows; a batch takes them in turn, cyclically.
    pub input_rows: usize,
}

/// Synthetic requests featurised for [`model_default_inputs`].
pub const MODEL_DEFAULT_ROWS: usize = 64;

/// Seed of the synthetic requests behind [`model_default_inputs`].
pub const MODEL_INPUT_SEED: u64 = 11;

/// The default input rows of a model file: when the model was trained on
/// the feature schema it records (v1, or v2 with the store section of the
/// definitions it carries: `cx_engine::model_schema`; its schema id and
/// width match), [`MODEL_DEFAULT_ROWS`] requests of the default synthetic
/// generator (seed [`MODEL_INPUT_SEED`]) through the schema's extraction
/// (a v2 store section as for users the store does not hold) and the
/// model's recorded normalisation (`cx.feature_norm`), as the engine
/// feeds it; otherwise one row of zeros. Returns the rows (row-major),
/// their count and a description.
pub fn model_default_inputs(model: &SnnModel) -> Result<(Vec<f32>, usize, String)> {
    use cx_features::FeatureNorm;
    let width = model.inputs();
    let schema = cx_engine::model_schema::schema_of(model.meta()).ok();
    let schema = match schema {
        Some(s)
            if model.meta().feature_schema_id.as_deref() == Some(s.id()) && s.width() == width =>
        {
            s
        }
        _ => {
            return Ok((
                vec![0.0; width],
                1,
                "one row of zeros (the model is not on a feature schema this build extracts)"
                    .to_string(),
            ))
        }
    };
    let norm = match model.meta().extra.get("cx.feature_norm") {
        Some(json) => Some(
            FeatureNorm::from_json(json)
                .map_err(|e| Error::option("--model", "cx.feature_norm", e.to_string()))?,
        ),
        None => None,
    };
    let pool = crate::engine::request_pool(MODEL_DEFAULT_ROWS, MODEL_INPUT_SEED);
    let mut rows = vec![0.0; MODEL_DEFAULT_ROWS * width];
    for (ctx, row) in pool.iter().zip(rows.chunks_exact_mut(width)) {
        schema
            .extract(ctx, row)
            .map_err(|e| Error::option("--model", "feature extraction", e.to_string()))?;
        if let Some(norm) = &norm {
            norm.apply(row)
                .map_err(|e| Error::option("--model", "cx.feature_norm", e.to_string()))?;
        }
    }
    let normalised = if norm.is_some() {
        ", normalised with the model's cx.feature_norm"
    } else {
        ", not normalised (no cx.feature_norm)"
    };
    Ok((
        rows,
        MODEL_DEFAULT_ROWS,
        format!(
            "{MODEL_DEFAULT_ROWS} synthetic requests (default generator, seed {MODEL_INPUT_SEED}) through feature schema v1{normalised}"
        ),
    ))
}

/// Reads input rows of width `width` from a JSON file: an array of rows
/// or a single row.
fn read_input_rows(path: &Path, width: usize) -> Result<(Vec<f32>, usize)> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::option("--input", &shown, e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::option("--input", &shown, e.to_string()))?;
    let rows: Vec<Vec<f32>> = if value
        .as_array()
        .is_some_and(|a| a.iter().all(|v| v.is_number()))
    {
        vec![serde_json::from_value(value)
            .map_err(|e| Error::option("--input", &shown, e.to_string()))?]
    } else {
        serde_json::from_value(value).map_err(|e| {
            Error::option(
                "--input",
                &shown,
                format!("expected an array of rows or one row of numbers: {e}"),
            )
        })?
    };
    if rows.is_empty() {
        return Err(Error::option("--input", &shown, "give at least one row"));
    }
    if let Some(bad) = rows.iter().find(|r| r.len() != width) {
        return Err(Error::option(
            "--input",
            &shown,
            format!("a row has {} values; the model takes {width}", bad.len()),
        ));
    }
    let n = rows.len();
    Ok((rows.into_iter().flatten().collect(), n))
}

/// Times the scalar and SIMD kernels on a real model file with its own
/// weights, on its inputs (`source.input`, or [`model_default_inputs`]).
/// `opts.shapes` is ignored; batches, kernels and repeats apply.
pub fn run_model_bench(
    opts: &KernelBenchOptions,
    source: &ModelSource,
) -> Result<KernelBenchReport> {
    let plan = KernelPlan::resolve(opts)?;
    let shown = source.path.display().to_string();
    let model = Arc::new(
        SnnModel::load(&source.path)
            .map_err(|e| Error::option("--model", &shown, e.to_string()))?,
    );
    let (rows, n, input) = match &source.input {
        Some(path) => {
            let (rows, n) = read_input_rows(path, model.inputs())?;
            (rows, n, format!("{n} rows from {}", path.display()))
        }
        None => model_default_inputs(&model)?,
    };
    let mut widths = vec![model.inputs()];
    widths.extend(model.layers().iter().map(|l| l.outputs));
    let info = ModelRunInfo {
        path: shown,
        name: model.meta().name.clone(),
        id: model.id().to_string(),
        widths,
        input,
        input_rows: n,
    };
    let work = Workload {
        shape: shape_of(&model),
        model,
        pool: Some((rows, n)),
    };
    run_workloads(opts, &plan, std::slice::from_ref(&work), Some(info))
}

/// Rows [`export_kernel_workload`] writes per shape: [`FIRING_RATE_BATCH`].
pub const EXPORT_ROWS: usize = FIRING_RATE_BATCH;

/// Writes the benchmark network at `shape` and its inputs for a peer
/// runtime (`benches/onnx/`): `DIR/bench-DxHxO.safetensors` (the model
/// file) and `DIR/bench-DxHxO.ref.json` (`shape`, `steps`, `batch`, the
/// first [`EXPORT_ROWS`] benchmark input rows, and the scalar reference's
/// output `spike_count` and `mem_last` per row). Returns the two paths.
pub fn export_kernel_workload(shape: Shape, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let io = |p: &Path, e: String| Error::option("--export", p.display(), e);
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e.to_string()))?;
    let model = kernel_model(shape);
    let model_path = dir.join(format!("bench-{shape}.safetensors"));
    model
        .save(&model_path)
        .map_err(|e| io(&model_path, e.to_string()))?;
    let batch = EXPORT_ROWS;
    let x = kernel_inputs(shape, batch);
    let mut backend = ScalarBackend::new(model, batch)
        .map_err(|e| kernel_error("initialising", KernelBackend::Scalar, shape, batch, e))?;
    let mut out = Readout::with_capacity(batch, shape.outputs);
    backend
        .infer(&x, batch, &mut out)
        .map_err(|e| kernel_error("running", KernelBackend::Scalar, shape, batch, e))?;
    let rows = |v: &[f32], w: usize| v.chunks_exact(w).map(<[f32]>::to_vec).collect::<Vec<_>>();
    let counts: Vec<Vec<u32>> = out.spike_count[..batch * shape.outputs]
        .chunks_exact(shape.outputs)
        .map(<[u32]>::to_vec)
        .collect();
    let reference = serde_json::json!({
        "shape": [shape.inputs, shape.hidden, shape.outputs],
        "steps": KERNEL_STEPS,
        "batch": batch,
        "input_seed": KERNEL_INPUT_SEED,
        "model_seed": KERNEL_MODEL_SEED,
        "inputs": rows(&x, shape.inputs),
        "spike_count": counts,
        "mem_last": rows(&out.mem_last[..batch * shape.outputs], shape.outputs),
    });
    let ref_path = dir.join(format!("bench-{shape}.ref.json"));
    std::fs::write(&ref_path, reference.to_string()).map_err(|e| io(&ref_path, e.to_string()))?;
    Ok((model_path, ref_path))
}

/// The [`Shape`] a report gives `model`: inputs, first layer's width, outputs.
fn shape_of(model: &SnnModel) -> Shape {
    Shape {
        inputs: model.inputs(),
        hidden: model.layers()[0].outputs,
        outputs: model.outputs(),
    }
}

/// One network to time and its inputs.
struct Workload {
    shape: Shape,
    model: Arc<SnnModel>,
    /// Rows (row-major) and their count, taken cyclically; `None`: the
    /// benchmark inputs ([`kernel_inputs`]).
    pool: Option<(Vec<f32>, usize)>,
}

impl Workload {
    /// `batch` input rows.
    fn inputs(&self, batch: usize) -> Vec<f32> {
        match &self.pool {
            None => kernel_inputs(self.shape, batch),
            Some((rows, n)) => {
                let width = self.shape.inputs;
                (0..batch)
                    .flat_map(|b| {
                        let r = b % n;
                        rows[r * width..(r + 1) * width].iter().copied()
                    })
                    .collect()
            }
        }
    }
}

fn run_workloads(
    opts: &KernelBenchOptions,
    plan: &KernelPlan,
    workloads: &[Workload],
    model: Option<ModelRunInfo>,
) -> Result<KernelBenchReport> {
    let started = Instant::now();
    let machine = MachineInfo::detect();
    let firing_rates = workloads
        .iter()
        .map(|w| {
            firing_rates_of(
                w.model.clone(),
                &w.inputs(FIRING_RATE_BATCH),
                FIRING_RATE_BATCH,
            )
            .map_err(|e| {
                kernel_error(
                    "tracing",
                    KernelBackend::Simd,
                    w.shape,
                    FIRING_RATE_BATCH,
                    e,
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut cells = build_cells(plan, workloads)?;
    let fma_peak = measure_repeats(plan, &mut cells)?;
    let simd_device = cells
        .iter()
        .find(|c| c.backend == KernelBackend::Simd)
        .map(|c| c.runner.device_name().to_string());
    let rows = cells.iter().map(|c| row_of(c, &cells, &fma_peak)).collect();
    let steps = workloads.first().map_or(KERNEL_STEPS, |w| w.model.steps());
    Ok(KernelBenchReport {
        machine,
        quick: opts.quick,
        debug_build: cfg!(debug_assertions),
        steps,
        repeats: plan.repeats,
        repeat_ms: plan.repeat_time.as_millis() as u64,
        simd_device,
        fma_peak,
        firing_rates,
        model,
        rows,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

/// Calibrates every cell, then runs the repeats: in each, one FMA-peak run,
/// then every cell in turn. Returns the FMA peak over the repeats.
fn measure_repeats(plan: &KernelPlan, cells: &mut [Cell]) -> Result<FmaPeak> {
    for cell in cells.iter_mut() {
        cell.calibrate(plan.repeat_time)?;
    }
    let path = FmaPath::detect();
    let mut rates = Vec::with_capacity(plan.repeats);
    for _ in 0..plan.repeats {
        rates.push(measure_fma_rate(path, plan.fma_iterations));
        for cell in cells.iter_mut() {
            cell.measure()?;
        }
    }
    Ok(FmaPeak::from_rates(path, plan.fma_iterations, rates))
}

/// Every cell of `plan` on `workloads`, by workload, then batch, then kernel.
fn build_cells(plan: &KernelPlan, workloads: &[Workload]) -> Result<Vec<Cell>> {
    let mut cells = Vec::new();
    for work in workloads {
        let shape = work.shape;
        for &batch in &plan.batches {
            for &backend in &plan.backends {
                cells.push(Cell {
                    shape,
                    batch,
                    backend,
                    runner: AnyRunner::new(backend, work, batch)?,
                    calls: 1,
                    us_per_sample: Vec::with_capacity(plan.repeats),
                });
            }
        }
    }
    Ok(cells)
}

/// The report row of `cell`, with its speedup over the scalar cell of the
/// same shape and batch in `cells`.
fn row_of(cell: &Cell, cells: &[Cell], peak: &FmaPeak) -> KernelRow {
    let us_per_sample = Spread::of(cell.us_per_sample.iter().copied());
    let median_us = us_per_sample.median.max(1e-12);
    let madds = (cell.shape.inputs * cell.shape.hidden) as u64;
    let bound_us = madds as f64 / peak.madds_per_s.max(1.0) * 1e6;
    let scalar = cells.iter().find(|c| {
        c.backend == KernelBackend::Scalar && c.shape == cell.shape && c.batch == cell.batch
    });
    let speedup_vs_scalar = match (cell.backend, scalar) {
        (KernelBackend::Simd, Some(s)) => Some(Spread::of(
            s.us_per_sample
                .iter()
                .zip(&cell.us_per_sample)
                .map(|(scalar, simd)| scalar / simd.max(1e-12)),
        )),
        _ => None,
    };
    KernelRow {
        shape: cell.shape,
        batch: cell.batch,
        backend: cell.backend,
        calls_per_repeat: cell.calls,
        us_per_sample,
        samples_per_s: 1e6 / median_us,
        speedup_vs_scalar,
        projection_madds_per_sample: madds,
        gflop_per_s: 2.0 * madds as f64 / median_us / 1e3,
        bound_us_per_sample: bound_us,
        peak_share: bound_us / median_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_and_bad_ones_name_the_option() {
        assert_eq!(parse_shape("64x256x16").unwrap(), KERNEL_SHAPES[0]);
        for bad in ["64x256", "64x0x16", "axbxc", ""] {
            let err = parse_shape(bad).unwrap_err().to_string();
            assert!(err.starts_with("--shapes"), "{err}");
        }
        assert_eq!(
            "simd".parse::<KernelBackend>().unwrap(),
            KernelBackend::Simd
        );
        assert!("gpu".parse::<KernelBackend>().is_err());
    }

    #[test]
    fn plans_fill_defaults_and_refuse_bad_values() {
        let full = KernelPlan::resolve(&KernelBenchOptions::default()).unwrap();
        assert_eq!(full.batches, KERNEL_BATCHES);
        assert_eq!(full.shapes, KERNEL_SHAPES);
        let quick = KernelPlan::resolve(&KernelBenchOptions::quick()).unwrap();
        assert!(quick.repeat_time < full.repeat_time && quick.batches.len() < 4);
        let bad = |o: KernelBenchOptions| KernelPlan::resolve(&o).unwrap_err().to_string();
        let opts = |f: fn(&mut KernelBenchOptions)| {
            let mut o = KernelBenchOptions::quick();
            f(&mut o);
            o
        };
        assert!(bad(opts(|o| o.batches = Some(vec![0]))).starts_with("--batches"));
        assert!(bad(opts(|o| o.batches = Some(vec![]))).starts_with("--batches"));
        assert!(bad(opts(|o| o.repeats = Some(0))).starts_with("--repeats"));
        assert!(bad(opts(|o| o.backends = Some(vec![]))).starts_with("--backends"));
        assert!(bad(opts(|o| o.repeat_ms = Some(0))).starts_with("--repeat-ms"));
    }

    #[test]
    fn calls_fill_the_target() {
        assert_eq!(calls_for(1.0, 0.3), 4);
        assert_eq!(calls_for(0.1, 5.0), 1);
        assert_eq!(digits_for(588.0), 1);
        assert_eq!(digits_for(1.86), 3);
    }
}
