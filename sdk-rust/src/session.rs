//! One session with a host: the handshake, the dispatch of calls, shutdown.
//!
//! The loop in [`serve`] only routes: every call runs in its own task, so a slow
//! handler never delays a ping, a `$/cancel` or another call (on the default
//! single-threaded runtime, a call whose handler answers at its first poll is run in
//! place and never becomes a task: see [`on_one_thread`]). While the session is running
//! and its loop idle, calls do not even reach the loop: the peer's reader parses each
//! line once and dispatches it where it was read ([`take_calls`]). A call task races the
//! handler against the call's cancellation and its deadline (`context.timeoutMs`): a
//! cancelled call is answered `-32800` at once, one still running at its deadline
//! `-32001` with `data.timeoutMs`, and either way its handler future is dropped.
//!
//! Params are read as docs/protocol.md §4 says: `null` or absent params are no params,
//! an array or a scalar is `-32602` (the codec refuses a scalar as an invalid envelope;
//! the session answers that line `-32602` under the request's id). A hook's payload is
//! `{}` when the host sent none, a command's `""` args are no args.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use outpost_protocol::methods::{
    CallContext, ChannelCall, ChannelCallParams, CommandRun, CommandRunParams, ContextEngineCall,
    ContextEngineCallParams, EmptyObject, HookRun, HookRunParams, HttpHandle, HttpHandleParams,
    Initialize, InitializeParams, InitializeResult, Initialized, InitializedParams, MethodCall,
    MethodCallParams, Ping, PluginCapabilities, ProviderCall, ProviderCallParams, RequestType,
    ServiceParams, ServiceStart, ServiceStop, Shutdown, ToolInvoke,
};
use outpost_protocol::peer::{
    self, CloseReason, Event, Incoming, IncomingRequest, LineTaker, PeerConfig, Problem, Responder,
};
use outpost_protocol::{
    ErrorCode, ErrorObject, InvalidLine, Message, NotificationType, RegistrationKind,
    SUPPORTED_VERSIONS,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::TaskTracker;

use crate::builder::{
    BoxFuture, ConfigType, Entry, Handler, Input, Output, Plugin, Run, ServiceFn, Target, to_json,
};
use crate::context::{Context, LogSink, ServiceContext, Shared, Work, WorkCancel};
use crate::line::{CallLine, CallParams, ToolInvokeText};
use crate::{Error, ServeError, fixture};

/// How many calls may wait for a concurrency slot beyond `maxConcurrentRequests` before
/// the plugin answers `-32009`. The host never sends more than the limit; the margin
/// covers calls it has cancelled and stopped counting while their answers are on the way.
const CALL_QUEUE: usize = 64;

/// How long to wait for the last answer to be written before ending on a permanent
/// failure.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// At stdin EOF, how long calls in flight (cancelled) have to be answered and the output
/// to be flushed, together. The host gives a plugin 2 s to exit after closing stdin.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Used when the host does not announce `limits.shutdownTimeoutMs`.
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// Where the host's messages are read.
pub(crate) enum Reading {
    /// In a task of the runtime.
    InTask,
    /// On a thread of its own (`peer::connect_on_thread`): the reader may block.
    OnThread,
}

pub(crate) async fn serve<C, R, W>(
    plugin: Plugin<C>,
    reader: R,
    writer: W,
    reading: Reading,
) -> Result<(), ServeError>
where
    C: ConfigType,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let flushed = CancellationToken::new();
    let writer = NotifyOnShutdown {
        inner: writer,
        flushed: flushed.clone(),
    };
    let (input_ended_tx, input_ended) = oneshot::channel();
    let release = CancellationToken::new();
    // Every call's cancellation is a child of this, which fires at `shutdown` and EOF.
    let shutdown = CancellationToken::new();
    let serving = Arc::new(Mutex::new(None));
    let reader = HoldEof {
        inner: reader,
        input_ended: Some(input_ended_tx),
        release: Box::pin(release.clone().cancelled_owned()),
        at_eof: false,
    };
    let config = PeerConfig {
        name: "the host".to_owned(),
        // Unreadable lines are answered by the session, which also reports them on
        // stderr.
        answer_invalid: false,
        // Pings are answered by the session's loop (which only routes, so they never
        // wait behind a call), after the peer has refused a reused id: a ping that
        // reuses the id of a call in flight is refused, not answered under that id.
        answer_ping: false,
        // Params are read straight into their types: no `Value` tree per request.
        raw_params: true,
        requests_cancelled_by: Some(shutdown.clone()),
        // Calls are dispatched where they are read while the session's loop is idle.
        take_lines: Some(take_calls(serving.clone())),
        ..PeerConfig::default()
    };
    let (peer, incoming) = match reading {
        Reading::InTask => peer::connect(reader, writer, config),
        Reading::OnThread => match peer::connect_on_thread(reader, writer, config) {
            Ok(connected) => connected,
            Err(e) => {
                return Err(ServeError::Connection {
                    plugin_id: plugin.info.id.clone(),
                    reason: format!("cannot start the thread that reads from the host: {e}"),
                });
            }
        },
    };
    let (fatal_tx, fatal_rx) = mpsc::channel(4);
    let mut session = Session {
        plugin: Arc::new(plugin),
        peer,
        phase: Phase::Waiting,
        serving,
        stopping: None,
        fatal: fatal_tx,
        flushed,
        shutdown,
    };
    let outcome = session.run(incoming, fatal_rx, input_ended, release).await;
    lock(&session.serving).take();
    if let Phase::Running(running) | Phase::ShuttingDown(running) = &session.phase {
        running.shared.shutdown.cancel();
    }
    if let Err(ServeError::Permanent { reason, .. } | ServeError::Setup { reason, .. }) = &outcome {
        eprintln!("plugin `{}`: {reason}", session.plugin.info.id);
        // Let the last answer reach the host before the process ends.
        session
            .flush(tokio::time::Instant::now() + FLUSH_TIMEOUT)
            .await;
    }
    outcome
}

