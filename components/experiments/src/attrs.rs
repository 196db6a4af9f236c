//! A user's attributes as assignment reads them, and the string GrowthBook
//! hashes for an attribute value.
//!
//! [`Attributes`] is what [`crate::Experiment::assign_with`] looks names up
//! in: a JSON object (GrowthBook's context `attributes`), a slice of
//! `(name, value)` pairs, or one hash value ([`OneAttribute`]). Lookups
//! borrow; nothing is allocated.
//!
//! GrowthBook's JavaScript SDK concatenates the attribute value with the
//! seed, so a value is hashed as JavaScript's `String(value)` would write it,
//! and a "falsy" value (`""`, `0`, `false`, `null`, a missing attribute)
//! puts the user in no experiment. [`hash_text`] does the same for strings,
//! numbers and booleans. Objects and arrays, which JavaScript would hash as
//! `"[object Object]"` or their comma-joined items, count as missing here.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// One attribute value, borrowed from wherever the attributes live.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    /// A string.
    Str(&'a str),
    /// A number (JSON numbers are read as `f64`, as JavaScript reads them).
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// `null`.
    Null,
    /// An object or an array.
    Composite,
}

impl<'a> AttrValue<'a> {
    /// The value of a JSON value.
    pub fn of_json(value: &'a Value) -> Self {
        match value {
            Value::String(s) => Self::Str(s),
            Value::Number(n) => Self::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::Bool(b) => Self::Bool(*b),
            Value::Null => Self::Null,
            Value::Array(_) | Value::Object(_) => Self::Composite,
        }
    }
}

/// Where assignment looks attributes up by name.
pub trait Attributes {
    /// The attribute `name`, or `None` when there is none.
    fn attribute(&self, name: &str) -> Option<AttrValue<'_>>;
}

/// A JSON object of attributes. A name is first looked up literally; when
/// absent, a dotted name (`"user.id"`) walks nested objects, as GrowthBook's
/// SDK does.
impl Attributes for Map<String, Value> {
    fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
        if let Some(value) = self.get(name) {
            return Some(AttrValue::of_json(value));
        }
        let mut parts = name.split('.');
        let mut value = self.get(parts.next()?)?;
        for part in parts {
            value = value.as_object()?.get(part)?;
        }
        Some(AttrValue::of_json(value))
    }
}

/// A JSON value holding an object of attributes; any other value has none.
impl Attributes for Value {
    fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
        self.as_object()?.attribute(name)
    }
}

/// `(name, value)` string pairs; the first pair with the name wins.
impl Attributes for [(&str, &str)] {
    fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
        self.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| AttrValue::Str(v))
    }
}

/// One attribute: the experiment's hash attribute and its value. Every
/// other name is missing.
#[derive(Debug, Clone, Copy)]
pub struct OneAttribute<'a> {
    /// The attribute's name.
    pub name: &'a str,
    /// Its value.
    pub value: &'a str,
}

impl Attributes for OneAttribute<'_> {
    fn attribute(&self, name: &str) -> Option<AttrValue<'_>> {
        (name == self.name).then_some(AttrValue::Str(self.value))
    }
}

/// The string an attribute value is hashed as, borrowed or written into a
/// small inline buffer (numbers, `true`).
#[derive(Debug, Clone, Copy)]
pub struct HashText<'a> {
    borrowed: Option<&'a str>,
    inline: [u8; INLINE],
    len: usize,
}

/// Longest text of a JavaScript number (`-1.2345678901234567e-308` and
/// `-0.0000012345678901234567` are 24-25 bytes).
const INLINE: usize = 32;

