//! What plugins may ask of the gateway that embeds the supervisor.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use outpost_protocol::methods::CallContext;
use outpost_protocol::{ErrorCode, ErrorObject};
use serde_json::{Value, json};

/// What a [`Gateway`] method returns: a boxed future, so the trait can be used as an
/// object.
pub type GatewayFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The gateway's side of the runtime helpers plugins call (docs/protocol.md §7).
///
/// Implement it to let plugins reach the gateway's own gateway methods through
/// `host/callMethod` (a method no plugin registered comes here, once the operator's
/// `hostMethods` grant allowed it) and to share part of the gateway's config through
/// `host/getConfig`. Both default to "not available", which is what a supervisor
/// without a gateway answers ([`NoGateway`]).
///
/// A future returned here is dropped when the plugin cancels its request or its
/// deadline passes: dropping is the cancellation.
pub trait Gateway: Send + Sync + 'static {
    /// Runs one of the gateway's own methods for a plugin.
    fn call_method(&self, request: MethodRequest) -> GatewayFuture<'_, Result<Value, ErrorObject>> {
        Box::pin(async move { Err(no_such_method(&request.method)) })
    }

    /// What `plugin` may read of the gateway's config: sent as `gateway` in its
    /// `host/getConfig` result. `None`: nothing (the member is left out).
    fn config(&self, plugin: &str) -> GatewayFuture<'_, Result<Option<Value>, ErrorObject>> {
        let _ = plugin;
        Box::pin(async { Ok(None) })
    }
}

/// The default [`Gateway`]: it has no methods and shares no config.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGateway;

impl Gateway for NoGateway {}

/// A plugin's `host/callMethod` for a method of the gateway's own.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MethodRequest {
    /// The plugin asking.
    pub plugin: String,
    /// The method.
    pub method: String,
    /// Its params.
    pub params: Value,
    /// The context the plugin passed on: usually that of the call it is serving.
    pub context: CallContext,
    /// When the answer is no longer useful (the plugin's `timeoutMs`, capped by its
    /// `timeouts.callMs`).
    pub deadline: Instant,
}

impl MethodRequest {
    /// A request from `plugin` for `method`, with an empty context.
    pub fn new(
        plugin: impl Into<String>,
        method: impl Into<String>,
        params: Value,
        deadline: Instant,
    ) -> Self {
        Self {
            plugin: plugin.into(),
            method: method.into(),
            params,
            context: CallContext::default(),
            deadline,
        }
    }

    /// The same request with `context`.
    #[must_use]
    pub fn with_context(mut self, context: CallContext) -> Self {
        self.context = context;
        self
    }
}

/// `-32008` for a method neither a plugin nor the gateway has.
pub(crate) fn no_such_method(method: &str) -> ErrorObject {
    ErrorObject::new(
        ErrorCode::NotFound,
        format!(
            "no plugin registered gatewayMethod `{method}`, and the gateway offers no method by that name; `outpost plugins list` shows what is loaded"
        ),
    )
    .with_data(json!({ "kind": "gatewayMethod", "name": method }))
}

/// The gateway as the supervisor holds it.
pub(crate) struct GatewayHandle(pub(crate) Box<dyn Gateway>);

impl fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gateway")
    }
}
