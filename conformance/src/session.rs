//! One conversation with one plugin process: the host's side of the protocol, kept
//! deliberately low-level so a check can send any bytes and see every line that comes
//! back.
//!
//! # Theory of operation
//!
//! Three tasks serve a session:
//!
//! - the **stdout reader** splits the plugin's output into lines itself (so it sees the
//!   raw bytes: `\r`, byte-order marks, blank lines, over-long lines), judges each line
//!   for the stream checks ([`crate::traffic::Traffic`]), decodes it with the protocol crate's
//!   [`NdjsonCodec`] and hands messages to the session through a bounded queue;
//! - the **stderr drain** reads stderr from the first moment, counting bytes and keeping
//!   the last lines, so a chatty plugin never blocks on a full pipe;
//! - the **waiter** (in [`crate::launch`]) reaps the process and publishes its status.
//!
//! The session itself is driven by the check that owns it: it only reads while a check
//! waits ([`Session::wait`], [`Session::settle`]). While it reads it plays the host:
//! requests from the plugin are answered (`ping`, `host/getConfig`, `host/callMethod`),
//! lines the plugin garbled are answered as §2.3 says, and everything else is kept for
//! the checks: answers to the suite's requests by id, and other events in arrival
//! order.

use std::collections::{HashMap, HashSet};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use outpost_protocol::methods::{Direction as MethodDirection, METHODS};
use outpost_protocol::{
    ErrorCode, ErrorObject, Frame, InvalidLine, Message, NdjsonCodec, Notification, Request,
    RequestId, Response,
};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

use crate::launch::{Launch, PluginProcess, describe_exit};
use crate::schemas;
use crate::traffic::{Direction, Shared, cut};

/// The longest line the reader holds; longer lines are counted and discarded. Above the
/// protocol's default limit so a plugin that ignores the announced limit is measured,
/// not cut.
const READ_CAP: usize = outpost_protocol::DEFAULT_MAX_MESSAGE_BYTES + 1024;
/// Messages waiting between the reader and the session.
const QUEUE: usize = 1024;
/// Events kept per session; older ones are dropped.
const MAX_EVENTS: usize = 10_000;
/// Stderr lines kept per session, for explaining a crash.
const STDERR_LINES: usize = 5;
/// How long to wait for the exit status after stdout closed.
const EXIT_AFTER_EOF: Duration = Duration::from_millis(500);

/// Why a wait ended without what it waited for.
#[derive(Clone, Debug)]
pub(crate) enum Stall {
    /// Nothing came in time.
    Timeout(Duration),
    /// The plugin closed its stdout (it exited, or is about to).
    Exited(Option<ExitStatus>),
    /// Writing to the plugin's stdin failed or blocked.
    Write(String),
}

/// An answer to one of the suite's requests.
#[derive(Clone, Debug)]
pub(crate) struct Answer {
    pub(crate) at: Instant,
    pub(crate) outcome: Result<Value, ErrorObject>,
}

/// Something the plugin sent that is not an answer to a pending request.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) at: Instant,
    pub(crate) kind: EventKind,
}

#[derive(Clone, Debug)]
pub(crate) enum EventKind {
    Notification(Notification),
    /// A request from the plugin, already answered by the session.
    Request {
        method: String,
    },
    /// A response with id null or with an id the suite never used.
    Unsolicited(Response),
    /// A second answer to a request already answered.
    Duplicate(Response),
    /// A line that is not a message.
    Invalid,
}

/// What the reader hands the session.
#[derive(Debug)]
enum FromPlugin {
    Message(Message),
    Invalid {
        line: InvalidLine,
        /// It has `result` or `error`: a broken response, which is never answered.
        response_like: bool,
    },
    Eof,
}

/// What the session answers when the plugin asks the host something.
#[derive(Clone, Debug)]
pub(crate) struct HostBehaviour {
    pub(crate) config: Map<String, Value>,
}

/// The gateway method the suite's host pretends to have: it answers with its params.
pub(crate) const ECHO_METHOD: &str = "conformance.echo";

