//! One load run: connects, starts a receiver thread per connection, keeps
//! the schedule on the calling thread, and turns what was measured into a
//! [`LoadReport`] ([`run`], [`run_with_pool`]).
//!
//! Per connection the sender and its receiver share three atomics (sent,
//! answered, done) and nothing else: the receiver works out each answer's
//! intended time from its request id (see the [parent docs](super)), and
//! hands its samples to the one shared tally in batches.
//!
//! Both wires run through the same code: only connecting, queueing a
//! request and reading an answer differ ([`crate::wire`]). Over HTTP the
//! request id is the request's number on its connection (answers come in
//! request order), and there is no hello.

use super::config::{LoadConfig, Wire, HTTP_DEPTH_MAX};
use super::http::{self, HttpRequests};
use super::pool::RequestPool;
use super::report::{round3, LoadReport, Percentiles};
use super::schedule::{Clock, MonotonicClock, Pacer, Schedule};
use super::tally::{Outcome, Sample, SharedTally, Tally, SAMPLE_BATCH};
use super::wire::{Event, Expected, Reader, Writer};
use crate::error::{Error, Result};
use crate::{new_histogram, LATENCY_NS_MAX};
use cx_wire::client::Client;
use cx_wire::protocol::OpenRtbFlags;
use hdrhistogram::Histogram;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::Duration;

/// Limit on connecting, on the hello, and on each write.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a receiver blocks in `recv` before it checks whether to stop.
const RECV_POLL: Duration = Duration::from_millis(20);

/// A gap to the next due request longer than this is slept through;
/// shorter ones are waited out by yielding (sleeps overshoot by tens of µs).
const SLEEP_MIN_NS: u64 = 300_000;

/// How much earlier than the due time a sleep ends.
const SLEEP_MARGIN_NS: u64 = 150_000;

/// Stack of a receiver thread (it holds a read buffer on the heap only).
const RECEIVER_STACK_BYTES: usize = 256 << 10;

/// What the sender and the receiver of one connection share.
#[derive(Debug, Default)]
struct ConnShared {
    /// Requests queued on the connection (the sender's count).
    sent: AtomicU64,
    /// Requests answered (the receiver's count).
    answered: AtomicU64,
    /// Set once the sender will queue nothing more.
    done: AtomicBool,
}

impl ConnShared {
    fn in_flight(&self) -> u64 {
        let answered = self.answered.load(Ordering::Acquire);
        self.sent.load(Ordering::Relaxed).saturating_sub(answered)
    }

    /// Whether everything the sender will ever send was answered.
    fn is_finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
            && self.answered.load(Ordering::Acquire) >= self.sent.load(Ordering::Acquire)
    }
}

/// What every thread of a run reads.
struct RunCtx<'a> {
    schedule: Schedule,
    deadline_ns: u64,
    pool: &'a RequestPool,
    /// The flags of every score request (`simulate`, `bid_response`).
    flags: OpenRtbFlags,
    /// What answers a request.
    expected: Expected,
    shared: Vec<ConnShared>,
    tally: SharedTally,
    /// Set when the run must end at once (a thread could not start).
    stop: AtomicBool,
    /// The clock, set once every receiver runs.
    start: OnceLock<MonotonicClock>,
}

/// One connection as the sender drives it.
struct SendConn<'a> {
    writer: Writer<'a>,
    pacer: Pacer,
    warmup_k: u64,
    /// The request id of the connection's first request (its `k`-th has
    /// `first_id + k`).
    first_id: u64,
    error: Option<String>,
}

/// One connection's halves, ready for the load (after the hello).
struct Link<'a> {
    writer: Writer<'a>,
    reader: Reader,
    first_id: u64,
}

/// Runs the load `config` describes: checks it, builds the request pool,
/// then [`run_with_pool`].
pub fn run(config: &LoadConfig) -> Result<LoadReport> {
    config.validate()?;
    let pool = RequestPool::build(&config.mix, config.seed, config.pool)?;
    run_with_pool(config, &pool)
}

