//! Testing a plugin without a process: a small host over in-memory pipes.
//!
//! [`TestHost::start`] serves the plugin on an in-memory duplex, exactly as
//! [`crate::Plugin::run`] serves it on stdin and stdout, and plays the host's part:
//! it sends `initialize` and `initialized`, answers the plugin's `host/getConfig` and
//! `host/callMethod`, and collects its `log` records.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use outpost_protocol::methods::{
    EmptyObject, HostCallMethod, HostCallMethodParams, HostCapabilities, HostGetConfig,
    HostGetConfigResult, ImplementationInfo, Initialize, InitializeParams, InitializeResult,
    Initialized, InitializedParams, Limits, Log, LogParams, RequestType, Shutdown, ToolInvoke,
    ToolInvokeParams, ToolResult,
};
use outpost_protocol::peer::{self, CallError, CallOptions, Event, Peer, PeerConfig};
use outpost_protocol::{ErrorCode, ErrorObject, NotificationType, SUPPORTED_VERSIONS};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ServeError;
use crate::builder::{ConfigType, Plugin};

/// How long a [`TestHost`] request may take before it fails: a guard against hangs, not
/// a measure of speed.
pub const TEST_TIMEOUT: Duration = Duration::from_mins(1);

type MethodHandler = Box<dyn Fn(&str, Value) -> Result<Value, ErrorObject> + Send + Sync>;

struct HostState {
    config: Mutex<Map<String, Value>>,
    gateway_config: Mutex<Option<Value>>,
    methods: Mutex<Option<MethodHandler>>,
}

/// A host for one plugin, in memory. Requires a tokio runtime.
pub struct TestHost {
    peer: Peer,
    plugin_id: String,
    state: Arc<HostState>,
    logs: mpsc::Receiver<LogParams>,
    serving: JoinHandle<Result<(), ServeError>>,
}

impl fmt::Debug for TestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestHost")
            .field("plugin_id", &self.plugin_id)
            .finish_non_exhaustive()
    }
}

impl TestHost {
    /// Starts serving `plugin`; nothing is sent yet.
    pub fn start<C: ConfigType>(plugin: Plugin<C>) -> Self {
        let plugin_id = plugin.id().to_owned();
        let (host_io, plugin_io) = tokio::io::duplex(256 * 1024);
        let (plugin_read, plugin_write) = tokio::io::split(plugin_io);
        let serving = tokio::spawn(plugin.serve_on(plugin_read, plugin_write));
        let (host_read, host_write) = tokio::io::split(host_io);
        let (peer, mut incoming) = peer::connect(
            host_read,
            host_write,
            PeerConfig {
                name: format!("plugin `{plugin_id}`"),
                ..PeerConfig::default()
            },
        );
        let state = Arc::new(HostState {
            config: Mutex::new(Map::new()),
            gateway_config: Mutex::new(None),
            methods: Mutex::new(None),
        });
        let (log_tx, logs) = mpsc::channel(4096);
        let host_state = state.clone();
        tokio::spawn(async move {
            while let Some(event) = incoming.next().await {
                match event {
                    Event::Request(request) => {
                        let answer = answer(&host_state, &request.method, request.params);
                        let _ = request.responder.respond(answer).await;
                    }
                    Event::Notification(n) if n.method == Log::METHOD => {
                        if let Some(Ok(record)) = n.params.map(serde_json::from_value) {
                            let _ = log_tx.try_send(record);
                        }
                    }
                    _ => {}
                }
            }
        });
        Self {
            peer,
            plugin_id,
            state,
            logs,
            serving,
        }
    }