/// One plugin process and the conversation with it.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) label: &'static str,
    process: PluginProcess,
    stdin: Option<ChildStdin>,
    rx: mpsc::Receiver<FromPlugin>,
    shared: Arc<Shared>,
    limit: Arc<AtomicUsize>,
    stderr: Arc<Mutex<StderrState>>,
    host: HostBehaviour,
    /// Write and default wait timeout.
    pub(crate) timeout: Duration,
    next_id: i64,
    /// Requests in flight: id to method.
    pending: HashMap<RequestId, String>,
    answered: HashSet<RequestId>,
    answers: HashMap<RequestId, Answer>,
    /// Ids of the suite's requests in the order their answers arrived.
    arrivals: Vec<RequestId>,
    events: Vec<Event>,
    dropped_events: usize,
    initialized_sent: bool,
    eof: bool,
    /// Set when a wait timed out: the plugin may be stuck, start a new one for the next
    /// step.
    poisoned: bool,
}

#[derive(Debug, Default)]
struct StderrState {
    bytes: u64,
    last: std::collections::VecDeque<String>,
}

impl Session {
    /// Starts the plugin and its reader tasks. Sends nothing.
    pub(crate) fn spawn(
        shared: &Arc<Shared>,
        label: &'static str,
        launch: &Launch,
        plugin_id: &str,
        host: HostBehaviour,
        timeout: Duration,
    ) -> std::io::Result<Self> {
        let spawned = PluginProcess::spawn(launch, plugin_id)?;
        shared.record(
            label,
            Direction::Note,
            format!(
                "spawned pid {} (its own process group): {}",
                spawned.process.pid(),
                launch.command_line().join(" ")
            )
            .as_bytes(),
        );
        let limit = Arc::new(AtomicUsize::new(
            outpost_protocol::DEFAULT_MAX_MESSAGE_BYTES,
        ));
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(read_stdout(
            spawned.stdout,
            tx,
            Reader {
                shared: shared.clone(),
                label,
                limit: limit.clone(),
                codec: NdjsonCodec::new(READ_CAP),
            },
        ));
        let stderr = Arc::new(Mutex::new(StderrState::default()));
        tokio::spawn(drain_stderr(
            spawned.stderr,
            shared.clone(),
            label,
            stderr.clone(),
        ));
        Ok(Self {
            label,
            process: spawned.process,
            stdin: Some(spawned.stdin),
            rx,
            shared: shared.clone(),
            limit,
            stderr,
            host,
            timeout,
            next_id: 1,
            pending: HashMap::new(),
            answered: HashSet::new(),
            answers: HashMap::new(),
            arrivals: Vec::new(),
            events: Vec::new(),
            dropped_events: 0,
            initialized_sent: false,
            eof: false,
            poisoned: false,
        })
    }

    pub(crate) fn process(&mut self) -> &mut PluginProcess {
        &mut self.process
    }

    /// The plugin's process id.
    pub(crate) fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// Whether the next step can use this session.
    pub(crate) fn usable(&self) -> bool {
        !self.poisoned && !self.eof && self.stdin.is_some() && self.process.exit_status().is_none()
    }

    pub(crate) fn poison(&mut self) {
        self.poisoned = true;
    }

    /// Lines above this size are judged too long from now on (sent in `initialize`).
    pub(crate) fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// Marks `initialized` as sent: plugin requests are legitimate from now on. Sending
    /// the `initialized` notification marks it (before the write, as the host does: a
    /// plugin may answer it with a request at once).
    pub(crate) fn set_initialized(&mut self) {
        self.initialized_sent = true;
    }

    /// Whether `initialized` was sent.
    pub(crate) fn initialized_sent(&self) -> bool {
        self.initialized_sent
    }

