//! The gateway API's methods (docs/gateway-api.md lists each with examples).
//!
//! Params are an object, read strictly: an unknown member is an error that names it, so
//! a typo never goes unnoticed (the two unsubscribe methods also take jsonrpsee's
//! positional `[id]`). Errors are JSON-RPC errors with the codes of docs/protocol.md §11
//! (a call's error is the plugin's or the supervisor's, passed on as it is), plus the
//! API's own, from `-32020` on: a reload that changed nothing, and the limits of
//! [`super`]. [`Explained`] sees every request, alone or in a batch, before jsonrpsee
//! does.

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::server::middleware::rpc::RpcServiceT;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{Extensions, PendingSubscriptionSink, RpcModule, SubscriptionMessage};
use outpost_protocol::methods::CallContext;
use outpost_protocol::{ErrorCode, ErrorObject};
use outpost_supervisor::control::Status;
use outpost_supervisor::{Call, CallKind, ControlError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Connection;
use super::events::{self, Message};
use super::gateway::OfferParams;
use crate::server::State;

/// A reload that changed nothing: the config does not load or has errors.
pub(crate) const RELOAD_REFUSED: i32 = -32020;

/// A subscription over [`super::MAX_SUBSCRIPTIONS`] on one WebSocket session.
pub(crate) const TOO_MANY_SUBSCRIPTIONS: i32 = -32021;

/// An HTTP request body over [`super::MAX_REQUEST_BYTES`].
pub(crate) const REQUEST_TOO_LARGE: i32 = -32022;

/// A response (or a batch's responses together) over [`super::MAX_RESPONSE_BYTES`].
pub(crate) const RESPONSE_TOO_LARGE: i32 = -32023;

/// A batch of more than [`super::MAX_BATCH`] requests.
pub(crate) const BATCH_TOO_LARGE: i32 = -32024;

/// The longest deadline a client may give a call.
const MAX_CALL_TIMEOUT: Duration = Duration::from_hours(1);

/// Every method of the API.
pub(crate) fn module(state: Arc<State>) -> jsonrpsee::Methods {
    let mut module = RpcModule::from_arc(state);
    register(&mut module).expect("method names are unique");
    module.into()
}

fn register(module: &mut RpcModule<State>) -> Result<(), jsonrpsee::core::RegisterMethodError> {
    module.register_method("server.info", |params, state, _| {
        read::<Empty>("server.info", &params, "{}")?;
        Ok::<_, ErrorObjectOwned>(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": outpost_protocol::PROTOCOL_VERSION,
            "pid": std::process::id(),
            "configPath": state.config_path,
            "uptimeMs": state.uptime_ms(),
            "run": state.run,
        }))
    })?;

    module.register_method("plugins.list", |params, state, _| {
        read::<Empty>("plugins.list", &params, "{}")?;
        Ok::<_, ErrorObjectOwned>(json!({ "plugins": state.plugin_rows() }))
    })?;

    module.register_method("plugins.inspect", |params, state, _| {
        let Id { id } = read("plugins.inspect", &params, ID_USAGE)?;
        state.inspect(&id).ok_or_else(|| unknown_plugin(state, &id))
    })?;

    module.register_async_method("plugins.restart", |params, state, _| async move {
        order(&state, "plugins.restart", &params, Order::Restart).await
    })?;
    module.register_async_method("plugins.stop", |params, state, _| async move {
        order(&state, "plugins.stop", &params, Order::Stop).await
    })?;
    module.register_async_method("plugins.start", |params, state, _| async move {
        order(&state, "plugins.start", &params, Order::Start).await
    })?;

    module.register_method("registry.snapshot", |params, state, _| {
        read::<Empty>("registry.snapshot", &params, "{}")?;
        let mut snapshot =
            serde_json::to_value(state.supervisor.snapshot()).expect("snapshots serialize");
        snapshot["run"] = json!(state.run);
        Ok::<_, ErrorObjectOwned>(snapshot)
    })?;

    module.register_subscription(
        "registry.subscribe",
        "registry.event",
        "registry.unsubscribe",
        |params, pending, state, _| async move { subscribe_registry(&params, pending, &state).await },
    )?;

    module.register_async_method("call", |params, state, extensions| async move {
        call(&state, &params, &extensions).await
    })?;

    module.register_method("call.cancel", |params, state, _| {
        let CallId { call_id } = read(
            "call.cancel",
            &params,
            "{\"callId\": \"<the callId given to call>\"}",
        )?;
        Ok::<_, ErrorObjectOwned>(json!({ "cancelled": state.cancel_call(&call_id) }))
    })?;

    module.register_subscription(
        "gateway.offer",
        "gateway.request",
        "gateway.withdraw",
        |params, pending, state, _| async move { offer(&params, pending, &state).await },
    )?;

    module.register_method("gateway.answer", |params, state, _| {
        let answer: Answer = read(
            "gateway.answer",
            &params,
            "{\"requestId\": 7, \"result\": ...} or {\"requestId\": 7, \"error\": {\"code\": -32000, \"message\": \"...\"}}",
        )?;
        let outcome = match (answer.result, answer.error) {
            (Some(result), None) => Ok(result),
            (None, Some(error)) => Err(error),
            _ => {
                return Err(invalid(
                    "gateway.answer",
                    "give exactly one of `result` and `error`",
                    "{\"requestId\": 7, \"result\": ...}",
                ));
            }
        };
        if state.gateway.answer(answer.request_id, outcome) {
            Ok(json!({ "accepted": true }))
        } else {
            Err(ErrorObjectOwned::owned(
                code(ErrorCode::InvalidParams),
                format!(
                    "no gateway request {} is waiting: it was answered, cancelled or timed out",
                    answer.request_id
                ),
                Some(json!({ "requestId": answer.request_id })),
            ))
        }
    })?;

    module.register_async_method("config.reload", |params, state, _| async move {
        read::<Empty>("config.reload", &params, "{}")?;
        match state.reload().await {
            Ok(reloaded) => {
                tracing::info!(
                    started = ?reloaded.applied.started,
                    restarted = ?reloaded.applied.restarted,
                    stopped = ?reloaded.applied.stopped,
                    retried = ?reloaded.retried,
                    "config reloaded through the API"
                );
                Ok(serde_json::to_value(reloaded).expect("reload reports serialize"))
            }
            Err(error) => {
                tracing::error!("{error}");
                Err(ErrorObjectOwned::owned(
                    RELOAD_REFUSED,
                    error.to_string(),
                    Some(json!({ "problems": error.problems() })),
                ))
            }
        }
    })?;
    Ok(())
}

