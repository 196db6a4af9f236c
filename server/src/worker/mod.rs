//! One server thread's state, independent of how its sockets are driven:
//! its own [`Engine`], its connections, and the routing of decisions back
//! to them. The io_uring loop ([`crate::uring`]) and the epoll loop
//! ([`crate::epoll`]) own only sockets and buffers, and call in here for
//! everything else, so both paths answer the same bytes the same way.
//!
//! # Data layout
//!
//! Connections live in a slab (`Vec` of slots, allocated for
//! `connections_max` at start) addressed by [`ConnId`]: a slot index plus a
//! generation, so an id that outlived its connection (a late completion,
//! a decision for a closed connection) is recognised and ignored instead of
//! reaching the slot's next occupant. Routes from engine tickets to
//! connections, and to the request and impression in each
//! ([`Owner`](crate::conn::Owner)), live in one hash map sized for the
//! engine's in-flight limit: the only map from tickets in the server.
//! Connections that wrote output since the loop last looked are queued in
//! `dirty`, so a loop sends only where there is something to send.
//!
//! # Ticks
//!
//! [`Worker::run_engine`] runs after each batch of socket completions: it
//! ticks until every request in flight is decided (the engine's own batch
//! policy splits the work into batches of `batch_max`), so load batches
//! requests naturally and an idle server adds no wait.

mod budgets;
mod experiments;
mod features;
mod feedback;
mod monitor;
use budgets::settle_reservation;
mod protocol;
mod respond;
mod sink;
mod state;
mod timeouts;
use protocol::Conn;
pub use protocol::Protocol;
use respond::Responder;
use sink::Sink;
pub use state::StateSaver;

use crate::budget::{ByteReservations, SharedBudget};
use crate::conn::{Connection, ImpLists, Owner};
use crate::http::{HttpConnection, HttpSettings};
use crate::metrics::Metrics;
use crate::sources::{ConnectionLimiter, Refusal};
use cx_domain::pipeline::Ticket;
use cx_engine::{Bundle, Engine, EngineCounts, ModelInfo};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use timeouts::partial_frame_start;

/// Impressions' capacity of finished requests' lists a worker keeps, per
/// impression its engine may hold in flight ([`ImpLists`]): lists are
/// reused across requests of different widths, so some slack over the
/// engine's bound keeps steady state allocation-free.
const IMP_LISTS_PER_IN_FLIGHT: usize = 2;

/// While draining, how long a connection with nothing left to answer must
/// have been quiet before it is closed.
pub const DRAIN_QUIET_NS: u64 = 100_000_000;

/// A connection's address in a [`Worker`]: slot index and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    /// The slot.
    pub index: u32,
    /// Which occupant of the slot.
    pub generation: u32,
}

/// A worker's limits, from the server config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerLimits {
    /// Connections this worker holds at once; more are refused.
    pub connections_max: usize,
    /// A connection with nothing in flight and nothing to send, that sent
    /// no bytes for this long, is closed.
    pub idle_timeout_ns: u64,
    /// A connection whose pending output made no progress for this long
    /// (a client that does not read) is closed.
    pub slow_client_timeout_ns: u64,
    /// A connection holding part of a frame this long after the frame's
    /// first byte arrived (a client trickling bytes) is closed.
    pub frame_timeout_ns: u64,
    /// A request's deadline when it names none (OpenRTB `tmax` absent, or
    /// a binary `score_context`), ms; 0: no deadline.
    pub deadline_default_ms: u32,
    /// Subtracted from every deadline for the way back to the exchange,
    /// ms.
    pub deadline_margin_ms: u32,
}

/// What the workers of one server share: the open-connection counts (in
/// all and per source), the output and input budgets, and which worker
/// this is.
#[derive(Clone, Debug)]
pub struct Shared {
    /// This worker's index, below the budgets' worker count.
    pub index: usize,
    /// Open connections in all and per source address, over all workers.
    pub connections: Arc<ConnectionLimiter>,
    /// Buffered output over all workers.
    pub output: Arc<SharedBudget>,
    /// Reservations for large frames (beyond what read buffers keep) over
    /// all workers.
    pub input: Arc<ByteReservations>,
    /// The HTTP bidder's settings.
    pub http: Arc<HttpSettings>,
}