/// Runs the load `config` describes with requests from `pool` (built once
/// for many runs, as the sweep does). Fails before the load starts if an
/// option is bad or a connection cannot be set up; once the load runs,
/// broken connections are reported in [`LoadReport::connection_errors`].
pub fn run_with_pool(config: &LoadConfig, pool: &RequestPool) -> Result<LoadReport> {
    config.validate()?;
    if pool.is_empty() {
        return Err(Error::Run("the request pool is empty".into()));
    }
    // Over HTTP, every request's bytes, before anything connects.
    let http = match config.wire {
        Wire::Http => Some(HttpRequests::build(pool, &config.addr)?),
        Wire::Binary => None,
    };
    let (links, depth) = connect_all(config, pool.is_echo(), http.as_ref())?;
    let schedule = Schedule::new(
        config.rate_per_s,
        config.connections,
        config.warmup_ns(),
        config.window_ns(),
    );
    let ctx = RunCtx {
        schedule,
        deadline_ns: schedule.end_ns().saturating_add(config.drain_ns()),
        pool,
        flags: OpenRtbFlags {
            simulate: config.simulate,
            bid_response: config.bid_response,
            decision_ids: false,
        },
        expected: Expected::of(pool, config),
        shared: (0..links.len()).map(|_| ConnShared::default()).collect(),
        tally: SharedTally::default(),
        stop: AtomicBool::new(false),
        start: OnceLock::new(),
    };
    let outcome = std::thread::scope(|scope| drive(scope, &ctx, links, depth, config.progress))?;
    Ok(report(config, &ctx, depth, outcome))
}

/// What the threads of a run leave behind.
struct Driven {
    sent: Vec<u64>,
    send_lag: Histogram<u64>,
    connection_errors: Vec<String>,
    elapsed_ns: u64,
    tally: Tally,
}

/// Connects `config.connections` clients, says hello on each (not to an
/// echo server, which would only echo it), and splits them; returns them
/// with the depth capped by the server's limit. Over HTTP (`http`: the
/// requests), plain connections with the depth capped by
/// [`HTTP_DEPTH_MAX`].
fn connect_all<'h>(
    config: &LoadConfig,
    echo: bool,
    http: Option<&'h HttpRequests>,
) -> Result<(Vec<Link<'h>>, usize)> {
    let mut links = Vec::with_capacity(config.connections);
    if let Some(requests) = http {
        for _ in 0..config.connections {
            let (writer, reader) =
                http::connect(&config.addr, requests, CONNECT_TIMEOUT, RECV_POLL)?;
            links.push(Link {
                writer: Writer::Http(writer),
                reader: Reader::Http(reader),
                first_id: 0,
            });
        }
        return Ok((links, config.depth.min(HTTP_DEPTH_MAX)));
    }
    let mut depth = config.depth;
    let server_error = |what: &str, source| Error::Server {
        addr: config.addr.clone(),
        what: what.into(),
        source: Box::new(source),
    };
    for _ in 0..config.connections {
        let mut client = Client::connect_timeout(config.addr.as_str(), CONNECT_TIMEOUT)
            .map_err(|e| server_error("cannot connect", e))?;
        if !echo {
            let ack = client
                .hello()
                .map_err(|e| server_error("the hello failed", e))?;
            depth = depth.min(ack.in_flight_max as usize).max(1);
        }
        let first_id = client.next_request_id();
        let (writer, mut reader) = client.split();
        reader
            .set_read_timeout(Some(RECV_POLL))
            .map_err(|e| server_error("cannot set the read timeout", e))?;
        links.push(Link {
            writer: Writer::Binary(writer),
            reader: Reader::Binary(reader),
            first_id,
        });
    }
    Ok((links, depth))
}

