//! The send schedule: when each request is due ([`Schedule`]), how many a
//! connection may send now ([`Pacer`]), and the clocks they are read
//! against ([`Clock`]).
//!
//! Pure arithmetic on nanoseconds since the run's start, with no I/O, so
//! the coordinated-omission rule (latency counts from the intended time)
//! can be tested with a [`ManualClock`]. Nothing is stored per request:
//! request `i`'s intended time is `i × period`, recomputed on demand, and
//! a connection's state is two counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A source of nanoseconds since some fixed start.
pub trait Clock: Sync {
    /// Nanoseconds since the clock's start; never decreases.
    fn now_ns(&self) -> u64;
}

/// The real clock: [`Instant`] since the moment it was made.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to (for tests of the schedule).
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ns: AtomicU64,
}

impl ManualClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `ns`.
    pub fn advance_ns(&self, ns: u64) {
        self.now_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::Relaxed)
    }
}

/// When every request of a run is due. Request `i` (numbered over all
/// connections) is due at `i × 1e9 / rate` ns after the start and is sent
/// on connection `i mod connections`; connection `c`'s `k`-th request is
/// request `c + k × connections`. Requests due before `warmup_ns` are not
/// measured; none is due at or after `end_ns` (warm-up plus window).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    period_ns: f64,
    connections: u64,
    warmup_ns: u64,
    end_ns: u64,
}

impl Schedule {
    /// The schedule of `rate_per_s` requests per second (finite, above 0)
    /// over `connections` (at least 1), a warm-up of `warmup_ns`, then a
    /// measured window of `window_ns`.
    pub fn new(rate_per_s: f64, connections: usize, warmup_ns: u64, window_ns: u64) -> Self {
        Self {
            period_ns: 1e9 / rate_per_s.max(f64::MIN_POSITIVE),
            connections: connections.max(1) as u64,
            warmup_ns,
            end_ns: warmup_ns.saturating_add(window_ns),
        }
    }

    /// The end of the measured window, ns after the start.
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    /// The start of the measured window, ns after the start.
    pub fn warmup_ns(&self) -> u64 {
        self.warmup_ns
    }

    /// The global number of connection `conn`'s `k`-th request.
    pub fn index(&self, conn: usize, k: u64) -> u64 {
        (conn as u64).saturating_add(k.saturating_mul(self.connections))
    }

    /// When request `index` is due, ns after the start.
    pub fn due_ns(&self, index: u64) -> u64 {
        (index as f64 * self.period_ns) as u64
    }

    /// When connection `conn`'s `k`-th request is due, ns after the start.
    pub fn intended_ns(&self, conn: usize, k: u64) -> u64 {
        self.due_ns(self.index(conn, k))
    }

    /// Requests over all connections due at or before `now_ns` (not
    /// limited to the window).
    pub fn due_by(&self, now_ns: u64) -> u64 {
        let mut count = (now_ns as f64 / self.period_ns).floor() as u64 + 1;
        // Agree exactly with `due_ns`, whatever the rounding.
        while self.due_ns(count) <= now_ns {
            count += 1;
        }
        while count > 0 && self.due_ns(count - 1) > now_ns {
            count -= 1;
        }
        count
    }

    /// Requests over all connections due strictly before `t_ns`.
    fn due_before(&self, t_ns: u64) -> u64 {
        if t_ns == 0 {
            0
        } else {
            self.due_by(t_ns - 1)
        }
    }

    /// Of the first `global` requests, how many are connection `conn`'s.
    fn share(&self, conn: usize, global: u64) -> u64 {
        let conn = conn as u64;
        if global > conn {
            (global - conn - 1) / self.connections + 1
        } else {
            0
        }
    }

    /// Connection `conn`'s requests due at or before `now_ns`, at most its
    /// [`Self::total`].
    pub fn due(&self, conn: usize, now_ns: u64) -> u64 {
        self.share(conn, self.due_by(now_ns)).min(self.total(conn))
    }