const ID_USAGE: &str = "{\"id\": \"<plugin id>\"}";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Id {
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CallId {
    call_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Answer {
    request_id: u64,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    error: Option<ErrorObject>,
}

/// `result: null` is a result (`null`), not an absent one.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CallParams {
    kind: CallKind,
    name: String,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    operation: Option<String>,
    /// Checked member by member ([`context`]) before it becomes a [`CallContext`].
    #[serde(default)]
    context: Option<Value>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    gateway_authenticated: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Since {
    #[serde(default)]
    since: Option<u64>,
    /// The run `since` was taken in (`server.info`'s `run`).
    #[serde(default)]
    run: Option<String>,
}

/// The params of `method`, read strictly. Absent params read as `{}`.
fn read<T: DeserializeOwned>(
    method: &str,
    params: &Params<'_>,
    usage: &str,
) -> Result<T, ErrorObjectOwned> {
    let text = params.as_str().unwrap_or("{}");
    // Straight into `T` when the params are an object (the usual case)...
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| invalid(method, &e.to_string(), usage));
    }
    // ...else say what they are.
    let value: Value = serde_json::from_str(text)
        .map_err(|e| invalid(method, &format!("the params are not JSON: {e}"), usage))?;
    Err(invalid(
        method,
        &format!("params must be an object, not {}", describe(&value)),
        usage,
    ))
}

fn invalid(method: &str, problem: &str, usage: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        code(ErrorCode::InvalidParams),
        format!("invalid params for `{method}`: {problem}; expected {usage}"),
        None::<()>,
    )
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array (positional params are not accepted)",
        Value::Object(_) => "an object",
    }
}

/// The supervisor's error as the API's, code and data kept.
fn rpc(error: ErrorObject) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code(error.code), error.message, error.data)
}

/// A protocol error code as jsonrpsee takes it.
fn code(code: ErrorCode) -> i32 {
    i32::try_from(code.code()).unwrap_or(-32603)
}

