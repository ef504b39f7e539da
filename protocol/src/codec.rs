//! Newline-delimited JSON framing on tokio-util's codec traits.
//!
//! # Theory of operation
//!
//! The decoder scans for `\n`. Each complete line has one trailing `\r` and a leading
//! UTF-8 byte-order mark removed; blank lines are skipped. A line is then checked in
//! order: length against the limit, UTF-8, JSON, JSON-RPC envelope. Whatever fails
//! becomes [`Frame::Invalid`], an *item*, not a decoder error, because tokio-util's
//! `FramedRead` ends the stream after the first decoder error. The decoder's only
//! errors are I/O errors.
//!
//! A line longer than the limit is reported as soon as the buffer shows it is too long,
//! and the decoder then discards bytes up to the next newline without buffering them:
//! memory stays bounded by the limit whatever the peer sends.
//!
//! Line numbers count every `\n` seen, blank and bad lines included, from 1.

use std::fmt;
use std::io;

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::message::{Message, ParseFailure};
use crate::{ErrorCode, ErrorObject, Response};

/// What the decoder yields for each non-blank line.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// A well-formed message.
    Message(Message),
    /// A line that is not one; reading goes on at the next line.
    Invalid(InvalidLine),
}

/// A line that could not be read as a message, and where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidLine {
    /// 1-based line number in the stream.
    pub line: u64,
    /// What is wrong.
    pub problem: LineProblem,
    /// The start of the line (at most 120 bytes, lossily decoded), for reports.
    pub excerpt: String,
}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineProblem {
    /// Longer than `limit` bytes; `seen` is how many bytes had arrived when it was
    /// detected (the line may be longer still).
    TooLong {
        /// The limit in bytes.
        limit: usize,
        /// Bytes seen so far.
        seen: usize,
    },
    /// Not UTF-8; `valid_up_to` is the byte offset of the first bad byte.
    NotUtf8 {
        /// Offset of the first invalid byte.
        valid_up_to: usize,
    },
    /// UTF-8 but not JSON, or JSON but not an acceptable message.
    Unparseable(ParseFailure),
}

impl InvalidLine {
    /// The error response a receiver sends back for this line.
    pub fn to_response(&self) -> Response {
        match &self.problem {
            LineProblem::TooLong { limit, seen } => Response::error(
                None,
                ErrorObject::new(
                    ErrorCode::MessageTooLarge,
                    format!(
                        "line {} is over the {limit}-byte limit and was discarded",
                        self.line
                    ),
                )
                .with_data(serde_json::json!({ "limit": limit, "size": seen })),
            ),
            LineProblem::NotUtf8 { valid_up_to } => Response::error(
                None,
                ErrorObject::new(
                    ErrorCode::ParseError,
                    format!(
                        "line {} is not UTF-8 (first bad byte at offset {valid_up_to})",
                        self.line
                    ),
                ),
            ),
            LineProblem::Unparseable(failure) => failure.to_response(),
        }
    }

    /// Whether the line looks like LSP-style `Content-Length` framing, the most common
    /// mistake of authors coming from LSP.
    pub fn looks_like_content_length(&self) -> bool {
        self.excerpt
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("content-length:")
    }
}

impl fmt::Display for InvalidLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.problem {
            LineProblem::TooLong { limit, seen } => {
                write!(
                    f,
                    "longer than the {limit}-byte limit ({seen} bytes seen); discarded"
                )
            }
            LineProblem::NotUtf8 { valid_up_to } => {
                write!(f, "not UTF-8 (first bad byte at offset {valid_up_to})")
            }
            LineProblem::Unparseable(ParseFailure::NotJson(why)) => write!(f, "not JSON ({why})"),
            LineProblem::Unparseable(ParseFailure::Invalid(invalid)) => {
                write!(f, "not a valid JSON-RPC message: {}", invalid.reason)
            }
        }?;
        if self.looks_like_content_length() {
            f.write_str("; this looks like LSP Content-Length framing, but this protocol is one JSON message per line")?;
        }
        if !matches!(self.problem, LineProblem::TooLong { .. }) {
            write!(f, " [{:?}]", self.excerpt)?;
        }
        Ok(())
    }
}

/// The NDJSON codec: decodes [`Frame`]s, encodes [`Message`]s.
#[derive(Clone, Debug)]
pub struct NdjsonCodec {
    max_line: usize,
    /// Bytes before this offset in the buffer are known to hold no `\n`.
    scanned: usize,
    /// Inside a line that was too long: drop everything up to the next `\n`.
    discarding: bool,
    /// Number of `\n` seen.
    lines: u64,
}

