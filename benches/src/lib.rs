//! Helpers shared by the benchmarks: reproducible models and inputs at the
//! benchmark shapes, in-process engine workloads ([`engine`]), and the
//! open-loop load generator against a running server ([`load`], behind
//! the `cx-bench load` command), with its error type ([`Error`]). The
//! kernel and engine benchmark summaries behind `cx-bench kernel` and
//! `cx-bench engine` are [`kernel_bench`] and [`engine_bench`]; they record
//! the machine ([`machine`]), the FMA peak ([`fma_peak`]) and allocations
//! ([`alloc_count`]). [`all`] runs every benchmark in one process, servers
//! included, and writes a summary of where the targets stand (`cx-bench
//! all`).
//!
//! The models here are *benchmark workloads*, not trained models: their
//! weights are drawn the way a freshly initialised snnTorch network's are
//! (torch's `Linear` init, scaled like `shared/data/snn/snntorch_network_trace.py`
//! so that the hidden layer fires at a realistic 10-35% rate). Nothing they
//! output is ever presented as a prediction.

pub mod all;
pub mod alloc_count;
pub mod engine_bench;
pub mod error;
pub mod feature_fill;
pub mod fma_peak;
pub mod kernel_bench;
pub mod machine;
pub mod spread;
pub mod stall;

pub use cx_load as load;
pub use error::{Error, Result};

use cx_model::{ModelMeta, SnnModel};
use cx_train::init_layer;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A benchmark shape: inputs, hidden neurons, outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Input features `D`.
    pub inputs: usize,
    /// Hidden neurons `H`.
    pub hidden: usize,
    /// Output columns `O`.
    pub outputs: usize,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.inputs, self.hidden, self.outputs)
    }
}

/// The two shapes the kernel benchmarks report.
pub const KERNEL_SHAPES: [Shape; 2] = [
    Shape {
        inputs: 64,
        hidden: 256,
        outputs: 16,
    },
    Shape {
        inputs: 256,
        hidden: 512,
        outputs: 64,
    },
];

/// A two-layer `Linear -> Leaky` network at `shape` with `steps` time steps,
/// initialised like the snnTorch reference script (fc1 x3, fc2 x4, beta 0.9
/// and 0.8, threshold 1, reset by subtraction).
pub fn snntorch_style_model(shape: Shape, steps: u32, seed: u64) -> SnnModel {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let layers = vec![
        init_layer(&mut rng, shape.inputs, shape.hidden, 3.0, 0.9, 1.0),
        init_layer(&mut rng, shape.hidden, shape.outputs, 4.0, 0.8, 1.0),
    ];
    let mut meta = ModelMeta::defaults(shape.outputs);
    meta.name = format!("bench-{shape}");
    SnnModel::new(layers, steps, meta).expect("benchmark model is valid")
}

/// `batch` dense input rows, uniform in `[-0.5, 1.5)` like the reference script.
pub fn dense_inputs(inputs: usize, batch: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..inputs * batch)
        .map(|_| rng.random_range(-0.5..1.5))
        .collect()
}

/// The bid requests of the HTTP load's mix (the prebid sample committed
/// with `cx-wire`'s fixtures), each marked `test`, so that deciding it
/// again and again spends no budget: what the `openrtb` and `wire`
/// benches decide.
pub fn prebid_sample_requests() -> Vec<serde_json::Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../components/wire/tests/fixtures/openrtb/prebid_sample.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("the prebid sample mix");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut wrapper: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let mut request = wrapper["request"].take();
            request["test"] = 1.into();
            request
        })
        .collect()
}

/// In-process engine workloads, shared by the `engine` criterion bench and
/// the `engine_report` example: a pool of synthetic requests, engines set up
/// the ways the benchmarks compare, and a timed submit-tick-poll loop.
pub mod engine {
    use cx_datasets::{Generator, SynthConfig};
    use cx_engine::backends::BackendKind;
    use cx_engine::{Engine, EngineConfig};
    use cx_features::RequestContext;
    use hdrhistogram::Histogram;
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    /// Host time of the first tick: 2026-01-01 00:00 UTC, ns.
    pub const T0_NS: u64 = 1_767_225_600_000_000_000;

    /// Distinct synthetic requests in the benchmark pool.
    pub const POOL_SIZE: usize = 4096;

    /// The batch sizes (`batch.batch_max`, and requests per tick) measured.
    pub const BATCHES: [usize; 6] = [1, 4, 8, 16, 32, 64];

    /// `n` synthetic requests from the default generator, with timestamp 0
    /// so the engine stamps each with its tick's time.
    pub fn request_pool(n: usize, seed: u64) -> Vec<RequestContext> {
        let mut generator =
            Generator::new(SynthConfig::default(), seed).expect("default generator config");
        (0..n)
            .map(|_| RequestContext {
                timestamp: 0,
                ..generator.next_row().to_context()
            })
            .collect()
    }