enum Phase<C> {
    /// Before `initialize`.
    Waiting,
    Running(Arc<Running<C>>),
    /// After `shutdown`.
    ShuttingDown(Arc<Running<C>>),
}

struct Session<C> {
    plugin: Arc<Plugin<C>>,
    peer: peer::Peer,
    phase: Phase<C>,
    /// The running session while it takes calls (`Phase::Running`), for
    /// [`take_calls`].
    serving: Serving<C>,
    /// The answer to `shutdown`, on its way: at EOF it is waited for with the calls.
    stopping: Option<tokio::task::JoinHandle<()>>,
    fatal: mpsc::Sender<String>,
    /// Fires when the output has been flushed and closed.
    flushed: CancellationToken,
    /// Becomes [`Shared::shutdown`]; the parent of every call's cancellation.
    shutdown: CancellationToken,
}

type Serving<C> = Arc<Mutex<Option<Arc<Running<C>>>>>;

/// Reads and dispatches calls in the peer's reader, where they are read
/// (`PeerConfig::take_lines`: only while the session's loop has handled every event
/// before them), instead of handing them to the loop: the line is parsed once
/// ([`CallLine`]), and no task is woken. The handshake, `ping` and `shutdown` stay with
/// the loop, and so does every line while the session is not running.
fn take_calls<C: ConfigType>(serving: Serving<C>) -> LineTaker {
    LineTaker::new(move |line| {
        let Some(running) = lock(&serving).clone() else {
            return Err(line);
        };
        let Some(call) = CallLine::read(line.text()) else {
            return Err(line);
        };
        if matches!(
            call.method.as_ref(),
            Initialize::METHOD | Ping::METHOD | Shutdown::METHOD
        ) {
            return Err(line);
        }
        let responder = line.accept(call.id, &call.method)?;
        dispatch(&running, &call.method, call.params, responder);
        Ok(())
    })
}

/// Everything a running session shares with its call tasks.
struct Running<C> {
    plugin: Arc<Plugin<C>>,
    shared: Arc<Shared>,
    config: Arc<C>,
    /// By registration index; all true until `initialized` says otherwise.
    accepted: Mutex<Vec<bool>>,
    services: Mutex<HashMap<String, RunningService<C>>>,
    calls: TaskTracker,
    /// Calls running or waiting for a slot.
    admitted: AtomicUsize,
    slots: Arc<Semaphore>,
    /// `limits.maxConcurrentRequests`.
    max_concurrent: usize,
    max_admitted: usize,
    /// The host's `maxMessageBytes`, when it is below the peer's own limit.
    max_message_bytes: Option<usize>,
    grace: Duration,
    fatal: mpsc::Sender<String>,
    /// [`on_one_thread`], asked once.
    first_poll_where_read: bool,
}

struct RunningService<C> {
    context: ServiceContext<C>,
    stop: Option<ServiceFn<C>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<C: ConfigType> Session<C> {
    async fn run(
        &mut self,
        mut incoming: Incoming,
        mut fatal: mpsc::Receiver<String>,
        mut input_ended: oneshot::Receiver<()>,
        release: CancellationToken,
    ) -> Result<(), ServeError> {
        let mut input_open = true;
        loop {
            let event = tokio::select! {
                biased;
                Some(reason) = fatal.recv() => return Err(self.permanent(reason)),
                event = incoming.next() => event,
                _ = &mut input_ended, if input_open => {
                    // Everything the host sent before EOF has been taken (the reader
                    // queues events before it notices EOF). Answer what is in flight,
                    // then let the peer see the EOF.
                    input_open = false;
                    self.drain().await;
                    release.cancel();
                    continue;
                }
            };
            match event {
                None => break,
                Some(Event::Request(request)) => self.on_request(request).await?,
                Some(Event::Notification(notification)) => {
                    if notification.method == Initialized::METHOD {
                        self.on_initialized(notification.params);
                    }
                }
                Some(Event::Problem(Problem::InvalidLine(line))) => {
                    self.on_invalid_line(&line).await;
                }
                Some(Event::Problem(problem)) => {
                    eprintln!(
                        "outpost-sdk: plugin `{}`: from the host: {problem}",
                        self.plugin.info.id
                    );
                }
                Some(_) => {}
            }
        }
        match self.peer.close_reason() {
            Some(CloseReason::Io(reason)) => Err(ServeError::Connection {
                plugin_id: self.plugin.info.id.clone(),
                reason,
            }),
            _ => Ok(()),
        }
    }

    /// At stdin EOF: cancel the calls in flight, give them a moment to be answered, and
    /// flush the output. The host is done or gone, so this is brief.
    async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        if let Phase::Running(running) | Phase::ShuttingDown(running) = &self.phase {
            running.shared.shutdown.cancel();
            running.calls.close();
            let _ = tokio::time::timeout_at(deadline, running.calls.wait()).await;
            // A `shutdown` that came just before EOF is still answered.
            if let Some(stopping) = self.stopping.as_mut() {
                let _ = tokio::time::timeout_at(deadline, stopping).await;
            }
            let _ = tokio::time::timeout_at(deadline, running.shared.logs.flush()).await;
        }
        self.flush(deadline).await;
    }

    /// Ends the output after everything queued, and waits (until `deadline`) for it to be
    /// written.
    async fn flush(&self, deadline: tokio::time::Instant) {
        let flushed = async {
            self.peer.close();
            self.flushed.cancelled().await;
        };
        let _ = tokio::time::timeout_at(deadline, flushed).await;
    }

    /// Answers a line that is not a message (once), as the protocol says: `-32006` for
    /// a line over the host's limit (the peer reads with the limit `initialize`
    /// announced), `-32602` for a request whose params are not an object
    /// (docs/protocol.md §4), else what the codec found wrong.
    async fn on_invalid_line(&self, line: &InvalidLine) {
        eprintln!(
            "outpost-sdk: plugin `{}`: from the host: {line}",
            self.plugin.info.id
        );
        let _ = self
            .peer
            .send_raw(Message::Response(line.to_response()).to_json())
            .await;
    }

