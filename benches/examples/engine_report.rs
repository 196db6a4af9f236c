//! The engine in process, end to end: decisions per second and tick latency
//! (p50, p99, p99.9) at batch sizes 1 to 64 on the bundled default model
//! with the SIMD kernel, against the naive path (one request per tick, no
//! batching, the scalar kernel) measured in the same run, printed as
//! markdown.
//!
//! Run: `cargo run --release -p cx-benches --example engine_report
//! [-- --repeats N --seconds S]` (defaults: 9 repeats of at least 0.5 s per
//! setup). The setups are interleaved within each repeat, so host noise
//! falls on all of them alike; the table gives the median over repeats and
//! the range in brackets.
//!
//! What is timed: for each tick, `batch` calls to `submit` (each moving in a
//! request cloned from the pool *before* the timer started), one `tick`,
//! and `poll` until every decision is out. Dropping the requests inside the
//! engine is timed; cloning them out of the pool is not (it is measured and
//! reported on its own). The decision cache is off, so every request runs
//! the model, except in the one setup labelled as having it on.

use anyhow::{bail, Context, Result};
use cx_benches::engine::{decide_chunk, request_pool, Run, Setup, BATCHES, POOL_SIZE, T0_NS};
use cx_engine::components::features::RequestContext;
use cx_engine::components::{Generator, SynthConfig};
use cx_engine::{Engine, EngineStats};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Requests cloned (untimed) and then decided (timed) per chunk.
const CHUNK: usize = 1024;
/// Requests decided before timing starts, on each fresh engine.
const WARM_UP: usize = 512;
/// The tick-latency target at batch 16, µs.
const P99_TARGET_US: f64 = 100.0;
/// The throughput target, decisions per second on one core.
const THROUGHPUT_TARGET: f64 = 250_000.0;
/// Share of requests in the cache-on setup that repeat a recent request.
const REPEAT_SHARE: f64 = 0.25;
/// How many recent requests the cache-on setup repeats from.
const REPEAT_WINDOW: usize = 1024;
/// Decision-cache entries in the cache-on setup (the config default).
const CACHE_CAPACITY: usize = 65_536;

struct Options {
    repeats: usize,
    min_run: Duration,
}

fn options() -> Result<Options> {
    let mut options = Options {
        repeats: 9,
        min_run: Duration::from_millis(500),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--repeats" => options.repeats = value.parse().context("--repeats")?,
            "--seconds" => {
                options.min_run = Duration::from_secs_f64(value.parse().context("--seconds")?)
            }
            _ => bail!("unknown argument {arg}; expected --repeats N or --seconds S"),
        }
    }
    if options.repeats == 0 {
        bail!("--repeats must be at least 1");
    }
    Ok(options)
}

/// Where a setup's requests come from.
enum Source {
    /// Cycling through the pool of distinct requests.
    Pool {
        pool: Vec<RequestContext>,
        next: usize,
    },
    /// Fresh generator rows, a share of them replaced by a repeat of one of
    /// the last `REPEAT_WINDOW` requests.
    Repeating {
        generator: Box<Generator>,
        recent: Vec<RequestContext>,
        rng: Box<ChaCha8Rng>,
        written: usize,
    },
}

impl Source {
    fn pool(pool: &[RequestContext]) -> Self {
        Self::Pool {
            pool: pool.to_vec(),
            next: 0,
        }
    }

    fn repeating(seed: u64) -> Result<Self> {
        Ok(Self::Repeating {
            generator: Box::new(Generator::new(SynthConfig::default(), seed)?),
            recent: Vec::with_capacity(REPEAT_WINDOW),
            rng: Box::new(ChaCha8Rng::seed_from_u64(seed)),
            written: 0,
        })
    }

    /// The next `n` requests, owned.
    fn chunk(&mut self, n: usize) -> Vec<RequestContext> {
        match self {
            Self::Pool { pool, next } => (0..n)
                .map(|_| {
                    let ctx = pool[*next].clone();
                    *next = (*next + 1) % pool.len();
                    ctx
                })
                .collect(),
            Self::Repeating {
                generator,
                recent,
                rng,
                written,
            } => (0..n)
                .map(|_| {
                    if !recent.is_empty() && rng.random_bool(REPEAT_SHARE) {
                        return recent[rng.random_range(0..recent.len())].clone();
                    }
                    let ctx = RequestContext {
                        timestamp: 0,
                        ..generator.next_row().to_context()
                    };
                    if recent.len() < REPEAT_WINDOW {
                        recent.push(ctx.clone());
                    } else {
                        recent[*written % REPEAT_WINDOW] = ctx.clone();
                    }
                    *written += 1;
                    ctx
                })
                .collect(),
        }
    }
}

/// One setup's measurement in one repeat.
struct Sample {
    run: Run,
    /// Cache hits / lookups during the timed part.
    hit_rate: f64,
    stats: EngineStats,
}