    /// How an engine under test is set up: always the bundled default model
    /// and catalog, the default config otherwise.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Setup {
        /// `batch.batch_max`; the benchmarks also submit this many requests per tick.
        pub batch_max: usize,
        /// The scoring backend.
        pub backend: BackendKind,
        /// `cache.capacity`; 0 turns the decision cache off.
        pub cache_capacity: usize,
    }

    impl Setup {
        /// The SIMD kernel at `batch_max`, cache off: every request runs the model.
        pub fn simd(batch_max: usize) -> Self {
            Self {
                batch_max,
                backend: BackendKind::Simd,
                cache_capacity: 0,
            }
        }

        /// The seed design's shape: one request per tick, no batching, the
        /// scalar kernel, cache off.
        pub fn naive() -> Self {
            Self {
                batch_max: 1,
                backend: BackendKind::Scalar,
                cache_capacity: 0,
            }
        }

        /// This setup with the decision cache at `capacity` entries.
        pub fn with_cache(self, capacity: usize) -> Self {
            Self {
                cache_capacity: capacity,
                ..self
            }
        }

        /// The engine config this setup runs with.
        pub fn config(&self) -> EngineConfig {
            let mut config = EngineConfig::default();
            config.batch.batch_max = self.batch_max;
            config.cache.capacity = self.cache_capacity;
            config
        }

        /// A fresh engine set up this way.
        pub fn build(&self, seed: u64) -> cx_engine::Result<Engine> {
            Engine::builder()
                .config(self.config())
                .backend(self.backend)
                .seed(seed)
                .build()
        }

        /// A short label: backend, batch, cache.
        pub fn label(&self) -> String {
            let cache = if self.cache_capacity == 0 {
                "cache off".to_string()
            } else {
                format!("cache {}", self.cache_capacity)
            };
            format!("{} batch {} {cache}", self.backend, self.batch_max)
        }
    }

    /// An empty histogram of tick wall times, ns (1 ns to 1 s, 3 significant digits).
    pub fn tick_histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 1_000_000_000, 3).expect("constant bounds are valid")
    }

    /// What a timed run measured.
    #[derive(Clone, Debug)]
    pub struct Run {
        /// Requests submitted and polled.
        pub requests: u64,
        /// Wall time from each chunk's first submit to its last poll, summed.
        pub elapsed: Duration,
        /// Wall time of each `tick` call, ns.
        pub ticks: Histogram<u64>,
        /// Wall time inside `tick` calls, summed (the rest of `elapsed` is
        /// `submit`, `poll` and the loop).
        pub in_tick: Duration,
    }

    impl Default for Run {
        fn default() -> Self {
            Self {
                requests: 0,
                elapsed: Duration::ZERO,
                ticks: tick_histogram(),
                in_tick: Duration::ZERO,
            }
        }
    }

    impl Run {
        /// Decisions per second over the timed wall time.
        pub fn decisions_per_s(&self) -> f64 {
            self.requests as f64 / self.elapsed.as_secs_f64().max(1e-12)
        }

        /// The share of the timed wall time spent inside `tick`.
        pub fn tick_share(&self) -> f64 {
            self.in_tick.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-12)
        }

        /// The tick wall time at quantile `q`, µs.
        pub fn tick_us(&self, q: f64) -> f64 {
            self.ticks.value_at_quantile(q) as f64 / 1000.0
        }
    }

    /// Submits `batch` (moved in), ticks once at `now_ns` and polls every
    /// decision. Returns the decisions polled.
    pub fn decide_batch(
        engine: &mut Engine,
        batch: impl IntoIterator<Item = RequestContext>,
        now_ns: u64,
    ) -> usize {
        for ctx in batch {
            engine.submit(ctx).expect("in-flight room");
        }
        engine.tick(now_ns);
        poll_all(engine)
    }

    /// Polls until nothing is in flight (ticking again only if a tick left
    /// requests undecided, which the batch policy does not do once the
    /// ingress is drained). Returns the decisions polled.
    fn poll_all(engine: &mut Engine) -> usize {
        let mut polled = 0;
        for _ in 0..3 {
            while let Some(decision) = engine.poll() {
                black_box(decision);
                polled += 1;
            }
            if engine.in_flight() == 0 {
                return polled;
            }
            engine.run_until_decided(T0_NS);
        }
        panic!("{} requests left undecided", engine.in_flight());
    }

    /// Decides `chunk`, `batch` requests per tick: each tick submits the
    /// next `batch` requests (moved in, not cloned), calls `tick` at host
    /// time `T0_NS` plus the time since `origin`, and polls every decision.
    /// Adds the wall time from the chunk's first submit to its last poll to
    /// `run.elapsed`, and each `tick` call's wall time to `run.ticks`.
    pub fn decide_chunk(
        engine: &mut Engine,
        chunk: Vec<RequestContext>,
        batch: usize,
        origin: Instant,
        run: &mut Run,
    ) {
        let n = chunk.len() as u64;
        let batch = batch.max(1);
        let start = Instant::now();
        let mut requests = chunk.into_iter();
        loop {
            let mut submitted = 0;
            for ctx in requests.by_ref().take(batch) {
                engine.submit(ctx).expect("in-flight room");
                submitted += 1;
            }
            if submitted == 0 {
                break;
            }
            let t0 = Instant::now();
            let now_ns = T0_NS + (t0 - origin).as_nanos() as u64;
            engine.tick(now_ns);
            let took = t0.elapsed();
            run.in_tick += took;
            run.ticks.saturating_record((took.as_nanos() as u64).max(1));
            poll_all(engine);
        }
        run.elapsed += start.elapsed();
        run.requests += n;
    }
}