    /// Answers the plugin's `host/callMethod` requests with `f(method, params)`; by
    /// default they are answered `-32008` (no such method).
    pub fn on_call_method<F>(&self, f: F)
    where
        F: Fn(&str, Value) -> Result<Value, ErrorObject> + Send + Sync + 'static,
    {
        *self
            .state
            .methods
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(f));
    }

    /// What `host/getConfig` answers as the gateway's config (by default nothing).
    pub fn set_gateway_config(&self, config: Option<Value>) {
        *self
            .state
            .gateway_config
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// The `initialize` params a real host would send with `config` (an object).
    pub fn initialize_params(&self, config: Value) -> InitializeParams {
        InitializeParams {
            protocol_versions: SUPPORTED_VERSIONS.iter().map(|v| (*v).to_owned()).collect(),
            host: ImplementationInfo {
                name: "outpost-sdk-test-host".to_owned(),
                version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            },
            plugin_id: self.plugin_id.clone(),
            config: match config {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            channels: Map::new(),
            limits: Limits {
                max_message_bytes: outpost_protocol::DEFAULT_MAX_MESSAGE_BYTES as u64,
                max_concurrent_requests: 16,
                shutdown_timeout_ms: Some(3000),
            },
            capabilities: HostCapabilities {
                runtime: vec![
                    HostCallMethod::METHOD.to_owned(),
                    HostGetConfig::METHOD.to_owned(),
                ],
            },
            host_pid: Some(std::process::id()),
        }
    }

    /// The handshake with `config`: `initialize`, then `initialized` accepting every
    /// registration. Returns the plugin's `initialize` result.
    pub async fn initialize(&self, config: Value) -> Result<InitializeResult, CallError> {
        let params = self.initialize_params(config);
        self.state
            .config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone_from(&params.config);
        let result = self.request::<Initialize>(&params).await?;
        let accepted = result
            .registrations
            .iter()
            .enumerate()
            .map(
                |(index, registration)| outpost_protocol::methods::AcceptedRegistration {
                    index,
                    kind: registration.kind(),
                    key: registration.key(),
                },
            )
            .collect();
        let verdict = InitializedParams {
            accepted,
            rejected: Vec::new(),
        };
        self.peer
            .notify::<Initialized>(&verdict)
            .await
            .map_err(|e| CallError::Closed(peer::CloseReason::Io(e.to_string())))?;
        Ok(result)
    }

    /// A typed request to the plugin, failing after [`TEST_TIMEOUT`].
    pub async fn request<M: RequestType>(
        &self,
        params: &M::Params,
    ) -> Result<M::Result, CallError> {
        self.peer
            .request::<M>(params, CallOptions::timeout(TEST_TIMEOUT))
            .await
    }

    /// A raw request to the plugin, failing after [`TEST_TIMEOUT`].
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, CallError> {
        self.peer
            .call(method, Some(&params), CallOptions::timeout(TEST_TIMEOUT))
            .await
    }

    /// `tool/invoke` of `name` with `arguments` (an object).
    pub async fn invoke_tool(&self, name: &str, arguments: Value) -> Result<ToolResult, CallError> {
        let params = ToolInvokeParams {
            name: name.to_owned(),
            arguments: match arguments {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            context: outpost_protocol::methods::CallContext::default(),
        };
        self.request::<ToolInvoke>(&params).await
    }

    /// The host side of the connection, to send anything a real host could.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The next `log` record from the plugin, waiting up to [`TEST_TIMEOUT`].
    pub async fn next_log(&mut self) -> Option<LogParams> {
        tokio::time::timeout(TEST_TIMEOUT, self.logs.recv())
            .await
            .ok()
            .flatten()
    }

    /// A clean stop: `shutdown`, then EOF. Returns how serving ended.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let answer = self.request::<Shutdown>(&EmptyObject {}).await;
        if let Err(e) = answer {
            eprintln!("outpost-sdk test host: `shutdown` failed: {e}");
        }
        self.close().await
    }

    /// Closes the plugin's input (EOF) and waits until it stops serving.
    pub async fn close(self) -> Result<(), ServeError> {
        self.peer.close();
        let Ok(joined) = tokio::time::timeout(TEST_TIMEOUT, self.serving).await else {
            panic!(
                "plugin `{}` did not stop within {TEST_TIMEOUT:?} of EOF",
                self.plugin_id
            )
        };
        joined.unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
    }

    /// Waits until the plugin stops serving on its own (a permanent failure), without
    /// closing its input.
    pub async fn finished(self) -> Result<(), ServeError> {
        let Ok(joined) = tokio::time::timeout(TEST_TIMEOUT, self.serving).await else {
            panic!(
                "plugin `{}` was still serving after {TEST_TIMEOUT:?}",
                self.plugin_id
            )
        };
        joined.unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
    }
}

fn answer(state: &HostState, method: &str, params: Option<Value>) -> Result<Value, ErrorObject> {
    match method {
        HostGetConfig::METHOD => {
            let config = state
                .config
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let gateway = state
                .gateway_config
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            Ok(serde_json::to_value(HostGetConfigResult {
                config,
                gateway,
                ..HostGetConfigResult::default()
            })
            .unwrap_or(Value::Null))
        }
        HostCallMethod::METHOD => {
            let params: HostCallMethodParams =
                serde_json::from_value(params.unwrap_or(Value::Null))
                    .map_err(|e| ErrorObject::invalid_params(method, e))?;
            let methods = state.methods.lock().unwrap_or_else(PoisonError::into_inner);
            match methods.as_ref() {
                Some(f) => f(&params.method, params.params),
                None => Err(ErrorObject::new(
                    ErrorCode::NotFound,
                    format!("the test host has no gateway method `{}`", params.method),
                )),
            }
        }
        _ => Err(ErrorObject::method_not_found(method)),
    }
}
