//! The epoll event loop (through `mio`): the fallback when io_uring is not
//! available, and the path `--io epoll` forces. It owns one worker's
//! listener and sockets and nothing else; every protocol and engine step is
//! the [`Worker`]'s, shared with the io_uring loop.
//!
//! # Loop
//!
//! Each turn: wait for readiness (at most [`HOUSEKEEPING_INTERVAL`]);
//! accept; read every readable connection that wants input into one
//! scratch buffer (owned by the loop, [`READ_CHUNK_BYTES`]) and hand the
//! bytes to the worker; run the engine once for everything read; write each
//! connection's coalesced output with one `write` per turn (more only if
//! the kernel takes it all); close finished connections. Readiness is
//! edge-triggered, so a connection stays on the `ready` list until a read
//! returns `WouldBlock` (or it is closed): a paused connection (a slow
//! client) keeps its place and is read again once its output drains.

use crate::error::Error;
use crate::serve::{unix_now_ns, Control, Listeners, LoopExit, HOUSEKEEPING_INTERVAL};
use crate::worker::{CloseReason, ConnId, Protocol, Worker};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

/// Bytes read from a socket per `read` call.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

/// Readiness events taken per wait.
pub const EVENTS_MAX: usize = 1024;

const LISTENER: Token = Token(usize::MAX);
const HTTP_LISTENER: Token = Token(usize::MAX - 1);

struct Sock {
    stream: TcpStream,
    id: ConnId,
    readable: bool,
    writable: bool,
    /// On the `ready` list (readable and not yet drained).
    listed: bool,
}

/// One worker's epoll loop state.
struct EpollLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    http_listener: Option<TcpListener>,
    socks: Vec<Option<Sock>>,
    /// Slot indexes that may have input waiting.
    ready: Vec<usize>,
    scratch: Vec<u8>,
    dirty: Vec<ConnId>,
    ids: Vec<ConnId>,
    /// Scratch for [`Worker::closable`].
    due: Vec<(ConnId, CloseReason)>,
}

fn event_loop_error(what: &str, source: std::io::Error) -> Error {
    Error::EventLoop {
        io: "epoll",
        what: what.into(),
        source,
    }
}

/// Runs one worker on its listeners until shutdown completes.
pub fn run(
    listeners: Listeners,
    mut worker: Worker,
    control: &Control,
    connections_max: usize,
) -> Result<LoopExit, Error> {
    let nonblocking = |l: std::net::TcpListener| {
        l.set_nonblocking(true)
            .map(|()| TcpListener::from_std(l))
            .map_err(|e| event_loop_error("set a listener non-blocking", e))
    };
    let http_listener = listeners.http.map(nonblocking).transpose()?;
    let mut ev = EpollLoop {
        poll: Poll::new().map_err(|e| event_loop_error("create the poll", e))?,
        listener: Some(nonblocking(listeners.binary)?),
        http_listener,
        socks: (0..connections_max).map(|_| None).collect(),
        ready: Vec::with_capacity(connections_max),
        scratch: vec![0; READ_CHUNK_BYTES],
        dirty: Vec::with_capacity(connections_max),
        ids: Vec::with_capacity(connections_max),
        due: Vec::with_capacity(connections_max),
    };
    if let Some(l) = ev.listener.as_mut() {
        ev.poll
            .registry()
            .register(l, LISTENER, Interest::READABLE)
            .map_err(|e| event_loop_error("register the listener", e))?;
    }
    if let Some(l) = ev.http_listener.as_mut() {
        ev.poll
            .registry()
            .register(l, HTTP_LISTENER, Interest::READABLE)
            .map_err(|e| event_loop_error("register the HTTP listener", e))?;
    }
    let mut events = Events::with_capacity(EVENTS_MAX);
    let mut state = control.watch();
    loop {
        let busy = worker.keeps_polling() || ev.has_ready_input(&worker);
        let timeout = if busy {
            Some(std::time::Duration::ZERO)
        } else {
            Some(HOUSEKEEPING_INTERVAL)
        };
        if let Err(e) = ev.poll.poll(&mut events, timeout) {
            if e.kind() != ErrorKind::Interrupted {
                return Err(event_loop_error("wait", e));
            }
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                ev.accept(&mut worker, Protocol::Binary);
            } else if event.token() == HTTP_LISTENER {
                ev.accept(&mut worker, Protocol::Http);
            } else {
                ev.mark(
                    event.token().0,
                    event.is_readable() || event.is_read_closed(),
                    event.is_writable(),
                );
            }
        }
        ev.read_ready(&mut worker);
        worker.run_engine(unix_now_ns());
        ev.flush(&mut worker);
        if state.due(Instant::now()) {
            if let Some(exit) = state.housekeeping(&mut worker, control) {
                ev.close_all(&mut worker, CloseReason::Abandoned);
                worker.finish();
                return Ok(exit);
            }
            if worker.is_draining() {
                ev.stop_accepting();
            }
            ev.close_due(&mut worker);
            if worker.is_draining() && worker.open_connections() == 0 {
                worker.finish();
                return Ok(LoopExit::Drained);
            }
        }
    }
}

