//! A connection's two byte buffers and their bounds, the same for both
//! protocols (the binary one, [`super::Connection`], and HTTP,
//! [`crate::http::HttpConnection`]); see the [`super`] module docs,
//! "Buffers and limits", for the rules.

use super::{READ_BUFFER_KEEP_BYTES, READ_BUFFER_MAX, WRITE_BUFFER_KEEP_BYTES, WRITE_PAUSE_BYTES};

/// The read and write buffers of one connection.
#[derive(Debug)]
pub struct IoBuffers {
    /// Received bytes not yet decoded.
    pub(crate) read: Vec<u8>,
    /// Answers not yet sent, from `write_pos`.
    pub(crate) write: Vec<u8>,
    /// Bytes of `write` already reported sent.
    write_pos: usize,
    /// Output size at which decoding pauses: [`WRITE_PAUSE_BYTES`], or
    /// less while the server's output budget is spent.
    write_pause_bytes: usize,
    /// Bytes the read buffer may hold past [`READ_BUFFER_KEEP_BYTES`]: what
    /// the event loop reserved for the message now arriving.
    large_reserved: usize,
    /// Length of the message now partly held, once known (0 when none is
    /// partly held).
    pub(crate) partial_bytes: usize,
}

impl Default for IoBuffers {
    fn default() -> Self {
        Self::new()
    }
}

impl IoBuffers {
    /// Empty buffers that may take a maximal message (a server under an
    /// input budget lowers that at open, [`Self::set_large_reserved`]).
    pub fn new() -> Self {
        Self {
            read: Vec::new(),
            write: Vec::new(),
            write_pos: 0,
            write_pause_bytes: WRITE_PAUSE_BYTES,
            large_reserved: READ_BUFFER_MAX - READ_BUFFER_KEEP_BYTES,
            partial_bytes: 0,
        }
    }

    /// Bytes the read buffer can take now: none while output is paused,
    /// else up to [`READ_BUFFER_MAX`] as reserved.
    pub fn read_capacity(&self) -> usize {
        if self.is_write_paused() {
            return 0;
        }
        let limit = (READ_BUFFER_KEEP_BYTES + self.large_reserved).min(READ_BUFFER_MAX);
        limit.saturating_sub(self.read.len())
    }

    /// Bytes past [`READ_BUFFER_KEEP_BYTES`] the message now arriving
    /// needs (0 when none larger than that is partly held).
    pub fn large_frame_bytes(&self) -> usize {
        self.partial_bytes.saturating_sub(READ_BUFFER_KEEP_BYTES)
    }

    /// Lets the read buffer hold `bytes` past [`READ_BUFFER_KEEP_BYTES`].
    pub fn set_large_reserved(&mut self, bytes: usize) {
        self.large_reserved = bytes;
    }

    /// Whether the output is over the pause threshold.
    pub fn is_write_paused(&self) -> bool {
        self.output().len() >= self.write_pause_bytes
    }

    /// Sets the pause threshold, clamped to `1..=WRITE_PAUSE_BYTES`.
    pub fn set_write_pause_bytes(&mut self, bytes: usize) {
        self.write_pause_bytes = bytes.clamp(1, WRITE_PAUSE_BYTES);
    }

    /// Answer bytes not yet sent, in order.
    pub fn output(&self) -> &[u8] {
        self.write.get(self.write_pos..).unwrap_or(&[])
    }

    /// Records that the first `n` bytes of [`Self::output`] were sent
    /// (clamped to its length); shrinks the buffer back to
    /// [`WRITE_BUFFER_KEEP_BYTES`] once all of it is.
    pub fn consume_output(&mut self, n: usize) {
        self.write_pos = (self.write_pos + n).min(self.write.len());
        if self.write_pos == self.write.len() {
            self.write.clear();
            self.write_pos = 0;
            if self.write.capacity() > WRITE_BUFFER_KEEP_BYTES {
                self.write.shrink_to(WRITE_BUFFER_KEEP_BYTES);
            }
        } else if self.write_pos >= WRITE_PAUSE_BYTES / 2 {
            self.write.drain(..self.write_pos);
            self.write_pos = 0;
        }
    }

    /// Appends up to [`Self::read_capacity`] bytes of `bytes`; returns how
    /// many.
    pub fn take_input(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.read_capacity());
        self.read.extend_from_slice(bytes.get(..n).unwrap_or(&[]));
        n
    }

    /// Drops the first `consumed` bytes of `buf` (the read buffer, taken
    /// out while decoding) and puts the rest back, shrinking it back to
    /// [`READ_BUFFER_KEEP_BYTES`] once a large message is gone; drops all
    /// of it when `discard`.
    pub fn restore_read(&mut self, mut buf: Vec<u8>, consumed: usize, discard: bool) {
        if discard {
            buf.clear();
        } else {
            buf.drain(..consumed.min(buf.len()));
        }
        if buf.len() <= READ_BUFFER_KEEP_BYTES && buf.capacity() > READ_BUFFER_KEEP_BYTES {
            buf.shrink_to(READ_BUFFER_KEEP_BYTES);
        }
        self.read = buf;
    }
}
