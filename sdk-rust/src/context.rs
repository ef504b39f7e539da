//! What a handler gets besides its input: the config, the call, cancellation, progress,
//! logging and the host's runtime helpers.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use outpost_protocol::RequestId;
use outpost_protocol::methods::{
    CallContext, EmptyObject, HostCallMethod, HostCallMethodParams, HostGetConfig, LogLevel,
    LogParams, Progress, ProgressParams, RequestType,
};
use outpost_protocol::peer::{CallOptions, Peer, RequestCancellation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::HostError;

/// The plugin's config as the host sent it: validated against the manifest's
/// `configSchema`, defaults filled in.
pub type RawConfig = Map<String, Value>;

/// Fires when the work it belongs to should stop: the host cancelled the call
/// (`$/cancel`), the service is being stopped, or the plugin is shutting down.
///
/// Cheap to clone; hand it to blocking threads or spawned tasks that must notice.
#[derive(Clone, Debug, Default)]
pub struct Cancellation(CancellationToken);

impl Cancellation {
    /// A signal that has not fired, for tests and for work outside any call.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it has fired.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Waits until it fires.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        self.0.clone().cancelled_owned()
    }

    /// Fires it (and every context sharing it).
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

/// State shared by every context of one session with the host.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) plugin_id: String,
    pub(crate) peer: Peer,
    pub(crate) raw_config: Arc<RawConfig>,
    /// `capabilities.runtime` from `initialize`.
    pub(crate) runtime: Vec<String>,
    pub(crate) logs: LogSink,
    /// Set when `initialized` arrived: requests to the host are allowed from then on.
    pub(crate) initialized: AtomicBool,
    /// Fires at `shutdown` and at EOF; every call and service token is its child.
    pub(crate) shutdown: CancellationToken,
}

/// One unit of work: a call, a service, a setup function.
#[derive(Debug)]
pub(crate) struct Work {
    pub(crate) call: CallContext,
    cancel: WorkCancel,
    /// The request being served, for `$/progress`.
    pub(crate) id: Option<RequestId>,
    /// When `timeoutMs` started counting (when the request was read).
    pub(crate) received: Instant,
    /// e.g. `tool/word_count`: the `logger` of its log records.
    pub(crate) name: Arc<str>,
}

/// When a [`Work`] should stop.
#[derive(Debug)]
pub(crate) enum WorkCancel {
    /// A service's or a setup function's token.
    Given(CancellationToken),
    /// A call's: the peer makes its token when first asked for, and most calls end
    /// without anyone asking.
    Deferred {
        request: RequestCancellation,
        token: OnceLock<CancellationToken>,
    },
}

impl Work {
    pub(crate) fn new(
        call: CallContext,
        cancel: WorkCancel,
        id: Option<RequestId>,
        name: Arc<str>,
    ) -> Self {
        Self {
            call,
            cancel,
            id,
            received: Instant::now(),
            name,
        }
    }

    /// Fires when the work should stop.
    pub(crate) fn cancel(&self) -> &CancellationToken {
        match &self.cancel {
            WorkCancel::Given(token) => token,
            WorkCancel::Deferred { request, token } => token.get_or_init(|| request.token()),
        }
    }
}

/// Everything a handler can use besides its input.
///
/// `C` is the plugin's config type ([`crate::Plugin::with_config`]); it is [`RawConfig`]
/// for plugins built with [`crate::Plugin::builder`]. Cheap to clone.
pub struct Context<C = RawConfig> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: Arc<C>,
    pub(crate) work: Arc<Work>,
}

impl<C> Clone for Context<C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            config: self.config.clone(),
            work: self.work.clone(),
        }
    }
}

impl<C> fmt::Debug for Context<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("plugin_id", &self.shared.plugin_id)
            .field("work", &self.work.name)
            .field("call", &self.work.call)
            .field("cancelled", &self.work.cancel().is_cancelled())
            .finish_non_exhaustive()
    }
}

impl<C> Context<C> {
    /// The plugin's validated config, typed.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// The config as the host sent it.
    pub fn raw_config(&self) -> &RawConfig {
        &self.shared.raw_config
    }

    /// The plugin id (the manifest's).
    pub fn plugin_id(&self) -> &str {
        &self.shared.plugin_id
    }

    /// Who and what the call is for (session, agent, channel, sender...). Empty for
    /// services and setup functions.
    pub fn call(&self) -> &CallContext {
        &self.work.call
    }