    /// Moves to `phase`. Calls are taken where they are read only while running.
    fn set_phase(&mut self, phase: Phase<C>) {
        *lock(&self.serving) = match &phase {
            Phase::Running(running) => Some(running.clone()),
            Phase::Waiting | Phase::ShuttingDown(_) => None,
        };
        self.phase = phase;
    }

    fn permanent(&self, reason: String) -> ServeError {
        ServeError::Permanent {
            plugin_id: self.plugin.info.id.clone(),
            reason,
        }
    }

    async fn on_request(&mut self, request: IncomingRequest) -> Result<(), ServeError> {
        let IncomingRequest {
            method,
            raw_params: params,
            responder,
            ..
        } = request;
        let id = &self.plugin.info.id;
        match (&self.phase, method.as_str()) {
            (_, Ping::METHOD) => {
                let _ = match parse::<EmptyObject>(Ping::METHOD, params.as_deref()) {
                    Ok(empty) => responder.ok(empty).await,
                    Err(error) => responder.error(error).await,
                };
            }
            (Phase::Waiting, Initialize::METHOD) => {
                return self.initialize(params, responder).await;
            }
            (_, Initialize::METHOD) => {
                let error = ErrorObject::new(
                    ErrorCode::AlreadyInitialized,
                    format!(
                        "plugin `{id}` is already initialized; send `initialize` once per process"
                    ),
                );
                let _ = responder.error(error).await;
            }
            (Phase::Waiting, _) => {
                let error = ErrorObject::new(
                    ErrorCode::NotInitialized,
                    format!(
                        "plugin `{id}` got `{method}` before `initialize`; send `initialize` first"
                    ),
                );
                let _ = responder.error(error).await;
            }
            (Phase::Running(_) | Phase::ShuttingDown(_), Shutdown::METHOD) => {
                // Params that are not an object are refused, as for any method
                // (docs/protocol.md §4), and the plugin goes on.
                if let Err(error) = parse::<EmptyObject>(Shutdown::METHOD, params.as_deref()) {
                    let _ = responder.error(error).await;
                } else if let Phase::Running(running) = &self.phase {
                    let running = running.clone();
                    self.set_phase(Phase::ShuttingDown(running.clone()));
                    self.stopping = Some(tokio::spawn(shutdown(running, responder)));
                } else {
                    let _ = responder.ok(EmptyObject {}).await;
                }
            }
            (Phase::ShuttingDown(_), _) => {
                let error = ErrorObject::new(
                    ErrorCode::Unavailable,
                    format!("plugin `{id}` is shutting down and takes no new calls"),
                )
                .with_data(json!({"pluginId": id, "state": "stopping"}));
                let _ = responder.error(error).await;
            }
            (Phase::Running(running), _) => {
                dispatch(
                    running,
                    &method,
                    CallParams::Text(params.as_deref()),
                    responder,
                );
            }
        }
        Ok(())
    }

    async fn initialize(
        &mut self,
        params: Option<Box<RawValue>>,
        responder: Responder,
    ) -> Result<(), ServeError> {
        let plugin = self.plugin.clone();
        let id = &plugin.info.id;
        let params: InitializeParams = match parse(Initialize::METHOD, params.as_deref()) {
            Ok(params) => params,
            Err(error) => {
                let _ = responder.error(error).await;
                return Ok(());
            }
        };
        let Some(version) = params
            .protocol_versions
            .iter()
            .find(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
            .cloned()
        else {
            let error = ErrorObject::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "plugin `{id}` speaks protocol version {} and the host offered {:?}; update the plugin or the host",
                    SUPPORTED_VERSIONS.join(", "),
                    params.protocol_versions
                ),
            )
            .with_data(json!({
                "supported": SUPPORTED_VERSIONS,
                "requested": params.protocol_versions,
            }));
            let _ = responder.error(error).await;
            return Ok(());
        };
        if params.plugin_id != *id {
            eprintln!(
                "outpost-sdk: warning: the host started this program as plugin `{}`, but it was built as plugin `{id}`; \
                 the host will refuse it until the manifest's `id` and the id given to `Plugin::builder` agree",
                params.plugin_id
            );
        }
        let config: C = match serde_json::from_value(Value::Object(params.config.clone())) {
            Ok(config) => config,
            Err(e) => {
                let reason = format!(
                    "its config does not fit the plugin's config type: {e}; the host validated the config against the \
                     manifest's `configSchema`, so the schema and the plugin's code disagree: make them match"
                );
                let _ = responder
                    .error(Error::permanent(reason.clone()).into_object())
                    .await;
                return Err(self.permanent(reason));
            }
        };
        let shutdown_timeout = params
            .limits
            .shutdown_timeout_ms
            .map_or(DEFAULT_SHUTDOWN_TIMEOUT, Duration::from_millis);
        let max_concurrent = usize::try_from(params.limits.max_concurrent_requests)
            .unwrap_or(usize::MAX)
            .max(1);
        let max_message_bytes = usize::try_from(params.limits.max_message_bytes)
            .ok()
            .filter(|limit| *limit < outpost_protocol::DEFAULT_MAX_MESSAGE_BYTES);
        if let Some(limit) = max_message_bytes {
            self.peer.lower_incoming_limit(limit);
        }
        let shared = Arc::new(Shared {
            plugin_id: id.clone(),
            peer: self.peer.clone(),
            raw_config: Arc::new(params.config),
            runtime: params.capabilities.runtime,
            logs: LogSink::start(self.peer.clone()),
            initialized: AtomicBool::new(false),
            shutdown: self.shutdown.clone(),
        });
        let running = Arc::new(Running {
            plugin: plugin.clone(),
            shared: shared.clone(),
            config: Arc::new(config),
            accepted: Mutex::new(vec![true; plugin.entries.len()]),
            services: Mutex::new(HashMap::new()),
            calls: TaskTracker::new(),
            admitted: AtomicUsize::new(0),
            slots: Arc::new(Semaphore::new(max_concurrent.min(Semaphore::MAX_PERMITS))),
            max_concurrent,
            max_admitted: max_concurrent.saturating_add(CALL_QUEUE),
            max_message_bytes,
            // Leave the host a quarter of its budget to read the answer.
            grace: shutdown_timeout * 3 / 4,
            fatal: self.fatal.clone(),
            first_poll_where_read: on_one_thread(),
        });
        if let Some(setup) = &plugin.setup {
            let ctx = running.context(CallContext::default(), None, "setup".into());
            let outcome = tokio::select! {
                outcome = AssertUnwindSafe(setup(ctx)).catch_unwind() => outcome,
                _ = self.peer.closed() => return Ok(()),
            };
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error),
                Err(panic) => Some(Error::new(format!(
                    "the setup function panicked: {}",
                    panic_message(&*panic)
                ))),
            };
            if let Some(error) = failure {
                let permanent = error.is_permanent();
                let reason = format!("setup failed: {}", error.message());
                let _ = responder.error(error.into_object()).await;
                return Err(if permanent {
                    self.permanent(reason)
                } else {
                    ServeError::Setup {
                        plugin_id: id.clone(),
                        reason,
                    }
                });
            }
        }
        let result = InitializeResult {
            protocol_version: version,
            plugin: plugin.info.clone(),
            capabilities: PluginCapabilities {
                fixture: plugin.fixture,
            },
            registrations: plugin.registrations(),
        };
        let _ = responder.ok(result).await;
        self.set_phase(Phase::Running(running));
        Ok(())
    }

    fn on_initialized(&self, params: Option<Value>) {
        let (Phase::Running(running) | Phase::ShuttingDown(running)) = &self.phase else {
            return;
        };
        let id = &self.plugin.info.id;
        match parse_value::<InitializedParams>(Initialized::METHOD, params) {
            Ok(verdict) => {
                let mut accepted = lock(&running.accepted);
                accepted.fill(false);
                for a in &verdict.accepted {
                    if let Some(slot) = accepted.get_mut(a.index) {
                        *slot = true;
                    }
                }
                for r in &verdict.rejected {
                    let what = self.plugin.entries.get(r.index).map_or_else(
                        || format!("registration #{}", r.index),
                        |e| format!("{} `{}`", e.registration.kind(), e.registration.key()),
                    );
                    eprintln!(
                        "outpost-sdk: plugin `{id}`: the host rejected {what} ({}): {}",
                        r.code, r.reason
                    );
                }
            }
            Err(error) => eprintln!(
                "outpost-sdk: plugin `{id}`: ignoring an unreadable `initialized` (every registration stays served): {}",
                error.message
            ),
        }
        running.shared.initialized.store(true, Ordering::SeqCst);
    }
}

