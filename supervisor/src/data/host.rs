//! What the host answers a plugin: its `log` notifications, its requests for the
//! host's runtime helpers, and what it sends that cannot be used.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use outpost_protocol::methods::{HostCallMethodParams, HostGetConfigResult, LogLevel, LogParams};
use outpost_protocol::peer::{Event, Incoming, IncomingRequest, Problem};
use outpost_protocol::{
    ErrorCode, ErrorObject, Notification, NotificationType, RegistrationKind, RequestType,
};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use super::call::{Answer, Call};
use super::gateway::MethodRequest;
use super::shared::Shared;
use super::throttle::Throttle;
use crate::shown::{LOG_TEXT_BYTES, escaped_within, for_log};
use crate::spec::method_allowed;

/// The plugin-to-host methods this host answers, announced in `initialize`.
pub(crate) const RUNTIME_METHODS: &[&str] = &[
    outpost_protocol::methods::HostCallMethod::METHOD,
    outpost_protocol::methods::HostGetConfig::METHOD,
];

/// What the host knows about the plugin it serves.
#[derive(Debug)]
pub(crate) struct HostContext {
    pub(crate) shared: Weak<Shared>,
    pub(crate) plugin: Arc<str>,
    pub(crate) config: Map<String, Value>,
    pub(crate) channels: Map<String, Value>,
    pub(crate) host_methods: Vec<String>,
    /// The plugin's `timeouts.callMs`: how long a request of its own may take.
    pub(crate) call_timeout: Duration,
    /// Set just before `initialized` is sent: requests before that get `-32002`.
    pub(crate) initialized: Arc<AtomicBool>,
}

/// Requests of one plugin's the host answers at once; more are refused with `-32009`
/// until some finish, so a plugin cannot pile up work (and memory) in the host.
const REQUESTS_IN_FLIGHT: usize = 256;

/// Handles everything the plugin sends except responses, until its connection ends.
pub(crate) async fn serve(context: HostContext, mut incoming: Incoming) {
    let context = Arc::new(context);
    let mut throttle = Throttle::new(Instant::now());
    let mut logs = Throttle::new(Instant::now());
    let in_flight = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT));
    while let Some(event) = incoming.next().await {
        match event {
            Event::Notification(notification) if logs.admit(Instant::now()) => {
                let skipped = logs.take_skipped();
                if skipped > 0 {
                    tracing::warn!(plugin = %context.plugin, skipped, "`log` notifications were not logged (rate limit)");
                }
                log(&context.plugin, notification);
            }
            Event::Request(request) => {
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    let error = ErrorObject::new(
                        ErrorCode::Overloaded,
                        format!(
                            "plugin `{}` already has {REQUESTS_IN_FLIGHT} requests in progress with the host; wait for some to finish",
                            context.plugin
                        ),
                    );
                    tokio::spawn(async move { request.responder.respond(Err(error)).await });
                    continue;
                };
                let context = context.clone();
                tokio::spawn(async move {
                    answer(&context, request).await;
                    drop(permit);
                });
            }
            // Expected: a call the host cancelled or timed out is still answered
            // (docs/protocol.md §8.2). Counted in the metrics by the peer.
            Event::Problem(problem @ Problem::LateResponse { .. }) => {
                tracing::debug!(plugin = %context.plugin, "{}", for_log(&problem));
            }
            Event::Problem(problem) if throttle.admit(Instant::now()) => {
                let skipped = throttle.take_skipped();
                tracing::warn!(plugin = %context.plugin, skipped, "protocol problem: {}", for_log(&problem));
            }
            _ => {}
        }
    }
}

fn log(plugin: &str, notification: Notification) {
    if notification.method != outpost_protocol::methods::Log::METHOD {
        tracing::debug!(plugin, method = %notification.method, "ignored a notification this host does not know");
        return;
    }
    let params =
        match serde_json::from_value::<LogParams>(notification.params.unwrap_or(Value::Null)) {
            Ok(params) => params,
            Err(e) => {
                tracing::warn!(plugin, "a `log` notification with unusable params: {e}");
                return;
            }
        };
    let logger = escaped_within(params.logger.as_deref().unwrap_or(""), 256);
    let fields = params
        .fields
        .map(|f| escaped_within(&Value::Object(f).to_string(), LOG_TEXT_BYTES))
        .unwrap_or_default();
    let message = escaped_within(&params.message, LOG_TEXT_BYTES);
    match params.level {
        LogLevel::Debug => {
            tracing::debug!(target: "outpost::plugin", plugin, logger, fields, "{message}");
        }
        LogLevel::Info | LogLevel::Notice => {
            tracing::info!(target: "outpost::plugin", plugin, logger, fields, "{message}");
        }
        LogLevel::Warning => {
            tracing::warn!(target: "outpost::plugin", plugin, logger, fields, "{message}");
        }
        LogLevel::Error | LogLevel::Critical | LogLevel::Alert | LogLevel::Emergency => {
            tracing::error!(target: "outpost::plugin", plugin, logger, fields, level = ?params.level, "{message}");
        }
    }
}

