//! A bidirectional JSON-RPC peer over any byte stream pair.
//!
//! [`connect`] takes a reader and a writer (a child's stdout and stdin, the process's own
//! stdin and stdout, an in-memory duplex) and returns a [`Peer`] handle for sending and
//! an [`Incoming`] stream of what the other side sends. Both sides of the protocol use
//! it: the supervisor, the Rust SDK and the conformance suite.
//!
//! # Theory of operation
//!
//! Two tasks run per connection (with [`connect_on_thread`], the reader is a thread of
//! its own instead, which may block in `read`):
//!
//! - the **reader** decodes lines with [`NdjsonCodec`]. Responses are matched to pending
//!   requests right there, so an answer never waits behind the owner's queue. `$/cancel`
//!   and `$/progress` are also handled in the reader. Requests, other notifications and
//!   [`Problem`]s go to the owner through a bounded queue, except the lines the owner's
//!   [`LineTaker`] takes while the owner is idle ([`PeerConfig::take_lines`]);
//! - the **writer** drains the outbound queue. A line goes straight into the write half
//!   from the sender's own task when nothing is queued ahead of it and the write half
//!   takes it whole without waiting; otherwise it joins one bounded queue, which the
//!   writer writes in order, a batch at a time (see `outbox`).
//!
//! Every queue is bounded: a slow owner slows the reader (and so the other side), a slow
//! other side slows senders, and outbound requests in flight are capped by
//! [`PeerConfig::max_pending`].
//!
//! A request ends exactly once: with the answer, with [`CallError::Timeout`] or
//! [`CallError::Cancelled`] (the other side then gets `$/cancel`, and its late answer
//! is reported as [`Problem::LateResponse`]), or with [`CallError::Closed`] when the
//! connection ends while it is in flight ([`CallError::NotSent`] when the connection
//! had already ended and the request was never written). A connection ends at EOF, at an I/O error, or when the owner calls
//! [`Peer::abort`]; at that moment every pending request fails and every incoming
//! request's cancellation token fires (a token is made only when first asked for,
//! [`Responder::cancellation`]; one made after the fact has fired already). Nothing
//! waits forever.
//!
//! An incoming request is answered through its [`Responder`]. A responder dropped without
//! answering sends `-32603` for the owner, so the other side never hangs either.
//!
//! # Caveats
//!
//! - Progress notifications are delivered best effort: when the caller's progress
//!   channel is full, the notification is dropped.
//! - A line over the size limit is not parsed: a request whose answer was too long fails
//!   at once only when the line's start names it (`{"jsonrpc":"2.0","id":7,"result":...`),
//!   else at its timeout.

mod outbox;

use std::collections::VecDeque;
use std::collections::hash_map::Entry;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use foldhash::HashMap;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use self::outbox::{Outbox, Refused};
use crate::message::{Envelope, LINE_CAPACITY};
use crate::methods::{CancelParams, ProgressParams};
use crate::nesting::{self, MAX_NESTING};
use crate::{
    ErrorCode, ErrorObject, InvalidLine, InvalidMessage, LineProblem, Message, NdjsonCodec,
    Notification, NotificationType, ParseFailure, RequestId, RequestType, Response,
};

/// How a connection behaves; [`PeerConfig::default`] documents the defaults.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Names the other side in errors and problems (e.g. `plugin "hello"`).
    pub name: String,
    /// Longest line accepted or sent, newline excluded. Default 16 MiB.
    pub max_message_bytes: usize,
    /// Lines waiting for the writer (a line the writer takes at once never waits).
    /// Default 256.
    pub outbound_queue: usize,
    /// Requests, notifications and problems waiting for the owner. Default 256.
    pub inbound_queue: usize,
    /// Outbound requests awaiting an answer; more wait for a slot. Default 1024.
    pub max_pending: usize,
    /// Answer `ping` in the reader, without involving the owner. Default true.
    pub answer_ping: bool,
    /// Answer unreadable lines with `-32700`, `-32600` or `-32006`. Default true.
    pub answer_invalid: bool,
    /// Hand requests' params over as their JSON text ([`IncomingRequest::raw_params`])
    /// instead of a parsed [`Value`], for an owner that reads them straight into its
    /// own types (a plugin on the SDK). Default false.
    pub raw_params: bool,
    /// Where the connection counts its traffic. Share one between connections to count
    /// them together (a supervisor does, across a plugin's restarts). Default: its own.
    pub stats: Arc<PeerStats>,
    /// Makes every incoming request's cancellation ([`Responder::cancellation`]) a
    /// child of this token, so that cancelling it cancels them all: for an owner that
    /// stops all its work at once (a plugin at `shutdown`) and hands each call's token
    /// to its handler as it is. Default: none.
    pub requests_cancelled_by: Option<CancellationToken>,
    /// Offered each line, in the reader, before the peer parses it, whenever the owner
    /// is idle: it has finished with every event before this one (it is back in
    /// [`Incoming::next`], or has not taken its first). The line has passed the size,
    /// UTF-8 and nesting checks. A line the taker accepts as a request
    /// ([`OfferedLine::accept`]) is the taker's to answer; one it gives back is parsed
    /// and routed as usual. Order is kept: while an event is queued or being handled,
    /// no line is offered. For an owner that reads its requests straight into its own
    /// types and handles most of them at once (a plugin on the SDK answering calls):
    /// the line is parsed once, and the request handled where it was read, without
    /// waking the owner's task. Default: none.
    pub take_lines: Option<LineTaker>,
}

/// Takes lines in the reader ([`PeerConfig::take_lines`]): accepts the line as a
/// request, or gives it back (`Err`) to be parsed and routed as usual. It must never
/// wait: while it runs, the reader routes nothing else, answers to this side's
/// requests included.
#[derive(Clone)]
pub struct LineTaker(TakeLine);

type TakeLine = Arc<dyn for<'a> Fn(OfferedLine<'a>) -> Result<(), OfferedLine<'a>> + Send + Sync>;

impl LineTaker {
    /// A taker that runs `take`.
    pub fn new(
        take: impl for<'a> Fn(OfferedLine<'a>) -> Result<(), OfferedLine<'a>> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(take))
    }
}

impl fmt::Debug for LineTaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LineTaker")
    }
}

/// A line offered to a [`LineTaker`].
pub struct OfferedLine<'a> {
    text: &'a str,
    offer: &'a Offer,
}

impl<'a> OfferedLine<'a> {
    /// The line, without its newline.
    pub fn text(&self) -> &'a str {
        self.text
    }

    /// Takes the line as the request `id` to `method` (which the taker read from it, and
    /// checked is a request: `"jsonrpc": "2.0"`, an `id`, a `method`) and returns its
    /// responder, as [`IncomingRequest::responder`]. Gives the line back when `id` is
    /// that of a request still in flight: parsed as usual, it is refused as a reused id.
    pub fn accept(self, id: RequestId, method: &str) -> Result<Responder, Self> {
        admit(&self.offer.shared, id, method).map_err(|_| self)
    }
}

impl fmt::Debug for OfferedLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfferedLine")
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            name: "peer".to_owned(),
            max_message_bytes: crate::DEFAULT_MAX_MESSAGE_BYTES,
            outbound_queue: 256,
            inbound_queue: 256,
            max_pending: 1024,
            answer_ping: true,
            answer_invalid: true,
            raw_params: false,
            stats: Arc::default(),
            requests_cancelled_by: None,
            take_lines: None,
        }
    }
}

/// What a connection (or several sharing it) sent and received, counted as it happens.
#[derive(Debug, Default)]
pub struct PeerStats {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    messages_out: AtomicU64,
    bytes_out: AtomicU64,
    late_responses: AtomicU64,
    problems: AtomicU64,
}

/// The counts of [`PeerStats`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerCounts {
    /// Lines read that were messages.
    pub messages_in: u64,
    /// Bytes read, whatever they were.
    pub bytes_in: u64,
    /// Lines written.
    pub messages_out: u64,
    /// Bytes written, newlines included.
    pub bytes_out: u64,
    /// Answers to requests that had already timed out or been cancelled: expected after
    /// a cancellation (the protocol says a cancelled request is still answered).
    pub late_responses: u64,
    /// Everything else unusable the other side sent ([`Problem`]s but late answers).
    pub problems: u64,
}

impl PeerStats {
    /// The counts now.
    pub fn counts(&self) -> PeerCounts {
        PeerCounts {
            messages_in: self.messages_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            late_responses: self.late_responses.load(Ordering::Relaxed),
            problems: self.problems.load(Ordering::Relaxed),
        }
    }

    /// A line of `length` bytes (newline included) went out.
    fn wrote(&self, length: usize) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(length as u64, Ordering::Relaxed);
    }
}

/// A reader that counts what it reads into [`PeerStats::bytes_in`].
struct Counted<R> {
    inner: R,
    stats: Arc<PeerStats>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counted<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.stats
            .bytes_in
            .fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The other side closed its output.
    Eof,
    /// Reading or writing failed.
    Io(String),
    /// This side closed it ([`Peer::close`]) and the other side has not answered since.
    Closed,
    /// This side aborted it ([`Peer::abort`]), with why.
    Aborted(String),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Eof => f.write_str("the other side closed the stream"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Closed => f.write_str("this side closed the connection"),
            Self::Aborted(why) => f.write_str(why),
        }
    }
}

/// Why a request got no result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The other side answered with an error.
    #[error("{0}")]
    Remote(ErrorObject),
    /// No answer within the timeout; `$/cancel` was sent.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The answer could not be read (too long, not UTF-8, not JSON-RPC): with
    /// `timeout: None`, a line whose start shows it answers this request; with
    /// `Some`, no answer came within the timeout and meanwhile a line that could not be
    /// read came, most likely the answer (`$/cancel` was sent).
    #[error("{}", unreadable(*.timeout, .problem))]
    Unreadable {
        /// The timeout, when it passed.
        timeout: Option<Duration>,
        /// The line that could not be read (the last one, at a timeout), and why.
        problem: String,
    },
    /// Cancelled by the caller; `$/cancel` was sent.
    #[error("cancelled by the caller")]
    Cancelled,
    /// The connection ended after the request was sent and before an answer came: the
    /// other side may or may not have acted on it.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The connection had already ended; the request was not sent.
    #[error("not sent, the connection is closed: {0}")]
    NotSent(CloseReason),
    /// The request is too long to send.
    #[error("the request is {size} bytes, over the {limit}-byte message limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The result does not have the expected shape.
    #[error("the result does not match the method's result type")]
    Decode(#[source] serde_json::Error),
}

fn unreadable(timeout: Option<Duration>, problem: &str) -> String {
    match timeout {
        None => format!("the answer could not be read ({problem})"),
        Some(timeout) => format!(
            "no answer within {} ms; meanwhile a line from the other side could not be read ({problem})",
            timeout.as_millis()
        ),
    }
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection ended.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The message is too long to send.
    #[error("the message is {size} bytes, over the {limit}-byte message limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// Per-request options.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// Fail with [`CallError::Timeout`] after this long.
    pub timeout: Option<Duration>,
    /// Fail with [`CallError::Cancelled`] when this fires.
    pub cancel: Option<CancellationToken>,
    /// Receives `$/progress` for this request.
    pub progress: Option<mpsc::Sender<ProgressParams>>,
}

impl CallOptions {
    /// Options with a timeout.
    pub fn timeout(timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..Self::default()
        }
    }

    /// The same options, cancelled by `token`.
    #[must_use]
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The same options, reporting progress to `tx`.
    #[must_use]
    pub fn with_progress(mut self, tx: mpsc::Sender<ProgressParams>) -> Self {
        self.progress = Some(tx);
        self
    }
}