/// Why a connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed, or the socket failed.
    Peer,
    /// The protocol ended it (a fatal error, or shutdown finished).
    Done,
    /// Idle or slow-client timeout.
    Timeout,
    /// A frame took longer than the frame timeout from its first byte to
    /// its last.
    FrameTimeout,
    /// The server stopped before it finished.
    Abandoned,
}

struct Live {
    conn: Conn,
    /// Monotonic ns of the last byte received or sent.
    active_ns: u64,
    /// Monotonic ns since when output has been waiting without progress.
    stalled_since_ns: Option<u64>,
    /// Monotonic ns when the frame now partly received began to arrive
    /// (`None`: no partial frame held).
    frame_started_ns: Option<u64>,
    /// The peer's address, counted in the [`ConnectionLimiter`] while open.
    source: Option<IpAddr>,
    dirty: bool,
    /// Bytes reserved from the input budget for the large frame now
    /// arriving (see [`crate::budget`]).
    reserved_bytes: usize,
    /// In `reservation_waiters`.
    awaits_reservation: bool,
}

struct ConnSlot {
    generation: u32,
    live: Option<Live>,
}

/// The open connection `id` names in `slots`, if it is still open: a free
/// function, so that a caller can borrow the worker's other fields beside
/// it.
fn live_in(slots: &mut [ConnSlot], id: ConnId) -> Option<&mut Live> {
    slots
        .get_mut(id.index as usize)
        .filter(|s| s.generation == id.generation)
        .and_then(|s| s.live.as_mut())
}

/// Where a ticket's decision goes (the connection, and the request and
/// impression in it), and when it was submitted.
#[derive(Clone, Copy)]
struct Route {
    conn: ConnId,
    owner: Owner,
    submitted_raw: u64,
}

/// One server thread's engine and connections. See the [module docs](self).
pub struct Worker {
    engine: Engine,
    slots: Vec<ConnSlot>,
    free: Vec<u32>,
    open: usize,
    routes: HashMap<Ticket, Route>,
    /// Impression lists of finished requests, for all connections.
    imp_lists: ImpLists,
    dirty: Vec<ConnId>,
    metrics: Metrics,
    limits: WorkerLimits,
    shared: Shared,
    /// Unsent output bytes over this worker's connections (exact).
    output_bytes: usize,
    /// Whether the output budget is spent: connections with output waiting
    /// are not read (see [`crate::budget`]).
    over_budget: bool,
    /// Connections whose large frame waits for the input budget, in the
    /// order they asked (reserved for every slot; a connection is in it at
    /// most once, `Live::awaits_reservation`).
    reservation_waiters: std::collections::VecDeque<ConnId>,
    /// Connections granted a reservation since the event loop last asked
    /// ([`Self::take_resumed`]): they may read again.
    resumed: Vec<ConnId>,
    counts: EngineCounts,
    /// The engine's feedback counts when last published.
    feedback_counts: cx_engine::feedback::FeedbackCounts,
    /// The engine's recent pace, ns per impression decided (an average
    /// over runs; 0 before the first): what admission estimates a new
    /// request's wait with ([`crate::conn::Submit::decided_by_ns`]).
    decide_ns_per_imp: u64,
    clock: quanta::Clock,
    started: std::time::Instant,
    draining: bool,
    echo: bool,
    /// Never sleep in the kernel ([`Self::keeps_polling`]).
    busy_poll: bool,
    /// The state file this worker keeps, if any.
    state: Option<StateSaver>,
    /// The feature store's metrics, as last published.
    features: features::FeaturePublishing,
    /// When the model monitor's report is next published, unix ns.
    monitor_due_ns: u64,
    /// The engine's counts per experiment arm when last published.
    arm_counts: Vec<cx_engine::systems::resources::ArmCounts>,
}