impl EpollLoop {
    fn accept(&mut self, worker: &mut Worker, protocol: Protocol) {
        loop {
            let listener = match protocol {
                Protocol::Binary => self.listener.as_ref(),
                Protocol::Http => self.http_listener.as_ref(),
            };
            let Some(listener) = listener else {
                return;
            };
            let (mut stream, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    return;
                }
            };
            let Some(id) = worker.open(Some(peer.ip()), protocol) else {
                // Full or draining: dropping the stream closes it.
                continue;
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY; answers may be delayed");
            }
            let index = id.index as usize;
            let registered = self.poll.registry().register(
                &mut stream,
                Token(index),
                Interest::READABLE | Interest::WRITABLE,
            );
            if registered.is_err() {
                worker.close(id, CloseReason::Peer);
                continue;
            }
            if let Some(slot) = self.socks.get_mut(index) {
                *slot = Some(Sock {
                    stream,
                    id,
                    readable: false,
                    writable: true,
                    listed: false,
                });
            }
        }
    }

    fn mark(&mut self, index: usize, readable: bool, writable: bool) {
        let Some(Some(sock)) = self.socks.get_mut(index) else {
            return;
        };
        if writable {
            sock.writable = true;
            self.dirty.push(sock.id);
        }
        if readable {
            sock.readable = true;
            if !sock.listed {
                sock.listed = true;
                self.ready.push(index);
            }
        }
    }

    fn has_ready_input(&self, worker: &Worker) -> bool {
        self.ready.iter().any(|&i| {
            matches!(self.socks.get(i), Some(Some(s)) if s.readable && worker.wants_read(s.id))
        })
    }

    /// Reads every listed connection that wants input, once per turn up to
    /// its read capacity; drops from the list those drained or closed.
    fn read_ready(&mut self, worker: &mut Worker) {
        let mut i = 0;
        while i < self.ready.len() {
            let index = self.ready.get(i).copied().unwrap_or(usize::MAX);
            let keep = self.read_one(index, worker);
            if keep {
                i += 1;
            } else {
                self.ready.swap_remove(i);
                if let Some(Some(sock)) = self.socks.get_mut(index) {
                    sock.listed = false;
                }
            }
        }
    }

    /// Returns whether the connection stays on the ready list.
    fn read_one(&mut self, index: usize, worker: &mut Worker) -> bool {
        let Some(Some(sock)) = self.socks.get_mut(index) else {
            return false;
        };
        let id = sock.id;
        loop {
            if !sock.readable {
                return false;
            }
            let capacity = worker.read_capacity(id).min(self.scratch.len());
            if !worker.wants_read(id) || capacity == 0 {
                return true;
            }
            let buf = self.scratch.get_mut(..capacity).unwrap_or(&mut []);
            match sock.stream.read(buf) {
                Ok(0) => {
                    // Half-closed: answer what arrived, then close.
                    worker.peer_closed(id);
                    sock.readable = false;
                    return false;
                }
                Ok(n) => {
                    worker.on_bytes(id, &buf[..n]);
                    if n < capacity {
                        // Short read: probably drained; the next read says.
                        continue;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    sock.readable = false;
                    return false;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close(index, worker, CloseReason::Peer);
                    return false;
                }
            }
        }
    }

    /// Writes the output of every connection that has some, then resumes
    /// paused ones and closes finished ones.
    fn flush(&mut self, worker: &mut Worker) {
        let mut dirty = std::mem::take(&mut self.ids);
        worker.take_dirty(&mut dirty);
        dirty.append(&mut self.dirty);
        for &id in &dirty {
            self.write_one(id, worker);
        }
        // Connections granted room for a large frame need nothing here: a
        // read that found no room left them on the ready list.
        worker.take_resumed(&mut dirty);
        dirty.clear();
        self.ids = dirty;
    }

    fn write_one(&mut self, id: ConnId, worker: &mut Worker) {
        let index = id.index as usize;
        let Some(Some(sock)) = self.socks.get_mut(index) else {
            return;
        };
        if sock.id != id {
            return;
        }
        let was_paused = !worker.wants_read(id);
        while sock.writable && !worker.output(id).is_empty() {
            match sock.stream.write(worker.output(id)) {
                Ok(n) => worker.sent(id, n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    sock.writable = false;
                    worker.send_blocked(id);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.close(index, worker, CloseReason::Peer);
                    return;
                }
            }
        }
        if was_paused && !worker.is_write_paused(id) {
            // Decode what was held back while the client did not read.
            worker.on_bytes(id, &[]);
        }
        if worker.is_done(id) {
            self.close(index, worker, CloseReason::Done);
        }
    }

    fn close(&mut self, index: usize, worker: &mut Worker, reason: CloseReason) {
        let Some(slot) = self.socks.get_mut(index) else {
            return;
        };
        if let Some(mut sock) = slot.take() {
            // Dropping the socket closes it, which deregisters it anyway;
            // a failure here changes nothing but is worth knowing.
            if let Err(e) = self.poll.registry().deregister(&mut sock.stream) {
                tracing::debug!(error = %e, "deregistering a closed connection failed");
            }
            worker.close(sock.id, reason);
        }
    }

    /// Closes every connection the worker says is due (timed out or
    /// finished).
    fn close_due(&mut self, worker: &mut Worker) {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        worker.closable(&mut due);
        for &(id, reason) in &due {
            self.close(id.index as usize, worker, reason);
        }
        self.due = due;
    }

    fn close_all(&mut self, worker: &mut Worker, reason: CloseReason) {
        for index in 0..self.socks.len() {
            self.close(index, worker, reason);
        }
    }

    fn stop_accepting(&mut self) {
        let listeners = [self.listener.take(), self.http_listener.take()];
        for mut listener in listeners.into_iter().flatten() {
            if let Err(e) = self.poll.registry().deregister(&mut listener) {
                tracing::debug!(error = %e, "deregistering a listener failed");
            }
        }
    }
}