/// Something the other side sent that could not be used. The connection goes on.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Problem {
    /// A line that is not a message (answered, when [`PeerConfig::answer_invalid`]).
    InvalidLine(InvalidLine),
    /// A response to an id this side never sent or already settled.
    UnknownResponse {
        /// The id.
        id: RequestId,
    },
    /// A response to a request that had already timed out or been cancelled.
    LateResponse {
        /// The id.
        id: RequestId,
        /// The request's method.
        method: String,
    },
    /// An error response with a `null` id: the other side could not read a line we sent.
    ErrorWithoutId(ErrorObject),
    /// A request reusing the id of a request still in flight (answered `-32600`).
    DuplicateRequestId {
        /// The id.
        id: RequestId,
    },
    /// A `$/cancel` or `$/progress` with params that do not fit.
    BadNotification {
        /// The method.
        method: String,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidLine(line) => line.fmt(f),
            Self::UnknownResponse { id } => write!(
                f,
                "a response to id {id}, which was never sent or was already answered"
            ),
            Self::LateResponse { id, method } => {
                write!(
                    f,
                    "a late response to `{method}` (id {id}), which had already timed out or been cancelled"
                )
            }
            Self::ErrorWithoutId(error) => write!(
                f,
                "the other side could not read a message we sent: {error}"
            ),
            Self::DuplicateRequestId { id } => write!(
                f,
                "request id {id} reused while the first request with it is in flight"
            ),
            Self::BadNotification { method, reason } => {
                write!(f, "`{method}` with unusable params: {reason}")
            }
        }
    }
}

/// What the other side sent, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A request to answer through its [`Responder`].
    Request(IncomingRequest),
    /// A notification (other than `$/cancel` and `$/progress`, which the peer handles).
    Notification(Notification),
    /// Something unusable; already answered where the protocol says so.
    Problem(Problem),
}

/// A request from the other side.
#[derive(Debug)]
pub struct IncomingRequest {
    /// The method.
    pub method: String,
    /// The params, as sent (`None` with [`PeerConfig::raw_params`]: see `raw_params`).
    pub params: Option<Value>,
    /// With [`PeerConfig::raw_params`], the params as the JSON text they arrived as;
    /// otherwise `None`.
    pub raw_params: Option<Box<RawValue>>,
    /// Answers the request; dropping it answers `-32603`.
    pub responder: Responder,
}

/// The receiving half: everything the other side sends, except responses.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<Event>,
    /// With a [`PeerConfig::take_lines`], the events queued for the owner or being
    /// handled by it: the reader adds one as it queues an event, and the owner takes one
    /// off as it asks for the next.
    unfinished: Option<Arc<AtomicUsize>>,
    /// The owner took an event and has not asked for the next yet.
    handling: bool,
}

impl Incoming {
    /// The next event; `None` once the connection has ended and everything was taken.
    /// Asking for it says the owner is done with the one before.
    pub async fn next(&mut self) -> Option<Event> {
        if std::mem::take(&mut self.handling)
            && let Some(unfinished) = &self.unfinished
        {
            unfinished.fetch_sub(1, Ordering::AcqRel);
        }
        let event = self.rx.recv().await;
        self.handling = event.is_some();
        event
    }
}

/// The sending half; cheap to clone.
#[derive(Clone, Debug)]
pub struct Peer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    name: String,
    max_message_bytes: usize,
    /// The longest line read from the other side ([`Peer::lower_incoming_limit`]).
    incoming_limit: AtomicUsize,
    out: Outbox,
    pending: Mutex<HashMap<RequestId, Pending>>,
    /// Requests that timed out or were cancelled, newest last, to recognise late answers.
    abandoned: Mutex<VecDeque<(RequestId, String)>>,
    /// Incoming requests in flight, by id.
    inbound: Mutex<HashMap<RequestId, InFlight>>,
    /// Counts admissions, so that an id reused after its answer is told apart.
    admissions: AtomicU64,
    /// [`PeerConfig::requests_cancelled_by`].
    requests_parent: Option<CancellationToken>,
    next_id: AtomicI64,
    slots: Semaphore,
    /// Set when [`Peer::close`] queued the end of the output.
    write_closed: AtomicBool,
    closed: CancellationToken,
    reason: OnceLock<CloseReason>,
    stats: Arc<PeerStats>,
    /// How many lines from the other side could not be read, and the last of them:
    /// what a request that times out names, when one came while it waited.
    unreadable: AtomicU64,
    last_unreadable: Mutex<Option<String>>,
}

#[derive(Debug)]
struct Pending {
    tx: oneshot::Sender<Result<Box<RawValue>, Failure>>,
    progress: Option<mpsc::Sender<ProgressParams>>,
    method: String,
}

/// Why a request in flight got no result, as the reader tells its caller.
#[derive(Debug)]
enum Failure {
    /// An error answer, or one the reader made for a malformed response.
    Remote(ErrorObject),
    /// A line that answers it (by its start) could not be read.
    Unreadable(String),
}

const ABANDONED_MEMORY: usize = 256;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts a connection over `reader` and `writer` on the current tokio runtime.
pub fn connect<R, W>(reader: R, writer: W, config: PeerConfig) -> (Peer, Incoming)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (peer, incoming, reading) = start(reader, writer, config);
    tokio::spawn(reading);
    (peer, incoming)
}

/// [`connect`], with the connection read on a thread of its own instead of in a task
/// of the runtime: `reader` may block (a [`BlockingRead`]), and that thread waits in
/// the reader's `read` rather than the runtime in `epoll_wait`. With
/// [`PeerConfig::take_lines`], a request taken at once is handled on that thread,
/// where it was read, without waking the runtime at all: what a plugin answering one
/// call at a time needs most (docs/performance.md). The thread runs inside the current
/// runtime's context (`tokio::spawn` works there) and ends with the connection; while
/// it is blocked in `read`, it ends only when the read returns.
pub fn connect_on_thread<R, W>(
    reader: R,
    writer: W,
    config: PeerConfig,
) -> std::io::Result<(Peer, Incoming)>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let name = format!("read {}", config.name);
    let (peer, incoming, reading) = start(reader, writer, config);
    let runtime = tokio::runtime::Handle::current();
    // The owner's taker runs there (a plugin's handlers do): the stack of a main
    // thread, not the 2 MiB of a spawned one. Only what is touched is committed.
    std::thread::Builder::new()
        .name(name)
        .stack_size(8 << 20)
        .spawn(move || {
            let _entered = runtime.enter();
            futures_executor::block_on(reading);
        })?;
    Ok((peer, incoming))
}

/// A blocking reader as an [`AsyncRead`] that never returns `Pending`: for
/// [`connect_on_thread`] only, whose thread does nothing but read. Anywhere else it
/// would block the executor that polls it.
#[derive(Debug)]
pub struct BlockingRead<R> {
    inner: R,
    /// Read into first: the [`ReadBuf`]s a codec passes are not initialized, and
    /// `std::io::Read` takes initialized memory.
    chunk: Box<[u8]>,
}

impl<R: std::io::Read> BlockingRead<R> {
    /// Reads `inner` in chunks of up to 64 KiB.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            chunk: vec![0; 64 * 1024].into_boxed_slice(),
        }
    }
}

impl<R: std::io::Read + Unpin> AsyncRead for BlockingRead<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining().min(this.chunk.len());
        let read = loop {
            match this.inner.read(&mut this.chunk[..want]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                read => break read,
            }
        };
        let n = read?;
        buf.put_slice(&this.chunk[..n]);
        Poll::Ready(Ok(()))
    }
}

/// The connection's parts, and its read loop for the caller to run.
fn start<R, W>(
    reader: R,
    writer: W,
    config: PeerConfig,
) -> (Peer, Incoming, impl Future<Output = ()> + Send + 'static)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (event_tx, event_rx) = mpsc::channel(config.inbound_queue.max(1));
    let unfinished = config
        .take_lines
        .is_some()
        .then(|| Arc::new(AtomicUsize::new(0)));
    let shared = Arc::new(Shared {
        name: config.name.clone(),
        max_message_bytes: config.max_message_bytes,
        incoming_limit: AtomicUsize::new(config.max_message_bytes),
        out: Outbox::new(Box::new(writer), config.outbound_queue),
        pending: Mutex::default(),
        abandoned: Mutex::default(),
        inbound: Mutex::default(),
        admissions: AtomicU64::new(0),
        requests_parent: config.requests_cancelled_by.clone(),
        next_id: AtomicI64::new(1),
        slots: Semaphore::new(config.max_pending.max(1)),
        write_closed: AtomicBool::new(false),
        closed: CancellationToken::new(),
        reason: OnceLock::new(),
        stats: config.stats.clone(),
        unreadable: AtomicU64::new(0),
        last_unreadable: Mutex::default(),
    });
    let reader = Counted {
        inner: reader,
        stats: config.stats.clone(),
    };
    tokio::spawn(write_loop(shared.clone()));
    let events = Events {
        tx: event_tx,
        unfinished: unfinished.clone(),
    };
    let reading = read_loop(shared.clone(), reader, events, config);
    let incoming = Incoming {
        rx: event_rx,
        unfinished,
        handling: false,
    };
    (Peer { shared }, incoming, reading)
}

/// Two peers joined in memory, for tests: `(a, b)` where `a` talks to `b`.
pub fn memory_pair(config: &PeerConfig) -> ((Peer, Incoming), (Peer, Incoming)) {
    let (a_io, b_io) = tokio::io::duplex(64 * 1024);
    let (a_read, a_write) = tokio::io::split(a_io);
    let (b_read, b_write) = tokio::io::split(b_io);
    let a = connect(
        a_read,
        a_write,
        PeerConfig {
            name: "a".into(),
            ..config.clone()
        },
    );
    let b = connect(
        b_read,
        b_write,
        PeerConfig {
            name: "b".into(),
            ..config.clone()
        },
    );
    (a, b)
}

impl Peer {
    /// The name of the other side, as configured.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// A typed request: the params are serialized straight into the line and the result
    /// is read straight from it, with no [`Value`] in between.
    pub async fn request<M: RequestType>(
        &self,
        params: &M::Params,
        options: CallOptions,
    ) -> Result<M::Result, CallError> {
        let raw = self.call_raw(M::METHOD, Some(params), options).await?;
        serde_json::from_str(raw.get()).map_err(CallError::Decode)
    }

    /// A request with raw params; the raw result. The params are borrowed: a caller that
    /// may send the same request again (after a restart, say) keeps them without a copy.
    pub async fn call(
        &self,
        method: &str,
        params: Option<&Value>,
        options: CallOptions,
    ) -> Result<Value, CallError> {
        let raw = self.call_raw(method, params, options).await?;
        serde_json::from_str(raw.get()).map_err(CallError::Decode)
    }

