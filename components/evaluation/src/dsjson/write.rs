//! Writing a DSJSON log, one event per line.

use super::LoggedEvent;
use crate::error::{Error, Result};
use std::io::Write;

/// Writes [`LoggedEvent`]s as DSJSON lines. Every line written passes the
/// reader's checks; an event that would not is refused before anything of
/// it is written.
pub struct DsjsonWriter<W> {
    output: W,
    events: u64,
}

impl<W: Write> DsjsonWriter<W> {
    /// A writer to `output` (buffer it: each event is a few small writes).
    pub fn new(output: W) -> Self {
        Self { output, events: 0 }
    }

    /// Writes one event as one line.
    pub fn write(&mut self, event: &LoggedEvent) -> Result<()> {
        let line = event.to_line()?;
        let failed = |source: std::io::Error| Error::Write {
            event: event.event_id.clone(),
            source,
        };
        serde_json::to_writer(&mut self.output, &line).map_err(|e| failed(e.into()))?;
        self.output.write_all(b"\n").map_err(failed)?;
        self.events += 1;
        Ok(())
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Flushes the output and hands it back.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.output.flush()?;
        Ok(self.output)
    }
}
