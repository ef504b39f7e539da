//! Holding the host's messages to the line limit the host announced.
//!
//! The peer's reader is built with the protocol's default limit (16 MiB) before
//! `initialize` says what the host's limit is, and cannot change it afterwards. When the
//! host announces a lower `limits.maxMessageBytes`, [`LineLimit`] enforces it on the byte
//! stream in front of the peer: it passes a line through while it is within the limit;
//! when a line grows past it, it ends the line early with a NUL byte and a newline (so the
//! peer reports it as unreadable, at the same line number) and discards the rest of it
//! up to its newline. The session then answers that line `-32006` instead of `-32700`.
//!
//! Nothing of an oversized line is buffered beyond the limit.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// How many oversized lines are remembered until the session has answered them.
const REMEMBERED: usize = 64;

/// The limit and the lines cut short, shared with the session.
#[derive(Debug)]
pub(crate) struct Limits {
    /// Longest line accepted, without the newline; `usize::MAX` leaves it to the peer.
    limit: AtomicUsize,
    /// `(line number, bytes seen)` of lines cut short and not yet answered.
    oversized: Mutex<VecDeque<(u64, usize)>>,
}

impl Limits {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            limit: AtomicUsize::new(usize::MAX),
            oversized: Mutex::new(VecDeque::new()),
        })
    }

    pub(crate) fn set(&self, limit: usize) {
        self.limit.store(limit, Ordering::SeqCst);
    }

    /// If line `line` was cut short: the limit and how many bytes had arrived.
    pub(crate) fn take_oversized(&self, line: u64) -> Option<(usize, usize)> {
        let mut oversized = self
            .oversized
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let index = oversized.iter().position(|(n, _)| *n == line)?;
        let (_, seen) = oversized.remove(index)?;
        Some((self.limit.load(Ordering::SeqCst), seen))
    }

    fn record(&self, line: u64, seen: usize) {
        let mut oversized = self
            .oversized
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if oversized.len() == REMEMBERED {
            oversized.pop_front();
        }
        oversized.push_back((line, seen));
    }
}

/// The reader in front of the peer; see the module docs.
pub(crate) struct LineLimit<R> {
    inner: R,
    limits: Arc<Limits>,
    input: Box<[u8]>,
    /// Unprocessed input is `input[start..end]`.
    start: usize,
    end: usize,
    /// Bytes to hand out before anything else.
    pending: &'static [u8],
    /// Bytes of the current line handed out so far.
    line_len: usize,
    /// Lines completed so far (as the peer's codec counts them: every newline).
    lines: u64,
    /// Inside an oversized line: dropping bytes up to its newline.
    discarding: bool,
}

impl<R> LineLimit<R> {
    pub(crate) fn new(inner: R, limits: Arc<Limits>) -> Self {
        Self {
            inner,
            limits,
            input: vec![0; 64 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
            pending: &[],
            line_len: 0,
            lines: 0,
            discarding: false,
        }
    }

    /// Moves processed input into `buf`; true if it wrote anything.
    fn process(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        // A `\r` before the newline does not count against the limit.
        let allowed = self.limits.limit.load(Ordering::SeqCst).saturating_add(1);
        let mut wrote = false;
        while self.start < self.end && buf.remaining() > 0 && self.pending.is_empty() {
            let chunk = &self.input[self.start..self.end];
            let newline = memchr::memchr(b'\n', chunk);
            let segment = newline.unwrap_or(chunk.len());
            if self.discarding {
                match newline {
                    Some(i) => {
                        self.start += i + 1;
                        self.discarding = false;
                        self.lines += 1;
                    }
                    None => self.start = self.end,
                }
                continue;
            }
            let room = allowed.saturating_sub(self.line_len);
            if segment > room {
                let take = room.min(buf.remaining());
                buf.put_slice(&chunk[..take]);
                self.start += take;
                self.line_len += take;
                wrote = true;
                if take < room {
                    break;
                }
                // The line is over the limit: end it for the peer, drop the rest.
                self.limits.record(self.lines + 1, self.line_len + 1);
                self.discarding = true;
                self.line_len = 0;
                self.pending = b"\0\n";
                break;
            }
            let whole = segment + usize::from(newline.is_some());
            let take = whole.min(buf.remaining());
            buf.put_slice(&chunk[..take]);
            self.start += take;
            wrote = true;
            if newline.is_some() && take == whole {
                self.lines += 1;
                self.line_len = 0;
            } else {
                self.line_len += take;
            }
        }
        wrote
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for LineLimit<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending[..n]);
                this.pending = &this.pending[n..];
                return Poll::Ready(Ok(()));
            }
            if this.start < this.end {
                if this.process(buf) {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut read = ReadBuf::new(&mut this.input);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            this.start = 0;
            this.end = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    async fn filtered(input: &[u8], limit: usize) -> (Vec<u8>, Vec<(u64, usize)>) {
        let limits = Limits::new();
        limits.set(limit);
        let mut reader = LineLimit::new(input, limits.clone());
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        let oversized = limits.oversized.lock().unwrap().iter().copied().collect();
        (out, oversized)
    }

    #[tokio::test]
    async fn lines_within_the_limit_pass_unchanged() {
        let input = b"{\"a\":1}\n\n12345\r\nlast line without newline";
        assert_eq!(filtered(input, 25).await, (input.to_vec(), vec![]));
        assert_eq!(filtered(input, usize::MAX).await, (input.to_vec(), vec![]));
    }

    #[tokio::test]
    async fn an_oversized_line_is_cut_and_numbered_like_the_codec_does() {
        let input = b"ok\n0123456789abcdef\nnext\n\nxxxxxxxx";
        let (out, oversized) = filtered(input, 4).await;
        // Line 2 keeps limit + 1 bytes, then NUL and a newline; line 5 likewise, at EOF.
        assert_eq!(out, b"ok\n01234\0\nnext\n\nxxxxx\0\n");
        assert_eq!(oversized, [(2, 6), (5, 6)]);
    }

    #[tokio::test]
    async fn small_reads_give_the_same_result() {
        let input: Vec<u8> = b"abc\nabcdefgh\nab\n".repeat(50);
        let limits = Limits::new();
        limits.set(3);
        let mut reader = LineLimit::new(&input[..], limits.clone());
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        while reader.read(&mut byte).await.unwrap() == 1 {
            out.push(byte[0]);
        }
        assert_eq!(out, b"abc\nabcd\0\nab\n".repeat(50));
        assert_eq!(limits.oversized.lock().unwrap().len(), 50);
    }
}