impl<'a> HashText<'a> {
    fn borrowed(s: &'a str) -> Self {
        Self {
            borrowed: Some(s),
            inline: [0; INLINE],
            len: 0,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match self.borrowed {
            Some(s) => s,
            // Only ASCII is ever written inline.
            None => std::str::from_utf8(&self.inline[..self.len]).unwrap_or(""),
        }
    }
}

/// The string GrowthBook hashes for `value`, or `None` when the value is
/// falsy in JavaScript (`""`, `0`, `NaN`, `false`, `null`) or an object or
/// array; such a user is in no experiment.
pub fn hash_text(value: AttrValue<'_>) -> Option<HashText<'_>> {
    match value {
        AttrValue::Str("") | AttrValue::Bool(false) | AttrValue::Null | AttrValue::Composite => {
            None
        }
        AttrValue::Str(s) => Some(HashText::borrowed(s)),
        AttrValue::Bool(true) => Some(HashText::borrowed("true")),
        AttrValue::Number(x) if x == 0.0 || x.is_nan() => None,
        AttrValue::Number(x) => {
            let mut text = HashText {
                borrowed: None,
                inline: [0; INLINE],
                len: 0,
            };
            let mut cursor = Cursor {
                buf: &mut text.inline,
                len: 0,
            };
            write_js_number(&mut cursor, x).ok()?;
            text.len = cursor.len;
            Some(text)
        }
    }
}

/// A `fmt::Write` into a fixed buffer; fails when it is full.
struct Cursor<'b> {
    buf: &'b mut [u8; INLINE],
    len: usize,
}

impl std::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes `x` as JavaScript's `Number.prototype.toString()` does: the
/// shortest digits that read back as `x`, positional for decimal exponents
/// from -7 to 20, else `d.ddde+NN`.
pub fn write_js_number(out: &mut impl std::fmt::Write, x: f64) -> std::fmt::Result {
    if x.is_nan() {
        return out.write_str("NaN");
    }
    if x.is_infinite() {
        return out.write_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
    }
    if x == 0.0 {
        return out.write_str("0");
    }
    if x < 0.0 {
        out.write_char('-')?;
    }
    // Rust's `{:e}` writes the shortest round-trip digits: "1.2345e-7".
    let mut sci = [0u8; INLINE];
    let mut cursor = Cursor {
        buf: &mut sci,
        len: 0,
    };
    write!(cursor, "{:e}", x.abs())?;
    let len = cursor.len;
    let sci = std::str::from_utf8(&sci[..len]).map_err(|_| std::fmt::Error)?;
    let (mantissa, exponent) = sci.split_once('e').ok_or(std::fmt::Error)?;
    let exponent: i32 = exponent.parse().map_err(|_| std::fmt::Error)?;
    let (lead, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    write_js_digits(out, lead, rest, exponent + 1)
}

/// Places the digits `lead` + `rest` (value `0.DIGITS * 10^point`) the way
/// JavaScript does.
fn write_js_digits(
    out: &mut impl std::fmt::Write,
    lead: &str,
    rest: &str,
    point: i32,
) -> std::fmt::Result {
    let k = (lead.len() + rest.len()) as i32;
    let digit = |i: i32| -> char {
        let i = i as usize;
        let b = if i < lead.len() {
            lead.as_bytes()[i]
        } else {
            rest.as_bytes()[i - lead.len()]
        };
        char::from(b)
    };
    if k <= point && point <= 21 {
        (0..k).try_for_each(|i| out.write_char(digit(i)))?;
        (k..point).try_for_each(|_| out.write_char('0'))
    } else if 0 < point && point <= 21 {
        (0..point).try_for_each(|i| out.write_char(digit(i)))?;
        out.write_char('.')?;
        (point..k).try_for_each(|i| out.write_char(digit(i)))
    } else if -6 < point && point <= 0 {
        out.write_str("0.")?;
        (point..0).try_for_each(|_| out.write_char('0'))?;
        (0..k).try_for_each(|i| out.write_char(digit(i)))
    } else {
        out.write_str(lead)?;
        if !rest.is_empty() {
            out.write_char('.')?;
            out.write_str(rest)?;
        }
        let e = point - 1;
        write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(x: f64) -> String {
        let mut s = String::new();
        write_js_number(&mut s, x).unwrap();
        s
    }

    #[test]
    fn numbers_are_written_as_javascript_writes_them() {
        // Values and strings as node's String(x) prints them.
        let cases = [
            (1.0, "1"),
            (-1.0, "-1"),
            (123.0, "123"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.000001, "0.000001"),
            (0.0000001, "1e-7"),
            (1.2345e-7, "1.2345e-7"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (123456789.125, "123456789.125"),
            (9007199254740993.0, "9007199254740992"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-0.0000012345678901234567, "-0.0000012345678901234567"),
        ];
        for (x, want) in cases {
            assert_eq!(js(x), want, "{x:e}");
        }
    }

    #[test]
    fn falsy_values_have_no_hash_text() {
        for v in [
            AttrValue::Str(""),
            AttrValue::Number(0.0),
            AttrValue::Number(f64::NAN),
            AttrValue::Bool(false),
            AttrValue::Null,
            AttrValue::Composite,
        ] {
            assert!(hash_text(v).is_none(), "{v:?}");
        }
        assert_eq!(hash_text(AttrValue::Bool(true)).unwrap().as_str(), "true");
        assert_eq!(hash_text(AttrValue::Number(42.0)).unwrap().as_str(), "42");
        assert_eq!(hash_text(AttrValue::Str("u1")).unwrap().as_str(), "u1");
    }

    #[test]
    fn dotted_names_walk_nested_objects_after_literal_keys() {
        let attrs: Map<String, Value> = serde_json::from_str(
            r#"{"user": {"id": "nested"}, "a.b": "literal", "a": {"b": "no"}}"#,
        )
        .unwrap();
        assert_eq!(attrs.attribute("user.id"), Some(AttrValue::Str("nested")));
        assert_eq!(attrs.attribute("a.b"), Some(AttrValue::Str("literal")));
        assert_eq!(attrs.attribute("user.name"), None);
        assert_eq!(attrs.attribute("missing"), None);
    }
}