    /// A request whose answer is the result's JSON text, as it arrived.
    async fn call_raw<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: Option<&P>,
        options: CallOptions,
    ) -> Result<Box<RawValue>, CallError> {
        let CallOptions {
            timeout,
            cancel,
            progress,
        } = options;
        let unreadable = self.shared.unreadable.load(Ordering::Relaxed);
        let work = self.call_inner(method, params, progress);
        let timed_out = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match &cancel {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        // Dropping `work` on timeout or cancel runs its guard, which sends `$/cancel`.
        tokio::select! {
            result = work => result,
            () = timed_out => {
                let timeout = timeout.unwrap_or_default();
                if self.shared.unreadable.load(Ordering::Relaxed) == unreadable {
                    return Err(CallError::Timeout(timeout));
                }
                let problem = lock(&self.shared.last_unreadable).clone().unwrap_or_default();
                Err(CallError::Unreadable {
                    timeout: Some(timeout),
                    problem,
                })
            }
            () = cancelled => Err(CallError::Cancelled),
        }
    }

    async fn call_inner<P: Serialize + ?Sized>(
        &self,
        method: &str,
        params: Option<&P>,
        progress: Option<mpsc::Sender<ProgressParams>>,
    ) -> Result<Box<RawValue>, CallError> {
        let shared = &self.shared;
        shared.check_open().map_err(CallError::NotSent)?;
        let _slot = shared
            .slots
            .acquire()
            .await
            .map_err(|_| CallError::NotSent(shared.close_reason()))?;
        let id = RequestId::from(shared.next_id.fetch_add(1, Ordering::Relaxed));
        let line = Message::request_json(&id, method, params).into_bytes();
        if line.len() > shared.max_message_bytes {
            return Err(CallError::TooLarge {
                size: line.len(),
                limit: shared.max_message_bytes,
            });
        }
        let (tx, rx) = oneshot::channel();
        lock(&shared.pending).insert(
            id.clone(),
            Pending {
                tx,
                progress,
                method: method.to_owned(),
            },
        );
        let mut guard = PendingGuard {
            shared,
            id: Some(id),
            sent: false,
        };
        shared
            .enqueue(line)
            .await
            .map_err(|_| CallError::NotSent(shared.close_reason()))?;
        guard.sent = true;
        let answer = rx.await;
        guard.id = None;
        match answer {
            Ok(Ok(raw)) => Ok(raw),
            Ok(Err(Failure::Remote(error))) => Err(CallError::Remote(error)),
            Ok(Err(Failure::Unreadable(problem))) => Err(CallError::Unreadable {
                timeout: None,
                problem,
            }),
            Err(_) => Err(CallError::Closed(shared.close_reason())),
        }
    }

    /// A typed notification.
    pub async fn notify<N: NotificationType>(&self, params: &N::Params) -> Result<(), SendError> {
        let params = serde_json::to_value(params).expect("notification params serialize");
        self.notify_raw(N::METHOD, Some(params)).await
    }

    /// A notification with raw params.
    pub async fn notify_raw(&self, method: &str, params: Option<Value>) -> Result<(), SendError> {
        let line = Message::Notification(Notification {
            method: method.to_owned(),
            params,
        })
        .to_json();
        self.shared.send_line(line.into_bytes()).await
    }

    /// Sends `bytes` and a newline as they are, bypassing every check. For tests and the
    /// conformance suite, which must be able to send what a broken peer would.
    pub async fn send_raw(&self, bytes: impl Into<Vec<u8>>) -> Result<(), SendError> {
        self.shared.check_open().map_err(SendError::Closed)?;
        self.shared.enqueue(bytes.into()).await
    }

    /// Ends the output after everything queued so far: the other side reads EOF. The
    /// connection stays open for reading until the other side closes its output.
    pub fn close(&self) {
        if !self.shared.write_closed.swap(true, Ordering::SeqCst) {
            self.shared.out.close();
        }
    }

    /// Lowers the longest line accepted from the other side, for the lines read from
    /// now on (never raises it above [`PeerConfig::max_message_bytes`]): for an owner
    /// that learns the other side's limit after connecting, as a plugin does from
    /// `initialize`. Longer lines are reported as
    /// [`crate::codec::LineProblem::TooLong`] (and answered `-32006` when
    /// [`PeerConfig::answer_invalid`]), as lines over the configured limit are.
    pub fn lower_incoming_limit(&self, max_line: usize) {
        self.shared
            .incoming_limit
            .fetch_min(max_line, Ordering::Relaxed);
    }

    /// Ends the connection now: pending requests fail with `reason`, incoming requests
    /// are cancelled, both tasks stop.
    pub fn abort(&self, reason: impl Into<String>) {
        self.shared.close(CloseReason::Aborted(reason.into()));
    }

    /// Waits until the connection has ended, and says why.
    pub async fn closed(&self) -> CloseReason {
        self.shared.closed.cancelled().await;
        self.shared.close_reason()
    }

    /// Whether nothing more can be sent: the connection ended, or [`Peer::close`] was
    /// called.
    pub fn is_closed(&self) -> bool {
        self.shared.check_open().is_err()
    }

    /// Why the connection ended, if it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.reason.get().cloned()
    }

    /// How many outbound requests await an answer.
    pub fn pending(&self) -> usize {
        lock(&self.shared.pending).len()
    }
}

impl Shared {
    fn check_open(&self) -> Result<(), CloseReason> {
        if let Some(reason) = self.reason.get() {
            return Err(reason.clone());
        }
        if self.write_closed.load(Ordering::SeqCst) {
            return Err(CloseReason::Closed);
        }
        Ok(())
    }

    fn close_reason(&self) -> CloseReason {
        self.reason.get().cloned().unwrap_or(CloseReason::Closed)
    }

    async fn send_line(&self, line: Vec<u8>) -> Result<(), SendError> {
        self.check_open().map_err(SendError::Closed)?;
        if line.len() > self.max_message_bytes {
            return Err(SendError::TooLarge {
                size: line.len(),
                limit: self.max_message_bytes,
            });
        }
        self.enqueue(line).await
    }

    /// Hands `line` (without its newline) to the outbox, waiting for room.
    async fn enqueue(&self, mut line: Vec<u8>) -> Result<(), SendError> {
        line.push(b'\n');
        self.stats.wrote(line.len());
        let refused = match self.out.send(line).await {
            Ok(()) => return Ok(()),
            Err(refused) => refused,
        };
        self.refused(refused);
        Err(SendError::Closed(self.close_reason()))
    }

    /// Queues a line from a context that cannot wait (a `Drop`), over the queue's bound
    /// if need be: such lines are few and small.
    fn send_line_detached(&self, mut line: Vec<u8>) {
        if self.reason.get().is_some() {
            return;
        }
        line.push(b'\n');
        self.stats.wrote(line.len());
        if let Err(refused) = self.out.push(line, false) {
            self.refused(refused);
        }
    }

    fn refused(&self, refused: Refused) {
        if let Refused::Failed(e) = refused {
            self.close(CloseReason::Io(format!(
                "writing to {} failed: {e}",
                self.name
            )));
        }
    }

    /// Ends the connection once; the first reason wins.
    fn close(&self, reason: CloseReason) {
        if self.reason.set(reason).is_err() {
            return;
        }
        self.closed.cancel();
        self.out.end();
        self.slots.close();
        // Dropping the senders wakes every waiting request with `Closed`.
        drop(std::mem::take(&mut *lock(&self.pending)));
        for request in lock(&self.inbound).values_mut() {
            request.cancel();
        }
    }

    /// The cancellation of the request admitted as `admission` under `id`, made now if
    /// nobody asked for it before. Once the request is answered (or its id is reused),
    /// only [`PeerConfig::requests_cancelled_by`] can cancel it.
    fn request_cancellation(&self, id: &RequestId, admission: u64) -> CancellationToken {
        let mut inbound = lock(&self.inbound);
        let Some(request) = inbound
            .get_mut(id)
            .filter(|request| request.admission == admission)
        else {
            return self.new_request_token();
        };
        match &request.cancel {
            RequestCancel::Made(token) => token.clone(),
            RequestCancel::NotMade { cancelled } => {
                let token = self.new_request_token();
                if *cancelled {
                    token.cancel();
                }
                request.cancel = RequestCancel::Made(token.clone());
                token
            }
        }
    }

    fn new_request_token(&self) -> CancellationToken {
        self.requests_parent
            .as_ref()
            .map_or_else(CancellationToken::new, CancellationToken::child_token)
    }
}

/// An incoming request in flight.
#[derive(Debug)]
struct InFlight {
    /// Tells this request from a later one reusing its id.
    admission: u64,
    cancel: RequestCancel,
}

/// A request's cancellation token is made only when someone asks for it: most requests
/// are answered without anyone asking, and a token (a child of
/// [`PeerConfig::requests_cancelled_by`]) costs an allocation and its parent's lock.
#[derive(Debug)]
enum RequestCancel {
    NotMade { cancelled: bool },
    Made(CancellationToken),
}

impl InFlight {
    /// `$/cancel`, or the end of the connection.
    fn cancel(&mut self) {
        match &mut self.cancel {
            RequestCancel::Made(token) => token.cancel(),
            RequestCancel::NotMade { cancelled } => *cancelled = true,
        }
    }
}

fn response_line<R: Serialize + ?Sized>(
    id: Option<&RequestId>,
    outcome: Result<&R, &ErrorObject>,
) -> Vec<u8> {
    Message::response_bytes(id, outcome)
}

fn error_line(id: Option<&RequestId>, error: &ErrorObject) -> Vec<u8> {
    response_line::<Value>(id, Err(error))
}

/// Removes a pending request that ends without its answer, and tells the other side.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: Option<RequestId>,
    sent: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let Some(pending) = lock(&self.shared.pending).remove(&id) else {
            return;
        };
        if !self.sent {
            return;
        }
        {
            let mut abandoned = lock(&self.shared.abandoned);
            if abandoned.len() == ABANDONED_MEMORY {
                abandoned.pop_front();
            }
            abandoned.push_back((id.clone(), pending.method));
        }
        let cancel = Message::Notification(Notification {
            method: crate::methods::Cancel::METHOD.to_owned(),
            params: Some(
                serde_json::to_value(CancelParams { id }).expect("cancel params serialize"),
            ),
        });
        self.shared
            .send_line_detached(cancel.to_json().into_bytes());
    }
}

/// A success response's line, with its result serialized straight into it: what
/// [`Message::response_json`] writes, built where the result is made, so that the
/// result is written once and never copied into a line afterwards. Answer with
/// [`Responder::try_answer_line`] or [`Responder::answer_line`].
#[derive(Debug)]
pub struct ResultLine {
    /// `{"jsonrpc":"2.0","id":ID,"result":RESULT}`, without the newline.
    line: Vec<u8>,
    /// Where the id's JSON ends, and where the result's begins.
    id_end: usize,
    result_start: usize,
}

impl ResultLine {
    const HEAD: &'static [u8] = br#"{"jsonrpc":"2.0","id":"#;
    const RESULT: &'static [u8] = br#","result":"#;

    /// The line answering request `id` with `result`; fails only when `result` cannot be
    /// serialized as JSON (a map with keys that are not strings, a failing `Serialize`).
    pub fn new<R: Serialize + ?Sized>(id: &RequestId, result: &R) -> serde_json::Result<Self> {
        let mut line = Vec::with_capacity(LINE_CAPACITY);
        line.extend_from_slice(Self::HEAD);
        serde_json::to_writer(&mut line, id)?;
        let id_end = line.len();
        line.extend_from_slice(Self::RESULT);
        let result_start = line.len();
        serde_json::to_writer(&mut line, result)?;
        line.push(b'}');
        Ok(Self {
            line,
            id_end,
            result_start,
        })
    }

    /// The result's JSON text.
    pub fn result(&self) -> &[u8] {
        &self.line[self.result_start..self.line.len() - 1]
    }

    /// The line's length in bytes, without its newline.
    pub fn len(&self) -> usize {
        self.line.len()
    }

    /// Always false: a line holds at least the envelope.
    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }

    /// The line, when it answers `id`; else the same result under `id` (a line built
    /// for another request never answers this one).
    pub(crate) fn into_line_for(self, id: &RequestId) -> Vec<u8> {
        let mut same = SameBytes(&self.line[Self::HEAD.len()..self.id_end]);
        if serde_json::to_writer(&mut same, id).is_ok() && same.0.is_empty() {
            return self.line;
        }
        let result: &RawValue =
            serde_json::from_slice(self.result()).expect("the result was written as JSON");
        Message::response_bytes(Some(id), Ok(result))
    }

    /// The raw line back, once it was given to the output with its newline.
    pub(crate) fn from_sent(mut line: Vec<u8>, id: &RequestId) -> Self {
        line.pop();
        let id_end = Self::HEAD.len() + SameBytes::json_len(id);
        Self {
            line,
            id_end,
            result_start: id_end + Self::RESULT.len(),
        }
    }
}

/// A writer that takes bytes only while they are the next bytes of a slice: compares
/// what is serialized with text already written, without writing it anywhere.
struct SameBytes<'a>(&'a [u8]);

impl SameBytes<'_> {
    /// How long `id` is as JSON.
    fn json_len(id: &RequestId) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0 += bytes.len();
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut count = Count(0);
        serde_json::to_writer(&mut count, id).map_or(0, |()| count.0)
    }
}

