//! A request body as the OpenRTB parser reads it: as sent, or inflated
//! from gzip (`Content-Encoding: gzip`) under
//! [`INFLATED_BYTES_MAX`](super::limits::INFLATED_BYTES_MAX), so that a
//! small body cannot inflate into an unbounded one (a gzip bomb costs at
//! most that many bytes and one pass of the inflater).

use super::limits::INFLATED_BYTES_MAX;
use std::io::Read;

/// Why a body could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// It inflates past the limit (`413`).
    TooLarge,
    /// It is not valid gzip (`400`), with the inflater's message.
    Corrupt(String),
}

/// Inflates a gzip `body` into `out` (cleared first; its capacity is
/// reused), at most [`INFLATED_BYTES_MAX`] bytes.
pub fn inflate(body: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
    out.clear();
    let decoder = flate2::read::GzDecoder::new(body);
    // One byte over the limit tells "exactly at the limit" from "over".
    let mut limited = decoder.take(INFLATED_BYTES_MAX as u64 + 1);
    match limited.read_to_end(out) {
        Ok(n) if n > INFLATED_BYTES_MAX => Err(BodyError::TooLarge),
        Ok(_) => Ok(()),
        Err(e) => Err(BodyError::Corrupt(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_round_trips() {
        let mut out = Vec::new();
        inflate(&gzip(b"{\"id\":\"1\"}"), &mut out).unwrap();
        assert_eq!(out, b"{\"id\":\"1\"}");
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b' '; INFLATED_BYTES_MAX * 8]);
        assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
        let mut out = Vec::new();
        assert_eq!(inflate(&bomb, &mut out), Err(BodyError::TooLarge));
        assert!(out.len() <= INFLATED_BYTES_MAX + 1);
        let exact = gzip(&vec![b' '; INFLATED_BYTES_MAX]);
        assert_eq!(inflate(&exact, &mut out), Ok(()));
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut out = Vec::new();
        assert!(matches!(
            inflate(b"not gzip", &mut out),
            Err(BodyError::Corrupt(_))
        ));
        let mut truncated = gzip(b"{\"id\":\"1\"}");
        truncated.truncate(truncated.len() - 4);
        assert!(matches!(
            inflate(&truncated, &mut out),
            Err(BodyError::Corrupt(_))
        ));
    }
}
