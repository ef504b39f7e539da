//! The gateway API's methods (docs/gateway-api.md lists each with examples).
//!
//! Params are always an object, read strictly: an unknown member is an error that
//! names it, so a typo never goes unnoticed. Errors are JSON-RPC errors with the codes
//! of docs/protocol.md §11 (a call's error is the plugin's or the supervisor's, passed
//! on as it is), plus `-32020` for a reload that changed nothing.

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{Extensions, PendingSubscriptionSink, RpcModule, SubscriptionMessage};
use outpost_protocol::methods::CallContext;
use outpost_protocol::{ErrorCode, ErrorObject};
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
        Ok::<_, ErrorObjectOwned>(
            serde_json::to_value(state.supervisor.snapshot()).expect("snapshots serialize"),
        )
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
    #[serde(default)]
    context: Option<CallContext>,
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

fn unknown_plugin(state: &State, id: &str) -> ErrorObjectOwned {
    let known = state.known_ids();
    ErrorObjectOwned::owned(
        code(ErrorCode::NotFound),
        format!(
            "no plugin `{id}`; known: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ),
        Some(json!({ "kind": "plugin", "name": id })),
    )
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
                "reason": reason.flatten().map(|r| r.to_string()),
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
    let mut call = Call::from_parts(
        request.kind,
        &request.name,
        request.args,
        request.operation.as_deref(),
    )
    .map_err(rpc)?
    .with_context(request.context.unwrap_or_default())
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

async fn subscribe_registry(
    params: &Params<'static>,
    pending: PendingSubscriptionSink,
    state: &State,
) {
    let since = match read::<Since>("registry.subscribe", params, "{\"since\"?: <seq>}") {
        Ok(Since { since }) => since,
        Err(error) => {
            pending.reject(error).await;
            return;
        }
    };
    if let Some(since) = since {
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
    events::forward(&state.events, &state.supervisor, since, closed, |message| {
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

/// Subscriptions: they need a WebSocket.
const SUBSCRIPTIONS: [&str; 2] = ["registry.subscribe", "gateway.offer"];

/// An RPC layer that answers what jsonrpsee would answer tersely with an error that
/// says what is wrong: a method the API does not have (naming the ones it has), and a
/// subscription over plain HTTP.
#[derive(Clone, Debug)]
pub(crate) struct Explained<S> {
    pub(crate) inner: S,
    pub(crate) methods: jsonrpsee::Methods,
    /// The request came over a WebSocket.
    pub(crate) websocket: bool,
}

impl<S> jsonrpsee::server::middleware::rpc::RpcServiceT for Explained<S>
where
    S: jsonrpsee::server::middleware::rpc::RpcServiceT<MethodResponse = jsonrpsee::MethodResponse>
        + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(
        &self,
        request: jsonrpsee::types::Request<'a>,
    ) -> impl Future<Output = Self::MethodResponse> + Send + 'a {
        use futures_util::future::Either;
        let name = request.method_name();
        if SUBSCRIPTIONS.contains(&name) && !self.websocket {
            let error = ErrorObjectOwned::owned(
                code(ErrorCode::InvalidRequest),
                format!(
                    "`{name}` is a subscription: its notifications need a WebSocket connection (ws://, the same port), not plain HTTP"
                ),
                Some(json!({ "method": name })),
            );
            return Either::Right(std::future::ready(jsonrpsee::MethodResponse::error(
                request.id, error,
            )));
        }
        if self.methods.method(name).is_some() {
            return Either::Left(self.inner.call(request));
        }
        let mut known: Vec<&str> = self
            .methods
            .method_names()
            .filter(|known| !known.ends_with("unsubscribe") && *known != "gateway.withdraw")
            .collect();
        known.sort_unstable();
        let error = ErrorObjectOwned::owned(
            code(ErrorCode::MethodNotFound),
            format!(
                "the gateway API has no method `{name}`; it has: {}",
                known.join(", ")
            ),
            Some(json!({ "method": name })),
        );
        Either::Right(std::future::ready(jsonrpsee::MethodResponse::error(
            request.id, error,
        )))
    }

    fn batch<'a>(
        &self,
        requests: jsonrpsee::core::middleware::Batch<'a>,
    ) -> impl Future<Output = Self::BatchResponse> + Send + 'a {
        self.inner.batch(requests)
    }

    fn notification<'a>(
        &self,
        notification: jsonrpsee::core::middleware::Notification<'a>,
    ) -> impl Future<Output = Self::NotificationResponse> + Send + 'a {
        self.inner.notification(notification)
    }
}
