//! The [`Supervisor`]: what a Rust gateway embeds to run its plugins out of process.
//!
//! # Routing a call
//!
//! A call names a registration (a tool, a command, a method...). The supervisor finds its
//! owner in the registry, waits for the owner to be ready (within the call's deadline:
//! if the plugin is restarting and will not be back in time, the call fails at once
//! with `-32003` and `retryAfterMs`), takes one of the owner's call slots (or a place in
//! its bounded queue, else `-32009`), and sends the request with the time left as the
//! call context's `timeoutMs`. When the deadline passes the plugin gets `$/cancel` and
//! the caller `-32001`. When the plugin dies mid-call the caller gets `-32010` with the
//! exit status and the last stderr lines, at once. A call is sent again only if its
//! registration is replay-safe, once, within the same deadline.
//!
//! Every failure is an [`ErrorObject`] with a code of docs/protocol.md §11, so a gateway
//! can pass it on as it is.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use outpost_protocol::methods::{
    CallContext, ChannelCall, ChannelCallParams, CommandResult, CommandRun, CommandRunParams,
    ContextEngineCall, ContextEngineCallParams, HookRun, HookRunParams, HttpHandle,
    HttpHandleParams, HttpRequest, HttpResponse, ImplementationInfo, MethodCall, MethodCallParams,
    ProviderCall, ProviderCallParams, ToolInvoke, ToolInvokeParams, ToolResult,
};
use outpost_protocol::peer::{CallError, CallOptions};
use outpost_protocol::{
    ErrorCode, ErrorObject, ProviderCapability, Registration, RegistrationKind, RequestType,
    RouteAuth,
};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::hooks::{HookOutcome, HookRun as HookRunRecord, HookRunOutcome};
use crate::os::Spawner;
use crate::plugin::{Conn, Control, Down, Gate, Live, PluginRuntime, errors};
use crate::registry::{Owner, PluginState, Registry, RegistryEvent, RegistrySnapshot};
use crate::runner;
use crate::spec::PluginSpec;
use crate::stderr::StderrTail;

/// How long a caller whose call was cut off waits for the plugin's exit status.
const EXIT_REPORT_WAIT: Duration = Duration::from_secs(2);

/// A tool's compiled `inputSchema` and the registration it was compiled for.
type CompiledSchema = (Arc<Registration>, Arc<jsonschema::Validator>);

/// Why the supervisor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Two plugins share an id.
    #[error("plugin id `{0}` appears twice; every plugin needs its own id")]
    DuplicateId(String),
    /// The spawner thread could not be created.
    #[error("could not start the spawner thread")]
    Spawner(#[source] std::io::Error),
}

/// Runs a set of plugins; see the module docs. Dropping it kills every plugin process
/// at once (use [`Supervisor::shutdown`] for the graceful path).
#[derive(Debug)]
pub struct Supervisor {
    shared: Arc<Shared>,
    runners: Mutex<Vec<JoinHandle<()>>>,
}

/// What the runners and routers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) plugins: BTreeMap<String, Arc<PluginRuntime>>,
    pub(crate) registry: Registry,
    pub(crate) spawner: Spawner,
    pub(crate) host: ImplementationInfo,
    /// Compiled `inputSchema`s by tool name, with the registration they were compiled
    /// from (a new incarnation's registration is a new `Arc`, compiled again).
    validators: Mutex<HashMap<String, CompiledSchema>>,
}