/// Starts the receivers, sends the schedule on this thread, and collects
/// everything once the receivers are done.
fn drive<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    ctx: &'env RunCtx<'env>,
    links: Vec<Link<'env>>,
    depth: usize,
    progress: bool,
) -> Result<Driven> {
    let mut conns = Vec::with_capacity(links.len());
    let mut handles = Vec::with_capacity(links.len());
    let mut spawn_error = None;
    for (conn, link) in links.into_iter().enumerate() {
        conns.push(SendConn {
            writer: link.writer,
            pacer: Pacer::new(&ctx.schedule, conn, depth),
            warmup_k: ctx.schedule.warmup_count(conn),
            first_id: link.first_id,
            error: None,
        });
        match spawn_receiver(scope, ctx, conn, link.reader, link.first_id) {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                spawn_error = Some(e);
                ctx.stop.store(true, Ordering::Release);
                break;
            }
        }
    }
    let clock = *ctx.start.get_or_init(MonotonicClock::start);
    if let Some(e) = spawn_error {
        // The spawn failure is the error to report; the receivers that did
        // start saw `stop` and end at once.
        let _ = join_all(handles);
        return Err(Error::Run(format!("cannot start a receiver thread: {e}")));
    }
    let mut send_lag = new_histogram();
    let mut progress = Progress::new(progress, ctx);
    send_all(ctx, &mut conns, &clock, &mut send_lag, &mut progress);
    let receiver_errors = join_all(handles)?;
    progress.finish(clock.now_ns());
    Ok(Driven {
        sent: ctx
            .shared
            .iter()
            .map(|s| s.sent.load(Ordering::Acquire))
            .collect(),
        send_lag,
        connection_errors: connection_errors(&conns, receiver_errors),
        elapsed_ns: clock.now_ns(),
        tally: ctx.tally.take(),
    })
}

/// One line per broken connection: the receiver's error (it sees why the
/// connection broke), else the sender's.
fn connection_errors(conns: &[SendConn<'_>], receiver_errors: Vec<Option<String>>) -> Vec<String> {
    conns
        .iter()
        .zip(receiver_errors.into_iter().chain(std::iter::repeat(None)))
        .enumerate()
        .filter_map(|(conn, (send, recv))| {
            let error = recv.or_else(|| send.error.clone())?;
            Some(format!("connection {conn}: {error}"))
        })
        .collect()
}

fn spawn_receiver<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    ctx: &'env RunCtx<'env>,
    conn: usize,
    reader: Reader,
    first_id: u64,
) -> std::io::Result<ScopedJoinHandle<'scope, Option<String>>> {
    std::thread::Builder::new()
        .name(format!("cx-bench-recv-{conn}"))
        .stack_size(RECEIVER_STACK_BYTES)
        .spawn_scoped(scope, move || {
            let clock = *ctx.start.wait();
            Receiver::new(ctx, conn, first_id).run(reader, &clock)
        })
}

/// Waits for every receiver; returns each one's connection error.
fn join_all(handles: Vec<ScopedJoinHandle<'_, Option<String>>>) -> Result<Vec<Option<String>>> {
    let mut errors = Vec::with_capacity(handles.len());
    for handle in handles {
        let error = handle
            .join()
            .map_err(|_| Error::Run("a receiver thread panicked".into()))?;
        errors.push(error);
    }
    Ok(errors)
}

// ---------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------