    /// Bytes the plugin wrote to stderr so far.
    pub(crate) fn stderr_bytes(&self) -> u64 {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    // ------------------------------------------------------------------------------
    // Sending

    /// Writes `bytes` followed by a newline, as they are.
    pub(crate) async fn send_line(&mut self, bytes: &[u8]) -> Result<(), Stall> {
        let mut line = Vec::with_capacity(bytes.len() + 1);
        line.extend_from_slice(bytes);
        line.push(b'\n');
        self.write(&line).await
    }

    /// Writes bytes exactly as given (no newline added).
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), Stall> {
        self.shared.record(self.label, Direction::ToPlugin, bytes);
        let timeout = self.timeout;
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(Stall::Write(
                "the suite had already closed the plugin's stdin".into(),
            ));
        };
        let write = async {
            stdin.write_all(bytes).await?;
            stdin.flush().await
        };
        // While the plugin is not reading, keep reading its output so neither side
        // blocks on a full pipe.
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Stall::Write(format!(
                "writing to the plugin's stdin failed: {e}"
            ))),
            Err(_) => {
                self.poisoned = true;
                Err(Stall::Write(format!(
                    "the plugin did not read its stdin for {} s",
                    timeout.as_secs_f32()
                )))
            }
        }
    }

    /// Sends a message; a request is remembered as pending.
    pub(crate) async fn send(&mut self, message: &Message) -> Result<(), Stall> {
        match message {
            Message::Request(request) => {
                self.pending
                    .insert(request.id.clone(), request.method.clone());
            }
            Message::Notification(n) if n.method == "initialized" => self.set_initialized(),
            _ => {}
        }
        self.send_line(message.to_json().as_bytes()).await
    }

    /// Sends a request with the next integer id not in flight.
    pub(crate) async fn request(
        &mut self,
        method: &str,
        params: Value,
    ) -> Result<RequestId, Stall> {
        let mut id = RequestId::from(self.next_id);
        self.next_id += 1;
        while self.pending.contains_key(&id) {
            id = RequestId::from(self.next_id);
            self.next_id += 1;
        }
        self.request_with_id(id.clone(), method, params).await?;
        Ok(id)
    }

    /// Sends a request with the given id.
    pub(crate) async fn request_with_id(
        &mut self,
        id: RequestId,
        method: &str,
        params: Value,
    ) -> Result<(), Stall> {
        self.send(&Message::Request(Request::new(id, method, Some(params))))
            .await
    }

    /// Remembers `id` as a request in flight, for requests sent as raw lines.
    pub(crate) fn expect_answer(&mut self, id: RequestId, method: &str) {
        self.pending.insert(id, method.to_owned());
    }

    pub(crate) async fn notify(&mut self, method: &str, params: Value) -> Result<(), Stall> {
        self.send(&Message::Notification(Notification::new(
            method,
            Some(params),
        )))
        .await
    }

    /// Sends a request and waits for its answer.
    pub(crate) async fn call(
        &mut self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Answer, Stall> {
        let id = self.request(method, params).await?;
        self.wait(&id, timeout).await
    }

    /// Closes the plugin's stdin: it reads EOF.
    pub(crate) fn close_stdin(&mut self) {
        if self.stdin.take().is_some() {
            self.shared
                .record(self.label, Direction::Note, b"closed the plugin's stdin");
        }
    }

    // ------------------------------------------------------------------------------
    // Receiving

    /// Waits for the answer to request `id`.
    pub(crate) async fn wait(
        &mut self,
        id: &RequestId,
        timeout: Duration,
    ) -> Result<Answer, Stall> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(answer) = self.answers.remove(id) {
                return Ok(answer);
            }
            if timeout.is_zero() {
                return Err(Stall::Timeout(timeout));
            }
            self.pump(deadline)
                .await
                .map_err(|stall| self.timed_out(stall, timeout))?;
        }
    }

    /// Reads (and plays host) until `deadline`; `Ok` when it passes quietly.
    pub(crate) async fn settle(&mut self, duration: Duration) -> Result<(), Stall> {
        let deadline = Instant::now() + duration;
        loop {
            match self.pump(deadline).await {
                Ok(()) => {}
                Err(Stall::Timeout(_)) => return Ok(()),
                Err(stall) => return Err(stall),
            }
        }
    }

    /// Waits for the answer to request `id`, or until `refused` holds for an event
    /// since `mark` (then `Ok(None)`): for requests a plugin may refuse with an error
    /// that cannot carry their id.
    pub(crate) async fn wait_or(
        &mut self,
        id: &RequestId,
        mark: usize,
        timeout: Duration,
        refused: impl Fn(&Event) -> bool,
    ) -> Result<Option<Answer>, Stall> {
        self.watch(id, mark, timeout, refused)
            .await
            .map_err(|stall| self.timed_out(stall, timeout))
    }

    /// [`Session::wait_or`] for a wait that may end empty-handed without the plugin
    /// being stuck: a timeout does not poison the session.
    pub(crate) async fn watch(
        &mut self,
        id: &RequestId,
        mark: usize,
        timeout: Duration,
        refused: impl Fn(&Event) -> bool,
    ) -> Result<Option<Answer>, Stall> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(answer) = self.answers.remove(id) {
                return Ok(Some(answer));
            }
            if self.events_since(mark).iter().any(&refused) {
                return Ok(None);
            }
            self.pump(deadline).await.map_err(|stall| match stall {
                Stall::Timeout(_) => Stall::Timeout(timeout),
                other => other,
            })?;
        }
    }

    /// Reports the whole wait on a timeout, and poisons the session: the plugin may be
    /// stuck.
    fn timed_out(&mut self, stall: Stall, timeout: Duration) -> Stall {
        match stall {
            Stall::Timeout(_) => {
                self.poisoned = true;
                Stall::Timeout(timeout)
            }
            other => other,
        }
    }

    /// Reads until `predicate` holds for the events since `mark`, or `timeout` passes.
    pub(crate) async fn wait_event(
        &mut self,
        mark: usize,
        timeout: Duration,
        predicate: impl Fn(&Event) -> bool,
    ) -> Result<(), Stall> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.events_since(mark).iter().any(&predicate) {
                return Ok(());
            }
            self.pump(deadline).await.map_err(|stall| match stall {
                Stall::Timeout(_) => Stall::Timeout(timeout),
                other => other,
            })?;
        }
    }

    /// A ping, answered, then a short quiet period: after it, everything the plugin
    /// sent in reaction to earlier lines has arrived (for a plugin that handles lines in
    /// order, and almost surely for one that does not).
    pub(crate) async fn barrier(&mut self, timeout: Duration) -> Result<(), Stall> {
        let answer = self.call("ping", json!({}), timeout).await;
        if let Err(Stall::Timeout(_)) = &answer {
            self.poisoned = true;
        }
        answer?;
        self.settle(Duration::from_millis(60)).await
    }

    /// A position in the event list, to look at what came after it.
    pub(crate) fn mark(&self) -> usize {
        self.dropped_events + self.events.len()
    }

    pub(crate) fn events_since(&self, mark: usize) -> &[Event] {
        let start = mark
            .saturating_sub(self.dropped_events)
            .min(self.events.len());
        &self.events[start..]
    }

    /// The ids of answered requests, in the order their answers arrived.
    pub(crate) fn arrivals(&self) -> &[RequestId] {
        &self.arrivals
    }

    /// Waits up to `timeout` for the plugin to exit, reading its output meanwhile.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.exit_status() {
                return Some(status);
            }
            if self.eof {
                let left = deadline.saturating_duration_since(Instant::now());
                return self.process.wait_exit(left).await;
            }
            match self.pump(deadline).await {
                Ok(()) | Err(Stall::Exited(_)) => {}
                Err(_) => return self.process.exit_status(),
            }
        }
    }

    /// Drains the stdout queue until the reader reports EOF or `timeout` passes (to see
    /// the last lines a plugin wrote before it exited).
    pub(crate) async fn drain(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.eof {
            if self.pump(deadline).await.is_err() {
                break;
            }
        }
    }

    /// Handles one thing from the plugin, or fails at `deadline` or EOF.
    async fn pump(&mut self, deadline: Instant) -> Result<(), Stall> {
        if self.eof {
            let status = self.process.wait_exit(EXIT_AFTER_EOF).await;
            return Err(Stall::Exited(status));
        }
        let started = Instant::now();
        let item = tokio::select! {
            item = self.rx.recv() => item,
            () = tokio::time::sleep_until(deadline.into()) => {
                return Err(Stall::Timeout(deadline.saturating_duration_since(started)));
            }
        };
        match item {
            Some(FromPlugin::Message(message)) => self.handle(message).await,
            Some(FromPlugin::Invalid {
                line,
                response_like,
            }) => {
                self.push_event(EventKind::Invalid);
                if !response_like {
                    // Answer as the host does (§2.3). A failed write surfaces later.
                    let answer = Message::Response(line.to_response()).to_json();
                    let _ = self.send_line(answer.as_bytes()).await;
                }
            }
            Some(FromPlugin::Eof) | None => {
                self.eof = true;
                self.shared
                    .record(self.label, Direction::Note, b"the plugin closed its stdout");
            }
        }
        Ok(())
    }

    fn push_event(&mut self, kind: EventKind) {
        if self.events.len() == MAX_EVENTS {
            self.events.remove(0);
            self.dropped_events += 1;
        }
        self.events.push(Event {
            at: Instant::now(),
            kind,
        });
    }

    async fn handle(&mut self, message: Message) {
        match message {
            Message::Response(response) => {
                let Some(id) = response.id.clone() else {
                    self.push_event(EventKind::Unsolicited(response));
                    return;
                };
                if self.pending.remove(&id).is_some() {
                    self.answered.insert(id.clone());
                    self.arrivals.push(id.clone());
                    self.answers.insert(
                        id,
                        Answer {
                            at: Instant::now(),
                            outcome: response.result(),
                        },
                    );
                } else if self.answered.contains(&id) {
                    self.push_event(EventKind::Duplicate(response));
                } else {
                    self.push_event(EventKind::Unsolicited(response));
                }
            }
            Message::Notification(notification) => {
                self.push_event(EventKind::Notification(notification));
            }
            Message::Request(request) => {
                if !self.initialized_sent {
                    let label = self.label;
                    let method = request.method.clone();
                    self.shared
                        .traffic()
                        .early_requests
                        .add(|| format!("{label}: `{method}` before the host sent `initialized`"));
                }
                let outcome = self.host_answer(&request);
                let answer = Message::response_json(Some(&request.id), outcome.as_ref());
                self.push_event(EventKind::Request {
                    method: request.method,
                });
                let _ = self.send_line(answer.as_bytes()).await;
            }
        }
    }

    /// The host's answer to a plugin request.
    fn host_answer(&self, request: &Request) -> Result<Value, ErrorObject> {
        // As the host: null or absent params are none, anything but an object is -32602
        // (docs/protocol.md §4).
        let params = match request.params.clone() {
            None | Some(Value::Null) => json!({}),
            Some(params @ Value::Object(_)) => params,
            Some(_) => {
                return Err(ErrorObject::new(
                    ErrorCode::InvalidParams,
                    format!(
                        "invalid params for `{}`: params must be an object",
                        request.method
                    ),
                ));
            }
        };
        match request.method.as_str() {
            "ping" => Ok(json!({})),
            // `gateway` too, as a gateway that shares its config sends it: a plugin
            // reads what it knows and ignores the rest (docs/protocol.md §7.3).
            "host/getConfig" => Ok(json!({ "config": self.host.config, "gateway": {} })),
            "host/callMethod" => {
                let method = params.get("method").and_then(Value::as_str);
                match method {
                    Some(ECHO_METHOD) => Ok(params.get("params").cloned().unwrap_or(Value::Null)),
                    Some(method) => Err(ErrorObject::new(
                        ErrorCode::NotFound,
                        format!("the conformance host has no gateway method `{method}`"),
                    )
                    .with_data(json!({"kind": "gatewayMethod", "name": method}))),
                    None => Err(ErrorObject::new(
                        ErrorCode::InvalidParams,
                        "`host/callMethod` needs a string `method`",
                    )),
                }
            }
            other => Err(ErrorObject::new(
                ErrorCode::MethodNotFound,
                format!("the host does not answer `{other}`"),
            )),
        }
    }

    // ------------------------------------------------------------------------------
    // Reporting

    /// A sentence for a check's details: why the wait for `what` ended empty-handed.
    pub(crate) fn explain(&self, stall: &Stall, what: &str) -> String {
        match stall {
            Stall::Timeout(waited) => {
                format!("timed out after {} waiting for {what}", seconds(*waited))
            }
            Stall::Exited(status) => {
                let how = status.map_or_else(|| "its status is unknown".to_owned(), describe_exit);
                format!(
                    "the plugin exited ({how}) while the suite waited for {what}{}",
                    self.stderr_hint()
                )
            }
            Stall::Write(why) => format!("{why}, while the suite waited for {what}"),
        }
    }

    /// "; its last stderr lines: ..." or nothing.
    pub(crate) fn stderr_hint(&self) -> String {
        let state = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        if state.last.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = state.last.iter().map(String::as_str).collect();
        format!("; its last stderr lines: {}", lines.join(" | "))
    }
}

