//! What the loop submits and how completions name it ([`Op`]), whether
//! this kernel can run the loop at all ([`probe`]), and how a worker's
//! ring is set up ([`build_ring`], [`TaskRun`]).

use crate::error::Error;
use crate::worker::{ConnId, Protocol};
use io_uring::{opcode, IoUring};

/// The oldest kernel the loop supports (6.0; multishot accept is 5.19).
pub const KERNEL_MIN: (u32, u32) = (6, 0);

/// Most connection slots one ring addresses (24 bits of `user_data`).
pub const SLOTS_MAX: usize = 0xff_ffff;

/// What an io_uring operation is, as its completions' `user_data` carries
/// it: the kind in the top 8 bits, then for a socket's operations the
/// connection's slot (24 bits) and generation (32 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A listener's multishot accept: the binary protocol's or the HTTP
    /// bidder's.
    Accept(Protocol),
    /// A connection's receive (one at a time).
    Recv(ConnId),
    /// A connection's send.
    Send(ConnId),
    /// A cancellation (of a receive or of the accept).
    Cancel,
    /// Receive buffers handed (back) to the kernel.
    Provide,
}

impl Op {
    const ACCEPT: u64 = 1;
    const RECV: u64 = 2;
    const SEND: u64 = 3;
    const CANCEL: u64 = 4;
    const PROVIDE: u64 = 5;
    const ACCEPT_HTTP: u64 = 6;

    /// The `user_data` that names this operation.
    ///
    /// # Panics
    /// When a connection's slot does not fit 24 bits; `run` refuses more
    /// than [`SLOTS_MAX`] connections, so that is a broken invariant.
    pub fn user_data(self) -> u64 {
        let socket = |kind: u64, id: ConnId| {
            assert!(
                id.index as usize <= SLOTS_MAX,
                "slot {} over 24 bits",
                id.index
            );
            (kind << 56) | (u64::from(id.index) << 32) | u64::from(id.generation)
        };
        match self {
            Self::Accept(Protocol::Binary) => Self::ACCEPT << 56,
            Self::Accept(Protocol::Http) => Self::ACCEPT_HTTP << 56,
            Self::Recv(id) => socket(Self::RECV, id),
            Self::Send(id) => socket(Self::SEND, id),
            Self::Cancel => Self::CANCEL << 56,
            Self::Provide => Self::PROVIDE << 56,
        }
    }

    /// The operation a completion's `user_data` names, or `None` for a
    /// value this loop never submits.
    pub fn from_user_data(user_data: u64) -> Option<Self> {
        let id = ConnId {
            index: ((user_data >> 32) & 0xff_ffff) as u32,
            generation: user_data as u32,
        };
        match user_data >> 56 {
            Self::ACCEPT => Some(Self::Accept(Protocol::Binary)),
            Self::ACCEPT_HTTP => Some(Self::Accept(Protocol::Http)),
            Self::RECV => Some(Self::Recv(id)),
            Self::SEND => Some(Self::Send(id)),
            Self::CANCEL => Some(Self::Cancel),
            Self::PROVIDE => Some(Self::Provide),
            _ => None,
        }
    }
}

pub(super) fn uring_error(what: &str, source: std::io::Error) -> Error {
    Error::EventLoop {
        io: "uring",
        what: what.into(),
        source,
    }
}

/// Checks that this process can run the io_uring loop: the kernel is at
/// least [`KERNEL_MIN`], a ring can be created (a
/// seccomp policy or `io_uring_disabled` may forbid it), and it offers
/// every operation the loop submits.
pub fn probe() -> Result<(), Error> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_err(|e| uring_error("read the kernel version", e))?;
    let version = parse_kernel_version(&release);
    if version < Some(KERNEL_MIN) {
        let why = format!(
            "kernel {} is older than {}.{}",
            release.trim(),
            KERNEL_MIN.0,
            KERNEL_MIN.1
        );
        return Err(uring_error(&why, std::io::ErrorKind::Unsupported.into()));
    }
    let ring = IoUring::new(8).map_err(|e| uring_error("create a ring", e))?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| uring_error("probe the ring's operations", e))?;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::Recv::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::ProvideBuffers::CODE, "provide_buffers"),
        (opcode::AsyncCancel::CODE, "async_cancel"),
    ] {
        if !probe.is_supported(code) {
            let why = format!("the kernel lacks the {name} operation");
            return Err(uring_error(&why, std::io::ErrorKind::Unsupported.into()));
        }
    }
    Ok(())
}

/// `6.18.44-fc` → `Some((6, 18))`.
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// How the kernel runs the ring's completion work (the "task work" that
/// turns a socket's readiness into a completion), best first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskRun {
    /// `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1): completion work waits
    /// until the worker asks for completions, so the kernel never
    /// interrupts the worker (an IPI per completion) while it computes.
    /// Profiles of the default ring spent half their samples there.
    Deferred,
    /// `COOP_TASKRUN` (Linux 5.19): no interrupt; the work runs at the
    /// worker's next transition into the kernel.
    Cooperative,
    /// Neither flag was accepted: the kernel interrupts the worker.
    Interrupting,
}

/// Creates the worker's ring with `entries` submission entries and twice
/// that in completions, with the best [`TaskRun`] this kernel accepts
/// (each with `TASKRUN_FLAG`, so that a submission carries GETEVENTS
/// whenever completion work is pending). Must run on the worker's own
/// thread: a single-issuer ring belongs to the thread that made it.
pub(super) fn build_ring(entries: u32) -> Result<(IoUring, TaskRun), Error> {
    let mut last_error = None;
    for task_run in [
        TaskRun::Deferred,
        TaskRun::Cooperative,
        TaskRun::Interrupting,
    ] {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(entries * 2);
        match task_run {
            TaskRun::Deferred => {
                builder
                    .setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_taskrun_flag();
            }
            TaskRun::Cooperative => {
                builder.setup_coop_taskrun().setup_taskrun_flag();
            }
            TaskRun::Interrupting => {}
        }
        match builder.build(entries) {
            Ok(ring) => return Ok((ring, task_run)),
            // An older kernel refuses a flag it does not know.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last_error = Some(e),
            Err(e) => return Err(uring_error("create the ring", e)),
        }
    }
    let e = last_error.unwrap_or_else(|| std::io::ErrorKind::Unsupported.into());
    Err(uring_error("create the ring", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips_through_user_data() {
        let id = ConnId {
            index: SLOTS_MAX as u32,
            generation: u32::MAX,
        };
        let small = ConnId {
            index: 3,
            generation: 7,
        };
        for op in [
            Op::Accept(Protocol::Binary),
            Op::Accept(Protocol::Http),
            Op::Recv(id),
            Op::Send(id),
            Op::Recv(small),
            Op::Send(small),
            Op::Cancel,
            Op::Provide,
        ] {
            assert_eq!(Op::from_user_data(op.user_data()), Some(op), "{op:?}");
        }
        assert_ne!(Op::Recv(small).user_data(), Op::Send(small).user_data());
        assert_eq!(Op::from_user_data(0), None);
        assert_eq!(Op::from_user_data(0xff << 56), None);
    }

    #[test]
    #[should_panic(expected = "over 24 bits")]
    fn a_slot_over_24_bits_is_a_broken_invariant() {
        let _ = Op::Recv(ConnId {
            index: SLOTS_MAX as u32 + 1,
            generation: 0,
        })
        .user_data();
    }
}