impl<C: ConfigType> Running<C> {
    fn context(
        &self,
        call: CallContext,
        id: Option<outpost_protocol::RequestId>,
        name: Arc<str>,
    ) -> Context<C> {
        let cancel = WorkCancel::Given(self.shared.shutdown.child_token());
        self.context_with(call, id, name, cancel)
    }

    fn context_with(
        &self,
        call: CallContext,
        id: Option<outpost_protocol::RequestId>,
        name: Arc<str>,
        cancel: WorkCancel,
    ) -> Context<C> {
        Context {
            shared: self.shared.clone(),
            config: self.config.clone(),
            work: Arc::new(Work::new(call, cancel, id, name)),
        }
    }

    /// The registration of `kind` named `key`, if the host accepted it.
    fn find(&self, kind: RegistrationKind, key: &str) -> Result<&Entry<C>, ErrorObject> {
        self.find_as(kind, key, key)
    }

    /// [`Running::find`], naming the registration `name` in the error's data (the name
    /// the call used).
    fn find_as(
        &self,
        kind: RegistrationKind,
        key: &str,
        name: &str,
    ) -> Result<&Entry<C>, ErrorObject> {
        let id = &self.plugin.info.id;
        let what = kind_name(kind);
        let not_found = |message: String| {
            ErrorObject::new(ErrorCode::NotFound, message)
                .with_data(json!({"kind": kind, "name": name}))
        };
        let Some(index) = self.plugin.lookup(kind, key) else {
            return Err(not_found(format!("plugin `{id}` has no {what} `{key}`")));
        };
        if !lock(&self.accepted).get(index).copied().unwrap_or(false) {
            return Err(not_found(format!(
                "{what} `{key}` of plugin `{id}` was not accepted by the host, so it is not served"
            )));
        }
        Ok(&self.plugin.entries[index])
    }

    /// The route registered as `route` for a request to `path`: the exact route when the
    /// path is the route itself, else the prefix route.
    fn find_route(&self, route: &str, path: &str) -> Result<&Entry<C>, ErrorObject> {
        let kind = RegistrationKind::HttpRoute;
        let exact = route.to_owned();
        let prefix = format!("{route} (prefix)");
        let keys = if path == route {
            [&exact, &prefix]
        } else {
            [&prefix, &exact]
        };
        let mut refusal = None;
        for key in keys {
            match self.find_as(kind, key, route) {
                Ok(entry) => return Ok(entry),
                Err(e) if self.plugin.lookup(kind, key).is_some() => {
                    refusal = refusal.or(Some(e));
                }
                Err(_) => {}
            }
        }
        Err(refusal.unwrap_or_else(|| {
            ErrorObject::new(
                ErrorCode::NotFound,
                format!(
                    "plugin `{}` has no HTTP route `{route}`",
                    self.plugin.info.id
                ),
            )
            .with_data(json!({"kind": kind, "name": route}))
        }))
    }
}

/// A kind as people say it, for messages.
fn kind_name(kind: RegistrationKind) -> &'static str {
    match kind {
        RegistrationKind::Tool => "tool",
        RegistrationKind::Hook => "hook",
        RegistrationKind::Command => "command",
        RegistrationKind::GatewayMethod => "gateway method",
        RegistrationKind::HttpRoute => "HTTP route",
        RegistrationKind::Service => "service",
        RegistrationKind::Channel => "channel",
        RegistrationKind::Provider => "provider",
        RegistrationKind::ContextEngine => "context engine",
    }
}