/// `1.5 s`, `200 ms`.
pub(crate) fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

struct Reader {
    shared: Arc<Shared>,
    label: &'static str,
    limit: Arc<AtomicUsize>,
    codec: NdjsonCodec,
}

impl Reader {
    /// Judges one line (without its `\n`) and decodes it.
    fn line(&mut self, number: u64, raw: &[u8], terminated: bool) -> Option<FromPlugin> {
        let label = self.label;
        self.shared.record(label, Direction::FromPlugin, raw);
        let mut traffic = self.shared.traffic();
        traffic.lines += 1;
        let mut body = raw;
        let mut oddities = Vec::new();
        if let Some(rest) = body.strip_suffix(b"\r") {
            body = rest;
            oddities.push("ends with \\r\\n");
        }
        if let Some(rest) = body.strip_prefix(b"\xEF\xBB\xBF") {
            body = rest;
            oddities.push("starts with a byte-order mark");
        }
        let blank = body.iter().all(u8::is_ascii_whitespace);
        if blank {
            oddities.push("is blank");
        }
        if !terminated {
            oddities.push("is not terminated by \\n");
        }
        if !oddities.is_empty() {
            traffic
                .not_plain
                .add(|| format!("{label}, line {number} {}", oddities.join(" and ")));
        }
        if blank {
            return None;
        }
        let limit = self.limit.load(Ordering::Relaxed);
        if body.len() > limit {
            traffic.over_limit.add(|| {
                format!(
                    "{label}, line {number}: {} bytes, over the {limit}-byte limit",
                    body.len()
                )
            });
        }
        let mut buf = BytesMut::with_capacity(raw.len() + 1);
        buf.extend_from_slice(raw);
        buf.extend_from_slice(b"\n");
        let Ok(Some(frame)) = self.codec.decode(&mut buf) else {
            return None;
        };
        match frame {
            Frame::Message(message) => {
                let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                let mut problems = schemas::envelope_errors(&value);
                if problems.is_empty() {
                    problems = params_problems(&message);
                }
                if !problems.is_empty() {
                    let what = describe_message(&message);
                    traffic.schema.add(|| {
                        format!("{label}, line {number} ({what}): {}", problems.join("; "))
                    });
                }
                Some(FromPlugin::Message(message))
            }
            Frame::Invalid(mut line) => {
                line.line = number;
                traffic.not_messages.add(|| format!("{label}, {line}"));
                if line.looks_like_content_length() {
                    traffic
                        .content_length
                        .add(|| format!("{label}, line {number}: {:?}", line.excerpt));
                }
                let response_like = serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|v| {
                        v.as_object()
                            .map(|o| o.contains_key("result") || o.contains_key("error"))
                    })
                    .unwrap_or(false);
                Some(FromPlugin::Invalid {
                    line,
                    response_like,
                })
            }
        }
    }

    fn too_long(&mut self, number: u64, seen: usize) -> FromPlugin {
        let label = self.label;
        let mut traffic = self.shared.traffic();
        traffic.lines += 1;
        traffic.over_limit.add(|| {
            format!("{label}, line {number}: over {seen} bytes, past what the suite reads ({READ_CAP} bytes)")
        });
        let line = InvalidLine {
            line: number,
            problem: outpost_protocol::LineProblem::TooLong {
                limit: self.limit.load(Ordering::Relaxed),
                seen,
            },
            excerpt: String::new(),
        };
        FromPlugin::Invalid {
            line,
            response_like: false,
        }
    }
}