    /// Connection `conn`'s requests in the run (warm-up and window).
    pub fn total(&self, conn: usize) -> u64 {
        self.share(conn, self.due_before(self.end_ns))
    }

    /// Connection `conn`'s requests due in the warm-up (not measured): its
    /// first ones.
    pub fn warmup_count(&self, conn: usize) -> u64 {
        self.share(conn, self.due_before(self.warmup_ns))
    }

    /// Whether connection `conn`'s `k`-th request is measured.
    pub fn is_measured(&self, conn: usize, k: u64) -> bool {
        k >= self.warmup_count(conn)
    }

    /// Requests due in the measured window, over all connections.
    pub fn measured_total(&self) -> u64 {
        self.due_before(self.end_ns) - self.due_before(self.warmup_ns)
    }
}

/// One connection's place in the schedule: how many of its requests went
/// out. The depth limit is applied against the requests in flight, which
/// the caller counts (the receiver thread lowers them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacer {
    conn: usize,
    depth: u64,
    total: u64,
    sent: u64,
}

impl Pacer {
    /// The pacer of connection `conn` with at most `depth` (at least 1)
    /// requests in flight.
    pub fn new(schedule: &Schedule, conn: usize, depth: usize) -> Self {
        Self {
            conn,
            depth: depth.max(1) as u64,
            total: schedule.total(conn),
            sent: 0,
        }
    }

    /// The connection.
    pub fn conn(&self) -> usize {
        self.conn
    }

    /// Requests sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Whether every request of the run went out.
    pub fn is_done(&self) -> bool {
        self.sent >= self.total
    }

    /// Requests due and not sent at `now_ns`.
    pub fn backlog(&self, schedule: &Schedule, now_ns: u64) -> u64 {
        schedule.due(self.conn, now_ns).saturating_sub(self.sent)
    }

    /// How many requests may go out now: those due and not sent, as far as
    /// the depth allows with `in_flight` requests unanswered.
    pub fn sendable(&self, schedule: &Schedule, now_ns: u64, in_flight: u64) -> u64 {
        let room = self.depth.saturating_sub(in_flight);
        self.backlog(schedule, now_ns).min(room)
    }

    /// Takes the next request to send: its `k` on this connection.
    pub fn take(&mut self) -> u64 {
        let k = self.sent;
        self.sent += 1;
        k
    }

    /// When this connection next has something to do: now when requests
    /// are waiting (for room in the depth), else when its next request is
    /// due; `None` once every request went out.
    pub fn next_wake_ns(&self, schedule: &Schedule, now_ns: u64) -> Option<u64> {
        if self.is_done() {
            None
        } else if self.backlog(schedule, now_ns) > 0 {
            Some(now_ns)
        } else {
            Some(schedule.intended_ns(self.conn, self.sent))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_spread_round_robin_and_counted_once() {
        let schedule = Schedule::new(1000.0, 3, 10_000_000, 20_000_000);
        // 1 ms apart: 10 in the warm-up, 20 in the window.
        assert_eq!(schedule.measured_total(), 20);
        let totals: u64 = (0..3).map(|c| schedule.total(c)).sum();
        assert_eq!(totals, 30);
        let warm: u64 = (0..3).map(|c| schedule.warmup_count(c)).sum();
        assert_eq!(warm, 10);
        assert_eq!(schedule.intended_ns(1, 2), 7_000_000);
        assert_eq!(schedule.due(1, 7_000_000), 3);
        assert_eq!(schedule.due(1, 6_999_999), 2);
        assert_eq!(schedule.due(0, 1_000_000_000_000), schedule.total(0));
    }

    #[test]
    fn fractional_rates_agree_with_their_due_times() {
        let schedule = Schedule::new(3.0, 1, 0, 10_000_000_000);
        for k in 0..30 {
            let t = schedule.intended_ns(0, k);
            assert_eq!(schedule.due(0, t), k + 1, "request {k} is due at {t}");
            if t > 0 {
                assert_eq!(schedule.due(0, t - 1), k);
            }
        }
    }
}
