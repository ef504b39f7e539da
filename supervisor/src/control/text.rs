//! Reading JSON5 files with errors that point at a line and a column.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

/// A JSON5 syntax error, positioned (1-based line and column).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Parses JSON5 (comments, trailing commas, unquoted keys, single quotes, hex numbers...).
pub(crate) fn parse_json5(text: &str) -> Result<Value, SyntaxError> {
    // A byte order mark is not JSON5 whitespace, but editors write one.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    json5::from_str::<Value>(text).map_err(|error| {
        let (line, column) = error
            .position()
            .map_or((1, 1), |position| (position.line + 1, position.column + 1));
        let message = if let Some(code) = error.code() {
            code.to_string()
        } else {
            // Custom messages carry their own " at line L column C" suffix; drop it.
            let text = error.to_string();
            match text.rfind(" at line ") {
                Some(at) => text[..at].to_owned(),
                None => text,
            }
        };
        SyntaxError {
            line,
            column,
            message,
        }
    })
}

/// Why a bounded read failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    TooLarge { limit: u64 },
    NotUtf8,
}

/// Reads a UTF-8 file of at most `limit` bytes.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<String, ReadError> {
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)
}

/// A short description of a JSON value's type, for "expected X, found Y" messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json5_quirks_parse() {
        let value = parse_json5(
            "\u{feff}// comment\n{ unquoted: 'single', trailing: [1, 2,], hex: 0x10, /* block */ plus: +1, }",
        )
        .unwrap();
        assert_eq!(value["unquoted"], "single");
        assert_eq!(value["trailing"], serde_json::json!([1, 2]));
        assert_eq!(value["hex"], 16);
        assert_eq!(value["plus"], 1);
    }

    #[test]
    fn syntax_errors_are_positioned_one_based() {
        let error = parse_json5("{\n  a: 1\n  b: 2\n}").unwrap_err();
        assert_eq!((error.line, error.column), (3, 3), "{error}");
        assert!(!error.message.contains(" at line "), "{error}");
    }
}