/// Reads a method's params from their JSON text, straight into `T`: `null` or absent
/// params are no params (`{}`), anything but an object is `-32602` (docs/protocol.md §4).
fn parse<'a, T: Deserialize<'a>>(
    method: &str,
    params: Option<&'a RawValue>,
) -> Result<T, ErrorObject> {
    let text = match params.map(RawValue::get) {
        None | Some("null") => "{}",
        Some(object) if object.starts_with('{') => object,
        Some(_) => return Err(not_an_object(&format!("`{method}`"))),
    };
    serde_json::from_str(text)
        .map_err(|e| ErrorObject::invalid_params(method, crate::builder::without_position(&e)))
}

/// [`parse`] for a notification's params, which the peer parses.
fn parse_value<T: DeserializeOwned>(method: &str, params: Option<Value>) -> Result<T, ErrorObject> {
    let params = match params {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(object @ Value::Object(_)) => object,
        Some(_) => return Err(not_an_object(&format!("`{method}`"))),
    };
    serde_json::from_value(params).map_err(|e| ErrorObject::invalid_params(method, e))
}

/// What kind of JSON value `text` is, to name it in an error without echoing it (it
/// can be as long as the line limit).
fn json_kind(text: &str) -> &'static str {
    match text.trim_start().as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// `-32602` for params that are an array or a scalar.
fn not_an_object(what: &str) -> ErrorObject {
    ErrorObject::new(
        ErrorCode::InvalidParams,
        format!("invalid params for {what}: params must be an object (this protocol has no positional params)"),
    )
    .with_data(json!({"errors": [{"path": "", "message": "must be an object"}]}))
}

/// Routes one invocation and spawns its call task; answers at once what it refuses.
fn dispatch<C: ConfigType>(
    running: &Arc<Running<C>>,
    method: &str,
    params: CallParams<'_>,
    responder: Responder,
) {
    match route(running, method, params) {
        Ok(routed) => spawn_call(running, responder, routed),
        Err(error) => {
            tokio::spawn(async move {
                let _ = responder.error(error).await;
            });
        }
    }
}

/// A call, ready to run. `'a` is the request's params, which a tool's arguments are
/// read from, without a copy, when its handler is called.
struct Routed<'a, C> {
    /// e.g. `tool/word_count`, for logs and errors.
    name: Arc<str>,
    call: CallContext,
    start: Start<'a, C>,
}

/// How a routed call's future is built from the call's context.
enum Start<'a, C> {
    /// A registration's handler, called with this input.
    Handler(Handler<C>, Input<'a>),
    /// Anything else: a hook whose answer is checked, a service, a fixture method.
    Run(Run<C>),
}

impl<C> Start<'_, C> {
    fn start(self, ctx: Context<C>) -> BoxFuture<Result<Output, Error>> {
        match self {
            Self::Handler(handler, input) => handler(ctx, input),
            Self::Run(run) => run(ctx),
        }
    }
}

/// An entry's handler, and the name of a call to it.
fn call_target<C>(entry: &Entry<C>) -> (Handler<C>, Arc<str>) {
    match &entry.target {
        Target::Call(handler) => (handler.clone(), entry.call_name.clone()),
        _ => unreachable!("tools, hooks, commands, methods and routes have call handlers"),
    }
}

fn route<'a, C: ConfigType>(
    running: &Arc<Running<C>>,
    method: &str,
    params: CallParams<'a>,
) -> Result<Routed<'a, C>, ErrorObject> {
    let params = match params {
        CallParams::Tool(p) => return route_tool(running, p),
        CallParams::Text(params) => params,
    };
    match method {
        ToolInvoke::METHOD => route_tool(running, parse(method, params)?),
        HookRun::METHOD => {
            let mut p: HookRunParams = parse(method, params)?;
            // A hook's payload is always an object: `{}` when the event carries nothing.
            match &p.payload {
                Value::Null => p.payload = Value::Object(Map::new()),
                Value::Object(_) => {}
                _ => {
                    return Err(ErrorObject::new(
                        ErrorCode::InvalidParams,
                        format!(
                            "invalid params for `{method}`: `payload` must be an object (`{{}}` when the event carries nothing)"
                        ),
                    )
                    .with_data(json!({"errors": [{"path": "/payload", "message": "must be an object"}]})));
                }
            }
            let (handler, name) = call_target(running.find(RegistrationKind::Hook, &p.key())?);
            let event = p.event.clone();
            Ok(Routed {
                name,
                call: p.context,
                start: Start::Run(Box::new(move |ctx| {
                    Box::pin(async move {
                        let result = handler(ctx, Input::Value(p.payload)).await?;
                        let text = result.result();
                        if text == b"null" || text.starts_with(b"{") {
                            Ok(result)
                        } else {
                            let text = String::from_utf8_lossy(text);
                            Err(Error::with_code(
                                ErrorCode::InternalError,
                                format!(
                                    "the handler of hook `{event}` returned {text}, but a hook answers an object of fields or nothing"
                                ),
                            ))
                        }
                    })
                })),
            })
        }
        CommandRun::METHOD => {
            let mut p: CommandRunParams = parse(method, params)?;
            // A command without arguments has no `args`; an old host's `""` means the same.
            if p.args.as_deref() == Some("") {
                p.args = None;
            }
            let key = p.name.trim().to_lowercase();
            let (handler, name) = call_target(running.find(RegistrationKind::Command, &key)?);
            let context = p.context.clone();
            let input = Input::Value(serde_json::to_value(&p).unwrap_or(Value::Null));
            Ok(Routed {
                name,
                call: context,
                start: Start::Handler(handler, input),
            })
        }
        MethodCall::METHOD => {
            let p: MethodCallParams = parse(method, params)?;
            let (handler, name) =
                call_target(running.find(RegistrationKind::GatewayMethod, &p.method)?);
            Ok(Routed {
                name,
                call: p.context,
                start: Start::Handler(handler, Input::Value(p.params)),
            })
        }
        HttpHandle::METHOD => {
            let p: HttpHandleParams = parse(method, params)?;
            let (handler, name) = call_target(running.find_route(&p.route, &p.request.path)?);
            let input = Input::Value(serde_json::to_value(&p.request).unwrap_or(Value::Null));
            Ok(Routed {
                name,
                call: p.context,
                start: Start::Handler(handler, input),
            })
        }
        ServiceStart::METHOD => {
            let p: ServiceParams = parse(method, params)?;
            let entry = running.find(RegistrationKind::Service, &p.id)?;
            let Target::Service { start, stop } = &entry.target else {
                unreachable!("services have service handlers")
            };
            service_start(running, p.id, start.clone(), stop.clone())
        }
        ServiceStop::METHOD => {
            let p: ServiceParams = parse(method, params)?;
            running.find(RegistrationKind::Service, &p.id)?;
            Ok(service_stop(running, &p.id))
        }
        ProviderCall::METHOD => {
            let p: ProviderCallParams = parse(method, params)?;
            let key = format!("{}:{}", p.capability, p.id);
            operation(
                running,
                RegistrationKind::Provider,
                &key,
                &p.operation,
                p.params,
                p.context,
            )
        }
        ChannelCall::METHOD => {
            let p: ChannelCallParams = parse(method, params)?;
            operation(
                running,
                RegistrationKind::Channel,
                &p.id,
                &p.operation,
                p.params,
                p.context,
            )
        }
        ContextEngineCall::METHOD => {
            let p: ContextEngineCallParams = parse(method, params)?;
            operation(
                running,
                RegistrationKind::ContextEngine,
                &p.id,
                &p.operation,
                p.params,
                p.context,
            )
        }
        _ if running.plugin.fixture && method.starts_with("fixture/") => {
            let run = fixture::route(method, params)?;
            Ok(Routed {
                name: method.into(),
                call: CallContext::default(),
                start: Start::Run(run),
            })
        }
        _ => Err(ErrorObject::method_not_found(method)),
    }
}