impl Supervisor {
    /// Starts every plugin in `specs` concurrently and returns at once; plugins become
    /// ready in the background (see [`Supervisor::wait_settled`]). Must be called from
    /// within a tokio runtime.
    pub fn start(specs: Vec<PluginSpec>) -> Result<Self, StartError> {
        let mut plugins = BTreeMap::new();
        let mut orders = Vec::new();
        for spec in specs {
            let limits = &spec.launch.policy.limits;
            let (control, receiver) = mpsc::channel(8);
            let runtime = Arc::new(PluginRuntime {
                tail: Arc::new(StderrTail::new(limits.stderr_lines as usize)),
                gate: Gate::new(limits.max_concurrent_requests, limits.max_queued_requests),
                conn: watch::channel(Conn::Down(Down {
                    state: PluginState::Starting,
                    reason: "starting".into(),
                    retry_at: None,
                }))
                .0,
                control,
                spec,
            });
            let id = runtime.id().to_owned();
            if plugins.insert(id.clone(), runtime.clone()).is_some() {
                return Err(StartError::DuplicateId(id));
            }
            orders.push((runtime, receiver));
        }
        let shared = Arc::new(Shared {
            registry: Registry::new(plugins.keys().map(String::as_str)),
            plugins,
            spawner: Spawner::new(tokio::runtime::Handle::current())
                .map_err(StartError::Spawner)?,
            host: ImplementationInfo {
                name: "outpost".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            },
            validators: Mutex::default(),
        });
        let runners = orders
            .into_iter()
            .map(|(runtime, receiver)| {
                tokio::spawn(runner::run(Arc::downgrade(&shared), runtime, receiver))
            })
            .collect();
        Ok(Self {
            shared,
            runners: Mutex::new(runners),
        })
    }

    /// The registry now: plugins, their states, their registrations.
    pub fn snapshot(&self) -> RegistrySnapshot {
        self.shared.registry.snapshot()
    }

    /// A snapshot and every change after it, in order (see [`crate::registry`]).
    pub fn subscribe(&self) -> (RegistrySnapshot, broadcast::Receiver<RegistryEvent>) {
        self.shared.registry.subscribe()
    }

    /// A plugin's state and why.
    pub fn state(&self, plugin: &str) -> Option<(PluginState, Option<String>)> {
        self.shared.registry.state_of(plugin)
    }

