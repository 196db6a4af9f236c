//! The io_uring event loop: one ring per worker, multishot accept, one
//! receive at a time per connection into provided buffers, and sends from
//! per-connection
//! buffers; all submissions of a turn go to the kernel in one
//! `io_uring_enter`. It owns one worker's sockets and the memory the kernel
//! reads and writes; every protocol and engine step is the [`Worker`]'s,
//! shared with the epoll loop.
//!
//! # Why `unsafe` here
//!
//! Submitting an io_uring operation hands the kernel raw pointers to memory
//! it will read or write later, which the compiler cannot check; the crate
//! marks those pushes `unsafe`. This module opts in to `unsafe_code` for
//! exactly those pushes and for adopting accepted file descriptors. The
//! invariants each one relies on:
//!
//! - **Provided buffers** ([`BUFFER_COUNT`] × [`BUFFER_BYTES`], one
//!   allocation made at start and never resized) outlive every receive:
//!   the loop does not return, and so does not free them, while any
//!   operation is in flight (`ops` counts them; see [`UringLoop::finish`]).
//!   A buffer the kernel filled is read once, then handed back.
//! - **Send buffers** belong to a connection's [`USock`] and are not
//!   touched while its one send is in flight; a socket is dropped only once
//!   its send and receive have completed.
//!
//! # Data layout
//!
//! Sockets live in a slab indexed like the worker's connections
//! ([`ConnId::index`]); a slot stays taken until the socket's operations
//! complete, and only then is the connection released to the worker, so a
//! slot is never shared by two sockets. Each completion's `user_data` is
//! an [`Op`]: the operation kind and, for a socket's operations, the
//! connection's slot and generation, so a late completion for a closed
//! socket is recognised.
//!
//! # Submission backlog
//!
//! An entry that finds the submission queue full waits in a backlog (a
//! `VecDeque` reserved at start for every operation the loop can have
//! outstanding at once: a receive, a send and a cancel per connection, a
//! re-provide per buffer, and the accept's two), and each turn moves the
//! backlog into the queue, submitting as it fills, before waiting, as
//! tokio-rs/io-uring's `tcp_echo` example does. No entry is ever dropped, so
//! a socket's `recv_armed` and `send_in_flight` flags always mean an
//! operation the kernel will complete.
//!
//! # Flow control
//!
//! Each connection has at most one receive armed, and the loop re-arms it
//! only while the connection wants input, so a connection that stops
//! wanting input (a slow client) is simply not read, and TCP pushes back
//! on its peer. What its last receive delivered and the worker did not
//! take waits in the socket's `stash`: at most one buffer
//! ([`BUFFER_BYTES`]) per connection. (A multishot receive cannot be
//! paused: it fills buffers until a cancel lands, which let each client
//! that never read park up to the whole pool in its stash.) Cancels are
//! for closing sockets only.

#![allow(unsafe_code)] // io_uring submissions and fd adoption; see the module docs.

mod ops;

use ops::{build_ring, uring_error};
pub use ops::{parse_kernel_version, probe, Op, TaskRun, KERNEL_MIN, SLOTS_MAX};

use crate::error::Error;
use crate::serve::{unix_now_ns, Control, Listeners, LoopExit, HOUSEKEEPING_INTERVAL};
use crate::worker::{CloseReason, ConnId, Protocol, Worker};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

/// Provided receive buffers per worker.
pub const BUFFER_COUNT: u16 = 256;

/// Bytes per provided receive buffer.
pub const BUFFER_BYTES: usize = 16 * 1024;

/// Most bytes one send takes from a connection's output: the size of the
/// copy each connection's `send_buf` holds while its send is in flight (a
/// client that does not read keeps one in flight until it times out).
pub const SEND_CHUNK_BYTES: usize = 64 * 1024;

/// How long [`UringLoop::finish`] waits for cancelled operations before
/// giving up (and leaking the buffers rather than freeing memory the
/// kernel may still use).
pub const FINISH_WAIT: Duration = Duration::from_secs(2);

const BUFFER_GROUP: u16 = 0;

/// One connection's socket and the buffers the kernel uses for it.
struct USock {
    stream: TcpStream,
    id: ConnId,
    recv_armed: bool,
    cancel_sent: bool,
    send_in_flight: bool,
    send_buf: Vec<u8>,
    /// Received bytes the connection could not take yet.
    stash: Vec<u8>,
    /// In `starved`, waiting for a buffer.
    starved: bool,
    /// Set once the socket is being closed: why.
    closing: Option<CloseReason>,
}