impl Worker {
    /// A worker over `engine`, with room for `limits.connections_max`
    /// connections, under the per-source limit and the output budget it
    /// `shared`s with the other workers.
    pub fn new(engine: Engine, metrics: Metrics, limits: WorkerLimits, shared: Shared) -> Self {
        let in_flight_max = engine.config().in_flight_max;
        let counts = engine.counts();
        let feedback_counts = engine.feedback_counts();
        let slots = (0..limits.connections_max)
            .map(|_| ConnSlot {
                generation: 0,
                live: None,
            })
            .collect();
        let free = (0..limits.connections_max as u32).rev().collect();
        Self {
            engine,
            slots,
            free,
            open: 0,
            routes: HashMap::with_capacity(in_flight_max),
            imp_lists: ImpLists::new(IMP_LISTS_PER_IN_FLIGHT * in_flight_max),
            dirty: Vec::with_capacity(limits.connections_max),
            metrics,
            limits,
            shared,
            output_bytes: 0,
            over_budget: false,
            reservation_waiters: std::collections::VecDeque::with_capacity(limits.connections_max),
            resumed: Vec::with_capacity(limits.connections_max),
            counts,
            feedback_counts,
            decide_ns_per_imp: 0,
            clock: quanta::Clock::new(),
            started: std::time::Instant::now(),
            draining: false,
            echo: false,
            busy_poll: false,
            state: None,
            features: features::FeaturePublishing::default(),
            monitor_due_ns: 0,
            arm_counts: Vec::new(),
        }
    }

    /// Busy polling: the event loop never sleeps waiting for events.
    pub fn set_busy_poll(&mut self, busy_poll: bool) {
        self.busy_poll = busy_poll;
    }

    /// Whether the event loop should only check for events now rather
    /// than wait for them: requests are in the engine, or busy polling.
    pub fn keeps_polling(&self) -> bool {
        self.busy_poll || self.engine.in_flight() > 0
    }

    /// Echo mode: every connection sends back the bytes it receives, and
    /// the engine is never asked (the baseline of `cx serve --echo`).
    pub fn set_echo(&mut self, echo: bool) {
        self.echo = echo;
    }

    /// Monotonic now, ns since the worker started (the clock timeouts are
    /// measured on).
    pub fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Connections open.
    pub fn open_connections(&self) -> usize {
        self.open
    }

    /// Whether [`Self::shutdown`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// The engine (read-only).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Takes a new connection from `source` (its peer address, when the
    /// socket could tell), or `None` (counted as refused) when the worker
    /// is full or draining, or the source already holds its share of
    /// connections; the caller then closes the socket.
    pub fn open(&mut self, source: Option<IpAddr>, protocol: Protocol) -> Option<ConnId> {
        if self.draining || self.free.is_empty() {
            tracing::debug!(draining = self.draining, "connection refused: no room");
            self.metrics.connection_refused();
            return None;
        }
        match self.shared.connections.try_acquire(source) {
            Ok(()) => {}
            Err(Refusal::ServerFull) => {
                tracing::debug!("connection refused: connections_max are open");
                self.metrics.connection_refused();
                return None;
            }
            Err(Refusal::SourceFull) => {
                tracing::debug!(?source, "connection refused: the source holds its share");
                self.metrics.connection_refused();
                self.metrics.source_limit_refused();
                return None;
            }
        }
        let index = self.free.pop()?;
        let now_ns = self.now_ns();
        let slot = self.slots.get_mut(index as usize)?;
        let mut conn = match protocol {
            Protocol::Binary => Conn::Binary(Connection::new()),
            Protocol::Http => Conn::Http(Box::new(HttpConnection::new(self.shared.http.clone()))),
        };
        // Large frames reserve from the server's input budget first.
        conn.set_large_reserved(0);
        if self.over_budget {
            conn.set_write_pause_bytes(1);
        }
        slot.live = Some(Live {
            conn,
            active_ns: now_ns,
            stalled_since_ns: None,
            frame_started_ns: None,
            source,
            dirty: false,
            reserved_bytes: 0,
            awaits_reservation: false,
        });
        self.open += 1;
        self.metrics.connection_opened();
        Some(ConnId {
            index,
            generation: slot.generation,
        })
    }

