//! What the plugin wrote, across every session of a run: line statistics with a few
//! examples of each problem (for the stream checks), the tail of its stderr, and an
//! optional transcript of every line in both directions.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Examples kept per kind of problem.
const SAMPLES: usize = 5;
/// Stderr lines kept for the report.
const STDERR_TAIL: usize = 20;
/// Longest stderr line kept (longer ones are cut).
const STDERR_LINE: usize = 300;
/// Longest line written to the transcript (longer ones are cut, their size noted).
const TRANSCRIPT_LINE: usize = 2000;

/// How often something happened, and the first few times.
#[derive(Clone, Debug, Default)]
pub(crate) struct Examples {
    pub(crate) count: u64,
    pub(crate) samples: Vec<String>,
}

impl Examples {
    pub(crate) fn add(&mut self, sample: impl FnOnce() -> String) {
        self.count += 1;
        if self.samples.len() < SAMPLES {
            self.samples.push(sample());
        }
    }

    /// "3 lines: a; b; c" style summary, for check details.
    pub(crate) fn summary(&self, noun: &str) -> String {
        let more = self.count.saturating_sub(self.samples.len() as u64);
        let mut text = format!(
            "{} {noun}{}: {}",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.samples.join("; ")
        );
        if more > 0 {
            let _ = write!(text, "; and {more} more");
        }
        text
    }
}

/// Line statistics for the stream checks.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) lines: u64,
    pub(crate) not_messages: Examples,
    pub(crate) content_length: Examples,
    pub(crate) schema: Examples,
    pub(crate) over_limit: Examples,
    pub(crate) not_plain: Examples,
    pub(crate) early_requests: Examples,
}

/// State shared by every session of one run.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) started: Instant,
    traffic: Mutex<Traffic>,
    stderr_tail: Mutex<VecDeque<String>>,
    transcript: Option<Mutex<BufWriter<File>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which way a line went, for the transcript.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Direction {
    /// Suite to plugin (stdin).
    ToPlugin,
    /// Plugin to suite (stdout).
    FromPlugin,
    /// The plugin's stderr.
    Stderr,
    /// A note from the suite (spawns, signals, exits).
    Note,
}

impl Shared {
    pub(crate) fn new(transcript: Option<File>) -> Self {
        Self {
            started: Instant::now(),
            traffic: Mutex::default(),
            stderr_tail: Mutex::default(),
            transcript: transcript.map(|f| Mutex::new(BufWriter::new(f))),
        }
    }

    pub(crate) fn traffic(&self) -> MutexGuard<'_, Traffic> {
        lock(&self.traffic)
    }

    pub(crate) fn push_stderr(&self, session: &str, line: &str) {
        let mut tail = lock(&self.stderr_tail);
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        tail.push_back(format!("[{session}] {}", cut(line, STDERR_LINE)));
    }

    pub(crate) fn stderr_tail(&self) -> Vec<String> {
        lock(&self.stderr_tail).iter().cloned().collect()
    }

    /// Appends a line to the transcript, if one was asked for.
    pub(crate) fn record(&self, session: &str, direction: Direction, bytes: &[u8]) {
        let Some(transcript) = &self.transcript else {
            return;
        };
        let arrow = match direction {
            Direction::ToPlugin => '>',
            Direction::FromPlugin => '<',
            Direction::Stderr => '!',
            Direction::Note => '#',
        };
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end_matches(['\n', '\r']);
        let shown = if text.len() > TRANSCRIPT_LINE {
            format!(
                "{}... ({} bytes in all)",
                cut(text, TRANSCRIPT_LINE),
                bytes.len()
            )
        } else {
            text.to_owned()
        };
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut out = lock(transcript);
        let _ = writeln!(out, "{elapsed:9.3} {session:<11} {arrow} {shown}");
    }

    pub(crate) fn flush_transcript(&self) {
        if let Some(transcript) = &self.transcript {
            let _ = lock(transcript).flush();
        }
    }
}

/// The first `max` bytes of `text`, cut at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_keep_the_first_few_and_count_the_rest() {
        let mut examples = Examples::default();
        for i in 0..8 {
            examples.add(|| format!("line {i}"));
        }
        assert_eq!(examples.count, 8);
        assert_eq!(
            examples.summary("line"),
            "8 lines: line 0; line 1; line 2; line 3; line 4; and 3 more"
        );
    }

    #[test]
    fn cutting_respects_characters() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }
}