/// Schema problems in the params of a request or notification the plugin sent.
fn params_problems(message: &Message) -> Vec<String> {
    let (method, params) = match message {
        Message::Request(r) => (&r.method, &r.params),
        Message::Notification(n) => (&n.method, &n.params),
        Message::Response(_) => return Vec::new(),
    };
    let sent_by_plugins = METHODS.iter().any(|(name, direction, _)| {
        name == method
            && matches!(
                direction,
                MethodDirection::PluginToHost | MethodDirection::Both
            )
    });
    if !sent_by_plugins {
        return Vec::new();
    }
    let params = params.clone().unwrap_or_else(|| json!({}));
    schemas::params_errors(method, &params)
}

fn describe_message(message: &Message) -> String {
    match message {
        Message::Request(r) => format!("request `{}`", r.method),
        Message::Notification(n) => format!("notification `{}`", n.method),
        Message::Response(r) => match &r.id {
            Some(id) => format!("response to id {id}"),
            None => "response with id null".to_owned(),
        },
    }
}

async fn read_stdout(mut stdout: ChildStdout, tx: mpsc::Sender<FromPlugin>, mut reader: Reader) {
    let mut line: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut number = 0u64;
    // Bytes of an over-long line being discarded.
    let mut discarding: Option<usize> = None;
    loop {
        let n = match stdout.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut data = &chunk[..n];
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let (part, rest) = data.split_at(pos);
            data = &rest[1..];
            number += 1;
            let item = if let Some(seen) = discarding.take() {
                Some(reader.too_long(number, seen + part.len()))
            } else {
                line.extend_from_slice(part);
                let item = reader.line(number, &line, true);
                line.clear();
                item
            };
            if let Some(item) = item
                && tx.send(item).await.is_err()
            {
                return;
            }
        }
        if let Some(seen) = discarding.as_mut() {
            *seen += data.len();
        } else {
            line.extend_from_slice(data);
            if line.len() > READ_CAP {
                discarding = Some(line.len());
                line = Vec::new();
            }
        }
    }
    number += 1;
    let last = if let Some(seen) = discarding {
        Some(reader.too_long(number, seen))
    } else if line.is_empty() {
        None
    } else {
        reader.line(number, &line, false)
    };
    if let Some(item) = last {
        let _ = tx.send(item).await;
    }
    let _ = tx.send(FromPlugin::Eof).await;
}

async fn drain_stderr(
    stderr: ChildStderr,
    shared: Arc<Shared>,
    label: &'static str,
    state: Arc<Mutex<StderrState>>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded: a line without newline is cut into 64 KiB pieces by `fill_buf`.
        let n = match read_line_bounded(&mut reader, &mut line, 64 * 1024).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        shared.record(label, Direction::Stderr, text.as_bytes());
        shared.push_stderr(label, text);
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.bytes += n as u64;
        if state.last.len() == STDERR_LINES {
            state.last.pop_front();
        }
        state.last.push_back(cut(text, 200).to_owned());
    }
}

/// Reads up to and including `\n`, or at most `max` bytes.
async fn read_line_bounded(
    reader: &mut BufReader<ChildStderr>,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let room = max - total;
        let (take, done) = match available.iter().take(room).position(|&b| b == b'\n') {
            Some(pos) => (pos + 1, true),
            None => (available.len().min(room), available.len() >= room),
        };
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        total += take;
        if done || total >= max {
            return Ok(total);
        }
    }
}
