//! Routing a [`Call`] to the plugin that owns what it names.
//!
//! The supervisor finds the owner in the registry, waits for the owner to be ready
//! (within the call's deadline: if the plugin is restarting and will not be back in
//! time, the call fails at once with `-32003` and `retryAfterMs`), takes one of the
//! owner's call slots (or a place in its bounded queue, else `-32009`), and sends the
//! request with the time left as the call context's `timeoutMs`. When the deadline
//! passes the plugin gets `$/cancel` and the caller `-32001`. When the plugin dies
//! mid-call the caller gets `-32010` with the exit status and the last stderr lines, at
//! once. A call is sent again only if its registration is replay-safe, once, within the
//! same deadline.
//!
//! Every failure is an [`ErrorObject`] with a code of docs/protocol.md §11, so a gateway
//! can pass it on as it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use outpost_protocol::methods::{
    CallContext, ChannelCall, ChannelCallParams, CommandRun, CommandRunParams, ContextEngineCall,
    ContextEngineCallParams, HookRun, HookRunParams, HttpHandle, HttpHandleParams, HttpRequest,
    MethodCall, MethodCallParams, ProviderCall, ProviderCallParams, ToolInvoke, ToolInvokeParams,
};
use outpost_protocol::peer::{CallError, CallOptions};
use outpost_protocol::{
    ErrorCode, ErrorObject, HookRegistration, Registration, RegistrationKind, RequestType,
};
use serde_json::{Map, Value, json};

use super::call::{Answer, Call, Target};
use super::hooks::{self, HookOutcome, HookRun as HookRunRecord, HookRunOutcome};
use super::plugin::{Conn, Down, Live, Origin, PluginRuntime, errors};
use super::reason::{ExitCause, Reason};
use super::registry::{Owner, PluginState};
use super::shared::Shared;

/// How long a caller whose call was cut off waits for the plugin's exit status.
const EXIT_REPORT_WAIT: Duration = Duration::from_secs(2);

/// Where `arguments` break `validator`, at most 20 of them (none: they match).
fn schema_problems(validator: &jsonschema::Validator, arguments: &Value) -> Vec<Value> {
    if validator.is_valid(arguments) {
        return Vec::new();
    }
    validator
        .iter_errors(arguments)
        .take(20)
        .map(|e| json!({ "path": e.instance_path().to_string(), "message": e.to_string() }))
        .collect()
}

/// Whether `value` is large enough (64 KiB of text, or 4,096 values) that checking it
/// against a schema could take long: looked at up to that much, no further.
fn is_large(value: &Value) -> bool {
    const TEXT: usize = 64 * 1024;
    const VALUES: usize = 4096;
    let (mut text, mut values) = (0_usize, 0_usize);
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        values += 1;
        match value {
            Value::String(s) => text += s.len(),
            Value::Array(items) => pending.extend(items),
            Value::Object(members) => {
                for (key, member) in members {
                    text += key.len();
                    pending.push(member);
                }
            }
            _ => {}
        }
        if text > TEXT || values > VALUES {
            return true;
        }
    }
    false
}

impl Shared {
    /// Routes one call; see the module docs.
    pub(crate) async fn call(&self, call: Call) -> Result<Answer, ErrorObject> {
        let Call {
            target,
            context,
            timeout,
            cancel,
        } = call;
        let routed = self.route(target, context, timeout);
        match cancel {
            None => routed.await,
            Some(token) => tokio::select! {
                // Dropping `routed` sends `$/cancel` for a request in flight.
                () = token.cancelled() => Err(ErrorObject::new(
                    ErrorCode::Cancelled,
                    "the caller cancelled the call",
                )),
                answer = routed => answer,
            },
        }
    }