struct UringLoop {
    ring: IoUring,
    /// Entries that found the submission queue full, in order (see the
    /// module docs); reserved for `backlog_max`, never grown.
    backlog: std::collections::VecDeque<squeue::Entry>,
    backlog_max: usize,
    /// The binary protocol's listener, then the HTTP bidder's.
    listeners: [Option<TcpListener>; 2],
    /// Whether each listener's multishot accept is armed.
    accept_armed: [bool; 2],
    socks: Vec<Option<USock>>,
    buffers: Box<[u8]>,
    /// Operations submitted whose last completion has not arrived.
    ops: usize,
    dirty: Vec<ConnId>,
    ids: Vec<ConnId>,
    /// Scratch for [`Worker::closable`].
    due: Vec<(ConnId, CloseReason)>,
    completions: Vec<(u64, i32, u32)>,
    /// Connections whose receive found no provided buffer, in the order
    /// they did; each is re-armed as a buffer comes back ([`Self::arm_starved`]).
    /// With more connections than buffers, re-arming them at once let the
    /// same few win every buffer while others waited seconds. A
    /// connection is in it at most once (`USock::starved`), so it is
    /// reserved for every slot and never grows.
    starved: std::collections::VecDeque<ConnId>,
    /// Scratch for [`Worker::take_resumed`].
    resumed: Vec<ConnId>,
}

/// Runs one worker on its listeners until shutdown completes, with a ring
/// of `ring_entries` submission entries (a power of two; the completion
/// queue is twice that).
pub fn run(
    listeners: Listeners,
    mut worker: Worker,
    control: &Control,
    connections_max: usize,
    ring_entries: u32,
) -> Result<LoopExit, Error> {
    if connections_max > SLOTS_MAX {
        return Err(Error::Config(format!(
            "connections_max: {connections_max} per worker is over the io_uring loop's {SLOTS_MAX}"
        )));
    }
    let (ring, task_run) = build_ring(ring_entries)?;
    tracing::debug!(?task_run, "io_uring ring created");
    // Outstanding at most: per connection a receive, a send and a cancel;
    // a re-provide per buffer and the first provide; two accepts and their
    // cancels.
    let backlog_max = 3 * connections_max + usize::from(BUFFER_COUNT) + 5;
    let mut ul = UringLoop {
        ring,
        backlog: std::collections::VecDeque::with_capacity(backlog_max),
        backlog_max,
        listeners: [Some(listeners.binary), listeners.http],
        accept_armed: [false; 2],
        socks: (0..connections_max).map(|_| None).collect(),
        buffers: vec![0; usize::from(BUFFER_COUNT) * BUFFER_BYTES].into_boxed_slice(),
        ops: 0,
        dirty: Vec::with_capacity(connections_max),
        ids: Vec::with_capacity(connections_max),
        due: Vec::with_capacity(connections_max),
        completions: Vec::with_capacity(ring_entries as usize * 2),
        starved: std::collections::VecDeque::with_capacity(connections_max),
        resumed: Vec::with_capacity(connections_max),
    };
    ul.provide_all();
    ul.arm_accepts();
    let mut state = control.watch();
    let exit = loop {
        ul.wait(worker.keeps_polling())?;
        ul.handle_completions(&mut worker);
        worker.run_engine(unix_now_ns());
        ul.flush(&mut worker);
        if state.due(Instant::now()) {
            if let Some(exit) = state.housekeeping(&mut worker, control) {
                break exit;
            }
            if worker.is_draining() {
                ul.stop_accepting();
            } else {
                ul.arm_accepts();
            }
            ul.close_due(&mut worker);
            if worker.is_draining() && worker.open_connections() == 0 {
                break LoopExit::Drained;
            }
        }
    };
    ul.finish(&mut worker);
    worker.finish();
    Ok(exit)
}