/// `tool/invoke`: the tool's handler, with its arguments left where they are in the
/// line.
fn route_tool<'a, C: ConfigType>(
    running: &Arc<Running<C>>,
    p: ToolInvokeText<'a>,
) -> Result<Routed<'a, C>, ErrorObject> {
    let (handler, name) = call_target(running.find(RegistrationKind::Tool, &p.name)?);
    // The arguments are an object, `{}` when absent (as `ToolInvokeParams` reads them).
    let input = match p.arguments {
        None => Input::Value(Value::Object(Map::new())),
        Some(raw) if raw.get().starts_with('{') => Input::Raw(raw),
        Some(raw) => {
            return Err(ErrorObject::new(
                ErrorCode::InvalidParams,
                format!(
                    "invalid params for `{}`: `arguments` must be an object, not {}",
                    ToolInvoke::METHOD,
                    json_kind(raw.get())
                ),
            )
            .with_data(
                json!({"errors": [{"path": "/arguments", "message": "must be an object"}]}),
            ));
        }
    };
    Ok(Routed {
        name,
        call: p.context,
        start: Start::Handler(handler, input),
    })
}

fn operation<C: ConfigType>(
    running: &Arc<Running<C>>,
    kind: RegistrationKind,
    key: &str,
    operation: &str,
    params: Value,
    call: CallContext,
) -> Result<Routed<'static, C>, ErrorObject> {
    let entry = running.find(kind, key)?;
    let Target::Operations(operations) = &entry.target else {
        unreachable!("providers, channels and context engines have operations")
    };
    let Some(handler) = operations.handlers.get(operation).cloned() else {
        return Err(ErrorObject::new(
            ErrorCode::MethodNotFound,
            format!(
                "{} `{key}` of plugin `{}` has no operation `{operation}`; it has: {}",
                kind_name(kind),
                running.plugin.info.id,
                operations.names()
            ),
        ));
    };
    Ok(Routed {
        name: format!("{kind}/{key}/{operation}").into(),
        call,
        start: Start::Handler(handler, Input::Value(params)),
    })
}

fn service_start<C: ConfigType>(
    running: &Arc<Running<C>>,
    id: String,
    start: ServiceFn<C>,
    stop: Option<ServiceFn<C>>,
) -> Result<Routed<'static, C>, ErrorObject> {
    let context = ServiceContext {
        context: running.context(CallContext::default(), None, format!("service/{id}").into()),
        tasks: TaskTracker::new(),
    };
    {
        let mut services = lock(&running.services);
        if services.contains_key(&id) {
            return Err(ErrorObject::new(
                ErrorCode::HandlerFailed,
                format!("service `{id}` is already running; stop it before starting it again"),
            ));
        }
        services.insert(
            id.clone(),
            RunningService {
                context: context.clone(),
                stop,
            },
        );
    }
    let running = running.clone();
    Ok(Routed {
        name: format!("service/{id}").into(),
        call: CallContext::default(),
        start: Start::Run(Box::new(move |call| {
            Box::pin(async move {
                // Until the start succeeds, a failure, a panic or a cancelled start
                // takes the service down again.
                let mut guard = StartGuard {
                    running: &running,
                    id: &id,
                    armed: true,
                };
                start(context).await?;
                guard.armed = false;
                to_json(&call.work, &EmptyObject {})
            })
        })),
    })
}

struct StartGuard<'a, C> {
    running: &'a Running<C>,
    id: &'a str,
    armed: bool,
}

impl<C> Drop for StartGuard<'_, C> {
    fn drop(&mut self) {
        if self.armed
            && let Some(service) = lock(&self.running.services).remove(self.id)
        {
            service.context.context.work.cancel().cancel();
            service.context.tasks.close();
        }
    }
}

