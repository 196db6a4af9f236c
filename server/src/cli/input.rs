//! The JSON batch `cx model run` reads: an array of feature vectors, or an
//! object whose `"x"` field holds one.

use crate::error::{Error, Result};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// A batch of feature vectors, `[rows][inputs]` row-major, every value finite.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Number of feature vectors.
    pub rows: usize,
    /// Features per row.
    pub inputs: usize,
    /// The features, row after row.
    pub x: Vec<f32>,
}

/// How an input source is named in messages: the path as given, or `stdin` for `-`.
pub fn origin(path: &Path) -> String {
    if is_stdin(path) {
        "stdin".into()
    } else {
        path.display().to_string()
    }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A reader of `path`, or `stdin` when `path` is `-`, streamed (not read
/// whole); a file that cannot be opened is refused naming it.
pub fn open_source<'a>(path: &Path, stdin: &'a mut dyn Read) -> Result<Box<dyn Read + 'a>> {
    if is_stdin(path) {
        return Ok(Box::new(stdin));
    }
    let file = std::fs::File::open(path).map_err(|source| Error::InputRead {
        origin: origin(path),
        source,
    })?;
    Ok(Box::new(file))
}

/// Reads the bytes of `path`, or of `stdin` when `path` is `-`.
pub fn read_source(path: &Path, stdin: &mut dyn Read) -> Result<Vec<u8>> {
    let read = if is_stdin(path) {
        let mut bytes = Vec::new();
        stdin.read_to_end(&mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    read.map_err(|source| Error::InputRead {
        origin: origin(path),
        source,
    })
}

/// Parses `bytes` as a batch for a model taking `inputs` features. `origin`
/// names the source in errors, which name the row and feature at fault.
pub fn parse_batch(bytes: &[u8], inputs: usize, origin: &str) -> Result<Batch> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes).map_err(|source| Error::InputJson {
        origin: origin.into(),
        source,
    })?;
    let bad = |reason: String| Error::BadInput {
        origin: origin.into(),
        reason,
    };
    let rows = match &value {
        Value::Array(rows) => rows,
        Value::Object(fields) => match fields.get("x") {
            Some(Value::Array(rows)) => rows,
            Some(other) => {
                return Err(bad(format!(
                    "field \"x\" is {}, expected an array of feature vectors",
                    describe(other)
                )))
            }
            None => {
                return Err(bad(
                    "the object has no \"x\" field; expected an array of feature vectors \
                     or {\"x\": [[...], ...]}"
                        .into(),
                ))
            }
        },
        other => {
            return Err(bad(format!(
                "the input is {}, expected an array of feature vectors or an object \
                 with an \"x\" field",
                describe(other)
            )))
        }
    };
    let mut x = Vec::with_capacity(rows.len().saturating_mul(inputs));
    for (r, row) in rows.iter().enumerate() {
        let Value::Array(features) = row else {
            return Err(bad(format!(
                "input row {r} is {}, expected an array of {inputs} numbers",
                describe(row)
            )));
        };
        if features.len() != inputs {
            return Err(bad(format!(
                "input row {r} has {} features, the model takes {inputs}",
                features.len()
            )));
        }
        for (f, feature) in features.iter().enumerate() {
            let Some(wide) = feature.as_f64() else {
                return Err(bad(format!(
                    "input row {r} feature {f} is not a number (found {})",
                    describe(feature)
                )));
            };
            let value = wide as f32;
            if !value.is_finite() {
                return Err(bad(format!(
                    "input row {r} feature {f} is {wide:e}, outside the range of f32"
                )));
            }
            x.push(value);
        }
    }
    Ok(Batch {
        rows: rows.len(),
        inputs,
        x,
    })
}

/// A short description of a JSON value for error messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let mut shown: String = s.chars().take(40).collect();
            if shown.len() < s.len() {
                shown.push_str("...");
            }
            format!("the string {shown:?}")
        }
        Value::Array(items) => format!("an array of {} items", items.len()),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, inputs: usize) -> Result<Batch> {
        parse_batch(text.as_bytes(), inputs, "x.json")
    }

    fn message(text: &str, inputs: usize) -> String {
        crate::error::render_chain(&parse(text, inputs).unwrap_err())
    }

    #[test]
    fn array_and_object_forms_agree() {
        let a = parse("[[1, 2.5], [-3, 0]]", 2).unwrap();
        let b = parse(r#"{"x": [[1, 2.5], [-3, 0]], "y": "ignored"}"#, 2).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.rows, 2);
        assert_eq!(a.x, [1.0, 2.5, -3.0, 0.0]);
    }

    #[test]
    fn empty_array_is_an_empty_batch() {
        let batch = parse("[]", 13).unwrap();
        assert_eq!(batch.rows, 0);
        assert!(batch.x.is_empty());
        assert_eq!(parse(r#"{"x": []}"#, 13).unwrap().rows, 0);
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        assert_eq!(
            parse_batch(b"\xEF\xBB\xBF[[1]]", 1, "x.json").unwrap().x,
            [1.0]
        );
    }

    #[test]
    fn errors_name_the_row_and_feature() {
        assert_eq!(
            message("[[1, 2], [3]]", 2),
            "x.json: input row 1 has 1 features, the model takes 2"
        );
        assert_eq!(
            message(r#"[[1, 2], [3, "4"]]"#, 2),
            "x.json: input row 1 feature 1 is not a number (found the string \"4\")"
        );
        assert_eq!(
            message("[[1, null]]", 2),
            "x.json: input row 0 feature 1 is not a number (found null)"
        );
        assert_eq!(
            message("[1, 2]", 2),
            "x.json: input row 0 is the number 1, expected an array of 2 numbers"
        );
        assert!(message("[[1e300]]", 1).contains("outside the range of f32"));
        assert!(message(r#"{"y": 1}"#, 1).contains("no \"x\" field"));
        assert!(message(r#"{"x": 1}"#, 1).contains("field \"x\" is the number 1"));
        assert!(message("\"hello\"", 1).contains("the input is the string"));
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let msg = message("[[1, 2],\n [3, 4", 2);
        assert!(msg.starts_with("input x.json is not valid JSON: "), "{msg}");
        assert!(msg.contains("line 2 column"), "{msg}");
        let msg = message("", 2);
        assert!(msg.contains("line 1 column 0"), "{msg}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        assert!(message(&text, 1).contains("recursion limit"));
    }
}