impl std::io::Write for SameBytes<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.0.strip_prefix(bytes) {
            Some(rest) => {
                self.0 = rest;
                Ok(bytes.len())
            }
            None => Err(std::io::ErrorKind::InvalidData.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An incoming request's cancellation, asked for when needed
/// ([`Responder::deferred_cancellation`]).
#[derive(Clone, Debug)]
pub struct RequestCancellation {
    shared: Arc<Shared>,
    id: RequestId,
    admission: u64,
}

impl RequestCancellation {
    /// As [`Responder::cancellation`] while the request is in flight; after its answer,
    /// a token that only [`PeerConfig::requests_cancelled_by`] cancels.
    pub fn token(&self) -> CancellationToken {
        self.shared.request_cancellation(&self.id, self.admission)
    }
}

/// Answers one incoming request.
#[derive(Debug)]
pub struct Responder {
    shared: Arc<Shared>,
    id: RequestId,
    /// [`InFlight::admission`].
    admission: u64,
    method: String,
    answered: bool,
}

impl Responder {
    /// The request's id.
    pub fn id(&self) -> &RequestId {
        &self.id
    }

    /// Fires when the other side sends `$/cancel` for this request or the connection
    /// ends. The request must still be answered (with [`ErrorCode::Cancelled`] if the
    /// work was abandoned).
    pub fn cancellation(&self) -> CancellationToken {
        self.shared.request_cancellation(&self.id, self.admission)
    }

    /// The request's cancellation, to ask for later, also after the answer: for work
    /// that may never need it (a token is made only when [`RequestCancellation::token`]
    /// is first called).
    pub fn deferred_cancellation(&self) -> RequestCancellation {
        RequestCancellation {
            shared: self.shared.clone(),
            id: self.id.clone(),
            admission: self.admission,
        }
    }

    /// Sends the result. A result over the size limit is replaced by a `-32006` error,
    /// and that is reported as `Err`.
    pub async fn respond(self, outcome: Result<Value, ErrorObject>) -> Result<(), SendError> {
        match outcome {
            Ok(result) => self.ok(result).await,
            Err(error) => self.error(error).await,
        }
    }

    /// Sends a serializable result, serialized straight into the line.
    pub async fn ok(self, result: impl Serialize) -> Result<(), SendError> {
        let line = response_line(Some(&self.id), Ok(&result));
        self.send(line).await
    }

    /// Sends an error.
    pub async fn error(self, error: ErrorObject) -> Result<(), SendError> {
        let line = error_line(Some(&self.id), &error);
        self.send(line).await
    }

    /// Sends the answer now if the output takes it without waiting, as
    /// [`Responder::ok`] or [`Responder::error`] would. When the output's queue is full,
    /// the responder comes back unanswered, for one of those (which wait for room).
    pub fn try_answer<R: Serialize + ?Sized>(
        self,
        outcome: Result<&R, &ErrorObject>,
    ) -> Result<Result<(), SendError>, Self> {
        let line = response_line(Some(&self.id), outcome);
        self.try_send(line).map_err(|(responder, _)| responder)
    }

    /// [`Responder::try_answer`] with a result already written into its line. When the
    /// output's queue is full, the responder and the line come back, for
    /// [`Responder::answer_line`].
    pub fn try_answer_line(
        self,
        line: ResultLine,
    ) -> Result<Result<(), SendError>, (Self, ResultLine)> {
        let line = line.into_line_for(&self.id);
        self.try_send(line).map_err(|(responder, line)| {
            let line = ResultLine::from_sent(line, &responder.id);
            (responder, line)
        })
    }

    /// Sends a result already written into its line, as [`Responder::ok`] would send
    /// it.
    pub async fn answer_line(self, line: ResultLine) -> Result<(), SendError> {
        let line = line.into_line_for(&self.id);
        self.send(line).await
    }

    /// Puts `line` into the output if it takes it without waiting; gives it back (with
    /// its newline) with the responder when the output's queue is full.
    fn try_send(mut self, mut line: Vec<u8>) -> Result<Result<(), SendError>, (Self, Vec<u8>)> {
        // As in `send`: the id is free before the answer can reach the other side.
        let in_flight = lock(&self.shared.inbound).remove(&self.id);
        if line.len() > self.shared.max_message_bytes {
            // The error that replaces the answer is small: it may go over the queue's bound.
            self.answered = true;
            let (error, refused) = self.too_large(line.len());
            self.shared
                .send_line_detached(error_line(Some(&self.id), &error));
            return Ok(Err(refused));
        }
        if let Err(reason) = self.shared.check_open() {
            self.answered = true;
            return Ok(Err(SendError::Closed(reason)));
        }
        line.push(b'\n');
        let length = line.len();
        match self.shared.out.push(line, true) {
            Ok(()) => {
                self.answered = true;
                self.shared.stats.wrote(length);
                Ok(Ok(()))
            }
            Err(Refused::Full(line)) => {
                if let Some(in_flight) = in_flight {
                    lock(&self.shared.inbound).insert(self.id.clone(), in_flight);
                }
                Err((self, line))
            }
            Err(refused) => {
                self.answered = true;
                self.shared.refused(refused);
                Ok(Err(SendError::Closed(self.shared.close_reason())))
            }
        }
    }

    async fn send(mut self, line: Vec<u8>) -> Result<(), SendError> {
        self.answered = true;
        lock(&self.shared.inbound).remove(&self.id);
        if line.len() > self.shared.max_message_bytes {
            let (error, refused) = self.too_large(line.len());
            self.shared
                .send_line(error_line(Some(&self.id), &error))
                .await?;
            return Err(refused);
        }
        self.shared.send_line(line).await
    }

    /// The `-32006` that replaces an answer of `size` bytes, and what the owner is told.
    fn too_large(&self, size: usize) -> (ErrorObject, SendError) {
        let limit = self.shared.max_message_bytes;
        let error = ErrorObject::new(
            ErrorCode::MessageTooLarge,
            format!(
                "the result of `{}` is {size} bytes, over the {limit}-byte message limit",
                self.method
            ),
        )
        .with_data(serde_json::json!({ "limit": limit, "size": size }));
        (error, SendError::TooLarge { size, limit })
    }

    /// Sends `$/progress` for this request.
    pub async fn progress(
        &self,
        progress: f64,
        total: Option<f64>,
        message: Option<String>,
    ) -> Result<(), SendError> {
        let params = ProgressParams {
            id: self.id.clone(),
            progress,
            total,
            message,
        };
        let line = Message::Notification(Notification {
            method: crate::methods::Progress::METHOD.to_owned(),
            params: Some(serde_json::to_value(params).expect("progress params serialize")),
        })
        .to_json();
        self.shared.send_line(line.into_bytes()).await
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        lock(&self.shared.inbound).remove(&self.id);
        let error = ErrorObject::new(
            ErrorCode::InternalError,
            format!(
                "`{}` ended without an answer (its handler was dropped)",
                self.method
            ),
        );
        let line = error_line(Some(&self.id), &error);
        self.shared.send_line_detached(line);
    }
}

async fn write_loop(shared: Arc<Shared>) {
    if let Err(e) = shared.out.run(&shared.closed).await {
        shared.refused(Refused::Failed(e));
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    shared: Arc<Shared>,
    reader: R,
    events: Events,
    config: PeerConfig,
) {
    let mut frames = FramedRead::with_capacity(
        reader,
        PeerCodec {
            codec: NdjsonCodec::new(config.max_message_bytes),
            limit: shared.clone(),
            lines: LineReader {
                raw_params: config.raw_params,
                offer: config
                    .take_lines
                    .clone()
                    .zip(events.unfinished.clone())
                    .map(|(taker, unfinished)| Offer {
                        taker,
                        shared: shared.clone(),
                        unfinished,
                    }),
            },
        },
        64 * 1024,
    );
    // One wait for the end, registered once rather than at every message.
    let closed = shared.closed.cancelled();
    tokio::pin!(closed);
    let reason = loop {
        // The next message first; the wait for the end is polled only when there is
        // none, and a message read once the end has come is dropped, not handled.
        let next = std::future::poll_fn(|cx| match frames.poll_next_unpin(cx) {
            Poll::Ready(next) => Poll::Ready((!shared.closed.is_cancelled()).then_some(next)),
            Poll::Pending => closed.as_mut().poll(cx).map(|()| None),
        })
        .await;
        let Some(next) = next else { break None };
        // The answers to lines read together go out together: held while the line just
        // taken has others behind it in the buffer, written (in one write) once the
        // last is handled, and before anything that may wait.
        // (Only lines a taker took are ever held.)
        let taken = matches!(next, Some(Ok(Ok(None))));
        if taken && memchr::memchr(b'\n', frames.read_buffer()).is_some() {
            shared.out.hold();
        } else if let Err(refused) = shared.out.release() {
            shared.refused(refused);
        }
        let event = match next {
            None => break Some(CloseReason::Eof),
            Some(Err(e)) => {
                break Some(CloseReason::Io(format!(
                    "reading from {} failed: {e}",
                    shared.name
                )));
            }
            Some(Ok(Err(line))) => {
                if let Some(invalid) = malformed_response(&line) {
                    // Responses are never answered (docs/protocol.md §2.3); the request
                    // it answers fails now rather than at its deadline.
                    fail_pending(&shared, invalid);
                } else if fail_unreadable(&shared, &line) {
                    // The same for a response that could not be read at all, when its
                    // start names a request in flight.
                } else {
                    // Kept for a request that then times out: it may have been its
                    // answer (one over the size limit cannot be matched).
                    *lock(&shared.last_unreadable) = Some(line.to_string());
                    shared.unreadable.fetch_add(1, Ordering::Relaxed);
                    if config.answer_invalid {
                        let answer = Message::Response(line.to_response()).to_json().into_bytes();
                        let _ = shared.send_line(answer).await;
                    }
                }
                Some(Event::Problem(Problem::InvalidLine(line)))
            }
            Some(Ok(Ok(message))) => {
                shared.stats.messages_in.fetch_add(1, Ordering::Relaxed);
                match message {
                    Some(message) => route(&shared, &config, message).await,
                    // Taken and handled by the owner's taker.
                    None => None,
                }
            }
        };
        match &event {
            Some(Event::Problem(Problem::LateResponse { .. })) => {
                shared.stats.late_responses.fetch_add(1, Ordering::Relaxed);
            }
            Some(Event::Problem(_)) => {
                shared.stats.problems.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        let Some(event) = event else { continue };
        if let Some(unfinished) = &events.unfinished {
            unfinished.fetch_add(1, Ordering::AcqRel);
        }
        // Handed over at once when the owner's queue has room (the common case); else
        // the reader waits for room, or for the end.
        let delivered = match events.tx.try_send(event) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(event)) => Err(mpsc::error::SendError(event)),
            Err(mpsc::error::TrySendError::Full(event)) => tokio::select! {
                biased;
                () = &mut closed => break None,
                sent = events.tx.send(event) => sent,
            },
        };
        if delivered.is_err()
            && let Some(unfinished) = &events.unfinished
        {
            unfinished.fetch_sub(1, Ordering::AcqRel);
        }
        if let Err(mpsc::error::SendError(Event::Request(request))) = delivered {
            // Nobody takes requests any more: say so rather than let the caller wait.
            let _ = request
                .responder
                .error(ErrorObject::new(
                    ErrorCode::InternalError,
                    "this peer no longer accepts requests",
                ))
                .await;
        }
    };
    if let Some(reason) = reason {
        shared.close(reason);
    }
}

/// The reader's end of the owner's queue.
struct Events {
    tx: mpsc::Sender<Event>,
    /// Shared with [`Incoming::unfinished`]. Only the reader adds to it, so once it
    /// reads 0 the owner stays idle until the reader queues another event.
    unfinished: Option<Arc<AtomicUsize>>,
}

/// The line's problem, when it is a malformed response.
fn malformed_response(line: &InvalidLine) -> Option<&InvalidMessage> {
    match &line.problem {
        LineProblem::Unparseable(ParseFailure::Invalid(invalid)) if invalid.is_response() => {
            Some(invalid)
        }
        _ => None,
    }
}

/// Fails the request a malformed response names, if it is in flight: its caller learns
/// what came back now, instead of waiting for its deadline.
fn fail_pending(shared: &Shared, invalid: &InvalidMessage) {
    let Some(id) = &invalid.id else { return };
    let pending = lock(&shared.pending).remove(id);
    if let Some(pending) = pending {
        let error = ErrorObject::new(
            ErrorCode::InternalError,
            format!(
                "{} answered `{}` with a malformed response: {invalid}",
                shared.name, pending.method
            ),
        );
        let _ = pending.tx.send(Err(Failure::Remote(error)));
    }
}

/// Fails the request in flight that an unreadable line answers by its start (see
/// [`response_id`]): its caller learns now that the answer was lost, and why. Whether
/// there was one.
fn fail_unreadable(shared: &Shared, line: &InvalidLine) -> bool {
    let Some(id) = response_id(&line.excerpt) else {
        return false;
    };
    let pending = lock(&shared.pending).remove(&RequestId::from(id));
    pending.is_some_and(|pending| {
        let _ = pending.tx.send(Err(Failure::Unreadable(line.to_string())));
        true
    })
}

/// The id of the response whose line starts with `start`, when that start says so:
/// among the object's keys it shows, an integer `id` (this side's ids are integers)
/// and `result` or `error`, and no `method`. A line cut before them says nothing.
fn response_id(start: &str) -> Option<i64> {
    let bytes = start.as_bytes();
    let (mut depth, mut at, mut key_next) = (0_usize, 0, false);
    let (mut id, mut answer, mut method) = (None, false, false);
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                let mut end = at + 1;
                while end < bytes.len() && bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                if end >= bytes.len() {
                    break;
                }
                if depth == 1 && key_next {
                    key_next = false;
                    let key = &bytes[at + 1..end];
                    let rest = start[end + 1..]
                        .trim_start()
                        .strip_prefix(':')?
                        .trim_start();
                    match key {
                        b"id" => {
                            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
                            let after = rest[digits..].trim_start();
                            if digits > 0 && (after.starts_with(',') || after.starts_with('}')) {
                                id = rest[..digits].parse().ok();
                            }
                        }
                        b"result" | b"error" => answer = true,
                        b"method" => method = true,
                        _ => {}
                    }
                }
                at = end + 1;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                key_next = depth == 1 && bytes[at] == b'{';
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => key_next = depth == 1,
            _ => {}
        }
        at += 1;
    }
    id.filter(|_| answer && !method)
}

/// A request's params as the reader keeps them.
enum Params {
    Value(Value),
    Raw(Box<RawValue>),
}

impl Params {
    fn is_object(&self) -> bool {
        match self {
            Self::Value(value) => value.is_object(),
            Self::Raw(raw) => raw.get().starts_with('{'),
        }
    }
}

/// The NDJSON codec, reading requests' params as [`PeerConfig::raw_params`] says.
struct PeerCodec {
    codec: NdjsonCodec,
    lines: LineReader,
    /// Holds [`Peer::lower_incoming_limit`]'s limit.
    limit: Arc<Shared>,
}

impl PeerCodec {
    /// The codec, with the line limit as it is now, and the reader of its lines. Called
    /// at every decode, so at every chunk read: the limit may have been lowered while
    /// the reader waited, even in a blocking read (`connect_on_thread`).
    fn parts(&mut self) -> (&mut NdjsonCodec, &LineReader) {
        let limit = self.limit.incoming_limit.load(Ordering::Relaxed);
        self.codec.set_max_line(limit);
        (&mut self.codec, &self.lines)
    }
}

/// Reads the lines the codec frames.
struct LineReader {
    raw_params: bool,
    offer: Option<Offer>,
}

/// A message, `None` for a line the owner's [`LineTaker`] took, or a line that is not
/// a message.
type Inbound = Result<Option<Envelope<Params>>, InvalidLine>;

/// What the reader needs to offer lines to the owner's [`LineTaker`].
struct Offer {
    taker: LineTaker,
    shared: Arc<Shared>,
    /// [`Incoming::unfinished`].
    unfinished: Arc<AtomicUsize>,
}

impl LineReader {
    /// Reads one line: offered to the owner's taker first, when there is one and the
    /// owner is idle (`None` when it took it), else parsed into a message.
    fn read(&self, line: &str) -> Result<Option<Envelope<Params>>, ParseFailure> {
        if let Some(offer) = &self.offer
            && offer.unfinished.load(Ordering::Acquire) == 0
            && !offer.shared.closed.is_cancelled()
            && nesting::exceeds(line, MAX_NESTING).is_none()
            && (offer.taker.0)(OfferedLine { text: line, offer }).is_ok()
        {
            return Ok(None);
        }
        let parse = if self.raw_params {
            parse_raw
        } else {
            parse_value
        };
        parse(line).map(Some)
    }
}

fn parse_value(line: &str) -> Result<Envelope<Params>, ParseFailure> {
    Ok(match Message::envelope::<Value>(line)? {
        Envelope::Request { id, method, params } => Envelope::Request {
            id,
            method,
            params: params.map(Params::Value),
        },
        Envelope::Notification { method, params } => Envelope::Notification {
            method,
            params: params.map(Params::Value),
        },
        Envelope::Response(response) => Envelope::Response(response),
    })
}

/// Keeps a request's params as text; a notification's are parsed (they are few).
fn parse_raw(line: &str) -> Result<Envelope<Params>, ParseFailure> {
    Ok(match Message::envelope::<&RawValue>(line)? {
        Envelope::Request { id, method, params } => Envelope::Request {
            id,
            method,
            params: params.map(|raw| Params::Raw(raw.to_owned())),
        },
        Envelope::Notification { method, params } => Envelope::Notification {
            method,
            params: params
                .map(|raw| serde_json::from_str(raw.get()).map(Params::Value))
                .transpose()
                .map_err(|e| ParseFailure::NotJson(e.to_string()))?,
        },
        Envelope::Response(response) => Envelope::Response(response),
    })
}

impl tokio_util::codec::Decoder for PeerCodec {
    type Item = Inbound;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut bytes::BytesMut) -> std::io::Result<Option<Inbound>> {
        let (codec, lines) = self.parts();
        Ok(codec.decode_with(buf, &mut |line| lines.read(line)))
    }