/// Keeps the schedule on every connection until everything went out or
/// the deadline passed; then tells the receivers nothing more will come.
fn send_all(
    ctx: &RunCtx<'_>,
    conns: &mut [SendConn<'_>],
    clock: &impl Clock,
    send_lag: &mut Histogram<u64>,
    progress: &mut Progress,
) {
    loop {
        let now_ns = clock.now_ns();
        if now_ns >= ctx.deadline_ns || ctx.stop.load(Ordering::Acquire) {
            break;
        }
        let mut wake_ns = None::<u64>;
        for conn in conns.iter_mut() {
            if let Some(next) = send_due(ctx, conn, now_ns, send_lag) {
                wake_ns = Some(wake_ns.map_or(next, |w| w.min(next)));
            }
        }
        let Some(wake_ns) = wake_ns else {
            break;
        };
        progress.tick(now_ns, ctx);
        pace(clock, wake_ns.min(ctx.deadline_ns));
    }
    for shared in &ctx.shared {
        shared.done.store(true, Ordering::Release);
    }
}

/// Sends what connection `conn` may send at `now_ns` in one write;
/// returns when it next has something to do (`None`: nothing more, or it
/// broke).
fn send_due(
    ctx: &RunCtx<'_>,
    conn: &mut SendConn<'_>,
    now_ns: u64,
    send_lag: &mut Histogram<u64>,
) -> Option<u64> {
    if conn.error.is_some() {
        return None;
    }
    let index = conn.pacer.conn();
    let shared = &ctx.shared[index];
    let n = conn
        .pacer
        .sendable(&ctx.schedule, now_ns, shared.in_flight());
    for _ in 0..n {
        let k = conn.pacer.take();
        let global = ctx.schedule.index(index, k);
        let raw_id = conn.first_id.wrapping_add(k);
        if let Err(e) = conn.writer.queue(ctx.pool, global, raw_id, ctx.flags) {
            conn.error = Some(e);
            return None;
        }
        shared.sent.fetch_add(1, Ordering::Release);
        if k >= conn.warmup_k {
            let lag_ns = now_ns.saturating_sub(ctx.schedule.due_ns(global));
            send_lag.saturating_record(lag_ns.clamp(1, LATENCY_NS_MAX));
        }
    }
    if n > 0 {
        if let Err(e) = conn.writer.flush() {
            conn.error = Some(e);
            return None;
        }
    }
    conn.pacer.next_wake_ns(&ctx.schedule, now_ns)
}

/// Waits until about `wake_ns`: sleeps through long gaps (waking a little
/// early), yields the core for short ones so the receivers can run.
fn pace(clock: &impl Clock, wake_ns: u64) {
    let gap_ns = wake_ns.saturating_sub(clock.now_ns());
    if gap_ns > SLEEP_MIN_NS {
        std::thread::sleep(Duration::from_nanos(gap_ns - SLEEP_MARGIN_NS));
    } else {
        std::thread::yield_now();
    }
}

/// The progress line on stderr, rewritten once a second.
struct Progress {
    enabled: bool,
    next_ns: u64,
    total_s: f64,
    printed: bool,
}

impl Progress {
    fn new(enabled: bool, ctx: &RunCtx<'_>) -> Self {
        Self {
            enabled,
            next_ns: 1_000_000_000,
            total_s: ctx.schedule.end_ns() as f64 / 1e9,
            printed: false,
        }
    }

    fn tick(&mut self, now_ns: u64, ctx: &RunCtx<'_>) {
        if !self.enabled || now_ns < self.next_ns {
            return;
        }
        self.next_ns = now_ns + 1_000_000_000;
        let sent: u64 = ctx
            .shared
            .iter()
            .map(|s| s.sent.load(Ordering::Relaxed))
            .sum();
        let answered: u64 = ctx
            .shared
            .iter()
            .map(|s| s.answered.load(Ordering::Relaxed))
            .sum();
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{:>6.1} / {:.1} s  sent {sent}  answered {answered}  in flight {}   ",
            now_ns as f64 / 1e9,
            self.total_s,
            sent.saturating_sub(answered)
        );
        let _ = err.flush();
        self.printed = true;
    }

    fn finish(&mut self, now_ns: u64) {
        if self.printed {
            eprintln!("\r{:>6.1} s: done{:40}", now_ns as f64 / 1e9, "");
        }
    }
}

// ---------------------------------------------------------------------------
// Receiving
// ---------------------------------------------------------------------------

/// One connection's receiver: reads answers until everything sent was
/// answered, the deadline passed, or the connection broke.
struct Receiver<'a> {
    ctx: &'a RunCtx<'a>,
    conn: usize,
    first_id: u64,
    warmup_k: u64,
    samples: Vec<Sample>,
    unattributed: u64,
}

