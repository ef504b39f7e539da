//! What a plugin id may be, and how an untrusted one is shown.
//!
//! The ids OpenClaw accepts: a name of letters, digits, `.`, `_` and `-` that starts
//! with a letter or digit (at most 128 characters), or a scoped `@scope/name` (scope at
//! most 64). Ids name config entries, environment values, log fields, URL paths and
//! state directories, so nothing else is allowed: no path separators, no control
//! characters, no bidi overrides, nothing that could forge a log line.
//!
//! Config keys are matched case-insensitively (as OpenClaw does), so two plugins whose
//! ids differ only in case would share one entry, allowlist place, env grant and
//! `hostMethods` grant; the inventory refuses such pairs.

use std::fmt::{self, Write as _};

/// The longest id (or `name` of a scoped id).
pub const MAX_ID_CHARS: usize = 128;
/// The longest scope of a scoped id (without its `@`).
const MAX_SCOPE_CHARS: usize = 64;

/// Why an id is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IdProblem {
    TooLong,
    BadStart,
    BadCharacter(char),
    BadScope,
}

impl fmt::Display for IdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong => write!(
                f,
                "is longer than {MAX_ID_CHARS} characters (a scope: {MAX_SCOPE_CHARS})"
            ),
            Self::BadStart => f.write_str("must start with a letter or a digit"),
            Self::BadCharacter(c) => write!(
                f,
                "contains {}, which no plugin id may; use letters, digits, `.`, `_` and `-`",
                describe(*c)
            ),
            Self::BadScope => {
                f.write_str("has a `/`, which only a scoped id may have, once, as `@scope/name`")
            }
        }
    }
}

/// Checks an id (already trimmed).
pub(crate) fn check(id: &str) -> Result<(), IdProblem> {
    match id.strip_prefix('@') {
        Some(scoped) => {
            let (scope, name) = scoped.split_once('/').ok_or(IdProblem::BadScope)?;
            check_name(scope, MAX_SCOPE_CHARS)?;
            check_name(name, MAX_ID_CHARS)
        }
        None => check_name(id, MAX_ID_CHARS),
    }
}

/// Checks the part a multi-entry pack adds to its id (`<id>/<part>`).
pub(crate) fn check_part(part: &str) -> Result<(), IdProblem> {
    check_name(part, MAX_ID_CHARS)
}

fn check_name(name: &str, max: usize) -> Result<(), IdProblem> {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphanumeric() => {}
        Some('/') => return Err(IdProblem::BadScope),
        Some(other) if !allowed(other) => return Err(IdProblem::BadCharacter(other)),
        _ => return Err(IdProblem::BadStart),
    }
    if let Some(bad) = chars.clone().find(|&c| !allowed(c)) {
        return Err(if bad == '/' {
            IdProblem::BadScope
        } else {
            IdProblem::BadCharacter(bad)
        });
    }
    if chars.count() + 1 > max {
        return Err(IdProblem::TooLong);
    }
    Ok(())
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        '\\' => "a backslash".to_owned(),
        c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
        c if crate::shown::is_bidi_control(c) => {
            format!("a bidirectional text control (U+{:04X})", c as u32)
        }
        c if c.is_ascii() => format!("`{c}`"),
        c => format!("the non-ASCII character U+{:04X}", c as u32),
    }
}

/// `text` as it may be shown in a log line or a message: printable ASCII as it is,
/// anything else escaped (`\n`, `\u{202e}`), cut to 80 characters. For ids and names
/// that have not been checked yet.
pub(crate) fn printable(text: &str) -> String {
    const MAX: usize = 80;
    let mut shown = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == MAX {
            let _ = write!(shown, "... ({} characters)", text.chars().count());
            break;
        }
        if c == ' ' || c.is_ascii_graphic() {
            shown.push(c);
        } else {
            shown.extend(c.escape_default());
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openclaw_ids_pass() {
        for id in [
            "acme",
            "memory-core",
            "device-pair",
            "a.b_c-d",
            "ACME",
            "0x",
            "@acme/tools",
            &"a".repeat(MAX_ID_CHARS),
        ] {
            assert_eq!(check(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn hostile_ids_are_refused() {
        let cases: [(&str, IdProblem); 10] = [
            ("../evil", IdProblem::BadStart),
            ("a/b", IdProblem::BadScope),
            ("@a/b/c", IdProblem::BadScope),
            ("@/b", IdProblem::BadStart),
            ("@a", IdProblem::BadScope),
            ("acme\u{202e}gnp", IdProblem::BadCharacter('\u{202e}')),
            ("acme\nINFO forged", IdProblem::BadCharacter('\n')),
            ("a b", IdProblem::BadCharacter(' ')),
            ("-x", IdProblem::BadStart),
            (&"a".repeat(10_000), IdProblem::TooLong),
        ];
        for (id, problem) in cases {
            assert_eq!(check(id), Err(problem), "{}", printable(id));
        }
        assert_eq!(check(""), Err(IdProblem::BadStart));
        assert_eq!(
            check(&format!("@{}/x", "s".repeat(65))),
            Err(IdProblem::TooLong)
        );
    }

    #[test]
    fn problems_read_well() {
        let text = check("acme\u{202e}").unwrap_err().to_string();
        assert_eq!(
            text,
            "contains a bidirectional text control (U+202E), which no plugin id may; use letters, digits, `.`, `_` and `-`"
        );
        assert!(
            check("a\tb")
                .unwrap_err()
                .to_string()
                .contains("control character (U+0009)")
        );
    }

    #[test]
    fn untrusted_text_cannot_forge_lines() {
        assert_eq!(printable("a\nb\u{202e}c"), "a\\nb\\u{202e}c");
        let long = printable(&"x".repeat(10_000));
        assert!(long.ends_with("... (10000 characters)"), "{long}");
        assert!(long.len() < 120);
    }
}