    fn decode_eof(&mut self, buf: &mut bytes::BytesMut) -> std::io::Result<Option<Inbound>> {
        let (codec, lines) = self.parts();
        Ok(codec.decode_eof_with(buf, &mut |line| lines.read(line)))
    }
}

/// Enters request `id` in flight and returns its responder; gives the id back when it
/// is already in flight.
fn admit(shared: &Arc<Shared>, id: RequestId, method: &str) -> Result<Responder, RequestId> {
    let admission = shared.admissions.fetch_add(1, Ordering::Relaxed);
    match lock(&shared.inbound).entry(id.clone()) {
        Entry::Occupied(_) => return Err(id),
        Entry::Vacant(vacant) => {
            vacant.insert(InFlight {
                admission,
                cancel: RequestCancel::NotMade { cancelled: false },
            });
        }
    }
    Ok(Responder {
        shared: shared.clone(),
        id,
        admission,
        method: method.to_owned(),
        answered: false,
    })
}

/// Handles what the reader can handle itself; returns what the owner must see.
async fn route(
    shared: &Arc<Shared>,
    config: &PeerConfig,
    message: Envelope<Params>,
) -> Option<Event> {
    match message {
        Envelope::Response(Response {
            id: Some(id),
            outcome,
        }) => {
            let pending = lock(&shared.pending).remove(&id);
            if let Some(pending) = pending {
                let _ = pending.tx.send(outcome.map_err(Failure::Remote));
                return None;
            }
            let late = {
                let mut abandoned = lock(&shared.abandoned);
                abandoned
                    .iter()
                    .position(|(known, _)| *known == id)
                    .and_then(|i| abandoned.remove(i))
            };
            Some(Event::Problem(match late {
                Some((id, method)) => Problem::LateResponse { id, method },
                None => Problem::UnknownResponse { id },
            }))
        }
        Envelope::Response(Response { id: None, outcome }) => Some(Event::Problem(match outcome {
            Err(error) => Problem::ErrorWithoutId(error),
            Ok(_) => unreachable!("the parser refuses a success response without an id"),
        })),
        Envelope::Request { id, method, params } => {
            // A ping reusing an id in flight is refused like any request below.
            if config.answer_ping
                && method == crate::methods::Ping::METHOD
                && !lock(&shared.inbound).contains_key(&id)
            {
                let line = match params {
                    Some(params) if !params.is_object() => error_line(
                        Some(&id),
                        &ErrorObject::new(
                            ErrorCode::InvalidParams,
                            "`ping` takes `{}` as params (or none)",
                        ),
                    ),
                    _ => response_line(Some(&id), Ok(&serde_json::json!({}))),
                };
                let _ = shared.send_line(line).await;
                return None;
            }
            let responder = match admit(shared, id, &method) {
                Ok(responder) => responder,
                Err(id) => {
                    // Answered with a `null` id: the reused id would be taken for the
                    // answer of the request still in flight (docs/protocol.md §4).
                    let error = ErrorObject::new(
                        ErrorCode::InvalidRequest,
                        format!(
                            "request id {id} is already in flight; use a new id for each request"
                        ),
                    )
                    .with_data(serde_json::json!({ "id": id }));
                    let _ = shared.send_line(error_line(None, &error)).await;
                    return Some(Event::Problem(Problem::DuplicateRequestId { id }));
                }
            };
            let (value, raw) = match params {
                None => (None, None),
                Some(Params::Value(value)) => (Some(value), None),
                Some(Params::Raw(raw)) => (None, Some(raw)),
            };
            Some(Event::Request(IncomingRequest {
                responder,
                method,
                params: value,
                raw_params: raw,
            }))
        }
        Envelope::Notification { method, params } => {
            let params = params.map(|params| match params {
                Params::Value(value) => value,
                Params::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            });
            if method == crate::methods::Cancel::METHOD {
                return match parse_params::<CancelParams>(params) {
                    Ok(CancelParams { id }) => {
                        if let Some(request) = lock(&shared.inbound).get_mut(&id) {
                            request.cancel();
                        }
                        None
                    }
                    Err(reason) => {
                        Some(Event::Problem(Problem::BadNotification { method, reason }))
                    }
                };
            }
            if method == crate::methods::Progress::METHOD {
                return match parse_params::<ProgressParams>(params) {
                    Ok(progress) => {
                        let tx = lock(&shared.pending)
                            .get(&progress.id)
                            .and_then(|p| p.progress.clone());
                        if let Some(tx) = tx {
                            let _ = tx.try_send(progress);
                        }
                        None
                    }
                    Err(reason) => {
                        Some(Event::Problem(Problem::BadNotification { method, reason }))
                    }
                };
            }
            Some(Event::Notification(Notification { method, params }))
        }
    }
}