impl<'a> Receiver<'a> {
    fn new(ctx: &'a RunCtx<'a>, conn: usize, first_id: u64) -> Self {
        Self {
            ctx,
            conn,
            first_id,
            warmup_k: ctx.schedule.warmup_count(conn),
            samples: Vec::with_capacity(SAMPLE_BATCH),
            unattributed: 0,
        }
    }

    /// Returns why the connection broke, if it did.
    fn run(mut self, mut reader: Reader, clock: &impl Clock) -> Option<String> {
        let mut why = None;
        let error = loop {
            if self.should_stop(clock) {
                break None;
            }
            match reader.read_answer(self.ctx.expected, &mut why) {
                Event::Answer { id, outcome } => self.on_answer(id, clock.now_ns(), outcome),
                Event::Unattributed => self.unattributed += 1,
                Event::Idle => {}
                Event::Broken => break why.take().or_else(|| Some("broken".into())),
            }
            if self.samples.len() >= SAMPLE_BATCH {
                self.flush();
            }
        };
        self.flush();
        error
    }

    fn should_stop(&self, clock: &impl Clock) -> bool {
        self.ctx.stop.load(Ordering::Acquire)
            || self.ctx.shared[self.conn].is_finished()
            || clock.now_ns() >= self.ctx.deadline_ns
    }

    /// Counts the answer to request `id`; keeps a sample if it was
    /// measured.
    fn on_answer(&mut self, id: u64, arrival_ns: u64, outcome: Outcome) {
        let shared = &self.ctx.shared[self.conn];
        let sent = shared.sent.load(Ordering::Acquire);
        let Some(k) = id.checked_sub(self.first_id).filter(|&k| k < sent) else {
            self.unattributed += 1;
            return;
        };
        shared.answered.fetch_add(1, Ordering::Release);
        if k >= self.warmup_k {
            self.samples.push(Sample {
                intended_ns: self.ctx.schedule.intended_ns(self.conn, k),
                arrival_ns,
                outcome,
            });
        }
    }

    fn flush(&mut self) {
        self.ctx
            .tally
            .record_all(&mut self.samples, std::mem::take(&mut self.unattributed));
    }
}

// ---------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------

fn report(config: &LoadConfig, ctx: &RunCtx<'_>, depth: usize, driven: Driven) -> LoadReport {
    let schedule = &ctx.schedule;
    let sent: u64 = driven
        .sent
        .iter()
        .enumerate()
        .map(|(conn, &n)| n.saturating_sub(schedule.warmup_count(conn)))
        .sum();
    let scheduled = schedule.measured_total();
    let tally = &driven.tally;
    let answered = tally.answered();
    let span_ns = tally
        .last_arrival_ns
        .saturating_sub(schedule.warmup_ns())
        .max(config.window_ns())
        .max(1);
    LoadReport {
        addr: config.addr.clone(),
        wire: config.wire,
        mix: ctx.pool.label().to_string(),
        pool: ctx.pool.len(),
        connections: config.connections,
        depth,
        simulate: config.simulate,
        bid_response: config.bid_response,
        offered_rate_per_s: config.rate_per_s,
        achieved_rate_per_s: round3(answered as f64 / (span_ns as f64 / 1e9)),
        duration_s: config.duration_s,
        warmup_s: config.warmup_s,
        elapsed_s: driven.elapsed_ns as f64 / 1e9,
        scheduled,
        sent,
        ok: tally.ok,
        no_bids: tally.no_bids,
        overloaded: tally.overloaded,
        errors_by_code: tally
            .errors_by_code
            .iter()
            .map(|(label, n)| (label.to_string(), *n))
            .collect(),
        unanswered: sent.saturating_sub(answered),
        unsent: scheduled.saturating_sub(sent),
        unattributed: tally.unattributed,
        latency_ok: Percentiles::of(&tally.latency_ok),
        latency_all: Percentiles::of(&tally.latency_all),
        send_lag: Percentiles::of(&driven.send_lag),
        connection_errors: driven.connection_errors,
    }
}