/// No supervised plugin `id`: whether discovery knows it (and why it does not run), or
/// not; and which plugins run here.
fn unknown_plugin(state: &State, id: &str) -> ErrorObjectOwned {
    let running = state.supervised_ids();
    let running = if running.is_empty() {
        "none".to_owned()
    } else {
        running.join(", ")
    };
    match state.discovered(id) {
        Some(found) => {
            let advice = match (found.status, &found.not_runnable) {
                (Status::Disabled, _) => {
                    "enable it in the config (the reason says which setting turned it off), then `outpost reload`".to_owned()
                }
                (Status::Blocked, _) => {
                    "a safety gate refused it: fix what the reason says, then `outpost reload`".to_owned()
                }
                (Status::Invalid, _) => format!(
                    "fix plugins.entries.{id}.config to match its configSchema, then `outpost reload`"
                ),
                (Status::Missing, _) => {
                    "the config names it but discovery did not find it: fix plugins.load.paths (or install it), then `outpost reload`".to_owned()
                }
                (Status::Error, _) => {
                    "`outpost plugins doctor` lists what is broken; fix it, then `outpost reload`".to_owned()
                }
                (_, Some(why)) => format!("it cannot run out of process ({why})"),
                _ => "`outpost reload` starts it".to_owned(),
            };
            ErrorObjectOwned::owned(
                code(ErrorCode::NotFound),
                format!(
                    "plugin `{id}` is discovered but not supervised here: it is {} ({}); {advice}; running here: {running}",
                    found.status, found.reason
                ),
                Some(json!({
                    "kind": "plugin",
                    "name": id,
                    "status": found.status.as_str(),
                    "reason": found.reason,
                })),
            )
        }
        None => ErrorObjectOwned::owned(
            code(ErrorCode::NotFound),
            format!(
                "no plugin `{id}`: the config's discovery does not find it and the supervisor does not run it; running here: {running}"
            ),
            Some(json!({ "kind": "plugin", "name": id })),
        ),
    }
}

/// A reason as everywhere else in the API: `{kind, message, ...details}`.
fn reason_json(reason: &outpost_supervisor::Reason) -> Value {
    let mut value = serde_json::to_value(reason).expect("reasons serialize");
    if let Value::Object(fields) = &mut value {
        fields.insert("message".into(), Value::String(reason.to_string()));
    }
    value
}

#[derive(Clone, Copy)]
enum Order {
    Restart,
    Stop,
    Start,
}

async fn order(
    state: &State,
    method: &str,
    params: &Params<'_>,
    order: Order,
) -> Result<Value, ErrorObjectOwned> {
    let Id { id } = read(method, params, ID_USAGE)?;
    let supervisor = &state.supervisor;
    let outcome = match order {
        Order::Restart => supervisor.restart_plugin(&id).await,
        Order::Stop => supervisor.stop_plugin(&id).await,
        Order::Start => supervisor.start_plugin(&id).await,
    };
    match outcome {
        Ok(()) => {
            let (state_now, reason) = supervisor.state(&id).unzip();
            Ok(json!({
                "id": id,
                "state": state_now,
                "reason": reason.flatten().as_ref().map(reason_json),
            }))
        }
        Err(ControlError::UnknownPlugin(_)) => Err(unknown_plugin(state, &id)),
        Err(error) => Err(ErrorObjectOwned::owned(
            code(ErrorCode::Unavailable),
            error.to_string(),
            Some(json!({ "pluginId": id })),
        )),
    }
}