fn service_stop<C: ConfigType>(running: &Arc<Running<C>>, id: &str) -> Routed<'static, C> {
    let service = lock(&running.services).remove(id);
    Routed {
        name: format!("service/{id}").into(),
        call: CallContext::default(),
        start: Start::Run(Box::new(move |call| {
            Box::pin(async move {
                if let Some(service) = service {
                    stop_service(service).await?;
                }
                to_json(&call.work, &EmptyObject {})
            })
        })),
    }
}

/// Fires the service's cancellation, runs its stop function, waits for its tasks.
async fn stop_service<C>(service: RunningService<C>) -> Result<(), Error> {
    let RunningService { context, stop } = service;
    context.context.work.cancel().cancel();
    let result = match stop {
        Some(stop) => stop(context.clone()).await,
        None => Ok(()),
    };
    context.tasks.close();
    context.tasks.wait().await;
    result
}

/// Runs a call in its own task and answers it.
fn spawn_call<C: ConfigType>(
    running: &Arc<Running<C>>,
    responder: Responder,
    routed: Routed<'_, C>,
) {
    let Routed { name, call, start } = routed;
    if running.admitted.fetch_add(1, Ordering::SeqCst) >= running.max_admitted {
        running.admitted.fetch_sub(1, Ordering::SeqCst);
        let limit = running.max_concurrent;
        let error = ErrorObject::new(
            ErrorCode::Overloaded,
            format!(
                "plugin `{}` has too many calls in flight; retry later",
                running.plugin.info.id
            ),
        )
        .with_data(json!({
            "pluginId": running.plugin.info.id,
            "retryAfterMs": 100,
            "limit": limit,
        }));
        tokio::spawn(async move {
            let _ = responder.error(error).await;
        });
        return;
    }
    // The call's own cancellation: `$/cancel`, the end of the connection, and (its
    // parent) `shutdown`. Made when first asked for: most handlers never do.
    let cancel = WorkCancel::Deferred {
        request: responder.deferred_cancellation(),
        token: OnceLock::new(),
    };
    let ctx = running.context_with(call, Some(responder.id().clone()), name.clone(), cancel);
    let work = ctx.work.clone();
    // The caller's deadline (`context.timeoutMs`): the call gives up then, unless the
    // host's `$/cancel` comes first (docs/protocol.md §11, -32001).
    let budget = ctx.work.call.timeout_ms;
    let expiry = ctx.deadline().map(tokio::time::Instant::from_std);
    // Built now, while the request's params are at hand: a tool's arguments are read
    // into the handler's type here, and the future owns what it needs.
    let mut run = start.start(ctx);
    let mut slot = None;
    if running.first_poll_where_read
        && let Ok(permit) = running.slots.clone().try_acquire_owned()
    {
        match first_poll(&mut run, &name) {
            Some(outcome) => {
                drop(permit);
                running.admitted.fetch_sub(1, Ordering::SeqCst);
                answer_now(running, responder, &name, &work, outcome);
                return;
            }
            None => slot = Some(permit),
        }
    }
    let running = running.clone();
    let tracker = running.calls.clone();
    tokio::spawn(tracker.track_future(async move {
        let _admitted = Admitted(&running.admitted);
        let slots = running.slots.clone();
        let finished = async move {
            let _slot = match slot {
                Some(permit) => Ok(permit),
                None => slots.acquire_owned().await,
            };
            AssertUnwindSafe(run).catch_unwind().await
        };
        let outcome = tokio::select! {
            biased;
            outcome = finished => outcome.unwrap_or_else(|panic| Err(panicked(&name, &*panic))),
            () = work.cancel().cancelled() => Err(cancelled(&name)),
            () = until(expiry) => Err(gave_up(&name, budget.unwrap_or_default())),
        };
        let (answer, fatal) = conclude(&running, &name, &work, outcome);
        let _ = match answer {
            Ok(line) => responder.answer_line(line).await,
            Err(error) => responder.error(error).await,
        };
        if let Some(reason) = fatal {
            let _ = running.fatal.send(reason).await;
        }
    }));
}

/// Whether this is the single-threaded runtime [`crate::Plugin::run`] builds by default.
/// There a call whose handler answers at its first poll (most tools) is answered where
/// it was read: no task, no timer, no trip through the scheduler. A handler that
/// computes before its first `.await` holds up that runtime either way. On a
/// multi-threaded runtime (`worker_threads`) every call is a task, so that such handlers
/// run in parallel and never hold up the session's loop.
fn on_one_thread() -> bool {
    tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread
}

/// Polls a call's future once, with a waker that does nothing: its outcome if it is
/// done. What it waits on otherwise is registered again, with the task's own waker,
/// when its task polls it (as every future must allow: only the waker of the latest
/// poll is woken).
fn first_poll(
    run: &mut BoxFuture<Result<Output, Error>>,
    name: &str,
) -> Option<Result<Output, Error>> {
    let mut cx = TaskContext::from_waker(std::task::Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(&mut cx))) {
        Ok(Poll::Pending) => None,
        Ok(Poll::Ready(outcome)) => Some(outcome),
        Err(panic) => Some(Err(panicked(name, &*panic))),
    }
}

/// Answers a call that ended at its first poll, from where it was read; only when the
/// output's queue is full, or the failure ends the plugin, is the rest a task.
fn answer_now<C: ConfigType>(
    running: &Arc<Running<C>>,
    responder: Responder,
    name: &str,
    work: &Work,
    outcome: Result<Output, Error>,
) {
    let (answer, fatal) = conclude(running, name, work, outcome);
    let unsent = match answer {
        Ok(result) => responder
            .try_answer_line(result)
            .err()
            .map(|(responder, line)| (responder, Ok(line))),
        Err(error) => responder
            .try_answer::<RawValue>(Err(&error))
            .err()
            .map(|responder| (responder, Err(error))),
    };
    if unsent.is_none() && fatal.is_none() {
        return;
    }
    let running = running.clone();
    let tracker = running.calls.clone();
    tokio::spawn(tracker.track_future(async move {
        if let Some((responder, answer)) = unsent {
            let _ = match answer {
                Ok(line) => responder.answer_line(line).await,
                Err(error) => responder.error(error).await,
            };
        }
        if let Some(reason) = fatal {
            let _ = running.fatal.send(reason).await;
        }
    }));
}

