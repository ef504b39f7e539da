//! Draining a plugin's stderr: into the log, tagged with the plugin id, and into a
//! bounded ring of recent lines attached to crash reports.
//!
//! The pipe is read from the first moment and never left to fill (a full stderr pipe
//! blocks a plugin at its next write, the classic 64 KiB deadlock). Lines are split at
//! 4 KiB so one endless line cannot grow memory, decoded lossily, escaped
//! ([`crate::shown`]: a plugin cannot forge or hide lines of the log) and logged at most
//! a burst at once and a steady rate per second per plugin ([`Throttle`]); the lines over
//! that rate still go to the ring, and the log says how many it skipped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use super::throttle::Throttle;
use crate::shown::escaped_within;

/// Longest line kept; longer lines are cut into pieces of this size.
const MAX_LINE: usize = 4096;

/// The most recent stderr lines of one plugin (all its incarnations).
#[derive(Debug)]
pub(crate) struct StderrTail {
    lines: Mutex<VecDeque<String>>,
    capacity: usize,
}

impl StderrTail {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
        }
    }

    fn push(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `n` lines, oldest first.
    pub(crate) fn last(&self, n: usize) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Forgets the lines of earlier incarnations.
    pub(crate) fn clear(&self) {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Reads `stderr` until EOF on a task of its own.
pub(crate) fn drain<R>(plugin: Arc<str>, stderr: R, tail: Arc<StderrTail>) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = LineReader::new(stderr);
        let mut throttle = Throttle::new(Instant::now());
        while let Some(line) = reader.next_line().await {
            if throttle.admit(Instant::now()) {
                let skipped = throttle.take_skipped();
                if skipped > 0 {
                    tracing::warn!(plugin = %plugin, skipped, "stderr lines were not logged (rate limit); crash reports keep the last ones");
                }
                tracing::info!(target: "outpost::plugin", plugin = %plugin, "{line}");
            }
            tail.push(line);
        }
    })
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes.
struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Vec::with_capacity(8192),
            eof: false,
        }
    }

    async fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(end + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                return Some(decode(&line));
            }
            if self.buf.len() >= MAX_LINE {
                let rest = self.buf.split_off(MAX_LINE);
                let piece = std::mem::replace(&mut self.buf, rest);
                return Some(decode(&piece));
            }
            if self.eof {
                if self.buf.is_empty() {
                    return None;
                }
                let last = std::mem::take(&mut self.buf);
                return Some(decode(&last));
            }
            let mut chunk = [0u8; 8192];
            match self.inner.read(&mut chunk).await {
                Ok(0) | Err(_) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// A line as the log and crash reports show it: decoded lossily, its control and
/// bidirectional characters escaped ([`crate::shown`]), so that a plugin cannot forge
/// or hide lines of the operator's log, and cut again at [`MAX_LINE`] (escapes make a
/// line longer: a line of control characters would otherwise take five times the
/// ring's memory).
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    escaped_within(&String::from_utf8_lossy(bytes), MAX_LINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8]) -> Vec<String> {
        let mut reader = LineReader::new(input);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().await {
            lines.push(line);
        }
        lines
    }

    #[tokio::test]
    async fn lines_are_split_decoded_and_bounded() {
        assert_eq!(
            lines_of(b"a\r\nb\n\xffc\nlast").await,
            ["a", "b", "\u{fffd}c", "last"]
        );
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let lines = lines_of(&long).await;
        assert_eq!(
            lines.iter().map(String::len).collect::<Vec<_>>(),
            [MAX_LINE, MAX_LINE, 10]
        );
    }

    #[tokio::test]
    async fn escaped_lines_stay_within_the_line_limit() {
        let lines = lines_of(&[1_u8; MAX_LINE]).await;
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with(r"\u{1}\u{1}"), "{}", &lines[0][..20]);
        assert!(lines[0].len() < MAX_LINE + 64, "{} bytes", lines[0].len());
    }

    #[tokio::test]
    async fn a_plugin_cannot_forge_or_hide_log_lines_from_its_stderr() {
        assert_eq!(
            lines_of(b"ok\r2026-12-05 INFO outpost: all fine\x1b[2K\ntool \xe2\x80\xae1 x\n").await,
            [
                "ok\\r2026-12-05 INFO outpost: all fine\\u{1b}[2K",
                "tool \\u{202e}1 x"
            ]
        );
    }

    #[test]
    fn the_tail_keeps_the_newest_lines() {
        let tail = StderrTail::new(3);
        for i in 0..5 {
            tail.push(i.to_string());
        }
        assert_eq!(tail.last(10), ["2", "3", "4"]);
        assert_eq!(tail.last(2), ["3", "4"]);
        tail.clear();
        assert!(tail.last(10).is_empty());
    }
}