/// `call`: one call into a plugin, cancelled when the client goes away or cancels it.
async fn call(
    state: &State,
    params: &Params<'_>,
    extensions: &Extensions,
) -> Result<outpost_supervisor::Answer, ErrorObjectOwned> {
    const USAGE: &str = "{\"kind\": \"tool\", \"name\": \"word_count\", \"args\": {...}, \"context\"?: {...}, \"timeoutMs\"?: 5000, \"callId\"?: \"...\", \"operation\"?: \"...\"}";
    let request: CallParams = read("call", params, USAGE)?;
    if request.operation.is_some() && !OPERATION_KINDS.contains(&request.kind) {
        return Err(invalid(
            "call",
            &format!(
                "`operation` is only for the kinds that have operations ({}), not `{}`",
                OPERATION_KINDS.map(kind_name).join(", "),
                kind_name(request.kind)
            ),
            USAGE,
        ));
    }
    let context = context(request.context, USAGE)?;
    let mut call = Call::from_parts(
        request.kind,
        &request.name,
        request.args,
        request.operation.as_deref(),
    )
    .map_err(rpc)?
    .with_context(context)
    .gateway_authenticated(request.gateway_authenticated);
    if let Some(ms) = request.timeout_ms {
        if ms == 0 {
            return Err(invalid("call", "`timeoutMs` must be at least 1", USAGE));
        }
        call = call.with_timeout(Duration::from_millis(ms).min(MAX_CALL_TIMEOUT));
    }
    // Cancelled by `call.cancel` when named...
    let _name = match &request.call_id {
        Some(id) => {
            let cancel = CancellationToken::new();
            let name = state.register_call(id, cancel.clone()).ok_or_else(|| {
                ErrorObjectOwned::owned(
                    code(ErrorCode::InvalidRequest),
                    format!("callId `{id}` is already in flight; give each call its own id"),
                    Some(json!({ "callId": id })),
                )
            })?;
            call = call.with_cancel(cancel);
            Some(name)
        }
        None => None,
    };
    // ...and when the client's connection goes (dropping the call cancels it).
    let answer = state.supervisor.call(call);
    match extensions.get::<Connection>() {
        Some(connection) => tokio::select! {
            answer = answer => answer.map_err(rpc),
            () = connection.gone.cancelled() => Err(ErrorObjectOwned::owned(
                code(ErrorCode::Cancelled),
                "the client went away",
                None::<()>,
            )),
        },
        None => answer.await.map_err(rpc),
    }
}

/// The kinds a call can give an `operation`.
const OPERATION_KINDS: [CallKind; 3] = [
    CallKind::Provider,
    CallKind::Channel,
    CallKind::ContextEngine,
];

/// A kind as the API spells it.
fn kind_name(kind: CallKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// The members of a call context (protocol.md §10). `timeoutMs` is accepted and
/// ignored: the supervisor sets it from the call's deadline.
const CONTEXT_MEMBERS: [&str; 7] = [
    "sessionKey",
    "agentId",
    "channel",
    "accountId",
    "senderId",
    "isAuthorizedSender",
    "timeoutMs",
];

/// `call`'s `context`, read strictly: an unknown member is an error that names it.
fn context(context: Option<Value>, usage: &str) -> Result<CallContext, ErrorObjectOwned> {
    let fields = match context {
        None | Some(Value::Null) => return Ok(CallContext::default()),
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            return Err(invalid(
                "call",
                &format!("`context` must be an object, not {}", describe(&other)),
                usage,
            ));
        }
    };
    if let Some(unknown) = fields
        .keys()
        .find(|key| !CONTEXT_MEMBERS.contains(&key.as_str()))
    {
        return Err(invalid(
            "call",
            &format!(
                "unknown member `{unknown}` in `context`; its members are {}",
                CONTEXT_MEMBERS.map(|m| format!("`{m}`")).join(", ")
            ),
            usage,
        ));
    }
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| invalid("call", &format!("in `context`: {e}"), usage))
}

