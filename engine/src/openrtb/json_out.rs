//! JSON text written straight into a byte buffer, for the BidResponse the
//! bidder sends ([`super::response_json`]): strings, numbers and the
//! punctuation between object members.
//!
//! Owns no state. The trade-off is in [`write_str`]: a bid's markup is a
//! kilobyte or more of HTML whose bytes almost all go out as they are, so
//! the scan tests eight bytes at a time (one `u64`, SWAR) for a byte that
//! JSON must escape, and copies whole runs between them. The obviously
//! correct reference, one byte at a time, is in the tests, which check that
//! the two agree.

/// `0x01` in every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `word` is 0.
fn has_zero_byte(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGHS != 0
}

/// Whether any of the eight bytes in `word` must be escaped in a JSON
/// string: a control character (under 0x20), `"` or `\`.
fn word_needs_escape(word: u64) -> bool {
    // A byte under 0x20 wraps below 0 when 0x20 is taken from it (exact
    // for "any byte" when the bound is at most 0x80).
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
    below_space
        || has_zero_byte(word ^ (ONES * u64::from(b'"')))
        || has_zero_byte(word ^ (ONES * u64::from(b'\\')))
}

/// The escape of one byte in a JSON string, or `None` when it goes out as
/// it is. Control characters without a short form become `\u00XX`.
fn escape_of(byte: u8) -> Option<Escape> {
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        0x00..=0x1f => return Some(Escape::Unicode(byte)),
        _ => return None,
    };
    Some(Escape::Short(short))
}

/// How a byte is escaped.
#[derive(Clone, Copy)]
enum Escape {
    /// `\` and this letter.
    Short(u8),
    /// `\u00` and this byte in two hex digits.
    Unicode(u8),
}

fn push_escape(out: &mut Vec<u8>, escape: Escape) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match escape {
        Escape::Short(letter) => out.extend_from_slice(&[b'\\', letter]),
        Escape::Unicode(byte) => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0xf)],
        ]),
    }
}

/// Appends `text` as a JSON string, quotes included.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    write_str_contents(out, text);
    out.push(b'"');
}

/// Appends `text` escaped as the inside of a JSON string (no quotes).
pub fn write_str_contents(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut run_start = 0;
    let mut at = 0;
    while at < bytes.len() {
        if let Some(word) = bytes.get(at..at + 8) {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(word);
            if !word_needs_escape(u64::from_le_bytes(eight)) {
                at += 8;
                continue;
            }
        }
        if let Some(escape) = escape_of(bytes[at]) {
            out.extend_from_slice(&bytes[run_start..at]);
            push_escape(out, escape);
            run_start = at + 1;
        }
        at += 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
}

/// Appends `value` as serde_json writes it (shortest round-trip form;
/// `null` when not finite).
pub fn write_f64(out: &mut Vec<u8>, value: f64) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &value);
}

/// Appends `value` in decimal.
pub fn write_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends `value` in decimal.
pub fn write_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends `,"name":` (or `"name":` after `{`), for a member `name`
/// that needs no escaping.
pub fn write_key(out: &mut Vec<u8>, name: &str, first: bool) {
    debug_assert!(name.bytes().all(|b| escape_of(b).is_none()));
    if !first {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obviously correct escape: every byte looked at alone.
    fn write_str_by_byte(out: &mut Vec<u8>, text: &str) {
        out.push(b'"');
        for &byte in text.as_bytes() {
            match escape_of(byte) {
                Some(escape) => push_escape(out, escape),
                None => out.push(byte),
            }
        }
        out.push(b'"');
    }

    #[test]
    fn every_byte_value_is_classified_alike_by_words_and_alone() {
        for byte in 0..=255u8 {
            for position in 0..8 {
                let mut eight = [b'a'; 8];
                eight[position] = byte;
                assert_eq!(
                    word_needs_escape(u64::from_le_bytes(eight)),
                    escape_of(byte).is_some(),
                    "byte {byte:#04x} at {position}"
                );
            }
        }
    }

    #[test]
    fn strings_parse_back_to_themselves() {
        for text in [
            "",
            "a",
            "\"",
            "\\",
            "\u{0}\u{1f}\u{7f}",
            "é😀",
            "<a href=\"x\">\n</a>",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, text);
            let back: String = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(back, text);
        }
    }

    proptest! {
        #[test]
        fn words_and_bytes_agree(text in "[a<\" \\\\\n\t\u{1}\u{e9}\u{1F600}]{0,70}") {
            let (mut by_word, mut by_byte) = (Vec::new(), Vec::new());
            write_str(&mut by_word, &text);
            write_str_by_byte(&mut by_byte, &text);
            prop_assert_eq!(&by_word, &by_byte);
            let back: String = serde_json::from_slice(&by_word).expect("valid JSON");
            prop_assert_eq!(back, text);
        }

        #[test]
        fn numbers_are_written_as_serde_json_writes_them(
            x in proptest::num::f64::ANY,
            n: u64,
            m: i64,
        ) {
            let mut out = Vec::new();
            write_f64(&mut out, x);
            prop_assert_eq!(out, serde_json::to_vec(&x).expect("encoded"));
            let mut out = Vec::new();
            write_u64(&mut out, n);
            prop_assert_eq!(out, n.to_string().into_bytes());
            let mut out = Vec::new();
            write_i64(&mut out, m);
            prop_assert_eq!(out, m.to_string().into_bytes());
        }
    }
}