    /// When the caller stops waiting, from the call's `timeoutMs`. The host cancels the
    /// call then, and the SDK gives up on it at this instant if no `$/cancel` came first
    /// (answered `-32001`, the handler dropped): work that cannot finish before it is
    /// wasted.
    pub fn deadline(&self) -> Option<Instant> {
        self.work
            .call
            .timeout_ms
            .map(|ms| self.work.received + Duration::from_millis(ms))
    }

    /// The signal that fires when this work should stop: `$/cancel` for a call, stop or
    /// shutdown for a service, shutdown for everything.
    pub fn cancellation(&self) -> Cancellation {
        Cancellation(self.work.cancel().clone())
    }

    /// Whether the work was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.work.cancel().is_cancelled()
    }

    /// Waits until the work is cancelled.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        self.work.cancel().clone().cancelled_owned()
    }

    /// Reports progress of the current call (`$/progress`); best effort, and nothing
    /// outside a call.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(id) = self.work.id.clone() else {
            return;
        };
        let params = ProgressParams {
            id,
            progress,
            total,
            message: message.map(str::to_owned),
        };
        let _ = self.shared.peer.notify::<Progress>(&params).await;
    }

    /// Sends a log record to the host's log (a `log` notification), tagged with the plugin
    /// id there and with this work's name as `logger`. Never blocks: when the host reads
    /// too slowly and the queue is full, the record is dropped and counted.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.shared.logs.send(LogParams {
            level,
            message: message.into(),
            logger: Some(self.work.name.to_string()),
            fields: None,
        });
    }

    /// Sends a log record with structured fields (an object; anything else is kept under
    /// `value`).
    pub fn log_with(&self, level: LogLevel, message: impl Into<String>, fields: impl Serialize) {
        let fields = match serde_json::to_value(fields) {
            Ok(Value::Object(map)) => Some(map),
            Ok(Value::Null) => None,
            Ok(other) => Some(Map::from_iter([("value".to_owned(), other)])),
            Err(e) => Some(Map::from_iter([(
                "unserializable".to_owned(),
                Value::String(e.to_string()),
            )])),
        };
        self.shared.logs.send(LogParams {
            level,
            message: message.into(),
            logger: Some(self.work.name.to_string()),
            fields,
        });
    }

    /// [`Context::log`] at `debug`.
    pub fn debug(&self, message: impl Into<String>) {
        self.log(LogLevel::Debug, message);
    }

    /// [`Context::log`] at `info`.
    pub fn info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message);
    }

    /// [`Context::log`] at `warning`.
    pub fn warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warning, message);
    }

    /// [`Context::log`] at `error`.
    pub fn error(&self, message: impl Into<String>) {
        self.log(LogLevel::Error, message);
    }

    /// The host's runtime helpers (`host/callMethod`, `host/getConfig`).
    pub fn host(&self) -> Host<'_> {
        Host {
            shared: &self.shared,
            work: &self.work,
        }
    }

    /// The same context with the raw config, for code shared between plugins.
    pub fn untyped(&self) -> Context<RawConfig> {
        Context {
            shared: self.shared.clone(),
            config: self.shared.raw_config.clone(),
            work: self.work.clone(),
        }
    }
}

/// Requests to the host's runtime helpers, on behalf of one call.
///
/// Each request ends when the call is cancelled or its deadline passes, so a helper
/// never outlives the call that asked for it.
#[derive(Debug)]
pub struct Host<'a> {
    shared: &'a Shared,
    work: &'a Work,
}