async fn subscribe_registry(
    params: &Params<'static>,
    pending: PendingSubscriptionSink,
    state: &State,
) {
    let usage = "{\"since\"?: <seq>, \"run\"?: \"<server.info's run>\"}";
    let (since, run) = match read::<Since>("registry.subscribe", params, usage) {
        Ok(Since { since, run }) => (since, run),
        Err(error) => {
            pending.reject(error).await;
            return;
        }
    };
    // `since` from another run counts nothing here: a snapshot follows instead.
    let other_run = run.is_some_and(|run| run != state.run);
    if let Some(since) = since.filter(|_| !other_run) {
        let now = state.supervisor.snapshot().seq;
        if since > now {
            pending
                .reject(ErrorObjectOwned::owned(
                    code(ErrorCode::InvalidParams),
                    format!("`since` is {since}, but the registry is at {now}: take it from a snapshot or an event"),
                    None::<()>,
                ))
                .await;
            return;
        }
    }
    let Ok(sink) = pending.accept().await else {
        return;
    };
    let closed = sink.closed();
    let asked = if other_run {
        events::Asked::OtherRun
    } else {
        events::Asked::Since(since)
    };
    events::forward(&state.events, &state.supervisor, asked, closed, |message| {
        let raw = match message {
            Message::Event(json) => RawValue::from_string(json.get().to_owned()),
            Message::Value(value) => serde_json::value::to_raw_value(&value),
        };
        let sink = &sink;
        async move {
            match raw {
                Ok(raw) => sink.send(SubscriptionMessage::from(raw)).await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
}

async fn offer(params: &Params<'static>, pending: PendingSubscriptionSink, state: &State) {
    let usage = "{\"methods\": [\"gateway.*\", \"chat.send\"], \"config\"?: true}";
    let request = match read::<OfferParams>("gateway.offer", params, usage) {
        Ok(request) => request,
        Err(error) => {
            pending.reject(error).await;
            return;
        }
    };
    let (registration, mut requests) = match state.gateway.offer(request) {
        Ok(offered) => offered,
        Err(problem) => {
            pending
                .reject(invalid("gateway.offer", &problem, usage))
                .await;
            return;
        }
    };
    let Ok(sink) = pending.accept().await else {
        return;
    };
    loop {
        let request = tokio::select! {
            request = requests.recv() => request,
            () = sink.closed() => break,
        };
        let Some(request) = request else { break };
        let Ok(raw) = serde_json::value::to_raw_value(&request) else {
            continue;
        };
        if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
            break;
        }
    }
    // Withdraws the offer; what waits on it fails at once.
    drop(registration);
}

/// The methods of subscriptions: they need a WebSocket.
const SUBSCRIPTIONS: [&str; 4] = [
    "registry.subscribe",
    "registry.unsubscribe",
    "gateway.offer",
    "gateway.withdraw",
];

/// The methods that end a subscription.
const UNSUBSCRIBE: [&str; 2] = ["registry.unsubscribe", "gateway.withdraw"];

/// An RPC layer that sees every request before jsonrpsee does, alone or in a batch, and
/// answers what jsonrpsee would answer tersely (or with codes that mean something else
/// in protocol.md §11) with an error that says what is wrong: a method the API does not
/// have (naming the ones it has), a subscription over plain HTTP, unsubscribe params it
/// cannot read, too many subscriptions, a batch or a response over the limits. It also
/// turns `{"subscription": id}` into the `[id]` jsonrpsee's unsubscribe reads.
#[derive(Clone, Debug)]
pub(crate) struct Explained<S> {
    pub(crate) inner: S,
    pub(crate) methods: jsonrpsee::Methods,
    /// The request came over a WebSocket.
    pub(crate) websocket: bool,
}

impl<S> Explained<S> {
    /// What `request` gets instead of its method, if anything; unsubscribe params by
    /// name are rewritten to the positional form on the way.
    fn screen(&self, request: &mut jsonrpsee::types::Request<'_>) -> Option<ErrorObjectOwned> {
        let name = request.method_name();
        if SUBSCRIPTIONS.contains(&name) && !self.websocket {
            return Some(ErrorObjectOwned::owned(
                code(ErrorCode::InvalidRequest),
                format!(
                    "`{name}` is a subscription method: subscriptions ({}) and their notifications need a WebSocket connection (ws://, the same port), not plain HTTP",
                    SUBSCRIPTIONS.join(", ")
                ),
                Some(json!({ "method": name })),
            ));
        }
        if UNSUBSCRIBE.contains(&name) {
            return match unsubscribe_params(name, request.params.as_deref()) {
                Ok(rewritten) => {
                    if let Some(positional) = rewritten {
                        request.params = Some(std::borrow::Cow::Owned(positional));
                    }
                    None
                }
                Err(error) => Some(error),
            };
        }
        if self.methods.method(name).is_some() {
            return None;
        }
        let mut known: Vec<&str> = self.methods.method_names().collect();
        known.sort_unstable();
        Some(ErrorObjectOwned::owned(
            code(ErrorCode::MethodNotFound),
            format!(
                "the gateway API has no method `{name}`; it has: {}",
                known.join(", ")
            ),
            Some(json!({ "method": name })),
        ))
    }
}

/// The params of an unsubscribe method as jsonrpsee reads them (`[id]`), from
/// `{"subscription": id}` or `[id]`; `None` when they are already that.
fn unsubscribe_params(
    method: &str,
    params: Option<&RawValue>,
) -> Result<Option<Box<RawValue>>, ErrorObjectOwned> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ByName {
        subscription: Value,
    }
    let usage = "{\"subscription\": <the id the subscribe method answered>} (or [id])";
    let refuse = |problem: &str| invalid(method, problem, usage);
    let text = params.map_or("{}", RawValue::get);
    let value: Value =
        serde_json::from_str(text).map_err(|e| refuse(&format!("the params are not JSON: {e}")))?;
    let id = match value {
        Value::Object(_) => {
            let ByName { subscription } =
                serde_json::from_str(text).map_err(|e| refuse(&e.to_string()))?;
            subscription
        }
        Value::Array(mut items) if items.len() == 1 => items.remove(0),
        Value::Array(items) => {
            return Err(refuse(&format!(
                "positional params hold one subscription id, not {}",
                items.len()
            )));
        }
        other => {
            return Err(refuse(&format!(
                "params must be an object, not {}",
                describe(&other)
            )));
        }
    };
    if !(id.is_u64() || id.is_string()) {
        return Err(refuse(&format!(
            "a subscription id is a number or a string, not {}",
            describe(&id)
        )));
    }
    let positional = serde_json::value::to_raw_value(&[id]).expect("ids serialize");
    Ok((positional.get() != text).then_some(positional))
}

/// The API's answer to a subscription refused for the session's limit.
fn too_many_subscriptions() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        TOO_MANY_SUBSCRIPTIONS,
        format!(
            "this WebSocket session already holds {} subscriptions, the most it may: end one (registry.unsubscribe, gateway.withdraw) or open another session",
            super::MAX_SUBSCRIPTIONS
        ),
        Some(json!({ "limit": super::MAX_SUBSCRIPTIONS })),
    )
}