const EXCERPT: usize = 120;
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl NdjsonCodec {
    /// A codec refusing lines longer than `max_line` bytes (newline not counted).
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            scanned: 0,
            discarding: false,
            lines: 0,
        }
    }

    /// The line limit in bytes.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Changes the line limit for the lines decoded from now on (a line already being
    /// discarded is discarded to its end).
    pub fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line;
    }

    fn too_long(&self, line: u64, bytes: &[u8], seen: usize) -> InvalidLine {
        InvalidLine {
            line,
            problem: LineProblem::TooLong {
                limit: self.max_line,
                seen,
            },
            excerpt: excerpt(bytes),
        }
    }

    /// Reads one complete line (without its `\n`).
    fn frame<T>(
        &self,
        line_no: u64,
        mut line: &[u8],
        parse: &mut impl FnMut(&str) -> Result<T, ParseFailure>,
    ) -> Option<Result<T, InvalidLine>> {
        if let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        if let Some(rest) = line.strip_prefix(BOM) {
            line = rest;
        }
        if line.len() > self.max_line {
            return Some(Err(self.too_long(line_no, line, line.len())));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(e) => {
                return Some(Err(InvalidLine {
                    line: line_no,
                    problem: LineProblem::NotUtf8 {
                        valid_up_to: e.valid_up_to(),
                    },
                    excerpt: excerpt(line),
                }));
            }
        };
        Some(parse(text).map_err(|failure| InvalidLine {
            line: line_no,
            problem: LineProblem::Unparseable(failure),
            excerpt: excerpt(line),
        }))
    }

    /// The next line, read with `parse`; the decoder's work for any item type.
    pub(crate) fn decode_with<T>(
        &mut self,
        buf: &mut BytesMut,
        parse: &mut impl FnMut(&str) -> Result<T, ParseFailure>,
    ) -> Option<Result<T, InvalidLine>> {
        loop {
            let newline = memchr::memchr(b'\n', &buf[self.scanned..]).map(|i| i + self.scanned);
            let Some(end) = newline else {
                if self.discarding {
                    buf.clear();
                    self.scanned = 0;
                    return None;
                }
                // Room for the limit plus a `\r` and a BOM, which do not count.
                if buf.len() > self.max_line + 1 + BOM.len() {
                    let invalid = self.too_long(self.lines + 1, buf, buf.len());
                    buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Some(Err(invalid));
                }
                self.scanned = buf.len();
                return None;
            };
            self.scanned = 0;
            self.lines += 1;
            if self.discarding {
                // The end of an over-long line, already reported.
                self.discarding = false;
                buf.advance(end + 1);
                continue;
            }
            // Read in place, then dropped from the buffer: no split, no reference count.
            let item = self.frame(self.lines, &buf[..end], parse);
            buf.advance(end + 1);
            if let Some(item) = item {
                return Some(item);
            }
        }
    }

    /// [`NdjsonCodec::decode_with`] at the end of the input.
    pub(crate) fn decode_eof_with<T>(
        &mut self,
        buf: &mut BytesMut,
        parse: &mut impl FnMut(&str) -> Result<T, ParseFailure>,
    ) -> Option<Result<T, InvalidLine>> {
        if let Some(item) = self.decode_with(buf, parse) {
            return Some(item);
        }
        if self.discarding || buf.is_empty() {
            buf.clear();
            return None;
        }
        // A last line without a newline is still a line.
        let line = buf.split();
        self.scanned = 0;
        self.lines += 1;
        self.frame(self.lines, &line, parse)
    }
}

