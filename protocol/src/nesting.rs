//! How deeply arrays and objects may nest in a message.
//!
//! A recursive parser (serde_json's, most JSON5 parsers, schema compilers) uses stack in
//! proportion to nesting, so a document a few hundred KB long can overflow it. Every
//! message, and every manifest and config the supervisor reads, is checked with
//! [`exceeds`] first; nothing legitimate comes near the limit.

/// The deepest nesting accepted: serde_json's own recursion limit.
pub const MAX_NESTING: usize = 128;

/// The byte offset where `text` first nests arrays and objects deeper than `limit`, if
/// it does.
///
/// A scan of the lexical structure shared by JSON and JSON5: brackets inside strings
/// (double- or single-quoted, with escapes) and comments do not count. Malformed text is
/// left to the parser to report. Linear in the text and allocation-free.
pub fn exceeds(text: &str, limit: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    // Nesting deeper than `limit` takes more than `limit` opening brackets. Counting them
    // is cheap (the compiler vectorises this loop; a search that stops at each bracket
    // costs several times more on a message), so the common message, with a few
    // brackets, skips the byte-by-byte scan below.
    // (`[` is 0x5B and `{` 0x7B: setting bit 5 maps exactly those two to `{`. Counted
    // in bytes, 255 at a time, which the compiler turns into vector compares.)
    let opening: usize = bytes
        .chunks(255)
        .map(|chunk| {
            let count = chunk
                .iter()
                .fold(0u8, |count, &b| count + u8::from(b | 0x20 == b'{'));
            usize::from(count)
        })
        .sum();
    if opening <= limit {
        return None;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Some(i);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_arrays_and_objects() {
        assert_eq!(exceeds("[[{}]]", 3), None);
        assert_eq!(exceeds("[[{}]]", 2), Some(2));
        assert_eq!(exceeds("[][][][]", 1), None);
    }

    #[test]
    fn strings_and_comments_do_not_nest() {
        let noise = "[".repeat(10);
        for text in [
            format!(r#"{{"a": "{noise}"}}"#),
            format!(r#"{{"a": "\"{noise}\\"}}"#),
            format!("{{a: '{noise}'}}"),
            format!("{{a: 1 // {noise}\n}}"),
            format!("{{/* {noise} */ a: 1}}"),
        ] {
            assert_eq!(exceeds(&text, 1), None, "{text}");
        }
        // The scan resumes after each.
        assert_eq!(exceeds(r#"{"a": "[", "b": [1]}"#, 1), Some(16));
    }

    #[test]
    fn unterminated_text_ends_the_scan() {
        assert_eq!(exceeds(r#"{"a": "[[[["#, 1), None);
        assert_eq!(exceeds("[/* [[[", 1), None);
    }
}