    fn live(&self, id: ConnId) -> Option<&Live> {
        let slot = self.slots.get(id.index as usize)?;
        (slot.generation == id.generation)
            .then_some(slot.live.as_ref())
            .flatten()
    }

    fn live_mut(&mut self, id: ConnId) -> Option<&mut Live> {
        live_in(&mut self.slots, id)
    }

    /// Whether `id` is an open connection.
    pub fn is_open(&self, id: ConnId) -> bool {
        self.live(id).is_some()
    }

    /// Hands received bytes to the connection; returns how many it took
    /// (see [`Connection::on_bytes`]). An empty slice resumes decoding
    /// after a write pause.
    pub fn on_bytes(&mut self, id: ConnId, bytes: &[u8]) -> usize {
        let now_ns = self.now_ns();
        let now_raw = self.clock.raw();
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return bytes.len();
        };
        let Some(live) = slot
            .live
            .as_mut()
            .filter(|_| slot.generation == id.generation)
        else {
            return bytes.len();
        };
        if !bytes.is_empty() {
            live.active_ns = now_ns;
        }
        let output_before = live.conn.output().len();
        if self.echo {
            let taken = live.conn.on_echo_bytes(bytes);
            self.output_bytes += live.conn.output().len() - output_before;
            if taken > 0 && !live.dirty {
                live.dirty = true;
                self.dirty.push(id);
            }
            return taken;
        }
        let mut sink = Sink {
            engine: &mut self.engine,
            routes: &mut self.routes,
            conn: id,
            now_raw,
            now_ns,
            limits: &self.limits,
            decide_ns_per_imp: self.decide_ns_per_imp,
            overloaded: 0,
            metrics: &self.metrics,
        };
        let frames_before = live.conn.frames_seen();
        let taken = live.conn.on_bytes(bytes, &mut sink, &mut self.imp_lists);
        let waits = settle_reservation(live, &self.shared.input, &self.metrics);
        if waits {
            self.reservation_waiters.push_back(id);
        }
        live.frame_started_ns = partial_frame_start(
            live.frame_started_ns,
            live.conn.frames_seen() != frames_before,
            live.conn.buffered_input(),
            now_ns,
        );
        let overloaded = sink.overloaded;
        // Output only grows while bytes are taken.
        self.output_bytes += live.conn.output().len() - output_before;
        let has_output = !live.conn.output().is_empty();
        if has_output && !live.dirty {
            live.dirty = true;
            self.dirty.push(id);
        }
        self.metrics.add_overloaded(overloaded);
        taken
    }

    /// Ticks the engine until every request in flight is decided, and
    /// hands each decision to its connection. Returns the decisions made.
    pub fn run_engine(&mut self, now_unix_ns: u64) -> usize {
        if self.engine.in_flight() == 0 {
            return 0;
        }
        let started = self.clock.raw();
        let in_flight = self.engine.in_flight() as u64;
        self.engine.run_until_decided(now_unix_ns);
        let took_ns = self.clock.delta_as_nanos(started, self.clock.raw());
        self.observe_pace(took_ns, in_flight);
        let metrics = &self.metrics;
        self.engine
            .take_batch_times(|ns| metrics.observe_inference_seconds(ns as f64 * 1e-9));
        self.route_decisions();
        let before = self.counts.decided;
        self.publish_engine_counts();
        let decided = self.counts.decided.saturating_sub(before);
        if decided > 0 {
            self.metrics.observe_batch_size(decided);
        }
        decided as usize
    }

    /// Folds one engine run (`took_ns` for `imps` impressions) into the
    /// pace admission estimates with: an exponential average, weight 1/8.
    fn observe_pace(&mut self, took_ns: u64, imps: u64) {
        let Some(per) = took_ns.checked_div(imps) else {
            return;
        };
        self.decide_ns_per_imp = match self.decide_ns_per_imp {
            0 => per,
            pace => pace - pace / 8 + per / 8,
        };
    }

    fn route_decisions(&mut self) {
        let now_raw = self.clock.raw();
        let now_ns = self.now_ns();
        while let Some(decision) = self.engine.poll() {
            let route = self
                .routes
                .remove(&decision.ticket)
                .expect("every ticket is routed when the sink submits it");
            let seconds = self.clock.delta_as_nanos(route.submitted_raw, now_raw) as f64 * 1e-9;
            self.metrics.observe_decision_seconds(seconds);
            let id = route.conn;
            let Some(live) = live_in(&mut self.slots, id) else {
                continue;
            };
            let output_before = live.conn.output().len();
            let mut respond = Responder::new(&mut self.engine, now_ns);
            live.conn
                .on_decision(route.owner, decision, &mut self.imp_lists, &mut respond);
            let output_after = live.conn.output().len();
            let newly_dirty = !live.dirty && output_after > 0;
            live.dirty |= newly_dirty;
            if newly_dirty {
                self.dirty.push(id);
            }
            // Output only grows when a decision arrives.
            self.output_bytes += output_after - output_before;
        }
    }

    fn publish_engine_counts(&mut self) {
        let now = self.engine.counts();
        let before = std::mem::replace(&mut self.counts, now);
        self.metrics
            .add_predictions(now.decided.saturating_sub(before.decided));
        self.metrics.add_cache(
            now.cache_hits.saturating_sub(before.cache_hits),
            now.cache_misses.saturating_sub(before.cache_misses),
        );
    }

    /// Moves the connections that wrote output since the last call into
    /// `out` (cleared first). Once per loop turn: also publishes this
    /// worker's output to the shared budget and applies the budget's
    /// verdict.
    pub fn take_dirty(&mut self, out: &mut Vec<ConnId>) {
        self.balance_output();
        self.grant_reservations();
        out.clear();
        std::mem::swap(out, &mut self.dirty);
        for &id in out.iter() {
            if let Some(live) = self.live_mut(id) {
                live.dirty = false;
            }
        }
    }

    /// Bytes the connection received and has not decoded yet.
    pub fn buffered_input(&self, id: ConnId) -> usize {
        self.live(id).map_or(0, |l| l.conn.buffered_input())
    }

    /// The connection's unsent output (empty for an unknown id).
    pub fn output(&self, id: ConnId) -> &[u8] {
        self.live(id).map_or(&[], |l| l.conn.output())
    }

    /// Records that `n` bytes of the output were sent.
    pub fn sent(&mut self, id: ConnId, n: usize) {
        let now_ns = self.now_ns();
        let Some(live) = self.live_mut(id) else {
            return;
        };
        let output_before = live.conn.output().len();
        let was_paused = live.conn.is_write_paused();
        live.conn.consume_output(n);
        let consumed = output_before - live.conn.output().len();
        live.resume_frame_clock(was_paused, now_ns);
        if n > 0 {
            live.active_ns = now_ns;
            live.stalled_since_ns = None;
        }
        if !live.conn.output().is_empty() && live.stalled_since_ns.is_none() {
            live.stalled_since_ns = Some(now_ns);
        }
        self.output_bytes -= consumed;
    }

    /// Records that output is waiting for the socket (the send would block).
    pub fn send_blocked(&mut self, id: ConnId) {
        let now_ns = self.now_ns();
        if let Some(live) = self.live_mut(id) {
            live.stalled_since_ns.get_or_insert(now_ns);
        }
    }

    /// Whether the loop should read from this connection now.
    pub fn wants_read(&self, id: ConnId) -> bool {
        self.live(id).is_some_and(|l| l.conn.wants_read())
    }

    /// Bytes the connection can take now.
    pub fn read_capacity(&self, id: ConnId) -> usize {
        self.live(id).map_or(0, |l| l.conn.read_capacity())
    }

    /// Whether the connection is finished and all its output sent: close
    /// it. While draining, a connection with nothing in flight also waits
    /// until it has been quiet for [`DRAIN_QUIET_NS`], so that requests
    /// already on their way are answered `shutting_down` rather than lost
    /// in a close (which would also reset the connection under the
    /// answers).
    pub fn is_done(&self, id: ConnId) -> bool {
        let now_ns = self.now_ns();
        self.live(id).is_none_or(|l| {
            l.conn.is_done()
                && (l.conn.is_closing() || now_ns.saturating_sub(l.active_ns) >= DRAIN_QUIET_NS)
        })
    }

    /// Forgets a connection (its socket is closed by the caller). Decisions
    /// still due to it are dropped when they arrive.
    pub fn close(&mut self, id: ConnId, reason: CloseReason) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        let Some(mut live) = slot.live.take() else {
            return;
        };
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.open -= 1;
        self.shared.connections.release(live.source);
        self.output_bytes -= live.conn.output().len();
        self.shared.input.release(live.reserved_bytes);
        live.conn.publish_counts(&self.metrics);
        self.metrics.connection_closed();
        tracing::debug!(
            connection = id.index,
            generation = id.generation,
            ?reason,
            closing = live.conn.is_closing(),
            frames = live.conn.frames_seen(),
            in_flight = live.conn.in_flight(),
            buffered = live.conn.buffered_input(),
            "connection closed"
        );
        match reason {
            CloseReason::Timeout => self.metrics.add_timeouts(1),
            CloseReason::FrameTimeout => {
                self.metrics.add_timeouts(1);
                self.metrics.frame_timed_out();
            }
            CloseReason::Peer | CloseReason::Done | CloseReason::Abandoned => {}
        }
    }

    /// Publishes every open connection's counts, and the engine's
    /// feedback counts and decision log ([`Self::publish_feedback`]).
    pub fn publish_counts(&mut self) {
        for slot in &mut self.slots {
            if let Some(live) = slot.live.as_mut() {
                live.conn.publish_counts(&self.metrics);
            }
        }
        self.publish_feedback();
        self.publish_experiments();
        self.publish_features();
        self.publish_monitor();
    }

    /// The peer finished sending (end of stream): no request will follow,
    /// so the connection is shut down like at a drain; what it already
    /// sent is still answered, and it is closed once that is written
    /// ([`Self::closable`]).
    pub fn peer_closed(&mut self, id: ConnId) {
        if let Some(live) = self.live_mut(id) {
            live.conn.shutdown();
        }
    }

    /// Stops taking connections and requests: every connection answers
    /// new requests `shutting_down` and finishes those in flight.
    pub fn shutdown(&mut self) {
        self.draining = true;
        for slot in &mut self.slots {
            if let Some(live) = &mut slot.live {
                live.conn.shutdown();
            }
        }
    }

    /// Store housekeeping: budget leases unused for their time to live go
    /// back to the bank the workers share; the state file is written when
    /// its interval has passed (the worker that keeps it).
    pub fn maintain_stores(&mut self) {
        let now = crate::serve::unix_now_ns();
        self.engine.maintain_stores(now);
        if let Some(saver) = &mut self.state {
            saver.save_if_due(&self.engine, now);
        }
    }

    /// Keeps the state file at `saver` (one worker of a server does, for
    /// all: `state.rs`).
    pub fn set_state_saver(&mut self, saver: StateSaver) {
        self.state = Some(saver);
    }

    /// The event loop's last call, once every connection is closed:
    /// publishes its experiment counts, and writes the state file a last time (the feature snapshot is the server's
    /// last write, `Server::wait`).
    pub fn finish(&mut self) {
        // Every worker's last experiment counts reach the board before the
        // server writes it a last time.
        self.publish_experiments();
        if let Some(saver) = &mut self.state {
            saver.save_last(&self.engine, crate::serve::unix_now_ns());
        }
    }

    /// Stages a new bundle: a model and fallback, with a repository
    /// bundle's catalog and decision settings, and the experiments to
    /// serve beside it (applied together at the next tick boundary).
    pub fn reload(
        &mut self,
        bundle: Bundle,
        experiments: &[cx_engine::experiments::ExperimentDef],
    ) -> cx_engine::Result<ModelInfo> {
        let result = self
            .engine
            .swap_bundle_with_experiments(bundle, experiments);
        if result.is_err() {
            // The server checked this bundle against the same config before
            // ordering the reload; hardly anything gets here.
            self.metrics.model_swap_failed();
        }
        result
    }
}