async fn answer(context: &HostContext, request: IncomingRequest) {
    let IncomingRequest {
        method,
        params,
        responder,
        ..
    } = request;
    let outcome = if context.initialized.load(Ordering::SeqCst) {
        match method.as_str() {
            outpost_protocol::methods::HostGetConfig::METHOD => get_config(context, params).await,
            outpost_protocol::methods::HostCallMethod::METHOD => {
                // The plugin's `$/cancel` (or its connection ending) drops the call.
                let cancelled = responder.cancellation();
                tokio::select! {
                    () = cancelled.cancelled() => Err(ErrorObject::new(ErrorCode::Cancelled, "cancelled by the plugin")),
                    outcome = call_method(context, params) => outcome,
                }
            }
            _ => Err(ErrorObject::method_not_found(&method)),
        }
    } else {
        Err(ErrorObject::new(
            ErrorCode::NotInitialized,
            format!(
                "`{method}` arrived before `initialized`; the host answers plugin requests only after the handshake"
            ),
        ))
    };
    let _ = responder.respond(outcome).await;
}

/// `host/getConfig`: the plugin's config, and what the gateway shares of its own.
async fn get_config(context: &HostContext, params: Option<Value>) -> Result<Value, ErrorObject> {
    let method = outpost_protocol::methods::HostGetConfig::METHOD;
    match params {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(other) => {
            return Err(ErrorObject::new(
                ErrorCode::InvalidParams,
                format!(
                    "`{method}` takes `{{}}` as params, not {}",
                    super::call::kind_of(&other)
                ),
            ));
        }
    }
    let gateway = match context.shared.upgrade() {
        Some(shared) => shared.gateway.0.config(&context.plugin).await?,
        None => None,
    };
    Ok(json!(HostGetConfigResult {
        config: context.config.clone(),
        channels: context.channels.clone(),
        gateway,
    }))
}

async fn call_method(context: &HostContext, params: Option<Value>) -> Result<Value, ErrorObject> {
    let method = outpost_protocol::methods::HostCallMethod::METHOD;
    let HostCallMethodParams {
        method: target,
        params,
        context: call_context,
    } = serde_json::from_value(params.unwrap_or(Value::Null))
        .map_err(|e| ErrorObject::invalid_params(method, e))?;
    let call_context = call_context.unwrap_or_default();
    // The plugin's own deadline for the call it serves, within its call timeout.
    let budget = call_context.timeout_ms.map_or(context.call_timeout, |ms| {
        Duration::from_millis(ms).min(context.call_timeout)
    });
    let plugin = &context.plugin;
    if !method_allowed(&context.host_methods, &target) {
        return Err(ErrorObject::new(
            ErrorCode::Forbidden,
            format!(
                "plugin `{plugin}` may not call `{target}`; an operator can allow it in outpost.plugins.{plugin}.hostMethods"
            ),
        )
        .with_data(json!({ "method": target, "reason": "not in the plugin's hostMethods" })));
    }
    let Some(shared) = context.shared.upgrade() else {
        return Err(ErrorObject::new(
            ErrorCode::Unavailable,
            "the supervisor is shutting down",
        ));
    };
    // A plugin's method (or one a plugin that is not ready would serve), or else the
    // gateway's own.
    match shared.owner(RegistrationKind::GatewayMethod, &target) {
        Ok(_) => {
            let call = Call::method(target, params)
                .with_context(call_context)
                .with_timeout(budget)
                .made_by_a_plugin();
            return shared.call(call).await.map(Answer::into_value);
        }
        Err(unavailable) if unavailable.code == ErrorCode::Unavailable => return Err(unavailable),
        Err(_) => {}
    }
    let deadline = Instant::now() + budget;
    let request = MethodRequest::new(plugin.as_ref(), target.clone(), params, deadline)
        .with_context(call_context);
    let answer = shared.gateway.0.call_method(request);
    match tokio::time::timeout_at(deadline.into(), answer).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ErrorObject::new(
            ErrorCode::Timeout,
            format!(
                "the gateway did not answer `{target}` for plugin `{plugin}` within {} ms",
                budget.as_millis()
            ),
        )
        .with_data(json!({ "method": target, "timeoutMs": u64::try_from(budget.as_millis()).unwrap_or(u64::MAX) }))),
    }
}