/// The API's answer to a response over [`super::MAX_RESPONSE_BYTES`]: `size` bytes, or
/// at least that many for a batch (whose answering stops there).
fn response_too_large(size: usize, batch: bool) -> ErrorObjectOwned {
    let what = if batch {
        format!("the batch's responses come to {size} bytes or more")
    } else {
        format!("the response is {size} bytes")
    };
    ErrorObjectOwned::owned(
        RESPONSE_TOO_LARGE,
        format!(
            "{what}, over the gateway API's limit of {} bytes; ask for less (fewer requests in a batch, one plugin with plugins.inspect rather than all of them)",
            super::MAX_RESPONSE_BYTES
        ),
        Some(json!({ "limit": super::MAX_RESPONSE_BYTES, "size": size })),
    )
}

/// What jsonrpsee answered, with its limit errors replaced by the API's: too many
/// subscriptions (jsonrpsee's -32006), a response over the limit.
fn limited(
    response: jsonrpsee::MethodResponse,
    id: jsonrpsee::types::Id<'static>,
    subscribe: bool,
) -> jsonrpsee::MethodResponse {
    if !response.is_method_call() {
        return response;
    }
    let refused = if subscribe
        && response.as_error_code() == Some(jsonrpsee::types::error::TOO_MANY_SUBSCRIPTIONS_CODE)
    {
        too_many_subscriptions()
    } else {
        let size = response.as_json().get().len();
        if size <= super::MAX_RESPONSE_BYTES {
            return response;
        }
        response_too_large(size, false)
    };
    let (_, on_close, extensions) = response.into_parts();
    if let Some(on_close) = on_close {
        on_close.notify(false);
    }
    jsonrpsee::MethodResponse::error(id, refused).with_extensions(extensions)
}

