//! `cx synth --rows N --out FILE`: writes a synthetic click log (the
//! generator of `docs/SYNTHETIC_DATA.md`) as CSV, for training, tests and
//! load generation.

use super::{Streams, SynthArgs};
use crate::error::{Error, Result};
use cx_datasets::synth::{CsvWriter, Generator, SynthConfig};
use std::io::Write;

/// Most rows one call writes.
pub const ROWS_MAX: u64 = 50_000_000;

/// Runs the command.
pub fn synth(args: &SynthArgs, streams: &mut Streams<'_>) -> Result<()> {
    if args.rows > ROWS_MAX {
        return Err(Error::Mismatch(format!(
            "--rows {} is more than the limit of {ROWS_MAX}",
            args.rows
        )));
    }
    let config = SynthConfig {
        offers: args.offers,
        ctr: args.ctr,
        user_bias_sd: args.user_bias_sd,
        ..SynthConfig::default()
    };
    let mut generator = Generator::new(config, args.seed)
        .map_err(|e| Error::Mismatch(format!("synthetic data config: {e}")))?;
    generator.seek(args.first_row);
    match &args.out {
        None => write_rows(&mut generator, args.rows, &mut *streams.stdout),
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|source| Error::File {
                path: path.display().to_string(),
                source,
            })?;
            write_rows(&mut generator, args.rows, std::io::BufWriter::new(file))
        }
    }
}

fn write_rows<W: Write>(generator: &mut Generator, rows: u64, out: W) -> Result<()> {
    let csv_error = |e: cx_datasets::Error| Error::Mismatch(format!("writing synthetic rows: {e}"));
    let mut writer = CsvWriter::new(out).map_err(csv_error)?;
    for _ in 0..rows {
        writer.write_row(&generator.next_row()).map_err(csv_error)?;
    }
    writer
        .into_inner()
        .map_err(csv_error)?
        .flush()
        .map_err(Error::Output)
}
