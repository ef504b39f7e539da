//! The write side of a connection.
//!
//! A line goes straight into the writer, from the sender's own task, when nothing is
//! queued ahead of it and the writer takes all of it without waiting: no hand-off to
//! another task, no wake-up. Otherwise the line (or what is left of it) joins a bounded
//! queue, and the writer task drains that queue in order, one write per batch, until it
//! is empty; only then does the writer go back to where senders can use it directly.
//!
//! The direct write is a `poll_write` with a waker that does nothing: it never waits, so
//! a sender has nothing to be cancelled in, and a line is always either whole in the
//! writer or (its rest) first in the queue. Nothing is interleaved, nothing lost.
//!
//! A reader answering lines it has already read can [`Outbox::hold`] the output: lines
//! pushed meanwhile are kept, in order, and go out in one write at [`Outbox::release`]
//! (or at 64 KiB, or at the close).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The most [`Outbox::hold`] keeps before it writes anyway.
const HELD_LIMIT: usize = 64 * 1024;

/// The write half of a connection.
pub(super) type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// Why a line was not taken.
#[derive(Debug)]
pub(super) enum Refused {
    /// The queue is full; the line comes back.
    Full(Vec<u8>),
    /// The output has ended (closed, or the connection is over).
    Ended,
    /// Writing failed; the connection cannot go on.
    Failed(io::Error),
}

/// Lines on their way out; see the module docs.
pub(super) struct Outbox {
    state: Mutex<State>,
    /// The most lines the queue holds for senders that wait for room.
    limit: usize,
    /// [`Outbox::hold`] is on: lines go to `State::held`.
    holding: AtomicBool,
    /// Wakes the writer task: there is something to write, flush or close.
    work: Notify,
    /// Wakes senders waiting for room in the queue.
    room: Notify,
}

struct State {
    /// Here while no task is writing with it; `None` while the writer task drains the
    /// queue, and for good once the output has ended.
    writer: Option<Writer>,
    /// Whole lines, newline included, except that the first may be the rest of a line
    /// begun by a direct write.
    queue: VecDeque<Vec<u8>>,
    /// A direct write went in, but the writer could not flush it at once.
    unflushed: bool,
    /// Lines pushed while [`Outbox::hold`] is on, to go out together at
    /// [`Outbox::release`].
    held: Vec<u8>,
    /// The output ends once the queue is written.
    closing: bool,
    /// Nothing more is taken.
    ended: bool,
}

/// What the writer task does after a batch.
enum Next {
    Drain,
    Stop,
    Shutdown,
}

impl State {
    fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.unflushed || self.closing
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Outbox")
            .field("queued", &state.queue.len())
            .field("writer_idle", &state.writer.is_some())
            .field("closing", &state.closing)
            .field("ended", &state.ended)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    pub(super) fn new(writer: Writer, limit: usize) -> Self {
        Self {
            state: Mutex::new(State {
                writer: Some(writer),
                queue: VecDeque::new(),
                unflushed: false,
                held: Vec::new(),
                closing: false,
                ended: false,
            }),
            limit: limit.max(1),
            holding: AtomicBool::new(false),
            work: Notify::new(),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `line` (newline included) now: written at once when possible, else queued.
    /// A `bounded` push is refused with [`Refused::Full`] when the queue is full; an
    /// unbounded one (a `$/cancel`, say, sent from a `Drop`) always joins it.
    pub(super) fn push(&self, line: Vec<u8>, bounded: bool) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.ended || state.closing {
            return Err(Refused::Ended);
        }
        if self.holding.load(Ordering::Acquire) {
            state.held.extend_from_slice(&line);
            if state.held.len() < HELD_LIMIT {
                return Ok(());
            }
            let held = std::mem::take(&mut state.held);
            return self.put(state, held, false);
        }
        self.put(state, line, bounded)
    }

    /// Keeps the lines pushed from now on, to write them together, in one write, at
    /// [`Outbox::release`] (or once they reach 64 KiB): for a reader answering lines it
    /// has already read, which knows when it has answered the last of them.
    pub(super) fn hold(&self) {
        self.holding.store(true, Ordering::Release);
    }

    /// Writes what was held, and holds no more. Without a hold, nearly free: no lock.
    pub(super) fn release(&self) -> Result<(), Refused> {
        if !self.holding.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        // A push that saw the hold did so under the lock, before this takes it.
        let mut state = self.lock();
        if state.held.is_empty() || state.ended {
            return Ok(());
        }
        let held = std::mem::take(&mut state.held);
        // Unbounded: each of these lines was taken already.
        self.put(state, held, false)
    }

    /// [`Outbox::push`], once the line is not held.
    fn put(
        &self,
        mut state: MutexGuard<'_, State>,
        mut line: Vec<u8>,
        bounded: bool,
    ) -> Result<(), Refused> {
        if state.queue.is_empty()
            && let Some(writer) = state.writer.as_mut()
        {
            let (written, flushed) = write_now(writer, &line).map_err(Refused::Failed)?;
            if written == line.len() {
                if !flushed {
                    state.unflushed = true;
                    drop(state);
                    self.work.notify_one();
                }
                return Ok(());
            }
            line.drain(..written);
        } else if bounded && state.queue.len() >= self.limit {
            return Err(Refused::Full(line));
        }
        state.queue.push_back(line);
        drop(state);
        self.work.notify_one();
        Ok(())
    }

    /// Takes `line`, waiting for room in the queue when it is full.
    pub(super) async fn send(&self, mut line: Vec<u8>) -> Result<(), Refused> {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the push, so that room made in between is not missed.
            room.as_mut().enable();
            match self.push(line, true) {
                Err(Refused::Full(back)) => line = back,
                taken => return taken,
            }
            room.await;
        }
    }

