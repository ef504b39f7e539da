//! Reading JSON5 files with errors that point at a line and a column.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use outpost_protocol::nesting::{self, MAX_NESTING};
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
/// Documents nested deeper than [`MAX_NESTING`] are refused before they are parsed.
pub(crate) fn parse_json5(text: &str) -> Result<Value, SyntaxError> {
    // A byte order mark is not JSON5 whitespace, but editors write one.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(at) = nesting::exceeds(text, MAX_NESTING) {
        let (line, column) = position(text, at);
        return Err(SyntaxError {
            line,
            column,
            message: format!(
                "arrays and objects nest deeper than {MAX_NESTING} levels here; nothing Outpost reads needs that many, so flatten the document"
            ),
        });
    }
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

/// The 1-based line and column (in characters) of byte offset `at`.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// Why a bounded read failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    /// A FIFO, a device, a socket or a directory: reading one could block for ever or
    /// never end.
    NotAFile,
    TooLarge {
        limit: u64,
    },
    NotUtf8,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(error) => error.fmt(f),
            Self::NotAFile => f.write_str(
                "not a regular file (a FIFO, device, socket or directory); only regular files are read",
            ),
            Self::TooLarge { limit } if *limit >= 1 << 20 => {
                write!(f, "larger than {} MiB", limit >> 20)
            }
            Self::TooLarge { limit } => write!(f, "larger than {} KiB", limit >> 10),
            Self::NotUtf8 => f.write_str("not UTF-8 text"),
        }
    }
}

/// Reads a UTF-8 regular file of at most `limit` bytes.
///
/// The file is opened without blocking and checked on the open descriptor, so a FIFO
/// (or a file swapped for one after a check) is refused instead of hanging the reader.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<String, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(ReadError::Io)?;
    if !file.metadata().map_err(ReadError::Io)?.is_file() {
        return Err(ReadError::NotAFile);
    }
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

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // Deep enough to overflow a recursive parser's stack.
        let deep = format!("{{a: {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        let error = parse_json5(&deep).unwrap_err();
        assert_eq!((error.line, error.column), (1, MAX_NESTING + 4), "{error}");
        assert!(error.message.contains("nest deeper than 128"), "{error}");
        let fine = format!("{}{}", "[".repeat(MAX_NESTING), "]".repeat(MAX_NESTING));
        parse_json5(&fine).unwrap();
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = std::env::temp_dir().join(format!("outpost-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("package.json");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // Blocked for ever before: nobody ever writes to this FIFO.
        let error = read_bounded(&fifo, 1024).unwrap_err();
        assert!(matches!(error, ReadError::NotAFile), "{error}");
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let error = read_bounded(&dir, 1024).unwrap_err();
        assert!(matches!(error, ReadError::NotAFile), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