fn parse_params<T: serde::de::DeserializeOwned>(params: Option<Value>) -> Result<T, String> {
    serde_json::from_value(params.unwrap_or(Value::Null)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::methods::{EmptyObject, Ping};

    /// Answers every request with its params, after `params.sleepMs` if given.
    fn echo_server(mut incoming: Incoming) {
        tokio::spawn(async move {
            while let Some(event) = incoming.next().await {
                if let Event::Request(request) = event {
                    tokio::spawn(async move {
                        let params = request.params.unwrap_or(Value::Null);
                        if let Some(ms) = params.get("sleepMs").and_then(Value::as_u64) {
                            let cancel = request.responder.cancellation();
                            tokio::select! {
                                () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                                () = cancel.cancelled() => {
                                    let _ = request.responder.error(ErrorObject::new(ErrorCode::Cancelled, "cancelled")).await;
                                    return;
                                }
                            }
                        }
                        let _ = request.responder.ok(params).await;
                    });
                }
            }
        });
    }

    #[tokio::test]
    async fn raw_params_arrive_as_their_text_and_notifications_stay_parsed() {
        let (a_io, b_io) = tokio::io::duplex(64 * 1024);
        let (a_read, a_write) = tokio::io::split(a_io);
        let (b_read, b_write) = tokio::io::split(b_io);
        let (host, _host_in) = connect(a_read, a_write, PeerConfig::default());
        let raw = PeerConfig {
            raw_params: true,
            answer_ping: false,
            ..PeerConfig::default()
        };
        let (_plugin, mut plugin_in) = connect(b_read, b_write, raw);
        let sender = host.clone();
        let call = tokio::spawn(async move {
            let params = json!({"a": [1, "b"]});
            sender
                .call("x", Some(&params), CallOptions::default())
                .await
        });
        let Some(Event::Request(request)) = plugin_in.next().await else {
            panic!("a request")
        };
        assert_eq!(request.params, None);
        assert_eq!(
            request.raw_params.as_deref().map(RawValue::get),
            Some(r#"{"a":[1,"b"]}"#)
        );
        request.responder.ok(json!("done")).await.unwrap();
        host.notify_raw("note", Some(json!({"n": 1})))
            .await
            .unwrap();
        let Some(Event::Notification(note)) = plugin_in.next().await else {
            panic!("a notification")
        };
        assert_eq!(note.params, Some(json!({"n": 1})));
        assert_eq!(call.await.unwrap().unwrap(), json!("done"));
    }

    #[tokio::test]
    async fn typed_requests_read_their_result_and_name_a_wrong_shape() {
        use crate::methods::{CallContext, Content, ToolInvoke, ToolInvokeParams, ToolResult};
        let ((host, _host_in), (_plugin, mut plugin_in)) = memory_pair(&PeerConfig::default());
        tokio::spawn(async move {
            while let Some(Event::Request(request)) = plugin_in.next().await {
                let params: ToolInvokeParams =
                    serde_json::from_value(request.params.unwrap()).unwrap();
                let _ = if params.name == "good" {
                    request
                        .responder
                        .ok(ToolResult::text(params.context.session_key.unwrap()))
                        .await
                } else {
                    request.responder.ok(json!({"content": "not a list"})).await
                };
            }
        });
        let params = |name: &str| ToolInvokeParams {
            name: name.to_owned(),
            arguments: serde_json::Map::new(),
            context: CallContext {
                session_key: Some("s-1".into()),
                ..CallContext::default()
            },
        };
        let good = host
            .request::<ToolInvoke>(&params("good"), CallOptions::default())
            .await
            .unwrap();
        assert_eq!(good.content, [Content::Text { text: "s-1".into() }]);
        let bad = host
            .request::<ToolInvoke>(&params("bad"), CallOptions::default())
            .await;
        assert!(matches!(bad, Err(CallError::Decode(_))), "{bad:?}");
        assert_eq!(host.pending(), 0);
    }

    #[tokio::test]
    async fn concurrent_requests_in_both_directions() {
        let ((a, a_in), (b, b_in)) = memory_pair(&PeerConfig::default());
        echo_server(a_in);
        echo_server(b_in);
        let mut calls = Vec::new();
        for i in 0..200 {
            let (from, delay) = if i % 2 == 0 {
                (a.clone(), i % 7)
            } else {
                (b.clone(), i % 5)
            };
            calls.push(tokio::spawn(async move {
                let answer = from
                    .call(
                        "echo",
                        Some(&json!({"n": i, "sleepMs": delay})),
                        CallOptions::default(),
                    )
                    .await
                    .unwrap();
                assert_eq!(answer["n"], i);
            }));
        }
        for call in calls {
            call.await.unwrap();
        }
        assert_eq!(a.pending(), 0);
        assert_eq!(b.pending(), 0);
    }

    #[tokio::test]
    async fn ping_is_answered_by_the_peer_itself() {
        let ((a, _a_in), (_b, _b_in)) = memory_pair(&PeerConfig::default());
        let pong = a
            .request::<Ping>(
                &EmptyObject {},
                CallOptions::timeout(Duration::from_secs(5)),
            )
            .await;
        assert_eq!(pong.unwrap(), EmptyObject {});
    }

    #[tokio::test]
    async fn a_timeout_sends_cancel_and_the_late_answer_is_reported() {
        let ((a, mut a_in), (_b, mut b_in)) = memory_pair(&PeerConfig::default());
        let call = a.call(
            "slow",
            None,
            CallOptions::timeout(Duration::from_millis(50)),
        );
        let serve = async {
            let Some(Event::Request(request)) = b_in.next().await else {
                panic!()
            };
            let cancel = request.responder.cancellation();
            cancel.cancelled().await; // the `$/cancel` arrived
            // The protocol says a cancelled request is still answered: answer late.
            request.responder.ok(json!("late")).await.unwrap();
        };
        let (result, ()) = tokio::join!(call, serve);
        assert!(matches!(result, Err(CallError::Timeout(_))), "{result:?}");
        match a_in.next().await {
            Some(Event::Problem(Problem::LateResponse { id, method })) => {
                assert_eq!(id, RequestId::from(1));
                assert_eq!(method, "slow");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.pending(), 0);
    }

    /// Calls `a`, which `b` answers with `line` as it is (its responder kept until the
    /// call is over: dropped, it would answer too).
    async fn answered_with(
        (a, b, b_in): (&Peer, &Peer, &mut Incoming),
        line: String,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let call = a.call("big", None, CallOptions::timeout(timeout));
        let serve = async {
            let Some(Event::Request(request)) = b_in.next().await else {
                panic!()
            };
            b.send_raw(line).await.unwrap();
            request
        };
        tokio::join!(call, serve).0
    }

    /// An answer that cannot be read fails its request at once when its start names
    /// it; else the request says at its timeout that a line could not be read.
    #[tokio::test]
    async fn an_unreadable_answer_fails_its_request_or_is_named_at_its_timeout() {
        let config = PeerConfig {
            max_message_bytes: 200,
            ..PeerConfig::default()
        };
        let ((a, _a_in), (b, mut b_in)) = memory_pair(&config);
        let long = "x".repeat(300);
        // Its start names it: failed at once, long before its deadline.
        let named = format!(r#"{{"jsonrpc": "2.0", "id": 1, "result": "{long}"}}"#);
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            answered_with((&a, &b, &mut b_in), named, Duration::from_mins(1)),
        )
        .await
        .expect("failed before its deadline");
        match result {
            Err(CallError::Unreadable {
                problem,
                timeout: None,
            }) => assert!(
                problem.contains("longer than the 200-byte limit"),
                "{problem}"
            ),
            other => panic!("{other:?}"),
        }
        // Its id comes too late in the line: named at the deadline.
        let unnamed = format!(r#"{{"jsonrpc":"2.0","result":"{long}","id":2}}"#);
        let result = answered_with((&a, &b, &mut b_in), unnamed, Duration::from_millis(200)).await;
        match result {
            Err(CallError::Unreadable {
                problem,
                timeout: Some(_),
            }) => assert!(
                problem.contains("longer than the 200-byte limit"),
                "{problem}"
            ),
            other => panic!("{other:?}"),
        }
        // A later timeout with nothing unreadable meanwhile is a plain one.
        let quiet = a
            .call(
                "quiet",
                None,
                CallOptions::timeout(Duration::from_millis(50)),
            )
            .await;
        assert!(matches!(quiet, Err(CallError::Timeout(_))), "{quiet:?}");
    }

    #[test]
    fn a_response_is_told_by_its_start() {
        for (start, id) in [
            (r#"{"jsonrpc":"2.0","id":7,"result":{"a"#, Some(7)),
            (r#"{"jsonrpc": "2.0", "id": 12, "error": {"#, Some(12)),
            (r#"{"id":3,"jsonrpc":"2.0","result":"#, Some(3)),
            // Not (yet) an answer; a request; a notification; a cut id; a nested id; a
            // string id (this side's are integers); not JSON.
            (r#"{"jsonrpc":"2.0","id":7,"params":"#, None),
            (r#"{"jsonrpc":"2.0","id":7,"method":"x","result":1"#, None),
            (
                r#"{"jsonrpc":"2.0","method":"log","params":{"id":1,"result":"#,
                None,
            ),
            (r#"{"jsonrpc":"2.0","result":"x","id":12"#, None),
            (r#"{"jsonrpc":"2.0","result":{"id":5},"x":"#, None),
            (r#"{"jsonrpc":"2.0","id":"a","result":"#, None),
            ("not json", None),
        ] {
            assert_eq!(response_id(start), id, "{start}");
        }
    }

    #[tokio::test]
    async fn traffic_is_counted_where_the_owner_asks() {
        let stats = Arc::new(PeerStats::default());
        let config = PeerConfig {
            stats: stats.clone(),
            ..PeerConfig::default()
        };
        let ((host, _host_in), (_plugin, plugin_in)) = memory_pair(&config);
        echo_server(plugin_in);
        let answer = host
            .call("echo", Some(&json!({"a": 1})), CallOptions::default())
            .await
            .unwrap();
        assert_eq!(answer, json!({"a": 1}));
        // Both sides of the pair share `stats` here: one request out and in, one
        // answer out and in.
        let counts = stats.counts();
        assert_eq!((counts.messages_out, counts.messages_in), (2, 2));
        assert_eq!(counts.bytes_in, counts.bytes_out);
        assert!(counts.bytes_out > 40, "{counts:?}");
        assert_eq!(counts.late_responses, 0);
    }

    #[tokio::test]
    async fn cancelling_a_call_tells_the_other_side() {
        let ((a, _a_in), (_b, b_in)) = memory_pair(&PeerConfig::default());
        echo_server(b_in);
        let token = CancellationToken::new();
        let params = json!({"sleepMs": 60_000});
        let call = a.call(
            "echo",
            Some(&params),
            CallOptions::default().with_cancel(token.clone()),
        );
        let cancel_soon = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            token.cancel();
        };
        let (result, ()) = tokio::join!(call, cancel_soon);
        assert!(matches!(result, Err(CallError::Cancelled)));
        // The echo server saw `$/cancel` and answered -32800, which arrives late; the
        // connection is still fine for the next call.
        let answer = a
            .call("echo", Some(&json!({"n": 1})), CallOptions::default())
            .await
            .unwrap();
        assert_eq!(answer["n"], 1);
    }

    #[tokio::test]
    async fn responses_to_unknown_ids_are_reported_and_the_connection_goes_on() {
        let ((a, _a_in), (b, mut b_in)) = memory_pair(&PeerConfig::default());
        a.send_raw(r#"{"jsonrpc":"2.0","id":999,"result":{}}"#)
            .await
            .unwrap();
        let Some(Event::Problem(Problem::UnknownResponse { id })) = b_in.next().await else {
            panic!()
        };
        assert_eq!(id, RequestId::from(999));
        b.request::<Ping>(&EmptyObject {}, CallOptions::default())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn garbage_is_answered_once_and_reported() {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let (server_read, server_write) = tokio::io::split(server_io);
        let (_peer, mut incoming) = connect(server_read, server_write, PeerConfig::default());
        let (client_read, mut client_write) = tokio::io::split(client_io);
        client_write
            .write_all(b"not json\n[]\n{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":5}\n{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}\n")
            .await
            .unwrap();
        let mut lines = BufReader::new(client_read).lines();
        let mut answers = Vec::new();
        for _ in 0..4 {
            let line = lines.next_line().await.unwrap().unwrap();
            answers.push(serde_json::from_str::<Value>(&line).unwrap());
        }
        assert_eq!(answers[0]["error"]["code"], -32700);
        assert_eq!(answers[0]["id"], Value::Null);
        assert_eq!(answers[1]["error"]["code"], -32600);
        assert_eq!(answers[2]["error"]["code"], -32600);
        assert_eq!(answers[2]["id"], 5);
        assert_eq!(
            answers[3],
            json!({"jsonrpc": "2.0", "id": "p", "result": {}})
        );
        for line in 1..=3 {
            let Some(Event::Problem(Problem::InvalidLine(bad))) = incoming.next().await else {
                panic!()
            };
            assert_eq!(bad.line, line);
        }
    }

    #[tokio::test]
    async fn peer_death_mid_request_fails_every_pending_call() {
        let ((a, _a_in), (b, mut b_in)) = memory_pair(&PeerConfig::default());
        let calls: Vec<_> = (0..10)
            .map(|_| {
                let a = a.clone();
                tokio::spawn(async move { a.call("never", None, CallOptions::default()).await })
            })
            .collect();
        let mut unanswered = Vec::new();
        for _ in 0..10 {
            let Some(Event::Request(request)) = b_in.next().await else {
                panic!()
            };
            unanswered.push(request);
        }
        // The other side dies: both its tasks stop and its stream ends.
        b.abort("killed");
        drop(b_in);
        drop(b);
        for call in calls {
            let result = tokio::time::timeout(Duration::from_secs(5), call)
                .await
                .unwrap()
                .unwrap();
            assert!(
                matches!(result, Err(CallError::Closed(CloseReason::Eof))),
                "{result:?}"
            );
        }
        assert!(matches!(
            a.call("after", None, CallOptions::default()).await,
            Err(CallError::NotSent(_))
        ));
        drop(unanswered);
    }

    #[tokio::test]
    async fn abort_fails_pending_calls_with_the_given_reason() {
        let ((a, _a_in), (_b, _b_in)) = memory_pair(&PeerConfig::default());
        let pending = tokio::spawn({
            let a = a.clone();
            async move { a.call("never", None, CallOptions::default()).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        a.abort("plugin exited with status 3");
        let result = pending.await.unwrap();
        assert!(
            matches!(&result, Err(CallError::Closed(CloseReason::Aborted(why))) if why == "plugin exited with status 3"),
            "{result:?}"
        );
    }

    /// A peer whose output is a pipe of 64 bytes nobody reads yet, with room for one
    /// waiting line, and the responders of the requests it was sent, one per id.
    struct FullOutput {
        to_peer: tokio::io::DuplexStream,
        from_peer: tokio::io::DuplexStream,
        _peer: Peer,
        incoming: Incoming,
        responders: Vec<Responder>,
    }

    /// `ids` as JSON texts.
    async fn full_output(ids: &[&str]) -> FullOutput {
        let (mut to_peer, peer_reads) = tokio::io::duplex(64 * 1024);
        let (peer_writes, from_peer) = tokio::io::duplex(64);
        let config = PeerConfig {
            outbound_queue: 1,
            ..PeerConfig::default()
        };
        let (peer, mut incoming) = connect(peer_reads, peer_writes, config);
        for id in ids {
            let line = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"m\"}}\n");
            to_peer.write_all(line.as_bytes()).await.unwrap();
        }
        let mut responders = Vec::new();
        while responders.len() < ids.len() {
            match incoming.next().await {
                Some(Event::Request(request)) => responders.push(request.responder),
                other => panic!("expected a request, got {other:?}"),
            }
        }
        FullOutput {
            to_peer,
            from_peer,
            _peer: peer,
            incoming,
            responders,
        }
    }

    #[tokio::test]
    async fn try_answer_answers_at_once_or_gives_the_responder_back_when_the_output_is_full() {
        let FullOutput {
            mut to_peer,
            from_peer,
            _peer,
            mut incoming,
            responders,
        } = full_output(&["1", "2", "3"]).await;
        let mut responders = responders.into_iter();
        let big = "x".repeat(1000);
        // The first answer fills the pipe, and its rest the queue.
        let first = responders.next().unwrap().try_answer(Ok(&big));
        assert!(matches!(first, Ok(Ok(()))), "{first:?}");
        // The second finds no room: it comes back unanswered, its id still in flight.
        let second = match responders.next().unwrap().try_answer(Ok(&big)) {
            Err(responder) => responder,
            Ok(sent) => panic!("a full queue took the answer: {sent:?}"),
        };
        assert_eq!(second.id(), &RequestId::Number(2.into()));
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(from_peer).lines();
            let mut answers = Vec::new();
            while answers.len() < 4 {
                let line = lines.next_line().await.unwrap().expect("a line");
                answers.push(serde_json::from_str::<Value>(&line).unwrap());
            }
            answers
        });
        to_peer
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"m\"}\n")
            .await
            .unwrap();
        let refused = incoming.next().await;
        assert!(
            matches!(
                refused,
                Some(Event::Problem(Problem::DuplicateRequestId { .. }))
            ),
            "{refused:?}"
        );
        // Now that the other side reads, the waiting method sends it.
        second.ok(&big).await.unwrap();
        // An error answer goes the same way.
        let error = ErrorObject::new(ErrorCode::InternalError, "no");
        match responders.next().unwrap().try_answer::<Value>(Err(&error)) {
            Ok(sent) => sent.unwrap(),
            Err(back) => back.error(error).await.unwrap(),
        }
        let answers = reader.await.unwrap();
        let ids: Vec<&Value> = answers.iter().map(|a| &a["id"]).collect();
        // The reused id 2 was refused (with a `null` id) while 2 was in flight.
        assert_eq!(
            ids,
            [&json!(1), &Value::Null, &json!(2), &json!(3)],
            "{answers:?}"
        );
        assert_eq!(answers[2]["result"], json!(big));
        assert_eq!(answers[3]["error"]["message"], "no");
    }

    /// docs/protocol.md §2.3: a response is never answered, even a bad one; and the
    /// request it names fails at once, not at its deadline.
    #[tokio::test]
    async fn a_malformed_response_is_not_answered_and_fails_its_request_at_once() {
        let (mut to_peer, peer_reads) = tokio::io::duplex(64 * 1024);
        let (peer_writes, from_peer) = tokio::io::duplex(64 * 1024);
        let (peer, mut incoming) = connect(peer_reads, peer_writes, PeerConfig::default());
        let mut lines = BufReader::new(from_peer).lines();
        let call = tokio::spawn({
            let peer = peer.clone();
            async move {
                peer.call("work", None, CallOptions::timeout(Duration::from_mins(10)))
                    .await
            }
        });
        let request: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        let id = &request["id"];
        let malformed = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id}}}\n");
        to_peer.write_all(malformed.as_bytes()).await.unwrap();
        let error = match call.await.unwrap() {
            Err(CallError::Remote(error)) => error,
            other => panic!("expected the malformed answer's error, got {other:?}"),
        };
        assert!(
            error
                .message
                .contains("answered `work` with a malformed response"),
            "{error:?}"
        );
        // Not answered: the next line the peer writes answers the ping that follows.
        to_peer
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}\n")
            .await
            .unwrap();
        let next: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(next["id"], "p", "{next}");
        assert!(matches!(
            incoming.next().await,
            Some(Event::Problem(Problem::InvalidLine(_)))
        ));
    }

    #[tokio::test]
    async fn result_lines_are_sent_as_ok_would_send_them_under_the_responders_own_id() {
        // Everything held to the end: the input's end would end the connection.
        let FullOutput {
            to_peer: _to_peer,
            from_peer,
            _peer,
            incoming: _incoming,
            responders,
        } = full_output(&["1", r#""a\"b""#, "3", "4"]).await;
        let ids: Vec<RequestId> = responders.iter().map(|r| r.id().clone()).collect();
        let big = json!({"text": "x".repeat(1000), "quote": "\"\u{202e}"});
        let mut responders = responders.into_iter();
        // The first fills the pipe, and its rest the queue.
        let line = ResultLine::new(&ids[0], &big).unwrap();
        assert_eq!(line.result(), serde_json::to_vec(&big).unwrap());
        let first = responders.next().unwrap().try_answer_line(line);
        assert!(matches!(first, Ok(Ok(()))), "{first:?}");
        // The second finds no room: the responder and its line come back, whole.
        let (second, line) = match responders
            .next()
            .unwrap()
            .try_answer_line(ResultLine::new(&ids[1], &big).unwrap())
        {
            Err(back) => back,
            Ok(sent) => panic!("a full queue took the answer: {sent:?}"),
        };
        assert_eq!(line.result(), serde_json::to_vec(&big).unwrap());
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(from_peer).lines();
            let mut answers = Vec::new();
            while answers.len() < 4 {
                answers.push(lines.next_line().await.unwrap().expect("a line"));
            }
            answers
        });
        second.answer_line(line).await.unwrap();
        // A line built for another request is answered under this one's id.
        let stray = RequestId::String("another".into());
        responders
            .next()
            .unwrap()
            .answer_line(ResultLine::new(&stray, &big).unwrap())
            .await
            .unwrap();
        let small = ResultLine::new(&ids[3], &[1, 2]).unwrap();
        assert_eq!(
            small.len(),
            r#"{"jsonrpc":"2.0","id":4,"result":[1,2]}"#.len()
        );
        match responders.next().unwrap().try_answer_line(small) {
            Ok(sent) => sent.unwrap(),
            Err((back, line)) => back.answer_line(line).await.unwrap(),
        }
        let answers = reader.await.unwrap();
        // Byte for byte what `ok` writes.
        let expected: Vec<String> = ids
            .iter()
            .zip([&big, &big, &big, &json!([1, 2])])
            .map(|(id, result)| Message::response_json(Some(id), Ok(result)))
            .collect();
        assert_eq!(answers, expected);
    }

    #[tokio::test]
    async fn a_dropped_responder_answers_internal_error() {
        let ((a, _a_in), (_b, mut b_in)) = memory_pair(&PeerConfig::default());
        let call = a.call("x", None, CallOptions::timeout(Duration::from_secs(5)));
        let drop_it = async {
            let Some(Event::Request(request)) = b_in.next().await else {
                panic!()
            };
            drop(request);
        };
        let (result, ()) = tokio::join!(call, drop_it);
        let Err(CallError::Remote(error)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(error.code, ErrorCode::InternalError);
    }

    #[tokio::test]
    async fn progress_reaches_the_caller() {
        let ((a, _a_in), (_b, mut b_in)) = memory_pair(&PeerConfig::default());
        let (tx, mut rx) = mpsc::channel(8);
        let call = a.call("work", None, CallOptions::default().with_progress(tx));
        let serve = async {
            let Some(Event::Request(request)) = b_in.next().await else {
                panic!()
            };
            for step in 1..=3 {
                request
                    .responder
                    .progress(f64::from(step), Some(3.0), None)
                    .await
                    .unwrap();
            }
            request.responder.ok(json!("done")).await.unwrap();
        };
        let (result, ()) = tokio::join!(call, serve);
        assert_eq!(result.unwrap(), json!("done"));
        let mut seen = Vec::new();
        while let Ok(p) = rx.try_recv() {
            seen.push(p.progress);
        }
        assert_eq!(seen, [1.0, 2.0, 3.0]);
    }

    #[tokio::test]
    async fn oversized_requests_and_results_are_refused_with_errors() {
        let config = PeerConfig {
            max_message_bytes: 200,
            ..PeerConfig::default()
        };
        let ((a, _a_in), (_b, mut b_in)) = memory_pair(&config);
        let big = json!({"x": "y".repeat(300)});
        assert!(matches!(
            a.call("big", Some(&big), CallOptions::default()).await,
            Err(CallError::TooLarge { .. })
        ));
        let call = a.call("small", None, CallOptions::timeout(Duration::from_secs(5)));
        let serve = async {
            let Some(Event::Request(request)) = b_in.next().await else {
                panic!()
            };
            assert!(matches!(
                request.responder.ok(big).await,
                Err(SendError::TooLarge { .. })
            ));
        };
        let (result, ()) = tokio::join!(call, serve);
        let Err(CallError::Remote(error)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(error.code, ErrorCode::MessageTooLarge);
    }

    /// A taker that answers `take` requests itself (`"taken"`), holds `hold` requests
    /// unanswered, and gives back every other line.
    fn taker(held: Arc<Mutex<Vec<Responder>>>) -> LineTaker {
        LineTaker::new(move |line| {
            let Ok(message) = serde_json::from_str::<Value>(line.text()) else {
                return Err(line);
            };
            let (Some(method), Ok(id)) = (
                message["method"]
                    .as_str()
                    .filter(|m| *m == "take" || *m == "hold"),
                serde_json::from_value::<RequestId>(message["id"].clone()),
            ) else {
                return Err(line);
            };
            let responder = line.accept(id, method)?;
            if method == "hold" {
                lock(&held).push(responder);
            } else {
                assert!(matches!(
                    responder.try_answer(Ok(&json!("taken"))),
                    Ok(Ok(()))
                ));
            }
            Ok(())
        })
    }

    /// The host's side of a connection whose other side is a peer with `config`: raw
    /// lines in, raw lines out.
    struct RawHost {
        lines: tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>,
        out: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    }

    impl RawHost {
        async fn send(&mut self, line: &str) {
            self.out
                .write_all(format!("{line}\n").as_bytes())
                .await
                .unwrap();
        }

        async fn answer(&mut self) -> Value {
            let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
                .await
                .expect("an answer")
                .unwrap()
                .expect("a line");
            serde_json::from_str(&line).unwrap()
        }
    }

    fn raw_host(config: PeerConfig) -> (RawHost, Peer, Incoming) {
        let (host, peer_io) = tokio::io::duplex(64 * 1024);
        let (read, write) = tokio::io::split(peer_io);
        let (peer, incoming) = connect(read, write, config);
        let (host_read, host_write) = tokio::io::split(host);
        let host = RawHost {
            lines: BufReader::new(host_read).lines(),
            out: host_write,
        };
        (host, peer, incoming)
    }

    #[tokio::test]
    async fn lines_are_offered_to_the_taker_only_while_the_owner_is_idle() {
        let held = Arc::new(Mutex::new(Vec::new()));
        let stats = Arc::new(PeerStats::default());
        let config = PeerConfig {
            take_lines: Some(taker(held.clone())),
            stats: stats.clone(),
            ..PeerConfig::default()
        };
        let (mut host, _peer, mut incoming) = raw_host(config);

        // Idle (no event taken yet): taken and answered where it was read.
        host.send(r#"{"jsonrpc":"2.0","id":1,"method":"take"}"#)
            .await;
        assert_eq!(
            host.answer().await,
            json!({"jsonrpc":"2.0","id":1,"result":"taken"})
        );

        // A notification goes to the owner; the request behind it waits its turn in the
        // queue instead of overtaking it.
        host.send(r#"{"jsonrpc":"2.0","method":"note"}"#).await;
        host.send(r#"{"jsonrpc":"2.0","id":2,"method":"take"}"#)
            .await;
        let Some(Event::Notification(note)) = incoming.next().await else {
            panic!()
        };
        assert_eq!(note.method, "note");
        let Some(Event::Request(request)) = incoming.next().await else {
            panic!("the request behind the notification was taken out of order")
        };
        assert_eq!(request.responder.id(), &RequestId::from(2));
        request.responder.ok(json!("queued")).await.unwrap();
        assert_eq!(host.answer().await["result"], "queued");

        // Once the owner asks for its next event, it is idle again.
        let next = tokio::spawn(async move {
            let event = incoming.next().await;
            (event.is_some(), incoming)
        });
        // On this single-threaded runtime the owner's task runs here, into `next`.
        tokio::task::yield_now().await;
        host.send(r#"{"jsonrpc":"2.0","id":3,"method":"hold"}"#)
            .await;
        tokio::time::timeout(Duration::from_secs(10), async {
            while lock(&held).is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the `hold` request reaches the taker");

        // A taken request is in flight like any other: its id cannot be reused, and
        // `$/cancel` reaches it.
        host.send(r#"{"jsonrpc":"2.0","id":3,"method":"take"}"#)
            .await;
        let refused = host.answer().await;
        assert_eq!(refused["id"], Value::Null);
        assert_eq!(refused["error"]["code"], ErrorCode::InvalidRequest.code());
        let (got_event, _incoming) = next.await.unwrap();
        assert!(got_event, "the reused id is reported to the owner");
        let cancelled = lock(&held)[0].cancellation();
        host.send(r#"{"jsonrpc":"2.0","method":"$/cancel","params":{"id":3}}"#)
            .await;
        tokio::time::timeout(Duration::from_secs(10), cancelled.cancelled())
            .await
            .expect("`$/cancel` reaches a taken request");
        // Every line counts, taken or not.
        assert_eq!(stats.counts().messages_in, 6);
    }

    #[tokio::test]
    async fn a_requests_cancellation_made_late_has_missed_nothing() {
        async fn request(incoming: &mut Incoming) -> IncomingRequest {
            let event = tokio::time::timeout(Duration::from_secs(10), incoming.next()).await;
            let Ok(Some(Event::Request(request))) = event else {
                panic!("a request");
            };
            request
        }
        /// Sends `$/cancel` for `id`, then the request `next` behind it, and returns
        /// that request once read: the reader has handled the `$/cancel` by then.
        async fn cancel(
            host: &mut RawHost,
            incoming: &mut Incoming,
            id: u64,
            next: u64,
        ) -> IncomingRequest {
            let cancel = json!({"jsonrpc": "2.0", "method": "$/cancel", "params": {"id": id}});
            host.send(&cancel.to_string()).await;
            let behind = json!({"jsonrpc": "2.0", "id": next, "method": "work"});
            host.send(&behind.to_string()).await;
            request(incoming).await
        }
        let parent = CancellationToken::new();
        let config = PeerConfig {
            requests_cancelled_by: Some(parent.clone()),
            ..PeerConfig::default()
        };
        let (mut host, peer, mut incoming) = raw_host(config);

        // `$/cancel` before anyone asked: the token made afterwards has fired.
        host.send(r#"{"jsonrpc":"2.0","id":1,"method":"work"}"#)
            .await;
        let first = request(&mut incoming).await;
        let later = first.responder.deferred_cancellation();
        let second = cancel(&mut host, &mut incoming, 1, 2).await;
        assert!(first.responder.cancellation().is_cancelled());
        assert!(later.token().is_cancelled());

        // Once answered, the id is free again; the answered request's cancellation is
        // not that of the request reusing its id.
        first.responder.ok(json!("done")).await.unwrap();
        assert_eq!(host.answer().await["id"], 1);
        host.send(r#"{"jsonrpc":"2.0","id":1,"method":"work"}"#)
            .await;
        let reused = request(&mut incoming).await;
        let third = cancel(&mut host, &mut incoming, 1, 3).await;
        assert!(reused.responder.cancellation().is_cancelled());
        let after_answer = later.token();
        assert!(
            !after_answer.is_cancelled(),
            "the answered request took the cancellation of the one reusing its id"
        );

        // The end of the connection cancels the requests in flight, asked for or not.
        let asked = third.responder.cancellation();
        peer.abort("the test ends the connection");
        assert!(asked.is_cancelled());
        assert!(second.responder.cancellation().is_cancelled());

        // After its answer, only the parent cancels a request's work.
        assert!(!after_answer.is_cancelled());
        parent.cancel();
        assert!(after_answer.is_cancelled());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_read_on_a_thread_of_its_own_waits_in_a_blocking_read() {
        let (host_read, plugin_write) = tokio::io::duplex(64 * 1024);
        let (plugin_read, mut host_write) = std::io::pipe().unwrap();
        let config = PeerConfig {
            take_lines: Some(taker(Arc::default())),
            ..PeerConfig::default()
        };
        let (peer, mut incoming) =
            connect_on_thread(BlockingRead::new(plugin_read), plugin_write, config).unwrap();
        let mut answers = BufReader::new(host_read).lines();
        // Taken on the reading thread, and answered from there.
        std::io::Write::write_all(
            &mut host_write,
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"take\"}\n",
        )
        .unwrap();
        let answer = answers.next_line().await.unwrap().unwrap();
        assert_eq!(answer, r#"{"jsonrpc":"2.0","id":1,"result":"taken"}"#);
        // Anything else reaches the owner, in its task.
        std::io::Write::write_all(
            &mut host_write,
            b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"other\"}\n",
        )
        .unwrap();
        let Some(Event::Request(request)) = incoming.next().await else {
            panic!()
        };
        request.responder.ok(json!("owner")).await.unwrap();
        let answer = answers.next_line().await.unwrap().unwrap();
        assert_eq!(answer, r#"{"jsonrpc":"2.0","id":2,"result":"owner"}"#);
        // A limit lowered while the thread is blocked in `read` holds for the next line.
        tokio::time::sleep(Duration::from_millis(50)).await;
        peer.lower_incoming_limit(100);
        let long = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"take\",\"params\":{{\"pad\":\"{}\"}}}}\n",
            "y".repeat(500)
        );
        std::io::Write::write_all(&mut host_write, long.as_bytes()).unwrap();
        let refused = tokio::time::timeout(Duration::from_secs(10), answers.next_line())
            .await
            .expect("an answer to the over-long line")
            .unwrap()
            .unwrap();
        let refused: Value = serde_json::from_str(&refused).unwrap();
        assert_eq!(
            refused["error"]["code"],
            ErrorCode::MessageTooLarge.code(),
            "{refused}"
        );
        assert_eq!(refused["error"]["data"]["limit"], 100, "{refused}");
        let Some(Event::Problem(Problem::InvalidLine(_))) = incoming.next().await else {
            panic!("the owner hears of the line it did not get")
        };
        // EOF ends the connection, and the thread with it.
        drop(host_write);
        assert!(incoming.next().await.is_none());
        assert_eq!(peer.closed().await, CloseReason::Eof);
    }

    #[tokio::test]
    async fn close_ends_the_output_and_eof_ends_the_connection() {
        let ((a, _a_in), (b, mut b_in)) = memory_pair(&PeerConfig::default());
        a.notify_raw("bye", None).await.unwrap();
        a.close();
        assert!(matches!(b_in.next().await, Some(Event::Notification(n)) if n.method == "bye"));
        assert!(b_in.next().await.is_none());
        assert_eq!(b.closed().await, CloseReason::Eof);
        assert!(matches!(
            a.call("x", None, CallOptions::default()).await,
            Err(CallError::NotSent(_))
        ));
    }

    #[tokio::test]
    async fn a_duplicate_in_flight_id_is_refused() {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let (server_read, server_write) = tokio::io::split(server_io);
        let (_peer, mut incoming) = connect(server_read, server_write, PeerConfig::default());
        let (client_read, mut client_write) = tokio::io::split(client_io);
        let request = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"slow\"}\n";
        client_write.write_all(request).await.unwrap();
        client_write.write_all(request).await.unwrap();
        let Some(Event::Request(first)) = incoming.next().await else {
            panic!()
        };
        let Some(Event::Problem(Problem::DuplicateRequestId { .. })) = incoming.next().await else {
            panic!()
        };
        let mut lines = BufReader::new(client_read).lines();
        let refusal: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(refusal["error"]["code"], -32600);
        assert_eq!(
            refusal["id"],
            Value::Null,
            "not the id of the request in flight"
        );
        assert_eq!(refusal["error"]["data"]["id"], 1);
        first.responder.ok(json!(1)).await.unwrap();
        let answer: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(answer["result"], 1);
    }

    #[tokio::test]
    async fn pings_answered_by_the_peer_obey_the_same_rules() {
        let (client_io, server_io) = tokio::io::duplex(4096);
        let (server_read, server_write) = tokio::io::split(server_io);
        let (_peer, mut incoming) = connect(server_read, server_write, PeerConfig::default());
        let (client_read, mut client_write) = tokio::io::split(client_io);
        client_write
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"slow\"}\n")
            .await
            .unwrap();
        let Some(Event::Request(_first)) = incoming.next().await else {
            panic!()
        };
        for ping in [
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"ping","params":[1]}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":null}"#,
        ] {
            client_write.write_all(ping.as_bytes()).await.unwrap();
            client_write.write_all(b"\n").await.unwrap();
        }
        let mut lines = BufReader::new(client_read).lines();
        let mut next = async || -> Value {
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap()
        };
        let reused = next().await;
        assert_eq!(
            (reused["id"].clone(), reused["error"]["code"].clone()),
            (Value::Null, json!(-32600))
        );
        let positional = next().await;
        assert_eq!(
            (
                positional["id"].clone(),
                positional["error"]["code"].clone()
            ),
            (json!(2), json!(-32602))
        );
        let fine = next().await;
        assert_eq!(
            (fine["id"].clone(), fine["result"].clone()),
            (json!(3), json!({}))
        );
    }
}
