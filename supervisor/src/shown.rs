//! Text from a plugin or a file, made safe to show to an operator.
//!
//! What a plugin writes (its stderr, its `log` messages, the names and descriptions it
//! registers) and what a file holds end up in the operator's log and terminal. Shown as
//! they are, they could forge a log line (`\n`, `\r`), drive the terminal (escape
//! sequences, `BEL`) or make the text read other than it is (bidirectional controls,
//! the "Trojan Source" trick). [`escaped`] writes each such character as its Rust
//! escape (`\n`, `\u{1b}`, `\u{202e}`) and everything else as it is; [`escaped_within`]
//! also cuts long text and says how much it cut.
//!
//! The log's own formatter escapes only some of these (`ESC`, `BEL` and the C1
//! controls, not `\r` nor the bidirectional controls), and JSON logs escape only the
//! controls: text from a plugin goes through here first.

use std::fmt::{Display, Write as _};

/// The most of one piece of a plugin's text a log line shows (a `log` record's message,
/// an error message a plugin answered with); the rest is cut.
pub(crate) const LOG_TEXT_BYTES: usize = 8 * 1024;

/// What a plugin said (an error, a problem, a rejected name), as a log line shows it:
/// escaped, and cut at [`LOG_TEXT_BYTES`].
pub(crate) fn for_log(text: impl Display) -> String {
    escaped_within(&text.to_string(), LOG_TEXT_BYTES)
}

/// Whether `c` changes the direction of the text around it: a bidirectional
/// embedding, override or isolate, or a direction mark.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `text` with control characters and bidirectional controls escaped, on one line.
pub fn escaped(text: &str) -> String {
    escaped_within(text, usize::MAX)
}

/// [`escaped`], cut once it is `max_bytes` long (the last character may go a little
/// over), with `... (N more bytes)` saying how much of `text` was left out.
pub fn escaped_within(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes && !text.chars().any(needs_escape) {
        return text.to_owned();
    }
    let mut shown = String::with_capacity(text.len().min(max_bytes) + 32);
    for (at, c) in text.char_indices() {
        if shown.len() >= max_bytes {
            let _ = write!(shown, "... ({} more bytes)", text.len() - at);
            break;
        }
        if needs_escape(c) {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_forge_a_line_drive_the_terminal_or_turn_around() {
        assert_eq!(
            escaped("ok\n2026-12-05 INFO outpost: forged\r\u{1b}[2J"),
            "ok\\n2026-12-05 INFO outpost: forged\\r\\u{1b}[2J"
        );
        assert_eq!(
            escaped("\u{1b}]0;owned\u{7}tool\u{202e}x\u{2066}y"),
            "\\u{1b}]0;owned\\u{7}tool\\u{202e}x\\u{2066}y"
        );
        assert_eq!(escaped("café: ok, 東京"), "café: ok, 東京");
    }

    #[test]
    fn long_text_is_cut_and_says_how_much() {
        let long = escaped_within(&"é".repeat(10_000), 1000);
        assert!(long.ends_with("... (19000 more bytes)"), "{long}");
        assert!(long.len() < 1100);
        assert_eq!(escaped_within("short", 1000), "short");
    }
}