    /// Waits until no plugin is starting, restarting or stopping (each is ready, failed
    /// or stopped), or `timeout` passes. Returns whether that happened.
    pub async fn wait_settled(&self, timeout: Duration) -> bool {
        let settled = |snapshot: &RegistrySnapshot| {
            snapshot.plugins.iter().all(|p| {
                matches!(
                    p.state,
                    PluginState::Ready | PluginState::Failed | PluginState::Stopped
                )
            })
        };
        let (snapshot, mut events) = self.subscribe();
        if settled(&snapshot) {
            return true;
        }
        tokio::time::timeout(timeout, async {
            loop {
                match events.recv().await {
                    Ok(RegistryEvent::PluginState { .. })
                    | Err(broadcast::error::RecvError::Lagged(_)) => {
                        if settled(&self.snapshot()) {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
        .await
        .is_ok()
    }

    /// Runs a tool. `arguments` are checked against the tool's `inputSchema` first.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<ToolResult, ErrorObject> {
        self.shared
            .call_tool(name, arguments, context, timeout)
            .await
    }

    /// Runs the slash command in `text` (`/name args`, matched case-insensitively).
    /// `Ok(None)`: no plugin command matches, so the message falls through to the
    /// gateway's other handlers (as it does for a command that takes no arguments
    /// when arguments were given).
    pub async fn run_command(
        &self,
        text: &str,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Option<CommandResult>, ErrorObject> {
        self.shared.run_command(text, context, timeout).await
    }

    /// Calls a plugin's gateway method.
    pub async fn call_method(
        &self,
        method: &str,
        params: Value,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Value, ErrorObject> {
        self.shared
            .call_method(method, params, context, timeout)
            .await
    }

    /// Runs every hook registered for `event`, highest priority first, and merges their
    /// results. A failing hook is recorded in the outcome and does not stop the others.
    pub async fn run_hook(
        &self,
        event: &str,
        payload: Value,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> HookOutcome {
        self.shared.run_hook(event, payload, context, timeout).await
    }

    /// Hands an HTTP request to the plugin route that matches its path. `Ok(None)`: no
    /// plugin route matches. `gateway_authenticated` says whether the gateway's own
    /// authentication accepted the request; routes registered with `auth: "gateway"`
    /// refuse it otherwise.
    pub async fn handle_http(
        &self,
        request: HttpRequest,
        gateway_authenticated: bool,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Option<HttpResponse>, ErrorObject> {
        self.shared
            .handle_http(request, gateway_authenticated, context, timeout)
            .await
    }

    /// One operation of a provider.
    pub async fn call_provider(
        &self,
        capability: ProviderCapability,
        id: &str,
        operation: &str,
        params: Value,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Value, ErrorObject> {
        let key = format!("{capability}:{id}");
        let Owner {
            plugin,
            registration,
        } = self.shared.owner(RegistrationKind::Provider, &key)?;
        let request = ProviderCallParams {
            capability,
            id: id.to_owned(),
            operation: operation.to_owned(),
            params,
            context,
        };
        self.shared
            .invoke::<ProviderCall>(&plugin, &registration, request, timeout)
            .await
    }

    /// One operation of a channel.
    pub async fn call_channel(
        &self,
        id: &str,
        operation: &str,
        params: Value,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Value, ErrorObject> {
        let Owner {
            plugin,
            registration,
        } = self.shared.owner(RegistrationKind::Channel, id)?;
        let request = ChannelCallParams {
            id: id.to_owned(),
            operation: operation.to_owned(),
            params,
            context,
        };
        self.shared
            .invoke::<ChannelCall>(&plugin, &registration, request, timeout)
            .await
    }

    /// One operation of a context engine.
    pub async fn call_context_engine(
        &self,
        id: &str,
        operation: &str,
        params: Value,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Value, ErrorObject> {
        let Owner {
            plugin,
            registration,
        } = self.shared.owner(RegistrationKind::ContextEngine, id)?;
        let request = ContextEngineCallParams {
            id: id.to_owned(),
            operation: operation.to_owned(),
            params,
            context,
        };
        self.shared
            .invoke::<ContextEngineCall>(&plugin, &registration, request, timeout)
            .await
    }

    /// Stops one plugin (the stop escalation) and keeps it stopped.
    pub async fn stop(&self, plugin: &str) -> Result<(), ErrorObject> {
        self.order(plugin, Control::Stop).await
    }

    /// Restarts one plugin: stops it if it runs, forgets its crash history (so a
    /// `failed` plugin gets a fresh start), starts it again. Returns once it is
    /// starting; use [`Supervisor::wait_settled`] to wait for the outcome.
    pub async fn restart(&self, plugin: &str) -> Result<(), ErrorObject> {
        self.order(plugin, Control::Restart).await
    }

    async fn order(
        &self,
        plugin: &str,
        order: fn(oneshot::Sender<()>) -> Control,
    ) -> Result<(), ErrorObject> {
        let runtime = self.shared.plugins.get(plugin).ok_or_else(|| {
            ErrorObject::new(
                ErrorCode::NotFound,
                format!("no plugin `{plugin}` is supervised here"),
            )
            .with_data(json!({ "kind": "plugin", "name": plugin }))
        })?;
        let (reply, done) = oneshot::channel();
        let gone = || {
            ErrorObject::new(
                ErrorCode::Unavailable,
                format!("plugin `{plugin}`: the supervisor is shutting down"),
            )
        };
        runtime
            .control
            .send(order(reply))
            .await
            .map_err(|_| gone())?;
        done.await.map_err(|_| gone())
    }

    /// Stops every plugin concurrently with the stop escalation and waits until all are
    /// reaped. Calls made afterwards fail with `-32003`.
    pub async fn shutdown(&self) {
        let stops = self.shared.plugins.keys().map(|plugin| async move {
            let _ = self.stop(plugin).await;
        });
        futures_util::future::join_all(stops).await;
        let runners =
            std::mem::take(&mut *self.runners.lock().unwrap_or_else(PoisonError::into_inner));
        for runner in runners {
            runner.abort();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // The last resort: each runner's process group is killed when its task is
        // dropped (see os::ProcessGroup).
        for runner in self
            .runners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            runner.abort();
        }
    }
}

impl Shared {
    /// The plugin serving `kind`/`key`. A miss names the plugin that *would* serve it
    /// (its manifest declares it) when that plugin is not ready: "plugin X is failed:
    /// why" helps more than "no such tool".
    fn owner(&self, kind: RegistrationKind, key: &str) -> Result<Owner, ErrorObject> {
        if let Some(found) = self.registry.owner(kind, key) {
            return Ok(found);
        }
        let declared_by = self
            .plugins
            .values()
            .find(|runtime| runtime.spec.claims(kind, key) == Some(true));
        if let Some(runtime) = declared_by
            && let Some((state, reason)) = self.registry.state_of(runtime.id())
            && state != PluginState::Ready
        {
            let reason = reason.unwrap_or_else(|| state.to_string());
            return Err(errors::unavailable(runtime.id(), state, &reason, None));
        }
        Err(errors::not_found(kind, key))
    }

    fn deadline(&self, plugin: &str, timeout: Option<Duration>) -> (Instant, Duration) {
        let budget = timeout.unwrap_or_else(|| {
            let ms = self
                .plugins
                .get(plugin)
                .map_or(30_000, |p| p.spec.launch.policy.timeouts.call_ms);
            Duration::from_millis(ms)
        });
        (Instant::now() + budget, budget)
    }

    pub(crate) async fn call_tool(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<ToolResult, ErrorObject> {
        let Owner {
            plugin,
            registration,
        } = self.owner(RegistrationKind::Tool, name)?;
        let Registration::Tool(tool) = &*registration else {
            unreachable!("owner() matched the kind")
        };
        let arguments = Value::Object(arguments);
        self.check_arguments(
            &plugin,
            &registration,
            &tool.name,
            &tool.input_schema,
            &arguments,
        )?;
        let Value::Object(arguments) = arguments else {
            unreachable!("built as an object above")
        };
        let request = ToolInvokeParams {
            name: name.to_owned(),
            arguments,
            context,
        };
        self.invoke::<ToolInvoke>(&plugin, &registration, request, timeout)
            .await
    }

    fn check_arguments(
        &self,
        plugin: &str,
        registration: &Arc<Registration>,
        tool: &str,
        schema: &Value,
        arguments: &Value,
    ) -> Result<(), ErrorObject> {
        let validator = {
            let mut cache = self
                .validators
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match cache.get(tool) {
                Some((compiled_for, validator)) if Arc::ptr_eq(compiled_for, registration) => {
                    validator.clone()
                }
                _ => {
                    // Admission already compiled it once, so this cannot fail in practice.
                    let validator = Arc::new(jsonschema::validator_for(schema).map_err(|e| {
                        ErrorObject::new(
                            ErrorCode::InternalError,
                            format!("tool `{tool}` of plugin `{plugin}` has an unusable inputSchema ({e}); the plugin's author must fix it"),
                        )
                    })?);
                    cache.insert(tool.to_owned(), (registration.clone(), validator.clone()));
                    validator
                }
            }
        };
        if validator.is_valid(arguments) {
            return Ok(());
        }
        let problems: Vec<Value> = validator
            .iter_errors(arguments)
            .take(20)
            .map(|e| json!({ "path": e.instance_path().to_string(), "message": e.to_string() }))
            .collect();
        let first = problems
            .first()
            .and_then(|problem| problem["message"].as_str())
            .unwrap_or_default()
            .to_owned();
        Err(ErrorObject::new(
            ErrorCode::InvalidParams,
            format!(
                "arguments for tool `{tool}` of plugin `{plugin}` do not match its inputSchema: {first}; the call was not sent"
            ),
        )
        .with_data(json!({ "errors": problems })))
    }

    pub(crate) async fn run_command(
        &self,
        text: &str,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Option<CommandResult>, ErrorObject> {
        let Some(body) = text.trim_start().strip_prefix('/') else {
            return Ok(None);
        };
        let (name, args) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
        let args = args.trim();
        if name.is_empty() {
            return Ok(None);
        }
        let Some((plugin, command)) = self.registry.command(name) else {
            return Ok(None);
        };
        if !args.is_empty() && !command.accepts_args {
            return Ok(None);
        }
        if command.require_auth && context.is_authorized_sender != Some(true) {
            return Err(ErrorObject::new(
                ErrorCode::Forbidden,
                format!(
                    "`/{}` is only for authorized senders",
                    command.name.to_lowercase()
                ),
            )
            .with_data(json!({ "reason": "the command requires an authorized sender" })));
        }
        let registration = Registration::Command(command.clone());
        let request = CommandRunParams {
            name: command.name.trim().to_lowercase(),
            args: (command.accepts_args && !args.is_empty()).then(|| args.to_owned()),
            command_body: text.to_owned(),
            context,
        };
        self.invoke::<CommandRun>(&plugin, &registration, request, timeout)
            .await
            .map(Some)
    }

    pub(crate) async fn call_method(
        &self,
        method: &str,
        params: Value,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Value, ErrorObject> {
        let Owner {
            plugin,
            registration,
        } = self.owner(RegistrationKind::GatewayMethod, method)?;
        let request = MethodCallParams {
            method: method.to_owned(),
            params,
            context,
        };
        self.invoke::<MethodCall>(&plugin, &registration, request, timeout)
            .await
    }

    pub(crate) async fn handle_http(
        &self,
        request: HttpRequest,
        gateway_authenticated: bool,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Option<HttpResponse>, ErrorObject> {
        let Some((plugin, route)) = self.registry.route(&request.path) else {
            return Ok(None);
        };
        if route.auth == RouteAuth::Gateway && !gateway_authenticated {
            return Err(ErrorObject::new(
                ErrorCode::Forbidden,
                format!(
                    "route `{}` of plugin `{plugin}` requires gateway authentication",
                    route.path
                ),
            )
            .with_data(json!({ "reason": "unauthenticated" })));
        }
        let registration = Registration::HttpRoute(route.clone());
        let params = HttpHandleParams {
            route: route.path,
            request,
            context,
        };
        self.invoke::<HttpHandle>(&plugin, &registration, params, timeout)
            .await
            .map(Some)
    }

    pub(crate) async fn run_hook(
        &self,
        event: &str,
        payload: Value,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> HookOutcome {
        let hooks = self.registry.hooks(event);
        let mut outcome = HookOutcome::default();
        let started = Instant::now();
        for (plugin, hook) in hooks {
            let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
            let request = HookRunParams {
                event: event.to_owned(),
                payload: payload.clone(),
                context: context.clone(),
            };
            let registration = Registration::Hook(hook.clone());
            let result = self
                .invoke::<HookRun>(&plugin, &registration, request, left)
                .await;
            let allow_prompt_injection = self
                .plugins
                .get(&plugin)
                .is_none_or(|p| p.spec.allow_prompt_injection);
            outcome.push(
                event,
                allow_prompt_injection,
                HookRunRecord {
                    plugin,
                    priority: hook.priority,
                    outcome: match result {
                        Ok(result) => HookRunOutcome::Result(result),
                        Err(error) => HookRunOutcome::Error(error),
                    },
                },
            );
        }
        outcome
    }

    /// Sends one typed call to `plugin`: see the module docs for the routing rules. The
    /// params are serialized straight into each attempt's line, with the time left as
    /// their `timeoutMs`, and the result is read straight from the answer.
    async fn invoke<M: RequestType>(
        &self,
        plugin: &str,
        registration: &Registration,
        mut params: M::Params,
        timeout: Option<Duration>,
    ) -> Result<M::Result, ErrorObject>
    where
        M::Params: Routed,
    {
        let method = M::METHOD;
        let runtime = self
            .plugins
            .get(plugin)
            .ok_or_else(|| errors::not_found(RegistrationKind::Tool, plugin))?;
        let (deadline, budget) = self.deadline(plugin, timeout);
        let mut replays_left = u8::from(registration.replay_safe());
        loop {
            let live = wait_live(runtime, deadline).await?;
            let _slot = runtime.gate.enter(plugin, deadline).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(errors::timeout(plugin, method, budget));
            }
            params.context_mut().timeout_ms =
                Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
            match live
                .peer
                .request::<M>(&params, CallOptions::timeout(left))
                .await
            {
                Ok(result) => return Ok(result),
                Err(CallError::Remote(error)) => return Err(error),
                Err(CallError::Timeout(_)) => return Err(errors::timeout(plugin, method, budget)),
                // The connection was gone before the request left: nothing happened, so
                // wait for the next incarnation like any call made during a restart.
                Err(CallError::NotSent(_)) => {}
                Err(CallError::Closed(_)) => {
                    let report = live.exit_report(EXIT_REPORT_WAIT.min(left)).await;
                    if replays_left == 0 {
                        return Err(errors::exited(plugin, report.as_deref()));
                    }
                    replays_left -= 1;
                    tracing::info!(
                        plugin,
                        method,
                        "sending a replay-safe call again after the plugin exited"
                    );
                }
                Err(CallError::TooLarge { size, limit }) => {
                    return Err(ErrorObject::new(
                        ErrorCode::MessageTooLarge,
                        format!("the `{method}` request to plugin `{plugin}` is {size} bytes, over its {limit}-byte limit"),
                    )
                    .with_data(json!({ "limit": limit, "size": size })));
                }
                Err(CallError::Decode(e)) => {
                    return Err(ErrorObject::new(
                        ErrorCode::InternalError,
                        format!(
                            "plugin `{plugin}` answered `{method}` with a malformed result: {e}"
                        ),
                    )
                    .with_data(json!({ "pluginId": plugin })));
                }
                Err(error) => {
                    return Err(ErrorObject::new(
                        ErrorCode::InternalError,
                        format!("calling `{method}` on plugin `{plugin}` failed: {error}"),
                    ));
                }
            }
        }
    }
}

/// The params of a call the supervisor routes: each carries the caller's context, whose
/// `timeoutMs` [`Shared::invoke`] sets to the time left before every attempt.
trait Routed: serde::Serialize {
    fn context_mut(&mut self) -> &mut CallContext;
}

macro_rules! routed {
    ($($params:ty),* $(,)?) => {
        $(impl Routed for $params {
            fn context_mut(&mut self) -> &mut CallContext {
                &mut self.context
            }
        })*
    };
}

routed!(
    ToolInvokeParams,
    CommandRunParams,
    MethodCallParams,
    HttpHandleParams,
    HookRunParams,
    ProviderCallParams,
    ChannelCallParams,
    ContextEngineCallParams,
);

/// The plugin's connection once it is ready, within `deadline`.
async fn wait_live(runtime: &PluginRuntime, deadline: Instant) -> Result<Live, ErrorObject> {
    let plugin = runtime.id();
    let mut conn = runtime.conn.subscribe();
    loop {
        let down = match &*conn.borrow_and_update() {
            Conn::Up(live) => return Ok(live.clone()),
            Conn::Down(down) => down.clone(),
        };
        let now = Instant::now();
        match down.state {
            PluginState::Failed | PluginState::Stopped | PluginState::Stopping => {
                return Err(errors::unavailable(plugin, down.state, &down.reason, None));
            }
            PluginState::Restarting if down.retry_at.is_some_and(|at| at > deadline) => {
                let after = down.retry_at.map(|at| at.saturating_duration_since(now));
                return Err(errors::unavailable(plugin, down.state, &down.reason, after));
            }
            _ => {}
        }
        if tokio::time::timeout_at(deadline.into(), conn.changed())
            .await
            .is_err()
        {
            let after = down
                .retry_at
                .map(|at| at.saturating_duration_since(Instant::now()));
            return Err(errors::unavailable(
                plugin,
                down.state,
                &format!("{}; not ready before the call's deadline", down.reason),
                after,
            ));
        }
    }
}