fn measure(setup: &Setup, source: &mut Source, min_run: Duration) -> Result<Sample> {
    let mut engine: Engine = setup.build(1)?;
    let origin = Instant::now();
    let mut warm = Run::default();
    decide_chunk(
        &mut engine,
        source.chunk(WARM_UP),
        setup.batch_max,
        origin,
        &mut warm,
    );
    let before = engine.stats().cache;
    let mut run = Run::default();
    while run.elapsed < min_run {
        let chunk = source.chunk(CHUNK);
        decide_chunk(&mut engine, chunk, setup.batch_max, origin, &mut run);
    }
    let stats = engine.stats();
    let hits = stats.cache.hits - before.hits;
    let misses = stats.cache.misses - before.misses;
    let expired = stats.cache.expired - before.expired;
    let lookups = hits + misses + expired;
    Ok(Sample {
        run,
        hit_rate: hits as f64 / lookups.max(1) as f64,
        stats,
    })
}

/// Median and range of `values`.
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

fn spread(values: impl IntoIterator<Item = f64>) -> Spread {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Spread {
        median,
        low: v[0],
        high: v[n - 1],
    }
}

fn kilo(x: f64) -> String {
    format!("{:.0}k", x / 1000.0)
}

fn cpu_model() -> String {
    std::process::Command::new("lscpu")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown (no lscpu)".into())
}

fn rustc_version() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `/proc/loadavg`'s first three fields, if readable.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// ns per clone of a pool request (the cost the timed loop leaves out).
fn clone_ns(pool: &[RequestContext]) -> f64 {
    let start = Instant::now();
    let copies: Vec<RequestContext> = pool.to_vec();
    let ns = start.elapsed().as_nanos() as f64 / pool.len() as f64;
    drop(std::hint::black_box(copies));
    ns
}