impl Host<'_> {
    /// Whether the host offers `method` (listed in `initialize`'s
    /// `capabilities.runtime`).
    pub fn offers(&self, method: &str) -> bool {
        self.shared.runtime.iter().any(|m| m == method)
    }

    /// Calls a gateway method (one another plugin registered, or the gateway's own), if
    /// the operator's policy allows it. The call this context serves is passed on as the
    /// method's context, with the time it has left as its deadline.
    pub async fn call_method<R: DeserializeOwned>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> Result<R, HostError> {
        let mut context = self.work.call.clone();
        context.timeout_ms = self
            .time_left()
            .map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        let params = HostCallMethodParams {
            method: method.to_owned(),
            params: serde_json::to_value(params).map_err(|source| HostError::Decode {
                method: HostCallMethod::METHOD.to_owned(),
                source,
            })?,
            context: Some(context),
        };
        let value = self.request::<HostCallMethod>(&params).await?;
        serde_json::from_value(value).map_err(|source| HostError::Decode {
            method: method.to_owned(),
            source,
        })
    }

    /// Reads the plugin's config from the host (the same object `initialize` carried).
    pub async fn config(&self) -> Result<RawConfig, HostError> {
        Ok(self.request::<HostGetConfig>(&EmptyObject {}).await?.config)
    }

    /// The config of each messaging channel the manifest declares that the operator
    /// configured (`channels.<id>`), by channel id; empty when there is none.
    pub async fn channels(&self) -> Result<Map<String, Value>, HostError> {
        Ok(self
            .request::<HostGetConfig>(&EmptyObject {})
            .await?
            .channels)
    }

    /// What the gateway shares of its own config with this plugin (`None`: nothing).
    pub async fn gateway_config(&self) -> Result<Option<Value>, HostError> {
        Ok(self
            .request::<HostGetConfig>(&EmptyObject {})
            .await?
            .gateway)
    }

    /// What is left of the call's deadline, if it has one.
    fn time_left(&self) -> Option<Duration> {
        self.work.call.timeout_ms.map(|ms| {
            (self.work.received + Duration::from_millis(ms))
                .saturating_duration_since(Instant::now())
        })
    }

    async fn request<M: RequestType>(&self, params: &M::Params) -> Result<M::Result, HostError> {
        if !self.offers(M::METHOD) {
            return Err(HostError::NotOffered {
                method: M::METHOD.to_owned(),
            });
        }
        if !self.shared.initialized.load(Ordering::SeqCst) {
            return Err(HostError::TooEarly {
                method: M::METHOD.to_owned(),
            });
        }
        let mut options = CallOptions::default().with_cancel(self.work.cancel().clone());
        options.timeout = self.time_left();
        self.shared
            .peer
            .request::<M>(params, options)
            .await
            .map_err(|e| HostError::from_call(M::METHOD, e))
    }
}

/// What a service's start and stop functions get: a [`Context`] whose cancellation fires
/// when the service is stopped (or the plugin shuts down), and a place to run the
/// service's background tasks.
pub struct ServiceContext<C = RawConfig> {
    pub(crate) context: Context<C>,
    pub(crate) tasks: TaskTracker,
}

impl<C> Clone for ServiceContext<C> {
    fn clone(&self) -> Self {
        Self {
            context: self.context.clone(),
            tasks: self.tasks.clone(),
        }
    }
}

impl<C> fmt::Debug for ServiceContext<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceContext")
            .field("context", &self.context)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl<C> Deref for ServiceContext<C> {
    type Target = Context<C>;

    fn deref(&self) -> &Context<C> {
        &self.context
    }
}

impl<C> ServiceContext<C> {
    /// Runs `task` in the background as part of this service. Stopping the service fires
    /// [`Context::cancelled`] and waits for its tasks to end, so a task should return
    /// soon after that.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// The plain [`Context`].
    pub fn context(&self) -> &Context<C> {
        &self.context
    }
}

/// The queue of `log` notifications: bounded, never blocking the code that logs.
#[derive(Debug)]
pub(crate) struct LogSink {
    tx: mpsc::Sender<LogItem>,
    dropped: AtomicU64,
}

#[derive(Debug)]
enum LogItem {
    Record(LogParams),
    /// Answered once every record queued before it has been handed to the peer.
    Flush(oneshot::Sender<()>),
}

/// How many log records may wait for the host.
const LOG_QUEUE: usize = 1024;

impl LogSink {
    /// The sink, and the task that forwards its records to `peer`.
    pub(crate) fn start(peer: Peer) -> Self {
        let (tx, mut rx) = mpsc::channel::<LogItem>(LOG_QUEUE);
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                match item {
                    LogItem::Record(record) => {
                        if peer
                            .notify::<outpost_protocol::methods::Log>(&record)
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    LogItem::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Self {
            tx,
            dropped: AtomicU64::new(0),
        }
    }

    pub(crate) fn send(&self, record: LogParams) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 && self.tx.capacity() > LOG_QUEUE / 2 {
            let n = self.dropped.swap(0, Ordering::Relaxed);
            let _ = self.tx.try_send(LogItem::Record(LogParams {
                level: LogLevel::Warning,
                message: format!("{n} log records were dropped: the host read them too slowly"),
                logger: Some("outpost-sdk".to_owned()),
                fields: None,
            }));
        }
        if self.tx.try_send(LogItem::Record(record)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every record logged so far is in the peer's outbound queue.
    pub(crate) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.tx.send(LogItem::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}