impl<S> RpcServiceT for Explained<S>
where
    S: RpcServiceT<
            MethodResponse = jsonrpsee::MethodResponse,
            NotificationResponse = jsonrpsee::MethodResponse,
            BatchResponse = jsonrpsee::MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = jsonrpsee::MethodResponse;
    type NotificationResponse = jsonrpsee::MethodResponse;
    type BatchResponse = jsonrpsee::MethodResponse;

    fn call<'a>(
        &self,
        mut request: jsonrpsee::types::Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        use futures_util::future::Either;
        if let Some(error) = self.screen(&mut request) {
            return Either::Right(std::future::ready(jsonrpsee::MethodResponse::error(
                request.id, error,
            )));
        }
        let id = request.id.clone().into_owned();
        let subscribe = SUBSCRIPTIONS.contains(&request.method_name());
        let answer = self.inner.call(request);
        Either::Left(async move { limited(answer.await, id, subscribe) })
    }

    /// Each request of the batch as [`Explained::call`] handles it alone (jsonrpsee's
    /// own batch would call its inner service directly), with the API's limits on the
    /// batch's length and on its responses together.
    fn batch<'a>(
        &self,
        batch: jsonrpsee::core::middleware::Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        use jsonrpsee::core::middleware::BatchEntry;
        let this = self.clone();
        async move {
            if batch.len() > super::MAX_BATCH {
                return jsonrpsee::MethodResponse::error(
                    jsonrpsee::types::Id::Null,
                    ErrorObjectOwned::owned(
                        BATCH_TOO_LARGE,
                        format!(
                            "the batch has {} requests; the gateway API takes at most {} in one batch",
                            batch.len(),
                            super::MAX_BATCH
                        ),
                        Some(json!({ "limit": super::MAX_BATCH, "size": batch.len() })),
                    ),
                );
            }
            let mut responses =
                jsonrpsee::core::server::BatchResponseBuilder::new_with_limit(usize::MAX);
            // "[", then each response and a comma (the last one becomes "]").
            let mut size = 1;
            let mut notified = false;
            for entry in batch {
                let response = match entry {
                    Ok(BatchEntry::Call(request)) => this.call(request).await,
                    Ok(BatchEntry::Notification(notification)) => {
                        notified = true;
                        this.notification(notification).await;
                        continue;
                    }
                    Err(error) => {
                        let (error, id) = error.into_parts();
                        jsonrpsee::MethodResponse::error(id, error)
                    }
                };
                size += response.as_json().get().len() + 1;
                if size > super::MAX_RESPONSE_BYTES {
                    return jsonrpsee::MethodResponse::error(
                        jsonrpsee::types::Id::Null,
                        response_too_large(size, true),
                    );
                }
                if let Err(refused) = responses.append(response) {
                    return refused;
                }
            }
            if responses.is_empty() && notified {
                // Only notifications: nothing to answer.
                jsonrpsee::MethodResponse::notification()
            } else {
                jsonrpsee::MethodResponse::from_batch(responses.finish())
            }
        }
    }

    fn notification<'a>(
        &self,
        notification: jsonrpsee::core::middleware::Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(notification)
    }
}

#[cfg(test)]
mod tests {
    use jsonrpsee::core::server::ResponsePayload;
    use jsonrpsee::types::Id;

    use super::*;

    #[test]
    fn limit_errors_get_the_apis_codes() {
        let big = "x".repeat(super::super::MAX_RESPONSE_BYTES);
        let response = jsonrpsee::MethodResponse::response(
            Id::Number(1),
            ResponsePayload::success(big),
            usize::MAX,
        );
        let answered = limited(response, Id::Number(1), false);
        assert_eq!(answered.as_error_code(), Some(RESPONSE_TOO_LARGE));
        let json: Value = serde_json::from_str(answered.as_json().get()).unwrap();
        assert_eq!(json["id"], 1);
        assert_eq!(json["error"]["data"]["limit"], 64 * 1024 * 1024);

        let refused = || {
            jsonrpsee::MethodResponse::error(
                Id::Number(2),
                jsonrpsee::types::error::reject_too_many_subscriptions(64),
            )
        };
        let answered = limited(refused(), Id::Number(2), true);
        assert_eq!(answered.as_error_code(), Some(TOO_MANY_SUBSCRIPTIONS));
        // Only a subscribe method's -32006 is jsonrpsee's limit.
        let answered = limited(refused(), Id::Number(2), false);
        assert_eq!(answered.as_error_code(), Some(-32006));
    }

    #[test]
    fn the_context_members_are_those_of_a_call_context() {
        for member in CONTEXT_MEMBERS {
            let value = match member {
                "isAuthorizedSender" => json!(true),
                "timeoutMs" => json!(5),
                _ => json!("x"),
            };
            let context: CallContext =
                serde_json::from_value(json!({ member: value.clone() })).unwrap();
            assert_eq!(
                serde_json::to_value(context).unwrap(),
                json!({ member: value }),
                "{member}"
            );
        }
    }

    #[test]
    fn unsubscribe_params_by_name_become_positional() {
        let raw = |text: &str| RawValue::from_string(text.to_owned()).unwrap();
        let by_name = raw(r#"{"subscription": 42}"#);
        let rewritten = unsubscribe_params("registry.unsubscribe", Some(&by_name)).unwrap();
        assert_eq!(rewritten.unwrap().get(), "[42]");
        let by_position = raw(r#"["abc"]"#);
        assert!(
            unsubscribe_params("gateway.withdraw", Some(&by_position))
                .unwrap()
                .is_none()
        );
        let error = unsubscribe_params("gateway.withdraw", None).unwrap_err();
        assert!(
            error.message().contains("missing field `subscription`"),
            "{error:?}"
        );
    }
}