    async fn route(
        &self,
        target: Target,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<Answer, ErrorObject> {
        match target {
            Target::Tool { name, arguments } => self
                .call_tool(name, arguments, context, timeout)
                .await
                .map(Answer::Tool),
            Target::Command { text } => self
                .run_command(&text, context, timeout)
                .await
                .map(Answer::Command),
            Target::Method {
                method,
                params,
                origin,
            } => {
                let owner = self
                    .route_to(RegistrationKind::GatewayMethod, &method, timeout)
                    .await?;
                let request = MethodCallParams {
                    method,
                    params,
                    context,
                };
                self.invoke_from::<MethodCall>(&owner, request, timeout, origin)
                    .await
                    .map(Answer::Value)
            }
            Target::Hook { event, payload } => Ok(Answer::Hook(
                self.run_hook(&event, &payload, context, timeout).await,
            )),
            Target::Http {
                request,
                gateway_authenticated,
            } => self
                .handle_http(request, gateway_authenticated, context, timeout)
                .await
                .map(Answer::Http),
            Target::Provider {
                capability,
                id,
                operation,
                params,
            } => {
                let owner = self
                    .route_to(
                        RegistrationKind::Provider,
                        &format!("{capability}:{id}"),
                        timeout,
                    )
                    .await?;
                let request = ProviderCallParams {
                    capability,
                    id,
                    operation,
                    params,
                    context,
                };
                self.invoke::<ProviderCall>(&owner, request, timeout)
                    .await
                    .map(Answer::Value)
            }
            Target::Channel {
                id,
                operation,
                params,
            } => {
                let owner = self
                    .route_to(RegistrationKind::Channel, &id, timeout)
                    .await?;
                let request = ChannelCallParams {
                    id,
                    operation,
                    params,
                    context,
                };
                self.invoke::<ChannelCall>(&owner, request, timeout)
                    .await
                    .map(Answer::Value)
            }
            Target::ContextEngine {
                id,
                operation,
                params,
            } => {
                let owner = self
                    .route_to(RegistrationKind::ContextEngine, &id, timeout)
                    .await?;
                let request = ContextEngineCallParams {
                    id,
                    operation,
                    params,
                    context,
                };
                self.invoke::<ContextEngineCall>(&owner, request, timeout)
                    .await
                    .map(Answer::Value)
            }
        }
    }

    /// Counts a call that reached no plugin, and passes its error on.
    fn refused(&self, kind: RegistrationKind, error: ErrorObject) -> ErrorObject {
        self.refusals.record(kind, error.code);
        error
    }

    /// [`Shared::owner`], counting a miss as a refusal. While nobody serves `key` and a
    /// plugin that declares it is starting, the call waits for an owner, until its
    /// deadline: a call made as `serve` starts is served, not refused, and a plugin that
    /// declares another's names and starts slowly (or never) holds nobody's calls up
    /// beyond their deadline.
    async fn route_to(
        &self,
        kind: RegistrationKind,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<Owner, ErrorObject> {
        // The common case, with nothing to watch: an owner, or nobody on the way.
        match self.owner(kind, key) {
            Ok(owner) => return Ok(owner),
            Err(error) if self.declared_by_starting(kind, key).is_none() => {
                return Err(self.refused(kind, error));
            }
            Err(_) => {}
        }
        // Watched before the next look, so that no change in between is missed.
        let mut changes = self.registry.watch();
        let mut deadline = None;
        loop {
            let error = match self.owner(kind, key) {
                Ok(owner) => return Ok(owner),
                Err(error) => error,
            };
            let Some(budget) = self.declared_by_starting(kind, key) else {
                return Err(self.refused(kind, error));
            };
            let deadline =
                *deadline.get_or_insert_with(|| Instant::now() + timeout.unwrap_or(budget));
            match tokio::time::timeout_at(deadline.into(), changes.recv()).await {
                Ok(Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) | Err(_) => {
                    return Err(self.refused(kind, error));
                }
            }
        }
    }

    /// When plugins that declare `key` are starting, the longest call deadline among
    /// them: how long a call without one of its own may wait for an owner. `None` when
    /// none is starting (nothing is on its way).
    fn declared_by_starting(&self, kind: RegistrationKind, key: &str) -> Option<Duration> {
        let mut budget = None;
        for runtime in self.plugins() {
            if runtime.spec.claims(kind, key) != Some(true) {
                continue;
            }
            if let Some((PluginState::Starting, _)) = self.registry.state_of(runtime.id()) {
                let call = Duration::from_millis(runtime.spec.launch.policy.timeouts.call_ms);
                budget = Some(budget.map_or(call, |b: Duration| b.max(call)));
            }
        }
        budget
    }

    /// The plugin serving `kind`/`key`. A miss names the plugin that *would* serve it
    /// (its manifest declares it) when that plugin is not ready: "plugin X is failed:
    /// why" helps more than "no such tool".
    pub(crate) fn owner(&self, kind: RegistrationKind, key: &str) -> Result<Owner, ErrorObject> {
        if let Some(found) = self.registry.owner(kind, key) {
            return Ok(found);
        }
        let declared_by = self
            .plugins()
            .into_iter()
            .find(|runtime| runtime.spec.claims(kind, key) == Some(true));
        if let Some(runtime) = declared_by
            && let Some((state, reason)) = self.registry.state_of(runtime.id())
            && state != PluginState::Ready
        {
            let reason = reason.unwrap_or(super::reason::Reason::Starting);
            return Err(errors::unavailable(runtime.id(), state, &reason, None));
        }
        Err(errors::not_found(kind, key))
    }

    async fn call_tool(
        &self,
        name: String,
        arguments: Map<String, Value>,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<outpost_protocol::methods::ToolResult, ErrorObject> {
        let owner = self
            .route_to(RegistrationKind::Tool, &name, timeout)
            .await?;
        let Registration::Tool(tool) = &*owner.registration else {
            unreachable!("owner() matched the kind")
        };
        let arguments = self
            .check_arguments(
                &owner.plugin,
                &owner.registration,
                &tool.name,
                &tool.input_schema,
                Value::Object(arguments),
            )
            .await
            .map_err(|error| self.refused(RegistrationKind::Tool, error))?;
        let Value::Object(arguments) = arguments else {
            unreachable!("built as an object above")
        };
        let request = ToolInvokeParams {
            name,
            arguments,
            context,
        };
        self.invoke::<ToolInvoke>(&owner, request, timeout).await
    }

    /// The arguments back when they match the tool's `inputSchema`. Large arguments are
    /// checked on the blocking pool: a pathological schema (nested patterns over
    /// megabytes of text) must not hold up the runtime's threads, and with them every
    /// other plugin's calls.
    async fn check_arguments(
        &self,
        plugin: &str,
        registration: &Arc<Registration>,
        tool: &str,
        schema: &Value,
        arguments: Value,
    ) -> Result<Value, ErrorObject> {
        // Admission already compiled it once, so this cannot fail in practice.
        let validator = self
            .schemas
            .validator(tool, registration, schema)
            .map_err(|e| {
                ErrorObject::new(
                    ErrorCode::InternalError,
                    format!("tool `{tool}` of plugin `{plugin}` has an unusable inputSchema ({e}); the plugin's author must fix it"),
                )
            })?;
        let (arguments, problems) = if is_large(&arguments) {
            tokio::task::spawn_blocking(move || {
                let problems = schema_problems(&validator, &arguments);
                (arguments, problems)
            })
            .await
            .map_err(|e| {
                ErrorObject::new(
                    ErrorCode::InternalError,
                    format!("checking the arguments of tool `{tool}` failed: {e}"),
                )
            })?
        } else {
            let problems = schema_problems(&validator, &arguments);
            (arguments, problems)
        };
        if problems.is_empty() {
            return Ok(arguments);
        }
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

    async fn run_command(
        &self,
        text: &str,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<outpost_protocol::methods::CommandResult, ErrorObject> {
        let unmatched = || {
            ErrorObject::new(
                ErrorCode::NotFound,
                format!(
                    "no plugin command matches `{text}`; the message is the gateway's to handle"
                ),
            )
            .with_data(json!({ "kind": RegistrationKind::Command, "name": text }))
        };
        let Some(body) = text.trim_start().strip_prefix('/') else {
            return Err(unmatched());
        };
        let (name, args) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
        let args = args.trim();
        if name.is_empty() {
            return Err(unmatched());
        }
        let Some((plugin, command)) = self.registry.command(name) else {
            return Err(unmatched());
        };
        if !args.is_empty() && !command.accepts_args {
            return Err(unmatched());
        }
        if command.require_auth && context.is_authorized_sender != Some(true) {
            return Err(self.refused(
                RegistrationKind::Command,
                ErrorObject::new(
                    ErrorCode::Forbidden,
                    format!(
                        "`/{}` is only for authorized senders",
                        command.name.to_lowercase()
                    ),
                )
                .with_data(json!({ "reason": "the command requires an authorized sender" })),
            ));
        }
        let request = CommandRunParams {
            name: command.name.trim().to_lowercase(),
            args: (command.accepts_args && !args.is_empty()).then(|| args.to_owned()),
            command_body: text.to_owned(),
            context,
        };
        let owner = Owner {
            plugin,
            registration: Arc::new(Registration::Command(command)),
        };
        self.invoke::<CommandRun>(&owner, request, timeout).await
    }

    async fn handle_http(
        &self,
        request: HttpRequest,
        gateway_authenticated: bool,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> Result<outpost_protocol::methods::HttpResponse, ErrorObject> {
        let Some((plugin, route)) = self.registry.route(&request.path) else {
            return Err(self.refused(
                RegistrationKind::HttpRoute,
                ErrorObject::new(
                    ErrorCode::NotFound,
                    format!("no plugin route matches `{}`", request.path),
                )
                .with_data(json!({ "kind": RegistrationKind::HttpRoute, "name": request.path })),
            ));
        };
        if route.auth == outpost_protocol::RouteAuth::Gateway && !gateway_authenticated {
            return Err(self.refused(
                RegistrationKind::HttpRoute,
                ErrorObject::new(
                    ErrorCode::Forbidden,
                    format!(
                        "route `{}` of plugin `{plugin}` requires gateway authentication",
                        route.path
                    ),
                )
                .with_data(json!({ "reason": "unauthenticated" })),
            ));
        }
        let params = HttpHandleParams {
            route: route.path.clone(),
            request,
            context,
        };
        let owner = Owner {
            plugin,
            registration: Arc::new(Registration::HttpRoute(route)),
        };
        self.invoke::<HttpHandle>(&owner, params, timeout).await
    }

    /// Runs the handlers of `event` as its rule says ([`super::hooks`]): observed
    /// events all at once, modifying and claiming events one after another, each
    /// handler with the payload as the ones before changed it, until a terminal result
    /// or a claim. Each handler has its own budget, within the call's.
    async fn run_hook(
        &self,
        event: &str,
        payload: &Value,
        context: CallContext,
        timeout: Option<Duration>,
    ) -> HookOutcome {
        let rule = hooks::rule(event);
        let handlers: Vec<(String, HookRegistration)> = self
            .registry
            .hooks(event)
            .into_iter()
            .filter(|(_, hook)| hooks::matches(hook, payload))
            .collect();
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let mut outcome = HookOutcome::default();
        if rule.kind == hooks::Kind::Observe {
            let runs = handlers.into_iter().map(|(plugin, hook)| {
                self.run_handler(event, payload.clone(), plugin, hook, &context, deadline)
            });
            for run in futures_util::future::join_all(runs).await {
                outcome.push(event, rule, &mut Value::Null, true, run);
            }
            return outcome;
        }
        let mut payload = payload.clone();
        for (plugin, hook) in handlers {
            let allow_prompt_injection = self
                .plugin(&plugin)
                .is_none_or(|p| p.spec.allow_prompt_injection);
            let run = self
                .run_handler(event, payload.clone(), plugin, hook, &context, deadline)
                .await;
            if outcome.push(event, rule, &mut payload, allow_prompt_injection, run) {
                break;
            }
        }
        outcome
    }

    /// One hook handler: its payload without conversation content unless its plugin
    /// has conversation access, within its budget and the call's deadline.
    async fn run_handler(
        &self,
        event: &str,
        mut payload: Value,
        plugin: String,
        hook: HookRegistration,
        context: &CallContext,
        deadline: Option<Instant>,
    ) -> HookRunRecord {
        let budget = self.plugin(&plugin).and_then(|runtime| {
            let spec = &runtime.spec;
            if !spec.hooks.conversation_access(spec.bundled) {
                hooks::withhold_conversation(&mut payload);
            }
            hooks::budget_ms(hooks::rule(event), &hook, &spec.hooks).map(Duration::from_millis)
        });
        let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            // Earlier handlers used the whole deadline up: this one is not sent, and
            // neither blamed for a timeout nor counted as one in its plugin's metrics.
            let error = ErrorObject::new(
                ErrorCode::Timeout,
                format!(
                    "the `{event}` hook of plugin `{plugin}` was not run: the event's deadline had passed before its turn (earlier handlers used it up)"
                ),
            )
            .with_data(json!({"pluginId": plugin, "notSent": true}));
            return HookRunRecord {
                plugin,
                id: hook.id.clone(),
                priority: hook.priority,
                outcome: HookRunOutcome::Error(error),
            };
        }
        let timeout = match (budget, left) {
            (Some(budget), Some(left)) => Some(budget.min(left)),
            (budget, left) => budget.or(left),
        };
        let request = HookRunParams {
            event: event.to_owned(),
            id: hook.id.clone(),
            payload,
            context: context.clone(),
        };
        let (priority, id) = (hook.priority, hook.id.clone());
        let owner = Owner {
            plugin,
            registration: Arc::new(Registration::Hook(hook)),
        };
        let result = self.invoke::<HookRun>(&owner, request, timeout).await;
        HookRunRecord {
            plugin: owner.plugin,
            id,
            priority,
            outcome: match result {
                Ok(result) => HookRunOutcome::Result(result),
                Err(error) => HookRunOutcome::Error(error),
            },
        }
    }

    /// Sends one typed call from the gateway to the owner (see the module docs for the
    /// routing rules), and counts its outcome and latency in the owner's metrics.
    async fn invoke<M: RequestType>(
        &self,
        owner: &Owner,
        params: M::Params,
        timeout: Option<Duration>,
    ) -> Result<M::Result, ErrorObject>
    where
        M::Params: Routed,
    {
        self.invoke_from::<M>(owner, params, timeout, Origin::Gateway)
            .await
    }

    /// [`Shared::invoke`] for a call from `origin`.
    async fn invoke_from<M: RequestType>(
        &self,
        owner: &Owner,
        params: M::Params,
        timeout: Option<Duration>,
        origin: Origin,
    ) -> Result<M::Result, ErrorObject>
    where
        M::Params: Routed,
    {
        let kind = owner.registration.kind();
        let Some(runtime) = self.plugin(&owner.plugin) else {
            return Err(self.refused(kind, errors::not_found(kind, &owner.registration.key())));
        };
        let mut counted = Counted {
            metrics: &runtime.metrics,
            kind,
            begin: Instant::now(),
            outcome: Err(ErrorCode::Cancelled),
        };
        let outcome = self
            .attempt::<M>(owner, &runtime, params, timeout, origin)
            .await;
        counted.outcome = outcome.as_ref().map(|_| ()).map_err(|error| error.code);
        outcome
    }

    /// [`Shared::invoke`] without the counting. The params are serialized straight
    /// into each attempt's line, with the time left as their `timeoutMs`, and the result
    /// is read straight from the answer.
    async fn attempt<M: RequestType>(
        &self,
        owner: &Owner,
        runtime: &PluginRuntime,
        mut params: M::Params,
        timeout: Option<Duration>,
        origin: Origin,
    ) -> Result<M::Result, ErrorObject>
    where
        M::Params: Routed,
    {
        let method = M::METHOD;
        let plugin = owner.plugin.as_str();
        let budget = timeout
            .unwrap_or_else(|| Duration::from_millis(runtime.spec.launch.policy.timeouts.call_ms));
        let deadline = Instant::now() + budget;
        let mut replays_left = u8::from(owner.registration.replay_safe());
        loop {
            let live = wait_live(runtime, deadline).await?;
            let _slot = runtime.gate.enter(plugin, deadline, budget, origin).await?;
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
                Err(CallError::Unreadable {
                    problem,
                    timeout: Some(_),
                }) => return Err(errors::unreadable(plugin, method, budget, &problem)),
                Err(CallError::Unreadable {
                    problem,
                    timeout: None,
                }) => return Err(errors::unreadable_answer(plugin, method, &problem)),
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

/// Counts one call in its plugin's metrics when it ends, however it ends: a call whose
/// caller dropped it (a client that went away, a `select!` that chose another branch)
/// is counted as `cancelled`, with the time it ran.
struct Counted<'a> {
    metrics: &'a super::metrics::PluginMetrics,
    kind: RegistrationKind,
    begin: Instant,
    outcome: Result<(), ErrorCode>,
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.metrics
            .record(self.kind, self.outcome, self.begin.elapsed());
    }
}

/// The params of a call the supervisor routes: each carries the caller's context, whose
/// `timeoutMs` [`Shared::invoke`] sets to the time left before every attempt.
pub(crate) trait Routed: serde::Serialize {
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
///
/// A connection that has already ended is not handed out: until the runner has seen
/// the exit and says so, the call waits like any call during a restart (handing it out
/// made every caller retry in a hot loop, starving the runner that would end it).
async fn wait_live(runtime: &PluginRuntime, deadline: Instant) -> Result<Live, ErrorObject> {
    let plugin = runtime.id();
    let mut conn = runtime.conn.subscribe();
    let mut place = None;
    loop {
        let down = match &*conn.borrow_and_update() {
            Conn::Up(live) if !live.peer.is_closed() => return Ok(live.clone()),
            Conn::Up(live) => Down {
                state: PluginState::Restarting,
                reason: Reason::Exiting {
                    cause: ExitCause::ConnectionLost {
                        detail: live
                            .peer
                            .close_reason()
                            .map_or_else(|| "its connection ended".to_owned(), |r| r.to_string()),
                    },
                },
                retry_at: None,
            },
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
        if place.is_none() {
            place = runtime.gate.queue();
            if place.is_none() {
                let after = down.retry_at.map(|at| at.saturating_duration_since(now));
                let note = format!(
                    "; {} calls already wait for it, the most it queues (limits.maxQueuedRequests)",
                    runtime.gate.max_queued()
                );
                return Err(errors::unavailable_because(
                    plugin,
                    down.state,
                    &down.reason,
                    &note,
                    after,
                ));
            }
        }
        if tokio::time::timeout_at(deadline.into(), conn.changed())
            .await
            .is_err()
        {
            let after = down
                .retry_at
                .map(|at| at.saturating_duration_since(Instant::now()));
            return Err(errors::unavailable_because(
                plugin,
                down.state,
                &down.reason,
                "; not ready before the call's deadline",
                after,
            ));
        }
    }
}

#[cfg(test)]
mod tests {

    use outpost_protocol::peer::{self, PeerConfig};
    use tokio::sync::watch;

    use super::*;
    use crate::data::metrics::PluginMetrics;
    use crate::launch::LaunchSpec;
    use crate::spec::PluginSpec;

    #[test]
    fn large_arguments_are_told_from_the_rest_without_a_full_walk() {
        assert!(!is_large(&json!({"text": "a few words", "n": [1, 2, 3]})));
        assert!(is_large(&json!({"text": "x".repeat(70 * 1024)})));
        assert!(is_large(&json!({"items": vec![0; 5000]})));
    }

    #[tokio::test]
    async fn a_connection_that_ended_is_not_handed_out() {
        // Handed out, it made every caller resend at once in a hot loop until the
        // runner noticed the exit: with two cores, the runner hardly ever ran.
        let spec = PluginSpec::new("gone", LaunchSpec::new("/bin/true", "/"));
        let (runtime, _orders) = PluginRuntime::for_spec(spec, Arc::new(PluginMetrics::new()));
        let (ours, _theirs) = tokio::io::duplex(64);
        let (reader, writer) = tokio::io::split(ours);
        let (peer, _incoming) = peer::connect(reader, writer, PeerConfig::default());
        peer.close();
        runtime.conn.send_replace(Conn::Up(Live {
            peer,
            exit: watch::channel(None).1,
        }));
        let deadline = Instant::now() + Duration::from_millis(100);
        let error = wait_live(&runtime, deadline).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::Unavailable, "{error:?}");
        assert!(error.message.contains("its connection ended"), "{error:?}");
    }
}
