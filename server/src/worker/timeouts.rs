//! When a worker closes a connection on its own: idle, a slow reader, a
//! frame that takes too long, or finished. Pure checks over the worker's
//! slots and clock; the event loops close what [`Worker::closable`] lists.

use super::{CloseReason, ConnId, Live, Worker};

impl Worker {
    /// Whether the connection timed out at `now_ns`: idle, or a slow
    /// client (see [`WorkerLimits`]).
    fn is_expired(&self, live: &Live, now_ns: u64) -> bool {
        let idle = live.conn.in_flight() == 0
            && live.conn.output().is_empty()
            && now_ns.saturating_sub(live.active_ns) >= self.limits.idle_timeout_ns;
        let slow = live
            .stalled_since_ns
            .is_some_and(|t| now_ns.saturating_sub(t) >= self.limits.slow_client_timeout_ns);
        idle || slow
    }

    /// Whether the connection has held part of a frame for longer than the
    /// frame timeout. Input held back while output is paused (whole frames
    /// waiting for a slow reader) is the slow-client timeout's business.
    fn is_frame_late(&self, live: &Live, now_ns: u64) -> bool {
        !live.conn.is_write_paused()
            && !live.conn.is_closing()
            && live
                .frame_started_ns
                .is_some_and(|t| now_ns.saturating_sub(t) >= self.limits.frame_timeout_ns)
    }

    /// Appends to `out` every connection the loop should close now, and
    /// why: timed out (see [`WorkerLimits`]) or finished
    /// ([`Self::is_done`]).
    pub fn closable(&self, out: &mut Vec<(ConnId, CloseReason)>) {
        let now_ns = self.now_ns();
        for (index, slot) in self.slots.iter().enumerate() {
            let Some(live) = &slot.live else { continue };
            let id = ConnId {
                index: index as u32,
                generation: slot.generation,
            };
            if self.is_expired(live, now_ns) {
                out.push((id, CloseReason::Timeout));
            } else if self.is_frame_late(live, now_ns) {
                out.push((id, CloseReason::FrameTimeout));
            } else if self.is_done(id) {
                out.push((id, CloseReason::Done));
            }
        }
    }
}

impl Live {
    /// Restarts the frame clock of a partial frame when a write pause
    /// (`was_paused`) has just ended at `now_ns`: time spent paused is not
    /// the client's, since the rest of its frame was not being read.
    pub(super) fn resume_frame_clock(&mut self, was_paused: bool, now_ns: u64) {
        if was_paused && !self.conn.is_write_paused() && self.frame_started_ns.is_some() {
            self.frame_started_ns = Some(now_ns);
        }
    }
}

/// When the frame now partly held began to arrive, after a call that
/// decoded frames (`advanced`) and left `buffered` bytes: none held, no
/// start; a frame completed, so what is held began with this call; else the
/// same partial frame goes on from its start.
pub(super) fn partial_frame_start(
    started_ns: Option<u64>,
    advanced: bool,
    buffered: usize,
    now_ns: u64,
) -> Option<u64> {
    match (buffered, advanced, started_ns) {
        (0, _, _) => None,
        (_, true, _) | (_, false, None) => Some(now_ns),
        (_, false, Some(t)) => Some(t),
    }
}