/// What a call's outcome is answered with, and the reason to end the plugin when it
/// failed permanently. A cancelled or timed-out call's work is told to stop.
fn conclude<C>(
    running: &Running<C>,
    name: &str,
    work: &Work,
    outcome: Result<Output, Error>,
) -> (Result<Output, ErrorObject>, Option<String>) {
    if matches!(&outcome, Err(e) if matches!(e.code(), ErrorCode::Cancelled | ErrorCode::Timeout)) {
        work.cancel().cancel();
    }
    let fatal = match &outcome {
        Err(error) if error.is_permanent() => {
            Some(format!("{name} failed permanently: {}", error.message()))
        }
        _ => None,
    };
    let answer = match outcome {
        Ok(value) => check_size(running, name, value),
        Err(error) => Err(error.into_object()),
    };
    (answer, fatal)
}

fn panicked(name: &str, panic: &(dyn Any + Send)) -> Error {
    Error::new(format!(
        "the handler of {name} panicked: {}",
        panic_message(panic)
    ))
}

fn cancelled(name: &str) -> Error {
    Error::with_code(ErrorCode::Cancelled, format!("{name} was cancelled"))
}

/// `-32001` for a call still running at its deadline.
fn gave_up(name: &str, timeout_ms: u64) -> Error {
    Error::with_code(
        ErrorCode::Timeout,
        format!("{name} gave up at its deadline: the caller's {timeout_ms} ms budget ran out"),
    )
    .with_data(json!({"timeoutMs": timeout_ms}))
}

/// Sleeps until `deadline`, or forever without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Replaces a result over the host's `maxMessageBytes` with `-32006`.
fn check_size<C>(running: &Running<C>, name: &str, value: Output) -> Result<Output, ErrorObject> {
    let Some(limit) = running.max_message_bytes else {
        return Ok(value);
    };
    let size = value.len();
    if size <= limit {
        return Ok(value);
    }
    Err(ErrorObject::new(
        ErrorCode::MessageTooLarge,
        format!("the result of {name} is {size} bytes, over the host's {limit}-byte message limit"),
    )
    .with_data(json!({"limit": limit, "size": size})))
}

struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// `shutdown`: cancel every call, stop every service, wait for both within the grace,
/// answer `{}`.
async fn shutdown<C: ConfigType>(running: Arc<Running<C>>, responder: Responder) {
    running.shared.shutdown.cancel();
    let deadline = tokio::time::Instant::now() + running.grace;
    let services: Vec<_> = lock(&running.services).drain().collect();
    let id = &running.plugin.info.id;
    let stops = services.into_iter().map(|(service_id, service)| async move {
        match AssertUnwindSafe(stop_service(service)).catch_unwind().await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                eprintln!("outpost-sdk: plugin `{id}`: stopping service `{service_id}` failed: {error}");
            }
            Err(panic) => eprintln!(
                "outpost-sdk: plugin `{id}`: stopping service `{service_id}` panicked: {}",
                panic_message(&*panic)
            ),
        }
    });
    let stopped = futures_util::future::join_all(stops);
    if tokio::time::timeout_at(deadline, stopped).await.is_err() {
        eprintln!(
            "outpost-sdk: plugin `{id}`: services still stopping after {} ms; answering `shutdown` anyway",
            running.grace.as_millis()
        );
    }
    running.calls.close();
    let _ = tokio::time::timeout_at(deadline, running.calls.wait()).await;
    // Log records of the stop functions go out before the answer.
    let _ = tokio::time::timeout_at(deadline, running.shared.logs.flush()).await;
    let _ = responder.ok(EmptyObject {}).await;
}

/// A writer that says when it has been shut down (everything before flushed).
struct NotifyOnShutdown<W> {
    inner: W,
    flushed: CancellationToken,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for NotifyOnShutdown<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        if polled.is_ready() {
            self.flushed.cancel();
        }
        polled
    }
}

/// A reader that holds back EOF: it reports the end of the input to the session, and
/// shows EOF to the peer only once the session has answered what was in flight. (The
/// peer stops writing as soon as it reads EOF.)
struct HoldEof<R> {
    inner: R,
    input_ended: Option<oneshot::Sender<()>>,
    release: Pin<Box<WaitForCancellationFutureOwned>>,
    at_eof: bool,
}

impl<R: AsyncRead + Unpin> AsyncRead for HoldEof<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.at_eof {
            let before = buf.filled().len();
            std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
            if buf.filled().len() > before || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            self.at_eof = true;
            if let Some(tx) = self.input_ended.take() {
                let _ = tx.send(());
            }
        }
        self.release.as_mut().poll(cx).map(Ok)
    }
}

impl<C: ConfigType> Plugin<C> {
    /// Serves the plugin on any byte streams until `reader` reaches EOF: the host's
    /// messages come from `reader`, the plugin's go to `writer`. [`Plugin::run`] calls it
    /// with the protected stdin and stdout; tests call it with in-memory pipes (or use
    /// [`crate::testing::TestHost`]).
    ///
    /// Returns `Ok` at EOF, [`ServeError::Permanent`] when the plugin failed for good.
    pub async fn serve_on<R, W>(self, reader: R, writer: W) -> Result<(), ServeError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        serve(self, reader, writer, Reading::InTask).await
    }
}

#[cfg(test)]
mod tests {
    use super::json_kind;

    #[test]
    fn a_wrong_value_is_named_by_its_kind_not_echoed() {
        for (text, kind) in [
            ("[1, 2]", "an array"),
            ("\"a very long string\"", "a string"),
            ("true", "a boolean"),
            ("null", "null"),
            ("-3.5e2", "a number"),
        ] {
            assert_eq!(json_kind(text), kind, "{text}");
        }
    }
}