fn to_frame(item: Result<Message, InvalidLine>) -> Frame {
    match item {
        Ok(message) => Frame::Message(message),
        Err(invalid) => Frame::Invalid(invalid),
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let mut end = bytes.len().min(EXCERPT);
    // Do not cut a UTF-8 sequence in half when the line is valid UTF-8.
    while end < bytes.len() && end > 0 && (bytes[end] & 0b1100_0000) == 0b1000_0000 {
        end -= 1;
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl Decoder for NdjsonCodec {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Frame>> {
        Ok(self.decode_with(buf, &mut Message::parse).map(to_frame))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Frame>> {
        Ok(self.decode_eof_with(buf, &mut Message::parse).map(to_frame))
    }
}

impl Encoder<&Message> for NdjsonCodec {
    type Error = io::Error;

    fn encode(&mut self, message: &Message, dst: &mut BytesMut) -> io::Result<()> {
        let start = dst.len();
        serde_json::to_writer((&mut *dst).writer(), message)?;
        let len = dst.len() - start;
        if len > self.max_line {
            dst.truncate(start);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "message of {len} bytes is over the {}-byte limit",
                    self.max_line
                ),
            ));
        }
        dst.put_u8(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{InvalidReason, Notification, Request};

    const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

    fn decode_all(codec: &mut NdjsonCodec, input: &[u8]) -> Vec<Frame> {
        let mut buf = BytesMut::from(input);
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            frames.push(frame);
        }
        while let Some(frame) = codec.decode_eof(&mut buf).unwrap() {
            frames.push(frame);
        }
        frames
    }

    /// Feeds the input in the given chunk sizes, as a pipe would deliver it.
    fn decode_chunked(max: usize, input: &[u8], chunks: &[usize]) -> Vec<Frame> {
        let mut codec = NdjsonCodec::new(max);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut rest = input;
        let mut sizes = chunks.iter().copied().cycle();
        while !rest.is_empty() {
            let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        while let Some(frame) = codec.decode_eof(&mut buf).unwrap() {
            frames.push(frame);
        }
        frames
    }

    fn ping() -> Frame {
        Frame::Message(Message::Request(Request::new(1, "ping", None)))
    }

    fn problem(frame: &Frame) -> (u64, &LineProblem) {
        match frame {
            Frame::Invalid(invalid) => (invalid.line, &invalid.problem),
            Frame::Message(m) => panic!("expected an invalid line, got {m:?}"),
        }
    }

    #[test]
    fn crlf_blank_lines_and_a_bom_are_tolerated() {
        let input = format!("\u{feff}{PING}\r\n\n   \r\n{PING}\n\u{feff}{PING}");
        let frames = decode_all(&mut NdjsonCodec::new(1024), input.as_bytes());
        assert_eq!(frames, vec![ping(), ping(), ping()]);
    }

    #[test]
    fn garbage_between_valid_lines_is_reported_and_skipped() {
        let input =
            format!("{PING}\nhello world\n{PING}\n[1,2]\n{{\"jsonrpc\":\"2.0\"}}\n{PING}\n");
        let frames = decode_all(&mut NdjsonCodec::new(1024), input.as_bytes());
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[0], ping());
        assert!(matches!(
            problem(&frames[1]),
            (2, LineProblem::Unparseable(ParseFailure::NotJson(_)))
        ));
        assert_eq!(frames[2], ping());
        assert!(matches!(
            problem(&frames[3]),
            (4, LineProblem::Unparseable(ParseFailure::Invalid(i))) if i.reason == InvalidReason::Batch
        ));
        assert!(matches!(
            problem(&frames[4]),
            (5, LineProblem::Unparseable(ParseFailure::Invalid(_)))
        ));
        assert_eq!(frames[5], ping());
    }

    #[test]
    fn invalid_utf8_is_its_own_problem() {
        let mut input = b"{\"jsonrpc\":\"2.0\",\"method\":\"log\",\"params\":{\"m\":\"".to_vec();
        input.extend_from_slice(b"\xff\xfe\"}}\n");
        input.extend_from_slice(PING.as_bytes());
        input.push(b'\n');
        let frames = decode_all(&mut NdjsonCodec::new(1024), &input);
        assert!(matches!(
            problem(&frames[0]),
            (1, LineProblem::NotUtf8 { valid_up_to: 47 })
        ));
        assert_eq!(frames[1], ping());
    }

    #[test]
    fn a_line_exactly_at_the_limit_passes_and_one_byte_more_does_not() {
        let limit = PING.len();
        let at = format!("{PING}\n{PING}\r\n");
        assert_eq!(
            decode_all(&mut NdjsonCodec::new(limit), at.as_bytes()),
            vec![ping(), ping()]
        );

        let over = format!(" {PING}\n{PING}\n");
        let frames = decode_all(&mut NdjsonCodec::new(limit), over.as_bytes());
        assert!(
            matches!(problem(&frames[0]), (1, LineProblem::TooLong { seen, .. }) if *seen == limit + 1)
        );
        assert_eq!(frames[1], ping());
    }

    #[test]
    fn an_oversized_line_is_discarded_without_buffering_it() {
        let limit = 64;
        let mut codec = NdjsonCodec::new(limit);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[b'x'; 100]);
        let frame = codec.decode(&mut buf).unwrap().unwrap();
        assert!(matches!(
            problem(&frame),
            (1, LineProblem::TooLong { seen: 100, .. })
        ));
        // A megabyte more of the same line: nothing is kept, nothing is reported twice.
        for _ in 0..1024 {
            buf.extend_from_slice(&[b'y'; 1024]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None);
            assert!(buf.is_empty());
        }
        buf.extend_from_slice(b"zzz\n");
        buf.extend_from_slice(PING.as_bytes());
        buf.extend_from_slice(b"\n");
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(ping()));
        // Line numbers still count the discarded line.
        buf.extend_from_slice(b"nope\n");
        assert!(matches!(
            problem(&codec.decode(&mut buf).unwrap().unwrap()),
            (3, _)
        ));
    }

    #[test]
    fn a_last_line_without_newline_is_read_at_eof() {
        let frames = decode_all(&mut NdjsonCodec::new(1024), PING.as_bytes());
        assert_eq!(frames, vec![ping()]);
    }

    #[test]
    fn content_length_framing_is_recognised() {
        let input = format!("Content-Length: {}\r\n\r\n{PING}\n", PING.len());
        let frames = decode_all(&mut NdjsonCodec::new(1024), input.as_bytes());
        let Frame::Invalid(invalid) = &frames[0] else {
            panic!()
        };
        assert!(invalid.looks_like_content_length());
        assert!(invalid.to_string().contains("Content-Length"), "{invalid}");
        assert_eq!(frames[1], ping());
    }

    #[test]
    fn encoding_writes_one_line_and_refuses_oversized_messages() {
        let mut codec = NdjsonCodec::new(64);
        let mut dst = BytesMut::new();
        let message = Message::Notification(Notification::new(
            "log",
            Some(serde_json::json!({"m": "a\nb"})),
        ));
        codec.encode(&message, &mut dst).unwrap();
        assert_eq!(std::str::from_utf8(&dst).unwrap().matches('\n').count(), 1);
        assert!(dst.ends_with(b"\n"));
        let big = Message::Notification(Notification::new(
            "log",
            Some(serde_json::json!({"m": "x".repeat(100)})),
        ));
        let before = dst.len();
        assert!(codec.encode(&big, &mut dst).is_err());
        assert_eq!(dst.len(), before);
    }

    #[test]
    fn responses_to_bad_lines_name_the_line() {
        let frames = decode_all(&mut NdjsonCodec::new(8), b"0123456789\n\xff\n");
        let Frame::Invalid(too_long) = &frames[0] else {
            panic!()
        };
        let response = too_long.to_response();
        let error = response.outcome.unwrap_err();
        assert_eq!(error.code, ErrorCode::MessageTooLarge);
        assert!(error.message.contains("line 1"));
        let Frame::Invalid(not_utf8) = &frames[1] else {
            panic!()
        };
        assert_eq!(
            not_utf8.to_response().outcome.unwrap_err().code,
            ErrorCode::ParseError
        );
    }

    fn line_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(PING.to_owned()),
            Just(
                r#"{"jsonrpc":"2.0","method":"log","params":{"level":"info","message":"héllo ✓"}}"#
                    .to_owned()
            ),
            Just(r#"{"jsonrpc":"2.0","id":"x","result":{"ok":true}}"#.to_owned()),
            "[a-z {}:\"]{0,40}",
            Just(String::new()),
            Just("x".repeat(300)),
        ]
    }

    proptest! {
        /// However a pipe splits the bytes, the decoder yields the same frames.
        #[test]
        fn chunking_never_changes_the_frames(
            lines in proptest::collection::vec(line_strategy(), 0..20),
            chunks in proptest::collection::vec(1usize..64, 1..10),
            crlf in any::<bool>(),
        ) {
            let newline = if crlf { "\r\n" } else { "\n" };
            let input: String = lines.iter().flat_map(|l| [l.as_str(), newline]).collect();
            // `seen` on an over-long line is "bytes seen when detected", which depends on
            // where the pipe split the input; everything else must not.
            let normalise = |frames: Vec<Frame>| -> Vec<Frame> {
                frames.into_iter().map(|frame| match frame {
                    Frame::Invalid(mut bad) => {
                        if let LineProblem::TooLong { seen, .. } = &mut bad.problem {
                            *seen = 0;
                        }
                        Frame::Invalid(bad)
                    }
                    message @ Frame::Message(_) => message,
                }).collect()
            };
            let whole = normalise(decode_all(&mut NdjsonCodec::new(256), input.as_bytes()));
            let split = normalise(decode_chunked(256, input.as_bytes(), &chunks));
            prop_assert_eq!(&whole, &split);
            // Every non-blank line yields exactly one frame.
            let expected = lines.iter().filter(|l| !l.trim().is_empty()).count();
            prop_assert_eq!(whole.len(), expected);
        }

        /// Arbitrary bytes never make the decoder fail or lose its place.
        #[test]
        fn arbitrary_bytes_never_end_the_stream(noise in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut input = noise;
            input.push(b'\n');
            input.extend_from_slice(PING.as_bytes());
            input.push(b'\n');
            let frames = decode_chunked(512, &input, &[7, 13, 1]);
            prop_assert_eq!(frames.last(), Some(&ping()));
        }
    }
}