    /// Ends the output once everything queued so far is written.
    pub(super) fn close(&self) {
        let mut state = self.lock();
        let held = std::mem::take(&mut state.held);
        if !held.is_empty() {
            state.queue.push_back(held);
        }
        state.closing = true;
        drop(state);
        self.work.notify_one();
    }

    /// Ends the output now: the writer is dropped (the other side reads EOF) unless the
    /// writer task has it, which then stops; queued lines are dropped.
    pub(super) fn end(&self) {
        let writer = {
            let mut state = self.lock();
            state.ended = true;
            state.queue.clear();
            state.held.clear();
            state.writer.take()
        };
        drop(writer);
        self.room.notify_waiters();
        self.work.notify_one();
    }

    /// The writer task: drains the queue whenever there is one, until the output ends,
    /// `closed` fires or a write fails.
    pub(super) async fn run(&self, closed: &CancellationToken) -> io::Result<()> {
        let mut batch = Vec::with_capacity(64 * 1024);
        loop {
            let Some(mut writer) = self.wait_for_work(closed).await else {
                return Ok(());
            };
            loop {
                batch.clear();
                {
                    let mut state = self.lock();
                    for line in state.queue.drain(..) {
                        batch.extend_from_slice(&line);
                    }
                    state.unflushed = false;
                }
                self.room.notify_waiters();
                let written = async {
                    writer.write_all(&batch).await?;
                    writer.flush().await
                };
                tokio::select! {
                    result = written => result?,
                    () = closed.cancelled() => return Ok(()),
                }
                let next = {
                    let mut state = self.lock();
                    if state.ended {
                        Next::Stop
                    } else if !state.queue.is_empty() {
                        // More came while this batch was written (no direct write can
                        // happen meanwhile: the writer is here).
                        Next::Drain
                    } else if state.closing {
                        // Everything sent before the close is out.
                        state.ended = true;
                        Next::Shutdown
                    } else {
                        // Idle again: senders may write directly.
                        state.writer = Some(writer);
                        break;
                    }
                };
                match next {
                    Next::Drain => {}
                    Next::Stop => return Ok(()),
                    Next::Shutdown => {
                        self.room.notify_waiters();
                        tokio::select! {
                            result = writer.shutdown() => result?,
                            () = closed.cancelled() => {}
                        }
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The writer, once there is something to write, flush or close; `None` when the
    /// output has ended.
    async fn wait_for_work(&self, closed: &CancellationToken) -> Option<Writer> {
        loop {
            let work = self.work.notified();
            {
                let mut state = self.lock();
                if state.ended {
                    return None;
                }
                if state.has_work()
                    && let Some(writer) = state.writer.take()
                {
                    return Some(writer);
                }
            }
            tokio::select! {
                () = work => {}
                () = closed.cancelled() => return None,
            }
        }
    }
}

/// Writes what `writer` takes of `bytes` without waiting, then flushes if all of it
/// went in: `(bytes written, whether the flush completed)`.
fn write_now(writer: &mut Writer, bytes: &[u8]) -> io::Result<(usize, bool)> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut written = 0;
    while written < bytes.len() {
        match Pin::new(&mut *writer).poll_write(&mut cx, &bytes[written..]) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => written += n,
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => return Ok((written, false)),
        }
    }
    match Pin::new(&mut *writer).poll_flush(&mut cx) {
        Poll::Ready(Ok(())) => Ok((written, true)),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Ok((written, false)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

    use super::*;

    /// An outbox over a pipe of `capacity` bytes, its writer task running.
    fn outbox(
        capacity: usize,
        limit: usize,
    ) -> (Arc<Outbox>, tokio::io::DuplexStream, CancellationToken) {
        let (ours, theirs) = tokio::io::duplex(capacity);
        let outbox = Arc::new(Outbox::new(Box::new(ours), limit));
        let closed = CancellationToken::new();
        let (task_outbox, task_closed) = (outbox.clone(), closed.clone());
        tokio::spawn(async move { task_outbox.run(&task_closed).await });
        (outbox, theirs, closed)
    }

    /// A writer that keeps each write apart.
    #[derive(Clone, Default)]
    struct Writes(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

    impl AsyncWrite for Writes {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.0.lock().unwrap().push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn held_lines_go_out_together_in_order_at_release_at_the_limit_or_at_close() {
        let writes = Writes::default();
        let outbox = Arc::new(Outbox::new(Box::new(writes.clone()), 4));
        let closed = CancellationToken::new();
        let (task_outbox, task_closed) = (outbox.clone(), closed.clone());
        let task = tokio::spawn(async move { task_outbox.run(&task_closed).await });
        let taken = || std::mem::take(&mut *writes.0.lock().unwrap());

        outbox.push(b"a\n".to_vec(), true).unwrap();
        assert_eq!(taken(), [b"a\n".to_vec()]);
        outbox.hold();
        // Held beyond the queue's limit of 4: these lines were taken already.
        for line in [&b"b\n"[..], b"c\n", b"d\n", b"e\n", b"f\n"] {
            outbox.push(line.to_vec(), true).unwrap();
        }
        assert!(taken().is_empty(), "held lines were written early");
        outbox.release().unwrap();
        assert_eq!(taken(), [b"b\nc\nd\ne\nf\n".to_vec()]);
        outbox.push(b"g\n".to_vec(), true).unwrap();
        assert_eq!(taken(), [b"g\n".to_vec()], "no longer held");

        // At the limit, held lines are written without waiting for the release.
        outbox.hold();
        let long = vec![b'x'; HELD_LIMIT / 2];
        outbox.push(long.clone(), true).unwrap();
        assert!(taken().is_empty());
        outbox.push(long.clone(), true).unwrap();
        assert_eq!(taken().concat().len(), HELD_LIMIT);

        // A close writes what is held before it ends the output.
        outbox.push(b"h\n".to_vec(), true).unwrap();
        outbox.close();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the writer task ends at the close")
            .unwrap()
            .unwrap();
        assert_eq!(taken().concat(), b"h\n");
    }

    fn line(sender: usize, n: usize) -> Vec<u8> {
        // Lengths vary, so that a small pipe splits lines at every possible place.
        format!("{sender}:{n}:{}\n", "x".repeat((sender * 7 + n * 13) % 300)).into_bytes()
    }

    #[tokio::test]
    async fn lines_from_many_senders_arrive_whole_and_in_each_senders_order() {
        let (outbox, theirs, _closed) = outbox(100, 4);
        let mut senders = Vec::new();
        for sender in 0..8 {
            let outbox = outbox.clone();
            senders.push(tokio::spawn(async move {
                for n in 0..200 {
                    outbox.send(line(sender, n)).await.unwrap();
                }
            }));
        }
        let mut lines = BufReader::new(theirs).lines();
        let mut next = [0; 8];
        for _ in 0..8 * 200 {
            let text = lines.next_line().await.unwrap().unwrap();
            let mut parts = text.splitn(3, ':');
            let sender: usize = parts.next().unwrap().parse().unwrap();
            let n: usize = parts.next().unwrap().parse().unwrap();
            assert_eq!(n, next[sender], "sender {sender} out of order");
            assert_eq!(format!("{text}\n").into_bytes(), line(sender, n));
            next[sender] += 1;
        }
        for sender in senders {
            sender.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_sender_cancelled_while_waiting_for_room_leaves_no_half_line() {
        let (outbox, mut theirs, _closed) = outbox(16, 1);
        // Nobody reads yet: the pipe fills, then the queue, then senders wait.
        let mut waiting = Vec::new();
        for n in 0..20 {
            let outbox = outbox.clone();
            waiting.push(tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_millis(20), outbox.send(line(1, n))).await;
            }));
        }
        for sender in waiting {
            sender.await.unwrap();
        }
        outbox.close();
        let mut everything = String::new();
        theirs.read_to_string(&mut everything).await.unwrap();
        assert!(everything.ends_with('\n'), "{everything:?}");
        for text in everything.lines() {
            let n: usize = text.split(':').nth(1).unwrap().parse().unwrap();
            assert_eq!(format!("{text}\n").into_bytes(), line(1, n), "a whole line");
        }
    }

    #[tokio::test]
    async fn close_writes_what_was_queued_then_ends_and_refuses_more() {
        let (outbox, mut theirs, _closed) = outbox(8, 100);
        for n in 0..10 {
            outbox.push(line(2, n), true).unwrap();
        }
        outbox.close();
        assert!(matches!(
            outbox.push(line(2, 10), true),
            Err(Refused::Ended)
        ));
        let mut everything = String::new();
        theirs.read_to_string(&mut everything).await.unwrap();
        assert_eq!(everything.lines().count(), 10);
    }

    #[tokio::test]
    async fn end_drops_the_writer_at_once() {
        let (outbox, mut theirs, _closed) = outbox(1024, 4);
        outbox.push(b"first\n".to_vec(), true).unwrap();
        outbox.end();
        let mut everything = String::new();
        theirs.read_to_string(&mut everything).await.unwrap();
        assert_eq!(everything, "first\n");
        assert!(matches!(
            outbox.send(b"late\n".to_vec()).await,
            Err(Refused::Ended)
        ));
    }

    #[tokio::test]
    async fn a_broken_pipe_is_reported() {
        let (outbox, theirs, _closed) = outbox(1024, 4);
        drop(theirs);
        assert!(matches!(
            outbox.push(b"x\n".to_vec(), true),
            Err(Refused::Failed(_))
        ));
    }

    /// A writer whose every other flush is not done at once.
    struct SlowFlush {
        written: Arc<std::sync::Mutex<Vec<u8>>>,
        /// Bytes written and not flushed yet.
        unflushed: Arc<AtomicUsize>,
        flushes: Arc<AtomicUsize>,
    }

    impl AsyncWrite for SlowFlush {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            this.written.lock().unwrap().extend_from_slice(buf);
            this.unflushed.fetch_add(buf.len(), Ordering::SeqCst);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if this
                .flushes
                .fetch_add(1, Ordering::SeqCst)
                .is_multiple_of(2)
            {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.unflushed.store(0, Ordering::SeqCst);
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_flush_that_cannot_finish_at_once_is_finished_by_the_writer_task() {
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (unflushed, flushes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let writer = SlowFlush {
            written: written.clone(),
            unflushed: unflushed.clone(),
            flushes: flushes.clone(),
        };
        let outbox = Arc::new(Outbox::new(Box::new(writer), 4));
        let closed = CancellationToken::new();
        let task = {
            let (outbox, closed) = (outbox.clone(), closed.clone());
            tokio::spawn(async move { outbox.run(&closed).await })
        };
        outbox.push(b"one\n".to_vec(), true).unwrap();
        // The direct flush was not done at once; the writer task flushes again.
        tokio::time::timeout(Duration::from_secs(5), async {
            while unflushed.load(Ordering::SeqCst) > 0 || flushes.load(Ordering::SeqCst) < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the writer task flushed");
        assert_eq!(&*written.lock().unwrap(), b"one\n");
        outbox.close();
        task.await.unwrap().unwrap();
    }
}