impl UringLoop {
    /// Queues one operation: into the submission queue, or behind the
    /// backlog when the queue is full or the backlog is not empty (so
    /// operations reach the kernel in the order they were queued). It is
    /// never dropped.
    ///
    /// # Safety
    ///
    /// Every buffer `entry` points to must stay valid and untouched by the
    /// loop until the operation's last completion.
    unsafe fn push(&mut self, entry: squeue::Entry) {
        self.ops += 1;
        if self.backlog.is_empty() {
            // SAFETY: the caller guarantees the entry's buffers outlive it.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                return;
            }
        }
        assert!(
            self.backlog.len() < self.backlog_max,
            "io_uring backlog over its bound of {} entries",
            self.backlog_max
        );
        self.backlog.push_back(entry);
    }

    /// Moves backlogged entries into the submission queue, handing the
    /// queue to the kernel each time it fills, until the backlog is empty
    /// or the kernel takes no more this turn (a full completion queue).
    fn drain_backlog(&mut self) {
        while !self.backlog.is_empty() {
            {
                let mut sq = self.ring.submission();
                while let Some(entry) = self.backlog.front() {
                    // SAFETY: every backlogged entry was queued by `push`,
                    // whose caller guaranteed its buffers outlive it.
                    if unsafe { sq.push(entry) }.is_err() {
                        break;
                    }
                    self.backlog.pop_front();
                }
            }
            if self.backlog.is_empty() {
                return;
            }
            match self.ring.submit() {
                Ok(n) if n > 0 => {}
                // The kernel took nothing (EBUSY: completions must be
                // reaped first); the rest waits for the next turn.
                Ok(_) => return,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return,
                Err(e) => {
                    tracing::error!(error = %e, "io_uring submit failed; backlog kept");
                    return;
                }
            }
        }
    }

    /// Pushes an operation that references no memory of ours.
    fn push_plain(&mut self, entry: squeue::Entry) {
        // SAFETY: accept (no address out-pointer), cancel and close-like
        // entries carry no buffer pointer.
        unsafe { self.push(entry) }
    }

    fn provide_all(&mut self) {
        let addr = self.buffers.as_mut_ptr();
        let entry =
            opcode::ProvideBuffers::new(addr, BUFFER_BYTES as i32, BUFFER_COUNT, BUFFER_GROUP, 0)
                .build()
                .user_data(Op::Provide.user_data());
        // SAFETY: `buffers` is allocated once, never resized, and not freed
        // while operations are in flight (see `finish`).
        unsafe { self.push(entry) }
    }

    fn provide_one(&mut self, bid: u16) {
        let offset = usize::from(bid) * BUFFER_BYTES;
        let Some(buf) = self.buffers.get_mut(offset..offset + BUFFER_BYTES) else {
            return;
        };
        let entry = opcode::ProvideBuffers::new(
            buf.as_mut_ptr(),
            BUFFER_BYTES as i32,
            1,
            BUFFER_GROUP,
            bid,
        )
        .build()
        .user_data(Op::Provide.user_data());
        // SAFETY: as in `provide_all`; the loop has finished reading this
        // buffer before handing it back.
        unsafe { self.push(entry) }
        self.arm_starved();
    }

    /// Puts the connection in line for a buffer (once).
    fn wait_for_buffer(&mut self, id: ConnId) {
        if let Some(sock) = self.sock_of(id.index as usize, id.generation) {
            if !std::mem::replace(&mut sock.starved, true) {
                self.starved.push_back(id);
            }
        }
    }

    /// Re-arms the receive of the connection that has waited longest for a
    /// buffer (if it is still open), right behind the buffer just handed
    /// back, so that it finds that buffer.
    fn arm_starved(&mut self) {
        while let Some(id) = self.starved.pop_front() {
            let index = id.index as usize;
            let Some(sock) = self.sock_of(index, id.generation) else {
                continue; // closed meanwhile
            };
            sock.starved = false;
            if !sock.recv_armed && sock.closing.is_none() && sock.stash.is_empty() {
                self.arm_recv(index);
                return;
            }
        }
    }

    /// Arms the multishot accept of every listener that has none armed.
    fn arm_accepts(&mut self) {
        for (i, protocol) in [Protocol::Binary, Protocol::Http].into_iter().enumerate() {
            let armed = self.accept_armed.get(i).copied().unwrap_or(true);
            let fd = match self.listeners.get(i) {
                Some(Some(listener)) if !armed => types::Fd(listener.as_raw_fd()),
                _ => continue,
            };
            let entry = opcode::AcceptMulti::new(fd)
                .build()
                .user_data(Op::Accept(protocol).user_data());
            self.push_plain(entry);
            if let Some(a) = self.accept_armed.get_mut(i) {
                *a = true;
            }
        }
    }

    fn arm_recv(&mut self, index: usize) {
        let Some(Some(sock)) = self.socks.get_mut(index) else {
            return;
        };
        if sock.recv_armed || sock.closing.is_some() {
            return;
        }
        let fd = types::Fd(sock.stream.as_raw_fd());
        // One receive at a time, not multishot: a multishot receive goes on
        // filling buffers after the connection paused, until its cancel
        // lands, so a client that never reads could make the loop hold
        // (stash) most of the buffer pool per connection. One shot holds
        // at most one buffer.
        let buffer_bytes = u32::try_from(BUFFER_BYTES).expect("a buffer's size fits u32");
        let entry = opcode::Recv::new(fd, std::ptr::null_mut(), buffer_bytes)
            .buf_group(BUFFER_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
            .user_data(Op::Recv(sock.id).user_data());
        // SAFETY: the kernel receives into a provided buffer (the null
        // address is ignored under BUFFER_SELECT), and the provided
        // buffers outlive every operation (see `provide_all`).
        unsafe { self.push(entry) }
        // Queued (never dropped): the receive will complete.
        if let Some(Some(sock)) = self.socks.get_mut(index) {
            sock.recv_armed = true;
            sock.cancel_sent = false;
        }
    }

    fn cancel_recv(&mut self, index: usize) {
        let Some(Some(sock)) = self.socks.get_mut(index) else {
            return;
        };
        if !sock.recv_armed || sock.cancel_sent {
            return;
        }
        let target = Op::Recv(sock.id).user_data();
        let entry = opcode::AsyncCancel::new(target)
            .build()
            .user_data(Op::Cancel.user_data());
        self.push_plain(entry);
        if let Some(Some(sock)) = self.socks.get_mut(index) {
            sock.cancel_sent = true;
        }
    }

    /// Submits everything queued and waits for at least one completion (at
    /// most [`HOUSEKEEPING_INTERVAL`]), or only submits when `busy`.
    fn wait(&mut self, busy: bool) -> Result<(), Error> {
        self.drain_backlog();
        let result = if busy {
            self.ring.submit()
        } else {
            let ts = types::Timespec::from(HOUSEKEEPING_INTERVAL);
            let args = types::SubmitArgs::new().timespec(&ts);
            self.ring.submitter().submit_with_args(1, &args)
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(uring_error("submit and wait", e)),
        }
    }

    fn handle_completions(&mut self, worker: &mut Worker) {
        let mut completions = std::mem::take(&mut self.completions);
        completions.clear();
        completions.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for &(user_data, result, flags) in &completions {
            if !cqueue::more(flags) {
                self.ops = self.ops.saturating_sub(1);
            }
            match Op::from_user_data(user_data) {
                Some(Op::Accept(protocol)) => self.on_accept(protocol, result, flags, worker),
                Some(Op::Recv(id)) => self.on_recv(id, result, flags, worker),
                Some(Op::Send(id)) => self.on_send(id, result, worker),
                Some(Op::Provide) if result < 0 => {
                    tracing::error!(errno = -result, "io_uring could not take receive buffers");
                }
                Some(Op::Provide | Op::Cancel) => {}
                None => unreachable!("a completion for user_data {user_data:#x}, never submitted"),
            }
        }
        self.completions = completions;
    }

    fn on_accept(&mut self, protocol: Protocol, result: i32, flags: u32, worker: &mut Worker) {
        if !cqueue::more(flags) {
            if let Some(a) = self.accept_armed.get_mut(protocol as usize) {
                *a = false;
            }
        }
        if result < 0 {
            if result != -libc::ECANCELED {
                tracing::warn!(errno = -result, "accept failed");
            }
            return;
        }
        // SAFETY: a successful accept returns a new descriptor that nothing
        // else owns; the TcpStream takes sole ownership and closes it.
        let stream = unsafe { TcpStream::from_raw_fd(result) };
        let Some(id) = worker.open(stream.peer_addr().ok().map(|a| a.ip()), protocol) else {
            return; // full or draining: dropping the stream closes it
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY; answers may be delayed");
        }
        let index = id.index as usize;
        let Some(slot) = self.socks.get_mut(index) else {
            worker.close(id, CloseReason::Peer);
            return;
        };
        *slot = Some(USock {
            stream,
            id,
            recv_armed: false,
            cancel_sent: false,
            send_in_flight: false,
            send_buf: Vec::new(),
            stash: Vec::new(),
            starved: false,
            closing: None,
        });
        self.arm_recv(index);
    }

    fn sock_of(&mut self, index: usize, generation: u32) -> Option<&mut USock> {
        self.socks
            .get_mut(index)
            .and_then(Option::as_mut)
            .filter(|s| s.id.generation == generation)
    }

    fn on_recv(&mut self, id: ConnId, result: i32, flags: u32, worker: &mut Worker) {
        let (index, generation) = (id.index as usize, id.generation);
        let more = cqueue::more(flags);
        let bid = cqueue::buffer_select(flags);
        let offset = bid.map(|b| usize::from(b) * BUFFER_BYTES);
        let len = usize::try_from(result).unwrap_or(0).min(BUFFER_BYTES);
        let bytes = offset
            .and_then(|o| self.buffers.get(o..o + len))
            .unwrap_or(&[]);
        let Some(sock) = self
            .socks
            .get_mut(index)
            .and_then(Option::as_mut)
            .filter(|s| s.id.generation == generation)
        else {
            if let Some(bid) = bid {
                self.provide_one(bid);
            }
            return;
        };
        if !more {
            sock.recv_armed = false;
            sock.cancel_sent = false;
        }
        let id = sock.id;
        if result > 0 && sock.closing.is_none() {
            if sock.stash.is_empty() {
                let taken = worker.on_bytes(id, bytes);
                sock.stash
                    .extend_from_slice(bytes.get(taken..).unwrap_or(&[]));
            } else {
                sock.stash.extend_from_slice(bytes);
            }
        }
        let paused = !worker.wants_read(id) || !sock.stash.is_empty();
        if let Some(bid) = bid {
            self.provide_one(bid);
        }
        match result {
            // Half-closed: answer what arrived, then close (`close_due`).
            0 => worker.peer_closed(id),
            // Every buffer was in use: wait in line for one.
            r if r == -libc::ENOBUFS => self.wait_for_buffer(id),
            r if r < 0 && r != -libc::ECANCELED => self.begin_close(index, CloseReason::Peer),
            // A paused connection is not read until its output drains
            // (`pump`); else the next receive.
            _ if paused || more => {}
            _ => self.arm_recv(index),
        }
        self.try_release(index, worker);
    }

    fn on_send(&mut self, id: ConnId, result: i32, worker: &mut Worker) {
        let index = id.index as usize;
        let Some(sock) = self.sock_of(index, id.generation) else {
            return;
        };
        sock.send_in_flight = false;
        let id = sock.id;
        let closing = sock.closing.is_some();
        if result < 0 {
            self.begin_close(index, CloseReason::Peer);
        } else if !closing {
            worker.sent(id, result as usize);
            self.pump(index, worker);
            self.dirty.push(id);
        }
        self.try_release(index, worker);
    }

    /// After output drained: feeds stashed input, and re-arms the receive
    /// when the connection wants more.
    fn pump(&mut self, index: usize, worker: &mut Worker) {
        let Some(Some(sock)) = self.socks.get_mut(index) else {
            return;
        };
        if sock.closing.is_some() {
            return;
        }
        let id = sock.id;
        let taken = worker.on_bytes(id, &sock.stash);
        sock.stash.drain(..taken.min(sock.stash.len()));
        if sock.stash.is_empty() && worker.wants_read(id) {
            self.arm_recv(index);
        }
    }

    /// Starts sends for every connection with output and no send in flight.
    fn flush(&mut self, worker: &mut Worker) {
        let mut ids = std::mem::take(&mut self.ids);
        worker.take_dirty(&mut ids);
        ids.append(&mut self.dirty);
        for &id in &ids {
            self.send(id, worker);
        }
        ids.clear();
        self.ids = ids;
        let mut resumed = std::mem::take(&mut self.resumed);
        worker.take_resumed(&mut resumed);
        for &id in &resumed {
            self.resume_read(id, worker);
        }
        self.resumed = resumed;
    }

    /// A connection granted room for its large frame (see
    /// [`crate::budget`]): feeds it what its stash holds and arms its
    /// receive if it then wants input. It may have nothing to send, so no
    /// send completion would do it.
    fn resume_read(&mut self, id: ConnId, worker: &mut Worker) {
        let index = id.index as usize;
        let waiting = matches!(
            self.sock_of(index, id.generation),
            Some(s) if !s.recv_armed && s.closing.is_none()
        );
        if waiting {
            self.pump(index, worker);
        }
    }

    fn send(&mut self, id: ConnId, worker: &mut Worker) {
        let index = id.index as usize;
        let Some(sock) = self.sock_of(index, id.generation) else {
            return;
        };
        if sock.send_in_flight || sock.closing.is_some() {
            return;
        }
        let output = worker.output(id);
        if output.is_empty() {
            if worker.is_done(id) {
                self.begin_close(index, CloseReason::Done);
                self.try_release(index, worker);
            }
            return;
        }
        let n = output.len().min(SEND_CHUNK_BYTES);
        sock.send_buf.clear();
        sock.send_buf
            .extend_from_slice(output.get(..n).unwrap_or(&[]));
        let fd = types::Fd(sock.stream.as_raw_fd());
        let entry = opcode::Send::new(fd, sock.send_buf.as_ptr(), n as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(Op::Send(id).user_data());
        worker.send_blocked(id);
        // SAFETY: `send_buf` is not touched while `send_in_flight` (set
        // just below, before the loop looks at the socket again), and the
        // socket (with its buffer) is dropped only after this completes.
        unsafe { self.push(entry) }
        // Queued (never dropped): the send will complete.
        if let Some(sock) = self.sock_of(index, id.generation) {
            sock.send_in_flight = true;
        }
    }

    /// Shuts the socket down so its operations complete; the slot is
    /// released once they have.
    fn begin_close(&mut self, index: usize, reason: CloseReason) {
        let Some(Some(sock)) = self.socks.get_mut(index) else {
            return;
        };
        if sock.closing.is_none() {
            sock.closing = Some(reason);
            // A socket the peer already closed refuses the shutdown
            // (ENOTCONN); its operations complete either way.
            if let Err(e) = sock.stream.shutdown(Shutdown::Both) {
                tracing::debug!(error = %e, "shutting a closing socket down failed");
            }
        }
        self.cancel_recv(index);
    }

    /// Drops a closing socket whose operations have all completed, and
    /// releases its connection to the worker.
    fn try_release(&mut self, index: usize, worker: &mut Worker) {
        let Some(slot) = self.socks.get_mut(index) else {
            return;
        };
        let ready = slot
            .as_ref()
            .is_some_and(|s| s.closing.is_some() && !s.recv_armed && !s.send_in_flight);
        if !ready {
            return;
        }
        if let Some(sock) = slot.take() {
            worker.close(sock.id, sock.closing.unwrap_or(CloseReason::Done));
        }
    }

    /// Closes every connection the worker says is due (timed out or
    /// finished).
    fn close_due(&mut self, worker: &mut Worker) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        worker.closable(&mut due);
        for &(id, reason) in &due {
            self.begin_close(id.index as usize, reason);
            self.try_release(id.index as usize, worker);
        }
        self.due = due;
    }

    fn stop_accepting(&mut self) {
        for (i, protocol) in [Protocol::Binary, Protocol::Http].into_iter().enumerate() {
            if self.accept_armed.get(i).copied().unwrap_or(false) {
                let entry = opcode::AsyncCancel::new(Op::Accept(protocol).user_data())
                    .build()
                    .user_data(Op::Cancel.user_data());
                self.push_plain(entry);
            }
        }
        self.accept_armed = [false; 2];
        self.listeners = [None, None];
    }

    /// Closes every socket and waits until the kernel holds no operation,
    /// so the buffers can be freed. If that takes over [`FINISH_WAIT`],
    /// the buffers are leaked instead of freed.
    fn finish(mut self, worker: &mut Worker) {
        self.stop_accepting();
        for index in 0..self.socks.len() {
            self.begin_close(index, CloseReason::Abandoned);
            self.try_release(index, worker);
        }
        let deadline = Instant::now() + FINISH_WAIT;
        while self.ops > 0 && Instant::now() < deadline {
            if self.wait(false).is_err() {
                break;
            }
            self.handle_completions(worker);
        }
        if self.ops > 0 {
            tracing::error!(
                ops = self.ops,
                "io_uring operations outstanding at exit; leaking their buffers"
            );
            std::mem::forget(self);
        }
    }
}