fn main() -> Result<()> {
    let options = options()?;
    let pool = request_pool(POOL_SIZE, 1);
    let model = cx_engine::default_model()?;
    let shape: Vec<String> = std::iter::once(model.inputs())
        .chain(model.layers().iter().map(|l| l.outputs))
        .map(|n| n.to_string())
        .collect();

    let mut setups: Vec<(Setup, &str)> =
        BATCHES.iter().map(|&b| (Setup::simd(b), "SIMD")).collect();
    setups.push((Setup::naive(), "naive: scalar, 1 per tick"));
    let cached = Setup::simd(16).with_cache(CACHE_CAPACITY);
    setups.push((cached, "SIMD, cache on"));

    let load_before = load_average();
    let mut samples: Vec<Vec<Sample>> = setups.iter().map(|_| Vec::new()).collect();
    let mut clones = Vec::new();
    let started = Instant::now();
    for repeat in 0..options.repeats {
        clones.push(clone_ns(&pool));
        for (i, (setup, _)) in setups.iter().enumerate() {
            let mut source = if setup.cache_capacity == 0 {
                Source::pool(&pool)
            } else {
                Source::repeating(100 + repeat as u64)?
            };
            let sample = measure(setup, &mut source, options.min_run)?;
            eprintln!(
                "  {:<28} {:>7.0}/s  tick p50 {:>7.1} µs  p99 {:>7.1} µs",
                setup.label(),
                sample.run.decisions_per_s(),
                sample.run.tick_us(0.5),
                sample.run.tick_us(0.99)
            );
            samples[i].push(sample);
        }
        eprintln!(
            "repeat {}/{} done ({:.0} s)",
            repeat + 1,
            options.repeats,
            started.elapsed().as_secs_f64()
        );
    }

    let throughput = |i: usize| spread(samples[i].iter().map(|s| s.run.decisions_per_s()));
    let tick = |i: usize, q: f64| spread(samples[i].iter().map(|s| s.run.tick_us(q)));
    let naive = setups.len() - 2;
    let simd: Vec<usize> = (0..BATCHES.len()).collect();

    println!("## Engine: throughput and tick latency\n");
    println!(
        "Command: `cargo run --release -p cx-benches --example engine_report -- --repeats {} --seconds {}`\n",
        options.repeats,
        options.min_run.as_secs_f64()
    );
    println!(
        "Machine: {}, {} logical CPUs available, {}. One thread.\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        rustc_version()
    );
    println!(
        "Load average (1, 5, 15 min) before: {load_before}; after: {}.\n",
        load_average()
    );
    println!(
        "Model: bundled default, {} (inputs, layer widths), T = {}. Catalog: bundled, {} offers.\n",
        shape.join("x"),
        model.steps(),
        model.outputs()
    );
    println!(
        "Each cell: median of {} repeats (range in brackets); each repeat runs every setup for at least {:.1} s after a {WARM_UP}-request warm-up.\n",
        options.repeats,
        options.min_run.as_secs_f64()
    );
    println!("| setup | batch | decisions/s | µs per decision | time in tick | tick p50 µs | tick p99 µs | tick p99.9 µs |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, (setup, label)) in setups.iter().enumerate() {
        let t = throughput(i);
        let share = spread(samples[i].iter().map(|s| s.run.tick_share()));
        let (p50, p99, p999) = (tick(i, 0.5), tick(i, 0.99), tick(i, 0.999));
        let label = if setup.cache_capacity > 0 {
            let hit = spread(samples[i].iter().map(|s| s.hit_rate));
            format!(
                "{label} ({:.0}% repeats, {:.0}% hits)",
                REPEAT_SHARE * 100.0,
                hit.median * 100.0
            )
        } else {
            (*label).to_string()
        };
        println!(
            "| {label} | {} | {} [{}-{}] | {:.2} | {:.0}% | {:.1} | {:.1} [{:.1}-{:.1}] | {:.1} |",
            setup.batch_max,
            kilo(t.median),
            kilo(t.low),
            kilo(t.high),
            1e6 / t.median,
            share.median * 100.0,
            p50.median,
            p99.median,
            p99.low,
            p99.high,
            p999.median,
        );
    }

    let best = *simd
        .iter()
        .max_by(|&&a, &&b| throughput(a).median.total_cmp(&throughput(b).median))
        .expect("batches");
    let best_in_target = simd
        .iter()
        .copied()
        .filter(|&i| tick(i, 0.99).median <= P99_TARGET_US)
        .max_by(|&a, &b| throughput(a).median.total_cmp(&throughput(b).median));
    let ratio = |a: usize, b: usize| {
        spread(
            samples[a]
                .iter()
                .zip(&samples[b])
                .map(|(x, y)| x.run.decisions_per_s() / y.run.decisions_per_s()),
        )
    };
    let show = |s: Spread| format!("{:.1}x [{:.1}-{:.1}]", s.median, s.low, s.high);
    println!();
    println!(
        "- Best SIMD batch by throughput: {} ({} decisions/s).",
        BATCHES[best],
        kilo(throughput(best).median)
    );
    match best_in_target {
        Some(i) => println!(
            "- Best SIMD batch with median p99 tick <= {P99_TARGET_US} µs: {} ({} decisions/s, p99 {:.1} µs).",
            BATCHES[i],
            kilo(throughput(i).median),
            tick(i, 0.99).median
        ),
        None => println!("- No SIMD batch has median p99 tick <= {P99_TARGET_US} µs."),
    }
    println!(
        "- Ratio to the naive path, same repeat, median [range]: best batch ({}) {}; SIMD batch 1 (kernel alone) {}; best batch / SIMD batch 1 (batching alone) {}.",
        BATCHES[best],
        show(ratio(best, naive)),
        show(ratio(0, naive)),
        show(ratio(best, 0)),
    );
    let b16 = BATCHES.iter().position(|&b| b == 16).expect("batch 16");
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "- Target >= {} decisions/s: batch 16 {} ({}), best batch {} ({}).",
        kilo(THROUGHPUT_TARGET),
        kilo(throughput(b16).median),
        met(throughput(b16).median >= THROUGHPUT_TARGET),
        kilo(throughput(best).median),
        met(throughput(best).median >= THROUGHPUT_TARGET)
    );
    println!(
        "- Target p99 tick <= {P99_TARGET_US} µs at batch 16: {:.1} µs ({}).",
        tick(b16, 0.99).median,
        met(tick(b16, 0.99).median <= P99_TARGET_US)
    );
    let c = spread(clones.iter().copied());
    println!(
        "- Not timed above: cloning a pool request, {:.0} ns [{:.0}-{:.0}] each.",
        c.median, c.low, c.high
    );

    // Where a tick's time goes, per stage (the engine's own per-request
    // stage latencies: each stage runs from its system's start to the next
    // stage's start, so at batch B it is the system's time for all B rows).
    let stages = [
        "ingest", "features", "cache", "infer", "validate", "decide", "respond",
    ];
    println!();
    println!("Stage times per tick, µs, p50 (engine `stats()` of the last repeat):\n");
    println!("| setup | batch | {} | tick |", stages.join(" | "));
    println!("| --- | ---: |{}", " ---: |".repeat(stages.len() + 1));
    for (i, (setup, label)) in setups.iter().enumerate() {
        let stats = &samples[i].last().expect("a repeat").stats;
        let p50: BTreeMap<&str, f64> = stats
            .latency
            .iter()
            .map(|l| (l.stage, l.p50_ns as f64 / 1000.0))
            .collect();
        let cells: Vec<String> = stages
            .iter()
            .chain(std::iter::once(&"tick"))
            .map(|s| format!("{:.2}", p50.get(s).copied().unwrap_or(f64::NAN)))
            .collect();
        println!("| {label} | {} | {} |", setup.batch_max, cells.join(" | "));
    }
    eprintln!(
        "total {:.0} s; host time origin {T0_NS}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
